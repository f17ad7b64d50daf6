/*
 * base/err.c - setting errors never allocates, so it is safe on any path,
 * including out-of-memory and signal-adjacent code.
 */
#include "base/base.h"

void err_clear(struct err *err)
{
    err->code = ERR_NONE;
    err->msg[0] = '\0';
    err->detail[0] = '\0';
}

int err_set(struct err *err, enum err_code code, const char *fmt, ...)
{
    va_list ap;

    if (!err || err->code != ERR_NONE)
        return -1;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

int err_detail(struct err *err, const char *fmt, ...)
{
    va_list ap;

    if (!err || err->detail[0])
        return -1;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
    return -1;
}

const char *err_code_name(enum err_code code)
{
    switch (code) {
    case ERR_NONE:
        return "none";
    case ERR_INVALID:
        return "invalid";
    case ERR_UNAUTHORIZED:
        return "unauthorized";
    case ERR_REPLAY:
        return "replay";
    case ERR_FORBIDDEN:
        return "forbidden";
    case ERR_NOTFOUND:
        return "not found";
    case ERR_METHOD:
        return "method not allowed";
    case ERR_CONFLICT:
        return "conflict";
    case ERR_TOOBIG:
        return "too big";
    case ERR_MEDIATYPE:
        return "unsupported media type";
    case ERR_UNAVAILABLE:
        return "unavailable";
    case ERR_INTERNAL:
        return "internal";
    }
    return "unknown";
}
