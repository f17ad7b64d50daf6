/*
 * images/bake.c - checking badge images and baking assertions into them
 * (Open Badges 2.0 "Baking":
 * https://www.imsglobal.org/sites/default/files/Badges/OBv2p0Final/baking/).
 *
 * PNG through libpng: the image is decoded and written again with one iTXt
 * chunk, keyword "openbadges", holding the assertion URL (uncompressed, as
 * the specification asks); any earlier openbadges chunk is gone with the
 * rest of the old file. SVG through libxml2 with the network and entity
 * expansion off: an <openbadges:assertion verify="URL"/> element becomes the
 * first child of <svg>.
 *
 * One rule decides what SVG is stored, whatever the way in: the sanitizer
 * (image_svg_sanitize), the same parser, then a walk that drops what could
 * run code or fetch something when the image is shown, and keeps the rest of
 * the drawing. It removes by deny-list, element and attribute names compared
 * case-insensitively on the local name (so <SCRIPT> and <svg:script> go
 * too), and refuses CSS it would have to decode (escapes) rather than
 * decode it. image_for_badge() runs it on every upload (the editor, the
 * CLI); image_check() runs the same walk and refuses an SVG it
 * would remove anything from, so the sanitizer's output passes the check
 * and nothing else that is active does. (The store, which may not call
 * images/, gets the sanitizer as a function from main() and checks every
 * image it writes the same way; see store_set_svg_rule.)
 */
#include "base/base.h"
#include "images/images.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <png.h>

#define OB_NS     "http://openbadges.org"
#define SVG_NS    "http://www.w3.org/2000/svg"
#define XHTML_NS  "http://www.w3.org/1999/xhtml"
#define MATHML_NS "http://www.w3.org/1998/Math/MathML"

static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

/* Decodes a PNG into RGBA rows; the caller frees *pixels. */
static int png_decode(const unsigned char *png, size_t len, png_image *img, png_bytep *pixels,
                      struct err *err)
{
    memset(img, 0, sizeof(*img));
    img->version = PNG_IMAGE_VERSION;
    *pixels = NULL;
    if (len < 8 || memcmp(png, png_sig, 8) != 0)
        return err_set(err, ERR_INVALID, "the image is not a PNG file");
    if (!png_image_begin_read_from_memory(img, png, len))
        return err_set(err, ERR_INVALID, "the PNG image does not decode: %s", img->message);
    if (img->width == 0 || img->height == 0 || img->width > LIMIT_BADGE_IMAGE_PIXELS ||
        img->height > LIMIT_BADGE_IMAGE_PIXELS) {
        png_image_free(img);
        return err_set(err, ERR_INVALID, "a badge image is at most %d pixels wide and high",
                       LIMIT_BADGE_IMAGE_PIXELS);
    }
    img->format = PNG_FORMAT_RGBA;
    *pixels = xmalloc(PNG_IMAGE_SIZE(*img));
    if (!png_image_finish_read(img, NULL, *pixels, 0, NULL)) {
        err_set(err, ERR_INVALID, "the PNG image does not decode: %s", img->message);
        free(*pixels);
        *pixels = NULL;
        png_image_free(img);
        return -1;
    }
    return 0;
}

static void write_mem(png_structp p, png_bytep data, size_t n)
{
    buf_add(png_get_io_ptr(p), data, n);
}

static void flush_mem(png_structp p)
{
    (void)p;
}

