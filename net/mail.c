/*
 * net/mail.c - e-mail over SMTP (address confirmation links).
 *
 * E-mail goes through libcurl too, so one place holds the network policy:
 * the same address check as the socket opens, no proxy, TLS verified,
 * timeouts. We build the message ourselves rather than trust libcurl's MIME
 * API with header text: every header value is checked for control
 * characters first (a CR or LF in a subject or an address would let the
 * caller add headers or recipients), and anything not plain ASCII is
 * RFC 2047-encoded, so no byte a learner typed reaches a header unchecked.
 * The body is quoted-printable: lines stay under SMTP's limits whatever the
 * text, and 8-bit bytes survive relays that are not 8BITMIME. libcurl
 * dot-stuffs the data itself, so a line holding only "." is left as it is.
 */
#include "base/base.h"
#include "net/net_int.h"

#include <strings.h>
#include <sys/socket.h>

void net_mail_config_init(struct net_mail_config *c)
{
    memset(c, 0, sizeof(*c));
    c->starttls = true;
    c->connect_timeout_ms = LIMIT_MAIL_CONNECT_TIMEOUT_MS;
    c->timeout_ms = LIMIT_MAIL_TIMEOUT_MS;
}

bool net_mail_enabled(const struct net_mail_config *c)
{
    return c->url && *c->url;
}

static bool is_alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* RFC 5322 atext: what a dot-atom's parts are made of. */
static bool is_atext(unsigned char ch)
{
    return is_alnum(ch) || (ch && strchr("!#$%&'*+-/=?^_`{|}~", ch));
}

static bool domain_valid(const char *d)
{
    size_t labels = 0;
    bool numeric = false;

    for (;;) {
        size_t n = strcspn(d, ".");

        if (n == 0 || n > LIMIT_MAIL_LABEL_LEN || d[0] == '-' || d[n - 1] == '-')
            return false;
        numeric = true;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)d[i];

            if (!is_alnum(ch) && ch != '-')
                return false;
            if (ch < '0' || ch > '9')
                numeric = false;
        }
        labels++;
        d += n;
        if (!*d)
            break;
        d++; /* the dot; a trailing one leaves an empty label, refused above */
    }
    /* "localhost" is no address for a learner; "1.2.3.4" is not a domain */
    return labels >= 2 && !numeric;
}

bool net_mail_address_valid(const char *addr)
{
    const char *at;
    size_t local;

    if (!addr || strnlen(addr, LIMIT_MAIL_ADDRESS_LEN + 1) > LIMIT_MAIL_ADDRESS_LEN)
        return false;
    at = strchr(addr, '@');
    if (!at || strchr(at + 1, '@'))
        return false;
    local = (size_t)(at - addr);
    if (local == 0 || local > LIMIT_MAIL_LOCAL_LEN || addr[0] == '.' || at[-1] == '.')
        return false;
    for (size_t i = 0; i < local; i++) {
        if (addr[i] == '.') {
            if (addr[i + 1] == '.')
                return false;
        } else if (!is_atext((unsigned char)addr[i])) {
            return false;
        }
    }
    return domain_valid(at + 1);
}

/* Text that goes into a header: UTF-8 without any control character (tab included). */
static bool header_text_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return str_utf8_valid((struct str){ s, n });
}

/*
 * The URL libcurl is given: smtp or smtps, no credentials in it, and the
 * From domain as the EHLO name when the URL names none (libcurl would send
 * this machine's host name, which relays often refuse). *out is curl_free'd.
 */
