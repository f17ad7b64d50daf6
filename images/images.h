/*
 * images/images.h - badge images: checking an upload, sanitizing SVG, and
 * baking an assertion URL into a PNG or SVG (bake.c).
 */
#ifndef IMAGES_IMAGES_H
#define IMAGES_IMAGES_H

#include "base/base.h"

/* What image_for_badge() says of an upload that is neither (not even broken) PNG nor SVG. */
#define IMAGE_NEITHER "the image is neither PNG nor SVG"

/* ---- baking (bake.c) ------------------------------------------------------ */

/*
 * Bakes an assertion URL into a badge image: a PNG gets an iTXt chunk with
 * keyword "openbadges" (libpng), an SVG an <openbadges:assertion verify=URL>
 * element (libxml2). `*out` is malloc'd. ERR_INVALID for an image that does
 * not decode.
 */
int image_bake_png(const unsigned char *png, size_t len, const char *assertion_url,
                   unsigned char **out, size_t *out_len, struct err *err);
int image_bake_svg(const unsigned char *svg, size_t len, const char *assertion_url,
                   unsigned char **out, size_t *out_len, struct err *err);
/*
 * Checks an image before it is stored: a PNG that decodes within
 * LIMIT_BADGE_IMAGE_PIXELS, or an SVG from which image_svg_sanitize()
 * would remove nothing (the same rule, refusing instead of repairing: the
 * message names how many parts and the first one); at most
 * LIMIT_BADGE_IMAGE_BYTES. Sets *type to image/png or image/svg+xml.
 */
int image_check(const unsigned char *img, size_t len, const char **type /* OUT */, struct err *err);
/*
 * The one way an image becomes a badge image, whoever brings it (the
 * editor's upload, `badge create --image`, `badge set --image`): a PNG is
 * checked and copied as it is; an SVG is sanitized by image_svg_sanitize()
 * and the result checked. Replaces `out`'s contents with the image to
 * store, sets *type and *removed (what the sanitizer removed; 0 for a PNG).
 * ERR_INVALID (neither a PNG nor an SVG, a PNG that does not decode or is
 * too large in pixels, an SVG the sanitizer refuses), ERR_TOOBIG (over
 * LIMIT_BADGE_IMAGE_BYTES, before or after sanitizing, or `out` full); on
 * error `out` is empty and *removed 0.
 */
int image_for_badge(const unsigned char *img, size_t len, struct buf *out,
                    const char **type /* OUT */, size_t *removed /* OUT */, struct err *err);
/*
 * Sanitizes an SVG badge image uploaded by an instructor: parses it with
 * libxml2 (no network, no entity expansion, no DOCTYPE) and removes
 * everything that could run code or fetch something when it is shown,
 * keeping the rest of the drawing. Names are compared case-insensitively on
 * their local part, whatever the namespace prefix. Removed:
 *  - elements, with their content: script, foreignObject, iframe, frame,
 *    frameset, embed, object, applet, handler, listener, portal; every
 *    XHTML and MathML element; <set> and <animate*> that target href, src,
 *    style, class, xml:base or an on* attribute, or write a value that
 *    fails the CSS rule below or holds a script: URL; <style> whose text
 *    fails the CSS rule, or that has child elements;
 *  - attributes: on* handlers; xml:base; ping; href and src (xlink: too)
 *    unless, after leading whitespace and control characters, they are
 *    "#id" or a data:image/png, jpeg, gif or webp URL (the leading
 *    whitespace is then trimmed); style and the url()-taking presentation
 *    attributes (fill, stroke, filter, clip-path, mask, marker*, cursor,
 *    color-profile) that fail the CSS rule; any other attribute with a
 *    url() other than url(#id); any attribute holding "script:"
 *    (javascript:, vbscript:) once whitespace is taken out;
 *  - processing instructions (xml-stylesheet) and comments.
 * The CSS rule refuses a backslash, url() other than url(#id), @import,
 * expression(), image-set(), image(), src(), behavior, -moz-binding and
 * script:. <a> stays with its children; only its link goes when external.
 * Appends the cleaned document (UTF-8, XML declaration, no DOCTYPE) to
 * `out`, which then passes image_check(); *removed gets the
 * number of elements, attributes and processing instructions dropped
 * (comments are not counted). ERR_TOOBIG when `len` or the output is over
 * LIMIT_BADGE_IMAGE_BYTES, or `out` is full; ERR_INVALID when the input is
 * not a well-formed SVG document (root <svg> in the SVG namespace), has a
 * DOCTYPE that declares anything (one that declares nothing, as drawing
 * programs write, is dropped and counted as removed) or entity references, or nests elements more
 * than 64 deep (the root counting as one). On error nothing is appended to `out` (marked full when
 * its cap was the reason) and *removed is 0.
 */
int image_svg_sanitize(const unsigned char *svg, size_t len, struct buf *out,
                       size_t *removed /* OUT, may be NULL */, struct err *err);

/* ---- drawing (draw.c) ------------------------------------------------------ */

enum image_shape_kind {
    IMAGE_POLYGON, /* `points` its corners (at least 3), filled */
    IMAGE_CIRCLE,  /* `points` its centre (1), `size` its radius */
    IMAGE_STROKE,  /* `points` a line through them (at least 2), `size` wide, round ends */
};

/* One flat shape in pixel coordinates (as an SVG viewBox the size of the image). */
struct image_shape {
    enum image_shape_kind kind;
    uint32_t rgb;        /* 0xRRGGBB, opaque */
    const float *points; /* x0, y0, x1, y1, ...: 2 * npoints floats, borrowed */
    size_t npoints;
    float size;
};

/*
 * Draws `shapes` in order, each over the ones before, on a transparent
 * `width` x `height` canvas, anti-aliased (16 samples a pixel), and
 * appends the PNG (8-bit RGBA) to `out`. ERR_INVALID for a size of 0 or
 * over LIMIT_BADGE_IMAGE_PIXELS or a malformed shape (too few points, no
 * size), ERR_TOOBIG when `out` is full; on error `out` is as it was.
 */
int image_draw_png(const struct image_shape *shapes, size_t n, unsigned width, unsigned height,
                   struct buf *out, struct err *err);

#endif
