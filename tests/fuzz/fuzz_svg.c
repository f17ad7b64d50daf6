/*
 * tests/fuzz/fuzz_svg.c - SVG badge images (backends/bake.c): the
 * sanitizer uploads go through (image_svg_sanitize), the check every
 * stored image passes (image_check, also the CLI's), and
 * baking an assertion into an SVG.
 *
 * Promises checked: what the sanitizer writes passes the check; sanitizing
 * it again removes nothing (a document that changes when it is written out
 * and read again would be a way past the sanitizer); it bakes, and the
 * baked image passes the check too.
 */
#include "tests/fuzz/fuzz.h"
#include "images/images.h"

#include <libxml/parser.h>

static const char assertion_url[] = "https://badges.example.edu/ob/v2/assertions/fuzz";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    xmlInitParser();
    return 0;
}

static void sanitized(const struct buf *out)
{
    struct err err = ERR_INIT;
    struct buf again = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    const char *type = NULL;
    size_t removed = 0, baked_len = 0;
    unsigned char *baked = NULL;

    if (image_check((const unsigned char *)out->ptr, out->len, &type, &err) < 0) {
        fprintf(stderr, "the sanitized image fails the check (%s):\n%.*s\n", err.msg, (int)out->len,
                out->ptr);
        FUZZ_CHECK(!"the sanitized image passes the check");
    }
    FUZZ_CHECK(strcmp(type, "image/svg+xml") == 0);
    if (image_svg_sanitize((const unsigned char *)out->ptr, out->len, &again, &removed, &err) < 0 ||
        removed != 0) {
        fprintf(stderr, "sanitizing the sanitized image again: %s, %zu removed:\n%.*s\n",
                err.msg[0] ? err.msg : "ok", removed, (int)out->len, out->ptr);
        FUZZ_CHECK(!"the sanitized image is clean");
    }
    FUZZ_CHECK(image_bake_svg((const unsigned char *)out->ptr, out->len, assertion_url, &baked,
                              &baked_len, &err) == 0);
    if (baked_len <= LIMIT_BADGE_IMAGE_BYTES)
        FUZZ_CHECK(image_check(baked, baked_len, &type, &err) == 0);
    free(baked);
    buf_release(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err err = ERR_INIT;
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    const char *type = NULL;
    size_t removed = 0;

    if (image_svg_sanitize(data, size, &out, &removed, &err) == 0)
        sanitized(&out);
    else
        FUZZ_CHECK(err.code == ERR_INVALID || err.code == ERR_TOOBIG);
    err_clear(&err);
    if (image_check(data, size, &type, &err) == 0 && strcmp(type, "image/svg+xml") == 0) {
        unsigned char *baked = NULL;
        size_t baked_len = 0;

        FUZZ_CHECK(image_bake_svg(data, size, assertion_url, &baked, &baked_len, &err) == 0);
        free(baked);
    }
    buf_release(&out);
    return 0;
}
