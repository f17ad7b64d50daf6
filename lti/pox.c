/*
 * lti/pox.c - LTI 1.1 Basic Outcomes messages (IMS POX: plain XML over HTTP).
 *
 * Built with libxml2's tree API, so every value is escaped by the
 * serializer, and parsed with libxml2 under a tight leash: no DTD at all (a
 * DOCTYPE stops the parser at once, before any entity is declared, so
 * billion-laughs and external entities never get a chance), no network, no
 * entity substitution, a bounded size and a bounded element depth. Elements
 * are matched by local name: LMSes agree on the names, not always on
 * prefixes.
 *
 * Scores are written and read in the C locale whatever the process locale
 * is (pages may set one): the spec's "en" decimal is always "0.8".
 */
#include "base/base.h"
#include "lti/lti.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <locale.h>
#include <pthread.h>

#define NS_POX "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"

/* XML whitespace (space, tab, CR, LF) off both ends. */
static struct str xml_trim(struct str s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t' || s.ptr[0] == '\r' || s.ptr[0] == '\n')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t' ||
                     s.ptr[s.len - 1] == '\r' || s.ptr[s.len - 1] == '\n'))
        s.len--;
    return s;
}

/* ---- scores -------------------------------------------------------------- */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

int lti_score_parse(struct str s, double *out)
{
    char tmp[LIMIT_POX_SCORE_LEN + 1];
    size_t digits = 0, i = 0;
    char *end = NULL;
    double d;

    s = xml_trim(s);
    if (s.len == 0 || s.len > LIMIT_POX_SCORE_LEN)
        return -1;
    /* digits [ "." digits ] or "." digits: no sign, exponent, hex, inf or nan */
    for (; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++)
        digits++;
    if (i < s.len && s.ptr[i] == '.') {
        for (i++; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++)
            digits++;
    }
    if (i != s.len || digits == 0)
        return -1;
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = '\0';
    pthread_once(&c_locale_once, c_locale_init);
    if (!c_locale)
        return -1;
    d = strtod_l(tmp, &end, c_locale);
    if (end != tmp + s.len || !(d >= 0.0 && d <= 1.0))
        return -1;
    *out = d;
    return 0;
}

void lti_score_format(double score, char out[static LTI_SCORE_BUF])
{
    locale_t old;

    pthread_once(&c_locale_once, c_locale_init);
    old = c_locale ? uselocale(c_locale) : (locale_t)0;
    /* the shortest text that reads back as the same double */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, LTI_SCORE_BUF, "%.*g", prec, score);
        if (strtod(out, NULL) == score)
            break;
    }
    if (old)
        uselocale(old);
}

/* ---- building ------------------------------------------------------------ */

static xmlNodePtr add(xmlNodePtr parent, const char *name, const char *text)
{
    return xmlNewTextChild(parent, NULL, BAD_CAST name, text ? BAD_CAST text : NULL);
}

static xmlDocPtr new_envelope(const char *root_name, xmlNodePtr *header_info, xmlNodePtr *body,
                              const char *message_id)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = xmlNewNode(NULL, BAD_CAST root_name);
    xmlNodePtr h;

    xmlDocSetRootElement(doc, root);
    xmlSetNs(root, xmlNewNs(root, BAD_CAST NS_POX, NULL));
    h = add(root, "imsx_POXHeader", NULL);
    *header_info =
        add(h,
            strcmp(root_name, "imsx_POXEnvelopeRequest") == 0 ? "imsx_POXRequestHeaderInfo"
                                                              : "imsx_POXResponseHeaderInfo",
            NULL);
    add(*header_info, "imsx_version", "V1.0");
    add(*header_info, "imsx_messageIdentifier", message_id);
    *body = add(root, "imsx_POXBody", NULL);
    return doc;
}

static int serialize(struct buf *out, xmlDocPtr doc, struct err *err)
{
    xmlChar *mem = NULL;
    int len = 0, ret;

    xmlDocDumpMemoryEnc(doc, &mem, &len, "UTF-8");
    if (!mem || len <= 0)
        ret = err_set(err, ERR_INTERNAL, "could not serialize an outcomes message");
    else {
        buf_add(out, mem, (size_t)len);
        ret = buf_check(out, "outcomes message", err);
    }
    xmlFree(mem);
    xmlFreeDoc(doc);
    return ret;
}

const char *lti_pox_op_name(enum lti_pox_op op)
{
    switch (op) {
    case LTI_POX_REPLACE:
        return "replaceResult";
    case LTI_POX_READ:
        return "readResult";
    case LTI_POX_DELETE:
        return "deleteResult";
    case LTI_POX_OTHER:
        break;
    }
    return "unknown";
}

