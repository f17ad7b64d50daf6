/*
 * store/sql_pg.c - the statement table for PostgreSQL: store_sql_pg.
 *
 * The same ids as sqlite's table (store/store_int.h, enum stmt_id), the
 * same parameters ($1.. where sqlite has ?1..) and the same columns in the
 * same order, so an operation's logic is written once over either engine.
 * What PostgreSQL spells differently:
 *  - `a IS NOT b` (sqlite's null-safe comparison) is IS DISTINCT FROM;
 *  - a parameter whose type PostgreSQL cannot infer from its place, or
 *    would infer too narrow (`$2 = 0` makes an int4, where ids are 64-bit),
 *    is cast: $2::bigint, $1::text;
 *  - a comparison or EXISTS selected as a column is cast to integer
 *    (::int), since the statements' readers take sqlite's 0 and 1;
 *  - in ON CONFLICT ... DO UPDATE both the row and `excluded` are in scope,
 *    so the row's columns are named with their table;
 *  - json_each(?4) is jsonb_array_elements_text($4::jsonb), instr strpos,
 *    COLLATE NOCASE lower(), and sqlite's bare columns beside max() a
 *    DISTINCT ON;
 *  - claims of due work (awards, passbacks, BadgeClass edits to send) lock
 *    what they select, FOR UPDATE SKIP LOCKED: instances claiming at once
 *    each get other rows, and the claim's UPDATE in the same transaction
 *    moves next_attempt_at past the lease;
 *  - parameters are sent as text, bytea (images, secret hashes) in binary;
 *  - a LIMIT bound negative is none, as on sqlite (nullif(greatest(..)));
 * NULL marks what only sqlite has: its PRAGMAs, its launch writer's nonce
 * log (instances share no writer: a nonce goes straight into `nonces`,
 * unique by constraint), the nonces_v6 table of schema 8 (a PostgreSQL
 * database never held those digests). S_BEGIN_IMMEDIATE, store_begin()'s
 * write transaction, is a plain BEGIN here: PostgreSQL's takes no lock up
 * front, the statements lock their rows.
 */
#include "base/base.h"
#include "store/pg.h"

/*
 * What a BadgeClass read selects; IMG is b.image, or NULL where lists leave
 * it out; ISSUED counts its issued awards (lists), or is 0 (the worker's
 * reads, which must not scan a badge's awards for each award).
 */
#define BADGE_SELECT(IMG, ISSUED)                                                                  \
 "SELECT b.id, b.consumer_id, coalesce(b.context_id, 0), b.slug, co.key, c.lti_context_id, "       \
 "c.title, b.mode, b.name, b.description, b.image_type, b.criteria_url, "                          \
 "b.criteria_narrative, b.issuing_component, b.tags, b.alignments, b.backend, b.backend_id, " IMG  \
 ", coalesce(b.expires_days, 0), r.kind, r.threshold, r.resource_link, g.name, "                   \
 "coalesce(r.group_id, 0), coalesce(r.count, 0), b.created_at, b.updated_at, " ISSUED              \
 ", b.passback_score, b.revoke_on_withdrawn, coalesce(b.archived_at, 0), "                         \
 "coalesce(b.sync_due_at, 0), b.sync_attempts, b.sync_error "                                      \
 "FROM badge_classes b JOIN consumers co ON co.id = b.consumer_id "                                \
 "LEFT JOIN contexts c ON c.id = b.context_id LEFT JOIN rules r ON r.badge_class_id = b.id "       \
 "LEFT JOIN context_groups g ON g.id = r.group_id"

/*
 * A user's name for people, one spelling for every read: the full name,
 * else given and family names, else NULL (pages then show the LMS user id).
 */
#define USER_NAME                                                                                  \
 "coalesce(nullif(u.full_name, ''), nullif(trim(coalesce(u.given_name, '') || ' ' || "             \
 "coalesce(u.family_name, '')), ''))"
/* store_award_state_rank() in SQL: what needs an instructor first */
#define STATE_RANK                                                                                 \
 "(CASE a.state WHEN 'failed' THEN 0 WHEN 'needs_email' THEN 1 WHEN 'queued' THEN 2 "              \
 "WHEN 'issuing' THEN 3 WHEN 'issued' THEN 4 ELSE 5 END)"
/* a learner's name for the dry run's list: the LMS user id when there is no name */
#define CAND_NAME "coalesce(" USER_NAME ", u.lti_user_id)"
/* $2 0, or a learner (not staff) of course $2 */
#define CAND_IN_COURSE                                                                             \
 "AND ($2::bigint = 0 OR EXISTS (SELECT 1 FROM enrollments ec WHERE ec.user_id = u.id "            \
 "AND ec.context_id = $2 AND (ec.role_flags & $10) != 0 AND (ec.role_flags & $11) = 0)) "
/* the user has no award of BadgeClass $3 yet */
#define CAND_NOT_HELD                                                                              \
 "AND NOT EXISTS (SELECT 1 FROM awards a WHERE a.badge_class_id = $3 AND a.user_id = u.id) "

/*
 * A parameter a statement does not use, bound as on sqlite (the statements
 * of a family share one binder: S_RULE_INSERT's and S_RULE_UPDATE's, the
 * candidates'): typed, since PostgreSQL prepares no parameter whose type it
 * cannot tell, and true whatever its value.
 */
#define UNUSED(N) "($" #N "::text IS NULL OR true)"

#define ISSUED_COUNT                                                                               \
 "(SELECT count(*) FROM awards a WHERE a.badge_class_id = b.id AND a.state = 'issued') "

/*
 * Whether the rules need the LMS grades of course C: it has badges enabled,
 * or its consumer has course-wide score, group or count rules.
 */
#define NEEDS_GRADES(C)                                                                            \
 "(" #C ".badges_enabled = 1 OR EXISTS (SELECT 1 FROM rules r WHERE r.consumer_id = " #C           \
 ".consumer_id AND r.context_id IS NULL AND r.kind IN ('score', 'group', 'count')))"

/* What an award read selects. */
#define AWARD_SELECT                                                                               \
 "SELECT a.id, a.badge_class_id, a.user_id, coalesce(a.context_id, 0), a.state, a.uid, "           \
 "a.salt, a.reason, a.narrative, coalesce(a.recipient_email, u.email), a.assertion_id, "           \
 "a.assertion_url, a.last_error, a.revoke_reason, b.slug, co.key, u.lti_user_id, " USER_NAME       \
 ", c.lti_context_id, c.title, l.lti_resource_link_id, l.title, "                                  \
 "a.attempts, a.next_attempt_at, coalesce(a.issued_at, 0), coalesce(a.expires_at, 0), "            \
 "coalesce(a.revoked_at, 0), a.created_at, a.updated_at, a.revoke_synced, p.state, p.answer, "     \
 "coalesce(p.last_attempt_at, 0), coalesce(p.attempts, 0), "                                       \
 "(SELECT count(*) FROM passbacks WHERE award_id = a.id) "                                         \
 "FROM awards a JOIN badge_classes b ON b.id = a.badge_class_id "                                  \
 "JOIN consumers co ON co.id = b.consumer_id JOIN users u ON u.id = a.user_id "                    \
 "LEFT JOIN contexts c ON c.id = a.context_id "                                                    \
 "LEFT JOIN resource_links l ON l.id = a.resource_link_id "                                        \
 "LEFT JOIN passbacks p ON p.id = (SELECT id FROM passbacks WHERE award_id = a.id "                \
 "ORDER BY coalesce(last_attempt_at, 0) DESC, id DESC LIMIT 1)"

