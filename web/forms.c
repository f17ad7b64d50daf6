/*
 * web/forms.c - the fields of a page form, urlencoded or multipart, read
 * through libmicrohttpd's post processor.
 *
 * Launches are parsed byte for byte by base/form.c, since the signature
 * covers the exact parameters; the instructor's and learner's forms are not
 * signed, may carry a file, and so go through MHD's post processor, which
 * decodes both encodings as the body streams in. Every value counts against
 * one cap for the whole body, and the number of fields is capped too.
 */
#include "base/base.h"
#include "web/web_int.h"

static enum MHD_Result field_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size)
{
    struct web_post *p = cls;
    struct web_field *f;

    if (!key)
        return MHD_YES;
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

int web_post_begin(struct req *r, size_t max, struct err *err)
{
    struct web_post *p = &r->post;

    memset(p, 0, sizeof(*p));
    p->max = max;
    r->form = true;
    p->pp = MHD_create_post_processor(r->conn, 16 * 1024, field_cb, p);
    if (!p->pp)
        return err_set(err, ERR_MEDIATYPE,
                       "a form must be sent as application/x-www-form-urlencoded or "
                       "multipart/form-data");
    return 0;
}

void web_post_feed(struct req *r, const char *data, size_t len)
{
    struct web_post *p = &r->post;

    if (!p->pp || p->toobig || p->bad)
        return;
    if (MHD_post_process(p->pp, data, len) != MHD_YES && !p->toobig)
        p->bad = true;
}

int web_post_end(struct req *r, struct err *err)
{
    struct web_post *p = &r->post;

    if (p->pp) {
        if (MHD_destroy_post_processor(p->pp) != MHD_YES && !p->toobig)
            p->bad = true;
        p->pp = NULL;
    }
    if (p->toobig)
        return err_set(err, ERR_TOOBIG, "the form is larger than %zu KiB or has too many fields",
                       p->max / 1024);
    if (p->bad)
        return err_set(err, ERR_INVALID, "the form could not be read");
    return 0;
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
