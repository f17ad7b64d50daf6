/*
 * web/pages.c - the pages and small endpoints: the landing page a launch
 * redirects to, the home page, the XML configuration, health, the stylesheet.
 *
 * The landing page finds its session by the token in the URL (`s`), never by
 * a cookie: inside an LMS iframe with third-party cookies blocked the URL is
 * all the browser keeps. The token is the session's id and a secret of 32
 * random bytes in hex; the database only knows the secret's SHA-256.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

static const char style_css[] =
    ":root{--fg:#1b1f24;--muted:#4a5360;--bg:#f6f7f9;--card:#fff;--accent:#0b5cad;"
    "--line:#d9dde3;--ok:#1a6b35;--warn:#8a4b00;--bad:#a3161a}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
    "color:var(--fg);background:var(--bg)}"
    ".card{max-width:44rem;margin:1.5rem auto;padding:1.25rem 1.5rem;background:var(--card);"
    "border:1px solid var(--line);border-radius:8px}"
    ".wrap{max-width:52rem;margin:0 auto;padding:0 1rem}"
    ".top{background:var(--card);border-bottom:1px solid var(--line);padding:.5rem 0}"
    ".top .who{margin:.25rem 0}.top nav a{display:inline-block;margin:.25rem 1rem .25rem 0}"
    ".top nav a[aria-current]{font-weight:700;text-decoration:none;color:var(--fg)}"
    ".top dl.meta{display:flex;flex-wrap:wrap;gap:0 .4rem;margin:.25rem 0;font-size:.9rem}"
    ".meta dd{margin-right:1rem}.meta dt::after{content:\":\"}"
    "main{padding-top:1rem;padding-bottom:2rem}"
    "h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}"
    "h3{font-size:1rem;margin:0 0 .25rem}"
    "p{margin:.5rem 0}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:1rem 0}"
    "dt{color:var(--muted)}dd{margin:0}"
    ".role{display:inline-block;padding:.1rem .6rem;border:1px solid var(--accent);"
    "border-radius:999px;color:var(--accent);font-weight:600}"
    "code{background:var(--bg);padding:.1rem .3rem;border-radius:4px;word-break:break-all}"
    "a{color:var(--accent)}"
    ".skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:var(--card);"
    "padding:.25rem .5rem;z-index:1}"
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);"
    "white-space:nowrap}"
    ".notice{padding:.5rem .75rem;border-left:4px solid var(--ok);background:var(--card)}"
    ".badge{display:flex;gap:1rem;align-items:flex-start;background:var(--card);"
    "border:1px solid var(--line);border-radius:8px;padding:1rem;margin:.75rem 0}"
    ".badge img{flex:none;border-radius:4px}.badge>div{min-width:0;flex:1}"
    ".badge.pending{border-left:4px solid var(--warn)}"
    ".badge.revoked{border-left:4px solid var(--bad);background:#eef0f3}"
    ".badge.revoked img{filter:grayscale(1);opacity:.55}"
    ".summary{font-size:1.05rem;font-weight:600}"
    ".share{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-top:.5rem}"
    ".small{font-size:.9rem;padding:.2rem .7rem}.menu{position:relative}"
    ".menu>summary{list-style:none;display:inline-block}.menu>summary::-webkit-details-marker"
    "{display:none}.menu>summary::after{content:\" \\25BE\"}"
    ".menu-items{position:absolute;z-index:2;left:0;top:100%;margin-top:.25rem;min-width:14rem;"
    "background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.25rem 0;"
    "box-shadow:0 4px 12px rgba(0,0,0,.15)}"
    ".menu-items a,.menu-items button{display:block;width:100%;text-align:left;padding:.4rem .8rem;"
    "font:inherit;background:none;border:0;border-radius:0;color:var(--accent);"
    "text-decoration:underline;cursor:pointer}"
    ".badge.earned p.desc{margin:.25rem 0}"
    ".badge.earned{border-left:4px solid var(--ok)}"
    ".dates,.where,.hint{color:var(--muted);font-size:.9rem}"
    ".share input{width:100%;max-width:24rem;font:inherit;padding:.25rem}"
    "button,.button{font:inherit;padding:.35rem .9rem;border:1px solid var(--accent);"
    "border-radius:6px;background:var(--accent);color:#fff;cursor:pointer}"
    "button:focus-visible,a:focus-visible,input:focus-visible,select:focus-visible,"
    "summary:focus-visible{outline:3px solid #f2a900;outline-offset:2px}"
    "input[type=number],input[type=email],input[type=text],input[type=search],select{font:inherit;"
    "padding:.25rem;max-width:100%}"
    "progress{width:10rem;max-width:100%;vertical-align:middle}"
    "textarea{font:inherit;padding:.25rem;width:100%;max-width:40rem}"
    ".filters{display:flex;flex-wrap:wrap;gap:0 1.5rem;align-items:flex-end}"
    ".scroll{overflow-x:auto;max-width:100%}.list caption{text-align:left;font-weight:600;"
    "padding:.25rem 0}"
    "summary{cursor:pointer;color:var(--accent)}"
    "table.list{border-collapse:collapse;width:100%;background:var(--card)}"
    ".list th,.list td{border-bottom:1px solid var(--line);padding:.4rem;text-align:left;"
    "vertical-align:top}"
    ".list img{vertical-align:middle}"
    "@media (max-width:30rem){.card{margin:0;border-radius:0;border-width:0 0 1px}"
    "dl{grid-template-columns:1fr}.badge{flex-direction:column}"
    /* an earned badge stays one compact card on a phone: small image beside, two lines */
    ".badge.earned{flex-direction:row;gap:.75rem;padding:.75rem}"
    ".badge.earned img{width:56px;height:56px}.badge.earned p.desc{display:-webkit-box;"
    "-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}"
    ".list thead{display:none}.list td{display:block;border:0;padding:.2rem}"
    ".list tr{display:block;border-bottom:1px solid var(--line);padding:.4rem 0}"
    ".list tbody th{display:block;border:0;padding:.2rem}"
    ".list td[data-label]::before{content:attr(data-label) \": \";color:var(--muted)}"
    /* the awards table's headers stay on a phone: one row of sort links */
    ".list.awards thead{display:block}.list.awards thead tr{display:flex;flex-wrap:wrap;"
    "gap:0 1rem;border:0;padding:0 0 .25rem}.list.awards thead th{border:0;padding:.2rem}"
    ".list.awards thead th:not([data-col]){display:none}}"
    "form.edit fieldset{min-width:0;border:1px solid var(--line);border-radius:8px;background:var(--card);"
    "margin:1rem 0;padding:.5rem 1rem}legend{font-weight:600;padding:0 .25rem}"
    "form.edit label{display:block}form.edit label.inline{display:inline}"
    "input[type=url],input[type=file]{font:inherit;padding:.25rem;width:100%;"
    "max-width:36rem}form.edit input[type=text]{width:100%;max-width:36rem}"
    "button.secondary,.button.secondary{background:var(--card);color:var(--accent)}"
    "button.danger{background:var(--bad);border-color:var(--bad)}"
    /* the awards table: the page's width, sortable headers, states as chips in words */
    ".wide .wrap{max-width:96rem}"
    ".list th[data-col] a{color:inherit;text-decoration:none;white-space:nowrap}"
    ".list th[data-col] a:hover{text-decoration:underline}"
    ".list th[data-col] a::after{content:\" \\2195\";color:var(--muted)}"
    ".list th[aria-sort=ascending] a::after{content:\" \\25B2\";color:inherit}"
    ".list th[aria-sort=descending] a::after{content:\" \\25BC\";color:inherit}"
    ".chip{display:inline-block;padding:0 .55rem;border:1px solid;border-radius:999px;"
    "font-size:.85rem;font-weight:600;white-space:nowrap}"
    ".chip-issued{color:var(--ok);background:#e6f3ea}"
    ".chip-failed{color:var(--bad);background:#fbe9e9}"
    ".chip-needs_email,.chip-queued{color:var(--warn);background:#fdf3e3}"
    ".chip-issuing{color:var(--accent);background:#e7f0fa}"
    ".chip-revoked{color:var(--muted);background:#eceef1}"
    ".list a.public{white-space:nowrap}"
    "details.evidence summary{font-size:.9rem}details.evidence textarea{margin-top:.25rem}"
    ".error{padding:.5rem .75rem;border-left:4px solid var(--bad);background:var(--card)}"
    ".dryrun{background:var(--card);border:1px solid var(--line);border-radius:8px;"
    "padding:.25rem 1rem}.button{display:inline-block;text-decoration:none}"
    /*
     * the editor: a rule's fields beneath its radio button, hidden while
     * another rule is chosen where :has() is known (elsewhere all show);
     * alignments as rows of fields
     */
    "form.edit fieldset fieldset{border:0;margin:.5rem 0;padding:0}"
    ".sub{margin:0 0 .5rem 1.6rem;padding-left:.75rem;border-left:3px solid var(--line)}"
    ".rule{margin:.35rem 0}"
    "@supports selector(:has(*)){.rule:not(:has(>input:checked))>.rule-fields{display:none}}"
    ".rule-fields p{margin:.35rem 0}"
    "details.aligns{background:var(--card);border:1px solid var(--line);border-radius:8px;"
    "margin:1rem 0;padding:.5rem 1rem}details.aligns>summary{font-weight:600}"
    "form.edit fieldset.align{border-top:1px solid var(--line);border-radius:0;padding-top:.25rem}"
    ".al-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:0 1rem}"
    ".align p{margin:.25rem 0}form.edit .align input{width:100%}\n";

