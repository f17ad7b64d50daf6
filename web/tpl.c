/*
 * web/tpl.c - a small mustache-like renderer that escapes by default.
 *
 * Debian 12 packages no C template engine, so web/ keeps this one. Values
 * are escaped for HTML text and quoted attributes (& < > " '), URLs must be
 * http(s) or relative, and unescaped output needs both a triple mustache in
 * the template and a variable made with web_tpl_raw_unsafe(): neither alone
 * is enough (cf. h2o_htmlescape and Go's html/template "#ZgotmplZ").
 *
 * Two additions to mustache: a list variable repeats its section once per
 * item (the item's variables shadow the outer ones), and {{@text}} is a
 * literal for people to read, translated through gettext (web_gettext) and
 * escaped like any value; in it, {name} writes a variable of the scope,
 * escaped for its kind, so translators may reorder a sentence's parts
 * without ever writing markup.
 */
#include "base/base.h"
#include "web/web_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>

struct web_tpl_var web_tpl_text(const char *name, const char *value)
{
    return (struct web_tpl_var){ name, str_from_cstr(value), TPL_TEXT, NULL, 0, 0 };
}

struct web_tpl_var web_tpl_url(const char *name, const char *value)
{
    return (struct web_tpl_var){ name, str_from_cstr(value), TPL_URL, NULL, 0, 0 };
}

struct web_tpl_var web_tpl_raw_unsafe(const char *name, const char *markup)
{
    return (struct web_tpl_var){ name, str_from_cstr(markup), TPL_RAW, NULL, 0, 0 };
}

struct web_tpl_var web_tpl_list(const char *name, const struct web_tpl_var *items, size_t width,
                                size_t count)
{
    return (struct web_tpl_var){ name, STR_NULL, TPL_LIST, items, width, items ? count : 0 };
}

/* The variables visible at one point: a list item's, then those around it. */
struct scope {
    const struct web_tpl_var *vars;
    size_t n;
    const struct scope *up;
};

static const struct web_tpl_var *find(const struct scope *sc, struct str name)
{
    for (; sc; sc = sc->up) {
        for (size_t i = 0; i < sc->n; i++) {
            if (str_eq_cstr(name, sc->vars[i].name))
                return &sc->vars[i];
        }
    }
    return NULL;
}

static bool safe_url(struct str u)
{
    /* browsers ignore tabs and newlines inside URLs: "java\tscript:" must not pass */
    for (size_t i = 0; i < u.len; i++) {
        if ((unsigned char)u.ptr[i] < 0x20 || u.ptr[i] == 0x7f)
            return false;
    }
    if (u.len >= 7 && strncasecmp(u.ptr, "http://", 7) == 0)
        return true;
    if (u.len >= 8 && strncasecmp(u.ptr, "https://", 8) == 0)
        return true;
    if (u.len >= 1 && u.ptr[0] == '\\')
        return false; /* browsers read "\\host" as "//host" */
    if (u.len >= 2 && u.ptr[0] == '/' && (u.ptr[1] == '/' || u.ptr[1] == '\\'))
        return false; /* protocol-relative: another host */
    /* relative: no scheme before the first '/', '?' or '#' */
    for (size_t i = 0; i < u.len; i++) {
        if (u.ptr[i] == ':')
            return false;
        if (u.ptr[i] == '/' || u.ptr[i] == '?' || u.ptr[i] == '#')
            break;
    }
    return true;
}

bool web_tpl_url_ok(const char *url)
{
    return url && safe_url(str_from_cstr(url));
}

static int write_var(struct buf *out, const struct web_tpl_var *v, bool raw, struct err *err)
{
    if (v->kind == TPL_LIST)
        return err_set(err, ERR_INTERNAL, "template writes list '%s' as a value", v->name);
    if (raw) {
        if (v->kind != TPL_RAW)
            return err_set(err, ERR_INTERNAL, "template writes '%s' raw but it is not trusted",
                           v->name);
        return buf_addview(out, v->value);
    }
    if (v->kind == TPL_URL && !safe_url(v->value))
        return buf_addch(out, '#');
    return util_html_escape(out, v->value);
}

/* Whether every {name} in `t` names a variable of the scope. */
static bool placeholders_known(const char *t, const struct scope *sc)
{
    for (const char *open = strchr(t, '{'); open; open = strchr(open + 1, '{')) {
        const char *close = strchr(open + 1, '}');

        if (!close)
            break;
        if (!find(sc, (struct str){ open + 1, (size_t)(close - open - 1) }))
            return false;
    }
    return true;
}

/* A {{@text}} literal: translated, escaped, its {name} placeholders filled from the scope. */
static int write_text(struct buf *out, const char *id, bool stable, const struct scope *sc,
                      struct err *err)
{
    const char *t = stable ? web_gettext(id) : web_gettext_transient(id), *p;

