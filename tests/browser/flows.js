'use strict';
/*
 * tests/browser/flows.js CONFIG.json - the flows of ltibadges in a real
 * browser (Debian's chromium through playwright-core), run by run.py, which
 * starts the server and answers this script's requests (rpc below): sign a
 * launch, run the ltibadges CLI, read the database.
 *
 * Each flow is an entry of FLOWS: a name, the flows it builds on (needs) and
 * an async function of the shared state `t`. A failed check ends its flow
 * (and the flows that need it, which are not run); every failure is
 * printed, and the exit code is 1 when any flow failed (0: all passed).
 *
 * Adding a flow: write `async function myFlow(t)` with the helpers below
 * (launchAs, expectSection, badgeArticle, formFields, editBadge,
 * recordGrade, waitAward, runAxe, shot, check) and add it to FLOWS where
 * the state it needs exists. See "Flows still to come" near the end.
 */
const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const AXE_PATH = require.resolve('axe-core');
const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const T0 = Date.now();
const NAV_TIMEOUT = 30000; // a sanitized build answers slower
const AWARD_TIMEOUT = 30000;
const FLOW_TIMEOUT = 90000; // a flow that hangs fails alone

function log(...a) {
  console.log(`[${((Date.now() - T0) / 1000).toFixed(1).padStart(5)}s]`, ...a);
}

// ---- the driver (run.py), over stdout/stdin --------------------------------

const pending = new Map();
let rpcSeq = 0;
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  const p = pending.get(m.id);
  if (!p) return;
  pending.delete(m.id);
  if (m.ok) p.resolve(m.result);
  else p.reject(new Error(`driver: ${m.error}`));
});

function rpc(op, args = {}) {
  const id = ++rpcSeq;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    process.stdout.write('@@rpc ' + JSON.stringify({ id, op, ...args }) + '\n');
  });
}

async function cli(...args) {
  const r = await rpc('cli', { args: args.map(String) });
  if (r.rc !== 0)
    throw new CheckFailed(`ltibadges ${args.join(' ')} exited ${r.rc}: ${r.stderr.trim()}`);
  return r.stdout;
}

const query = (sql, ...args) => rpc('query', { sql, args });

// ---- checks ----------------------------------------------------------------

class CheckFailed extends Error {}

let nchecks = 0;
function check(cond, what, detail) {
  if (!cond) throw new CheckFailed(what + (detail !== undefined ? ` (got: ${fmt(detail)})` : ''));
  nchecks++;
  log('  ok', what);
}

function fmt(v) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s && s.length > 600 ? s.slice(0, 600) + '...' : s;
}

async function waitFor(fn, what, timeout = AWARD_TIMEOUT, every = 200) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new CheckFailed(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

// ---- helpers of the LMS and the administrator (through the driver) ----------

const escAttr = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/* The HTML an LMS writes to launch a tool: a form of hidden inputs posted to the launch URL. */
function launchFormHtml(signed, { target, autoSubmit } = {}) {
  const inputs = signed.fields
    .map(([k, v]) => `<input type="hidden" name="${escAttr(k)}" value="${escAttr(v)}">`)
    .join('');
  return (
    `<form method="post" action="${escAttr(signed.action)}"` +
    (target ? ` target="${escAttr(target)}"` : '') +
    `>${inputs}<noscript><button>Launch</button></noscript></form>` +
    (autoSubmit ? '<script>document.forms[0].submit();</script>' : '')
  );
}

/*
 * Launches the tool in a page of `context` as an LMS does: a page with the
 * signed form, submitted; waits for the 303 to /badges?s=... and the page.
 * `fields`: launch parameters (user_id, roles, context_id, ...; the rest
 * from ltitest.base_launch), signed by the driver right now.
 * Returns { page, url, token, origin } (origin: what the browser sent).
 */
async function launchAs(context, fields, { page } = {}) {
  const signed = await rpc('sign', { fields });
  page = page || (await newPage(context));
  await page.setContent(launchFormHtml(signed));
  const landed = page.waitForResponse((r) => /\/badges\?s=/.test(r.url()), { timeout: NAV_TIMEOUT });
  await page.evaluate(() => document.forms[0].submit());
  const resp = await landed;
  await page.waitForURL(resp.url());
  await page.waitForLoadState('load');
  const post = resp.request().redirectedFrom();
  check(post && post.method() === 'POST' && post.url() === signed.action,
    `launch of ${fields.user_id} (${fields.roles}) was a POST to the launch URL`, post && post.url());
  const postResp = await post.response();
  check(postResp.status() === 303, 'the launch answered 303', postResp.status());
  check(resp.status() === 200, 'the page after the launch answered 200', resp.status());
  const url = page.url();
  const token = new URL(url).searchParams.get('s');
  check(/^[1-9][0-9]*-[0-9a-f]{64}$/.test(token || ''), 'the page URL carries the session token', url);
  const origin = await post.headerValue('origin');
  return { page, url, token, origin };
}

/* The <section aria-labelledby=id>; checks it exists and (if given) contains `text`. */
async function expectSection(page, id, text) {
  const sec = page.locator(`section[aria-labelledby="${id}"]`);
  check((await sec.count()) === 1, `the page has the section ${id}`);
  const inner = await sec.innerText();
  if (text !== undefined) {
    const ok = text instanceof RegExp ? text.test(inner) : inner.includes(text);
    check(ok, `section ${id} shows ${text}`, inner);
  }
  return sec;
}

/* The badge <article> named `name` in section `id` (checked to be there). */
async function badgeArticle(page, id, name) {
  const art = page
    .locator(`section[aria-labelledby="${id}"] article.badge`)
    .filter({ has: page.locator('h3', { hasText: name }) });
  check((await art.count()) === 1, `"${name}" is under ${id}`,
    await page.locator(`section[aria-labelledby="${id}"]`).innerText().catch(() => '(no section)'));
  return art;
}

/* name -> value of the inputs of the form posting to an action ending with `action`. */
async function formFields(page, action) {
  return page.evaluate((action) => {
    const f = [...document.forms].find((x) => x.getAttribute('action').endsWith(action));
    if (!f) return null;
    const out = {};
    for (const el of f.elements) if (el.name) out[el.name] = el.value;
    return out;
  }, action);
}

const recordGrade = (user, context, link, score) =>
  cli('grade', 'record', '--consumer', cfg.consumerKey, '--context', context, '--user', user,
    '--resource-link', link, '--score', score);

async function awardsOf(user, slug) {
  const all = JSON.parse(await cli('award', 'list', '--json'));
  return all.filter((a) => a.user === user && (!slug || a.badge === slug));
}

async function waitAward(user, slug, state) {
  return waitFor(async () => {
    const a = (await awardsOf(user, slug))[0];
    return a && a.state === state ? a : null;
  }, `the award of ${slug} to ${user} to be ${state}`);
}

// ---- the browser -----------------------------------------------------------

const cspErrors = [];
/* A page whose CSP violations and script errors are recorded (and fail the run). */
async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(NAV_TIMEOUT);
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text()))
      cspErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => cspErrors.push(`${page.url()}: script error ${e.message}`));
  return page;
}

async function shot(page, name) {
  const file = path.join(cfg.shots, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  log('  screenshot', file);
}

/* axe-core on the page as it is; prints every violation, returns the serious and critical ones. */
async function runAxe(page, label) {
  await page.addScriptTag({ path: AXE_PATH });
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return {
      version: r.testEngine.version,
      passes: r.passes.length,
      violations: r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => ({
          target: n.target.join(' '),
          html: n.html.slice(0, 160),
          summary: (n.failureSummary || '').split('\n').slice(1, 3).join(' ').trim(),
        })),
      })),
    };
  });
  log(`  axe-core ${res.version} on the ${label} page: ${res.violations.length} violation(s)`);
  for (const v of res.violations) {
    log(`    [${v.impact}] ${v.id}: ${v.help}`);
    for (const n of v.nodes) log(`        ${n.target}  ${n.html}${n.summary ? '  -- ' + n.summary : ''}`);
  }
  return res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

// ---- a stand-in LMS on another origin, for the iframe flow --------------------

/*
 * Pages an LMS would serve, on 127.0.0.1 (port 0) and addressed as
 * http://localhost:PORT: another site than the tool's http://127.0.0.1:PORT.
 *   /lms/ID         an LMS page: an iframe named "tool" and the launch form
 *                   registered under ID, posted into it (target="tool")
 *   /embed?src=URL  a page with an iframe of URL
 *   /probe/set      sets a cookie (SameSite=None; Secure); /probe/get shows the
 *                   cookies it was sent: is the browser blocking third-party cookies?
 */
