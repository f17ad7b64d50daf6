/*
 * store/backup.c - `ltibadges db backup|restore|version`: whole-file
 * operations on a database, outside any open store.
 *
 * A backup is sqlite's online backup API copying every page in one step,
 * so in one read transaction: with WAL, a server writing meanwhile neither
 * waits for it nor changes what it copies. The copy is a single file
 * (rollback journal mode, no -wal beside it), made 0600 like the database:
 * it holds the consumers' secrets too.
 *
 * A restore writes into the live database file through sqlite (never by
 * copying files over it, which would tear a WAL in use), and only while
 * no other process has the database open: it takes sqlite's exclusive lock
 * (locking_mode EXCLUSIVE), which any open connection that has read the
 * database (a running server always has) keeps it from getting. A server
 * keeps caches of what it wrote (consumers, users, nonces), so writing
 * under a running one would leave it answering from data that is gone.
 */
#include "base/base.h"
#include "store/store_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a backup step waits, at most, for a lock another connection holds (50 ms a try). */
#define BACKUP_BUSY_TRIES (LIMIT_STORE_BUSY_MS / 50)

static int db_fail(sqlite3 *db, int rc, const char *what, const char *path, struct err *err)
{
    err_set(err, ERR_INTERNAL, "%s failed", what);
    return err_detail(err, "sqlite: %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Opens an existing database file (never creating it): ERR_NOTFOUND when there is none. */
static int open_existing(const char *path, int flags, sqlite3 **db, struct err *err)
{
    struct stat st;
    int rc;

    *db = NULL;
    if (stat(path, &st) < 0) {
        err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_INTERNAL, "cannot open the file");
        return err_detail(err, "%s: %s", path, strerror(errno));
    }
    rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        db_fail(*db, rc, "opening the database", path, err);
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_busy_timeout(*db, LIMIT_STORE_BUSY_MS);
    return 0;
}

/* The first column of the first row of a fixed statement (PRAGMAs), as an int or into `text`. */
static int pragma_row(sqlite3 *db, const char *sql, int *num, char *text, size_t textlen,
                      const char *path, struct err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if ((rc & 0xff) == SQLITE_NOTADB)
            err_set(err, ERR_INVALID, "the file is not a database");
        else if ((rc & 0xff) == SQLITE_CORRUPT)
            err_set(err, ERR_INVALID, "the file fails sqlite's integrity check");
        db_fail(db, rc, "reading the database", path, err);
        sqlite3_finalize(st);
        return -1;
    }
    if (num)
        *num = sqlite3_column_int(st, 0);
    if (text) {
        const unsigned char *t = sqlite3_column_text(st, 0);

        snprintf(text, textlen, "%s", t ? (const char *)t : "");
    }
    sqlite3_finalize(st);
    return 0;
}

int store_file_version(const char *path, int *version, struct err *err)
{
    sqlite3 *db = NULL;
    int ret;

    if (open_existing(path, SQLITE_OPEN_READWRITE, &db, err) < 0)
        return -1;
    ret = pragma_row(db, "PRAGMA user_version", version, NULL, 0, path, err);
    sqlite3_close(db);
    return ret;
}

/* Copies every page of `src` into `dst` in one step, retrying while a lock is held. */
static int copy_pages(sqlite3 *src, sqlite3 *dst, const char *what, const char *path,
                      struct err *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    int rc, tries = 0;

    if (!b)
        return db_fail(dst, SQLITE_ERROR, what, path, err);
    do {
        rc = sqlite3_backup_step(b, -1);
        if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && ++tries < BACKUP_BUSY_TRIES)
            sqlite3_sleep(50);
        else if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            break;
    } while (rc != SQLITE_DONE && (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED));
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        err_set(err, rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? ERR_UNAVAILABLE : ERR_INTERNAL,
                "%s failed", what);
        return err_detail(err, "sqlite: %s: %s", path, sqlite3_errstr(rc));
    }
    return 0;
}

