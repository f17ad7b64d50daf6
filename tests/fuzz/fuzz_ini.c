/*
 * tests/fuzz/fuzz_ini.c - the INI configuration (cli/config.c): libinih's
 * parser (ini_parse_string, the file reader's twin) and our handler, which
 * checks every key and value, then what the server derives from the result
 * (the [email] section as a mail configuration, the public URL).
 *
 * Promises checked: a configuration that loads has every text NUL-terminated
 * within its field and free of control characters; a failure says why.
 */
#include "tests/fuzz/fuzz.h"
#include "net/net.h"
#include "cli/cli.h"

static void text_ok(const char *s, size_t size)
{
    size_t n = strnlen(s, size);

    FUZZ_CHECK(n < size);
    FUZZ_CHECK(!str_has_ctl((struct str){ s, n }));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmemdupz(data, size);
    struct cli_config *c = xmalloc(sizeof(*c));
    struct net_mail_config mail;
    struct err err = ERR_INIT;
    char url[LIMIT_LTI_URL_LEN + 300];

    cli_config_defaults(c);
    if (cli_config_load_string(c, text, "fuzz.ini", &err) == 0) {
        text_ok(c->listen_host, sizeof(c->listen_host));
        text_ok(c->db, sizeof(c->db));
        text_ok(c->public_url, sizeof(c->public_url));
        text_ok(c->access_log, sizeof(c->access_log));
        text_ok(c->tool_title, sizeof(c->tool_title));
        text_ok(c->issuer_name, sizeof(c->issuer_name));
        text_ok(c->issuer_url, sizeof(c->issuer_url));
        text_ok(c->email_smtp_url, sizeof(c->email_smtp_url));
        text_ok(c->email_from, sizeof(c->email_from));
        FUZZ_CHECK(c->threads >= 1 && c->threads <= LIMIT_HTTP_THREADS_MAX);
        FUZZ_CHECK(c->max_body >= 1024 && c->max_body <= LIMIT_LAUNCH_BODY_MAX);
        if (cli_config_mail(c, &mail, &err) < 0)
            FUZZ_CHECK(err.code == ERR_INVALID && err.msg[0]);
        cli_config_public_url(c, url, sizeof(url));
        err_clear(&err);
        /* the [backend.NAME] sections, checked whole */
        if (cli_config_backends_check(c, &err) < 0)
            FUZZ_CHECK(err.code == ERR_INVALID && err.msg[0]);
    } else {
        FUZZ_CHECK(err.code != ERR_NONE && err.msg[0]);
    }
    free(c);
    free(text);
    return 0;
}
