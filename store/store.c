/*
 * store/store.c - connections, the statement table, the launch writer and
 * the checkpointer.
 *
 * One writer thread owns the connection that records launches: it takes
 * every launch queued since its last commit (up to LIMIT_STORE_BATCH), writes
 * them in one BEGIN IMMEDIATE transaction and then answers them all. Under
 * load that turns N fsyncs into one; alone, a launch waits for nothing but
 * its own commit. Readers (consumer lookups, sessions) use a pool of
 * connections and never wait for the writer: that is what WAL is for.
 * Automatic checkpoints are off on every connection; a checkpointer thread
 * runs PASSIVE checkpoints when the WAL grows and once a second, so no
 * request ever pays for one.
 */
#include "base/base.h"
#include "base/log.h"
#include "store/store_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
/* a learner's name for the dry run's list: the LMS user id when there is no name */
#define CAND_NAME "coalesce(" USER_NAME ", u.lti_user_id)"
/* ?2 0, or a learner (not staff) of course ?2 */
#define CAND_IN_COURSE                                                                             \
 "AND (?2 = 0 OR EXISTS (SELECT 1 FROM enrollments ec WHERE ec.user_id = u.id "                    \
 "AND ec.context_id = ?2 AND (ec.role_flags & ?10) != 0 AND (ec.role_flags & ?11) = 0)) "
/* the user has no award of BadgeClass ?3 yet */
#define CAND_NOT_HELD                                                                              \
 "AND NOT EXISTS (SELECT 1 FROM awards a WHERE a.badge_class_id = ?3 AND a.user_id = u.id) "

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

