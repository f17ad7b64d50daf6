/*
 * cli/backend.c - `ltibadges backend list|check`: the named backends of the
 * configuration ([backend.NAME]) and what uses them, and the checks every
 * command that uses a backend runs first.
 *
 * The configuration's sections are checked whole when it is read
 * (cli_config_resolve); what only the database knows, that no consumer or
 * BadgeClass names a backend the file lacks, is checked here, and `check`
 * then asks each platform (the backend's check and verify_badge_class
 * ops). No command prints a secret: a section is shown by its name, type
 * and host.
 */
#include "base/base.h"
#include "base/log.h"
#include "awards/awards.h"
#include "backends/backends.h"
#include "cli/cli.h"
#include "store/store.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

static const char backend_usage[] =
    "usage: ltibadges backend list [--json]\n"
    "       ltibadges backend check [NAME] [--json]\n"
    "       ltibadges backend obf-enrol NAME --api-key FILE [--force]\n"
    "\n"
    "The badge platforms awards are issued through: 'hosted' (the built-in issuer)\n"
    "and each [backend.NAME] section of the configuration.\n"
    "  list   name, type, host and how many consumers, BadgeClasses and awards use\n"
    "         each (never a password or secret)\n"
    "  check  checks the configuration of NAME (default: every backend) and that\n"
    "         every backend consumers and BadgeClasses use is configured, then at\n"
    "         the platform: signs in, reads the issuer, verifies every BadgeClass id\n"
    "         stored for it; exits 1 saying what is wrong, a line each\n"
    "  obf-enrol  makes the client certificate and key of [backend.NAME] (type obf,\n"
    "         api = v1) from an API key of Open Badge Factory (Admin tools > API; valid\n"
    "         for minutes) and writes them to its certificate and key files (mode\n"
    "         0600; existing files only with --force)\n";

int cli_backends_check_used(const struct cli_config *c, struct store *s, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_backend_use *v;
    size_t n;
    int ret = 0;

    if (store_backend_usage(s, &ar, &v, &n, err) < 0) {
        arena_release(&ar);
        return -1;
    }
    for (size_t i = 0; i < n && ret == 0; i++) {
        /* "": consumers without their own, on [awards] backend (checked with the file) */
        if (!v[i].name[0] || cli_config_has_backend(c, v[i].name))
            continue;
        if (v[i].badges)
            ret = err_set(err, ERR_INVALID,
                          "[backend.%s]: %" PRId64 " BadgeClass(es) use backend '%s', but the "
                          "configuration has no [backend.%s] section",
                          v[i].name, v[i].badges, v[i].name, v[i].name);
        else
            ret = err_set(err, ERR_INVALID,
                          "[backend.%s]: %" PRId64 " consumer(s) use backend '%s', but the "
                          "configuration has no [backend.%s] section",
                          v[i].name, v[i].consumers, v[i].name, v[i].name);
    }
    arena_release(&ar);
    return ret;
}

int cli_backends_register(const struct cli_config *c, struct awards *a, struct err *err)
{
    struct backend_settings *set = xmalloc(sizeof(*set));
    int ret = 0;

    for (size_t i = 0; i < c->nbackends && ret == 0; i++) {
        struct backend *b = NULL;

        if (cli_config_backend(c, c->backends[i].name, set, err) < 0 ||
            backend_from_settings(set, &b, err) < 0)
            ret = -1;
        else
            awards_add_backend(a, c->backends[i].name, b);
        /* serve's log, at every start from 30 days before */
        if (b && b->credentials_expire_at &&
            b->credentials_expire_at < util_now() + BACKEND_EXPIRY_WARNING) {
            char when[21];

            util_iso8601(b->credentials_expire_at, when);
            LOG(LOG_LEVEL_WARN,
                "a backend's client certificate expires soon: renew it with `ltibadges backend "
                "obf-enrol NAME --api-key FILE --force`",
                LOG_STR("backend", c->backends[i].name), LOG_STR("expires", when));
        }
        /* BadgeKit's hooks come to POST /hooks/badgekit/NAME, checked with its webhook_secret */
        if (ret == 0 && strcmp(set->type->name, "badgekit") == 0)
            awards_badgekit_hooks(a, c->backends[i].name, set->u.badgekit.webhook_secret);
    }
    backend_settings_wipe(set);
    free(set);
    return ret;
}

