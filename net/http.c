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
    struct net_http_response *resp;
    size_t max;
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

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    size_t len = size * n;
    struct str v;
    int64_t secs;

    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        v = (struct str){ p + 12, len - 12 };
        while (v.len && (v.ptr[v.len - 1] == '\r' || v.ptr[v.len - 1] == '\n'))
            v.len--;
        v = str_trim(v);
        /* delta-seconds; an HTTP date is rare from these services and read as "soon" */
        if (str_to_i64(v, 0, 7 * 24 * 3600, &secs) == 0)
            c->resp->retry_after = secs;
        else if (v.len)
            c->resp->retry_after = 60;
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
    char *scheme = NULL, *host = NULL;
    bool ok = false;

    if (!u)
        return false;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(why, whylen, "not a valid URL");
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(why, whylen, "only http and https URLs are called, not %.16s", scheme);
    } else if (!host_allowed(p->allowed_hosts, host)) {
        snprintf(why, whylen, "host %.200s is not among the consumer's outcome hosts", host);
    } else {
        ok = true;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

int net_http_post(struct net_http *h, const struct net_http_policy *p,
                  const struct net_http_request *req, struct net_http_response *resp)
{
    struct call c = { { p->allow_loopback, false, "" }, resp, req->max_response };
    struct curl_slist *hdrs = NULL;
    struct buf line = BUF_INIT(16384);
    CURL *k = h->curl;
    CURLcode rc;

    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, req->max_response + 1);
    if (!net_http_url_allowed(p, req->url, resp->error, sizeof(resp->error))) {
        resp->outcome = NET_HTTP_REFUSED;
        return -1;
    }
    curl_easy_reset(k);
    buf_addf(&line, "Content-Type: %s", req->content_type);
    hdrs = curl_slist_append(hdrs, line.ptr);
    if (req->authorization) {
        buf_reset(&line);
        buf_addf(&line, "Authorization: %s", req->authorization);
        hdrs = curl_slist_append(hdrs, line.ptr);
    }
    /* no "Expect: 100-continue" round trip for small bodies */
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(k, CURLOPT_URL, req->url);
    curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(k, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(k, CURLOPT_PROXY, "");
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(k, CURLOPT_SSL_VERIFYHOST, 2L);
    if (p->ca_file)
        curl_easy_setopt(k, CURLOPT_CAINFO, p->ca_file);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout_ms);
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(k, CURLOPT_OPENSOCKETFUNCTION, net_open_socket);
    curl_easy_setopt(k, CURLOPT_OPENSOCKETDATA, &c.guard);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(k, CURLOPT_POST, 1L);
    curl_easy_setopt(k, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(k, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(k, CURLOPT_USERAGENT, "ltibadges");
    rc = curl_easy_perform(k);
    curl_slist_free_all(hdrs);
    buf_release(&line);
    if (c.guard.refused) {
        resp->outcome = NET_HTTP_REFUSED;
        snprintf(resp->error, sizeof(resp->error), "refused to connect to %s", c.guard.why);
        return -1;
    }
    if (rc == CURLE_WRITE_ERROR) {
        resp->outcome = NET_HTTP_NETWORK;
        snprintf(resp->error, sizeof(resp->error), "the answer is larger than %zu bytes",
                 req->max_response);
        return -1;
    }
    if (rc != CURLE_OK) {
        resp->outcome = NET_HTTP_NETWORK;
        snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->outcome = NET_HTTP_ANSWERED;
    return 0;
}