/* The statement table: string literals only, bound with sqlite3_bind_*. */
static const char *const sql_text[S__COUNT] = {
    [S_PING] = "SELECT 1",
    /* changes only when another connection commits: the writer's cache check */
    [S_DATA_VERSION] = "PRAGMA data_version",
    [S_CONSUMER_FIND] =
        "SELECT id, key, secret, name, coalesce(lms_family, ''), enabled, created_at, 0, "
        "coalesce(backend, '') FROM consumers WHERE key = ?1",
    [S_CONSUMER_LIST] =
        "SELECT id, key, secret, name, coalesce(lms_family, ''), enabled, created_at, "
        "(SELECT count(*) FROM users u WHERE u.consumer_id = consumers.id), "
        "coalesce(backend, '') FROM consumers ORDER BY id",
    [S_CONSUMER_INSERT] = "INSERT INTO consumers(key, secret, name, enabled, created_at, backend) "
                          "VALUES (?1, ?2, ?3, 1, ?4, ?5) ON CONFLICT(key) DO NOTHING RETURNING id",
    [S_CONSUMER_DELETE] = "DELETE FROM consumers WHERE key = ?1",
    [S_CONSUMER_SET_SECRET] = "UPDATE consumers SET secret = ?2 WHERE key = ?1",
    [S_CONSUMER_SET_ENABLED] = "UPDATE consumers SET enabled = ?2 WHERE key = ?1",
    [S_CONSUMER_CHECK] = "SELECT enabled, secret FROM consumers WHERE id = ?1",
    [S_CONSUMER_SET_LMS] =
        "UPDATE consumers SET lms_family = ?2 WHERE id = ?1 AND lms_family IS NOT ?2",
    [S_NONCE_INSERT] = "INSERT INTO nonces(ts, fp, consumer_id) VALUES (?1, ?2, ?3) "
                       "ON CONFLICT DO NOTHING",
    /* a launch's nonce: flushed already, or in the log (the writer's memory knows those) */
    [S_NONCE_SEEN] = "SELECT 1 FROM nonces WHERE ts = ?1 AND fp = ?2",
    [S_NONCE_LOG] = "INSERT INTO nonce_log(ts, fp, consumer_id) VALUES (?1, ?2, ?3)",
    [S_NONCE_FLUSH] = "INSERT INTO nonces(ts, fp, consumer_id) SELECT ts, fp, consumer_id "
                      "FROM nonce_log WHERE true ON CONFLICT DO NOTHING",
    [S_NONCE_LOG_CLEAR] = "DELETE FROM nonce_log",
    [S_NONCE_WINDOW_LOAD] = "SELECT ts, fp FROM nonces WHERE ts >= ?1",
    /* nonces digested before schema 7 (nonces.c) */
    [S_NONCE_V6_EXISTS] = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'nonces_v6'",
    [S_NONCE_V6_NEWEST] = "SELECT coalesce(max(ts), 0) FROM nonces_v6",
    [S_NONCE_V6_SEEN] = "SELECT 1 FROM nonces_v6 WHERE ts = ?1 AND fp = ?2",
    [S_NONCE_V6_DROP] = "DROP TABLE nonces_v6",
    [S_NONCE_PURGE] = "DELETE FROM nonces WHERE (ts, fp) IN "
                      "(SELECT ts, fp FROM nonces WHERE ts < ?1 LIMIT ?2)",
    /*
     * The oldest sessions only, up to the first that has not expired: ids
     * grow with time, and so do expiry times (one session_ttl), so this
     * reads one row when none expired. (It read the ?2 oldest each time: 4 096
     * rows, 1.9 ms of the launch writer every purge.) Sessions made before a
     * shorter session_ttl go first, then the rest.
     */
    [S_SESSION_PURGE] =
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE id < (SELECT coalesce("
        "(SELECT id FROM (SELECT id, expires_at FROM sessions ORDER BY id LIMIT ?2) "
        "WHERE expires_at >= ?1 LIMIT 1), 9223372036854775807)) ORDER BY id LIMIT ?2)",
    [S_USER_UPSERT] =
        "INSERT INTO users(consumer_id, lti_user_id, given_name, family_name, full_name, email, "
        "person_sourcedid, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
        "ON CONFLICT(consumer_id, lti_user_id) DO UPDATE SET "
        "given_name = coalesce(excluded.given_name, given_name), "
        "family_name = coalesce(excluded.family_name, family_name), "
        "full_name = coalesce(excluded.full_name, full_name), "
        "email = coalesce(excluded.email, email), "
        /* an address the LMS sends is the LMS's, even where the learner gave one before */
        "email_source = CASE WHEN excluded.email IS NULL THEN email_source END, "
        "person_sourcedid = coalesce(excluded.person_sourcedid, person_sourcedid), "
        "updated_at = excluded.updated_at "
        /* a relaunch that changes nothing writes nothing (no row back: S_USER_FIND) */
        "WHERE given_name IS NOT coalesce(excluded.given_name, given_name) "
        "OR family_name IS NOT coalesce(excluded.family_name, family_name) "
        "OR full_name IS NOT coalesce(excluded.full_name, full_name) "
        "OR email IS NOT coalesce(excluded.email, email) "
        "OR email_source IS NOT CASE WHEN excluded.email IS NULL THEN email_source END "
        "OR person_sourcedid IS NOT coalesce(excluded.person_sourcedid, person_sourcedid) "
        "RETURNING id",
    [S_CONTEXT_UPSERT] =
        "INSERT INTO contexts(consumer_id, lti_context_id, title, label, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(consumer_id, lti_context_id) DO UPDATE SET "
        "title = coalesce(excluded.title, title), label = coalesce(excluded.label, label), "
        "updated_at = excluded.updated_at "
        "WHERE title IS NOT coalesce(excluded.title, title) "
        "OR label IS NOT coalesce(excluded.label, label) RETURNING id",
    [S_LINK_UPSERT] =
        "INSERT INTO resource_links(consumer_id, lti_resource_link_id, context_id, title, "
        "points_possible, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?6, ?5, ?5) "
        "ON CONFLICT(consumer_id, lti_resource_link_id) DO UPDATE SET "
        "context_id = coalesce(excluded.context_id, context_id), "
        "title = coalesce(excluded.title, title), "
        "points_possible = coalesce(excluded.points_possible, points_possible), "
        "updated_at = excluded.updated_at "
        "WHERE context_id IS NOT coalesce(excluded.context_id, context_id) "
        "OR title IS NOT coalesce(excluded.title, title) "
        "OR points_possible IS NOT coalesce(excluded.points_possible, points_possible) "
        "RETURNING id",
    [S_CONTEXT_FIND] = "SELECT id FROM contexts WHERE consumer_id = ?1 AND lti_context_id = ?2",
    [S_LINK_FIND] =
        "SELECT id FROM resource_links WHERE consumer_id = ?1 AND lti_resource_link_id = ?2",
    [S_ENROLL_INSERT] =
        "INSERT INTO enrollments(user_id, context_id, roles, ext_roles, role_flags, mode, "
        "first_launch_at, last_launch_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) "
        "ON CONFLICT(user_id, context_id) DO NOTHING",
    /*
     * Only what changed: a launch that finds the row as it was (the writer's
     * cache forgot it) dirties no page. last_launch_at moves hourly at most,
     * as the writer's cache refreshes it (store/launch.c, WCACHE_REFRESH).
     */
    [S_ENROLL_UPDATE] = "UPDATE enrollments SET roles = ?3, ext_roles = ?4, role_flags = ?5, "
                        "mode = ?6, last_launch_at = ?7 WHERE user_id = ?1 AND context_id = ?2 "
                        "AND (roles IS NOT ?3 OR ext_roles IS NOT ?4 OR role_flags IS NOT ?5 OR "
                        "mode IS NOT ?6 OR last_launch_at <= ?7 - 3600)",
    [S_BINDING_UPSERT] =
        "INSERT INTO outcome_bindings(user_id, resource_link_id, context_id, service_url, "
        "sourcedid, sourcedid_fp, data_values_accepted, total_score_accepted, created_at, "
        "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?9, ?6, ?8, ?7, ?7) "
        "ON CONFLICT(user_id, resource_link_id) "
        "DO UPDATE SET context_id = excluded.context_id, service_url = excluded.service_url, "
        "sourcedid = excluded.sourcedid, sourcedid_fp = excluded.sourcedid_fp, "
        "data_values_accepted = excluded.data_values_accepted, "
        "total_score_accepted = excluded.total_score_accepted, updated_at = excluded.updated_at "
        /* as for enrollments: an unchanged binding is not written again */
        "WHERE context_id IS NOT excluded.context_id OR service_url IS NOT excluded.service_url "
        "OR data_values_accepted IS NOT excluded.data_values_accepted "
        "OR total_score_accepted IS NOT excluded.total_score_accepted "
        /* a newer sourcedid only once the stored one is an hour old (launch.c, MK_BINDING) */
        "OR (sourcedid IS NOT excluded.sourcedid AND updated_at <= excluded.updated_at - 3600)",
    [S_SESSION_INSERT] =
        "INSERT INTO sessions(secret_hash, consumer_id, user_id, context_id, resource_link_id, "
        "roles, role_flags, mode, return_url, document_target, locale, csrf_secret, created_at, "
        "expires_at, frame_origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
        "?14, ?15)",
    [S_SESSION_GET] =
        "SELECT s.consumer_id, s.user_id, coalesce(s.context_id, 0), s.role_flags, s.created_at, "
        "s.expires_at, s.csrf_secret, co.name, u.lti_user_id, " USER_NAME
        ", u.email, c.lti_context_id, c.title, c.label, s.roles, "
        "s.mode, s.return_url, s.document_target, s.locale, s.secret_hash, s.frame_origin, "
        "u.email_source, coalesce(c.badges_enabled, 0) "
        "FROM sessions s JOIN consumers co ON co.id = s.consumer_id "
        "JOIN users u ON u.id = s.user_id LEFT JOIN contexts c ON c.id = s.context_id "
        "WHERE s.id = ?1 AND s.expires_at > ?2 AND co.enabled = 1",
    /* a user who had no email gave one: what waited for it can be issued */
    [S_AWARD_RELEASE_EMAIL] = "UPDATE awards SET state = 'queued', next_attempt_at = ?2, "
                              "updated_at = ?2 WHERE user_id = ?1 AND state = 'needs_email'",
    /* ---- e-mail addresses learners give (email.c) ---- */
    /* whether a user may give an address: none yet, badges waiting, links asked for lately */
    [S_EMAIL_USER_STATE] =
        "SELECT coalesce(u.email, ''), (SELECT count(*) FROM awards a WHERE a.user_id = u.id "
        "AND a.state = 'needs_email'), (SELECT count(*) FROM email_confirmations e "
        "WHERE e.user_id = u.id AND e.created_at > ?2) FROM users u WHERE u.id = ?1",
    /* a user's links long expired: nobody needs to be told about them any more */
    [S_EMAIL_CONFIRM_PURGE] =
        "DELETE FROM email_confirmations WHERE user_id = ?1 AND expires_at < ?2",
    [S_EMAIL_CONFIRM_INSERT] =
        "INSERT INTO email_confirmations(secret_hash, user_id, email, created_at, expires_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    [S_EMAIL_CONFIRM_GET] = "SELECT secret_hash, user_id, email, expires_at, "
                            "coalesce(used_at, 0) FROM email_confirmations WHERE id = ?1",
    [S_EMAIL_CONFIRM_USE] =
        "UPDATE email_confirmations SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL",
    /*
     * a newer link, or a confirmed address, voids the user's other links: they
     * expire now (and say so), the rows stay for the hourly limit
     */
    [S_EMAIL_CONFIRM_SUPERSEDE] = "UPDATE email_confirmations SET expires_at = ?3 "
                                  "WHERE user_id = ?1 AND id != ?2 AND used_at IS NULL "
                                  "AND expires_at > ?3",
    /*
     * a link whose mail was not sent never worked: it expires when it was
     * made, and stays for the hourly limit (a relay that keeps failing is
     * not asked without end)
     */
    [S_EMAIL_CONFIRM_CANCEL] = "UPDATE email_confirmations SET expires_at = created_at "
                               "WHERE id = ?1 AND used_at IS NULL AND expires_at > created_at",
    [S_EMAIL_PENDING] = "SELECT email, expires_at FROM email_confirmations WHERE user_id = ?1 "
                        "AND used_at IS NULL AND expires_at > ?2 ORDER BY id DESC LIMIT 1",
    [S_BADGE_HOLDERS] = "SELECT count(DISTINCT user_id) FROM awards WHERE badge_class_id = ?1 "
                        "AND state = 'issued'",
    [S_USER_SHOW_NAME] = "SELECT show_name FROM users WHERE id = ?1",
    [S_USER_SET_SHOW_NAME] = "UPDATE users SET show_name = ?2, updated_at = ?3 WHERE id = ?1",
    /* an address the LMS sent stays the LMS's: a learner's never replaces it */
    [S_USER_SET_EMAIL] =
        "UPDATE users SET email = ?2, email_source = ?3, updated_at = ?4 WHERE id = ?1 "
        "AND (coalesce(email, '') = '' OR email_source IS NOT NULL)",
    /* rows an operator names before any launch did: created bare, never overwritten */
    [S_USER_ENSURE] = "INSERT INTO users(consumer_id, lti_user_id, created_at, updated_at) "
                      "VALUES (?1, ?2, ?3, ?3) ON CONFLICT(consumer_id, lti_user_id) "
                      "DO UPDATE SET lti_user_id = excluded.lti_user_id RETURNING id",
    [S_CONTEXT_ENSURE] =
        "INSERT INTO contexts(consumer_id, lti_context_id, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?3) ON CONFLICT(consumer_id, lti_context_id) "
        "DO UPDATE SET lti_context_id = excluded.lti_context_id RETURNING id",
    [S_LINK_ENSURE] =
        "INSERT INTO resource_links(consumer_id, lti_resource_link_id, context_id, created_at, "
        "updated_at) VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(consumer_id, lti_resource_link_id) "
        "DO UPDATE SET context_id = coalesce(context_id, excluded.context_id) RETURNING id",
    [S_CONTEXT_SET_ENABLED] =
        "UPDATE contexts SET badges_enabled = ?2, updated_at = ?3 WHERE id = ?1",
    [S_CONTEXT_SET_PASS] = "UPDATE contexts SET pass_mark = ?2, completion_link = ?3, "
                           "updated_at = ?4 WHERE id = ?1",
    [S_GROUP_UPSERT] = "INSERT INTO context_groups(consumer_id, name, created_at) "
                       "VALUES (?1, ?2, ?3) ON CONFLICT(consumer_id, name) "
                       "DO UPDATE SET name = excluded.name RETURNING id",
    [S_GROUP_FIND] = "SELECT id FROM context_groups WHERE consumer_id = ?1 AND name = ?2",
    [S_GROUP_MEMBER_ADD] = "INSERT INTO context_group_members(group_id, context_id) "
                           "VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    [S_SLUG_TAKEN] = "SELECT 1 FROM badge_classes WHERE slug = ?1",
    [S_BADGE_INSERT] =
        "INSERT INTO badge_classes(slug, consumer_id, context_id, mode, name, description, "
        "image, image_type, criteria_url, criteria_narrative, issuing_component, tags, "
        "alignments, expires_days, backend, backend_id, passback_score, revoke_on_withdrawn, "
        "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
        "?14, coalesce(?15, (SELECT backend FROM consumers WHERE id = ?2), ?20, 'hosted'), ?16, "
        "?18, ?19, ?17, ?17) RETURNING id",
    [S_BADGE_SET_OUTCOMES] =
        "UPDATE badge_classes SET passback_score = CASE ?2 WHEN -1 THEN passback_score "
        "WHEN 0 THEN NULL ELSE ?3 END, revoke_on_withdrawn = CASE ?4 WHEN -1 THEN "
        "revoke_on_withdrawn ELSE ?4 END, updated_at = ?5 WHERE slug = ?1",
    /* ?20: keep the stored image when 0 (an edit without a new upload) */
    [S_BADGE_UPDATE] =
        "UPDATE badge_classes SET mode = ?4, name = ?5, description = ?6, "
        "image = CASE ?20 WHEN 0 THEN image ELSE ?7 END, "
        "image_type = CASE ?20 WHEN 0 THEN image_type ELSE ?8 END, criteria_url = ?9, "
        "criteria_narrative = ?10, issuing_component = ?11, tags = ?12, alignments = ?13, "
        "expires_days = ?14, passback_score = ?18, revoke_on_withdrawn = ?19, updated_at = ?17 "
        "WHERE id = ?1 AND consumer_id = ?2 AND context_id = ?3",
    /* numbered as S_RULE_INSERT (bind_rule); ?2 and ?4, the consumer and course, do not change */
    [S_RULE_UPDATE] = "UPDATE rules SET kind = ?3, mode_key = ?5, threshold = ?6, "
                      "resource_link = ?7, group_id = ?8, count = ?9 WHERE badge_class_id = ?1",
    /* only a BadgeClass never awarded: an award's record needs its BadgeClass */
    [S_BADGE_DELETE] = "DELETE FROM badge_classes WHERE id = ?1 AND context_id = ?2 "
                       "AND NOT EXISTS (SELECT 1 FROM awards a WHERE a.badge_class_id = ?1)",
    [S_BADGE_SET_ARCHIVED] = "UPDATE badge_classes SET archived_at = ?3, updated_at = ?4 "
                             "WHERE id = ?1 AND context_id = ?2",
    [S_BADGE_SET_IMAGE] = "UPDATE badge_classes SET image = ?2, image_type = ?3, updated_at = ?4 "
                          "WHERE slug = ?1",
    [S_BADGE_AWARDS_ANY] = "SELECT count(*) FROM awards WHERE badge_class_id = ?1",
    /*
     * Who a rule would award now, from the facts stored (the dry run, and
     * the awards made when a rule is saved). Every one: ?1 consumer, ?2
     * course (0: any of the consumer's), ?3 the BadgeClass (0: a new one;
     * its holders are left out), ?9 at most this many; the columns: user id,
     * LMS user id, name, score or NULL, resource link id or NULL, its title
     * or LMS id, courses completed or NULL.
     */
    [S_CAND_ENROLLMENT] =
        "SELECT u.id, u.lti_user_id, " CAND_NAME ", NULL, NULL, NULL, NULL FROM enrollments e "
        "JOIN users u ON u.id = e.user_id JOIN contexts c ON c.id = e.context_id "
        "WHERE c.consumer_id = ?1 AND (?2 = 0 OR e.context_id = ?2) "
        "AND (e.role_flags & ?10) != 0 AND (e.role_flags & ?11) = 0 " CAND_NOT_HELD
        "GROUP BY u.id ORDER BY 3, u.id LIMIT ?9",
    /* the best grade per learner; sqlite takes the bare columns from the max() row */
    [S_CAND_SCORE] = "SELECT u.id, u.lti_user_id, " CAND_NAME ", max(g.score), rl.id, "
                     "coalesce(nullif(rl.title, ''), rl.lti_resource_link_id), NULL FROM grades g "
                     "JOIN users u ON u.id = g.user_id JOIN resource_links rl "
                     "ON rl.id = g.resource_link_id WHERE u.consumer_id = ?1 "
                     "AND (?2 = 0 OR g.context_id = ?2) AND g.score + 1e-9 >= ?4 "
                     "AND (?5 IS NULL OR rl.lti_resource_link_id = ?5) " CAND_NOT_HELD
                     "GROUP BY u.id ORDER BY 3, u.id LIMIT ?9",
    /* rule 1: a mode's completion goes to its own BadgeClass, else to the course's mode-less one */
    [S_CAND_COMPLETION] =
        "SELECT u.id, u.lti_user_id, " CAND_NAME ", cp.score, rl.id, "
        "coalesce(nullif(rl.title, ''), rl.lti_resource_link_id), NULL FROM completions cp "
        "JOIN users u ON u.id = cp.user_id LEFT JOIN resource_links rl "
        "ON rl.id = cp.resource_link_id WHERE cp.context_id = ?2 AND u.consumer_id = ?1 "
        "AND (coalesce(cp.mode, '') = ?8 OR (?8 = '' AND NOT EXISTS (SELECT 1 FROM rules r "
        "WHERE r.kind = 'completion' AND r.context_id = ?2 AND r.mode_key = cp.mode "
        "AND r.badge_class_id != ?3))) "
        /* rule 1: one completion, one badge; who got the course's mode-less one keeps that */
        "AND NOT EXISTS (SELECT 1 FROM awards a2 JOIN rules r2 ON r2.badge_class_id = "
        "a2.badge_class_id WHERE a2.user_id = u.id AND r2.kind = 'completion' "
        "AND r2.context_id = ?2) " CAND_NOT_HELD "ORDER BY 3, u.id LIMIT ?9",
    [S_CAND_GROUP] =
        "SELECT u.id, u.lti_user_id, " CAND_NAME ", NULL, NULL, NULL, count(*) "
        "FROM completions cp JOIN users u ON u.id = cp.user_id "
        "JOIN context_group_members m ON m.context_id = cp.context_id "
        "JOIN context_groups g ON g.id = m.group_id WHERE u.consumer_id = ?1 "
        "AND g.consumer_id = ?1 AND g.name = ?6 " CAND_IN_COURSE CAND_NOT_HELD "GROUP BY u.id "
        "HAVING count(*) = (SELECT count(*) FROM context_group_members m2 "
        "WHERE m2.group_id = g.id) ORDER BY 3, u.id LIMIT ?9",
    [S_CAND_COUNT] =
        "SELECT u.id, u.lti_user_id, " CAND_NAME ", NULL, NULL, NULL, count(*) "
        "FROM completions cp JOIN users u ON u.id = cp.user_id JOIN contexts c "
        "ON c.id = cp.context_id WHERE c.consumer_id = ?1 AND u.consumer_id = ?1 " CAND_IN_COURSE
            CAND_NOT_HELD "GROUP BY u.id HAVING count(*) >= ?7 ORDER BY 3, u.id LIMIT ?9",
    [S_RULE_INSERT] = "INSERT INTO rules(badge_class_id, consumer_id, kind, context_id, mode_key, "
                      "threshold, resource_link, group_id, count) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_BADGE_GET] = BADGE_SELECT("b.image", ISSUED_COUNT) " WHERE b.slug = ?1",
    [S_BADGE_GET_ID] = BADGE_SELECT("b.image", "0 ") " WHERE b.id = ?1",
    [S_BADGE_LIST] = BADGE_SELECT("NULL", ISSUED_COUNT) " ORDER BY b.id",
    [S_BADGE_LIST_COURSE] = BADGE_SELECT("NULL", "0 ") " WHERE b.context_id = ?1 "
                                                       "AND b.archived_at IS NULL ORDER BY b.id",
    /* scoped as S_AWARD_DUE */
    [S_BADGE_SYNC_DUE] =
        "SELECT b.id, b.sync_gen, b.sync_attempts FROM badge_classes b WHERE b.sync_due_at IS NOT "
        "NULL AND b.sync_due_at <= ?1 AND (?3 IS NULL OR b.backend = ?3) AND (?4 IS NULL OR "
        "b.backend NOT IN (SELECT value FROM json_each(?4))) ORDER BY b.sync_due_at LIMIT ?2",
    /* only while no newer edit came (sync_gen): that one is still to be sent */
    [S_BADGE_SYNC_DONE] = "UPDATE badge_classes SET sync_due_at = ?3, sync_error = ?4, "
                          "sync_attempts = CASE WHEN ?4 IS NULL THEN 0 ELSE sync_attempts + 1 END "
                          "WHERE id = ?1 AND sync_gen = ?2",
    [S_BADGE_SET_BACKEND_ID] = "UPDATE badge_classes SET backend_id = ?2, updated_at = ?3 "
                               "WHERE id = ?1 AND backend_id IS NULL",
    [S_USER_FIND] = "SELECT id FROM users WHERE consumer_id = ?1 AND lti_user_id = ?2",
    /* no pass mark set: 0.5, Open edX's default passing grade */
    [S_CONTEXT_INFO] = "SELECT id, consumer_id, lti_context_id, title, badges_enabled, "
                       "coalesce(pass_mark, 0.5), completion_link FROM contexts WHERE id = ?1",
    [S_LINK_LTI_ID] = "SELECT lti_resource_link_id FROM resource_links WHERE id = ?1",
    [S_ENROLL_MODE] = "SELECT mode FROM enrollments WHERE user_id = ?1 AND context_id = ?2",
    [S_ENROLL_ROLES] = "SELECT role_flags FROM enrollments WHERE user_id = ?1 AND context_id = ?2",
    [S_GRADE_PUT] = "INSERT INTO grades(user_id, resource_link_id, context_id, score, source, "
                    "recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT(user_id, resource_link_id) DO UPDATE SET "
                    "context_id = excluded.context_id, score = excluded.score, "
                    "source = excluded.source, recorded_at = excluded.recorded_at",
    [S_COMPLETION_PUT] = "INSERT INTO completions(user_id, context_id, mode, resource_link_id, "
                         "score, completed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                         "ON CONFLICT(user_id, context_id) DO NOTHING",
    [S_COMPLETED_COUNT] = "SELECT count(*) FROM completions cp JOIN contexts c "
                          "ON c.id = cp.context_id WHERE cp.user_id = ?2 AND c.consumer_id = ?1",
    [S_GROUP_COMPLETED] = "SELECT count(*), count(cp.user_id) FROM context_group_members m "
                          "LEFT JOIN completions cp ON cp.context_id = m.context_id "
                          "AND cp.user_id = ?2 WHERE m.group_id = ?1",
    /*
     * Archived BadgeClasses award nothing more. The kind is compared as
     * CAST(?2 AS TEXT): a bare ?2 matches the shape of the partial index
     * rules_one_completion's WHERE (kind = 'completion'), which makes SQLite
     * plan by the value bound and prepare the statement again on every run
     * (statements_prepared_once tests it). Both still search rules_kind.
     */
    [S_RULES_FOR] =
        "SELECT r.badge_class_id, coalesce(r.context_id, 0), r.threshold, "
        "r.resource_link, coalesce(r.group_id, 0), coalesce(r.count, 0) FROM rules r "
        "JOIN badge_classes b ON b.id = r.badge_class_id "
        "WHERE r.consumer_id = ?1 AND r.kind = CAST(?2 AS TEXT) AND b.archived_at IS NULL "
        "AND (r.context_id IS NULL OR r.context_id = ?3) ORDER BY r.badge_class_id",
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
        "WHERE r.consumer_id = ?1 AND r.kind = CAST(?2 AS TEXT) AND b.archived_at IS NULL "
        "AND (r.context_id IS NULL OR (c.badges_enabled = 1 AND EXISTS (SELECT 1 FROM "
        "enrollments e WHERE e.user_id = ?3 AND e.context_id = r.context_id "
        "AND (e.role_flags & ?4) != 0 AND (e.role_flags & ?5) = 0))) ORDER BY r.badge_class_id",
    /* -1 for an archived one: the course's completion badge for that mode is retired */
    [S_COMPLETION_BADGE] = "SELECT CASE WHEN b.archived_at IS NULL THEN r.badge_class_id "
                           "ELSE -1 END FROM rules r JOIN badge_classes b "
                           "ON b.id = r.badge_class_id WHERE r.kind = 'completion' "
                           "AND r.context_id = ?1 AND r.mode_key = ?2",
    /* the recipient is known once an email is: until then the award waits for one */
    [S_AWARD_INSERT] =
        "INSERT INTO awards(uid, badge_class_id, user_id, context_id, resource_link_id, reason, "
        "narrative, salt, state, next_attempt_at, created_at, updated_at) "
        "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, CASE WHEN coalesce(u.email, '') = '' "
        "THEN 'needs_email' ELSE 'queued' END, ?9, ?9, ?9 FROM users u WHERE u.id = ?3 "
        "ON CONFLICT(badge_class_id, user_id) DO NOTHING RETURNING id",
    [S_AWARD_LIST] = AWARD_SELECT " WHERE (?1 IS NULL OR a.state = ?1) "
                                  "AND (?2 IS NULL OR b.slug = ?2) AND (?3 = 0 OR a.user_id = ?3) "
                                  "AND (?4 IS NULL OR b.backend = ?4) ORDER BY a.id LIMIT ?5",
    [S_AWARD_GET] = AWARD_SELECT " WHERE a.id = ?1",
    [S_AWARD_GET_UID] = AWARD_SELECT " WHERE a.uid = ?1",
    /* ---- pages (pages.c) ---- */
    [S_PAGE_CONTEXT] =
        "SELECT c.id, c.consumer_id, c.lti_context_id, c.title, c.badges_enabled, "
        "coalesce(c.pass_mark, 0.5), c.completion_link, l.title, "
        "coalesce(x.completed_at, 0), x.score, coalesce(l.points_possible, 0) FROM contexts c "
        "LEFT JOIN resource_links l ON l.consumer_id = c.consumer_id "
        "AND l.lti_resource_link_id = c.completion_link LEFT JOIN completions x "
        "ON x.context_id = c.id AND x.user_id = ?2 WHERE c.id = ?1",
    /* the course's live BadgeClasses, the consumer's course-less ones, and any the user holds */
    [S_PAGE_BADGES] = BADGE_SELECT("NULL", "0 ") " WHERE b.consumer_id = ?1 AND ((b.archived_at "
                                                 "IS NULL AND (b.context_id = ?2 OR b.context_id "
                                                 "IS NULL)) OR b.id IN (SELECT badge_class_id "
                                                 "FROM awards WHERE user_id = ?3)) ORDER BY b.id",
    [S_PAGE_AWARDS] = AWARD_SELECT " WHERE a.user_id = ?1 ORDER BY coalesce(a.issued_at, "
                                   "a.created_at) DESC, a.id DESC",
    /* every link of the course, with the user's grade and grade column where there are */
    [S_PAGE_GRADES] =
        "SELECT l.lti_resource_link_id, l.title, g.score, g.source, coalesce(g.recorded_at, 0), "
        "ob.id IS NOT NULL, coalesce(ob.last_read_at, 0), ob.last_read_error, "
        "coalesce(l.points_possible, 0) "
        "FROM resource_links l LEFT JOIN grades g ON g.resource_link_id = l.id AND g.user_id = ?1 "
        "LEFT JOIN outcome_bindings ob ON ob.resource_link_id = l.id AND ob.user_id = ?1 "
        "WHERE l.context_id = ?2 ORDER BY l.id",
    [S_PAGE_COMPLETED] = "SELECT x.context_id, c.lti_context_id, c.title, x.completed_at "
                         "FROM completions x JOIN contexts c ON c.id = x.context_id "
                         "WHERE x.user_id = ?1 ORDER BY x.completed_at, x.context_id",
    [S_PAGE_GROUPS] =
        "SELECT m.group_id, c.lti_context_id, c.title, EXISTS (SELECT 1 FROM completions x "
        "WHERE x.user_id = ?2 AND x.context_id = m.context_id) FROM context_group_members m "
        "JOIN context_groups g ON g.id = m.group_id JOIN contexts c ON c.id = m.context_id "
        "WHERE g.consumer_id = ?1 ORDER BY m.group_id, c.title, c.id",
    [S_ADMIN_LINKS] = "SELECT lti_resource_link_id, title FROM resource_links "
                      "WHERE context_id = ?1 ORDER BY id",
    /* the course's BadgeClasses and the consumer's course-less ones, live first */
    [S_ADMIN_BADGES] = BADGE_SELECT("NULL", ISSUED_COUNT) " WHERE b.context_id = ?1 OR "
                                                          "(b.context_id IS NULL AND "
                                                          "b.consumer_id = ?2) ORDER BY "
                                                          "b.archived_at IS NOT NULL, b.id",
    [S_ADMIN_LINK_IN_COURSE] = "SELECT 1 FROM resource_links WHERE context_id = ?1 "
                               "AND lti_resource_link_id = ?2",
    /*
     * A course's awards: of its BadgeClasses, and of the consumer's
     * course-less ones when awarded in it; newest first.
     */
    [S_ADMIN_AWARDS] = AWARD_SELECT " WHERE a.badge_class_id IN (SELECT id FROM badge_classes "
                                    "WHERE context_id = ?1 OR (context_id IS NULL AND "
                                    "consumer_id = ?2)) AND (b.context_id IS NOT NULL OR "
                                    "a.context_id = ?1) AND (?3 IS NULL OR a.state = ?3) "
                                    "AND (?4 IS NULL OR b.slug = ?4) ORDER BY a.id DESC LIMIT ?5",
    /* the course's enrolled users without the roles ?2 (staff), by name */
    [S_ADMIN_LEARNERS] =
        "SELECT u.id, u.lti_user_id, " USER_NAME
        " AS name, u.email, e.role_flags FROM enrollments e "
        "JOIN users u ON u.id = e.user_id WHERE e.context_id = ?1 AND (e.role_flags & ?2) = 0 "
        "ORDER BY name COLLATE NOCASE, u.id LIMIT ?3",
    [S_ADMIN_COUNTS] =
        "SELECT count(*) FILTER (WHERE state IN ('queued', 'issuing')), "
        "count(*) FILTER (WHERE state = 'needs_email'), count(*) FILTER (WHERE state = 'failed'), "
        "count(*) FILTER (WHERE state = 'issued'), count(*) FILTER (WHERE state = 'revoked'), "
        "coalesce(max(issued_at), 0) FROM awards WHERE context_id = ?1 OR badge_class_id IN "
        "(SELECT id FROM badge_classes WHERE context_id = ?1)",
    /* the same condition as the partial index awards_due, so the index serves it */
    /* ?3: only this backend's BadgeClasses; ?4: a JSON array of backends left out */
    [S_AWARD_DUE] = "SELECT a.id FROM awards a JOIN badge_classes b ON b.id = a.badge_class_id "
                    "WHERE (a.state IN ('queued', 'issuing') OR a.revoke_synced = 0) "
                    "AND a.next_attempt_at <= ?1 AND (?3 IS NULL OR b.backend = ?3) "
                    "AND (?4 IS NULL OR b.backend NOT IN (SELECT value FROM json_each(?4))) "
                    /* earned in the same second: in the order earned (awards_due ends in id) */
                    "ORDER BY a.next_attempt_at, a.id LIMIT ?2",
    [S_AWARD_CLAIM] =
        "UPDATE awards SET state = CASE WHEN state = 'revoked' THEN state ELSE 'issuing' END, "
        "attempts = attempts + (state != 'revoked'), next_attempt_at = ?2, updated_at = ?3, "
        "recipient_email = coalesce(recipient_email, "
        "(SELECT email FROM users u WHERE u.id = awards.user_id)) WHERE id = ?1",
    /*
     * Revoked while the platform was issuing it: keep the assertion id so the
     * worker revokes it there too.
     */
    [S_AWARD_ISSUED] =
        "UPDATE awards SET assertion_id = ?2, assertion_url = ?3, issued_at = ?4, "
        "expires_at = nullif(?5, 0), last_error = ?7, updated_at = ?6, "
        "revoke_synced = CASE WHEN state = 'revoked' THEN 0 ELSE revoke_synced END, "
        "state = CASE WHEN state = 'revoked' THEN state ELSE 'issued' END "
        "WHERE id = ?1 AND (state = 'issuing' OR (state = 'revoked' AND assertion_id IS NULL))",
    [S_AWARD_RETRY_LATER] = "UPDATE awards SET state = 'queued', next_attempt_at = ?2, "
                            "last_error = ?3, updated_at = ?4 WHERE id = ?1 AND state = 'issuing'",
    [S_AWARD_FAILED] = "UPDATE awards SET state = 'failed', last_error = ?2, updated_at = ?3 "
                       "WHERE id = ?1 AND state = 'issuing'",
    [S_AWARD_REVOKE_SYNCED] = "UPDATE awards SET revoke_synced = 1, last_error = NULL, "
                              "updated_at = ?2 WHERE id = ?1 AND state = 'revoked'",
    [S_AWARD_REVOKE_RETRY] = "UPDATE awards SET next_attempt_at = ?2, last_error = ?3, "
                             "updated_at = ?4 WHERE id = ?1 AND state = 'revoked'",
    [S_AWARD_REQUEUE] = "UPDATE awards SET state = 'queued', next_attempt_at = ?2, "
                        "updated_at = ?2 WHERE id = ?1 AND state = 'failed'",
    [S_AWARD_REVOKE] =
        "UPDATE awards SET state = 'revoked', revoked_at = ?2, revoke_reason = ?3, "
        "revoke_synced = (assertion_id IS NULL AND attempts = 0), next_attempt_at = ?2, "
        "updated_at = ?2 "
        "WHERE id = ?1 AND state != 'revoked'",
    /* the same course condition as S_ADMIN_AWARDS */
    [S_AWARD_IN_COURSE] =
        "SELECT 1 FROM awards a JOIN badge_classes b ON b.id = a.badge_class_id WHERE a.id = ?1 "
        "AND (b.context_id = ?2 OR (b.context_id IS NULL AND b.consumer_id = ?3 AND "
        "a.context_id = ?2))",
    [S_AWARD_RECLAIM] = "UPDATE awards SET next_attempt_at = ?1 WHERE state = 'issuing' "
                        "AND next_attempt_at > ?1",
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
                            "AND next_attempt_at <= ?1",
    [S_METRICS_PASSBACK_DUE] = "SELECT min(next_attempt_at) FROM passbacks WHERE "
                               "state IN ('queued', 'sending') AND next_attempt_at <= ?1",
    /* ---- Basic Outcomes (outcomes.c) ---- */
    [S_CONSUMER_SET_HOSTS] = "UPDATE consumers SET outcome_hosts = ?2 WHERE key = ?1",
    [S_TOOL_SOURCEDID_FIND] =
        "SELECT t.user_id, t.context_id, t.resource_link_id, u.lti_user_id, c.lti_context_id, "
        "l.lti_resource_link_id FROM tool_sourcedids t JOIN users u ON u.id = t.user_id "
        "JOIN contexts c ON c.id = t.context_id JOIN resource_links l ON l.id = t.resource_link_id "
        "WHERE t.sourcedid = ?1 AND t.consumer_id = ?2",
    [S_TOOL_SOURCEDID_GET] =
        "SELECT sourcedid FROM tool_sourcedids WHERE user_id = ?1 AND resource_link_id = ?2",
    [S_TOOL_SOURCEDID_INSERT] =
        "INSERT INTO tool_sourcedids(sourcedid, consumer_id, user_id, context_id, "
        "resource_link_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* a consumer's sourcedids are unique in practice; the newest binding wins if not */
    [S_BINDING_BY_SOURCEDID] =
        "SELECT ob.user_id, coalesce(ob.context_id, 0), ob.resource_link_id, u.lti_user_id, "
        "c.lti_context_id, l.lti_resource_link_id FROM outcome_bindings ob "
        "JOIN users u ON u.id = ob.user_id LEFT JOIN contexts c ON c.id = ob.context_id "
        "JOIN resource_links l ON l.id = ob.resource_link_id "
        "WHERE ob.sourcedid_fp = ?3 AND ob.sourcedid = ?1 AND u.consumer_id = ?2 "
        "ORDER BY ob.updated_at DESC LIMIT 1",
    [S_GRADE_GET] = "SELECT score FROM grades WHERE user_id = ?1 AND resource_link_id = ?2",
    [S_GRADE_DELETE] = "DELETE FROM grades WHERE user_id = ?1 AND resource_link_id = ?2",
    [S_EARNED_ON_LINK] =
        "SELECT a.id, r.kind, a.reason, coalesce(r.threshold, 0), coalesce(c.pass_mark, 0.5), "
        "bc.revoke_on_withdrawn FROM awards a JOIN badge_classes bc ON bc.id = a.badge_class_id "
        "JOIN rules r ON r.badge_class_id = bc.id LEFT JOIN contexts c ON c.id = a.context_id "
        "WHERE a.user_id = ?1 AND a.resource_link_id = ?2 AND a.state != 'revoked' "
        "AND a.reason IN ('score', 'completion')",
    [S_BINDINGS_TO_READ] =
        "SELECT ob.id, u.consumer_id, ob.user_id, ob.context_id, ob.resource_link_id, "
        "ob.service_url, ob.sourcedid, co.key, co.secret, co.outcome_hosts, u.lti_user_id, "
        "c.lti_context_id, l.lti_resource_link_id, ob.last_score FROM outcome_bindings ob "
        "JOIN users u ON u.id = ob.user_id JOIN consumers co ON co.id = u.consumer_id "
        "JOIN contexts c ON c.id = ob.context_id "
        "JOIN resource_links l ON l.id = ob.resource_link_id "
        "WHERE ob.last_read_at <= ?3 AND (?1 = 0 OR ob.user_id = ?1) "
        "AND (?2 = 0 OR ob.context_id = ?2) AND co.enabled = 1 AND " NEEDS_GRADES(
            c) " ORDER BY ob.last_read_at LIMIT ?4",
    [S_CONTEXT_NEEDS_GRADES] = "SELECT " NEEDS_GRADES(c) " FROM contexts c WHERE c.id = ?1",
    [S_BINDING_READ_DONE] =
        "UPDATE outcome_bindings SET last_read_at = ?2, last_read_error = ?5, "
        "last_score = CASE ?3 WHEN 1 THEN ?4 WHEN 2 THEN NULL ELSE last_score END, "
        "last_score_at = CASE WHEN ?3 IN (1, 2) THEN ?2 ELSE last_score_at END WHERE id = ?1",
    /*
     * An issued award owes each of the learner's bindings in its course a
     * replaceResult: the BadgeClass's score, but never over a grade the LMS
     * already holds there (it is sent again with the badge's URL when the
     * LMS takes one, else nothing is sent). The learner's bindings are found
     * by user (UNIQUE (user_id, resource_link_id)); "+" keeps SQLite from
     * scanning the whole course's instead.
     */
    [S_PB_ENQUEUE] =
        "INSERT INTO passbacks(award_id, binding_id, score, data_url, state, next_attempt_at, "
        "created_at, updated_at) SELECT a.id, ob.id, coalesce(ob.last_score, bc.passback_score), "
        "CASE WHEN instr(',' || replace(lower(coalesce(ob.data_values_accepted, '')), ' ', '') "
        "|| ',', ',url,') > 0 THEN a.assertion_url END, 'queued', ?2, ?2, ?2 FROM awards a "
        "JOIN badge_classes bc ON bc.id = a.badge_class_id JOIN outcome_bindings ob "
        "ON ob.user_id = a.user_id AND +ob.context_id = a.context_id WHERE a.id = ?1 "
        "AND a.state = 'issued' AND bc.passback_score IS NOT NULL AND (ob.last_score IS NULL OR "
        "instr(',' || replace(lower(coalesce(ob.data_values_accepted, '')), ' ', '') || ',', "
        "',url,') > 0) ON CONFLICT(award_id, binding_id) DO NOTHING",
    [S_PB_DUE] = "SELECT id FROM passbacks WHERE state IN ('queued', 'sending') "
                 "AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2",
    [S_PB_CLAIM] = "UPDATE passbacks SET state = 'sending', attempts = attempts + 1, "
                   "next_attempt_at = ?2, last_attempt_at = ?3, updated_at = ?3 WHERE id = ?1",
    [S_PB_GET] =
        "SELECT p.id, p.award_id, p.binding_id, u.consumer_id, p.attempts, p.score, p.data_url, "
        "ob.service_url, ob.sourcedid, co.key, co.secret, co.outcome_hosts, co.enabled "
        "FROM passbacks p JOIN outcome_bindings ob ON ob.id = p.binding_id "
        "JOIN users u ON u.id = ob.user_id JOIN consumers co ON co.id = u.consumer_id "
        "WHERE p.id = ?1",
    [S_PB_DONE] = "UPDATE passbacks SET state = 'done', answer = ?3, updated_at = ?4 "
                  "WHERE id = ?1 AND state = 'sending'",
    [S_PB_RETRY] = "UPDATE passbacks SET state = 'queued', next_attempt_at = ?2, answer = ?3, "
                   "updated_at = ?4 WHERE id = ?1 AND state = 'sending'",
    [S_PB_FAILED] = "UPDATE passbacks SET state = 'failed', answer = ?3, updated_at = ?4 "
                    "WHERE id = ?1 AND state = 'sending'",
    [S_PB_REQUEUE] = "UPDATE passbacks SET state = 'queued', next_attempt_at = ?2, "
                     "updated_at = ?2 WHERE award_id = ?1 AND state = 'failed'",
    [S_PB_NEXT_DUE] = "SELECT min(next_attempt_at) FROM passbacks "
                      "WHERE state IN ('queued', 'sending')",
    [S_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT launch",
    [S_RELEASE] = "RELEASE launch",
    [S_ROLLBACK_TO] = "ROLLBACK TO launch",
    [S_COUNT_CONSUMERS] = "SELECT count(*) FROM consumers",
    [S_COUNT_NONCES] = "SELECT (SELECT count(*) FROM nonces) + (SELECT count(*) FROM nonce_log)",
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
    [S_CONSUMER_SET_BACKEND] = "UPDATE consumers SET backend = ?2 WHERE key = ?1",
    /* only while it has no award: an award is tied to where its BadgeClass lives */
    /* nothing is owed to the old one: the new one makes it from our record at its first award */
    [S_BADGE_SET_BACKEND] = "UPDATE badge_classes SET backend = ?2, backend_id = NULL, "
                            "sync_due_at = NULL, sync_attempts = 0, sync_error = NULL, "
                            "updated_at = ?3 WHERE slug = ?1 AND NOT EXISTS (SELECT 1 FROM "
                            "awards WHERE badge_class_id = badge_classes.id)",
    /* '' is the default backend, that of consumers without their own */
    [S_BACKEND_USAGE] =
        "SELECT name, sum(c), sum(b), sum(a) FROM ("
        "SELECT coalesce(backend, '') AS name, 1 AS c, 0 AS b, 0 AS a FROM consumers "
        "UNION ALL SELECT backend, 0, 1, (SELECT count(*) FROM awards "
        "WHERE badge_class_id = badge_classes.id) FROM badge_classes) GROUP BY name ORDER BY name",
    /* ---- webhooks in (hooks.c) ---- */
    [S_HOOK_AWARD_FIND] = "SELECT a.id, a.state, a.attempts, b.backend_id FROM awards a "
                          "JOIN badge_classes b ON b.id = a.badge_class_id "
                          "WHERE a.uid = ?1 AND b.backend = ?2",
    /* issued as the worker would have recorded it: earned at creation, its expiry from it */
    [S_HOOK_ISSUED] =
        "UPDATE awards SET state = 'issued', assertion_id = uid, assertion_url = ?2, "
        "issued_at = created_at, expires_at = (SELECT CASE WHEN b.expires_days > 0 THEN "
        "awards.created_at + b.expires_days * 86400 END FROM badge_classes b "
        "WHERE b.id = awards.badge_class_id), last_error = NULL, updated_at = ?3 "
        "WHERE id = ?1 AND state IN ('queued', 'issuing', 'failed')",
    /*
     * Revoked at the platform already: nothing to send back (revoke_synced);
     * the instance's slug kept as the assertion id, so that an issue
     * answered late does not reopen it (S_AWARD_ISSUED needs it NULL).
     */
    [S_HOOK_REVOKED] = "UPDATE awards SET state = 'revoked', revoked_at = ?2, revoke_reason = ?3, "
                       "revoke_synced = 1, assertion_id = coalesce(assertion_id, uid), "
                       "updated_at = ?2 WHERE id = ?1 AND state != 'revoked'",
    [S_HOOK_COUNT] =
        "INSERT INTO backend_hooks(backend, received, applied, unchanged, ignored, refused, "
        "last_received_at, last_refused_at, last_refusal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
        "nullif(?7, 0), nullif(?8, 0), ?9) ON CONFLICT(backend) DO UPDATE SET "
        "received = received + excluded.received, applied = applied + excluded.applied, "
        "unchanged = unchanged + excluded.unchanged, ignored = ignored + excluded.ignored, "
        "refused = refused + excluded.refused, "
        "last_received_at = coalesce(excluded.last_received_at, last_received_at), "
        "last_refused_at = coalesce(excluded.last_refused_at, last_refused_at), "
        "last_refusal = coalesce(excluded.last_refusal, last_refusal)",
    [S_HOOK_COUNTS_GET] = "SELECT received, applied, unchanged, ignored, refused, "
                          "coalesce(last_received_at, 0), coalesce(last_refused_at, 0), "
                          "last_refusal FROM backend_hooks WHERE backend = ?1",
};

int store_db_err(struct conn *c, int rc, const char *what, struct err *err)
{
    int primary = rc & 0xff;

    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        err_set(err, ERR_UNAVAILABLE, "the database is busy, try again");
    else if (primary == SQLITE_FULL)
        err_set(err, ERR_UNAVAILABLE, "the database disk is full");
    else
        err_set(err, ERR_INTERNAL, "database error while %s", what);
    return err_detail(err, "sqlite: %s (%d) while %s", c && c->db ? sqlite3_errmsg(c->db) : "", rc,
                      what);
}

/*
 * WAL pages between checkpoints. Pages written again and again (the end of
 * the sessions and nonces, hot index pages) are copied to the database once
 * per checkpoint, so rarer checkpoints copy less; 4000 pages (16 MiB with
 * 4 KiB pages) bounds the WAL and what a crash recovery reads.
 */
#define STORE_CKPT_PAGES 4000

static int wal_hook(void *cls, sqlite3 *db, const char *name, int pages)
{
    struct store *s = cls;

    /*
     * Runs on the writer after each commit: wake the checkpointer when the
     * WAL grew by STORE_CKPT_PAGES since its last checkpoint (not merely when it is
     * big: a WAL the checkpointer has not caught up with stays big).
     */
    pthread_mutex_lock(&s->ckpt_mu);
    if (pages < s->wal_pages_at_ckpt)
        s->wal_pages_at_ckpt = 0; /* the WAL was restarted from its beginning */
    s->wal_pages = pages;
    if (pages - s->wal_pages_at_ckpt >= STORE_CKPT_PAGES)
        pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->ckpt_mu);
    return SQLITE_OK;
}

int64_t store_digest63(const void *p, size_t n)
{
    unsigned char h[32];
    uint64_t fp = 0;

    util_sha256(p, n, h);
    for (int b = 0; b < 8; b++)
        fp |= (uint64_t)h[b] << (8 * b);
    return (int64_t)(fp >> 1); /* positive, as SQLite keeps it; fixed byte order */
}

int64_t store_sourcedid_fp(struct str sourcedid)
{
    return store_digest63(sourcedid.ptr ? sourcedid.ptr : "", sourcedid.len);
}

/* lb_sourcedid_fp(text): store_sourcedid_fp, for migration 9. */
static void sql_sourcedid_fp(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const unsigned char *p = sqlite3_value_text(argv[0]);

    (void)argc;
    sqlite3_result_int64(
        ctx, store_sourcedid_fp((struct str){ p ? (const char *)p : "",
                                              p ? (size_t)sqlite3_value_bytes(argv[0]) : 0 }));
}

/* lb_nonce_fp(consumer_id, ts, nonce): schema 6's digest, for migration 6 (NULL: a bad nonce). */
static void sql_nonce_fp(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const unsigned char *p = sqlite3_value_text(argv[2]);
    struct str nonce = { p ? (const char *)p : "", p ? (size_t)sqlite3_value_bytes(argv[2]) : 0 };
    int64_t fp;

    (void)argc;
    if (store_nonce_fp_v6(sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]), nonce, &fp,
                          NULL) < 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_int64(ctx, fp);
}

int store_conn_open(struct store *s, struct conn **out, struct err *err)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    int rc, on = 1;
    char *msg = NULL;

    *out = NULL;
    /* no SQLITE_OPEN_CREATE: store_open made the file (0600), and a database gone is an error */
    rc = sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        /* sqlite's reason is no secret and is what an operator needs (the path: cli/ adds it) */
        err_set(err, ERR_INTERNAL, "cannot open the database: %s",
                c->db ? sqlite3_errmsg(c->db) : "out of memory");
        err_detail(err, "sqlite: %s: %s", s->path, c->db ? sqlite3_errmsg(c->db) : "out of memory");
        store_conn_close(c);
        return -1;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, &on);
    /* lowered limits: nothing we store comes near them (sqlite security.html) */
    sqlite3_limit(c->db, SQLITE_LIMIT_LENGTH, 8 * 1024 * 1024);
    sqlite3_limit(c->db, SQLITE_LIMIT_SQL_LENGTH, 64 * 1024);
    sqlite3_limit(c->db, SQLITE_LIMIT_COLUMN, 100);
    sqlite3_limit(c->db, SQLITE_LIMIT_EXPR_DEPTH, 50);
    sqlite3_limit(c->db, SQLITE_LIMIT_COMPOUND_SELECT, 5);
    sqlite3_limit(c->db, SQLITE_LIMIT_VARIABLE_NUMBER, 64);
    sqlite3_limit(c->db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(c->db, SQLITE_LIMIT_TRIGGER_DEPTH, 10);
    sqlite3_busy_timeout(c->db, LIMIT_STORE_BUSY_MS);
    sqlite3_create_function_v2(c->db, "lb_nonce_fp", 3,
                               SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                               sql_nonce_fp, NULL, NULL, NULL);
    sqlite3_create_function_v2(c->db, "lb_sourcedid_fp", 1,
                               SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                               sql_sourcedid_fp, NULL, NULL, NULL);
    /* not deterministic: it counts what it changed on `c` */
    sqlite3_create_function_v2(c->db, "lb_svg_rule", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, c,
                               store_sql_svg_rule, NULL, NULL, NULL);
    /* connection setup: fixed pragmas, no input involved */
    rc = sqlite3_exec(c->db,
                      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                      "PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; "
                      "PRAGMA trusted_schema = OFF; PRAGMA temp_store = MEMORY; "
                      /*
                       * Debian builds SQLite with SECURE_DELETE: every page a
                       * purge frees would be zeroed and written through the
                       * WAL. FAST zeroes deleted content only where that
                       * writes nothing more.
                       */
                      "PRAGMA secure_delete = FAST; "
                      /* a bit over LIMIT_STORE_WAL_RESTART_PAGES: the WAL file is reused */
                      "PRAGMA journal_size_limit = 83886080; PRAGMA cache_size = -1024;",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "cannot set up the database: %s", msg ? msg : "");
        err_detail(err, "sqlite: %s: %s", s->path, msg ? msg : "");
        sqlite3_free(msg);
        store_conn_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

void store_conn_close(struct conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    sqlite3_close(c->db);
    free(c);
}

sqlite3_stmt *store_stmt(struct conn *c, enum stmt_id id, struct err *err)
{
    sqlite3_stmt *st = c->stmts[id];
    int rc;

    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    rc = sqlite3_prepare_v3(c->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        store_db_err(c, rc, "preparing a statement", err);
        return NULL;
    }
    c->stmts[id] = st;
    return st;
}

int store_exec(struct conn *c, enum stmt_id id, struct err *err)
{
    sqlite3_stmt *st = store_stmt(c, id, err);
    int rc;

    if (!st)
        return -1;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return store_db_err(c, rc, "writing", err);
    return 0;
}

int store_step_done(struct conn *c, sqlite3_stmt *st, const char *what, struct err *err)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_db_err(c, rc, what, err);
    return 0;
}

