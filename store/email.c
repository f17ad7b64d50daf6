/*
 * store/email.c - the e-mail addresses learners give when their LMS shares
 * none, and the links that confirm them.
 *
 * A link is a row of email_confirmations: the address, the user, when it
 * stops working, and the SHA-256 of its secret (a copy of the database
 * confirms nothing). Following it is one BEGIN IMMEDIATE transaction on the
 * admin connection: the row is checked and marked used, the address set
 * and the awards that waited for it queued together, so two clicks racing
 * each other release the awards once, and a crash leaves all or nothing.
 *
 * A user has one working link at most: asking for a new one voids the
 * others in the transaction that creates it. Voided links are not deleted
 * but expired (expires_at set to the time they stopped working), so that
 * they still count against LIMIT_EMAIL_CONFIRM_PER_HOUR and their page
 * says the link expired or was replaced.
 */
#include "base/base.h"
#include "store/store_int.h"

/* What the user has: an address already, awards waiting for one, links asked for in the hour. */
struct user_state {
    bool has_email;
    int64_t waiting, recent;
};

static int user_state(struct conn *c, int64_t user_id, int64_t now, struct user_state *out,
                      struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_EMAIL_USER_STATE, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, now - 3600);
    rc = db_step(st);
    if (rc == DB_ROW) {
        out->has_email = db_column_len(st, 0) > 0;
        out->waiting = db_column_int64(st, 1);
        out->recent = db_column_int64(st, 2);
    }
    db_reset(st);
    if (rc == DB_DONE)
        return err_set(err, ERR_NOTFOUND, "this user is not known");
    if (rc != DB_ROW)
        return store_db_err(c, rc, "reading a user", err);
    return 0;
}

/* Refuses an address for a user who has one, or has nothing waiting for one. */
static int may_give(const struct user_state *u, struct err *err)
{
    if (u->has_email)
        return err_set(err, ERR_CONFLICT, "your e-mail address is known already");
    if (!u->waiting)
        return err_set(err, ERR_CONFLICT, "no badge of yours is waiting for an e-mail address");
    return 0;
}

/*
 * Sets the user's address and queues what waited for one; *released counts
 * the awards. *set is false when the user has an address the LMS sent,
 * which is kept (S_USER_SET_EMAIL): the awards are queued all the same,
 * to that address.
 */
static int set_and_release(struct conn *c, int64_t user_id, const char *email, const char *source,
                           int64_t now, bool *set, int64_t *released, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_USER_SET_EMAIL, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_str(st, 2, str_from_cstr(email));
    db_bind_str(st, 3, str_from_cstr(source));
    db_bind_int64(st, 4, now);
    if (store_step_done(c, st, "setting an address", err) < 0)
        return -1;
    *set = db_changes(&c->db) > 0;
    st = store_stmt(c, S_AWARD_RELEASE_EMAIL, err);
    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, now);
    if (store_step_done(c, st, "releasing awards", err) < 0)
        return -1;
    *released = db_changes(&c->db);
    return 0;
}

/* The user's links not used yet but `keep` expire at `now`; the rows stay (the hourly limit). */
static int supersede(struct conn *c, int64_t user_id, int64_t keep, int64_t now, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_EMAIL_CONFIRM_SUPERSEDE, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, keep);
    db_bind_int64(st, 3, now);
    return store_step_done(c, st, "voiding other confirmation links", err);
}

int store_email_confirm_create(struct store *s, int64_t user_id, const char *email, int64_t now,
                               int64_t ttl, int64_t *id, char *token, struct err *err)
{
    struct conn *c = s->admin;
    struct user_state u = { false, 0, 0 };
    char secret[65];
    unsigned char hash[32];
    struct db_stmt *st;
    int ret = -1;

    if (util_random_hex(secret, 32, err) < 0)
        return -1;
    util_sha256(secret, 64, hash);
    if (store_admin_begin(s, err) < 0)
        return -1;
    if (user_state(c, user_id, now, &u, err) < 0 || may_give(&u, err) < 0)
        goto out;
    if (u.recent >= LIMIT_EMAIL_CONFIRM_PER_HOUR) {
        err_set(err, ERR_LIMIT,
                "%d confirmation e-mails were sent in the last hour: wait a while before asking "
                "for another",
                LIMIT_EMAIL_CONFIRM_PER_HOUR);
        goto out;
    }
    st = store_stmt(c, S_EMAIL_CONFIRM_PURGE, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, now - LIMIT_EMAIL_CONFIRM_TTL);
    if (store_step_done(c, st, "removing old links", err) < 0)
        goto out;
    /*
     * The links asked for before stop working now, not when this one is
     * followed: a learner who mistyped the address (someone else's) and asks
     * again must not have the first link release the badges to that person.
     */
    if (supersede(c, user_id, 0, now, err) < 0)
        goto out;
    st = store_stmt(c, S_EMAIL_CONFIRM_INSERT, err);
    if (!st)
        goto out;
    db_bind_blob(st, 1, hash, sizeof(hash));
    db_bind_int64(st, 2, user_id);
    db_bind_str(st, 3, str_from_cstr(email));
    db_bind_int64(st, 4, now);
    db_bind_int64(st, 5, now + ttl);
    if (store_step_id(c, st, id, "recording a confirmation link", err) < 0)
        goto out;
    snprintf(token, STORE_EMAIL_TOKEN_MAX + 1, "%" PRId64 "-%s", *id, secret);
    ret = 0;
out:
    return store_admin_end(s, ret, err);
}

