/*
 * cli/consumer.c - `ltibadges consumer
 * add|list|remove|rotate|enable|disable|outcome-hosts|backend`.
 *
 * Secrets are shown once, when they are made (add, rotate), and never listed.
 */
#include "base/base.h"
#include "backends/backends.h"
#include "cli/cli.h"
#include "store/store.h"

#include <jansson.h>

static const char consumer_usage[] =
    "usage: ltibadges consumer add NAME [--key KEY] [--secret SECRET] [--backend B]\n"
    "       ltibadges consumer list [--json]\n"
    "       ltibadges consumer remove KEY\n"
    "       ltibadges consumer rotate KEY\n"
    "       ltibadges consumer enable KEY\n"
    "       ltibadges consumer disable KEY\n"
    "       ltibadges consumer outcome-hosts KEY [HOST,...]\n"
    "       ltibadges consumer backend KEY [B|default]\n"
    "\n"
    "Registers the learning platforms (LTI tool consumers) allowed to launch the tool.\n"
    "  add      creates a consumer; prints key=... and secret=... (a random 32-byte hex\n"
    "           secret unless --secret is given). Give both to the LMS administrator.\n"
    "           --backend B: its BadgeClasses go to backend B (hosted or a\n"
    "           [backend.NAME] section) instead of [awards] backend\n"
    "  list     lists consumers (never their secrets); --json prints one JSON array\n"
    "  remove   deletes a consumer and everything its launches stored\n"
    "  rotate   replaces the secret (printed once); the old one stops working at once\n"
    "  enable, disable\n"
    "           allows or refuses the consumer's launches without deleting anything\n"
    "  outcome-hosts\n"
    "           the only hosts the tool may call for the consumer's grades (Basic\n"
    "           Outcomes), comma-separated; \".example.edu\" allows its subdomains too.\n"
    "           Without HOSTS, the outcome service URLs of its launches are called.\n"
    "  backend  where the consumer's BadgeClasses made from now on go: B, or default\n"
    "           ([awards] backend); those it has keep theirs. Without B, prints it.\n"
    "\n"
    "Every command takes --db PATH and --config FILE.\n";

int cli_fail(const struct err *err)
{
    fprintf(stderr, "ltibadges: %s\n", err->msg[0] ? err->msg : "failed");
    if (err->detail[0] && getenv("LTIBADGES_DEBUG"))
        fprintf(stderr, "ltibadges: detail: %s\n", err->detail);
    return 1;
}

int cli_store_open(const struct cli_config *cfg, unsigned flags, struct store **s, struct err *err)
{
    struct err e = ERR_INIT;

    if (cfg->db_url[0]) {
        char shown[LIMIT_DB_URL_LEN];
        struct store_pg *pg = NULL;
        int v;

        /*
         * reachable, its schema known and migrated (unless the command asked
         * not to): or the reason why not, naming the database (redacted)
         */
        if (cli_store_open_pg(cfg, flags & (STORE_OPEN_NO_MIGRATE | STORE_OPEN_WRITER), &v, &pg,
                              err) < 0)
            return -1;
        /* on the connection the check made; a command's one thread reads on it too */
        if (!(flags & STORE_OPEN_WRITER))
            flags |= STORE_OPEN_ONE_CONNECTION;
        if (store_open_on_pg(s, pg, cfg->db_url, cfg->db_pool, flags | STORE_OPEN_NO_MIGRATE, &e) ==
            0)
            return 0;
        cli_config_database_name(cfg, shown, sizeof(shown));
        err_set(err, e.code, "database '%s': %s", shown, e.msg);
        return err_detail(err, "%s", e.detail);
    }
    if (store_open(s, cfg->db, flags, &e) == 0)
        return 0;
    if (e.code == ERR_NOTFOUND) {
        /* the operator's own path: cli/ prints it (STYLE.md keeps paths out of what web/ shows) */
        err_set(err, ERR_NOTFOUND,
                "database '%s' does not exist (create it with 'ltibadges db migrate', or "
                "'ltibadges serve' creates it)",
                cfg->db);
        return -1;
    }
    /* the operator's own path, and the reason (sqlite's or the system's) */
    err_set(err, e.code, "database '%s': %s", cfg->db, e.msg);
    return -1;
}