const char *lti_pox_code_name(enum lti_pox_code c)
{
    switch (c) {
    case LTI_POX_SUCCESS:
        return "success";
    case LTI_POX_PROCESSING:
        return "processing";
    case LTI_POX_FAILURE:
        return "failure";
    case LTI_POX_UNSUPPORTED:
        return "unsupported";
    }
    return "failure";
}

int lti_pox_build_request(struct buf *out, const struct lti_pox_message *m, struct err *err)
{
    char name[64];
    xmlNodePtr info, body, op, rec, guid;
    xmlDocPtr doc;

    if (m->op == LTI_POX_OTHER || !m->sourcedid || !m->message_id)
        return err_set(err, ERR_INVALID, "an outcomes request needs an operation and a sourcedid");
    doc = new_envelope("imsx_POXEnvelopeRequest", &info, &body, m->message_id);
    snprintf(name, sizeof(name), "%sRequest", lti_pox_op_name(m->op));
    op = add(body, name, NULL);
    rec = add(op, "resultRecord", NULL);
    guid = add(rec, "sourcedGUID", NULL);
    add(guid, "sourcedId", m->sourcedid);
    if (m->op == LTI_POX_REPLACE) {
        xmlNodePtr result = add(rec, "result", NULL);

        if (m->has_score) {
            char score[LTI_SCORE_BUF];
            xmlNodePtr rs = add(result, "resultScore", NULL);

            lti_score_format(m->score, score);
            add(rs, "language", "en");
            add(rs, "textString", score);
        }
        if (m->data_url || m->data_text) {
            xmlNodePtr rd = add(result, "resultData", NULL);

            if (m->data_url)
                add(rd, "url", m->data_url);
            else
                add(rd, "text", m->data_text);
        }
    }
    return serialize(out, doc, err);
}

int lti_pox_build_response(struct buf *out, const struct lti_pox_answer *a, struct err *err)
{
    xmlNodePtr info, body, status;
    xmlDocPtr doc = new_envelope("imsx_POXEnvelopeResponse", &info, &body, a->message_id);

    status = add(info, "imsx_statusInfo", NULL);
    add(status, "imsx_codeMajor", lti_pox_code_name(a->code));
    add(status, "imsx_severity",
        a->code == LTI_POX_SUCCESS || a->code == LTI_POX_PROCESSING ? "status" : "error");
    add(status, "imsx_description", a->description ? a->description : "");
    if (a->message_ref)
        add(status, "imsx_messageRefIdentifier", a->message_ref);
    if (a->operation_ref)
        add(status, "imsx_operationRefIdentifier", a->operation_ref);
    if (a->code == LTI_POX_SUCCESS && a->op != LTI_POX_OTHER) {
        char name[64];
        xmlNodePtr resp;

        snprintf(name, sizeof(name), "%sResponse", lti_pox_op_name(a->op));
        resp = add(body, name, NULL);
        if (a->op == LTI_POX_READ) {
            xmlNodePtr rs = add(add(resp, "result", NULL), "resultScore", NULL);
            char score[LTI_SCORE_BUF] = "";

            if (a->has_score)
                lti_score_format(a->score, score);
            add(rs, "language", "en");
            add(rs, "textString", score);
        }
    }
    return serialize(out, doc, err);
}

/* ---- parsing --------------------------------------------------------------- */

struct guard {
    startElementNsSAX2Func start;
    endElementNsSAX2Func end;
    int depth;
    bool dtd; /* a DOCTYPE or entity declaration was met */
    bool deep;
};

static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id)
{
    xmlParserCtxtPtr c = ctx;

    ((struct guard *)c->_private)->dtd = true;
    xmlStopParser(c);
}

static void refuse_entity(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                          const xmlChar *system_id, xmlChar *content)
{
    xmlParserCtxtPtr c = ctx;

    ((struct guard *)c->_private)->dtd = true;
    xmlStopParser(c);
}

static void guarded_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                          const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
                          int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    xmlParserCtxtPtr c = ctx;
    struct guard *g = c->_private;

    if (++g->depth > LIMIT_POX_DEPTH) {
        g->deep = true;
        xmlStopParser(c);
        return;
    }
    g->start(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes, nb_defaulted,
             attributes);
}

static void guarded_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                        const xmlChar *uri)
{
    xmlParserCtxtPtr c = ctx;
    struct guard *g = c->_private;

    g->depth--;
    g->end(ctx, localname, prefix, uri);
}

/*
 * Parses `body` into a tree, or fails with ERR_INVALID (ERR_TOOBIG past the
 * size limit) and a reason fit for an imsx_description.
 */
