/*
 * lti/lti.h - the LTI 1.1 protocol: OAuth 1.0a signatures (RFC 5849), launch
 * parsing and the role vocabulary, and the tool's XML configuration.
 *
 * lti/ knows nothing of HTTP servers or SQL: it works on parsed forms
 * (base/form.h) and fills plain structs whose views borrow from the form.
 */
#ifndef LTI_LTI_H
#define LTI_LTI_H

#include "base/base.h"

/* ---- OAuth 1.0a ------------------------------------------------------- */

enum lti_sig_method {
    LTI_SIG_HMAC_SHA1,
    LTI_SIG_HMAC_SHA256,
};

/* The protocol parameters of one request; views borrow from the forms they came from. */
struct lti_oauth {
    struct str consumer_key;
    struct str signature_method;
    struct str signature;
    struct str timestamp;
    struct str nonce;
    struct str version;   /* null view when absent */
    struct str body_hash; /* oauth_body_hash, for POX requests; null view when absent */
    enum lti_sig_method method;
    int64_t ts;
};

/*
 * Finds the oauth_* parameters among `nlists` forms (query, body, header):
 * every protocol parameter at most once, the required ones present,
 * oauth_signature_method HMAC-SHA1 or HMAC-SHA256, oauth_version 1.0 when
 * given, oauth_timestamp a positive integer, the nonce within its limit.
 * Fails with ERR_INVALID naming the parameter.
 */
int lti_oauth_params(const struct form *const *lists, size_t nlists,
                     struct lti_oauth *out /* OUT */, struct err *err);

/*
 * Normalizes an absolute http(s) URL as RFC 5849 section 3.4.1.2 requires:
 * scheme and host lower-cased, default port dropped, no query or fragment,
 * "/" for an empty path. The query, if any, is returned through `query`
 * (a view into `url`, may be NULL). Fails with ERR_INVALID.
 */
int lti_url_normalize(struct buf *out, struct str url, struct str *query /* OUT, may be NULL */,
                      struct err *err);

/*
 * Appends the signature base string: METHOD & enc(base_uri) & enc(params),
 * params being every parameter of every list but oauth_signature (and
 * realm, which only the Authorization header carries), each name and value
 * RFC 3986-encoded, sorted by encoded name then encoded value.
 * `base_uri` must already be normalized.
 */
int lti_oauth_base_string(struct buf *out, struct str method, struct str base_uri,
                          const struct form *const *lists, size_t nlists, struct err *err);

/* Appends the base64 signature of `base` with enc(consumer_secret)&enc(token_secret). */
int lti_oauth_sign(struct buf *out, enum lti_sig_method m, struct str base,
                   struct str consumer_secret, struct str token_secret, struct err *err);

/*
 * Verifies `o->signature` over the request in constant time. Fails with
 * ERR_UNAUTHORIZED ("signature does not match") and nothing else learned.
 */
int lti_oauth_verify(const struct lti_oauth *o, struct str method, struct str base_uri,
                     const struct form *const *lists, size_t nlists, struct str consumer_secret,
                     struct err *err);

/* Fails with ERR_REPLAY when oauth_timestamp is more than `window` seconds from `now`. */
int lti_oauth_check_time(const struct lti_oauth *o, int64_t now, int64_t window, struct err *err);

/* ---- Launches --------------------------------------------------------- */

/* What a launch says the user is, in the launch's context (and the institution). */
enum lti_role_flags {
    LTI_ROLE_LEARNER = 1 << 0,
    LTI_ROLE_INSTRUCTOR = 1 << 1,
    LTI_ROLE_TEACHING_ASSISTANT = 1 << 2,
    LTI_ROLE_CONTENT_DEVELOPER = 1 << 3,
    LTI_ROLE_ADMINISTRATOR = 1 << 4, /* of the context */
    LTI_ROLE_MENTOR = 1 << 5,
    LTI_ROLE_MEMBER = 1 << 6,
    LTI_ROLE_MANAGER = 1 << 7,
    LTI_ROLE_SYSADMIN = 1 << 8, /* urn:lti:sysrole or instrole Administrator/SysAdmin */
};

/* Roles that see the instructor's page and may configure badges. */
#define LTI_ROLES_STAFF                                                                            \
 (LTI_ROLE_INSTRUCTOR | LTI_ROLE_TEACHING_ASSISTANT | LTI_ROLE_CONTENT_DEVELOPER |                 \
  LTI_ROLE_ADMINISTRATOR | LTI_ROLE_SYSADMIN)

/*
 * Maps an LTI 1.1 roles list (comma-separated short names such as
 * "Instructor", Open edX's "Student", and urn:lti:role|instrole|sysrole URNs
 * with sub-roles) to flags. Institution roles other than administrators are
 * ignored: being an instructor somewhere in the institution (Canvas'
 * ext_roles) says nothing about this course.
 */
unsigned lti_roles_parse(struct str roles);

/* "instructor" when any staff flag is set, "learner" otherwise. */
const char *lti_roles_view(unsigned flags);

/* One basic-lti-launch-request; views borrow from the form. Absent fields are null views. */
struct lti_launch {
    struct str message_type, version;
    struct str user_id, given_name, family_name, full_name, email, person_sourcedid;
    struct str context_id, context_title, context_label;
    struct str resource_link_id, resource_link_title;
    struct str roles, ext_roles;
    unsigned role_flags;
    struct str mode; /* custom_badge_mode, lower-cased in `mode_buf` */
    char mode_buf[65];
    struct str outcome_service_url, result_sourcedid, outcome_data_accepted;
    struct str return_url; /* only when it is an absolute http(s) URL */
    struct str document_target, locale, product_family;
    struct str lms; /* "canvas", "moodle", "openedx" or the product family code */
};

/*
 * Reads the return URL alone, so that an LTI-level refusal of a verified
 * launch can be sent back to the LMS. Null view unless absolute http(s).
 */
struct str lti_launch_return_url(const struct form *f);

/*
 * Parses and checks a launch whose signature was verified:
 * lti_message_type basic-lti-launch-request, lti_version LTI-1p0,
 * resource_link_id and user_id present, every field within its limit and
 * without control characters. Fails with ERR_INVALID naming the parameter.
 */
int lti_launch_parse(const struct form *f, struct lti_launch *out /* OUT */, struct err *err);

/* ---- Tool configuration ---------------------------------------------- */

struct lti_tool_info {
    const char *title;
    const char *description;
    const char *launch_url; /* absolute */
    const char *icon_url;   /* absolute, may be NULL */
    const char *domain;     /* host of the public URL, for Canvas */
    const char *vendor_url; /* the tool's home page (the public URL), may be NULL */
};

/*
 * Appends the IMS Common Cartridge basic LTI link (cartridge_basiclti_link)
 * for the tool, with Canvas' extensions (privacy_level public, course
 * navigation placement) and the vendor block the IMS schema requires,
 * elements in the schema's order, built with libxml2.
 */
int lti_config_xml(struct buf *out, const struct lti_tool_info *info, struct err *err);

#endif
