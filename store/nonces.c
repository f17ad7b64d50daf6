/*
 * store/nonces.c - OAuth nonces: their digests, the window of nonces seen,
 * and the claim of an outcomes request's nonce.
 *
 * A nonce may be used once per consumer within the timestamp window,
 * whatever the timestamp that comes with it: RFC 5849 3.3 only asks that it
 * be unique per timestamp, but a nonce that comes back with another
 * timestamp is a consumer (or a copy of its launch form) replaying, never a
 * new click. So a nonce's digest covers (consumer, nonce) and not the
 * timestamp (schema 8), and finding whether a digest was seen must not
 * depend on the timestamp either.
 *
 * `nonces` is clustered by (ts, fp) so that the writer's moves of the log
 * land at its right edge (launch.c); an index on fp alone would take a
 * random page write per launch again. So the process keeps the window in
 * memory instead: a set of 8-byte entries (the digest's top 47 bits and the
 * timestamp's low 16 bits), loaded from `nonces` when the writer opens and
 * kept by every claim (launches on the writer's thread, outcomes requests on
 * the HTTP threads, hence the mutex). An entry is live while its timestamp
 * is within the window; the 16 bits recover the timestamp as long as no
 * entry is older than 2^15 seconds. Claims sweep what left the window every
 * NW_SWEEP_EVERY seconds, and a claim after a longer silence than any entry
 * can live empties the table, so no entry is ever older than about three
 * hours for windows up to LIMIT_OAUTH_WINDOW_MAX. Two nonces whose digests
 * agree in 47 bits, within one consumer's window, one chance in 2^47 per
 * pair: the second is refused as a replay and the user launches again.
 *
 * The database keeps the durable record (a restart reloads the window from
 * it) and still refuses the same (timestamp, digest) claimed by another
 * process on the same file. Digests written before schema 8 covered the
 * timestamp too; migration 8 keeps them in `nonces_v6`, checked with the old
 * digest until the last of them has left every possible window.
 */
#include "base/base.h"
#include "store/store_int.h"

#define NW_TS_BITS     16
#define NW_TS_MASK     ((UINT64_C(1) << NW_TS_BITS) - 1)
#define NW_MIN_SLOTS   65536
#define NW_SWEEP_EVERY 1024

static int nonce_digest(uint64_t parts[], int nparts, struct str nonce, int64_t *out,
                        struct err *err)
{
    unsigned char in[1 + 3 * 8 + LIMIT_OAUTH_NONCE_LEN];
    size_t n = 0;

    if (nonce.len > LIMIT_OAUTH_NONCE_LEN)
        return err_set(err, ERR_INVALID, "the nonce is longer than %d bytes",
                       LIMIT_OAUTH_NONCE_LEN);
    in[n++] = 'N';
    for (int p = 0; p < nparts; p++) {
        for (int b = 0; b < 8; b++)
            in[n++] = (unsigned char)(parts[p] >> (8 * b));
    }
    if (nonce.len)
        memcpy(in + n, nonce.ptr, nonce.len);
    n += nonce.len;
    *out = store_digest63(in, n) | 1; /* never 0 */
    return 0;
}

/*
 * A 64-bit digest rather than the nonce's text (32 to 40 characters from
 * Canvas, Moodle and Open edX) halves the rows of `nonces`, and so the pages
 * a move of the log dirties. Fixed byte order, so that a database moved to
 * another machine keeps its nonces.
 */
int store_nonce_fp(int64_t consumer_id, struct str nonce, int64_t *out, struct err *err)
{
    uint64_t parts[2] = { (uint64_t)consumer_id, (uint64_t)nonce.len };

    return nonce_digest(parts, 2, nonce, out, err);
}

int store_nonce_fp_v6(int64_t consumer_id, int64_t ts, struct str nonce, int64_t *out,
                      struct err *err)
{
    uint64_t parts[3] = { (uint64_t)consumer_id, (uint64_t)ts, (uint64_t)nonce.len };

    return nonce_digest(parts, 3, nonce, out, err);
}

/* ---- the window ---------------------------------------------------------- */

static uint64_t entry_key(uint64_t fp)
{
    return (fp >> (63 - 47)) | 1; /* the digest's top 47 bits, never 0 */
}

static size_t entry_home(const struct nonce_window *w, uint64_t key)
{
    return (size_t)(key >> 1) & (w->cap - 1);
}

/* The timestamp an entry stands for: the one nearest `now` with its low bits. */
static int64_t entry_ts(uint64_t e, int64_t now)
{
    int64_t d = (int64_t)((e - (uint64_t)now) & NW_TS_MASK);

    if (d >= (int64_t)(NW_TS_MASK + 1) / 2)
        d -= (int64_t)NW_TS_MASK + 1;
    return now + d;
}

static bool entry_live(uint64_t e, int64_t now, int64_t window)
{
    return entry_ts(e, now) >= now - window - 1;
}

