/*
 * cli/cli.h - the ltibadges command line: configuration and commands.
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include "base/base.h"

struct store;
struct store_pg;

/* Everything configurable, after defaults, the INI file, environment and flags. */
struct cli_config {
    char listen_host[256];
    unsigned listen_port;
    char db[4096];                      /* [database] path: a sqlite database */
    bool db_path_set;                   /* path given (file, LTIBADGES_DB, --db), not the default */
    char db_url[LIMIT_DB_URL_LEN];      /* [database] url: PostgreSQL; "" for sqlite */
    unsigned db_pool;                   /* [database] pool: PostgreSQL connections */
    int64_t awards_lease;               /* [awards] lease: seconds */
    char public_url[LIMIT_LTI_URL_LEN]; /* normalized, "" when not set */
    size_t max_body;
    size_t max_header;       /* [server] max_header: request line and header fields, bytes */
    unsigned header_timeout; /* [server] header_timeout: seconds */
    int64_t oauth_window;
    int64_t session_ttl;
    unsigned threads;
    char access_log[4096]; /* "-" for stderr, "off", or a file */
    /* how the server is observed: /metrics and the log */
    bool metrics_off;
    char trusted_proxies[1024];    /* [server] trusted_proxies: whose X-Forwarded-For counts */
    char former_public_urls[4096]; /* normalized, separated by blanks; "" when none */
    char metrics_allow[1024];      /* address ranges besides loopback that may read /metrics */
    char metrics_listen_host[256]; /* "": /metrics on the main address */
    unsigned metrics_listen_port;
    bool log_json;               /* log_format = json */
    char log_file[4096];         /* "": stderr */
    int64_t health_outbox_stuck; /* seconds an outbox item may be due before /healthz fails */
    char tool_title[256];
    char tool_description[1024];
    char locale_dir[4096]; /* page translations; "": beside the program, else the installed ones */
    /* the built-in issuer's profile ([issuer]); empty: defaults (see README) */
    char issuer_name[256];
    char issuer_url[LIMIT_LTI_URL_LEN];
    char issuer_email[256];
    char issuer_description[1024];
    char issuer_image[LIMIT_LTI_URL_LEN];
    /* LTI Basic Outcomes to the LMS ([outcomes]) */
    int64_t outcomes_read_interval;                     /* seconds; 0: read at launch only */
    int64_t outcomes_rate;                              /* requests per consumer per second */
    int64_t outcomes_connect_timeout, outcomes_timeout; /* seconds */
    bool outcomes_allow_loopback;
    char outcomes_ca_file[4096]; /* "": the system's CA bundle */
    /* e-mail to learners: address confirmation links ([email]) */
    char email_smtp_url[LIMIT_LTI_URL_LEN]; /* "": no mail */
    char email_username[256], email_password[256];
    char email_from[LIMIT_MAIL_ADDRESS_LEN + 1];
    char email_from_name[LIMIT_MAIL_NAME_LEN + 1];
    bool email_starttls; /* smtp://: STARTTLS required (default true) */
    bool email_allow_loopback;
    bool issuer_show_holders;      /* BadgeClass pages say how many hold the badge */
    bool email_accept_unconfirmed; /* without smtp_url: take a learner's address as given */
    char email_ca_file[4096];      /* "": the system's CA bundle */
    /*
     * [awards] backend and the [backend.NAME] sections as read: keys and
     * values as text in `bpool`, each section checked whole once the file
     * and the environment are read (cli_config_backends_check).
     */
    char awards_backend[LIMIT_BACKEND_NAME_LEN + 1]; /* default for consumers without their own */
    /* `backend obf-enrol NAME`: NAME's certificate and key files need not exist yet */
    char enrolling[LIMIT_BACKEND_NAME_LEN + 1];
    size_t nbackends;
    struct cli_backend_section {
        char name[LIMIT_BACKEND_NAME_LEN + 1];
        size_t origin; /* in bpool: "FILE [backend.NAME]" */
    } backends[LIMIT_BACKENDS];
    size_t nbentries;
    struct cli_backend_entry {
        size_t section;         /* index into backends */
        size_t key, value, env; /* in bpool; env: the variable's name, 0 for the file */
    } bentries[LIMIT_BACKEND_CONFIG_ENTRIES];
    size_t bpool_used;
    char bpool[LIMIT_BACKEND_CONFIG_BYTES];
};