/*
 * A file built into the program, cacheable for `cache` ("public, max-age=N");
 * images with WEB_IMAGE_CSP.
 */
static void reply_static(struct req *r, const char *type, const char *data, size_t len,
                         const char *cache)
{
    const char *hdrs[] = { "Cache-Control", cache,
                           strncmp(type, "image/", 6) == 0 ? "Content-Security-Policy" : NULL,
                           WEB_IMAGE_CSP, NULL };

    web_reply(r, 200, type, xmemdupz(data, len), len, hdrs);
}

void web_route_style(struct req *r)
{
    reply_static(r, "text/css; charset=utf-8", style_css, sizeof(style_css) - 1,
                 "public, max-age=3600");
}

/* The tool's icon: a rosette in the accent colour, 32x32 user units. */
static const char icon_svg[] =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\" width=\"32\" height=\"32\">"
    "<path d=\"M10 19 6 30l5-2 3 4 3-10zM22 19l4 11-5-2-3 4-3-10z\" fill=\"#0b5cad\"/>"
    "<circle cx=\"16\" cy=\"13\" r=\"11\" fill=\"#0b5cad\"/>"
    "<circle cx=\"16\" cy=\"13\" r=\"7\" fill=\"none\" stroke=\"#fff\" stroke-width=\"2\"/>"
    "</svg>\n";

