/*
 * web/email.c - a learner gives the e-mail address their LMS did not share
 * (POST /badges/email), and follows the link that confirms it
 * (GET /badges/email/confirm?t=ID-SECRET).
 *
 * With SMTP configured, the address is kept with a confirmation link
 * (store_email_confirm_create) and the link is mailed in the learner's
 * language; the badges waiting for an address are issued once it is
 * followed. The link is opened from a mail client, outside the LMS, so it
 * needs no session: its secret is the proof. Without SMTP, the operator
 * chooses whether an address is taken as given (accept_unconfirmed) or the
 * learner is told to have the LMS share one.
 *
 * Sending a mail means talking to a relay for up to LIMIT_MAIL_TIMEOUT_MS.
 * An MHD pool thread serves many connections (launches among them), so it
 * never does that itself: the request is suspended, as launches are while
 * the store's writer records them, and handed to one mailer thread, which
 * sends and resumes it; the pool thread then answers with the outcome, so
 * the learner learns at once whether the mail went out. One thread is
 * enough: a learner may ask for LIMIT_EMAIL_CONFIRM_PER_HOUR mails an hour,
 * and the queue is bounded (LIMIT_MAIL_QUEUE, the mail being sent
 * included) so that a stuck relay turns into "try again later" within
 * about a minute, not into requests piling up. Suspended connections never
 * time out in MHD, so a stopping server does not wait for the relay
 * either: the requests still waiting are answered 503 without their mail,
 * and the mail being sent is given up (web_mailer_drain()).
 *
 * The link's token travels in the query, which the access log never shows
 * (web/server.c logs the path only), and pages say Referrer-Policy:
 * no-referrer, so it reaches no other site either.
 */
#include "base/base.h"
#include "base/log.h"
#include "web/web_int.h"

#include "awards/awards.h"
#include "net/net.h"

/* ---- the mailer thread ---- */

/* net_mail_send() asks this about once a second: a stopping server waits for no relay. */
static bool server_stopping(void *cls)
{
    struct web *w = cls;

    return atomic_load(&w->stopping);
}

static void *mailer_main(void *arg)
{
    struct web *w = arg;
    struct net_mail_config mc = *w->cfg.mail;

    mc.cancelled = server_stopping;
    mc.cancelled_cls = w;
    pthread_setname_np(pthread_self(), "lb-mailer");
    pthread_mutex_lock(&w->mail_mu);
    for (;;) {
        struct req *r;
        struct web_mail *m;

        while (!w->mail_head && !w->mail_stop)
            pthread_cond_wait(&w->mail_cv, &w->mail_mu);
        if (!w->mail_head)
            break;
        r = w->mail_head;
        m = r->mail;
        w->mail_head = m->next;
        if (!w->mail_head)
            w->mail_tail = NULL;
        pthread_mutex_unlock(&w->mail_mu);

        if (atomic_load(&w->stopping)) {
            /* queued after web_mailer_drain() took the queue */
            m->status = -1;
            m->stopped = true;
        } else {
            m->status = net_mail_send(&mc, m->to, m->subject, m->text, &m->err);
            m->stopped =
                m->status < 0 && m->err.code == ERR_UNAVAILABLE && atomic_load(&w->stopping);
            web_metrics_mail(w, m->status == 0);
        }
        pthread_mutex_lock(&w->mail_mu);
        w->mail_len--; /* the place is free once its mail is done */
        /* the pool thread answers (email_resumed); the request is not ours to touch after this */
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&w->mail_mu);
    return NULL;
}

int web_mailer_start(struct web *w, struct err *err)
{
    if (!w->cfg.mail_on)
        return 0;
    if (pthread_create(&w->mailer, NULL, mailer_main, w) != 0)
        return err_set(err, ERR_INTERNAL, "cannot start the mail sender");
    w->mailer_started = true;
    return 0;
}

void web_mailer_drain(struct web *w)
{
    struct req *r, *next;

    if (!w->mailer_started)
        return;
    pthread_mutex_lock(&w->mail_mu);
    r = w->mail_head;
    w->mail_head = w->mail_tail = NULL;
    for (; r; r = next) {
        next = r->mail->next;
        r->mail->status = -1;
        r->mail->stopped = true;
        w->mail_len--;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&w->mail_mu);
}

