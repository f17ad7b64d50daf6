/*
 * tests/fuzz/fuzz_launch.c - a basic-lti-launch-request as web/launch.c
 * reads it (lti/launch.c and lti/oauth.c on forms from base/form.c).
 *
 * The input is the launch URL's query, a newline, then the POST body; an
 * input without a newline is a body alone. As the route does, both are
 * parsed as forms, the OAuth protocol parameters found among them, the
 * signature checked (against a fixed URL and secret) and the launch parsed.
 * The launch is parsed even when the signature fails, as if it had passed:
 * a consumer that knows its secret signs anything.
 *
 * Promises checked: a signature computed over the request with
 * lti_oauth_sign() verifies, and so does one computed as Canvas computes it
 * (over the body alone) when the body repeats the query's pairs; a wrong
 * one is refused as unauthorized; a parsed launch's fields are bounded, valid
 * UTF-8 and free of control characters, user_id and resource_link_id are
 * there; the return URL is an http(s) URL or absent.
 */
#include "tests/fuzz/fuzz.h"
#include "lti/lti.h"

#include <strings.h>

static const struct str launch_url = STR_LIT("https://badges.example.edu/lti/launch");
static const struct str secret = STR_LIT("fuzz-secret");

static void check_field(struct str v, size_t max)
{
    if (!str_present(v))
        return;
    FUZZ_CHECK(v.len > 0 && v.len <= max);
    FUZZ_CHECK(str_utf8_valid(v));
    FUZZ_CHECK(!str_has_ctl(v));
}

static bool is_http_url(struct str s)
{
    return (s.len > 7 && strncasecmp(s.ptr, "http://", 7) == 0) ||
           (s.len > 8 && strncasecmp(s.ptr, "https://", 8) == 0);
}

static void check_launch(const struct lti_launch *l)
{
    check_field(l->user_id, LIMIT_LTI_ID_LEN);
    check_field(l->resource_link_id, LIMIT_LTI_ID_LEN);
    FUZZ_CHECK(str_present(l->user_id) && str_present(l->resource_link_id));
    check_field(l->given_name, LIMIT_LTI_TEXT_LEN);
    check_field(l->family_name, LIMIT_LTI_TEXT_LEN);
    check_field(l->full_name, LIMIT_LTI_TEXT_LEN);
    check_field(l->email, 254);
    check_field(l->person_sourcedid, LIMIT_LTI_ID_LEN);
    check_field(l->context_id, LIMIT_LTI_ID_LEN);
    check_field(l->context_title, LIMIT_LTI_TEXT_LEN);
    check_field(l->context_label, LIMIT_LTI_TEXT_LEN);
    check_field(l->resource_link_title, LIMIT_LTI_TEXT_LEN);
    check_field(l->roles, LIMIT_LTI_ROLES_LEN);
    check_field(l->ext_roles, LIMIT_LTI_ROLES_LEN);
    check_field(l->mode, 64);
    check_field(l->outcome_service_url, LIMIT_LTI_URL_LEN);
    check_field(l->result_sourcedid, LIMIT_LTI_SOURCEDID_LEN);
    check_field(l->return_url, LIMIT_LTI_URL_LEN);
    check_field(l->locale, 35);
    check_field(l->lms, 64);
    if (str_present(l->return_url))
        FUZZ_CHECK(is_http_url(l->return_url));
    if (str_present(l->outcome_service_url))
        FUZZ_CHECK(is_http_url(l->outcome_service_url));
    FUZZ_CHECK(l->role_flags == lti_roles_parse(l->roles));
    (void)lti_roles_view(l->role_flags | lti_roles_parse(l->ext_roles));
}

/* Signs `lists` as a consumer does (base string over both, the fixed secret). */
static void sign(struct buf *sig, enum lti_sig_method m, const struct form *const *lists)
{
    struct buf base = BUF_INIT(LIMIT_BASE_STRING_LEN);
    struct err err = ERR_INIT;

    FUZZ_CHECK(lti_oauth_base_string(&base, STR_LIT("POST"), launch_url, lists, 2, &err) == 0);
    FUZZ_CHECK(lti_oauth_sign(sig, m, buf_view(&base), secret, STR_LIT(""), &err) == 0);
    buf_release(&base);
}

