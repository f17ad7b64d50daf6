/*
 * net/net.h - every call ltibadges makes to another server: the one HTTP
 * client (LMS grade passback, badge platforms) and e-mail over SMTP (address
 * confirmations), both through libcurl under one network policy (http.c,
 * mail.c; the only files that include <curl/curl.h>).
 */
#ifndef NET_NET_H
#define NET_NET_H

#include "base/base.h"

/* ---- HTTP (http.c): the one libcurl helper of every remote call ---------- */

/* Where the tool may send a request, how long it waits, and when it gives up. */
struct net_http_policy {
    const char *allowed_hosts; /* comma-separated host names (".example.edu": and subdomains);
                                  NULL or "": any host */
    bool allow_loopback;       /* 127.0.0.0/8 and ::1 (tests, a tool beside its LMS) */
    long connect_timeout_ms, timeout_ms;
    const char *ca_file; /* NULL: the system's CA bundle */
    /* NULL, or PEM files of a client certificate and its key for mutual TLS (OBF's API v1) */
    const char *client_cert, *client_key;
    /* how a refusal names allowed_hosts, e.g. "the consumer's outcome hosts"; NULL: "the
       allowed hosts" */
    const char *allowed_what;
    /*
     * NULL, or asked about once a second while a request is under way
     * (from the calling thread): true gives up at once (outcome
     * NET_HTTP_NETWORK, `cancelled` set), e.g. when the server stops,
     * rather than wait out timeout_ms for a platform that hangs.
     */
    bool (*cancelled)(void *cls);
    void *cancelled_cls;
};

enum net_http_method {
    NET_HTTP_GET,
    NET_HTTP_POST,
    NET_HTTP_PUT,
    NET_HTTP_DELETE,
};

/* The content types of the bodies the tool sends (see net_http_form_add, net_http_json). */
#define NET_HTTP_FORM "application/x-www-form-urlencoded"
#define NET_HTTP_JSON "application/json"

/* One more request header; borrowed. */
struct net_http_header {
    const char *name, *value;
};

struct net_http_request {
    enum net_http_method method;
    const char *url;           /* absolute http(s), without user name or password */
    const char *content_type;  /* of the body (NET_HTTP_FORM, NET_HTTP_JSON, ...) */
    const char *authorization; /* the Authorization header's value, may be NULL */
    /* extra headers (e.g. Accept), at most LIMIT_HTTP_HEADERS; names are tokens, values have
       no control characters, else the request is refused */
    const struct net_http_header *headers;
    size_t nheaders;
    const void *body; /* NULL: none (a PUT or POST then sends an empty one) */
    size_t body_len;
    size_t max_response; /* bytes kept of the answer; more is an error */
    /*
     * Sent on a connection of its own, closed after the answer: libcurl
     * sends a request again by itself when a kept-alive connection closes
     * before any answer (it takes it for one the server closed while idle),
     * which a POST that made something must never be. The handle's other
     * kept-alive connection stays for the next requests.
     */
    bool fresh_connection;
};

enum net_http_outcome {
    NET_HTTP_ANSWERED, /* a status and a body came back */
    NET_HTTP_NETWORK,  /* could not connect, timed out, dropped, cancelled: worth retrying */
    NET_HTTP_REFUSED,  /* the URL, its address or a header is not one the tool may send */
};

struct net_http_response {
    enum net_http_outcome outcome;
    long status;
    /* seconds from Retry-After (delta-seconds or an HTTP-date), at most a week; 0: none */
    int64_t retry_after;
    /* headers of the answer kept (empty: absent); several Link headers are joined with ", " */
    char content_type[128];
    char location[LIMIT_HTTP_HEADER_VALUE];
    char link[LIMIT_HTTP_HEADER_VALUE];
    struct buf body; /* released by net_http_response_release() */
    /* NET_HTTP_NETWORK: why in words */
    bool cancelled;      /* policy->cancelled() said to give up */
    bool timed_out;      /* no (complete) answer within timeout_ms */
    bool tls_unverified; /* the server's certificate did not verify: an operator must act */
    bool tls_client;     /* the client certificate or key could not be used: likewise */
    /*
     * What went wrong (not NET_HTTP_ANSWERED), safe to show: it names
     * neither the URL's path or query nor any credential.
     */
    char error[256];
    char detail[256]; /* libcurl's own words (host and port at most), for the log */
};

