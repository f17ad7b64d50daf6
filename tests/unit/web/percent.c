/*
 * tests/unit/web/percent.c - scores typed in percent in the editor: what
 * web_percent_parse() takes (a decimal point or comma, a '%' sign, at most 4
 * decimals, 0 to 100, and 100 and 100.0001 either side of the limit), that
 * it stores the very double the same fraction typed as 0..1 gives, and
 * web_percent_value() writing a score back as a form value.
 */
#include "base/base.h"
#include "web/web_int.h"

#include <setjmp.h>
#include <cmocka.h>

static void parses(void **state)
{
    static const struct {
        const char *in;
        double want;
    } ok[] = {
        { "80", 0.8 },           { "80%", 0.8 },  { " 80 % ", 0.8 }, { "72.5", 0.725 },
        { "72,5", 0.725 },       { "0", 0.0 },    { "100", 1.0 },    { "100.0000", 1.0 },
        { "33.3333", 0.333333 }, { ".5", 0.005 }, { "007", 0.07 },   { "99.9999", 0.999999 },
    };
    static const char *const bad[] = {
        "",     "%",     ".",      "100.0001", "101", "-1",  "+5",  "1e2", "0x10",       "72.55555",
        "7..2", "7.2.1", "72,5.1", "80%%",     "nan", "inf", "12a", "1 2", "1234567890",
    };
    double d;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        d = -1;
        assert_int_equal(web_percent_parse(str_from_cstr(ok[i].in), &d), 0);
        /* exactly equal: "80" is the double strtod("0.8") is */
        assert_true(d == ok[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = -1;
        assert_int_equal(web_percent_parse(str_from_cstr(bad[i]), &d), -1);
        assert_true(d == -1);
    }
}

static void writes_back(void **state)
{
    struct req r;
    static const struct {
        double in;
        const char *out;
    } cases[] = {
        { 0.8, "80" }, { 0.725, "72.5" },     { 1.0, "100" },
        { 0.0, "0" },  { 0.333333, "33.33" }, { 0.07, "7" },
    };

    (void)state;
    memset(&r, 0, sizeof(r));
    arena_init(&r.arena);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(web_percent_value(&r, cases[i].in), cases[i].out);
    arena_release(&r.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses),
        cmocka_unit_test(writes_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
