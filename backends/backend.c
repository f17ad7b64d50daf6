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