void web_route_icon(struct req *r)
{
    reply_static(r, "image/svg+xml", icon_svg, sizeof(icon_svg) - 1, "public, max-age=86400");
}

void web_route_default_image(struct req *r)
{
    reply_static(r, "image/svg+xml", awards_default_image_svg, strlen(awards_default_image_svg),
                 "public, max-age=86400");
}

static void reply_html(struct req *r, unsigned status, const char *tpl,
                       const struct web_tpl_var *vars, size_t n)
{
    struct buf b = BUF_INIT(LIMIT_PAGE_LEN);
    struct err err = ERR_INIT;
    size_t len;
    char *body;

    if (web_tpl_render(&b, tpl, vars, n, &err) < 0) {
        buf_release(&b);
        web_reply_err(r, &err);
        return;
    }
    body = buf_detach(&b, &len);
    web_reply(r, status, "text/html; charset=utf-8", body, len, NULL);
}

/* The small script of the pages: "copy link" buttons. No inline script anywhere (CSP). */
static const char page_js[] =
    "'use strict';\n"
    "document.addEventListener('click', function (e) {\n"
    "  var b = e.target.closest && e.target.closest('button[data-copy]');\n"
    "  if (!b) return;\n"
    "  var done = function () {\n"
    "    var s = (b.closest('.share') || b.parentNode).querySelector('.copied');\n"
    "    if (s) s.textContent = b.getAttribute('data-copied');\n"
    "    var m = b.closest('details'); if (m) m.open = false;\n"
    "  };\n"
    "  var old = function () {\n"
    "    var i = document.createElement('textarea');\n"
    "    i.value = b.getAttribute('data-copy'); i.setAttribute('readonly', '');\n"
    "    i.className = 'sr'; document.body.appendChild(i); i.select();\n"
    "    try { document.execCommand('copy'); done(); } catch (x) {}\n"
    "    document.body.removeChild(i);\n"
    "  };\n"
    "  if (navigator.clipboard && window.isSecureContext)\n"
    "    navigator.clipboard.writeText(b.getAttribute('data-copy')).then(done, old);\n"
    "  else\n"
    "    old();\n"
    "});\n"
    /* a form's data-confirm, or that of the button that sent it */
    "document.addEventListener('submit', function (e) {\n"
    "  var b = e.submitter;\n"
    "  var m = (b && b.getAttribute('data-confirm')) || e.target.getAttribute('data-confirm');\n"
    "  if (m && !window.confirm(m)) e.preventDefault();\n"
    "});\n"
    /*
     * the badge editor: only the chosen rule's fields show, the others'
     * disabled so they are not posted; the image radio follows a file
     * chosen; alignment rows added and removed, their names kept 0..n-1
     */
    "(function () {\n"
    "  var form = document.querySelector('form.edit');\n"
    "  if (!form) return;\n"
    "  var rules = form.querySelectorAll('.rule > input[name=kind]');\n"
    "  var sync = function () {\n"
    "    rules.forEach(function (r) {\n"
    "      var f = r.parentNode.querySelector('.rule-fields');\n"
    "      if (!f) return;\n"
    "      f.hidden = !r.checked;\n"
    "      f.querySelectorAll('input, select, textarea').forEach(function (i) {\n"
    "        i.disabled = !r.checked;\n"
    "      });\n"
    "    });\n"
    "  };\n"
    "  rules.forEach(function (r) { r.addEventListener('change', sync); });\n"
    "  sync();\n"
    "  var file = form.querySelector('#image'), up = form.querySelector('#image-upload');\n"
    "  if (file && up) file.addEventListener('change', function () {\n"
    "    if (file.files.length) up.checked = true;\n"
    "  });\n"
    "  form.querySelectorAll('input[name=image_choice]').forEach(function (c) {\n"
    "    c.addEventListener('change', function () {\n"
    "      if (c !== up && c.checked && file) file.value = '';\n"
    "    });\n"
    "  });\n"
    "  var box = form.querySelector('.al-rows');\n"
    "  if (!box) return;\n"
    "  var max = +box.getAttribute('data-max');\n"
    "  var add = form.querySelector('.al-add');\n"
    "  var renumber = function () {\n"
    "    var rows = box.querySelectorAll('fieldset.align');\n"
    "    rows.forEach(function (row, i) {\n"
    "      var lg = row.querySelector('legend');\n"
    "      lg.textContent = lg.textContent.replace(/\\d+/, String(i + 1));\n"
    "      row.querySelectorAll('[id], [for], [name]').forEach(function (e) {\n"
    "        ['id', 'for', 'name'].forEach(function (a) {\n"
    "          var v = e.getAttribute(a);\n"
    "          if (v) e.setAttribute(a, v.replace(/_\\d+$/, '_' + i));\n"
    "        });\n"
    "      });\n"
    "    });\n"
    "    add.hidden = rows.length >= max;\n"
    "  };\n"
    "  box.querySelectorAll('.al-remove').forEach(function (p) { p.hidden = false; });\n"
    "  box.addEventListener('click', function (e) {\n"
    "    var b = e.target.closest('.al-remove button');\n"
    "    if (!b) return;\n"
    "    var row = b.closest('fieldset.align');\n"
    "    var next = row.nextElementSibling || row.previousElementSibling;\n"
    "    if (box.querySelectorAll('fieldset.align').length > 1) row.remove();\n"
    "    else row.querySelectorAll('input').forEach(function (i) { i.value = ''; });\n"
    "    renumber();\n"
    "    var f = (next && next.isConnected ? next : box).querySelector('input');\n"
    "    if (f) f.focus();\n"
    "  });\n"
    "  add.querySelector('button').addEventListener('click', function () {\n"
    "    var rows = box.querySelectorAll('fieldset.align');\n"
    "    if (rows.length >= max) return;\n"
    "    var row = rows[rows.length - 1].cloneNode(true);\n"
    "    row.querySelectorAll('input').forEach(function (i) { i.value = ''; });\n"
    "    box.appendChild(row);\n"
    "    renumber();\n"
    "    row.querySelector('input').focus();\n"
    "  });\n"
    "  renumber();\n"
    "})();\n"
    /*
     * The awards table (web/awards.c), when it holds every matching award
     * (data-complete): a header sorts in place by the keys its cells carry
     * in data-sort, as the server does (ASCII case folded names, a state's
     * rank, ISO dates; ties newest first), and the learner search filters
     * the rows as one types. Otherwise the links and the form go to the
     * server, as without a script.
     */
    "(function () {\n"
    "  var table = document.querySelector('table.awards[data-complete]');\n"
    "  if (!table) return;\n"
    "  var body = table.tBodies[0];\n"
    "  var fold = function (s) {\n"
    "    return (s || '').replace(/[A-Z]/g, function (c) { return c.toLowerCase(); });\n"
    "  };\n"
    "  var key = function (tr, i, type) {\n"
    "    var v = tr.cells[i].getAttribute('data-sort') || '';\n"
    "    return type === 'number' ? Number(v) : type === 'text' ? fold(v) : v;\n"
    "  };\n"
    "  var id = function (tr) { return Number(tr.getAttribute('data-award')); };\n"
    "  var back = function (name, v) {\n"
    "    document.querySelectorAll('input[name=\"' + name + '\"]').forEach(function (i) {\n"
    "      i.value = v;\n"
    "    });\n"
    "  };\n"
    "  table.tHead.addEventListener('click', function (e) {\n"
    "    var a = e.target.closest('th[data-col] a');\n"
    "    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;\n"
    "    e.preventDefault();\n"
    "    var th = a.parentNode, i = th.cellIndex, type = th.getAttribute('data-type');\n"
    "    var desc = th.getAttribute('aria-sort') === 'ascending', here = a.href;\n"
    "    var rows = Array.prototype.slice.call(body.rows);\n"
    "    rows.sort(function (x, y) {\n"
    "      var kx = key(x, i, type), ky = key(y, i, type);\n"
    "      if (kx < ky) return desc ? 1 : -1;\n"
    "      if (kx > ky) return desc ? -1 : 1;\n"
    "      return id(y) - id(x);\n"
    "    });\n"
    "    rows.forEach(function (tr) { body.appendChild(tr); });\n"
    "    th.parentNode.querySelectorAll('th[data-col]').forEach(function (h) {\n"
    "      var l = h.querySelector('a'), u = new URL(l.href);\n"
    "      if (h === th) h.setAttribute('aria-sort', desc ? 'descending' : 'ascending');\n"
    "      else h.removeAttribute('aria-sort');\n"
    "      u.searchParams.set('dir', h === th && !desc ? 'desc' : 'asc');\n"
    "      l.href = u.href;\n"
    "    });\n"
    "    back('back_sort', th.getAttribute('data-col'));\n"
    "    back('back_dir', desc ? 'desc' : 'asc');\n"
    "    if (window.history && history.replaceState) history.replaceState(null, '', here);\n"
    "  });\n"
    "  var q = document.getElementById('f-q'), shown = document.getElementById('awards-shown');\n"
    "  if (!q) return;\n"
    "  q.addEventListener('input', function () {\n"
    "    var s = fold(q.value.replace(/^ +| +$/g, '')), n = 0;\n"
    "    Array.prototype.forEach.call(body.rows, function (tr) {\n"
    "      var who = tr.cells[1];\n"
    "      var hit = !s || fold(who.getAttribute('data-sort')).indexOf(s) >= 0 ||\n"
    "        fold(who.getAttribute('data-uid')).indexOf(s) >= 0;\n"
    "      tr.hidden = !hit;\n"
    "      /* a row out of sight is not revoked or retried by the form */\n"
    "      tr.querySelectorAll('input, button').forEach(function (c) { c.disabled = !hit; });\n"
    "      if (hit) n++;\n"
    "    });\n"
    "    if (shown) shown.textContent = String(n);\n"
    "  });\n"
    "})();\n";