int image_bake_png(const unsigned char *png, size_t len, const char *assertion_url,
                   unsigned char **out, size_t *out_len, struct err *err)
{
    png_image img;
    png_bytep pixels;
    png_structp wp = NULL;
    png_infop wi = NULL;
    png_text text;
    struct buf m;
    png_bytep *volatile rows = NULL;
    volatile int ret = -1;

    *out = NULL;
    *out_len = 0;
    if (png_decode(png, len, &img, &pixels, err) < 0)
        return -1;
    buf_init(&m, (size_t)LIMIT_BADGE_IMAGE_PIXELS * LIMIT_BADGE_IMAGE_PIXELS * 5);
    wp = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (wp)
        wi = png_create_info_struct(wp);
    if (!wp || !wi) {
        err_set(err, ERR_INTERNAL, "cannot start writing a PNG");
        goto out;
    }
    /* libpng reports errors by longjmp: nothing below keeps state across it but `rows` */
    if (setjmp(png_jmpbuf(wp))) {
        err_set(err, ERR_INTERNAL, "writing the baked PNG failed");
        goto out;
    }
    png_set_write_fn(wp, &m, write_mem, flush_mem);
    png_set_IHDR(wp, wi, img.width, img.height, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    memset(&text, 0, sizeof(text));
    text.compression = PNG_ITXT_COMPRESSION_NONE;
    text.key = (png_charp) "openbadges";
    text.text = (png_charp)assertion_url;
    text.itxt_length = strlen(assertion_url);
    text.lang = (png_charp) "";
    text.lang_key = (png_charp) "";
    png_set_text(wp, wi, &text, 1);
    rows = xcalloc(img.height, sizeof(png_bytep));
    for (png_uint_32 y = 0; y < img.height; y++)
        rows[y] = pixels + (size_t)y * PNG_IMAGE_ROW_STRIDE(img);
    png_set_rows(wp, wi, rows);
    png_write_png(wp, wi, PNG_TRANSFORM_IDENTITY, NULL);
    if (m.toobig) {
        err_set(err, ERR_INTERNAL, "the baked PNG is too large");
        goto out;
    }
    *out = (unsigned char *)buf_detach(&m, out_len);
    ret = 0;
out:
    if (wp)
        png_destroy_write_struct(&wp, wi ? &wi : NULL);
    free(rows);
    free(pixels);
    png_image_free(&img);
    buf_release(&m);
    return ret;
}

/*
 * `bare_doctype`: a DOCTYPE that declares nothing (<!DOCTYPE svg PUBLIC
 * "-//W3C//DTD SVG 1.1//EN" "...svg11.dtd">, as Illustrator and Inkscape
 * write) is dropped rather than refused, *dropped set; its DTD is never
 * loaded. One with declarations is always refused.
 */
static xmlDocPtr svg_parse(const unsigned char *svg, size_t len, bool bare_doctype, bool *dropped,
                           struct err *err)
{
    xmlDocPtr doc;
    xmlNodePtr root;

    if (len > INT32_MAX) {
        err_set(err, ERR_INVALID, "the SVG image is too large");
        return NULL;
    }
    /* no network, no entity expansion, no DTD loading: XXE and billion laughs stay out */
    doc = xmlReadMemory((const char *)svg, (int)len, "badge.svg", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        err_set(err, ERR_INVALID, "the SVG image is not well-formed XML");
        return NULL;
    }
    root = xmlDocGetRootElement(doc);
    if (!root || !xmlStrEqual(root->name, BAD_CAST "svg") || !root->ns ||
        !xmlStrEqual(root->ns->href, BAD_CAST SVG_NS)) {
        xmlFreeDoc(doc);
        err_set(err, ERR_INVALID, "the image is not an SVG document");
        return NULL;
    }
    if (bare_doctype && doc->intSubset && !doc->intSubset->children && !doc->extSubset) {
        xmlDtdPtr dtd = doc->intSubset;

        xmlUnlinkNode((xmlNodePtr)dtd);
        xmlFreeDtd(dtd);
        doc->intSubset = NULL;
        *dropped = true;
    }
    if (doc->intSubset || doc->extSubset) {
        xmlFreeDoc(doc);
        err_set(err, ERR_INVALID, "an SVG badge image may not have a DOCTYPE");
        return NULL;
    }
    return doc;
}

int image_bake_svg(const unsigned char *svg, size_t len, const char *assertion_url,
                   unsigned char **out, size_t *out_len, struct err *err)
{
    xmlDocPtr doc = svg_parse(svg, len, false, NULL, err);
    xmlNodePtr root, n, next, el;
    xmlNsPtr ns;
    xmlChar *mem = NULL;
    int size = 0;

    *out = NULL;
    *out_len = 0;
    if (!doc)
        return -1;
    root = xmlDocGetRootElement(doc);
    /* one assertion per image: drop any element an earlier baking left */
    for (n = root->children; n; n = next) {
        next = n->next;
        if (n->type == XML_ELEMENT_NODE && n->ns && xmlStrEqual(n->ns->href, BAD_CAST OB_NS) &&
            xmlStrEqual(n->name, BAD_CAST "assertion")) {
            xmlUnlinkNode(n);
            xmlFreeNode(n);
        }
    }
    ns = xmlSearchNsByHref(doc, root, BAD_CAST OB_NS);
    if (!ns)
        ns = xmlNewNs(root, BAD_CAST OB_NS, BAD_CAST "openbadges");
    el = xmlNewDocNode(doc, ns, BAD_CAST "assertion", NULL);
    xmlNewProp(el, BAD_CAST "verify", BAD_CAST assertion_url);
    if (root->children)
        xmlAddPrevSibling(root->children, el);
    else
        xmlAddChild(root, el);
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    xmlFreeDoc(doc);
    if (!mem || size <= 0) {
        xmlFree(mem);
        return err_set(err, ERR_INTERNAL, "writing the baked SVG failed");
    }
    *out = xmalloc((size_t)size);
    memcpy(*out, mem, (size_t)size);
    *out_len = (size_t)size;
    xmlFree(mem);
    return 0;
}

/* ---- sanitizing ---------------------------------------------------------- */

/* One of `names` (NULL-terminated), ASCII case-insensitively. */
static bool name_in(const xmlChar *name, const char *const *names)
{
    for (; *names; names++) {
        if (xmlStrcasecmp(name, (const xmlChar *)*names) == 0)
            return true;
    }
    return false;
}

static bool prefix_ci(const xmlChar *v, const char *prefix)
{
    return xmlStrncasecmp(v, BAD_CAST prefix, (int)strlen(prefix)) == 0;
}

/* URL parsers strip leading C0 controls and spaces, so " javascript:" still runs */
static const xmlChar *skip_ctl(const xmlChar *v)
{
    while (*v && *v <= 0x20)
        v++;
    return v;
}

/*
 * A link that stays inside the image: a same-document reference, or an
 * embedded raster image. Not data:image/svg+xml (a document of its own, with
 * its own scripts) and no other data: type.
 */
static bool url_allowed(const xmlChar *v)
{
    static const char *const types[] = { "png", "jpeg", "gif", "webp" };

    if (v[0] == '#')
        return true;
    if (!prefix_ci(v, "data:image/"))
        return false;
    v += strlen("data:image/");
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i]);

        if (prefix_ci(v, types[i]) && (v[n] == ';' || v[n] == ','))
            return true;
    }
    return false;
}

