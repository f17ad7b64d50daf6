/*
 * tests/unit/base/log.c - the log's lines: logfmt quoting (no value can
 * forge a line or a field), JSON, a line cut at its cap, and reopening.
 */
#include "base/base.h"
#include "base/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/ltibadges-log-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    log_close();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The file's text (malloc'd). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *p = xcalloc(1, 65536);
    size_t n;

    if (!f)
        return p;
    n = fread(p, 1, 65535, f);
    p[n] = '\0';
    fclose(f);
    return p;
}

static void path_of(char out[128], const char *name)
{
    snprintf(out, 128, "%s/%s", dir, name);
}

static void test_text_quoting(void **state)
{
    struct err err = ERR_INIT;
    char path[128];
    char *text, *rest, *nl;

    path_of(path, "events.log");
    assert_int_equal(log_setup(false, path, "-", &err), 0);
    LOG(LOG_LEVEL_WARN, "a \"quoted\" msg", LOG_STR("path", "a b\nlevel=error msg=forged"),
        LOG_STR("eq", "x=y"), LOG_INT("n", -5), LOG_STR("none", NULL), LOG_STR("empty", ""),
        LOG_STR("ctl", "\x01\\"), LOG_STR("plain", "/lti/launch"));
    LOG_MSG(LOG_LEVEL_ERROR, "second");
    text = slurp(path);
    assert_true(strncmp(text, "time=", 5) == 0);
    nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1 + strcspn(nl + 1, " "), " level=error msg=second\n");
    nl[1] = '\0';
    rest = strchr(text, ' ');
    assert_non_null(rest);
    /* one line: every quote, backslash, newline and control byte escaped */
    assert_string_equal(rest, " level=warn msg=\"a \\\"quoted\\\" msg\" "
                              "path=\"a b\\nlevel=error msg=forged\" eq=\"x=y\" n=-5 none=- "
                              "empty=\"\" ctl=\"\\x01\\\\\" plain=/lti/launch\n");
    free(text);
}

static void test_json(void **state)
{
    struct err err = ERR_INIT;
    char path[128];
    char *text;
    json_t *o;
    json_error_t je;

    path_of(path, "events.json");
    assert_int_equal(log_setup(true, path, "off", &err), 0);
    assert_false(log_access_on());
    LOG(LOG_LEVEL_INFO, "request", LOG_STR("path", "a\"b\n"), LOG_INT("status", 303),
        LOG_STR("none", NULL));
    text = slurp(path);
    assert_non_null(strchr(text, '\n'));
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
    o = json_loads(text, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "request");
    assert_string_equal(json_string_value(json_object_get(o, "path")), "a\"b\n");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 303);
    assert_true(json_is_null(json_object_get(o, "none")));
    assert_non_null(json_string_value(json_object_get(o, "time")));
    json_decref(o);
    free(text);
}

static void test_long_line_cut_at_a_field(void **state)
{
    struct err err = ERR_INIT;
    char path[128], *big = xmalloc(20000), *text;

    memset(big, 'x', 19999);
    big[19999] = '\0';
    path_of(path, "long.log");
    assert_int_equal(log_setup(false, path, "-", &err), 0);
    LOG(LOG_LEVEL_INFO, "long", LOG_STR("small", "kept"), LOG_STR("big", big));
    text = slurp(path);
    /* one line, its fields up to the one that did not fit */
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
    assert_non_null(strstr(text, " level=info msg=long small=kept\n"));
    assert_null(strstr(text, "big="));
    free(text);
    free(big);
}

static void test_reopen_after_rename(void **state)
{
    struct err err = ERR_INIT;
    char events[128], access[128], moved_e[160], moved_a[160];
    char *t;

    path_of(events, "e.log");
    path_of(access, "a.log");
    snprintf(moved_e, sizeof(moved_e), "%s.1", events);
    snprintf(moved_a, sizeof(moved_a), "%s.1", access);
    assert_int_equal(log_setup(false, events, access, &err), 0);
    LOG_MSG(LOG_LEVEL_INFO, "before");
    log_access((const struct log_field[]){ LOG_INT("status", 200) }, 1);
    assert_int_equal(rename(events, moved_e), 0);
    assert_int_equal(rename(access, moved_a), 0);
    assert_int_equal(log_reopen(&err), 0);
    LOG_MSG(LOG_LEVEL_INFO, "after");
    log_access((const struct log_field[]){ LOG_INT("status", 404) }, 1);
    t = slurp(moved_e);
    assert_non_null(strstr(t, "msg=before"));
    assert_null(strstr(t, "msg=after"));
    free(t);
    t = slurp(events);
    assert_non_null(strstr(t, "msg=after"));
    assert_null(strstr(t, "msg=before"));
    free(t);
    t = slurp(moved_a);
    assert_non_null(strstr(t, "msg=request status=200"));
    assert_null(strstr(t, "status=404"));
    free(t);
    t = slurp(access);
    assert_non_null(strstr(t, "msg=request status=404"));
    free(t);
}

static void test_setup_names_the_file(void **state)
{
    struct err err = ERR_INIT;
    char path[128];

    path_of(path, "no/such/dir/x.log");
    assert_int_equal(log_setup(false, path, "-", &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "No such file or directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line_cut_at_a_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setup_names_the_file, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