void cli_report_svg_migration(struct store *s, FILE *f, const char *prefix)
{
    size_t checked = 0, changed = 0;

    if (!s)
        return;
    store_svg_migrated(s, &checked, &changed);
    if (checked)
        fprintf(f,
                "%sstored SVG images: %zu checked, %zu changed by the SVG rule (parts that could "
                "run code or load other files removed)\n",
                prefix, checked, changed);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ltibadges %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'ltibadges %s --help')\n", cmd);
    return 2;
}

static int check_token(const char *what, const char *v, size_t min, size_t max, struct err *err)
{
    size_t n = strlen(v);

    if (n < min || n > max)
        return err_set(err, ERR_INVALID, "%s must be %zu to %zu characters", what, min, max);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f)
            return err_set(err, ERR_INVALID,
                           "%s must be printable ASCII without spaces or control characters "
                           "(LMS forms and files cut or refuse them)",
                           what);
        /* Open edX's LTI passports are "id:key:secret": a colon in either breaks the passport */
        if (v[i] == ':')
            return err_set(err, ERR_INVALID,
                           "%s must not contain ':' (Open edX's LTI passport is id:key:secret)",
                           what);
    }
    return 0;
}

/* A readable key: the name's letters and digits, lower-cased, and a random suffix. */
static int make_key(const char *name, char *out, size_t outlen, struct err *err)
{
    char suffix[13];
    size_t n;

    if (util_random_hex(suffix, 6, err) < 0)
        return -1;
    n = str_slug(out, outlen, 40, name, NULL);
    snprintf(out + n, outlen - n, "%s%s", n ? "-" : "consumer-", suffix);
    return 0;
}

static int open_store(const struct cli_opts *o, struct cli_config *cfg, struct store **s,
                      struct err *err)
{
    if (cli_config_resolve(cfg, o, err) < 0 ||
        cli_store_open(cfg, STORE_OPEN_NO_CREATE, s, err) < 0)
        return -1;
    cli_report_svg_migration(*s, stderr, "ltibadges: ");
    return 0;
}

/* A backend a consumer may use: hosted or a section of the configuration (NULL: the default). */
static int backend_known(const struct cli_config *cfg, const char *name, struct err *err)
{
    if (!name || cli_config_has_backend(cfg, name))
        return 0;
    return err_set(err, ERR_NOTFOUND,
                   "there is no backend '%s': it is hosted or a [backend.NAME] section of the "
                   "configuration",
                   name);
}

static int cmd_add(const struct cli_opts *o)
{
    struct err err = ERR_INIT;
    struct cli_config *cfg = NULL;
    struct store *s = NULL;
    char key[LIMIT_CONSUMER_KEY_LEN + 1], secret[LIMIT_CONSUMER_SECRET_LEN + 1];
    const char *name = o->pos[1];
    int ret = 0;

    if (!name)
        return cli_usage_error("consumer add", "missing NAME");
    if (name[0] == '\0' || strlen(name) > LIMIT_CONSUMER_NAME_LEN ||
        str_has_ctl(str_from_cstr(name)))
        return cli_usage_error("consumer add", "NAME must be 1 to %d printable characters",
                               LIMIT_CONSUMER_NAME_LEN);
    if (o->key) {
        if (check_token("--key", o->key, 1, LIMIT_CONSUMER_KEY_LEN, &err) < 0)
            return cli_usage_error("consumer add", "%s", err.msg);
        snprintf(key, sizeof(key), "%s", o->key);
    } else if (make_key(name, key, sizeof(key), &err) < 0) {
        return cli_fail(&err);
    }
    if (o->secret) {
        if (check_token("--secret", o->secret, 16, LIMIT_CONSUMER_SECRET_LEN, &err) < 0)
            return cli_usage_error("consumer add", "%s", err.msg);
        snprintf(secret, sizeof(secret), "%s", o->secret);
    } else if (util_random_hex(secret, 32, &err) < 0) {
        return cli_fail(&err);
    }
    if (o->backend && !backend_name_valid(o->backend))
        return cli_usage_error("consumer add", "--backend is hosted or the NAME of a "
                                               "[backend.NAME] section");
    cfg = xmalloc(sizeof(*cfg));
    if (open_store(o, cfg, &s, &err) < 0 || backend_known(cfg, o->backend, &err) < 0 ||
        store_consumer_add_backend(s, key, secret, name, o->backend, NULL, &err) < 0) {
        ret = cli_fail(&err);
    } else {
        printf("key=%s\nsecret=%s\n", key, secret);
    }
    store_close(s);
    free(cfg);
    return ret;
}