void web_route_script(struct req *r)
{
    reply_static(r, "text/javascript; charset=utf-8", page_js, sizeof(page_js) - 1,
                 "public, max-age=3600");
}

static const char *const month_names[12] = {
    N_("January"), N_("February"), N_("March"),     N_("April"),   N_("May"),      N_("June"),
    N_("July"),    N_("August"),   N_("September"), N_("October"), N_("November"), N_("December"),
};

const char *web_date(struct req *r, int64_t t)
{
    char ts[21];
    int y, m, d;

    if (!t)
        return "";
    util_iso8601(t, ts); /* YYYY-MM-DDThh:mm:ssZ, UTC */
    y = (ts[0] - '0') * 1000 + (ts[1] - '0') * 100 + (ts[2] - '0') * 10 + (ts[3] - '0');
    m = (ts[5] - '0') * 10 + (ts[6] - '0');
    d = (ts[8] - '0') * 10 + (ts[9] - '0');
    if (m < 1 || m > 12)
        return arena_memdupz(&r->arena, ts, 10);
    /* TRANSLATORS: day, month name, year: "7 December 2026" */
    return web_fmt(r, _("%d %s %d"), d, _(month_names[m - 1]), y);
}

const char *web_score(struct req *r, double score)
{
    return web_fmt(r, "%.2f", score);
}

