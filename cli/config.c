/*
 * cli/config.c - configuration: built-in defaults, then the INI file
 * (libinih), then environment variables, then command-line flags.
 *
 * Every key is checked when it is read: an unknown key or a bad value stops
 * the program with a message naming the key and where it came from, rather
 * than running with a configuration the operator did not mean.
 */
#include "base/base.h"
#include "backends/backends.h"
#include "net/net.h"
#include "cli/cli.h"
#include "store/store.h"
#include "lti/lti.h"
#include "web/web.h"

#include <ctype.h>
#include <ini.h>
#include <strings.h>
#include <unistd.h>

void cli_config_defaults(struct cli_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
    c->listen_port = 8080;
    snprintf(c->db, sizeof(c->db), "ltibadges.db");
    c->db_pool = LIMIT_DB_POOL_DEFAULT;
    c->awards_lease = LIMIT_AWARDS_LEASE;
    c->max_body = LIMIT_LAUNCH_BODY_DEFAULT;
    c->max_header = LIMIT_HTTP_HEADER_DEFAULT;
    c->header_timeout = LIMIT_HTTP_HEADER_TIMEOUT_DEFAULT;
    c->oauth_window = LIMIT_OAUTH_WINDOW_DEFAULT;
    c->session_ttl = LIMIT_SESSION_TTL_DEFAULT;
    c->threads = 2;
    c->outcomes_read_interval = LIMIT_OUTCOME_READ_INTERVAL_DEFAULT;
    c->outcomes_rate = (int64_t)LIMIT_OUTCOME_RATE_DEFAULT;
    c->outcomes_connect_timeout = 5;
    c->outcomes_timeout = 20;
    snprintf(c->access_log, sizeof(c->access_log), "-");
    snprintf(c->tool_title, sizeof(c->tool_title), "Badges");
    snprintf(c->tool_description, sizeof(c->tool_description),
             "Open Badges for this course: see the badges you earned and how to earn the others.");
    c->email_starttls = true;
    c->health_outbox_stuck = 900;
    snprintf(c->awards_backend, sizeof(c->awards_backend), BACKEND_HOSTED);
    c->bpool_used = 1; /* offset 0 is "none" */
}

/*
 * What a host name, an IPv4 address or an IPv6 address (with its zone,
 * "fe80::1%eth0") is made of. The host also makes the public URL when
 * public_url is not set, so a space, a control character or a URL
 * delimiter (/ ? # @ [ ]) is refused here rather than written into links.
 */
static bool host_chars_ok(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_' || ch == ':' || ch == '%'))
            return false;
    }
    return true;
}

/*
 * Only what RFC 3986 lets a URL hold (letters, digits, its delimiters and
 * '%'): the public URL goes into every link, the launch URL consumers sign
 * and the ids of Open Badges documents, where a space or a control
 * character in its path would break them.
 */
static bool url_chars_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || strchr("\"<>\\^`{|}", *p))
            return false;
    }
    return true;
}

/* HOST:PORT ([v6]:PORT) of key `key` into `host` (256 bytes) and `*port`. */
static int set_hostport(char host_out[static 256], unsigned *port_out, const char *v,
                        const char *key, const char *origin, struct err *err)
{
    const char *colon = strrchr(v, ':');
    int64_t port;
    const char *host = v;
    size_t hlen;

    if (!colon || str_to_i64(str_from_cstr(colon + 1), 0, 65535, &port) < 0)
        return err_set(err, ERR_INVALID, "%s: '%s' must be HOST:PORT, got '%s'", origin, key, v);
    hlen = (size_t)(colon - v);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= 256 || !host_chars_ok(host, hlen))
        return err_set(err, ERR_INVALID, "%s: '%s' has no valid host in '%s'", origin, key, v);
    memcpy(host_out, host, hlen);
    host_out[hlen] = '\0';
    *port_out = (unsigned)port;
    return 0;
}

/*
 * A public URL (`key` names it in messages) normalized into `out`
 * (LIMIT_LTI_URL_LEN bytes), its trailing slashes removed.
 */
static int public_url(char *out, const char *v, const char *key, const char *origin,
                      struct err *err)
{
    struct buf b = BUF_INIT(LIMIT_LTI_URL_LEN - 1);
    struct err e = ERR_INIT;
    size_t len;

    if (lti_url_normalize(&b, str_from_cstr(v), NULL, &e) < 0 || strchr(v, '?') || strchr(v, '#') ||
        !url_chars_ok(v)) {
        buf_release(&b);
        return err_set(err, ERR_INVALID,
                       "%s: '%s' must be an absolute http(s) URL without query, got '%s'%s%s",
                       origin, key, v, e.msg[0] ? ": " : "", e.msg);
    }
    len = b.len;
    while (len && b.ptr[len - 1] == '/')
        len--;
    memcpy(out, b.ptr, len);
    out[len] = '\0';
    buf_release(&b);
    return 0;
}

static int set_listen(struct cli_config *c, const char *v, const char *origin, struct err *err)
{
    return set_hostport(c->listen_host, &c->listen_port, v, "listen", origin, err);
}

