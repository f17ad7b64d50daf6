/*
 * net/http.c - the one HTTP client behind every call ltibadges makes to
 * another server (an LMS's outcomes service, badge platforms); mail.c sends
 * e-mail through the same address check.
 *
 * The URLs come from elsewhere (an LMS's launch names its outcomes service),
 * so every request is held to a policy: http(s) only, no redirects, no
 * proxies from the environment, TLS verified, a host the operator allowed,
 * and never an address the tool has no business calling (link-local and
 * cloud metadata, unspecified, multicast, and loopback unless allowed). The
 * address check runs in libcurl's open-socket callback, on the address
 * actually being connected, so DNS rebinding cannot get around it.
 */
#include "base/base.h"
#include "net/net_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

struct net_http {
    CURL *curl;
};

struct call {
    struct net_guard guard;
    const struct net_http_policy *policy;
    struct net_http_response *resp;
    size_t max;
    bool header_too_long, cancelled;
};

void net_http_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct net_http *net_http_new(void)
{
    struct net_http *h = xcalloc(1, sizeof(*h));

    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        return NULL;
    }
    return h;
}

void net_http_free(struct net_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

void net_http_response_release(struct net_http_response *resp)
{
    buf_release(&resp->body);
}

/* Why an IPv4 address (host order) is not to be called, or NULL. */
static const char *v4_refusal(uint32_t a, bool allow_loopback)
{
    if ((a >> 24) == 127)
        return allow_loopback ? NULL : "a loopback address";
    if ((a >> 16) == ((169u << 8) | 254u))
        return "a link-local address (cloud metadata lives there)";
    if ((a >> 24) == 0)
        return "an unspecified address";
    if ((a >> 28) == 0xE || a == 0xFFFFFFFFu)
        return "a multicast or broadcast address";
    if (a == ((100u << 24) | (100u << 16) | (100u << 8) | 200u))
        return "a cloud metadata address";
    return NULL;
}

static const char *v6_refusal(const unsigned char *b, bool allow_loopback)
{
    static const unsigned char loop[16] = { [15] = 1 };
    static const unsigned char zero[16] = { 0 };
    static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
    /* fd00:ec2::254, the IPv6 instance metadata service */
    static const unsigned char ec2[16] = { 0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54 };

    if (memcmp(b, mapped, 12) == 0)
        return v4_refusal(((uint32_t)b[12] << 24) | ((uint32_t)b[13] << 16) |
                              ((uint32_t)b[14] << 8) | b[15],
                          allow_loopback);
    if (memcmp(b, loop, 16) == 0)
        return allow_loopback ? NULL : "a loopback address";
    if (memcmp(b, zero, 16) == 0)
        return "an unspecified address";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "a link-local address";
    if (b[0] == 0xff)
        return "a multicast address";
    if (memcmp(b, ec2, 16) == 0)
        return "a cloud metadata address";
    return NULL;
}

curl_socket_t net_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct net_guard *c = clientp;
    const char *why = NULL;

    (void)purpose;
    if (addr->family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&addr->addr;

        why = v4_refusal(ntohl(in->sin_addr.s_addr), c->allow_loopback);
    } else if (addr->family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&addr->addr;

        why = v6_refusal(in6->sin6_addr.s6_addr, c->allow_loopback);
    } else {
        why = "an address of an unknown family";
    }
    if (why) {
        c->refused = true;
        snprintf(c->why, sizeof(c->why), "%s", why);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    size_t len = size * n;

    if (c->resp->body.len + len > c->max)
        return 0; /* makes libcurl fail with CURLE_WRITE_ERROR */
    if (buf_add(&c->resp->body, p, len) < 0)
        return 0;
    return len;
}

int64_t net_http_retry_after(struct str v, int64_t now)
{
    const int64_t week = 7 * 24 * 3600;
    char date[64];
    int64_t secs;
    time_t t;

    v = str_trim(v);
    if (str_to_i64(v, 0, INT64_MAX, &secs) == 0)
        return secs > week ? week : secs;
    if (v.len == 0 || v.len >= sizeof(date))
        return 60;
    memcpy(date, v.ptr, v.len);
    date[v.len] = '\0';
    /* libcurl reads the three HTTP-date forms of RFC 9110 5.6.7 (and more) */
    t = curl_getdate(date, NULL);
    if (t == (time_t)-1)
        return 60; /* neither: "soon", as before dates were read */
    if ((int64_t)t <= now)
        return 0;
    return (int64_t)t - now > week ? week : (int64_t)t - now;
}

/* Copies a header's value into `dst` (joined to what is there with ", "); false: no room. */
static bool keep_header(char *dst, size_t cap, struct str v)
{
    size_t have = strlen(dst);
    size_t need = have + (have ? 2 : 0) + v.len;

    if (need >= cap)
        return false;
    if (have) {
        memcpy(dst + have, ", ", 2);
        have += 2;
    }
    memcpy(dst + have, v.ptr, v.len);
    dst[have + v.len] = '\0';
    return true;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    struct net_http_response *r = c->resp;
    size_t len = size * n;
    struct str line = { p, len }, name, v;
    const char *colon;
    bool ok = true;

    while (line.len && (line.ptr[line.len - 1] == '\r' || line.ptr[line.len - 1] == '\n'))
        line.len--;
    if (line.len >= 5 && strncmp(line.ptr, "HTTP/", 5) == 0) {
        /* a status line: the headers kept are those of the last answer (after a 100) */
        r->retry_after = 0;
        r->content_type[0] = r->location[0] = r->link[0] = '\0';
        return len;
    }
    colon = memchr(line.ptr, ':', line.len);
    if (!colon)
        return len;
    name = (struct str){ line.ptr, (size_t)(colon - line.ptr) };
    v = str_trim((struct str){ colon + 1, line.len - name.len - 1 });
    if (str_case_eq_cstr(name, "Retry-After")) {
        r->retry_after = net_http_retry_after(v, util_now());
    } else if (str_case_eq_cstr(name, "Content-Type")) {
        r->content_type[0] = '\0'; /* one value; an odd, long one: as if none */
        keep_header(r->content_type, sizeof(r->content_type), v);
    } else if (str_case_eq_cstr(name, "Location")) {
        r->location[0] = '\0';
        ok = keep_header(r->location, sizeof(r->location), v);
    } else if (str_case_eq_cstr(name, "Link")) {
        ok = keep_header(r->link, sizeof(r->link), v);
    }
    if (!ok) {
        c->header_too_long = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return len;
}

static bool host_allowed(const char *allowed, const char *host)
{
    const char *p = allowed;
    size_t hl = strlen(host);

    if (!allowed || !*allowed)
        return true;
    while (*p) {
        size_t n = strcspn(p, ",");
        struct str item = str_trim((struct str){ p, n });

        if (item.len && item.ptr[0] == '.') {
            /* ".example.edu": the domain and every host under it */
            if ((hl == item.len - 1 && strncasecmp(host, item.ptr + 1, hl) == 0) ||
                (hl > item.len && strncasecmp(host + hl - item.len, item.ptr, item.len) == 0))
                return true;
        } else if (item.len == hl && strncasecmp(item.ptr, host, hl) == 0) {
            return true;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

bool net_http_url_allowed(const struct net_http_policy *p, const char *url, char *why,
                          size_t whylen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL;
    bool ok = false;

    if (!u)
        return false;
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(why, whylen, "not a valid URL");
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(why, whylen, "only http and https URLs are called, not %.16s", scheme);
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
               curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        /* said without the URL: what is in it is a secret */
        snprintf(why, whylen, "a URL with a user name or password in it is not called");
    } else if (!host_allowed(p->allowed_hosts, host)) {
        snprintf(why, whylen, "host %.200s is not among %s", host,
                 p->allowed_what ? p->allowed_what : "the allowed hosts");
    } else {
        ok = true;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return ok;
}

/* RFC 9110 token characters: what a header name is made of. */
static bool is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("!#$%&'*+-.^_`|~", ch)))
            return false;
    }
    return true;
}

/* A header value without control characters (tab allowed): no header or request smuggled in. */
static bool value_ok(const char *s)
{
    if (!s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* Adds "Name: value" to a header list; false when it is not a valid header. */
static bool add_header(struct curl_slist **hdrs, struct buf *line, const char *name,
                       const char *value)
{
    struct curl_slist *l;

    if (!is_token(name) || !value_ok(value))
        return false;
    buf_reset(line);
    if (*value)
        buf_addf(line, "%s: %s", name, value);
    else
        buf_addf(line, "%s;", name); /* libcurl's way of sending a header with no value */
    if (line->toobig)
        return false;
    l = curl_slist_append(*hdrs, line->ptr);
    if (!l)
        abort(); /* libcurl fails only on allocation: out of memory is fatal, as everywhere */
    *hdrs = l;
    return true;
}

/*
 * libcurl asks this about once a second, even while the server is silent:
 * the caller's cancel hook is heard within a second.
 */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct call *c = userdata;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (c->policy->cancelled && c->policy->cancelled(c->policy->cancelled_cls))
        c->cancelled = true;
    return c->cancelled;
}

static void set_method(CURL *k, const struct net_http_request *req)
{
    static const char *const names[] = { "GET", "POST", "PUT", "DELETE" };
    bool body = req->body != NULL || req->method == NET_HTTP_POST || req->method == NET_HTTP_PUT;

    if (req->method == NET_HTTP_GET && !body) {
        curl_easy_setopt(k, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (body) {
        /* POSTFIELDS makes it a POST with this body; CUSTOMREQUEST then renames the method */
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
    }
    if (req->method != NET_HTTP_POST)
        curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, names[req->method]);
}

/* Says why a request failed without an answer. */
static void network_failure(CURLcode rc, const struct call *c, const struct net_http_request *req,
                            const char *ebuf, struct net_http_response *resp)
{
    resp->outcome = NET_HTTP_NETWORK;
    snprintf(resp->detail, sizeof(resp->detail), "%s (curl error %d)",
             ebuf[0] ? ebuf : curl_easy_strerror(rc), (int)rc);
    if (c->cancelled) {
        resp->cancelled = true;
        snprintf(resp->error, sizeof(resp->error), "cancelled before the answer came");
    } else if (c->header_too_long) {
        snprintf(resp->error, sizeof(resp->error), "an answer header is longer than %d bytes",
                 LIMIT_HTTP_HEADER_VALUE - 1);
    } else if (rc == CURLE_WRITE_ERROR) {
        snprintf(resp->error, sizeof(resp->error), "the answer is larger than %zu bytes",
                 req->max_response);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        resp->timed_out = true;
        snprintf(resp->error, sizeof(resp->error), "no answer in time");
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
               rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
        resp->tls_unverified = true;
        snprintf(resp->error, sizeof(resp->error), "the server's certificate does not verify");
    } else if (rc == CURLE_SSL_CERTPROBLEM) {
        resp->tls_client = true;
        snprintf(resp->error, sizeof(resp->error),
                 "the client certificate or its key cannot be used");
    } else {
        /* libcurl's generic words: they name no URL or credential */
        snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
    }
}

int net_http_send(struct net_http *h, const struct net_http_policy *p,
                  const struct net_http_request *req, struct net_http_response *resp)
{
    struct call c = { { p->allow_loopback, false, "" }, p, resp, req->max_response, false, false };
    struct curl_slist *hdrs = NULL;
    struct buf line = BUF_INIT(16384);
    char ebuf[CURL_ERROR_SIZE] = "";
    CURL *k = h->curl;
    CURLcode rc;
    int ret = -1;

    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, req->max_response + 1);
    resp->outcome = NET_HTTP_REFUSED;
    if (!net_http_url_allowed(p, req->url, resp->error, sizeof(resp->error)))
        return -1;
    if ((unsigned)req->method > NET_HTTP_DELETE || req->nheaders > LIMIT_HTTP_HEADERS) {
        snprintf(resp->error, sizeof(resp->error), "the request is not valid");
        return -1;
    }
    if (req->content_type && !add_header(&hdrs, &line, "Content-Type", req->content_type))
        goto bad_header;
    if (!req->content_type && req->body)
        hdrs = curl_slist_append(hdrs, "Content-Type:"); /* not libcurl's form default */
    if (req->authorization && !add_header(&hdrs, &line, "Authorization", req->authorization))
        goto bad_header;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!add_header(&hdrs, &line, req->headers[i].name, req->headers[i].value))
            goto bad_header;
    }
    /* no "Expect: 100-continue" round trip for small bodies */
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_reset(k);
    curl_easy_setopt(k, CURLOPT_URL, req->url);
    if (req->fresh_connection) {
        curl_easy_setopt(k, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(k, CURLOPT_FORBID_REUSE, 1L);
    }
    curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(k, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(k, CURLOPT_PROXY, "");
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(k, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(k, CURLOPT_SSL_VERIFYHOST, 2L);
    if (p->ca_file)
        curl_easy_setopt(k, CURLOPT_CAINFO, p->ca_file);
    if (p->client_cert && p->client_key) {
        curl_easy_setopt(k, CURLOPT_SSLCERT, p->client_cert);
        curl_easy_setopt(k, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(k, CURLOPT_SSLKEY, p->client_key);
        curl_easy_setopt(k, CURLOPT_SSLKEYTYPE, "PEM");
    }
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout_ms);
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(k, CURLOPT_OPENSOCKETFUNCTION, net_open_socket);
    curl_easy_setopt(k, CURLOPT_OPENSOCKETDATA, &c.guard);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, hdrs);
    set_method(k, req);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(k, CURLOPT_HEADERDATA, &c);
    if (p->cancelled) {
        curl_easy_setopt(k, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(k, CURLOPT_XFERINFODATA, &c);
        curl_easy_setopt(k, CURLOPT_NOPROGRESS, 0L);
    }
    curl_easy_setopt(k, CURLOPT_USERAGENT, "ltibadges");
    rc = curl_easy_perform(k);
    /* the buffer is on this stack: libcurl must not write to it after we return */
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, NULL);
    if (c.guard.refused) {
        resp->outcome = NET_HTTP_REFUSED;
        snprintf(resp->error, sizeof(resp->error), "refused to connect to %s", c.guard.why);
    } else if (rc != CURLE_OK) {
        network_failure(rc, &c, req, ebuf, resp);
    } else {
        curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->outcome = NET_HTTP_ANSWERED;
        ret = 0;
    }
    goto out;
bad_header:
    snprintf(resp->error, sizeof(resp->error), "a request header is not valid");
out:
    curl_slist_free_all(hdrs);
    buf_release(&line);
    return ret;
}

bool net_http_link_next(const char *link, char *out, size_t outlen)
{
    const char *p = link;

    /* link-value = "<" URI ">" *( ";" link-param ), several separated by commas */
    while (p && *p) {
        const char *lt = strchr(p, '<'), *gt, *end, *rel;

        if (!lt)
            return false;
        gt = strchr(lt, '>');
        if (!gt)
            return false;
        end = strchr(gt, ',');
        if (!end)
            end = gt + strlen(gt);
        /* rel="next" or rel=next among the parameters (names and the type case-insensitive) */
        for (rel = gt; rel + 3 <= end; rel++) {
            const char *v = rel + 3;

            if (strncasecmp(rel, "rel", 3) != 0 || (rel[-1] != ';' && rel[-1] != ' '))
                continue;

            while (*v == ' ')
                v++;
            if (*v != '=')
                continue;
            v++;
            while (*v == ' ')
                v++;
            if (*v == '"')
                v++;
            for (;;) {
                size_t w = strcspn(v, "\" ;,");

                if (w == 4 && strncasecmp(v, "next", 4) == 0) {
                    size_t n = (size_t)(gt - lt - 1);

                    if (n == 0 || n >= outlen)
                        return false;
                    memcpy(out, lt + 1, n);
                    out[n] = '\0';
                    return true;
                }
                if (v[w] != ' ')
                    break;
                v += w + 1;
            }
        }
        p = *end ? end + 1 : end;
    }
    return false;
}

void net_http_form_add(struct buf *b, const char *name, const char *value)
{
    if (b->len)
        buf_addch(b, '&');
    form_encode_rfc3986(b, str_from_cstr(name));
    buf_addch(b, '=');
    form_encode_rfc3986(b, str_from_cstr(value ? value : ""));
}

void net_http_classify(const struct net_http_response *resp, struct net_verdict *v)
{
    memset(v, 0, sizeof(*v));
    switch (resp->outcome) {
    case NET_HTTP_REFUSED:
        v->status = NET_PERMANENT;
        snprintf(v->message, sizeof(v->message), "%s", resp->error);
        return;
    case NET_HTTP_NETWORK:
        v->status = resp->tls_unverified || resp->tls_client ? NET_AUTH : NET_RETRY;
        snprintf(v->message, sizeof(v->message), "%s", resp->error);
        return;
    case NET_HTTP_ANSWERED:
        break;
    }
    snprintf(v->message, sizeof(v->message), "HTTP %ld", resp->status);
    if (resp->status >= 200 && resp->status <= 299) {
        v->status = NET_OK;
    } else if (resp->status == 401 || resp->status == 403) {
        v->status = NET_AUTH;
    } else if (resp->status == 408 || resp->status == 425 || resp->status == 429 ||
               (resp->status >= 500 && resp->status <= 599)) {
        /* timeouts, too early, too many, and the server's own trouble: it may mend */
        v->status = NET_RETRY;
        v->retry_after = resp->retry_after;
    } else {
        /* 1xx as a final answer, 3xx (redirects are not followed), other 4xx */
        v->status = NET_PERMANENT;
    }
}
