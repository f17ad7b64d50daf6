/*
 * tests/unit/store/dbfile.h - the store tests' database file: a fresh path
 * per test, its removal with the WAL and shared-memory files, and a read of
 * one number straight from the file (not through the store under test).
 */
#ifndef TESTS_UNIT_STORE_DBFILE_H
#define TESTS_UNIT_STORE_DBFILE_H

#include <sqlite3.h>
#include <unistd.h>

static char dbpath[256];

static void dbfile_new(const char *tag)
{
    snprintf(dbpath, sizeof(dbpath), "/tmp/ltibadges-unit-%s%d-%ld.db", tag, (int)getpid(),
             (long)util_mono_ns());
}

static void dbfile_remove(void)
{
    char p[300];

    unlink(dbpath);
    snprintf(p, sizeof(p), "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", dbpath);
    unlink(p);
}

/* Column 0 of the first row of `sql`, read-only on the file; -1 without a row. */
static int64_t peek_int(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#endif
