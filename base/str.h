/*
 * base/str.h - borrowed string views (cf. h2o_iovec_t).
 *
 * A `struct str` never owns its bytes; whoever hands one out says how long
 * they stay valid. Views may contain NUL bytes: always pass (ptr, len).
 */
#ifndef BASE_STR_H
#define BASE_STR_H

struct str {
    const char *ptr;
    size_t len;
};

#define STR_NULL ((struct str){ NULL, 0 })
/* A view of a string literal. */
#define STR_LIT(s) ((struct str){ (s), sizeof(s) - 1 })

/* A view of a NUL-terminated string; NULL gives the null view. */
struct str str_from_cstr(const char *s);

/* True when the view was given at all (ptr != NULL), even if empty. */
static inline bool str_present(struct str s)
{
    return s.ptr != NULL;
}

bool str_eq(struct str a, struct str b);
bool str_eq_cstr(struct str a, const char *b);
bool str_case_eq_cstr(struct str a, const char *b);
bool str_starts_with(struct str s, const char *prefix);
/* True when the view holds a NUL byte or another control character but tab. */
bool str_has_ctl(struct str s);
/*
 * True when the view is well-formed UTF-8 (RFC 3629): no overlong form, no
 * UTF-16 surrogate (U+D800..U+DFFF), no code point past U+10FFFF, no
 * sequence cut short. The empty and the null view are valid; NUL bytes are
 * (they are U+0000): callers that refuse them say so.
 */
bool str_utf8_valid(struct str s);
/*
 * A slug from one or two texts (b may be NULL): their ASCII letters and
 * digits lower-cased, one dash between words and between the texts, at most
 * about `max` characters. Writes a NUL-terminated string, returns its length
 * (0 when neither text has a letter or digit). "Intro to Biology",
 * "verified" gives "intro-to-biology-verified".
 */
size_t str_slug(char *out, size_t outlen, size_t max, const char *a, const char *b);

/*
 * Parses a whole view as a decimal integer in [min, max]: no sign but a
 * leading '-', no spaces, no trailing bytes. Returns 0 or -1 (out untouched).
 */
int str_to_i64(struct str s, int64_t min, int64_t max, int64_t *out);

/* Removes leading and trailing spaces and tabs. */
struct str str_trim(struct str s);

#endif