void web_mailer_stop(struct web *w)
{
    if (!w->mailer_started)
        return;
    pthread_mutex_lock(&w->mail_mu);
    w->mail_stop = true;
    pthread_cond_signal(&w->mail_cv);
    pthread_mutex_unlock(&w->mail_mu);
    pthread_join(w->mailer, NULL);
    w->mailer_started = false;
}

/* ---- POST /badges/email ---- */

/* A store refusal in the learner's words (the store's own are English). */
static void refuse_store(struct req *r, const struct web_sess *ws, const struct err *err)
{
    switch (err->code) {
    case ERR_CONFLICT:
        if (ws->s.email && ws->s.email[0])
            web_reply_refusal(r, ERR_CONFLICT,
                              _("this tool knows your e-mail address already: your badges are "
                                "issued to it"));
        else
            web_reply_refusal(r, ERR_CONFLICT,
                              _("no badge of yours is waiting for an e-mail address: reload your "
                                "badges page"));
        return;
    case ERR_LIMIT:
        web_reply_refusal(
            r, ERR_LIMIT,
            web_fmt(r,
                    _("you asked for %d confirmation e-mails in the last hour: wait a "
                      "while before you ask for another"),
                    LIMIT_EMAIL_CONFIRM_PER_HOUR));
        return;
    default:
        web_reply_err(r, err);
        return;
    }
}

/* The confirmation mail, in the language the request is answered in. */
static void compose(struct req *r, const struct web_sess *ws, const char *link, struct web_mail *m)
{
    const char *name = ws->s.user_name && ws->s.user_name[0] ? ws->s.user_name : NULL;
    struct buf b = BUF_INIT(LIMIT_MAIL_BODY);

    if (name)
        buf_addf(&b, _("Hello %s,"), name);
    else
        buf_addstr(&b, _("Hello,"));
    buf_addstr(&b, "\n\n");
    buf_addf(&b,
             _("You asked for your badges from %s to be issued to this e-mail address. To "
               "confirm that it is yours, open this link within %d hours:"),
             ws->s.consumer_name && ws->s.consumer_name[0] ? ws->s.consumer_name
                                                           : r->web->cfg.tool_title,
             LIMIT_EMAIL_CONFIRM_TTL / 3600);
    buf_addf(&b, "\n\n%s\n\n", link);
    buf_addstr(&b, _("Your badges are issued to this address once you have opened the link."));
    buf_addstr(&b, "\n\n");
    buf_addstr(&b, _("If you did not ask for this, ignore this e-mail: nothing happens without "
                     "the link."));
    buf_addf(&b, "\n\n-- \n%s\n", r->web->cfg.tool_title);
    m->text = arena_memdupz(&r->arena, b.ptr ? b.ptr : "", b.len);
    m->subject = _("Confirm your e-mail address for your badges");
    buf_release(&b);
}

/*
 * The link of a mail not sent stops working; its row stays and counts
 * against the hourly limit, so a relay that keeps refusing is not asked
 * without end. When even that fails the link might still work: the
 * learner is not told that nothing happened, but that something went wrong.
 */
static int withdraw_or_reply(struct req *r, int64_t confirmation_id)
{
    struct err err = ERR_INIT;

    if (store_email_confirm_cancel(r->web->store, confirmation_id, &err) < 0) {
        web_reply_err(r, &err); /* a 5xx: logged with its detail */
        return -1;
    }
    return 0;
}

static void reply_restarting(struct req *r)
{
    web_reply_page(r, 503, _("Try again"),
                   _("The server is restarting. Nothing was saved: try again in a minute."));
}

static void email_resumed(struct req *r)
{
    struct web_mail *m = r->mail;

    if (m->stopped) {
        LOG_MSG(LOG_LEVEL_WARN, "a confirmation mail was not sent: the server is stopping");
        if (withdraw_or_reply(r, m->confirmation_id) == 0)
            reply_restarting(r);
    } else if (m->status < 0) {
        /* the detail (libcurl's text, the SMTP reply) is the operator's: the log, not the page */
        LOG(LOG_LEVEL_ERROR, "a confirmation mail was not sent", LOG_STR("error", m->err.msg),
            LOG_STR("detail", m->err.detail));
        if (withdraw_or_reply(r, m->confirmation_id) < 0) {
            web_req_release(r);
            return;
        }
        if (m->err.code == ERR_INVALID)
            web_reply_refusal(r, ERR_INVALID,
                              _("the mail server refused to send the e-mail to this address: check "
                                "the address and try again"));
        else
            web_reply_page(r, 502, _("E-mail not sent"),
                           _("The e-mail could not be sent just now. Nothing was saved: try again "
                             "in a few minutes."));
    } else {
        web_back_to(r, r->sess, "/badges", "mailed", NULL);
    }
    web_req_release(r);
}

