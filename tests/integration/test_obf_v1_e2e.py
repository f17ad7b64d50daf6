#!/usr/bin/python3
"""Open Badge Factory API v1 end to end: `ltibadges backend obf-enrol`
making a client certificate from an API key obffake.py mints (RSA-encrypted
with OBF's key), then `serve` issuing with it (mutual TLS, verified against
the fake's client CA): a badge created on the first award (PNG only: an SVG
one is refused saying so; a completion badge made for a course goes with
the default image's PNG), found again by its metadata marker after a lost
answer; each fault (500, 503, 429 + Retry-After, a drop, a lost create or
issue) leaving one badge and one event per learner; revocation (DELETE
?email=); a rogue or expired certificate (495) and another client's (403)
refused as auth saying what is wrong; the
certificate's expiry in `backend check` and warned from 30 days before; no
key or API key in any output."""
import base64
import json
import os
import re
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import obffake  # noqa: E402
import ltitest as lt  # noqa: E402
from obffake import ObfFake  # noqa: E402

WAIT = float(os.environ.get("LTIBADGES_AWARD_WAIT", "40"))
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
       '<rect width="8" height="8" fill="#06c"/></svg>')


class V1(lt.TempDirTest):
    PREFIX = "ltibadges-obf1-"
    DB_NAME = "e2e.db"

    def setUp(self):
        super().setUp()
        self.pki = obffake.make_pki(os.path.join(self.tmp, "pki"))
        self.fake = ObfFake(self.pki)
        self.cid, _ = self.fake.add_client("Example U")
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.outputs = []
        self.png = os.path.join(self.tmp, "badge.png")
        with open(self.png, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        self.svg = self.write("badge.svg", SVG)
        self.cert = os.path.join(self.tmp, "obf", "obf.pem")
        self.keyfile = os.path.join(self.tmp, "obf", "obf.key")
        os.makedirs(os.path.dirname(self.cert))
        self.cfg = self.config()
        lt.migrate(self.db)
        # before enrolment the section's files are not there: no --config yet
        kv = lt.parse_kv(self.assertOk(self.cli("consumer", "add", "LMS", "--db", self.db)).stdout)
        self.key, self.secret = kv["key"], kv["secret"]
        self.api_keys = []

    def config(self, cert=None, key=None, client=None, name="tool.ini"):
        return self.write(name, (
            "[awards]\nbackend = campus\n[backend.campus]\ntype = obf\napi = v1\n"
            "base_url = %s\nallow_loopback = true\nclient_id = %s\nca_file = %s\n"
            "certificate = %s\nkey = %s\nemail_subject = Your badge\n"
            "email_body = You earned a badge\nconnect_timeout = 10\ntimeout = 10\nrate = 1000\n"
            % (self.fake.base_url, client or self.cid, self.pki["ca"], cert or self.cert,
               key or self.keyfile)))

    def tearDown(self):
        for s in self.servers:
            self.outputs.append(s.stderr())
        secrets = list(self.api_keys)
        if os.path.exists(self.keyfile):
            with open(self.keyfile) as f:
                secrets += [ln for ln in f.read().splitlines() if ln and "-----" not in ln]
        for out in self.outputs:
            for s in secrets:
                self.assertNotIn(s, out)
        super().tearDown()

    def run_(self, *args, cfg=None):
        p = self.cli(*(args + ("--db", self.db, "--config", cfg or self.cfg)))
        self.outputs += [p.stdout, p.stderr]
        return p

    def ok(self, *args, cfg=None):
        return self.assertOk(self.run_(*args, cfg=cfg))

    def enrol(self, *extra, lifetime=obffake.API_KEY_LIFETIME):
        key = self.fake.mint_api_key(self.cid, lifetime=lifetime)
        self.api_keys.append(key)
        path = self.write("api-key-%d.txt" % len(self.api_keys), key + "\n")
        return self.run_("backend", "obf-enrol", "campus", "--api-key", path, *extra)

    def enrolled_serve(self):
        kv = lt.parse_kv(self.assertOk(self.enrol()).stdout)
        self.assertEqual(kv["client"], self.cid)
        self.server = self.serve(config=self.cfg, public_url="https://tool.example.edu")
        return kv

    def badge(self, name, rule, context=None, image=None):
        args = ["badge", "create", "--consumer", self.key, "--name", name, "--description",
                "About " + name, "--image", image or self.png, "--rule", rule]
        if context:
            args += ["--context", context]
        return lt.parse_kv(self.ok(*args).stdout)["slug"]

    def award_ready(self, ctx, image=None):
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        return self.badge("Badge " + ctx, "completion", context=ctx, image=image)

    def earn(self, user, ctx):
        params = lt.base_launch(user_id=user, context_id=ctx, context_title="Course " + ctx,
                                lis_person_contact_email_primary=user + "@example.edu")
        resp, _ = self.server.launch(params, self.key, self.secret)
        self.assertEqual(resp.status, 303, resp)
        self.ok("grade", "record", "--consumer", self.key, "--context", ctx, "--user", user,
                "--resource-link", "final", "--score", "1")

    def awards(self, user):
        return [a for a in json.loads(self.ok("award", "list", "--json").stdout)
                if a["user"] == user]

    def wait_award(self, user, pred=lambda a: a["state"] == "issued"):
        deadline = time.monotonic() + WAIT
        while True:
            got = self.awards(user)
            if len(got) == 1 and pred(got[0]):
                return got[0]
            if time.monotonic() > deadline:
                self.fail("award of %s not as expected: %r; OBF saw %r" % (
                    user, got, [(r.method, r.path, r.status, r.fault) for r in self.fake.records]))
            time.sleep(0.1)

    def marked(self, slug):
        return [b for b in self.fake.badges(self.cid, include_deleted=False)
                if str(b["metadata"].get("ltibadges_marker", "")).endswith(":" + slug)]

    def assertOneEvent(self, badge, email, award):
        got = self.fake.events(self.cid, badge, email)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["api"], "v1")
        self.assertEqual(award["assertion_id"], got[0]["id"])
        self.assertIsNone(award["assertion_url"])
        self.assertEqual(got[0]["log_entry"]["award_uid"], self.fake.events(
            self.cid, badge, email)[0]["log_entry"]["award_uid"])
        return got[0]


