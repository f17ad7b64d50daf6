/*
 * backends/backends.h - one small interface in front of every issuing
 * platform: make sure a BadgeClass exists there, issue an assertion, revoke
 * it, find one issued before. Every call answers ok, retryable (with an
 * optional retry-after), auth (the credentials were refused after a
 * refresh) or permanent (with the platform's message). Backends know
 * nothing of the database or HTTP requests: awards/ gives them plain
 * structs and records what they answer.
 */
#ifndef BACKENDS_BACKENDS_H
#define BACKENDS_BACKENDS_H

#include "base/base.h"

enum backend_status {
    BACKEND_OK,
    BACKEND_RETRY,     /* network, 5xx, 429: try again later */
    BACKEND_AUTH,      /* credentials refused: an operator must act; retried slowly */
    BACKEND_PERMANENT, /* the platform refused this request for good */
};

struct backend_result {
    enum backend_status status;
    int64_t retry_after;                     /* seconds the platform asked us to wait, 0: none */
    char message[LIMIT_AWARD_ERROR_LEN + 1]; /* what went wrong, for instructors and operators */
    bool found;                              /* find_assertion: one exists */
    char id[512];                            /* the platform's id (BadgeClass or assertion) */
    char url[LIMIT_LTI_URL_LEN];             /* the assertion's public URL */
};

/* A BadgeClass as backends see it. */
struct backend_badge {
    const char *slug, *name, *description;
    const char *image_type; /* image/png or image/svg+xml */
    const unsigned char *image;
    size_t image_len;
    const char *criteria_url, *criteria_narrative;
    const char *issuing_component; /* sent as one more tag */
    const char *tags;              /* JSON array of strings */
    const char *alignments;        /* JSON array of alignment objects */
    int64_t expires_days;
    const char *backend_id; /* NULL until ensure_badge_class stored one */
};

/* An award as backends see it. */
struct backend_award {
    const char *uid;  /* ours, unguessable: the idempotency key */
    const char *salt; /* for hashing the recipient */
    const char *recipient_email;
    const char *narrative;         /* evidence narrative */
    const char *evidence_name;     /* e.g. the course title */
    const char *evidence_url;      /* may be NULL */
    const char *assertion_id;      /* revoke: the platform's id */
    int64_t issued_at, expires_at; /* expires_at 0: never */
};

struct backend;

struct backend_ops {
    const char *name;
    void (*ensure_badge_class)(struct backend *b, const struct backend_badge *bc,
                               struct backend_result *r);
    void (*issue)(struct backend *b, const struct backend_badge *bc, const struct backend_award *a,
                  struct backend_result *r);
    void (*revoke)(struct backend *b, const struct backend_badge *bc, const struct backend_award *a,
                   const char *reason, struct backend_result *r);
    /* an assertion issued earlier for this award (by its uid), if the platform has one */
    void (*find_assertion)(struct backend *b, const struct backend_badge *bc,
                           const struct backend_award *a, struct backend_result *r);
    void (*destroy)(struct backend *b);
};

struct backend {
    const struct backend_ops *ops;
    void *self;
};

/* What backend_badge_image() says of an upload that is neither (not even broken) PNG nor SVG. */
#define BACKEND_IMAGE_NEITHER "the image is neither PNG nor SVG"

