/*
 * cli/db.c - `ltibadges db migrate|version|backup|restore` (and `migrate`,
 * the same as `db migrate`): the database as a whole, for upgrades and
 * backups.
 *
 * `db migrate` is the one command besides `serve` that creates a database.
 * A backup is safe while `serve` runs (sqlite's online backup); a restore
 * is refused while any other process has the database open, since a
 * running server keeps caches of what the database held (store/backup.c).
 *
 * On PostgreSQL ([database] url) `db migrate` and `db version` work on its
 * schema (store/migrate_pg.c), under the advisory lock every instance
 * takes; backups are PostgreSQL's own tools' (pg_dump). The other commands
 * and `serve` check that the database is reachable and its schema known
 * (cli_store_open_pg), then open the store on it (store_open_pool).
 *
 * `db copy` moves a sqlite database into PostgreSQL (store/copy.c: what it
 * copies, what it leaves, the one transaction); here only the options,
 * the names shown (the URL never with its password) and the report.
 */
#include "base/base.h"
#include "base/log.h"
#include "cli/cli.h"
#include "store/store.h"

#include <jansson.h>

static const char db_usage[] =
    "usage: ltibadges db migrate [--to VERSION]\n"
    "       ltibadges db version [--json]\n"
    "       ltibadges db stats [--json]\n"
    "       ltibadges db backup FILE\n"
    "       ltibadges db restore FILE\n"
    "       ltibadges db copy --from PATH [--to URL] [--replace] [--json]\n"
    "\n"
    "The database as a whole (every command also takes --db PATH and --config FILE).\n"
    "  migrate  creates the database if needed and applies pending schema migrations,\n"
    "           up to schema VERSION only with --to ('ltibadges serve' applies them at\n"
    "           start too). 'ltibadges migrate' is the same command.\n"
    "  version  the schema version of the database and the one this program writes\n"
    "  stats    how many consumers, nonces, users, courses, links, enrollments, grade\n"
    "           columns, sessions, BadgeClasses, awards, grades and completions it holds\n"
    "  backup   copies the database into the new file FILE (mode 0600), consistent\n"
    "           even while 'ltibadges serve' runs\n"
    "  restore  replaces the database with the backup FILE, after checking it (sqlite's\n"
    "           integrity check, its schema version); refused while a server or another\n"
    "           command has the database open: stop the server first\n"
    "  copy     copies the sqlite database PATH into the PostgreSQL database URL\n"
    "           (default: the configured [database] url, LTIBADGES_DATABASE_URL) in one\n"
    "           transaction: everything but expired sessions and rate limits, and nonces\n"
    "           past the replay window. The target is migrated first and must be empty,\n"
    "           unless --replace (what it holds is replaced); PATH must be at this\n"
    "           program's schema version. Stop the server on PATH first\n";

static const char migrate_usage[] =
    "usage: ltibadges migrate [--to VERSION] [--db PATH] [--config FILE]\n"
    "\n"
    "Creates the database if needed and applies pending schema migrations, up to\n"
    "schema VERSION only with --to (a database kept readable by an older build;\n"
    "every other command migrates it to the newest). 'ltibadges serve' applies\n"
    "them at start too. The same as 'ltibadges db migrate'.\n";

int cli_store_open_pg(const struct cli_config *cfg, unsigned flags, int *version,
                      struct store_pg **keep, struct err *err)
{
    struct store_pg *pg = NULL;
    struct err e = ERR_INIT;
    char shown[LIMIT_DB_URL_LEN];
    int before = 0, applied = 0;

    cli_config_database_name(cfg, shown, sizeof(shown));
    *version = 0;
    if (store_pg_open(&pg, cfg->db_url, cfg->db_pool, &e) < 0 ||
        ((flags & STORE_OPEN_NO_MIGRATE)
             ? store_pg_schema_version(pg, &before, &e)
             : store_pg_migrate(pg, store_pg_schema_latest(), &before, &applied, &e)) < 0) {
        store_pg_close(pg);
        /* the redacted URL, and libpq's reason (store_pg_open keeps the password out of it) */
        err_set(err, e.code, "database '%s': %s", shown, e.msg);
        return err_detail(err, "%s", e.detail);
    }
    /* the version reached: migrations may jump several versions (the first makes schema 14) */
    if (applied && store_pg_schema_version(pg, version, &e) < 0) {
        store_pg_close(pg);
        err_set(err, e.code, "database '%s': %s", shown, e.msg);
        return err_detail(err, "%s", e.detail);
    }
    if (!applied)
        *version = before;
    if (keep)
        *keep = pg;
    else
        store_pg_close(pg);
    /* serve (the writer) says it in its log's format, whose lines its log readers parse */
    if (applied && (flags & STORE_OPEN_WRITER))
        LOG(LOG_LEVEL_INFO, "database migrated", LOG_STR("database", shown),
            LOG_INT("from_version", before), LOG_INT("to_version", *version));
    else if (applied)
        fprintf(stderr, "ltibadges: database '%s' migrated from schema version %d to %d\n", shown,
                before, *version);
    return 0;
}