async function startLms() {
  const launches = new Map();
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const html = (body) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>LMS</title>
<style>body{font:14px sans-serif;margin:1rem}iframe{width:860px;height:900px;border:1px solid #888}</style>
</head><body><h1>Stand-in LMS (${escAttr(req.headers.host)})</h1>${body}</body></html>`);
    };
    if (u.pathname.startsWith('/lms/') && launches.has(u.pathname.slice(5))) {
      html('<iframe name="tool" title="Badges tool"></iframe>' +
        launchFormHtml(launches.get(u.pathname.slice(5)), { target: 'tool', autoSubmit: true }));
    } else if (u.pathname === '/embed') {
      html(`<iframe title="Badges tool" src="${escAttr(u.searchParams.get('src'))}"></iframe>`);
    } else if (u.pathname === '/probe/set') {
      res.writeHead(200, { 'Set-Cookie': 'probe=1; SameSite=None; Secure; Path=/',
        'Content-Type': 'text/plain' });
      res.end('set');
    } else if (u.pathname === '/probe/get') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<p id="cookies">${escAttr(req.headers.cookie || 'none')}</p>`);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    server,
    origin: `http://localhost:${port}`,
    crossSite: `http://127.0.0.1:${port}`,
    register(id, signed) { launches.set(id, signed); },
    close: () => new Promise((r) => { server.close(r); server.closeAllConnections(); }),
  };
}

/* The first child frame of `page` (waits for it to exist). */
const childFrame = (page) =>
  waitFor(async () => page.mainFrame().childFrames()[0], 'the iframe', NAV_TIMEOUT, 100);

