/*
 * store/migrate_pg.c - the PostgreSQL schema and its migrations.
 *
 * PostgreSQL databases begin at the schema sqlite's migrations had reached
 * when PostgreSQL came (version 14, store/migrate.c): the first entry
 * makes that schema whole, and each later sqlite migration gets its
 * PostgreSQL twin here under the same number (tests/unit/store/pg.c checks
 * that the two lists end at the same version). Migrations are append-only,
 * as sqlite's.
 *
 * The same tables, columns, constraints and indexes as sqlite's, in
 * PostgreSQL's types: ids BIGSERIAL (BIGINT where they refer), sqlite's
 * INTEGER BIGINT (times are Unix seconds, digests 63 bits), REAL DOUBLE
 * PRECISION, BLOB BYTEA; flags stay INTEGER 0/1 with their CHECKs, as the
 * statements compare them with 0 and 1. What differs:
 *  - no nonce_log and no nonces_v6: the log is the sqlite launch writer's
 *    way to batch its page writes, and a PostgreSQL database never held
 *    digests covering the timestamp (schema 8);
 *  - nonces are unique by digest too (UNIQUE (fp)): instances share no
 *    memory, so the constraint is what refuses a nonce used on another
 *    instance, whatever timestamp comes with it (INSERT ... ON CONFLICT);
 *  - the trigger of migration 10 is a function and a BEFORE UPDATE trigger
 *    that sets the row's sync columns (sqlite's AFTER trigger updates the
 *    row again); migration 14's, a function and an AFTER UPDATE trigger;
 *  - the version is the one row of ltibadges_schema (sqlite's is
 *    user_version).
 *
 * Each migration runs in its own transaction with its version, and every
 * run holds an advisory lock from reading the version to the last commit:
 * of instances starting together, one migrates and the others wait, then
 * find the work done.
 */
#include "base/base.h"
#include "store/pg.h"

#include <libpq-fe.h>

/* pg_advisory_lock's key for migrations: "ltbdgmig" in ASCII, one that no other program takes. */
#define MIGRATE_LOCK "7814979436766128487"

