/*
 * tests/unit/web/tpl.c - the template renderer escapes in every context:
 * text, attributes, URLs; raw output needs both {{{ }}} and a trusted value.
 */
#include "base/base.h"
#include "web/web_int.h"

#include <setjmp.h>
#include <cmocka.h>

static char *render(const char *tpl, const struct web_tpl_var *vars, size_t n, struct err *err)
{
    struct buf b = BUF_INIT(4096);

    if (web_tpl_render(&b, tpl, vars, n, err) < 0) {
        buf_release(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

static void escapes_text_and_attributes(void **state)
{
    struct err err = ERR_INIT;
    struct web_tpl_var v[] = { web_tpl_text("x", "<script>alert('x')</script>\"&") };
    char *out = render("<p title=\"{{x}}\">{{x}}</p>", v, 1, &err);

    assert_non_null(out);
    assert_string_equal(out,
                        "<p title=\"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;\">"
                        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;</p>");
    free(out);
}

static void urls(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "https://lms.example/a?b=1&c=2", "https://lms.example/a?b=1&amp;c=2" },
        { "http://x/", "http://x/" },
        { "/badges?s=1", "/badges?s=1" },
        { "javascript:alert(1)", "#" },
        { "JaVaScRiPt:alert(1)", "#" },
        { "java\tscript:alert(1)", "#" },
        { " javascript:alert(1)", "#" },
        { "data:text/html,<script>", "#" },
        { "vbscript:x", "#" },
        { "//evil.example/", "#" },
        { "/\\evil.example/", "#" },
        { "\\\\evil.example/x", "#" },
        { "\"onmouseover=\"x", "&quot;onmouseover=&quot;x" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err err = ERR_INIT;
        struct web_tpl_var v[] = { web_tpl_url("u", cases[i].in) };
        char *out = render("{{u}}", v, 1, &err);

        assert_non_null(out);
        if (strcmp(out, cases[i].out) != 0)
            fail_msg("url '%s' rendered as '%s', want '%s'", cases[i].in, out, cases[i].out);
        free(out);
    }
}

static void raw_needs_both(void **state)
{
    struct err err = ERR_INIT;
    struct web_tpl_var text[] = { web_tpl_text("x", "<b>") };
    /* trusted: a literal of this test */
    struct web_tpl_var raw[] = { web_tpl_raw_unsafe("x", "<b>") };
    char *out;

    assert_null(render("{{{x}}}", text, 1, &err));
    assert_int_equal(err.code, ERR_INTERNAL);
    err_clear(&err);
    out = render("{{{x}}}|{{x}}", raw, 1, &err);
    assert_string_equal(out, "<b>|&lt;b&gt;");
    free(out);
}

static void sections(void **state)
{
    struct err err = ERR_INIT;
    struct web_tpl_var v[] = { web_tpl_text("a", "A"), web_tpl_text("e", ""),
                               web_tpl_text("n", NULL) };
    char *out =
        render("{{#a}}[{{a}}{{#e}}no{{/e}}]{{/a}}{{^e}}empty{{/e}}{{^n}}null{{/n}}", v, 3, &err);

    assert_non_null(out);
    assert_string_equal(out, "[A]emptynull");
    free(out);
}

static void template_errors(void **state)
{
    /* a misspelt variable fails even inside a section that is not shown */
    static const char *const bad[] = { "{{x", "{{#a}}open", "{{/a}}", "{{nope}}",
                                       "{{^a}}{{nope}}{{/a}}" };
    struct web_tpl_var v[] = { web_tpl_text("a", "A") };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err err = ERR_INIT;

        assert_null(render(bad[i], v, 1, &err));
        assert_int_equal(err.code, ERR_INTERNAL);
    }
}

static void lists(void **state)
{
    struct err err = ERR_INIT;
    struct web_tpl_var inner[] = { web_tpl_text("w", "<1>"), web_tpl_text("w", "2") };
    struct web_tpl_var items[] = {
        web_tpl_text("x", "a&b"),
        web_tpl_list("ws", inner, 1, 2),
        web_tpl_text("x", "c"),
        web_tpl_list("ws", NULL, 1, 0),
    };
    struct web_tpl_var v[] = { web_tpl_list("items", items, 2, 2), web_tpl_text("x", "outer"),
                               web_tpl_text("y", "Y"), web_tpl_list("none", NULL, 2, 0) };
    char *out = render("{{#items}}({{x}}{{y}}:{{#ws}}[{{w}}]{{/ws}}{{^ws}}-{{/ws}}){{/items}}"
                       "{{x}}{{#none}}{{missing}}{{/none}}{{^none}}empty{{/none}}",
                       v, 4, &err);

    /* an item's variables shadow the outer ones; an empty list's section is skipped whole */
    assert_non_null(out);
    assert_string_equal(out, "(a&amp;bY:[&lt;1&gt;][2])(cY:-)outerempty");
    free(out);
    assert_null(render("{{items}}", v, 4, &err));
    assert_int_equal(err.code, ERR_INTERNAL);
    err_clear(&err);
    assert_null(render("{{{items}}}", v, 4, &err));
    assert_int_equal(err.code, ERR_INTERNAL);
}

static void translatable_text(void **state)
{
    struct err err = ERR_INIT;
    struct web_tpl_var v[] = { web_tpl_text("name", "<Ada & \"Bo\">"),
                               web_tpl_url("u", "javascript:alert(1)"),
                               web_tpl_raw_unsafe("raw", "<b>") };
    char *out =
        render("<p title=\"{{@Hi {name}}}\">{{@Hello {name}, <see> {u} {raw}}}</p>", v, 3, &err);

    /* literal text and placeholders are both escaped; a URL placeholder keeps its check, and
     * trusted markup is escaped too: a translation never writes markup */
    assert_non_null(out);
    assert_string_equal(out, "<p title=\"Hi &lt;Ada &amp; &quot;Bo&quot;&gt;\">Hello &lt;Ada "
                             "&amp; &quot;Bo&quot;&gt;, &lt;see&gt; # &lt;b&gt;</p>");
    free(out);
    assert_null(render("{{@Hello {nobody}}}", v, 3, &err));
    assert_int_equal(err.code, ERR_INTERNAL);
    err_clear(&err);
    assert_null(render("{{@unclosed {name}", v, 3, &err));
    assert_int_equal(err.code, ERR_INTERNAL);
}

/*
 * Templates are compiled once and kept by address: a template at an address
 * reused for other text (a buffer) is rendered as it now reads, and more
 * templates than the table holds still render.
 */
static void compiled_once_never_confused(void **state)
{
    struct err err = ERR_INIT;
    struct web_tpl_var v[] = { web_tpl_text("a", "A"), web_tpl_text("b", "B") };
    char tpl[64], *out;

    (void)state;
    snprintf(tpl, sizeof(tpl), "<i>{{a}}</i>");
    out = render(tpl, v, 2, &err);
    assert_string_equal(out, "<i>A</i>");
    free(out);
    /* same address, same length, other text */
    snprintf(tpl, sizeof(tpl), "<b>{{b}}</b>");
    out = render(tpl, v, 2, &err);
    assert_string_equal(out, "<b>B</b>");
    free(out);
    snprintf(tpl, sizeof(tpl), "<b>{{b}}</b>{{#a}}!{{/a}}");
    out = render(tpl, v, 2, &err);
    assert_string_equal(out, "<b>B</b>!");
    free(out);
    for (int i = 0; i < 200; i++) {
        char *t = NULL;

        assert_true(asprintf(&t, "%d:{{a}}{{^b}}no{{/b}}", i) > 0);
        out = render(t, v, 2, &err);
        assert_non_null(out);
        {
            char want[32];

            snprintf(want, sizeof(want), "%d:A", i);
            assert_string_equal(out, want);
        }
        free(out);
        free(t);
    }
    /* a section closed under another name is refused, as an unclosed one */
    assert_null(render("{{#a}}x{{/b}}", v, 2, &err));
    assert_int_equal(err.code, ERR_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_text_and_attributes),
        cmocka_unit_test(urls),
        cmocka_unit_test(raw_needs_both),
        cmocka_unit_test(sections),
        cmocka_unit_test(template_errors),
        cmocka_unit_test(lists),
        cmocka_unit_test(translatable_text),
        cmocka_unit_test(compiled_once_never_confused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