const char *web_number(struct req *r, double x, int decimals)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), "%.*f", decimals, x);

    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return "?";
    if (memchr(tmp, '.', (size_t)n)) {
        while (n > 0 && tmp[n - 1] == '0')
            tmp[--n] = '\0';
        if (n > 0 && tmp[n - 1] == '.')
            tmp[--n] = '\0';
    }
    if (strcmp(tmp, "-0") == 0)
        return "0";
    /* the decimal sign of the language: English '.', Spanish ',' */
    if (web_lang_current() == WEB_LANG_ES) {
        char *dot = strchr(tmp, '.');

        if (dot)
            *dot = ',';
    }
    return arena_memdupz(&r->arena, tmp, strlen(tmp));
}

const char *web_grade(struct req *r, double score, double points_possible)
{
    if (points_possible > 0)
        return web_fmt(r, _("%s of %s points"), web_number(r, score * points_possible, 2),
                       web_number(r, points_possible, 2));
    /* TRANSLATORS: a percentage, "72%" */
    return web_fmt(r, _("%s%%"), web_number(r, score * 100, 1));
}

const char *web_percent_value(struct req *r, double score)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%.2f", score * 100);

    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return "";
    while (tmp[n - 1] == '0')
        tmp[--n] = '\0';
    if (tmp[n - 1] == '.')
        tmp[--n] = '\0';
    return arena_memdupz(&r->arena, tmp, (size_t)n);
}

