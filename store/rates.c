/*
 * store/rates.c - rate limits counted in the database.
 *
 * A limit of the web pages (the public badge page's recipient check) is a
 * row of rate_limits per key: when its window ends and how many events it
 * holds. It lives in the database, not in the process, for two reasons:
 * instances behind a load balancer share one database and must count
 * together (a client sent round robin to three instances would otherwise
 * get three times its checks), and a table of the process's own, sized up
 * front, either grows without bound or makes keys share slots (the
 * in-process table this replaces let a client's key and a badge's fall in
 * one slot and refused a learner at half their limit).
 *
 * Each event is one upsert (both engines: INSERT ... ON CONFLICT DO UPDATE
 * ... WHERE ... RETURNING), atomic on the row whichever instance runs it;
 * its WHERE leaves a full window as it is, so no row comes back and the
 * event is refused. Windows that ended are deleted a bounded chunk at a
 * time in the same transaction.
 */
#include "base/base.h"
#include "store/store_int.h"

/* Counts one event of `r`: 0, or 1 when its window is full (nothing counted); -1 with err. */
static int take(struct conn *c, const struct store_rate *r, int64_t now, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_RATE_TAKE, err);
    int rc;

    if (!st)
        return -1;
    db_bind_str(st, 1, str_from_cstr(r->key));
    db_bind_int64(st, 2, now);
    db_bind_int64(st, 3, r->window);
    db_bind_int64(st, 4, r->max);
    rc = db_step(st);
    db_reset(st);
    if (rc == DB_ROW)
        return 0;
    if (rc == DB_DONE)
        return 1;
    return store_db_err(c, rc, "counting a rate limit", err);
}

int store_rate_take(struct store *s, const struct store_rate *limits, size_t n, int64_t now,
                    struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int ret = -1, full = 0;

    for (size_t i = 0; i < n; i++) {
        if (strlen(limits[i].key) > LIMIT_RATE_KEY_LEN)
            return err_set(err, ERR_INVALID, "a rate limit's key is too long");
    }
    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_RATE_PURGE, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, now);
    db_bind_int64(st, 2, LIMIT_RATE_PURGE_ROWS);
    if (store_step_done(c, st, "purging rate limits", err) < 0)
        goto out;
    /* the limits before a full one stay counted, as its event was made all the same */
    for (size_t i = 0; i < n && full == 0; i++) {
        full = take(c, &limits[i], now, err);
        if (full < 0)
            goto out;
    }
    ret = 0;
out:
    if (store_admin_end(s, ret, err) < 0)
        return -1;
    if (full)
        return err_set(err, ERR_LIMIT, "too many requests of this kind: try again later");
    return 0;
}
