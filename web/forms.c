/*
 * web/forms.c - the fields of a page form, urlencoded or multipart.
 *
 * An urlencoded form is read whole, when it has come, by base/form.c, the
 * parser of launches: one reading of forms and queries everywhere, with
 * malformed escapes and bad parameter names refused. A multipart form may
 * carry a file, so it goes through libmicrohttpd's post processor, which
 * decodes it as the body streams in. Every value counts against one cap for
 * the whole body, and the number of fields is capped too.
 *
 * MHD hands the callback a field's name as a C string: a name with a NUL (a
 * raw 0 in a multipart part's headers) reaches it cut short, as another
 * field's name. So a multipart body is also kept and its parts' header
 * blocks checked at the end (no control character but the line ends, UTF-8).
 */
#include "base/base.h"
#include "web/web_int.h"

#include <strings.h>

static enum MHD_Result field_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size)
{
    struct web_post *p = cls;
    struct web_field *f;

    if (!key)
        return MHD_YES;
    if (!form_name_ok(str_from_cstr(key))) {
        p->badname = true;
        return MHD_NO;
    }
    /* a new field starts at offset 0; later chunks continue the last one */
    if (off == 0 || p->n == 0 || strcmp(p->fields[p->n - 1].name, key) != 0) {
        if (p->n >= LIMIT_FORM_PARAMS) {
            p->toobig = true;
            return MHD_NO;
        }
        if (p->n == p->alloc) {
            p->alloc = p->alloc ? p->alloc * 2 : 16;
            p->fields = xrealloc(p->fields, st_mult(p->alloc, sizeof(*p->fields)));
        }
        f = &p->fields[p->n++];
        memset(f, 0, sizeof(*f));
        f->name = xstrdup(key);
        f->filename = filename ? xstrdup(filename) : NULL;
        f->content_type = content_type ? xstrdup(content_type) : NULL;
        buf_init(&f->value, p->max);
    }
    f = &p->fields[p->n - 1];
    p->total += size;
    if (p->total > p->max) {
        p->toobig = true;
        return MHD_NO;
    }
    if (size && buf_add(&f->value, data, size) < 0) {
        p->toobig = true;
        return MHD_NO;
    }
    return MHD_YES;
}

/* The "\r\n\r\n" that ends a part's header block, or NULL. */
static const char *blank_line(const char *p, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (memcmp(p + i, "\r\n\r\n", 4) == 0)
            return p + i;
    }
    return NULL;
}

/* An urlencoded body, read by base/form.c as launches are, into the form's fields. */
static int read_urlencoded(struct req *r, struct err *err)
{
    struct web_post *p = &r->post;
    struct form f;

    if (form_parse(&r->arena, p->raw.ptr, p->raw.len, LIMIT_FORM_PARAMS, &f, err) < 0)
        return -1;
    p->fields = xcalloc(f.count ? f.count : 1, sizeof(*p->fields));
    p->alloc = f.count;
    for (size_t i = 0; i < f.count; i++) {
        struct web_field *fd = &p->fields[p->n++];

        p->total += f.params[i].value.len;
        /* names hold no NUL (form_parse checked them): a C string is the whole name */
        fd->name = xmalloc(st_add(f.params[i].name.len, 1));
        memcpy(fd->name, f.params[i].name.ptr, f.params[i].name.len);
        fd->name[f.params[i].name.len] = '\0';
        buf_init(&fd->value, p->max);
        if (p->total > p->max ||
            buf_add(&fd->value, f.params[i].value.ptr, f.params[i].value.len) < 0) {
            p->toobig = true;
            break;
        }
    }
    return 0;
}

/*
 * Every part's header block (after a "--BOUNDARY" line, up to the empty
 * line) holds no control character but CR, LF and TAB, and is UTF-8: the
 * names MHD read from them are then the whole names.
 */