/*
 * A script scheme anywhere in a value (javascript:, vbscript:, livescript:),
 * with the whitespace and control characters that URL parsers skip removed
 * first ("java\tscript:"). Used as a last net on every attribute.
 */
static bool has_script_scheme(const xmlChar *v)
{
    static const char word[] = "script:";
    size_t k = 0;

    for (; *v; v++) {
        if (*v <= 0x20)
            continue;
        /* (':' | 0x20 is ':'; 's' occurs once in the word, so a mismatch restarts at it) */
        if ((*v | 0x20) == (unsigned char)word[k])
            k++;
        else
            k = (*v | 0x20) == 's' ? 1 : 0;
        if (k == sizeof(word) - 1)
            return true;
    }
    return false;
}

/* Each `url(` in `css` (lower case) must point inside the image: url(#id), url('#id'). */
static bool css_external_url(const char *css)
{
    for (const char *p = strstr(css, "url("); p; p = strstr(p + 1, "url(")) {
        const char *q = p + 4;

        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r' || *q == '\f' || *q == '"' ||
               *q == '\'')
            q++;
        if (*q != '#')
            return true;
    }
    return false;
}

static bool css_bad_words(const char *css)
{
    /* functions that fetch (image-set() and src() take bare strings), IE's expression() */
    static const char *const words[] = { "@import", "expression(", "script:",  "image-set(",
                                         "image(",  "src(",        "behavior", "-moz-binding" };

    if (css_external_url(css))
        return true;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strstr(css, words[i]))
            return true;
    }
    return false;
}

