/*
 * images/draw.c - draws a few flat shapes into a PNG (libpng's simplified
 * write API), for the images ltibadges makes itself: the default badge
 * image as a PNG beside its SVG (awards/rules.c), for platforms that take
 * no SVG (Open Badge Factory's API v1).
 *
 * Debian packages no small SVG renderer (librsvg brings cairo, pango and
 * glib), and our own drawings are a handful of polygons, circles and
 * round-capped strokes, so they are described once as shapes and filled
 * here: each pixel is sampled on a 4 x 4 grid, the share of samples a shape
 * covers is its coverage, and shapes are laid over each other in order
 * (premultiplied "over", then straight alpha for the PNG). Polygons follow
 * the even-odd rule, which is SVG's nonzero rule for the simple polygons
 * drawn here.
 */
#include "base/base.h"
#include "images/images.h"

#include <png.h>

/* samples per pixel, each way */
#define GRID 4

static bool in_polygon(const float *p, size_t n, float x, float y)
{
    bool in = false;

    for (size_t i = 0, j = n - 1; i < n; j = i++) {
        float xi = p[2 * i], yi = p[2 * i + 1], xj = p[2 * j], yj = p[2 * j + 1];

        if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi)
            in = !in;
    }
    return in;
}

/* The squared distance from (x, y) to the segment a-b. */
static float dist2_segment(float ax, float ay, float bx, float by, float x, float y)
{
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, t = 0;

    if (len2 > 0) {
        t = ((x - ax) * dx + (y - ay) * dy) / len2;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
    }
    dx = ax + t * dx - x;
    dy = ay + t * dy - y;
    return dx * dx + dy * dy;
}

static bool inside(const struct image_shape *s, float x, float y)
{
    switch (s->kind) {
    case IMAGE_POLYGON:
        return in_polygon(s->points, s->npoints, x, y);
    case IMAGE_CIRCLE:
        return (x - s->points[0]) * (x - s->points[0]) + (y - s->points[1]) * (y - s->points[1]) <=
               s->size * s->size;
    case IMAGE_STROKE:
        /* round caps and joins: within half the width of any segment */
        for (size_t i = 0; i + 1 < s->npoints; i++) {
            if (dist2_segment(s->points[2 * i], s->points[2 * i + 1], s->points[2 * i + 2],
                              s->points[2 * i + 3], x, y) <= s->size * s->size / 4)
                return true;
        }
        return false;
    }
    return false;
}

static bool shape_ok(const struct image_shape *s)
{
    switch (s->kind) {
    case IMAGE_POLYGON:
        return s->points && s->npoints >= 3;
    case IMAGE_CIRCLE:
        return s->points && s->npoints == 1 && s->size > 0;
    case IMAGE_STROKE:
        return s->points && s->npoints >= 2 && s->size > 0;
    }
    return false;
}

int image_draw_png(const struct image_shape *shapes, size_t n, unsigned width, unsigned height,
                   struct buf *out, struct err *err)
{
    png_image img;
    png_alloc_size_t size = 0;
    float *acc = NULL; /* premultiplied r, g, b, a per pixel, 0..1 */
    unsigned char *px = NULL;
    char *dst;
    size_t before = out->len;
    int ret = -1;

    if (width == 0 || height == 0 || width > LIMIT_BADGE_IMAGE_PIXELS ||
        height > LIMIT_BADGE_IMAGE_PIXELS)
        return err_set(err, ERR_INVALID, "a badge image is at most %d pixels wide and high",
                       LIMIT_BADGE_IMAGE_PIXELS);
    for (size_t i = 0; i < n; i++) {
        if (!shape_ok(&shapes[i]))
            return err_set(err, ERR_INVALID, "shape %zu of the drawing is malformed", i + 1);
    }
    acc = xcalloc(st_mult((size_t)width * height, 4), sizeof(*acc));
    for (unsigned y = 0; y < height; y++) {
        for (unsigned x = 0; x < width; x++) {
            float *a = acc + ((size_t)y * width + x) * 4;

            for (size_t i = 0; i < n; i++) {
                const struct image_shape *s = &shapes[i];
                float cover = 0;

                for (int sy = 0; sy < GRID; sy++) {
                    for (int sx = 0; sx < GRID; sx++)
                        cover +=
                            inside(s, (float)x + (sx + 0.5f) / GRID, (float)y + (sy + 0.5f) / GRID);
                }
                if (cover == 0)
                    continue;
                cover /= GRID * GRID;
                a[0] = (float)((s->rgb >> 16) & 0xff) / 255 * cover + a[0] * (1 - cover);
                a[1] = (float)((s->rgb >> 8) & 0xff) / 255 * cover + a[1] * (1 - cover);
                a[2] = (float)(s->rgb & 0xff) / 255 * cover + a[2] * (1 - cover);
                a[3] = cover + a[3] * (1 - cover);
            }
        }
    }
    px = xmalloc(st_mult((size_t)width * height, 4));
    for (size_t i = 0; i < (size_t)width * height; i++) {
        const float *a = acc + i * 4;

        for (int c = 0; c < 3; c++)
            px[i * 4 + c] = a[3] > 0 ? (unsigned char)(a[c] / a[3] * 255 + 0.5f) : 0;
        px[i * 4 + 3] = (unsigned char)(a[3] * 255 + 0.5f);
    }
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    img.width = width;
    img.height = height;
    img.format = PNG_FORMAT_RGBA;
    /* the first call sizes the PNG, the second writes it */
    if (!png_image_write_to_memory(&img, NULL, &size, 0, px, 0, NULL)) {
        err_set(err, ERR_INTERNAL, "drawing a PNG failed: %s", img.message);
        goto out;
    }
    dst = buf_append_space(out, size);
    if (!dst) {
        err_set(err, ERR_TOOBIG, "the drawn PNG is over its cap");
        goto out;
    }
    if (!png_image_write_to_memory(&img, dst, &size, 0, px, 0, NULL)) {
        err_set(err, ERR_INTERNAL, "drawing a PNG failed: %s", img.message);
        goto out;
    }
    /* the same image twice: the same size, but the buffer holds what was written */
    out->len = before + size;
    out->ptr[out->len] = '\0';
    ret = 0;
out:
    if (ret < 0 && out->len > before) {
        out->len = before;
        out->ptr[out->len] = '\0';
    }
    png_image_free(&img);
    free(px);
    free(acc);
    return ret;
}