/* A whole-file operation's error: a missing database names its path and how to create it. */
static int db_fail(const struct cli_config *cfg, const char *path, const struct err *e)
{
    struct err out = ERR_INIT;

    if (e->code == ERR_NOTFOUND && strcmp(path, cfg->db) == 0)
        err_set(&out, ERR_NOTFOUND,
                "database '%s' does not exist (create it with 'ltibadges db migrate', or "
                "'ltibadges serve' creates it)",
                path);
    else if (e->code == ERR_NOTFOUND)
        err_set(&out, ERR_NOTFOUND, "'%s' does not exist", path);
    else
        err_set(&out, e->code, "'%s': %s", path, e->msg);
    snprintf(out.detail, sizeof(out.detail), "%s", e->detail);
    return cli_fail(&out);
}

/* `db migrate` on PostgreSQL: under the advisory lock, so beside running instances too. */
static int migrate_pg(const struct cli_config *cfg, int to)
{
    struct store_pg *pg = NULL;
    struct err err = ERR_INIT, e = ERR_INIT;
    char shown[LIMIT_DB_URL_LEN];
    int before = 0, applied = 0, after = 0, ret = 0;

    cli_config_database_name(cfg, shown, sizeof(shown));
    if (store_pg_open(&pg, cfg->db_url, 1, &e) < 0 ||
        store_pg_migrate(pg, to, &before, &applied, &e) < 0 ||
        store_pg_schema_version(pg, &after, &e) < 0) {
        err_set(&err, e.code, "database '%s': %s", shown, e.msg);
        err_detail(&err, "%s", e.detail);
        ret = cli_fail(&err);
    } else if (applied)
        printf("database '%s' migrated from schema version %d to %d\n", shown, before, after);
    else
        printf("database '%s' is up to date (schema version %d)\n", shown, before);
    store_pg_close(pg);
    return ret;
}

static int cmd_migrate(const struct cli_opts *o, const char *cmd)
{
    struct err err = ERR_INIT;
    struct cli_config cfg;
    struct store *s = NULL;
    int before = 0, applied = 0, ret = 0;
    int64_t to = store_schema_latest();

    if (o->to && str_to_i64(str_from_cstr(o->to), 1, store_schema_latest(), &to) < 0)
        return cli_usage_error(cmd, "--to is a schema version from 1 to %d", store_schema_latest());
    if (cli_config_resolve(&cfg, o, &err) < 0)
        return cli_fail(&err);
    if (cfg.db_url[0])
        return migrate_pg(&cfg, (int)to);
    if (cli_store_open(&cfg, STORE_OPEN_NO_MIGRATE, &s, &err) < 0 ||
        store_schema_version(s, &before, &err) < 0 ||
        store_migrate_to(s, (int)to, &applied, &err) < 0)
        ret = cli_fail(&err);
    else if (applied) {
        printf("database '%s' migrated from schema version %d to %d\n", cfg.db, before,
               before + applied);
        cli_report_svg_migration(s, stdout, "");
    } else
        printf("database '%s' is up to date (schema version %d)\n", cfg.db, before);
    store_close(s);
    return ret;
}

static int cmd_version(const struct cli_opts *o)
{
    struct err err = ERR_INIT;
    struct cli_config cfg;
    int v = 0, latest = store_schema_latest();

    char shown[LIMIT_DB_URL_LEN];

    if (cli_config_resolve(&cfg, o, &err) < 0)
        return cli_fail(&err);
    cli_config_database_name(&cfg, shown, sizeof(shown));
    if (cfg.db_url[0]) {
        if (cli_store_open_pg(&cfg, STORE_OPEN_NO_MIGRATE, &v, NULL, &err) < 0)
            return cli_fail(&err);
    } else if (store_file_version(cfg.db, &v, &err) < 0)
        return db_fail(&cfg, cfg.db, &err);
    if (o->json) {
        json_t *j = json_pack("{s:s, s:i, s:i}", "database", shown, "schema_version", v,
                              "program_schema_version", latest);
        char *text = json_dumps(j, JSON_INDENT(2));

        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(j);
        return 0;
    }
    printf("database '%s': schema version %d\n", shown, v);
    printf("this program: schema version %d\n", latest);
    if (v == latest)
        printf("up to date\n");
    else if (v < latest)
        printf("%d migration%s pending: 'ltibadges db migrate' (or 'ltibadges serve') applies "
               "them\n",
               latest - v, latest - v == 1 ? "" : "s");
    else
        printf("the database is newer than this program: run the newer ltibadges, or restore a "
               "backup made before the upgrade\n");
    return 0;
}