static xmlDocPtr parse_doc(const char *body, size_t len, struct err *err)
{
    struct guard g = { 0 };
    xmlParserCtxtPtr c;
    xmlDocPtr doc;

    if (len > LIMIT_POX_BODY) {
        err_set(err, ERR_TOOBIG, "the message is over %d bytes", LIMIT_POX_BODY);
        return NULL;
    }
    if (len == 0) {
        err_set(err, ERR_INVALID, "the message is empty");
        return NULL;
    }
    c = xmlNewParserCtxt();
    if (!c) {
        err_set(err, ERR_INTERNAL, "out of memory parsing XML");
        return NULL;
    }
    g.start = c->sax->startElementNs;
    g.end = c->sax->endElementNs;
    c->_private = &g;
    c->sax->internalSubset = refuse_dtd;
    c->sax->externalSubset = refuse_dtd;
    c->sax->entityDecl = refuse_entity;
    c->sax->startElementNs = guarded_start;
    c->sax->endElementNs = guarded_end;
    doc = xmlCtxtReadMemory(c, body, (int)len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                XML_PARSE_NOCDATA);
    if (g.dtd || g.deep || !doc || !c->wellFormed) {
        if (g.dtd)
            err_set(err, ERR_INVALID, "a DOCTYPE is not allowed in an outcomes message");
        else if (g.deep)
            err_set(err, ERR_INVALID, "the message nests elements deeper than %d", LIMIT_POX_DEPTH);
        else {
            const xmlError *e = xmlCtxtGetLastError(c);

            err_set(err, ERR_INVALID, "the message is not well-formed XML");
            if (e && e->message)
                err_detail(err, "line %d: %.200s", e->line, e->message);
        }
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(c);
    return doc;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
    if (!n)
        return NULL;
    for (xmlNodePtr k = n->children; k; k = k->next) {
        if (k->type == XML_ELEMENT_NODE && strcmp((const char *)k->name, name) == 0)
            return k;
    }
    return NULL;
}

static xmlNodePtr first_element(xmlNodePtr n)
{
    if (!n)
        return NULL;
    for (xmlNodePtr k = n->children; k; k = k->next) {
        if (k->type == XML_ELEMENT_NODE)
            return k;
    }
    return NULL;
}

/* The trimmed text of an element in the arena ("" when empty), NULL when it is absent. */
static const char *text(struct arena *a, xmlNodePtr n, size_t max, const char *what,
                        struct err *err, int *bad)
{
    xmlChar *t;
    struct str v;
    const char *r;

    if (!n)
        return NULL;
    t = xmlNodeGetContent(n);
    v = xml_trim(str_from_cstr(t ? (const char *)t : ""));
    if (v.len > max || str_has_ctl(v)) {
        *bad = err_set(err, ERR_INVALID, "%s is too long or holds control characters", what);
        xmlFree(t);
        return NULL;
    }
    r = arena_strz(a, v);
    xmlFree(t);
    return r;
}

/* A free text (a description): control characters become spaces, cut to `max` bytes. */
static const char *text_cut(struct arena *a, xmlNodePtr n, size_t max)
{
    xmlChar *t;
    struct str v;
    char *r;

    if (!n)
        return NULL;
    t = xmlNodeGetContent(n);
    v = xml_trim(str_from_cstr(t ? (const char *)t : ""));
    if (v.len > max) {
        v.len = max;
        /* not in the middle of a UTF-8 sequence */
        while (v.len > 0 && ((unsigned char)v.ptr[v.len] & 0xC0) == 0x80)
            v.len--;
    }
    r = arena_strz(a, v);
    for (char *p = r; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    }
    xmlFree(t);
    return r;
}

static const char *score_of(struct arena *a, xmlNodePtr result, bool *present, double *score,
                            const char *what, struct err *err, int *bad)
{
    xmlNodePtr ts = child(child(result, "resultScore"), "textString");
    const char *t = text(a, ts, LIMIT_POX_SCORE_LEN * 4, what, err, bad);

    *present = false;
    if (!t || !*t)
        return t;
    if (lti_score_parse(str_from_cstr(t), score) < 0) {
        *bad =
            err_set(err, ERR_INVALID, "%s must be a decimal from 0.0 to 1.0, got '%.40s'", what, t);
        return t;
    }
    *present = true;
    return t;
}

int lti_pox_parse_request(struct arena *a, const char *body, size_t len,
                          struct lti_pox_request *out, struct err *err)
{
    xmlDocPtr doc;
    xmlNodePtr root, header, info, op, rec;
    const char *name;
    int bad = 0;

    memset(out, 0, sizeof(*out));
    out->op = LTI_POX_OTHER;
    doc = parse_doc(body, len, err);
    if (!doc)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "imsx_POXEnvelopeRequest") != 0) {
        bad = err_set(err, ERR_INVALID, "the message is not an imsx_POXEnvelopeRequest");
        goto out;
    }
    header = child(root, "imsx_POXHeader");
    info = child(header, "imsx_POXRequestHeaderInfo");
    out->message_id = text(a, child(info, "imsx_messageIdentifier"), LIMIT_POX_ID_LEN,
                           "imsx_messageIdentifier", err, &bad);
    if (bad)
        goto out;
    if (!out->message_id || !*out->message_id) {
        bad = err_set(err, ERR_INVALID, "imsx_messageIdentifier is missing");
        goto out;
    }
    op = first_element(child(root, "imsx_POXBody"));
    if (!op) {
        bad = err_set(err, ERR_INVALID, "imsx_POXBody holds no operation");
        goto out;
    }
    name = (const char *)op->name;
    if (strlen(name) > 64) {
        bad = err_set(err, ERR_INVALID, "the operation's name is too long");
        goto out;
    }
    out->op_name = arena_strz(a, str_from_cstr(name));
    if (strcmp(name, "replaceResultRequest") == 0)
        out->op = LTI_POX_REPLACE;
    else if (strcmp(name, "readResultRequest") == 0)
        out->op = LTI_POX_READ;
    else if (strcmp(name, "deleteResultRequest") == 0)
        out->op = LTI_POX_DELETE;
    else
        goto out; /* answered "unsupported" by the caller */
    rec = child(op, "resultRecord");
    out->sourcedid = text(a, child(child(rec, "sourcedGUID"), "sourcedId"), LIMIT_LTI_SOURCEDID_LEN,
                          "sourcedId", err, &bad);
    if (bad)
        goto out;
    if (!out->sourcedid || !*out->sourcedid) {
        bad = err_set(err, ERR_INVALID, "resultRecord/sourcedGUID/sourcedId is missing");
        goto out;
    }
    if (out->op == LTI_POX_REPLACE) {
        xmlNodePtr result = child(rec, "result"), data;

        out->score_text =
            score_of(a, result, &out->has_score, &out->score, "resultScore", err, &bad);
        if (bad)
            goto out;
        if (!out->has_score) {
            bad = err_set(err, ERR_INVALID, "result/resultScore/textString is missing");
            goto out;
        }
        data = child(result, "resultData");
        out->data_text =
            text(a, child(data, "text"), LIMIT_BADGE_TEXT_LEN, "resultData/text", err, &bad);
        if (!bad)
            out->data_url =
                text(a, child(data, "url"), LIMIT_LTI_URL_LEN, "resultData/url", err, &bad);
    }