static const struct {
    int version;
    const char *sql;
} migrations[] = {
    { 14,
      "CREATE TABLE ltibadges_schema ("
      "  id INTEGER PRIMARY KEY CHECK (id = 1),"
      "  version INTEGER NOT NULL"
      ");"
      "CREATE TABLE consumers ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  key TEXT NOT NULL UNIQUE,"
      "  secret TEXT NOT NULL,"
      "  name TEXT NOT NULL,"
      "  lms_family TEXT,"
      "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
      "  backend TEXT,"
      "  created_at BIGINT NOT NULL,"
      "  outcome_hosts TEXT"
      ");"
      "CREATE TABLE users ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  lti_user_id TEXT NOT NULL,"
      "  given_name TEXT, family_name TEXT, full_name TEXT, email TEXT, person_sourcedid TEXT,"
      "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
      "  email_source TEXT,"
      "  show_name INTEGER NOT NULL DEFAULT 0 CHECK (show_name IN (0, 1)),"
      "  UNIQUE (consumer_id, lti_user_id)"
      ");"
      "CREATE TABLE contexts ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  lti_context_id TEXT NOT NULL,"
      "  title TEXT, label TEXT,"
      "  badges_enabled INTEGER NOT NULL DEFAULT 0 CHECK (badges_enabled IN (0, 1)),"
      "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
      "  pass_mark DOUBLE PRECISION, completion_link TEXT,"
      "  UNIQUE (consumer_id, lti_context_id)"
      ");"
      "CREATE TABLE resource_links ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  lti_resource_link_id TEXT NOT NULL,"
      "  context_id BIGINT REFERENCES contexts(id) ON DELETE CASCADE,"
      "  title TEXT,"
      "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
      "  points_possible DOUBLE PRECISION,"
      "  UNIQUE (consumer_id, lti_resource_link_id)"
      ");"
      "CREATE INDEX resource_links_context ON resource_links(context_id);"
      "CREATE TABLE enrollments ("
      "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      "  context_id BIGINT NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,"
      "  roles TEXT, ext_roles TEXT, role_flags BIGINT NOT NULL, mode TEXT,"
      "  first_launch_at BIGINT NOT NULL, last_launch_at BIGINT NOT NULL,"
      "  PRIMARY KEY (user_id, context_id)"
      ");"
      "CREATE INDEX enrollments_context ON enrollments(context_id);"
      "CREATE TABLE outcome_bindings ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      "  resource_link_id BIGINT NOT NULL REFERENCES resource_links(id) ON DELETE CASCADE,"
      "  context_id BIGINT REFERENCES contexts(id) ON DELETE CASCADE,"
      "  service_url TEXT NOT NULL,"
      "  sourcedid TEXT NOT NULL,"
      "  data_values_accepted TEXT,"
      "  last_score DOUBLE PRECISION, last_score_at BIGINT,"
      "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
      "  total_score_accepted INTEGER NOT NULL DEFAULT 0,"
      "  last_read_at BIGINT NOT NULL DEFAULT 0,"
      "  last_read_error TEXT,"
      "  sourcedid_fp BIGINT NOT NULL DEFAULT 0,"
      "  UNIQUE (user_id, resource_link_id)"
      ");"
      "CREATE INDEX outcome_bindings_context ON outcome_bindings(context_id);"
      "CREATE INDEX outcome_bindings_read ON outcome_bindings(last_read_at);"
      "CREATE INDEX outcome_bindings_sourcedid_fp ON outcome_bindings(sourcedid_fp);"
      "CREATE TABLE sessions ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  secret_hash BYTEA NOT NULL,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      "  context_id BIGINT REFERENCES contexts(id) ON DELETE CASCADE,"
      "  resource_link_id BIGINT REFERENCES resource_links(id) ON DELETE CASCADE,"
      "  roles TEXT, role_flags BIGINT NOT NULL, mode TEXT,"
      "  return_url TEXT, document_target TEXT, locale TEXT,"
      "  csrf_secret BYTEA NOT NULL,"
      "  created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,"
      "  frame_origin TEXT"
      ");"
      "CREATE TABLE badge_classes ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  slug TEXT NOT NULL UNIQUE,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  context_id BIGINT REFERENCES contexts(id) ON DELETE CASCADE,"
      "  mode TEXT,"
      "  name TEXT NOT NULL, description TEXT NOT NULL,"
      "  image BYTEA NOT NULL, image_type TEXT NOT NULL,"
      "  criteria_url TEXT, criteria_narrative TEXT,"
      "  issuing_component TEXT,"
      "  tags TEXT NOT NULL DEFAULT '[]',"
      "  alignments TEXT NOT NULL DEFAULT '[]',"
      "  expires_days BIGINT,"
      "  backend TEXT NOT NULL,"
      "  backend_id TEXT,"
      "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
      "  passback_score DOUBLE PRECISION DEFAULT 1.0 CHECK (passback_score IS NULL OR "
      "(passback_score >= 0.0 AND passback_score <= 1.0)),"
      "  revoke_on_withdrawn INTEGER NOT NULL DEFAULT 0 CHECK (revoke_on_withdrawn IN (0, 1)),"
      "  archived_at BIGINT,"
      "  sync_due_at BIGINT,"
      "  sync_gen BIGINT NOT NULL DEFAULT 0,"
      "  sync_attempts BIGINT NOT NULL DEFAULT 0,"
      "  sync_error TEXT"
      ");"
      "CREATE INDEX badge_classes_context ON badge_classes(context_id);"
      "CREATE INDEX badge_classes_sync ON badge_classes(sync_due_at) "
      "WHERE sync_due_at IS NOT NULL;"
      /* sqlite's trigger of migration 10: an edit of a field the platform holds is to be sent */
      "CREATE FUNCTION badge_classes_edited() RETURNS trigger LANGUAGE plpgsql AS $$ "
      "BEGIN NEW.sync_due_at := NEW.updated_at; NEW.sync_gen := NEW.sync_gen + 1; "
      "NEW.sync_attempts := 0; RETURN NEW; END $$;"
      "CREATE TRIGGER badge_classes_edited BEFORE UPDATE OF name, description, image, "
      "image_type, criteria_url, criteria_narrative, issuing_component, tags, alignments, "
      "expires_days ON badge_classes FOR EACH ROW WHEN (NEW.backend_id IS NOT NULL AND "
      "OLD.backend_id IS NOT DISTINCT FROM NEW.backend_id AND "
      "(OLD.name IS DISTINCT FROM NEW.name OR OLD.description IS DISTINCT FROM NEW.description "
      "OR OLD.image IS DISTINCT FROM NEW.image OR OLD.image_type IS DISTINCT FROM NEW.image_type "
      "OR OLD.criteria_url IS DISTINCT FROM NEW.criteria_url "
      "OR OLD.criteria_narrative IS DISTINCT FROM NEW.criteria_narrative "
      "OR OLD.issuing_component IS DISTINCT FROM NEW.issuing_component "
      "OR OLD.tags IS DISTINCT FROM NEW.tags OR OLD.alignments IS DISTINCT FROM NEW.alignments "
      "OR OLD.expires_days IS DISTINCT FROM NEW.expires_days)) "
      "EXECUTE FUNCTION badge_classes_edited();"
      "CREATE TABLE rules ("
      "  badge_class_id BIGINT PRIMARY KEY REFERENCES badge_classes(id) ON DELETE CASCADE,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  kind TEXT NOT NULL CHECK (kind IN ('enrollment', 'score', 'completion', 'group', "
      "'count', 'manual')),"
      "  context_id BIGINT REFERENCES contexts(id) ON DELETE CASCADE,"
      "  mode_key TEXT NOT NULL DEFAULT '',"
      "  threshold DOUBLE PRECISION, resource_link TEXT, group_id BIGINT, count BIGINT"
      ");"
      "CREATE UNIQUE INDEX rules_one_completion ON rules(context_id, mode_key) "
      "WHERE kind = 'completion';"
      "CREATE INDEX rules_kind ON rules(consumer_id, kind);"
      "CREATE TABLE context_groups ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  name TEXT NOT NULL,"
      "  created_at BIGINT NOT NULL,"
      "  UNIQUE (consumer_id, name)"
      ");"
      "CREATE TABLE context_group_members ("
      "  group_id BIGINT NOT NULL REFERENCES context_groups(id) ON DELETE CASCADE,"
      "  context_id BIGINT NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,"
      "  PRIMARY KEY (group_id, context_id)"
      ");"
      "CREATE INDEX context_group_members_context ON context_group_members(context_id);"
      "CREATE TABLE grades ("
      "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      "  resource_link_id BIGINT NOT NULL REFERENCES resource_links(id) ON DELETE CASCADE,"
      "  context_id BIGINT REFERENCES contexts(id) ON DELETE CASCADE,"
      "  score DOUBLE PRECISION NOT NULL CHECK (score >= 0.0 AND score <= 1.0),"
      "  source TEXT NOT NULL,"
      "  recorded_at BIGINT NOT NULL,"
      "  PRIMARY KEY (user_id, resource_link_id)"
      ");"
      "CREATE TABLE completions ("
      "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      "  context_id BIGINT NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,"
      "  mode TEXT,"
      "  resource_link_id BIGINT REFERENCES resource_links(id) ON DELETE SET NULL,"
      "  score DOUBLE PRECISION,"
      "  completed_at BIGINT NOT NULL,"
      "  PRIMARY KEY (user_id, context_id)"
      ");"
      "CREATE TABLE awards ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  uid TEXT NOT NULL UNIQUE,"
      "  badge_class_id BIGINT NOT NULL REFERENCES badge_classes(id) ON DELETE CASCADE,"
      "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      "  context_id BIGINT REFERENCES contexts(id) ON DELETE SET NULL,"
      "  resource_link_id BIGINT REFERENCES resource_links(id) ON DELETE SET NULL,"
      "  reason TEXT NOT NULL,"
      "  narrative TEXT,"
      "  salt TEXT NOT NULL,"
      "  recipient_email TEXT,"
      "  state TEXT NOT NULL CHECK (state IN ('queued', 'needs_email', 'issuing', 'issued', "
      "'failed', 'revoked')),"
      "  attempts BIGINT NOT NULL DEFAULT 0,"
      "  next_attempt_at BIGINT NOT NULL DEFAULT 0,"
      "  last_error TEXT,"
      "  assertion_id TEXT, assertion_url TEXT,"
      "  issued_at BIGINT, expires_at BIGINT,"
      "  revoked_at BIGINT, revoke_reason TEXT,"
      "  revoke_synced INTEGER NOT NULL DEFAULT 1,"
      "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
      "  backend TEXT NOT NULL DEFAULT '',"
      "  UNIQUE (badge_class_id, user_id)"
      ");"
      "CREATE INDEX awards_due ON awards(next_attempt_at) "
      "WHERE state IN ('queued', 'issuing') OR revoke_synced = 0;"
      "CREATE INDEX awards_user ON awards(user_id);"
      "CREATE INDEX awards_state ON awards(state);"
      "CREATE INDEX awards_backend_due ON awards(backend, next_attempt_at) "
      "WHERE state IN ('queued', 'issuing') OR revoke_synced = 0;"
      /* sqlite's trigger of migration 14: an award's backend follows its BadgeClass's */
      "CREATE FUNCTION awards_backend_follows() RETURNS trigger LANGUAGE plpgsql AS $$ "
      "BEGIN UPDATE awards SET backend = NEW.backend WHERE badge_class_id = NEW.id; "
      "RETURN NULL; END $$;"
      "CREATE TRIGGER awards_backend_follows AFTER UPDATE OF backend ON badge_classes "
      "FOR EACH ROW EXECUTE FUNCTION awards_backend_follows();"
      "CREATE TABLE tool_sourcedids ("
      "  sourcedid TEXT PRIMARY KEY,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      "  context_id BIGINT NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,"
      "  resource_link_id BIGINT NOT NULL REFERENCES resource_links(id) ON DELETE CASCADE,"
      "  created_at BIGINT NOT NULL,"
      "  UNIQUE (user_id, resource_link_id)"
      ");"
      "CREATE TABLE passbacks ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  award_id BIGINT NOT NULL REFERENCES awards(id) ON DELETE CASCADE,"
      "  binding_id BIGINT NOT NULL REFERENCES outcome_bindings(id) ON DELETE CASCADE,"
      "  score DOUBLE PRECISION,"
      "  data_url TEXT,"
      "  state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'done', 'failed')),"
      "  attempts BIGINT NOT NULL DEFAULT 0,"
      "  next_attempt_at BIGINT NOT NULL DEFAULT 0,"
      "  last_attempt_at BIGINT,"
      "  answer TEXT,"
      "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
      "  UNIQUE (award_id, binding_id)"
      ");"
      "CREATE INDEX passbacks_due ON passbacks(next_attempt_at) "
      "WHERE state IN ('queued', 'sending');"
      "CREATE TABLE email_confirmations ("
      "  id BIGSERIAL PRIMARY KEY,"
      "  secret_hash BYTEA NOT NULL,"
      "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      "  email TEXT NOT NULL,"
      "  created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,"
      "  used_at BIGINT"
      ");"
      "CREATE INDEX email_confirmations_user ON email_confirmations(user_id);"
      /*
       * (ts, fp) as sqlite's, so purges cut by time; and fp alone unique: a
       * nonce refused on every instance whatever its timestamp (store/nonces.c)
       */
      "CREATE TABLE nonces ("
      "  ts BIGINT NOT NULL,"
      "  fp BIGINT NOT NULL,"
      "  consumer_id BIGINT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,"
      "  PRIMARY KEY (ts, fp),"
      "  CONSTRAINT nonces_fp_unique UNIQUE (fp)"
      ");"
      "CREATE TABLE backend_hooks ("
      "  backend TEXT PRIMARY KEY,"
      "  received BIGINT NOT NULL DEFAULT 0,"
      "  applied BIGINT NOT NULL DEFAULT 0,"
      "  unchanged BIGINT NOT NULL DEFAULT 0,"
      "  ignored BIGINT NOT NULL DEFAULT 0,"
      "  refused BIGINT NOT NULL DEFAULT 0,"
      "  last_received_at BIGINT, last_refused_at BIGINT, last_refusal TEXT"
      ");"
      "INSERT INTO ltibadges_schema(id, version) VALUES (1, 0);" },
    { 15, "CREATE TABLE rate_limits ("
          "  key TEXT PRIMARY KEY,"
          "  expires_at BIGINT NOT NULL,"
          "  count BIGINT NOT NULL"
          ");"
          "CREATE INDEX rate_limits_expiry ON rate_limits(expires_at);" },
    /*
     * 16: a count of the changes to consumers that instances' caches hold
     * (key, secret, enabled, backend, outcome hosts; the LMS family is not
     * cached), bumped by a trigger whoever writes; each instance reads it at
     * most once a second and clears its consumer cache when it moved
     * (store/consumers.c).
     */
    { 16, "CREATE TABLE cache_version ("
          "  id INTEGER PRIMARY KEY CHECK (id = 1),"
          "  version BIGINT NOT NULL"
          ");"
          "INSERT INTO cache_version(id, version) VALUES (1, 0);"
          "CREATE FUNCTION ltibadges_cache_bump() RETURNS trigger LANGUAGE plpgsql AS $$ "
          "BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; RETURN NULL; END $$;"
          "CREATE TRIGGER consumers_cache_bump AFTER INSERT OR DELETE OR UPDATE OF key, secret, "
          "enabled, backend, outcome_hosts ON consumers FOR EACH ROW "
          "EXECUTE FUNCTION ltibadges_cache_bump();" },
    /*
     * 17: a launch recorded in one call (store/launch_pg.c), so that the
     * launch writer sends a batch's launches without waiting for each
     * statement's answer. Rows a launch finds as they are (relaunches,
     * nearly every launch) are read, not written: `INSERT ... ON CONFLICT DO
     * UPDATE ... WHERE <changed>` locked the row it found even when its
     * WHERE was false, and instances whose batches met on the same learners
     * in different orders deadlocked. A row that changed is updated by id; a
     * new one is inserted with the upsert of sql_pg.c (another instance may
     * insert it at the same time). Status: 0 recorded, 1 the consumer is
     * unknown or disabled, 2 its secret is not the one the launch was
     * verified with, 3 the nonce was used (by any instance), 4 the launch's
     * timestamp left the window while it was queued; nothing is written
     * unless 0.
     */
    { 17,
      "CREATE FUNCTION ltibadges_record_launch("
      "p_consumer BIGINT, p_secret TEXT, p_oldest BIGINT, p_ts BIGINT, p_fp BIGINT, "
      "p_now BIGINT, p_lms TEXT, "
      "p_user TEXT, p_given TEXT, p_family TEXT, p_full TEXT, p_email TEXT, p_person TEXT, "
      "p_context TEXT, p_ctitle TEXT, p_clabel TEXT, "
      "p_link TEXT, p_ltitle TEXT, p_points DOUBLE PRECISION, "
      "p_roles TEXT, p_ext_roles TEXT, p_role_flags BIGINT, p_mode TEXT, "
      "p_service_url TEXT, p_sourcedid TEXT, p_data_accepted TEXT, p_score_accepted INTEGER, "
      "p_sourcedid_fp BIGINT, "
      "p_secret_hash BYTEA, p_return_url TEXT, p_target TEXT, p_locale TEXT, p_csrf BYTEA, "
      "p_expires BIGINT, p_frame TEXT, "
      "OUT r_status INTEGER, OUT r_user BIGINT, OUT r_context BIGINT, OUT r_session BIGINT, "
      "OUT r_first INTEGER, OUT r_awards INTEGER) "
      "LANGUAGE plpgsql AS $$ "
      "DECLARE k RECORD; u RECORD; x RECORD; lk RECORD; b RECORD; v_ctx BIGINT; v_link BIGINT; n BIGINT; "
      "BEGIN "
      "r_status := 0; r_user := 0; r_context := 0; r_session := 0; r_first := 0; "
      "r_awards := 0; "
      "SELECT enabled, secret INTO k FROM consumers WHERE id = p_consumer; "
      "IF NOT FOUND OR k.enabled = 0 THEN r_status := 1; RETURN; END IF; "
      "IF p_secret IS NOT NULL AND k.secret IS DISTINCT FROM p_secret THEN "
      "r_status := 2; RETURN; END IF; "
      "IF p_ts < p_oldest THEN r_status := 4; RETURN; END IF; "
      "INSERT INTO nonces(ts, fp, consumer_id) VALUES (p_ts, p_fp, p_consumer) "
      "ON CONFLICT DO NOTHING; "
      "GET DIAGNOSTICS n = ROW_COUNT; "
      "IF n = 0 THEN r_status := 3; RETURN; END IF; "
      "IF p_lms IS NOT NULL THEN "
      "UPDATE consumers SET lms_family = p_lms WHERE id = p_consumer "
      "AND lms_family IS DISTINCT FROM p_lms; "
      "END IF; "
      /* the user */
      "SELECT id, given_name, family_name, full_name, email, email_source, person_sourcedid "
      "INTO u FROM users WHERE consumer_id = p_consumer AND lti_user_id = p_user; "
      "IF FOUND THEN "
      "r_user := u.id; "
      "IF (p_given IS NOT NULL AND p_given IS DISTINCT FROM u.given_name) "
      "OR (p_family IS NOT NULL AND p_family IS DISTINCT FROM u.family_name) "
      "OR (p_full IS NOT NULL AND p_full IS DISTINCT FROM u.full_name) "
      "OR (p_email IS NOT NULL AND (p_email IS DISTINCT FROM u.email "
      "OR u.email_source IS NOT NULL)) "
      "OR (p_person IS NOT NULL AND p_person IS DISTINCT FROM u.person_sourcedid) THEN "
      "UPDATE users SET given_name = coalesce(p_given, given_name), "
      "family_name = coalesce(p_family, family_name), full_name = coalesce(p_full, full_name), "
      "email = coalesce(p_email, email), "
      "email_source = CASE WHEN p_email IS NULL THEN email_source END, "
      "person_sourcedid = coalesce(p_person, person_sourcedid), updated_at = p_now "
      "WHERE id = u.id; "
      "END IF; "
      "ELSE "
      "INSERT INTO users(consumer_id, lti_user_id, given_name, family_name, full_name, email, "
      "person_sourcedid, created_at, updated_at) VALUES (p_consumer, p_user, p_given, "
      "p_family, p_full, p_email, p_person, p_now, p_now) "
      "ON CONFLICT(consumer_id, lti_user_id) DO UPDATE SET "
      "given_name = coalesce(excluded.given_name, users.given_name), "
      "family_name = coalesce(excluded.family_name, users.family_name), "
      "full_name = coalesce(excluded.full_name, users.full_name), "
      "email = coalesce(excluded.email, users.email), "
      "email_source = CASE WHEN excluded.email IS NULL THEN users.email_source END, "
      "person_sourcedid = coalesce(excluded.person_sourcedid, users.person_sourcedid), "
      "updated_at = excluded.updated_at RETURNING id INTO r_user; "
      "END IF; "
      "IF p_email IS NOT NULL THEN "
      "UPDATE awards SET state = 'queued', next_attempt_at = p_now, updated_at = p_now "
      "WHERE user_id = r_user AND state = 'needs_email'; "
      "GET DIAGNOSTICS n = ROW_COUNT; r_awards := n; "
      "END IF; "
      /* the course */
      "IF p_context IS NOT NULL THEN "
      "SELECT id, title, label INTO x FROM contexts "
      "WHERE consumer_id = p_consumer AND lti_context_id = p_context; "
      "IF FOUND THEN "
      "r_context := x.id; "
      "IF (p_ctitle IS NOT NULL AND p_ctitle IS DISTINCT FROM x.title) "
      "OR (p_clabel IS NOT NULL AND p_clabel IS DISTINCT FROM x.label) THEN "
      "UPDATE contexts SET title = coalesce(p_ctitle, title), "
      "label = coalesce(p_clabel, label), updated_at = p_now WHERE id = x.id; "
      "END IF; "
      "ELSE "
      "INSERT INTO contexts(consumer_id, lti_context_id, title, label, created_at, updated_at) "
      "VALUES (p_consumer, p_context, p_ctitle, p_clabel, p_now, p_now) "
      "ON CONFLICT(consumer_id, lti_context_id) DO UPDATE SET "
      "title = coalesce(excluded.title, contexts.title), "
      "label = coalesce(excluded.label, contexts.label), updated_at = excluded.updated_at "
      "RETURNING id INTO r_context; "
      "END IF; "
      "END IF; "
      "v_ctx := nullif(r_context, 0); "
      /* the resource link */
      "SELECT id, context_id, title, points_possible INTO lk FROM resource_links "
      "WHERE consumer_id = p_consumer AND lti_resource_link_id = p_link; "
      "IF FOUND THEN "
      "v_link := lk.id; "
      "IF (v_ctx IS NOT NULL AND v_ctx IS DISTINCT FROM lk.context_id) "
      "OR (p_ltitle IS NOT NULL AND p_ltitle IS DISTINCT FROM lk.title) "
      "OR (p_points IS NOT NULL AND p_points IS DISTINCT FROM lk.points_possible) THEN "
      "UPDATE resource_links SET context_id = coalesce(v_ctx, context_id), "
      "title = coalesce(p_ltitle, title), "
      "points_possible = coalesce(p_points, points_possible), updated_at = p_now "
      "WHERE id = lk.id; "
      "END IF; "
      "ELSE "
      "INSERT INTO resource_links(consumer_id, lti_resource_link_id, context_id, title, "
      "points_possible, created_at, updated_at) "
      "VALUES (p_consumer, p_link, v_ctx, p_ltitle, p_points, p_now, p_now) "
      "ON CONFLICT(consumer_id, lti_resource_link_id) DO UPDATE SET "
      "context_id = coalesce(excluded.context_id, resource_links.context_id), "
      "title = coalesce(excluded.title, resource_links.title), "
      "points_possible = coalesce(excluded.points_possible, resource_links.points_possible), "
      "updated_at = excluded.updated_at RETURNING id INTO v_link; "
      "END IF; "
      /* the enrollment: first launch here, or what changed (last_launch_at hourly) */
      "IF v_ctx IS NOT NULL THEN "
      "INSERT INTO enrollments(user_id, context_id, roles, ext_roles, role_flags, mode, "
      "first_launch_at, last_launch_at) VALUES (r_user, v_ctx, p_roles, p_ext_roles, "
      "p_role_flags, p_mode, p_now, p_now) ON CONFLICT(user_id, context_id) DO NOTHING; "
      "GET DIAGNOSTICS n = ROW_COUNT; "
      "IF n = 1 THEN r_first := 1; "
      "ELSE "
      "UPDATE enrollments SET roles = p_roles, ext_roles = p_ext_roles, "
      "role_flags = p_role_flags, mode = p_mode, last_launch_at = p_now "
      "WHERE user_id = r_user AND context_id = v_ctx "
      "AND (roles IS DISTINCT FROM p_roles OR ext_roles IS DISTINCT FROM p_ext_roles "
      "OR role_flags IS DISTINCT FROM p_role_flags OR mode IS DISTINCT FROM p_mode "
      "OR last_launch_at <= p_now - 3600); "
      "END IF; "
      "END IF; "
      /* the outcome binding: its sourcedid replaced at most hourly (store/launch.c) */
      "IF p_service_url IS NOT NULL AND p_sourcedid IS NOT NULL THEN "
      "SELECT id, context_id, service_url, sourcedid, data_values_accepted, "
      "total_score_accepted, updated_at INTO b FROM outcome_bindings "
      "WHERE user_id = r_user AND resource_link_id = v_link; "
      "IF FOUND THEN "
      "IF b.context_id IS DISTINCT FROM v_ctx OR b.service_url IS DISTINCT FROM p_service_url "
      "OR b.data_values_accepted IS DISTINCT FROM p_data_accepted "
      "OR b.total_score_accepted IS DISTINCT FROM p_score_accepted "
      "OR (b.sourcedid IS DISTINCT FROM p_sourcedid AND b.updated_at <= p_now - 3600) THEN "
      "UPDATE outcome_bindings SET context_id = v_ctx, service_url = p_service_url, "
      "sourcedid = p_sourcedid, sourcedid_fp = p_sourcedid_fp, "
      "data_values_accepted = p_data_accepted, total_score_accepted = p_score_accepted, "
      "updated_at = p_now WHERE id = b.id; "
      "END IF; "
      "ELSE "
      "INSERT INTO outcome_bindings(user_id, resource_link_id, context_id, service_url, "
      "sourcedid, sourcedid_fp, data_values_accepted, total_score_accepted, created_at, "
      "updated_at) VALUES (r_user, v_link, v_ctx, p_service_url, p_sourcedid, "
      "p_sourcedid_fp, p_data_accepted, p_score_accepted, p_now, p_now) "
      "ON CONFLICT(user_id, resource_link_id) DO UPDATE SET "
      "context_id = excluded.context_id, service_url = excluded.service_url, "
      "sourcedid = excluded.sourcedid, sourcedid_fp = excluded.sourcedid_fp, "
      "data_values_accepted = excluded.data_values_accepted, "
      "total_score_accepted = excluded.total_score_accepted, "
      "updated_at = excluded.updated_at "
      "WHERE outcome_bindings.context_id IS DISTINCT FROM excluded.context_id "
      "OR outcome_bindings.service_url IS DISTINCT FROM excluded.service_url "
      "OR outcome_bindings.data_values_accepted IS DISTINCT FROM "
      "excluded.data_values_accepted "
      "OR outcome_bindings.total_score_accepted IS DISTINCT FROM "
      "excluded.total_score_accepted "
      "OR (outcome_bindings.sourcedid IS DISTINCT FROM excluded.sourcedid "
      "AND outcome_bindings.updated_at <= excluded.updated_at - 3600); "
      "END IF; "
      "END IF; "
      "INSERT INTO sessions(secret_hash, consumer_id, user_id, context_id, resource_link_id, "
      "roles, role_flags, mode, return_url, document_target, locale, csrf_secret, created_at, "
      "expires_at, frame_origin) VALUES (p_secret_hash, p_consumer, r_user, v_ctx, v_link, "
      "p_roles, p_role_flags, p_mode, p_return_url, p_target, p_locale, p_csrf, p_now, "
      "p_expires, p_frame) RETURNING id INTO r_session; "
      "END $$;" },
};