static int cmd_stats(const struct cli_opts *o)
{
    struct err err = ERR_INIT;
    struct cli_config cfg;
    struct store *s = NULL;
    struct store_row_counts n;
    int ret;

    if (cli_config_resolve(&cfg, o, &err) < 0)
        return cli_fail(&err);
    if (cli_store_open(&cfg, STORE_OPEN_NO_CREATE, &s, &err) < 0)
        return cli_fail(&err);
    ret = store_row_counts(s, &n, &err);
    store_close(s);
    if (ret < 0)
        return cli_fail(&err);
    {
        const struct {
            const char *name;
            int64_t n;
        } rows[] = {
            { "consumers", n.consumers },
            { "nonces", n.nonces },
            { "users", n.users },
            { "contexts", n.contexts },
            { "resource_links", n.resource_links },
            { "enrollments", n.enrollments },
            { "outcome_bindings", n.outcome_bindings },
            { "sessions", n.sessions },
            { "badge_classes", n.badge_classes },
            { "awards", n.awards },
            { "grades", n.grades },
            { "completions", n.completions },
        };
        size_t nrows = sizeof(rows) / sizeof(rows[0]);

        if (o->json) {
            json_t *j = json_object();
            char *text;

            for (size_t i = 0; i < nrows; i++)
                json_object_set_new(j, rows[i].name, json_integer(rows[i].n));
            text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("%s\n", text ? text : "{}");
            free(text);
            json_decref(j);
            return 0;
        }
        for (size_t i = 0; i < nrows; i++)
            printf("%-17s %" PRId64 "\n", rows[i].name, rows[i].n);
    }
    return 0;
}

static int cmd_backup(const struct cli_opts *o)
{
    struct err err = ERR_INIT;
    struct cli_config cfg;
    int v = 0;

    if (!o->pos[1])
        return cli_usage_error("db backup", "missing FILE");
    if (cli_config_resolve(&cfg, o, &err) < 0)
        return cli_fail(&err);
    if (cfg.db_url[0]) {
        err_set(&err, ERR_INVALID,
                "'db backup' copies a sqlite database: back PostgreSQL up with its own tools "
                "(pg_dump)");
        return cli_fail(&err);
    }
    if (store_backup(cfg.db, o->pos[1], &v, &err) < 0)
        return db_fail(&cfg, err.code == ERR_NOTFOUND ? cfg.db : o->pos[1], &err);
    printf("database '%s' backed up to '%s' (schema version %d)\n", cfg.db, o->pos[1], v);
    return 0;
}

static int cmd_restore(const struct cli_opts *o)
{
    struct err err = ERR_INIT;
    struct cli_config cfg;
    int v = 0;

    if (!o->pos[1])
        return cli_usage_error("db restore", "missing FILE");
    if (cli_config_resolve(&cfg, o, &err) < 0)
        return cli_fail(&err);
    if (cfg.db_url[0]) {
        err_set(&err, ERR_INVALID,
                "'db restore' restores a sqlite database: restore PostgreSQL with its own tools "
                "(pg_restore)");
        return cli_fail(&err);
    }
    if (store_restore(cfg.db, o->pos[1], &v, &err) < 0)
        return db_fail(&cfg, err.code == ERR_CONFLICT ? cfg.db : o->pos[1], &err);
    printf("database '%s' restored from '%s' (schema version %d)\n", cfg.db, o->pos[1], v);
    if (v < store_schema_latest())
        printf("'ltibadges db migrate' (or 'ltibadges serve') brings it to schema version %d\n",
               store_schema_latest());
    return 0;
}

