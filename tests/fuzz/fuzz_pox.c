/*
 * tests/fuzz/fuzz_pox.c - LTI Basic Outcomes XML (lti/pox.c): a request an
 * LMS sends to the tool, and an LMS's answer to a request the tool sent.
 *
 * The input goes through both parsers. A request is then answered as
 * web/outcomes.c answers it (its message id as our reference, the
 * operation's name as the operation reference, the parser's reason as the
 * description), and that answer must be well-formed POX that our own
 * response parser reads back with the same code and reference: an LMS reads
 * it with a parser no more lenient than ours.
 */
#include "tests/fuzz/fuzz.h"
#include "lti/lti.h"

#include <libxml/parser.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    xmlInitParser();
    return 0;
}

/* What `answer` reads back as, through lti_pox_parse_response(). */
static void reads_back(const struct lti_pox_answer *an)
{
    struct arena a = ARENA_INIT;
    struct buf out = BUF_INIT(LIMIT_POX_BODY);
    struct err err = ERR_INIT;
    struct lti_pox_response resp;

    FUZZ_CHECK(lti_pox_build_response(&out, an, &err) == 0);
    if (lti_pox_parse_response(&a, out.ptr, out.len, &resp, &err) < 0) {
        fprintf(stderr, "our answer does not parse (%s): %.*s\n", err.msg, (int)out.len, out.ptr);
        FUZZ_CHECK(!"the answer parses");
    }
    FUZZ_CHECK(resp.code == an->code);
    if (an->message_ref) {
        /* text_cut() turns the tabs text() lets through into spaces */
        char *ref = xstrdup(an->message_ref);

        for (char *p = ref; *p; p++)
            if (*p == '\t')
                *p = ' ';
        FUZZ_CHECK(resp.message_ref && strcmp(resp.message_ref, ref) == 0);
        free(ref);
    }
    buf_release(&out);
    arena_release(&a);
}

static void answer_request(const struct lti_pox_request *q, int parsed, const struct err *perr)
{
    struct lti_pox_answer an;
    char opref[64];

    memset(&an, 0, sizeof(an));
    an.message_id = "0123456789abcdef0123456789abcdef";
    an.message_ref = q->message_id;
    if (parsed < 0) {
        /* web/outcomes.c: fail(r, 200, LTI_POX_FAILURE, q.message_id, NULL, err.msg) */
        an.code = LTI_POX_FAILURE;
        an.op = LTI_POX_OTHER;
        an.description = perr->msg;
        reads_back(&an);
        return;
    }
    snprintf(opref, sizeof(opref), "%s", lti_pox_op_name(q->op));
    if (q->op == LTI_POX_OTHER) {
        size_t n = strlen(q->op_name);

        if (n > 7 && strcmp(q->op_name + n - 7, "Request") == 0)
            n -= 7;
        snprintf(opref, sizeof(opref), "%.*s", (int)n, q->op_name);
        an.code = LTI_POX_UNSUPPORTED;
        an.op = LTI_POX_OTHER;
        an.operation_ref = opref;
        an.description = "not supported";
        reads_back(&an);
        return;
    }
    an.code = LTI_POX_SUCCESS;
    an.op = q->op;
    an.operation_ref = opref;
    an.has_score = q->has_score;
    an.score = q->score;
    an.description = q->data_text;
    reads_back(&an);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a = ARENA_INIT;
    struct err err = ERR_INIT;
    struct lti_pox_request q;
    struct lti_pox_response resp;
    int rc;

    rc = lti_pox_parse_request(&a, (const char *)data, size, &q, &err);
    if (rc == 0) {
        FUZZ_CHECK(q.message_id && *q.message_id);
        if (q.op != LTI_POX_OTHER)
            FUZZ_CHECK(q.sourcedid && *q.sourcedid);
        if (q.op == LTI_POX_REPLACE)
            FUZZ_CHECK(q.has_score && q.score >= 0.0 && q.score <= 1.0);
    } else {
        FUZZ_CHECK(err.code == ERR_INVALID || err.code == ERR_TOOBIG);
    }
    answer_request(&q, rc, &err);
    err_clear(&err);
    if (lti_pox_parse_response(&a, (const char *)data, size, &resp, &err) == 0 && resp.has_score)
        FUZZ_CHECK(resp.score >= 0.0 && resp.score <= 1.0);
    arena_release(&a);
    return 0;
}