/* What one row of `backend list` says. */
struct row {
    const char *name, *type;
    char host[256];
    bool configured, is_default;
    int64_t consumers, badges, awards;
};

/* Every configured backend, hosted first, then those the database names and the file lacks. */
static size_t rows_of(const struct cli_config *c, const struct store_backend_use *use, size_t nuse,
                      struct row *rows, size_t max)
{
    size_t n = 0;

    rows[n++] = (struct row){ BACKEND_HOSTED, "hosted", "", true, false, 0, 0, 0 };
    {
        /* hosted: the public URL's host, where verifiers fetch its documents */
        char url[LIMIT_LTI_URL_LEN + 64];
        const char *h;

        cli_config_public_url(c, url, sizeof(url));
        h = strstr(url, "://");
        h = h ? h + 3 : url;
        snprintf(rows[0].host, sizeof(rows[0].host), "%.*s", (int)strcspn(h, "/"), h);
    }
    for (size_t i = 0; i < c->nbackends && n < max; i++) {
        struct backend_settings *s = xmalloc(sizeof(*s));
        struct err e = ERR_INIT;

        rows[n] = (struct row){ c->backends[i].name, "?", "", true, false, 0, 0, 0 };
        if (cli_config_backend(c, c->backends[i].name, s, &e) == 0) {
            rows[n].type = s->type->name;
            snprintf(rows[n].host, sizeof(rows[n].host), "%s", backend_settings_host(s));
        }
        backend_settings_wipe(s);
        free(s);
        n++;
    }
    for (size_t i = 0; i < nuse; i++) {
        const char *name = use[i].name[0] ? use[i].name : c->awards_backend;
        struct row *r = NULL;

        for (size_t j = 0; j < n && !r; j++) {
            if (strcmp(rows[j].name, name) == 0)
                r = &rows[j];
        }
        if (!r && n < max) {
            r = &rows[n++];
            *r = (struct row){ name, "-", "", false, false, 0, 0, 0 };
        }
        if (r) {
            r->consumers += use[i].consumers;
            r->badges += use[i].badges;
            r->awards += use[i].awards;
        }
    }
    for (size_t j = 0; j < n; j++)
        rows[j].is_default = strcmp(rows[j].name, c->awards_backend) == 0;
    return n;
}

static int open_env(const struct cli_opts *o, struct cli_config *cfg, struct store **s,
                    struct err *err)
{
    if (cli_config_resolve(cfg, o, err) < 0 ||
        cli_store_open(cfg, STORE_OPEN_NO_CREATE, s, err) < 0)
        return -1;
    cli_report_svg_migration(*s, stderr, "ltibadges: ");
    return 0;
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);

    printf("%s\n", text ? text : "null");
    free(text);
    json_decref(j);
}

/* The hooks a BadgeKit backend's server counted (`backend list --json`); NULL if unreadable. */
static json_t *hook_counts_json(struct store *s, const char *name)
{
    struct arena ar = ARENA_INIT;
    struct store_hook_counts c;
    struct err e = ERR_INIT;
    json_t *j = NULL;

    if (store_hook_counts_get(s, name, &ar, &c, &e) < 0)
        fprintf(stderr, "ltibadges: %s\n", e.msg);
    else
        j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "received",
                      (json_int_t)c.received, "applied", (json_int_t)c.applied, "unchanged",
                      (json_int_t)c.unchanged, "ignored", (json_int_t)c.ignored, "refused",
                      (json_int_t)c.refused, "last_received_at", (json_int_t)c.last_received_at,
                      "last_refused_at", (json_int_t)c.last_refused_at, "last_refusal",
                      c.last_refusal);
    arena_release(&ar);
    return j;
}

