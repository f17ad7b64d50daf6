/*
 * base/form.h - application/x-www-form-urlencoded parsing and RFC 3986 encoding.
 *
 * Launch bodies, query strings and the instructor's forms all use this one
 * parser, so that the parameters a signature covers are exactly the
 * parameters the rest of the program reads. Decoding follows the WHATWG
 * URL standard's form parsing ('+' is a space, %XX a byte) except that a
 * malformed escape is an error rather than passed through: a signed request
 * with an ambiguous encoding is refused, never guessed at.
 */
#ifndef BASE_FORM_H
#define BASE_FORM_H

struct arena;

struct form_param {
    struct str name;  /* decoded; may hold any byte, NUL included */
    struct str value; /* decoded; "" for "name" and "name=" */
};

struct form {
    struct form_param *params;
    size_t count;
};

/*
 * Parses (p, len) into decoded parameters allocated in `arena`, in the order
 * they appear, repeated names kept. Fails with ERR_INVALID on a bad escape
 * or a name form_name_ok refuses, and ERR_TOOBIG beyond `max_params`
 * parameters.
 */
int form_parse(struct arena *arena, const char *p, size_t len, size_t max_params,
               struct form *out /* OUT */, struct err *err);

/*
 * Percent-decodes (p, len) into `arena`; '+' is a space in forms, a plus
 * elsewhere (an OAuth Authorization header). A malformed escape is ERR_INVALID.
 */
int form_pct_decode(struct arena *arena, const char *p, size_t len, bool plus_is_space,
                    struct str *out /* OUT */, struct err *err);

/*
 * A parameter name: no control character (NUL and TAB included) and
 * well-formed UTF-8. form_check_name fails with ERR_INVALID ("a parameter
 * name holds a control character or is not UTF-8").
 */
bool form_name_ok(struct str name);
int form_check_name(struct str name, struct err *err);

/* The first value of `name`, or the null view. */
struct str form_get(const struct form *f, const char *name);
/* How many times `name` occurs. */
size_t form_count(const struct form *f, const char *name);

/* 1 for RFC 3986's unreserved bytes (ALPHA DIGIT - . _ ~), the only ones OAuth leaves unencoded. */
extern const unsigned char form_unreserved[256];
/* The hex digits of a percent-encoding, upper case as RFC 3986 recommends. */
extern const char form_hex[];

/* Appends `s` percent-encoded as RFC 3986 requires for OAuth: all but ALPHA DIGIT - . _ ~. */
int form_encode_rfc3986(struct buf *out, struct str s);
/* Appends "name=value" for a query string, with '&' first unless `out` is empty or ends in '?' or
 * '&'. */
int form_add_query_param(struct buf *out, const char *name, struct str value);

#endif
