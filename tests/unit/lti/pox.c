/*
 * tests/unit/lti/pox.c - Basic Outcomes messages: scores, building and
 * parsing requests and responses, hostile XML, the Authorization header and
 * the body hash. (The fake LMS of the integration suite checks our requests
 * with an independent implementation.)
 */
#include "base/base.h"
#include "lti/lti.h"

#include <setjmp.h>
#include <cmocka.h>

#define NS "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"

static void scores(void **state)
{
    static const struct {
        const char *text;
        int ok;
        double v;
    } cases[] = {
        { "0.8", 0, 0.8 },    { "1", 0, 1.0 },      { ".75", 0, 0.75 },   { "0", 0, 0.0 },
        { " 0.5\n", 0, 0.5 }, { "1.0000", 0, 1.0 }, { "00.25", 0, 0.25 }, { "1.5", -1, 0 },
        { "-0.1", -1, 0 },    { "+0.5", -1, 0 },    { "abc", -1, 0 },     { "", -1, 0 },
        { ".", -1, 0 },       { "0,5", -1, 0 },     { "1e-1", -1, 0 },    { "nan", -1, 0 },
        { "inf", -1, 0 },     { "0x1", -1, 0 },     { "0.5 0.6", -1, 0 }, { "1.0000001", -1, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double d = -1;
        int rc = lti_score_parse(str_from_cstr(cases[i].text), &d);

        if (rc != cases[i].ok)
            fail_msg("'%s': got %d", cases[i].text, rc);
        if (rc == 0)
            assert_true(d == cases[i].v);
    }
    {
        char out[LTI_SCORE_BUF];
        double back;

        lti_score_format(0.8, out);
        assert_string_equal(out, "0.8");
        lti_score_format(1.0, out);
        assert_string_equal(out, "1");
        lti_score_format(1.0 / 3.0, out);
        assert_int_equal(lti_score_parse(str_from_cstr(out), &back), 0);
        assert_true(back == 1.0 / 3.0);
    }
}

static void build_replace_and_read_it_back(void **state)
{
    struct buf b = BUF_INIT(65536);
    struct arena a = ARENA_INIT;
    struct err err = ERR_INIT;
    struct lti_pox_request r;
    struct lti_pox_message m = {
        .op = LTI_POX_REPLACE,
        .message_id = "m-1",
        .sourcedid = "{\"data\":{\"userid\":\"3\"},\"hash\":\"a<&>\"}",
        .has_score = true,
        .score = 0.85,
        .data_url = "https://tool.example/ob/v2/assertions/x?a=1&b=2",
    };

    assert_int_equal(lti_pox_build_request(&b, &m, &err), 0);
    assert_non_null(strstr(b.ptr, "<imsx_POXEnvelopeRequest xmlns=\"" NS "\">"));
    assert_non_null(strstr(b.ptr, "<imsx_version>V1.0</imsx_version>"));
    assert_non_null(strstr(b.ptr, "<language>en</language><textString>0.85</textString>"));
    assert_non_null(strstr(b.ptr, "&amp;b=2</url></resultData></result>"));
    assert_null(strstr(b.ptr, "a<&>"));

    assert_int_equal(lti_pox_parse_request(&a, b.ptr, b.len, &r, &err), 0);
    assert_int_equal(r.op, LTI_POX_REPLACE);
    assert_string_equal(r.op_name, "replaceResultRequest");
    assert_string_equal(r.message_id, "m-1");
    assert_string_equal(r.sourcedid, m.sourcedid);
    assert_true(r.has_score && r.score == 0.85);
    assert_string_equal(r.data_url, m.data_url);
    assert_null(r.data_text);

    buf_reset(&b);
    m.op = LTI_POX_READ;
    assert_int_equal(lti_pox_build_request(&b, &m, &err), 0);
    assert_non_null(strstr(b.ptr, "<readResultRequest><resultRecord><sourcedGUID><sourcedId>"));
    assert_null(strstr(b.ptr, "resultScore"));
    assert_int_equal(lti_pox_parse_request(&a, b.ptr, b.len, &r, &err), 0);
    assert_int_equal(r.op, LTI_POX_READ);
    buf_release(&b);
    arena_release(&a);
}

/* A request as Moodle and the IMS spec print it: prefix-free, indented. */
static const char spec_request_fmt[] =
    "<?xml version = \"1.0\" encoding = \"UTF-8\"?>\n"
    "<imsx_POXEnvelopeRequest xmlns = \"" NS "\">\n"
    "  <imsx_POXHeader>\n"
    "    <imsx_POXRequestHeaderInfo>\n"
    "      <imsx_version>V1.0</imsx_version>\n"
    "      <imsx_messageIdentifier>999999123</imsx_messageIdentifier>\n"
    "    </imsx_POXRequestHeaderInfo>\n"
    "  </imsx_POXHeader>\n"
    "  <imsx_POXBody>\n"
    "    <%s>\n"
    "      <resultRecord>\n"
    "        <sourcedGUID>\n"
    "          <sourcedId>%s</sourcedId>\n"
    "        </sourcedGUID>\n"
    "        <result>\n"
    "          <resultScore>\n"
    "            <language>en</language>\n"
    "            <textString>%s</textString>\n"
    "          </resultScore>\n"
    "        </result>\n"
    "      </resultRecord>\n"
    "    </%s>\n"
    "  </imsx_POXBody>\n"
    "</imsx_POXEnvelopeRequest>\n";

static int parse_spec(struct arena *a, const char *op, const char *sourcedid, const char *score,
                      struct lti_pox_request *r, struct err *err)
{
    char body[4096];

    snprintf(body, sizeof(body), spec_request_fmt, op, sourcedid, score, op);
    return lti_pox_parse_request(a, body, strlen(body), r, err);
}

static void parse_requests(void **state)
{
    struct arena a = ARENA_INIT;
    struct lti_pox_request r;
    struct err err = ERR_INIT;

    assert_int_equal(parse_spec(&a, "replaceResultRequest", "3124567", "0.92", &r, &err), 0);
    assert_int_equal(r.op, LTI_POX_REPLACE);
    assert_string_equal(r.message_id, "999999123");
    assert_string_equal(r.sourcedid, "3124567");
    assert_true(r.score == 0.92);

    assert_int_equal(parse_spec(&a, "deleteResultRequest", "s", "", &r, &err), 0);
    assert_int_equal(r.op, LTI_POX_DELETE);

    /* an operation we do not know parses, for an "unsupported" answer */
    assert_int_equal(parse_spec(&a, "readMembershipRequest", "s", "", &r, &err), 0);
    assert_int_equal(r.op, LTI_POX_OTHER);
    assert_string_equal(r.op_name, "readMembershipRequest");

    /* bad scores and a missing sourcedid fail, keeping the message id */
    static const char *const bad_scores[] = { "1.5", "abc", "", "-1", "0,5" };
    for (size_t i = 0; i < 5; i++) {
        err_clear(&err);
        assert_int_equal(parse_spec(&a, "replaceResultRequest", "s", bad_scores[i], &r, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        assert_non_null(strstr(err.msg, "resultScore"));
        assert_string_equal(r.message_id, "999999123");
    }
    err_clear(&err);
    assert_int_equal(parse_spec(&a, "replaceResultRequest", " ", "0.5", &r, &err), -1);
    assert_non_null(strstr(err.msg, "sourcedId"));

    /* prefixed elements are matched by local name */
    {
        static const char pfx[] =
            "<x:imsx_POXEnvelopeRequest xmlns:x=\"" NS "\"><x:imsx_POXHeader>"
            "<x:imsx_POXRequestHeaderInfo><x:imsx_version>V1.0</x:imsx_version>"
            "<x:imsx_messageIdentifier>p1</x:imsx_messageIdentifier>"
            "</x:imsx_POXRequestHeaderInfo></x:imsx_POXHeader><x:imsx_POXBody>"
            "<x:readResultRequest><x:resultRecord><x:sourcedGUID><x:sourcedId>S</x:sourcedId>"
            "</x:sourcedGUID></x:resultRecord></x:readResultRequest></x:imsx_POXBody>"
            "</x:imsx_POXEnvelopeRequest>";

        assert_int_equal(lti_pox_parse_request(&a, pfx, strlen(pfx), &r, &err), 0);
        assert_int_equal(r.op, LTI_POX_READ);
        assert_string_equal(r.sourcedid, "S");
    }
    arena_release(&a);
}

static void expect_refused(const char *body, size_t len, enum err_code code, const char *phrase)
{
    struct arena a = ARENA_INIT;
    struct lti_pox_request r;
    struct lti_pox_response resp;
    struct err err = ERR_INIT;

    assert_int_equal(lti_pox_parse_request(&a, body, len, &r, &err), -1);
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, phrase))
        fail_msg("'%s' does not say '%s'", err.msg, phrase);
    err_clear(&err);
    assert_int_equal(lti_pox_parse_response(&a, body, len, &resp, &err), -1);
    assert_int_equal(err.code, code);
    arena_release(&a);
}

static void hostile_xml(void **state)
{
    static const char laughs[] =
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
        "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">"
        "<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">"
        "<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">"
        "<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">"
        "<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">"
        "<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">]>"
        "<imsx_POXEnvelopeRequest><imsx_POXHeader><imsx_POXRequestHeaderInfo>"
        "<imsx_messageIdentifier>&lol9;</imsx_messageIdentifier></imsx_POXRequestHeaderInfo>"
        "</imsx_POXHeader></imsx_POXEnvelopeRequest>";
    static const char xxe[] =
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
        "<imsx_POXEnvelopeRequest><imsx_POXHeader><imsx_POXRequestHeaderInfo>"
        "<imsx_messageIdentifier>&x;</imsx_messageIdentifier></imsx_POXRequestHeaderInfo>"
        "</imsx_POXHeader></imsx_POXEnvelopeRequest>";
    static const char ext_dtd[] =
        "<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"http://127.0.0.1:1/x.dtd\">"
        "<imsx_POXEnvelopeRequest/>";
    struct buf deep = BUF_INIT(1 << 20), big = BUF_INIT(1 << 20);

    expect_refused(laughs, strlen(laughs), ERR_INVALID, "DOCTYPE");
    expect_refused(xxe, strlen(xxe), ERR_INVALID, "DOCTYPE");
    expect_refused(ext_dtd, strlen(ext_dtd), ERR_INVALID, "DOCTYPE");
    expect_refused("not xml at all", 14, ERR_INVALID, "well-formed");
    expect_refused("<a><b></a>", 10, ERR_INVALID, "well-formed");
    expect_refused("", 0, ERR_INVALID, "empty");

    for (int i = 0; i < LIMIT_POX_DEPTH + 8; i++)
        buf_addstr(&deep, "<imsx_POXEnvelopeRequest>");
    for (int i = 0; i < LIMIT_POX_DEPTH + 8; i++)
        buf_addstr(&deep, "</imsx_POXEnvelopeRequest>");
    expect_refused(deep.ptr, deep.len, ERR_INVALID, "deeper");

    buf_addstr(&big, "<imsx_POXEnvelopeRequest>");
    while (big.len <= LIMIT_POX_BODY)
        buf_addstr(&big, "<a>0123456789</a>");
    buf_addstr(&big, "</imsx_POXEnvelopeRequest>");
    expect_refused(big.ptr, big.len, ERR_TOOBIG, "over");
    buf_release(&deep);
    buf_release(&big);
}