int store_bind_str(sqlite3_stmt *st, int idx, struct str v)
{
    if (!v.ptr)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text64(st, idx, v.ptr, v.len, SQLITE_STATIC, SQLITE_UTF8);
}

void store_col_copy(sqlite3_stmt *st, int col, char *dst, size_t dstlen)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;

    if (n >= dstlen)
        n = dstlen - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

const char *store_col_arena(sqlite3_stmt *st, int col, struct arena *a)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    if (!t)
        return NULL;
    return arena_memdupz(a, t, (size_t)sqlite3_column_bytes(st, col));
}

struct conn *store_reader_get(struct store *s, struct err *err)
{
    struct conn *c = NULL;

    pthread_mutex_lock(&s->pool_mu);
    while (!s->free_readers && s->nreaders >= LIMIT_STORE_READERS)
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
    if (s->free_readers) {
        c = s->free_readers;
        s->free_readers = c->next;
        pthread_mutex_unlock(&s->pool_mu);
        return c;
    }
    s->nreaders++;
    pthread_mutex_unlock(&s->pool_mu);
    if (store_conn_open(s, &c, err) < 0) {
        pthread_mutex_lock(&s->pool_mu);
        s->nreaders--;
        pthread_cond_signal(&s->pool_cv);
        pthread_mutex_unlock(&s->pool_mu);
        return NULL;
    }
    return c;
}

