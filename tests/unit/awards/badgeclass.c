/*
 * tests/unit/awards/badgeclass.c - alignments as the editor's rows of fields
 * and as the CLI's 'NAME|URL|...' specs: the same parts give the same
 * stored JSON byte for byte (the BadgeClass document copies it), rows read
 * back from it give it again, and rows lacking a name or an http(s) URL
 * are refused with their index.
 */
#include "base/base.h"
#include "awards/awards.h"

#include <setjmp.h>
#include <cmocka.h>

static char *from_rows(const struct awards_alignment *rows, size_t n)
{
    struct err err = ERR_INIT;
    char *json = NULL;

    assert_int_equal(awards_alignments_rows_json(rows, n, &json, NULL, &err), 0);
    return json;
}

static void test_rows_as_specs(void **state)
{
    const char *specs[] = { "Algebra | https://ex.edu/std/alg | Solving | CCSS | A1",
                            "Logic|https://ex.edu/std/log", " Sets |http://ex.edu/s|| |S" };
    const struct awards_alignment rows[] = {
        { { " Algebra", "https://ex.edu/std/alg ", "Solving", "CCSS", "A1" } },
        { { "Logic", "https://ex.edu/std/log", NULL, "", NULL } },
        { { "Sets", "http://ex.edu/s", "", " ", "S" } },
    };
    struct err err = ERR_INIT;
    char *a = NULL, *b;

    (void)state;
    assert_int_equal(awards_alignments_json(specs, 3, &a, &err), 0);
    b = from_rows(rows, 3);
    assert_string_equal(a, b);
    assert_string_equal(
        a, "[{\"targetName\":\"Algebra\",\"targetUrl\":\"https://ex.edu/std/alg\","
           "\"targetDescription\":\"Solving\",\"targetFramework\":\"CCSS\",\"targetCode\":\"A1\"},"
           "{\"targetName\":\"Logic\",\"targetUrl\":\"https://ex.edu/std/log\"},"
           "{\"targetName\":\"Sets\",\"targetUrl\":\"http://ex.edu/s\",\"targetCode\":\"S\"}]");
    free(a);
    free(b);
}

static void test_rows_round_trip(void **state)
{
    const char *json = "[{\"targetName\":\"A | B\",\"targetUrl\":\"https://ex.edu/a\","
                       "\"targetCode\":\"c\"},{\"targetName\":\"\xc3\xb1\",\"targetUrl\":"
                       "\"https://ex.edu/n\",\"targetDescription\":\"d\"}]";
    struct awards_alignment rows[LIMIT_BADGE_ALIGNMENTS];
    struct arena a;
    char *again;
    size_t n;

    (void)state;
    arena_init(&a);
    n = awards_alignments_rows(json, rows, LIMIT_BADGE_ALIGNMENTS, &a);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].field[0], "A | B"); /* a bar is a name's, not a separator */
    assert_null(rows[0].field[2]);
    assert_string_equal(rows[1].field[2], "d");
    again = from_rows(rows, n);
    assert_string_equal(again, json);
    free(again);
    assert_int_equal(awards_alignments_rows(json, rows, 1, &a), 1);
    assert_int_equal(awards_alignments_rows(NULL, rows, 1, &a), 0);
    assert_int_equal(awards_alignments_rows("not json", rows, 1, &a), 0);
    arena_release(&a);
}

static void test_rows_refused(void **state)
{
    const struct awards_alignment rows[][2] = {
        { { { "Ok", "https://ex.edu/ok" } }, { { NULL, "https://ex.edu/x" } } },
        { { { "Ok", "https://ex.edu/ok" } }, { { "No URL" } } },
        { { { "Ok", "https://ex.edu/ok" } }, { { "Bad", "javascript:alert(1)" } } },
        { { { "Ok", "https://ex.edu/ok" } }, { { "Ctl", "https://ex.edu/x", "a\x01" } } },
    };
    struct awards_alignment many[LIMIT_BADGE_ALIGNMENTS + 1];
    char *json = (char *)"unset";
    size_t bad = 99;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct err err = ERR_INIT;

        assert_int_equal(awards_alignments_rows_json(rows[i], 2, &json, &bad, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        assert_null(json);
        assert_int_equal(bad, 1);
    }
    for (size_t i = 0; i < LIMIT_BADGE_ALIGNMENTS + 1; i++)
        many[i] = (struct awards_alignment){ { "N", "https://ex.edu/n" } };
    {
        struct err err = ERR_INIT;

        /* at the limit, and one past it */
        assert_int_equal(
            awards_alignments_rows_json(many, LIMIT_BADGE_ALIGNMENTS, &json, NULL, &err), 0);
        free(json);
        assert_int_equal(
            awards_alignments_rows_json(many, LIMIT_BADGE_ALIGNMENTS + 1, &json, NULL, &err), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_as_specs),
        cmocka_unit_test(test_rows_round_trip),
        cmocka_unit_test(test_rows_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
