/*
 * tests/fuzz/fuzz_form.c - application/x-www-form-urlencoded bodies
 * (base/form.c): launch bodies, query strings and the pages' query
 * parameters all go through form_parse().
 *
 * The input is a body as it comes over the wire. Besides not crashing, a
 * parse that succeeds must survive a round trip: each name and value
 * encoded again with form_encode_rfc3986() and parsed again gives the same
 * parameters, in the same order (what a signature covers is what the rest
 * of the program reads). The same bytes also go through form_pct_decode()
 * with '+' kept, as the Authorization header decodes them.
 */
#include "tests/fuzz/fuzz.h"

static void round_trip(const struct form *f)
{
    struct arena a = ARENA_INIT;
    struct buf b = BUF_INIT(SIZE_MAX / 2);
    struct err err = ERR_INIT;
    struct form g;

    for (size_t i = 0; i < f->count; i++) {
        if (i)
            buf_addch(&b, '&');
        form_encode_rfc3986(&b, f->params[i].name);
        buf_addch(&b, '=');
        form_encode_rfc3986(&b, f->params[i].value);
    }
    FUZZ_CHECK(!b.toobig);
    FUZZ_CHECK(form_parse(&a, b.ptr, b.len, LIMIT_FORM_PARAMS, &g, &err) == 0);
    /* an empty name with an empty value ("=") encodes to "=", which parses back as one pair */
    FUZZ_CHECK(g.count == f->count);
    for (size_t i = 0; i < f->count; i++) {
        FUZZ_CHECK(str_eq(g.params[i].name, f->params[i].name));
        FUZZ_CHECK(str_eq(g.params[i].value, f->params[i].value));
    }
    buf_release(&b);
    arena_release(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a = ARENA_INIT;
    struct err err = ERR_INIT;
    struct form f;
    struct str d;
    const char *p = (const char *)data;

    if (form_parse(&a, p, size, LIMIT_FORM_PARAMS, &f, &err) == 0) {
        FUZZ_CHECK(f.count <= LIMIT_FORM_PARAMS);
        for (size_t i = 0; i < f.count; i++) {
            /* decoding never grows a name or value, and they stay NUL-terminated */
            FUZZ_CHECK(f.params[i].name.len <= size && f.params[i].value.len <= size);
            FUZZ_CHECK(f.params[i].name.ptr[f.params[i].name.len] == '\0');
            FUZZ_CHECK(f.params[i].value.ptr[f.params[i].value.len] == '\0');
        }
        (void)form_get(&f, "lti_message_type");
        round_trip(&f);
    } else {
        FUZZ_CHECK(err.code == ERR_INVALID || err.code == ERR_TOOBIG);
    }
    err_clear(&err);
    if (form_pct_decode(&a, p, size, false, &d, &err) == 0)
        FUZZ_CHECK(d.len <= size && d.ptr[d.len] == '\0');
    arena_release(&a);
    return 0;
}
