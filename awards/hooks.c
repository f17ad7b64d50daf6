/*
 * awards/hooks.c - webhooks in: what BadgeKit tells us about the instances
 * it holds (issue 21, section 6).
 *
 * BadgeKit signs only the body and sends each hook once, ignoring the
 * answer; it may lose one, and anyone who saw one can send it again. So a
 * hook is never needed (the outbox stays the source of truth: the worker
 * looks an award up before it sends it again and never waits for a hook),
 * and one that arrives only moves an award towards what BadgeKit holds:
 * an `award` of ours confirms it (one whose outcome was unknown becomes
 * issued), a `revoke` of ours revokes it here without sending it back, an
 * award never undoes a revoke. Hooks about other instances, and `review`
 * hooks, are counted and left alone.
 *
 * Every hook is counted per backend for `backend check`. Accepted ones are
 * counted in the transaction that applies them. Refused ones are anyone's
 * to send, so they are not each a write: they are added up in memory and
 * written at most once a second per backend (by the next refusal after
 * that, the next accepted hook, or the stop).
 */
#include "base/base.h"
#include "awards/awards_int.h"

#include "base/log.h"

/* The revoke reason of an award BadgeKit revoked (deleted its instance). */
#define REVOKED_IN_BADGEKIT "revoked in BadgeKit"

struct awards_hooks {
    pthread_mutex_t mu; /* guards each entry's pending counts */
    struct hook_backend {
        char name[LIMIT_BACKEND_NAME_LEN + 1];
        char secret[256]; /* "": hooks refused */
        /* refusals not written yet, and when the last write was (monotonic ns) */
        int64_t pending, pending_at, flushed_ns;
        char last_refusal[256];
    } b[AWARDS_MAX_BACKENDS];
    size_t n;
};

static struct hook_backend *find(struct awards_hooks *h, const char *name)
{
    for (size_t i = 0; h && i < h->n; i++)
        if (strcmp(h->b[i].name, name) == 0)
            return &h->b[i];
    return NULL;
}

void awards_badgekit_hooks(struct awards *a, const char *name, const char *secret)
{
    struct hook_backend *e;

    if (!a->hooks) {
        a->hooks = xcalloc(1, sizeof(*a->hooks));
        pthread_mutex_init(&a->hooks->mu, NULL);
    }
    e = find(a->hooks, name);
    if (!e) {
        if (a->hooks->n == AWARDS_MAX_BACKENDS)
            BUG("more BadgeKit backends than AWARDS_MAX_BACKENDS");
        e = &a->hooks->b[a->hooks->n++];
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->secret, sizeof(e->secret), "%s", secret ? secret : "");
}

/*
 * Under h->mu: takes the refusals waiting to be written when `force`, or
 * when the last write was a second ago or more; false when there is nothing
 * to write now.
 */
static bool take_pending(struct hook_backend *e, bool force, struct store_hook_counts *d,
                         char *reason, size_t reasonlen)
{
    int64_t now = util_mono_ns();

    if (!e->pending || (!force && now - e->flushed_ns < 1000LL * 1000 * 1000))
        return false;
    d->received = d->refused = e->pending;
    d->last_refused_at = e->pending_at;
    snprintf(reason, reasonlen, "%s", e->last_refusal);
    d->last_refusal = reason;
    e->pending = 0;
    e->flushed_ns = now;
    return true;
}

/* Writes what `e` holds of refusals when it is time (or `force`). */
static void flush(struct awards *a, struct hook_backend *e, bool force)
{
    struct store_hook_counts d = { 0 };
    char reason[256];
    struct err err = ERR_INIT;
    bool due;

    pthread_mutex_lock(&a->hooks->mu);
    due = take_pending(e, force, &d, reason, sizeof(reason));
    pthread_mutex_unlock(&a->hooks->mu);
    if (due && store_hook_count(a->store, e->name, &d, &err) < 0)
        LOG(LOG_LEVEL_ERROR, "cannot count refused hooks", LOG_STR("backend", e->name),
            LOG_STR("error", err.msg), LOG_STR("detail", err.detail));
}

