#!/usr/bin/python3
"""The instructor's awards table (issue 6) over HTTP, against the real server:
the course's awards filtered by badge and state, manual award to several
learners with their evidence, revoke of several with a reason, retry of a
failed one, the CSV export (quoting, formula injection), and refusals that
change nothing: a learner's session, a missing CSRF token, a user not
enrolled, an award of another course."""
import csv
import html
import io
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
TRICKY = 'Ann, "the Q"\nLee'
FORMULA = "=HYPERLINK(\"http://evil.example\",\"x\")"


def form_fields(page_text, action):
    """The hidden and text inputs of the <form> posting to `action`: name -> value."""
    m = re.search(r'<form method="post" action="[^"]*%s"[^>]*>(.*?)</form>' % re.escape(action),
                  page_text, re.S)
    assert m, "no form posting to %s" % action
    fields = {}
    for tag in re.findall(r'<input type="hidden"[^>]*>', m.group(1)):
        name = re.search(r'name="([^"]*)"', tag).group(1)
        fields[html.unescape(name)] = html.unescape(re.search(r'value="([^"]*)"', tag).group(1))
    return fields


def rows(page_text):
    """The awards table's rows: award id -> (state, slug, text)."""
    out = {}
    for m in re.finditer(r'<tr data-award="(\d+)" data-state="([a-z_]+)" data-slug="([^"]+)">'
                         r'(.*?)</tr>', page_text, re.S):
        out[int(m.group(1))] = (m.group(2), m.group(3),
                                html.unescape(re.sub(r"<[^>]*>", " ", m.group(4))))
    return out