    /* a translation naming a variable the template lacks is a catalog bug: show the original */
    if (t != id && !placeholders_known(t, sc))
        t = id;
    p = t;
    while (*p) {
        const char *open = strchr(p, '{');
        const char *close = open ? strchr(open + 1, '}') : NULL;
        const struct web_tpl_var *v;

        if (!open || !close) {
            util_html_escape(out, str_from_cstr(p));
            break;
        }
        util_html_escape(out, (struct str){ p, (size_t)(open - p) });
        v = find(sc, (struct str){ open + 1, (size_t)(close - open - 1) });
        if (!v)
            return err_set(err, ERR_INTERNAL, "template text names unknown '%.*s'",
                           (int)(close - open - 1), open + 1);
        if (write_var(out, v, false, err) < 0)
            return -1;
        p = close + 1;
    }
    return 0;
}

/*
 * A template is compiled once into a flat list of nodes (text, variable,
 * translated text, section with the index past its body), so a page is
 * rendered without scanning the template's text again for every section
 * and every list item.
 */
enum node_kind {
    N_TEXT,
    N_VAR,
    N_RAW,
    N_TEXT_I18N,
    N_SECTION,
    N_INVERTED,
};

struct node {
    enum node_kind kind;
    struct str s;      /* text, or the variable's name */
    const char *msgid; /* N_TEXT_I18N: NUL-terminated */
    size_t end;        /* sections: the index past the body's last node */
};

struct compiled {
    struct node *nodes;
    size_t n;
    bool stable; /* kept for the process's life (in the table): its messages' addresses too */
};

/* The "}}" closing a {{@text}} literal, past its {name} placeholders; NULL if unclosed. */
static const char *text_end(const char *p, const char *end)
{
    int depth = 0;

    for (; p < end; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && depth > 0)
            depth--;
        else if (*p == '}' && p + 1 < end && p[1] == '}')
            return p;
    }
    return NULL;
}

static struct node *push(struct compiled *c, size_t *alloc, enum node_kind k, struct str s)
{
    struct node *nd;

    if (c->n == *alloc) {
        *alloc = *alloc ? *alloc * 2 : 64;
        c->nodes = xrealloc(c->nodes, st_mult(*alloc, sizeof(*c->nodes)));
    }
    nd = &c->nodes[c->n++];
    memset(nd, 0, sizeof(*nd));
    nd->kind = k;
    nd->s = s;
    return nd;
}

static void compiled_free(struct compiled *c)
{
    for (size_t i = 0; i < c->n; i++)
        free((char *)c->nodes[i].msgid);
    free(c->nodes);
    c->nodes = NULL;
    c->n = 0;
}

#define TPL_DEPTH_MAX 32

static int compile(const char *p, const char *end, struct compiled *c, struct err *err)
{
    size_t alloc = 0, open_at[TPL_DEPTH_MAX], depth = 0;

    memset(c, 0, sizeof(*c));
    while (p < end) {
        const char *open = memmem(p, (size_t)(end - p), "{{", 2);
        const char *close;
        bool triple;
        struct str name;

        if (!open) {
            push(c, &alloc, N_TEXT, (struct str){ p, (size_t)(end - p) });
            break;
        }
        if (open > p)
            push(c, &alloc, N_TEXT, (struct str){ p, (size_t)(open - p) });
        triple = open + 2 < end && open[2] == '{';
        if (open + 2 < end && open[2] == '@')
            close = text_end(open + 3, end);
        else
            close = memmem(open, (size_t)(end - open), triple ? "}}}" : "}}", triple ? 3 : 2);
        if (!close) {
            err_set(err, ERR_INTERNAL, "unclosed template tag");
            goto fail;
        }
        name = (struct str){ open + (triple ? 3 : 2), (size_t)(close - open - (triple ? 3 : 2)) };
        p = close + (triple ? 3 : 2);
        if (triple) {
            push(c, &alloc, N_RAW, name);
        } else if (name.len && name.ptr[0] == '@') {
            push(c, &alloc, N_TEXT_I18N, name)->msgid = xmemdupz(name.ptr + 1, name.len - 1);
        } else if (name.len && (name.ptr[0] == '#' || name.ptr[0] == '^')) {
            if (depth == TPL_DEPTH_MAX) {
                err_set(err, ERR_INTERNAL, "template sections nest too deep");
                goto fail;
            }
            open_at[depth++] = c->n;
            push(c, &alloc, name.ptr[0] == '^' ? N_INVERTED : N_SECTION,
                 (struct str){ name.ptr + 1, name.len - 1 });
        } else if (name.len && name.ptr[0] == '/') {
            struct str tag = { name.ptr + 1, name.len - 1 };

            if (depth == 0 || !str_eq(c->nodes[open_at[depth - 1]].s, tag)) {
                err_set(err, ERR_INTERNAL, "template section '%.*s' closed without opening",
                        (int)tag.len, tag.ptr);
                goto fail;
            }
            c->nodes[open_at[--depth]].end = c->n;
        } else {
            push(c, &alloc, N_VAR, name);
        }
    }
    if (depth) {
        const struct node *nd = &c->nodes[open_at[depth - 1]];

        err_set(err, ERR_INTERNAL, "unclosed template section '%.*s'", (int)nd->s.len, nd->s.ptr);
        goto fail;
    }
    return 0;
fail:
    compiled_free(c);
    return -1;
}

