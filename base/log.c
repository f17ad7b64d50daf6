/*
 * base/log.c - the server's log (see base/log.h for the format).
 *
 * The state is set once by log_setup() before threads start and only read
 * afterwards; a reopen changes what the file descriptors point to (dup2),
 * never the numbers threads read, so writing needs no lock. A line is
 * built on the stack and written with one write(2); a line longer than
 * LOG_LINE_MAX has its last fields cut, never its newline.
 */
#include "base/base.h"
#include "base/log.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

static struct {
    bool json;
    bool journal;                    /* stderr is the journal: no time, a priority prefix */
    int events_fd;                   /* 2, or the log file */
    int access_fd;                   /* -1: none; events_fd; or its own file */
    char *events_path, *access_path; /* the files to reopen, NULL for stderr */
} lg = { false, false, 2, -1, NULL, NULL };

static const char *const level_names[] = { "error", "warn", "info" };
static const char level_prio[] = { '3', '4', '6' };

/* Whether stderr is the journal's stream: JOURNAL_STREAM is "DEVICE:INODE" of it. */
static bool stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;
    char *end;

    if (!v || fstat(2, &st) < 0)
        return false;
    errno = 0;
    dev = strtoull(v, &end, 10);
    if (errno || *end != ':')
        return false;
    ino = strtoull(end + 1, &end, 10);
    if (errno || *end)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int open_log(const char *path, struct err *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0)
        err_set(err, ERR_INVALID, "cannot open log file '%s': %s", path, strerror(errno));
    return fd;
}

int log_setup(bool json, const char *file, const char *access, struct err *err)
{
    int fd;

    lg.json = json;
    if (file && file[0]) {
        fd = open_log(file, err);
        if (fd < 0)
            return -1;
        lg.events_fd = fd;
        lg.events_path = xstrdup(file);
    }
    lg.journal = !lg.events_path && stderr_is_journal();
    if (!access || strcmp(access, "off") == 0) {
        lg.access_fd = -1;
    } else if (strcmp(access, "-") == 0 || strcmp(access, "stderr") == 0) {
        lg.access_fd = lg.events_fd;
    } else {
        fd = open(access, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return err_set(err, ERR_INVALID, "cannot open access log '%s': %s", access,
                           strerror(errno));
        lg.access_fd = fd;
        lg.access_path = xstrdup(access);
    }
    return 0;
}

/* Opens `path` again and puts it in place of `fd`. */
static int reopen_one(const char *path, int fd, struct err *err)
{
    int nfd;

    if (!path)
        return 0;
    nfd = open_log(path, err);
    if (nfd < 0)
        return -1;
    if (dup2(nfd, fd) < 0) {
        err_set(err, ERR_INVALID, "cannot reopen log file '%s': %s", path, strerror(errno));
        close(nfd);
        return -1;
    }
    close(nfd);
    return 0;
}

int log_reopen(struct err *err)
{
    int a = reopen_one(lg.events_path, lg.events_fd, err);
    int b = reopen_one(lg.access_path, lg.access_fd, err);

    return a < 0 || b < 0 ? -1 : 0;
}

void log_close(void)
{
    if (lg.access_fd > 2 && lg.access_fd != lg.events_fd)
        close(lg.access_fd);
    if (lg.events_fd > 2)
        close(lg.events_fd);
    lg.access_fd = -1;
    lg.events_fd = 2;
    FREE_AND_NULL(lg.events_path);
    FREE_AND_NULL(lg.access_path);
}

/* The time with milliseconds: 2026-12-07T07:20:01.123Z */
static void now_iso(char out[32])
{
    struct timespec ts;
    char s[21];

    clock_gettime(CLOCK_REALTIME, &ts);
    util_iso8601((int64_t)ts.tv_sec, s);
    s[19] = '\0'; /* drop the Z */
    snprintf(out, 32, "%.19s.%03dZ", s, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* A logfmt value: bare when it can be, else quoted with \" \\ \n \t \xNN escaped. */
static void add_value(struct buf *b, const char *v)
{
    bool quote = !*v;

    for (const char *p = v; *p && !quote; p++)
        quote = (unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f;
    if (!quote) {
        buf_addstr(b, v);
        return;
    }
    buf_addch(b, '"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_addch(b, '\\');
            buf_addch(b, (char)*p);
        } else if (*p == '\n') {
            buf_addstr(b, "\\n");
        } else if (*p == '\t') {
            buf_addstr(b, "\\t");
        } else if (*p < ' ' || *p == 0x7f) {
            buf_addf(b, "\\x%02x", *p);
        } else {
            buf_addch(b, (char)*p);
        }
    }
    buf_addch(b, '"');
}

static void emit(int fd, enum log_level level, const char *msg, const struct log_field *f, size_t n)
{
    char ts[32], stack[LOG_LINE_MAX];
    struct buf b = BUF_INIT(LOG_LINE_MAX - 1);
    ssize_t wr;

    if (fd < 0)
        return;
    if ((unsigned)level > LOG_LEVEL_INFO)
        level = LOG_LEVEL_INFO;
    now_iso(ts);
    if (lg.journal) {
        buf_addch(&b, '<');
        buf_addch(&b, level_prio[level]);
        buf_addch(&b, '>');
    }
    if (lg.json) {
        json_t *o = json_object();
        char *s;

        if (!lg.journal)
            json_object_set_new(o, "time", json_string(ts));
        json_object_set_new(o, "level", json_string(level_names[level]));
        json_object_set_new(o, "msg", json_string(msg ? msg : ""));
        for (size_t i = 0; i < n; i++)
            json_object_set_new(o, f[i].key,
                                f[i].num ? json_integer(f[i].i)
                                : f[i].s ? json_string(f[i].s)
                                         : json_null());
        /* a value that is not UTF-8 makes json_string() NULL: the field is left out */
        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (s) {
            buf_addstr(&b, s);
            free(s);
        }
    } else {
        if (!lg.journal) {
            buf_addstr(&b, "time=");
            buf_addstr(&b, ts);
            buf_addch(&b, ' ');
        }
        buf_addf(&b, "level=%s msg=", level_names[level]);
        add_value(&b, msg ? msg : "");
        for (size_t i = 0; i < n; i++) {
            size_t keep = b.len;

            buf_addf(&b, " %s=", f[i].key);
            if (f[i].num)
                buf_addf(&b, "%" PRId64, f[i].i);
            else
                add_value(&b, f[i].s ? f[i].s : "-");
            if (b.toobig) {
                /* cut at the last whole field */
                b.toobig = false;
                b.len = keep;
                b.ptr[keep] = '\0';
                break;
            }
        }
    }
    if (b.toobig || !b.ptr) {
        buf_release(&b);
        return;
    }
    memcpy(stack, b.ptr, b.len);
    stack[b.len] = '\n';
    wr = write(fd, stack, b.len + 1);
    (void)wr;
    buf_release(&b);
}

void log_event(enum log_level level, const char *msg, const struct log_field *f, size_t n)
{
    emit(lg.events_fd, level, msg, f, n);
}

void log_access(const struct log_field *f, size_t n)
{
    emit(lg.access_fd, LOG_LEVEL_INFO, "request", f, n);
}

bool log_access_on(void)
{
    return lg.access_fd >= 0;
}
