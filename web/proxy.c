/*
 * web/proxy.c - the client address of a request that came through a
 * reverse proxy ([server] trusted_proxies), and the answer to a request
 * under a former public URL ([server] former_public_urls).
 *
 * X-Forwarded-For is a list each proxy appends the address it was reached
 * from to: its right end was written by the proxy that reached us, its
 * left end by whoever sent the request, who can write anything there. So
 * it is believed only when the peer is a trusted proxy, and read from the
 * right: every hop that is itself a trusted proxy passes the question on
 * to the one before, and the first that is not is the client (nginx's
 * real_ip_recursive, Caddy's trusted_proxies). A hop that is not an
 * address stops the walk at the last trusted one: what is left of it was
 * not written by anyone we trust.
 */
#include "base/base.h"
#include "web/web_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

/*
 * One X-Forwarded-For hop: "203.0.113.7", "203.0.113.7:5555",
 * "2001:db8::1" or "[2001:db8::1]:443", blanks around it. False when it is
 * none (e.g. "unknown", an obfuscated name).
 */
static bool parse_hop(const char *p, size_t len, struct sockaddr_storage *ss)
{
    char a[INET6_ADDRSTRLEN + 8];
    const char *colon;

    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof(a))
        return false;
    if (p[0] == '[') {
        const char *end = memchr(p, ']', len);

        if (!end)
            return false;
        len = (size_t)(end - p - 1);
        p++;
    } else {
        colon = memchr(p, ':', len);
        /* one colon: IPv4 with a port; more: a bare IPv6 address */
        if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - p)))
            len = (size_t)(colon - p);
    }
    memcpy(a, p, len);
    a[len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, a, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return true;
    }
    return false;
}

/* The numeric text of `sa` ("-" when it is neither IPv4 nor IPv6); IPv4-mapped as IPv4. */
static void addr_text(const void *sa, char *out, size_t outlen)
{
    const struct sockaddr *s = sa;

    snprintf(out, outlen, "-");
    if (!s)
        return;
    if (s->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    } else if (s->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, a6, out, (socklen_t)outlen);
    }
}

void web_client_address(const struct web_cidr *trusted, size_t n, const void *peer, const char *xff,
                        char *out, size_t outlen)
{
    size_t end;

    addr_text(peer, out, outlen);
    if (!peer || !xff || !n || !web_cidrs_match(trusted, n, peer))
        return;
    end = strlen(xff);
    /* from the right: the hop the trusted peer appended first */
    for (;;) {
        size_t start = end;
        struct sockaddr_storage hop;

        while (start && xff[start - 1] != ',')
            start--;
        if (!parse_hop(xff + start, end - start, &hop))
            return; /* not an address: the last trusted hop is all we know */
        addr_text(&hop, out, outlen);
        if (!web_cidrs_match(trusted, n, &hop) || start == 0)
            return; /* the first untrusted hop, or the leftmost of trusted ones */
        end = start - 1;
    }
}

/* ---- former public URLs ---- */

/* A former public URL as a request shows it: its Host (lower case, no default port) and path. */
struct web_former {
    char *authority;
    char *path; /* "" or "/prefix", no trailing slash */
};

/*
 * "host[:port]" of a normalized URL's authority, or of a Host header (an
 * explicit :80 or :443 dropped: the scheme is not known here, and a URL
 * normalized drops the default port of its own), lower-cased, into `out`.
 */