/* Whether a frame shows one of our pages (its <main> and the section heading `id`). */
async function frameShows(frame, id) {
  if (frame.isDetached() || !frame.url().startsWith(cfg.base + '/')) return false;
  const look = frame.evaluate((id) => !!document.getElementById(id) &&
    !!document.querySelector('main#main'), id).catch(() => false);
  // a refused frame (chrome-error://) may never give a context to evaluate in
  return withTimeout(look, 5000, 'reading the frame').catch(() => false);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`${what}: no end after ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(timer));
}

// ---- the flows ---------------------------------------------------------------

const COURSE = { context_id: 'course-browser-1', context_title: 'Browser Test Course',
  context_label: 'BT101', resource_link_id: 'final',
  resource_link_title: 'Final exam' };

const INSTRUCTOR = { ...COURSE, user_id: 'prof-1', roles: 'Instructor',
  lis_person_name_full: 'Professor Plum',
  lis_person_contact_email_primary: 'plum@example.edu' };

const LEARNER = { ...COURSE, user_id: 'learner-1', roles: 'Learner',
  lis_person_name_full: 'Ada Learner',
  lis_person_contact_email_primary: 'ada@example.edu' };

async function contextRow() {
  const rows = await query('SELECT badges_enabled, pass_mark, completion_link FROM contexts ' +
    'WHERE lti_context_id = ?', COURSE.context_id);
  return rows[0];
}

/* 1. The instructor turns badges on and sets the pass mark through the form. */
async function instructorSettings(t) {
  const { page, url, token, origin } = await launchAs(t.instructorCtx, INSTRUCTOR);
  log(`  the launch POST from the LMS page (about:blank) carried Origin: ${origin}`);
  t.instructor = { page, url, token };
  check(/Course settings/.test(await page.locator('main').innerText()), 'the page shows "Course settings"');
  check(await page.locator('#backend-status').count() === 1, 'the page has #backend-status');
  const f = await formFields(page, '/badges/settings');
  check(f && f.s === token && /^[0-9a-f]{64}$/.test(f.csrf || ''),
    'the settings form carries hidden s (this session) and csrf', f);
  t.instructor.csrf = f.csrf;
  check(!(await page.locator('#enabled').isChecked()), 'badges start switched off');
  const options = await page.locator('#completion_link option').evaluateAll((os) =>
    os.map((o) => [o.value, o.textContent]));
  check(options.some(([v, l]) => v === COURSE.resource_link_id && l === COURSE.resource_link_title),
    'the completion select offers the launch\'s activity by its title', options);

  await page.locator('#enabled').check();
  await page.locator('#pass_percent').fill('60');
  const saved = page.waitForResponse((r) => /\/badges\?s=.*m=saved/.test(r.url()));
  await page.locator('form[action$="/badges/settings"] button[type="submit"]').click();
  const resp = await saved;
  await page.waitForLoadState('load');
  const post = resp.request().redirectedFrom();
  check(post && post.method() === 'POST' && (await post.response()).status() === 303,
    'the form POST answered 303 back to the page');
  check((await page.locator('p.notice[role="status"]').innerText()).trim() === 'Saved.',
    'the page shows the notice "Saved."');
  check(await page.locator('#enabled').isChecked(), 'the checkbox is checked after saving');

  await page.goto(url); // the page again, without the notice
  check(await page.locator('p.notice').count() === 0, 'no notice on a fresh load');
  check(await page.locator('#enabled').isChecked(), 'the checkbox stays checked on reload');
  check(await page.locator('#pass_percent').inputValue() === '60', 'the pass mark reads 60 (%)',
    await page.locator('#pass_percent').inputValue());
  const row = await contextRow();
  check(row.badges_enabled === 1 && Math.abs(row.pass_mark - 0.6) < 1e-9,
    'the database has badges on, pass mark 0.6', row);
  await shot(page, '01-instructor-settings-saved');
}

/*
 * 1b. The instructor creates the course's badges in the editor: one with an
 * uploaded PNG, one with an uploaded SVG (sanitized on the way in), after a
 * dry run of the rule.
 */
async function editBadge(t, { name, description, image, threshold }) {
  const page = t.instructor.page;
  await page.goto(t.instructor.url);
  await page.locator('a', { hasText: 'Create a badge' }).click();
  await page.waitForLoadState('load');
  check(/\/badges\/edit\?s=/.test(page.url()), 'the "Create a badge" link opens the editor', page.url());
  await page.locator('#name').fill(name);
  await page.locator('#description').fill(description);
  await page.locator('#image').setInputFiles(image);
  await page.locator('#kind-score').check();
  await page.locator('#threshold').fill(threshold);
  await page.locator('#criteria').fill(`Score at least ${threshold}% in the course.`);
  await page.locator('#tags').fill('browser, test');
  // the dry run first: nobody has a grade yet
  await page.locator('button[value="dryrun"]').click();
  await page.waitForLoadState('load');
  await expectSection(page, 'dry-h', 'Nobody meets this rule yet');
  check(await page.locator('#name').inputValue() === name, 'the dry run keeps what was typed');
  // a dry run does not keep the file: chosen again, then saved
  await page.locator('#image').setInputFiles(image);
  const created = page.waitForResponse((r) => /\/badges\?s=.*m=created/.test(r.url()));
  await page.locator('button[value="save"]').click();
  const resp = await created;
  await page.waitForLoadState('load');
  const slug = new URL(resp.url()).searchParams.get('b');
  check(/^[a-z0-9-]+$/.test(slug || ''), `"${name}" was created (${slug})`, resp.url());
  check(/created/.test(await page.locator('p.notice').innerText()), 'the page says it was created');
  const row = page.locator(`tr[data-slug="${slug}"]`);
  check(await row.count() === 1, `"${name}" is listed on the course page`);
  check(await row.locator('img').evaluate((i) => i.complete && i.naturalWidth > 0),
    `the image of "${name}" loads`);
  return slug;
}

async function instructorCreatesBadges(t) {
  const page = t.instructor.page;
  t.badges = {
    score: { name: 'Score Star', slug: await editBadge(t, { name: 'Score Star',
      description: 'Scored at least 80% in the course.', image: cfg.images.png, threshold: '80' }) },
    svg: { name: 'Top Marks', slug: await editBadge(t, { name: 'Top Marks',
      description: 'Scored at least 95%: an SVG badge.', image: cfg.images.svg, threshold: '95' }) },
  };
  const listed = JSON.parse(await cli('badge', 'list', '--json'));
  const png = listed.find((b) => b.slug === t.badges.score.slug);
  const svg = listed.find((b) => b.slug === t.badges.svg.slug);
  check(png && png.image_type === 'image/png' && png.context === COURSE.context_id,
    'the PNG badge is stored as image/png for the course', png);
  check(svg && svg.image_type === 'image/svg+xml', 'the SVG badge is stored as image/svg+xml', svg);
  check(JSON.stringify(png.tags) === '["browser","test"]', 'the tags were saved', png.tags);
  const served = await t.instructorCtx.request.get(`${cfg.base}/ob/v2/badges/${t.badges.svg.slug}/image`);
  check(served.status() === 200 && /<circle/.test(await served.text()),
    'the SVG is served back, drawing kept', served.status());
  // the editor of a saved badge shows its values, and axe finds nothing serious in it
  await page.locator(`tr[data-slug="${t.badges.score.slug}"] a`).click();
  await page.waitForLoadState('load');
  check(await page.locator('#threshold').inputValue() === '80', 'the editor shows the rule back in percent',
    await page.locator('#threshold').inputValue());
  t.editorUrl = page.url();
  await shot(page, '01b-instructor-badge-editor');
  const axePage = await t.axeCtx.newPage();
  await axePage.goto(t.editorUrl);
  const serious = await runAxe(axePage, 'badge editor');
  await axePage.close();
  check(serious.length === 0, 'axe-core: no serious or critical violation in the editor',
    serious.map((v) => v.id));
  await page.goto(t.instructor.url);
  await shot(page, '01c-instructor-badges-created');
}

/* 2. The learner: the badges made in 1b to earn, earned after a grade, verify, download, revoked. */
async function learnerBadges(t) {
  const { page, url, token } = await launchAs(t.learnerCtx, LEARNER);
  t.learner = { page, url, token };
  await expectSection(page, 'avail-h', 'Badges you can earn');
  for (const b of Object.values(t.badges)) await badgeArticle(page, 'avail-h', b.name);
  const scoreAvail = await badgeArticle(page, 'avail-h', t.badges.score.name);
  const rule = await scoreAvail.locator('p.rule').innerText();
  check(/How to earn it:.*score of at least 80%/.test(rule), 'the rule in words (80%)', rule);
  await expectSection(page, 'earned-h', 'You have not earned a badge here yet.');

  await recordGrade(LEARNER.user_id, COURSE.context_id, COURSE.resource_link_id, '0.9');
  const award = await waitAward(LEARNER.user_id, t.badges.score.slug, 'issued');
  await page.reload();
  const earned = await badgeArticle(page, 'earned-h', t.badges.score.name);
  check(/Issued on \d{1,2} [A-Z][a-z]+ \d{4}/.test(await earned.innerText()), 'it says when it was issued');
  const topMarks = await badgeArticle(page, 'avail-h', t.badges.svg.name);
  check(/Your score 90% \u2014 95% needed/.test(await topMarks.innerText()),
    '95% badge: the progress in words', await topMarks.innerText());
  await topMarks.locator('summary', { hasText: 'Why not yet?' }).click();
  check(/Still missing: 5% more/.test(await topMarks.locator('details').innerText()),
    '"Why not yet?" opens and says 5% is missing', await topMarks.innerText());
  const img = earned.locator('img').first();
  check(await img.evaluate((i) => i.complete && i.naturalWidth > 0), 'the badge image loads');
  check(await page.locator('section[aria-labelledby="avail-h"] article img').first()
    .evaluate((i) => i.complete && i.naturalWidth > 0), 'an available badge image loads');

  // The public page: a link that opens in a new tab with the hosted assertion
  const verify = earned.locator('a[target="_blank"]', { hasText: 'Public page' });
  const href = await verify.getAttribute('href');
  check(href && href.startsWith(cfg.base + '/ob/'), 'the Public page link points to our assertion', href);
  const [popup, popResp] = await Promise.all([
    t.learnerCtx.waitForEvent('page'),
    t.learnerCtx.waitForEvent('response', (r) => r.url() === href),
    verify.click(),
  ]);
  await popup.waitForLoadState('load');
  check(popResp && popResp.status() === 200, 'the assertion answers 200', popResp && popResp.status());
  // a browser gets the badge's public page; a machine client, at the same URL, the document
  check(/^text\/html/.test(popResp.headers()['content-type'] || ''),
    'the assertion opens as a page in the browser', popResp.headers()['content-type']);
  check(await popup.locator('main[data-state="valid"] h1').count() === 1,
    'the page shows the badge as valid');
  const ld = await t.learnerCtx.request.get(href, { headers: { Accept: 'application/ld+json' } });
  check(/json/.test(ld.headers()['content-type'] || ''), 'the assertion is JSON to a machine client',
    ld.headers()['content-type']);
  const doc = await ld.json();
  check(doc.type === 'Assertion', 'the assertion has type Assertion', doc.type);
  check(typeof doc.badge === 'string' || (doc.badge && typeof doc.badge === 'object'),
    'the assertion names its badge', doc.badge);
  check(doc.recipient && doc.recipient.type === 'email' && doc.recipient.identity,
    'the assertion has an e-mail recipient', doc.recipient);
  check(await popup.evaluate(() => window.opener === null), 'the new tab has no opener (rel=noopener)');
  await popup.close();

  // Share: one menu with LinkedIn, copy link and the baked image
  const menu = earned.locator('details.menu');
  check(!(await menu.evaluate((d) => d.open)), 'the share menu starts closed');
  await menu.locator('summary').click();
  check(await menu.evaluate((d) => d.open), 'Share opens the menu');
  const li = new URL(await menu.locator('a', { hasText: 'Add to LinkedIn profile' }).getAttribute('href'));
  const lq = Object.fromEntries(li.searchParams);
  check(li.origin + li.pathname === 'https://www.linkedin.com/profile/add' &&
    lq.startTask === 'CERTIFICATION_NAME' && lq.name === t.badges.score.name &&
    lq.organizationName && /^\d{4}$/.test(lq.issueYear) && /^([1-9]|1[0-2])$/.test(lq.issueMonth) &&
    lq.certUrl === href && href.endsWith('/' + lq.certId),
    'Add to LinkedIn profile carries name, organizationName, issueYear, issueMonth, certUrl, certId', lq);
  await shot(page, '02a-learner-share-menu');
  await menu.locator('button', { hasText: 'Copy link' }).click();
  await waitFor(async () => /Copied/.test(await earned.locator('.copied').innerText()),
    'Copy link says it copied', 5000);
  check(!(await menu.evaluate((d) => d.open)), 'copying closes the menu');
  await menu.locator('summary').click();
  const dl = earned.locator('a[download]', { hasText: 'Download the image' });
  const dlHref = new URL(await dl.getAttribute('href'), url).href;
  const got = await t.learnerCtx.request.get(dlHref);
  check(got.status() === 200 && got.headers()['content-type'] === 'image/png',
    'the Download link answers 200 image/png', [got.status(), got.headers()['content-type']]);
  const [download] = await Promise.all([page.waitForEvent('download'), dl.click()]);
  const bytes = fs.readFileSync(await download.path());
  check(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    `clicking Download saves a PNG (${download.suggestedFilename()}, ${bytes.length} bytes)`);

  // Revoked by the instructor on the Awards page, with a reason
  const ip = t.instructor.page;
  await ip.goto(t.instructor.url);
  await ip.locator('nav a', { hasText: 'Awards' }).click();
  await ip.waitForLoadState('load');
  check(/\/badges\/awards\?s=/.test(ip.url()), 'the Awards link opens the awards table', ip.url());
  t.awardsUrl = ip.url();
  const row = ip.locator(`tr[data-award="${award.id}"]`);
  check(await row.count() === 1, 'the award is a row of the table');
  check(/Ada Learner/.test(await row.innerText()), 'the row names the learner', await row.innerText());
  await row.locator('input[type="checkbox"]').check();
  await ip.locator('#reason').fill('Test reason');
  const revoked = ip.waitForResponse((r) => /\/badges\/awards\?s=/.test(r.url()) &&
    r.request().redirectedFrom() !== null);
  // revoking asks first (the button's data-confirm); accepted here
  const asked = ip.waitForEvent('dialog').then(async (d) => {
    const m = d.message();
    await d.accept();
    return m;
  });
  await ip.locator('button', { hasText: 'Revoke the selected awards' }).click();
  check(/Revoke the selected awards\?/.test(await asked), 'revoking asks for confirmation');
  await revoked;
  await ip.waitForLoadState('load');
  await shot(ip, '02b-instructor-awards-revoked');
  await waitAward(LEARNER.user_id, t.badges.score.slug, 'revoked');
  check(/Revoked/.test(await ip.locator(`tr[data-award="${award.id}"]`).innerText()),
    'the table shows the award revoked');
  await page.reload();
  const rev = await badgeArticle(page, 'revoked-h', t.badges.score.name);
  const revText = await rev.innerText();
  check(/Revoked on \d{1,2} [A-Z][a-z]+ \d{4}: Test reason/.test(revText), 'the revoked badge says why', revText);
  const earnedNow = await page.locator('section[aria-labelledby="earned-h"]').innerText();
  check(!earnedNow.includes(t.badges.score.name), 'the revoked badge left "Your badges"', earnedNow);
  await shot(page, '02-learner-earned-revoked');
}

/*
 * 2b. A learner the LMS sent no e-mail address for: the badge waits, the page
 * asks for an address (axe-core checks that page), the learner gives one,
 * and the badge is issued.
 */
async function learnerGivesEmail(t) {
  const noMail = { ...LEARNER, user_id: 'learner-2', lis_person_name_full: 'Bo Nomail' };
  delete noMail.lis_person_contact_email_primary;
  const { page, url } = await launchAs(t.learnerCtx, noMail);
  await recordGrade(noMail.user_id, COURSE.context_id, COURSE.resource_link_id, '0.9');
  await waitAward(noMail.user_id, t.badges.score.slug, 'needs_email');
  await page.reload();
  await expectSection(page, 'pending-h', 'On its way');
  const input = page.locator('#email-input');
  check(await input.count() === 1, 'the page asks for an e-mail address');
  check(await page.locator('label[for="email-input"]').count() === 1, 'the address field has a label');
  const axePage = await t.axeCtx.newPage();
  await axePage.goto(url);
  const serious = await runAxe(axePage, 'learner e-mail form');
  await axePage.close();
  check(serious.length === 0, 'axe-core: no serious or critical violation on the e-mail form',
    serious.map((v) => v.id));
  await shot(page, '02c-learner-email-form');
  await input.fill('bo@example.edu');
  const saved = page.waitForResponse((r) => /\/badges\?s=.*m=email/.test(r.url()));
  await page.locator('#email button[type="submit"]').click();
  await saved;
  await page.waitForLoadState('load');
  check(/your address is saved/.test(await page.locator('p.notice').innerText()),
    'the page thanks the learner', await page.locator('p.notice').innerText());
  const issued = await waitAward(noMail.user_id, t.badges.score.slug, 'issued');
  check(issued.recipient === 'bo@example.edu', 'the badge is issued to that address', issued.recipient);
}

/* 3. A learner's token on the instructor's form is refused and changes nothing. */
async function learnerRefused(t) {
  const page = t.learner.page;
  await page.goto(t.learner.url);
  check(await page.locator('form[action$="/badges/settings"]').count() === 0,
    'the learner page has no settings form');
  const before = await contextRow();
  const forge = async (csrf, label) => {
    const resp = page.waitForResponse((r) => r.url().endsWith('/badges/settings') &&
      r.request().method() === 'POST');
    await page.evaluate(({ action, s, csrf }) => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = action;
      for (const [k, v] of Object.entries({ s, csrf, pass_percent: '10' })) {
        const i = document.createElement('input');
        i.type = 'hidden';
        i.name = k;
        i.value = v;
        f.appendChild(i);
      }
      document.body.appendChild(f); // no "enabled": it would switch badges off
      f.submit();
    }, { action: cfg.base + '/badges/settings', s: t.learner.token, csrf });
    const r = await resp;
    await page.waitForLoadState('load');
    const text = (await page.locator('body').innerText()).replace(/\s+/g, ' ').trim();
    check(r.status() === 403, `learner's s with ${label}: 403`, [r.status(), text]);
    log(`    refusal page: ${text.slice(0, 200)}`);
    const now = await contextRow();
    check(JSON.stringify(now) === JSON.stringify(before),
      `the course settings did not change (${label})`, [before, now]);
  };
  await forge('0'.repeat(64), 'a made-up csrf');
  await forge(t.instructor.csrf, "the instructor's csrf");
  check(before.badges_enabled === 1, 'contexts.badges_enabled is still 1', before);
}

