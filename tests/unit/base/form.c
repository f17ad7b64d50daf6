/*
 * tests/unit/base/form.c - form decoding ('+', %XX, repeated names, empty
 * pairs, NUL bytes), malformed escapes, the parameter limit at max and
 * max+1, and RFC 3986 encoding.
 */
#include "base/base.h"

#include <setjmp.h>
#include <cmocka.h>

static int parse(struct arena *a, const char *s, size_t max, struct form *f, struct err *err)
{
    return form_parse(a, s, strlen(s), max, f, err);
}

static void decodes(void **state)
{
    struct arena a = ARENA_INIT;
    struct form f;
    struct err err = ERR_INIT;

    assert_int_equal(parse(&a, "a=1+2&b=x%20y&a=%2B&c&d=&&e=%C3%A9&%3D=%26", 100, &f, &err), 0);
    assert_int_equal(f.count, 7);
    assert_true(str_eq_cstr(f.params[0].value, "1 2"));
    assert_true(str_eq_cstr(f.params[1].value, "x y"));
    assert_true(str_eq_cstr(f.params[2].value, "+"));
    assert_true(str_eq_cstr(f.params[3].name, "c") && f.params[3].value.len == 0);
    assert_true(str_eq_cstr(f.params[4].name, "d") && f.params[4].value.len == 0);
    assert_true(str_eq_cstr(f.params[5].value, "\xc3\xa9"));
    assert_true(str_eq_cstr(f.params[6].name, "=") && str_eq_cstr(f.params[6].value, "&"));
    assert_int_equal(form_count(&f, "a"), 2);
    assert_true(str_eq_cstr(form_get(&f, "a"), "1 2"));
    assert_false(str_present(form_get(&f, "zz")));
    arena_release(&a);
}

static void nul_bytes_survive(void **state)
{
    struct arena a = ARENA_INIT;
    struct form f;
    struct err err = ERR_INIT;

    assert_int_equal(parse(&a, "a=x%00y", 10, &f, &err), 0);
    assert_int_equal(f.params[0].value.len, 3);
    assert_memory_equal(f.params[0].value.ptr, "x\0y", 3);
    arena_release(&a);
}

/* A name with a control character or bytes that are not UTF-8 is refused; a value's is kept. */
static void bad_names(void **state)
{
    static const struct {
        const char *body;
        bool ok;
    } cases[] = {
        { "a%00b=1", false },    { "%01=1", false },       { "t%09b=1", false },
        { "n%0Ab", false },      { "d%7Fl=1", false },     { "%FF=1", false },
        { "%C0%AF=1", false },   { "%ED%A0%80=1", false }, { "x=1&%E9=2", false },
        { "ok=1&a%1Fb", false }, { "caf%C3%A9=1", true },  { "%E2%9C%93=%00", true },
        { "a+b=%FF", true },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct arena a = ARENA_INIT;
        struct form f;
        struct err err = ERR_INIT;

        assert_int_equal(parse(&a, cases[i].body, 10, &f, &err), cases[i].ok ? 0 : -1);
        if (!cases[i].ok) {
            assert_int_equal(err.code, ERR_INVALID);
            assert_string_equal(err.msg,
                                "a parameter name holds a control character or is not UTF-8");
        }
        arena_release(&a);
    }
}

static void malformed(void **state)
{
    static const char *const bad[] = { "a=%", "a=%4", "a=%zz", "a=%4g", "%=1", "a=1&b=%%" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct arena a = ARENA_INIT;
        struct form f;
        struct err err = ERR_INIT;

        assert_int_equal(parse(&a, bad[i], 10, &f, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        assert_string_equal(err.msg, "malformed percent-encoding in form data");
        arena_release(&a);
    }
}

static void empty(void **state)
{
    struct arena a = ARENA_INIT;
    struct form f;
    struct err err = ERR_INIT;

    assert_int_equal(parse(&a, "", 10, &f, &err), 0);
    assert_int_equal(f.count, 0);
    assert_int_equal(parse(&a, "&&&", 10, &f, &err), 0);
    assert_int_equal(f.count, 0);
    arena_release(&a);
}

static void param_limit(void **state)
{
    struct arena a = ARENA_INIT;
    struct form f;
    struct err err = ERR_INIT;

    assert_int_equal(parse(&a, "a=1&b=2&c=3", 3, &f, &err), 0); /* max */
    assert_int_equal(f.count, 3);
    assert_int_equal(parse(&a, "a=1&b=2&c=3&d=4", 3, &f, &err), -1); /* max + 1 */
    assert_int_equal(err.code, ERR_TOOBIG);
    arena_release(&a);
}

static void encodes_rfc3986(void **state)
{
    struct buf b = BUF_INIT(256);

    form_encode_rfc3986(&b, STR_LIT("az AZ09-._~!*'()+/=&%\xc3\xa9"));
    assert_string_equal(b.ptr, "az%20AZ09-._~%21%2A%27%28%29%2B%2F%3D%26%25%C3%A9");
    buf_reset(&b);
    buf_addstr(&b, "https://lms/return?x=1");
    buf_addch(&b, '&');
    form_add_query_param(&b, "lti_errormsg", STR_LIT("bad thing"));
    assert_string_equal(b.ptr, "https://lms/return?x=1&lti_errormsg=bad%20thing");
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes),     cmocka_unit_test(nul_bytes_survive),
        cmocka_unit_test(malformed),   cmocka_unit_test(empty),
        cmocka_unit_test(param_limit), cmocka_unit_test(encodes_rfc3986),
        cmocka_unit_test(bad_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
