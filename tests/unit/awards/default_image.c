/*
 * tests/unit/awards/default_image.c - the default badge image as a PNG:
 * it decodes (libpng's reader) at AWARDS_DEFAULT_IMAGE_SIZE, with the SVG's
 * colours where the SVG draws them (the ribbons, the rim, the face, the
 * tick) and transparency around; it is drawn once; and a BadgeClass handed
 * to a backend carries it exactly when its image is the default SVG.
 */
#include "base/base.h"
#include "awards/awards_int.h"

#include <png.h>

#include <setjmp.h>
#include <cmocka.h>

static uint32_t rgba_at(const unsigned char *px, unsigned x, unsigned y)
{
    const unsigned char *p = px + ((size_t)y * AWARDS_DEFAULT_IMAGE_SIZE + x) * 4;

    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* "#rrggbb" of the SVG, opaque */
static uint32_t svg_colour(const char *hex)
{
    const char *p = strstr(awards_default_image_svg, hex);

    assert_non_null(p); /* the SVG still uses it */
    return (uint32_t)strtoul(hex + 1, NULL, 16) << 8 | 0xff;
}

static void png_of_the_default_image(void **state)
{
    const unsigned char *png = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    png_image img;
    unsigned char *px;

    (void)state;
    assert_true(awards_default_image_png(&png, &len));
    assert_non_null(png);
    assert_true(len > 100 && len <= LIMIT_BADGE_IMAGE_BYTES);
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&img, png, len));
    assert_int_equal(img.width, AWARDS_DEFAULT_IMAGE_SIZE);
    assert_int_equal(img.height, AWARDS_DEFAULT_IMAGE_SIZE);
    assert_non_null(strstr(awards_default_image_svg, "width=\"256\" height=\"256\""));
    img.format = PNG_FORMAT_RGBA;
    px = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(px);
    assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
    assert_int_equal(rgba_at(px, 100, 20), svg_colour("#1d4ed8"));  /* left ribbon */
    assert_int_equal(rgba_at(px, 152, 20), svg_colour("#2563eb"));  /* right ribbon */
    assert_int_equal(rgba_at(px, 128, 236), svg_colour("#f59e0b")); /* rim: r 84 */
    assert_int_equal(rgba_at(px, 128, 120), svg_colour("#fbbf24")); /* face: r 64 */
    assert_int_equal(rgba_at(px, 118, 182), svg_colour("#7c2d12")); /* the tick's corner */
    assert_int_equal(rgba_at(px, 140, 158), svg_colour("#7c2d12")); /* on its long arm */
    assert_int_equal(rgba_at(px, 4, 4), 0);                         /* around: transparent */
    assert_int_equal(rgba_at(px, 250, 250), 0);
    assert_int_equal(rgba_at(px, 128, 4), 0); /* between the ribbons' tops */
    free(px);
    png_image_free(&img);
    /* drawn once: the same bytes every time */
    assert_true(awards_default_image_png(&again, &len2));
    assert_ptr_equal(again, png);
    assert_int_equal(len2, len);
}

static void handed_to_backends_for_the_default_only(void **state)
{
    static const char other_svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    struct store_badge b;
    struct backend_badge bb;
    const unsigned char *png;
    size_t len;

    (void)state;
    assert_true(awards_default_image_png(&png, &len));
    memset(&b, 0, sizeof(b));
    b.slug = "course";
    b.image_type = "image/svg+xml";
    b.image = (const unsigned char *)awards_default_image_svg;
    b.image_len = strlen(awards_default_image_svg);
    awards_to_backend_badge(&b, &bb);
    assert_ptr_equal(bb.image, b.image); /* the SVG stays the image */
    assert_ptr_equal(bb.default_png, png);
    assert_int_equal(bb.default_png_len, len);
    /* another SVG, the default a byte short, or said to be a PNG: its own image only */
    b.image = (const unsigned char *)other_svg;
    b.image_len = strlen(other_svg);
    awards_to_backend_badge(&b, &bb);
    assert_null(bb.default_png);
    b.image = (const unsigned char *)awards_default_image_svg;
    b.image_len = strlen(awards_default_image_svg) - 1;
    awards_to_backend_badge(&b, &bb);
    assert_null(bb.default_png);
    b.image_len = strlen(awards_default_image_svg);
    b.image_type = "image/png";
    awards_to_backend_badge(&b, &bb);
    assert_null(bb.default_png);
    assert_int_equal(bb.default_png_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_of_the_default_image),
        cmocka_unit_test(handed_to_backends_for_the_default_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