/*
 * The learner left before hearing how their mail went: a link that was not
 * mailed is withdrawn all the same, as email_resumed() would have.
 */
static void email_abandoned(struct req *r)
{
    struct web_mail *m = r->mail;
    struct err err = ERR_INIT;

    if (m->status >= 0)
        return;
    if (store_email_confirm_cancel(r->web->store, m->confirmation_id, &err) < 0)
        LOG(LOG_LEVEL_ERROR, "a confirmation link not mailed stays", LOG_STR("error", err.msg),
            LOG_STR("detail", err.detail));
}

/* Hands the request to the mailer; it is answered when the mail went out, or did not. */
static void send_later(struct req *r, struct web_mail *m)
{
    struct web *w = r->web;
    bool full, stopping;

    /* counted before the check, so web_stop() either sees it or it sees the stop */
    web_req_hold(r, &w->mails_in_flight);
    stopping = atomic_load(&w->stopping);
    pthread_mutex_lock(&w->mail_mu);
    full = w->mail_len >= LIMIT_MAIL_QUEUE;
    if (!full && !stopping)
        w->mail_len++; /* the place is ours before the request is suspended */
    pthread_mutex_unlock(&w->mail_mu);
    if (full || stopping) {
        web_req_release(r);
        if (withdraw_or_reply(r, m->confirmation_id) < 0)
            return;
        if (stopping)
            reply_restarting(r);
        else
            web_reply_page(r, 503, _("Try again"),
                           _("Too many e-mails are waiting to be sent. Nothing was saved: try "
                             "again in a few minutes."));
        return;
    }
    r->mail = m;
    r->resumed = email_resumed;
    r->abandoned = email_abandoned;
    /* suspend before queueing: the mailer may resume it before this function returns */
    r->suspended = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_lock(&w->mail_mu);
    if (w->mail_tail)
        w->mail_tail->mail->next = r;
    else
        w->mail_head = r;
    w->mail_tail = r;
    pthread_cond_signal(&w->mail_cv);
    pthread_mutex_unlock(&w->mail_mu);
}

void web_route_email(struct req *r)
{
    struct web *w = r->web;
    struct web_sess *ws = arena_alloc(&r->arena, sizeof(*ws));
    struct err err = ERR_INIT;
    struct str given;
    const char *email;

    if (web_form_session_or_reply(r, false, ws) < 0)
        return;
    if (!w->cfg.mail_on && !w->cfg.accept_unconfirmed_email) {
        web_reply_refusal(
            r, ERR_FORBIDDEN,
            _("this tool cannot take an e-mail address from you: ask your instructor or "
              "your learning platform's administrator to have your address shared with "
              "this tool"));
        return;
    }
    given = str_trim(web_post_get(r, "email"));
    email = given.len <= LIMIT_MAIL_ADDRESS_LEN ? arena_strz(&r->arena, given) : NULL;
    if (!email || !net_mail_address_valid(email)) {
        web_reply_refusal(r, ERR_INVALID,
                          _("that is not an e-mail address this tool can use: write it as "
                            "name@example.edu"));
        return;
    }
    if (!w->cfg.mail_on) {
        int64_t released = 0;

        if (store_email_set_unconfirmed(w->store, ws->s.user_id, email, util_now(), &released,
                                        &err) < 0) {
            refuse_store(r, ws, &err);
            return;
        }
        if (released && w->cfg.awards)
            awards_wake(w->cfg.awards);
        web_back_to(r, ws, "/badges", "email", NULL);
        return;
    }
    {
        struct web_mail *m = arena_alloc(&r->arena, sizeof(*m));
        char token[STORE_EMAIL_TOKEN_MAX + 1];

        memset(m, 0, sizeof(*m));
        if (store_email_confirm_create(w->store, ws->s.user_id, email, util_now(),
                                       LIMIT_EMAIL_CONFIRM_TTL, &m->confirmation_id, token,
                                       &err) < 0) {
            refuse_store(r, ws, &err);
            return;
        }
        m->to = email;
        compose(r, ws, web_fmt(r, "%s/badges/email/confirm?t=%s", w->public_url, token), m);
        send_later(r, m);
    }
}

