/*
 * store/launch.c - recording verified launches, group-committed.
 *
 * Each launch of a batch runs in its own savepoint: its nonce is claimed
 * first, so a replay (or the loser of two simultaneous launches with one
 * nonce) writes nothing at all, and a launch that fails for any other reason
 * leaves the rest of the batch intact. A batch every PURGE_EVERY_MS then
 * purges a bounded number of expired nonces and sessions; each commits once.
 *
 * Nonces are random, so inserting each into the `nonces` b-tree dirtied a
 * page of it per launch, and every dirty page goes through the WAL and its
 * fsync (27 of the 31 pages a group commit wrote). A claim is therefore an
 * append to `nonce_log`, in the launch's transaction, after a claim in the
 * process's window of nonces (nonces.c), which no other claim of the same
 * nonce passes, so of two launches with one nonce exactly one wins. Every
 * NONCE_LOG_EVERY_MS (or once the log holds NONCE_LOG_MAX), after a batch
 * committed, the writer moves the log into `nonces`, so that a page there
 * takes many nonces at once; opening the store moves whatever a stop left in
 * the log.
 *
 * Most launches are relaunches: the same user, course, link and outcome
 * binding as before. Rewriting those rows would dirty random b-tree pages
 * for nothing (and every dirty page goes through the WAL and its fsync), so
 * the writer keeps a bounded cache of what it wrote. For a row whose id the
 * launch needs (consumer, user, course, link): a 128-bit key (SHA-256 of what
 * identifies the row) with the row id and a 64-bit digest of the values
 * written. For an enrollment or an outcome binding, whose id it does not
 * need: a 64-bit key and a 64-bit digest only, so that a term's worth of them
 * fits. A launch whose values match writes nothing there. The digests are
 * computed when the launch is queued, on the caller's thread
 * (store_launch_digest), so that the writer, which every launch waits for, only
 * looks them up.
 * The cache is dropped whenever another connection changed the database
 * (PRAGMA data_version), when a launch fails after it used the cache, or
 * when a commit fails; foreign keys catch a stale id if all else fails.
 */
#include "base/base.h"
#include "store/store_int.h"

/* Rows cached with their id. */
enum wkind {
    WK_CONSUMER,
    WK_USER,
    WK_CONTEXT,
    WK_LINK,
    WK__COUNT,
};

/* Rows cached without an id: only whether they hold these values. */
enum mkind {
    MK_ENROLLMENT,
    MK_BINDING,
    MK__COUNT,
};

_Static_assert(WK__COUNT == sizeof(((struct store_launch_digests *)0)->key) / 16 &&
                   MK__COUNT == sizeof(((struct store_launch_digests *)0)->mkey) / 8,
               "struct store_launch_digests holds a digest of each kind");

/*
 * Slots per kind (powers of two) at least, and at most: a few consumers,
 * thousands of courses and links, tens of thousands of learners, enrollments
 * and outcome bindings (one per learner and graded link). The writer sizes
 * each table from the database's rows when it opens (store_wcache_new), so
 * that an institution's working set fits at three quarters full; past that,
 * CLOCK evicts one entry at a time (evict_one). At the most, 4 x 262 144 x
 * 48 bytes + 2 x 524 288 x 16 bytes: 64 MiB, for a database of more than
 * 190 000 learners; 50 000 learners in 2 000 courses take about 14 MiB.
 */
static const size_t wcache_min[] = {
    [WK_CONSUMER] = 64,
    [WK_USER] = 16384,
    [WK_CONTEXT] = 2048,
    [WK_LINK] = 8192,
};
static const size_t mcache_min[] = {
    [MK_ENROLLMENT] = 65536,
    [MK_BINDING] = 131072,
};
#define WCACHE_MAX_SLOTS 262144
#define MCACHE_MAX_SLOTS 524288
/* An enrollment's last_launch_at is refreshed at most this often. */
#define WCACHE_REFRESH 3600

/*
 * The key is 128 bits of SHA-256: a collision would hand one row's id to
 * another. The values' digest is 64 bits: a false match needs that chance on
 * the very row, and would only skip rewriting values that did not change
 * their digest.
 */
struct wentry {
    unsigned char key[16];
    unsigned char val[8];
    int64_t id;
    int64_t stamp; /* when written; 0: empty slot */
    bool ref;      /* used since CLOCK's hand last passed */
};

/*
 * A row without an id: a false match needs both digests to collide at once,
 * and would only skip rewriting a row. key 0: empty slot; the key's bit 0 is
 * set in every entry, its bit 1 is CLOCK's "used since the hand passed"
 * (MREF), so keys compare without it.
 */
struct mentry {
    uint64_t key, val;
};
#define MREF ((uint64_t)2)

struct wcache {
    struct wentry *slots[WK__COUNT];
    size_t nslots[WK__COUNT], used[WK__COUNT], hand[WK__COUNT];
    struct mentry *marks[MK__COUNT];
    size_t nmarks[MK__COUNT], mused[MK__COUNT], mhand[MK__COUNT];
    uint64_t evictions;

    /* rows in nonce_log: the launches claimed since the last move */
    size_t nlogged;

    /* consumers read since the last clear: what a launch's must still be (confirm_consumer) */
    struct confirmed {
        int64_t id;
        bool enabled;
        char secret[LIMIT_CONSUMER_SECRET_LEN + 1];
    } confirmed[8];
    size_t nconfirmed;
};

/*
 * A batch (at most LIMIT_STORE_BATCH) moves the log into `nonces` once it
 * holds NONCE_LOG_MAX, or NONCE_LOG_EVERY_MS after the last move. Past
 * NONCE_LOG_FULL (only when moving failed for a while) launches are refused
 * rather than let the log grow.
 */
#define NONCE_LOG_FULL     49152
#define NONCE_LOG_MAX      4096
#define NONCE_LOG_EVERY_MS 100
/* How often a batch purges expired nonces and sessions (a bounded number: purge()). */
#define PURGE_EVERY_MS 100

