/*
 * web/i18n.c - which language a page is in, and GNU gettext to translate it.
 *
 * One server answers learners in several languages at once, so the
 * language is per request, not per process. glibc's gettext picks a
 * catalog from the thread's LC_MESSAGES locale, and switching that per
 * request would need every language's locale generated on the host
 * (locale-gen), which a fresh Debian does not have. Instead each language
 * is its own text domain, "ltibadges-es", read with dgettext() under the
 * C.UTF-8 locale that glibc always has: the catalogs live at
 * DIR/C/LC_MESSAGES/ltibadges-LANG.mo, and the thread's domain is the
 * request's language. English is the source language; its catalog only
 * lets an operator reword. A message without a translation falls back to
 * the English msgid, as gettext does.
 */
#include "base/base.h"
#include "web/web_int.h"

#include <libintl.h>
#include <locale.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const tags[WEB_LANGS] = { "en", "es" };
static const char *const domains[WEB_LANGS] = { "ltibadges-en", "ltibadges-es" };

/* Set once by web_i18n_init(), before any thread renders a page; read-only after. */
static locale_t messages_locale;
static bool catalogs_bound;

static _Thread_local enum web_lang cur_lang;
static _Thread_local bool thread_ready;

int web_i18n_init(const char *dir, struct err *err)
{
    char path[4096];
    struct stat st;

    /*
     * LANGUAGE would override the domain's language for every request: the
     * language comes from the launch, never from the server's environment.
     * Called before any thread starts, so changing the environment is safe.
     */
    unsetenv("LANGUAGE");
    if (!dir || !dir[0])
        return 0;
    snprintf(path, sizeof(path), "%s/C/LC_MESSAGES/%s.mo", dir, domains[WEB_LANG_ES]);
    if (stat(path, &st) != 0)
        return err_set(err, ERR_NOTFOUND, "no translations in '%s' (pages will be in English)",
                       dir);
    messages_locale = newlocale(LC_MESSAGES_MASK, "C.UTF-8", (locale_t)0);
    if (!messages_locale)
        return err_set(err, ERR_INTERNAL, "the C.UTF-8 locale is missing (pages in English)");
    for (size_t i = 0; i < WEB_LANGS; i++) {
        bindtextdomain(domains[i], dir);
        bind_textdomain_codeset(domains[i], "UTF-8");
    }
    catalogs_bound = true;
    return 0;
}

const char *web_lang_tag(enum web_lang l)
{
    return tags[l];
}

/* The language of a tag's primary subtag ("es-MX" -> es), or -1. */
static int lang_of(struct str tag)
{
    size_t n = 0;

    while (n < tag.len && tag.ptr[n] != '-' && tag.ptr[n] != '_')
        n++;
    for (int i = 0; i < WEB_LANGS; i++) {
        if (n == 2 && strncasecmp(tag.ptr, tags[i], 2) == 0)
            return i;
    }
    return -1;
}

/* The best supported language of an Accept-Language header (RFC 9110 12.5.4), or -1. */
static int accept_pick(const char *h)
{
    int best = -1;
    int64_t best_q = 0;
    const char *p = h;

    while (p && *p) {
        const char *comma = strchr(p, ',');
        struct str item = str_trim((struct str){ p, comma ? (size_t)(comma - p) : strlen(p) });
        const char *semi = memchr(item.ptr, ';', item.len);
        struct str tag =
            str_trim((struct str){ item.ptr, semi ? (size_t)(semi - item.ptr) : item.len });
        int64_t q = 1000;
        int l;

        if (semi) {
            /* ";q=0.8": thousandths, as the grammar allows at most three decimals */
            struct str par =
                str_trim((struct str){ semi + 1, item.len - (size_t)(semi + 1 - item.ptr) });

            if (par.len >= 2 && (par.ptr[0] | 0x20) == 'q' && par.ptr[1] == '=') {
                q = 0;
                if (par.len > 2 && par.ptr[2] == '1')
                    q = 1000;
                else if (par.len > 4 && par.ptr[2] == '0' && par.ptr[3] == '.') {
                    int64_t scale = 100;

                    for (size_t i = 4;
                         i < par.len && i < 7 && par.ptr[i] >= '0' && par.ptr[i] <= '9';
                         i++, scale /= 10)
                        q += (par.ptr[i] - '0') * scale;
                }
            }
        }
        l = lang_of(tag);
        if (l >= 0 && q > best_q) {
            best = l;
            best_q = q;
        }
        p = comma ? comma + 1 : NULL;
    }
    return best;
}

enum web_lang web_lang_pick(const char *locale, const char *accept_language)
{
    int l = -1;

    if (locale && locale[0])
        l = lang_of(str_from_cstr(locale));
    if (l < 0 && accept_language)
        l = accept_pick(accept_language);
    return l < 0 ? WEB_LANG_EN : (enum web_lang)l;
}

void web_lang_use(enum web_lang l)
{
    if (!thread_ready && catalogs_bound) {
        /* LC_MESSAGES of this thread only: numbers keep the C locale's '.' */
        uselocale(messages_locale);
        thread_ready = true;
    }
    cur_lang = l;
}

enum web_lang web_lang_current(void)
{
    return cur_lang;
}

/*
 * dgettext takes a process-wide read lock and hashes the message on every
 * call, and a page asks for hundreds. Messages are string literals of the
 * program (or template text copied per call, which simply misses), and a
 * translation stays where it is while the catalogs are bound (they are
 * bound once, before any thread): so each thread remembers its last answers
 * by the message's address, direct-mapped.
 */
#define GETTEXT_CACHE 512

struct gettext_slot {
    const char *msgid, *text;
};
static _Thread_local struct gettext_slot gettext_cache[WEB_LANGS][GETTEXT_CACHE];

const char *web_gettext_transient(const char *msgid)
{
    if (!thread_ready || !msgid[0])
        return msgid;
    return dgettext(domains[cur_lang], msgid);
}

const char *web_gettext(const char *msgid)
{
    struct gettext_slot *slot;

    if (!thread_ready || !msgid[0])
        return msgid;
    slot = &gettext_cache[cur_lang][((uintptr_t)msgid >> 3) % GETTEXT_CACHE];
    if (slot->msgid == msgid)
        return slot->text;
    slot->msgid = msgid;
    slot->text = dgettext(domains[cur_lang], msgid);
    return slot->text;
}