static int check_part_headers(struct req *r, struct err *err)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    const char *bnd = ct ? strstr(ct, "boundary=") : NULL;
    struct str body = buf_view(&r->post.raw), delim;
    char dbuf[80];
    size_t blen;

    if (!bnd)
        return err_set(err, ERR_INVALID, "the form could not be read");
    bnd += 9;
    /* MHD takes the rest of the header as the boundary: a quoted one it cannot read */
    blen = strlen(bnd);
    if (blen == 0 || blen > 70) /* RFC 2046: 1 to 70 characters */
        return err_set(err, ERR_INVALID, "the form could not be read");
    dbuf[0] = '-';
    dbuf[1] = '-';
    memcpy(dbuf + 2, bnd, blen);
    delim = (struct str){ dbuf, blen + 2 };
    /*
     * No preamble: MHD skips one before the first delimiter, so its first
     * part's headers would not be found here. Browsers never send one.
     */
    if (body.len < delim.len || memcmp(body.ptr, delim.ptr, delim.len) != 0)
        return err_set(err, ERR_INVALID, "the form could not be read");
    for (size_t i = 0; i + delim.len <= body.len; i++) {
        const char *h, *end;
        struct str block;

        if ((i != 0 && (i < 2 || body.ptr[i - 2] != '\r' || body.ptr[i - 1] != '\n')) ||
            memcmp(body.ptr + i, delim.ptr, delim.len) != 0)
            continue;
        h = memchr(body.ptr + i, '\n', body.len - i);
        if (!h)
            break; /* the closing delimiter */
        h++;
        end = blank_line(h, (size_t)(body.ptr + body.len - h));
        block = (struct str){ h, end ? (size_t)(end - h) : (size_t)(body.ptr + body.len - h) };
        for (size_t k = 0; k < block.len; k++) {
            unsigned char c = (unsigned char)block.ptr[k];

            /* line ends only as CRLF: a bare CR or LF would end a name MHD reads */
            if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f ||
                (c == '\r' && (k + 1 == block.len || block.ptr[k + 1] != '\n')) ||
                (c == '\n' && (k == 0 || block.ptr[k - 1] != '\r')))
                return err_set(err, ERR_INVALID,
                               "a parameter name holds a control character or is not UTF-8");
        }
        if (!str_utf8_valid(block))
            return err_set(err, ERR_INVALID,
                           "a parameter name holds a control character or is not UTF-8");
        i = (size_t)(h - body.ptr) + block.len - 1;
    }
    return 0;
}

int web_post_begin(struct req *r, size_t max, struct err *err)
{
    struct web_post *p = &r->post;

    memset(p, 0, sizeof(*p));
    p->max = max;
    r->form = true;
    {
        const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");

        p->multipart = ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
    }
    /*
     * The body as it may come: the values' cap, three times for an
     * urlencoded one ("%XX" per byte), as the route's check of Content-Length
     * lets through, and room for a multipart body's part headers.
     */
    buf_init(&p->raw, st_add(st_mult(max, 3), LIMIT_PAGE_FORM_FRAMING));
    if (!p->multipart) {
        const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");

        /* read whole at the end (read_urlencoded): MHD's reading cuts a name at a NUL */
        if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
            return 0;
    } else {
        p->pp = MHD_create_post_processor(r->conn, 16 * 1024, field_cb, p);
    }
    if (!p->pp)
        return err_set(err, ERR_MEDIATYPE,
                       "a form must be sent as application/x-www-form-urlencoded or "
                       "multipart/form-data");
    return 0;
}

void web_post_feed(struct req *r, const char *data, size_t len)
{
    struct web_post *p = &r->post;

    if (p->toobig || p->bad || p->badname)
        return;
    if (buf_add(&p->raw, data, len) < 0) {
        p->toobig = true;
        return;
    }
    if (p->pp && MHD_post_process(p->pp, data, len) != MHD_YES && !p->toobig && !p->badname)
        p->bad = true;
}

int web_post_end(struct req *r, struct err *err)
{
    struct web_post *p = &r->post;

    if (p->pp) {
        if (MHD_destroy_post_processor(p->pp) != MHD_YES && !p->toobig && !p->badname)
            p->bad = true;
        p->pp = NULL;
    }
    if (!p->multipart && !p->toobig && read_urlencoded(r, err) < 0) {
        if (err->code != ERR_TOOBIG)
            return -1;
        err_clear(err);
        p->toobig = true;
    }
    if (p->toobig)
        return err_set(err, ERR_TOOBIG, "the form is larger than %zu KiB or has too many fields",
                       p->max / 1024);
    if (p->badname)
        return err_set(err, ERR_INVALID,
                       "a parameter name holds a control character or is not UTF-8");
    if (p->bad)
        return err_set(err, ERR_INVALID, "the form could not be read");
    return p->multipart ? check_part_headers(r, err) : 0;
}

void web_post_free(struct req *r)
{
    struct web_post *p = &r->post;

    if (p->pp)
        MHD_destroy_post_processor(p->pp);
    for (size_t i = 0; i < p->n; i++) {
        free(p->fields[i].name);
        free(p->fields[i].filename);
        free(p->fields[i].content_type);
        buf_release(&p->fields[i].value);
    }
    FREE_AND_NULL(p->fields);
    buf_release(&p->raw);
    memset(p, 0, sizeof(*p));
}

const struct web_field *web_post_field(struct req *r, const char *name)
{
    for (size_t i = 0; i < r->post.n; i++) {
        if (strcmp(r->post.fields[i].name, name) == 0)
            return &r->post.fields[i];
    }
    return NULL;
}

struct str web_post_get(struct req *r, const char *name)
{
    const struct web_field *f = web_post_field(r, name);

    if (!f)
        return STR_NULL;
    return f->value.ptr ? buf_view(&f->value) : STR_LIT("");
}

size_t web_post_all(struct req *r, const char *name, struct str *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < r->post.n && n < max; i++) {
        if (strcmp(r->post.fields[i].name, name) == 0)
            out[n++] =
                r->post.fields[i].value.ptr ? buf_view(&r->post.fields[i].value) : STR_LIT("");
    }
    return n;
}
