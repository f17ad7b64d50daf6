#!/usr/bin/python3
"""The learner's and the instructor's pages over HTTP, against the real server:
what a learner sees (earned, on its way, revoked, still to earn with the rule
in words, progress and why not yet, all badges across courses), the
instructor's settings form (CSRF, roles, bad values change nothing), the
language of the page, escaping, CSP and form limits. The same flows in a
real browser are in tests/browser/."""
import html
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, png_bytes, run_cli  # noqa: E402

WAIT = 15


def form_fields(page_text, action):
    """The fields of the <form> whose action ends with `action`: name -> value."""
    m = re.search(r'<form[^>]*action="[^"]*%s"[^>]*>(.*?)</form>' % re.escape(action),
                  page_text, re.S)
    assert m, "no form posting to %s" % action
    fields = {}
    for tag in re.findall(r"<input[^>]*>", m.group(1)):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
    return fields


def section(page_text, heading_id):
    """The text of the <section> labelled by `heading_id`, or None."""
    m = re.search(r'<section aria-labelledby="%s">(.*?)</section>' % heading_id, page_text, re.S)
    return m.group(1) if m else None


def plain(fragment):
    return html.unescape(re.sub(r"<[^>]*>", " ", fragment or ""))


class PagesTestCase(lt.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.png = os.path.join(cls.tmp, "b.png")
        with open(cls.png, "wb") as f:
            f.write(png_bytes())

    def cli(self, *args, ok=True):
        p = run_cli(*args, "--db", self.db)
        if ok:
            self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p

    def badge(self, name, rule, context=None, description=None, *extra):
        args = ["badge", "create", "--consumer", self.key, "--name", name, "--description",
                description or ("About " + name), "--image", self.png, "--rule", rule]
        if context:
            args += ["--context", context]
        p = self.cli(*(args + list(extra)))
        return re.match(r"^slug=(\S+)$", p.stdout.strip()).group(1)

    def open_page(self, user, context, roles="Learner", email=True, headers=None, **over):
        params = base_launch(user_id=user, context_id=context, roles=roles,
                             context_title=over.pop("title", "Course " + context),
                             lis_person_contact_email_primary=(user + "@example.edu")
                             if email else None, **over)
        body = lt.sign(self.server.launch_url, params, self.key, self.secret)
        h = {"Content-Type": lt.FORM}
        h.update(headers or {})
        resp = self.server.request("POST", "/lti/launch", body=body, headers=h)
        token = self.assertRedirectToPage(resp)
        page = self.server.get(self.server.page_path(resp.header("Location")), headers=headers)
        self.assertEqual(page.status, 200, page)
        return token, page

    def get_page(self, token, path="/badges", headers=None):
        page = self.server.get("%s?s=%s" % (path, token), headers=headers)
        self.assertEqual(page.status, 200, page)
        return page

    def grade(self, user, context, score, link="final"):
        self.cli("grade", "record", "--consumer", self.key, "--context", context, "--user", user,
                 "--resource-link", link, "--score", str(score))

    def wait_state(self, user, slug, state):
        deadline = time.monotonic() + WAIT
        while True:
            got = [a for a in json.loads(self.cli("award", "list", "--json").stdout)
                   if a["user"] == user and a["badge"] == slug]
            if got and got[0]["state"] == state:
                return got[0]
            if time.monotonic() > deadline:
                self.fail("award of %s for %s not %s: %r" % (slug, user, state, got))
            time.sleep(0.1)

    def post(self, path, fields, content_type=lt.FORM):
        body = urllib.parse.urlencode(fields).encode()
        return self.server.request("POST", path, body=body,
                                   headers={"Content-Type": content_type})



class LearnerPage(PagesTestCase):
    def test_earned_available_progress_and_why_not_yet(self):
        ctx = "ui-" + lt.hex_id(4)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        first = self.badge("Eighty", "score:0.8:final", ctx,
                           "Scored 80%", "--criteria", "Score 0.8.\n\nOn the final exam.")
        second = self.badge("Pass", "score:0.5", ctx)
        self.badge("Elsewhere", "score:0.1", "other-" + ctx)
        token, page = self.open_page("ada", ctx)
        avail = section(page.text, "avail-h")
        self.assertIn("Eighty", plain(avail))
        self.assertIn("Pass", plain(avail))
        self.assertNotIn("Elsewhere", plain(avail), "another course's badge is not offered")
        self.assertIn("Reach a score of at least 80% on an activity not opened yet",
                      plain(avail), "percent, never 0.80; an activity not launched yet said so")
        self.assertNotIn("\u201cfinal\u201d", plain(avail), "never the LMS's id of an activity")
        self.assertIn("On the final exam.", plain(avail), "the criteria narrative")
        self.assertIn("No grade", plain(avail), "why not yet, with no grade at all")

        self.grade("ada", ctx, 0.72)
        self.wait_state("ada", second, "issued")
        page = self.get_page(token)
        earned = section(page.text, "earned-h")
        self.assertIn("Completed the course", plain(earned),
                      "0.72 passes the course's pass mark: its completion badge, made for it")
        earned = re.search(r'<article class="badge earned" data-slug="%s">.*?</article>' % second,
                           earned, re.S).group(0)
        self.assertIn("Pass", plain(earned))
        self.assertRegex(plain(earned), r"Issued on \d{1,2} [A-Z][a-z]+ \d{4}")
        verify = re.search(r'<a class="button small" href="([^"]+)" target="_blank" '
                           r'rel="noopener">Public page', earned)
        self.assertIsNotNone(verify, earned)
        doc = self.server.get(urllib.parse.urlsplit(html.unescape(verify.group(1))).path)
        self.assertEqual(doc.status, 200)
        self.assertEqual(json.loads(doc.body)["type"], "Assertion")
        download = re.search(r'<a href="([^"]+)" download=', earned)
        img = self.server.get(html.unescape(download.group(1)))
        self.assertEqual(img.status, 200)
        self.assertEqual(img.header("Content-Type"), "image/png")
        self.assertIn('data-copy="%s"' % verify.group(1), earned, "copy link copies the URL")
        self.assertIn('download="%s.png"' % second, earned, "the download is named as a PNG")

        # LinkedIn's add-to-profile link, with its documented parameters
        award = self.wait_state("ada", second, "issued")
        li = re.search(r'<a class="linkedin" href="([^"]+)"', earned)
        self.assertIsNotNone(li, earned)
        u = urllib.parse.urlsplit(html.unescape(li.group(1)))
        self.assertEqual((u.scheme, u.netloc, u.path), ("https", "www.linkedin.com", "/profile/add"))
        q = dict(urllib.parse.parse_qsl(u.query))
        assertion = html.unescape(verify.group(1))
        self.assertEqual(q["startTask"], "CERTIFICATION_NAME")
        self.assertEqual(q["name"], "Pass")
        self.assertEqual(q["organizationName"], "ltibadges", "the issuer's name (the default)")
        # the month of the award as stored (not of now: a month may turn over meanwhile)
        issued = time.gmtime(award["issued_at"])
        self.assertEqual((q["issueYear"], q["issueMonth"]),
                         (str(issued.tm_year), str(issued.tm_mon)), "month without a leading 0")
        self.assertEqual(q["certUrl"], assertion, "the certification URL is the public page")
        self.assertEqual(q["certId"], assertion.rstrip("/").rsplit("/", 1)[1], "the award's uid")
        self.assertNotIn("expirationYear", q, "a badge that does not expire")
        self.assertIsNotNone(award)

        avail = plain(section(page.text, "avail-h"))
        self.assertIn("Your score 72% \u2014 80% needed", avail)
        self.assertIn("Judged on: your score 72%", avail)
        self.assertIn("Still missing: 8% more (80% needed)", avail)
        self.assertIn('value="0.90"', page.text, "progress 0.72 of 0.80")
        self.assertNotIn(second, re.findall(r'class="badge available" data-slug="([^"]+)"',
                                            page.text), "earned badges are not offered again")
        self.assertIn(first, page.text)

    def test_pending_failed_and_revoked_in_words(self):
        ctx = "pend-" + lt.hex_id(4)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("Hand", "manual", ctx)
        token, _ = self.open_page("noemail", ctx, email=False)
        self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", "noemail",
                 "--narrative", "Helped others")
        page = self.get_page(token)
        pend = plain(section(page.text, "pending-h"))
        self.assertIn("waiting for your e-mail address", pend)
        self.assertIn("Ask your instructor", pend, "no mail and no unconfirmed addresses: "
                      "the learner is told whom to ask, and gets no form")
        self.assertNotIn('name="email"', page.text)

        token2, _ = self.open_page("bob", ctx)
        self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", "bob")
        award = self.wait_state("bob", slug, "issued")
        self.cli("award", "revoke", str(award["id"]), "--reason", "Granted <by mistake> & more")
        page = self.get_page(token2)
        rev = section(page.text, "revoked-h")
        self.assertIn("Granted &lt;by mistake&gt; &amp; more", rev, "the reason, escaped")
        self.assertRegex(plain(rev), r"Revoked on \d{1,2} [A-Z][a-z]+ \d{4}: Granted <by mistake> & more")
        self.assertNotIn("Hand", plain(section(page.text, "earned-h")))

    def test_summary_points_titles_and_dates_in_the_lms_language(self):
        ctx = "pts-" + lt.hex_id(4)
        link = "final-" + lt.hex_id(4)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        self.badge("Eighty", "score:0.8:" + link, ctx)
        hand = self.badge("Hand", "manual", ctx)
        self.badge("Fifty", "score:0.5:" + link, ctx)
        token, page = self.open_page("pia", ctx, resource_link_id=link,
                                     resource_link_title="Final exam",
                                     custom_canvas_assignment_points_possible="10")
        self.assertIn("Badges earned in this course: 0 of 3.", plain(page.text))
        avail = plain(section(page.text, "avail-h"))
        self.assertIn("Reach a score of at least 8 of 10 points on \u201cFinal exam\u201d", avail,
                      "points as Canvas shows them, the activity by its title")
        self.assertNotIn(link, page.text, "never the LMS's id of an activity")
        self.grade("pia", ctx, 0.45, link)
        self.cli("award", "grant", "--badge", hand, "--consumer", self.key, "--user", "pia")
        self.wait_state("pia", hand, "issued")
        avail = plain(section(self.get_page(token).text, "avail-h"))
        self.assertIn("Your score 4.5 of 10 points \u2014 8 of 10 points needed", avail)
        self.assertIn("Still missing: 3.5 points more (8 of 10 points needed)", avail)
        page = self.get_page(token)
        self.assertIn("Badges earned in this course: 1 of 3.", plain(page.text))

        # the same page in Spanish: dates, decimals and percent as Spanish writes them
        token, page = self.open_page("pia", ctx, launch_presentation_locale="es-ES",
                                     resource_link_id="other-" + lt.hex_id(4))
        text = plain(page.text)
        self.assertRegex(text, r"Emitida el \d{1,2} de [a-z]+ de \d{4}")
        self.assertIn("4,5 de 10 puntos", text)
        self.assertIn("Insignias obtenidas en este curso: 1 de 3.", text)

    def test_enrollment_badge_with_badges_off_gives_the_real_reason(self):
        ctx = "enr-" + lt.hex_id(4)
        slug = self.badge("Welcome", "enrollment", ctx)
        _, page = self.open_page("eno", ctx)
        avail = plain(section(page.text, "avail-h"))
        self.assertIn("Badges are not switched on for this course yet", avail)
        self.assertNotIn("before this badge was set up", avail,
                         "badges off is the one reason it was not given")
        self.assertIn("Once they are on, you get it at once", avail)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        self.wait_state("eno", slug, "issued")

    def test_all_my_badges_across_courses(self):
        a, b = "alla-" + lt.hex_id(3), "allb-" + lt.hex_id(3)
        for c in (a, b):
            self.cli("context", "enable", "--consumer", self.key, "--context", c)
        sa = self.badge("In A", "manual", a)
        sb = self.badge("In B", "manual", b)
        token_a, _ = self.open_page("cara", a)
        self.open_page("cara", b)
        for s in (sa, sb):
            self.cli("award", "grant", "--badge", s, "--consumer", self.key, "--user", "cara")
            self.wait_state("cara", s, "issued")
        here = plain(section(self.get_page(token_a).text, "earned-h"))
        self.assertIn("In A", here)
        self.assertNotIn("In B", here)
        every = self.get_page(token_a, "/badges/all").text
        earned = plain(section(every, "earned-h"))
        self.assertIn("In A", earned)
        self.assertIn("In B", earned)
        self.assertIn("Course " + b, earned, "a badge of another course says which")
        self.assertIn('aria-current="page"', every)

    def test_language_from_launch_then_browser(self):
        ctx = "lang-" + lt.hex_id(3)
        _, page = self.open_page("es1", ctx, launch_presentation_locale="es-MX")
        self.assertIn('<html lang="es">', page.text)
        self.assertIn("Tus insignias", page.text)
        self.assertIn("Insignias que puedes obtener", page.text)
        token, page = self.open_page("es2", ctx, headers={"Accept-Language": "fr;q=1, es;q=0.5"})
        self.assertIn("Tus insignias", page.text, "the best language we have")
        _, page = self.open_page("fr", ctx, launch_presentation_locale="fr-FR",
                                 headers={"Accept-Language": "fr"})
        self.assertIn('<html lang="en">', page.text)
        self.assertIn("Your badges", page.text, "a missing language falls back to English")
        bad = self.server.get("/badges?s=1-" + "0" * 64, headers={"Accept-Language": "es"})
        self.assertRefusal(bad, 403, "abre la herramienta de nuevo")

    def test_escaping_and_security_headers(self):
        ctx = "esc-" + lt.hex_id(3)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        self.badge("<script>alert(1)</script>", "manual", ctx, "\"><img src=x onerror=alert(1)>",
                   "--criteria", "<a href=\"javascript:alert(1)\">x</a>")
        _, page = self.open_page("eve", ctx, title="<b>Course</b>",
                                 headers={"Origin": "https://lms.example.edu"})
        self.assertNotIn("<script>alert", page.text)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page.text)
        self.assertNotIn("<img src=x", page.text)
        self.assertNotIn('href="javascript:', page.text)
        self.assertIn("&lt;a href=&quot;javascript:alert(1)&quot;&gt;x&lt;/a&gt;", page.text,
                      "the narrative is text, never markup")
        self.assertNotIn("<b>Course</b>", page.text)
        csp = page.header("Content-Security-Policy")
        self.assertIn("frame-ancestors 'self' https://lms.example.edu", csp)
        _, page = self.open_page("eve2", ctx, headers={"Origin": "https://x; script-src *"})
        self.assertNotIn("frame-ancestors", page.header("Content-Security-Policy"),
                         "an origin that is not a bare origin is never written into the header")


