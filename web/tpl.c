/*
 * web/tpl.c - a small mustache-like renderer that escapes by default.
 *
 * Debian 12 packages no C template engine, so web/ keeps this one. Values
 * are escaped for HTML text and quoted attributes (& < > " '), URLs must be
 * http(s) or relative, and unescaped output needs both a triple mustache in
 * the template and a variable made with web_tpl_raw_unsafe(): neither alone
 * is enough (cf. h2o_htmlescape and Go's html/template "#ZgotmplZ").
 */
#include "base/base.h"
#include "web/web_int.h"

#include <strings.h>

struct web_tpl_var web_tpl_text(const char *name, const char *value)
{
    return (struct web_tpl_var){ name, str_from_cstr(value), TPL_TEXT };
}

struct web_tpl_var web_tpl_url(const char *name, const char *value)
{
    return (struct web_tpl_var){ name, str_from_cstr(value), TPL_URL };
}

struct web_tpl_var web_tpl_raw_unsafe(const char *name, const char *markup)
{
    return (struct web_tpl_var){ name, str_from_cstr(markup), TPL_RAW };
}

static const struct web_tpl_var *find(const struct web_tpl_var *vars, size_t n, struct str name)
{
    for (size_t i = 0; i < n; i++) {
        if (str_eq_cstr(name, vars[i].name))
            return &vars[i];
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

static int write_var(struct buf *out, const struct web_tpl_var *v, bool raw, struct err *err)
{
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

static int render(struct buf *out, const char *p, const char *end, const struct web_tpl_var *vars,
                  size_t nvars, bool emit, struct err *err);

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

static int render(struct buf *out, const char *p, const char *end, const struct web_tpl_var *vars,
                  size_t nvars, bool emit, struct err *err)
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
        close = memmem(open, (size_t)(end - open), triple ? "}}}" : "}}", triple ? 3 : 2);
        if (!close)
            return err_set(err, ERR_INTERNAL, "unclosed template tag");
        name = (struct str){ open + (triple ? 3 : 2), (size_t)(close - open - (triple ? 3 : 2)) };
        p = close + (triple ? 3 : 2);
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
            v = find(vars, nvars, name);
            on = v && v->value.ptr && v->value.len;
            if (inverted)
                on = !on;
            if (render(out, p, body_end, vars, nvars, emit && on, err) < 0)
                return -1;
            p = after;
            continue;
        }
        if (!triple && name.len && name.ptr[0] == '/')
            return err_set(err, ERR_INTERNAL, "template section closed without opening");
        v = find(vars, nvars, name);
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
    if (render(out, tpl, tpl + strlen(tpl), vars, nvars, true, err) < 0)
        return -1;
    return buf_check(out, "page", err);
}