/* A url() in `v`, whatever its case, that does not point inside the image. */
static bool url_outside(const xmlChar *v)
{
    size_t len;
    char *low;
    bool bad;

    if (!xmlStrcasestr(v, BAD_CAST "url("))
        return false;
    len = (size_t)xmlStrlen(v);
    low = xmalloc(st_add(len, 1));
    for (size_t i = 0; i <= len; i++)
        low[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] | 0x20 : v[i]);
    bad = css_external_url(low);
    free(low);
    return bad;
}

/*
 * CSS (a style attribute, a <style> element, a presentation attribute or an
 * animated value) that could fetch something or run code. A backslash is
 * refused outright: CSS escapes can spell any of the words (u\72l(), and
 * decoding them exactly as every browser does is not worth the risk. The
 * words are looked for with and without comments: IE read expression() with
 * a comment inside the word, and in url() a comment is part of the URL, so a
 * '#' after one is no reference inside the image.
 */
static bool css_unsafe(const xmlChar *v)
{
    size_t len = (size_t)xmlStrlen(v);
    char *raw = xmalloc(st_add(len, 1)), *bare = xmalloc(st_add(len, 1));
    size_t r = 0, b = 0;
    bool bad = false;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = v[i];

        if (c == '\\')
            bad = true;
        raw[r++] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
    }
    raw[r] = '\0';
    for (size_t i = 0; i < r; i++) {
        if (raw[i] == '/' && raw[i + 1] == '*') {
            const char *end = strstr(raw + i + 2, "*/");

            if (!end)
                break;
            i = (size_t)(end - raw) + 1;
            continue;
        }
        bare[b++] = raw[i];
    }
    bare[b] = '\0';
    bad = bad || css_bad_words(raw) || css_bad_words(bare);
    free(raw);
    free(bare);
    return bad;
}

/* Whether attributeName="v" writes a link, an event handler or a style ("xlink:href" is "href"). */
static bool target_unsafe(const xmlChar *v)
{
    static const char *const targets[] = { "href", "src", "style", "base", "class", NULL };
    const xmlChar *colon = BAD_CAST strrchr((const char *)v, ':');
    xmlChar *t;
    size_t len;
    bool bad;

    v = skip_ctl(colon ? colon + 1 : v);
    len = (size_t)xmlStrlen(v);
    while (len > 0 && v[len - 1] <= 0x20)
        len--;
    t = xmlStrndup(v, (int)len);
    bad = !t || name_in(t, targets) || prefix_ci(t, "on");
    xmlFree(t);
    return bad;
}

/*
 * <set> and <animate*> can write an attribute when the image is shown:
 * dropped when they target a link, an event handler or a style, or when a
 * value they write would fetch something or is a script: URL. Plain
 * animations of geometry and colour stay. Every attributeName counts, in
 * whatever namespace, so that a decoy cannot hide the one a browser reads.
 */
static bool animation_unsafe(xmlNodePtr n)
{
    static const char *const valued[] = { "values", "to", "from", "by", NULL };
    bool bad = false;

    for (xmlAttrPtr a = n->properties; a && !bad; a = a->next) {
        xmlChar *v;
        bool target = xmlStrcasecmp(a->name, BAD_CAST "attributeName") == 0;

        if (!target && !name_in(a->name, valued))
            continue;
        v = xmlNodeListGetString(n->doc, a->children, 1);
        if (target)
            bad = !v || target_unsafe(v);
        else
            bad = v && (css_unsafe(v) || has_script_scheme(v));
        xmlFree(v);
    }
    return bad;
}