int web_percent_parse(struct str s, double *out)
{
    uint64_t mant = 0, scale = 100;
    size_t i = 0, digits = 0, frac = 0;
    bool point = false;

    s = str_trim(s);
    if (s.len && s.ptr[s.len - 1] == '%')
        s = str_trim((struct str){ s.ptr, s.len - 1 });
    /*
     * digits [("." | ",") digits], at most 4 decimals: the value is
     * mant / scale with both exact integers, so the one division rounds as
     * strtod() rounds the fraction typed as 0..1 ("80" and "0.8" store the
     * same double)
     */
    for (; i < s.len; i++) {
        char c = s.ptr[i];

        if ((c == '.' || c == ',') && !point) {
            point = true;
            continue;
        }
        if (c < '0' || c > '9' || digits == 9 || (point && frac == 4))
            return -1;
        mant = mant * 10 + (uint64_t)(c - '0');
        digits += mant > 0 || point;
        if (point) {
            frac++;
            scale *= 10;
        }
    }
    if (i == 0 || (point && frac == 0) || mant > 100 * (scale / 100))
        return -1;
    *out = (double)mant / (double)scale;
    return 0;
}

/* BASE PATH?s=TOKEN[&m=NOTICE][&name=value...]: the one way a page's URL is written. */
static void page_url(struct buf *b, const char *base, const char *path, const struct web_sess *ws,
                     const char *notice, const char *const *params)
{
    buf_addstr(b, base);
    buf_addstr(b, path);
    buf_addch(b, '?');
    form_add_query_param(b, "s", str_from_cstr(ws->token));
    if (notice)
        form_add_query_param(b, "m", str_from_cstr(notice));
    for (size_t i = 0; params && params[i]; i += 2)
        form_add_query_param(b, params[i], str_from_cstr(params[i + 1]));
}

const char *web_page_url(struct req *r, const struct web_sess *ws, const char *path,
                         const char *const *params)
{
    struct buf b = BUF_INIT(LIMIT_URI_LEN);
    const char *u;

    page_url(&b, r->web->public_path, path, ws, NULL, params);
    u = b.toobig ? "#" : arena_memdupz(&r->arena, b.ptr, b.len);
    buf_release(&b);
    return u;
}

void web_back_to(struct req *r, const struct web_sess *ws, const char *path, const char *notice,
                 const char *const *params)
{
    struct buf b = BUF_INIT(LIMIT_URI_LEN);
    struct err err = ERR_INIT;

    page_url(&b, r->web->public_url, path, ws, notice, params);
    if (buf_check(&b, "redirect", &err) < 0)
        web_reply_err(r, &err);
    else
        web_reply_redirect(r, 303, b.ptr);
    buf_release(&b);
}