static int set_int(int64_t *out, const char *v, int64_t min, int64_t max, const char *key,
                   const char *origin, struct err *err)
{
    if (str_to_i64(str_from_cstr(v), min, max, out) < 0)
        return err_set(err, ERR_INVALID,
                       "%s: '%s' must be a whole number from %" PRId64 " to %" PRId64 ", got '%s'",
                       origin, key, min, max, v);
    return 0;
}

static int set_bool(bool *out, const char *v, const char *key, const char *origin, struct err *err)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return err_set(err, ERR_INVALID, "%s: '%s' must be true or false, got '%s'", origin, key,
                       v);
    return 0;
}

static int set_text(char *dst, size_t dstlen, const char *v, const char *key, const char *origin,
                    struct err *err)
{
    size_t n = strlen(v);

    if (n >= dstlen)
        return err_set(err, ERR_INVALID, "%s: '%s' is longer than %zu bytes", origin, key,
                       dstlen - 1);
    if (str_has_ctl(str_from_cstr(v)))
        return err_set(err, ERR_INVALID, "%s: '%s' contains control characters", origin, key);
    memcpy(dst, v, n + 1);
    return 0;
}

/* The keys of [server] that say how the server is observed: metrics and logs. */
static int set_observing(struct cli_config *c, const char *key, const char *v, const char *origin,
                         struct err *err)
{
    if (strcmp(key, "metrics") == 0) {
        bool on = strcmp(v, "on") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
                  strcmp(v, "1") == 0;

        if (!on && strcmp(v, "off") != 0 && strcmp(v, "false") != 0 && strcmp(v, "no") != 0 &&
            strcmp(v, "0") != 0)
            return err_set(err, ERR_INVALID, "%s: 'metrics' must be on or off, got '%s'", origin,
                           v);
        c->metrics_off = !on;
        return 0;
    }
    if (strcmp(key, "metrics_allow") == 0) {
        struct web_cidr cidrs[LIMIT_METRICS_ALLOW];
        struct err e = ERR_INIT;
        size_t n;

        if (web_cidrs_parse(v, cidrs, LIMIT_METRICS_ALLOW, &n, &e) < 0)
            return err_set(err, ERR_INVALID, "%s: 'metrics_allow': %s", origin, e.msg);
        return set_text(c->metrics_allow, sizeof(c->metrics_allow), v, "metrics_allow", origin,
                        err);
    }
    if (strcmp(key, "metrics_listen") == 0) {
        if (v[0] == '\0') {
            c->metrics_listen_host[0] = '\0';
            return 0;
        }
        return set_hostport(c->metrics_listen_host, &c->metrics_listen_port, v, "metrics_listen",
                            origin, err);
    }
    if (strcmp(key, "log_format") == 0) {
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
            return err_set(err, ERR_INVALID, "%s: 'log_format' must be text or json, got '%s'",
                           origin, v);
        c->log_json = v[0] == 'j';
        return 0;
    }
    if (strcmp(key, "health_outbox_stuck") == 0)
        return set_int(&c->health_outbox_stuck, v, 1, 7 * 24 * 3600, "health_outbox_stuck", origin,
                       err);
    if (strcmp(key, "log_file") == 0)
        return set_text(c->log_file, sizeof(c->log_file), v, "log_file", origin, err);
    return 1; /* not one of these */
}

/* A key of [email]; whether the section holds together is checked by cli_config_mail(). */
static int set_email(struct cli_config *c, const char *key, const char *v, const char *origin,
                     struct err *err)
{
    if (strcmp(key, "smtp_url") == 0) {
        if (v[0] && strncasecmp(v, "smtp://", 7) != 0 && strncasecmp(v, "smtps://", 8) != 0)
            return err_set(err, ERR_INVALID,
                           "%s: 'smtp_url' must be smtp://HOST[:PORT] or smtps://HOST[:PORT], "
                           "got '%s'",
                           origin, v);
        return set_text(c->email_smtp_url, sizeof(c->email_smtp_url), v, "smtp_url", origin, err);
    }
    if (strcmp(key, "username") == 0)
        return set_text(c->email_username, sizeof(c->email_username), v, "username", origin, err);
    /* set_text never echoes the value: the password stays out of messages */
    if (strcmp(key, "password") == 0)
        return set_text(c->email_password, sizeof(c->email_password), v, "password", origin, err);
    if (strcmp(key, "from") == 0) {
        if (v[0] && !net_mail_address_valid(v))
            return err_set(err, ERR_INVALID,
                           "%s: 'from' must be a plain e-mail address such as "
                           "badges@example.edu, got '%s'",
                           origin, v);
        return set_text(c->email_from, sizeof(c->email_from), v, "from", origin, err);
    }
    if (strcmp(key, "from_name") == 0)
        return set_text(c->email_from_name, sizeof(c->email_from_name), v, "from_name", origin,
                        err);
    if (strcmp(key, "starttls") == 0)
        return set_bool(&c->email_starttls, v, "starttls", origin, err);
    if (strcmp(key, "allow_loopback") == 0)
        return set_bool(&c->email_allow_loopback, v, "allow_loopback", origin, err);
    if (strcmp(key, "accept_unconfirmed") == 0)
        return set_bool(&c->email_accept_unconfirmed, v, "accept_unconfirmed", origin, err);
    if (strcmp(key, "ca_file") == 0)
        return set_text(c->email_ca_file, sizeof(c->email_ca_file), v, "ca_file", origin, err);
    return err_set(err, ERR_INVALID, "%s: unknown key 'email.%s'", origin, key);
}

