/*
 * backends/bake.c - checking badge images and baking assertions into them
 * (Open Badges 2.0 "Baking":
 * https://www.imsglobal.org/sites/default/files/Badges/OBv2p0Final/baking/).
 *
 * PNG through libpng: the image is decoded and written again with one iTXt
 * chunk, keyword "openbadges", holding the assertion URL (uncompressed, as
 * the specification asks); any earlier openbadges chunk is gone with the
 * rest of the old file. SVG through libxml2 with the network and entity
 * expansion off: an <openbadges:assertion verify="URL"/> element becomes the
 * first child of <svg>. Images are refused, not repaired, when they do not
 * decode or carry anything active (script, foreignObject, event handlers,
 * javascript: links).
 */
#include "base/base.h"
#include "backends/backends.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <png.h>

#define OB_NS  "http://openbadges.org"
#define SVG_NS "http://www.w3.org/2000/svg"

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

int backend_bake_png(const unsigned char *png, size_t len, const char *assertion_url,
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

static xmlDocPtr svg_parse(const unsigned char *svg, size_t len, struct err *err)
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
    if (doc->intSubset || doc->extSubset) {
        xmlFreeDoc(doc);
        err_set(err, ERR_INVALID, "an SVG badge image may not have a DOCTYPE");
        return NULL;
    }
    return doc;
}

static bool starts_with_ci(const xmlChar *v, const char *prefix)
{
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
        v++;
    for (; *prefix; prefix++, v++) {
        if (!*v || (*v | 0x20) != (unsigned char)*prefix)
            return false;
    }
    return true;
}

/* Refuses anything in the SVG that could run code or reach out when it is shown. */
static int svg_check_node(xmlNodePtr n, int depth, struct err *err)
{
    if (depth > 64)
        return err_set(err, ERR_INVALID, "the SVG image is nested too deeply");
    for (; n; n = n->next) {
        if (n->type == XML_ENTITY_REF_NODE)
            return err_set(err, ERR_INVALID, "an SVG badge image may not use entities");
        if (n->type == XML_PI_NODE)
            return err_set(err, ERR_INVALID,
                           "an SVG badge image may not have processing instructions");
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrcasecmp(n->name, BAD_CAST "script") == 0 ||
            xmlStrcasecmp(n->name, BAD_CAST "foreignObject") == 0 ||
            xmlStrcasecmp(n->name, BAD_CAST "iframe") == 0 ||
            xmlStrcasecmp(n->name, BAD_CAST "embed") == 0 ||
            xmlStrcasecmp(n->name, BAD_CAST "object") == 0)
            return err_set(err, ERR_INVALID, "an SVG badge image may not contain <%s>",
                           (const char *)n->name);
        for (xmlAttrPtr a = n->properties; a; a = a->next) {
            xmlChar *v;
            bool bad;

            if ((a->name[0] | 0x20) == 'o' && (a->name[1] | 0x20) == 'n')
                return err_set(err, ERR_INVALID,
                               "an SVG badge image may not have event handlers (%s)",
                               (const char *)a->name);
            if (!xmlStrEqual(a->name, BAD_CAST "href") && !xmlStrEqual(a->name, BAD_CAST "src"))
                continue;
            v = xmlNodeListGetString(n->doc, a->children, 1);
            /* only references inside the image itself, and embedded data: no fetches */
            bad = v && !(v[0] == '#' || starts_with_ci(v, "data:image/"));
            xmlFree(v);
            if (bad)
                return err_set(err, ERR_INVALID, "an SVG badge image may only link inside itself");
        }
        if (svg_check_node(n->children, depth + 1, err) < 0)
            return -1;
    }
    return 0;
}

int backend_bake_check_image(const unsigned char *img, size_t len, const char **type,
                             struct err *err)
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
    } else {
        xmlDocPtr doc = svg_parse(img, len, err);
        int ret;

        if (!doc) {
            if (err->code == ERR_INVALID && strstr(err->msg, "well-formed"))
                err_set(err, ERR_INVALID, "a badge image must be a PNG or an SVG file");
            return -1;
        }
        ret = svg_check_node(xmlDocGetRootElement(doc), 0, err);
        xmlFreeDoc(doc);
        if (ret == 0)
            *type = "image/svg+xml";
        return ret;
    }
}

int backend_bake_svg(const unsigned char *svg, size_t len, const char *assertion_url,
                     unsigned char **out, size_t *out_len, struct err *err)
{
    xmlDocPtr doc = svg_parse(svg, len, err);
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