static int cmd_list(const struct cli_opts *o)
{
    struct cli_config *cfg = xmalloc(sizeof(*cfg));
    struct err err = ERR_INIT;
    struct store *s = NULL;
    struct arena ar = ARENA_INIT;
    struct store_backend_use *use = NULL;
    struct row rows[LIMIT_BACKENDS * 2 + 2];
    size_t nuse = 0, n;
    int ret = 0;

    if (open_env(o, cfg, &s, &err) < 0 || store_backend_usage(s, &ar, &use, &nuse, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    n = rows_of(cfg, use, nuse, rows, sizeof(rows) / sizeof(rows[0]));
    if (o->json) {
        json_t *arr = json_array();

        for (size_t i = 0; i < n; i++) {
            json_t *row =
                json_pack("{s:s, s:s, s:s?, s:b, s:b, s:I, s:I, s:I}", "name", rows[i].name, "type",
                          rows[i].type, "host", rows[i].host[0] ? rows[i].host : NULL, "configured",
                          rows[i].configured, "default", rows[i].is_default, "consumers",
                          (json_int_t)rows[i].consumers, "badgeclasses", (json_int_t)rows[i].badges,
                          "awards", (json_int_t)rows[i].awards);

            /* a BadgeKit backend's hooks in, as `backend check` reports them */
            if (strcmp(rows[i].type, "badgekit") == 0)
                json_object_set_new(row, "hooks", hook_counts_json(s, rows[i].name));
            json_array_append_new(arr, row);
        }
        print_json(arr);
    } else {
        printf("%-32s %-8s %-32s %9s %12s %8s\n", "NAME", "TYPE", "HOST", "CONSUMERS",
               "BADGECLASSES", "AWARDS");
        for (size_t i = 0; i < n; i++) {
            char name[64];

            snprintf(name, sizeof(name), "%s%s", rows[i].name,
                     rows[i].is_default ? " (default)" : "");
            printf("%-32s %-8s %-32s %9" PRId64 " %12" PRId64 " %8" PRId64 "%s\n", name,
                   rows[i].type, rows[i].host[0] ? rows[i].host : "-", rows[i].consumers,
                   rows[i].badges, rows[i].awards,
                   rows[i].configured ? "" : "  (no such section in the configuration)");
        }
    }
out:
    arena_release(&ar);
    store_close(s);
    free(cfg);
    return ret;
}

/* A backend's answer in words: what an operator reads. */
static const char *status_words(enum backend_status st)
{
    switch (st) {
    case BACKEND_OK:
        return "ok";
    case BACKEND_RETRY:
        return "the platform could not be reached or answered with an error";
    case BACKEND_AUTH:
        return "the platform refused the credentials";
    case BACKEND_PERMANENT:
        break;
    }
    return "the platform refused";
}

/*
 * At the platform: its check op (token, issuer name), then every BadgeClass
 * of backend `name` with an id there, through verify_badge_class. Each
 * problem is one line on stderr; *problems counts them.
 */
static void check_platform(struct backend *b, const char *name, struct store *s, json_t *res,
                           size_t *problems)
{
    struct backend_result r;
    struct arena ar = ARENA_INIT;
    struct store_badge *v;
    struct err e = ERR_INIT;
    json_t *missing = json_array();
    size_t n;

    if (b->ops->check) {
        backend_result_init(&r);
        b->ops->check(b, &r);
        if (r.status != BACKEND_OK) {
            fprintf(stderr, "ltibadges: backend '%s': %s: %s\n", name, status_words(r.status),
                    r.message);
            json_object_set_new(res, "error", json_string(r.message));
            json_object_set_new(res, "ok", json_false());
            (*problems)++;
            json_decref(missing);
            return;
        }
        json_object_set_new(res, "issuer", json_string(r.name));
    }
    if (!b->ops->verify_badge_class)
        goto out;
    if (store_badge_list(s, &ar, &v, &n, &e) < 0) {
        fprintf(stderr, "ltibadges: %s\n", e.msg);
        (*problems)++;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!v[i].backend || strcmp(v[i].backend, name) != 0 || !v[i].backend_id)
            continue;
        backend_result_init(&r);
        b->ops->verify_badge_class(b, v[i].backend_id, &r);
        if (r.status == BACKEND_OK)
            continue;
        fprintf(stderr, "ltibadges: backend '%s': BadgeClass '%s' (id %s): %s: %s\n", name,
                v[i].slug, v[i].backend_id, status_words(r.status), r.message);
        json_array_append_new(missing, json_pack("{s:s, s:s, s:s}", "slug", v[i].slug, "id",
                                                 v[i].backend_id, "error", r.message));
        (*problems)++;
    }
out:
    if (json_array_size(missing))
        json_object_set_new(res, "ok", json_false());
    json_object_set_new(res, "badgeclasses_missing", missing);
    arena_release(&ar);
}

/*
 * A BadgeKit backend's hooks (POST /hooks/badgekit/NAME), as the server
 * counted them: on stdout, or in `res` when `json`.
 */
static void check_hooks(struct store *s, const char *name, bool on, json_t *res, bool json)
{
    struct arena ar = ARENA_INIT;
    struct store_hook_counts c;
    struct err e = ERR_INIT;
    char last[21] = "", refused_at[21] = "";

    if (store_hook_counts_get(s, name, &ar, &c, &e) < 0) {
        fprintf(stderr, "ltibadges: %s\n", e.msg);
        arena_release(&ar);
        return;
    }
    if (c.last_received_at)
        util_iso8601(c.last_received_at, last);
    if (c.last_refused_at)
        util_iso8601(c.last_refused_at, refused_at);
    if (json) {
        json_object_set_new(
            res, "hooks",
            json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:s?, s:s?, s:s?}", "on", on, "received",
                      (json_int_t)c.received, "applied", (json_int_t)c.applied, "unchanged",
                      (json_int_t)c.unchanged, "ignored", (json_int_t)c.ignored, "refused",
                      (json_int_t)c.refused, "last_received_at", last[0] ? last : NULL,
                      "last_refused_at", refused_at[0] ? refused_at : NULL, "last_refusal",
                      c.last_refusal));
    } else {
        printf("%s: hooks %s: %lld received (%lld applied, %lld unchanged, %lld ignored), "
               "%lld refused\n",
               name, on ? "on" : "off (webhook_secret is empty)", (long long)c.received,
               (long long)c.applied, (long long)c.unchanged, (long long)c.ignored,
               (long long)c.refused);
        if (c.last_refusal)
            printf("%s: last hook refused %s: %s\n", name, refused_at, c.last_refusal);
    }
    arena_release(&ar);
}