int cli_config_mail(const struct cli_config *c, struct net_mail_config *out, struct err *err)
{
    struct err e = ERR_INIT;

    net_mail_config_init(out);
    if (!c->email_smtp_url[0]) {
        if (c->email_from[0] || c->email_username[0] || c->email_password[0])
            return err_set(err, ERR_INVALID,
                           "[email]: 'from', 'username' and 'password' need 'smtp_url'");
        return 0;
    }
    if (c->email_accept_unconfirmed)
        return err_set(err, ERR_INVALID,
                       "[email]: 'accept_unconfirmed' is for running without 'smtp_url': with "
                       "mail, addresses are confirmed");
    if (!c->email_from[0])
        return err_set(err, ERR_INVALID,
                       "[email]: 'from' (the sender address) is needed with 'smtp_url'");
    if (!c->email_username[0] != !c->email_password[0])
        return err_set(err, ERR_INVALID, "[email]: 'username' and 'password' go together");
    out->url = c->email_smtp_url;
    out->from = c->email_from;
    out->from_name = c->email_from_name[0] ? c->email_from_name : NULL;
    out->username = c->email_username[0] ? c->email_username : NULL;
    out->password = c->email_password[0] ? c->email_password : NULL;
    out->starttls = c->email_starttls;
    out->allow_loopback = c->email_allow_loopback;
    out->ca_file = c->email_ca_file[0] ? c->email_ca_file : NULL;
    if (net_mail_config_check(out, &e) < 0) {
        net_mail_config_init(out);
        return err_set(err, ERR_INVALID, "[email]: %s", e.msg);
    }
    return 0;
}

/* A copy of `v` in the pool of backend settings; its offset, 0 when the pool is full. */
static size_t bpool_add(struct cli_config *c, const char *v)
{
    size_t n = strlen(v) + 1, off = c->bpool_used;

    if (n > sizeof(c->bpool) - c->bpool_used)
        return 0;
    memcpy(c->bpool + off, v, n);
    c->bpool_used += n;
    return off;
}

/*
 * The index of the section called `name` (namelen bytes), made at its first
 * key (`origin` names it in messages); -1 for a bad name or one too many.
 */
static int backend_section(struct cli_config *c, const char *name, size_t namelen,
                           const char *origin, struct err *err)
{
    char nm[LIMIT_BACKEND_NAME_LEN + 1] = "";
    struct cli_backend_section *b;

    for (size_t i = 0; i < c->nbackends; i++) {
        if (strlen(c->backends[i].name) == namelen &&
            strncmp(c->backends[i].name, name, namelen) == 0)
            return (int)i;
    }
    if (namelen <= LIMIT_BACKEND_NAME_LEN) {
        memcpy(nm, name, namelen);
        nm[namelen] = '\0';
    }
    if (!backend_name_valid(nm))
        return err_set(err, ERR_INVALID,
                       "%s: a backend section is [backend.NAME], NAME 1 to %d lower-case "
                       "letters, digits and '-'",
                       origin, LIMIT_BACKEND_NAME_LEN);
    if (c->nbackends == LIMIT_BACKENDS)
        return err_set(err, ERR_INVALID, "%s: at most %d backend sections", origin, LIMIT_BACKENDS);
    b = &c->backends[c->nbackends];
    snprintf(b->name, sizeof(b->name), "%s", nm);
    b->origin = bpool_add(c, origin);
    if (!b->origin)
        return err_set(err, ERR_INVALID, "%s: the backend sections are too long", origin);
    return (int)c->nbackends++;
}

/* One key of a [backend.NAME] section (`env`: the variable it came from, NULL: the file). */
static int backend_key_add(struct cli_config *c, size_t section, const char *key, const char *v,
                           const char *env, const char *origin, struct err *err)
{
    struct cli_backend_entry *e;

    if (c->nbentries == LIMIT_BACKEND_CONFIG_ENTRIES)
        return err_set(err, ERR_INVALID, "%s: too many backend keys (at most %d)", origin,
                       LIMIT_BACKEND_CONFIG_ENTRIES);
    e = &c->bentries[c->nbentries];
    e->section = section;
    e->env = env ? bpool_add(c, env) : 0;
    e->key = bpool_add(c, key);
    e->value = bpool_add(c, v);
    if (!e->key || !e->value || (env && !e->env))
        return err_set(err, ERR_INVALID, "%s: the backend sections are too long (at most %d bytes)",
                       origin, LIMIT_BACKEND_CONFIG_BYTES);
    c->nbentries++;
    return 0;
}

/* "backend.NAME.KEY": kept as text, checked with its whole section (cli_config_backends_check). */
static int set_backend(struct cli_config *c, const char *key, const char *v, const char *origin,
                       struct err *err)
{
    const char *name = key + 8, *dot = strrchr(name, '.');
    int sec;