/* Slots for `rows` at three quarters full at most: a power of two from `min` to `max`. */
static size_t slots_for(int64_t rows, size_t min, size_t max)
{
    size_t n = min;

    while (n < max && (uint64_t)rows * 4 > (uint64_t)n * 3)
        n *= 2;
    return n;
}

struct wcache *store_wcache_new(const int64_t wrows[4], const int64_t mrows[2])
{
    struct wcache *c = xcalloc(1, sizeof(*c));

    for (int k = 0; k < WK__COUNT; k++) {
        c->nslots[k] = slots_for(wrows ? wrows[k] : 0, wcache_min[k], WCACHE_MAX_SLOTS);
        c->slots[k] = xcalloc(c->nslots[k], sizeof(struct wentry));
    }
    for (int k = 0; k < MK__COUNT; k++) {
        c->nmarks[k] = slots_for(mrows ? mrows[k] : 0, mcache_min[k], MCACHE_MAX_SLOTS);
        c->marks[k] = xcalloc(c->nmarks[k], sizeof(struct mentry));
    }
    return c;
}

size_t store_wcache_bytes(const struct wcache *c)
{
    size_t n = sizeof(*c);

    for (int k = 0; k < WK__COUNT; k++)
        n += c->nslots[k] * sizeof(struct wentry);
    for (int k = 0; k < MK__COUNT; k++)
        n += c->nmarks[k] * sizeof(struct mentry);
    return n;
}

uint64_t store_wcache_evictions(const struct wcache *c)
{
    return c->evictions;
}

void store_wcache_free(struct wcache *c)
{
    if (!c)
        return;
    for (int k = 0; k < WK__COUNT; k++)
        free(c->slots[k]);
    for (int k = 0; k < MK__COUNT; k++)
        free(c->marks[k]);
    free(c);
}

static void wcache_clear(struct wcache *c)
{
    for (int k = 0; k < WK__COUNT; k++) {
        memset(c->slots[k], 0, c->nslots[k] * sizeof(struct wentry));
        c->used[k] = 0;
    }
    for (int k = 0; k < MK__COUNT; k++) {
        memset(c->marks[k], 0, c->nmarks[k] * sizeof(struct mentry));
        c->mused[k] = 0;
    }
    c->nconfirmed = 0;
}

/*
 * A digest of length-prefixed parts: "ab","c" and "a","bc" differ, and so do
 * NULL and "". The parts are gathered in a reused buffer and hashed at once.
 */
struct digest {
    struct buf *b;
};

static void dg_init(struct digest *d, struct buf *b, int tag)
{
    d->b = b;
    buf_reset(b);
    buf_addch(b, (char)tag);
}

static void dg_str(struct digest *d, struct str s)
{
    uint64_t len = s.ptr ? (uint64_t)s.len : UINT64_MAX;

    buf_add(d->b, &len, sizeof(len));
    if (s.ptr && s.len)
        buf_add(d->b, s.ptr, s.len);
}

static void dg_int(struct digest *d, int64_t v)
{
    buf_add(d->b, &v, sizeof(v));
}

/* The first `n` bytes of the parts' SHA-256; -1 when they did not fit (the row is not cached). */
static int dg_final(struct digest *d, unsigned char *out, size_t n)
{
    unsigned char full[32];

    if (d->b->toobig)
        return -1;
    util_sha256(d->b->ptr, d->b->len, full);
    memcpy(out, full, n);
    return 0;
}

/* The slot for `key`: its entry, or the empty slot where it would go. */
static struct wentry *wslot(struct wcache *c, enum wkind k, const unsigned char key[16])
{
    uint64_t h;
    size_t i;

    memcpy(&h, key, sizeof(h));
    i = (size_t)(h & (c->nslots[k] - 1));
    for (;;) {
        struct wentry *e = &c->slots[k][i];

        if (e->stamp == 0 || memcmp(e->key, key, 16) == 0)
            return e;
        i = (i + 1) & (c->nslots[k] - 1);
    }
}

static size_t whome(const struct wcache *c, enum wkind k, const struct wentry *e)
{
    uint64_t h;

    memcpy(&h, e->key, sizeof(h));
    return (size_t)(h & (c->nslots[k] - 1));
}

static size_t mhome(const struct wcache *c, enum mkind k, const struct mentry *e)
{
    return (size_t)((e->key & ~MREF) & (c->nmarks[k] - 1));
}

/* Whether home slot `h` lies cyclically in (i, j]: then slot j's entry may not move to i. */
static bool home_between(size_t i, size_t j, size_t h)
{
    return i <= j ? (i < h && h <= j) : (i < h || h <= j);
}

/* What evict_one needs of an entry: empty, marked used (cleared as the hand passes), home. */
struct clock_ops {
    size_t size;
    bool (*empty)(const void *e);
    bool (*second_chance)(void *e); /* true (and the mark cleared) when it was marked */
    size_t (*home)(const struct wcache *c, int k, const void *e);
};

/*
 * CLOCK: the hand sweeps the slots, giving each used entry a second chance
 * (its mark cleared) and evicting the first unused one; the entries after
 * it shift back so that every entry stays reachable from its home slot. A
 * relaunch marks its entries, so the rows a term keeps launching stay and
 * the ones nobody came back to go, one at a time, instead of the whole
 * table being wiped when it filled up.
 */
static void evict_one(struct wcache *c, int k, unsigned char *t, size_t n, size_t *hand,
                      size_t *used, const struct clock_ops *ops)
{
    size_t mask = n - 1, i, j;

    for (i = *hand;; i = (i + 1) & mask) {
        void *e = t + i * ops->size;

        if (!ops->empty(e) && !ops->second_chance(e))
            break;
    }
    *hand = (i + 1) & mask;
    memset(t + i * ops->size, 0, ops->size);
    for (j = (i + 1) & mask; !ops->empty(t + j * ops->size); j = (j + 1) & mask) {
        if (home_between(i, j, ops->home(c, k, t + j * ops->size)))
            continue;
        memcpy(t + i * ops->size, t + j * ops->size, ops->size);
        memset(t + j * ops->size, 0, ops->size);
        i = j;
    }
    (*used)--;
    c->evictions++;
}

static bool wempty(const void *e)
{
    return ((const struct wentry *)e)->stamp == 0;
}

