/*
 * store/sessions.c - looking up the session a launch created.
 *
 * A session token is "ID-SECRET": the id finds the row, and the SHA-256 of
 * the secret must match what was stored (compared in constant time), so a
 * copy of the database does not hand out live sessions. Expired sessions
 * are invisible at once and purged by the launch writer a batch at a time.
 */
#include "base/base.h"
#include "store/store_int.h"

int store_session_get(struct store *s, int64_t id, const unsigned char secret_hash[32], int64_t now,
                      struct arena *arena, struct store_session *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    if (!c)
        return -1;
    st = store_stmt(c, S_SESSION_GET, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, now);
    rc = db_step(st);
    if (rc == DB_ROW && (db_column_len(st, 19) != 32 ||
                         !util_ct_equal(db_column_blob(st, 19), 32, secret_hash, 32)))
        rc = DB_DONE; /* the wrong secret for this id: as if there were no such session */
    if (rc == DB_ROW) {
        const void *csrf = db_column_blob(st, 6);

        memset(out, 0, sizeof(*out));
        out->consumer_id = db_column_int64(st, 0);
        out->user_id = db_column_int64(st, 1);
        out->context_id = db_column_int64(st, 2);
        out->role_flags = (unsigned)db_column_int64(st, 3);
        out->created_at = db_column_int64(st, 4);
        out->expires_at = db_column_int64(st, 5);
        if (csrf && db_column_len(st, 6) == 32)
            memcpy(out->csrf_secret, csrf, 32);
        out->consumer_name = store_col_arena(st, 7, arena);
        out->lti_user_id = store_col_arena(st, 8, arena);
        out->user_name = store_col_arena(st, 9, arena);
        out->email = store_col_arena(st, 10, arena);
        out->lti_context_id = store_col_arena(st, 11, arena);
        out->context_title = store_col_arena(st, 12, arena);
        out->context_label = store_col_arena(st, 13, arena);
        out->roles = store_col_arena(st, 14, arena);
        out->mode = store_col_arena(st, 15, arena);
        out->return_url = store_col_arena(st, 16, arena);
        out->document_target = store_col_arena(st, 17, arena);
        out->locale = store_col_arena(st, 18, arena);
        out->frame_origin = store_col_arena(st, 20, arena);
        out->email_source = store_col_arena(st, 21, arena);
        out->badges_enabled = db_column_int(st, 22) != 0;
        ret = 0;
    } else if (rc == DB_DONE) {
        err_set(err, ERR_NOTFOUND, "this session has expired or does not exist");
    } else {
        store_db_err(c, rc, "reading a session", err);
    }
    db_reset(st);
out:
    store_reader_put(s, c);
    return ret;
}