    if (!dot)
        return err_set(err, ERR_INVALID, "%s: a backend section is [backend.NAME]", origin);
    sec = backend_section(c, name, (size_t)(dot - name), origin, err);
    if (sec < 0)
        return -1;
    /* a key that long is none of any type's: refused at once, with its line */
    if (strlen(dot + 1) > 32)
        return err_set(err, ERR_INVALID, "%s: unknown key '%.32s...'", origin, dot + 1);
    return backend_key_add(c, (size_t)sec, dot + 1, v, NULL, origin, err);
}

/* The last value of `key` in section `sec`, NULL when none. */
static const char *backend_value(const struct cli_config *c, size_t sec, const char *key)
{
    for (size_t i = c->nbentries; i-- > 0;) {
        const struct cli_backend_entry *e = &c->bentries[i];

        if (e->section == sec && strcmp(c->bpool + e->key, key) == 0)
            return c->bpool + e->value;
    }
    return NULL;
}

/*
 * The secrets of each section's type from LTIBADGES_BACKEND_<NAME>_<KEY>
 * (NAME upper-cased, '-' made '_'), after the file's: set and not empty,
 * a variable wins over the file.
 */
static int load_backend_env(struct cli_config *c, struct err *err)
{
    size_t nsec = c->nbackends;

    for (size_t i = 0; i < nsec; i++) {
        const struct backend_type *t = backend_type_find(backend_value(c, i, "type"));

        for (size_t k = 0; t && k < t->nkeys; k++) {
            char env[128], origin[200];
            const char *v;
            size_t j;

            if (!t->keys[k].secret)
                continue;
            j = (size_t)snprintf(env, sizeof(env), "LTIBADGES_BACKEND_");
            for (const char *p = c->backends[i].name; *p; p++)
                env[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
            env[j++] = '_';
            for (const char *p = t->keys[k].name; *p; p++)
                env[j++] = (char)toupper((unsigned char)*p);
            env[j] = '\0';
            v = getenv(env);
            if (!v || !v[0])
                continue;
            snprintf(origin, sizeof(origin), "%s for [backend.%s]", env, c->backends[i].name);
            if (backend_key_add(c, i, t->keys[k].name, v, env, origin, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* Section `i` as backends/ reads it; its entries and origins in `ents` and `origins`. */
static void backend_section_of(const struct cli_config *c, size_t i,
                               struct backend_section_entry *ents, char (*origins)[200],
                               struct backend_section *out)
{
    size_t n = 0;

    for (size_t j = 0; j < c->nbentries; j++) {
        const struct cli_backend_entry *e = &c->bentries[j];

        if (e->section != i)
            continue;
        ents[n].key = c->bpool + e->key;
        ents[n].value = c->bpool + e->value;
        if (e->env) {
            snprintf(origins[n], sizeof(origins[n]), "%s for [backend.%s]", c->bpool + e->env,
                     c->backends[i].name);
            ents[n].origin = origins[n];
        } else {
            ents[n].origin = c->bpool + c->backends[i].origin;
        }
        n++;
    }
    out->name = c->backends[i].name;
    out->origin = c->bpool + c->backends[i].origin;
    out->entries = ents;
    out->n = n;
    out->enrolling = c->enrolling[0] && strcmp(c->enrolling, c->backends[i].name) == 0;
}

static int backend_check_at(const struct cli_config *c, size_t i, struct backend_settings *out,
                            struct err *err)
{
    struct backend_section_entry *ents = xcalloc(c->nbentries + 1, sizeof(*ents));
    char(*origins)[200] = xcalloc(c->nbentries + 1, sizeof(*origins));
    struct backend_section sec;
    int ret;

    backend_section_of(c, i, ents, origins, &sec);
    ret = backend_settings_check(&sec, out, err);
    free(ents);
    free(origins);
    return ret;
}

int cli_config_backends_check(const struct cli_config *c, struct err *err)
{
    struct backend_settings *s = xmalloc(sizeof(*s));
    int ret = 0;

    for (size_t i = 0; i < c->nbackends && ret == 0; i++)
        ret = backend_check_at(c, i, s, err);
    backend_settings_wipe(s);
    free(s);
    if (ret == 0 && !cli_config_has_backend(c, c->awards_backend))
        ret = err_set(err, ERR_INVALID,
                      "[awards]: 'backend' names '%s', but there is no [backend.%s] section",
                      c->awards_backend, c->awards_backend);
    return ret;
}

bool cli_config_has_backend(const struct cli_config *c, const char *name)
{
    if (strcmp(name, BACKEND_HOSTED) == 0)
        return true;
    for (size_t i = 0; i < c->nbackends; i++) {
        if (strcmp(c->backends[i].name, name) == 0)
            return true;
    }
    return false;
}

int cli_config_backend(const struct cli_config *c, const char *name, struct backend_settings *out,
                       struct err *err)
{
    for (size_t i = 0; i < c->nbackends; i++) {
        if (strcmp(c->backends[i].name, name) == 0)
            return backend_check_at(c, i, out, err);
    }
    return err_set(err, ERR_NOTFOUND, "the configuration has no [backend.%s] section", name);
}

int cli_config_set(struct cli_config *c, const char *key, const char *v, const char *origin,
                   struct err *err)
{
    int64_t n;

    if (strncmp(key, "backend.", 8) == 0)
        return set_backend(c, key, v, origin, err);
    if (strcmp(key, "awards.backend") == 0) {
        if (!backend_name_valid(v))
            return err_set(err, ERR_INVALID,
                           "%s: 'backend' must be hosted or the NAME of a [backend.NAME] "
                           "section, got '%s'",
                           origin, v);
        snprintf(c->awards_backend, sizeof(c->awards_backend), "%s", v);
        return 0;
    }

    if (strcmp(key, "server.listen") == 0)
        return set_listen(c, v, origin, err);
    if (strcmp(key, "server.public_url") == 0) {
        if (v[0] == '\0') {
            c->public_url[0] = '\0';
            return 0;
        }
        return public_url(c->public_url, v, "public_url", origin, err);
    }
    if (strcmp(key, "server.former_public_urls") == 0) {
        /* each normalized as public_url is, kept separated by blanks */
        size_t used = 0, count = 0;

        c->former_public_urls[0] = '\0';
        for (const char *p = v + strspn(v, ", \t"); *p; p += strspn(p, ", \t")) {
            char one[LIMIT_LTI_URL_LEN], url[LIMIT_LTI_URL_LEN];
            size_t len = strcspn(p, ", \t"), ulen;

            if (len >= sizeof(one) || ++count > LIMIT_FORMER_URLS)
                return err_set(err, ERR_INVALID,
                               "%s: 'former_public_urls' holds at most %d URLs of %zu bytes",
                               origin, LIMIT_FORMER_URLS, sizeof(one) - 1);
            memcpy(one, p, len);
            one[len] = '\0';
            p += len;
            if (public_url(url, one, "former_public_urls", origin, err) < 0)
                return -1;
            ulen = strlen(url);
            if (used + ulen + 2 > sizeof(c->former_public_urls))
                return err_set(err, ERR_INVALID, "%s: 'former_public_urls' is too long", origin);
            snprintf(c->former_public_urls + used, sizeof(c->former_public_urls) - used, "%s%s",
                     used ? " " : "", url);
            used += ulen + (used ? 1 : 0);
        }
        return 0;
    }
    if (strcmp(key, "server.trusted_proxies") == 0) {
        struct web_cidr cidrs[LIMIT_TRUSTED_PROXIES];
        struct err e = ERR_INIT;
        size_t ncidrs;

        if (web_cidrs_parse(v, cidrs, LIMIT_TRUSTED_PROXIES, &ncidrs, &e) < 0)
            return err_set(err, ERR_INVALID, "%s: 'trusted_proxies': %s", origin, e.msg);
        return set_text(c->trusted_proxies, sizeof(c->trusted_proxies), v, "trusted_proxies",
                        origin, err);
    }
    if (strcmp(key, "server.threads") == 0) {
        if (set_int(&n, v, 1, LIMIT_HTTP_THREADS_MAX, "threads", origin, err) < 0)
            return -1;
        c->threads = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "server.max_body") == 0) {
        if (set_int(&n, v, 1024, LIMIT_LAUNCH_BODY_MAX, "max_body", origin, err) < 0)
            return -1;
        c->max_body = (size_t)n;
        return 0;
    }
    if (strcmp(key, "server.max_header") == 0) {
        if (set_int(&n, v, LIMIT_HTTP_HEADER_MIN, LIMIT_HTTP_HEADER_MAX, "max_header", origin,
                    err) < 0)
            return -1;
        c->max_header = (size_t)n;
        return 0;
    }
    if (strcmp(key, "server.header_timeout") == 0) {
        if (set_int(&n, v, 1, LIMIT_HTTP_HEADER_TIMEOUT_MAX, "header_timeout", origin, err) < 0)
            return -1;
        c->header_timeout = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "server.locale_dir") == 0)
        return set_text(c->locale_dir, sizeof(c->locale_dir), v, "locale_dir", origin, err);
    if (strncmp(key, "server.", 7) == 0) {
        int r = set_observing(c, key + 7, v, origin, err);

        if (r <= 0)
            return r;
    }
    if (strcmp(key, "server.access_log") == 0)
        return set_text(c->access_log, sizeof(c->access_log), v, "access_log", origin, err);
    if (strcmp(key, "database.path") == 0) {
        if (v[0] == '\0')
            return err_set(err, ERR_INVALID, "%s: 'path' must not be empty", origin);
        c->db_path_set = true;
        return set_text(c->db, sizeof(c->db), v, "path", origin, err);
    }
    if (strcmp(key, "database.url") == 0) {
        /* set_text never echoes the value: the URL may hold the password */
        if (strncmp(v, "postgresql://", 13) != 0 && strncmp(v, "postgres://", 11) != 0)
            return err_set(err, ERR_INVALID,
                           "%s: 'url' must be a PostgreSQL URL (postgresql://USER@HOST/DATABASE)",
                           origin);
        return set_text(c->db_url, sizeof(c->db_url), v, "url", origin, err);
    }
    if (strcmp(key, "awards.lease") == 0)
        return set_int(&c->awards_lease, v, LIMIT_AWARDS_LEASE_MIN, LIMIT_AWARDS_LEASE_MAX, "lease",
                       origin, err);
    if (strcmp(key, "database.pool") == 0) {
        if (set_int(&n, v, 1, LIMIT_DB_POOL_MAX, "pool", origin, err) < 0)
            return -1;
        c->db_pool = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "lti.timestamp_window") == 0)
        return set_int(&c->oauth_window, v, 1, LIMIT_OAUTH_WINDOW_MAX, "timestamp_window", origin,
                       err);
    if (strcmp(key, "lti.session_ttl") == 0)
        return set_int(&c->session_ttl, v, 60, LIMIT_SESSION_TTL_MAX, "session_ttl", origin, err);
    if (strcmp(key, "lti.tool_title") == 0)
        return set_text(c->tool_title, sizeof(c->tool_title), v, "tool_title", origin, err);
    if (strcmp(key, "lti.tool_description") == 0)
        return set_text(c->tool_description, sizeof(c->tool_description), v, "tool_description",
                        origin, err);
    if (strcmp(key, "outcomes.read_interval") == 0)
        return set_int(&c->outcomes_read_interval, v, 0, 7 * 24 * 3600, "read_interval", origin,
                       err);
    if (strcmp(key, "outcomes.rate") == 0)
        return set_int(&c->outcomes_rate, v, 1, 1000, "rate", origin, err);
    if (strcmp(key, "outcomes.connect_timeout") == 0)
        return set_int(&c->outcomes_connect_timeout, v, 1, 60, "connect_timeout", origin, err);
    if (strcmp(key, "outcomes.timeout") == 0)
        return set_int(&c->outcomes_timeout, v, 1, 300, "timeout", origin, err);
    if (strcmp(key, "outcomes.allow_loopback") == 0)
        return set_bool(&c->outcomes_allow_loopback, v, "allow_loopback", origin, err);
    if (strcmp(key, "outcomes.ca_file") == 0)
        return set_text(c->outcomes_ca_file, sizeof(c->outcomes_ca_file), v, "ca_file", origin,
                        err);
    if (strncmp(key, "email.", 6) == 0)
        return set_email(c, key + 6, v, origin, err);
    if (strcmp(key, "issuer.show_holders") == 0)
        return set_bool(&c->issuer_show_holders, v, "show_holders", origin, err);
    {
        static const struct {
            const char *key;
            size_t off, len;
        } issuer[] = {
            { "issuer.name", offsetof(struct cli_config, issuer_name), sizeof(c->issuer_name) },
            { "issuer.url", offsetof(struct cli_config, issuer_url), sizeof(c->issuer_url) },
            { "issuer.email", offsetof(struct cli_config, issuer_email), sizeof(c->issuer_email) },
            { "issuer.description", offsetof(struct cli_config, issuer_description),
              sizeof(c->issuer_description) },
            { "issuer.image", offsetof(struct cli_config, issuer_image), sizeof(c->issuer_image) },
        };

        for (size_t i = 0; i < sizeof(issuer) / sizeof(issuer[0]); i++) {
            if (strcmp(key, issuer[i].key) == 0)
                return set_text((char *)c + issuer[i].off, issuer[i].len, v, key + 7, origin, err);
        }
    }
    return err_set(err, ERR_INVALID, "%s: unknown key '%s'", origin, key);
}

void cli_config_public_url(const struct cli_config *c, char *out, size_t outlen)
{
    if (c->public_url[0])
        snprintf(out, outlen, "%s", c->public_url);
    else if (strchr(c->listen_host, ':'))
        snprintf(out, outlen, "http://[%s]:%u", c->listen_host, c->listen_port);
    else
        snprintf(out, outlen, "http://%s:%u", c->listen_host, c->listen_port);
}

struct ini_ctx {
    struct cli_config *c;
    const char *path;
    const char *dir; /* the file's directory, for its relative paths; NULL: none (a string) */
    size_t dirlen;
    struct err *err;
    int line;
};

/* The keys whose value is a file or folder (and the values of them that are not paths). */
static bool is_path_key(const char *key, const char *v)
{
    static const char *const keys[] = { "database.path",     "server.access_log", "server.log_file",
                                        "server.locale_dir", "outcomes.ca_file",  "email.ca_file" };
    size_t n = strlen(key);

    /* backend.NAME.ca_file */
    if (strncmp(key, "backend.", 8) == 0 && n > 16 && strcmp(key + n - 8, ".ca_file") == 0)
        return true;
    if ((strcmp(key, "server.access_log") == 0 || strcmp(key, "server.log_file") == 0) &&
        (strcmp(v, "-") == 0 || strcmp(v, "off") == 0 || strcmp(v, "stderr") == 0))
        return false;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(key, keys[i]) == 0)
            return true;
    }
    return false;
}

static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *ctx = user;
    char key[256], origin[4200], joined[4200];
    const char *v = value ? value : "";

    if (ctx->err->code != ERR_NONE)
        return 0;
    snprintf(key, sizeof(key), "%s.%s", section, name);
    snprintf(origin, sizeof(origin), "%s [%s]", ctx->path, section[0] ? section : "no section");
    /* a relative path in a file is relative to the file, wherever the program is started */
    if (ctx->dir && v[0] && v[0] != '/' && is_path_key(key, v)) {
        int n = snprintf(joined, sizeof(joined), "%.*s/%s", (int)ctx->dirlen, ctx->dir, v);

        if (n < 0 || (size_t)n >= sizeof(joined)) {
            err_set(ctx->err, ERR_INVALID, "%s: '%s' is too long once joined to '%.*s'", origin,
                    name, (int)ctx->dirlen, ctx->dir);
            return 0;
        }
        v = joined;
    }
    if (cli_config_set(ctx->c, key, v, origin, ctx->err) < 0)
        return 0;
    return 1;
}