/* 3b. The instructor sees the course's badges, each once, with its rule in words. */
async function instructorBadgeList(t) {
  const page = t.instructor.page;
  await page.goto(t.instructor.url);
  const sec = await expectSection(page, 'badges-h', 'Badges of this course');
  const rows = await sec.locator('tbody tr').evaluateAll((trs) =>
    trs.map((tr) => ({ slug: tr.dataset.slug, cells: [...tr.cells].map((c) => c.innerText.trim()) })));
  const slugs = rows.map((r) => r.slug);
  for (const b of Object.values(t.badges)) {
    const mine = rows.filter((r) => r.slug === b.slug);
    check(mine.length === 1, `"${b.name}" is listed once`, `${mine.length} rows; all: ${slugs.join(' ')}`);
  }
  check(await sec.locator('table').count() === 1, 'the badges are in one table',
    await sec.locator('table').count());
  const score = rows.find((r) => r.slug === t.badges.score.slug);
  check(/a score of at least 80% on any graded activity/.test(score.cells[1]),
    'the rule in the instructor\'s words', score.cells);
}

/* 4. Accessibility (axe-core) and a 360 px wide screen, on both pages. */
async function accessibility(t) {
  // The learner page now has an earned badge (the course's completion badge,
  // made when the grade passed the pass mark), one available and one revoked.
  const lp = t.learner.page;
  await lp.goto(t.learner.url);
  const earnedCount = await lp.locator('section[aria-labelledby="earned-h"] article').count();
  const availCount = await lp.locator('section[aria-labelledby="avail-h"] article').count();
  const revokedCount = await lp.locator('section[aria-labelledby="revoked-h"] article').count();
  check(earnedCount > 0 && availCount > 0 && revokedCount > 0,
    'the learner page has earned, available and revoked badges', [earnedCount, availCount, revokedCount]);

  // axe-core goes in as an inline script, which our CSP refuses: a context of its own bypasses CSP
  const bad = [];
  for (const [label, url] of [['instructor', t.instructor.url], ['learner', t.learner.url],
    ['awards', t.awardsUrl]]) {
    const page = await t.axeCtx.newPage();
    await page.goto(url);
    const serious = await runAxe(page, label);
    for (const v of serious) bad.push(`${label}: [${v.impact}] ${v.id} at ${v.nodes.map((n) => n.target).join(', ')}`);
    await page.close();
  }
  for (const [label, ctx, url] of [['instructor', t.instructorCtx, t.instructor.url],
    ['learner', t.learnerCtx, t.learner.url], ['awards', t.instructorCtx, t.awardsUrl],
    ['editor', t.instructorCtx, t.editorUrl]]) {
    const page = await newPage(ctx);
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(url);
    const sw = await page.evaluate(() => ({
      doc: document.documentElement.scrollWidth,
      wide: [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > 360.5)
        .slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
          (e.className && typeof e.className === 'string' ? '.' + e.className.trim().replace(/\s+/g, '.') : '')),
    }));
    await shot(page, `04-${label}-360px`);
    if (label === 'learner') {
      const tall = await page.locator('article.badge.earned').evaluateAll((as) =>
        as.map((a) => Math.round(a.getBoundingClientRect().height)));
      check(tall.length > 0 && tall.every((h) => h <= 210),
        'an earned badge is a compact card at 360 px (at most about 200 px)', tall);
    }
    check(sw.doc <= 360, `the ${label} page has no horizontal scroll at 360 px`,
      `scrollWidth ${sw.doc}; wider than the screen: ${sw.wide.join(' ')}`);
    await page.close();
  }
  check(bad.length === 0, 'axe-core: no serious or critical violation', bad.join('; '));
}