static bool wsecond(void *p)
{
    struct wentry *e = p;
    bool was = e->ref;

    e->ref = false;
    return was;
}

static size_t whome_of(const struct wcache *c, int k, const void *e)
{
    return whome(c, (enum wkind)k, e);
}

static bool mempty(const void *e)
{
    return ((const struct mentry *)e)->key == 0;
}

static bool msecond(void *p)
{
    struct mentry *e = p;
    bool was = (e->key & MREF) != 0;

    e->key &= ~MREF;
    return was;
}

static size_t mhome_of(const struct wcache *c, int k, const void *e)
{
    return mhome(c, (enum mkind)k, e);
}

static const struct clock_ops wclock = { sizeof(struct wentry), wempty, wsecond, whome_of };
static const struct clock_ops mclock = { sizeof(struct mentry), mempty, msecond, mhome_of };

static void wevict_one(struct wcache *c, enum wkind k)
{
    evict_one(c, k, (unsigned char *)c->slots[k], c->nslots[k], &c->hand[k], &c->used[k], &wclock);
}

static void mevict_one(struct wcache *c, enum mkind k)
{
    evict_one(c, k, (unsigned char *)c->marks[k], c->nmarks[k], &c->mhand[k], &c->mused[k],
              &mclock);
}

static void wremember(struct wcache *c, const struct store_launch_digests *d, enum wkind k,
                      struct wentry *e, int64_t id, int64_t now)
{
    if (!e)
        return;
    if (e->stamp == 0) {
        /* a new entry in a table three quarters full: one goes first, and entries move */
        if (c->used[k] >= c->nslots[k] / 4 * 3) {
            wevict_one(c, k);
            e = wslot(c, k, d->key[k]);
        }
        c->used[k]++;
    }
    memcpy(e->key, d->key[k], 16);
    memcpy(e->val, d->val[k], 8);
    e->id = id;
    e->stamp = now > 0 ? now : 1;
    e->ref = true;
}

/*
 * Looks a row up in the cache: true (and *id) when it was written with
 * exactly the launch's values. *slot is where to remember it after writing
 * (NULL: don't).
 */
static bool cached(struct wcache *wc, const struct store_launch_digests *d, enum wkind k,
                   struct wentry **slot, int64_t *id)
{
    *slot = NULL;
    if (!d->cached)
        return false;
    *slot = wslot(wc, k, d->key[k]);
    if ((*slot)->stamp && memcmp((*slot)->val, d->val[k], 8) == 0) {
        *id = (*slot)->id;
        (*slot)->ref = true;
        return true;
    }
    return false;
}

/* The slot for `key` in a table without ids: its entry, or the empty slot where it would go. */
static struct mentry *mslot(struct wcache *c, enum mkind k, uint64_t key)
{
    size_t i = (size_t)(key & (c->nmarks[k] - 1));

    for (;;) {
        struct mentry *e = &c->marks[k][i];

        if (e->key == 0 || (e->key & ~MREF) == key)
            return e;
        i = (i + 1) & (c->nmarks[k] - 1);
    }
}

/*
 * Whether a row without an id was written with exactly the launch's values;
 * when not, *slot is where to remember it once it is (NULL: don't).
 */
static bool marked(struct wcache *wc, const struct store_launch_digests *d, enum mkind k,
                   struct mentry **slot)
{
    *slot = NULL;
    if (!d->cached)
        return false;
    *slot = mslot(wc, k, d->mkey[k]);
    if ((*slot)->key != 0 && (*slot)->val == d->mval[k]) {
        (*slot)->key |= MREF;
        return true;
    }
    return false;
}

static void mremember(struct wcache *c, const struct store_launch_digests *d, enum mkind k,
                      struct mentry *e)
{
    if (!e)
        return;
    if (e->key == 0) {
        if (c->mused[k] >= c->nmarks[k] / 4 * 3) {
            mevict_one(c, k);
            e = mslot(c, k, d->mkey[k]);
        }
        c->mused[k]++;
    }
    e->key = d->mkey[k] | MREF;
    e->val = d->mval[k];
}

/* The digests of one kind of row: 0, or -1 when a value was too long (nothing is cached). */
static int wdigest(struct digest *key, struct digest *val, struct store_launch_digests *d,
                   enum wkind k)
{
    return dg_final(key, d->key[k], 16) < 0 || dg_final(val, d->val[k], 8) < 0 ? -1 : 0;
}

static int mdigest(struct digest *key, struct digest *val, struct store_launch_digests *d,
                   enum mkind k)
{
    unsigned char kb[8], vb[8];

    if (dg_final(key, kb, 8) < 0 || dg_final(val, vb, 8) < 0)
        return -1;
    memcpy(&d->mkey[k], kb, 8);
    memcpy(&d->mval[k], vb, 8);
    d->mkey[k] = (d->mkey[k] | 1) & ~MREF; /* never 0, the empty slot; bit 1 is CLOCK's */
    return 0;
}

/*
 * What the writer's cache keys and compares each row of `l` by (see the top
 * of this file), computed before the launch is queued. A row is keyed by
 * what identifies it in the launch (the consumer and LTI's ids), which, for
 * one consumer, names one row each: the cache is dropped whenever another
 * connection changed the database, so that no row it names can have been
 * removed and made again under another id meanwhile.
 */