/* Resets a result to ok with nothing found. */
void backend_result_init(struct backend_result *r);
/* Sets a result's status and message. */
void backend_result_set(struct backend_result *r, enum backend_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void backend_destroy(struct backend *b);

/* ---- hosted: ltibadges is the issuer (hosted.c) ------------------------- */

struct hosted_issuer {
    const char *public_url; /* base of every id: PUBLIC/ob/v2/... */
    const char *name, *url, *email, *description;
    const char *image_url; /* NULL: none */
};

/* The built-in issuer: ids are URLs under public_url; issuing is idempotent by the award's uid. */
struct backend *backend_hosted_new(const struct hosted_issuer *issuer);

/* The Open Badges 2.0 documents it serves, as JSON text (the caller frees). */
char *backend_hosted_issuer_json(const struct hosted_issuer *is);
char *backend_hosted_badge_json(const struct hosted_issuer *is, const struct backend_badge *bc);
/* `revoked_reason` non-NULL: the short revoked form (served with 410). */
char *backend_hosted_assertion_json(const struct hosted_issuer *is, const struct backend_badge *bc,
                                    const struct backend_award *a, const char *revoked_reason);
/* The revocation list: `uids` and `reasons` of revoked assertions. */
char *backend_hosted_revocations_json(const struct hosted_issuer *is, const char *const *uids,
                                      const char *const *reasons, size_t n);
/* URLs of the documents. */
void backend_hosted_badge_url(const struct hosted_issuer *is, const char *slug, struct buf *out);
void backend_hosted_assertion_url(const struct hosted_issuer *is, const char *uid, struct buf *out);

/* ---- HTTP (http.c): the one libcurl helper of every remote call ---------- */

/* Where the tool may send a request, and how long it waits. */
struct backend_http_policy {
    const char *allowed_hosts; /* comma-separated host names (".example.edu": and subdomains);
                                  NULL or "": any host */
    bool allow_loopback;       /* 127.0.0.0/8 and ::1 (tests, a tool beside its LMS) */
    long connect_timeout_ms, timeout_ms;
    const char *ca_file; /* NULL: the system's CA bundle */
};

struct backend_http_request {
    const char *url;           /* absolute http(s) */
    const char *content_type;  /* of the body */
    const char *authorization; /* the Authorization header's value, may be NULL */
    const void *body;          /* POST body */
    size_t body_len;
    size_t max_response; /* bytes kept of the answer; more is an error */
};

enum backend_http_outcome {
    HTTP_ANSWERED, /* a status and a body came back */
    HTTP_NETWORK,  /* could not connect, timed out, dropped: worth retrying */
    HTTP_REFUSED,  /* the URL or its address is not one the tool may call */
};

struct backend_http_response {
    enum backend_http_outcome outcome;
    long status;
    int64_t retry_after; /* seconds from Retry-After, 0: none */
    struct buf body;     /* released by backend_http_response_release() */
    char error[256];     /* what went wrong (not HTTP_ANSWERED) */
};

/* libcurl's global set-up; before any thread starts. */
void backend_http_global_init(void);

struct backend_http;
/* A client keeping its connections alive between calls; one thread at a time. */
struct backend_http *backend_http_new(void);
void backend_http_free(struct backend_http *h);
/*
 * POSTs a request under a policy: only http and https, no redirects, no
 * proxies, TLS verified, the host allowed by the policy, and no connection
 * to a link-local, cloud-metadata, unspecified, multicast or (unless
 * allowed) loopback address: the address is checked as the socket is
 * opened, after name resolution, so a DNS answer cannot smuggle one in.
 * Fills `resp` in every case; returns 0 when an answer came, -1 otherwise.
 */
int backend_http_post(struct backend_http *h, const struct backend_http_policy *p,
                      const struct backend_http_request *req, struct backend_http_response *resp);
void backend_http_response_release(struct backend_http_response *resp);
/* Whether `url` is http(s) on a host the policy allows (before any connection). */
bool backend_http_url_allowed(const struct backend_http_policy *p, const char *url, char *why,
                              size_t whylen);

/* ---- baking (bake.c) ------------------------------------------------------ */

/*
 * Bakes an assertion URL into a badge image: a PNG gets an iTXt chunk with
 * keyword "openbadges" (libpng), an SVG an <openbadges:assertion verify=URL>
 * element (libxml2). `*out` is malloc'd. ERR_INVALID for an image that does
 * not decode.
 */
int backend_bake_png(const unsigned char *png, size_t len, const char *assertion_url,
                     unsigned char **out, size_t *out_len, struct err *err);
int backend_bake_svg(const unsigned char *svg, size_t len, const char *assertion_url,
                     unsigned char **out, size_t *out_len, struct err *err);
/*
 * Checks an image before it is stored: a PNG that decodes within
 * LIMIT_BADGE_IMAGE_PIXELS, or an SVG from which backend_svg_sanitize()
 * would remove nothing (the same rule, refusing instead of repairing: the
 * message names how many parts and the first one); at most
 * LIMIT_BADGE_IMAGE_BYTES. Sets *type to image/png or image/svg+xml.
 */
int backend_bake_check_image(const unsigned char *img, size_t len, const char **type /* OUT */,
                             struct err *err);
/*
 * The one way an image becomes a badge image, whoever brings it (the
 * editor's upload, `badge create --image`, `badge set --image`): a PNG is
 * checked and copied as it is; an SVG is sanitized by backend_svg_sanitize()
 * and the result checked. Replaces `out`'s contents with the image to
 * store, sets *type and *removed (what the sanitizer removed; 0 for a PNG).
 * ERR_INVALID (neither a PNG nor an SVG, a PNG that does not decode or is
 * too large in pixels, an SVG the sanitizer refuses), ERR_TOOBIG (over
 * LIMIT_BADGE_IMAGE_BYTES, before or after sanitizing, or `out` full); on
 * error `out` is empty and *removed 0.
 */
int backend_badge_image(const unsigned char *img, size_t len, struct buf *out,
                        const char **type /* OUT */, size_t *removed /* OUT */, struct err *err);
/*
 * Sanitizes an SVG badge image uploaded by an instructor: parses it with
 * libxml2 (no network, no entity expansion, no DOCTYPE) and removes
 * everything that could run code or fetch something when it is shown,
 * keeping the rest of the drawing. Names are compared case-insensitively on
 * their local part, whatever the namespace prefix. Removed:
 *  - elements, with their content: script, foreignObject, iframe, frame,
 *    frameset, embed, object, applet, handler, listener, portal; every
 *    XHTML and MathML element; <set> and <animate*> that target href, src,
 *    style, class, xml:base or an on* attribute, or write a value that
 *    fails the CSS rule below or holds a script: URL; <style> whose text
 *    fails the CSS rule, or that has child elements;
 *  - attributes: on* handlers; xml:base; ping; href and src (xlink: too)
 *    unless, after leading whitespace and control characters, they are
 *    "#id" or a data:image/png, jpeg, gif or webp URL (the leading
 *    whitespace is then trimmed); style and the url()-taking presentation
 *    attributes (fill, stroke, filter, clip-path, mask, marker*, cursor,
 *    color-profile) that fail the CSS rule; any other attribute with a
 *    url() other than url(#id); any attribute holding "script:"
 *    (javascript:, vbscript:) once whitespace is taken out;
 *  - processing instructions (xml-stylesheet) and comments.
 * The CSS rule refuses a backslash, url() other than url(#id), @import,
 * expression(), image-set(), image(), src(), behavior, -moz-binding and
 * script:. <a> stays with its children; only its link goes when external.
 * Appends the cleaned document (UTF-8, XML declaration, no DOCTYPE) to
 * `out`, which then passes backend_bake_check_image(); *removed gets the
 * number of elements, attributes and processing instructions dropped
 * (comments are not counted). ERR_TOOBIG when `len` or the output is over
 * LIMIT_BADGE_IMAGE_BYTES, or `out` is full; ERR_INVALID when the input is
 * not a well-formed SVG document (root <svg> in the SVG namespace), has a
 * DOCTYPE that declares anything (one that declares nothing, as drawing
 * programs write, is dropped and counted as removed) or entity references, or nests elements more
 * than 64 deep (the root counting as one). On error nothing is appended to `out` (marked full when
 * its cap was the reason) and *removed is 0.
 */
int backend_svg_sanitize(const unsigned char *svg, size_t len, struct buf *out,
                         size_t *removed /* OUT, may be NULL */, struct err *err);

/* ---- mail (http.c): e-mail over SMTP through the same libcurl helper ------ */

/*
 * Where and how the tool sends e-mail (address confirmation links). The
 * strings are borrowed and must outlive every call that uses the config.
 */
struct backend_mail_config {
    const char *url;                 /* "smtp://host:port" or "smtps://host:port"; a path
                                        names the EHLO domain (default: the From domain);
                                        NULL or "": e-mail is off */
    const char *username, *password; /* NULL: no AUTH; only over TLS (smtps or starttls) */
    const char *from;                /* the envelope and header From address */
    const char *from_name;           /* its display name, UTF-8; NULL: none */
    bool starttls;                   /* smtp://: require STARTTLS; false: plain text (tests) */
    bool allow_loopback;             /* a relay on 127.0.0.0/8 or ::1 (tests, a local MTA) */
    long connect_timeout_ms, timeout_ms;
    const char *ca_file; /* NULL: the system's CA bundle */
    /*
     * NULL, or asked about once a second while a mail is being sent (from
     * the sending thread): true gives up at once, e.g. when the server
     * stops, rather than wait out timeout_ms for a stuck relay.
     */
    bool (*cancelled)(void *cls);
    void *cancelled_cls;
};

/*
 * Sets every field to its default: e-mail off (url NULL), no credentials,
 * STARTTLS required, no loopback, LIMIT_MAIL_CONNECT_TIMEOUT_MS and
 * LIMIT_MAIL_TIMEOUT_MS, the system's CA bundle, never cancelled.
 * Allocates nothing.
 */
void backend_mail_config_init(struct backend_mail_config *c);
/* Whether the config has a URL, i.e. e-mail is on. */
bool backend_mail_enabled(const struct backend_mail_config *c);
/*
 * Checks a config without connecting (for start-up): an smtp or smtps URL
 * without user name or password in it, a valid From address, a display
 * name of printable UTF-8 up to LIMIT_MAIL_NAME_LEN bytes, credentials only
 * with TLS, positive timeouts. ERR_INVALID naming what is wrong.
 */
int backend_mail_config_check(const struct backend_mail_config *c, struct err *err);
/*
 * Whether `addr` is a plain RFC 5321 mailbox "local@domain" that real users
 * have: at most LIMIT_MAIL_ADDRESS_LEN bytes of ASCII; the local part a
 * dot-atom (letters, digits and !#$%&'*+-/=?^_`{|}~, dots only between
 * them) of at most LIMIT_MAIL_LOCAL_LEN bytes; one '@'; the domain at least
 * two labels of letters, digits and inner hyphens, each at most
 * LIMIT_MAIL_LABEL_LEN, the last one not all digits. Refused: quoted local
 * parts, comments, address literals ([1.2.3.4]), spaces and control
 * characters, <>()[],;:"\ and non-ASCII (internationalized domains must be
 * given in their xn-- form; SMTPUTF8 is not used). NULL is not valid.
 */
bool backend_mail_address_valid(const char *addr);
/*
 * Sends one plain-text e-mail to `to`. The message is built here
 * (RFC 5322): Date (UTC), From (the display name RFC 2047-encoded when it
 * is not plain ASCII), To, Subject (RFC 2047 B-encoded when not plain
 * ASCII, folded when long), a random Message-ID at the From domain,
 * Auto-Submitted: auto-generated (RFC 3834: no auto-replies),
 * MIME-Version, text/plain; charset=UTF-8, the body quoted-printable with
 * CRLF line ends ("\n" and "\r\n" in `text` both end a line). libcurl
 * speaks SMTP (and dot-stuffs the data) under the HTTP helper's policy:
 * only smtp and smtps, no proxy, TLS verified, no connection to a
 * link-local, metadata, unspecified, multicast or (unless allowed)
 * loopback address, the config's timeouts. `subject` and `text` are UTF-8.
 * Returns 0 once the relay accepted the message, or -1 with:
 *  - ERR_INVALID, nothing sent: `to`, the From address, `subject` or the
 *    display name invalid (a CR, LF or other control character, bad
 *    UTF-8, not an address), `text` not UTF-8, the config unusable (see
 *    backend_mail_config_check(), e-mail off); or, after sending, the
 *    relay refused with a 5xx reply ("the mail server refused the
 *    message"): permanent, do not retry;
 *  - ERR_TOOBIG, nothing sent: `subject` over LIMIT_MAIL_SUBJECT_LEN or
 *    `text` over LIMIT_MAIL_BODY bytes;
 *  - ERR_UNAVAILABLE: the relay could not be reached, timed out, dropped
 *    the connection or answered 4xx, or c->cancelled() said to give up (the
 *    relay may have the message then, if it was cut off before its
 *    answer): retry later;
 *  - ERR_INTERNAL: the relay cannot be used as configured: its address is
 *    refused by the policy, it offers no STARTTLS or its certificate does
 *    not verify, it refused the credentials: an operator must act.
 * A failed send ends within about c->timeout_ms, connecting included,
 * even when the relay falls silent after the message (libcurl heeds no
 * TIMEOUT_MS while awaiting that answer: a progress callback keeps the
 * deadline), or within a second of c->cancelled() saying so; a successful
 * one may take up to c->timeout_ms more for the relay's answer to QUIT.
 * `err->msg` is safe to show; libcurl's text and the SMTP reply code go to
 * `err->detail`. Opens one connection per call; any thread may call it
 * once backend_http_global_init() ran.
 */
int backend_mail_send(const struct backend_mail_config *c, const char *to, const char *subject,
                      const char *text, struct err *err);

#endif
