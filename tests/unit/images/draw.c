/*
 * tests/unit/images/draw.c - image_draw_png: the PNG decodes (libpng's
 * reader, not the writer's own idea of it) to the size asked, each shape's
 * colour where it is drawn and nothing where none is, later shapes over
 * earlier ones, anti-aliased edges; sizes at 1, max and max + 1; malformed
 * shapes and a full buffer refused with `out` as it was.
 */
#include "base/base.h"
#include "images/images.h"

#include <png.h>

#include <setjmp.h>
#include <cmocka.h>

struct decoded {
    png_image img;
    unsigned char *px;
};

static void decode(const struct buf *b, struct decoded *d)
{
    memset(d, 0, sizeof(*d));
    d->img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&d->img, b->ptr, b->len));
    d->img.format = PNG_FORMAT_RGBA;
    d->px = malloc(PNG_IMAGE_SIZE(d->img));
    assert_non_null(d->px);
    assert_true(png_image_finish_read(&d->img, NULL, d->px, 0, NULL));
}

static uint32_t rgba_at(const struct decoded *d, unsigned x, unsigned y)
{
    const unsigned char *p = d->px + ((size_t)y * d->img.width + x) * 4;

    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const float square[] = { 10, 10, 30, 10, 30, 30, 10, 30 };
static const float centre[] = { 30, 30 };
static const float line[] = { 0, 50, 60, 50 };

static void draws_shapes_in_order(void **state)
{
    const struct image_shape shapes[] = {
        { IMAGE_POLYGON, 0x102030, square, 4, 0 },
        { IMAGE_CIRCLE, 0xff8000, centre, 1, 8 },
        { IMAGE_STROKE, 0x00ff00, line, 2, 6 },
    };
    struct buf out = BUF_INIT(1 << 20);
    struct err err = ERR_INIT;
    struct decoded d;

    (void)state;
    assert_int_equal(image_draw_png(shapes, 3, 64, 60, &out, &err), 0);
    decode(&out, &d);
    assert_int_equal(d.img.width, 64);
    assert_int_equal(d.img.height, 60);
    assert_int_equal(rgba_at(&d, 15, 15), 0x102030ff);  /* the square */
    assert_int_equal(rgba_at(&d, 27, 27), 0xff8000ff);  /* the circle, over the square */
    assert_int_equal(rgba_at(&d, 36, 30), 0xff8000ff);  /* the circle alone */
    assert_int_equal(rgba_at(&d, 5, 50), 0x00ff00ff);   /* the stroke */
    assert_int_equal(rgba_at(&d, 63, 50) & 0xff, 0x00); /* past its round end (60 + 3) */
    assert_int_equal(rgba_at(&d, 2, 2), 0x00000000);    /* nothing: transparent */
    assert_int_equal(rgba_at(&d, 50, 20), 0x00000000);
    /* the circle's edge at 45 degrees (35.66, 35.66) is partly covered: its colour, partly opaque
     */
    assert_int_equal(rgba_at(&d, 35, 35) >> 8, 0xff8000);
    assert_in_range(rgba_at(&d, 35, 35) & 0xff, 1, 0xfe);
    free(d.px);
    png_image_free(&d.img);
    buf_release(&out);
}

static void sizes_at_the_limits(void **state)
{
    struct buf out = BUF_INIT(64 << 20);
    struct err err = ERR_INIT;
    struct decoded d;

    (void)state;
    assert_int_equal(image_draw_png(NULL, 0, 1, 1, &out, &err), 0);
    decode(&out, &d);
    assert_int_equal(d.img.width, 1);
    free(d.px);
    png_image_free(&d.img);
    buf_reset(&out);
    assert_int_equal(image_draw_png(NULL, 0, LIMIT_BADGE_IMAGE_PIXELS, 1, &out, &err), 0);
    assert_int_equal(image_draw_png(NULL, 0, 1, LIMIT_BADGE_IMAGE_PIXELS, &out, &err), 0);
    buf_reset(&out);
    for (int i = 0; i < 3; i++) {
        unsigned w = i == 0 ? 0 : i == 1 ? LIMIT_BADGE_IMAGE_PIXELS + 1 : 1;
        unsigned h = i == 2 ? LIMIT_BADGE_IMAGE_PIXELS + 1 : 1;

        err_clear(&err);
        assert_int_equal(image_draw_png(NULL, 0, w, h, &out, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        assert_string_equal(err.msg, "a badge image is at most 2048 pixels wide and high");
        assert_int_equal(out.len, 0);
    }
    buf_release(&out);
}

static void malformed_and_full_refused(void **state)
{
    const struct image_shape bad[] = {
        { IMAGE_POLYGON, 0, square, 2, 0 },
        { IMAGE_CIRCLE, 0, centre, 1, 0 },
        { IMAGE_STROKE, 0, line, 1, 3 },
        { IMAGE_POLYGON, 0, NULL, 4, 0 },
    };
    struct buf out = BUF_INIT(200);
    struct err err = ERR_INIT;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&err);
        assert_int_equal(image_draw_png(&bad[i], 1, 8, 8, &out, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
    }
    /* a PNG that does not fit: nothing of it stays */
    buf_addstr(&out, "kept");
    err_clear(&err);
    assert_int_equal(image_draw_png(NULL, 0, 1024, 1024, &out, &err), -1);
    assert_int_equal(err.code, ERR_TOOBIG);
    assert_int_equal(out.len, 4);
    assert_string_equal(out.ptr, "kept");
    buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(draws_shapes_in_order),
        cmocka_unit_test(sizes_at_the_limits),
        cmocka_unit_test(malformed_and_full_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