void store_launch_digest(const struct store_launch *l, struct store_launch_digests *d)
{
    /* every digested value is bounded by base/limits.h; 64 KiB holds them all */
    struct buf kb = BUF_INIT(64 * 1024), vb = BUF_INIT(64 * 1024);
    struct digest kd, vd;
    int bad = 0;

    dg_init(&kd, &kb, WK_CONSUMER);
    dg_int(&kd, l->consumer_id);
    dg_init(&vd, &vb, WK_CONSUMER);
    dg_str(&vd, l->lms);
    bad |= wdigest(&kd, &vd, d, WK_CONSUMER);

    dg_init(&kd, &kb, WK_USER);
    dg_int(&kd, l->consumer_id);
    dg_str(&kd, l->user_id);
    dg_init(&vd, &vb, WK_USER);
    dg_str(&vd, l->given_name);
    dg_str(&vd, l->family_name);
    dg_str(&vd, l->full_name);
    dg_str(&vd, l->email);
    dg_str(&vd, l->person_sourcedid);
    bad |= wdigest(&kd, &vd, d, WK_USER);

    dg_init(&kd, &kb, WK_CONTEXT);
    dg_int(&kd, l->consumer_id);
    dg_str(&kd, l->context_id);
    dg_init(&vd, &vb, WK_CONTEXT);
    dg_str(&vd, l->context_title);
    dg_str(&vd, l->context_label);
    bad |= wdigest(&kd, &vd, d, WK_CONTEXT);

    dg_init(&kd, &kb, WK_LINK);
    dg_int(&kd, l->consumer_id);
    dg_str(&kd, l->resource_link_id);
    dg_init(&vd, &vb, WK_LINK);
    dg_str(&vd, l->context_id); /* the course it belongs to */
    dg_str(&vd, l->resource_link_title);
    dg_int(&vd, (int64_t)(l->points_possible * 1000)); /* in thousandths: exact enough */
    bad |= wdigest(&kd, &vd, d, WK_LINK);

    dg_init(&kd, &kb, WK__COUNT + MK_ENROLLMENT);
    dg_int(&kd, l->consumer_id);
    dg_str(&kd, l->user_id);
    dg_str(&kd, l->context_id);
    dg_init(&vd, &vb, WK__COUNT + MK_ENROLLMENT);
    dg_str(&vd, l->roles);
    dg_str(&vd, l->ext_roles);
    dg_int(&vd, l->role_flags);
    dg_str(&vd, l->mode);
    /*
     * The hour is part of the values: a relaunch in a later hour runs the
     * update, whose WHERE refreshes last_launch_at at most once an hour.
     */
    dg_int(&vd, l->now / WCACHE_REFRESH);
    bad |= mdigest(&kd, &vd, d, MK_ENROLLMENT);

    dg_init(&kd, &kb, WK__COUNT + MK_BINDING);
    dg_int(&kd, l->consumer_id);
    dg_str(&kd, l->user_id);
    dg_str(&kd, l->resource_link_id);
    dg_init(&vd, &vb, WK__COUNT + MK_BINDING);
    dg_str(&vd, l->context_id);
    dg_str(&vd, l->outcome_service_url);
    dg_str(&vd, l->outcome_data_accepted);
    dg_int(&vd, l->total_score_accepted);
    /*
     * Not the sourcedid: Moodle (a new launchid) and Canvas (a JWT with its
     * iat) send a new one on every launch, and accept any one they issued for
     * this user and link, none expiring (bench/README.md). The one stored is
     * kept and replaced with the launch's at most once an hour (the hour here,
     * S_BINDING_UPSERT's WHERE in the database), as last_launch_at is.
     */
    dg_int(&vd, l->now / WCACHE_REFRESH);
    bad |= mdigest(&kd, &vd, d, MK_BINDING);

    d->cached = bad == 0;
    buf_release(&kb);
    buf_release(&vb);
}

/* S_ENROLL_INSERT and S_ENROLL_UPDATE take the same parameters. */
static struct db_stmt *bind_enrollment(struct conn *c, enum stmt_id id, int64_t user_id,
                                       int64_t context_id, const struct store_launch *l,
                                       struct err *err)
{
    struct db_stmt *st = store_stmt(c, id, err);

    if (!st)
        return NULL;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, context_id);
    db_bind_str(st, 3, l->roles);
    db_bind_str(st, 4, l->ext_roles);
    db_bind_int64(st, 5, l->role_flags);
    db_bind_str(st, 6, l->mode);
    db_bind_int64(st, 7, l->now);
    return st;
}

struct enroll_args {
    struct store *s;
    int64_t consumer_id, user_id, context_id;
    unsigned role_flags;
    int64_t now;
};

/*
 * A launch's rows, written the same way on both engines (launch_pg.c calls
 * them too): the user (and the awards that waited for its address), the
 * course, the link and the outcome binding. Each engine decides whether to
 * write them at all (sqlite's writer cache).
 */
int store_launch_user(struct conn *c, const struct store_launch *l, int64_t *user_id,
                      struct store_launch_result *res, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_USER_UPSERT, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, l->consumer_id);
    db_bind_str(st, 2, l->user_id);
    db_bind_str(st, 3, l->given_name);
    db_bind_str(st, 4, l->family_name);
    db_bind_str(st, 5, l->full_name);
    db_bind_str(st, 6, l->email);
    db_bind_str(st, 7, l->person_sourcedid);
    db_bind_int64(st, 8, l->now);
    if (store_launch_upsert_id(c, st, S_USER_FIND, l->consumer_id, l->user_id, user_id,
                               "recording a user", err) < 0)
        return -1;
    if (str_present(l->email)) {
        /* awards that waited for an address can go out now */
        st = store_stmt(c, S_AWARD_RELEASE_EMAIL, err);
        if (!st)
            return -1;
        db_bind_int64(st, 1, *user_id);
        db_bind_int64(st, 2, l->now);
        if (store_step_done(c, st, "releasing awards", err) < 0)
            return -1;
        res->awards_added += db_changes(&c->db);
    }
    return 0;
}

int store_launch_context(struct conn *c, const struct store_launch *l, int64_t *context_id,
                         struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_CONTEXT_UPSERT, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, l->consumer_id);
    db_bind_str(st, 2, l->context_id);
    db_bind_str(st, 3, l->context_title);
    db_bind_str(st, 4, l->context_label);
    db_bind_int64(st, 5, l->now);
    return store_launch_upsert_id(c, st, S_CONTEXT_FIND, l->consumer_id, l->context_id, context_id,
                                  "recording a course", err);
}

int store_launch_link(struct conn *c, const struct store_launch *l, int64_t context_id,
                      int64_t *link_id, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_LINK_UPSERT, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, l->consumer_id);
    db_bind_str(st, 2, l->resource_link_id);
    if (context_id)
        db_bind_int64(st, 3, context_id);
    db_bind_str(st, 4, l->resource_link_title);
    db_bind_int64(st, 5, l->now);
    if (l->points_possible > 0)
        db_bind_double(st, 6, l->points_possible);
    return store_launch_upsert_id(c, st, S_LINK_FIND, l->consumer_id, l->resource_link_id, link_id,
                                  "recording a resource link", err);
}