void store_reader_put(struct store *s, struct conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&s->pool_mu);
    c->next = s->free_readers;
    s->free_readers = c;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

/* A batch's time, for /metrics: the writer takes the stats lock once per batch anyway. */
static void tx_observe(struct store *s, int64_t ns)
{
    static const int64_t bounds_us[STORE_TX_BUCKETS] = STORE_TX_BOUNDS_US;
    size_t i = 0;

    while (i < STORE_TX_BUCKETS && ns > bounds_us[i] * 1000)
        i++;
    pthread_mutex_lock(&s->stats_mu);
    s->stats.tx_le[i]++;
    s->stats.tx_ns += (uint64_t)ns;
    pthread_mutex_unlock(&s->stats_mu);
}

/*
 * The WAL is synced through a descriptor of our own, opened once: fdatasync
 * covers the file, whichever descriptor names it, and SQLite removes the WAL
 * only when the last connection to the database closes, which the store's
 * own connections never are while it is open.
 *
 * Group commit. The connections that write (the launch writer and the admin
 * connection) run with synchronous = NORMAL, so COMMIT writes the WAL but
 * does not wait for the disk, and the write lock is free again at once.
 * Each commit then counts itself (store_commit_seq) and waits here until an
 * fdatasync that began after it has returned: one caller runs the
 * fdatasync for everyone committed so far, the others wait for it, and a
 * commit made while one runs is covered by the next. Nothing is answered or
 * acted on before its own sync, so a power cut loses only changes nobody
 * was told about; see the README's "Durability".
 */
