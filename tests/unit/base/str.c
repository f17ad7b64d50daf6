/*
 * tests/unit/base/str.c - number parsing at its bounds, views, UTF-8 at the
 * edges of each sequence length.
 */
#include "base/base.h"

#include <setjmp.h>
#include <cmocka.h>

static int parse(const char *s, int64_t min, int64_t max, int64_t *out)
{
    return str_to_i64(str_from_cstr(s), min, max, out);
}

static void numbers(void **state)
{
    int64_t v = 7;

    assert_int_equal(parse("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse("10", 0, 10, &v), 0); /* max */
    assert_int_equal(v, 10);
    v = 7;
    assert_int_equal(parse("11", 0, 10, &v), -1); /* max + 1 */
    assert_int_equal(v, 7);                       /* untouched */
    assert_int_equal(parse("-1", 0, 10, &v), -1);
    assert_int_equal(parse("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(parse("9223372036854775808", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(parse("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(parse("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(parse("", 0, 10, &v), -1);
    assert_int_equal(parse("-", 0, 10, &v), -1);
    assert_int_equal(parse(" 1", 0, 10, &v), -1);
    assert_int_equal(parse("1 ", 0, 10, &v), -1);
    assert_int_equal(parse("+1", 0, 10, &v), -1);
    assert_int_equal(parse("1e3", 0, 10000, &v), -1);
    assert_int_equal(parse("0x10", 0, 100, &v), -1);
    assert_int_equal(str_to_i64(STR_NULL, 0, 1, &v), -1);
}

static void views(void **state)
{
    struct str s = STR_LIT("  Hello\t");

    assert_true(str_eq_cstr(str_trim(s), "Hello"));
    assert_true(str_case_eq_cstr(STR_LIT("HeLLo"), "hello"));
    assert_false(str_case_eq_cstr(STR_LIT("Hell"), "hello"));
    assert_true(str_starts_with(STR_LIT("oauth_nonce"), "oauth_"));
    assert_false(str_starts_with(STR_LIT("oaut"), "oauth_"));
    assert_true(str_has_ctl((struct str){ "a\0b", 3 }));
    assert_true(str_has_ctl(STR_LIT("a\nb")));
    assert_false(str_has_ctl(STR_LIT("a\tb é")));
    assert_false(str_present(STR_NULL));
    assert_true(str_present(STR_LIT("")));
}

#define U(lit) ((struct str){ (lit), sizeof(lit) - 1 })

static void utf8(void **state)
{
    /* the smallest and largest code point of each length */
    assert_true(str_utf8_valid(STR_NULL));
    assert_true(str_utf8_valid(U("")));
    assert_true(str_utf8_valid(U("\x00\x7f")));
    assert_true(str_utf8_valid(U("\xc2\x80\xdf\xbf")));
    assert_true(str_utf8_valid(U("\xe0\xa0\x80\xef\xbf\xbf")));
    assert_true(str_utf8_valid(U("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf")));
    assert_true(str_utf8_valid(U("Ün café ☕ 🎓")));
    /* around the surrogates */
    assert_true(str_utf8_valid(U("\xed\x9f\xbf\xee\x80\x80")));
    assert_false(str_utf8_valid(U("\xed\xa0\x80")));
    assert_false(str_utf8_valid(U("\xed\xbf\xbf")));
    /* overlong forms of '/', U+07FF and U+FFFF */
    assert_false(str_utf8_valid(U("\xc0\xaf")));
    assert_false(str_utf8_valid(U("\xc1\xbf")));
    assert_false(str_utf8_valid(U("\xe0\x9f\xbf")));
    assert_false(str_utf8_valid(U("\xf0\x8f\xbf\xbf")));
    /* past U+10FFFF, and lead bytes no sequence has */
    assert_false(str_utf8_valid(U("\xf4\x90\x80\x80")));
    assert_false(str_utf8_valid(U("\xf5\x80\x80\x80")));
    assert_false(str_utf8_valid(U("\xf8\x88\x80\x80\x80")));
    assert_false(str_utf8_valid(U("\xff")));
    /* a continuation byte alone, a sequence cut short (at the end or by ASCII) */
    assert_false(str_utf8_valid(U("a\x80")));
    assert_false(str_utf8_valid(U("\xc3")));
    assert_false(str_utf8_valid(U("\xe2\x98")));
    assert_false(str_utf8_valid(U("\xf0\x9f\x8e")));
    assert_false(str_utf8_valid(U("\xe2\x61\x95"))); /* 0x61 is an ASCII a */
    /* the length is the view's, not up to a NUL */
    assert_false(str_utf8_valid((struct str){ "\xc3\xa9", 1 }));
    assert_true(str_utf8_valid((struct str){ "\xc3\xa9\xff", 2 }));
}

static void ct_equal(void **state)
{
    assert_true(util_ct_equal("abc", 3, "abc", 3));
    assert_false(util_ct_equal("abc", 3, "abd", 3));
    assert_false(util_ct_equal("abc", 3, "abcd", 4));
}

static void html_escape(void **state)
{
    struct buf b = BUF_INIT(256);

    util_html_escape(&b, STR_LIT("<a href=\"x\" onclick='y'>&amp;</a>"));
    assert_string_equal(b.ptr,
                        "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
    buf_release(&b);
}

static void slug(void **state)
{
    char out[32];

    assert_int_equal(str_slug(out, sizeof(out), 80, "Intro to Biology", "verified"), 25);
    assert_string_equal(out, "intro-to-biology-verified");
    assert_int_equal(str_slug(out, sizeof(out), 80, "  C++ / Ünï  ", NULL), 3);
    assert_string_equal(out, "c-n"); /* non-ASCII letters separate words */
    assert_int_equal(str_slug(out, sizeof(out), 80, "!!!", "..."), 0);
    assert_string_equal(out, "");
    /* bounded by the buffer and by max */
    assert_int_equal(str_slug(out, sizeof(out), 80, "abcdefghijklmnopqrstuvwxyz0123456789", NULL),
                     30);
    assert_int_equal(str_slug(out, sizeof(out), 5, "abcdefgh", NULL), 5);
    assert_string_equal(out, "abcde");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers),     cmocka_unit_test(views), cmocka_unit_test(ct_equal),
        cmocka_unit_test(html_escape), cmocka_unit_test(slug),  cmocka_unit_test(utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