/* 5. Inside an LMS iframe on another site, third-party cookies blocked. */
async function iframe(t) {
  const lms = await startLms();
  const other = await startLms(); // another origin, which the tool must refuse to be framed by
  try {
    const page = await t.frameCtx.newPage();
    page.setDefaultTimeout(NAV_TIMEOUT);
    const cdp = await t.frameCtx.newCDPSession(page);
    await cdp.send('Network.setCookieControls', { enableThirdPartyCookieRestriction: true,
      disableThirdPartyCookieMetadata: true, disableThirdPartyCookieHeuristics: true });

    // Third-party cookies really are blocked: a cookie set in a cross-site frame is not kept.
    await page.goto(`${lms.origin}/embed?src=${encodeURIComponent(lms.crossSite + '/probe/set')}`);
    await page.goto(`${lms.origin}/embed?src=${encodeURIComponent(lms.crossSite + '/probe/get')}`);
    const seen = await (await childFrame(page)).locator('#cookies').innerText();
    check(seen === 'none' && (await t.frameCtx.cookies()).length === 0,
      'third-party cookies are blocked in this browser context', seen);

    // (a) The LMS posts the launch into its iframe, as LMSes do.
    const signed = await rpc('sign', { fields: { ...LEARNER, user_id: 'learner-frame',
      lis_person_name_full: 'Framed Learner', lis_person_contact_email_primary: 'framed@example.edu' } });
    lms.register('1', signed);
    const launchReq = page.waitForRequest((r) => r.url() === signed.action && r.method() === 'POST');
    const landed = page.waitForResponse((r) => /\/badges\?s=/.test(r.url()));
    await page.goto(`${lms.origin}/lms/1`);
    const origin = await (await launchReq).headerValue('origin');
    const resp = await landed;
    const csp = resp.headers()['content-security-policy'] || '';
    log(`  the launch POST from ${lms.origin} carried Origin: ${origin}; the page's CSP: ${csp}`);
    check(origin === lms.origin, 'the browser sent the LMS origin on the launch', origin);
    const frame = await childFrame(page);
    await waitFor(() => frameShows(frame, 'earned-h'), 'the learner page in the iframe', NAV_TIMEOUT);
    check(await frameShows(frame, 'avail-h'), 'the learner page renders inside the LMS iframe');
    check(csp.includes(`frame-ancestors 'self' ${lms.origin}`),
      'the page may be framed by the LMS that launched it (CSP frame-ancestors)', csp);
    await shot(page, '05-iframe-lms-launch');
    const framedUrl = frame.url();

    // (b) The learner's page URL (launched earlier from an opaque-origin page) in an iframe
    await page.goto(`${lms.origin}/embed?src=${encodeURIComponent(t.learner.url)}`);
    const f2 = await childFrame(page);
    await waitFor(() => frameShows(f2, 'earned-h'), 'the learner page URL in an iframe', NAV_TIMEOUT);
    check(true, 'the learner page URL renders in an iframe on another site');

    // (c) The framed session's page, embedded by a site that did not launch it: refused
    const refusals = [];
    page.on('console', (m) => { if (/frame-ancestors/.test(m.text())) refusals.push(m.text()); });
    await page.goto(`${other.origin}/embed?src=${encodeURIComponent(framedUrl)}`);
    const f3 = await childFrame(page);
    await waitFor(async () => refusals.length > 0 || f3.url().startsWith('chrome-error:'),
      'the browser to refuse the frame', 10000, 100).catch(() => null);
    log(`  framed by ${other.origin}: the frame is at ${f3.url()}; console: ${refusals.join(' | ')}`);
    check(!(await frameShows(f3, 'earned-h')),
      'the page is not shown in an iframe of another origin', [f3.url(), refusals]);
    await page.close();
  } finally {
    await lms.close();
    await other.close();
  }
}

/*
 * 6. The public badge pages (issue 22, section 1): an assertion valid,
 * expired and revoked, its BadgeClass, at 360 and 1280 px, axe-core, the
 * recipient check, and the page printed to PDF on one page.
 */
const PUBLIC_LEARNER = { ...COURSE, user_id: 'public-1', roles: 'Learner',
  lis_person_name_full: 'Grace Public', lis_person_contact_email_primary: 'grace@example.edu' };

/* The number of pages of a PDF: its /Type /Page objects (not /Pages). */
const pdfPages = (buf) => (buf.toString('latin1').match(/\/Type\s*\/Page(?![a-z])/g) || []).length;

async function publicPage(t, url, label, { state, status }) {
  const bad = [];
  for (const width of [360, 1280]) {
    const page = await newPage(t.publicCtx);
    await page.setViewportSize({ width, height: width === 360 ? 740 : 900 });
    const resp = await page.goto(url);
    check(resp.status() === status, `the ${label} page answers ${status} to a browser`, resp.status());
    check(/^text\/html/.test(resp.headers()['content-type'] || ''), `the ${label} page is HTML`);
    if (state) {
      check(await page.locator(`main[data-state="${state}"]`).count() === 1,
        `the ${label} page says ${state}`);
      const alert = page.locator('main [role="alert"]');
      if (state === 'valid') {
        check(await alert.count() === 0, `no status banner on the ${label} page`);
      } else {
        const box = await alert.boundingBox();
        const h1 = await page.locator('main h1').boundingBox();
        check(box && h1 && box.y < h1.y, `the ${label} status banner is above everything`, [box, h1]);
      }
    }
    check(await page.locator('img.badge-img').evaluate((i) => i.complete && i.naturalWidth > 0),
      `the badge image of the ${label} page loads`);
    const sw = await page.evaluate(() => document.documentElement.scrollWidth);
    check(sw <= width, `the ${label} page has no horizontal scroll at ${width} px`, sw);
    await shot(page, `06-public-${label}-${width}px`);
    await page.close();
    const ax = await t.axeCtx.newPage();
    await ax.setViewportSize({ width, height: 900 });
    await ax.goto(url);
    for (const v of await runAxe(ax, `${label} ${width} px`))
      bad.push(`${label} ${width}: [${v.impact}] ${v.id} at ${v.nodes.map((n) => n.target).join(', ')}`);
    await ax.close();
  }
  check(bad.length === 0, `axe-core: no serious or critical violation on the ${label} page`, bad.join('; '));
}

/* 6a. Three learners hold a new badge: valid, expired (its expiry moved back), revoked. */
async function publicSetup(t) {
  t.publicCtx = await t.browser.newContext();
  const slug = (await cli('badge', 'create', '--consumer', cfg.consumerKey, '--name', 'Public Bridge',
    '--description', 'Built and tested a bridge that holds 40 kg.', '--image', cfg.images.png,
    '--rule', 'manual', '--criteria', 'Build a bridge.\n\nTest it with 40 kg.',
    '--criteria-url', 'https://example.edu/criteria')).match(/slug=(\S+)/)[1];
  const users = ['public-1', 'public-2', 'public-3'];
  for (const u of users) {
    const { page } = await launchAs(t.publicCtx, { ...PUBLIC_LEARNER, user_id: u,
      lis_person_contact_email_primary: `${u}@example.edu` });
    await page.close();
    await cli('award', 'grant', '--badge', slug, '--consumer', cfg.consumerKey, '--user', u,
      '--narrative', 'Her bridge held 40 kg on the first try.');
  }
  const aw = [];
  for (const u of users) aw.push(await waitAward(u, slug, 'issued'));
  await rpc('execute', { sql: 'UPDATE awards SET expires_at = ? WHERE id = ?',
    args: [Math.floor(Date.now() / 1000) - 86400, aw[1].id] });
  await cli('award', 'revoke', String(aw[2].id), '--reason', 'Awarded by mistake');
  t.pub = { slug, aw };
}