class Enrolment(V1):

    def test_enrol_writes_a_working_certificate_and_refuses_to_overwrite(self):
        p = self.assertOk(self.enrol())
        kv = lt.parse_kv(p.stdout)
        self.assertEqual((kv["client"], kv["certificate"], kv["key"]),
                         (self.cid, self.cert, self.keyfile))
        self.assertRegex(kv["expires"], r"^\d{4}-\d\d-\d\dT")
        for f in (self.cert, self.keyfile):
            self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o600, f)
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.cert))), ["obf.key", "obf.pem"],
                         "no temporary file left")
        [sign] = self.fake.matching(lambda r: r.path.endswith("/sign_request"))
        self.assertEqual(sign.status, 200)
        with open(self.cert) as f:
            first = f.read()
        # never over existing files without --force
        p = self.enrol()
        self.assertOneLineError(p, 1, "exists", "--force")
        with open(self.cert) as f:
            self.assertEqual(f.read(), first)
        self.assertOk(self.enrol("--force"))
        with open(self.cert) as f:
            self.assertNotEqual(f.read(), first)
        # the certificate works: check signs in with it and reads the client
        p = self.ok("backend", "check", "campus")
        self.assertRegex(p.stdout, r"^campus: ok \(type obf, host 127\.0\.0\.1, issuer Example U, "
                                   r"certificate expires \d{4}-\d\d-\d\d\)\n$")
        pings = self.fake.matching(lambda r: r.path.startswith("/v1/ping/"))
        self.assertEqual([(r.status, r.cert_cn) for r in pings], [(200, self.cid)])

    def test_an_expired_api_key_says_so(self):
        p = self.enrol(lifetime=-5)
        self.assertOneLineError(p, 1, "API key expired")
        self.assertFalse(os.path.exists(self.cert))
        self.assertFalse(os.path.exists(self.keyfile))

    def test_an_api_key_of_another_client_is_refused(self):
        other, _ = self.fake.add_client("Other U")
        key = self.fake.mint_api_key(other)
        self.api_keys.append(key)
        path = self.write("other-key.txt", key)
        p = self.run_("backend", "obf-enrol", "campus", "--api-key", path)
        self.assertOneLineError(p, 1, "is for client '%s'" % other)