const char *const store_sql_pg[S__COUNT] = {
    [S_PING] = "SELECT 1",
    [S_CONSUMER_FIND] =
        "SELECT id, key, secret, name, coalesce(lms_family, ''), enabled, created_at, 0, "
        "coalesce(backend, '') FROM consumers WHERE key = $1",
    [S_CONSUMER_LIST] =
        "SELECT id, key, secret, name, coalesce(lms_family, ''), enabled, created_at, "
        "(SELECT count(*) FROM users u WHERE u.consumer_id = consumers.id), "
        "coalesce(backend, '') FROM consumers ORDER BY id",
    [S_CONSUMER_INSERT] = "INSERT INTO consumers(key, secret, name, enabled, created_at, backend) "
                          "VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT(key) DO NOTHING RETURNING id",
    [S_CONSUMER_DELETE] = "DELETE FROM consumers WHERE key = $1",
    [S_CONSUMER_SET_SECRET] = "UPDATE consumers SET secret = $2 WHERE key = $1",
    [S_CONSUMER_SET_ENABLED] = "UPDATE consumers SET enabled = $2::int WHERE key = $1",
    [S_CONSUMER_CHECK] = "SELECT enabled, secret FROM consumers WHERE id = $1",
    [S_CONSUMER_SET_LMS] =
        "UPDATE consumers SET lms_family = $2 WHERE id = $1 AND lms_family IS DISTINCT FROM $2::text",
    [S_NONCE_INSERT] = "INSERT INTO nonces(ts, fp, consumer_id) VALUES ($1, $2, $3) "
                       "ON CONFLICT DO NOTHING",
    /*
     * as sqlite's; a launch on PostgreSQL is refused by S_NONCE_INSERT's
     * conflict instead (nonces_fp_unique: whatever its timestamp)
     */
    [S_NONCE_SEEN] = "SELECT 1 FROM nonces WHERE ts = $1 AND fp = $2",
    [S_NONCE_PURGE] =
        "DELETE FROM nonces WHERE (ts, fp) IN "
        "(SELECT ts, fp FROM nonces WHERE ts < $1 LIMIT nullif(greatest($2::bigint, -1), -1))",
    /*
     * The oldest sessions only, up to the first that has not expired: ids
     * grow with time, and so do expiry times (one session_ttl), so this
     * reads one row when none expired. (It read the $2 oldest each time: 4 096
     * rows, 1.9 ms of the launch writer every purge.) Sessions made before a
     * shorter session_ttl go first, then the rest.
     */
    [S_SESSION_PURGE] =
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE id < (SELECT coalesce("
        "(SELECT id FROM (SELECT id, expires_at FROM sessions ORDER BY id LIMIT nullif(greatest($2::bigint, -1), -1)) AS oldest "
        "WHERE expires_at >= $1 LIMIT 1), 9223372036854775807)) ORDER BY id LIMIT nullif(greatest($2::bigint, -1), -1))",
    /* the launch path's one call per launch (migration 17; store/launch_pg.c) */
    [S_PG_LAUNCH_RECORD] =
        "SELECT r_status, r_user, r_context, r_session, r_first, r_awards FROM "
        "ltibadges_record_launch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
        "$15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, "
        "$32, $33, $34, $35)",
    [S_USER_UPSERT] =
        "INSERT INTO users(consumer_id, lti_user_id, given_name, family_name, full_name, email, "
        "person_sourcedid, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) "
        "ON CONFLICT(consumer_id, lti_user_id) DO UPDATE SET "
        "given_name = coalesce(excluded.given_name, users.given_name), "
        "family_name = coalesce(excluded.family_name, users.family_name), "
        "full_name = coalesce(excluded.full_name, users.full_name), "
        "email = coalesce(excluded.email, users.email), "
        /* an address the LMS sends is the LMS's, even where the learner gave one before */
        "email_source = CASE WHEN excluded.email IS NULL THEN users.email_source END, "
        "person_sourcedid = coalesce(excluded.person_sourcedid, users.person_sourcedid), "
        "updated_at = excluded.updated_at "
        /* a relaunch that changes nothing writes nothing (no row back: S_USER_FIND) */
        "WHERE users.given_name IS DISTINCT FROM coalesce(excluded.given_name, users.given_name) "
        "OR users.family_name IS DISTINCT FROM coalesce(excluded.family_name, users.family_name) "
        "OR users.full_name IS DISTINCT FROM coalesce(excluded.full_name, users.full_name) "
        "OR users.email IS DISTINCT FROM coalesce(excluded.email, users.email) "
        "OR users.email_source IS DISTINCT FROM "
        "CASE WHEN excluded.email IS NULL THEN users.email_source END "
        "OR users.person_sourcedid IS DISTINCT FROM "
        "coalesce(excluded.person_sourcedid, users.person_sourcedid) RETURNING id",
    [S_CONTEXT_UPSERT] =
        "INSERT INTO contexts(consumer_id, lti_context_id, title, label, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT(consumer_id, lti_context_id) DO UPDATE SET "
        "title = coalesce(excluded.title, contexts.title), "
        "label = coalesce(excluded.label, contexts.label), updated_at = excluded.updated_at "
        "WHERE contexts.title IS DISTINCT FROM coalesce(excluded.title, contexts.title) "
        "OR contexts.label IS DISTINCT FROM coalesce(excluded.label, contexts.label) RETURNING id",
    [S_LINK_UPSERT] =
        "INSERT INTO resource_links(consumer_id, lti_resource_link_id, context_id, title, "
        "points_possible, created_at, updated_at) VALUES ($1, $2, $3, $4, $6, $5, $5) "
        "ON CONFLICT(consumer_id, lti_resource_link_id) DO UPDATE SET "
        "context_id = coalesce(excluded.context_id, resource_links.context_id), "
        "title = coalesce(excluded.title, resource_links.title), "
        "points_possible = coalesce(excluded.points_possible, resource_links.points_possible), "
        "updated_at = excluded.updated_at "
        "WHERE resource_links.context_id IS DISTINCT FROM "
        "coalesce(excluded.context_id, resource_links.context_id) "
        "OR resource_links.title IS DISTINCT FROM coalesce(excluded.title, resource_links.title) "
        "OR resource_links.points_possible IS DISTINCT FROM "
        "coalesce(excluded.points_possible, resource_links.points_possible) RETURNING id",
    [S_CONTEXT_FIND] = "SELECT id FROM contexts WHERE consumer_id = $1 AND lti_context_id = $2",
    [S_LINK_FIND] =
        "SELECT id FROM resource_links WHERE consumer_id = $1 AND lti_resource_link_id = $2",
    [S_ENROLL_INSERT] =
        "INSERT INTO enrollments(user_id, context_id, roles, ext_roles, role_flags, mode, "
        "first_launch_at, last_launch_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) "
        "ON CONFLICT(user_id, context_id) DO NOTHING",
    /*
     * Only what changed: a launch that finds the row as it was (the writer's
     * cache forgot it) dirties no page. last_launch_at moves hourly at most,
     * as the writer's cache refreshes it (store/launch.c, WCACHE_REFRESH).
     */
    [S_ENROLL_UPDATE] = "UPDATE enrollments SET roles = $3, ext_roles = $4, role_flags = $5, "
                        "mode = $6, last_launch_at = $7 WHERE user_id = $1 AND context_id = $2 "
                        "AND (roles IS DISTINCT FROM $3 OR ext_roles IS DISTINCT FROM $4 "
                        "OR role_flags IS DISTINCT FROM $5 OR mode IS DISTINCT FROM $6 "
                        "OR last_launch_at <= $7 - 3600)",
    [S_BINDING_UPSERT] =
        "INSERT INTO outcome_bindings(user_id, resource_link_id, context_id, service_url, "
        "sourcedid, sourcedid_fp, data_values_accepted, total_score_accepted, created_at, "
        "updated_at) VALUES ($1, $2, $3, $4, $5, $9, $6, $8, $7, $7) "
        "ON CONFLICT(user_id, resource_link_id) "
        "DO UPDATE SET context_id = excluded.context_id, service_url = excluded.service_url, "
        "sourcedid = excluded.sourcedid, sourcedid_fp = excluded.sourcedid_fp, "
        "data_values_accepted = excluded.data_values_accepted, "
        "total_score_accepted = excluded.total_score_accepted, updated_at = excluded.updated_at "
        /* as for enrollments: an unchanged binding is not written again */
        "WHERE outcome_bindings.context_id IS DISTINCT FROM excluded.context_id "
        "OR outcome_bindings.service_url IS DISTINCT FROM excluded.service_url "
        "OR outcome_bindings.data_values_accepted IS DISTINCT FROM excluded.data_values_accepted "
        "OR outcome_bindings.total_score_accepted IS DISTINCT FROM excluded.total_score_accepted "
        /* a newer sourcedid only once the stored one is an hour old (launch.c, MK_BINDING) */
        "OR (outcome_bindings.sourcedid IS DISTINCT FROM excluded.sourcedid "
        "AND outcome_bindings.updated_at <= excluded.updated_at - 3600)",
    [S_SESSION_INSERT] =
        "INSERT INTO sessions(secret_hash, consumer_id, user_id, context_id, resource_link_id, "
        "roles, role_flags, mode, return_url, document_target, locale, csrf_secret, created_at, "
        "expires_at, frame_origin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
        "$14, $15) RETURNING id",
    [S_SESSION_GET] =
        "SELECT s.consumer_id, s.user_id, coalesce(s.context_id, 0), s.role_flags, s.created_at, "
        "s.expires_at, s.csrf_secret, co.name, u.lti_user_id, " USER_NAME
        ", u.email, c.lti_context_id, c.title, c.label, s.roles, "
        "s.mode, s.return_url, s.document_target, s.locale, s.secret_hash, s.frame_origin, "
        "u.email_source, coalesce(c.badges_enabled, 0) "
        "FROM sessions s JOIN consumers co ON co.id = s.consumer_id "
        "JOIN users u ON u.id = s.user_id LEFT JOIN contexts c ON c.id = s.context_id "
        "WHERE s.id = $1 AND s.expires_at > $2 AND co.enabled = 1",
    /* a user who had no email gave one: what waited for it can be issued */
    [S_AWARD_RELEASE_EMAIL] = "UPDATE awards SET state = 'queued', next_attempt_at = $2, "
                              "updated_at = $2 WHERE user_id = $1 AND state = 'needs_email'",
    /* ---- e-mail addresses learners give (email.c) ---- */
    /* whether a user may give an address: none yet, badges waiting, links asked for lately */
    [S_EMAIL_USER_STATE] =
        "SELECT coalesce(u.email, ''), (SELECT count(*) FROM awards a WHERE a.user_id = u.id "
        "AND a.state = 'needs_email'), (SELECT count(*) FROM email_confirmations e "
        "WHERE e.user_id = u.id AND e.created_at > $2) FROM users u WHERE u.id = $1",
    /* a user's links long expired: nobody needs to be told about them any more */
    [S_EMAIL_CONFIRM_PURGE] =
        "DELETE FROM email_confirmations WHERE user_id = $1 AND expires_at < $2",
    [S_EMAIL_CONFIRM_INSERT] =
        "INSERT INTO email_confirmations(secret_hash, user_id, email, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
    [S_EMAIL_CONFIRM_GET] = "SELECT secret_hash, user_id, email, expires_at, "
                            "coalesce(used_at, 0) FROM email_confirmations WHERE id = $1",
    [S_EMAIL_CONFIRM_USE] =
        "UPDATE email_confirmations SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
    /*
     * a newer link, or a confirmed address, voids the user's other links: they
     * expire now (and say so), the rows stay for the hourly limit
     */
    [S_EMAIL_CONFIRM_SUPERSEDE] = "UPDATE email_confirmations SET expires_at = $3 "
                                  "WHERE user_id = $1 AND id != $2 AND used_at IS NULL "
                                  "AND expires_at > $3",
    /*
     * a link whose mail was not sent never worked: it expires when it was
     * made, and stays for the hourly limit (a relay that keeps failing is
     * not asked without end)
     */
    [S_EMAIL_CONFIRM_CANCEL] = "UPDATE email_confirmations SET expires_at = created_at "
                               "WHERE id = $1 AND used_at IS NULL AND expires_at > created_at",
    [S_EMAIL_PENDING] = "SELECT email, expires_at FROM email_confirmations WHERE user_id = $1 "
                        "AND used_at IS NULL AND expires_at > $2 ORDER BY id DESC LIMIT 1",
    [S_BADGE_HOLDERS] = "SELECT count(DISTINCT user_id) FROM awards WHERE badge_class_id = $1 "
                        "AND state = 'issued'",
    [S_USER_SHOW_NAME] = "SELECT show_name FROM users WHERE id = $1",
    [S_USER_SET_SHOW_NAME] = "UPDATE users SET show_name = $2, updated_at = $3 WHERE id = $1",
    /* an address the LMS sent stays the LMS's: a learner's never replaces it */
    [S_USER_SET_EMAIL] =
        "UPDATE users SET email = $2, email_source = $3, updated_at = $4 WHERE id = $1 "
        "AND (coalesce(email, '') = '' OR email_source IS NOT NULL)",
    /* rows an operator names before any launch did: created bare, never overwritten */
    [S_USER_ENSURE] = "INSERT INTO users(consumer_id, lti_user_id, created_at, updated_at) "
                      "VALUES ($1, $2, $3, $3) ON CONFLICT(consumer_id, lti_user_id) "
                      "DO UPDATE SET lti_user_id = excluded.lti_user_id RETURNING id",
    [S_CONTEXT_ENSURE] =
        "INSERT INTO contexts(consumer_id, lti_context_id, created_at, updated_at) "
        "VALUES ($1, $2, $3, $3) ON CONFLICT(consumer_id, lti_context_id) "
        "DO UPDATE SET lti_context_id = excluded.lti_context_id RETURNING id",
    [S_LINK_ENSURE] =
        "INSERT INTO resource_links(consumer_id, lti_resource_link_id, context_id, created_at, "
        "updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT(consumer_id, lti_resource_link_id) "
        "DO UPDATE SET context_id = coalesce(resource_links.context_id, excluded.context_id) "
        "RETURNING id",
    [S_CONTEXT_SET_ENABLED] =
        "UPDATE contexts SET badges_enabled = $2, updated_at = $3 WHERE id = $1",
    [S_CONTEXT_SET_PASS] = "UPDATE contexts SET pass_mark = $2, completion_link = $3, "
                           "updated_at = $4 WHERE id = $1",
    [S_GROUP_UPSERT] = "INSERT INTO context_groups(consumer_id, name, created_at) "
                       "VALUES ($1, $2, $3) ON CONFLICT(consumer_id, name) "
                       "DO UPDATE SET name = excluded.name RETURNING id",
    [S_GROUP_FIND] = "SELECT id FROM context_groups WHERE consumer_id = $1 AND name = $2",
    [S_GROUP_MEMBER_ADD] = "INSERT INTO context_group_members(group_id, context_id) "
                           "VALUES ($1, $2) ON CONFLICT DO NOTHING",
    [S_SLUG_TAKEN] = "SELECT 1 FROM badge_classes WHERE slug = $1",
    [S_BADGE_INSERT] =
        "INSERT INTO badge_classes(slug, consumer_id, context_id, mode, name, description, "
        "image, image_type, criteria_url, criteria_narrative, issuing_component, tags, "
        "alignments, expires_days, backend, backend_id, passback_score, revoke_on_withdrawn, "
        "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
        "$14, coalesce($15, (SELECT backend FROM consumers WHERE id = $2), $20, 'hosted'), $16, "
        "$18, $19, $17, $17) RETURNING id",
    [S_BADGE_SET_OUTCOMES] =
        "UPDATE badge_classes SET passback_score = CASE $2::int WHEN -1 THEN passback_score "
        "WHEN 0 THEN NULL ELSE $3::float8 END, revoke_on_withdrawn = CASE $4::int WHEN -1 THEN "
        "revoke_on_withdrawn ELSE $4::int END, updated_at = $5 WHERE slug = $1",
    /* $20: keep the stored image when 0 (an edit without a new upload) */
    [S_BADGE_UPDATE] =
        "UPDATE badge_classes SET mode = $4, name = $5, description = $6, "
        "image = CASE $20::int WHEN 0 THEN image ELSE $7::bytea END, "
        "image_type = CASE $20::int WHEN 0 THEN image_type ELSE $8::text END, criteria_url = $9, "
        "criteria_narrative = $10, issuing_component = $11, tags = $12, alignments = $13, "
        "expires_days = $14, passback_score = $18, revoke_on_withdrawn = $19, updated_at = $17 "
        "WHERE id = $1 AND consumer_id = $2 AND context_id = $3 AND " UNUSED(15) " AND " UNUSED(16),
    /* numbered as S_RULE_INSERT (bind_rule); $2 and $4, the consumer and course, do not change */
    [S_RULE_UPDATE] = "UPDATE rules SET kind = $3, mode_key = $5, threshold = $6, "
                      "resource_link = $7, group_id = $8, count = $9 WHERE badge_class_id = $1 "
                      "AND " UNUSED(2) " AND " UNUSED(4),
    /* only a BadgeClass never awarded: an award's record needs its BadgeClass */
    [S_BADGE_DELETE] = "DELETE FROM badge_classes WHERE id = $1 AND context_id = $2 "
                       "AND NOT EXISTS (SELECT 1 FROM awards a WHERE a.badge_class_id = $1)",
    [S_BADGE_SET_ARCHIVED] = "UPDATE badge_classes SET archived_at = $3, updated_at = $4 "
                             "WHERE id = $1 AND context_id = $2",
    [S_BADGE_SET_IMAGE] = "UPDATE badge_classes SET image = $2, image_type = $3, updated_at = $4 "
                          "WHERE slug = $1",
    [S_BADGE_AWARDS_ANY] = "SELECT count(*) FROM awards WHERE badge_class_id = $1",
    /*
     * Who a rule would award now, from the facts stored (the dry run, and
     * the awards made when a rule is saved). Every one: $1 consumer, $2
     * course (0: any of the consumer's), $3 the BadgeClass (0: a new one;
     * its holders are left out), $9 at most this many; the columns: user id,
     * LMS user id, name, score or NULL, resource link id or NULL, its title
     * or LMS id, courses completed or NULL.
     */
    [S_CAND_ENROLLMENT] =
        "SELECT u.id, u.lti_user_id, " CAND_NAME ", NULL, NULL, NULL, NULL FROM enrollments e "
        "JOIN users u ON u.id = e.user_id JOIN contexts c ON c.id = e.context_id "
        "WHERE c.consumer_id = $1 AND ($2::bigint = 0 OR e.context_id = $2) "
        "AND (e.role_flags & $10) != 0 AND (e.role_flags & $11) = 0 " CAND_NOT_HELD
        "AND " UNUSED(4) " AND " UNUSED(5) " AND " UNUSED(6) " AND " UNUSED(7) " AND " UNUSED(
            8) " GROUP BY u.id ORDER BY 3, u.id LIMIT nullif(greatest($9::bigint, -1), -1)",
    /* the best grade per learner: its row (sqlite takes the bare columns from max()'s) */
    [S_CAND_SCORE] =
        "SELECT id, lti_user_id, name, score, link_id, link, NULL FROM ("
        "SELECT DISTINCT ON (u.id) u.id, u.lti_user_id, " CAND_NAME " AS name, g.score, "
        "rl.id AS link_id, coalesce(nullif(rl.title, ''), rl.lti_resource_link_id) AS link "
        "FROM grades g JOIN users u ON u.id = g.user_id JOIN resource_links rl "
        "ON rl.id = g.resource_link_id WHERE u.consumer_id = $1 "
        "AND ($2::bigint = 0 OR g.context_id = $2) AND g.score + 1e-9 >= $4 "
        "AND ($5::text IS NULL OR rl.lti_resource_link_id = $5) " CAND_NOT_HELD
        "AND " UNUSED(6) " AND " UNUSED(7) " AND " UNUSED(
            8) " ORDER BY u.id, g.score DESC) best ORDER BY 3, 1 LIMIT nullif(greatest($9::bigint, -1), -1)",
    /* rule 1: a mode's completion goes to its own BadgeClass, else to the course's mode-less one */
    [S_CAND_COMPLETION] =
        "SELECT u.id, u.lti_user_id, " CAND_NAME ", cp.score, rl.id, "
        "coalesce(nullif(rl.title, ''), rl.lti_resource_link_id), NULL FROM completions cp "
        "JOIN users u ON u.id = cp.user_id LEFT JOIN resource_links rl "
        "ON rl.id = cp.resource_link_id WHERE cp.context_id = $2 AND u.consumer_id = $1 "
        "AND (coalesce(cp.mode, '') = $8 OR ($8 = '' AND NOT EXISTS (SELECT 1 FROM rules r "
        "WHERE r.kind = 'completion' AND r.context_id = $2 AND r.mode_key = cp.mode "
        "AND r.badge_class_id != $3))) "
        /* rule 1: one completion, one badge; who got the course's mode-less one keeps that */
        "AND NOT EXISTS (SELECT 1 FROM awards a2 JOIN rules r2 ON r2.badge_class_id = "
        "a2.badge_class_id WHERE a2.user_id = u.id AND r2.kind = 'completion' "
        "AND r2.context_id = $2) " CAND_NOT_HELD "AND " UNUSED(4) " AND " UNUSED(5) " AND " UNUSED(
            6) " AND " UNUSED(7) " ORDER BY 3, u.id LIMIT nullif(greatest($9::bigint, -1), -1)",
    [S_CAND_GROUP] = "SELECT u.id, u.lti_user_id, " CAND_NAME ", NULL, NULL, NULL, count(*) "
                     "FROM completions cp JOIN users u ON u.id = cp.user_id "
                     "JOIN context_group_members m ON m.context_id = cp.context_id "
                     "JOIN context_groups g ON g.id = m.group_id WHERE u.consumer_id = $1 "
                     "AND g.consumer_id = $1 AND g.name = $6 " CAND_IN_COURSE CAND_NOT_HELD
                     "AND " UNUSED(4) " AND " UNUSED(5) " AND " UNUSED(7) " AND " UNUSED(8)
    /* g is one group (UNIQUE (consumer_id, name)): grouped by, for its id below */
    " GROUP BY u.id, g.id HAVING count(*) = (SELECT count(*) FROM context_group_members m2 "
    "WHERE m2.group_id = g.id) ORDER BY 3, u.id LIMIT nullif(greatest($9::bigint, -1), -1)",
    [S_CAND_COUNT] =
        "SELECT u.id, u.lti_user_id, " CAND_NAME ", NULL, NULL, NULL, count(*) "
        "FROM completions cp JOIN users u ON u.id = cp.user_id JOIN contexts c "
        "ON c.id = cp.context_id WHERE c.consumer_id = $1 AND u.consumer_id = $1 " CAND_IN_COURSE
            CAND_NOT_HELD
        "AND " UNUSED(4) " AND " UNUSED(5) " AND " UNUSED(6) " AND " UNUSED(
            8) " GROUP BY u.id HAVING count(*) >= $7 ORDER BY 3, u.id LIMIT nullif(greatest($9::bigint, -1), -1)",
    [S_RULE_INSERT] = "INSERT INTO rules(badge_class_id, consumer_id, kind, context_id, mode_key, "
                      "threshold, resource_link, group_id, count) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [S_BADGE_GET] = BADGE_SELECT("b.image", ISSUED_COUNT) " WHERE b.slug = $1",
    [S_BADGE_GET_ID] = BADGE_SELECT("b.image", "0 ") " WHERE b.id = $1",
    [S_BADGE_LIST] = BADGE_SELECT("NULL", ISSUED_COUNT) " ORDER BY b.id",
    [S_BADGE_LIST_COURSE] = BADGE_SELECT("NULL", "0 ") " WHERE b.context_id = $1 "
                                                       "AND b.archived_at IS NULL ORDER BY b.id",
    /* scoped as S_AWARD_DUE_BACKENDS; locked until the claim's commit, other claims skip them */
    [S_BADGE_SYNC_DUE] =
        "SELECT b.id, b.sync_gen, b.sync_attempts FROM badge_classes b WHERE b.sync_due_at IS NOT "
        "NULL AND b.sync_due_at <= $1 AND ($3::text IS NULL OR b.backend = $3) AND "
        "($4::text IS NULL OR b.backend NOT IN (SELECT jsonb_array_elements_text($4::jsonb))) "
        "ORDER BY b.sync_due_at LIMIT nullif(greatest($2::bigint, -1), -1) FOR UPDATE SKIP LOCKED",
    /* only while no newer edit came (sync_gen): that one is still to be sent */
    [S_BADGE_SYNC_DONE] =
        "UPDATE badge_classes SET sync_due_at = $3, sync_error = $4, "
        "sync_attempts = CASE WHEN $4::text IS NULL THEN 0 ELSE sync_attempts + 1 END "
        "WHERE id = $1 AND sync_gen = $2",
    /*
     * claimed: due again after the lease, unless a newer edit (sync_gen) makes it due at once
     * (PostgreSQL's only: sqlite's one worker per scope reads without a claim)
     */
    [S_BADGE_SYNC_LEASE] =
        "UPDATE badge_classes SET sync_due_at = $2 WHERE id = $1 AND sync_gen = $3",
    [S_BADGE_SET_BACKEND_ID] = "UPDATE badge_classes SET backend_id = $2, updated_at = $3 "
                               "WHERE id = $1 AND backend_id IS NULL",
    [S_USER_FIND] = "SELECT id FROM users WHERE consumer_id = $1 AND lti_user_id = $2",
    /* no pass mark set: 0.5, Open edX's default passing grade */
    [S_CONTEXT_INFO] = "SELECT id, consumer_id, lti_context_id, title, badges_enabled, "
                       "coalesce(pass_mark, 0.5), completion_link FROM contexts WHERE id = $1",
    [S_LINK_LTI_ID] = "SELECT lti_resource_link_id FROM resource_links WHERE id = $1",
    [S_ENROLL_MODE] = "SELECT mode FROM enrollments WHERE user_id = $1 AND context_id = $2",
    [S_ENROLL_ROLES] = "SELECT role_flags FROM enrollments WHERE user_id = $1 AND context_id = $2",
    [S_GRADE_PUT] = "INSERT INTO grades(user_id, resource_link_id, context_id, score, source, "
                    "recorded_at) VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT(user_id, resource_link_id) DO UPDATE SET "
                    "context_id = excluded.context_id, score = excluded.score, "
                    "source = excluded.source, recorded_at = excluded.recorded_at",
    [S_COMPLETION_PUT] = "INSERT INTO completions(user_id, context_id, mode, resource_link_id, "
                         "score, completed_at) VALUES ($1, $2, $3, $4, $5, $6) "
                         "ON CONFLICT(user_id, context_id) DO NOTHING",
    [S_COMPLETED_COUNT] = "SELECT count(*) FROM completions cp JOIN contexts c "
                          "ON c.id = cp.context_id WHERE cp.user_id = $2 AND c.consumer_id = $1",
    [S_GROUP_COMPLETED] = "SELECT count(*), count(cp.user_id) FROM context_group_members m "
                          "LEFT JOIN completions cp ON cp.context_id = m.context_id "
                          "AND cp.user_id = $2 WHERE m.group_id = $1",
    /*
     * Archived BadgeClasses award nothing more. The kind is compared as
     * CAST($2 AS TEXT): a bare $2 matches the shape of the partial index
     * rules_one_completion's WHERE (kind = 'completion'), which makes SQLite
     * plan by the value bound and prepare the statement again on every run
     * (statements_prepared_once tests it). Both still search rules_kind.
     */
    [S_RULES_FOR] =
        "SELECT r.badge_class_id, coalesce(r.context_id, 0), r.threshold, "
        "r.resource_link, coalesce(r.group_id, 0), coalesce(r.count, 0) FROM rules r "
        "JOIN badge_classes b ON b.id = r.badge_class_id "
        "WHERE r.consumer_id = $1 AND r.kind = CAST($2 AS TEXT) AND b.archived_at IS NULL "
        "AND (r.context_id IS NULL OR r.context_id = $3) ORDER BY r.badge_class_id",
    /*
     * Course groups and completion counts, judged after any completion: the
     * consumer's course-less rules, and those of the courses with badges on
     * where the user is enrolled as a learner (not only the course just
     * completed: a group badge of course X is earned when Y completes it).
     */
    [S_RULES_PROGRESS] =
        "SELECT r.badge_class_id, coalesce(r.context_id, 0), r.threshold, r.resource_link, "
        "coalesce(r.group_id, 0), coalesce(r.count, 0) FROM rules r JOIN badge_classes b "
        "ON b.id = r.badge_class_id LEFT JOIN contexts c ON c.id = r.context_id "
        "WHERE r.consumer_id = $1 AND r.kind = CAST($2 AS TEXT) AND b.archived_at IS NULL "
        "AND (r.context_id IS NULL OR (c.badges_enabled = 1 AND EXISTS (SELECT 1 FROM "
        "enrollments e WHERE e.user_id = $3 AND e.context_id = r.context_id "
        "AND (e.role_flags & $4) != 0 AND (e.role_flags & $5) = 0))) ORDER BY r.badge_class_id",
    /* -1 for an archived one: the course's completion badge for that mode is retired */
    [S_COMPLETION_BADGE] = "SELECT CASE WHEN b.archived_at IS NULL THEN r.badge_class_id "
                           "ELSE -1 END FROM rules r JOIN badge_classes b "
                           "ON b.id = r.badge_class_id WHERE r.kind = 'completion' "
                           "AND r.context_id = $1 AND r.mode_key = $2",
    /* the recipient is known once an email is: until then the award waits for one */
    [S_AWARD_INSERT] =
        "INSERT INTO awards(uid, badge_class_id, user_id, context_id, resource_link_id, reason, "
        "narrative, salt, state, next_attempt_at, created_at, updated_at, backend) "
        "SELECT $1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN coalesce(u.email, '') = '' "
        "THEN 'needs_email' ELSE 'queued' END, $9, $9, $9, b.backend FROM users u "
        "JOIN badge_classes b ON b.id = $2 WHERE u.id = $3 "
        "ON CONFLICT(badge_class_id, user_id) DO NOTHING RETURNING id",
    [S_AWARD_LIST] = AWARD_SELECT
    " WHERE ($1::text IS NULL OR a.state = $1) "
    "AND ($2::text IS NULL OR b.slug = $2) "
    "AND ($3::bigint = 0 OR a.user_id = $3) "
    "AND ($4::text IS NULL OR b.backend = $4) ORDER BY a.id LIMIT nullif(greatest($5::bigint, -1), -1)",
    [S_AWARD_GET] = AWARD_SELECT " WHERE a.id = $1",
    [S_AWARD_GET_UID] = AWARD_SELECT " WHERE a.uid = $1",
    /* ---- pages (pages.c) ---- */
    [S_PAGE_CONTEXT] =
        "SELECT c.id, c.consumer_id, c.lti_context_id, c.title, c.badges_enabled, "
        "coalesce(c.pass_mark, 0.5), c.completion_link, l.title, "
        "coalesce(x.completed_at, 0), x.score, coalesce(l.points_possible, 0) FROM contexts c "
        "LEFT JOIN resource_links l ON l.consumer_id = c.consumer_id "
        "AND l.lti_resource_link_id = c.completion_link LEFT JOIN completions x "
        "ON x.context_id = c.id AND x.user_id = $2 WHERE c.id = $1",
    /* the course's live BadgeClasses, the consumer's course-less ones, and any the user holds */
    [S_PAGE_BADGES] = BADGE_SELECT("NULL", "0 ") " WHERE b.consumer_id = $1 AND ((b.archived_at "
                                                 "IS NULL AND (b.context_id = $2 OR b.context_id "
                                                 "IS NULL)) OR b.id IN (SELECT badge_class_id "
                                                 "FROM awards WHERE user_id = $3)) ORDER BY b.id",
    [S_PAGE_AWARDS] = AWARD_SELECT " WHERE a.user_id = $1 ORDER BY coalesce(a.issued_at, "
                                   "a.created_at) DESC, a.id DESC",
    /* every link of the course, with the user's grade and grade column where there are */
    [S_PAGE_GRADES] =
        "SELECT l.lti_resource_link_id, l.title, g.score, g.source, coalesce(g.recorded_at, 0), "
        "(ob.id IS NOT NULL)::int, coalesce(ob.last_read_at, 0), ob.last_read_error, "
        "coalesce(l.points_possible, 0) "
        "FROM resource_links l LEFT JOIN grades g ON g.resource_link_id = l.id AND g.user_id = $1 "
        "LEFT JOIN outcome_bindings ob ON ob.resource_link_id = l.id AND ob.user_id = $1 "
        "WHERE l.context_id = $2 ORDER BY l.id",
    [S_PAGE_COMPLETED] = "SELECT x.context_id, c.lti_context_id, c.title, x.completed_at "
                         "FROM completions x JOIN contexts c ON c.id = x.context_id "
                         "WHERE x.user_id = $1 ORDER BY x.completed_at, x.context_id",
    [S_PAGE_GROUPS] =
        "SELECT m.group_id, c.lti_context_id, c.title, EXISTS (SELECT 1 FROM completions x "
        "WHERE x.user_id = $2 AND x.context_id = m.context_id)::int FROM context_group_members m "
        "JOIN context_groups g ON g.id = m.group_id JOIN contexts c ON c.id = m.context_id "
        "WHERE g.consumer_id = $1 ORDER BY m.group_id, c.title, c.id",
    [S_ADMIN_LINKS] = "SELECT lti_resource_link_id, title, coalesce(points_possible, 0) "
                      "FROM resource_links "
                      "WHERE context_id = $1 ORDER BY id",
    /* the course's BadgeClasses and the consumer's course-less ones, live first */
    [S_ADMIN_BADGES] = BADGE_SELECT("NULL", ISSUED_COUNT) " WHERE b.context_id = $1 OR "
                                                          "(b.context_id IS NULL AND "
                                                          "b.consumer_id = $2) ORDER BY "
                                                          "b.archived_at IS NOT NULL, b.id",
    [S_ADMIN_LINK_IN_COURSE] = "SELECT 1 FROM resource_links WHERE context_id = $1 "
                               "AND lti_resource_link_id = $2",
    /*
     * A course's awards: of its BadgeClasses, and of the consumer's
     * course-less ones when awarded in it. $3 state ('queued' takes
     * 'issuing' too), $4 slug, $6 a part of the learner's name or LMS id.
     * $7 the column (enum store_award_sort) and $8 descending: one ORDER BY
     * term per column and direction, NULL (all equal) unless chosen; then
     * the newest first. Names in the "C" collation, lower() folding ASCII
     * only, as sqlite's NOCASE; never issued first up and last down, as
     * sqlite orders NULL.
     */
    [S_ADMIN_AWARDS] =
        AWARD_SELECT " WHERE a.badge_class_id IN (SELECT id FROM badge_classes "
                     "WHERE context_id = $1 OR (context_id IS NULL AND "
                     "consumer_id = $2)) AND (b.context_id IS NOT NULL OR "
                     "a.context_id = $1) AND ($3::text IS NULL OR a.state = $3 OR "
                     "($3 = 'queued' AND a.state = 'issuing')) "
                     "AND ($4::text IS NULL OR b.slug = $4) AND ($6::text IS NULL OR "
                     "strpos(lower(coalesce(" USER_NAME ", '') COLLATE \"C\"), "
                     "lower($6 COLLATE \"C\")) > 0 OR "
                     "strpos(lower(u.lti_user_id COLLATE \"C\"), lower($6 COLLATE \"C\")) > 0) "
                     "ORDER BY "
                     "CASE WHEN $7::bigint = 1 AND $8::bigint = 0 THEN lower(coalesce(" USER_NAME
                     ", u.lti_user_id) COLLATE \"C\") END, "
                     "CASE WHEN $7 = 1 AND $8 = 1 THEN lower(coalesce(" USER_NAME
                     ", u.lti_user_id) COLLATE \"C\") END DESC, "
                     "CASE WHEN $7 = 2 AND $8 = 0 THEN lower(b.name COLLATE \"C\") END, "
                     "CASE WHEN $7 = 2 AND $8 = 1 THEN lower(b.name COLLATE \"C\") END DESC, "
                     "CASE WHEN $7 = 3 AND $8 = 0 THEN " STATE_RANK " END, "
                     "CASE WHEN $7 = 3 AND $8 = 1 THEN " STATE_RANK " END DESC, "
                     "CASE WHEN $7 = 4 AND $8 = 0 THEN a.issued_at END NULLS FIRST, "
                     "CASE WHEN $7 = 4 AND $8 = 1 THEN a.issued_at END DESC NULLS LAST, "
                     "a.id DESC LIMIT nullif(greatest($5::bigint, -1), -1)",
    /* the course's enrolled users without the roles $2 (staff), by name */
    [S_ADMIN_LEARNERS] =
        "SELECT u.id, u.lti_user_id, " USER_NAME
        " AS name, u.email, e.role_flags FROM enrollments e "
        "JOIN users u ON u.id = e.user_id WHERE e.context_id = $1 AND (e.role_flags & $2) = 0 "
        "ORDER BY lower(" USER_NAME "), u.id LIMIT nullif(greatest($3::bigint, -1), -1)",
    [S_ADMIN_COUNTS] =
        "SELECT count(*) FILTER (WHERE state IN ('queued', 'issuing')), "
        "count(*) FILTER (WHERE state = 'needs_email'), count(*) FILTER (WHERE state = 'failed'), "
        "count(*) FILTER (WHERE state = 'issued'), count(*) FILTER (WHERE state = 'revoked'), "
        "coalesce(max(issued_at), 0) FROM awards WHERE context_id = $1 OR badge_class_id IN "
        "(SELECT id FROM badge_classes WHERE context_id = $1)",
    /*
     * One backend's due awards, through awards_backend_due (migration 14): a
     * worker reads only its own, never past another backend's backlog. Locked
     * until the claim's commit: another instance's claim skips them, and
     * after the commit finds them leased (next_attempt_at moved on).
     */
    [S_AWARD_DUE] =
        "SELECT id, next_attempt_at FROM awards WHERE backend = $3 "
        "AND (state IN ('queued', 'issuing') OR revoke_synced = 0) "
        /* earned in the same second: in the order earned (the index ends in id) */
        "AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT nullif(greatest($2::bigint, -1), -1) "
        "FOR UPDATE SKIP LOCKED",
    /* whether one of S_AWARD_DUE's awards is due, locking nothing (a read before a claim) */
    [S_AWARD_ANY_DUE] = "SELECT id FROM awards WHERE backend = $1 "
                        "AND (state IN ('queued', 'issuing') OR revoke_synced = 0) "
                        "AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT 1",
    /* the backends of a claim scope ($1 one, or any but those in the JSON array $2) */
    [S_AWARD_DUE_BACKENDS] = "SELECT DISTINCT backend FROM badge_classes "
                             "WHERE ($1::text IS NULL OR backend = $1) AND ($2::text IS NULL OR "
                             "backend NOT IN (SELECT jsonb_array_elements_text($2::jsonb)))",
    [S_AWARD_CLAIM] =
        "UPDATE awards SET state = CASE WHEN state = 'revoked' THEN state ELSE 'issuing' END, "
        "attempts = attempts + (state != 'revoked')::int, next_attempt_at = $2, updated_at = $3, "
        "recipient_email = coalesce(recipient_email, "
        "(SELECT email FROM users u WHERE u.id = awards.user_id)) WHERE id = $1",
    /*
     * Revoked while the platform was issuing it: keep the assertion id so the
     * worker revokes it there too.
     */
    [S_AWARD_ISSUED] =
        "UPDATE awards SET assertion_id = $2, assertion_url = $3, issued_at = $4, "
        "expires_at = nullif($5::bigint, 0), last_error = $7, updated_at = $6, "
        "revoke_synced = CASE WHEN state = 'revoked' THEN 0 ELSE revoke_synced END, "
        "state = CASE WHEN state = 'revoked' THEN state ELSE 'issued' END "
        "WHERE id = $1 AND (state = 'issuing' OR (state = 'revoked' AND assertion_id IS NULL))",
    [S_AWARD_RETRY_LATER] = "UPDATE awards SET state = 'queued', next_attempt_at = $2, "
                            "last_error = $3, updated_at = $4 WHERE id = $1 AND state = 'issuing'",
    [S_AWARD_FAILED] = "UPDATE awards SET state = 'failed', last_error = $2, updated_at = $3 "
                       "WHERE id = $1 AND state = 'issuing'",
    [S_AWARD_REVOKE_SYNCED] = "UPDATE awards SET revoke_synced = 1, last_error = NULL, "
                              "updated_at = $2 WHERE id = $1 AND state = 'revoked'",
    [S_AWARD_REVOKE_RETRY] = "UPDATE awards SET next_attempt_at = $2, last_error = $3, "
                             "updated_at = $4 WHERE id = $1 AND state = 'revoked'",
    [S_AWARD_REQUEUE] = "UPDATE awards SET state = 'queued', next_attempt_at = $2, "
                        "updated_at = $2 WHERE id = $1 AND state = 'failed'",
    [S_AWARD_REVOKE] =
        "UPDATE awards SET state = 'revoked', revoked_at = $2, revoke_reason = $3, "
        "revoke_synced = (assertion_id IS NULL AND attempts = 0)::int, next_attempt_at = $2, "
        "updated_at = $2 "
        "WHERE id = $1 AND state != 'revoked'",
    /* the same course condition as S_ADMIN_AWARDS */
    [S_AWARD_IN_COURSE] =
        "SELECT 1 FROM awards a JOIN badge_classes b ON b.id = a.badge_class_id WHERE a.id = $1 "
        "AND (b.context_id = $2 OR (b.context_id IS NULL AND b.consumer_id = $3 AND "
        "a.context_id = $2))",
    [S_AWARD_RECLAIM] = "UPDATE awards SET next_attempt_at = $1 WHERE state = 'issuing' "
                        "AND next_attempt_at > $1",
    [S_AWARD_RELEASE] =
        "UPDATE awards SET attempts = attempts - (state = 'issuing')::int, "
        "state = CASE WHEN state = 'issuing' AND attempts = 1 THEN 'queued' ELSE state END, "
        "next_attempt_at = $2 WHERE id = $1 AND (state = 'issuing' OR revoke_synced = 0)",
    [S_OUTBOX_COUNTS] = "SELECT state, count(*) FROM awards GROUP BY state",
    [S_OUTBOX_NEXT_DUE] = "SELECT min(next_attempt_at) FROM awards WHERE "
                          "(state IN ('queued', 'issuing') OR revoke_synced = 0)",
    /* ---- metrics (awards.c): read at each scrape, never on a request's path ---- */
    [S_METRICS_AWARDS] = "SELECT a.state, b.backend, count(*) FROM awards a JOIN badge_classes b "
                         "ON b.id = a.badge_class_id GROUP BY a.state, b.backend",
    [S_METRICS_PASSBACKS] = "SELECT state, count(*) FROM passbacks GROUP BY state",
    /* the same conditions as the partial indexes awards_due and passbacks_due */
    [S_METRICS_AWARD_DUE] = "SELECT min(next_attempt_at) FROM awards WHERE "
                            "(state IN ('queued', 'issuing') OR revoke_synced = 0) "
                            "AND next_attempt_at <= $1",
    [S_METRICS_PASSBACK_DUE] = "SELECT min(next_attempt_at) FROM passbacks WHERE "
                               "state IN ('queued', 'sending') AND next_attempt_at <= $1",
    /* ---- Basic Outcomes (outcomes.c) ---- */
    [S_CONSUMER_SET_HOSTS] = "UPDATE consumers SET outcome_hosts = $2 WHERE key = $1",
    [S_TOOL_SOURCEDID_FIND] =
        "SELECT t.user_id, t.context_id, t.resource_link_id, u.lti_user_id, c.lti_context_id, "
        "l.lti_resource_link_id FROM tool_sourcedids t JOIN users u ON u.id = t.user_id "
        "JOIN contexts c ON c.id = t.context_id JOIN resource_links l ON l.id = t.resource_link_id "
        "WHERE t.sourcedid = $1 AND t.consumer_id = $2",
    [S_TOOL_SOURCEDID_GET] =
        "SELECT sourcedid FROM tool_sourcedids WHERE user_id = $1 AND resource_link_id = $2",
    [S_TOOL_SOURCEDID_INSERT] =
        "INSERT INTO tool_sourcedids(sourcedid, consumer_id, user_id, context_id, "
        "resource_link_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    /* a consumer's sourcedids are unique in practice; the newest binding wins if not */
    [S_BINDING_BY_SOURCEDID] =
        "SELECT ob.user_id, coalesce(ob.context_id, 0), ob.resource_link_id, u.lti_user_id, "
        "c.lti_context_id, l.lti_resource_link_id FROM outcome_bindings ob "
        "JOIN users u ON u.id = ob.user_id LEFT JOIN contexts c ON c.id = ob.context_id "
        "JOIN resource_links l ON l.id = ob.resource_link_id "
        "WHERE ob.sourcedid_fp = $3 AND ob.sourcedid = $1 AND u.consumer_id = $2 "
        "ORDER BY ob.updated_at DESC LIMIT 1",
    [S_GRADE_GET] = "SELECT score FROM grades WHERE user_id = $1 AND resource_link_id = $2",
    [S_GRADE_DELETE] = "DELETE FROM grades WHERE user_id = $1 AND resource_link_id = $2",
    [S_EARNED_ON_LINK] =
        "SELECT a.id, r.kind, a.reason, coalesce(r.threshold, 0), coalesce(c.pass_mark, 0.5), "
        "bc.revoke_on_withdrawn FROM awards a JOIN badge_classes bc ON bc.id = a.badge_class_id "
        "JOIN rules r ON r.badge_class_id = bc.id LEFT JOIN contexts c ON c.id = a.context_id "
        "WHERE a.user_id = $1 AND a.resource_link_id = $2 AND a.state != 'revoked' "
        "AND a.reason IN ('score', 'completion')",
    [S_BINDINGS_TO_READ] =
        "SELECT ob.id, u.consumer_id, ob.user_id, ob.context_id, ob.resource_link_id, "
        "ob.service_url, ob.sourcedid, co.key, co.secret, co.outcome_hosts, u.lti_user_id, "
        "c.lti_context_id, l.lti_resource_link_id, ob.last_score FROM outcome_bindings ob "
        "JOIN users u ON u.id = ob.user_id JOIN consumers co ON co.id = u.consumer_id "
        "JOIN contexts c ON c.id = ob.context_id "
        "JOIN resource_links l ON l.id = ob.resource_link_id "
        "WHERE ob.last_read_at <= $3 AND ($1::bigint = 0 OR ob.user_id = $1) "
        "AND ($2::bigint = 0 OR ob.context_id = $2) AND co.enabled = 1 AND " NEEDS_GRADES(
            c) " ORDER BY ob.last_read_at LIMIT nullif(greatest($4::bigint, -1), -1)",
    [S_CONTEXT_NEEDS_GRADES] = "SELECT " NEEDS_GRADES(c) "::int FROM contexts c WHERE c.id = $1",
    [S_BINDING_READ_DONE] =
        "UPDATE outcome_bindings SET last_read_at = $2, last_read_error = $5, "
        "last_score = CASE $3::int WHEN 1 THEN $4::float8 WHEN 2 THEN NULL ELSE last_score END, "
        "last_score_at = CASE WHEN $3::int IN (1, 2) THEN $2::bigint ELSE last_score_at END "
        "WHERE id = $1",
    /*
     * An issued award owes each of the learner's bindings in its course a
     * replaceResult: the BadgeClass's score, but never over a grade the LMS
     * already holds there (it is sent again with the badge's URL when the
     * LMS takes one, else nothing is sent). The learner's bindings are found
     * by user (UNIQUE (user_id, resource_link_id)); sqlite's "+" (keeping
     * it from scanning the whole course's) is not PostgreSQL's to need.
     */
    [S_PB_ENQUEUE] =
        "INSERT INTO passbacks(award_id, binding_id, score, data_url, state, next_attempt_at, "
        "created_at, updated_at) SELECT a.id, ob.id, coalesce(ob.last_score, bc.passback_score), "
        "CASE WHEN strpos(',' || replace(lower(coalesce(ob.data_values_accepted, '')), ' ', '') "
        "|| ',', ',url,') > 0 THEN a.assertion_url END, 'queued', $2::bigint, $2::bigint, "
        "$2::bigint FROM awards a "
        "JOIN badge_classes bc ON bc.id = a.badge_class_id JOIN outcome_bindings ob "
        "ON ob.user_id = a.user_id AND ob.context_id = a.context_id WHERE a.id = $1 "
        "AND a.state = 'issued' AND bc.passback_score IS NOT NULL AND (ob.last_score IS NULL OR "
        "strpos(',' || replace(lower(coalesce(ob.data_values_accepted, '')), ' ', '') || ',', "
        "',url,') > 0) ON CONFLICT(award_id, binding_id) DO NOTHING",
    /* locked until the claim's commit, as S_AWARD_DUE's */
    [S_PB_DUE] =
        "SELECT id FROM passbacks WHERE state IN ('queued', 'sending') "
        "AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT nullif(greatest($2::bigint, -1), -1) "
        "FOR UPDATE SKIP LOCKED",
    [S_PB_CLAIM] = "UPDATE passbacks SET state = 'sending', attempts = attempts + 1, "
                   "next_attempt_at = $2, last_attempt_at = $3, updated_at = $3 WHERE id = $1",
    [S_PB_GET] =
        "SELECT p.id, p.award_id, p.binding_id, u.consumer_id, p.attempts, p.score, p.data_url, "
        "ob.service_url, ob.sourcedid, co.key, co.secret, co.outcome_hosts, co.enabled "
        "FROM passbacks p JOIN outcome_bindings ob ON ob.id = p.binding_id "
        "JOIN users u ON u.id = ob.user_id JOIN consumers co ON co.id = u.consumer_id "
        "WHERE p.id = $1",
    [S_PB_DONE] = "UPDATE passbacks SET state = 'done', answer = $3, updated_at = $4 "
                  "WHERE id = $1 AND state = 'sending' AND " UNUSED(2),
    [S_PB_RETRY] = "UPDATE passbacks SET state = 'queued', next_attempt_at = $2, answer = $3, "
                   "updated_at = $4 WHERE id = $1 AND state = 'sending'",
    [S_PB_FAILED] = "UPDATE passbacks SET state = 'failed', answer = $3, updated_at = $4 "
                    "WHERE id = $1 AND state = 'sending' AND " UNUSED(2),
    [S_PB_REQUEUE] = "UPDATE passbacks SET state = 'queued', next_attempt_at = $2, "
                     "updated_at = $2 WHERE award_id = $1 AND state = 'failed'",
    [S_PB_NEXT_DUE] = "SELECT min(next_attempt_at) FROM passbacks "
                      "WHERE state IN ('queued', 'sending')",
    /*
     * store_begin (store_int.h): a write transaction on either engine; here
     * it takes no lock up front, the statements lock their rows
     */
    [S_BEGIN_IMMEDIATE] = "BEGIN",
    /* store_begin_read: one snapshot for a page's reads */
    [S_BEGIN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT launch",
    [S_RELEASE] = "RELEASE launch",
    [S_ROLLBACK_TO] = "ROLLBACK TO launch",
    [S_COUNT_CONSUMERS] = "SELECT count(*) FROM consumers",
    [S_COUNT_NONCES] = "SELECT count(*) FROM nonces",
    [S_COUNT_USERS] = "SELECT count(*) FROM users",
    [S_COUNT_CONTEXTS] = "SELECT count(*) FROM contexts",
    [S_COUNT_LINKS] = "SELECT count(*) FROM resource_links",
    [S_COUNT_ENROLLMENTS] = "SELECT count(*) FROM enrollments",
    [S_COUNT_BINDINGS] = "SELECT count(*) FROM outcome_bindings",
    [S_COUNT_SESSIONS] = "SELECT count(*) FROM sessions",
    [S_COUNT_BADGES] = "SELECT count(*) FROM badge_classes",
    [S_COUNT_AWARDS] = "SELECT count(*) FROM awards",
    [S_COUNT_GRADES] = "SELECT count(*) FROM grades",
    [S_COUNT_COMPLETIONS] = "SELECT count(*) FROM completions",
    [S_USER_GET] =
        "SELECT id, lti_user_id, given_name, family_name, full_name, email, email_source, "
        "person_sourcedid, show_name, created_at, updated_at FROM users "
        "WHERE consumer_id = $1 AND lti_user_id = $2",
    [S_USER_ENROLLMENTS] = "SELECT c.lti_context_id, e.roles, e.ext_roles, e.role_flags, e.mode, "
                           "e.first_launch_at, e.last_launch_at FROM enrollments e "
                           "JOIN contexts c ON c.id = e.context_id WHERE e.user_id = $1 "
                           "ORDER BY c.lti_context_id",
    [S_USER_BINDINGS] =
        "SELECT c.lti_context_id, l.lti_resource_link_id, o.sourcedid, o.service_url, "
        "o.data_values_accepted, o.last_read_error, o.created_at, o.updated_at "
        "FROM outcome_bindings o JOIN resource_links l ON l.id = o.resource_link_id "
        "LEFT JOIN contexts c ON c.id = l.context_id WHERE o.user_id = $1 "
        "ORDER BY l.lti_resource_link_id",
    [S_USER_EMAIL_LINKS] = "SELECT id, email, secret_hash, created_at, expires_at, used_at "
                           "FROM email_confirmations WHERE user_id = $1 ORDER BY id",
    [S_USER_GRADES] =
        "SELECT l.lti_resource_link_id, g.score, g.source, g.recorded_at FROM grades g "
        "JOIN resource_links l ON l.id = g.resource_link_id WHERE g.user_id = $1 "
        "ORDER BY l.lti_resource_link_id",
    [S_CONSUMER_SET_BACKEND] = "UPDATE consumers SET backend = $2 WHERE key = $1",
    /* only while it has no award: an award is tied to where its BadgeClass lives */
    /* nothing is owed to the old one: the new one makes it from our record at its first award */
    [S_BADGE_SET_BACKEND] = "UPDATE badge_classes SET backend = $2, backend_id = NULL, "
                            "sync_due_at = NULL, sync_attempts = 0, sync_error = NULL, "
                            "updated_at = $3 WHERE slug = $1 AND NOT EXISTS (SELECT 1 FROM "
                            "awards WHERE badge_class_id = badge_classes.id)",
    /* '' is the default backend, that of consumers without their own */
    [S_BACKEND_USAGE] =
        "SELECT name, sum(c), sum(b), sum(a) FROM ("
        "SELECT coalesce(backend, '') AS name, 1 AS c, 0 AS b, 0 AS a FROM consumers "
        "UNION ALL SELECT backend, 0, 1, (SELECT count(*) FROM awards "
        "WHERE badge_class_id = badge_classes.id) FROM badge_classes) AS used GROUP BY name "
        "ORDER BY name",
    /* ---- webhooks in (hooks.c) ---- */
    [S_HOOK_AWARD_FIND] = "SELECT a.id, a.state, a.attempts, b.backend_id FROM awards a "
                          "JOIN badge_classes b ON b.id = a.badge_class_id "
                          "WHERE a.uid = $1 AND b.backend = $2",
    /* issued as the worker would have recorded it: earned at creation, its expiry from it */
    [S_HOOK_ISSUED] =
        "UPDATE awards SET state = 'issued', assertion_id = uid, assertion_url = $2, "
        "issued_at = created_at, expires_at = (SELECT CASE WHEN b.expires_days > 0 THEN "
        "awards.created_at + b.expires_days * 86400 END FROM badge_classes b "
        "WHERE b.id = awards.badge_class_id), last_error = NULL, updated_at = $3 "
        "WHERE id = $1 AND state IN ('queued', 'issuing', 'failed')",
    /*
     * Revoked at the platform already: nothing to send back (revoke_synced);
     * the instance's slug kept as the assertion id, so that an issue
     * answered late does not reopen it (S_AWARD_ISSUED needs it NULL).
     */
    [S_HOOK_REVOKED] = "UPDATE awards SET state = 'revoked', revoked_at = $2, revoke_reason = $3, "
                       "revoke_synced = 1, assertion_id = coalesce(assertion_id, uid), "
                       "updated_at = $2 WHERE id = $1 AND state != 'revoked'",
    [S_HOOK_COUNT] =
        "INSERT INTO backend_hooks(backend, received, applied, unchanged, ignored, refused, "
        "last_received_at, last_refused_at, last_refusal) VALUES ($1, $2, $3, $4, $5, $6, "
        "nullif($7::bigint, 0), nullif($8::bigint, 0), $9) ON CONFLICT(backend) DO UPDATE SET "
        "received = backend_hooks.received + excluded.received, "
        "applied = backend_hooks.applied + excluded.applied, "
        "unchanged = backend_hooks.unchanged + excluded.unchanged, "
        "ignored = backend_hooks.ignored + excluded.ignored, "
        "refused = backend_hooks.refused + excluded.refused, "
        "last_received_at = coalesce(excluded.last_received_at, backend_hooks.last_received_at), "
        "last_refused_at = coalesce(excluded.last_refused_at, backend_hooks.last_refused_at), "
        "last_refusal = coalesce(excluded.last_refusal, backend_hooks.last_refusal)",
    [S_HOOK_COUNTS_GET] = "SELECT received, applied, unchanged, ignored, refused, "
                          "coalesce(last_received_at, 0), coalesce(last_refused_at, 0), "
                          "last_refusal FROM backend_hooks WHERE backend = $1",
    [S_RATE_TAKE] =
        "INSERT INTO rate_limits(key, expires_at, count) VALUES ($1, $2::bigint + $3::bigint, 1) "
        "ON CONFLICT(key) DO UPDATE SET count = CASE WHEN rate_limits.expires_at <= $2 THEN 1 "
        "ELSE rate_limits.count + 1 END, expires_at = CASE WHEN rate_limits.expires_at <= $2 "
        "THEN $2 + $3 ELSE rate_limits.expires_at END "
        "WHERE rate_limits.expires_at <= $2 OR rate_limits.count < $4::bigint RETURNING count",
    [S_CACHE_VERSION] = "SELECT version FROM cache_version WHERE id = 1",
    [S_RATE_PURGE] = "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits "
                     "WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
    /* sqlite's only (the comment at the top says why) */
    [S_LITE_DATA_VERSION] = NULL,
    [S_LITE_NONCE_LOG] = NULL,
    [S_LITE_NONCE_FLUSH] = NULL,
    [S_LITE_NONCE_LOG_CLEAR] = NULL,
    [S_LITE_NONCE_WINDOW_LOAD] = NULL,
    [S_LITE_NONCE_V6_EXISTS] = NULL,
    [S_LITE_NONCE_V6_NEWEST] = NULL,
    [S_LITE_NONCE_V6_SEEN] = NULL,
    [S_LITE_NONCE_V6_DROP] = NULL,
};
