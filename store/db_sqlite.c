/*
 * store/db_sqlite.c - the SQLite engine under the statement layer
 * (store/db.h): opening a connection with our pragmas, limits and SQL
 * functions, and SQLite's errors as struct err.
 *
 * The statement calls themselves are db.h's inline wrappers, which call
 * sqlite3 directly. What else is SQLite's alone stays in its own code
 * paths: the launch writer, its cache and nonce log (launch.c, nonces.c),
 * the WAL syncer and checkpointer (store.c), migrations (migrate.c), the
 * online backup (backup.c), and the SQL functions registered here for
 * migrations 6, 7 and 9 (lb_nonce_fp, lb_svg_rule, lb_sourcedid_fp).
 */
#include "base/base.h"
#include "store/store_int.h"

int store_db_sqlite_err(sqlite3 *db, int rc, const char *what, struct err *err)
{
    int primary = rc & 0xff;

    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        err_set(err, ERR_UNAVAILABLE, "the database is busy, try again");
    else if (primary == SQLITE_FULL)
        err_set(err, ERR_UNAVAILABLE, "the database disk is full");
    else
        err_set(err, ERR_INTERNAL, "database error while %s", what);
    return err_detail(err, "sqlite: %s (%d) while %s", db ? sqlite3_errmsg(db) : "", rc, what);
}

/* lb_sourcedid_fp(text): store_sourcedid_fp, for migration 9. */
static void sql_sourcedid_fp(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const unsigned char *p = sqlite3_value_text(argv[0]);

    (void)argc;
    sqlite3_result_int64(
        ctx, store_sourcedid_fp((struct str){ p ? (const char *)p : "",
                                              p ? (size_t)sqlite3_value_bytes(argv[0]) : 0 }));
}

/* lb_nonce_fp(consumer_id, ts, nonce): schema 6's digest, for migration 6 (NULL: a bad nonce). */
static void sql_nonce_fp(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const unsigned char *p = sqlite3_value_text(argv[2]);
    struct str nonce = { p ? (const char *)p : "", p ? (size_t)sqlite3_value_bytes(argv[2]) : 0 };
    int64_t fp;

    (void)argc;
    if (store_nonce_fp_v6(sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]), nonce, &fp,
                          NULL) < 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_int64(ctx, fp);
}

/*
 * lb_svg_rule(image): store_svg_rule_stored, for migration 7, counted on the
 * connection (the function's user data); an SQL error without a rule.
 */
static void sql_svg_rule(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct conn *c = sqlite3_user_data(ctx);
    const unsigned char *img = sqlite3_value_blob(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]);
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    int r;

    (void)argc;
    r = store_svg_rule_stored(c, img, len, &out);
    if (r < 0)
        sqlite3_result_error(ctx, "no SVG rule is set: stored SVG images cannot be checked", -1);
    else if (r > 0)
        sqlite3_result_blob64(ctx, out.ptr, out.len, SQLITE_TRANSIENT);
    else
        sqlite3_result_value(ctx, argv[0]);
    buf_release(&out);
}

int store_db_sqlite_open(const char *path, struct conn *c, struct err *err)
{
    int rc, on = 1;
    char *msg = NULL;

    /* no SQLITE_OPEN_CREATE: store_open made the file (0600), and a database gone is an error */
    rc = sqlite3_open_v2(path, &c->db.lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        /* sqlite's reason is no secret and is what an operator needs (the path: cli/ adds it) */
        err_set(err, ERR_INTERNAL, "cannot open the database: %s",
                c->db.lite ? sqlite3_errmsg(c->db.lite) : "out of memory");
        err_detail(err, "sqlite: %s: %s", path,
                   c->db.lite ? sqlite3_errmsg(c->db.lite) : "out of memory");
        return -1;
    }
    sqlite3_extended_result_codes(c->db.lite, 1);
    sqlite3_db_config(c->db.lite, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(c->db.lite, SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, &on);
    /* lowered limits: nothing we store comes near them (sqlite security.html) */
    sqlite3_limit(c->db.lite, SQLITE_LIMIT_LENGTH, 8 * 1024 * 1024);
    sqlite3_limit(c->db.lite, SQLITE_LIMIT_SQL_LENGTH, 64 * 1024);
    sqlite3_limit(c->db.lite, SQLITE_LIMIT_COLUMN, 100);
    sqlite3_limit(c->db.lite, SQLITE_LIMIT_EXPR_DEPTH, 50);
    sqlite3_limit(c->db.lite, SQLITE_LIMIT_COMPOUND_SELECT, 5);
    sqlite3_limit(c->db.lite, SQLITE_LIMIT_VARIABLE_NUMBER, 64);
    sqlite3_limit(c->db.lite, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(c->db.lite, SQLITE_LIMIT_TRIGGER_DEPTH, 10);
    sqlite3_busy_timeout(c->db.lite, LIMIT_STORE_BUSY_MS);
    sqlite3_create_function_v2(c->db.lite, "lb_nonce_fp", 3,
                               SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                               sql_nonce_fp, NULL, NULL, NULL);
    sqlite3_create_function_v2(c->db.lite, "lb_sourcedid_fp", 1,
                               SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                               sql_sourcedid_fp, NULL, NULL, NULL);
    /* not deterministic: it counts what it changed on `c` */
    sqlite3_create_function_v2(c->db.lite, "lb_svg_rule", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, c,
                               sql_svg_rule, NULL, NULL, NULL);
    /* connection setup: fixed pragmas, no input involved */
    rc = sqlite3_exec(c->db.lite,
                      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                      "PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; "
                      "PRAGMA trusted_schema = OFF; PRAGMA temp_store = MEMORY; "
                      /*
                       * Debian builds SQLite with SECURE_DELETE: every page a
                       * purge frees would be zeroed and written through the
                       * WAL. FAST zeroes deleted content only where that
                       * writes nothing more.
                       */
                      "PRAGMA secure_delete = FAST; "
                      /* a bit over LIMIT_STORE_WAL_RESTART_PAGES: the WAL file is reused */
                      "PRAGMA journal_size_limit = 83886080; PRAGMA cache_size = -1024;",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "cannot set up the database: %s", msg ? msg : "");
        err_detail(err, "sqlite: %s: %s", path, msg ? msg : "");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}
