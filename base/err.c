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
