#!/usr/bin/python3
"""The public badge page (issue 22, section 1): the assertion, BadgeClass and
Issuer URLs answer a browser (Accept preferring text/html by q-value) with a
page and every other client with the Open Badges document exactly as before
(the same bytes whatever machine Accept, Vary: Accept on both); the assertion
page's contents (status valid / expired / revoked with its reason first, the
recipient's name only when they chose to show it, everything escaped, Open
Graph and Twitter tags), the learner's setting (CSRF-protected form), the
recipient check (right and wrong address, its rate limit) and the BadgeClass
page (alignments; holders only when [issuer] show_holders is on)."""
import hashlib
import json
import os
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, png_bytes, run_cli  # noqa: E402

WAIT = 30
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
HOSTILE = '<script>alert("x")</script> & \'q\''
MACHINE_ACCEPTS = [None, "*/*", "application/ld+json", "application/json",
                   "application/ld+json, application/json;q=0.9", "application/json, text/html",
                   "text/html;q=0.5, application/ld+json", "*/*;q=0.8, text/plain",
                   "image/png, */*"]
HTML_ACCEPTS = [BROWSER, "text/html", "text/html, application/json;q=0.9",
                "text/*, application/ld+json;q=0.5", "application/xhtml+xml"]


def form(fields):
    return urllib.parse.urlencode(fields).encode()


class BadgePageBase(lt.ServerTestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.png_path = os.path.join(cls.tmp, "badge.png")
        with open(cls.png_path, "wb") as f:
            f.write(png_bytes(8, 8))

    def cli(self, *args):
        args = list(args) + ["--db", self.db]
        if self.server_kwargs.get("config"):
            args += ["--config", self.server_kwargs["config"]]
        p = run_cli(*args)
        self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p

    def badge(self, name, *extra):
        p = self.cli("badge", "create", "--consumer", self.key, "--name", name, "--description",
                     "About " + name, "--image", self.png_path, "--rule", "manual", *extra)
        return lt.parse_kv(p.stdout)["slug"]

    def learner(self, user, name="Ada Lovelace", email=True):
        params = base_launch(user_id=user, context_id="bp-course", roles="Learner",
                             context_title="Course of pages", lis_person_name_full=name,
                             lis_person_contact_email_primary=(user + "@Example.edu")
                             if email else None)
        resp = self.launch(params)
        return self.assertRedirectToPage(resp)

    def award(self, slug, user, narrative="Built a working bridge."):
        self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user,
                 "--narrative", narrative)
        deadline = time.monotonic() + WAIT
        while True:
            got = [a for a in json.loads(self.cli("award", "list", "--json").stdout)
                   if a["user"] == user and a["badge"] == slug]
            if got and got[0]["state"] == "issued":
                return got[0]
            if time.monotonic() > deadline:
                self.fail("award of %s not issued in time: %r" % (user, got))
            time.sleep(0.1)

    def path(self, url):
        self.assertTrue(url.startswith(self.server.public_url), url)
        return url[len(self.server.public_url):]

    def html(self, url, status=200, accept=BROWSER):
        r = self.server.get(self.path(url), headers={"Accept": accept})
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertIn("Accept", r.header("Vary") or "")
        return r