/* libcurl's global set-up; before any thread starts. */
void net_http_global_init(void);

struct net_http;
/* A client keeping its connections alive between calls; one thread at a time. */
struct net_http *net_http_new(void);
void net_http_free(struct net_http *h);
/*
 * Sends a request under a policy: only http and https, no redirects, no
 * proxies, TLS verified, the host allowed by the policy, and no connection
 * to a link-local, cloud-metadata, unspecified, multicast or (unless
 * allowed) loopback address: the address is checked as the socket is
 * opened, after name resolution, so a DNS answer cannot smuggle one in.
 * Any method takes a body (a DELETE too). Fills `resp` in every case;
 * returns 0 when an answer came (whatever its status), -1 otherwise.
 */
int net_http_send(struct net_http *h, const struct net_http_policy *p,
                  const struct net_http_request *req, struct net_http_response *resp);
void net_http_response_release(struct net_http_response *resp);
/*
 * Whether `url` is http(s), without credentials, on a host the policy
 * allows (before any connection); `why` says what is wrong, naming at most
 * the scheme and the host.
 */
bool net_http_url_allowed(const struct net_http_policy *p, const char *url, char *why,
                          size_t whylen);
/*
 * Seconds a Retry-After value asks to wait, `now` being the time: delta
 * seconds or an HTTP-date (IMF-fixdate, RFC 850, asctime), at most a week
 * (longer: a week); a date past is 0; a value that is neither: 60.
 */
int64_t net_http_retry_after(struct str value, int64_t now);
/*
 * The target of the rel="next" link of a Link header value (RFC 8288),
 * copied into `out`; false when there is none or it does not fit.
 */
bool net_http_link_next(const char *link, char *out, size_t outlen);
/* Appends "name=value" to a form body (percent-encoded, '&' between pairs). */
void net_http_form_add(struct buf *b, const char *name, const char *value);

/* What an answer means for whoever sent the request. */
enum net_status {
    NET_OK,        /* 2xx */
    NET_RETRY,     /* network, timeout, cancel, 408, 425, 429, 5xx: try again later */
    NET_AUTH,      /* 401, 403, a certificate that does not verify or a client certificate
                      that cannot be used: an operator must act */
    NET_PERMANENT, /* refused by the policy, 3xx (not followed), other 4xx: for good */
};

struct net_verdict {
    enum net_status status;
    int64_t retry_after; /* NET_RETRY: seconds the server asked for (Retry-After), 0: none */
    char message[256];   /* in words, safe to show: "HTTP 503", "timed out", ... */
};

/*
 * The one reading of an HTTP answer for every remote call (grade passback,
 * badge platforms): ok, retry (with Retry-After), auth or permanent, and a
 * short neutral message. Callers add what the body says (a platform's
 * error, a POX description); the status is decided here.
 */
void net_http_classify(const struct net_http_response *resp, struct net_verdict *v);

/* ---- mail (mail.c): e-mail over SMTP under the same address check ------- */

/*
 * Where and how the tool sends e-mail (address confirmation links). The
 * strings are borrowed and must outlive every call that uses the config.
 */
struct net_mail_config {
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
void net_mail_config_init(struct net_mail_config *c);
/* Whether the config has a URL, i.e. e-mail is on. */
bool net_mail_enabled(const struct net_mail_config *c);
/*
 * Checks a config without connecting (for start-up): an smtp or smtps URL
 * without user name or password in it, a valid From address, a display
 * name of printable UTF-8 up to LIMIT_MAIL_NAME_LEN bytes, credentials only
 * with TLS, positive timeouts. ERR_INVALID naming what is wrong.
 */
int net_mail_config_check(const struct net_mail_config *c, struct err *err);
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
bool net_mail_address_valid(const char *addr);
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
 *    net_mail_config_check(), e-mail off); or, after sending, the
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
 * once net_http_global_init() ran.
 */
int net_mail_send(const struct net_mail_config *c, const char *to, const char *subject,
                  const char *text, struct err *err);

#endif