static void authority_of(const char *p, size_t len, char *out, size_t outlen)
{
    size_t n = 0;

    if (len > 3 && (memcmp(p + len - 3, ":80", 3) == 0))
        len -= 3;
    else if (len > 4 && memcmp(p + len - 4, ":443", 4) == 0)
        len -= 4;
    for (size_t i = 0; i < len && n + 1 < outlen; i++) {
        char c = p[i];

        out[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[n] = '\0';
}

/* Splits an absolute URL into authority and path (no trailing slash). */
static void split_url(const char *url, char *auth, size_t authlen, const char **path,
                      size_t *pathlen)
{
    const char *host = strstr(url, "://");
    const char *slash;
    size_t n;

    host = host ? host + 3 : url;
    slash = strchr(host, '/');
    authority_of(host, slash ? (size_t)(slash - host) : strlen(host), auth, authlen);
    *path = slash ? slash : "";
    n = strlen(*path);
    while (n && (*path)[n - 1] == '/')
        n--;
    *pathlen = n;
}

int web_proxy_start(struct web *w, struct err *err)
{
    const char *p = w->cfg.former_public_urls ? w->cfg.former_public_urls : "";
    char auth[LIMIT_LTI_URL_LEN];
    const char *path;
    size_t pathlen;

    if (w->cfg.trusted_proxies) {
        w->trusted = xcalloc(LIMIT_TRUSTED_PROXIES, sizeof(*w->trusted));
        if (web_cidrs_parse(w->cfg.trusted_proxies, w->trusted, LIMIT_TRUSTED_PROXIES,
                            &w->n_trusted, err) < 0)
            return -1;
    }
    split_url(w->public_url, auth, sizeof(auth), &path, &pathlen);
    w->authority = xstrdup(auth);
    for (;;) {
        size_t len;
        char url[LIMIT_LTI_URL_LEN];
        struct web_former *f;

        p += strspn(p, ", \t");
        if (!*p)
            return 0;
        len = strcspn(p, ", \t");
        if (len >= sizeof(url) || w->n_formers == LIMIT_FORMER_URLS)
            return err_set(err, ERR_INVALID, "too many or too long former public URLs");
        memcpy(url, p, len);
        url[len] = '\0';
        p += len;
        w->formers = xrealloc(w->formers, st_mult(w->n_formers + 1, sizeof(*w->formers)));
        f = &w->formers[w->n_formers++];
        split_url(url, auth, sizeof(auth), &path, &pathlen);
        f->authority = xstrdup(auth);
        f->path = xmemdupz(path, pathlen);
        if (strcmp(f->authority, w->authority) == 0 && strcmp(f->path, w->public_path) == 0)
            return err_set(err, ERR_INVALID,
                           "former public URL '%s' is the public URL but for its scheme: the "
                           "server cannot tell their requests apart (redirect http to https in "
                           "the proxy)",
                           url);
    }
}

void web_proxy_free(struct web *w)
{
    for (size_t i = 0; i < w->n_formers; i++) {
        free(w->formers[i].authority);
        free(w->formers[i].path);
    }
    FREE_AND_NULL(w->formers);
    w->n_formers = 0;
    FREE_AND_NULL(w->trusted);
    FREE_AND_NULL(w->authority);
}

/* Whether `path` (up to `len` bytes) is `prefix` or under it. */
static bool under(const char *path, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(path, prefix, n) == 0 && (len == n || path[n] == '/');
}

bool web_former_url_reply(struct req *r)
{
    struct web *w = r->web;
    const char *host, *u = r->raw_uri, *q;
    char auth[LIMIT_LTI_URL_LEN];
    size_t plen;

    /* origin-form targets only, and only what a Location may carry as it is */
    if (!w->n_formers || !u || u[0] != '/')
        return false;
    for (const unsigned char *c = (const unsigned char *)u; *c; c++) {
        if (*c <= ' ' || *c >= 0x7f || *c == '\\')
            return false;
    }
    host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!host)
        return false;
    authority_of(host, strlen(host), auth, sizeof(auth));
    q = strchr(u, '?');
    plen = q ? (size_t)(q - u) : strlen(u);
    /* the current public URL first: a former one may be a prefix of it, or share its host */
    if (strcmp(auth, w->authority) == 0 && under(u, plen, w->public_path))
        return false;
    for (size_t i = 0; i < w->n_formers; i++) {
        const struct web_former *f = &w->formers[i];
        struct buf loc = BUF_INIT(LIMIT_LTI_URL_LEN + LIMIT_URI_LEN);
        size_t skip = strlen(f->path);

        if (strcmp(auth, f->authority) != 0 || !under(u, plen, f->path))
            continue;
        /* the same path and query under the public URL ("/" alone: the public URL's root) */
        buf_addstr(&loc, w->public_url);
        buf_addstr(&loc, u + skip);
        if (loc.toobig) {
            buf_release(&loc);
            return false;
        }
        /* 301 for what a browser or verifier fetches; 308 keeps a POST a POST */
        web_reply_redirect(r, r->method == REQ_GET || r->method == REQ_HEAD ? 301 : 308, loc.ptr);
        buf_release(&loc);
        return true;
    }
    return false;
}