int store_backup(const char *path, const char *dest, int *version, struct err *err)
{
    sqlite3 *src = NULL, *dst = NULL;
    int fd, ret = -1;
    bool made = false;
    char *msg = NULL;

    if (open_existing(path, SQLITE_OPEN_READWRITE, &src, err) < 0)
        return -1;
    /* made here, 0600, and never over an existing file */
    fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        err_set(err, errno == EEXIST ? ERR_CONFLICT : ERR_INTERNAL,
                errno == EEXIST ? "the backup file exists" : "cannot create the backup file");
        err_detail(err, "%s: %s", dest, strerror(errno));
        goto out;
    }
    close(fd);
    made = true;
    if (open_existing(dest, SQLITE_OPEN_READWRITE, &dst, err) < 0 ||
        copy_pages(src, dst, "the backup", path, err) < 0)
        goto out;
    /* one self-contained file: the copy leaves WAL mode for a rollback journal */
    if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "the backup failed");
        err_detail(err, "sqlite: %s: %s", dest, msg ? msg : "");
        goto out;
    }
    if (pragma_row(dst, "PRAGMA user_version", version, NULL, 0, dest, err) < 0)
        goto out;
    ret = 0;
out:
    sqlite3_free(msg);
    sqlite3_close(dst);
    sqlite3_close(src);
    if (ret < 0 && made) {
        static const char *const sides[] = { "-journal", "-wal", "-shm" };
        char side[4200];

        unlink(dest);
        /* and what sqlite may have made beside it */
        for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
            snprintf(side, sizeof(side), "%s%s", dest, sides[i]);
            unlink(side);
        }
    }
    return ret;
}

int store_check_file(const char *path, int *version, struct err *err)
{
    sqlite3 *db = NULL;
    char ok[256];
    int tables = 0, ret = -1;

    if (open_existing(path, SQLITE_OPEN_READONLY, &db, err) < 0)
        return -1;
    /* a file that is not a database fails here ("file is not a database") */
    if (pragma_row(db, "PRAGMA integrity_check", NULL, ok, sizeof(ok), path, err) < 0)
        goto out;
    if (strcmp(ok, "ok") != 0) {
        err_set(err, ERR_INVALID, "the file fails sqlite's integrity check");
        err_detail(err, "integrity_check: %s: %s", path, ok);
        goto out;
    }
    if (pragma_row(db, "PRAGMA user_version", version, NULL, 0, path, err) < 0 ||
        pragma_row(db,
                   "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                   "('consumers', 'users', 'contexts')",
                   &tables, NULL, 0, path, err) < 0)
        goto out;
    if (*version < 1 || tables != 3) {
        err_set(err, ERR_INVALID, "the file is not an ltibadges database");
        goto out;
    }
    if (*version > store_schema_latest()) {
        err_set(err, ERR_INVALID,
                "the file's schema (version %d) is newer than this build knows (%d)", *version,
                store_schema_latest());
        goto out;
    }
    ret = 0;
out:
    sqlite3_close(db);
    return ret;
}

int store_restore(const char *path, const char *src_path, int *version, struct err *err)
{
    sqlite3 *src = NULL, *dst = NULL;
    char *msg = NULL;
    int fd, rc, ret = -1;

    if (store_check_file(src_path, version, err) < 0)
        return -1;
    /* a machine rebuilt from its backup has no database yet: made 0600, as store_open does */
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        err_set(err, ERR_INTERNAL, "cannot open the database");
        return err_detail(err, "%s: %s", path, strerror(errno));
    }
    close(fd);
    if (open_existing(src_path, SQLITE_OPEN_READONLY, &src, err) < 0 ||
        open_existing(path, SQLITE_OPEN_READWRITE, &dst, err) < 0)
        goto out;
    /*
     * The exclusive lock, kept until the connection closes: refused at once
     * (no busy wait) while another process has the database open.
     */
    sqlite3_busy_timeout(dst, 0);
    rc = sqlite3_exec(dst, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT", NULL, NULL,
                      &msg);
    if (rc != SQLITE_OK) {
        sqlite3_exec(dst, "ROLLBACK", NULL, NULL, NULL);
        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
            err_set(err, ERR_CONFLICT,
                    "the database is in use by another process (a running server): stop it "
                    "first");
        else
            err_set(err, ERR_INTERNAL, "cannot lock the database");
        err_detail(err, "sqlite: %s: %s", path, msg ? msg : sqlite3_errstr(rc));
        goto out;
    }
    if (copy_pages(src, dst, "the restore", path, err) < 0)
        goto out;
    /* everything into the database file itself: the next open finds no WAL to replay */
    sqlite3_free(msg);
    msg = NULL;
    if (sqlite3_exec(dst, "PRAGMA journal_mode = WAL; PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
                     &msg) != SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "the restore failed");
        err_detail(err, "sqlite: %s: %s", path, msg ? msg : "");
        goto out;
    }
    ret = 0;
out:
    sqlite3_free(msg);
    sqlite3_close(src);
    sqlite3_close(dst);
    return ret;
}