static void refused(struct awards *a, struct hook_backend *e, const struct err *why)
{
    pthread_mutex_lock(&a->hooks->mu);
    e->pending++;
    e->pending_at = util_now();
    snprintf(e->last_refusal, sizeof(e->last_refusal), "%s", why->msg);
    pthread_mutex_unlock(&a->hooks->mu);
    LOG(LOG_LEVEL_WARN, "hook refused", LOG_STR("backend", e->name), LOG_STR("reason", why->msg));
    flush(a, e, false);
}

static const char *const effect_names[] = {
    [STORE_HOOK_IGNORED] = "ignored",
    [STORE_HOOK_UNCHANGED] = "unchanged",
    [STORE_HOOK_ISSUED] = "issued",
    [STORE_HOOK_REVOKED] = "revoked",
};

int awards_badgekit_hook(struct awards *a, const char *name, const char *authorization,
                         const void *body, size_t len, const char **effect, struct err *err)
{
    struct hook_backend *e = find(a->hooks, name);
    struct backend_badgekit_hook *hk = NULL;
    enum store_hook_effect fx = STORE_HOOK_IGNORED;
    int64_t award_id = 0;
    int ret = -1;

    *effect = "ignored";
    if (!e)
        return err_set(err, ERR_NOTFOUND, "there is no BadgeKit backend '%s' taking hooks", name);
    if (backend_badgekit_hook_verify(e->secret, authorization, body, len, err) < 0) {
        refused(a, e, err);
        return -1;
    }
    hk = xmalloc(sizeof(*hk));
    if (backend_badgekit_hook_parse(body, len, hk, err) < 0) {
        refused(a, e, err);
        goto out;
    }
    if (hk->action == BADGEKIT_HOOK_AWARD || hk->action == BADGEKIT_HOOK_REVOKE) {
        struct store_hook sh = {
            .backend = e->name,
            .revoke = hk->action == BADGEKIT_HOOK_REVOKE,
            .uid = hk->uid,
            .badge = hk->badge,
            .assertion_url = hk->assertion_url,
            .reason = REVOKED_IN_BADGEKIT,
            .now = util_now(),
        };

        if (store_hook_apply(a->store, &sh, &fx, &award_id, err) < 0)
            goto out;
    } else {
        /* a review, or an action this version does not know: counted, nothing else */
        struct store_hook_counts d = { .received = 1,
                                       .ignored = 1,
                                       .last_received_at = util_now() };

        if (store_hook_count(a->store, e->name, &d, err) < 0)
            goto out;
    }
    *effect = effect_names[fx];
    if (fx == STORE_HOOK_ISSUED)
        awards_outcomes_wake(a); /* its grade passback is due */
    LOG(LOG_LEVEL_INFO, "hook taken", LOG_STR("backend", e->name),
        LOG_STR("action", hk->action == BADGEKIT_HOOK_AWARD    ? "award"
                          : hk->action == BADGEKIT_HOOK_REVOKE ? "revoke"
                          : hk->action == BADGEKIT_HOOK_REVIEW ? "review"
                                                               : "other"),
        LOG_STR("effect", *effect), LOG_INT("award", award_id));
    ret = 0;
out:
    free(hk);
    /* refusals held back: written with the next hook taken, else at most once a second */
    flush(a, e, ret == 0);
    return ret;
}

void awards_hooks_free(struct awards *a)
{
    if (!a->hooks)
        return;
    for (size_t i = 0; i < a->hooks->n; i++)
        flush(a, &a->hooks->b[i], true);
    pthread_mutex_destroy(&a->hooks->mu);
    explicit_bzero(a->hooks, sizeof(*a->hooks));
    FREE_AND_NULL(a->hooks);
}
