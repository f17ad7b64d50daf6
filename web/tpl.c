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
static int write_text(struct buf *out, struct str msgid, const struct scope *sc, struct err *err)
{
    char id[1024];
    const char *t, *p;

    if (msgid.len >= sizeof(id))
        return err_set(err, ERR_INTERNAL, "template text is too long");
    memcpy(id, msgid.ptr, msgid.len);
    id[msgid.len] = '\0';
    t = web_gettext(id);
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

static int render(struct buf *out, const char *p, const char *end, const struct scope *sc,
                  bool emit, struct err *err);

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

/* Finds the {{/name}} closing the section whose content starts at `p`, honouring nesting. */
static const char *section_end(const char *p, const char *end, struct str name, const char **after)
{
    int depth = 1;

    while (p < end) {
        const char *open = memmem(p, (size_t)(end - p), "{{", 2);
        const char *close;
        struct str tag;

        if (!open)
            return NULL;
        close = memmem(open + 2, (size_t)(end - open - 2), "}}", 2);
        if (!close)
            return NULL;
        tag = (struct str){ open + 3, (size_t)(close - open - 3) };
        if (open[2] == '#' || open[2] == '^') {
            if (str_eq(tag, name))
                depth++;
        } else if (open[2] == '/' && str_eq(tag, name)) {
            if (--depth == 0) {
                *after = close + 2;
                return open;
            }
        }
        p = close + 2;
    }
    return NULL;
}

static int render(struct buf *out, const char *p, const char *end, const struct scope *sc,
                  bool emit, struct err *err)
{
    while (p < end) {
        const char *open = memmem(p, (size_t)(end - p), "{{", 2);
        const char *close;
        bool triple;
        struct str name;
        const struct web_tpl_var *v;

        if (!open) {
            if (emit)
                buf_add(out, p, (size_t)(end - p));
            return 0;
        }
        if (emit)
            buf_add(out, p, (size_t)(open - p));
        triple = open + 2 < end && open[2] == '{';
        if (open + 2 < end && open[2] == '@')
            close = text_end(open + 3, end);
        else
            close = memmem(open, (size_t)(end - open), triple ? "}}}" : "}}", triple ? 3 : 2);
        if (!close)
            return err_set(err, ERR_INTERNAL, "unclosed template tag");
        name = (struct str){ open + (triple ? 3 : 2), (size_t)(close - open - (triple ? 3 : 2)) };
        p = close + (triple ? 3 : 2);
        if (!triple && name.len && name.ptr[0] == '@') {
            if (emit && write_text(out, (struct str){ name.ptr + 1, name.len - 1 }, sc, err) < 0)
                return -1;
            continue;
        }
        if (!triple && name.len && (name.ptr[0] == '#' || name.ptr[0] == '^')) {
            bool inverted = name.ptr[0] == '^';
            const char *after = NULL, *body_end;
            bool on;

            name.ptr++;
            name.len--;
            body_end = section_end(p, end, name, &after);
            if (!body_end)
                return err_set(err, ERR_INTERNAL, "unclosed template section '%.*s'", (int)name.len,
                               name.ptr);
            v = find(sc, name);
            if (v && v->kind == TPL_LIST && !inverted) {
                /* once per item, the item's variables first; nothing for an empty list */
                for (size_t i = 0; i < v->count; i++) {
                    struct scope item = { v->items + i * v->width, v->width, sc };

                    if (render(out, p, body_end, &item, emit, err) < 0)
                        return -1;
                }
                /* an empty list's section is skipped whole: its items' variables do not exist */
                p = after;
                continue;
            }
            on = v && (v->kind == TPL_LIST ? v->count > 0 : v->value.ptr && v->value.len);
            if (inverted)
                on = !on;
            if (render(out, p, body_end, sc, emit && on, err) < 0)
                return -1;
            p = after;
            continue;
        }
        if (!triple && name.len && name.ptr[0] == '/')
            return err_set(err, ERR_INTERNAL, "template section closed without opening");
        v = find(sc, name);
        if (!v)
            return err_set(err, ERR_INTERNAL, "template variable '%.*s' is not set", (int)name.len,
                           name.ptr);
        if (emit && write_var(out, v, triple, err) < 0)
            return -1;
    }
    return 0;
}

int web_tpl_render(struct buf *out, const char *tpl, const struct web_tpl_var *vars, size_t nvars,
                   struct err *err)
{
    struct scope top = { vars, nvars, NULL };

    if (render(out, tpl, tpl + strlen(tpl), &top, true, err) < 0)
        return -1;
    return buf_check(out, "page", err);
}