int store_launch_binding(struct conn *c, const struct store_launch *l, int64_t user_id,
                         int64_t context_id, int64_t link_id, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_BINDING_UPSERT, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, link_id);
    if (context_id)
        db_bind_int64(st, 3, context_id);
    db_bind_str(st, 4, l->outcome_service_url);
    db_bind_str(st, 5, l->result_sourcedid);
    db_bind_str(st, 6, l->outcome_data_accepted);
    db_bind_int64(st, 7, l->now);
    db_bind_int64(st, 8, l->total_score_accepted);
    db_bind_int64(st, 9, store_sourcedid_fp(l->result_sourcedid));
    return store_step_done(c, st, "recording an outcome binding", err);
}

static int run_enrollment_hook(struct store_tx *tx, void *cls, struct err *err)
{
    struct enroll_args *a = cls;

    return a->s->enrollment_hook(tx, a->s->enrollment_cls, a->consumer_id, a->user_id,
                                 a->context_id, a->role_flags, a->now, err);
}

int store_launch_enroll_hook(struct store *s, struct conn *c, const struct store_launch *l,
                             int64_t user_id, int64_t context_id, struct store_launch_result *res,
                             struct err *err)
{
    struct enroll_args a = { s, l->consumer_id, user_id, context_id, l->role_flags, l->now };
    int added = 0;

    if (!s->enrollment_hook)
        return 0;
    if (store_tx_on(s, c, run_enrollment_hook, &a, &added, err) < 0)
        return -1;
    res->awards_added += added;
    return 0;
}

int store_launch_enroll(struct store *s, struct conn *c, const struct store_launch *l,
                        int64_t user_id, int64_t context_id, struct store_launch_result *res,
                        struct err *err)
{
    /* INSERT first: its change count says whether this is the first launch here */
    struct db_stmt *st = bind_enrollment(c, S_ENROLL_INSERT, user_id, context_id, l, err);

    if (!st || store_step_done(c, st, "recording an enrollment", err) < 0)
        return -1;
    if (db_changes(&c->db) == 1) {
        res->first_in_context = true;
        return store_launch_enroll_hook(s, c, l, user_id, context_id, res, err);
    }
    st = bind_enrollment(c, S_ENROLL_UPDATE, user_id, context_id, l, err);
    if (!st || store_step_done(c, st, "updating an enrollment", err) < 0)
        return -1;
    return 0;
}

struct db_stmt *store_launch_session_stmt(struct conn *c, const struct store_launch *l,
                                          int64_t user_id, int64_t context_id, int64_t link_id,
                                          struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_SESSION_INSERT, err);

    if (!st)
        return NULL;
    db_bind_blob(st, 1, l->session_secret_hash, sizeof(l->session_secret_hash));
    db_bind_int64(st, 2, l->consumer_id);
    db_bind_int64(st, 3, user_id);
    if (context_id)
        db_bind_int64(st, 4, context_id);
    db_bind_int64(st, 5, link_id);
    db_bind_str(st, 6, l->roles);
    db_bind_int64(st, 7, l->role_flags);
    db_bind_str(st, 8, l->mode);
    db_bind_str(st, 9, l->return_url);
    db_bind_str(st, 10, l->document_target);
    db_bind_str(st, 11, l->locale);
    db_bind_blob(st, 12, l->csrf_secret, sizeof(l->csrf_secret));
    db_bind_int64(st, 13, l->now);
    db_bind_int64(st, 14, l->session_expires);
    db_bind_str(st, 15, l->frame_origin);
    return st;
}

/*
 * The consumer must still be enabled, with the secret the launch was
 * verified with: the launch path reads consumers from a cache that a change
 * by another process (the CLI disabling a consumer or giving it a new secret)
 * leaves stale. This transaction holds the write lock, so what it reads is
 * the consumer as of the commit; it is read again whenever another
 * connection wrote (check_data_version clears the cache).
 */
static int confirm_consumer(struct store *s, const struct store_launch *l, struct err *err)
{
    struct wcache *wc = s->wcache;
    const struct confirmed *k = NULL;

    for (size_t i = 0; i < wc->nconfirmed && !k; i++) {
        if (wc->confirmed[i].id == l->consumer_id)
            k = &wc->confirmed[i];
    }
    if (!k) {
        struct db_stmt *st = store_stmt(s->wconn, S_CONSUMER_CHECK, err);
        int rc;

        if (!st)
            return -1;
        db_bind_int64(st, 1, l->consumer_id);
        rc = db_step(st);
        if (rc == DB_ROW) {
            struct confirmed *n;

            if (wc->nconfirmed == sizeof(wc->confirmed) / sizeof(wc->confirmed[0]))
                wc->nconfirmed = 0; /* more consumers than slots: start over */
            n = &wc->confirmed[wc->nconfirmed++];
            n->id = l->consumer_id;
            n->enabled = db_column_int(st, 0) != 0;
            store_col_copy(st, 1, n->secret, sizeof(n->secret));
            k = n;
        }
        db_reset(st);
        if (rc != DB_ROW && rc != DB_DONE)
            return store_db_err(s->wconn, rc, "reading a consumer", err);
    }
    if (!k || !k->enabled)
        return err_set(err, ERR_UNAUTHORIZED, "unknown or disabled consumer key");
    if (str_present(l->consumer_secret) && !str_eq_cstr(l->consumer_secret, k->secret))
        /* what verifying with the current secret would have said */
        return err_set(err, ERR_UNAUTHORIZED, "signature does not match");
    return 0;
}

/*
 * Runs an upsert whose DO UPDATE writes only what changed and returns the
 * row's id; when nothing changed it returns no row (and wrote nothing), and
 * the id is read with `find` (consumer, LTI id). A relaunch the cache has
 * forgotten then costs a lookup, not a rewritten row in the WAL.
 */