/* The report of a copy: rows per table, and what was left and why. */
static void copy_report(const struct store_copy_report *r, const char *from, const char *to,
                        bool json)
{
    const char *sep = "not copied: ";

    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:i}", "from", from, "to", to, "schema_version",
                              r->source_version, "target_schema_before", r->target_before,
                              "migrations_applied", r->migrated);
        json_t *copied = json_object(), *left = json_object();
        char *text;

        for (size_t i = 0; i < r->ntables; i++) {
            json_object_set_new(copied, r->tables[i].table, json_integer(r->tables[i].copied));
            if (r->tables[i].why)
                json_object_set_new(left, r->tables[i].table, json_integer(r->tables[i].left));
        }
        json_object_set_new(j, "copied", copied);
        json_object_set_new(j, "not_copied", left);
        text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(j);
        return;
    }
    if (r->migrated)
        printf("database '%s' migrated from schema version %d to %d\n", to, r->target_before,
               r->source_version);
    printf("copied '%s' to '%s' (schema version %d):\n", from, to, r->source_version);
    for (size_t i = 0; i < r->ntables; i++)
        printf("  %-22s %" PRId64 "\n", r->tables[i].table, r->tables[i].copied);
    for (size_t i = 0; i < r->ntables; i++) {
        if (!r->tables[i].why)
            continue;
        printf("%s%s %" PRId64 " %s", sep, r->tables[i].table, r->tables[i].left, r->tables[i].why);
        sep = ", ";
    }
    if (sep[0] == ',')
        printf("\n");
}

static int cmd_copy(const struct cli_opts *o)
{
    struct err err = ERR_INIT, e = ERR_INIT;
    struct cli_config cfg;
    struct store_copy_report *r = NULL;
    char shown[LIMIT_DB_URL_LEN];
    const char *to;
    int ret = 0;

    if (!o->from)
        return cli_usage_error("db copy", "missing --from PATH (the sqlite database to copy)");
    if (cli_config_resolve(&cfg, o, &err) < 0)
        return cli_fail(&err);
    /* the configured URL keeps the password out of the command line (and of ps) */
    to = o->to ? o->to : cfg.db_url;
    if (!to[0])
        return cli_usage_error("db copy", "missing --to URL (or a configured [database] url, "
                                          "LTIBADGES_DATABASE_URL)");
    store_pg_url_redact(to, shown, sizeof(shown));
    r = xcalloc(1, sizeof(*r));
    if (store_copy_to_pg(o->from, to, o->replace ? STORE_COPY_REPLACE : 0, util_now(), r, &e) < 0) {
        if (r->source_version > 0 && r->source_version < store_schema_latest())
            err_set(&err, e.code,
                    "cannot copy '%s': its schema version %d is older than this program's (%d): "
                    "migrate it first with 'ltibadges db migrate --db %s'",
                    o->from, r->source_version, store_schema_latest(), o->from);
        else
            err_set(&err, e.code, "cannot copy '%s' to '%s': %s", o->from, shown, e.msg);
        err_detail(&err, "%s", e.detail);
        ret = cli_fail(&err);
    } else
        copy_report(r, o->from, shown, o->json);
    free(r);
    return ret;
}

int cli_cmd_migrate(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;

    if (cli_parse_opts(argc, argv, 2, "config,db,to", 0, &o, &err) < 0)
        return cli_usage_error("migrate", "%s", err.msg);
    if (o.help) {
        fputs(migrate_usage, stdout);
        return 0;
    }
    return cmd_migrate(&o, "migrate");
}

int cli_cmd_db(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *verb = argc > 2 ? argv[2] : NULL;
    const char *allowed = "config,db";
    size_t npos = 0;
    char cmd[32];

    if (!verb)
        return cli_usage_error(
            "db", "missing subcommand (migrate, version, stats, backup, restore or copy)");
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        fputs(db_usage, stdout);
        return 0;
    }
    if (strcmp(verb, "migrate") == 0)
        allowed = "config,db,to";
    else if (strcmp(verb, "version") == 0 || strcmp(verb, "stats") == 0)
        allowed = "config,db,json";
    else if (strcmp(verb, "backup") == 0 || strcmp(verb, "restore") == 0)
        npos = 1;
    else if (strcmp(verb, "copy") == 0)
        allowed = "config,from,to,replace,json";
    else
        return cli_usage_error("db", "unknown subcommand '%s'", verb);
    snprintf(cmd, sizeof(cmd), "db %s", verb);
    /* pos[0] is the verb itself */
    if (cli_parse_opts(argc, argv, 2, allowed, npos + 1, &o, &err) < 0)
        return cli_usage_error(cmd, "%s", err.msg);
    if (o.help) {
        fputs(db_usage, stdout);
        return 0;
    }
    if (strcmp(verb, "migrate") == 0)
        return cmd_migrate(&o, cmd);
    if (strcmp(verb, "version") == 0)
        return cmd_version(&o);
    if (strcmp(verb, "stats") == 0)
        return cmd_stats(&o);
    if (strcmp(verb, "backup") == 0)
        return cmd_backup(&o);
    if (strcmp(verb, "copy") == 0)
        return cmd_copy(&o);
    return cmd_restore(&o);
}