/* 6b. The recipient check: the right address, then another, at both widths. */
async function publicCheck(t) {
  const { aw } = t.pub;
  const page = await newPage(t.publicCtx);
  for (const width of [360, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    await page.goto(aw[0].assertion_url);
    await page.locator('#check-email').fill('PUBLIC-1@example.edu');
    await Promise.all([page.waitForLoadState('load'), page.locator('section.check button').click()]);
    await page.waitForSelector('.check-result');
    check(/Yes: this badge was awarded to PUBLIC-1@example.edu/.test(
      await page.locator('.check-result').innerText()), `the right address is confirmed (${width} px)`);
    await shot(page, `06-public-check-yes-${width}px`);
    await page.locator('#check-email').fill('someone.else@example.edu');
    await Promise.all([page.waitForLoadState('load'), page.locator('section.check button').click()]);
    await page.waitForSelector('.check-result.no');
    check(/No: this badge was not awarded to someone.else@example.edu/.test(
      await page.locator('.check-result').innerText()), `another address is not (${width} px)`);
    await shot(page, `06-public-check-no-${width}px`);
  }
  const ax = await t.axeCtx.newPage();
  await ax.goto(aw[0].assertion_url);
  await ax.locator('#check-email').fill('public-1@example.edu');
  await Promise.all([ax.waitForLoadState('load'), ax.locator('section.check button').click()]);
  await ax.waitForSelector('.check-result');
  const serious = await runAxe(ax, 'recipient check');
  check(serious.length === 0, 'axe-core: no serious or critical violation on the check answer',
    serious.map((v) => v.id).join(', '));
  await ax.close();
  await page.close();
}

/* 6c. Printed: one page, no buttons, inputs or the form. */
async function publicPrint(t) {
  const { aw } = t.pub;
  const page = await newPage(t.publicCtx);
  for (const [label, url] of [['valid', aw[0].assertion_url], ['revoked', aw[2].assertion_url]]) {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(url);
    await page.emulateMedia({ media: 'print' });
    const shown = await page.evaluate(() => [...document.querySelectorAll('button, input, form, a.button')]
      .filter((e) => e.getClientRects().length > 0).map((e) => e.outerHTML.slice(0, 80)));
    check(shown.length === 0, `nothing to click is printed (${label})`, shown);
    const pdfFile = path.join(cfg.shots, `06-public-print-${label}.pdf`);
    const pdf = await page.pdf({ path: pdfFile, format: 'A4', printBackground: true });
    log('  printed', pdfFile);
    check(pdfPages(pdf) === 1, `the ${label} page prints on one page`, pdfPages(pdf));
    await page.emulateMedia({ media: 'screen' });
  }
  await page.close();
}


// ---- the badge editor: the rule's fields, alignments, percent ------------------

const EDITOR_COURSE = { context_id: 'course-browser-editor', context_title: 'Editor Course',
  context_label: 'ED101', resource_link_id: 'ed-quiz', resource_link_title: 'Editor quiz' };

/* An instructor of the editor's own course (its badges touch no other flow's). */
async function editorSetup(t) {
  const { page, token } = await launchAs(t.instructorCtx, { ...EDITOR_COURSE, user_id: 'prof-ed',
    roles: 'Instructor', lis_person_name_full: 'Editor Prof' });
  await page.close();
  t.ed = { token, newUrl: `${cfg.base}/badges/edit?s=${token}` };
  t.noJsCtx = await t.browser.newContext({ javaScriptEnabled: false });
}

/* Which of the rules' fields are shown, and which are disabled. */
async function ruleFieldState(page) {
  return page.evaluate(() => Object.fromEntries(['threshold', 'link', 'count', 'group'].map((id) => {
    const e = document.getElementById(id);
    return [id, { shown: e.getClientRects().length > 0, disabled: e.disabled }];
  })));
}

async function noHorizontalScroll(page, label) {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  check(w <= 360, `${label}: no horizontal scroll at 360 px`, `scrollWidth ${w}`);
}

/*
 * The rule switch, with and without JavaScript, at 360 and 1280 px: only the
 * chosen rule's fields show (the stylesheet's :has() without the script);
 * with the script the others are disabled and not posted; without it they
 * are posted and the server stores only the chosen rule.
 */
async function editorRuleSwitch(t) {
  for (const js of [true, false]) {
    const page = await newPage(js ? t.instructorCtx : t.noJsCtx);
    const tag = js ? 'js' : 'nojs';
    for (const width of [360, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(t.ed.newUrl);
      let st = await ruleFieldState(page);
      check(await page.locator('#kind-score').isChecked(), `${tag} ${width}: a new badge starts on the score rule`);
      check(st.threshold.shown && st.link.shown && !st.count.shown && !st.group.shown,
        `${tag} ${width}: only the score rule's fields show`, st);
      await page.locator('label[for="kind-count"]').click();
      st = await ruleFieldState(page);
      check(st.count.shown && !st.threshold.shown && !st.link.shown && !st.group.shown,
        `${tag} ${width}: the count rule chosen, only its field shows`, st);
      check(st.threshold.disabled === js && st.group.disabled === js && !st.count.disabled,
        `${tag} ${width}: the other rules' fields are ${js ? '' : 'not '}disabled`, st);
      await page.locator('label[for="kind-group"]').click();
      st = await ruleFieldState(page);
      check(st.group.shown && !st.count.shown && !st.threshold.shown,
        `${tag} ${width}: the group rule chosen, only its field shows`, st);
      await page.locator('label[for="kind-count"]').click();
      if (width === 360) await noHorizontalScroll(page, `the editor (${tag})`);
      await shot(page, `07-editor-rule-count-${tag}-${width}px`);
      if (width !== 1280) continue;
      const name = `Two courses (${tag})`;
      await page.locator('#name').fill(name);
      await page.locator('#description').fill('Completed two courses.');
      await page.locator('#count').fill('2');
      const posted = page.waitForRequest((r) => r.url().endsWith('/badges/save') && r.method() === 'POST');
      await page.locator('button[value="save"]').click();
      const body = (await posted).postData() || '';
      await page.waitForLoadState('load');
      check(/name="threshold_percent"/.test(body) === !js,
        `${tag}: the score rule's fields ${js ? 'are not' : 'are'} posted`, body.slice(0, 400));
      check(/m=created/.test(page.url()), `${tag}: the badge was created`, page.url());
      const b = JSON.parse(await cli('badge', 'list', '--json')).find((x) => x.name === name);
      check(b && JSON.stringify(b.rule) === JSON.stringify({ kind: 'count', count: 2 }),
        `${tag}: only the count rule is stored`, b && b.rule);
      await page.goto(`${cfg.base}/badges/edit?s=${t.ed.token}&b=${b.slug}`);
      st = await ruleFieldState(page);
      check(await page.locator('#kind-count').isChecked() && st.count.shown && !st.threshold.shown,
        `${tag}: the saved badge's editor opens on its rule`, st);
    }
    await page.close();
  }
  const axePage = await t.axeCtx.newPage();
  await axePage.goto(t.ed.newUrl);
  await axePage.locator('label[for="kind-group"]').click();
  await axePage.locator('#aligns > summary').click();
  const serious = await runAxe(axePage, 'badge editor (group rule, alignments open)');
  await axePage.close();
  check(serious.length === 0, 'axe-core: no serious or critical violation in the editor',
    serious.map((v) => v.id));
}

/* Alignments as rows (added, removed, renumbered with the script; empty rows without), percent. */
async function editorAlignmentsAndPercent(t) {
  const rows = (page) => page.locator('#aligns fieldset.align');
  // with the script
  const page = await newPage(t.instructorCtx);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(t.ed.newUrl);
  await page.locator('#aligns > summary').click();
  check(await rows(page).count() === 2, 'a new badge has two empty alignment rows');
  await page.locator('#aligns .al-add button').click();
  check(await rows(page).count() === 3, '"Add an alignment" adds a row');
  check(await page.evaluate(() => document.activeElement.id) === 'al_name_2',
    'the new row\'s name has the focus', await page.evaluate(() => document.activeElement.id));
  await page.locator('#al_name_0').fill('Algebra');
  await page.locator('#al_url_0').fill('https://ex.edu/std/alg');
  await page.locator('#al_code_0').fill('A1');
  await page.locator('#al_name_1').fill('Dropped');
  await page.locator('#al_name_2').fill('Logic | sets');
  await page.locator('#al_url_2').fill('https://ex.edu/std/log');
  await page.locator('#al_framework_2').fill('CCSS');
  await rows(page).nth(1).locator('.al-remove button').click();
  check(await rows(page).count() === 2, '"Remove this alignment" removes its row');
  const names = await rows(page).evaluateAll((fs) => fs.map((f) => [f.querySelector('legend').textContent,
    f.querySelector('input').name, f.querySelector('input').value]));
  check(JSON.stringify(names) === JSON.stringify([['Alignment 1', 'al_name_0', 'Algebra'],
    ['Alignment 2', 'al_name_1', 'Logic | sets']]), 'the rows are renumbered', names);
  await page.locator('#name').fill('Aligned (js)');
  await page.locator('#description').fill('Aligned with two standards.');
  await page.locator('#kind-score').check();
  await page.locator('#threshold').fill('72.5');
  await shot(page, '07-editor-alignments-js-1280px');
  await page.locator('button[value="save"]').click();
  await page.waitForLoadState('load');
  check(/m=created/.test(page.url()), 'the aligned badge was created', page.url());
  let b = JSON.parse(await cli('badge', 'list', '--json')).find((x) => x.name === 'Aligned (js)');
  check(b && JSON.stringify(b.alignments) === JSON.stringify([
    { targetName: 'Algebra', targetUrl: 'https://ex.edu/std/alg', targetCode: 'A1' },
    { targetName: 'Logic | sets', targetUrl: 'https://ex.edu/std/log', targetFramework: 'CCSS' }]),
  'the two alignments are stored, the removed one not', b && b.alignments);
  check(b && b.rule.threshold === 0.725, '72.5 % is stored as 0.725', b && b.rule);
  await page.goto(`${cfg.base}/badges/edit?s=${t.ed.token}&b=${b.slug}`);
  check(await page.locator('#threshold').inputValue() === '72.5', 'the threshold is shown back in percent',
    await page.locator('#threshold').inputValue());
  check(await page.locator('#aligns').evaluate((d) => d.open), 'a badge with alignments opens them');
  check(await rows(page).count() === 4, 'its two rows and two empty ones', await rows(page).count());
  await page.setViewportSize({ width: 360, height: 740 });
  await noHorizontalScroll(page, 'the editor with alignments');
  await shot(page, '07-editor-alignments-js-360px');
  await page.close();

  // without the script: no add or remove buttons, the empty rows to fill
  const nojs = await newPage(t.noJsCtx);
  await nojs.setViewportSize({ width: 360, height: 740 });
  await nojs.goto(t.ed.newUrl);
  await nojs.locator('#aligns > summary').click();
  check(!(await nojs.locator('#aligns .al-add').isVisible()) &&
    !(await nojs.locator('#aligns .al-remove').first().isVisible()),
  'without the script there are no add and remove buttons');
  await nojs.locator('#al_name_1').fill('Only row two');
  await nojs.locator('#al_url_1').fill('https://ex.edu/two');
  await nojs.locator('#name').fill('Aligned (nojs)');
  await nojs.locator('#description').fill('One alignment.');
  await nojs.locator('#threshold').fill('80');
  await noHorizontalScroll(nojs, 'the editor without the script');
  await shot(nojs, '07-editor-alignments-nojs-360px');
  await nojs.locator('button[value="save"]').click();
  await nojs.waitForLoadState('load');
  b = JSON.parse(await cli('badge', 'list', '--json')).find((x) => x.name === 'Aligned (nojs)');
  check(b && b.alignments.length === 1 && b.alignments[0].targetName === 'Only row two' &&
    b.rule.threshold === 0.8, 'without the script: the filled row and 80 % stored', b);
  await nojs.close();
}

/*
 * 7. The instructor's awards table (issue 22, section 4): sorted by a header
 * and searched by learner, with the script (in place, the same order as
 * the server's) and without (the links and the form go to the server), at
 * 360 and 1280 px; states as chips in words; issued awards link to their
 * public page; revoking asks first; each learner's evidence opens on
 * demand; axe-core at both widths.
 */
const TABLE_LEARNERS = [['table-1', 'Zed Alpha'], ['table-2', 'amy Beta'], ['table-3', 'Max Gamma']];

/* The award ids of the table's visible rows, in order. */
const tableOrder = (page) => page.locator('table.awards tbody tr:not([hidden])').evaluateAll(
  (trs) => trs.map((tr) => Number(tr.dataset.award)));

/* The order the server gives for `query` (no script involved). */
async function serverOrder(t, query) {
  const u = new URL(t.awardsUrl);
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
  const html = await (await t.instructorCtx.request.get(u.href)).text();
  return [...html.matchAll(/<tr data-award="(\d+)"/g)].map((m) => Number(m[1]));
}

async function awardsTableSetup(t) {
  t.awardsUrl = t.awardsUrl || t.instructor.url.replace('/badges?', '/badges/awards?');
  const slug = (await cli('badge', 'create', '--consumer', cfg.consumerKey, '--name', 'Helping Hand',
    '--description', 'Helped the others.', '--image', cfg.images.png, '--rule', 'manual',
    '--context', COURSE.context_id)).match(/slug=(\S+)/)[1];
  const ctx = await t.browser.newContext();
  for (const [user, name] of TABLE_LEARNERS) {
    const { page } = await launchAs(ctx, { ...COURSE, user_id: user, roles: 'Learner',
      lis_person_name_full: name, lis_person_contact_email_primary: `${user}@example.edu` });
    await page.close();
    await cli('award', 'grant', '--badge', slug, '--consumer', cfg.consumerKey, '--user', user,
      '--narrative', `${name} helped.`);
  }
  await ctx.close();
  const aw = [];
  for (const [user] of TABLE_LEARNERS) aw.push(await waitAward(user, slug, 'issued'));
  // issued on three different days, and the last one failed instead
  await rpc('execute', { sql: 'UPDATE awards SET issued_at = ? WHERE id = ?', args: [1700000000, aw[0].id] });
  await rpc('execute', { sql: 'UPDATE awards SET issued_at = ? WHERE id = ?', args: [1500000000, aw[1].id] });
  await rpc('execute', { sql: "UPDATE awards SET state = 'failed', issued_at = NULL, assertion_url = NULL, " +
    "assertion_id = NULL, last_error = 'the service said no' WHERE id = ?", args: [aw[2].id] });
  t.table = { slug, aw };
}

async function awardsTable(t, { js }) {
  const ctx = js ? t.instructorCtx : await t.browser.newContext({ javaScriptEnabled: false });
  const how = js ? 'with the script' : 'without the script';
  const bad = [];
  try {
    for (const width of [360, 1280]) {
      const page = await newPage(ctx);
      await page.setViewportSize({ width, height: width === 360 ? 740 : 900 });
      await page.goto(t.awardsUrl);
      const tag = `${js ? 'js' : 'nojs'}-${width}px`;
      if (width === 1280) {
        const w = await page.locator('table.awards').evaluate((e) => e.getBoundingClientRect().width);
        check(w > 1100, `the table takes the page's width at 1280 px (${how})`, w);
      }
      const sw = await page.evaluate(() => document.documentElement.scrollWidth);
      check(sw <= width, `no horizontal scroll at ${width} px (${how})`, sw);

      // sort: each header in turn, up then down, as the server sorts
      if (js) await page.evaluate(() => { window.sameDocument = true; });
      // (a few per width and mode: the whole flow stays within its 90 s under load)
      const cols = width === 1280 ? [['learner', 'Learner'], ['issued', 'Issued']]
        : [js ? ['state', 'State'] : ['badge', 'Badge']];
      for (const [col, label] of cols) {
        for (const dir of ['asc', 'desc']) {
          const before = page.url();
          await page.locator(`th[data-col="${col}"] a`).click();
          await page.waitForLoadState('load');
          if (js) check(page.url().includes(`sort=${col}`) &&
            await page.evaluate(() => window.sameDocument === true),
          `${label} ${dir}: sorted in place (${how}, ${width} px)`, [before, page.url()]);
          else check(new URL(page.url()).searchParams.get('sort') === col &&
            new URL(page.url()).searchParams.get('dir') === dir,
          `${label} ${dir}: the link asked the server (${width} px)`, page.url());
          const sorted = await page.locator(`th[data-col="${col}"]`).getAttribute('aria-sort');
          check(sorted === (dir === 'asc' ? 'ascending' : 'descending'),
            `${label} ${dir}: aria-sort says ${sorted} (${how}, ${width} px)`);
          check(await page.locator('th[aria-sort]').count() === 1, 'one column is sorted');
          const got = await tableOrder(page);
          const want = await serverOrder(t, { sort: col, dir });
          check(JSON.stringify(got) === JSON.stringify(want),
            `${label} ${dir}: the rows in the server's order (${how}, ${width} px)`, [got, want]);
        }
      }
      const names = await page.locator('table.awards tbody th[scope="row"]').evaluateAll((ths) =>
        ths.map((th) => th.dataset.sort));
      check(names.length >= 3, 'the table lists the learners', names);
      await shot(page, `07-awards-sorted-${tag}`);

      // search a learner, in another case than their name's
      await page.locator('#f-q').fill('ALPHA');
      if (!js) {
        await Promise.all([page.waitForLoadState('load'),
          page.locator('form.filters button[type="submit"]').click()]);
        await page.waitForURL(/[?&]q=ALPHA/);
      }
      const found = await tableOrder(page);
      const want = await serverOrder(t, { q: 'ALPHA' });
      check(found.length === 1 && found[0] === t.table.aw[0].id &&
        JSON.stringify(found) === JSON.stringify(want),
        `searching "ALPHA" shows Zed Alpha's award only, as the server (${how}, ${width} px)`, [found, want]);
      if (js) {
        check((await page.locator('#awards-shown').innerText()).trim() === '1',
          'the count of rows shown follows the search');
        check(await page.locator('table.awards tbody tr[hidden] input[type="checkbox"]:not([disabled])').count() === 0,
          'a hidden row cannot be revoked');
      }
      await shot(page, `07-awards-search-${tag}`);
      await page.locator('#f-q').fill('');
      if (js) await page.locator('#f-q').dispatchEvent('input');
      else await page.goto(t.awardsUrl);

      // chips in words, public pages of issued awards
      const chips = await page.locator('table.awards tbody tr').evaluateAll((trs) => trs.map((tr) => {
        const c = tr.querySelector('.chip');
        return { id: Number(tr.dataset.award), state: tr.dataset.state, text: c && c.innerText.trim(),
          cls: c && c.className, pub: (tr.querySelector('a.public') || {}).href || null };
      }));
      check(chips.every((c) => c.text && c.cls === `chip chip-${c.state}`),
        `every state is a chip with its words (${how}, ${width} px)`, chips);
      const listed = await awardsOf('table-1', t.table.slug);
      const one = chips.find((c) => c.id === t.table.aw[0].id);
      check(one.pub === listed[0].assertion_url, 'an issued award links to its public page', [one, listed[0]]);
      check(chips.find((c) => c.id === t.table.aw[2].id).pub === null, 'a failed award has no public page');
      check(chips.filter((c) => c.state !== 'issued').every((c) => c.pub === null),
        'only issued awards link to a public page');
      if (width === 1280) {
        const [pop] = await Promise.all([ctx.waitForEvent('page'),
          page.locator(`tr[data-award="${one.id}"] a.public`).click()]);
        await pop.waitForLoadState('load');
        check(await pop.locator('main[data-state="valid"]').count() === 1,
          'the link opens the public page of the award');
        await pop.close();
      }

      // each learner's own evidence opens on demand
      const box = page.locator('details.evidence').first();
      check(!(await box.evaluate((d) => d.open)) && !(await box.locator('textarea').isVisible()),
        'the evidence box of a learner starts closed');
      await box.locator('summary').click();
      check(await box.locator('textarea').isVisible(), `the evidence box opens (${how})`);
      await shot(page, `07-awards-table-${tag}`);
      await page.close();

      // axe-core (which needs a script of its own) once per width: 1280 here, 360 in the other flow
      if ((width === 1280) === js) {
        const ax = await t.axeCtx.newPage();
        await ax.setViewportSize({ width, height: 900 });
        await ax.goto(t.awardsUrl);
        for (const v of await runAxe(ax, `awards ${width} px`))
          bad.push(`${width}: [${v.impact}] ${v.id} at ${v.nodes.map((n) => n.target).join(', ')}`);
        await ax.close();
      }
    }
    check(bad.length === 0, 'axe-core: no serious or critical violation on the awards table', bad.join('; '));

    // revoking asks first with the script (dismissed: nothing happens), and is done once confirmed
    const page = await newPage(ctx);
    await page.goto(t.awardsUrl);
    // the script's flow revokes the second award, the other one the first (its public page checked)
    const id = t.table.aw[js ? 1 : 0].id;
    const row = page.locator(`tr[data-award="${id}"]`);
    await row.locator('input[type="checkbox"]').check();
    await page.locator('#reason').fill(`Revoked in the table ${how}`);
    const revokeBtn = page.locator('button.danger', { hasText: 'Revoke the selected awards' });
    if (js) {
      const posts = [];
      page.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });
      let asked = null;
      page.once('dialog', async (d) => { asked = d.message(); await d.dismiss(); });
      await revokeBtn.click();
      await page.waitForLoadState('load');
      check(/Revoke the selected awards\?/.test(asked || ''), 'Revoke asks for confirmation', asked);
      check(posts.length === 0 && (await awardsOf(TABLE_LEARNERS[1][0], t.table.slug))[0].state === 'issued',
        'dismissed: nothing is sent, the award stays issued', posts);
      page.once('dialog', (dd) => dd.accept());
    }
    await Promise.all([page.waitForURL(/m=revoked/), revokeBtn.click()]);
    const who = TABLE_LEARNERS[js ? 1 : 0][0];
    const after = await waitAward(who, t.table.slug, 'revoked');
    check(after.revoke_reason === `Revoked in the table ${how}`, `revoked with its reason (${how})`, after);
    await shot(page, `07-awards-revoked-${js ? 'js' : 'nojs'}`);
    await page.close();
  } finally {
    if (!js) await ctx.close();
  }
}