static void put(struct nonce_window *w, uint64_t e)
{
    size_t i = entry_home(w, e >> NW_TS_BITS);

    while (w->slots[i] != 0)
        i = (i + 1) & (w->cap - 1);
    w->slots[i] = e;
    w->used++;
}

/* Drops the entries out of the window, and sizes the table for those left. */
static void sweep(struct nonce_window *w, int64_t now, int64_t window)
{
    uint64_t *old = w->slots;
    size_t oldcap = w->cap, live = 0, cap = NW_MIN_SLOTS;

    for (size_t i = 0; i < oldcap; i++)
        live += old[i] != 0 && entry_live(old[i], now, window);
    while (cap < live * 2)
        cap *= 2;
    w->slots = xcalloc(cap, sizeof(*w->slots));
    w->cap = cap;
    w->used = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i] != 0 && entry_live(old[i], now, window))
            put(w, old[i]);
    }
    free(old);
    w->swept = now;
}

void store_nonce_window_init(struct nonce_window *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    w->cap = NW_MIN_SLOTS;
    w->slots = xcalloc(w->cap, sizeof(*w->slots));
}

void store_nonce_window_release(struct nonce_window *w)
{
    free(w->slots);
    w->slots = NULL;
    pthread_mutex_destroy(&w->mu);
}

enum store_nonce_take store_nonce_window_take(struct store *s, int64_t fp, int64_t ts, int64_t now)
{
    struct nonce_window *w = &s->nonces;
    uint64_t key = entry_key((uint64_t)fp);
    uint64_t e = (key << NW_TS_BITS) | ((uint64_t)ts & NW_TS_MASK);
    int64_t window = s->nonce_window;
    enum store_nonce_take claimed = NONCE_TAKEN;
    size_t i;

    pthread_mutex_lock(&w->mu);
    /*
     * Out of the window at the latest time a claim has been made with (a
     * request verified a moment ago may be claimed after one verified later,
     * on another thread): the entry of a first use of this nonce may have
     * been swept, and its row in `nonces` purged, so "not there" would prove
     * nothing. Refused, whatever `now` says.
     */
    if (ts < (now > w->last ? now : w->last) - window - 1) {
        pthread_mutex_unlock(&w->mu);
        return NONCE_STALE;
    }
    if (now > w->last + 2 * window + 2) {
        /*
         * Nothing claimed for longer than any entry can live (its timestamp
         * was at most `window` past its claim's time): all are out of the
         * window. Emptied rather than swept, since after so long a gap their
         * timestamps' low bits no longer say which they were.
         */
        free(w->slots);
        w->cap = NW_MIN_SLOTS;
        w->slots = xcalloc(w->cap, sizeof(*w->slots));
        w->used = 0;
        w->swept = now;
    }
    if (now > w->last)
        w->last = now;
    if (now - w->swept >= NW_SWEEP_EVERY || now < w->swept || (w->used + 1) * 4 > w->cap * 3)
        sweep(w, now, window);
    for (i = entry_home(w, key); w->slots[i] != 0; i = (i + 1) & (w->cap - 1)) {
        if (w->slots[i] >> NW_TS_BITS != key)
            continue;
        if (entry_live(w->slots[i], now, window))
            claimed = NONCE_USED;
        else
            w->slots[i] = e; /* out of the window: the nonce may be used again */
        goto out;
    }
    w->slots[i] = e;
    w->used++;
out:
    pthread_mutex_unlock(&w->mu);
    return claimed;
}

bool store_nonce_window_claim(struct store *s, int64_t fp, int64_t ts, int64_t now)
{
    return store_nonce_window_take(s, fp, ts, now) == NONCE_TAKEN;
}

int64_t store_nonce_window_last(struct store *s)
{
    int64_t last;

    pthread_mutex_lock(&s->nonces.mu);
    last = s->nonces.last;
    pthread_mutex_unlock(&s->nonces.mu);
    return last;
}

void store_nonce_window_unclaim(struct store *s, int64_t fp, int64_t ts)
{
    struct nonce_window *w = &s->nonces;
    uint64_t e = (entry_key((uint64_t)fp) << NW_TS_BITS) | ((uint64_t)ts & NW_TS_MASK);
    size_t i, j, mask;

    pthread_mutex_lock(&w->mu);
    mask = w->cap - 1;
    for (i = entry_home(w, e >> NW_TS_BITS); w->slots[i] != e; i = (i + 1) & mask) {
        if (w->slots[i] == 0)
            goto out;
    }
    /* backward-shift deletion: the entries after it stay reachable from their home slots */
    w->slots[i] = 0;
    w->used--;
    for (j = (i + 1) & mask; w->slots[j] != 0; j = (j + 1) & mask) {
        size_t k = entry_home(w, w->slots[j] >> NW_TS_BITS);

        /* move slots[j] into the hole unless its home lies cyclically in (i, j] */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        w->slots[i] = w->slots[j];
        w->slots[j] = 0;
        i = j;
    }
out:
    pthread_mutex_unlock(&w->mu);
}

