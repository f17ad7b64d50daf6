/*
 * web/web.h - the HTTP server: routing, the launch endpoint, pages, the
 * tool's XML configuration, health and the access log.
 *
 * web/ is the only module that includes <microhttpd.h>. It calls lti/ to
 * verify and parse, store/ to record and read, and renders pages with its
 * own small escaping template renderer (web/tpl.c).
 */
#ifndef WEB_WEB_H
#define WEB_WEB_H

#include "base/base.h"

struct awards;
struct net_mail_config;
struct store;
struct web;

struct web_config {
    const char *listen_host; /* numeric address or host name to bind */
    unsigned listen_port;    /* 0: any free port (see web_port()) */
    const char *public_url;  /* normalized, no trailing slash; NULL: http://host:port */
    size_t max_body;         /* launch body cap in bytes */
    size_t max_header;       /* request line and header fields, bytes: larger is 431 */
    unsigned header_timeout; /* seconds for a header block: slower is 408 */
    int64_t oauth_window;    /* seconds of clock skew accepted */
    int64_t session_ttl;     /* seconds a session lives */
    unsigned threads;        /* HTTP worker threads (MHD thread pool) */
    const char *tool_title;
    const char *tool_description;
    struct awards *awards; /* the award engine (hosted documents, waking its worker); may be NULL */
    /*
     * Where confirmation links are mailed from (borrowed until web_stop();
     * checked with net_mail_config_check() by the caller); NULL or
     * without a URL: no mail. web_start() sets mail_on from it.
     */
    const struct net_mail_config *mail;
    bool mail_on;                  /* e-mail confirmation links can be sent (SMTP configured) */
    bool accept_unconfirmed_email; /* without mail: a learner's address is taken as given */
    bool show_holders;             /* BadgeClass pages say how many hold the badge ([issuer]) */
    /*
     * GET /metrics: off, or on the main address to 127.0.0.1, ::1 and the
     * addresses of metrics_allow (a list web_cidrs_parse() reads; NULL:
     * none), or only on a separate address (metrics_listen_host, with
     * /healthz beside it) when that is not NULL.
     */
    bool metrics_off;
    const char *metrics_allow;
    /*
     * Behind a reverse proxy: the peers (a list web_cidrs_parse() reads;
     * NULL: none) whose X-Forwarded-For gives the client address (logs),
     * and the former public URLs (normalized absolute URLs separated by
     * blanks; NULL: none) whose requests are redirected to the public URL.
     */
    const char *trusted_proxies;
    const char *former_public_urls;
    const char *metrics_listen_host;
    unsigned metrics_listen_port; /* 0: any free port (see web_metrics_port()) */
    /* /healthz: an outbox item due longer than this many seconds is stuck (0: 900) */
    int64_t health_outbox_stuck;
};

/* An address range: 10.0.0.0/8, 2001:db8::/32, or one address. */
struct web_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix; /* bits */
};
/*
 * An address list "10.0.0.0/8, 192.168.1.7, 2001:db8::/32" (commas or
 * blanks between), at most `max` ranges; ERR_INVALID naming the first
 * entry that is none.
 */
int web_cidrs_parse(const char *text, struct web_cidr *out /* OUT */, size_t max,
                    size_t *n /* OUT */, struct err *err);
/* Whether the socket address `sa` (IPv4, IPv6, IPv4-mapped IPv6) is in one of the ranges. */
bool web_cidrs_match(const struct web_cidr *c, size_t n, const void *sa);

/*
 * The client address of a request from `peer` (a struct sockaddr) with the
 * X-Forwarded-For values `xff` (its headers joined by commas in order;
 * NULL: none), as numeric text in `out`: the peer itself unless it is in
 * `trusted`; then the rightmost hop that is not in `trusted` (all are: the
 * leftmost). A hop that is not an address (or port-suffixed one) ends the
 * walk at the last trusted address. IPv4-mapped IPv6 reads as IPv4.
 */
void web_client_address(const struct web_cidr *trusted, size_t n, const void *peer, const char *xff,
                        char *out /* OUT */, size_t outlen);

/* Fills `cfg` with the defaults (127.0.0.1:8080, 64 KiB, 300 s, 8 h, 2 threads). */
void web_config_init(struct web_config *cfg);

/*
 * Binds the page translations found under `dir` (DIR/C/LC_MESSAGES/ltibadges-LANG.mo).
 * Call once, before any thread starts. ERR_NOTFOUND when they are missing:
 * pages are then in English.
 */
int web_i18n_init(const char *dir, struct err *err);

/* Binds and starts serving on background threads; `store` is borrowed until web_stop(). */
int web_start(struct web **out /* OUT */, const struct web_config *cfg, struct store *store,
              struct err *err);
/* The port actually bound (useful with port 0). */
unsigned web_port(const struct web *w);
/* The port of the separate metrics address, 0 when there is none. */
unsigned web_metrics_port(const struct web *w);
/* The public base URL in use (borrowed, valid until web_stop()). */
const char *web_public_url(const struct web *w);
/*
 * Stops accepting connections, lets requests in flight finish (launches
 * waiting for the database get their answer), then stops. NULL is a no-op.
 * Call before store_close().
 */
void web_stop(struct web *w);

#endif
