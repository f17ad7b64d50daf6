/*
 * store/hooks.c - what hooks from a remote platform (BadgeKit) do to our
 * awards, and their counts per backend.
 *
 * A hook carries no nonce or time and may come again byte for byte, so
 * each is applied as a move towards a state, never as a toggle: the same
 * hook twice leaves what it left once. The decision is made here, inside
 * the transaction that reads the award, so that a worker recording the
 * same award meanwhile is either before or after it; the worker's own
 * updates name the state they expect (S_AWARD_ISSUED, S_AWARD_RETRY_LATER)
 * and are skipped once a hook moved the award on.
 */
#include "base/base.h"
#include "store/store_int.h"

static int count_conn(struct conn *c, const char *backend, const struct store_hook_counts *d,
                      struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_HOOK_COUNT, err);

    if (!st)
        return -1;
    db_bind_str(st, 1, str_from_cstr(backend));
    db_bind_int64(st, 2, d->received);
    db_bind_int64(st, 3, d->applied);
    db_bind_int64(st, 4, d->unchanged);
    db_bind_int64(st, 5, d->ignored);
    db_bind_int64(st, 6, d->refused);
    db_bind_int64(st, 7, d->last_received_at);
    db_bind_int64(st, 8, d->last_refused_at);
    db_bind_str(st, 9, str_from_cstr(d->last_refusal));
    return store_step_done(c, st, "counting a hook", err);
}

/* Whether an award in `state` after `attempts` may be at the platform already. */
static bool maybe_sent(const char *state, int64_t attempts)
{
    if (strcmp(state, "issuing") == 0)
        return true;
    return (strcmp(state, "queued") == 0 || strcmp(state, "failed") == 0) && attempts > 0;
}

static int decide(struct conn *c, const struct store_hook *h, enum store_hook_effect *effect,
                  int64_t *award_id, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_HOOK_AWARD_FIND, err);
    char state[16], backend_id[512];
    int64_t id, attempts;
    int rc;

    if (!st)
        return -1;
    db_bind_str(st, 1, str_from_cstr(h->uid));
    db_bind_str(st, 2, str_from_cstr(h->backend));
    rc = db_step(st);
    if (rc == DB_DONE) {
        db_reset(st);
        return 0; /* not ours, or another backend's: ignored */
    }
    if (rc != DB_ROW) {
        db_reset(st);
        return store_db_err(c, rc, "reading an award", err);
    }
    id = db_column_int64(st, 0);
    store_col_copy(st, 1, state, sizeof(state));
    attempts = db_column_int64(st, 2);
    store_col_copy(st, 3, backend_id, sizeof(backend_id));
    db_reset(st);
    /* our uid under another of the platform's badges: not the instance we made */
    if (h->badge && h->badge[0] && backend_id[0] && strcmp(h->badge, backend_id) != 0)
        return 0;
    *award_id = id;
    if (strcmp(state, h->revoke ? "revoked" : "issued") == 0 ||
        (!h->revoke && strcmp(state, "revoked") == 0)) {
        /* already so; and an award never undoes a revoke */
        *effect = STORE_HOOK_UNCHANGED;
        return 0;
    }
    if (!(maybe_sent(state, attempts) || (h->revoke && strcmp(state, "issued") == 0)))
        return 0; /* never sent from here: the platform cannot hold it from us */
    st = store_stmt(c, h->revoke ? S_HOOK_REVOKED : S_HOOK_ISSUED, err);
    if (!st)
        return -1;
    db_bind_int64(st, 1, id);
    if (h->revoke) {
        db_bind_int64(st, 2, h->now);
        db_bind_str(st, 3, str_from_cstr(h->reason));
    } else {
        db_bind_str(st, 2, str_from_cstr(h->assertion_url));
        db_bind_int64(st, 3, h->now);
    }
    if (store_step_done(c, st, "recording a hook on an award", err) < 0)
        return -1;
    if (db_changes(&c->db) != 1)
        BUG("an award read in this transaction was not updated");
    *effect = h->revoke ? STORE_HOOK_REVOKED : STORE_HOOK_ISSUED;
    if (!h->revoke) {
        /* an issued award owes the LMS its passback, as when the worker records it */
        st = store_stmt(c, S_PB_ENQUEUE, err);
        if (!st)
            return -1;
        db_bind_int64(st, 1, id);
        db_bind_int64(st, 2, h->now);
        if (store_step_done(c, st, "queueing a grade passback", err) < 0)
            return -1;
    }
    return 0;
}

int store_hook_apply(struct store *s, const struct store_hook *h, enum store_hook_effect *effect,
                     int64_t *award_id, struct err *err)
{
    struct store_hook_counts d = { 0 };
    int ret;

    *effect = STORE_HOOK_IGNORED;
    *award_id = 0;
    if (store_admin_begin(s, err) < 0)
        return -1;
    ret = decide(s->admin, h, effect, award_id, err);
    if (ret == 0) {
        d.received = 1;
        d.last_received_at = h->now;
        if (*effect == STORE_HOOK_ISSUED || *effect == STORE_HOOK_REVOKED)
            d.applied = 1;
        else if (*effect == STORE_HOOK_UNCHANGED)
            d.unchanged = 1;
        else
            d.ignored = 1;
        ret = count_conn(s->admin, h->backend, &d, err);
    }
    return store_admin_end(s, ret, err);
}

int store_hook_count(struct store *s, const char *backend, const struct store_hook_counts *delta,
                     struct err *err)
{
    int ret;

    if (store_admin_begin(s, err) < 0)
        return -1;
    ret = count_conn(s->admin, backend, delta, err);
    return store_admin_end(s, ret, err);
}

int store_hook_counts_get(struct store *s, const char *backend, struct arena *a,
                          struct store_hook_counts *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    memset(out, 0, sizeof(*out));
    if (!c)
        return -1;
    st = store_stmt(c, S_HOOK_COUNTS_GET, err);
    if (!st)
        goto out;
    db_bind_str(st, 1, str_from_cstr(backend));
    rc = db_step(st);
    if (rc == DB_ROW) {
        out->received = db_column_int64(st, 0);
        out->applied = db_column_int64(st, 1);
        out->unchanged = db_column_int64(st, 2);
        out->ignored = db_column_int64(st, 3);
        out->refused = db_column_int64(st, 4);
        out->last_received_at = db_column_int64(st, 5);
        out->last_refused_at = db_column_int64(st, 6);
        out->last_refusal = store_col_arena(st, 7, a);
    } else if (rc != DB_DONE) {
        store_db_err(c, rc, "reading the hook counts", err);
        db_reset(st);
        goto out;
    }
    db_reset(st);
    ret = 0;
out:
    store_reader_put(s, c);
    return ret;
}