static int mail_url(const struct net_mail_config *c, char **out, struct err *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL, *pass = NULL, *path = NULL;
    const char *at = c->from ? strchr(c->from, '@') : NULL;
    struct buf ehlo = BUF_INIT(LIMIT_MAIL_ADDRESS_LEN + 1);
    int ret = 0;

    *out = NULL;
    if (!u)
        return err_set(err, ERR_INTERNAL, "could not set up the mail client");
    if (curl_url_set(u, CURLUPART_URL, c->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        ret = err_set(err, ERR_INVALID, "the mail server URL is not valid");
        goto out;
    }
    if (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0) {
        ret = err_set(err, ERR_INVALID, "the mail server URL must be smtp:// or smtps://");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        ret = err_set(
            err, ERR_INVALID,
            "the mail server URL must not hold credentials (set the user name and password instead)");
        goto out;
    }
    if (at && (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK || strcmp(path, "/") == 0)) {
        buf_addf(&ehlo, "/%s", at + 1);
        curl_url_set(u, CURLUPART_PATH, ehlo.ptr, 0);
    }
    if (curl_url_get(u, CURLUPART_URL, out, 0) != CURLUE_OK) {
        *out = NULL;
        ret = err_set(err, ERR_INVALID, "the mail server URL is not valid");
    }
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(pass);
    curl_free(path);
    curl_url_cleanup(u);
    buf_release(&ehlo);
    return ret;
}

int net_mail_config_check(const struct net_mail_config *c, struct err *err)
{
    char *url = NULL;
    bool tls;

    if (!net_mail_enabled(c))
        return err_set(err, ERR_INVALID, "e-mail is not set up (no mail server URL)");
    if (!net_mail_address_valid(c->from))
        return err_set(err, ERR_INVALID, "the sender address is not a valid e-mail address");
    if (c->from_name && strlen(c->from_name) > LIMIT_MAIL_NAME_LEN)
        return err_set(err, ERR_INVALID, "the sender name is longer than %d bytes",
                       LIMIT_MAIL_NAME_LEN);
    if (c->from_name && !header_text_valid(c->from_name, strlen(c->from_name)))
        return err_set(err, ERR_INVALID,
                       "the sender name must be UTF-8 text without control characters");
    if (c->connect_timeout_ms <= 0 || c->timeout_ms <= 0)
        return err_set(err, ERR_INVALID, "the mail timeouts must be positive");
    if (mail_url(c, &url, err) < 0)
        return -1;
    curl_free(url);
    /* the scheme is smtp or smtps by now, in any case */
    tls = strncasecmp(c->url, "smtps:", 6) == 0 || c->starttls;
    if (c->username && !tls)
        return err_set(err, ERR_INVALID,
                       "mail credentials are only sent over TLS (smtps:// or STARTTLS)");
    return 0;
}

/*
 * Appends `s` as RFC 2047 encoded-words (UTF-8, B), each on its own line
 * after the first, every line at most 76 characters (RFC 2047 section 2)
 * and no character split between two words (section 5). *col is the
 * length of the current line, and is updated.
 */
static void add_encoded_words(struct buf *b, size_t *col, struct str s)
{
    size_t i = 0;

    while (i < s.len) {
        /*
         * " =?UTF-8?B?" and "?=" around the base64; callers start at most at
         * column 8 ("Subject:"), so a line holds 39 bytes, and 45 once folded
         */
        size_t room = 76 - *col - 1 - 12;
        size_t n = room / 4 * 3;

        if (n > s.len - i)
            n = s.len - i;
        /* back to the start of a character: s is valid UTF-8 */
        while (i + n < s.len && n > 0 && ((unsigned char)s.ptr[i + n] & 0xc0) == 0x80)
            n--;
        if (!n)
            BUG("no room for an encoded-word at column %zu", *col);
        buf_addstr(b, " =?UTF-8?B?");
        buf_addbase64(b, (const unsigned char *)s.ptr + i, n);
        buf_addstr(b, "?=");
        i += n;
        if (i < s.len) {
            buf_addstr(b, "\r\n");
            *col = 0;
        } else {
            *col += 1 + 12 + (n + 2) / 3 * 4;
        }
    }
}

/* Whether header text must be encoded: not ASCII, or it could be read as an encoded-word. */
static bool needs_encoding(struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        if ((unsigned char)s.ptr[i] >= 0x80 ||
            (s.ptr[i] == '=' && i + 1 < s.len && s.ptr[i + 1] == '?'))
            return true;
    }
    return false;
}

/*
 * Appends " " + ASCII `s`, folding long lines (RFC 5322 2.2.3): a CRLF goes
 * before a run of spaces that starts a word that would pass column 78,
 * so unfolding gives the text back unchanged. A word longer than a line
 * stays whole (the subject's cap keeps it far under 998).
 */