/* What ini_parse*() returned, after on_ini_line() ran on each line of `origin`. */
static int ini_result(int rc, const char *origin, struct err *err)
{
    if (err->code != ERR_NONE) {
        /* name the line too: inih reports the first line whose handler failed */
        if (rc > 0) {
            size_t n = strnlen(err->msg, sizeof(err->msg));

            snprintf(err->msg + n, sizeof(err->msg) - n, " (line %d)", rc);
        }
        return -1;
    }
    if (rc == -1)
        return err_set(err, ERR_INVALID, "cannot read config file '%s': %s", origin,
                       strerror(errno));
    if (rc == -2)
        return err_set(err, ERR_INTERNAL, "out of memory reading config file '%s'", origin);
    if (rc != 0)
        return err_set(err, ERR_INVALID, "config file '%s': syntax error on line %d", origin, rc);
    return 0;
}

int cli_config_load_file(struct cli_config *c, const char *path, struct err *err)
{
    const char *slash = strrchr(path, '/');
    /* "tool.ini": the current directory, as it is; "/tool.ini": the root */
    struct ini_ctx ctx = {
        c, path, slash ? path : ".", slash ? (size_t)(slash - path) : 1, err, 0
    };

    if (slash == path)
        ctx.dirlen = 0;
    return ini_result(ini_parse(path, on_ini_line, &ctx), path, err);
}