int store_nonce_window_load(struct store *s, struct conn *c, int64_t now, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_LITE_NONCE_WINDOW_LOAD, err);
    int rc;

    if (!st)
        return -1;
    int64_t window = s->nonce_window;

    /*
     * Every window a later store_set_nonce_window may set: read, and kept
     * by the sweeps while loading, with the largest; the next sweep after
     * the window is set keeps what that one needs.
     */
    s->nonce_window = LIMIT_OAUTH_WINDOW_MAX;
    db_bind_int64(st, 1, now - LIMIT_OAUTH_WINDOW_MAX - 1);
    while ((rc = db_step(st)) == DB_ROW)
        store_nonce_window_claim(s, db_column_int64(st, 1), db_column_int64(st, 0), now);
    db_reset(st);
    s->nonce_window = window;
    if (rc != DB_DONE)
        return store_db_err(c, rc, "reading the nonces", err);
    return 0;
}

/* ---- nonces digested before schema 8 ---------------------------------------- */

int store_nonce_v6_open(struct store *s, struct conn *c, int64_t now, struct err *err)
{
    struct db_stmt *st;
    int64_t newest = 0;
    int rc;

    s->nonces_v6_until = 0;
    st = store_stmt(c, S_LITE_NONCE_V6_EXISTS, err);
    if (!st)
        return -1;
    rc = db_step(st);
    db_reset(st);
    if (rc == DB_DONE)
        return 0;
    if (rc != DB_ROW)
        return store_db_err(c, rc, "reading the nonces", err);
    st = store_stmt(c, S_LITE_NONCE_V6_NEWEST, err);
    if (!st)
        return -1;
    rc = db_step(st);
    if (rc == DB_ROW)
        newest = db_column_int64(st, 0);
    db_reset(st);
    if (rc != DB_ROW)
        return store_db_err(c, rc, "reading the nonces", err);
    if (newest + LIMIT_OAUTH_WINDOW_MAX + 1 >= now) {
        s->nonces_v6_until = newest + LIMIT_OAUTH_WINDOW_MAX + 1;
        return 0;
    }
    /* all out of every window: what they guarded can no longer be replayed */
    return store_exec(c, S_LITE_NONCE_V6_DROP, err);
}

int store_nonce_v6_seen(struct store *s, struct conn *c, int64_t consumer_id, struct str nonce,
                        int64_t ts, int64_t now, struct err *err)
{
    int64_t fp;

    if (now > s->nonces_v6_until)
        return 0;
    if (store_nonce_fp_v6(consumer_id, ts, nonce, &fp, err) < 0)
        return -1;
    return store_nonce_seen(c, S_LITE_NONCE_V6_SEEN, ts, fp, err);
}

int store_nonce_seen(struct conn *c, enum stmt_id id, int64_t ts, int64_t fp, struct err *err)
{
    struct db_stmt *st = store_stmt(c, id, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, ts);
    db_bind_int64(st, 2, fp);
    rc = db_step(st);
    db_reset(st);
    if (rc == DB_ROW)
        return err_set(err, ERR_REPLAY, "this launch was already used");
    if (rc != DB_DONE)
        return store_db_err(c, rc, "checking a nonce", err);
    return 0;
}

/* ---- outcomes requests ------------------------------------------------------ */

int store_nonce_claim(struct store *s, int64_t consumer_id, struct str nonce, int64_t ts,
                      struct err *err)
{
    struct db_stmt *st;
    int64_t fp, now = util_now();
    int ret = -1;

    if (store_nonce_fp(consumer_id, nonce, &fp, err) < 0)
        return -1;
    switch (store_nonce_window_take(s, fp, ts, now)) {
    case NONCE_TAKEN:
        break;
    case NONCE_USED:
        return err_set(err, ERR_REPLAY, "this request was already received (nonce reused)");
    case NONCE_STALE:
        return err_set(err, ERR_UNAUTHORIZED,
                       "the request's timestamp left the time window before it was recorded");
    }
    if (store_admin_begin(s, err) < 0)
        goto out;
    if (store_nonce_v6_seen(s, s->admin, consumer_id, nonce, ts, now, err) < 0) {
        if (err->code == ERR_REPLAY) {
            err_clear(err);
            err_set(err, ERR_REPLAY, "this request was already received (nonce reused)");
        }
        ret = store_admin_end(s, -1, err);
        goto out;
    }
    st = store_stmt(s->admin, S_NONCE_INSERT, err);
    if (st) {
        db_bind_int64(st, 1, ts);
        db_bind_int64(st, 2, fp);
        db_bind_int64(st, 3, consumer_id);
        ret = store_step_done(s->admin, st, "claiming a nonce", err);
        if (ret == 0 && db_changes(&s->admin->db) == 0)
            ret = err_set(err, ERR_REPLAY, "this request was already received (nonce reused)");
    }
    ret = store_admin_end(s, ret, err);
out:
    /* not recorded: the nonce is free again, unless it was someone else's to begin with */
    if (ret < 0 && err->code != ERR_REPLAY)
        store_nonce_window_unclaim(s, fp, ts);
    return ret;
}