class BadgePage(BadgePageBase):
    CONFIG = "[issuer]\nname = Pages University\nurl = https://pages.example.edu\n" \
             "image = https://pages.example.edu/logo.png\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

    # ---- content negotiation

    def test_machine_clients_get_the_document_unchanged(self):
        slug = self.badge("Negotiated")
        self.learner("neg-a")
        a = self.award(slug, "neg-a")
        urls = [a["assertion_url"], self.server.public_url + "/ob/v2/badges/" + slug,
                self.server.public_url + "/ob/v2/issuer"]
        for url in urls:
            plain = self.server.get(self.path(url))
            self.assertEqual(plain.status, 200, plain)
            self.assertEqual(plain.header("Content-Type"), "application/ld+json")
            self.assertEqual(plain.header("Vary"), "Accept")
            doc = json.loads(plain.body)
            self.assertEqual(doc["id"], url)
            for accept in MACHINE_ACCEPTS:
                with self.subTest(url=url, accept=accept):
                    r = self.server.get(self.path(url),
                                        headers={"Accept": accept} if accept else {})
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.body, plain.body, "the document's bytes changed")
                    self.assertEqual(r.header("Vary"), "Accept")
                    self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
                    want = "application/json" if accept in (
                        "application/json", "application/json, text/html") \
                        else "application/ld+json"
                    self.assertEqual(r.header("Content-Type"), want)
            for accept in HTML_ACCEPTS:
                with self.subTest(url=url, accept=accept):
                    r = self.html(url, accept=accept)
                    self.assertTrue(r.text.startswith("<!DOCTYPE html>"), r.text[:100])
                    self.assertNotEqual(r.header("ETag"), plain.header("ETag"))
        # the revoked assertion: 410 both ways, the document unchanged
        self.cli("award", "revoke", str(a["id"]), "--reason", "Wrong learner")
        doc = self.server.get(self.path(a["assertion_url"]))
        self.assertEqual(doc.status, 410)
        self.assertEqual(doc.header("Vary"), "Accept")
        self.assertEqual(json.loads(doc.body), {
            "@context": "https://w3id.org/openbadges/v2", "type": "Assertion",
            "id": a["assertion_url"], "revoked": True, "revocationReason": "Wrong learner"})
        self.html(a["assertion_url"], status=410)
        # images and the revocation list do not negotiate
        img = self.server.get(self.path(a["assertion_url"]) + "/image",
                              headers={"Accept": BROWSER})
        self.assertEqual(img.status, 404)
        rl = self.server.get("/ob/v2/revocations", headers={"Accept": BROWSER})
        self.assertEqual(rl.header("Content-Type"), "application/ld+json")
        self.assertIsNone(rl.header("Vary"))

    def test_unknown_ids_are_not_found_as_pages(self):
        for path in ("/ob/v2/assertions/nope", "/ob/v2/badges/nope", "/ob/v2/assertions/a.b"):
            with self.subTest(path=path):
                r = self.server.get(path, headers={"Accept": BROWSER})
                self.assertEqual(r.status, 404)

    # ---- the assertion page

    def test_valid_page_contents(self):
        slug = self.badge("Bridge builder", "--criteria", "Build a bridge.\n\nTest it.",
                          "--criteria-url", "https://pages.example.edu/criteria")
        self.learner("val-a")
        a = self.award(slug, "val-a", narrative="Her bridge held 40 kg.")
        r = self.html(a["assertion_url"])
        t = r.text
        self.assertIn('data-state="valid"', t)
        self.assertNotIn('role="alert"', t)
        self.assertIn("<h1>Bridge builder</h1>", t)
        self.assertIn("About Bridge builder", t)
        self.assertIn("Build a bridge.", t)
        self.assertIn('href="https://pages.example.edu/criteria"', t)
        self.assertIn("Her bridge held 40 kg.", t)
        self.assertIn('href="https://pages.example.edu"', t)
        self.assertIn("Pages University", t)
        self.assertIn('src="https://pages.example.edu/logo.png"', t)
        self.assertRegex(t, r'<time datetime="\d{4}-\d\d-\d\d">')
        # the name stays hidden until the learner shows it; the address never appears
        self.assertIn("Awarded to a verified e-mail address", t)
        self.assertNotIn("Ada Lovelace", t)
        self.assertNotIn("val-a@", t.lower())
        self.assertNotIn("val-a@example.edu", t.lower())
        # the baked image, downloadable
        m = re.search(r'<a class="button" href="([^"]+)" download=', t)
        self.assertIsNotNone(m, t)
        img = self.server.get(m.group(1))
        self.assertEqual(img.status, 200)
        self.assertEqual(img.header("Content-Type"), "image/png")
        # Open Graph and Twitter card
        canon = a["assertion_url"]
        self.assertIn('<link rel="canonical" href="%s">' % canon, t)
        self.assertIn('<meta property="og:url" content="%s">' % canon, t)
        self.assertIn('<meta property="og:title" content="Bridge builder">', t)
        self.assertIn('<meta property="og:description" content="About Bridge builder">', t)
        self.assertIn('<meta property="og:image" content="%s/ob/v2/badges/%s/image">'
                      % (self.server.public_url, slug), t)
        self.assertIn('<meta name="twitter:card" content="summary">', t)
        self.assertIn('<meta name="twitter:image" content="%s/ob/v2/badges/%s/image">'
                      % (self.server.public_url, slug), t)
        # the recipient check form posts to the server, no session needed
        self.assertIn('action="/badges/check/%s"' % canon.rsplit("/", 1)[1], t)

    def test_spanish_page(self):
        slug = self.badge("Puente")
        self.learner("es-a")
        a = self.award(slug, "es-a")
        r = self.server.get(self.path(a["assertion_url"]),
                            headers={"Accept": BROWSER, "Accept-Language": "es-ES,es;q=0.9"})
        self.assertEqual(r.status, 200)
        self.assertIn('lang="es"', r.text)
        self.assertIn("Otorgada a una dirección de correo verificada", r.text)
        self.assertIn("Comprobar el destinatario", r.text)

    def test_expired_page_says_so_first(self):
        slug = self.badge("Short lived")
        self.learner("exp-a")
        a = self.award(slug, "exp-a")
        lt.setup_sql(self.db, "UPDATE awards SET expires_at = ? WHERE id = ?",
                     int(time.time()) - 86400, a["id"])
        t = self.html(a["assertion_url"]).text
        main = t[t.index("<main"):]
        self.assertIn('data-state="expired"', main)
        alert = main.index('role="alert"')
        self.assertLess(alert, main.index("<h1>"), "the status comes before everything else")
        self.assertIn("This badge expired on", main[alert:main.index("<h1>")])
        self.assertIn('class="chip expired">Expired<', main)

    def test_revoked_page_says_so_first_with_reason(self):
        slug = self.badge("Taken back")
        self.learner("rev-a")
        a = self.award(slug, "rev-a")
        self.cli("award", "revoke", str(a["id"]), "--reason", "Plagiarised <b>work</b>")
        t = self.html(a["assertion_url"], status=410).text
        main = t[t.index("<main"):]
        alert = main.index('role="alert"')
        self.assertLess(alert, main.index("<h1>"))
        banner = main[alert:main.index("<h1>")]
        self.assertIn("This badge was revoked on", banner)
        self.assertIn("Plagiarised &lt;b&gt;work&lt;/b&gt;", banner)
        self.assertNotIn("<b>work", t)
        self.assertIn('class="chip revoked">Revoked<', main)
        # no baked image of a revoked badge
        self.assertNotIn("download=", t)

    def test_name_shown_only_when_the_learner_chooses(self):
        slug = self.badge("Named")
        token = self.learner("name-a", name=HOSTILE)
        a = self.award(slug, "name-a")
        t = self.html(a["assertion_url"]).text
        self.assertIn("Awarded to a verified e-mail address", t)
        self.assertNotIn("alert(", t)
        # the learner's page has the setting, off
        page = self.server.get("/badges?s=" + token)
        self.assertIn('action="/badges/showname"', page.text)
        self.assertRegex(page.text, r'name="show" value="1">')
        # without the CSRF token: refused, nothing changes
        r = self.server.post_form(form({"s": token, "show": "1"}), path="/badges/showname")
        self.assertRefusal(r, 403)
        self.assertNotIn("alert(", self.html(a["assertion_url"]).text)
        r = self.server.post_form(form({"s": token, "csrf": lt.csrf_of(self.db, token),
                                        "show": "1"}), path="/badges/showname")
        self.assertEqual(r.status, 303, r)
        page = self.server.get("/badges?s=" + token)
        self.assertRegex(page.text, r'name="show" value="1" checked>')
        t = self.html(a["assertion_url"]).text
        self.assertNotIn("<script>alert", t)
        esc = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"
        self.assertIn("Awarded to " + esc, t)
        self.assertIn("<title>Named, awarded to %s</title>" % esc, t)
        self.assertNotIn("Awarded to a verified e-mail address", t)
        # and off again (an unchecked box sends nothing)
        r = self.server.post_form(form({"s": token, "csrf": lt.csrf_of(self.db, token)}),
                                  path="/badges/showname")
        self.assertEqual(r.status, 303, r)
        self.assertIn("Awarded to a verified e-mail address", self.html(a["assertion_url"]).text)

    def test_hostile_badge_fields_escaped(self):
        slug = self.badge(HOSTILE, "--criteria", "Do </p><script>alert(2)</script> this")
        lt.setup_sql(self.db, "UPDATE badge_classes SET description = ?, criteria_url = ? "
                     "WHERE slug = ?", '<img src=x onerror=alert(1)>', "javascript:alert(3)", slug)
        self.learner("host-a")
        a = self.award(slug, "host-a", narrative="<iframe src=//evil>")
        for url in (a["assertion_url"], self.server.public_url + "/ob/v2/badges/" + slug):
            with self.subTest(url=url):
                t = self.html(url).text
                self.assertNotIn("<script>alert", t)
                self.assertNotIn("<img src=x", t)
                self.assertNotIn("<iframe", t)
                self.assertNotIn("javascript:", t)
                self.assertIn("&lt;img src=x onerror=alert(1)&gt;", t)

    # ---- the recipient check

    def test_recipient_check(self):
        slug = self.badge("Checked")
        self.learner("chk-a")
        a = self.award(slug, "chk-a")
        uid = a["assertion_url"].rsplit("/", 1)[1]
        yes = self.server.post_form(form({"email": "  CHK-A@example.EDU "}),
                                    path="/badges/check/" + uid)
        self.assertEqual(yes.status, 200, yes)
        self.assertIn('class="check-result yes"', yes.text)
        self.assertIn("Yes: this badge was awarded to CHK-A@example.EDU.", yes.text)
        no = self.server.post_form(form({"email": "someone@example.edu"}),
                                   path="/badges/check/" + uid)
        self.assertEqual(no.status, 200, no)
        self.assertIn('class="check-result no"', no.text)
        self.assertNotIn('class="check-result yes"', no.text)
        hostile = self.server.post_form(form({"email": "<b>x</b>@example.edu"}),
                                        path="/badges/check/" + uid)
        self.assertIn("&lt;b&gt;x&lt;/b&gt;@example.edu", hostile.text)
        self.assertNotIn("<b>x</b>", hostile.text)
        self.assertRefusal(self.server.post_form(form({"email": ""}),
                                                 path="/badges/check/" + uid), 400)
        self.assertEqual(self.server.post_form(form({"email": "a@b.c"}),
                                               path="/badges/check/nope").status, 404)
        self.assertEqual(self.server.get("/badges/check/" + uid).status, 405)
        # the hash compared is the one the document publishes
        doc = json.loads(self.server.get(self.path(a["assertion_url"])).body)
        r = doc["recipient"]
        self.assertEqual(r["identity"], "sha256$" + hashlib.sha256(
            ("chk-a@example.edu" + r["salt"]).encode()).hexdigest())