int store_launch_upsert_id(struct conn *c, struct db_stmt *st, enum stmt_id find,
                           int64_t consumer_id, struct str lti_id, int64_t *id, const char *what,
                           struct err *err)
{
    int rc = db_step(st);

    if (rc == DB_ROW) {
        *id = db_column_int64(st, 0);
        /* RETURNING: step to the end so the statement completes */
        while (rc == DB_ROW)
            rc = db_step(st);
        db_reset(st);
        return rc == DB_DONE ? 0 : store_db_err(c, rc, what, err);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(c, rc, what, err);
    st = store_stmt(c, find, err);
    if (!st)
        return -1;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, lti_id);
    return store_step_id(c, st, id, what, err);
}

static int record_one(struct store *s, const struct store_launch *l,
                      const struct store_launch_digests *d, struct store_launch_result *res,
                      bool *claimed /* OUT */, struct err *err)
{
    struct conn *c = s->wconn;
    struct wcache *wc = s->wcache;
    struct db_stmt *st;
    int64_t user_id = 0, context_id = 0, link_id = 0, unused;
    uint64_t fp = (uint64_t)d->nonce_fp;
    struct wentry *e;
    struct mentry *m;

    memset(res, 0, sizeof(*res));
    if (confirm_consumer(s, l, err) < 0)
        return -1;
    /*
     * The nonce: unseen in the window (whatever its timestamp; nonces.c),
     * then claimed there and logged. `nonces` is still asked for this very
     * (timestamp, digest): another process on this file may have taken it.
     */
    if (wc->nlogged >= NONCE_LOG_FULL)
        return err_set(err, ERR_UNAVAILABLE, "the launch could not be saved, please try again");
    switch (store_nonce_window_take(s, (int64_t)fp, l->timestamp, l->now)) {
    case NONCE_TAKEN:
        break;
    case NONCE_USED:
        return err_set(err, ERR_REPLAY, "this launch was already used");
    case NONCE_STALE:
        return err_set(err, ERR_INVALID,
                       "the launch waited too long to be recorded and its timestamp is out of "
                       "the time window: please launch again");
    }
    *claimed = true;
    if (store_nonce_v6_seen(s, c, l->consumer_id, l->nonce, l->timestamp, l->now, err) < 0)
        return -1;
    if (store_nonce_seen(c, S_NONCE_SEEN, l->timestamp, d->nonce_fp, err) < 0)
        return -1;
    st = store_stmt(c, S_LITE_NONCE_LOG, err);
    if (!st)
        return -1;
    db_bind_int64(st, 1, l->timestamp);
    db_bind_int64(st, 2, d->nonce_fp);
    db_bind_int64(st, 3, l->consumer_id);
    if (store_step_done(c, st, "claiming a nonce", err) < 0)
        return -1;

    if (str_present(l->lms)) {
        if (!cached(wc, d, WK_CONSUMER, &e, &unused)) {
            st = store_stmt(c, S_CONSUMER_SET_LMS, err);
            if (!st)
                return -1;
            db_bind_int64(st, 1, l->consumer_id);
            db_bind_str(st, 2, l->lms);
            if (store_step_done(c, st, "updating a consumer", err) < 0)
                return -1;
            wremember(wc, d, WK_CONSUMER, e, l->consumer_id, l->now);
        }
    }

    if (!cached(wc, d, WK_USER, &e, &user_id)) {
        if (store_launch_user(c, l, &user_id, res, err) < 0)
            return -1;
        wremember(wc, d, WK_USER, e, user_id, l->now);
    }

    if (str_present(l->context_id)) {
        if (!cached(wc, d, WK_CONTEXT, &e, &context_id)) {
            if (store_launch_context(c, l, &context_id, err) < 0)
                return -1;
            wremember(wc, d, WK_CONTEXT, e, context_id, l->now);
        }
    }

    if (!cached(wc, d, WK_LINK, &e, &link_id)) {
        if (store_launch_link(c, l, context_id, &link_id, err) < 0)
            return -1;
        wremember(wc, d, WK_LINK, e, link_id, l->now);
    }

    if (context_id) {
        if (!marked(wc, d, MK_ENROLLMENT, &m)) {
            if (store_launch_enroll(s, c, l, user_id, context_id, res, err) < 0)
                return -1;
            mremember(wc, d, MK_ENROLLMENT, m);
        }
    }

    if (str_present(l->outcome_service_url) && str_present(l->result_sourcedid)) {
        if (!marked(wc, d, MK_BINDING, &m)) {
            if (store_launch_binding(c, l, user_id, context_id, link_id, err) < 0)
                return -1;
            mremember(wc, d, MK_BINDING, m);
        }
    }

    st = store_launch_session_stmt(c, l, user_id, context_id, link_id, err);
    if (!st)
        return -1;
    if (store_step_done(c, st, "creating a session", err) < 0)
        return -1;

    res->user_id = user_id;
    res->context_id = context_id;
    res->session_id = sqlite3_last_insert_rowid(c->db.lite);
    return 0;
}

/* Deletes one bounded chunk with `id`; how many rows went. */
int64_t store_launch_purge_chunk(struct conn *c, enum stmt_id id, int64_t before)
{
    struct db_stmt *st = store_stmt(c, id, NULL);

    if (!st)
        return 0;
    db_bind_int64(st, 1, before);
    db_bind_int64(st, 2, LIMIT_STORE_PURGE_PER_BATCH);
    if (db_step(st) != DB_DONE) {
        db_reset(st);
        return 0;
    }
    db_reset(st);
    return db_changes(&c->db);
}

static void purge(struct store *s, struct conn *c, int64_t now)
{
    /*
     * Best effort: a failed purge is retried at the next one. A full chunk
     * means more is waiting (more launches a second than one chunk): take a
     * few more, so the tables cannot grow without bound under load.
     */
    /*
     * Nonces older than the window at the latest time a claim was made
     * with, no later: a request older than that is refused as stale before
     * its nonce is looked for (store_nonce_window_take).
     */
    int64_t last = store_nonce_window_last(s);

    for (int i = 0; last && i < 4; i++) {
        if (store_launch_purge_chunk(c, S_NONCE_PURGE,
                                     (now < last ? now : last) - s->nonce_window - 1) <
            LIMIT_STORE_PURGE_PER_BATCH)
            break;
    }
    for (int i = 0; i < 4; i++) {
        if (store_launch_purge_chunk(c, S_SESSION_PURGE, now) < LIMIT_STORE_PURGE_PER_BATCH)
            break;
    }
}