int cli_config_load_string(struct cli_config *c, const char *text, const char *origin,
                           struct err *err)
{
    struct ini_ctx ctx = { c, origin, NULL, 0, err, 0 };

    return ini_result(ini_parse_string(text, on_ini_line, &ctx), origin, err);
}

static int load_env(struct cli_config *c, const struct cli_opts *flags, struct err *err)
{
    const struct {
        const char *env, *key;
        bool overridden; /* a flag sets it: the environment is not even read */
    } vars[] = {
        { "LTIBADGES_LISTEN", "server.listen", flags->listen != NULL },
        { "LTIBADGES_DB", "database.path", flags->db != NULL },
        /* the database's password need not sit in the configuration file */
        { "LTIBADGES_DATABASE_URL", "database.url", false },
        { "LTIBADGES_PUBLIC_URL", "server.public_url", flags->public_url != NULL },
        /* the relay's password need not sit in the configuration file */
        { "LTIBADGES_SMTP_URL", "email.smtp_url", false },
        { "LTIBADGES_SMTP_PASSWORD", "email.password", false },
    };

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i].env);

        if (v && !vars[i].overridden && cli_config_set(c, vars[i].key, v, vars[i].env, err) < 0)
            return -1;
    }
    return 0;
}

/*
 * The configuration file to read: --config, else $LTIBADGES_CONFIG (set
 * but empty: none), else the installed one when it exists. NULL: none.
 */