#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int store_pg_schema_latest(void)
{
    return migrations[NMIGRATIONS - 1].version;
}

/* The version on `c`: 0 without ltibadges_schema (a database none of ours migrated). */
static int version_conn(struct store_pg_conn *c, int *version, struct err *err)
{
    PGresult *res = PQexec(c->db, "SELECT to_regclass('ltibadges_schema') IS NOT NULL");
    bool exists;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        store_pg_err(c, res, "reading the schema version", err);
        PQclear(res);
        return -1;
    }
    exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    *version = 0;
    if (!exists)
        return 0;
    res = PQexec(c->db, "SELECT version FROM ltibadges_schema WHERE id = 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        store_pg_err(c, res, "reading the schema version", err);
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 1) {
        int64_t v;

        if (str_to_i64(str_from_cstr(PQgetvalue(res, 0, 0)), 0, INT32_MAX, &v) == 0)
            *version = (int)v;
    }
    PQclear(res);
    return 0;
}

int store_pg_schema_version(struct store_pg *pg, int *version, struct err *err)
{
    struct store_pg_conn *c = store_pg_get(pg, err);
    int ret;

    if (!c)
        return -1;
    ret = version_conn(c, version, err);
    store_pg_put(pg, c);
    return ret;
}

/* Runs the migrations after version `version` up to `target` on `c`, which holds the lock. */
static int migrate_locked(struct store_pg_conn *c, int version, int target, int *applied,
                          struct err *err)
{
    for (size_t i = 0; i < NMIGRATIONS; i++) {
        char bump[96];
        struct err e = ERR_INIT;

        if (migrations[i].version <= version || migrations[i].version > target)
            continue;
        snprintf(bump, sizeof(bump), "UPDATE ltibadges_schema SET version = %d WHERE id = 1",
                 migrations[i].version);
        /* the migration and its version commit together, or neither */
        if (store_pg_exec(c, "BEGIN", "starting a migration", err) < 0)
            return -1;
        if (store_pg_exec(c, migrations[i].sql, "migrating", &e) < 0 ||
            store_pg_exec(c, bump, "migrating", &e) < 0 ||
            store_pg_exec(c, "COMMIT", "migrating", &e) < 0) {
            store_pg_exec(c, "ROLLBACK", "rolling a migration back", NULL);
            /* the connection's loss says so (503); else the migration is at fault */
            err_set(err, e.code == ERR_UNAVAILABLE ? e.code : ERR_INTERNAL,
                    "migration to schema version %d failed", migrations[i].version);
            return err_detail(err, "%s", e.detail);
        }
        (*applied)++;
    }
    return 0;
}

int store_pg_migrate(struct store_pg *pg, int target, int *before, int *applied, struct err *err)
{
    struct store_pg_conn *c;
    int version = 0, ret;

    *before = 0;
    *applied = 0;
    if (target > store_pg_schema_latest())
        target = store_pg_schema_latest();
    if (target < migrations[0].version)
        return err_set(err, ERR_INVALID,
                       "a PostgreSQL database starts at schema version %d (asked for %d)",
                       migrations[0].version, target);
    c = store_pg_get(pg, err);
    if (!c)
        return -1;
    /* held by this session until unlocked, or until the connection ends should we die */
    if (store_pg_exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", "taking the migration lock",
                      err) < 0) {
        store_pg_put(pg, c);
        return -1;
    }
    ret = version_conn(c, &version, err);
    if (ret == 0 && version > store_pg_schema_latest())
        ret = err_set(err, ERR_INVALID,
                      "the database's schema version %d is newer than this program's (%d): run "
                      "the newer ltibadges",
                      version, store_pg_schema_latest());
    if (ret == 0) {
        *before = version;
        ret = migrate_locked(c, version, target, applied, err);
    }
    store_pg_exec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", "releasing the migration lock",
                  NULL);
    store_pg_put(pg, c);
    return ret;
}