/* Whether element `n` goes, with everything inside it. */
static bool element_unsafe(xmlNodePtr n)
{
    /* code, other documents, SVG Tiny's <handler>, XML Events' <listener> */
    static const char *const always[] = { "script",   "foreignObject", "iframe", "frame",
                                          "frameset", "embed",         "object", "applet",
                                          "handler",  "listener",      "portal", NULL };

    if (name_in(n->name, always))
        return true;
    /*
     * Outside <foreignObject> HTML and MathML elements draw nothing, but a
     * browser still creates them as such (an html:script runs, an
     * html:meta refresh navigates): no badge needs them.
     */
    if (n->ns && (xmlStrEqual(n->ns->href, BAD_CAST XHTML_NS) ||
                  xmlStrEqual(n->ns->href, BAD_CAST MATHML_NS)))
        return true;
    if (xmlStrcasecmp(n->name, BAD_CAST "set") == 0 || prefix_ci(n->name, "animate"))
        return animation_unsafe(n);
    if (xmlStrcasecmp(n->name, BAD_CAST "style") == 0) {
        xmlChar *css;
        bool bad;

        /*
         * A browser reads the style sheet from the text children only, and
         * the comments and PIs between them go below: "@im<!---->port" is
         * checked joined, as xmlNodeGetContent() joins it. A child element
         * would hide its text from this check ("@im<g>x</g>port"), so a
         * style sheet with one goes whole.
         */
        for (xmlNodePtr c = n->children; c; c = c->next) {
            if (c->type == XML_ELEMENT_NODE)
                return true;
        }
        css = xmlNodeGetContent(n);
        bad = css && css_unsafe(css);
        xmlFree(css);
        return bad;
    }
    /*
     * <a> stays with its children: its href goes by the rule for every link
     * below, so an external or javascript: link is dropped and #id kept.
     */
    return false;
}

/* What happens to an attribute. */
enum attr_verdict { ATTR_KEEP, ATTR_DROP, ATTR_TRIM };

static enum attr_verdict attr_check(const xmlAttr *a, const xmlChar *v)
{
    /* presentation attributes that take a url() (a paint server, a filter, a cursor image) */
    static const char *const css_valued[] = { "style",      "fill",       "stroke", "filter",
                                              "clip-path",  "mask",       "marker", "marker-start",
                                              "marker-mid", "marker-end", "cursor", "color-profile",
                                              NULL };
    static const char *const links[] = { "href", "src", NULL };

    /* event handlers in any namespace, as image_check() sees them */
    if ((a->name[0] | 0x20) == 'o' && (a->name[1] | 0x20) == 'n')
        return ATTR_DROP;
    /* xml:base would make every relative reference, #id too, point elsewhere */
    if (a->ns && xmlStrcasecmp(a->name, BAD_CAST "base") == 0)
        return ATTR_DROP;
    /* SVG 2's <a ping="URL">: a request when the link is followed, #id or not */
    if (xmlStrcasecmp(a->name, BAD_CAST "ping") == 0)
        return ATTR_DROP;
    if (name_in(a->name, links)) {
        const xmlChar *s = skip_ctl(v);

        if (!url_allowed(s) || has_script_scheme(s))
            return ATTR_DROP;
        return s == v ? ATTR_KEEP : ATTR_TRIM;
    }
    if (name_in(a->name, css_valued) && css_unsafe(v))
        return ATTR_DROP;
    /*
     * A url() that points out of the image in any other attribute: none that
     * a badge needs holds one, and a browser may read more attributes as CSS
     * than the list above (SVG 2 maps every presentation attribute to its
     * property).
     */
    if (url_outside(v))
        return ATTR_DROP;
    return has_script_scheme(v) ? ATTR_DROP : ATTR_KEEP;
}

