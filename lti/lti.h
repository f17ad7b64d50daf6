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

/*
 * Verifies a launch (POST) whose form is `body` and whose URL's query is
 * `query`, strictly first (RFC 5849: both counted); then, only if that
 * fails, as Canvas signs a launch URL with a query: each query pair that
 * the body repeats with the same value counted once. Fails as
 * lti_oauth_verify does.
 */
int lti_oauth_verify_launch(const struct lti_oauth *o, struct str base_uri,
                            const struct form *query, const struct form *body,
                            struct str consumer_secret, struct err *err);

/* Fails with ERR_REPLAY when oauth_timestamp is more than `window` seconds from `now`. */
int lti_oauth_check_time(const struct lti_oauth *o, int64_t now, int64_t window, struct err *err);

/*
 * Parses an "Authorization: OAuth ..." header (RFC 5849 section 3.5.1) into
 * decoded parameters in `arena`; realm is left out (it is not signed).
 * ERR_UNAUTHORIZED when the scheme is not OAuth, ERR_INVALID when a
 * parameter is malformed or its name is not one (form_name_ok).
 */
int lti_oauth_header_parse(struct arena *arena, struct str header, struct form *out /* OUT */,
                           struct err *err);

/* Appends base64(SHA-1(body)) (the oauth_body_hash extension), or SHA-256 for HMAC-SHA256. */
int lti_oauth_body_hash(struct buf *out, enum lti_sig_method m, const void *body, size_t len,
                        struct err *err);

/* What signing a request in the Authorization header needs. */
struct lti_oauth_signer {
    struct str url; /* absolute; its query parameters are signed too */
    struct str consumer_key, consumer_secret;
    enum lti_sig_method method;
    struct str body_hash; /* null view: none (a form request) */
    struct str nonce;     /* null view: a random one */
    int64_t timestamp;    /* 0: now */
};
/* Appends the value of an Authorization header: `OAuth realm="",oauth_...="..."`. */
int lti_oauth_authorization(struct buf *out, const struct lti_oauth_signer *s, struct err *err);

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
    bool total_score_accepted; /* Canvas' ext_outcome_result_total_score_accepted */
    struct str return_url;     /* only when it is an absolute http(s) URL */
    struct str document_target, locale, product_family;
    struct str lms; /* "canvas", "moodle", "openedx" or the product family code */
    /*
     * The activity's points possible (Canvas' custom_canvas_assignment_points_possible),
     * so that scores read as the LMS shows them; 0: not sent, or not a number in
     * (0, LTI_POINTS_MAX] (an unsubstituted "$Canvas..." variable is not an error).
     */
    double points_possible;
};

/* The largest points possible taken from a launch. */
#define LTI_POINTS_MAX 1000000.0

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

/* ---- Basic Outcomes (pox.c) ------------------------------------------------ */

/* Room for a formatted score. */
#define LTI_SCORE_BUF 32

/*
 * Reads a score as LTI 1.1 writes it: a decimal from 0.0 to 1.0 ("0.8", "1",
 * ".75"), surrounding whitespace allowed, whatever the process locale. No
 * sign, exponent, comma, NaN or infinity. -1 when it is not one.
 */
int lti_score_parse(struct str s, double *out /* OUT */);
/* The shortest decimal that reads back as `score`, in the C locale. */
void lti_score_format(double score, char out[static LTI_SCORE_BUF]);

enum lti_pox_op {
    LTI_POX_REPLACE,
    LTI_POX_READ,
    LTI_POX_DELETE,
    LTI_POX_OTHER, /* an operation ltibadges does not support */
};
enum lti_pox_code {
    LTI_POX_SUCCESS,
    LTI_POX_PROCESSING,
    LTI_POX_FAILURE,
    LTI_POX_UNSUPPORTED,
};
/* "replaceResult", ...; "success", ... */
const char *lti_pox_op_name(enum lti_pox_op op);
const char *lti_pox_code_name(enum lti_pox_code c);

/* A request the tool sends to an LMS. */
struct lti_pox_message {
    enum lti_pox_op op;
    const char *message_id; /* unique per message */
    const char *sourcedid;
    bool has_score; /* replace: with result/resultScore */
    double score;
    const char *data_url, *data_text; /* replace: resultData, one or neither */
};
int lti_pox_build_request(struct buf *out, const struct lti_pox_message *m, struct err *err);

/* What an LMS answered; strings live in the arena. */
struct lti_pox_response {
    enum lti_pox_code code;
    const char *description, *message_ref; /* NULL when absent */
    bool read_answered;                    /* a readResultResponse came */
    bool has_score;                        /* it held a score ("" means none) */
    double score;
};
/* ERR_INVALID for anything that is not a well-formed POX response (the reason says why). */
int lti_pox_parse_response(struct arena *a, const char *body, size_t len,
                           struct lti_pox_response *out /* OUT */, struct err *err);

/* A request an LMS sent to the tool; strings live in the arena. */
struct lti_pox_request {
    enum lti_pox_op op;
    const char *op_name;    /* the body element, e.g. "replaceResultRequest" */
    const char *message_id; /* imsx_messageIdentifier, NULL until found */
    const char *sourcedid;
    bool has_score;
    double score;
    const char *score_text;
    const char *data_text, *data_url; /* replace: resultData, NULL when absent */
};
/*
 * Parses a request safely: no DTD (a DOCTYPE is refused before anything
 * in it is read), no entities, no network, at most LIMIT_POX_BODY bytes and
 * LIMIT_POX_DEPTH levels. An unknown operation parses (op LTI_POX_OTHER);
 * a malformed message, a missing sourcedid or a replace whose score is not
 * a decimal from 0.0 to 1.0 fails with ERR_INVALID and a reason, `out`
 * keeping what was read (message_id for the answer's reference).
 */
int lti_pox_parse_request(struct arena *a, const char *body, size_t len,
                          struct lti_pox_request *out /* OUT */, struct err *err);

/* An answer of the tool to an LMS's request. */
struct lti_pox_answer {
    enum lti_pox_code code;
    enum lti_pox_op op;      /* LTI_POX_OTHER: an empty body */
    const char *message_id;  /* ours, unique */
    const char *message_ref; /* the request's, NULL when it had none */
    const char *operation_ref;
    const char *description;
    bool has_score; /* read: the stored score, or an empty textString */
    double score;
};
int lti_pox_build_response(struct buf *out, const struct lti_pox_answer *a, struct err *err);

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