/* Renders nodes [i, end); with `emit` false only checks that every variable is set. */
static int run(struct buf *out, const struct compiled *c, size_t i, size_t end,
               const struct scope *sc, bool emit, struct err *err)
{
    while (i < end) {
        const struct node *x = &c->nodes[i];
        const struct web_tpl_var *v;

        switch (x->kind) {
        case N_TEXT:
            if (emit)
                buf_add(out, x->s.ptr, x->s.len);
            i++;
            continue;
        case N_TEXT_I18N:
            if (emit && write_text(out, x->msgid, c->stable, sc, err) < 0)
                return -1;
            i++;
            continue;
        case N_VAR:
        case N_RAW:
            v = find(sc, x->s);
            if (!v)
                return err_set(err, ERR_INTERNAL, "template variable '%.*s' is not set",
                               (int)x->s.len, x->s.ptr);
            if (emit && write_var(out, v, x->kind == N_RAW, err) < 0)
                return -1;
            i++;
            continue;
        case N_SECTION:
        case N_INVERTED: {
            bool on;

            v = find(sc, x->s);
            if (v && v->kind == TPL_LIST && x->kind == N_SECTION) {
                /* once per item, the item's variables first; nothing for an empty list */
                for (size_t k = 0; k < v->count; k++) {
                    struct scope item = { v->items + k * v->width, v->width, sc };

                    if (run(out, c, i + 1, x->end, &item, emit, err) < 0)
                        return -1;
                }
                /* an empty list's section is skipped whole: its items' variables do not exist */
                i = x->end;
                continue;
            }
            on = v && (v->kind == TPL_LIST ? v->count > 0 : v->value.ptr && v->value.len);
            if (x->kind == N_INVERTED)
                on = !on;
            if (run(out, c, i + 1, x->end, sc, emit && on, err) < 0)
                return -1;
            i = x->end;
            continue;
        }
        }
    }
    return 0;
}

/*
 * Compiled templates, by their text: the pages' templates are static, so a
 * small table filled on first use serves them all. It is read without a
 * lock (a slot is published with a release store of the count); the text is
 * compared too, so a template at a reused address is never confused.
 */
#define TPL_CACHE 64

static struct {
    const char *key; /* the caller's pointer */
    const char *src; /* our copy of its text, which the nodes point into */
    size_t len;
    struct compiled c;
} tpl_cache[TPL_CACHE];
static atomic_size_t tpl_cached;
static pthread_mutex_t tpl_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static const struct compiled *cache_find(const char *tpl, size_t len, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (tpl_cache[i].key == tpl && tpl_cache[i].len == len &&
            memcmp(tpl_cache[i].src, tpl, len) == 0)
            return &tpl_cache[i].c;
    }
    return NULL;
}

int web_tpl_render(struct buf *out, const char *tpl, const struct web_tpl_var *vars, size_t nvars,
                   struct err *err)
{
    struct scope top = { vars, nvars, NULL };
    size_t len = strlen(tpl);
    const struct compiled *c =
        cache_find(tpl, len, atomic_load_explicit(&tpl_cached, memory_order_acquire));
    struct compiled own = { NULL, 0, false };
    int ret;

    if (!c) {
        size_t n;

        pthread_mutex_lock(&tpl_cache_mu);
        n = atomic_load_explicit(&tpl_cached, memory_order_relaxed);
        c = cache_find(tpl, len, n);
        if (!c && n < TPL_CACHE) {
            /* our own copy of the text keeps the entry true whatever becomes of `tpl` */
            char *copy = xmemdupz(tpl, len);

            if (compile(copy, copy + len, &tpl_cache[n].c, err) < 0) {
                free(copy);
                pthread_mutex_unlock(&tpl_cache_mu);
                return -1;
            }
            tpl_cache[n].c.stable = true;
            tpl_cache[n].key = tpl;
            tpl_cache[n].src = copy;
            tpl_cache[n].len = len;
            c = &tpl_cache[n].c;
            atomic_store_explicit(&tpl_cached, n + 1, memory_order_release);
        }
        pthread_mutex_unlock(&tpl_cache_mu);
        if (!c) {
            if (compile(tpl, tpl + len, &own, err) < 0)
                return -1;
            c = &own;
        }
    }
    ret = run(out, c, 0, c->n, &top, true, err);
    compiled_free(&own);
    if (ret < 0)
        return -1;
    return buf_check(out, "page", err);
}