class AwardsTable(lt.ServerTestCase):
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

    def badge(self, name, context=None):
        args = ["badge", "create", "--consumer", self.key, "--name", name, "--description",
                "About " + name, "--image", self.png, "--rule", "manual"]
        if context:
            args += ["--context", context]
        return re.match(r"^slug=(\S+)$", self.cli(*args).stdout.strip()).group(1)

    def open(self, user, context, roles="Learner", name=None, email=True):
        params = base_launch(user_id=user, context_id=context, roles=roles,
                             context_title="Course " + context,
                             lis_person_name_full=name or ("Name of " + user),
                             lis_person_contact_email_primary=(user + "@example.edu")
                             if email else None)
        resp = self.launch(params)
        return self.assertRedirectToPage(resp)

    def get(self, token, path="/badges/awards", **query):
        q = urllib.parse.urlencode(dict(s=token, **query))
        return self.server.get("%s?%s" % (path, q))

    def page(self, token, **query):
        resp = self.get(token, **query)
        self.assertEqual(resp.status, 200, resp)
        return resp

    def post(self, path, fields):
        body = urllib.parse.urlencode(fields, doseq=True).encode()
        return self.server.request("POST", path, body=body, headers={"Content-Type": lt.FORM})

    def user_id(self, lti_user_id):
        return lt.user(self.db, self.key, lti_user_id)["id"]

    def awards(self):
        return lt.awards(self.db)

    def award_rows(self):
        """Every award, once the worker is done with them (to compare before and after)."""
        deadline = time.monotonic() + WAIT
        while True:
            got = sorted(({k: a[k] for k in ("id", "state", "revoke_reason", "narrative",
                                              "revoke_synced")} for a in self.awards()),
                         key=lambda a: a["id"])
            if all(a["state"] not in ("queued", "issuing") and a["revoke_synced"] for a in got):
                return got
            self.assertLess(time.monotonic(), deadline, "the worker did not settle: %r" % got)
            time.sleep(0.05)

    def follow(self, resp):
        self.assertEqual(resp.status, 303, resp)
        loc = resp.header("Location")
        self.assertTrue(loc.startswith(self.server.public_url + "/badges/awards?s="), loc)
        u = urllib.parse.urlsplit(loc)
        page = self.server.get(u.path + "?" + u.query)
        self.assertEqual(page.status, 200, page)
        return page, dict(urllib.parse.parse_qsl(u.query))

    def setUp(self):
        # a fresh course per test: its own instructor, learners and badges
        self.ctx = "tbl-" + lt.hex_id(3)
        self.other = "oth-" + lt.hex_id(3)
        self.cli("context", "enable", "--consumer", self.key, "--context", self.ctx)
        self.slug = self.badge("Helper " + self.ctx, self.ctx)
        self.slug2 = self.badge("Second " + self.ctx, self.ctx)
        self.elsewhere = self.badge("Elsewhere " + self.ctx, self.other)
        self.prof = self.open("prof-" + self.ctx, self.ctx, roles="Instructor")
        self.ada = "ada-" + self.ctx
        self.bob = "bob-" + self.ctx
        self.ada_token = self.open(self.ada, self.ctx)
        self.open(self.bob, self.ctx)
        self.carl = "carl-" + self.ctx  # a learner of the other course only
        self.open(self.carl, self.other)

    def grant(self, users, slug=None, narrative="", own=None, token=None, csrf=None):
        token = token or self.prof
        page = self.page(token)
        fields = form_fields(page.text, "/badges/award")
        fields.update(badge=slug or self.slug, narrative=narrative,
                      user=[str(self.user_id(u)) for u in users])
        for u, text in (own or {}).items():
            fields["narrative-%d" % self.user_id(u)] = text
        if csrf is not None:
            fields["csrf"] = csrf
        return self.post("/badges/award", {k: v for k, v in fields.items() if v is not None})

    def ids_of(self, users, slug=None):
        ids = {a["user"]: a["id"] for a in self.awards() if a["badge"] == (slug or self.slug)}
        return [ids[u] for u in users]

    # ---- manual award ----

    def test_manual_award_to_two_with_narratives(self):
        page = self.page(self.prof)
        self.assertIn('aria-current="page"', page.text)
        listed = re.search(r'<table class="list learners">.*?</table>', page.text, re.S).group(0)
        self.assertIn("Name of " + self.ada, listed, "enrolled learners are listed")
        self.assertNotIn("Name of " + self.carl, listed, "not the other course's")
        self.assertNotIn("Name of prof-", listed, "nor the instructors")
        self.assertNotIn(self.elsewhere, page.text, "nor another course's badges")
        resp = self.grant([self.ada, self.bob], narrative="Helped everyone",
                          own={self.ada: "Ran the study group"})
        page, q = self.follow(resp)
        self.assertEqual((q["m"], q["n"], q["other"]), ("awarded", "2", "0"))
        self.assertIn("Awarded: 2. Already had it: 0.", page.plain)
        got = {a["user"]: a for a in self.awards() if a["badge"] == self.slug}
        self.assertEqual(got[self.ada]["narrative"], "Ran the study group")
        self.assertEqual(got[self.bob]["narrative"], "Helped everyone")
        self.assertEqual(got[self.ada]["reason"], "manual")
        self.assertEqual(got[self.ada]["context"], self.ctx)
        table = rows(page.text)
        self.assertIn(got[self.ada]["id"], table)
        self.assertIn("Ran the study group", table[got[self.ada]["id"]][2])
        self.assertIn("Name of " + self.bob, table[got[self.bob]["id"]][2])

        # again, with one new learner: the two who have it are reported, not awarded twice
        dave = "dave-" + self.ctx
        self.open(dave, self.ctx)
        before = len(self.awards())
        page, q = self.follow(self.grant([self.ada, self.bob, dave], narrative="Again"))
        self.assertEqual((q["n"], q["other"]), ("1", "2"))
        self.assertIn("Awarded: 1. Already had it: 2.", page.plain)
        self.assertEqual(len(self.awards()), before + 1)
        self.assertEqual({a["user"]: a for a in self.awards()}[self.ada]["narrative"],
                         "Ran the study group", "the first award is kept as it was")

    def test_course_page_counts_open_the_filtered_table(self):
        self.assertEqual(self.grant([self.ada], narrative="Helped").status, 303)
        deadline = time.monotonic() + WAIT
        while not any(a["state"] == "issued" for a in self.awards()
                      if a["badge"] == self.slug):
            self.assertLess(time.monotonic(), deadline, "the award was not issued")
            time.sleep(0.05)
        course = self.get(self.prof, path="/badges")
        self.assertEqual(course.status, 200, course)
        text = course.text
        self.assertLess(text.index("Create a badge"), text.index("Course settings"),
                        "Create a badge is at the top")
        links = {html.unescape(m.group(2)): html.unescape(m.group(1)) for m in re.finditer(
            r'<li><a href="([^"]+)">([^<]+)</a></li>', text)}
        for label in ("Issued: 1", "Waiting to be issued: 0",
                      "Waiting for an e-mail address: 0", "Failed: 0"):
            self.assertIn(label, links, links)
        u = urllib.parse.urlsplit(links["Issued: 1"])
        self.assertEqual(u.path, "/badges/awards")
        self.assertEqual(dict(urllib.parse.parse_qsl(u.query))["state"], "issued")
        table = self.server.get(u.path + "?" + u.query)
        self.assertEqual(table.status, 200, table)
        self.assertEqual(len(re.findall(r'<tr data-award="', table.text)), 1, "the issued award")
        u = urllib.parse.urlsplit(links["Failed: 0"])
        table = self.server.get(u.path + "?" + u.query)
        self.assertEqual(re.findall(r'<tr data-award="', table.text), [], "none failed")

    def test_course_less_badge_awarded_in_this_course(self):
        wide = self.badge("Wide " + self.ctx)
        page = self.page(self.prof)
        self.assertIn(wide, page.text, "a course-less badge of the consumer can be awarded here")
        self.follow(self.grant([self.ada], slug=wide, narrative="Everywhere"))
        award = [a for a in self.awards() if a["badge"] == wide][0]
        self.assertEqual(award["context"], self.ctx, "recorded in this course")
        self.assertIn(award["id"], rows(self.page(self.prof).text))
        # the same badge awarded in another course is not this course's
        oprof = self.open("oprof-" + self.ctx, self.other, roles="Instructor")
        self.follow(self.grant([self.carl], slug=wide, narrative="There", token=oprof))
        carl = [a for a in self.awards() if a["badge"] == wide and a["user"] == self.carl][0]
        self.assertNotIn(carl["id"], rows(self.page(self.prof).text))
        self.assertIn(carl["id"], rows(self.page(oprof).text))

    def test_award_refusals_change_nothing(self):
        before = self.award_rows()
        cases = (
            ("not enrolled", dict(users=[self.ada, self.carl], narrative="x"), 403,
             "not a learner of this course"),
            ("an instructor", dict(users=["prof-" + self.ctx], narrative="x"), 403,
             "not a learner of this course"),
            ("another course's badge", dict(users=[self.ada], slug=self.elsewhere,
                                            narrative="x"), 403, "not one of this course"),
            ("unknown badge", dict(users=[self.ada], slug="no-such-badge", narrative="x"), 400,
             "not one of this course"),
            ("no evidence", dict(users=[self.ada, self.bob], own={self.ada: "mine"}), 400,
             "write the evidence"),
            ("nobody", dict(users=[], narrative="x"), 400, "at least one learner"),
            ("CSRF missing", dict(users=[self.ada], narrative="x", csrf=""), 403,
             "did not come from this tool"),
        )
        for what, kw, status, phrase in cases:
            with self.subTest(what):
                self.assertRefusal(self.grant(**kw), status, phrase)
                self.assertEqual(self.award_rows(), before, what)
        resp = self.post("/badges/award", {"s": self.prof, "badge": self.slug,
                                           "user": str(self.user_id(self.ada)),
                                           "narrative": "x"})
        self.assertRefusal(resp, 403, "did not come from this tool")
        resp = self.post("/badges/award", {"s": self.prof, "csrf": lt.csrf_of(self.db, self.prof),
                                           "badge": self.slug, "user": "abc",
                                           "narrative": "x"})
        self.assertRefusal(resp, 400)
        self.assertEqual(self.award_rows(), before)

    def test_archived_badge_is_not_offered_nor_awarded(self):
        lt.setup_sql(self.db, "UPDATE badge_classes SET archived_at = 1 WHERE slug = ?",
                     self.slug2)
        page = self.page(self.prof)
        award_form = re.search(r'<select id="g-badge".*?</select>', page.text, re.S).group(0)
        self.assertNotIn(self.slug2, award_form)
        self.assertRefusal(self.grant([self.ada], slug=self.slug2, narrative="x"), 403,
                           "archived")

    # ---- learners and CSRF ----

    def test_learner_token_is_refused_everywhere(self):
        self.follow(self.grant([self.ada, self.bob], narrative="Both"))
        before = self.award_rows()
        for path in ("/badges/awards", "/badges/awards.csv"):
            self.assertRefusal(self.get(self.ada_token, path), 403,
                               "only the course's instructors")
        csrf = lt.csrf_of(self.db, self.ada_token)
        ids = [str(i) for i in self.ids_of([self.ada, self.bob])]
        for path, fields in (
                ("/badges/award", {"badge": self.slug, "user": str(self.user_id(self.bob)),
                                   "narrative": "x"}),
                ("/badges/revoke", {"award": ids, "reason": "x"}),
                ("/badges/retry", {"award": ids})):
            resp = self.post(path, dict(fields, s=self.ada_token, csrf=csrf))
            self.assertRefusal(resp, 403, "only the course's instructors")
        self.assertEqual(self.award_rows(), before)
        nav = self.server.get("/badges?s=" + self.ada_token).text
        self.assertNotIn("/badges/awards", nav)

    def test_csrf_missing_or_wrong_is_refused(self):
        self.follow(self.grant([self.ada], narrative="One"))
        before = self.award_rows()
        ids = [str(i) for i in self.ids_of([self.ada])]
        for path, fields in (("/badges/revoke", {"award": ids, "reason": "x"}),
                             ("/badges/retry", {"award": ids})):
            for csrf in (None, "0" * 64):
                f = dict(fields, s=self.prof)
                if csrf:
                    f["csrf"] = csrf
                self.assertRefusal(self.post(path, f), 403, "did not come from this tool")
        self.assertEqual(self.award_rows(), before)
        self.assertRefusal(self.server.get("/badges/revoke"), 405)
        self.assertRefusal(self.get("1-" + "a" * 64), 403, "open the tool again")

    # ---- revoke and retry ----

    def revoke(self, ids, reason="Copied the work", extra=None):
        page = self.page(self.prof)
        fields = form_fields(page.text, "/badges/revoke")
        fields.update(award=[str(i) for i in ids], reason=reason, **(extra or {}))
        return self.post("/badges/revoke", fields)

    def test_revoke_two_with_a_reason(self):
        self.follow(self.grant([self.ada, self.bob], narrative="Both"))
        ids = self.ids_of([self.ada, self.bob])
        page, q = self.follow(self.revoke(ids, "Copied the work\r\n<b>twice</b>"))
        self.assertEqual((q["m"], q["n"], q["other"]), ("revoked", "2", "0"))
        self.assertIn("Revoked: 2.", page.plain)
        got = {a["id"]: a for a in self.awards()}
        for i in ids:
            self.assertEqual(got[i]["state"], "revoked")
            self.assertEqual(got[i]["revoke_reason"], "Copied the work\n<b>twice</b>")
        table = rows(page.text)
        self.assertEqual(table[ids[0]][0], "revoked")
        self.assertIn("Copied the work", table[ids[0]][2])
        self.assertIn("&lt;b&gt;twice&lt;/b&gt;", page.text, "the reason, escaped")
        # the learner sees it too
        learner = self.server.get("/badges?s=" + self.ada_token).plain
        self.assertIn("Copied the work", learner)
        # again: reported as already revoked, reason kept
        page, q = self.follow(self.revoke(ids[:1], "Another reason"))
        self.assertEqual((q["n"], q["other"]), ("0", "1"))
        self.assertIn("Already revoked: 1.", page.plain)
        self.assertEqual({a["id"]: a for a in self.awards()}[ids[0]]["revoke_reason"],
                         "Copied the work\n<b>twice</b>")

    def test_revoke_refusals_change_nothing(self):
        self.follow(self.grant([self.ada, self.bob], narrative="Both"))
        ids = self.ids_of([self.ada, self.bob])
        oprof = self.open("oprof-" + self.ctx, self.other, roles="Instructor")
        self.follow(self.grant([self.carl], slug=self.elsewhere, narrative="x", token=oprof))
        foreign = self.ids_of([self.carl], slug=self.elsewhere)[0]
        before = self.award_rows()
        for what, resp, status, phrase in (
                ("another course's award", self.revoke(ids + [foreign]), 403,
                 "not an award of this course"),
                ("an award that does not exist", self.revoke(ids + [10 ** 9]), 403,
                 "not an award of this course"),
                ("no reason", self.revoke(ids, "  \r\n "), 400, "reason"),
                ("too long a reason", self.revoke(ids, "x" * 8193), 400, "longer than"),
                ("control characters", self.revoke(ids, "a\x01b"), 400, "control"),
                ("nothing chosen", self.revoke([]), 400, "at least one award"),
                ("not a number", self.revoke(["1; DROP"]), 400, "not there")):
            with self.subTest(what):
                self.assertRefusal(resp, status, phrase)
                self.assertEqual(self.award_rows(), before, what)

    def test_retry_a_failed_award(self):
        self.follow(self.grant([self.ada, self.bob], narrative="Both"))
        ada, bob = self.ids_of([self.ada, self.bob])
        deadline = time.monotonic() + WAIT
        while any(a["state"] != "issued" for a in self.awards() if a["id"] in (ada, bob)):
            self.assertLess(time.monotonic(), deadline, "awards not issued in time")
            time.sleep(0.1)
        # as the worker records a permanent failure
        lt.setup_sql(self.db, "UPDATE awards SET state = 'failed', assertion_id = NULL, "
                              "assertion_url = NULL, issued_at = NULL, "
                              "last_error = 'badge service said: <no>' WHERE id = ?", ada)
        page = self.page(self.prof, state="failed")
        table = rows(page.text)
        self.assertEqual(list(table), [ada], "the state filter")
        self.assertIn("could not be issued: badge service said: <no>", table[ada][2])
        self.assertIn('name="retry" value="%d"' % ada, page.text, "a Retry button on its row")
        fields = form_fields(page.text, "/badges/revoke")
        self.assertEqual(fields["back_state"], "failed")
        page, q = self.follow(self.post("/badges/retry", dict(fields, retry=str(ada))))
        self.assertEqual((q["m"], q["n"], q["other"], q["state"]), ("retried", "1", "0", "failed"))
        self.assertIn("Queued again: 1.", page.plain)
        state = {a["id"]: a["state"] for a in self.awards()}[ada]
        self.assertIn(state, ("queued", "issuing", "issued"))
        # an award that did not fail is left as it was, and said so
        page, q = self.follow(self.post("/badges/retry", dict(fields, award=[str(bob)])))
        self.assertEqual((q["n"], q["other"]), ("0", "1"))
        self.assertEqual({a["id"]: a["state"] for a in self.awards()}[bob], "issued")
        # another course's award: refused
        oprof = self.open("oprof-" + self.ctx, self.other, roles="Instructor")
        self.follow(self.grant([self.carl], slug=self.elsewhere, narrative="x", token=oprof))
        foreign = self.ids_of([self.carl], slug=self.elsewhere)[0]
        lt.setup_sql(self.db, "UPDATE awards SET state = 'failed' WHERE id = ?", foreign)
        self.assertRefusal(self.post("/badges/retry", dict(fields, retry=str(foreign))), 403)
        self.assertEqual({a["id"]: a["state"] for a in self.awards()}[foreign], "failed")

    # ---- filters ----

    def test_filters(self):
        self.follow(self.grant([self.ada, self.bob], narrative="Both"))
        self.follow(self.grant([self.ada], slug=self.slug2, narrative="Second"))
        first = self.ids_of([self.ada, self.bob])
        second = self.ids_of([self.ada], slug=self.slug2)
        self.follow(self.revoke(first[1:]))
        page = self.page(self.prof)
        self.assertEqual(set(rows(page.text)), set(first + second))
        self.assertRegex(page.text, r'<label for="f-badge">')
        self.assertRegex(page.text, r'<label for="f-state">')
        self.assertIn("<caption>", page.text)
        self.assertEqual(set(rows(self.page(self.prof, badge=self.slug2).text)), set(second))
        self.assertEqual(set(rows(self.page(self.prof, state="revoked").text)), {first[1]})
        self.assertEqual(set(rows(self.page(self.prof, badge=self.slug, state="revoked").text)),
                         {first[1]})
        page = self.page(self.prof, badge=self.slug2, state="revoked")
        self.assertEqual(rows(page.text), {})
        self.assertIn("No award matches.", page.plain)
        self.assertIn('value="%s" selected' % self.slug2, page.text, "the filter is kept")
        self.assertRefusal(self.get(self.prof, badge=self.elsewhere), 400,
                           "not one of this course")
        self.assertRefusal(self.get(self.prof, state="lost"), 400, "no such state")
        # the revoke form brings the filters back
        page = self.page(self.prof, badge=self.slug)
        fields = form_fields(page.text, "/badges/revoke")
        fields.update(award=[str(first[0])], reason="Filtered")
        _, q = self.follow(self.post("/badges/revoke", fields))
        self.assertEqual(q.get("badge"), self.slug)

    def test_spanish(self):
        params = base_launch(user_id="prof-" + self.ctx, context_id=self.ctx,
                             roles="Instructor", launch_presentation_locale="es")
        token = self.assertRedirectToPage(self.launch(params))
        page = self.page(token)
        self.assertIn('<html lang="es">', page.text)
        self.assertIn("Otorgar una insignia a mano", page.text)

    def test_caps_at_max_and_max_plus_one(self):
        """200 awards and learners are shown whole; the 201st is left out, and the page says so."""
        # test set-up: 199 learners of the course, each with a failed award, written at once
        consumer = "(SELECT id FROM consumers WHERE key = ?)"
        context = ("(SELECT id FROM contexts WHERE lti_context_id = ? AND consumer_id = %s)"
                   % consumer)
        person = "(SELECT id FROM users WHERE lti_user_id = ? AND consumer_id = %s)" % consumer
        setup = []
        for i in range(201 - 2):  # ada and bob are learners already
            who = "many-%s-%03d" % (self.ctx, i)
            setup += [
                ("INSERT INTO users(consumer_id, lti_user_id, full_name, created_at, updated_at) "
                 "VALUES (%s, ?, ?, 1, 1)" % consumer, (self.key, who, "Many %03d" % i)),
                ("INSERT INTO enrollments(user_id, context_id, role_flags, first_launch_at, "
                 "last_launch_at) VALUES (%s, %s, 1, 1, 1)" % (person, context),
                 (who, self.key, self.ctx, self.key)),
                ("INSERT INTO awards(uid, badge_class_id, user_id, context_id, reason, salt, "
                 "state, created_at, updated_at) VALUES (?, (SELECT id FROM badge_classes "
                 "WHERE slug = ?), %s, %s, 'manual', 's', 'failed', 1, 1)" % (person, context),
                 (lt.hex_id(8), self.slug2, who, self.key, self.ctx, self.key))]
        lt.setup_sql_batch(self.db, setup)
        self.follow(self.grant([self.bob], slug=self.slug2, narrative="The 200th"))
        page = self.page(self.prof)
        self.assertEqual(len(rows(page.text)), 200)
        self.assertNotIn('id="capped"', page.text)
        self.assertIn("Showing the first 200 learners by name.", page.plain)
        self.assertEqual(len(re.findall(r'name="user" value=', page.text)), 200)
        self.follow(self.grant([self.ada], narrative="The 201st"))
        page = self.page(self.prof)
        table = rows(page.text)
        self.assertEqual(len(table), 200)
        self.assertIn("Showing the 200 most recent awards", page.plain)
        self.assertIn("The 201st", page.plain, "newest first")
        csv_rows = self.get(self.prof, "/badges/awards.csv").body.count(b"\r\n")
        self.assertEqual(csv_rows, 1 + 201, "the CSV has every award")

    # ---- sorting, search, chips, links (issue 22, section 4) ----

    def four_awards(self):
        """Four awards whose orders all differ: A1 ada/Helper issued 2023, A2 bob/Helper
        failed, A3 dave/Helper issued 2001, A4 ada/Second revoked (issued 2020); names
        "Zoe Ada", "adam Bob" (lower case first) and "Mia Dave"."""
        self.dave = "dave-" + self.ctx
        self.open(self.dave, self.ctx)
        self.follow(self.grant([self.ada, self.bob, self.dave], narrative="Three"))
        self.follow(self.grant([self.ada], slug=self.slug2, narrative="Second"))
        self.award_rows()  # the worker is done with them
        a1, a2, a3 = self.ids_of([self.ada, self.bob, self.dave])
        a4 = self.ids_of([self.ada], slug=self.slug2)[0]
        for who, name in ((self.ada, "Zoe Ada"), (self.bob, "adam Bob"), (self.dave, "Mia Dave")):
            lt.setup_sql(self.db, "UPDATE users SET full_name = ? WHERE lti_user_id = ?", name,
                         who)
        lt.setup_sql(self.db, "UPDATE awards SET issued_at = 1700000000 WHERE id = ?", a1)
        lt.setup_sql(self.db, "UPDATE awards SET state = 'failed', issued_at = NULL, "
                              "assertion_id = NULL, assertion_url = NULL, last_error = 'no' "
                              "WHERE id = ?", a2)
        lt.setup_sql(self.db, "UPDATE awards SET issued_at = 1000000000 WHERE id = ?", a3)
        lt.setup_sql(self.db, "UPDATE awards SET state = 'revoked', issued_at = 1600000000, "
                              "revoked_at = 1650000000, revoke_reason = 'r', revoke_synced = 1 "
                              "WHERE id = ?", a4)
        return a1, a2, a3, a4

    @staticmethod
    def order(page_text):
        return [int(i) for i in re.findall(r'<tr data-award="(\d+)"', page_text)]

    def test_sort_by_each_column_on_the_server(self):
        a1, a2, a3, a4 = self.four_awards()
        name = {a1: "zoe ada", a2: "adam bob", a3: "mia dave", a4: "zoe ada"}
        badge = {a1: "helper", a2: "helper", a3: "helper", a4: "second"}
        # failed first (needs the instructor), then issued, then revoked
        state = {a1: 4, a2: 0, a3: 4, a4: 5}
        issued = {a1: 1700000000, a2: None, a3: 1000000000, a4: 1600000000}
        keys = {"learner": name.get, "badge": badge.get, "state": state.get,
                "issued": lambda i: (issued[i] is not None, issued[i] or 0)}
        ids = [a1, a2, a3, a4]
        self.assertEqual(self.order(self.page(self.prof).text), sorted(ids, reverse=True),
                         "newest first by default")
        for col, key in keys.items():
            for d in ("asc", "desc"):
                with self.subTest(col=col, dir=d):
                    page = self.page(self.prof, sort=col, dir=d)
                    # ties: the newest first in both directions
                    want = sorted(ids, key=lambda i: (key(i), -i)) if d == "asc" else \
                        sorted(ids, key=lambda i: (key(i), i), reverse=True)
                    self.assertEqual(self.order(page.text), want)
                    head = re.search(r'<th scope="col" aria-sort="([a-z]+)" data-col="%s"'
                                     r'[^>]*><a href="([^"]+)"' % col, page.text)
                    self.assertIsNotNone(head, "the sorted column says so (aria-sort)")
                    self.assertEqual(head.group(1), "ascending" if d == "asc" else "descending")
                    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                        html.unescape(head.group(2))).query))
                    self.assertEqual((q["sort"], q["dir"]), (col, "desc" if d == "asc" else "asc"),
                                     "its link turns the order round")
                    self.assertEqual(len(re.findall(r"aria-sort=", page.text)), 1)
        # the keys the script sorts by are in the cells, not their words
        page = self.page(self.prof)
        row = re.search(r'<tr data-award="%d".*?</tr>' % a1, page.text, re.S).group(0)
        self.assertIn('data-sort="2023-11-14T22:13:20Z"', row, "the ISO date of the issue")
        self.assertIn('data-sort="4"', row, "the state's rank")
        self.assertIn('data-sort="Zoe Ada"', row)
        row = re.search(r'<tr data-award="%d".*?</tr>' % a2, page.text, re.S).group(0)
        self.assertIn('data-sort="0"', row)
        self.assertIn('data-sort=""', row, "never issued")
        # the other columns' links sort ascending, with the filters kept
        page = self.page(self.prof, badge=self.slug, sort="badge", dir="desc")
        link = re.search(r'<th scope="col" data-col="learner"[^>]*><a href="([^"]+)"', page.text)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(html.unescape(link.group(1))).query))
        self.assertEqual((q["sort"], q["dir"], q["badge"], q["s"]),
                         ("learner", "asc", self.slug, self.prof))
        for bad in (dict(sort="nope"), dict(sort="learner", dir="up")):
            self.assertRefusal(self.get(self.prof, **bad), 400)

    def test_learner_search(self):
        a1, a2, a3, a4 = self.four_awards()
        # "ada" is in "Zoe Ada" and in "adam Bob", case folded
        page = self.page(self.prof, q="ADA")
        self.assertEqual(self.order(page.text), [a4, a2, a1])
        self.assertIn('value="ADA"', page.text, "the search is kept in its field")
        self.assertEqual(self.order(self.page(self.prof, q="mia").text), [a3])
        self.assertEqual(self.order(self.page(self.prof, q=self.dave).text), [a3],
                         "the LMS id too")
        self.assertEqual(self.order(self.page(self.prof, q="  ").text), [a4, a3, a2, a1],
                         "blank: everyone")
        page = self.page(self.prof, q="nobody")
        self.assertEqual(self.order(page.text), [])
        self.assertIn("No award matches.", page.plain)
        page = self.page(self.prof, q="ada", sort="learner", dir="asc", state="issued")
        self.assertEqual(self.order(page.text), [a1])
        page = self.page(self.prof, q="ada", sort="learner", dir="asc")
        self.assertEqual(self.order(page.text), [a2, a4, a1])
        # kept by the sort links, the CSV and the forms' way back
        link = re.search(r'data-col="badge"[^>]*><a href="([^"]+)"', page.text).group(1)
        self.assertIn("q=ada", html.unescape(link))
        csv_link = re.search(r'<a href="([^"]*awards\.csv[^"]*)" download>', page.text).group(1)
        body = self.server.get(html.unescape(csv_link)).body.decode()
        self.assertEqual(len(list(csv.reader(io.StringIO(body, newline="")))), 1 + 3)
        fields = form_fields(page.text, "/badges/revoke")
        self.assertEqual((fields["back_q"], fields["back_sort"], fields["back_dir"]),
                         ("ada", "learner", "asc"))
        fields.update(award=[str(a1)], reason="Searched")
        _, q = self.follow(self.post("/badges/revoke", fields))
        self.assertEqual((q["q"], q["sort"], q["dir"]), ("ada", "learner", "asc"))
        self.assertRefusal(self.get(self.prof, q="x" * 101), 400, "search")
        self.assertRefusal(self.get(self.prof, q="a\x01"), 400, "search")

    def test_states_as_chips_public_pages_and_a_dangerous_revoke(self):
        a1, a2, a3, a4 = self.four_awards()
        page = self.page(self.prof)
        self.assertRegex(page.text, r'<body class="wide">', "the table takes the page's width")
        urls = {a["id"]: a["assertion_url"] for a in self.awards()}
        for i, st, label in ((a1, "issued", "issued"), (a2, "failed", "failed"),
                             (a4, "revoked", "revoked")):
            row = re.search(r'<tr data-award="%d".*?</tr>' % i, page.text, re.S).group(0)
            self.assertIn('<span class="chip chip-%s">%s</span>' % (st, label), row,
                          "a chip with its words")
            link = re.search(r'<a class="public" href="([^"]+)"', row)
            if st == "issued":
                self.assertEqual(html.unescape(link.group(1)), urls[i], "its public page")
                self.assertTrue(urls[i].startswith(self.server.public_url + "/ob/v2/assertions/"))
                self.assertEqual(self.server.get(urllib.parse.urlsplit(urls[i]).path,
                                                 headers={"Accept": "text/html"}).status, 200)
            else:
                self.assertIsNone(link, "no public page but for an issued award")
        revoke = re.search(r'<button type="submit" class="danger"[^>]*>Revoke the selected '
                           r'awards</button>', page.text)
        self.assertIsNotNone(revoke, "revoking looks dangerous")
        self.assertIn('data-confirm="', revoke.group(0), "and asks first (with the script)")
        self.assertIn("required", re.search(r'<textarea id="reason"[^>]*>', page.text).group(0))
        # the per-learner evidence opens on demand
        for u in (self.ada, self.bob):
            uid = self.user_id(u)
            box = re.search(r'<details class="evidence">(?:(?!</details>).)*name="narrative-%d"'
                            % uid, page.text, re.S)
            self.assertIsNotNone(box, "the evidence of %s is in a closed <details>" % u)
            self.assertNotIn("<details class=\"evidence\" open", page.text)

    def test_course_page_counts_every_state(self):
        self.follow(self.grant([self.ada, self.bob], narrative="Two"))
        self.award_rows()
        ada, bob = self.ids_of([self.ada, self.bob])
        # one being issued right now (its lease an hour off), one revoked
        lt.setup_sql(self.db, "UPDATE awards SET state = 'issuing', next_attempt_at = ? "
                              "WHERE id = ?", int(time.time()) + 3600, ada)
        # the other tests wait for every award of the database to settle
        self.addCleanup(lt.setup_sql, self.db, "UPDATE awards SET state = 'issued' WHERE id = ?",
                        ada)
        lt.setup_sql(self.db, "UPDATE awards SET state = 'revoked', revoked_at = 1, "
                              "revoke_reason = 'r', revoke_synced = 1 WHERE id = ?", bob)
        text = self.get(self.prof, path="/badges").text
        links = {html.unescape(m.group(2)): html.unescape(m.group(1)) for m in re.finditer(
            r'<li><a href="([^"]+)">([^<]+)</a></li>', text)}
        for label, want in (("Waiting to be issued: 1", [ada]), ("Revoked: 1", [bob]),
                            ("Issued: 0", [])):
            self.assertIn(label, links, links)
            u = urllib.parse.urlsplit(links[label])
            self.assertEqual(self.order(self.server.get(u.path + "?" + u.query).text), want,
                             label)
        status = re.search(r'<p class="status" id="backend-status">(.*?)</p>', text, re.S)
        self.assertNotIn("waiting to be issued", status.group(1),
                         "the counts are the links, not said twice")

    # ---- CSV ----

    def test_csv_export(self):
        self.follow(self.grant([self.ada, self.bob], narrative="Both"))
        self.follow(self.grant([self.ada], slug=self.slug2, narrative="+1 for =SUM(A1)"))
        lt.setup_sql(self.db, "UPDATE users SET full_name = ? WHERE lti_user_id = ?", TRICKY,
                     self.ada)
        lt.setup_sql(self.db, "UPDATE users SET full_name = ? WHERE lti_user_id = ?", FORMULA,
                     self.bob)
        bob = self.ids_of([self.bob])[0]
        self.follow(self.revoke([bob], "-bad, \"really\""))
        resp = self.get(self.prof, "/badges/awards.csv")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.header("Content-Type"), "text/csv; charset=utf-8")
        disp = resp.header("Content-Disposition")
        self.assertRegex(disp, r'^attachment; filename="awards-[a-z0-9-]+\.csv"$')
        self.assertEqual(resp.header("Cache-Control"), "no-store")
        text = resp.body.decode("utf-8")
        self.assertTrue(text.endswith("\r\n"))
        self.assertTrue(text.startswith(
            "badge_slug,badge_name,learner_name,lms_user_id,email,state,reason,narrative,"
            "issued_at,expires_at,revoked_at,revoke_reason,assertion_url\r\n"))
        self.assertIn('"Ann, ""the Q""\nLee"', text, "RFC 4180 quoting")
        table = list(csv.reader(io.StringIO(text, newline="")))
        head, body = table[0], table[1:]
        self.assertEqual(len(body), 3)
        by = {(r[head.index("lms_user_id")], r[0]): dict(zip(head, r)) for r in body}
        ada = by[(self.ada, self.slug)]
        self.assertEqual(ada["learner_name"], TRICKY)
        self.assertEqual(ada["email"], self.ada + "@example.edu")
        self.assertEqual(ada["narrative"], "Both")
        self.assertEqual(ada["badge_name"], "Helper " + self.ctx)
        self.assertEqual(ada["reason"], "manual")
        self.assertEqual(by[(self.ada, self.slug2)]["narrative"], "'+1 for =SUM(A1)",
                         "a cell starting with + is not a formula")
        b = by[(self.bob, self.slug)]
        self.assertEqual(b["learner_name"], "'" + FORMULA, "a cell starting with = neither")
        self.assertEqual(b["state"], "revoked")
        self.assertEqual(b["revoke_reason"], "'-bad, \"really\"")
        self.assertRegex(b["revoked_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(b["issued_at"] == "", b["assertion_url"] == "")
        # filters are honoured
        resp = self.get(self.prof, "/badges/awards.csv", badge=self.slug2)
        body = list(csv.reader(io.StringIO(resp.body.decode("utf-8"), newline="")))[1:]
        self.assertEqual([r[0] for r in body], [self.slug2])
        resp = self.get(self.prof, "/badges/awards.csv", state="revoked")
        body = list(csv.reader(io.StringIO(resp.body.decode("utf-8"), newline="")))[1:]
        self.assertEqual([r[3] for r in body], [self.bob])
        self.assertRefusal(self.get(self.prof, "/badges/awards.csv", state="nope"), 400)
        # the page links to the export with its filters
        page = self.page(self.prof, state="revoked")
        link = re.search(r'<a href="([^"]*awards\.csv[^"]*)" download>', page.text)
        self.assertIsNotNone(link)
        self.assertIn("state=revoked", html.unescape(link.group(1)))
        self.assertRefusal(self.get(self.ada_token, "/badges/awards.csv"), 403)


if __name__ == "__main__":
    lt.main()