/*
 * Moves the nonce log into `nonces`: two statements, each its own
 * transaction (inside one, SQLite would keep a copy of every page the move
 * changes, in memory, to undo it). A stop between them leaves nonces in both
 * tables, which the next move skips. Once the first committed, every logged
 * nonce is where the lookup finds it.
 */
static int move_nonce_log(struct conn *c, struct wcache *wc, struct err *err)
{
    if (store_exec(c, S_LITE_NONCE_FLUSH, err) < 0)
        return -1; /* tried again with a later batch: the log still holds them all */
    if (wc)
        wc->nlogged = 0;
    return store_exec(c, S_LITE_NONCE_LOG_CLEAR, err);
}

int store_nonce_log_flush(struct store *s, struct err *err)
{
    if (s->pg)
        return 0; /* no nonce log there: nonces go straight into `nonces` */
    return move_nonce_log(s->wconn, NULL, err);
}

_Static_assert(sizeof(struct store_launch_digests) <= sizeof(((struct store_launch_job *)0)->priv),
               "struct store_launch_job's priv holds the writer's digests");

/* The digests store_launch_submit kept in the job (copied: priv is only storage). */
static void job_digests(const struct store_launch_job *j, struct store_launch_digests *d)
{
    memcpy(d, &j->priv, sizeof(*d));
}

/* Gives back the nonce claims of the first `n` jobs that were recorded (status 0). */
static void unclaim_recorded(struct store *s, struct store_launch_job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct store_launch_digests d;

        if (jobs[i]->status != 0)
            continue;
        job_digests(jobs[i], &d);
        store_nonce_window_unclaim(s, d.nonce_fp, jobs[i]->launch.timestamp);
    }
}

static void fail_all(struct store_launch_job **jobs, size_t n, const struct err *e)
{
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->status == 0) {
            jobs[i]->status = -1;
            jobs[i]->err = *e;
        }
    }
}

/* Drops the writer's cache when another connection (CLI, admin) committed since the last batch. */
static void check_data_version(struct store *s)
{
    struct db_stmt *st = store_stmt(s->wconn, S_LITE_DATA_VERSION, NULL);

    if (st && db_step(st) == DB_ROW) {
        int64_t v = db_column_int64(st, 0);

        if (v != s->data_version)
            wcache_clear(s->wcache);
        s->data_version = v;
    } else {
        wcache_clear(s->wcache);
    }
    if (st)
        db_reset(st);
}

static void launch_batch(struct store *s, struct store_launch_job **jobs, size_t n)
{
    struct conn *c = s->wconn;
    struct wcache *wc = s->wcache;
    struct err e = ERR_INIT;
    uint64_t replays = 0, ok = 0;

    for (size_t i = 0; i < n; i++) {
        jobs[i]->status = 0;
        err_clear(&jobs[i]->err);
    }
    if (store_begin(c, &e) < 0) {
        fail_all(jobs, n, &e);
        return;
    }
    check_data_version(s);
    for (size_t i = 0; i < n; i++) {
        struct store_launch_job *j = jobs[i];

        if (store_savepoint(c, &j->err) < 0) {
            j->status = -1;
            continue;
        }
        bool claimed = false;
        struct store_launch_digests d;

        job_digests(j, &d);
        if (record_one(s, &j->launch, &d, &j->result, &claimed, &j->err) < 0) {
            j->status = -1;
            /*
             * Its nonce is free again, unless it was another launch's: the
             * LMS may send this one again as it is. A replay found in
             * `nonces` was claimed by another process: that one keeps it.
             */
            if (claimed && j->err.code != ERR_REPLAY)
                store_nonce_window_unclaim(s, d.nonce_fp, j->launch.timestamp);
            if (j->err.code == ERR_REPLAY)
                replays++;
            else if (j->err.code == ERR_UNAUTHORIZED)
                /* refused before it wrote anything; the launch path's copy is stale */
                store_consumer_forget(s, j->launch.consumer_id);
            else
                wcache_clear(wc); /* it may name rows this rollback removes */
            store_rollback_to(c, NULL);
            if (!db_in_tx(&c->db)) {
                /*
                 * SQLite rolled the whole transaction back (disk full, I/O
                 * error): every launch of the batch is lost, none may be
                 * answered as recorded, and their nonces are free again.
                 */
                unclaim_recorded(s, jobs, i);
                err_set(&e, ERR_UNAVAILABLE, "the launch could not be saved, please try again");
                for (size_t k = 0; k < n; k++) {
                    jobs[k]->status = -1;
                    err_clear(&jobs[k]->err);
                    jobs[k]->err = e;
                }
                return;
            }
        } else {
            /* claimed in the window already: a second launch with this nonce, even in this batch,
             * loses */
            wc->nlogged++;
        }
        store_release(c, NULL);
    }
    {
        int64_t now = n ? jobs[0]->launch.now : util_now();
        int64_t mono = util_mono_ns();

        /*
         * Every PURGE_EVERY_MS: purging every batch would rewrite the
         * b-trees' left edges each time; purging once a second made one
         * batch in a second delete a second's worth of rows (7.5 ms at
         * 20 000 launches a second, every launch of that batch waiting).
         * And whenever the launches' second changed since the last purge.
         */
        if (mono - s->last_purge_ns >= PURGE_EVERY_MS * 1000000LL || now != s->last_purge) {
            purge(s, c, now);
            s->last_purge_ns = mono;
            s->last_purge = now;
        }
    }
    if (store_commit(c, &e) < 0) {
        store_rollback(c, NULL);
        /* nothing was recorded: the LMS (or the browser) may send them again as they are */
        unclaim_recorded(s, jobs, n);
        wcache_clear(wc);
        err_clear(&e);
        err_set(&e, ERR_UNAVAILABLE, "the launch could not be saved, please try again");
        fail_all(jobs, n, &e);
        return;
    }
    store_commit_seq(s); /* the syncer's store_durable covers it before anyone is answered */
    for (size_t i = 0; i < n; i++)
        ok += jobs[i]->status == 0;
    pthread_mutex_lock(&s->stats_mu);
    s->stats.batches++;
    s->stats.launches += ok;
    s->stats.replays += replays;
    pthread_mutex_unlock(&s->stats_mu);
}
/*
 * Under the store's write mutex, which the admin connection's transactions
 * take too: threads of this process that write take turns on it, and never
 * on SQLite's busy handler, which sleeps (1 ms, then longer) before it
 * looks again at a lock another connection held.
 */