class Issuing(V1):

    def test_created_on_first_award_issued_and_revoked(self):
        self.enrolled_serve()
        slug = self.award_ready("v1-a")
        self.earn("ann", "v1-a")
        a = self.wait_award("ann")
        [b] = self.marked(slug)
        self.assertEqual(b["api"], "v1")
        self.assertFalse(b["draft"])
        self.assertTrue(b["image"].startswith("data:image/png;base64,"))
        self.assertEqual(b["content"][0]["criteria"], "<p>About Badge v1-a</p>")
        self.assertOneEvent(b["id"], "ann@example.edu", a)
        self.ok("award", "revoke", str(a["id"]), "--reason", "mistake")
        [rv] = self.fake.wait_for(lambda r: r.method == "DELETE" and r.status == 204,
                                  timeout=WAIT)
        self.assertEqual(rv.query, "email=ann%40example.edu")
        self.assertTrue(self.fake.event(a["assertion_id"])["recipient"][0]["revoked"])
        # every v1 request carried the client certificate, over few connections
        v1 = self.fake.matching(lambda r: r.api == "v1" and "sign_request" not in r.path
                                and "OBF.rsa.pub" not in r.path)
        self.assertTrue(v1 and all(r.cert_cn == self.cid for r in v1))

    def test_completion_badge_made_for_a_course_goes_as_png(self):
        # use case 4: a course with badges on and no completion badge gets one,
        # with the default image, an SVG; v1 takes PNG only, so OBF gets its PNG
        self.enrolled_serve()
        self.ok("context", "enable", "--consumer", self.key, "--context", "v1-uc4")
        self.earn("dan", "v1-uc4")
        a = self.wait_award("dan")
        self.assertEqual(json.loads(self.ok("badge", "show", a["badge"], "--json").stdout)
                         ["image_type"], "image/svg+xml")
        [b] = self.marked(a["badge"])
        self.assertTrue(b["image"].startswith("data:image/png;base64,"), b["image"][:40])
        w, h, px = obffake.decode_png(base64.b64decode(b["image"].split(",", 1)[1]))
        self.assertEqual((w, h), (256, 256))
        self.assertEqual(px(128, 120), (0xfb, 0xbf, 0x24, 255))   # the medal's face
        self.assertEqual(px(100, 20), (0x1d, 0x4e, 0xd8, 255))    # a ribbon
        self.assertEqual(px(4, 4)[3], 0)                          # transparent around
        self.assertOneEvent(b["id"], "dan@example.edu", a)

    def test_svg_refused_on_v1(self):
        self.enrolled_serve()
        self.award_ready("v1-svg", image=self.svg)
        self.earn("sue", "v1-svg")
        a = self.wait_award("sue", lambda a: a["state"] == "failed")
        self.assertIn("takes PNG images only", a["last_error"])
        self.assertEqual(self.fake.badges(self.cid), [])

    def test_each_fault_leaves_one_of_each(self):
        self.enrolled_serve()
        cases = [
            ("500 on create", "status", "POST", r"^/v1/badge/[^/]+$", {"status": 500}),
            ("lost create", "lost", "POST", r"^/v1/badge/[^/]+$", {}),
            ("503 on issue", "status", "POST", r"^/v1/badge/[^/]+/[^/]+$", {"status": 503}),
            ("429 + Retry-After", "status", "POST", r"^/v1/badge/[^/]+/[^/]+$",
             {"status": 429, "retry_after": 1}),
            ("dropped issue", "drop", "POST", r"^/v1/badge/[^/]+/[^/]+$", {}),
            ("lost issue", "lost", "POST", r"^/v1/badge/[^/]+/[^/]+$", {}),
        ]
        for i, (name, kind, method, path, kw) in enumerate(cases):
            with self.subTest(fault=name):
                user, ctx = "learner%d" % i, "f%d" % i
                slug = self.award_ready(ctx)
                self.fake.add_fault(kind, method, path, **kw)
                self.earn(user, ctx)
                a = self.wait_award(user)
                [b] = self.marked(slug)
                self.assertOneEvent(b["id"], user + "@example.edu", a)
                self.assertEqual(self.fake.faults, [])