static void add_folded(struct buf *b, size_t col, struct str s)
{
    size_t i = 0;
    bool first = true;

    buf_addch(b, ' ');
    col++;
    while (i < s.len) {
        size_t j = i;

        while (j < s.len && s.ptr[j] == ' ')
            j++;
        if (j == s.len) {
            /* trailing spaces: never a line of spaces alone */
            buf_add(b, s.ptr + i, j - i);
            break;
        }
        while (j < s.len && s.ptr[j] != ' ')
            j++;
        /* past the first word, every piece starts with the spaces a fold may go before */
        if (!first && col + (j - i) > 78) {
            buf_addstr(b, "\r\n");
            col = 0;
        }
        buf_add(b, s.ptr + i, j - i);
        col += j - i;
        i = j;
        first = false;
    }
}

static void add_date(struct buf *b)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t t = time(NULL);
    struct tm tm;

    /* by hand: strftime's %a and %b follow the locale, RFC 5322 wants English */
    gmtime_r(&t, &tm);
    buf_addf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void add_from(struct buf *b, const struct net_mail_config *c)
{
    struct str name = str_from_cstr(c->from_name);
    size_t col = 5;

    buf_addstr(b, "From:");
    if (!name.len) {
        buf_addf(b, " %s\r\n", c->from);
        return;
    }
    if (needs_encoding(name)) {
        add_encoded_words(b, &col, name);
    } else {
        /* a quoted-string: commas and dots in a name need it */
        buf_addstr(b, " \"");
        col += 3 + name.len;
        for (size_t i = 0; i < name.len; i++) {
            if (name.ptr[i] == '"' || name.ptr[i] == '\\') {
                buf_addch(b, '\\');
                col++;
            }
            buf_addch(b, name.ptr[i]);
        }
        buf_addch(b, '"');
    }
    if (col + 3 + strlen(c->from) > 78)
        buf_addstr(b, "\r\n");
    buf_addf(b, " <%s>\r\n", c->from);
}

/*
 * Appends `t` as quoted-printable (RFC 2045 6.7): "\n" and "\r\n" are line
 * breaks (CRLF), other bytes outside 33-126 and '=' are =XX, a space or tab
 * ending a line too, and a soft break "=" CRLF keeps lines at 76 characters.
 * A leading "." is left alone: libcurl dot-stuffs.
 */
static void add_quoted_printable(struct buf *b, struct str t)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;

    for (size_t i = 0; i < t.len; i++) {
        unsigned char ch = (unsigned char)t.ptr[i];
        const char *next = t.ptr + i + 1;
        size_t left = t.len - i - 1;
        bool last = !left || next[0] == '\n' || (left >= 2 && next[0] == '\r' && next[1] == '\n');
        char tok[3];
        size_t n = 1;

        if (ch == '\n' || (ch == '\r' && left && next[0] == '\n')) {
            buf_addstr(b, "\r\n");
            col = 0;
            i += ch == '\r';
            continue;
        }
        tok[0] = (char)ch;
        if (!((ch >= 33 && ch <= 126 && ch != '=') || ((ch == ' ' || ch == '\t') && !last))) {
            tok[0] = '=';
            tok[1] = hex[ch >> 4];
            tok[2] = hex[ch & 15];
            n = 3;
        }
        /* a line's last token may reach column 76; others leave room for the soft break */
        if (col + n > (last ? 76u : 75u)) {
            buf_addstr(b, "=\r\n");
            col = 0;
        }
        buf_add(b, tok, n);
        col += n;
    }
    if (col)
        buf_addstr(b, "\r\n");
}

static int build_message(const struct net_mail_config *c, const char *to, const char *subject,
                         const char *text, struct buf *msg, struct err *err)
{
    struct str subj = str_from_cstr(subject);
    char id[33];
    size_t col = 8;

    if (util_random_hex(id, 16, err) < 0)
        return -1;
    add_date(msg);
    add_from(msg, c);
    buf_addf(msg, "To: %s\r\n", to);
    buf_addstr(msg, "Subject:");
    if (needs_encoding(subj))
        add_encoded_words(msg, &col, subj);
    else
        add_folded(msg, col, subj);
    buf_addstr(msg, "\r\n");
    buf_addf(msg, "Message-ID: <%s@%s>\r\n", id, strchr(c->from, '@') + 1);
    /* RFC 3834: no vacation notice or other auto-reply to a confirmation link */
    buf_addstr(msg, "Auto-Submitted: auto-generated\r\n");
    buf_addstr(msg, "MIME-Version: 1.0\r\n");
    buf_addstr(msg, "Content-Type: text/plain; charset=UTF-8\r\n");
    buf_addstr(msg, "Content-Transfer-Encoding: quoted-printable\r\n");
    buf_addstr(msg, "\r\n");
    add_quoted_printable(msg, str_from_cstr(text));
    return buf_check(msg, "the e-mail", err);
}