/*
 * One backend: its section checked whole, the backend made from it, then
 * what the platform says (check_platform). Says how it went on stdout, or
 * in `json` (an object of the backends by name) when not NULL; problems
 * at the platform go to stderr and are counted in *problems. -1: the
 * configuration itself is wrong (err).
 */
static int check_one(const struct cli_config *cfg, struct store *s, const char *name, json_t *json,
                     size_t *problems, struct err *err)
{
    struct backend_settings *set;
    struct backend *b = NULL;
    struct err e = ERR_INIT;
    json_t *res;
    size_t before = *problems;

    if (strcmp(name, BACKEND_HOSTED) == 0) {
        res = json_pack("{s:b, s:s}", "ok", 1, "type", "hosted");
        if (!json)
            printf("%s: ok (the built-in issuer: nothing to sign in to)\n", name);
        goto out;
    }
    set = xmalloc(sizeof(*set));
    if (cli_config_backend(cfg, name, set, err) < 0) {
        free(set);
        return -1;
    }
    res = json_pack("{s:b, s:s, s:s}", "ok", 1, "type", set->type->name, "host",
                    backend_settings_host(set));
    if (backend_from_settings(set, &b, &e) < 0) {
        /* the configuration is right; this build cannot talk to the platform */
        json_object_set_new(res, "platform", json_string(e.msg));
        if (!json)
            printf("%s: configuration ok (type %s, host %s); not checked at the platform: %s\n",
                   name, set->type->name, backend_settings_host(set), e.msg);
    } else {
        char expiry[64] = "";

        if (b->credentials_expire_at) {
            char when[21];

            util_iso8601(b->credentials_expire_at, when);
            json_object_set_new(res, "certificate_expires", json_string(when));
            snprintf(expiry, sizeof(expiry), ", certificate expires %.10s", when);
            if (b->credentials_expire_at < util_now() + BACKEND_EXPIRY_WARNING)
                fprintf(stderr,
                        "ltibadges: warning: backend '%s': the client certificate expires %.10s: "
                        "renew it with `ltibadges backend obf-enrol %s --api-key FILE --force`\n",
                        name, when, name);
        }
        check_platform(b, name, s, res, problems);
        if (!json && *problems == before) {
            json_t *issuer = json_object_get(res, "issuer");

            printf("%s: ok (type %s, host %s%s%s%s)\n", name, set->type->name,
                   backend_settings_host(set), issuer ? ", issuer " : "",
                   issuer ? json_string_value(issuer) : "", expiry);
        }
    }
    if (strcmp(set->type->name, "badgekit") == 0)
        check_hooks(s, name, set->u.badgekit.webhook_secret[0] != '\0', res, json != NULL);
    backend_destroy(b);
    backend_settings_wipe(set);
    free(set);
out:
    if (json)
        json_object_set_new(json, name, res);
    else
        json_decref(res);
    return 0;
}

