/*
 * tests/unit/net/mail.c - e-mail over SMTP: the message the tool
 * builds (headers, RFC 2047 words, quoted-printable, lines that are only a
 * dot), what it refuses before it connects, and what each answer of the
 * relay becomes. The relay is tests/integration/smtpsink.py on 127.0.0.1,
 * started once for the file. The sink's .json records hold what Python's
 * email package reads in each message, so every encoding is checked by a
 * decoder that is not ours.
 */
#include "base/base.h"
#include "net/net.h"

#include <dirent.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#ifndef LB_SOURCE_DIR
# error "LB_SOURCE_DIR: the source tree, where tests/integration/smtpsink.py is"
#endif
#ifndef LB_PYTHON
# define LB_PYTHON "/usr/bin/python3"
#endif

static pid_t sink_pid = -1;
static int sink_out = -1;
static char sink_dir[64];
static long sink_port;
static char sink_url[64];

static const char FROM[] = "badges@example.edu";
static const char TO[] = "learner@example.org";

/* ---- the sink ------------------------------------------------------------- */

static int sink_start(void **state)
{
    char tmpl[] = "/tmp/lb-mail-XXXXXX";
    char line[64];
    size_t got = 0;
    int fds[2];
    int64_t port;

    if (!mkdtemp(tmpl) || pipe(fds) < 0)
        return -1;
    snprintf(sink_dir, sizeof(sink_dir), "%s", tmpl);
    sink_pid = fork();
    if (sink_pid < 0)
        return -1;
    if (sink_pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
        execl(LB_PYTHON, LB_PYTHON, LB_SOURCE_DIR "/tests/integration/smtpsink.py", "--dir",
              sink_dir, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    sink_out = fds[0];
    /* "port=N\n" once it listens; Python and aiosmtpd start in well under 20 s */
    while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
        struct pollfd p = { sink_out, POLLIN, 0 };
        ssize_t n;

        if (poll(&p, 1, 20000) != 1)
            break;
        n = read(sink_out, line + got, sizeof(line) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    line[got] = '\0';
    if (strncmp(line, "port=", 5) != 0 || !strchr(line, '\n') ||
        str_to_i64((struct str){ line + 5, (size_t)(strchr(line, '\n') - line - 5) }, 1, 65535,
                   &port) < 0) {
        fprintf(stderr, "smtpsink did not start (is python3-aiosmtpd installed?): '%s'\n", line);
        return -1;
    }
    sink_port = (long)port;
    snprintf(sink_url, sizeof(sink_url), "smtp://127.0.0.1:%ld", sink_port);
    return 0;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[sizeof(sink_dir) + 256 + 2];

    if (!d)
        return;
    for (e = readdir(d); e; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int sink_stop(void **state)
{
    int status;

    if (sink_pid > 0) {
        kill(sink_pid, SIGTERM);
        waitpid(sink_pid, &status, 0);
    }
    if (sink_out >= 0)
        close(sink_out);
    if (sink_dir[0])
        remove_dir(sink_dir);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    struct buf b = BUF_INIT(16 << 20);
    char chunk[4096];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f)
        return NULL;
    for (n = fread(chunk, 1, sizeof(chunk), f); n > 0; n = fread(chunk, 1, sizeof(chunk), f))
        assert_int_equal(buf_add(&b, chunk, n), 0);
    fclose(f);
    return buf_detach(&b, len);
}

static void sink_file(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", sink_dir, name);
}

/* Messages kept so far (their files are numbered from 0001). */
static int kept(void)
{
    char path[128];
    int n = 0;

    for (;;) {
        snprintf(path, sizeof(path), "%s/%04d.eml", sink_dir, n + 1);
        if (access(path, F_OK) != 0)
            return n;
        n++;
    }
}

/* TCP connections the sink accepted so far. */
static int64_t connections(void)
{
    char path[128];
    size_t len;
    char *s;
    int64_t n = 0;

    sink_file(path, sizeof(path), "connections");
    s = slurp(path, &len);
    if (!s)
        return 0;
    while (len && (s[len - 1] == '\n'))
        len--;
    assert_int_equal(str_to_i64((struct str){ s, len }, 0, INT64_MAX, &n), 0);
    free(s);
    return n;
}

static void set_fault(const char *mode)
{
    char path[128];
    FILE *f;

    sink_file(path, sizeof(path), "fault");
    if (!mode) {
        unlink(path);
        return;
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(mode, f);
    fclose(f);
}

/* Message number `n`: its bytes and the sink's record of it. */
static char *message(int n, json_t **rec)
{
    char path[128];
    char *raw, *js;
    size_t len;
    json_error_t jerr;

    snprintf(path, sizeof(path), "%s/%04d.json", sink_dir, n);
    js = slurp(path, &len);
    assert_non_null(js);
    *rec = json_loadb(js, len, 0, &jerr);
    free(js);
    if (!*rec)
        fail_msg("%s: %s", path, jerr.text);
    snprintf(path, sizeof(path), "%s/%04d.eml", sink_dir, n);
    raw = slurp(path, &len);
    assert_non_null(raw);
    assert_int_equal(strlen(raw), len);
    return raw;
}

static const char *field(json_t *rec, const char *name)
{
    const char *s = json_string_value(json_object_get(rec, name));

    if (!s)
        fail_msg("record has no '%s'", name);
    return s;
}

/* `s` with every "\r\n" as "\n" (Python keeps the message's CRLF in the text). */
static char *lf(const char *s)
{
    char *out = xstrdup(s), *w = out;

    for (const char *r = s; *r; r++) {
        if (r[0] == '\r' && r[1] == '\n')
            continue;
        *w++ = *r;
    }
    *w = '\0';
    return out;
}

static void assert_text(json_t *rec, const char *name, const char *want)
{
    char *got = lf(field(rec, name)), *exp = lf(want);

    if (strcmp(got, exp) != 0)
        fail_msg("%s:\n got '%s'\nwant '%s'", name, got, exp);
    free(got);
    free(exp);
}

static void assert_no_defects(json_t *rec)
{
    json_t *d = json_object_get(rec, "defects");

    assert_true(json_is_array(d));
    if (json_array_size(d)) {
        char *s = json_dumps(d, 0);

        fail_msg("defects: %s", s);
    }
}

/*
 * Every line ends in CRLF (no bare CR or LF), header lines within 78
 * characters, body lines within 76 and none ending in a space or tab.
 */
static void assert_lines(const char *raw)
{
    const char *p = raw;
    bool body = false;

    while (*p) {
        const char *eol = strstr(p, "\r\n");
        size_t n;

        assert_non_null(eol);
        n = (size_t)(eol - p);
        assert_null(memchr(p, '\n', n));
        assert_null(memchr(p, '\r', n));
        if (n > (body ? 76u : 78u))
            fail_msg("line of %zu characters: '%.*s'", n, (int)n, p);
        if (body && n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            fail_msg("body line ends in white space: '%.*s'", (int)n, p);
        if (!n)
            body = true;
        p = eol + 2;
    }
}

/* The header `name` as it stands in the message, folded lines included. */
static char *header(const char *raw, const char *name)
{
    size_t nl = strlen(name);
    const char *p = raw;

    while (*p && !(p[0] == '\r' && p[1] == '\n')) {
        const char *end = strstr(p, "\r\n");

        if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
            while (end[2] == ' ' || end[2] == '\t')
                end = strstr(end + 2, "\r\n");
            return xmemdupz(p, (size_t)(end - p));
        }
        p = end + 2;
    }
    fail_msg("no %s header", name);
    return NULL;
}

/* The header `name` in `raw` is exactly `want` (name, colon and value, folded lines included). */
static void assert_header(const char *raw, const char *name, const char *want)
{
    char *h = header(raw, name);

    assert_string_equal(h, want);
    free(h);
}

static struct net_mail_config config(void)
{
    struct net_mail_config c;

    net_mail_config_init(&c);
    c.url = sink_url;
    c.from = FROM;
    c.from_name = "Open Badges";
    c.starttls = false; /* the sink offers no STARTTLS */
    c.allow_loopback = true;
    c.connect_timeout_ms = 5000;
    c.timeout_ms = 10000;
    return c;
}

/* Sends, expects the relay to keep it, and returns it with its record. */
static char *send_ok(const struct net_mail_config *c, const char *subject, const char *text,
                     json_t **rec)
{
    struct err err = ERR_INIT;
    int before = kept();

    set_fault(NULL);
    if (net_mail_send(c, TO, subject, text, &err) < 0)
        fail_msg("send: %d '%s' (%s)", (int)err.code, err.msg, err.detail);
    assert_int_equal(err.code, ERR_NONE);
    assert_int_equal(kept(), before + 1);
    return message(before + 1, rec);
}

/* Sends and expects `code` with nothing kept by the relay. */
static struct err send_fails(const struct net_mail_config *c, const char *to, const char *subject,
                             const char *text, enum err_code code)
{
    struct err err = ERR_INIT;
    int before = kept();

    if (net_mail_send(c, to, subject, text, &err) != -1 || err.code != code)
        fail_msg("want code %d, got %d '%s' (%s)", (int)code, (int)err.code, err.msg, err.detail);
    assert_true(err.msg[0]);
    assert_int_equal(kept(), before);
    return err;
}

/* ---- the message -------------------------------------------------------- */

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* "Date: Mon, 02 Jan 2026 15:04:05 +0000", today's. */
static void assert_date(const char *raw)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    char *d = header(raw, "Date");
    bool day = false, month = false;

    assert_int_equal(strlen(d), strlen("Date: Mon, 02 Jan 2026 15:04:05 +0000"));
    for (int i = 0; i < 7; i++)
        day = day || strncmp(d + 6, days[i], 3) == 0;
    for (int i = 0; i < 12; i++)
        month = month || strncmp(d + 14, months[i], 3) == 0;
    assert_true(day && month);
    assert_memory_equal(d + 9, ", ", 2);
    assert_true(is_digit(d[11]) && is_digit(d[12]) && d[13] == ' ' && d[17] == ' ');
    for (int i = 18; i < 22; i++)
        assert_true(is_digit(d[i]));
    assert_true(d[22] == ' ' && d[25] == ':' && d[28] == ':');
    assert_string_equal(d + 31, " +0000");
    free(d);
}

static void headers(void **state)
{
    struct net_mail_config c = config();
    const char *text = "Hello,\n\nconfirm your address: https://badges.example.edu/c?t=abc\n";
    json_t *rec, *rcpt;
    char *raw = send_ok(&c, "Confirm your e-mail address", text, &rec);
    char *id, *h, *raw2;
    json_t *rec2;

    assert_string_equal(field(rec, "mail_from"), FROM);
    rcpt = json_object_get(rec, "rcpt_tos");
    assert_int_equal(json_array_size(rcpt), 1);
    assert_string_equal(json_string_value(json_array_get(rcpt, 0)), TO);
    /* EHLO names the From domain, not this machine */
    assert_string_equal(field(rec, "helo"), "example.edu");
    assert_string_equal(field(rec, "subject"), "Confirm your e-mail address");
    assert_string_equal(field(rec, "from"), "Open Badges <badges@example.edu>");
    assert_string_equal(field(rec, "to"), TO);
    assert_text(rec, "text", text);
    assert_no_defects(rec);

    assert_lines(raw);
    assert_date(raw);
    assert_header(raw, "From", "From: \"Open Badges\" <badges@example.edu>");
    assert_header(raw, "To", "To: learner@example.org");
    assert_header(raw, "Subject", "Subject: Confirm your e-mail address");
    assert_header(raw, "MIME-Version", "MIME-Version: 1.0");
    assert_header(raw, "Content-Type", "Content-Type: text/plain; charset=UTF-8");
    assert_header(raw, "Content-Transfer-Encoding", "Content-Transfer-Encoding: quoted-printable");
    id = header(raw, "Message-ID");
    assert_int_equal(strlen(id), strlen("Message-ID: <") + 32 + strlen("@example.edu>"));
    for (size_t i = 13; i < 13 + 32; i++)
        assert_true(is_digit(id[i]) || (id[i] >= 'a' && id[i] <= 'f'));
    assert_string_equal(id + 13 + 32, "@example.edu>");
    assert_non_null(strstr(raw, "\r\n\r\nHello,\r\n\r\nconfirm your address: "));

    /* a second message: another Message-ID; no display name: the bare address */
    c.from_name = NULL;
    raw2 = send_ok(&c, "Again", "x", &rec2);
    h = header(raw2, "Message-ID");
    assert_string_not_equal(h, id);
    free(h);
    assert_header(raw2, "From", "From: badges@example.edu");
    assert_text(rec2, "text", "x\n");
    assert_no_defects(rec2);
    /* a name that needs quoting */
    c.from_name = "Badges, \"Univ.\" \\ Registry";
    free(raw2);
    json_decref(rec2);
    raw2 = send_ok(&c, "Again", "x", &rec2);
    assert_string_equal(field(rec2, "from"),
                        "\"Badges, \\\"Univ.\\\" \\\\ Registry\" <badges@example.edu>");
    assert_no_defects(rec2);

    free(id);
    free(raw);
    free(raw2);
    json_decref(rec);
    json_decref(rec2);
}

static void encoded_subjects(void **state)
{
    static const char *const subjects[] = {
        "Confirmez votre adresse électronique — Überprüfung der E-Mail-Adresse, 確認してください",
        "é",
        "🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓🎓",
        "aé🎓bcdefghijklmnopqrstuvwxyzéééééééééééééééééé东京东京东京东京东京",
        /* ASCII that could be read as an encoded-word is encoded too */
        "=?UTF-8?B?SGk=?= is not decoded",
    };
    struct net_mail_config c = config();

    c.from_name = "Université de Genève · Open Badges — 学位証明 and a long tail of words here";
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
        json_t *rec;
        char *raw = send_ok(&c, subjects[i], "x\n", &rec);
        char *h = header(raw, "Subject");

        assert_true(strncmp(h, "Subject: =?UTF-8?B?", 19) == 0);
        assert_string_equal(field(rec, "subject"), subjects[i]);
        /* two encoded-words: see from_rfc2047 in smtpsink.py */
        assert_string_equal(field(rec, "from_rfc2047"),
                            "Université de Genève · Open Badges — 学位証明 "
                            "and a long tail of words here <badges@example.edu>");
        assert_no_defects(rec);
        /* RFC 2047: lines holding encoded-words stay within 76 characters */
        for (char *l = h; l;) {
            char *e = strstr(l, "\r\n");
            size_t n = e ? (size_t)(e - l) : strlen(l);

            if (n > 76)
                fail_msg("subject line of %zu: '%.*s'", n, (int)n, l);
            l = e ? e + 2 : NULL;
        }
        assert_lines(raw);
        free(h);
        free(raw);
        json_decref(rec);
    }
    /* a name that fits one encoded-word */
    c.from_name = "Université de Genève";
    {
        json_t *rec;
        char *raw = send_ok(&c, "x", "x\n", &rec);
        char *h = header(raw, "From");

        assert_string_equal(
            h, "From: =?UTF-8?B?VW5pdmVyc2l0w6kgZGUgR2Vuw6h2ZQ==?= <badges@example.edu>");
        assert_string_equal(field(rec, "from"), "Université de Genève <badges@example.edu>");
        assert_no_defects(rec);
        free(h);
        free(raw);
        json_decref(rec);
    }
}

static void folded_subject(void **state)
{
    struct net_mail_config c = config();
    const char *subject = "Please confirm the e-mail address you gave for your badges in "
                          "Introduction to Biology   so that they can be  sent to you and shown "
                          "in your backpack Supercalifragilisticexpialidocious-and-then-some-more-"
                          "letters-without-any-space-at-all-for-a-line";
    json_t *rec;
    char *raw = send_ok(&c, subject, "x", &rec);
    char *h = header(raw, "Subject");

    /* folded (a CRLF before a space), and unfolding gives the subject back */
    assert_non_null(strstr(h, "\r\n "));
    assert_null(strstr(h, "=?"));
    assert_string_equal(field(rec, "subject"), subject);
    assert_no_defects(rec);
    free(h);
    free(raw);
    json_decref(rec);
}

static void quoted_printable(void **state)
{
    struct net_mail_config c = config();
    struct buf text = BUF_INIT(8192);
    json_t *rec;
    char *raw;

    for (int i = 0; i < 200; i++)
        buf_addch(&text, (char)('a' + i % 26));
    buf_addstr(&text, "\nnaïve café — 東京 🎓, ½ = 0.5 and =?q?= stays\n");
    buf_addstr(&text, "ends in a space \nends in a tab\t\n  \n\n");
    buf_addstr(&text, "windows line\r\nthen=3D literally\n");
    for (int i = 0; i < 40; i++)
        buf_addstr(&text, "é ");
    buf_addstr(&text, "\n");
    for (int i = 0; i < 74; i++)
        buf_addch(&text, 'x');
    buf_addstr(&text, " \n");
    for (int i = 0; i < 75; i++)
        buf_addch(&text, 'y');
    buf_addstr(&text, "=\nno newline at the end é");
    raw = send_ok(&c, "QP", text.ptr, &rec);
    buf_addstr(&text, "\n");
    assert_text(rec, "text", text.ptr);
    assert_no_defects(rec);
    assert_lines(raw);
    assert_non_null(strstr(raw, "na=C3=AFve caf=C3=A9"));
    assert_non_null(strstr(raw, "ends in a space=20\r\n"));
    assert_non_null(strstr(raw, "ends in a tab=09\r\n"));
    assert_non_null(strstr(raw, "then=3D3D literally"));
    buf_release(&text);
    free(raw);
    json_decref(rec);
}

static void dot_lines(void **state)
{
    struct net_mail_config c = config();
    const char *text = ".\nbefore\n.\n..two dots\n. a dot and more\n.\r\nafter the dots\n.";
    json_t *rec;
    char *raw = send_ok(&c, "Dots", text, &rec);

    /* the relay took everything after the dot lines: libcurl dot-stuffed them */
    assert_text(rec, "text", ".\nbefore\n.\n..two dots\n. a dot and more\n.\nafter the dots\n.\n");
    assert_non_null(strstr(raw, "\r\n\r\n.\r\nbefore\r\n.\r\n..two dots\r\n"));
    assert_true(strlen(raw) > 3 && strcmp(raw + strlen(raw) - 5, "\r\n.\r\n") == 0);
    assert_no_defects(rec);
    free(raw);
    json_decref(rec);
}

/* ---- what is refused before connecting ---------------------------------- */

static void header_injection(void **state)
{
    struct net_mail_config c = config();
    int64_t conns = connections();

    send_fails(&c, "learner@example.org\r\nBcc: victim@example.net", "Hi", "x", ERR_INVALID);
    send_fails(&c, "learner@example.org\nBcc: victim@example.net", "Hi", "x", ERR_INVALID);
    send_fails(&c, "learner@example.org>\r\nRCPT TO:<victim@example.net", "Hi", "x", ERR_INVALID);
    send_fails(&c, TO, "Hi\r\nBcc: victim@example.net", "x", ERR_INVALID);
    send_fails(&c, TO, "Hi\nBcc: victim@example.net", "x", ERR_INVALID);
    send_fails(&c, TO, "Hi\rBcc: victim@example.net", "x", ERR_INVALID);
    send_fails(&c, TO, "Hi\tthere", "x", ERR_INVALID);
    send_fails(&c, TO, "Hi \x1b[31m", "x", ERR_INVALID);
    send_fails(&c, TO, "bad UTF-8 \xc3", "x", ERR_INVALID);
    send_fails(&c, TO, "overlong \xc0\xaf", "x", ERR_INVALID);
    send_fails(&c, TO, "surrogate \xed\xa0\x80", "x", ERR_INVALID);
    send_fails(&c, TO, "Hi", "bad UTF-8 \xff in the text", ERR_INVALID);
    c.from_name = "Badges\r\nBcc: victim@example.net";
    send_fails(&c, TO, "Hi", "x", ERR_INVALID);
    c.from_name = "Badges\n";
    send_fails(&c, TO, "Hi", "x", ERR_INVALID);
    c = config();
    c.from = "badges@example.edu\r\nBcc: victim@example.net";
    send_fails(&c, TO, "Hi", "x", ERR_INVALID);
    c.from = "badges@example.edu>\r\nRCPT TO:<victim@example.net";
    send_fails(&c, TO, "Hi", "x", ERR_INVALID);
    /* none of these so much as connected */
    assert_int_equal(connections(), conns);
}

static void addresses(void **state)
{
    static const char *const good[] = {
        "learner@example.org",
        "first.last@sub.example.edu",
        "o'brien+badges@example.co.uk",
        "a!#$%&'*+-/=?^_`{|}~z@example.org",
        "x@xn--bcher-kva.example",
        "UPPER@EXAMPLE.ORG",
        "a@b-c.d1",
        "1@2.example",
    };
    static const char *const bad[] = {
        "",
        "learner",
        "@example.org",
        "learner@",
        "learner@example",
        "learner@localhost",
        "learner@@example.org",
        "a@b@example.org",
        "learner@example..org",
        "learner@.example.org",
        "learner@example.org.",
        "learner@-example.org",
        "learner@example-.org",
        "learner@exa_mple.org",
        "learner@1.2.3.4",
        "learner@[127.0.0.1]",
        ".learner@example.org",
        "learner.@example.org",
        "lea..rner@example.org",
        "\"learner\"@example.org",
        "lea rner@example.org",
        "learner @example.org",
        "learner@example.org ",
        "<learner@example.org>",
        "Learner <learner@example.org>",
        "learner@example.org, other@example.org",
        "learner@example.org;other@example.org",
        "lea(comment)rner@example.org",
        "lea\\rner@example.org",
        "lea:rner@example.org",
        "lérner@example.org",
        "learner@exämple.org",
        "learner@example.org\r\n",
        "learner@example.org\n",
        "learner\t@example.org",
    };
    char addr[LIMIT_MAIL_ADDRESS_LEN + 2];
    struct net_mail_config c = config();
    int64_t conns = connections();
    size_t n;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!net_mail_address_valid(good[i]))
            fail_msg("'%s' refused", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (net_mail_address_valid(bad[i]))
            fail_msg("'%s' accepted", bad[i]);
        send_fails(&c, bad[i], "Hi", "x", ERR_INVALID);
    }
    assert_false(net_mail_address_valid(NULL));
    send_fails(&c, NULL, "Hi", "x", ERR_INVALID);

    /* the local part: 64 bytes, not 65 */
    memset(addr, 'l', LIMIT_MAIL_LOCAL_LEN);
    snprintf(addr + LIMIT_MAIL_LOCAL_LEN, sizeof(addr) - LIMIT_MAIL_LOCAL_LEN, "@example.org");
    assert_true(net_mail_address_valid(addr));
    memset(addr, 'l', LIMIT_MAIL_LOCAL_LEN + 1);
    snprintf(addr + LIMIT_MAIL_LOCAL_LEN + 1, sizeof(addr) - LIMIT_MAIL_LOCAL_LEN - 1,
             "@example.org");
    assert_false(net_mail_address_valid(addr));
    /* a label: 63 bytes, not 64 */
    n = (size_t)snprintf(addr, sizeof(addr), "l@");
    memset(addr + n, 'd', LIMIT_MAIL_LABEL_LEN);
    snprintf(addr + n + LIMIT_MAIL_LABEL_LEN, sizeof(addr) - n - LIMIT_MAIL_LABEL_LEN, ".org");
    assert_true(net_mail_address_valid(addr));
    memset(addr + n, 'd', LIMIT_MAIL_LABEL_LEN + 1);
    snprintf(addr + n + LIMIT_MAIL_LABEL_LEN + 1, sizeof(addr) - n - LIMIT_MAIL_LABEL_LEN - 1,
             ".org");
    assert_false(net_mail_address_valid(addr));
    /* the whole address: 254 bytes, not 255 (labels of "d" and dots) */
    n = (size_t)snprintf(addr, sizeof(addr), "l@");
    while (n < LIMIT_MAIL_ADDRESS_LEN - 4) {
        addr[n++] = 'd';
        addr[n++] = '.';
    }
    snprintf(addr + n, sizeof(addr) - n, "%s", "dorg");
    assert_int_equal(strlen(addr), LIMIT_MAIL_ADDRESS_LEN);
    assert_true(net_mail_address_valid(addr));
    {
        json_t *rec;
        char *raw;
        struct err err = ERR_INIT;
        int before = kept();

        /* and it goes through SMTP */
        assert_int_equal(net_mail_send(&c, addr, "Long address", "x", &err), 0);
        assert_int_equal(kept(), before + 1);
        raw = message(before + 1, &rec);
        assert_string_equal(json_string_value(json_array_get(json_object_get(rec, "rcpt_tos"), 0)),
                            addr);
        free(raw);
        json_decref(rec);
        conns++;
    }
    snprintf(addr + n, sizeof(addr) - n, "%s", "dorgx");
    assert_int_equal(strlen(addr), LIMIT_MAIL_ADDRESS_LEN + 1);
    assert_false(net_mail_address_valid(addr));
    send_fails(&c, addr, "Hi", "x", ERR_INVALID);
    assert_int_equal(connections(), conns);
}

static void limits(void **state)
{
    struct net_mail_config c = config();
    char *text = xmalloc(LIMIT_MAIL_BODY + 2);
    char subject[LIMIT_MAIL_SUBJECT_LEN + 2];
    struct err err;
    json_t *rec;
    char *raw;
    int64_t conns;

    /* the body at the cap: every byte a worst case for quoted-printable */
    for (size_t i = 0; i < LIMIT_MAIL_BODY; i += 2)
        memcpy(text + i, "\xc3\xa9", 2);
    text[LIMIT_MAIL_BODY] = '\0';
    raw = send_ok(&c, "Long", text, &rec);
    assert_int_equal(strlen(field(rec, "text")), LIMIT_MAIL_BODY + 2);
    assert_lines(raw);
    free(raw);
    json_decref(rec);
    conns = connections();
    memset(text, 'a', LIMIT_MAIL_BODY + 1);
    text[LIMIT_MAIL_BODY + 1] = '\0';
    err = send_fails(&c, TO, "Long", text, ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "text"));

    /* the subject at the cap, in two-byte characters, and one byte over */
    for (size_t i = 0; i < LIMIT_MAIL_SUBJECT_LEN; i += 2)
        memcpy(subject + i, "\xc3\xa9", 2);
    subject[LIMIT_MAIL_SUBJECT_LEN] = '\0';
    raw = send_ok(&c, subject, "x", &rec);
    assert_string_equal(field(rec, "subject"), subject);
    assert_no_defects(rec);
    assert_lines(raw);
    free(raw);
    json_decref(rec);
    conns++;
    subject[LIMIT_MAIL_SUBJECT_LEN] = 'a';
    subject[LIMIT_MAIL_SUBJECT_LEN + 1] = '\0';
    err = send_fails(&c, TO, subject, "x", ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "subject"));
    assert_int_equal(connections(), conns);
    free(text);
}

