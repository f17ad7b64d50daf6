/*
 * base/err.h - the error type every fallible function takes last.
 *
 * A function that can fail returns 0 or -1 and fills `struct err`. On success
 * it leaves `err` untouched, so calls chain; the first error set wins.
 * `msg` is safe to show to users (web/ escapes it, cli/ prints it); `detail`
 * holds library text (sqlite, curl, errno) for the log only.
 */
#ifndef BASE_ERR_H
#define BASE_ERR_H

/* A small closed set, like sqlite's primary result codes; web/ maps each to one HTTP status. */
enum err_code {
    ERR_NONE = 0,
    ERR_INVALID,      /* malformed or missing input (400) */
    ERR_UNAUTHORIZED, /* signature, key or token refused (401) */
    ERR_REPLAY,       /* nonce already used, or timestamp outside the window (401) */
    ERR_FORBIDDEN,    /* authenticated but not allowed (403) */
    ERR_NOTFOUND,     /* no such object (404) */
    ERR_METHOD,       /* method not allowed (405) */
    ERR_CONFLICT,     /* already exists (409) */
    ERR_GONE,         /* existed, and no longer works: an expired or used link (410) */
    ERR_TOOBIG,       /* over a limit (413) */
    ERR_MEDIATYPE,    /* unsupported media type (415) */
    ERR_LIMIT,        /* too many requests of one kind for now, try later (429) */
    ERR_UNAVAILABLE,  /* overloaded or shutting down, try again (503) */
    ERR_INTERNAL,     /* our fault or the system's: I/O, database (500) */
};

struct err {
    enum err_code code;
    char msg[256];
    char detail[512];
};

#define ERR_INIT                                                                                   \
 {                                                                                                 \
  ERR_NONE, { 0 },                                                                                 \
  {                                                                                                \
   0                                                                                               \
  }                                                                                                \
 }

/* Resets `err` to no error. */
void err_clear(struct err *err);

/*
 * Sets the code and the user-visible message unless an error is already set
 * (the first error wins). Returns -1 so that `return err_set(...)` reads well.
 * `err` may be NULL.
 */
int err_set(struct err *err, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the log-only detail if none is set yet; returns -1. */
int err_detail(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
