/*
 * tests/unit/base/buf.c - bounded buffers: the cap at max and max+1, the
 * sticky failure, formatting, hex, detach.
 */
#include "base/base.h"

#include <setjmp.h>
#include <cmocka.h>

static void cap_at_max_and_over(void **state)
{
    struct buf b = BUF_INIT(8);
    struct err err = ERR_INIT;

    assert_int_equal(buf_addstr(&b, "12345678"), 0); /* exactly max */
    assert_int_equal(b.len, 8);
    assert_string_equal(b.ptr, "12345678");
    assert_int_equal(buf_check(&b, "thing", &err), 0);
    assert_int_equal(buf_addch(&b, 'x'), -1); /* max + 1 */
    assert_int_equal(b.len, 8);               /* nothing appended */
    assert_true(b.toobig);
    assert_int_equal(buf_check(&b, "thing", &err), -1);
    assert_int_equal(err.code, ERR_TOOBIG);
    assert_string_equal(err.msg, "thing is larger than 8 bytes");
    buf_release(&b);
}

static void sticky_until_reset(void **state)
{
    struct buf b = BUF_INIT(4);

    assert_int_equal(buf_addstr(&b, "abcdef"), -1);
    assert_int_equal(buf_addstr(&b, "a"), -1); /* sticky even though it would fit */
    buf_reset(&b);
    assert_int_equal(buf_addstr(&b, "a"), 0);
    assert_string_equal(b.ptr, "a");
    buf_release(&b);
}

static void formats_and_hex(void **state)
{
    struct buf b = BUF_INIT(64);
    const unsigned char bytes[] = { 0x00, 0xab, 0xff };
    size_t len;
    char *p;

    assert_string_equal(b.ptr, "");
    assert_int_equal(buf_addf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(buf_addhex(&b, bytes, 3), 0);
    assert_string_equal(b.ptr, "42-x00abff");
    assert_int_equal(buf_addf(&b, "%100s", ""), -1);
    p = buf_detach(&b, &len);
    assert_int_equal(len, 10);
    assert_string_equal(p, "42-x00abff");
    free(p);
    assert_int_equal(b.len, 0);
    buf_release(&b);
}

/* RFC 4648 section 10's vectors, and the cap. */
static void base64(void **state)
{
    static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const out[] = { "",         "Zg==",     "Zm8=",    "Zm9v",
                                       "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
    struct buf b;

    (void)state;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        buf_init(&b, 64);
        assert_int_equal(buf_addbase64(&b, in[i], strlen(in[i])), 0);
        assert_string_equal(b.ptr, out[i]);
        assert_int_equal(b.len, strlen(out[i]));
        buf_release(&b);
    }
    buf_init(&b, 7);
    assert_int_equal(buf_addbase64(&b, "foobar", 6), -1); /* 8 bytes over a cap of 7 */
    buf_release(&b);
}

static void holds_nul_bytes(void **state)
{
    struct buf b = BUF_INIT(16);

    assert_int_equal(buf_add(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.ptr, "a\0b\0", 4);
    buf_release(&b);
}

static void append_space(void **state)
{
    struct buf b = BUF_INIT(5);
    char *p = buf_append_space(&b, 3);

    assert_non_null(p);
    memcpy(p, "xyz", 3);
    assert_string_equal(b.ptr, "xyz");
    assert_null(buf_append_space(&b, 3)); /* max + 1 */
    assert_null(buf_append_space(&b, 0)); /* sticky */
    buf_reset(&b);
    assert_non_null(buf_append_space(&b, 5)); /* max */
    buf_release(&b);
}

static void arena_and_defer(void **state)
{
    struct arena a = ARENA_INIT;
    int count = 0;
    char *big;

    for (int i = 0; i < 1000; i++) {
        char *s = arena_memdupz(&a, "hello", 5);

        assert_string_equal(s, "hello");
        assert_int_equal(((uintptr_t)s) % 16, 0);
    }
    big = arena_alloc(&a, 100000);
    memset(big, 1, 100000);
    arena_defer(&a, (void (*)(void *))(void *)free, xmalloc(10));
    {
        int *c = arena_alloc(&a, sizeof(int));
        (void)c;
    }
    arena_release(&a);
    assert_int_equal(a.used, 0);
    (void)count;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cap_at_max_and_over),
        cmocka_unit_test(sticky_until_reset),
        cmocka_unit_test(formats_and_hex),
        cmocka_unit_test(holds_nul_bytes),
        cmocka_unit_test(base64),
        cmocka_unit_test(append_space),
        cmocka_unit_test(arena_and_defer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