static void responses(void **state)
{
    struct arena a = ARENA_INIT;
    struct buf b = BUF_INIT(65536);
    struct lti_pox_response r;
    struct err err = ERR_INIT;
    struct lti_pox_answer ans = {
        .code = LTI_POX_SUCCESS,
        .op = LTI_POX_READ,
        .message_id = "ours-1",
        .message_ref = "theirs-1",
        .operation_ref = "readResult",
        .description = "Score for S is 0.5",
        .has_score = true,
        .score = 0.5,
    };

    assert_int_equal(lti_pox_build_response(&b, &ans, &err), 0);
    assert_non_null(strstr(b.ptr, "<imsx_codeMajor>success</imsx_codeMajor>"));
    assert_non_null(strstr(b.ptr, "<imsx_severity>status</imsx_severity>"));
    assert_non_null(strstr(b.ptr, "<imsx_messageRefIdentifier>theirs-1<"));
    assert_non_null(strstr(b.ptr, "<imsx_operationRefIdentifier>readResult<"));
    assert_int_equal(lti_pox_parse_response(&a, b.ptr, b.len, &r, &err), 0);
    assert_int_equal(r.code, LTI_POX_SUCCESS);
    assert_string_equal(r.message_ref, "theirs-1");
    assert_string_equal(r.description, "Score for S is 0.5");
    assert_true(r.read_answered && r.has_score && r.score == 0.5);

    /* an empty score is "no grade", not zero */
    buf_reset(&b);
    ans.has_score = false;
    assert_int_equal(lti_pox_build_response(&b, &ans, &err), 0);
    assert_non_null(strstr(b.ptr, "<textString></textString>"));
    assert_int_equal(lti_pox_parse_response(&a, b.ptr, b.len, &r, &err), 0);
    assert_true(r.read_answered && !r.has_score);

    /* failures carry their reason and an empty body */
    buf_reset(&b);
    ans.code = LTI_POX_FAILURE;
    ans.description = "unknown sourcedid\nsecond line";
    assert_int_equal(lti_pox_build_response(&b, &ans, &err), 0);
    assert_non_null(strstr(b.ptr, "<imsx_severity>error</imsx_severity>"));
    assert_null(strstr(b.ptr, "readResultResponse"));
    assert_int_equal(lti_pox_parse_response(&a, b.ptr, b.len, &r, &err), 0);
    assert_int_equal(r.code, LTI_POX_FAILURE);
    assert_string_equal(r.description, "unknown sourcedid second line");
    assert_false(r.read_answered);

    /* nonsense */
    {
        static const char nocode[] = "<imsx_POXEnvelopeResponse><imsx_POXHeader/>"
                                     "</imsx_POXEnvelopeResponse>";
        static const char badcode[] =
            "<imsx_POXEnvelopeResponse><imsx_POXHeader><imsx_POXResponseHeaderInfo>"
            "<imsx_statusInfo><imsx_codeMajor>great</imsx_codeMajor></imsx_statusInfo>"
            "</imsx_POXResponseHeaderInfo></imsx_POXHeader></imsx_POXEnvelopeResponse>";
        static const char html[] = "<html><body>502 Bad Gateway</body></html>";

        assert_int_equal(lti_pox_parse_response(&a, nocode, strlen(nocode), &r, &err), -1);
        assert_non_null(strstr(err.msg, "imsx_codeMajor"));
        err_clear(&err);
        assert_int_equal(lti_pox_parse_response(&a, badcode, strlen(badcode), &r, &err), -1);
        assert_non_null(strstr(err.msg, "great"));
        err_clear(&err);
        assert_int_equal(lti_pox_parse_response(&a, html, strlen(html), &r, &err), -1);
        assert_non_null(strstr(err.msg, "imsx_POXEnvelopeResponse"));
    }
    buf_release(&b);
    arena_release(&a);
}

