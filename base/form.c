/*
 * base/form.c - form decoding and RFC 3986 percent-encoding.
 *
 * Written by hand: libmicrohttpd's post processor delivers values in pieces
 * and silently merges malformed escapes, and liboauth's splitter works on
 * NUL-terminated strings (a %00 would cut a value short of what the consumer
 * signed). Verifying signatures needs the exact bytes, so we decode once here.
 */
#include "base/base.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int form_pct_decode(struct arena *arena, const char *p, size_t len, bool plus_is_space,
                    struct str *out, struct err *err)
{
    char *d = arena_alloc(arena, st_add(len, 1));
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (p[i] == '+' && plus_is_space) {
            d[n++] = ' ';
        } else if (p[i] == '%') {
            int hi, lo;

            if (i + 2 >= len)
                return err_set(err, ERR_INVALID, "malformed percent-encoding in form data");
            hi = hexval(p[i + 1]);
            lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0)
                return err_set(err, ERR_INVALID, "malformed percent-encoding in form data");
            d[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[n++] = p[i];
        }
    }
    d[n] = '\0';
    *out = (struct str){ d, n };
    return 0;
}

static int decode(struct arena *arena, const char *p, size_t len, struct str *out, struct err *err)
{
    return form_pct_decode(arena, p, len, true, out, err);
}

bool form_name_ok(struct str name)
{
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.ptr[i];

        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return str_utf8_valid(name);
}

int form_check_name(struct str name, struct err *err)
{
    if (form_name_ok(name))
        return 0;
    return err_set(err, ERR_INVALID, "a parameter name holds a control character or is not UTF-8");
}

int form_parse(struct arena *arena, const char *p, size_t len, size_t max_params, struct form *out,
               struct err *err)
{
    size_t count = 0, cap = 0;
    struct form_param *params = NULL;
    size_t i = 0;

    out->params = NULL;
    out->count = 0;
    /* count the pairs first so one arena allocation holds them all */
    for (size_t j = 0; j <= len; j++) {
        if (j == len || p[j] == '&')
            cap++;
    }
    if (cap > max_params + 1)
        cap = max_params + 1;
    params = arena_alloc(arena, st_mult(cap, sizeof(*params)));
    while (i <= len && len) {
        const char *start = p + i;
        const char *amp = memchr(start, '&', len - i);
        size_t plen = amp ? (size_t)(amp - start) : len - i;
        const char *eq = memchr(start, '=', plen);

        if (plen) {
            struct form_param *fp;

            if (count == max_params)
                return err_set(err, ERR_TOOBIG, "form has more than %zu parameters", max_params);
            fp = &params[count++];
            if (eq) {
                if (decode(arena, start, (size_t)(eq - start), &fp->name, err) < 0 ||
                    decode(arena, eq + 1, plen - (size_t)(eq - start) - 1, &fp->value, err) < 0)
                    return -1;
            } else {
                if (decode(arena, start, plen, &fp->name, err) < 0)
                    return -1;
                fp->value = (struct str){ "", 0 };
            }
            /*
             * Values are checked field by field by whoever reads them; a name
             * is checked here, since a name no one reads is still signed and
             * could carry what a log or another parser would cut at a NUL.
             */
            if (form_check_name(fp->name, err) < 0)
                return -1;
        }
        i += plen + 1;
    }
    out->params = params;
    out->count = count;
    return 0;
}

struct str form_get(const struct form *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++) {
        if (str_eq_cstr(f->params[i].name, name))
            return f->params[i].value;
    }
    return STR_NULL;
}

size_t form_count(const struct form *f, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < f->count; i++) {
        if (str_eq_cstr(f->params[i].name, name))
            n++;
    }
    return n;
}

/* RFC 3986 unreserved: ALPHA DIGIT - . _ ~ (a table: this runs for every byte of every launch) */
#define U1(c) [c] = 1
#define U10(c)                                                                                     \
 U1(c), U1(c + 1), U1(c + 2), U1(c + 3), U1(c + 4), U1(c + 5), U1(c + 6), U1(c + 7), U1(c + 8),    \
     U1(c + 9)
const unsigned char form_unreserved[256] = {
    U1('-'),       U1('.'), U1('_'), U1('~'), U10('0'), U10('A'), U10('A' + 10),
    U1('U'),       U1('V'), U1('W'), U1('X'), U1('Y'),  U1('Z'),  U10('a'),
    U10('a' + 10), U1('u'), U1('v'), U1('w'), U1('x'),  U1('y'),  U1('z'),
};
#undef U1
#undef U10

const char form_hex[] = "0123456789ABCDEF";

int form_encode_rfc3986(struct buf *out, struct str s)
{
    size_t extra = 0;
    char *d;

    for (size_t i = 0; i < s.len; i++)
        extra += form_unreserved[(unsigned char)s.ptr[i]] ? 1 : 3;
    /* reserve once and write in place: this runs for every parameter of every launch */
    d = buf_append_space(out, extra);
    if (!d)
        return -1;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];

        if (form_unreserved[c]) {
            *d++ = (char)c;
        } else {
            *d++ = '%';
            *d++ = form_hex[c >> 4];
            *d++ = form_hex[c & 15];
        }
    }
    return 0;
}

int form_add_query_param(struct buf *out, const char *name, struct str value)
{
    if (out->len && out->ptr[out->len - 1] != '?' && out->ptr[out->len - 1] != '&')
        buf_addch(out, '&');
    form_encode_rfc3986(out, str_from_cstr(name));
    buf_addch(out, '=');
    return form_encode_rfc3986(out, value);
}
