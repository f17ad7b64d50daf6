/*
 * base/log.h - the server's log: one line per event, with its time, level
 * and key=value fields, as text (logfmt) or as one JSON object per line.
 *
 *   time=2026-12-07T07:20:01.123Z level=info msg="SIGHUP received, log files reopened"
 *   {"time":"2026-12-07T07:20:01.123Z","level":"info","msg":"request","status":200,...}
 *
 * Events go to stderr or to [server] log_file; the access log (one event per
 * request) goes with them, to a file of its own, or nowhere. When stderr is
 * the journal (systemd sets JOURNAL_STREAM to its device and inode) and no
 * log file is set, a line carries no time of its own (the journal stamps
 * each line when it arrives) and begins with the journal's priority prefix
 * ("<3>" error, "<4>" warning, "<6>" info; sd-daemon(3)).
 *
 * Each line is written with one write(2), so lines of several threads never
 * interleave, and no lock is taken. log_reopen() (SIGHUP) opens the files
 * again and puts them in place of the old ones with dup2(), atomically for
 * threads writing at that moment: logrotate's postrotate works.
 */
#ifndef BASE_LOG_H
#define BASE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
};

/* A field: a string (NULL: written as "-") or a whole number. */
struct log_field {
    const char *key;
    const char *s;
    int64_t i;
    bool num;
};
#define LOG_STR(k, v) ((struct log_field){ (k), (v), 0, false })
#define LOG_INT(k, v) ((struct log_field){ (k), NULL, (int64_t)(v), true })

/*
 * Sets the log up, before any thread starts: the format, the file events go
 * to (NULL or "": stderr) and the access log ("-": with the events, "off":
 * none, else a file). Files are opened for appending (0640), created if
 * needed; ERR_INVALID naming the file and the errno text otherwise. Without
 * a call, events go to stderr as text and there is no access log.
 */
int log_setup(bool json, const char *file, const char *access, struct err *err);
/* Opens the log files again (after logrotate moved them); ERR_INVALID when one cannot be. */
int log_reopen(struct err *err);
/* Closes the files (at exit). */
void log_close(void);

/* An event with `n` fields. */
void log_event(enum log_level level, const char *msg, const struct log_field *f, size_t n);
/* An event with the fields given as arguments: LOG(LOG_LEVEL_INFO, "msg", LOG_STR("k", v)). */
#define LOG(level, msg, ...)                                                                       \
 log_event((level), (msg), (const struct log_field[]){ __VA_ARGS__ },                              \
           sizeof((const struct log_field[]){ __VA_ARGS__ }) / sizeof(struct log_field))
/* An event without fields. */
#define LOG_MSG(level, msg) log_event((level), (msg), NULL, 0)
/* One request's line to the access log (msg=request), when there is one. */
void log_access(const struct log_field *f, size_t n);
/* Whether there is an access log (to skip building its line). */
bool log_access_on(void);

#endif
