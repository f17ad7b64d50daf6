/*
 * store/migrate.c - versioned schema migrations.
 *
 * The schema version is SQLite's user_version. Each migration runs in its
 * own BEGIN IMMEDIATE transaction together with the version bump, so a
 * crash leaves the database at the version before or after, never between.
 * Migrations are append-only: a released one is never edited, and migration N
 * ends with "PRAGMA user_version = N".
 */
#include "base/base.h"
#include "store/store_int.h"

static const char *const migrations[] = {
    /* 1: consumers, replay protection, who launched from where, sessions */
    "CREATE TABLE consumers ("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  secret TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  lms_family TEXT,"
    "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  backend TEXT,"
    "  created_at INTEGER NOT NULL"
    ");"
    /*
     * RFC 5849 3.3: a nonce is unique per (timestamp, consumer); a replay
     * repeats both, since changing the timestamp breaks the signature. With
     * the timestamp first, inserts land at the right edge of the b-tree (one
     * page for a whole batch) and purges cut from the left edge.
     */
    "CREATE TABLE nonces ("
    "  ts INTEGER NOT NULL,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  nonce TEXT NOT NULL,"
    "  PRIMARY KEY (ts, consumer_id, nonce)"
    ") WITHOUT ROWID;"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  lti_user_id TEXT NOT NULL,"
    "  given_name TEXT, family_name TEXT, full_name TEXT, email TEXT, person_sourcedid TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (consumer_id, lti_user_id)"
    ");"
    "CREATE TABLE contexts ("
    "  id INTEGER PRIMARY KEY,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  lti_context_id TEXT NOT NULL,"
    "  title TEXT, label TEXT,"
    "  badges_enabled INTEGER NOT NULL DEFAULT 0 CHECK (badges_enabled IN (0, 1)),"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (consumer_id, lti_context_id)"
    ");"
    "CREATE TABLE resource_links ("
    "  id INTEGER PRIMARY KEY,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  lti_resource_link_id TEXT NOT NULL,"
    "  context_id INTEGER REFERENCES contexts(id) ON DELETE CASCADE,"
    "  title TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (consumer_id, lti_resource_link_id)"
    ");"
    "CREATE INDEX resource_links_context ON resource_links(context_id);"
    "CREATE TABLE enrollments ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  context_id INTEGER NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,"
    "  roles TEXT, ext_roles TEXT, role_flags INTEGER NOT NULL, mode TEXT,"
    "  first_launch_at INTEGER NOT NULL, last_launch_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, context_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX enrollments_context ON enrollments(context_id);"
    "CREATE TABLE outcome_bindings ("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  resource_link_id INTEGER NOT NULL REFERENCES resource_links(id) ON DELETE CASCADE,"
    "  context_id INTEGER REFERENCES contexts(id) ON DELETE CASCADE,"
    "  service_url TEXT NOT NULL,"
    "  sourcedid TEXT NOT NULL,"
    "  data_values_accepted TEXT,"
    "  last_score REAL, last_score_at INTEGER,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (user_id, resource_link_id)"
    ");"
    "CREATE INDEX outcome_bindings_context ON outcome_bindings(context_id);"
    /*
     * Append-only: a session's id grows with time, so creating one writes at
     * the right edge and purging expired ones cuts from the left. The token
     * is "ID-SECRET"; only the SHA-256 of the secret is stored.
     */
    "CREATE TABLE sessions ("
    "  id INTEGER PRIMARY KEY,"
    "  secret_hash BLOB NOT NULL,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  context_id INTEGER REFERENCES contexts(id) ON DELETE CASCADE,"
    "  resource_link_id INTEGER REFERENCES resource_links(id) ON DELETE CASCADE,"
    "  roles TEXT, role_flags INTEGER NOT NULL, mode TEXT,"
    "  return_url TEXT, document_target TEXT, locale TEXT,"
    "  csrf_secret BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL"
    ");"
    "PRAGMA user_version = 1;",

    /* 2: badge classes, their rules, grades, completions, course groups, the award outbox */
    "ALTER TABLE contexts ADD COLUMN pass_mark REAL;"
    "ALTER TABLE contexts ADD COLUMN completion_link TEXT;"
    "CREATE TABLE badge_classes ("
    "  id INTEGER PRIMARY KEY,"
    "  slug TEXT NOT NULL UNIQUE,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  context_id INTEGER REFERENCES contexts(id) ON DELETE CASCADE,"
    "  mode TEXT,"
    "  name TEXT NOT NULL, description TEXT NOT NULL,"
    "  image BLOB NOT NULL, image_type TEXT NOT NULL,"
    "  criteria_url TEXT, criteria_narrative TEXT,"
    "  issuing_component TEXT,"
    "  tags TEXT NOT NULL DEFAULT '[]',"       /* JSON array of strings */
    "  alignments TEXT NOT NULL DEFAULT '[]'," /* JSON array of objects */
    "  expires_days INTEGER,"
    "  backend TEXT NOT NULL,"
    "  backend_id TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX badge_classes_context ON badge_classes(context_id);"
    /* one rule per BadgeClass; context and mode repeated so one completion badge per pair */
    "CREATE TABLE rules ("
    "  badge_class_id INTEGER PRIMARY KEY REFERENCES badge_classes(id) ON DELETE CASCADE,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('enrollment', 'score', 'completion', 'group', "
    "'count', 'manual')),"
    "  context_id INTEGER REFERENCES contexts(id) ON DELETE CASCADE,"
    "  mode_key TEXT NOT NULL DEFAULT '',"
    "  threshold REAL, resource_link TEXT, group_id INTEGER, count INTEGER"
    ");"
    "CREATE UNIQUE INDEX rules_one_completion ON rules(context_id, mode_key) "
    "WHERE kind = 'completion';"
    "CREATE INDEX rules_kind ON rules(consumer_id, kind);"
    "CREATE TABLE context_groups ("
    "  id INTEGER PRIMARY KEY,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (consumer_id, name)"
    ");"
    "CREATE TABLE context_group_members ("
    "  group_id INTEGER NOT NULL REFERENCES context_groups(id) ON DELETE CASCADE,"
    "  context_id INTEGER NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (group_id, context_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX context_group_members_context ON context_group_members(context_id);"
    /* the latest score per learner and resource link, whoever reported it */
    "CREATE TABLE grades ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  resource_link_id INTEGER NOT NULL REFERENCES resource_links(id) ON DELETE CASCADE,"
    "  context_id INTEGER REFERENCES contexts(id) ON DELETE CASCADE,"
    "  score REAL NOT NULL CHECK (score >= 0.0 AND score <= 1.0),"
    "  source TEXT NOT NULL,"
    "  recorded_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, resource_link_id)"
    ") WITHOUT ROWID;"
    "CREATE TABLE completions ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  context_id INTEGER NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,"
    "  mode TEXT,"
    "  resource_link_id INTEGER REFERENCES resource_links(id) ON DELETE SET NULL,"
    "  score REAL,"
    "  completed_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, context_id)"
    ") WITHOUT ROWID;"
    /*
     * The outbox and the record. `uid` is the public, unguessable id (the
     * hosted assertion's URL, the idempotency key sent to a platform); `salt`
     * hashes the recipient. Due rows are found through awards_due.
     */
    "CREATE TABLE awards ("
    "  id INTEGER PRIMARY KEY,"
    "  uid TEXT NOT NULL UNIQUE,"
    "  badge_class_id INTEGER NOT NULL REFERENCES badge_classes(id) ON DELETE CASCADE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  context_id INTEGER REFERENCES contexts(id) ON DELETE SET NULL,"
    "  resource_link_id INTEGER REFERENCES resource_links(id) ON DELETE SET NULL,"
    "  reason TEXT NOT NULL,"
    "  narrative TEXT,"
    "  salt TEXT NOT NULL,"
    "  recipient_email TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('queued', 'needs_email', 'issuing', 'issued', "
    "'failed', 'revoked')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  assertion_id TEXT, assertion_url TEXT,"
    "  issued_at INTEGER, expires_at INTEGER,"
    "  revoked_at INTEGER, revoke_reason TEXT,"
    "  revoke_synced INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (badge_class_id, user_id)"
    ");"
    "CREATE INDEX awards_due ON awards(next_attempt_at) "
    "WHERE state IN ('queued', 'issuing') OR revoke_synced = 0;"
    "CREATE INDEX awards_user ON awards(user_id);"
    "CREATE INDEX awards_state ON awards(state);"
    "PRAGMA user_version = 2;",

    /* 3: LTI Basic Outcomes in both directions */
    /* hosts the tool may call for this consumer's outcomes, comma-separated (NULL: its launches')
     */
    "ALTER TABLE consumers ADD COLUMN outcome_hosts TEXT;"
    "ALTER TABLE outcome_bindings ADD COLUMN total_score_accepted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outcome_bindings ADD COLUMN last_read_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outcome_bindings ADD COLUMN last_read_error TEXT;"
    "CREATE INDEX outcome_bindings_sourcedid ON outcome_bindings(sourcedid);"
    "CREATE INDEX outcome_bindings_user ON outcome_bindings(user_id, context_id);"
    "CREATE INDEX outcome_bindings_read ON outcome_bindings(last_read_at);"
    /* the score written to the LMS when the badge is issued; NULL: no passback */
    "ALTER TABLE badge_classes ADD COLUMN passback_score REAL DEFAULT 1.0 "
    "CHECK (passback_score IS NULL OR (passback_score >= 0.0 AND passback_score <= 1.0));"
    /* revoke the award when the grade that earned it is withdrawn */
    "ALTER TABLE badge_classes ADD COLUMN revoke_on_withdrawn INTEGER NOT NULL DEFAULT 0 "
    "CHECK (revoke_on_withdrawn IN (0, 1));"
    /* sourcedids the tool hands out, for grades pushed to /lti/outcomes */
    "CREATE TABLE tool_sourcedids ("
    "  sourcedid TEXT PRIMARY KEY,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  context_id INTEGER NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,"
    "  resource_link_id INTEGER NOT NULL REFERENCES resource_links(id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (user_id, resource_link_id)"
    ") WITHOUT ROWID;"
    /*
     * The passback outbox: a replaceResult owed to the LMS for an issued
     * award, one per outcome binding, retried until the LMS answers.
     */
    "CREATE TABLE passbacks ("
    "  id INTEGER PRIMARY KEY,"
    "  award_id INTEGER NOT NULL REFERENCES awards(id) ON DELETE CASCADE,"
    "  binding_id INTEGER NOT NULL REFERENCES outcome_bindings(id) ON DELETE CASCADE,"
    "  score REAL,"
    "  data_url TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'done', 'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL DEFAULT 0,"
    "  last_attempt_at INTEGER,"
    "  answer TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (award_id, binding_id)"
    ");"
    "CREATE INDEX passbacks_due ON passbacks(next_attempt_at) WHERE state IN ('queued', 'sending');"
    "PRAGMA user_version = 3;",

    /* 4: the pages: archived BadgeClasses, the LMS origin that frames a session, e-mail given */
    "ALTER TABLE badge_classes ADD COLUMN archived_at INTEGER;"
    /* the origin allowed to frame the session's pages (CSP frame-ancestors) */
    "ALTER TABLE sessions ADD COLUMN frame_origin TEXT;"
    /* where users.email came from: NULL the LMS, 'confirmed' or 'unconfirmed' the learner */
    "ALTER TABLE users ADD COLUMN email_source TEXT;"
    /*
     * An address a learner gave, waiting for its confirmation link. The
     * link's secret is only stored hashed; a link works once.
     */
    "CREATE TABLE email_confirmations ("
    "  id INTEGER PRIMARY KEY,"
    "  secret_hash BLOB NOT NULL,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  email TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    "  used_at INTEGER"
    ");"
    "CREATE INDEX email_confirmations_user ON email_confirmations(user_id);"
    "PRAGMA user_version = 4;",

    /*
     * 5: the launch writer's nonce log. A launch's nonce is checked against
     * `nonces` and appended here, at the right edge, in the launch's own
     * transaction; every 100 ms or so the writer moves the log into `nonces`
     * (store/launch.c). Inserting each launch's random nonce into `nonces` at
     * once dirtied a random page of it per launch: 27 of the 31 pages each
     * group commit wrote.
     */
    "CREATE TABLE nonce_log ("
    "  id INTEGER PRIMARY KEY,"
    "  ts INTEGER NOT NULL,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  nonce TEXT NOT NULL"
    ");"
    /* dropping it saves every new binding a random index insert: UNIQUE (user_id, ...) serves */
    "DROP INDEX outcome_bindings_user;"
    "PRAGMA user_version = 5;",

    /*
     * 6: nonces kept as a 64-bit digest of (consumer, timestamp, nonce)
     * (store_nonce_fp) instead of the text: rows half the size, so half the
     * pages each move of the log into `nonces` dirties. The log's nonces go
     * straight into `nonces`.
     */
    "CREATE TABLE nonces_v6 ("
    "  ts INTEGER NOT NULL,"
    "  fp INTEGER NOT NULL,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (ts, fp)"
    ") WITHOUT ROWID;"
    "INSERT INTO nonces_v6(ts, fp, consumer_id) SELECT ts, fp, consumer_id FROM ("
    "  SELECT ts, lb_nonce_fp(consumer_id, ts, nonce) AS fp, consumer_id FROM nonces"
    "  UNION ALL"
    "  SELECT ts, lb_nonce_fp(consumer_id, ts, nonce), consumer_id FROM nonce_log"
    ") WHERE fp IS NOT NULL ON CONFLICT DO NOTHING;"
    "DROP TABLE nonces;"
    "ALTER TABLE nonces_v6 RENAME TO nonces;"
    "DROP TABLE nonce_log;"
    "CREATE TABLE nonce_log ("
    "  id INTEGER PRIMARY KEY,"
    "  ts INTEGER NOT NULL,"
    "  fp INTEGER NOT NULL,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE"
    ");"
    "PRAGMA user_version = 6;",

    /*
     * 7: one SVG rule. Images stored before it passed a weaker check of the
     * CLI's (<style>@import url(https://...), <set attributeName="href"
     * to="javascript:...">, fill="url(https://...)" went through): every
     * stored SVG image goes through the rule main() set (store_set_svg_rule,
     * image_svg_sanitize), which is kept when it removed anything
     * (lb_svg_rule, badges.c; store_svg_migrated() says how many). The
     * store depends on no backend: the rule comes in as a function, and it
     * runs here, in the migration's transaction, so the version says
     * whether the images were checked.
     */
    /* (in parentheses: clang takes two joined literals in a list for a missing comma) */
    ("UPDATE badge_classes SET image = lb_svg_rule(image) WHERE image_type = 'image/svg+xml';"
     "PRAGMA user_version = 7;"),

    /*
     * 8: a nonce's digest covers (consumer, nonce), not the timestamp, so
     * that a nonce is refused again whatever timestamp comes with it
     * (store/nonces.c). The digests kept so far covered the timestamp: they
     * go to nonces_v6, log included, which the launches check with the old
     * digest until its last nonce has left every window; the next start
     * after that drops it.
     */
    "ALTER TABLE nonces RENAME TO nonces_v6;"
    "INSERT INTO nonces_v6(ts, fp, consumer_id) SELECT ts, fp, consumer_id FROM nonce_log "
    "  WHERE true ON CONFLICT DO NOTHING;"
    "DELETE FROM nonce_log;"
    "CREATE TABLE nonces ("
    "  ts INTEGER NOT NULL,"
    "  fp INTEGER NOT NULL,"
    "  consumer_id INTEGER NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (ts, fp)"
    ") WITHOUT ROWID;"
    "PRAGMA user_version = 8;",

    /*
     * 9: bindings are found by a pushed sourcedid through a 63-bit digest of
     * it (store_sourcedid_fp) instead of the text: Moodle's are about 200
     * bytes and Canvas' about 700, so the index on the text held 5 to 20 keys
     * a page, and every first launch inserted one at a random place in it.
     */
    "ALTER TABLE outcome_bindings ADD COLUMN sourcedid_fp INTEGER NOT NULL DEFAULT 0;"
    "UPDATE outcome_bindings SET sourcedid_fp = lb_sourcedid_fp(sourcedid);"
    "DROP INDEX outcome_bindings_sourcedid;"
    "CREATE INDEX outcome_bindings_sourcedid_fp ON outcome_bindings(sourcedid_fp);"
    "PRAGMA user_version = 9;",

    /*
     * 10: edits of a BadgeClass that exists at a platform are sent there
     * (the award worker's update_badge_class), retried like awards.
     * sync_due_at: when they are due (NULL: the platform has our fields);
     * sync_gen counts edits, so that the answer to an older edit does not
     * mark a newer one sent; sync_error: the last failure, shown by `badge
     * show` and the course page until it is sent. A trigger marks every
     * edit of a field the platform holds, whoever writes it.
     */
    "ALTER TABLE badge_classes ADD COLUMN sync_due_at INTEGER;"
    "ALTER TABLE badge_classes ADD COLUMN sync_gen INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE badge_classes ADD COLUMN sync_attempts INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE badge_classes ADD COLUMN sync_error TEXT;"
    "CREATE INDEX badge_classes_sync ON badge_classes(sync_due_at) WHERE sync_due_at IS NOT NULL;"
    "CREATE TRIGGER badge_classes_edited AFTER UPDATE OF name, description, image, image_type, "
    "criteria_url, criteria_narrative, issuing_component, tags, alignments, expires_days "
    "ON badge_classes WHEN NEW.backend_id IS NOT NULL AND OLD.backend_id IS NEW.backend_id AND "
    "(OLD.name IS NOT NEW.name OR OLD.description IS NOT NEW.description OR "
    "OLD.image IS NOT NEW.image OR OLD.image_type IS NOT NEW.image_type OR "
    "OLD.criteria_url IS NOT NEW.criteria_url OR "
    "OLD.criteria_narrative IS NOT NEW.criteria_narrative OR "
    "OLD.issuing_component IS NOT NEW.issuing_component OR OLD.tags IS NOT NEW.tags OR "
    "OLD.alignments IS NOT NEW.alignments OR OLD.expires_days IS NOT NEW.expires_days) "
    "BEGIN UPDATE badge_classes SET sync_due_at = NEW.updated_at, sync_gen = sync_gen + 1, "
    "sync_attempts = 0 WHERE id = NEW.id; END;"
    "PRAGMA user_version = 10;",

    /*
     * 11: hooks a remote platform posted (BadgeKit), counted per backend
     * for `backend check`: received (every one), applied (an award
     * changed), unchanged (ours, already so: replays), ignored (not about
     * our awards), refused (a bad signature, body or backend state), and
     * the last refusal's reason.
     */
    "CREATE TABLE backend_hooks ("
    "  backend TEXT PRIMARY KEY,"
    "  received INTEGER NOT NULL DEFAULT 0,"
    "  applied INTEGER NOT NULL DEFAULT 0,"
    "  unchanged INTEGER NOT NULL DEFAULT 0,"
    "  ignored INTEGER NOT NULL DEFAULT 0,"
    "  refused INTEGER NOT NULL DEFAULT 0,"
    "  last_received_at INTEGER, last_refused_at INTEGER, last_refusal TEXT"
    ") WITHOUT ROWID;"
    "PRAGMA user_version = 11;",

    /*
     * 12: an activity's points possible as the LMS sent them (Canvas'
     * custom_canvas_assignment_points_possible), so that the pages give
     * scores in points as the LMS shows them; NULL: percent.
     */
    "ALTER TABLE resource_links ADD COLUMN points_possible REAL;"
    "PRAGMA user_version = 12;",
    /*
     * 13: whether the learner shows their name on the public pages of
     * their badges (off until they choose to).
     */
    "ALTER TABLE users ADD COLUMN show_name INTEGER NOT NULL DEFAULT 0 CHECK (show_name IN (0, 1));"
    "PRAGMA user_version = 13;",
    /*
     * 14: an award's backend, its BadgeClass's (which changes only while
     * the BadgeClass has no awards; the trigger keeps them equal anyway),
     * so each backend's worker finds its due awards through an index of its
     * own instead of reading past every other backend's backlog.
     */
    "ALTER TABLE awards ADD COLUMN backend TEXT NOT NULL DEFAULT '';"
    "UPDATE awards SET backend = (SELECT backend FROM badge_classes b "
    "WHERE b.id = awards.badge_class_id);"
    "CREATE INDEX awards_backend_due ON awards(backend, next_attempt_at) "
    "WHERE state IN ('queued', 'issuing') OR revoke_synced = 0;"
    "CREATE TRIGGER awards_backend_follows AFTER UPDATE OF backend ON badge_classes "
    "BEGIN UPDATE awards SET backend = NEW.backend WHERE badge_class_id = NEW.id; END;"
    "PRAGMA user_version = 14;",
    /*
     * 15: rate limits (the public pages' recipient check), counted in the
     * database so that every instance on it counts together: one row per
     * key, its window's end and the events in it (store/rates.c).
     */
    "CREATE TABLE rate_limits ("
    "  key TEXT PRIMARY KEY,"
    "  expires_at INTEGER NOT NULL,"
    "  count INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX rate_limits_expiry ON rate_limits(expires_at);"
    "PRAGMA user_version = 15;",
    /*
     * 16: nothing on sqlite. PostgreSQL's 16 counts changes to consumers
     * (cache_version) for the caches of instances sharing the database; one
     * sqlite process clears its cache at its own writes, and the launch
     * writer reads a consumer again when another process wrote.
     */
    "PRAGMA user_version = 16;",
    /*
     * 17: nothing on sqlite. PostgreSQL's 17 is the function that records a
     * launch in one call (store/launch_pg.c); sqlite's one writer records
     * them with its statements and its cache (store/launch.c).
     */
    "PRAGMA user_version = 17;",
};

