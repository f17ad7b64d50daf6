/*
 * tests/fuzz/fuzz_png.c - badge images as PNG (backends/bake.c): the check
 * an uploaded image passes before it is stored (libpng decodes it), and
 * baking an assertion URL into it when an award's image is served.
 *
 * A mutated PNG nearly always fails its chunks' CRCs, and libpng stops at
 * the first: the target tries each input twice, as it is and with every
 * chunk's CRC computed again, so that the mutations reach the decoder.
 *
 * Promises checked: an image that passes the check bakes; the baked image
 * passes the check again, as a PNG, and carries the assertion URL.
 */
#include "tests/fuzz/fuzz.h"
#include "images/images.h"

#include <zlib.h>

static const char assertion_url[] = "https://badges.example.edu/ob/v2/assertions/fuzz";

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A copy of the input with each whole chunk's CRC made right; NULL when it is not a PNG. */
static uint8_t *fix_crcs(const uint8_t *data, size_t size)
{
    uint8_t *c;
    size_t off = 8;

    if (size < 8 || memcmp(data, "\x89PNG\r\n\x1a\n", 8) != 0)
        return NULL;
    c = xmalloc(size);
    memcpy(c, data, size);
    while (size - off >= 12) {
        uint32_t len = be32(c + off);
        uint32_t crc;

        if (len > size - off - 12)
            break;
        crc = (uint32_t)crc32(0, c + off + 4, len + 4);
        c[off + 8 + len] = (uint8_t)(crc >> 24);
        c[off + 9 + len] = (uint8_t)(crc >> 16);
        c[off + 10 + len] = (uint8_t)(crc >> 8);
        c[off + 11 + len] = (uint8_t)crc;
        off += 12 + (size_t)len;
    }
    return c;
}

static void one(const uint8_t *img, size_t size)
{
    struct err err = ERR_INIT;
    const char *type = NULL;
    unsigned char *baked = NULL;
    size_t baked_len = 0;

    if (image_check(img, size, &type, &err) < 0) {
        FUZZ_CHECK(err.code == ERR_INVALID || err.code == ERR_TOOBIG);
        return;
    }
    if (strcmp(type, "image/png") != 0)
        return; /* an SVG: fuzz_svg's */
    FUZZ_CHECK(image_bake_png(img, size, assertion_url, &baked, &baked_len, &err) == 0);
    type = NULL;
    if (baked_len <= LIMIT_BADGE_IMAGE_BYTES) {
        FUZZ_CHECK(image_check(baked, baked_len, &type, &err) == 0);
        FUZZ_CHECK(strcmp(type, "image/png") == 0);
    }
    FUZZ_CHECK(memmem(baked, baked_len, assertion_url, strlen(assertion_url)) != NULL);
    free(baked);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed;

    if (size > LIMIT_BADGE_IMAGE_BYTES)
        return 0;
    one(data, size);
    fixed = fix_crcs(data, size);
    if (fixed && memcmp(fixed, data, size) != 0)
        one(fixed, size);
    free(fixed);
    return 0;
}