const FLOWS = [
  { name: 'instructor settings', run: instructorSettings },
  { name: 'instructor creates badges with uploaded images', needs: ['instructor settings'],
    run: instructorCreatesBadges },
  { name: 'learner badges', needs: ['instructor creates badges with uploaded images'], run: learnerBadges },
  { name: 'learner gives an e-mail address', needs: ['learner badges'], run: learnerGivesEmail },
  { name: 'learner token refused on the instructor form', needs: ['learner badges'], run: learnerRefused },
  { name: 'instructor badge list', needs: ['learner badges'], run: instructorBadgeList },
  { name: 'accessibility and 360 px', needs: ['learner badges'], run: accessibility },
  { name: 'iframe, third-party cookies blocked', needs: ['learner badges'], run: iframe },
  // a group of their own: ctest runs it beside the main one (tests/CMakeLists.txt)
  { name: 'awards table: three more awards', needs: ['instructor settings'], group: 'awards',
    run: awardsTableSetup },
  { name: 'awards table with the script', needs: ['awards table: three more awards'],
    group: 'awards', run: (t) => awardsTable(t, { js: true }) },
  { name: 'awards table without the script', needs: ['awards table: three more awards'],
    group: 'awards', run: (t) => awardsTable(t, { js: false }) },
  // the public pages: a group of their own too
  { group: 'public', name: 'public pages: three awards', run: publicSetup },
  { group: 'public', name: 'public assertion page, valid', needs: ['public pages: three awards'],
    run: (t) => publicPage(t, t.pub.aw[0].assertion_url, 'assertion-valid', { state: 'valid', status: 200 }) },
  { group: 'public', name: 'public assertion page, expired', needs: ['public pages: three awards'],
    run: (t) => publicPage(t, t.pub.aw[1].assertion_url, 'assertion-expired', { state: 'expired', status: 200 }) },
  { group: 'public', name: 'public assertion page, revoked', needs: ['public pages: three awards'],
    run: (t) => publicPage(t, t.pub.aw[2].assertion_url, 'assertion-revoked', { state: 'revoked', status: 410 }) },
  { group: 'public', name: 'public BadgeClass page', needs: ['public pages: three awards'],
    run: (t) => publicPage(t, `${cfg.base}/ob/v2/badges/${t.pub.slug}`, 'badgeclass', { status: 200 }) },
  { group: 'public', name: 'public page recipient check', needs: ['public pages: three awards'], run: publicCheck },
  { group: 'public', name: 'public page printed on one page', needs: ['public pages: three awards'], run: publicPrint },
  // the badge editor, in a course of its own: a group of its own too
  { group: 'editor', name: 'editor: a course of its own', run: editorSetup },
  { group: 'editor', name: 'editor: the rule switch with and without JavaScript',
    needs: ['editor: a course of its own'], run: editorRuleSwitch },
  { group: 'editor', name: 'editor: alignment rows and percent',
    needs: ['editor: a course of its own'], run: editorAlignmentsAndPercent },
];

