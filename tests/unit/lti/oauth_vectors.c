/*
 * tests/unit/lti/oauth_vectors.c - recomputes every case tests/oauth/vectors.py
 * got from oauthlib: the normalized base URI, the signature base string and
 * the signature, and checks lti_oauth_verify() accepts the signature and
 * refuses it for a changed parameter.
 */
#include "base/base.h"
#include "lti/lti.h"

#include <jansson.h>

static int check_case(json_t *c, struct err *err)
{
    struct arena arena = ARENA_INIT;
    const char *url = json_string_value(json_object_get(c, "url"));
    const char *body = json_string_value(json_object_get(c, "body"));
    const char *secret = json_string_value(json_object_get(c, "secret"));
    const char *method = json_string_value(json_object_get(c, "method"));
    const char *want_uri = json_string_value(json_object_get(c, "base_uri"));
    const char *want_base = json_string_value(json_object_get(c, "base"));
    const char *want_sig = json_string_value(json_object_get(c, "signature"));
    json_t *header = json_object_get(c, "header");
    struct buf uri = BUF_INIT(4096), base = BUF_INIT(1 << 20), sig = BUF_INIT(128);
    struct str query;
    struct form q = { NULL, 0 }, b, h;
    const struct form *lists[3];
    enum lti_sig_method m =
        strcmp(method, "HMAC-SHA1") == 0 ? LTI_SIG_HMAC_SHA1 : LTI_SIG_HMAC_SHA256;
    int ret = -1;

    if (lti_url_normalize(&uri, str_from_cstr(url), &query, err) < 0)
        goto out;
    if (strcmp(uri.ptr, want_uri) != 0) {
        err_set(err, ERR_INVALID, "base URI '%s', oauthlib '%s'", uri.ptr, want_uri);
        goto out;
    }
    if ((str_present(query) &&
         form_parse(&arena, query.ptr, query.len, LIMIT_FORM_PARAMS, &q, err) < 0) ||
        form_parse(&arena, body, strlen(body), LIMIT_FORM_PARAMS, &b, err) < 0)
        goto out;
    h.count = json_array_size(header);
    h.params = arena_alloc(&arena, (h.count + 1) * sizeof(*h.params));
    for (size_t i = 0; i < h.count; i++) {
        json_t *p = json_array_get(header, i);

        h.params[i].name = str_from_cstr(json_string_value(json_array_get(p, 0)));
        h.params[i].value = str_from_cstr(json_string_value(json_array_get(p, 1)));
    }
    lists[0] = &q;
    lists[1] = &b;
    lists[2] = &h;
    if (lti_oauth_base_string(&base, STR_LIT("POST"), buf_view(&uri), lists, 3, err) < 0)
        goto out;
    if (strcmp(base.ptr, want_base) != 0) {
        err_set(err, ERR_INVALID, "base string differs from oauthlib's");
        fprintf(stderr, "  ours:     %s\n  oauthlib: %s\n", base.ptr, want_base);
        goto out;
    }
    if (lti_oauth_sign(&sig, m, buf_view(&base), str_from_cstr(secret), STR_LIT(""), err) < 0)
        goto out;
    if (strcmp(sig.ptr, want_sig) != 0) {
        err_set(err, ERR_INVALID, "signature '%s', oauthlib '%s'", sig.ptr, want_sig);
        goto out;
    }
    if (h.count == 0) {
        /* the launch path: verify what oauthlib signed, then a tampered copy */
        struct lti_oauth o;
        struct err e2 = ERR_INIT;
        struct form_param sp = { STR_LIT("oauth_signature"), str_from_cstr(want_sig) };
        struct form sf = { &sp, 1 };

        lists[2] = &sf;
        if (lti_oauth_params(lists, 3, &o, err) < 0)
            goto out;
        if (lti_oauth_verify(&o, STR_LIT("POST"), buf_view(&uri), lists, 3, str_from_cstr(secret),
                             err) < 0)
            goto out;
        b.params[0].value = STR_LIT("tampered");
        if (lti_oauth_verify(&o, STR_LIT("POST"), buf_view(&uri), lists, 3, str_from_cstr(secret),
                             &e2) == 0 ||
            e2.code != ERR_UNAUTHORIZED) {
            err_set(err, ERR_INVALID, "a tampered request verified");
            goto out;
        }
    }
    ret = 0;
out:
    buf_release(&uri);
    buf_release(&base);
    buf_release(&sig);
    arena_release(&arena);
    return ret;
}

int main(int argc, char **argv)
{
    json_error_t jerr;
    json_t *cases;
    size_t passed = 0, failed = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: oauth_vectors FILE.json\n");
        return 2;
    }
    cases = json_load_file(argv[1], 0, &jerr);
    if (!json_is_array(cases) || json_array_size(cases) < 100) {
        fprintf(stderr, "oauth_vectors: cannot read vectors: %s\n", jerr.text);
        return 1;
    }
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        struct err err = ERR_INIT;

        if (check_case(c, &err) < 0) {
            failed++;
            fprintf(stderr, "FAIL %s: %s\n", json_string_value(json_object_get(c, "name")),
                    err.msg);
        } else {
            passed++;
        }
    }
    json_decref(cases);
    printf("oauthlib vectors: %zu passed, %zu failed\n", passed, failed);
    return failed ? 1 : 0;
}