static const char *config_path(const struct cli_opts *o)
{
    const char *env = getenv("LTIBADGES_CONFIG");

    if (o->config)
        return o->config;
    if (env)
        return env[0] ? env : NULL;
    return access(CLI_DEFAULT_CONFIG, F_OK) == 0 ? CLI_DEFAULT_CONFIG : NULL;
}

int cli_config_resolve(struct cli_config *c, const struct cli_opts *o, struct err *err)
{
    return cli_config_resolve_enrolling(c, o, NULL, err);
}

int cli_config_resolve_enrolling(struct cli_config *c, const struct cli_opts *o,
                                 const char *enrolling, struct err *err)
{
    const char *path = config_path(o);

    cli_config_defaults(c);
    if (enrolling)
        snprintf(c->enrolling, sizeof(c->enrolling), "%s", enrolling);
    if (path && cli_config_load_file(c, path, err) < 0)
        return -1;
    if (load_env(c, o, err) < 0 || load_backend_env(c, err) < 0)
        return -1;
    if (o->listen && cli_config_set(c, "server.listen", o->listen, "--listen", err) < 0)
        return -1;
    if (o->db && cli_config_set(c, "database.path", o->db, "--db", err) < 0)
        return -1;
    if (o->public_url &&
        cli_config_set(c, "server.public_url", o->public_url, "--public-url", err) < 0)
        return -1;
    if (cli_config_check_database(c, err) < 0)
        return -1;
    return cli_config_backends_check(c, err);
}

int cli_config_check_database(const struct cli_config *c, struct err *err)
{
    if (c->db_url[0] && c->db_path_set)
        return err_set(err, ERR_INVALID,
                       "[database]: 'url' (or LTIBADGES_DATABASE_URL) and 'path' (or "
                       "LTIBADGES_DB, --db) are both set: 'url' names a PostgreSQL database, "
                       "'path' a sqlite one; set one of them");
    return 0;
}

void cli_config_database_name(const struct cli_config *c, char *out, size_t outlen)
{
    if (c->db_url[0])
        store_pg_url_redact(c->db_url, out, outlen);
    else
        snprintf(out, outlen, "%s", c->db);
}