/* ---- GET /badges/email/confirm?t=ID-SECRET ---- */

/* Splits "ID-SECRET" (a positive id, 64 lower-case hex digits); false when malformed. */
static bool parse_token(struct str t, int64_t *id, struct str *secret)
{
    const char *dash = t.ptr ? memchr(t.ptr, '-', t.len) : NULL;
    struct str idpart = { t.ptr, dash ? (size_t)(dash - t.ptr) : 0 };

    if (!dash || str_to_i64(idpart, 1, INT64_MAX, id) < 0)
        return false;
    *secret = (struct str){ dash + 1, t.len - idpart.len - 1 };
    if (secret->len != 64)
        return false;
    for (size_t i = 0; i < secret->len; i++) {
        char c = secret->ptr[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

void web_route_email_confirm(struct req *r)
{
    struct form q = { NULL, 0 };
    struct err err = ERR_INIT;
    struct store_email_confirmed done;
    struct str secret = STR_NULL;
    unsigned char hash[32];
    int64_t id = 0;

    if (!str_present(r->query) ||
        form_parse(&r->arena, r->query.ptr, r->query.len, 32, &q, &err) < 0 ||
        !parse_token(form_get(&q, "t"), &id, &secret)) {
        web_reply_refusal(
            r, ERR_INVALID,
            _("this confirmation link is incomplete: copy the whole link from the e-mail "
              "into your browser's address bar"));
        return;
    }
    /* link checkers and previews ask with HEAD: only a GET uses the link */
    if (r->method == REQ_HEAD) {
        web_reply_page(r, 200, _("Confirm your e-mail address"),
                       _("Open this link in your browser to confirm your e-mail address."));
        return;
    }
    util_sha256(secret.ptr, secret.len, hash);
    if (store_email_confirm(r->web->store, id, hash, util_now(), &r->arena, &done, &err) < 0) {
        switch (done.refusal) {
        case STORE_EMAIL_UNKNOWN:
            if (err.code == ERR_NOTFOUND) {
                web_reply_refusal(
                    r, ERR_NOTFOUND,
                    _("this confirmation link is not valid: it may have been replaced by "
                      "a newer one. Open your badges page from your course to ask for a "
                      "new link"));
                return;
            }
            break;
        case STORE_EMAIL_EXPIRED:
            web_reply_refusal(r, ERR_GONE,
                              web_fmt(r,
                                      _("this confirmation link has expired or was replaced by a "
                                        "newer one: a link works for %d hours, and only the last "
                                        "one asked for works. Use the newest link you were sent, "
                                        "or open your badges page from your course to ask for a "
                                        "new one"),
                                      LIMIT_EMAIL_CONFIRM_TTL / 3600));
            return;
        case STORE_EMAIL_USED:
            web_reply_refusal(r, ERR_GONE,
                              _("this confirmation link was used already: the address it confirmed "
                                "is kept, and there is nothing more to do"));
            return;
        case STORE_EMAIL_OK:
            break;
        }
        web_reply_err(r, &err);
        return;
    }
    if (done.released && r->web->cfg.awards)
        awards_wake(r->web->cfg.awards);
    if (done.lms_email_kept) {
        /*
         * Not the LMS's address itself: whoever holds this link (a stranger,
         * if the learner mistyped theirs) learns nothing of it.
         */
        web_reply_page(r, 200, _("Address not changed"),
                       done.released
                           ? _("Your learning platform has shared your e-mail address since you "
                               "asked for this link: the address your learning platform shares is "
                               "kept, not the one in this link. Your badges are on their way: you "
                               "find them on the badges page of your course.")
                           : _("Your learning platform has shared your e-mail address since you "
                               "asked for this link: the address your learning platform shares is "
                               "kept, not the one in this link, and there is nothing more to do."));
        return;
    }
    web_reply_page(r, 200, _("Address confirmed"),
                   web_fmt(r,
                           _("Your e-mail address %s is confirmed. Your badges are on their way: "
                             "you find them on the badges page of your course."),
                           done.email));
}