// ---- main ----------------------------------------------------------------------

async function main() {
  setTimeout(() => {
    console.log(`browser: FAIL: deadline reached (${cfg.deadline_ms} ms)`);
    process.exit(2);
  }, Math.max(10000, cfg.deadline_ms)).unref();

  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking'],
  });
  log(`chromium ${browser.version()} up`);
  const t = {
    browser,
    instructorCtx: await browser.newContext({ acceptDownloads: true }),
    learnerCtx: await browser.newContext({ acceptDownloads: true }),
    axeCtx: await browser.newContext({ bypassCSP: true }),
    frameCtx: await browser.newContext(),
  };
  const failed = [];
  const times = [];
  // the flows of this run's group, and those they need (run.py's GROUP)
  const group = cfg.group || 'main';
  const wanted = new Set(FLOWS.filter((f) => (f.group || 'main') === group).map((f) => f.name));
  for (const f of [...FLOWS].reverse())
    if (wanted.has(f.name)) for (const n of f.needs || []) wanted.add(n);
  const flows = FLOWS.filter((f) => wanted.has(f.name));
  for (const f of flows) {
    const missing = (f.needs || []).filter((n) => failed.includes(n));
    if (missing.length) {
      log(`FLOW ${f.name}: not run, it needs ${missing.join(', ')}`);
      failed.push(f.name);
      continue;
    }
    log(`FLOW ${f.name}`);
    const t1 = Date.now();
    try {
      await withTimeout(f.run(t), FLOW_TIMEOUT, `flow ${f.name}`);
      times.push(`${f.name} ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    } catch (e) {
      failed.push(f.name);
      log(`  FAILED: ${f.name}: ${e instanceof CheckFailed ? e.message : e.stack}`);
    }
  }
  if (cspErrors.length) {
    failed.push('no CSP violation or script error on the pages');
    log('  FAILED: CSP violations / script errors:\n    ' + cspErrors.join('\n    '));
  }
  await browser.close();
  log(`timings: ${times.join('; ')}`);
  if (failed.length) console.log(`browser flows FAILED (${nchecks} checks passed): ${failed.join('; ')}`);
  else console.log(`browser flows (${group}): all ${flows.length} passed (${nchecks} checks)`);
  return failed.length ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => {
  console.log('browser: FAIL: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