/* Sets the built-in defaults. */
void cli_config_defaults(struct cli_config *c);
/*
 * That [database] names one database: 'url' (PostgreSQL) and 'path'
 * (sqlite) both set is ERR_INVALID naming both keys. cli_config_resolve()
 * runs it once the file, the environment and the flags are read.
 */
int cli_config_check_database(const struct cli_config *c, struct err *err);
/*
 * The database as messages and logs name it: the sqlite path, or the
 * PostgreSQL URL with its password replaced by "***" (store_pg_url_redact).
 */
void cli_config_database_name(const struct cli_config *c, char *out, size_t outlen);
/* Reads an INI file; unknown sections or keys and bad values fail, naming the key. */
int cli_config_load_file(struct cli_config *c, const char *path, struct err *err);
/* The same for INI text in memory (NUL-terminated); `origin` names it in messages. */
int cli_config_load_string(struct cli_config *c, const char *text, const char *origin,
                           struct err *err);
/* Sets one key ("server.listen", ...) from a string; `origin` names where it came from. */
int cli_config_set(struct cli_config *c, const char *key, const char *value, const char *origin,
                   struct err *err);

struct net_mail_config;
/*
 * The [email] section as a mail config (its strings borrowed from `c`),
 * checked as a whole: with smtp_url, a valid `from`, a user name and a
 * password together and only over TLS, no accept_unconfirmed (it is for
 * running without mail). ERR_INVALID naming the key. `out` is left with
 * no URL (mail off) when smtp_url is empty.
 */
int cli_config_mail(const struct cli_config *c, struct net_mail_config *out /* OUT */,
                    struct err *err);

struct backend_settings;
/*
 * Checks every [backend.NAME] section whole (backend_settings_check) and
 * that [awards] backend is "hosted" or one of them: ERR_INVALID in one line
 * naming the section and the key, never a secret. cli_config_resolve()
 * runs it.
 */
int cli_config_backends_check(const struct cli_config *c, struct err *err);
/*
 * The settings of the section `name` (checked whole); ERR_NOTFOUND when the
 * configuration has no such section. Wipe them after use
 * (backend_settings_wipe): they hold its secrets.
 */
int cli_config_backend(const struct cli_config *c, const char *name,
                       struct backend_settings *out /* OUT */, struct err *err);
/* Whether `name` is "hosted" or a [backend.NAME] section of the configuration. */
bool cli_config_has_backend(const struct cli_config *c, const char *name);

/* The public base URL: public_url, else http://HOST:PORT of listen (as the server uses). */
void cli_config_public_url(const struct cli_config *c, char *out, size_t outlen);

/* Parsed command-line options of one command. */
/* An option given several times, or with several values after it (--context A B C). */
struct cli_list {
    const char *v[64];
    size_t n;
};

struct cli_opts {
    const char *config, *db, *listen, *public_url, *key, *secret;
    bool json, demo, help;
    /* courses, badges, grades and awards */
    const char *consumer, *resource_link, *score, *user, *badge, *state, *reason;
    const char *name, *description, *image, *mode, *slug, *criteria_url, *criteria;
    const char *issuing_component, *backend_id, *expires_days, *rule, *narrative;
    const char *passback_score, *revoke_on_withdrawn;
    const char *to;      /* migrate --to VERSION, db copy --to URL */
    const char *from;    /* db copy --from PATH */
    bool replace;        /* db copy --replace: what the target holds */
    const char *backend; /* consumer add, badge create|set, award list --backend NAME */
    const char *api_key; /* backend obf-enrol --api-key FILE */
    bool force;          /* backend obf-enrol --force: over existing files */
    struct cli_list context, tag, alignment;
    const char *pos[8];
    size_t npos;
};

/* The configuration file read when neither --config nor LTIBADGES_CONFIG names one (if it exists).
 */
#ifndef CLI_DEFAULT_CONFIG
# define CLI_DEFAULT_CONFIG "/etc/ltibadges/ltibadges.ini"
#endif