out:
    xmlFreeDoc(doc);
    return bad ? -1 : 0;
}

int lti_pox_parse_response(struct arena *a, const char *body, size_t len,
                           struct lti_pox_response *out, struct err *err)
{
    xmlDocPtr doc;
    xmlNodePtr root, status, op;
    const char *code;
    int bad = 0;

    memset(out, 0, sizeof(*out));
    out->code = LTI_POX_FAILURE;
    doc = parse_doc(body, len, err);
    if (!doc)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "imsx_POXEnvelopeResponse") != 0) {
        bad = err_set(err, ERR_INVALID, "the answer is not an imsx_POXEnvelopeResponse");
        goto out;
    }
    status = child(child(child(root, "imsx_POXHeader"), "imsx_POXResponseHeaderInfo"),
                   "imsx_statusInfo");
    code = text(a, child(status, "imsx_codeMajor"), 32, "imsx_codeMajor", err, &bad);
    if (bad)
        goto out;
    if (!code) {
        bad = err_set(err, ERR_INVALID, "the answer has no imsx_codeMajor");
        goto out;
    }
    if (strcmp(code, "success") == 0)
        out->code = LTI_POX_SUCCESS;
    else if (strcmp(code, "processing") == 0)
        out->code = LTI_POX_PROCESSING;
    else if (strcmp(code, "failure") == 0)
        out->code = LTI_POX_FAILURE;
    else if (strcmp(code, "unsupported") == 0)
        out->code = LTI_POX_UNSUPPORTED;
    else {
        bad = err_set(err, ERR_INVALID, "unknown imsx_codeMajor '%.32s'", code);
        goto out;
    }
    out->description = text_cut(a, child(status, "imsx_description"), LIMIT_POX_DESCRIPTION_LEN);
    out->message_ref = text_cut(a, child(status, "imsx_messageRefIdentifier"), LIMIT_POX_ID_LEN);
    op = child(child(root, "imsx_POXBody"), "readResultResponse");
    if (op) {
        xmlNodePtr result = child(op, "result");

        out->read_answered = true;
        score_of(a, result, &out->has_score, &out->score, "the read score", err, &bad);
    }
out:
    xmlFreeDoc(doc);
    return bad ? -1 : 0;
}