static void config_checks(void **state)
{
    struct net_mail_config c;
    struct err err = ERR_INIT;
    char name[LIMIT_MAIL_NAME_LEN + 2];

    net_mail_config_init(&c);
    assert_null(c.url);
    assert_true(c.starttls);
    assert_false(c.allow_loopback);
    assert_int_equal(c.connect_timeout_ms, LIMIT_MAIL_CONNECT_TIMEOUT_MS);
    assert_int_equal(c.timeout_ms, LIMIT_MAIL_TIMEOUT_MS);
    assert_false(net_mail_enabled(&c));
    c.url = "";
    assert_false(net_mail_enabled(&c));
    c.from = FROM;
    assert_int_equal(net_mail_config_check(&c, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    err_clear(&err);
    send_fails(&c, TO, "Hi", "x", ERR_INVALID);

    c = config();
    assert_int_equal(net_mail_config_check(&c, &err), 0);
    c.url = "SMTP://127.0.0.1:25";
    assert_int_equal(net_mail_config_check(&c, &err), 0);
    c.url = "smtps://mail.example.edu";
    assert_int_equal(net_mail_config_check(&c, &err), 0);
    assert_int_equal(err.code, ERR_NONE);
    {
        static const char *const urls[] = {
            "http://mail.example.edu/",
            "https://mail.example.edu/",
            "file:///etc/passwd",
            "mail.example.edu:25",
            "not a url",
            "smtp://user:secret@mail.example.edu",
            "smtp://user@mail.example.edu",
        };

        for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
            c.url = urls[i];
            err_clear(&err);
            if (net_mail_config_check(&c, &err) != -1 || err.code != ERR_INVALID)
                fail_msg("%s accepted", urls[i]);
            assert_null(strstr(err.msg, "secret"));
            send_fails(&c, TO, "Hi", "x", ERR_INVALID);
        }
    }
    /* credentials only over TLS */
    c = config();
    c.username = "badges";
    c.password = "secret";
    err_clear(&err);
    assert_int_equal(net_mail_config_check(&c, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.msg, "TLS"));
    send_fails(&c, TO, "Hi", "x", ERR_INVALID);
    c.starttls = true;
    err_clear(&err);
    assert_int_equal(net_mail_config_check(&c, &err), 0);
    c.starttls = false;
    c.url = "smtps://mail.example.edu:465";
    assert_int_equal(net_mail_config_check(&c, &err), 0);

    /* the sender */
    c = config();
    c.from = "badges";
    err_clear(&err);
    assert_int_equal(net_mail_config_check(&c, &err), -1);
    c.from = NULL;
    assert_int_equal(net_mail_config_check(&c, &err), -1);
    c = config();
    memset(name, 'n', LIMIT_MAIL_NAME_LEN);
    name[LIMIT_MAIL_NAME_LEN] = '\0';
    c.from_name = name;
    err_clear(&err);
    assert_int_equal(net_mail_config_check(&c, &err), 0);
    name[LIMIT_MAIL_NAME_LEN] = 'n';
    name[LIMIT_MAIL_NAME_LEN + 1] = '\0';
    assert_int_equal(net_mail_config_check(&c, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    c = config();
    c.timeout_ms = 0;
    err_clear(&err);
    assert_int_equal(net_mail_config_check(&c, &err), -1);
}

/* ---- what the relay answers ---------------------------------------------- */

static void rejected(void **state)
{
    struct net_mail_config c = config();
    struct err err;

    set_fault("reject");
    err = send_fails(&c, TO, "Hi", "x", ERR_INVALID);
    set_fault(NULL);
    assert_string_equal(err.msg, "the mail server refused the message");
    assert_non_null(strstr(err.detail, "550"));
}

static void tempfail(void **state)
{
    struct net_mail_config c = config();
    struct err err;

    set_fault("tempfail");
    err = send_fails(&c, TO, "Hi", "x", ERR_UNAVAILABLE);
    set_fault(NULL);
    assert_non_null(strstr(err.detail, "451"));
    assert_null(strstr(err.msg, "451"));
}

static void dropped(void **state)
{
    struct net_mail_config c = config();
    struct err err;

    set_fault("drop");
    err = send_fails(&c, TO, "Hi", "x", ERR_UNAVAILABLE);
    set_fault(NULL);
    assert_true(err.detail[0]);
}

/* Gives up on its third question, about two seconds in. */
static bool cancel_third(void *cls)
{
    int *asked = cls;

    return ++*asked >= 3;
}

static void hung_relay(void **state)
{
    struct net_mail_config c = config();
    struct err err;
    int asked = 0;
    time_t t0;

    /* a relay that never answers: the timeout gives up */
    set_fault("hang");
    c.timeout_ms = 1500;
    t0 = time(NULL);
    err = send_fails(&c, TO, "Hi", "x", ERR_UNAVAILABLE);
    assert_true(time(NULL) - t0 <= 3); /* no wait for an answer to QUIT either */
    assert_true(err.detail[0]);
    /* and, long before it, a cancellation */
    c.timeout_ms = 60000;
    c.cancelled = cancel_third;
    c.cancelled_cls = &asked;
    t0 = time(NULL);
    err = send_fails(&c, TO, "Hi", "x", ERR_UNAVAILABLE);
    set_fault(NULL);
    assert_true(time(NULL) - t0 <= 4);
    assert_int_equal(asked, 3);
    assert_string_equal(err.msg, "sending the e-mail was cancelled, try again later");
}

static void closed_port(void **state)
{
    struct net_mail_config c = config();
    struct err err;

    /* port 1 is closed here, as in the HTTP tests */
    c.url = "smtp://127.0.0.1:1";
    err = send_fails(&c, TO, "Hi", "x", ERR_UNAVAILABLE);
    assert_non_null(strstr(err.detail, "127.0.0.1:1"));
}

static void addresses_refused(void **state)
{
    struct net_mail_config c = config();
    int64_t conns = connections();
    struct err err;
    char url[64];

    c.allow_loopback = false;
    err = send_fails(&c, TO, "Hi", "x", ERR_INTERNAL);
    assert_non_null(strstr(err.detail, "loopback"));
    snprintf(url, sizeof(url), "smtp://localhost:%ld", sink_port);
    c.url = url;
    err = send_fails(&c, TO, "Hi", "x", ERR_INTERNAL);
    assert_non_null(strstr(err.detail, "loopback"));
    assert_int_equal(connections(), conns);
    /* never link-local or metadata, loopback allowed or not */
    c.allow_loopback = true;
    c.url = "smtp://169.254.169.254:25";
    err = send_fails(&c, TO, "Hi", "x", ERR_INTERNAL);
    assert_non_null(strstr(err.detail, "link-local"));
    c.url = "smtp://[fd00:ec2::254]:25";
    err = send_fails(&c, TO, "Hi", "x", ERR_INTERNAL);
    assert_non_null(strstr(err.detail, "metadata"));
}

static void starttls_required(void **state)
{
    struct net_mail_config c = config();
    int64_t conns = connections();
    struct err err;

    /* the sink offers no STARTTLS: nothing goes in plain text */
    c.starttls = true;
    err = send_fails(&c, TO, "Hi", "x", ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "TLS"));
    assert_int_equal(connections(), conns + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(headers),           cmocka_unit_test(encoded_subjects),
        cmocka_unit_test(folded_subject),    cmocka_unit_test(quoted_printable),
        cmocka_unit_test(dot_lines),         cmocka_unit_test(header_injection),
        cmocka_unit_test(addresses),         cmocka_unit_test(limits),
        cmocka_unit_test(config_checks),     cmocka_unit_test(rejected),
        cmocka_unit_test(tempfail),          cmocka_unit_test(dropped),
        cmocka_unit_test(closed_port),       cmocka_unit_test(addresses_refused),
        cmocka_unit_test(starttls_required), cmocka_unit_test(hung_relay),
    };

    net_http_global_init();
    return cmocka_run_group_tests(tests, sink_start, sink_stop);
}