struct opt_spec {
    const char *name;
    int kind;   /* 0: flag, 1: one value, 2: a list */
    size_t off; /* offsetof into cli_opts */
};

#define OPT_STR(n, field)                                                                          \
 {                                                                                                 \
  n, 1, offsetof(struct cli_opts, field)                                                           \
 }
#define OPT_LIST(n, field)                                                                         \
 {                                                                                                 \
  n, 2, offsetof(struct cli_opts, field)                                                           \
 }
#define OPT_BOOL(n, field)                                                                         \
 {                                                                                                 \
  n, 0, offsetof(struct cli_opts, field)                                                           \
 }

static const struct opt_spec specs[] = {
    OPT_STR("config", config),
    OPT_STR("db", db),
    OPT_STR("listen", listen),
    OPT_STR("public-url", public_url),
    OPT_STR("key", key),
    OPT_STR("secret", secret),
    OPT_BOOL("json", json),
    OPT_BOOL("demo", demo),
    OPT_BOOL("help", help),
    OPT_BOOL("force", force),
    OPT_STR("api-key", api_key),
    OPT_STR("consumer", consumer),
    OPT_STR("resource-link", resource_link),
    OPT_STR("score", score),
    OPT_STR("user", user),
    OPT_STR("badge", badge),
    OPT_STR("state", state),
    OPT_STR("reason", reason),
    OPT_STR("to", to),
    OPT_STR("from", from),
    OPT_BOOL("replace", replace),
    OPT_STR("name", name),
    OPT_STR("description", description),
    OPT_STR("image", image),
    OPT_STR("mode", mode),
    OPT_STR("slug", slug),
    OPT_STR("criteria-url", criteria_url),
    OPT_STR("criteria", criteria),
    OPT_STR("issuing-component", issuing_component),
    OPT_STR("backend-id", backend_id),
    OPT_STR("backend", backend),
    OPT_STR("expires-days", expires_days),
    OPT_STR("rule", rule),
    OPT_STR("narrative", narrative),
    OPT_STR("passback-score", passback_score),
    OPT_STR("revoke-on-withdrawn", revoke_on_withdrawn),
    OPT_LIST("context", context),
    OPT_LIST("tag", tag),
    OPT_LIST("alignment", alignment),
};

static bool allowed_opt(const char *allowed, const char *name)
{
    size_t n = strlen(name);
    const char *p = allowed;

    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return strcmp(name, "help") == 0;
}

static const char *global_config, *global_db;

void cli_set_global_opts(const char *config, const char *db)
{
    global_config = config;
    global_db = db;
}

int cli_parse_opts(int argc, char **argv, int first, const char *allowed, size_t max_pos,
                   struct cli_opts *o, struct err *err)
{
    bool only_pos = false;

    memset(o, 0, sizeof(*o));
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const struct opt_spec *spec = NULL;
        const char *eq, *value = NULL;
        size_t nlen;

        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            if (o->npos == max_pos || o->npos == sizeof(o->pos) / sizeof(o->pos[0]))
                return err_set(err, ERR_INVALID, "unexpected argument '%s'", a);
            o->pos[o->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "-h") == 0) {
            o->help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return err_set(err, ERR_INVALID, "unknown option '%s'", a);
        a += 2;
        eq = strchr(a, '=');
        nlen = eq ? (size_t)(eq - a) : strlen(a);
        for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
            if (strlen(specs[k].name) == nlen && strncmp(specs[k].name, a, nlen) == 0) {
                spec = &specs[k];
                break;
            }
        }
        if (!spec || !allowed_opt(allowed, spec->name))
            return err_set(err, ERR_INVALID, "unknown option '--%.*s'", (int)nlen, a);
        if (spec->kind != 0) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return err_set(err, ERR_INVALID, "option '--%s' needs a value", spec->name);
        }
        if (spec->kind == 2) {
            struct cli_list *l = (struct cli_list *)(void *)((char *)o + spec->off);

            /* the value, and every following argument that is not an option */
            for (;;) {
                if (l->n == sizeof(l->v) / sizeof(l->v[0]))
                    return err_set(err, ERR_INVALID, "too many values for '--%s'", spec->name);
                l->v[l->n++] = value;
                if (eq || i + 1 >= argc || argv[i + 1][0] == '-')
                    break;
                value = argv[++i];
            }
        } else if (spec->kind == 1) {
            if (*(const char **)(void *)((char *)o + spec->off))
                return err_set(err, ERR_INVALID, "option '--%s' is given twice", spec->name);
            *(const char **)(void *)((char *)o + spec->off) = value;
        } else {
            if (eq)
                return err_set(err, ERR_INVALID, "option '--%s' takes no value", spec->name);
            *(bool *)(void *)((char *)o + spec->off) = true;
        }
    }
    /* those given before the command */
    if (global_config && o->config)
        return err_set(err, ERR_INVALID, "option '--config' is given twice");
    if (global_db && o->db)
        return err_set(err, ERR_INVALID, "option '--db' is given twice");
    if (global_config)
        o->config = global_config;
    if (global_db)
        o->db = global_db;
    return 0;
}
