/*
 * base/buf.h - bounded, growing byte buffers (after git's strbuf and curl's dynbuf).
 *
 * Every buffer has a mandatory cap set by buf_init(). An append that would
 * pass the cap appends nothing, returns -1 and marks the buffer as failed;
 * the mark is sticky, so a builder may append many pieces and check once
 * with buf_check(), which turns it into ERR_TOOBIG. The contents are always
 * NUL-terminated (ptr is "" before the first append), but may hold NUL bytes
 * too: use `len`.
 */
#ifndef BASE_BUF_H
#define BASE_BUF_H

struct buf {
    char *ptr;
    size_t len;
    size_t alloc; /* bytes allocated, 0 while ptr points at the shared "" */
    size_t max;   /* the cap on len */
    bool toobig;  /* sticky: an append went over max */
};

#define BUF_INIT(max)                                                                              \
 {                                                                                                 \
  (char *)"", 0, 0, (max), false                                                                   \
 }

/* Sets up an empty buffer holding at most `max` bytes; allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Frees the contents; the buffer is empty again with the same cap. */
void buf_release(struct buf *b);
/* Empties the buffer but keeps its memory for reuse and clears the failed mark. */
void buf_reset(struct buf *b);
/* Takes the contents out (caller frees), leaving the buffer empty. */
char *buf_detach(struct buf *b, size_t *len /* OUT, may be NULL */);

/* Appends; each returns 0, or -1 when the cap would be passed (nothing appended). */
int buf_add(struct buf *b, const void *data, size_t len);
int buf_addstr(struct buf *b, const char *s);
int buf_addch(struct buf *b, char c);
int buf_addview(struct buf *b, struct str s);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Grows the contents by `n` bytes and returns where they start, for the
 * caller to fill (the bytes after them stay NUL-terminated); NULL past the cap.
 */
char *buf_append_space(struct buf *b, size_t n);
/* Appends `len` bytes as lower-case hexadecimal. */
int buf_addhex(struct buf *b, const unsigned char *data, size_t len);
/* Appends `len` bytes as base64 (RFC 4648, padded, no line breaks). */
int buf_addbase64(struct buf *b, const void *data, size_t len);

/* Returns 0, or -1 with ERR_TOOBIG naming `what` when an append went over the cap. */
int buf_check(const struct buf *b, const char *what, struct err *err);

static inline struct str buf_view(const struct buf *b)
{
    return (struct str){ b->ptr, b->len };
}

#endif
