/*
 * tests/fuzz/fuzz_oauth.c - the OAuth 1.0a Authorization header of a
 * Basic Outcomes request (lti/oauth.c), as web/outcomes.c reads it.
 *
 * The input is the header's value, then optionally a newline and the
 * request URL's query string. The header goes in as libmicrohttpd hands it
 * over: a C string (a NUL ends it). As the route does, the header and the
 * query are parsed, the protocol parameters found and the signature checked
 * against a fixed URL and secret, then the body hash computed.
 *
 * Promises checked: a header parse that succeeds has no realm; what our own
 * signer (lti_oauth_authorization, used for outcomes sent to LMSes) writes
 * for the input's consumer key and query parses back to the same key and
 * verifies with the same secret.
 */
#include "tests/fuzz/fuzz.h"
#include "lti/lti.h"

static const struct str outcomes_url = STR_LIT("https://badges.example.edu/lti/outcomes");
static const struct str secret = STR_LIT("fuzz-secret");

/* Our signer's header for `key` on a URL with `query` parses and verifies. */
static void signer_round_trip(struct str key, struct str query)
{
    struct arena a = ARENA_INIT;
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN), h = BUF_INIT(64 * 1024);
    struct buf norm = BUF_INIT(LIMIT_LTI_URL_LEN + 16);
    struct err err = ERR_INIT;
    struct lti_oauth_signer s = { 0 };
    struct form hf, qf = { NULL, 0 };
    const struct form *lists[2] = { &qf, &hf };
    struct lti_oauth o;
    struct str q;

    buf_addstr(&url, "https://lms.example.edu/grade_passback");
    if (str_present(query)) {
        buf_addch(&url, '?');
        buf_addview(&url, query);
    }
    if (url.toobig || memchr(url.ptr, '\0', url.len))
        goto out;
    s.url = buf_view(&url);
    s.consumer_key = key;
    s.consumer_secret = secret;
    s.method = key.len % 2 ? LTI_SIG_HMAC_SHA256 : LTI_SIG_HMAC_SHA1;
    s.body_hash = STR_LIT("2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    s.nonce = STR_LIT("0123456789abcdef");
    s.timestamp = 1700000000;
    if (lti_oauth_authorization(&h, &s, &err) < 0)
        goto out; /* a query that does not parse as a form */
    FUZZ_CHECK(lti_url_normalize(&norm, s.url, &q, &err) == 0);
    FUZZ_CHECK(lti_oauth_header_parse(&a, buf_view(&h), &hf, &err) == 0);
    if (str_present(q) && q.len)
        FUZZ_CHECK(form_parse(&a, q.ptr, q.len, LIMIT_FORM_PARAMS, &qf, &err) == 0);
    if (lti_oauth_params(lists, 2, &o, &err) < 0) {
        /* the query may carry protocol parameters of its own: then they appear twice */
        FUZZ_CHECK(err.code == ERR_INVALID);
        goto out;
    }
    FUZZ_CHECK(str_eq(o.consumer_key, key));
    FUZZ_CHECK(str_eq(o.body_hash, s.body_hash));
    FUZZ_CHECK(lti_oauth_verify(&o, STR_LIT("POST"), buf_view(&norm), lists, 2, secret, &err) == 0);
out:
    buf_release(&url);
    buf_release(&h);
    buf_release(&norm);
    arena_release(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a = ARENA_INIT;
    struct err err = ERR_INIT;
    const char *p = (const char *)data, *nl = size ? memchr(p, '\n', size) : NULL;
    char *header = xmemdupz(p, nl ? (size_t)(nl - p) : size);
    struct str query = nl ? (struct str){ nl + 1, size - (size_t)(nl - p) - 1 } : STR_NULL;
    struct form hf, qf = { NULL, 0 };
    const struct form *lists[2] = { &qf, &hf };
    struct lti_oauth o;
    struct buf hash = BUF_INIT(64);

    if (lti_oauth_header_parse(&a, str_from_cstr(header), &hf, &err) < 0 ||
        (str_present(query) &&
         form_parse(&a, query.ptr, query.len, LIMIT_FORM_PARAMS, &qf, &err) < 0)) {
        /* another scheme is 401, a malformed header 400 */
        FUZZ_CHECK(err.code == ERR_UNAUTHORIZED || err.code == ERR_INVALID ||
                   err.code == ERR_TOOBIG);
        goto out;
    }
    FUZZ_CHECK(form_count(&hf, "realm") == 0);
    if (lti_oauth_params(lists, 2, &o, &err) < 0)
        goto out;
    if (lti_oauth_verify(&o, STR_LIT("POST"), outcomes_url, lists, 2, secret, &err) < 0)
        FUZZ_CHECK(err.code == ERR_UNAUTHORIZED);
    FUZZ_CHECK(lti_oauth_body_hash(&hash, o.method, data, size, &err) == 0);
    if (o.consumer_key.len <= LIMIT_CONSUMER_KEY_LEN)
        signer_round_trip(o.consumer_key, query);
out:
    buf_release(&hash);
    arena_release(&a);
    free(header);
    return 0;
}