/* The backend a consumer's new BadgeClasses go to, and whether it is the default. */
static const char *backend_of(const struct cli_config *cfg, const struct store_consumer *c,
                              bool *is_default)
{
    *is_default = !c->backend[0];
    return c->backend[0] ? c->backend : cfg->awards_backend;
}

static int cmd_list(const struct cli_opts *o)
{
    struct err err = ERR_INIT;
    struct cli_config *cfg = xmalloc(sizeof(*cfg));
    struct store *s = NULL;
    struct store_consumer *list = NULL;
    size_t n = 0;
    int ret = 0;

    if (open_store(o, cfg, &s, &err) < 0 || store_consumer_list(s, &list, &n, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    if (o->json) {
        json_t *arr = json_array();
        char *text;

        for (size_t i = 0; i < n; i++) {
            char created[21];
            bool dflt;
            const char *be = backend_of(cfg, &list[i], &dflt);

            util_iso8601(list[i].created_at, created);
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s?, s:b, s:I, s:s, s:s, s:b}", "key", list[i].key,
                               "name", list[i].name, "lms", list[i].lms[0] ? list[i].lms : NULL,
                               "enabled", list[i].enabled, "users", (json_int_t)list[i].users,
                               "created_at", created, "backend", be, "backend_default", dflt));
        }
        text = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", text ? text : "[]");
        free(text);
        json_decref(arr);
    } else if (n == 0) {
        printf("no consumers: add one with 'ltibadges consumer add NAME'\n");
    } else {
        printf("%-32s %-24s %-8s %-8s %6s  %-20s  %s\n", "KEY", "NAME", "LMS", "ENABLED", "USERS",
               "CREATED", "BACKEND");
        for (size_t i = 0; i < n; i++) {
            char created[21];
            bool dflt;
            const char *be = backend_of(cfg, &list[i], &dflt);

            util_iso8601(list[i].created_at, created);
            printf("%-32s %-24s %-8s %-8s %6" PRId64 "  %-20s  %s%s\n", list[i].key, list[i].name,
                   list[i].lms[0] ? list[i].lms : "-", list[i].enabled ? "yes" : "no",
                   list[i].users, created, be, dflt ? " (default)" : "");
        }
    }
out:
    free(list);
    store_close(s);
    free(cfg);
    return ret;
}