static int cmd_check(const struct cli_opts *o)
{
    struct cli_config *cfg = xmalloc(sizeof(*cfg));
    struct err err = ERR_INIT;
    struct store *s = NULL;
    json_t *json = o->json ? json_object() : NULL;
    const char *name = o->pos[1];
    size_t problems = 0;
    int ret = 0;

    if (open_env(o, cfg, &s, &err) < 0 || cli_backends_check_used(cfg, s, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    if (name && !cli_config_has_backend(cfg, name)) {
        err_set(&err, ERR_NOTFOUND,
                "there is no backend '%s': it is hosted or a [backend.NAME] section", name);
        ret = cli_fail(&err);
        goto out;
    }
    if (name) {
        ret = check_one(cfg, s, name, json, &problems, &err);
    } else {
        ret = check_one(cfg, s, BACKEND_HOSTED, json, &problems, &err);
        for (size_t i = 0; i < cfg->nbackends && ret == 0; i++)
            ret = check_one(cfg, s, cfg->backends[i].name, json, &problems, &err);
    }
    if (ret < 0) {
        ret = cli_fail(&err);
    } else {
        if (json)
            print_json(json_incref(json));
        /* each problem has its line on stderr */
        ret = problems ? 1 : 0;
    }
out:
    json_decref(json);
    store_close(s);
    free(cfg);
    return ret;
}

/* Writes `data` to `path` atomically (a temporary file beside it, then rename), mode 0600. */
static int write_private(const char *path, const struct buf *data, bool force, struct err *err)
{
    struct buf tmp = BUF_INIT(8192);
    int fd = -1, ret = -1;

    buf_addf(&tmp, "%s.tmp-XXXXXX", path);
    if (buf_check(&tmp, "the file name", err) < 0)
        goto out;
    fd = mkstemp(tmp.ptr);
    if (fd < 0) {
        err_set(err, ERR_INTERNAL, "cannot write beside '%s': %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write(fd, data->ptr, data->len) != (ssize_t)data->len ||
        fsync(fd) != 0) {
        err_set(err, ERR_INTERNAL, "cannot write '%s': %s", tmp.ptr, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (force ? rename(tmp.ptr, path) != 0 : link(tmp.ptr, path) != 0) {
        err_set(err, ERR_INTERNAL, "cannot write '%s': %s", path, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp.len && (ret < 0 || !force))
        unlink(tmp.ptr);
    buf_release(&tmp);
    return ret;
}

/* A small file (the API key) into `out`, at most its cap. */
static int read_small(const char *path, struct buf *out, struct err *err)
{
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    size_t n;

    if (!f)
        return err_set(err, ERR_INVALID, "cannot read '%s': %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(out, chunk, n);
    explicit_bzero(chunk, sizeof(chunk));
    fclose(f);
    return buf_check(out, "the API key file", err);
}

static int cmd_enrol(const struct cli_opts *o)
{
    struct cli_config *cfg = xmalloc(sizeof(*cfg));
    struct backend_settings *set = xcalloc(1, sizeof(*set));
    struct obf_enrolment en = { 0 };
    struct err err = ERR_INIT;
    struct buf key = BUF_INIT(64 * 1024);
    const char *name = o->pos[1];
    char when[21];
    int ret = 1;

    if (!name || !o->api_key) {
        ret = cli_usage_error("backend obf-enrol", "needs NAME and --api-key FILE");
        goto out;
    }
    if (cli_config_resolve_enrolling(cfg, o, name, &err) < 0 ||
        cli_config_backend(cfg, name, set, &err) < 0)
        goto fail;
    if (strcmp(set->type->name, "obf") != 0 || set->u.obf.api != OBF_API_V1) {
        err_set(&err, ERR_INVALID,
                "[backend.%s]: obf-enrol is for type = obf with api = v1 (client certificates)",
                name);
        goto fail;
    }
    if (!o->force) {
        const char *files[] = { set->u.obf.certificate, set->u.obf.key };

        for (size_t i = 0; i < 2; i++) {
            if (access(files[i], F_OK) == 0) {
                err_set(&err, ERR_CONFLICT, "'%s' exists: give --force to replace it", files[i]);
                goto fail;
            }
        }
    }
    if (read_small(o->api_key, &key, &err) < 0 ||
        backend_obf_enrol(&set->u.obf, key.ptr, key.len, &en, &err) < 0)
        goto fail;
    /* the key first: a certificate is never left without it */
    if (write_private(set->u.obf.key, &en.key_pem, o->force, &err) < 0 ||
        write_private(set->u.obf.certificate, &en.cert_pem, o->force, &err) < 0)
        goto fail;
    util_iso8601(en.not_after, when);
    printf("client=%s\ncertificate=%s\nkey=%s\nexpires=%s\n", en.client_id, set->u.obf.certificate,
           set->u.obf.key, when);
    ret = 0;
    goto out;
fail:
    ret = cli_fail(&err);
out:
    backend_obf_enrolment_release(&en);
    if (key.len)
        explicit_bzero(key.ptr, key.len);
    buf_release(&key);
    backend_settings_wipe(set);
    free(set);
    free(cfg);
    return ret;
}

int cli_cmd_backend(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *verb = argc > 2 ? argv[2] : NULL;
    size_t npos;

    if (!verb)
        return cli_usage_error("backend", "missing subcommand (list, check or obf-enrol)");
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        fputs(backend_usage, stdout);
        return 0;
    }
    if (strcmp(verb, "list") == 0)
        npos = 0;
    else if (strcmp(verb, "check") == 0 || strcmp(verb, "obf-enrol") == 0)
        npos = 1;
    else
        return cli_usage_error("backend", "unknown subcommand '%s'", verb);
    /* pos[0] is the verb itself */
    if (cli_parse_opts(argc, argv, 2,
                       strcmp(verb, "obf-enrol") == 0 ? "config,db,api-key,force"
                                                      : "config,db,json",
                       npos + 1, &o, &err) < 0) {
        char cmd[32];

        snprintf(cmd, sizeof(cmd), "backend %s", verb);
        return cli_usage_error(cmd, "%s", err.msg);
    }
    if (o.help) {
        fputs(backend_usage, stdout);
        return 0;
    }
    if (strcmp(verb, "obf-enrol") == 0)
        return cmd_enrol(&o);
    return strcmp(verb, "list") == 0 ? cmd_list(&o) : cmd_check(&o);
}