class HoldersShown(BadgePageBase):
    CONFIG = "[issuer]\nname = Counting College\nshow_holders = true\n"

    def test_badgeclass_page_with_holders_and_alignments(self):
        slug = self.badge("Counted", "--alignment",
                          "Bridges|https://framework.example.org/b|Span a gap|EngFW|B-1")
        for u in ("hold-a", "hold-b"):
            self.learner(u)
            self.award(slug, u)
        t = self.html(self.server.public_url + "/ob/v2/badges/" + slug).text
        self.assertIn("<h1>Counted</h1>", t)
        self.assertIn('<dd class="holders">2</dd>', t)
        self.assertIn('<a href="https://framework.example.org/b" rel="noopener">Bridges</a>', t)
        self.assertIn("(EngFW, B-1): Span a gap", t)
        self.assertIn("Counting College", t)
        issuer = self.html(self.server.public_url + "/ob/v2/issuer").text
        self.assertIn("<h1>Counting College</h1>", issuer)


class HoldersHidden(BadgePageBase):
    CONFIG = "[issuer]\nname = Quiet College\n"

    def test_badgeclass_page_without_holders(self):
        slug = self.badge("Uncounted")
        self.learner("quiet-a")
        self.award(slug, "quiet-a")
        t = self.html(self.server.public_url + "/ob/v2/badges/" + slug).text
        self.assertIn("<h1>Uncounted</h1>", t)
        self.assertNotIn("holders", t)


