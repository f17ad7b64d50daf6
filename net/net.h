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

/* Where the tool may send a request, and how long it waits. */
struct net_http_policy {
    const char *allowed_hosts; /* comma-separated host names (".example.edu": and subdomains);
                                  NULL or "": any host */
    bool allow_loopback;       /* 127.0.0.0/8 and ::1 (tests, a tool beside its LMS) */
    long connect_timeout_ms, timeout_ms;
    const char *ca_file; /* NULL: the system's CA bundle */
};

struct net_http_request {
    const char *url;           /* absolute http(s) */
    const char *content_type;  /* of the body */
    const char *authorization; /* the Authorization header's value, may be NULL */
    const void *body;          /* POST body */
    size_t body_len;
    size_t max_response; /* bytes kept of the answer; more is an error */
};

enum net_http_outcome {
    NET_HTTP_ANSWERED, /* a status and a body came back */
    NET_HTTP_NETWORK,  /* could not connect, timed out, dropped: worth retrying */
    NET_HTTP_REFUSED,  /* the URL or its address is not one the tool may call */
};

struct net_http_response {
    enum net_http_outcome outcome;
    long status;
    int64_t retry_after; /* seconds from Retry-After, 0: none */
    struct buf body;     /* released by net_http_response_release() */
    char error[256];     /* what went wrong (not NET_HTTP_ANSWERED) */
};

/* libcurl's global set-up; before any thread starts. */
void net_http_global_init(void);

struct net_http;
/* A client keeping its connections alive between calls; one thread at a time. */
struct net_http *net_http_new(void);
void net_http_free(struct net_http *h);
/*
 * POSTs a request under a policy: only http and https, no redirects, no
 * proxies, TLS verified, the host allowed by the policy, and no connection
 * to a link-local, cloud-metadata, unspecified, multicast or (unless
 * allowed) loopback address: the address is checked as the socket is
 * opened, after name resolution, so a DNS answer cannot smuggle one in.
 * Fills `resp` in every case; returns 0 when an answer came, -1 otherwise.
 */
int net_http_post(struct net_http *h, const struct net_http_policy *p,
                  const struct net_http_request *req, struct net_http_response *resp);
void net_http_response_release(struct net_http_response *resp);
/* Whether `url` is http(s) on a host the policy allows (before any connection). */
bool net_http_url_allowed(const struct net_http_policy *p, const char *url, char *why,
                          size_t whylen);

/* ---- mail (http.c): e-mail over SMTP through the same libcurl helper ------ */

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