/*
 * --config and --db given before the command (`ltibadges --db X consumer
 * list`), borrowed from argv: cli_parse_opts() takes them as if given after
 * it (and the same option given both before and after is an error).
 */
void cli_set_global_opts(const char *config, const char *db);

/*
 * Parses argv[first..] for a command accepting the options named in `allowed`
 * (e.g. "config,db,json"); unknown options and extra arguments fail.
 */
int cli_parse_opts(int argc, char **argv, int first, const char *allowed, size_t max_pos,
                   struct cli_opts *o /* OUT */, struct err *err);
/*
 * Loads defaults, the configuration file, environment and the flags of `o`,
 * in that order. The file is --config, else $LTIBADGES_CONFIG (empty: none),
 * else CLI_DEFAULT_CONFIG when it exists. A relative path in the file
 * (database path, access_log, locale_dir, ca_file) is relative to the
 * file's directory; one given by a flag or the environment, to the current
 * directory.
 */
int cli_config_resolve(struct cli_config *c, const struct cli_opts *o, struct err *err);
/* The same, with backend `enrolling`'s certificate and key files not yet there (obf-enrol). */
int cli_config_resolve_enrolling(struct cli_config *c, const struct cli_opts *o,
                                 const char *enrolling, struct err *err);

int cli_cmd_serve(int argc, char **argv);
int cli_cmd_consumer(int argc, char **argv);
int cli_cmd_migrate(int argc, char **argv);
int cli_cmd_db(int argc, char **argv);
int cli_cmd_context(int argc, char **argv);
int cli_cmd_group(int argc, char **argv);
int cli_cmd_badge(int argc, char **argv);
int cli_cmd_grade(int argc, char **argv);
int cli_cmd_award(int argc, char **argv);
int cli_cmd_outcome(int argc, char **argv);
int cli_cmd_backend(int argc, char **argv);
int cli_cmd_user(int argc, char **argv);
int cli_cmd_session(int argc, char **argv);

struct awards;
/*
 * That every backend consumers and BadgeClasses of `s` name is "hosted" or
 * a section of `c`: ERR_INVALID naming the section otherwise. `serve` and
 * every command that uses a backend run it first.
 */
int cli_backends_check_used(const struct cli_config *c, struct store *s, struct err *err);
/*
 * Makes the backend of each [backend.NAME] section of `c` and registers it
 * with `a` under its name (backend_from_settings); the first that cannot be
 * made fails, naming its section.
 */
int cli_backends_register(const struct cli_config *c, struct awards *a, struct err *err);

/*
 * Says on `f` what the migrations that opening `s` ran did to the stored
 * SVG images (store_svg_migrated), when they checked any: "<prefix>stored
 * SVG images: N checked, M changed by the SVG rule (...)". `migrate` says
 * it on stdout, every other command on stderr.
 */
void cli_report_svg_migration(struct store *s, FILE *f, const char *prefix);
/*
 * Opens the database of `cfg` (store_open's `flags`): a command other than
 * serve and db migrate passes STORE_OPEN_NO_CREATE, and a missing database
 * is then ERR_NOTFOUND naming its path and how to create it.
 */
int cli_store_open(const struct cli_config *cfg, unsigned flags, struct store **s /* OUT */,
                   struct err *err);
/*
 * The PostgreSQL database of `cfg` ([database] url): reachable, and its
 * schema migrated unless `flags` has STORE_OPEN_NO_MIGRATE (serve's start,
 * under the advisory lock) or only read; a migration is said on stderr, or
 * in the log with STORE_OPEN_WRITER (serve). `version`: the schema version.
 * ERR_UNAVAILABLE naming the database (its URL redacted) with libpq's
 * reason when it cannot be reached; ERR_INVALID for a newer schema.
 * With `keep`, its connections are handed back there (for store_open_on_pg)
 * instead of closed.
 */
int cli_store_open_pg(const struct cli_config *cfg, unsigned flags, int *version /* OUT */,
                      struct store_pg **keep /* OUT, optional */, struct err *err);
/* Prints "ltibadges: <msg>" (and the detail when LTIBADGES_DEBUG is set); returns 1. */
int cli_fail(const struct err *err);
/* Prints a usage error naming the command; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
