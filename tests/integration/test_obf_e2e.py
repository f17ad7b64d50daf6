#!/usr/bin/python3
"""Awards through Open Badge Factory end to end: `serve` with a
[backend.campus] section of type obf talking to the contract fake
(obffake.py, over TLS with the test's CA) on 127.0.0.1. API v2: the
proposal's five use cases (../shared/seeds/000_571e62eb8fdee2be.txt) with
badges at OBF, and no secret or token in any output. The set-up (E2E) is
shared by test_obf_e2e_crashes.py (kill -9 between sending and recording,
revocation, edits) and test_obf_e2e_faults.py (the faults, the tokens, a
hanging OBF): each file stays well within ctest's timeout, also under ASan,
as OBF's one token in ten seconds is waited out for real."""
import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import obffake  # noqa: E402
import ltitest as lt  # noqa: E402
from obffake import ObfFake  # noqa: E402

WAIT = float(os.environ.get("LTIBADGES_AWARD_WAIT", "40"))
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
       '<rect width="8" height="8" fill="#06c"/></svg>')


class E2E(lt.TempDirTest):
    PREFIX = "ltibadges-obf-"
    DB_NAME = "e2e.db"

    def setUp(self):
        super().setUp()
        self.pki = obffake.make_pki(os.path.join(self.tmp, "pki"))
        self.fake = ObfFake(self.pki)
        self.cid, self.client_secret = self.fake.add_client("Example U")
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.outputs = []
        self.png = os.path.join(self.tmp, "badge.png")
        with open(self.png, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        self.svg = self.write("badge.svg", SVG)
        self.cfg = self.write("tool.ini", self.config_text())
        self.env = {"LTIBADGES_BACKEND_CAMPUS_CLIENT_SECRET": self.client_secret}
        lt.migrate(self.db)
        kv = lt.parse_kv(self.ok("consumer", "add", "LMS").stdout)
        self.key, self.secret = kv["key"], kv["secret"]
        self.server = self.serve(config=self.cfg, env=self.env)

    def config_text(self, timeout=2):
        return ("[awards]\nbackend = campus\n[backend.campus]\ntype = obf\n"
                "base_url = %s\nallow_loopback = true\nclient_id = %s\nca_file = %s\n"
                "connect_timeout = 2\ntimeout = %d\nrate = 1000\n"
                % (self.fake.base_url, self.cid, self.pki["ca"], timeout))

    def serve(self, **kw):
        # one public URL across restarts: it names this server in the marker tags
        kw.setdefault("public_url", "https://tool.example.edu")
        return super().serve(**kw)

    def tearDown(self):
        for s in self.servers:
            self.outputs.append(s.stderr())
        tokens = list(self.fake._tokens)
        for out in self.outputs:
            self.assertNotIn(self.client_secret, out)
            for t in tokens:
                self.assertNotIn(t, out)
        super().tearDown()

    # the command line

    def run_(self, *args, cfg=None, env=None):
        p = self.cli(*(args + ("--db", self.db, "--config", cfg or self.cfg)),
                     env=self.env if env is None else env)
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

    def launch(self, user, ctx, mode=None, server=None):
        params = lt.base_launch(user_id=user, context_id=ctx, context_title="Course " + ctx,
                                lis_person_contact_email_primary=user.capitalize() +
                                "@Example.EDU", custom_badge_mode=mode)
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
                self.fail("awards of %s not %s in time: %r; OBF saw %r" % (
                    user, states, got, [(r.method, r.path, r.status, r.fault)
                                        for r in self.fake.records]))
            time.sleep(0.1)

    def award_ready(self, user, ctx, slug=None):
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        return self.badge("Badge " + ctx, "completion", context=ctx) if slug is None else slug

    # the platform

    def marked(self, slug):
        """The client's badges (not deleted) tagged as this server's `slug`."""
        return [b for b in self.fake.badges(self.cid, include_deleted=False)
                if any(t.startswith("ltibadges:") and t.endswith(":" + slug)
                       for c in b["content"] for t in c["tag"])]

    def assertOneEvent(self, badge, email, award=None):
        got = self.fake.events(self.cid, badge, email)
        self.assertEqual(len(got), 1, got)
        e = got[0]
        self.assertEqual(e["api_consumer_id"], "ltibadges")
        [r] = e["recipient"]
        self.assertEqual(r["email"].lower(), email.lower())
        if award is not None:
            self.assertEqual(award["assertion_id"], e["id"])
            self.assertEqual(award["assertion_url"],
                             "%s/obv3/credentials/%s.json" % (self.fake.base_url,
                                                              r["assertion_id"]))
        return e


class UseCases(E2E):
    """The five use cases, with the badges at OBF."""

    def test_1_existing_badge_with_course_and_mode(self):
        theirs = self.fake.add_badge(self.cid, "Made in OBF")
        ctx = "course-v1:edX+UC1+run"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("UC1", "completion", "--mode", "verified", "--backend-id", theirs,
                          context=ctx)
        self.assertEqual((self.show(slug)["backend"], self.show(slug)["backend_id"]),
                         ("campus", theirs))
        self.launch("ann", ctx, mode="verified")
        self.grade("ann", ctx, 0.9)
        [a] = self.wait_awards("ann", 1)
        e = self.assertOneEvent(theirs, "ann@example.edu", a)
        self.assertEqual(json.loads(obffake._log_text(e["log_entry"]))["award_uid"],
                         e["log_entry"]["award_uid"])
        self.assertEqual(len(self.fake.badges(self.cid)), 1, "nothing else was made")
        # an id OBF lacks, and a draft, are refused, nothing stored
        for bid, phrase in (("NOSUCHBADGE00", "not found"),
                            (self.fake.add_badge(self.cid, "Draft", draft=True),
                             "publish it in Open Badge Factory first")):
            p = self.run_("badge", "create", "--consumer", self.key, "--name", "X",
                          "--description", "d", "--image", self.png, "--rule", "manual",
                          "--backend-id", bid)
            self.assertOneLineError(p, 1, "refused by backend 'campus'", phrase)

    def test_2_existing_badge_without_course_or_mode(self):
        theirs = self.fake.add_badge(self.cid, "Anywhere")
        slug = self.badge("UC2", "enrollment", "--backend-id", theirs)
        self.launch("bea", "uc2-course")
        [a] = self.wait_awards("bea", 1)
        self.assertEqual(a["badge"], slug)
        self.assertOneEvent(theirs, "bea@example.edu", a)

    def test_3_created_at_obf_on_first_award(self):
        ctx = "uc3-course"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("UC3", "completion", "--criteria-url", "https://lms.example.edu/c",
                          "--tag", "biology", "--expires-days", "30", context=ctx)
        self.assertIsNone(self.show(slug)["backend_id"])
        self.launch("cy", ctx)
        self.grade("cy", ctx, 1.0)
        [a] = self.wait_awards("cy", 1)
        [b] = self.marked(slug)
        self.assertEqual(self.show(slug)["backend_id"], b["id"])
        self.assertFalse(b["draft"])
        self.assertEqual(b["primary_language"], "en")
        [c] = b["content"]
        self.assertEqual((c["name"], c["description"]), ("UC3", "About UC3"))
        self.assertIn("https://lms.example.edu/c", c["criteria"])
        self.assertIn("biology", c["tag"])
        self.assertTrue(b["image"].startswith("data:image/png;base64,"))
        e = self.assertOneEvent(b["id"], "cy@example.edu", a)
        # the issue date is the earning, and expiry counted from it
        self.assertEqual(e["issued_on"], a["created_at"])
        self.assertEqual(e["expires_on"], a["created_at"] + 30 * 86400)
        self.assertEqual(e["log_entry"]["course"], "Course " + ctx)
        # OBF e-mails the learner itself (notify = true, the default)
        self.assertIn(("Cy@Example.EDU", e["id"]), self.fake.mailed)

    def test_4_enabled_course_without_badge(self):
        ctx = "uc4-course"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        self.launch("dan", ctx, mode="honor")
        self.grade("dan", ctx, 0.8)
        [a] = self.wait_awards("dan", 1)
        self.assertEqual(self.show(a["badge"])["backend"], "campus")
        [b] = self.marked(a["badge"])
        self.assertOneEvent(b["id"], "dan@example.edu", a)
        # the default image, an SVG here, goes to OBF as its PNG (as on v1)
        self.assertEqual(self.show(a["badge"])["image_type"], "image/svg+xml")
        self.assertTrue(b["image"].startswith("data:image/png;base64,"), b["image"][:40])
        w, h, px = obffake.decode_png(base64.b64decode(b["image"].split(",", 1)[1]))
        self.assertEqual((w, h, px(128, 120)), (256, 256, (0xfb, 0xbf, 0x24, 255)))

    def test_5_group_and_count_rules_with_obf_ids(self):
        grp_id = self.fake.add_badge(self.cid, "Track")
        cnt_id = self.fake.add_badge(self.cid, "Two")
        c1, c2 = "uc5-a", "uc5-b"
        for c in (c1, c2):
            self.ok("context", "enable", "--consumer", self.key, "--context", c)
        self.ok("group", "add", "track", "--consumer", self.key, "--context", c1, c2)
        grp = self.badge("UC5 track", "group:track", "--backend-id", grp_id)
        cnt = self.badge("UC5 two", "count:2", "--backend-id", cnt_id)
        for c in (c1, c2):
            self.launch("eve", c)
            self.grade("eve", c, 0.9)
        got = {a["badge"]: a for a in self.wait_awards("eve", 4)}
        self.assertLessEqual({grp, cnt}, set(got))
        self.assertOneEvent(grp_id, "eve@example.edu", got[grp])
        self.assertOneEvent(cnt_id, "eve@example.edu", got[cnt])


if __name__ == "__main__":
    lt.main()