int store_email_confirm_cancel(struct store *s, int64_t id, struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_EMAIL_CONFIRM_CANCEL, err);
    if (st) {
        db_bind_int64(st, 1, id);
        ret = store_step_done(c, st, "withdrawing a confirmation link", err);
    }
    return store_admin_end(s, ret, err);
}

int store_email_confirm(struct store *s, int64_t id, const unsigned char secret_hash[32],
                        int64_t now, struct arena *a, struct store_email_confirmed *out,
                        struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int64_t expires_at = 0, used_at = 0;
    const char *email = NULL;
    bool found = false, set = false;
    int rc, ret = -1;

    memset(out, 0, sizeof(*out));
    out->refusal = STORE_EMAIL_UNKNOWN;
    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_EMAIL_CONFIRM_GET, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        /* the wrong secret for this id: as if there were no such link */
        found =
            db_column_len(st, 0) == 32 && util_ct_equal(db_column_blob(st, 0), 32, secret_hash, 32);
        out->user_id = db_column_int64(st, 1);
        email = store_col_arena(st, 2, a);
        expires_at = db_column_int64(st, 3);
        used_at = db_column_int64(st, 4);
    }
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE) {
        store_db_err(c, rc, "reading a confirmation link", err);
        goto out;
    }
    if (!found || !email) {
        out->user_id = 0;
        err_set(err, ERR_NOTFOUND, "this confirmation link is not valid");
        goto out;
    }
    out->email = email;
    if (used_at) {
        out->refusal = STORE_EMAIL_USED;
        err_set(err, ERR_GONE, "this confirmation link was used already");
        goto out;
    }
    if (expires_at <= now) {
        out->refusal = STORE_EMAIL_EXPIRED;
        err_set(err, ERR_GONE, "this confirmation link has expired");
        goto out;
    }
    st = store_stmt(c, S_EMAIL_CONFIRM_USE, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, now);
    if (store_step_done(c, st, "using a confirmation link", err) < 0)
        goto out;
    if (supersede(c, out->user_id, id, now, err) < 0)
        goto out;
    if (set_and_release(c, out->user_id, email, "confirmed", now, &set, &out->released, err) < 0)
        goto out;
    /* the LMS sent an address since the link was asked for: it stays the user's */
    out->lms_email_kept = !set;
    out->refusal = STORE_EMAIL_OK;
    ret = 0;
out:
    return store_admin_end(s, ret, err);
}

int store_email_set_unconfirmed(struct store *s, int64_t user_id, const char *email, int64_t now,
                                int64_t *released, struct err *err)
{
    struct conn *c = s->admin;
    struct user_state u = { false, 0, 0 };
    bool set = false;
    int64_t n = 0;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    if (user_state(c, user_id, now, &u, err) < 0 || may_give(&u, err) < 0)
        goto out;
    if (set_and_release(c, user_id, email, "unconfirmed", now, &set, &n, err) < 0)
        goto out;
    if (!set) {
        /* may_give() saw no address in this transaction: not expected, but not claimed either */
        err_set(err, ERR_CONFLICT, "your e-mail address is known already");
        goto out;
    }
    if (released)
        *released = n;
    ret = 0;
out:
    return store_admin_end(s, ret, err);
}

int store_email_pending(struct store *s, int64_t user_id, int64_t now, struct arena *a,
                        const char **email, int64_t *expires_at, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    *email = NULL;
    *expires_at = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_EMAIL_PENDING, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, now);
    rc = db_step(st);
    if (rc == DB_ROW) {
        *email = store_col_arena(st, 0, a);
        *expires_at = db_column_int64(st, 1);
    }
    db_reset(st);
    if (rc == DB_ROW || rc == DB_DONE)
        ret = 0;
    else
        store_db_err(c, rc, "reading confirmation links", err);
out:
    store_reader_put(s, c);
    return ret;
}

int store_user_show_name(struct store *s, int64_t user_id, bool *show, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    *show = false;
    if (!c)
        return -1;
    st = store_stmt(c, S_USER_SHOW_NAME, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, user_id);
    rc = db_step(st);
    if (rc == DB_ROW)
        *show = db_column_int(st, 0) == 1;
    db_reset(st);
    if (rc == DB_ROW || rc == DB_DONE)
        ret = 0;
    else
        store_db_err(c, rc, "reading a learner's setting", err);
out:
    store_reader_put(s, c);
    return ret;
}

int store_user_set_show_name(struct store *s, int64_t user_id, bool show, int64_t now,
                             struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_USER_SET_SHOW_NAME, err);
    if (st) {
        db_bind_int64(st, 1, user_id);
        db_bind_int64(st, 2, show ? 1 : 0);
        db_bind_int64(st, 3, now);
        ret = store_step_done(c, st, "saving a learner's setting", err);
    }
    return store_admin_end(s, ret, err);
}

int store_badge_holders(struct store *s, int64_t badge_id, int64_t *n, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    *n = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BADGE_HOLDERS, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, badge_id);
    rc = db_step(st);
    if (rc == DB_ROW)
        *n = db_column_int64(st, 0);
    db_reset(st);
    if (rc == DB_ROW || rc == DB_DONE)
        ret = 0;
    else
        store_db_err(c, rc, "counting a badge's holders", err);
out:
    store_reader_put(s, c);
    return ret;
}