class InstructorPage(PagesTestCase):
    def settings(self, token, page, **over):
        fields = form_fields(page.text, "/badges/settings")
        self.assertEqual(fields["s"], token)
        self.assertRegex(fields["csrf"], r"^[0-9a-f]{64}$")
        fields.update(over)
        return self.post("/badges/settings", {k: v for k, v in fields.items() if v is not None})

    def context_row(self, ctx):
        c = lt.context(self.db, self.key, ctx)
        return (c["badges_enabled"], c["pass_mark"], c["completion_link"])

    def test_settings_saved_with_csrf(self):
        ctx = "set-" + lt.hex_id(3)
        token, page = self.open_page("prof", ctx, roles="Instructor", resource_link_id="final")
        self.assertIn("Course settings", page.text)
        self.assertIn('id="backend-status"', page.text)
        self.assertIn("built-in Open Badges issuer", page.text)
        # the pass mark is typed and shown in percent, stored as the 0-1 score the LMS sends
        self.assertIn('name="pass_percent"', page.text)
        self.assertIn('value="50"', page.text)
        resp = self.settings(token, page, enabled="1", pass_percent="75", completion_link="final")
        self.assertEqual(resp.status, 303, resp)
        self.assertIn("m=saved", resp.header("Location"))
        self.assertEqual(self.context_row(ctx), (True, 0.75, "final"))
        page = self.server.get(self.server.page_path(resp.header("Location")))
        self.assertIn("Saved.", page.text)
        self.assertIn('value="final" selected', page.text)
        self.assertIn('id="pass_percent" name="pass_percent" type="number" min="0" max="100"',
                      page.text)
        self.assertIn('value="75"', page.text)
        resp = self.settings(token, page, enabled=None, pass_percent="50,5", completion_link="")
        self.assertEqual(resp.status, 303, resp)
        self.assertEqual(self.context_row(ctx), (False, 0.505, None))

    def test_bad_settings_change_nothing(self):
        ctx = "bad-" + lt.hex_id(3)
        token, page = self.open_page("prof2", ctx, roles="Instructor", resource_link_id="l1")
        before = self.context_row(ctx)
        for over, status, phrase in (
                ({"csrf": "0" * 64}, 403, "did not come from this tool"),
                ({"csrf": None}, 403, "did not come from this tool"),
                ({"s": "1-" + "a" * 64}, 403, "open the tool again"),
                ({"pass_percent": "150", "enabled": "1"}, 400, "from 0 to 100"),
                ({"pass_percent": "nan", "enabled": "1"}, 400, "from 0 to 100"),
                # the 0-1 field of before is not read as a percent of it
                ({"pass_percent": None, "pass_mark": "0.75", "enabled": "1"}, 400,
                 "from 0 to 100"),
                ({"completion_link": "not-here", "enabled": "1"}, 400, "not part of this course")):
            resp = self.settings(token, page, **over)
            self.assertRefusal(resp, status, phrase)
            self.assertEqual(self.context_row(ctx), before, over)

    def test_learner_token_never_reaches_instructor_forms(self):
        ctx = "role-" + lt.hex_id(3)
        token, page = self.open_page("stud", ctx)
        self.assertNotIn("/badges/settings", page.text)
        # a learner's own (valid) session and CSRF token, on the instructor's form
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
        self.assertIsNone(csrf, "a learner page with no form has no CSRF token")
        itoken, ipage = self.open_page("prof3", ctx, roles="Instructor")
        ifields = form_fields(ipage.text, "/badges/settings")
        resp = self.post("/badges/settings", dict(ifields, s=token, enabled="1",
                                                  pass_percent="10"))
        self.assertRefusal(resp, 403)
        # a learner with a CSRF token of their own session (from a page that has a form)
        resp = self.post("/badges/settings", {"s": token, "csrf": lt.csrf_of(self.db, token),
                                              "enabled": "1", "pass_percent": "10"})
        self.assertRefusal(resp, 403, "only the course's instructors")
        self.assertEqual(self.context_row_or_none(ctx), (False,))

    def test_form_limits_and_types(self):
        ctx = "lim-" + lt.hex_id(3)
        token, page = self.open_page("prof4", ctx, roles="Instructor")
        fields = form_fields(page.text, "/badges/settings")
        big = dict(fields, pass_percent="50", filler="x" * (70 * 1024))
        resp = self.post("/badges/settings", big)
        self.assertRefusal(resp, 413)
        resp = self.post("/badges/settings", fields, content_type="application/json")
        self.assertRefusal(resp, 415)
        resp = self.server.get("/badges/settings")
        self.assertRefusal(resp, 405)
        self.assertEqual(self.context_row_or_none(ctx), (False,))

    def context_row_or_none(self, ctx):
        c = lt.context(self.db, self.key, ctx)
        return (c["badges_enabled"],) if c else None


if __name__ == "__main__":
    lt.main()