static int cmd_keyed(const struct cli_opts *o, const char *verb)
{
    struct err err = ERR_INIT;
    struct cli_config *cfg = NULL;
    struct store *s = NULL;
    const char *key = o->pos[1];
    char secret[65];
    int ret = 0;

    if (!key) {
        char cmd[32];

        snprintf(cmd, sizeof(cmd), "consumer %s", verb);
        return cli_usage_error(cmd, "missing KEY");
    }
    cfg = xmalloc(sizeof(*cfg));
    if (open_store(o, cfg, &s, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    if (strcmp(verb, "remove") == 0) {
        if (store_consumer_remove(s, key, &err) < 0)
            ret = cli_fail(&err);
        else
            printf("removed consumer '%s'\n", key);
    } else if (strcmp(verb, "rotate") == 0) {
        if (util_random_hex(secret, 32, &err) < 0 ||
            store_consumer_set_secret(s, key, secret, &err) < 0)
            ret = cli_fail(&err);
        else
            printf("key=%s\nsecret=%s\n", key, secret);
    } else if (strcmp(verb, "outcome-hosts") == 0) {
        const char *hosts = o->pos[2];

        if (hosts &&
            (str_has_ctl(str_from_cstr(hosts)) || strlen(hosts) > 4096 || strpbrk(hosts, " /:@"))) {
            ret = cli_usage_error("consumer outcome-hosts",
                                  "HOSTS are host names separated by commas, got '%s'", hosts);
            goto out;
        }
        if (store_consumer_set_outcome_hosts(s, key, hosts, &err) < 0)
            ret = cli_fail(&err);
        else if (hosts && *hosts)
            printf("consumer '%s' may be called on: %s\n", key, hosts);
        else
            printf("consumer '%s' is called on the outcome services its launches name\n", key);
    } else if (strcmp(verb, "backend") == 0) {
        const char *b = o->pos[2];
        struct store_consumer c;

        if (b && strcmp(b, "default") != 0 && !backend_name_valid(b)) {
            ret = cli_usage_error("consumer backend",
                                  "B is hosted, the NAME of a [backend.NAME] section or default");
            goto out;
        }
        if (b && strcmp(b, "default") == 0)
            b = NULL;
        else if (!b) {
            bool dflt;

            if (store_consumer_find(s, str_from_cstr(key), &c, &err) < 0) {
                if (err.code == ERR_NOTFOUND) {
                    err_clear(&err);
                    err_set(&err, ERR_NOTFOUND, "there is no consumer with key '%s'", key);
                }
                ret = cli_fail(&err);
            } else {
                b = backend_of(cfg, &c, &dflt);
                printf("%s%s\n", b, dflt ? " (default)" : "");
            }
            goto out;
        }
        if (backend_known(cfg, b, &err) < 0 || store_consumer_set_backend(s, key, b, &err) < 0)
            ret = cli_fail(&err);
        else if (b)
            printf("consumer '%s': its new BadgeClasses go to backend '%s'\n", key, b);
        else
            printf("consumer '%s': its new BadgeClasses go to the default backend ('%s')\n", key,
                   cfg->awards_backend);
    } else {
        bool en = strcmp(verb, "enable") == 0;

        if (store_consumer_set_enabled(s, key, en, &err) < 0)
            ret = cli_fail(&err);
        else
            printf("%s consumer '%s'\n", en ? "enabled" : "disabled", key);
    }
out:
    store_close(s);
    free(cfg);
    return ret;
}

int cli_cmd_consumer(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *verb = argc > 2 ? argv[2] : NULL;
    const char *allowed;
    size_t npos;

    if (!verb)
        return cli_usage_error("consumer", "missing subcommand (add, list, remove, rotate, "
                                           "enable, disable, outcome-hosts or backend)");
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        fputs(consumer_usage, stdout);
        return 0;
    }
    if (strcmp(verb, "add") == 0) {
        allowed = "config,db,key,secret,backend";
        npos = 1;
    } else if (strcmp(verb, "list") == 0) {
        allowed = "config,db,json";
        npos = 0;
    } else if (strcmp(verb, "remove") == 0 || strcmp(verb, "rotate") == 0 ||
               strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0) {
        allowed = "config,db";
        npos = 1;
    } else if (strcmp(verb, "outcome-hosts") == 0 || strcmp(verb, "backend") == 0) {
        allowed = "config,db";
        npos = 2;
    } else {
        return cli_usage_error("consumer", "unknown subcommand '%s'", verb);
    }
    /* pos[0] is the verb itself */
    if (cli_parse_opts(argc, argv, 2, allowed, npos + 1, &o, &err) < 0) {
        char cmd[32];

        snprintf(cmd, sizeof(cmd), "consumer %s", verb);
        return cli_usage_error(cmd, "%s", err.msg);
    }
    if (o.help) {
        fputs(consumer_usage, stdout);
        return 0;
    }
    if (strcmp(verb, "add") == 0)
        return cmd_add(&o);
    if (strcmp(verb, "list") == 0)
        return cmd_list(&o);
    return cmd_keyed(&o, verb);
}