/*
 * What a walk removed: how many parts (elements, attributes, processing
 * instructions), and the first of them, for a refusal's message.
 */
struct sweep {
    size_t removed;
    char first[128];
};

static void swept(struct sweep *sw, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void swept(struct sweep *sw, const char *fmt, ...)
{
    va_list ap;

    if (sw->removed++ == 0) {
        va_start(ap, fmt);
        vsnprintf(sw->first, sizeof(sw->first), fmt, ap);
        va_end(ap);
    }
}

static int sanitize_attributes(xmlNodePtr n, struct sweep *sw, struct err *err)
{
    xmlAttrPtr a, next;

    for (a = n->properties; a; a = next) {
        xmlChar *v;
        enum attr_verdict verdict;

        next = a->next;
        for (xmlNodePtr c = a->children; c; c = c->next) {
            if (c->type == XML_ENTITY_REF_NODE)
                return err_set(err, ERR_INVALID, "an SVG badge image may not use entities");
        }
        v = xmlNodeListGetString(n->doc, a->children, 1);
        verdict = attr_check(a, v ? v : BAD_CAST "");
        if (verdict == ATTR_DROP) {
            swept(sw, "the attribute '%.40s' of <%.40s>", (const char *)a->name,
                  (const char *)n->name);
            xmlRemoveProp(a);
        } else if (verdict == ATTR_TRIM) {
            /* image_check() wants the '#' first; the URL is the same */
            xmlSetNsProp(n, a->ns, a->name, skip_ctl(v));
        }
        xmlFree(v);
    }
    return 0;
}

static void drop_node(xmlNodePtr n)
{
    xmlUnlinkNode(n);
    xmlFreeNode(n);
}

/* Walks a list of siblings, dropping what is unsafe; `sw` counts it. */
static int sanitize_nodes(xmlNodePtr n, int depth, struct sweep *sw, struct err *err)
{
    xmlNodePtr next;

    if (depth > LIMIT_SVG_DEPTH)
        return err_set(err, ERR_INVALID, "the SVG image is nested too deeply");
    for (; n; n = next) {
        next = n->next;
        switch (n->type) {
        case XML_ELEMENT_NODE:
            break;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
            continue;
        case XML_ENTITY_REF_NODE:
            return err_set(err, ERR_INVALID, "an SVG badge image may not use entities");
        case XML_COMMENT_NODE:
            /* inert, so not counted in *removed: Inkscape writes one into every file */
            drop_node(n);
            continue;
        default:
            /* processing instructions (xml-stylesheet), and anything else unexpected */
            swept(sw, "a processing instruction");
            drop_node(n);
            continue;
        }
        if (element_unsafe(n)) {
            swept(sw, "<%.40s>", (const char *)n->name);
            drop_node(n);
            continue;
        }
        if (sanitize_attributes(n, sw, err) < 0 ||
            sanitize_nodes(n->children, depth + 1, sw, err) < 0)
            return -1;
    }
    return 0;
}

int image_svg_sanitize(const unsigned char *svg, size_t len, struct buf *out, size_t *removed,
                       struct err *err)
{
    xmlDocPtr doc;
    xmlChar *mem = NULL;
    int size = 0;
    struct sweep sw = { 0, "" };
    bool dropped = false;
    int ret = -1;

    if (removed)
        *removed = 0;
    if (len > LIMIT_BADGE_IMAGE_BYTES)
        return err_set(err, ERR_TOOBIG, "a badge image is at most %d KiB",
                       LIMIT_BADGE_IMAGE_BYTES / 1024);
    doc = svg_parse(svg, len, true, &dropped, err);
    if (!doc)
        return -1;
    if (dropped)
        swept(&sw, "a DOCTYPE");
    /* from the document's children: the root, and comments or PIs before and after it */
    if (sanitize_nodes(doc->children, 0, &sw, err) < 0)
        goto out;
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    if (!mem || size <= 0) {
        err_set(err, ERR_INTERNAL, "writing the sanitized SVG failed");
        goto out;
    }
    /* escaping can make the output longer than the input; it must still be a valid badge image */
    if ((size_t)size > LIMIT_BADGE_IMAGE_BYTES) {
        err_set(err, ERR_TOOBIG, "the sanitized SVG image is over %d KiB",
                LIMIT_BADGE_IMAGE_BYTES / 1024);
        goto out;
    }
    if (buf_add(out, mem, (size_t)size) < 0) {
        buf_check(out, "the sanitized SVG image", err);
        goto out;
    }
    if (removed)
        *removed = sw.removed;
    ret = 0;
out:
    xmlFree(mem);
    xmlFreeDoc(doc);
    return ret;
}

/*
 * A refusal of something that does not even start like XML says what is
 * expected rather than what libxml2 found (the error `err` holds stays
 * otherwise).
 */
static int not_an_image(const unsigned char *img, size_t len, struct err *err)
{
    size_t i = 0;

    if (len >= 3 && memcmp(img, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < len && (img[i] == ' ' || img[i] == '\t' || img[i] == '\r' || img[i] == '\n'))
        i++;
    if (err->code == ERR_INVALID && (i == len || img[i] != '<')) {
        err_clear(err);
        err_set(err, ERR_INVALID, IMAGE_NEITHER);
    }
    return -1;
}

/*
 * An SVG passes when the sanitizer's walk would remove nothing from it: one
 * rule for what is stored, whichever way the image came. It is refused, not
 * repaired, here; image_for_badge() repairs.
 */
static int svg_check(const unsigned char *img, size_t len, struct err *err)
{
    xmlDocPtr doc = svg_parse(img, len, false, NULL, err);
    struct sweep sw = { 0, "" };
    int ret;

    if (!doc)
        return not_an_image(img, len, err);
    ret = sanitize_nodes(doc->children, 0, &sw, err);
    xmlFreeDoc(doc);
    if (ret == 0 && sw.removed)
        ret = err_set(err, ERR_INVALID,
                      "the SVG image has %zu part%s that could run code or load other files "
                      "(the first: %s)",
                      sw.removed, sw.removed == 1 ? "" : "s", sw.first);
    return ret;
}

int image_check(const unsigned char *img, size_t len, const char **type, struct err *err)
{
    *type = NULL;
    if (len == 0)
        return err_set(err, ERR_INVALID, "the image is empty");
    if (len > LIMIT_BADGE_IMAGE_BYTES)
        return err_set(err, ERR_TOOBIG, "a badge image is at most %d KiB",
                       LIMIT_BADGE_IMAGE_BYTES / 1024);
    if (len >= 8 && memcmp(img, png_sig, 8) == 0) {
        png_image pi;
        png_bytep px;

        if (png_decode(img, len, &pi, &px, err) < 0)
            return -1;
        free(px);
        png_image_free(&pi);
        *type = "image/png";
        return 0;
    }
    if (svg_check(img, len, err) < 0)
        return -1;
    *type = "image/svg+xml";
    return 0;
}

int image_for_badge(const unsigned char *img, size_t len, struct buf *out, const char **type,
                    size_t *removed, struct err *err)
{
    buf_reset(out);
    *type = NULL;
    *removed = 0;
    if (len == 0)
        return err_set(err, ERR_INVALID, "the image is empty");
    if (len >= 8 && memcmp(img, png_sig, 8) == 0) {
        if (image_check(img, len, type, err) < 0)
            return -1;
        if (buf_add(out, img, len) < 0)
            return buf_check(out, "the badge image", err);
        return 0;
    }
    if (image_svg_sanitize(img, len, out, removed, err) < 0)
        return not_an_image(img, len, err);
    /* what the sanitizer wrote passes the check by construction; checked all the same */
    if (image_check((const unsigned char *)out->ptr, out->len, type, err) < 0) {
        buf_reset(out);
        *removed = 0;
        return -1;
    }
    return 0;
}
