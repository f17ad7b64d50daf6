/*
 * store/consumers.c - the LMSes allowed to launch the tool.
 *
 * The writes run rarely (CLI, start-up) and take the admin connection,
 * waiting up to the busy timeout if the server's writer holds the lock.
 *
 * Every launch needs its consumer's secret before anything else, and a read
 * of its own would cost a read transaction (two fcntl locks on the shared
 * memory file) and, as the writer's commits keep invalidating a reader's page
 * cache, a page read: the launch path reads consumers from a small cache
 * instead (store_consumer_find_cached). A write here clears it; a write by
 * another process cannot, which is why a launch refused on what the cache
 * said is looked up again, and one accepted is confirmed by the writer.
 *
 * On PostgreSQL other instances write too: a trigger counts every change
 * to consumers in cache_version (migration 16), which the cache reads at
 * most once a second (one indexed read, about 0.4 ms here) and is cleared
 * when it moved, so a rotated secret or a disabled consumer is what every
 * instance's cache says within a second. LISTEN/NOTIFY was measured too:
 * no read while nothing changes, but a NOTIFY made each consumer write
 * about 3 times slower (pgbench on the throwaway server: 1.07 ms for the
 * write and the version bump, 3.1 ms with pg_notify instead) and it needs a
 * connection and a thread of its own per instance, LISTEN again after each
 * reconnection and a cleared cache for what was missed meanwhile; the read
 * costs under 0.05% of one connection and none of that.
 */
#include "base/base.h"
#include "store/store_int.h"

static void read_consumer(struct db_stmt *st, struct store_consumer *c)
{
    memset(c, 0, sizeof(*c));
    c->id = db_column_int64(st, 0);
    store_col_copy(st, 1, c->key, sizeof(c->key));
    store_col_copy(st, 2, c->secret, sizeof(c->secret));
    store_col_copy(st, 3, c->name, sizeof(c->name));
    store_col_copy(st, 4, c->lms, sizeof(c->lms));
    c->enabled = db_column_int(st, 5) != 0;
    c->created_at = db_column_int64(st, 6);
    c->users = db_column_int64(st, 7);
    store_col_copy(st, 8, c->backend, sizeof(c->backend));
}

/* FNV-1a: a handful of keys, chosen by the operator; no need for more */
static size_t ccache_slot(struct str key)
{
    uint64_t h = UINT64_C(1469598103934665603);

    for (size_t i = 0; i < key.len; i++)
        h = (h ^ (unsigned char)key.ptr[i]) * UINT64_C(1099511628211);
    return (size_t)(h & (CCACHE_SLOTS - 1));
}

static void ccache_clear(struct store *s)
{
    pthread_mutex_lock(&s->ccache_mu);
    memset(s->ccache, 0, sizeof(s->ccache));
    pthread_mutex_unlock(&s->ccache_mu);
}

/* What a read found: `c` (or, with NULL, that there is no consumer with `key`). */
static void ccache_store(struct store *s, struct str key, const struct store_consumer *c)
{
    struct store_consumer *e = &s->ccache[ccache_slot(key)];

    pthread_mutex_lock(&s->ccache_mu);
    if (c)
        *e = *c;
    else if (e->id && str_eq_cstr(key, e->key))
        memset(e, 0, sizeof(*e));
    pthread_mutex_unlock(&s->ccache_mu);
}

void store_consumer_forget(struct store *s, int64_t id)
{
    pthread_mutex_lock(&s->ccache_mu);
    for (size_t i = 0; i < CCACHE_SLOTS; i++) {
        if (s->ccache[i].id == id)
            memset(&s->ccache[i], 0, sizeof(s->ccache[i]));
    }
    pthread_mutex_unlock(&s->ccache_mu);
}

/* PostgreSQL: clears the cache when cache_version moved; read at most once a second. */
static void ccache_check_version(struct store *s)
{
    int64_t now = util_mono_ns(), v = -1;
    struct err err = ERR_INIT;
    struct conn *c;
    bool due;

    pthread_mutex_lock(&s->ccache_mu);
    due = now - s->ccache_checked_ns >= 1000000000 || s->ccache_checked_ns == 0;
    if (due)
        s->ccache_checked_ns = now; /* one thread reads; the others use the cache meanwhile */
    pthread_mutex_unlock(&s->ccache_mu);
    if (!due)
        return;
    c = store_reader_get(s, &err);
    if (c) {
        struct db_stmt *st = store_stmt(c, S_CACHE_VERSION, &err);

        if (st) {
            if (db_step(st) == DB_ROW)
                v = db_column_int64(st, 0);
            db_reset(st);
        }
        store_reader_put(s, c);
    }
    pthread_mutex_lock(&s->ccache_mu);
    /* not read (the database is away): forget what may be stale, read again next time */
    if (v < 0 || v != s->ccache_version) {
        memset(s->ccache, 0, sizeof(s->ccache));
        s->ccache_version = v;
    }
    pthread_mutex_unlock(&s->ccache_mu);
}

int store_consumer_find_cached(struct store *s, struct str key, struct store_consumer *out,
                               bool *cached, struct err *err)
{
    const struct store_consumer *e = &s->ccache[ccache_slot(key)];

    if (s->pg)
        ccache_check_version(s);
    pthread_mutex_lock(&s->ccache_mu);
    *cached = e->id && str_eq_cstr(key, e->key);
    if (*cached)
        *out = *e;
    pthread_mutex_unlock(&s->ccache_mu);
    if (*cached)
        return 0;
    return store_consumer_find(s, key, out, err);
}

