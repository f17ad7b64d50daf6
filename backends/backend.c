/*
 * backends/backend.c - what every backend shares: results, and reading an
 * HTTP answer into one (net_http_classify(), the one reading of every
 * remote call's answer).
 */
#include "base/base.h"
#include "backends/backends.h"
#include "net/net.h"

void backend_result_init(struct backend_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = BACKEND_OK;
}

void backend_result_set(struct backend_result *r, enum backend_status st, const char *fmt, ...)
{
    va_list ap;

    r->status = st;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
}

void backend_destroy(struct backend *b)
{
    if (b && b->ops->destroy)
        b->ops->destroy(b);
}

void backend_marker(const char *public_url, const char *slug, char out[BACKEND_MARKER_LEN + 1])
{
    unsigned char h[32];
    const char *u = public_url ? public_url : "";

    /* the server's URL hashed: a tag stays short and says nothing of where the server is */
    util_sha256(u, strlen(u), h);
    snprintf(out, BACKEND_MARKER_LEN + 1, "ltibadges:%02x%02x%02x%02x%02x%02x:%.*s", h[0], h[1],
             h[2], h[3], h[4], h[5], LIMIT_SLUG_LEN, slug ? slug : "");
}

static bool backend_cancelled(struct backend *b)
{
    return b->cancelled && b->cancelled(b->cancelled_cls);
}

bool backend_sleep_until(struct backend *b, int64_t until_ns)
{
    int64_t now = util_mono_ns();

    while (now < until_ns) {
        int64_t left = until_ns - now;
        struct timespec ts = { .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };

        if (backend_cancelled(b))
            return false;
        if (ts.tv_sec > 0) { /* ask about cancelling at least once a second */
            ts.tv_sec = 1;
            ts.tv_nsec = 0;
        }
        nanosleep(&ts, NULL);
        now = util_mono_ns();
    }
    return !backend_cancelled(b);
}

void backend_result_http(struct backend_result *r, const struct net_http_response *resp,
                         const char *what)
{
    static const enum backend_status map[] = {
        [NET_OK] = BACKEND_OK,
        [NET_RETRY] = BACKEND_RETRY,
        [NET_AUTH] = BACKEND_AUTH,
        [NET_PERMANENT] = BACKEND_PERMANENT,
    };
    struct net_verdict v;

    net_http_classify(resp, &v);
    r->status = map[v.status];
    r->retry_after = v.retry_after;
    if (v.status == NET_OK)
        r->message[0] = '\0';
    else
        snprintf(r->message, sizeof(r->message), "%s: %s", what, v.message);
}