class Lookups(V1):
    """The look-up before an award is sent again reads every page of the
    learner's events (1 000 a page, newest first), up to LIMIT_OBF_PAGES."""

    PAGES = 20          # base/limits.h LIMIT_OBF_PAGES
    PAGE = 1000         # LIMIT_OBF_PAGE_SIZE, OBF's most

    def lost_issue(self, user, earlier, later):
        """A badge made in OBF whose events for `user` hold `earlier` and `later`
        events of other awards (issued a day before and a day after now), then
        the user's award, the answer to its issue lost: the event is made, and
        the worker looks it up before sending again."""
        theirs = self.fake.add_badge(self.cid, "Made in OBF")
        email = user + "@example.edu"
        now = int(time.time())
        self.fake.add_events(self.cid, theirs, email, earlier, now - 86400)
        self.fake.add_events(self.cid, theirs, email, later, now + 86400, uid_prefix="later")
        ctx = "lk-" + user
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        self.ok("badge", "create", "--consumer", self.key, "--name", "Badge " + ctx,
                "--description", "d", "--image", self.png, "--rule", "completion",
                "--context", ctx, "--backend-id", theirs)
        self.fake.add_fault("lost", "POST", r"^/v1/badge/[^/]+/%s$" % theirs)
        self.earn(user, ctx)
        return theirs, email

    def ours(self, badge, email):
        return [e for e in self.fake.events(self.cid, badge, email)
                if not e["log_entry"]["award_uid"].startswith(("earlier-", "later-"))]

    def pages_read(self, badge):
        return [r.query for r in self.fake.matching(
            lambda r: r.method == "GET" and r.path == "/v1/event/" + self.cid
            and "badge_id=" + badge in r.query)]

    def offsets_read(self, badge):
        return {int(re.search(r"(?:^|&)offset=(\d+)", q).group(1)) if "offset=" in q else 0
                for q in self.pages_read(badge)}

    def test_event_past_the_first_page_is_found(self):
        self.enrolled_serve()
        badge, email = self.lost_issue("pat", 1100, 1100)
        a = self.wait_award("pat")
        [e] = self.ours(badge, email)        # not issued again
        self.assertEqual(a["assertion_id"], e["id"])
        self.assertEqual(len(self.fake.events(self.cid, badge, email)), 2201)
        q = self.pages_read(badge)
        self.assertEqual(len(q), 2, q)
        self.assertIn("limit=1000&offset=1000", q[1])
        self.assertIn("order_by=desc", q[1])

    def test_found_on_the_last_page_read_and_refused_past_it(self):
        self.enrolled_serve()
        # newest first: `later` events come before the award's own
        badge, email = self.lost_issue("max", 0, self.PAGES * self.PAGE - 1)
        a = self.wait_award("max")
        [e] = self.ours(badge, email)
        self.assertEqual(a["assertion_id"], e["id"])
        self.assertEqual(self.offsets_read(badge), set(range(0, self.PAGES * self.PAGE, self.PAGE)))
        badge, email = self.lost_issue("over", 0, self.PAGES * self.PAGE)
        a = self.wait_award("over", lambda a: a["state"] == "failed")
        self.assertIn("looking up the event: the events of badge '%s' at Open Badge Factory are "
                      "more than 20000, the most ltibadges reads" % badge, a["last_error"])
        self.assertEqual(len(self.ours(badge, email)), 1, "not sent again")
        # every page up to the cap, none past it (a look-up cut short under load and tried
        # again reads its first pages twice: the set, not the count)
        self.assertEqual(self.offsets_read(badge), set(range(0, self.PAGES * self.PAGE, self.PAGE)))


