/*
 * tests/fuzz/fuzz_multipart.c - page forms, multipart/form-data (the badge
 * editor's upload) or urlencoded, as web/forms.c reads them through
 * libmicrohttpd's post processor.
 *
 * The input is one byte that chooses how the body arrives (0: in one piece,
 * n: in pieces of n bytes, as a slow client sends it), the Content-Type
 * header's value up to a newline, then the body. The post processor reads
 * the Content-Type from the connection and nothing else from it, so this
 * target answers that one lookup itself: it defines
 * MHD_lookup_connection_value_n, which libmicrohttpd.so calls through its
 * PLT, and hands web_post_begin() a connection that is only a token.
 *
 * Promises checked: the fields found are at most LIMIT_FORM_PARAMS, their
 * values NUL-terminated and together within the form's cap.
 */
#include "tests/fuzz/fuzz.h"
#include "web/web_int.h"

static const char *content_type;
static size_t content_type_len;
static char fake_connection;

const char *MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                                        const char *key)
{
    const char *v = NULL;

    if (key &&
        MHD_lookup_connection_value_n(connection, kind, key, strlen(key), &v, NULL) == MHD_YES)
        return v;
    return NULL;
}

enum MHD_Result MHD_lookup_connection_value_n(struct MHD_Connection *connection,
                                              enum MHD_ValueKind kind, const char *key,
                                              size_t key_size, const char **value_ptr,
                                              size_t *value_size_ptr)
{
    FUZZ_CHECK(connection == (struct MHD_Connection *)(void *)&fake_connection);
    if (!content_type || (kind & MHD_HEADER_KIND) == 0 || key_size != strlen("Content-Type") ||
        strncasecmp(key, "Content-Type", key_size) != 0)
        return MHD_NO;
    if (value_ptr)
        *value_ptr = content_type;
    if (value_size_ptr)
        *value_size_ptr = content_type_len;
    return MHD_YES;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct req *r;
    struct err err = ERR_INIT;
    const char *p = (const char *)data, *nl;
    char *ct;
    size_t chunk, blen, total = 0;
    const char *body;

    if (size < 1)
        return 0;
    chunk = data[0];
    nl = memchr(p + 1, '\n', size - 1);
    if (!nl)
        return 0;
    /* a header value is a C string: a NUL ends it */
    ct = xmemdupz(p + 1, (size_t)(nl - p - 1));
    content_type = ct;
    content_type_len = strlen(ct);
    body = nl + 1;
    blen = size - (size_t)(body - p);
    r = xcalloc(1, sizeof(*r));
    r->conn = (struct MHD_Connection *)(void *)&fake_connection;
    if (web_post_begin(r, LIMIT_PAGE_UPLOAD_BODY, &err) == 0) {
        for (size_t off = 0; off < blen;) {
            size_t n = chunk == 0 || blen - off < chunk ? blen - off : chunk;

            web_post_feed(r, body + off, n);
            off += n;
        }
        if (web_post_end(r, &err) == 0) {
            struct str all[LIMIT_FORM_PARAMS];

            FUZZ_CHECK(r->post.n <= LIMIT_FORM_PARAMS);
            for (size_t i = 0; i < r->post.n; i++) {
                const struct web_field *f = &r->post.fields[i];

                FUZZ_CHECK(f->name && f->value.ptr[f->value.len] == '\0');
                total += f->value.len;
            }
            FUZZ_CHECK(total <= LIMIT_PAGE_UPLOAD_BODY);
            (void)web_post_field(r, "image");
            (void)web_post_get(r, "csrf");
            FUZZ_CHECK(web_post_all(r, "tag", all, LIMIT_FORM_PARAMS) <= r->post.n);
        } else {
            FUZZ_CHECK(err.code == ERR_TOOBIG || err.code == ERR_INVALID);
        }
    }
    web_post_free(r);
    arena_release(&r->arena);
    free(r);
    content_type = NULL;
    free(ct);
    return 0;
}