/* Whether every query pair has a body pair of its own with the same name and value. */
static bool body_repeats_query(const struct form *q, const struct form *b)
{
    bool *used = xcalloc(b->count + 1, sizeof(*used));
    bool all = true;

    for (size_t i = 0; i < q->count && all; i++) {
        size_t j;

        for (j = 0; j < b->count; j++) {
            if (!used[j] && str_eq(b->params[j].name, q->params[i].name) &&
                str_eq(b->params[j].value, q->params[i].value))
                break;
        }
        if (j < b->count)
            used[j] = true;
        else
            all = false;
    }
    free(used);
    return all;
}

static void signature(const struct lti_oauth *o, const struct form *query, const struct form *body)
{
    const struct form *lists[2] = { query, body };
    const struct form none = { NULL, 0 };
    const struct form *body_only[2] = { &none, body };
    struct buf sig = BUF_INIT(128);
    struct err err = ERR_INIT;
    struct lti_oauth signed_o = *o;

    /* the consumer's signature (the input's) almost never matches: it is refused, nothing else */
    if (lti_oauth_verify_launch(o, launch_url, query, body, secret, &err) < 0)
        FUZZ_CHECK(err.code == ERR_UNAUTHORIZED);
    /* one computed over the query and the body, as RFC 5849 says, passes */
    err_clear(&err);
    sign(&sig, o->method, lists);
    signed_o.signature = buf_view(&sig);
    FUZZ_CHECK(lti_oauth_verify(&signed_o, STR_LIT("post"), launch_url, lists, 2, secret, &err) ==
               0);
    FUZZ_CHECK(lti_oauth_verify_launch(&signed_o, launch_url, query, body, secret, &err) == 0);
    /* one computed over the body alone, as Canvas does, passes when the body repeats the query */
    buf_reset(&sig);
    sign(&sig, o->method, body_only);
    signed_o.signature = buf_view(&sig);
    if (body_repeats_query(query, body) && query->count)
        FUZZ_CHECK(lti_oauth_verify_launch(&signed_o, launch_url, query, body, secret, &err) == 0);
    buf_release(&sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a = ARENA_INIT;
    struct err err = ERR_INIT;
    const char *p = (const char *)data, *nl = size ? memchr(p, '\n', size) : NULL;
    struct str query = nl ? (struct str){ p, (size_t)(nl - p) } : STR_NULL;
    struct str body =
        nl ? (struct str){ nl + 1, size - (size_t)(nl - p) - 1 } : (struct str){ p, size };
    struct form qf = { NULL, 0 }, bf;
    const struct form *lists[2] = { &qf, &bf };
    struct lti_oauth o;
    struct lti_launch l;

    if (size > LIMIT_LAUNCH_BODY_MAX)
        return 0;
    if (form_parse(&a, body.ptr, body.len, LIMIT_FORM_PARAMS, &bf, &err) < 0 ||
        (str_present(query) &&
         form_parse(&a, query.ptr, query.len, LIMIT_FORM_PARAMS, &qf, &err) < 0))
        goto out;
    if (lti_oauth_params(lists, 2, &o, &err) == 0) {
        FUZZ_CHECK(o.consumer_key.len > 0 && o.nonce.len > 0 && o.signature.len > 0);
        FUZZ_CHECK(o.ts > 0);
        signature(&o, &qf, &bf);
        err_clear(&err);
        (void)lti_oauth_check_time(&o, 1700000000, LIMIT_OAUTH_WINDOW_MAX, &err);
    }
    err_clear(&err);
    {
        struct str ret = lti_launch_return_url(&bf);

        if (str_present(ret))
            FUZZ_CHECK(is_http_url(ret) && ret.len <= LIMIT_LTI_URL_LEN);
    }
    if (lti_launch_parse(&bf, &l, &err) == 0)
        check_launch(&l);
    else
        FUZZ_CHECK(err.code == ERR_INVALID && err.msg[0]);
out:
    arena_release(&a);
    return 0;
}