static int wal_fd_open(struct store *s)
{
    if (s->wal_fd < 0) {
        char path[4096];

        if (snprintf(path, sizeof(path), "%s-wal", s->path) >= (int)sizeof(path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        s->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    return s->wal_fd;
}

uint64_t store_commit_seq(struct store *s)
{
    return __atomic_add_fetch(&s->commits, 1, __ATOMIC_SEQ_CST);
}

int store_durable(struct store *s, uint64_t seq, struct err *err)
{
    int ret = 0;

    pthread_mutex_lock(&s->dur_mu);
    while (s->dur_synced < seq) {
        uint64_t upto;
        int fd, rc, e = 0;

        if (s->dur_busy) {
            pthread_cond_wait(&s->dur_cv, &s->dur_mu);
            continue;
        }
        /* every commit counted so far has returned from COMMIT: this sync covers it */
        upto = __atomic_load_n(&s->commits, __ATOMIC_SEQ_CST);
        s->dur_busy = true;
        fd = wal_fd_open(s);
        pthread_mutex_unlock(&s->dur_mu);
        rc = fd < 0 ? -1 : fdatasync(fd);
        if (rc < 0)
            e = errno;
        pthread_mutex_lock(&s->dur_mu);
        s->dur_busy = false;
        pthread_cond_broadcast(&s->dur_cv);
        if (rc < 0) {
            LOG(LOG_LEVEL_ERROR, "database: fdatasync of the write-ahead log failed",
                LOG_STR("error", strerror(e)));
            err_set(err, ERR_UNAVAILABLE, "the change could not be saved, please try again");
            err_detail(err, "fdatasync %s-wal: %s", s->path, strerror(e));
            ret = -1;
            break;
        }
        if (upto > s->dur_synced)
            s->dur_synced = upto;
        pthread_mutex_lock(&s->stats_mu);
        s->stats.wal_syncs++;
        pthread_mutex_unlock(&s->stats_mu);
    }
    pthread_mutex_unlock(&s->dur_mu);
    return ret;
}

static void *sync_main(void *arg)
{
    struct store *s = arg;

    pthread_setname_np(pthread_self(), "lb-wal-sync");
    pthread_mutex_lock(&s->sync_mu);
    for (;;) {
        struct store_launch_job *j;

        while (!s->sync_head && !s->sync_stop)
            pthread_cond_wait(&s->sync_cv, &s->sync_mu);
        if (!s->sync_head)
            break; /* stopping, and all answered */
        j = s->sync_head;
        s->sync_head = s->sync_tail = NULL;
        pthread_mutex_unlock(&s->sync_mu);
        /* every batch in the list committed before it was handed over: counted already */
        if (store_durable(s, __atomic_load_n(&s->commits, __ATOMIC_SEQ_CST), NULL) < 0) {
            /*
             * Committed, but not known to be on the disk: not answered as
             * saved. The nonces stay claimed (the rows are there): the LMS
             * must launch anew, which a learner's click does.
             */
            for (struct store_launch_job *k = j; k; k = k->next) {
                if (k->status == 0) {
                    k->status = -1;
                    err_clear(&k->err);
                    err_set(&k->err, ERR_UNAVAILABLE,
                            "the launch could not be saved, please try again");
                }
            }
        }
        while (j) {
            struct store_launch_job *next = j->next;

            j->done(j);
            j = next;
        }
        pthread_mutex_lock(&s->sync_mu);
    }
    pthread_mutex_unlock(&s->sync_mu);
    return NULL;
}

/* Hands a committed batch to the syncer (in order: the list keeps it). */
static void sync_enqueue(struct store *s, struct store_launch_job **batch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        batch[i]->next = i + 1 < n ? batch[i + 1] : NULL;
    pthread_mutex_lock(&s->sync_mu);
    if (s->sync_tail)
        s->sync_tail->next = batch[0];
    else
        s->sync_head = batch[0];
    s->sync_tail = batch[n - 1];
    pthread_cond_signal(&s->sync_cv);
    pthread_mutex_unlock(&s->sync_mu);
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    struct store_launch_job *batch[LIMIT_STORE_BATCH];
    int64_t t0;

    pthread_setname_np(pthread_self(), "lb-writer");
    for (;;) {
        size_t n = 0;

        pthread_mutex_lock(&s->q_mu);
        while (!s->q_head && !s->stopping)
            pthread_cond_wait(&s->q_cv, &s->q_mu);
        if (!s->q_head && s->stopping) {
            pthread_mutex_unlock(&s->q_mu);
            break;
        }
        while (s->q_head && n < LIMIT_STORE_BATCH) {
            batch[n++] = s->q_head;
            s->q_head = s->q_head->next;
            s->q_len--;
        }
        if (!s->q_head)
            s->q_tail = NULL;
        pthread_mutex_unlock(&s->q_mu);

        t0 = util_mono_ns();
        store_launch_batch(s, batch, n);
        tx_observe(s, util_mono_ns() - t0);
        sync_enqueue(s, batch, n);
    }
    return NULL;
}

static void *ckpt_main(void *arg)
{
    struct store *s = arg;

    pthread_setname_np(pthread_self(), "lb-checkpoint");
    pthread_mutex_lock(&s->ckpt_mu);
    while (!s->ckpt_stop) {
        struct timespec until;
        int log = -1, done = -1, rc, started_at;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        if (s->wal_pages - s->wal_pages_at_ckpt < STORE_CKPT_PAGES)
            pthread_cond_timedwait(&s->ckpt_cv, &s->ckpt_mu, &until);
        if (s->ckpt_stop)
            break;
        started_at = s->wal_pages;
        pthread_mutex_unlock(&s->ckpt_mu);
        /*
         * PASSIVE never waits for the writer or readers; what it could not
         * copy waits for the next round. Once all is copied, the writer's
         * next transaction starts the WAL over from its beginning.
         */
        rc = sqlite3_wal_checkpoint_v2(s->cconn->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        pthread_mutex_lock(&s->stats_mu);
        s->stats.checkpoints++;
        pthread_mutex_unlock(&s->stats_mu);
        pthread_mutex_lock(&s->ckpt_mu);
        /* busy (the writer is catching up itself): count this round as done all the same */
        s->wal_pages_at_ckpt = rc == SQLITE_OK && log >= 0 ? log : started_at;
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

static void store_free(struct store *s)
{
    while (s->free_readers) {
        struct conn *c = s->free_readers;

        s->free_readers = c->next;
        store_conn_close(c);
    }
    store_conn_close(s->admin);
    store_conn_close(s->wconn);
    store_wcache_free(s->wcache);
    if (s->cconn) {
        /*
         * A last full checkpoint so the WAL does not outlive the server; not
         * waited for when another process holds the database (the WAL then
         * stays, and the next start checkpoints it): a stop never waits out
         * a busy timeout here.
         */
        sqlite3_busy_timeout(s->cconn->db, 0);
        sqlite3_wal_checkpoint_v2(s->cconn->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        store_conn_close(s->cconn);
    }
    pthread_mutex_destroy(&s->pool_mu);
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->admin_mu);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->ckpt_mu);
    pthread_cond_destroy(&s->ckpt_cv);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_cond_destroy(&s->sync_cv);
    pthread_mutex_destroy(&s->dur_mu);
    pthread_cond_destroy(&s->dur_cv);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    pthread_mutex_destroy(&s->stats_mu);
    pthread_mutex_destroy(&s->ccache_mu);
    store_nonce_window_release(&s->nonces);
    free(s->path);
    free(s);
}

/*
 * Makes the database file when there is none, mode 0600 whatever the umask
 * (sqlite would make it 0644 less the umask): it holds consumer secrets.
 * sqlite gives the -wal and -shm files it makes the database's mode.
 * With STORE_OPEN_NO_CREATE a missing file is ERR_NOTFOUND.
 */
static int db_file_ready(const char *path, unsigned flags, struct err *err)
{
    struct stat st;
    int fd;

    if (stat(path, &st) == 0 || errno != ENOENT)
        return 0; /* there, or sqlite says why it cannot be opened */
    if (flags & STORE_OPEN_NO_CREATE) {
        err_set(err, ERR_NOTFOUND, "the database does not exist");
        return err_detail(err, "%s: %s", path, strerror(ENOENT));
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) {
        err_set(err, ERR_INTERNAL, "cannot create the database: %s", strerror(errno));
        return err_detail(err, "%s: %s", path, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

/*
 * SQLite's process-wide settings, before its first use: no memory
 * statistics (nothing reads them, and keeping them takes one global mutex on
 * every allocation and free of every connection, which the launch writer,
 * the readers and the workers then contend for).
 */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
}

int store_open(struct store **out, const char *path, unsigned flags, struct err *err)
{
    struct store *s = xcalloc(1, sizeof(*s));
    int version = 0, applied = 0;

    pthread_once(&sqlite_once, sqlite_setup);
    *out = NULL;
    s->path = xstrdup(path);
    s->flags = flags;
    s->nonce_window = LIMIT_OAUTH_WINDOW_DEFAULT;
    store_nonce_window_init(&s->nonces);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    pthread_mutex_init(&s->admin_mu, NULL);
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_cond_init(&s->q_cv, NULL);
    pthread_mutex_init(&s->ckpt_mu, NULL);
    pthread_cond_init(&s->ckpt_cv, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_cond_init(&s->sync_cv, NULL);
    pthread_mutex_init(&s->dur_mu, NULL);
    pthread_cond_init(&s->dur_cv, NULL);
    s->wal_fd = -1;
    pthread_mutex_init(&s->stats_mu, NULL);
    pthread_mutex_init(&s->ccache_mu, NULL);

    if (db_file_ready(path, flags, err) < 0 || store_conn_open(s, &s->admin, err) < 0)
        goto fail;
    if (!(flags & STORE_OPEN_NO_MIGRATE) &&
        store_migrate_conn(s->admin, store_schema_latest(), &applied, err) < 0)
        goto fail;
    if (store_version_conn(s->admin, &version, err) < 0)
        goto fail;
    if (version > store_schema_latest()) {
        err_set(err, ERR_INVALID,
                "the database schema (version %d) is newer than this build knows (%d)", version,
                store_schema_latest());
        goto fail;
    }
    /*
     * From here on its commits are made durable by store_durable after the
     * write lock is released (store_admin_end), not inside COMMIT.
     */
    if (sqlite3_exec(s->admin->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "cannot set up the database");
        goto fail;
    }
    /* before any other connection prepares a statement: dropping the table changes the schema */
    if (version >= 8 && store_nonce_v6_open(s, s->admin, util_now(), err) < 0)
        goto fail;
    if (flags & STORE_OPEN_WRITER) {
        if (store_conn_open(s, &s->wconn, err) < 0 || store_conn_open(s, &s->cconn, err) < 0)
            goto fail;
        sqlite3_wal_hook(s->wconn->db, wal_hook, s);
        /* the writer's working set (right edges, recent users) deserves more cache */
        sqlite3_exec(s->wconn->db, "PRAGMA cache_size = -4096", NULL, NULL, NULL);
        /* its commits are synced (store_durable) by the syncer before they are answered */
        if (sqlite3_exec(s->wconn->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) !=
            SQLITE_OK) {
            err_set(err, ERR_INTERNAL, "cannot set up the database writer");
            goto fail;
        }
        {
            /* sized for the rows there are: a term's working set fits without evictions */
            static const char *const wt[] = { "consumers", "users", "contexts", "resource_links" };
            static const char *const mt[] = { "enrollments", "outcome_bindings" };
            int64_t wrows[4] = { 0 }, mrows[2] = { 0 };

            for (int i = 0; i < 4; i++) {
                if (store_count(s, wt[i], &wrows[i], err) < 0)
                    goto fail;
            }
            for (int i = 0; i < 2; i++) {
                if (store_count(s, mt[i], &mrows[i], err) < 0)
                    goto fail;
            }
            s->wcache = store_wcache_new(wrows, mrows);
        }
        /* the writer remembers only the nonces it logs itself: a stop's leftovers go first */
        if (store_nonce_log_flush(s, err) < 0 ||
            store_nonce_window_load(s, s->wconn, util_now(), err) < 0)
            goto fail;
        if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
            err_set(err, ERR_INTERNAL, "cannot start the database writer");
            goto fail;
        }
        s->writer_started = true;
        if (pthread_create(&s->syncer, NULL, sync_main, s) != 0) {
            err_set(err, ERR_INTERNAL, "cannot start the database syncer");
            store_close(s);
            return -1;
        }
        s->syncer_started = true;
        if (pthread_create(&s->ckpt, NULL, ckpt_main, s) != 0) {
            err_set(err, ERR_INTERNAL, "cannot start the checkpointer");
            store_close(s);
            return -1;
        }
        s->ckpt_started = true;
    }
    *out = s;
    return 0;
fail:
    if (s->writer_started) {
        store_close(s);
        return -1;
    }
    store_free(s);
    return -1;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->writer_started) {
        pthread_mutex_lock(&s->q_mu);
        s->stopping = true;
        pthread_cond_broadcast(&s->q_cv);
        pthread_mutex_unlock(&s->q_mu);
        pthread_join(s->writer, NULL);
    }
    if (s->syncer_started) {
        /* after the writer: it answers every batch the writer handed it, then stops */
        pthread_mutex_lock(&s->sync_mu);
        s->sync_stop = true;
        pthread_cond_broadcast(&s->sync_cv);
        pthread_mutex_unlock(&s->sync_mu);
        pthread_join(s->syncer, NULL);
    }
    if (s->ckpt_started) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_stop = true;
        pthread_cond_broadcast(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
        pthread_join(s->ckpt, NULL);
    }
    store_free(s);
}

void store_set_nonce_window(struct store *s, int64_t seconds)
{
    s->nonce_window = seconds;
}

int store_ping(struct store *s, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    int ret;

    if (!c)
        return -1;
    ret = store_exec(c, S_PING, err);
    store_reader_put(s, c);
    return ret;
}

/* min(next_attempt_at) of statement `id` (binding `now`) on a connection of its own. */
static int health_due(sqlite3 *db, enum stmt_id id, int64_t now, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql_text[id], -1, &st, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = sqlite3_step(st);
        *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        rc = rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

int store_health(struct store *s, int64_t now, int64_t *award, int64_t *passback, struct err *err)
{
    sqlite3 *db = NULL;
    int rc;

    *award = *passback = 0;
    /* never SQLITE_OPEN_CREATE: a database gone from its path is not made anew */
    rc = sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, LIMIT_STORE_BUSY_MS);
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        rc = health_due(db, S_METRICS_AWARD_DUE, now, award);
    }
    if (rc == SQLITE_OK)
        rc = health_due(db, S_METRICS_PASSBACK_DUE, now, passback);
    if (rc != SQLITE_OK) {
        /* sqlite's reason is no secret and says what an operator must look at */
        err_set(err, ERR_UNAVAILABLE, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        err_detail(err, "sqlite: %s: %s", s->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    }
    sqlite3_close_v2(db);
    return rc == SQLITE_OK ? 0 : -1;
}

void store_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->stats_mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_mu);
}

static void conn_reprepares(struct conn *c, int *most, const char **sql)
{
    for (int i = 0; c && i < S__COUNT; i++) {
        int n = c->stmts[i] ? sqlite3_stmt_status(c->stmts[i], SQLITE_STMTSTATUS_REPREPARE, 0) : 0;

        if (n > *most) {
            *most = n;
            *sql = sql_text[i];
        }
    }
}

int store_stmt_reprepares(struct store *s, const char **sql)
{
    const char *worst = NULL;
    int most = 0;

    pthread_mutex_lock(&s->pool_mu);
    for (struct conn *c = s->free_readers; c; c = c->next)
        conn_reprepares(c, &most, &worst);
    pthread_mutex_unlock(&s->pool_mu);
    pthread_mutex_lock(&s->admin_mu);
    conn_reprepares(s->admin, &most, &worst);
    pthread_mutex_unlock(&s->admin_mu);
    conn_reprepares(s->wconn, &most, &worst); /* idle: no launch is running (see store.h) */
    if (sql)
        *sql = worst;
    return most;
}

int store_count(struct store *s, const char *table, int64_t *out, struct err *err)
{
    static const struct {
        const char *table;
        enum stmt_id id;
    } tables[] = {
        { "consumers", S_COUNT_CONSUMERS },
        { "nonces", S_COUNT_NONCES },
        { "users", S_COUNT_USERS },
        { "contexts", S_COUNT_CONTEXTS },
        { "resource_links", S_COUNT_LINKS },
        { "enrollments", S_COUNT_ENROLLMENTS },
        { "outcome_bindings", S_COUNT_BINDINGS },
        { "sessions", S_COUNT_SESSIONS },
        { "badge_classes", S_COUNT_BADGES },
        { "awards", S_COUNT_AWARDS },
        { "grades", S_COUNT_GRADES },
        { "completions", S_COUNT_COMPLETIONS },
    };
    struct conn *c;
    sqlite3_stmt *st;
    int ret = -1, rc;

    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        if (strcmp(tables[i].table, table) != 0)
            continue;
        c = store_reader_get(s, err);
        if (!c)
            return -1;
        st = store_stmt(c, tables[i].id, err);
        if (st) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                *out = sqlite3_column_int64(st, 0);
                ret = 0;
            } else {
                store_db_err(c, rc, "counting", err);
            }
            sqlite3_reset(st);
        }
        store_reader_put(s, c);
        return ret;
    }
    return err_set(err, ERR_INVALID, "unknown table '%s'", table);
}