static const char layout_tpl[] =
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>{{title}}{{#course}} \xe2\x80\x94 {{course}}{{/course}}</title>"
    "<link rel=\"stylesheet\" href=\"{{css}}\"><script src=\"{{js}}\" defer></script></head>"
    "<body{{#wide}} class=\"wide\"{{/wide}}><a class=\"skip\" href=\"#main\">{{@Skip to the content}}</a>"
    "<header class=\"top\"><div class=\"wrap\">"
    "<p class=\"who\">{{@Signed in as}} <strong>{{name}}</strong> "
    "<span class=\"role\" data-view=\"{{view}}\">{{view_label}}</span></p>"
    "<dl class=\"meta\">"
    "<dt>{{@Course}}</dt><dd>{{#course}}{{course}}{{#course_label}} ({{course_label}}){{/course_label}}{{/course}}"
    "{{^course}}{{@launched outside a course}}{{/course}}</dd>"
    "<dt>{{@Seen as}}</dt><dd>{{view_label}}</dd>"
    "<dt>{{@Learning platform}}</dt><dd>{{consumer}}</dd>"
    "{{#mode}}<dt>{{@Track}}</dt><dd>{{mode}}</dd>{{/mode}}"
    "</dl>"
    "<nav aria-label=\"{{@Badge pages}}\">{{#nav}}<a href=\"{{href}}\"{{#current}} "
    "aria-current=\"page\"{{/current}}>{{label}}</a> {{/nav}}</nav>"
    "</div></header>"
    "<main id=\"main\" class=\"wrap\" tabindex=\"-1\"><h1>{{title}}</h1>"
    "{{#notice}}<p class=\"notice\" role=\"status\">{{notice}}</p>{{/notice}}"
    "{{{body}}}</main>"
    "{{#return_url}}<footer class=\"wrap\"><a href=\"{{return_url}}\"{{#new_window}} "
    "target=\"_top\"{{/new_window}}>{{@Back to the course}}</a></footer>{{/return_url}}"
    "</body></html>\n";

/* Flash messages after a form: a code in the URL, never text from it. */
static const char *notice_text(struct str code)
{
    static const struct {
        const char *code, *text;
    } notices[] = {
        { "saved", N_("Saved.") },
        { "created", N_("The badge was created.") },
        { "deleted", N_("The badge was deleted.") },
        { "archived", N_("The badge was archived: it stays with those who earned it, and "
                         "nobody new can earn it.") },
        { "restored", N_("The badge is offered again.") },
        { "awarded", N_("Done: the badges are on their way.") },
        { "revoked", N_("Revoked.") },
        { "retried", N_("Queued again.") },
        { "mailed", N_("We sent you an e-mail: follow the link in it to confirm your address.") },
        { "email", N_("Thank you: your address is saved and your badges are on their way.") },
        { "confirmed", N_("Your address is confirmed and your badges are on their way.") },
    };

    for (size_t i = 0; i < sizeof(notices) / sizeof(notices[0]); i++) {
        if (str_eq_cstr(code, notices[i].code))
            return _(notices[i].text);
    }
    return NULL;
}

void web_reply_page_body(struct req *r, const struct web_sess *ws, const char *title,
                         const char *body_tpl, const struct web_tpl_var *vars, size_t n)
{
    web_reply_page_status(r, ws, 200, title, body_tpl, vars, n);
}

/* The notice's counts, given with it: "n" awarded at once, "cleaned" parts removed from an SVG. */
static const char *notice_counts(struct req *r, const struct form *q, const char *notice)
{
    int64_t added = 0, cleaned = 0;

    str_to_i64(form_get(q, "n"), 0, INT64_MAX, &added);
    str_to_i64(form_get(q, "cleaned"), 0, INT64_MAX, &cleaned);
    if (added)
        notice =
            web_fmt(r, "%s %s", notice,
                    web_fmt(r, _("Learners who already met its rule are getting it now: %lld."),
                            (long long)added));
    if (cleaned)
        notice =
            web_fmt(r, "%s %s", notice,
                    web_fmt(r,
                            _("Parts of the SVG image that could run code or load other files were "
                              "removed: %lld."),
                            (long long)cleaned));
    return notice;
}

void web_reply_page_status(struct req *r, const struct web_sess *ws, unsigned status,
                           const char *title, const char *body_tpl, const struct web_tpl_var *vars,
                           size_t n)
{
    struct web *w = r->web;
    struct buf body = BUF_INIT(LIMIT_PAGE_LEN);
    struct err err = ERR_INIT;
    struct form q = { NULL, 0 };
    const char *notice = NULL;
    struct web_tpl_var *all = arena_alloc(&r->arena, st_mult(n + 24, sizeof(*all)));
    struct web_tpl_var nav[2 * 3];
    size_t k = 0, nn = 0;
    const char *view = ws->staff ? "instructor" : "learner";
    bool in_window = ws->s.document_target && (strcmp(ws->s.document_target, "window") == 0 ||
                                               strcmp(ws->s.document_target, "popup") == 0);

    if (str_present(r->query) &&
        form_parse(&r->arena, r->query.ptr, r->query.len, 32, &q, &err) == 0)
        notice = notice_text(form_get(&q, "m"));
    if (notice)
        notice = notice_counts(r, &q, notice);
    err_clear(&err);
    {
        const char *paths[2] = { "/badges", ws->staff ? "/badges/awards" : "/badges/all" };
        const char *labels[2] = { _("This course"), ws->staff ? _("Awards") : _("All my badges") };

        for (size_t i = 0; i < 2; i++) {
            nav[nn++] = web_tpl_url("href", web_page_url(r, ws, paths[i], NULL));
            nav[nn++] = web_tpl_text("label", labels[i]);
            nav[nn++] = web_tpl_text("current", str_eq_cstr(r->path, paths[i]) ? "1" : NULL);
        }
    }
    for (size_t i = 0; i < n; i++)
        all[k++] = vars[i];
    all[k++] = web_tpl_text("lang", web_lang_tag(ws->lang));
    all[k++] = web_tpl_url("css", w->css_url);
    all[k++] = web_tpl_url("js", w->js_url);
    all[k++] = web_tpl_text("s", ws->token);
    all[k++] = web_tpl_text("csrf", ws->csrf);
    all[k++] = web_tpl_text("title", title);
    all[k++] = web_tpl_text("course", ws->s.context_title && ws->s.context_title[0]
                                          ? ws->s.context_title
                                          : ws->s.lti_context_id);
    all[k++] = web_tpl_text("course_label", ws->s.context_label);
    /* a learner never sees their LMS's internal id: the LMS may not have shared a name */
    all[k++] = web_tpl_text("name", ws->s.user_name && ws->s.user_name[0] ? ws->s.user_name
                                    : ws->staff                           ? ws->s.lti_user_id
                                                : _("you (your learning platform shared no name)"));
    all[k++] = web_tpl_text("view", view);
    all[k++] = web_tpl_text("view_label", ws->staff ? _("Instructor") : _("Learner"));
    all[k++] = web_tpl_text("consumer", ws->s.consumer_name);
    all[k++] = web_tpl_text("mode", ws->s.mode);
    all[k++] = web_tpl_text("notice", notice);
    all[k++] = web_tpl_url("return_url", ws->s.return_url);
    all[k++] = web_tpl_text("new_window", in_window ? "1" : NULL);
    all[k++] = web_tpl_list("nav", nav, 3, nn / 3);
    if (web_tpl_render(&body, body_tpl, all, k, &err) < 0) {
        buf_release(&body);
        web_reply_err(r, &err);
        return;
    }
    /*
     * The body was rendered by web_tpl_render above, which escaped every
     * value in it: it is our markup, the one thing written unescaped.
     */
    all[k++] = web_tpl_raw_unsafe("body", body.ptr ? body.ptr : "");
    reply_html(r, status, layout_tpl, all, k);
    buf_release(&body);
}

void web_route_badges(struct req *r)
{
    struct web_sess *ws = web_session_from_query_or_reply(r);

    if (!ws)
        return;
    if (ws->staff)
        web_page_instructor(r, ws);
    else
        web_page_learner(r, ws, false);
}

static const char home_tpl[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>ltibadges</title><link rel=\"stylesheet\" href=\"{{css}}\"></head><body>"
    "<main class=\"card\"><h1>ltibadges</h1>"
    "<p>An LTI 1.1 tool that awards Open Badges. Add it to your learning platform as an "
    "external tool with the consumer key and secret your administrator created.</p>"
    "<dl><dt>Launch URL</dt><dd><code>{{launch}}</code></dd>"
    "<dt>XML configuration</dt><dd><a href=\"{{config}}\"><code>{{config}}</code></a></dd></dl>"
    "</main></body></html>\n";

void web_route_home(struct req *r)
{
    struct web *w = r->web;
    struct web_tpl_var vars[3];

    vars[0] = web_tpl_url("css", w->css_url);
    vars[1] = web_tpl_text("launch", w->launch_url);
    vars[2] = web_tpl_url("config", w->config_url);
    reply_html(r, 200, home_tpl, vars, 3);
}

void web_route_config_xml(struct req *r)
{
    struct web *w = r->web;
    struct buf b = BUF_INIT(64 * 1024);
    struct err err = ERR_INIT;
    struct lti_tool_info info;
    size_t len;
    char *body;

    info.title = w->cfg.tool_title;
    info.description = w->cfg.tool_description;
    info.launch_url = w->launch_url;
    info.icon_url = w->icon_url;
    info.domain = w->domain;
    info.vendor_url = w->public_url;
    if (lti_config_xml(&b, &info, &err) < 0) {
        buf_release(&b);
        web_reply_err(r, &err);
        return;
    }
    body = buf_detach(&b, &len);
    web_reply(r, 200, "application/xml; charset=utf-8", body, len, NULL);
}