def old_slot(kind, s):
    """The slot of the in-process table the recipient check counted in before its counts moved
    into the database: FNV-1a 64 of kind + s, modulo 1 024 slots. Keys of one slot shared a
    count there."""
    h = 1469598103934665603
    for b in (kind + s).encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % 1024


class CheckLimit(BadgePageBase):
    # trusted_proxies: the tests name the client in X-Forwarded-For
    CONFIG = "[issuer]\nname = Limited College\n[server]\ntrusted_proxies = 127.0.0.1\n"

    def checks(self, uid, client, n):
        return [self.server.request("POST", "/badges/check/" + uid,
                                    body=form({"email": "guess%d@example.edu" % i}),
                                    headers={"Content-Type": lt.FORM,
                                             "X-Forwarded-For": client}).status
                for i in range(n)]

    def test_a_client_and_a_badge_never_share_a_count(self):
        # the CI failure made certain: a client whose key fell in the badge's slot of the old
        # table, where each check counted twice and the sixth was refused
        slug = self.badge("Colliding")
        self.learner("lim-c")
        uid = self.award(slug, "lim-c")["assertion_url"].rsplit("/", 1)[1]
        want = old_slot("badge:", uid)
        client = next(ip for ip in ("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)
                                    for i in range(1, 1 << 20))
                      if old_slot("client:", ip) == want)
        self.assertEqual(self.checks(uid, client, 10), [200] * 10)
        self.assertEqual(self.checks(uid, client, 1), [429])

    def test_clients_apart_and_the_badge_over_all(self):
        slug = self.badge("Many clients")
        self.learner("lim-m")
        uid = self.award(slug, "lim-m")["assertion_url"].rsplit("/", 1)[1]
        for c in range(3):
            self.assertEqual(self.checks(uid, "192.0.2.%d" % (c + 1), 10), [200] * 10)
            self.assertEqual(self.checks(uid, "192.0.2.%d" % (c + 1), 1), [429])
        # 30 against the badge: a fourth client is refused too, another badge is not
        self.assertEqual(self.checks(uid, "192.0.2.4", 1), [429])
        slug2 = self.badge("Other badge")
        uid2 = self.award(slug2, "lim-m")["assertion_url"].rsplit("/", 1)[1]
        self.assertEqual(self.checks(uid2, "192.0.2.4", 1), [200])

    def test_counts_outlive_a_restart(self):
        slug = self.badge("Restarted")
        self.learner("lim-r")
        uid = self.award(slug, "lim-r")["assertion_url"].rsplit("/", 1)[1]
        self.assertEqual(self.checks(uid, "198.51.100.7", 10), [200] * 10)
        rc, _ = self.server.stop()
        self.assertEqual(rc, 0, self.server.stderr()[-1500:])
        again = lt.Server(self.tmp, db=self.db, **self.server_kwargs)
        type(self).server = again
        self.addClassCleanup(again.kill)
        again.start()
        self.assertEqual(self.checks(uid, "198.51.100.7", 1), [429])
        self.assertEqual(self.checks(uid, "198.51.100.8", 1), [200])

    def test_checks_are_rate_limited(self):
        slug = self.badge("Limited")
        self.learner("lim-a")
        a = self.award(slug, "lim-a")
        uid = a["assertion_url"].rsplit("/", 1)[1]
        answers = [self.server.post_form(form({"email": "guess%d@example.edu" % i}),
                                         path="/badges/check/" + uid).status
                   for i in range(10)]
        self.assertEqual(answers, [200] * 10)
        over = self.server.post_form(form({"email": "lim-a@example.edu"}),
                                     path="/badges/check/" + uid)
        self.assertRefusal(over, 429, "too many addresses")
        self.assertNotIn("check-result", over.text)


if __name__ == "__main__":
    unittest.main()