struct upload {
    const char *p;
    size_t len, off;
};

static size_t on_read(char *dst, size_t size, size_t n, void *userdata)
{
    struct upload *u = userdata;
    size_t room = size * n;

    if (room > u->len - u->off)
        room = u->len - u->off;
    memcpy(dst, u->p + u->off, room);
    u->off += room;
    return room;
}

/* A send's deadline and whether its caller gave up. */
struct progress {
    const struct net_mail_config *c;
    int64_t deadline_ns;
    bool timed_out, cancelled;
};

/*
 * libcurl asks this about once a second even while the relay is silent,
 * also while it awaits the answer to the end of DATA, after the transfer,
 * where it heeds no TIMEOUT_MS (7.88): the whole send's deadline is kept
 * here.
 */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct progress *p = userdata;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (p->c->cancelled && p->c->cancelled(p->c->cancelled_cls))
        p->cancelled = true;
    else if (util_mono_ns() >= p->deadline_ns)
        p->timed_out = true;
    return p->cancelled || p->timed_out;
}

/* Turns libcurl's answer into an error: who must act, and whether to retry. */
static int mail_failed(CURLcode rc, long reply, const struct net_guard *cl,
                       const struct progress *prog, const char *url, const char *ebuf,
                       struct err *err)
{
    const char *what = ebuf[0] ? ebuf : curl_easy_strerror(rc);

    if (prog->cancelled) {
        err_set(err, ERR_UNAVAILABLE, "sending the e-mail was cancelled, try again later");
        return err_detail(err, "%s: cancelled by the caller (last SMTP reply %ld)", url, reply);
    }
    if (prog->timed_out) {
        err_set(err, ERR_UNAVAILABLE, "the mail server did not answer in time, try again later");
        return err_detail(err, "%s: no answer in %ld ms (last SMTP reply %ld)", url,
                          prog->c->timeout_ms, reply);
    }
    if (cl->refused) {
        err_set(err, ERR_INTERNAL, "the mail server's address is not one the tool may connect to");
        return err_detail(err, "%s: refused to connect to %s", url, cl->why);
    }
    switch (rc) {
    case CURLE_LOGIN_DENIED:
        err_set(err, ERR_INTERNAL, "the mail server refused the tool's credentials");
        break;
    case CURLE_USE_SSL_FAILED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        err_set(err, ERR_INTERNAL, "the mail server offers no verified TLS connection");
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        err_set(err, ERR_INVALID, "the mail server URL is not valid");
        break;
    default:
        if (reply >= 500 && reply <= 599)
            err_set(err, ERR_INVALID, "the mail server refused the message");
        else if (reply >= 400 && reply <= 499)
            err_set(err, ERR_UNAVAILABLE,
                    "the mail server cannot take the message now, try again later");
        else
            err_set(err, ERR_UNAVAILABLE,
                    "the connection to the mail server failed, try again later");
        break;
    }
    return err_detail(err, "%s: %s (curl error %d, last SMTP reply %ld)", url, what, (int)rc,
                      reply);
}