int store_schema_latest(void)
{
    return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

int store_version_conn(struct conn *c, int *version, struct err *err)
{
    sqlite3_stmt *st = NULL;
    int rc;

    /* PRAGMA statements are not cached: this runs once per open */
    rc = sqlite3_prepare_v2(c->db.lite, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return store_db_err(c, rc, "reading the schema version", err);
    }
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

int store_migrate_conn(struct conn *c, int target, int *applied, struct err *err)
{
    int version = 0;
    int latest = target < store_schema_latest() ? target : store_schema_latest();

    *applied = 0;
    for (;;) {
        char *msg = NULL;
        size_t checked, changed;
        int rc;

        rc = sqlite3_exec(c->db.lite, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return store_db_err(c, rc, "starting a migration", err);
        /* read the version inside the lock: two processes may start together */
        if (store_version_conn(c, &version, err) < 0) {
            sqlite3_exec(c->db.lite, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        if (version >= latest) {
            sqlite3_exec(c->db.lite, "ROLLBACK", NULL, NULL, NULL);
            return 0;
        }
        checked = c->svg_checked;
        changed = c->svg_changed;
        rc = sqlite3_exec(c->db.lite, migrations[version], NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(c->db.lite, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            sqlite3_exec(c->db.lite, "ROLLBACK", NULL, NULL, NULL);
            /* what was rolled back changed nothing */
            c->svg_checked = checked;
            c->svg_changed = changed;
            err_set(err, ERR_INTERNAL, "migration to schema version %d failed", version + 1);
            err_detail(err, "sqlite: %s", msg ? msg : "");
            sqlite3_free(msg);
            return -1;
        }
        (*applied)++;
    }
}

void store_svg_migrated(struct store *s, size_t *checked, size_t *changed)
{
    pthread_mutex_lock(&s->admin_mu);
    *checked = s->admin->svg_checked;
    *changed = s->admin->svg_changed;
    pthread_mutex_unlock(&s->admin_mu);
}

int store_schema_version(struct store *s, int *version, struct err *err)
{
    int ret;

    if (s->pg)
        return store_pg_schema_version(s->pg, version, err);
    pthread_mutex_lock(&s->admin_mu);
    ret = store_version_conn(s->admin, version, err);
    pthread_mutex_unlock(&s->admin_mu);
    return ret;
}

int store_migrate_to(struct store *s, int version, int *applied, struct err *err)
{
    int ret;

    uint64_t seq;

    if (s->pg) {
        int before;

        return store_pg_migrate(s->pg, version, &before, applied, err);
    }
    pthread_mutex_lock(&s->admin_mu);
    ret = store_migrate_conn(s->admin, version, applied, err);
    seq = store_commit_seq(s);
    pthread_mutex_unlock(&s->admin_mu);
    if (ret == 0 && store_durable(s, seq, err) < 0)
        ret = -1;
    return ret;
}

int store_migrate(struct store *s, int *applied, struct err *err)
{
    return store_migrate_to(s, store_schema_latest(), applied, err);
}