int store_consumer_add(struct store *s, const char *key, const char *secret, const char *name,
                       struct store_consumer *out, struct err *err)
{
    return store_consumer_add_backend(s, key, secret, name, NULL, out, err);
}

int store_consumer_add_backend(struct store *s, const char *key, const char *secret,
                               const char *name, const char *backend, struct store_consumer *out,
                               struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int64_t id = 0;
    int rc, ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_CONSUMER_INSERT, err);
    if (!st)
        goto out;
    db_bind_str(st, 1, str_from_cstr(key));
    db_bind_str(st, 2, str_from_cstr(secret));
    db_bind_str(st, 3, str_from_cstr(name));
    db_bind_int64(st, 4, util_now());
    db_bind_str(st, 5, str_from_cstr(backend));
    rc = db_step(st);
    if (rc == DB_ROW)
        id = db_column_int64(st, 0);
    /* RETURNING: step to the end so the insert completes */
    while (rc == DB_ROW)
        rc = db_step(st);
    db_reset(st);
    if (rc != DB_DONE) {
        store_db_err(c, rc, "adding a consumer", err);
        goto out;
    }
    if (id == 0) {
        err_set(err, ERR_CONFLICT, "a consumer with key '%s' exists", key);
        goto out;
    }
    ret = 0;
out:
    if (store_admin_end(s, ret, err) < 0)
        return -1;
    ccache_clear(s);
    if (out) {
        memset(out, 0, sizeof(*out));
        out->id = id;
        snprintf(out->key, sizeof(out->key), "%s", key);
        snprintf(out->secret, sizeof(out->secret), "%s", secret);
        snprintf(out->name, sizeof(out->name), "%s", name);
        snprintf(out->backend, sizeof(out->backend), "%s", backend ? backend : "");
        out->enabled = true;
        out->created_at = util_now();
    }
    return 0;
}

int store_consumer_find(struct store *s, struct str key, struct store_consumer *out,
                        struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    if (!c)
        return -1;
    st = store_stmt(c, S_CONSUMER_FIND, err);
    if (!st)
        goto out;
    db_bind_str(st, 1, key);
    rc = db_step(st);
    if (rc == DB_ROW) {
        read_consumer(st, out);
        ccache_store(s, key, out);
        ret = 0;
    } else if (rc == DB_DONE) {
        ccache_store(s, key, NULL);
        err_set(err, ERR_NOTFOUND, "unknown consumer key");
    } else {
        store_db_err(c, rc, "finding a consumer", err);
    }
    db_reset(st);
out:
    store_reader_put(s, c);
    return ret;
}

int store_consumer_list(struct store *s, struct store_consumer **out, size_t *count,
                        struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    struct store_consumer *list = NULL;
    size_t n = 0, cap = 0;
    int rc, ret = -1;

    *out = NULL;
    *count = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_CONSUMER_LIST, err);
    if (!st)
        goto out;
    while ((rc = db_step(st)) == DB_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            list = xrealloc(list, st_mult(cap, sizeof(*list)));
        }
        read_consumer(st, &list[n++]);
    }
    if (rc != DB_DONE) {
        store_db_err(c, rc, "listing consumers", err);
        free(list);
    } else {
        *out = list;
        *count = n;
        ret = 0;
    }
    db_reset(st);
out:
    store_reader_put(s, c);
    return ret;
}

/* Runs one keyed UPDATE/DELETE in its own transaction; ERR_NOTFOUND when no row changed. */
static int keyed_write(struct store *s, enum stmt_id id, const char *key, const char *text,
                       int64_t num, bool use_num, const char *what, struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int rc, ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, id, err);
    if (!st)
        goto out;
    db_bind_str(st, 1, str_from_cstr(key));
    if (use_num)
        db_bind_int64(st, 2, num);
    else if (text)
        db_bind_str(st, 2, str_from_cstr(text));
    rc = db_step(st);
    db_reset(st);
    if (rc != DB_DONE) {
        store_db_err(c, rc, what, err);
        goto out;
    }
    if (db_changes(&c->db) == 0) {
        err_set(err, ERR_NOTFOUND, "no consumer with key '%s'", key);
        goto out;
    }
    ret = 0;
out:
    if (store_admin_end(s, ret, err) < 0)
        return -1;
    ccache_clear(s);
    return 0;
}

int store_consumer_remove(struct store *s, const char *key, struct err *err)
{
    return keyed_write(s, S_CONSUMER_DELETE, key, NULL, 0, false, "removing a consumer", err);
}

int store_consumer_set_secret(struct store *s, const char *key, const char *secret, struct err *err)
{
    return keyed_write(s, S_CONSUMER_SET_SECRET, key, secret, 0, false, "changing a secret", err);
}

int store_consumer_set_enabled(struct store *s, const char *key, bool enabled, struct err *err)
{
    return keyed_write(s, S_CONSUMER_SET_ENABLED, key, NULL, enabled ? 1 : 0, true,
                       "changing a consumer", err);
}

int store_consumer_set_backend(struct store *s, const char *key, const char *backend,
                               struct err *err)
{
    return keyed_write(s, S_CONSUMER_SET_BACKEND, key, backend, 0, false,
                       "changing a consumer's backend", err);
}
