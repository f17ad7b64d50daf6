#!/usr/bin/python3
"""Awards through a Badgr-compatible platform end to end: `serve` with a
[backend.campus] section of type badgr talking to the contract fake
(badgrfake.py) on 127.0.0.1. The proposal's five use cases
(../shared/seeds/000_571e62eb8fdee2be.txt) with BadgeClasses at Badgr; each
fault of the platform leaving exactly one BadgeClass and one assertion per
learner there; kill -9 between sending and recording; a revoke after an
unknown outcome; a hanging platform that slows neither hosted awards nor a
stop; edits reaching the platform; TLS with the test's CA; and no secret in
any output."""
import http.client
import json
import os
import re
import signal
import sys
import time
import unittest
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import badgrfake  # noqa: E402
import ltitest as lt  # noqa: E402
from badgrfake import BadgrFake  # noqa: E402

USER = "badges@example.edu"
PASSWORD = "Kp4-badgr-e2e-password"
WAIT = float(os.environ.get("LTIBADGES_AWARD_WAIT", "30"))
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
       '<rect width="8" height="8" fill="#06c"/></svg>')


class E2E(lt.TempDirTest):
    PREFIX = "ltibadges-badgr-"
    DB_NAME = "e2e.db"
    tls = False

    def setUp(self):
        super().setUp()
        pki = badgrfake.make_ca(os.path.join(self.tmp, "pki")) if self.tls else None
        self.fake = BadgrFake(tls=pki)
        self.fake.add_account(USER, PASSWORD)
        self.issuer = self.fake.add_issuer("Campus issuer", staff={USER: "owner"})
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.outputs = []
        self.png = os.path.join(self.tmp, "badge.png")
        with open(self.png, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        self.svg = self.write("badge.svg", SVG)
        text = ("[awards]\nbackend = campus\n[backend.campus]\ntype = badgr\n"
                "base_url = %s\nallow_loopback = true\nusername = %s\nissuer = %s\n"
                "connect_timeout = 2\ntimeout = 2\nrate = 1000\n"
                % (self.fake.base_url, USER, self.issuer))
        if pki:
            text += "ca_file = %s\n" % pki["ca"]
        self.cfg = self.write("tool.ini", text)
        self.env = {"LTIBADGES_BACKEND_CAMPUS_PASSWORD": PASSWORD}
        lt.migrate(self.db)
        kv = lt.parse_kv(self.ok("consumer", "add", "LMS").stdout)
        self.key, self.secret = kv["key"], kv["secret"]
        self.server = self.serve(config=self.cfg, env=self.env)

    def serve(self, **kw):
        # one public URL across restarts: it names this server in the marker tags
        kw.setdefault("public_url", "https://tool.example.edu")
        return super().serve(**kw)

    def tearDown(self):
        for s in self.servers:
            self.outputs.append(s.stderr())
        for out in self.outputs:
            self.assertNotIn(PASSWORD, out)
        super().tearDown()

    # the command line

    def run_(self, *args):
        p = self.cli(*(args + ("--db", self.db, "--config", self.cfg)), env=self.env)
        self.outputs += [p.stdout, p.stderr]
        return p

    def ok(self, *args):
        return self.assertOk(self.run_(*args))

    def badge(self, name, rule, *extra, context=None, image=None):
        args = ["badge", "create", "--consumer", self.key, "--name", name, "--description",
                "About " + name, "--image", image or self.png, "--rule", rule]
        if context:
            args += ["--context", context]
        return lt.parse_kv(self.ok(*(args + list(extra))).stdout)["slug"]

    def show(self, slug):
        return json.loads(self.ok("badge", "show", slug, "--json").stdout)

    def launch(self, user, ctx, mode=None, email=None, server=None):
        params = lt.base_launch(user_id=user, context_id=ctx, context_title="Course " + ctx,
                                lis_person_contact_email_primary=email or
                                (user.capitalize() + "@Example.EDU"),
                                custom_badge_mode=mode)
        resp, _ = (server or self.server).launch(params, self.key, self.secret)
        self.assertEqual(resp.status, 303, resp)

    def grade(self, user, ctx, score):
        self.ok("grade", "record", "--consumer", self.key, "--context", ctx, "--user", user,
                "--resource-link", "final", "--score", str(score))

    def awards(self, user):
        return [a for a in json.loads(self.ok("award", "list", "--json").stdout)
                if a["user"] == user]

    def wait_awards(self, user, n, states=("issued",)):
        """Polls `award list` until `user` has `n` awards all in `states`."""
        deadline = time.monotonic() + WAIT
        while True:
            got = self.awards(user)
            if len(got) >= n and all(a["state"] in states for a in got):
                return got
            if time.monotonic() > deadline:
                self.fail("awards of %s not %s in time: %r; platform saw %r" % (
                    user, states, got, [(r.method, r.path, r.status, r.fault)
                                        for r in self.fake.records]))
            time.sleep(0.1)

    # the platform

    def operator_badgeclass(self, name):
        """A BadgeClass an operator made at the platform itself (its entityId)."""
        u = self.fake
        conn = http.client.HTTPConnection(u.host, u.port, timeout=10)
        conn.request("POST", "/o/token", urlencode({"username": USER, "password": PASSWORD}),
                     {"Content-Type": "application/x-www-form-urlencoded"})
        tok = json.loads(conn.getresponse().read())["access_token"]
        conn.request("POST", "/v2/issuers/%s/badgeclasses" % self.issuer, json.dumps({
            "name": name, "description": "Made at Badgr", "criteriaNarrative": "Do it",
            "image": badgrfake.data_uri_png(badgrfake.tiny_png())}),
            {"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        doc = json.loads(conn.getresponse().read())
        conn.close()
        return doc["result"][0]["entityId"]

    def marked(self, slug):
        """The platform's BadgeClasses tagged as this server's `slug`."""
        return [b for b in self.fake.badgeclasses()
                if any(t.startswith("ltibadges:") and t.endswith(":" + slug) for t in b["tags"])]

    def assertOneAssertion(self, badgeclass, email, award=None):
        got = self.fake.assertions(badgeclass, email)
        self.assertEqual(len(got), 1, got)
        a = got[0]
        self.assertEqual(a["recipient"]["plaintextIdentity"], email.lower())
        self.assertTrue(a["recipient"]["hashed"])
        self.assertFalse(a["_sent"]["allowDuplicateAwards"])
        if award is not None:
            self.assertEqual(award["assertion_id"], a["entityId"])
            self.assertEqual(award["assertion_url"], a["openBadgeId"])
        return a


class UseCases(E2E):
    """The five use cases, with the BadgeClasses at Badgr."""

    def test_1_existing_badge_class_with_course_and_mode(self):
        theirs = self.operator_badgeclass("Made by the operator")
        ctx = "course-v1:edX+UC1+run"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("UC1", "completion", "--mode", "verified", "--backend-id", theirs,
                          context=ctx)
        self.assertEqual((self.show(slug)["backend"], self.show(slug)["backend_id"]),
                         ("campus", theirs))
        self.launch("ann", ctx, mode="verified")
        self.grade("ann", ctx, 0.9)
        [a] = self.wait_awards("ann", 1)
        self.assertOneAssertion(theirs, "ann@example.edu", a)
        self.assertEqual(len(self.fake.badgeclasses()), 1, "nothing else was made")
        # an id the platform lacks is refused, nothing stored
        p = self.run_("badge", "create", "--consumer", self.key, "--name", "X",
                      "--description", "d", "--image", self.png, "--rule", "manual",
                      "--backend-id", "NoSuchBadgeClass000001")
        self.assertOneLineError(p, 1, "refused by backend 'campus'", "not found")

    def test_2_existing_badge_class_without_course_or_mode(self):
        theirs = self.operator_badgeclass("Anywhere")
        slug = self.badge("UC2", "enrollment", "--backend-id", theirs)
        self.launch("bea", "uc2-course")
        [a] = self.wait_awards("bea", 1)
        self.assertEqual(a["badge"], slug)
        self.assertOneAssertion(theirs, "bea@example.edu", a)

    def test_3_created_at_badgr_on_first_award(self):
        ctx = "uc3-course"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("UC3", "completion", "--criteria-url", "https://lms.example.edu/c",
                          "--tag", "biology", "--expires-days", "30", context=ctx)
        self.assertIsNone(self.show(slug)["backend_id"])
        self.launch("cy", ctx)
        self.grade("cy", ctx, 1.0)
        [a] = self.wait_awards("cy", 1)
        [b] = self.marked(slug)
        self.assertEqual(self.show(slug)["backend_id"], b["entityId"])
        self.assertEqual((b["name"], b["description"], b["criteriaUrl"], b["_image_type"]),
                         ("UC3", "About UC3", "https://lms.example.edu/c", "image/png"))
        self.assertIn("biology", b["tags"])
        self.assertEqual(b["expires"], {"amount": 30, "duration": "days"})
        got = self.assertOneAssertion(b["entityId"], "cy@example.edu", a)
        # the issue date is the earning, and expiry counted from it
        self.assertEqual(got["issuedOn"], badgrfake.iso(a["created_at"]))
        self.assertEqual(got["expires"], badgrfake.iso(a["created_at"] + 30 * 86400))
        # the learner's verify link is the platform's assertion URL
        self.assertTrue(a["assertion_url"].startswith(self.fake.base_url + "/public/assertions/"))

    def test_4_enabled_course_without_badge_class(self):
        ctx = "uc4-course"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        self.launch("dan", ctx, mode="honor")
        self.grade("dan", ctx, 0.8)
        [a] = self.wait_awards("dan", 1)
        self.assertEqual(self.show(a["badge"])["backend"], "campus")
        [b] = self.marked(a["badge"])
        self.assertOneAssertion(b["entityId"], "dan@example.edu", a)

    def test_5_group_and_count_rules_with_badgr_ids(self):
        grp_id, cnt_id = self.operator_badgeclass("Track"), self.operator_badgeclass("Two")
        c1, c2 = "uc5-a", "uc5-b"
        for c in (c1, c2):
            self.ok("context", "enable", "--consumer", self.key, "--context", c)
        self.ok("group", "add", "track", "--consumer", self.key, "--context", c1, c2)
        grp = self.badge("UC5 track", "group:track", "--backend-id", grp_id)
        cnt = self.badge("UC5 two", "count:2", "--backend-id", cnt_id)
        for c in (c1, c2):
            self.launch("eve", c)
            self.grade("eve", c, 0.9)
        # (each enabled course also makes its own completion badge, as use case 4)
        got = {a["badge"]: a for a in self.wait_awards("eve", 4)}
        self.assertLessEqual({grp, cnt}, set(got))
        self.assertOneAssertion(grp_id, "eve@example.edu", got[grp])
        self.assertOneAssertion(cnt_id, "eve@example.edu", got[cnt])


class Faults(E2E):
    """Each fault of the platform: the award ends issued, with exactly one BadgeClass and one
    assertion for the learner there."""

    CASES = [
        ("html500 on create", [("html500", "POST", r"/badgeclasses$", {})]),
        ("503 on issue", [("status", "POST", r"/assertions$", {"status": 503})]),
        ("429 + Retry-After on issue",
         [("status", "POST", r"/assertions$", {"status": 429, "retry_after": 1})]),
        ("lost create", [("lost", "POST", r"/badgeclasses$", {})]),
        ("lost issue", [("lost", "POST", r"/assertions$", {})]),
        ("dropped issue", [("drop", "POST", r"/assertions$", {})]),
        ("malformed create", [("malformed", "POST", r"/badgeclasses$", {})]),
        ("issue answered without entityId", [("no_entity", "POST", r"/assertions$", {})]),
        ("hang past the timeout on issue", [("hang", "POST", r"/assertions$", {})]),
        ("one 401", [("unauthorized", "*", r"^/v2/", {})]),
        ("tokens expiring mid-run", "expire"),
        ("refused refresh token", "refuse"),
    ]

    def test_each_fault_leaves_one_of_each(self):
        # a first award, so that a token is held when the token faults come
        ctx0 = "warm"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx0)
        self.badge("Warm", "completion", context=ctx0)
        self.launch("w", ctx0)
        self.grade("w", ctx0, 1)
        self.wait_awards("w", 1)
        for i, (name, faults) in enumerate(self.CASES):
            with self.subTest(fault=name):
                ctx, user = "f%d" % i, "learner%d" % i
                self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
                slug = self.badge("Fault %d" % i, "completion", context=ctx)
                if faults == "expire":
                    self.fake.expire_tokens()
                elif faults == "refuse":
                    self.fake.advance(5)              # past any login back-off
                    self.fake.expire_tokens()
                    self.fake.refuse_refresh()
                else:
                    for kind, method, path, kw in faults:
                        self.fake.add_fault(kind, method, path, **kw)
                self.launch(user, ctx)
                self.grade(user, ctx, 1)
                if faults and faults != "expire" and faults != "refuse" and \
                        faults[0][0] == "hang":
                    self.fake.wait_hanging(1)
                    self.fake.release()
                [a] = self.wait_awards(user, 1)
                [b] = self.marked(slug)
                self.assertOneAssertion(b["entityId"], user + "@example.edu", a)
                self.assertEqual(self.fake.faults, [], "every fault was met")


class Crashes(E2E):
    """The server killed between sending to the platform and recording its answer."""

    def kill_while_sending(self, user, ctx, path):
        """Starts an award whose request at `path` the platform carries out and then holds,
        kills the server with SIGKILL meanwhile; returns the award."""
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("Crash " + ctx, "completion", context=ctx)
        self.fake.add_fault("hang_after", "POST", path)
        self.launch(user, ctx)
        self.grade(user, ctx, 1)
        self.fake.wait_hanging(1)
        self.server.kill()
        self.fake.release()
        [a] = self.awards(user)
        self.assertIsNone(a["assertion_id"])
        # the lease of an award being sent outlasts any call (LIMIT_AWARDS_REMOTE_LEASE):
        # the time it gives a server killed mid-call passes here at once
        lt.setup_sql(self.db, "UPDATE awards SET next_attempt_at = 0 WHERE id = ?", a["id"])
        return slug, a

    def test_kill9_between_send_and_record(self):
        for path in (r"/badgeclasses$", r"/assertions$"):
            with self.subTest(path=path):
                user, ctx = "k%d" % len(path), "kill-%d" % len(path)
                slug, a = self.kill_while_sending(user, ctx, path)
                self.server = self.serve(config=self.cfg, env=self.env)
                [a] = self.wait_awards(user, 1)
                [b] = self.marked(slug)
                self.assertOneAssertion(b["entityId"], user + "@example.edu", a)
                self.assertEqual(self.show(slug)["backend_id"], b["entityId"])

    def test_revoke_after_an_unknown_outcome(self):
        slug, a = self.kill_while_sending("rv", "revoke-1", r"/assertions$")
        [b] = self.marked(slug)
        [held] = self.fake.assertions(b["entityId"], "rv@example.edu")
        self.ok("award", "revoke", str(a["id"]), "--reason", "granted in error")
        lt.setup_sql(self.db, "UPDATE awards SET next_attempt_at = 0 WHERE id = ?", a["id"])
        self.server = self.serve(config=self.cfg, env=self.env)
        self.fake.wait_for(lambda r: r.method == "DELETE" and r.status == 200, timeout=WAIT)
        got = self.fake.assertions(b["entityId"], "rv@example.edu")
        self.assertEqual([(x["entityId"], x["revoked"], x["revocationReason"]) for x in got],
                         [(held["entityId"], True, "granted in error")])
        self.wait_awards("rv", 1, states=("revoked",))


class Hangs(E2E):

    def test_hanging_platform_does_not_slow_hosted_awards_and_stop_is_prompt(self):
        ctx, ctx2 = "hang-1", "hang-2"
        for c in (ctx, ctx2):
            self.ok("context", "enable", "--consumer", self.key, "--context", c)
        self.badge("At Badgr", "completion", context=ctx)
        hosted = self.badge("Hosted", "enrollment", "--backend", "hosted", context=ctx2)
        # a timeout far longer than the test: the first call that hangs hangs throughout
        self.server.stop()
        with open(self.cfg) as f:
            cfg = self.write("slow.ini", f.read().replace("\ntimeout = 2\n", "\ntimeout = 300\n"))
        self.server = self.serve(config=cfg, env=self.env)
        self.fake.add_fault("hang", "*", r"^/v2/", count=1000)
        self.launch("hal", ctx)
        self.grade("hal", ctx, 1)
        self.fake.wait_hanging(1)
        # a hosted award made while the platform hangs is issued during that very hang
        self.launch("hub", ctx2)
        [a] = self.wait_awards("hub", 1)
        self.assertEqual(a["badge"], hosted)
        self.assertEqual(self.fake.hanging, 1, "the platform still hangs")
        self.assertEqual(self.fake.matching(lambda r: r.fault == "hang"), [],
                         "the first hang ended before the hosted award was issued")
        rc, took = self.server.stop()
        self.assertEqual(rc, 0, self.server.stderr()[-2000:])
        # serve gave up the call (its cancel hook) instead of waiting out its 300 s timeout:
        # a bound of half that, which no loaded machine comes near
        self.assertLess(took, 150, "serve waited for the platform's timeout to stop")
        # left to retry: nothing at the platform, nothing failed for good
        [a] = self.awards("hal")
        self.assertIn(a["state"], ("queued", "issuing"))
        self.assertEqual(self.fake.assertions(), [])


class Edits(E2E):

    def test_edits_reach_the_platform(self):
        ctx = "edit-1"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("Editable", "completion", context=ctx)
        self.launch("ed", ctx)
        self.grade("ed", ctx, 1)
        self.wait_awards("ed", 1)
        [b] = self.marked(slug)
        self.assertEqual(b["_image_type"], "image/png")
        # refused once (HTML 500), then taken
        self.fake.add_fault("html500", "PUT", r"^/v2/badgeclasses/")
        self.ok("badge", "set", slug, "--image", self.svg)
        self.fake.wait_for(lambda r: r.method == "PUT" and r.status == 200, timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while self.show(slug)["update_due_at"]:
            self.assertLess(time.monotonic(), deadline, "the edit stayed due")
            time.sleep(0.1)
        b = self.fake.badgeclass(b["entityId"])
        self.assertEqual((b["_image_type"], b["_updates"], b["name"]),
                         ("image/svg+xml", 1, "Editable"))
        self.assertEqual(len(self.marked(slug)), 1)


class Tls(E2E):
    tls = True

    def test_award_over_tls_with_the_test_ca(self):
        self.assertTrue(self.fake.base_url.startswith("https://"))
        ctx = "tls-1"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("Over TLS", "completion", context=ctx)
        self.launch("tia", ctx)
        self.grade("tia", ctx, 1)
        [a] = self.wait_awards("tia", 1)
        [b] = self.marked(slug)
        self.assertOneAssertion(b["entityId"], "tia@example.edu", a)
        self.assertEqual(self.ok("backend", "check").stdout,
                         "hosted: ok (the built-in issuer: nothing to sign in to)\n"
                         "campus: ok (type badgr, host 127.0.0.1, issuer Campus issuer)\n")


if __name__ == "__main__":
    lt.main()
