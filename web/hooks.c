/*
 * web/hooks.c - POST /hooks/badgekit/NAME: the URL to put in BadgeKit's
 * `webhooks` row for the system of the [backend.NAME] section.
 *
 * The server's framing and the route table have refused what is not a
 * POST (405) and a body over LIMIT_BADGEKIT_HOOK_BODY (413) by then; the
 * rest is awards_badgekit_hook()'s: 404 for a name that is no BadgeKit
 * backend, 403 when its webhook_secret is empty, 401 for a hook not signed
 * as BadgeKit signs, 400 for a signed body that is not a hook, 200 once it
 * is taken (applied, unchanged or ignored). BadgeKit reads none of it; the
 * answer is a small JSON object for whoever tests the URL by hand.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

#include <jansson.h>

static void reply_json(struct req *r, unsigned status, const char *key, const char *value)
{
    json_t *o = json_pack("{ss}", key, value);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (!text)
        abort(); /* jansson fails only on allocation: out of memory is fatal */
    web_reply(r, status, "application/json", text, strlen(text), NULL);
}

void web_route_badgekit_hook(struct req *r)
{
    struct awards *a = r->web->cfg.awards;
    struct str name = { r->path.ptr + strlen("/hooks/badgekit/"),
                        r->path.len - strlen("/hooks/badgekit/") };
    const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    const char *effect = NULL;
    struct err err = ERR_INIT;
    char nm[LIMIT_BACKEND_NAME_LEN + 1];

    if (!a || name.len == 0 || name.len > LIMIT_BACKEND_NAME_LEN) {
        reply_json(r, 404, "error", "there is no BadgeKit backend of that name taking hooks");
        return;
    }
    memcpy(nm, name.ptr, name.len);
    nm[name.len] = '\0';
    if (!backend_name_valid(nm) ||
        awards_badgekit_hook(a, nm, auth, r->body.ptr, r->body.len, &effect, &err) < 0) {
        if (!err.code)
            err_set(&err, ERR_NOTFOUND, "there is no BadgeKit backend of that name taking hooks");
        reply_json(r, web_status_for(err.code), "error", err.msg);
        return;
    }
    reply_json(r, 200, "effect", effect);
}