int net_mail_send(const struct net_mail_config *c, const char *to, const char *subject,
                  const char *text, struct err *err)
{
    struct net_guard cl = { c->allow_loopback, false, "" };
    struct buf msg = BUF_INIT(LIMIT_MAIL_MESSAGE);
    struct buf addr = BUF_INIT(LIMIT_MAIL_ADDRESS_LEN + 2);
    struct upload up;
    struct progress prog = { c, 0, false, false };
    struct curl_slist *rcpt = NULL;
    char ebuf[CURL_ERROR_SIZE] = "";
    char *url = NULL;
    CURL *k = NULL;
    long reply = 0;
    CURLcode rc;
    int ret = 0;

    if (net_mail_config_check(c, err) < 0)
        return -1;
    if (!net_mail_address_valid(to))
        return err_set(err, ERR_INVALID, "the e-mail address is not valid");
    if (!subject || !text)
        return err_set(err, ERR_INVALID, "an e-mail needs a subject and a text");
    if (strlen(subject) > LIMIT_MAIL_SUBJECT_LEN)
        return err_set(err, ERR_TOOBIG, "the e-mail subject is longer than %d bytes",
                       LIMIT_MAIL_SUBJECT_LEN);
    if (!header_text_valid(subject, strlen(subject)))
        return err_set(err, ERR_INVALID,
                       "the e-mail subject must be UTF-8 text without control characters");
    if (strlen(text) > LIMIT_MAIL_BODY)
        return err_set(err, ERR_TOOBIG, "the e-mail text is longer than %d bytes", LIMIT_MAIL_BODY);
    if (!str_utf8_valid(str_from_cstr(text)))
        return err_set(err, ERR_INVALID, "the e-mail text is not UTF-8");
    if (build_message(c, to, subject, text, &msg, err) < 0 || mail_url(c, &url, err) < 0) {
        ret = -1;
        goto out;
    }
    k = curl_easy_init();
    if (!k) {
        ret = err_set(err, ERR_INTERNAL, "could not set up the mail client");
        goto out;
    }
    buf_addf(&addr, "<%s>", to);
    rcpt = curl_slist_append(rcpt, addr.ptr);
    buf_reset(&addr);
    buf_addf(&addr, "<%s>", c->from);
    up = (struct upload){ msg.ptr, msg.len, 0 };
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(k, CURLOPT_PROXY, "");
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(k, CURLOPT_USE_SSL,
                     c->starttls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
    curl_easy_setopt(k, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(k, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(k, CURLOPT_CAINFO, c->ca_file);
    if (c->username) {
        curl_easy_setopt(k, CURLOPT_USERNAME, c->username);
        curl_easy_setopt(k, CURLOPT_PASSWORD, c->password ? c->password : "");
    }
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    /*
     * The relay's answer to the end of DATA is awaited after the transfer,
     * where libcurl (7.88) heeds only this timeout, 120 s by default, not
     * TIMEOUT_MS: a silent relay held every mail two minutes. on_progress()
     * keeps the whole send within TIMEOUT_MS; this is the backstop.
     */
    curl_easy_setopt(k, CURLOPT_SERVER_RESPONSE_TIMEOUT, (c->timeout_ms + 999) / 1000);
    curl_easy_setopt(k, CURLOPT_OPENSOCKETFUNCTION, net_open_socket);
    curl_easy_setopt(k, CURLOPT_OPENSOCKETDATA, &cl);
    curl_easy_setopt(k, CURLOPT_MAIL_FROM, addr.ptr);
    curl_easy_setopt(k, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(k, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(k, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(k, CURLOPT_READDATA, &up);
    curl_easy_setopt(k, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(k, CURLOPT_XFERINFODATA, &prog);
    curl_easy_setopt(k, CURLOPT_NOPROGRESS, 0L);
    prog.deadline_ns = util_mono_ns() + (int64_t)c->timeout_ms * 1000000;
    rc = curl_easy_perform(k);
    if (rc != CURLE_OK) {
        curl_socket_t fd = CURL_SOCKET_BAD;

        curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &reply);
        ret = mail_failed(rc, reply, &cl, &prog, url, ebuf, err);
        /*
         * curl_easy_cleanup() says QUIT on a connection still open and waits
         * for the answer with neither on_progress() nor TIMEOUT_MS, only
         * SERVER_RESPONSE_TIMEOUT: a relay that failed us (silent, most
         * likely) is not waited for again. The socket stays libcurl's to close.
         */
        if (curl_easy_getinfo(k, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK && fd != CURL_SOCKET_BAD)
            shutdown(fd, SHUT_RDWR);
    }
out:
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(k);
    curl_free(url);
    buf_release(&addr);
    buf_release(&msg);
    return ret;
}