class Certificates(V1):

    def test_refusals_say_what_is_wrong(self):
        other, _ = self.fake.add_client("Other U")
        d = os.path.join(self.tmp, "certs")
        cases = [
            ("rogue", self.fake.mint_client_cert(self.cid, d, rogue=True),
             "client certificate is invalid or expired"),
            ("expired", self.fake.mint_client_cert(self.cid, d, expired=True),
             "client certificate is invalid or expired"),
            ("foreign", self.fake.mint_client_cert(other, d),
             "certificate is for another client"),
        ]
        for name, c, phrase in cases:
            with self.subTest(cert=name):
                cfg = self.config(c["cert"], c["key"], name=name + ".ini")
                p = self.run_("backend", "check", "campus", cfg=cfg)
                self.assertEqual(p.returncode, 1, p)
                self.assertIn(phrase, p.stderr)

    def test_expiry_warned_from_30_days_before(self):
        d = os.path.join(self.tmp, "certs")
        soon = self.fake.mint_client_cert(self.cid, d, days=10)
        later = self.fake.mint_client_cert(self.cid, d, days=60)
        cfg = self.config(later["cert"], later["key"], name="later.ini")
        p = self.ok("backend", "check", "campus", cfg=cfg)
        self.assertIn("certificate expires", p.stdout)
        self.assertNotIn("warning", p.stderr)
        cfg = self.config(soon["cert"], soon["key"], name="soon.ini")
        p = self.ok("backend", "check", "campus", cfg=cfg)
        self.assertIn("warning: backend 'campus': the client certificate expires", p.stderr)
        self.assertIn("obf-enrol campus", p.stderr)
        server = self.serve(config=cfg)
        # the instructor's status line says so too, with the date
        self.ok("context", "enable", "--consumer", self.key, "--context", "c1", cfg=cfg)
        self.ok("badge", "create", "--consumer", self.key, "--name", "Remote", "--description",
                "d", "--image", self.png, "--rule", "manual", "--context", "c1", cfg=cfg)
        resp, _ = server.launch(lt.base_launch(user_id="teacher", context_id="c1",
                                               resource_link_id="rl-1", roles="Instructor"),
                                self.key, self.secret)
        self.assertEqual(resp.status, 303, resp)
        page = server.get(server.page_path(resp.header("Location")))
        text = " ".join(page.plain.split())
        self.assertIn("Badge service: campus.", text)
        self.assertRegex(text, r"The client certificate of the badge platform campus expires on "
                               r"[^:]+: badges stop then unless the administrator renews it\.")
        server.stop()
        self.assertIn("client certificate expires soon", server.stderr())
        # one that expires in 60 days: no line
        later_server = self.serve(config=self.config(later["cert"], later["key"], name="l2.ini"))
        resp, _ = later_server.launch(lt.base_launch(user_id="teacher", context_id="c1",
                                                     resource_link_id="rl-1", roles="Instructor"),
                                      self.key, self.secret)
        page = later_server.get(later_server.page_path(resp.header("Location")))
        self.assertNotIn("client certificate", " ".join(page.plain.split()))
        self.assertNotIn("client certificate expires soon", later_server.stderr())

    def test_a_key_that_is_not_the_certificates_is_refused_at_start(self):
        d = os.path.join(self.tmp, "certs")
        a = self.fake.mint_client_cert(self.cid, d)
        b = self.fake.mint_client_cert(self.cid, d)
        cfg = self.config(a["cert"], b["key"], name="mixed.ini")
        p = self.run_("backend", "check", "campus", cfg=cfg)
        self.assertIn("does not belong to the certificate", p.stdout + p.stderr)


if __name__ == "__main__":
    lt.main()