static void authorization_header(void **state)
{
    struct arena a = ARENA_INIT;
    struct buf h = BUF_INIT(4096), bh = BUF_INIT(64), uri = BUF_INIT(1024);
    struct err err = ERR_INIT;
    struct form hf, qf;
    struct lti_oauth o;
    static const char body[] = "<xml/>";
    const char *url = "HTTPS://LMS.example:443/mod/lti/service.php?a=1+2&b=%7E";
    struct str query;

    /* RFC 5849's body-hash examples: SHA-1 of "Hello World!" */
    assert_int_equal(lti_oauth_body_hash(&bh, LTI_SIG_HMAC_SHA1, "Hello World!", 12, &err), 0);
    assert_string_equal(bh.ptr, "Lve95gjOVATpfV8EL5X4nxwjKHE=");
    buf_reset(&bh);
    assert_int_equal(lti_oauth_body_hash(&bh, LTI_SIG_HMAC_SHA1, body, strlen(body), &err), 0);

    struct lti_oauth_signer s = {
        .url = str_from_cstr(url),
        .consumer_key = STR_LIT("key one"),
        .consumer_secret = STR_LIT("s&cret"),
        .method = LTI_SIG_HMAC_SHA1,
        .body_hash = buf_view(&bh),
        .timestamp = 1700000000,
    };
    assert_int_equal(lti_oauth_authorization(&h, &s, &err), 0);
    assert_true(str_starts_with(buf_view(&h), "OAuth realm=\"\",oauth_consumer_key=\"key%20one\""));
    assert_non_null(strstr(h.ptr, "oauth_body_hash=\""));

    /* our own parser reads it back and our verifier accepts it */
    assert_int_equal(lti_oauth_header_parse(&a, buf_view(&h), &hf, &err), 0);
    assert_int_equal(lti_url_normalize(&uri, str_from_cstr(url), &query, &err), 0);
    assert_string_equal(uri.ptr, "https://lms.example/mod/lti/service.php");
    assert_int_equal(form_parse(&a, query.ptr, query.len, 10, &qf, &err), 0);
    const struct form *lists[2] = { &qf, &hf };
    assert_int_equal(lti_oauth_params(lists, 2, &o, &err), 0);
    assert_true(str_eq(o.body_hash, buf_view(&bh)));
    assert_true(str_eq_cstr(o.consumer_key, "key one"));
    assert_int_equal(
        lti_oauth_verify(&o, STR_LIT("POST"), buf_view(&uri), lists, 2, STR_LIT("s&cret"), &err),
        0);
    assert_int_equal(
        lti_oauth_verify(&o, STR_LIT("POST"), buf_view(&uri), lists, 2, STR_LIT("other"), &err),
        -1);

    /* realm is not a parameter; '+' is a plus in a header; spaces after commas */
    assert_int_equal(
        lti_oauth_header_parse(
            &a, STR_LIT("OAuth realm=\"x\", oauth_nonce=\"a+b%2F\",  oauth_x=\"\""), &hf, &err),
        0);
    assert_int_equal(hf.count, 2);
    assert_true(str_eq_cstr(hf.params[0].value, "a+b/"));
    assert_true(str_eq_cstr(hf.params[1].value, ""));

    static const char *const bad[] = {
        "Basic dXNlcjpwYXNz",        "OAuth oauth_nonce=abc", "OAuth oauth_nonce=\"abc",
        "OAuth oauth_nonce=\"%zz\"", "OAuth =\"x\"",          "OAuth oauth_nonce=\"a\"b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&err);
        if (lti_oauth_header_parse(&a, str_from_cstr(bad[i]), &hf, &err) != -1)
            fail_msg("accepted '%s'", bad[i]);
        /* another scheme is unsigned; a malformed OAuth header is malformed */
        assert_int_equal(err.code, i == 0 ? ERR_UNAUTHORIZED : ERR_INVALID);
    }
    buf_release(&h);
    buf_release(&bh);
    buf_release(&uri);
    arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scores),         cmocka_unit_test(build_replace_and_read_it_back),
        cmocka_unit_test(parse_requests), cmocka_unit_test(hostile_xml),
        cmocka_unit_test(responses),      cmocka_unit_test(authorization_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