void store_launch_batch(struct store *s, struct store_launch_job **jobs, size_t n)
{
    pthread_mutex_lock(&s->write_mu);
    launch_batch(s, jobs, n);
    pthread_mutex_unlock(&s->write_mu);
}

void store_launch_after_batch(struct store *s)
{
    struct conn *c = s->wconn;
    struct wcache *wc = s->wcache;
    int pages, behind, log = 0, done = 0;

    /*
     * A few times a second, a few thousand at most: each move dirties the
     * pages that hold this second's nonces once for all of those moved, and
     * stays short enough not to hold the launches behind it long. The
     * batch's launches do not wait for it: their nonces are in the log,
     * which their commit made durable.
     */
    if (wc->nlogged >= NONCE_LOG_MAX ||
        (wc->nlogged && util_mono_ns() - s->last_flush_ns >= NONCE_LOG_EVERY_MS * 1000000LL)) {
        s->last_flush_ns = util_mono_ns();
        pthread_mutex_lock(&s->write_mu);
        move_nonce_log(c, wc, NULL); /* best effort: the next batch tries again */
        pthread_mutex_unlock(&s->write_mu);
    }
    pthread_mutex_lock(&s->ckpt_mu);
    pages = s->wal_pages;
    behind = pages - s->wal_pages_at_ckpt;
    if (pages >= s->wal_restart_pages && behind > s->catch_up_pages &&
        pages < 2 * s->wal_restart_pages) {
        /*
         * Far behind: the checkpointer copies most of it now, beside the
         * launches; this writer catches up once it is done.
         */
        s->ckpt_asked = true;
        pthread_cond_signal(&s->ckpt_cv);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    if (pages < s->wal_restart_pages ||
        (behind > s->catch_up_pages && pages < 2 * s->wal_restart_pages))
        return;
    /*
     * The checkpointer copied all but the last few pages; with no write in
     * between (the write mutex), this copies the rest, and the next
     * transaction starts the WAL over from its beginning instead of growing
     * the file. Runs after the batch went to the syncer: its launches are
     * answered without waiting for it.
     */
    pthread_mutex_lock(&s->write_mu);
    if (sqlite3_wal_checkpoint_v2(c->db.lite, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) ==
            SQLITE_OK &&
        log == done) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->wal_pages = 0;
        s->wal_pages_at_ckpt = 0;
        pthread_mutex_unlock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->write_mu);
    pthread_mutex_lock(&s->stats_mu);
    s->stats.catch_ups++;
    s->stats.catch_up_frames += (uint64_t)(done > pages - behind ? done - (pages - behind) : 0);
    pthread_mutex_unlock(&s->stats_mu);
}

void store_launch_submit(struct store *s, struct store_launch_job *job)
{
    struct store_launch_digests d;
    const char *why = NULL;

    job->next = NULL;
    err_clear(&job->err);
    /* on the caller's thread, not the writer's */
    if (store_nonce_fp(job->launch.consumer_id, job->launch.nonce, &d.nonce_fp, &job->err) < 0) {
        job->status = -1;
        job->done(job);
        return;
    }
    /* the writer cache's digests: sqlite's alone (PostgreSQL's writer keeps no cache) */
    if (s->pg)
        d.cached = false; /* its writer reads the nonce's digest alone */
    else
        store_launch_digest(&job->launch, &d);
    memcpy(&job->priv, &d, sizeof(d));
    pthread_mutex_lock(&s->q_mu);
    if (!s->writer_started || s->stopping || s->refusing)
        why = "the server is shutting down, please try again";
    else if (s->q_len >= LIMIT_STORE_QUEUE)
        why = "the server is overloaded, please try again";
    if (!why) {
        if (s->q_tail)
            s->q_tail->next = job;
        else
            s->q_head = job;
        s->q_tail = job;
        s->q_len++;
        pthread_cond_signal(&s->q_cv);
    }
    pthread_mutex_unlock(&s->q_mu);
    if (why) {
        job->status = -1;
        err_clear(&job->err);
        err_set(&job->err, ERR_UNAVAILABLE, "%s", why);
        job->done(job);
    }
}

void store_launch_refuse_queued(struct store *s)
{
    struct store_launch_job *job;

    pthread_mutex_lock(&s->q_mu);
    s->refusing = true;
    job = s->q_head;
    s->q_head = s->q_tail = NULL;
    s->q_len = 0;
    pthread_mutex_unlock(&s->q_mu);
    /* none of them was begun: nothing of theirs is written, the LMS may send them again */
    while (job) {
        struct store_launch_job *next = job->next;

        job->status = -1;
        err_clear(&job->err);
        err_set(&job->err, ERR_UNAVAILABLE, "the server is shutting down, please try again");
        job->done(job);
        job = next;
    }
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static void wake(struct store_launch_job *job)
{
    struct waiter *w = job->cls;

    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int store_launch_record(struct store *s, const struct store_launch *l,
                        struct store_launch_result *out, struct err *err)
{
    struct store_launch_job job;
    struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };

    memset(&job, 0, sizeof(job));
    job.launch = *l;
    job.done = wake;
    job.cls = &w;
    store_launch_submit(s, &job);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (job.status < 0) {
        if (err && err->code == ERR_NONE)
            *err = job.err;
        return -1;
    }
    if (out)
        *out = job.result;
    return 0;
}
