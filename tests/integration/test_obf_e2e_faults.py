#!/usr/bin/python3
"""Open Badge Factory end to end, the platform misbehaving: each fault (500,
503, 429 + Retry-After, a hang, 401 and 403, a connection dropped before or
after the work, tokens expiring) leaving exactly one badge and one event per
learner at OBF; the access token reused, and `backend check` beside `serve`
(OBF gives a client one token in ten seconds: the one refused waits); a
refused client; a hanging OBF that slows neither hosted awards nor a stop.
The set-up (serve with [backend.campus] type obf against obffake.py over
TLS, no secret or token in any output) is test_obf_e2e.py's."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from test_obf_e2e import E2E, WAIT  # noqa: E402


class Faults(E2E):
    """Each fault of the platform: the award ends issued, with exactly one badge and one event
    for the learner at OBF."""

    CASES = [
        ("500 on create", [("status", "POST", r"^/v2/badge/[^/]+$", {"status": 500})]),
        ("503 on issue", [("status", "POST", r"/issue$", {"status": 503})]),
        ("429 + Retry-After on issue",
         [("status", "POST", r"/issue$", {"status": 429, "retry_after": 1})]),
        ("dropped create", [("drop", "POST", r"^/v2/badge/[^/]+$", {})]),
        ("dropped issue", [("drop", "POST", r"/issue$", {})]),
        ("create lost after the work", [("lost", "POST", r"^/v2/badge/[^/]+$", {})]),
        ("issue lost after the work", [("lost", "POST", r"/issue$", {})]),
        ("hang past the timeout on issue", [("hang", "POST", r"/issue$", {})]),
        ("issue hangs after the work", [("hang_after", "POST", r"/issue$", {})]),
        ("one 401", [("unauthorized", "*", r"^/v2/(badge|event)/", {})]),
        ("one 403", [("status", "*", r"^/v2/(badge|event)/", {"status": 403})]),
        ("500 on the recipient look-up", [("status", "GET", r"/recipient$", {"status": 500})]),
        ("tokens expiring mid-run", "expire"),
    ]

    def test_each_fault_leaves_one_of_each(self):
        # a first award, so that a token is held when the token faults come
        self.award_ready("warm", "warm")
        self.launch("w", "warm")
        self.grade("w", "warm", 1)
        self.wait_awards("w", 1)
        for i, (name, faults) in enumerate(self.CASES):
            with self.subTest(fault=name):
                ctx, user = "f%d" % i, "learner%d" % i
                slug = self.award_ready(user, ctx)
                if faults == "expire":
                    self.fake.expire_tokens()
                else:
                    for kind, method, path, kw in faults:
                        self.fake.add_fault(kind, method, path, **kw)
                self.launch(user, ctx)
                self.grade(user, ctx, 1)
                if faults != "expire" and faults[0][0] in ("hang", "hang_after"):
                    self.fake.wait_hanging(1)
                    self.fake.release()
                [a] = self.wait_awards(user, 1)
                [b] = self.marked(slug)
                self.assertOneEvent(b["id"], user + "@example.edu", a)
                self.assertEqual(self.fake.faults, [], "every fault was met")


class Tokens(E2E):

    def test_backend_check_beside_serve(self):
        # serve takes a token for an award; `backend check` at once after it asks OBF for its
        # own, is told to wait (one token in ten seconds a client), waits and gets one
        self.award_ready("tk", "tok-1")
        self.launch("tk", "tok-1")
        self.grade("tk", "tok-1", 1)
        self.wait_awards("tk", 1)
        p = self.ok("backend", "check")
        self.assertEqual(p.stdout,
                         "hosted: ok (the built-in issuer: nothing to sign in to)\n"
                         "campus: ok (type obf, host 127.0.0.1, issuer Example U)\n")
        grants = [r for r in self.fake.token_requests() if r.status == 200]
        self.assertEqual(len(grants), 2, "serve's and check's")
        refused = [r for r in self.fake.token_requests() if r.status == 429]
        # each process asked at most once within the ten seconds, and waited when refused
        self.assertLessEqual(len(refused), 1)
        # serve's token is still used: its next award asks for none
        self.award_ready("tl", "tok-2")
        self.launch("tl", "tok-2")
        self.grade("tl", "tok-2", 1)
        self.wait_awards("tl", 1)
        self.assertEqual(len([r for r in self.fake.token_requests() if r.status == 200]), 2)

    def test_token_reused_until_it_expires(self):
        for i in range(3):
            self.award_ready("re%d" % i, "reuse-%d" % i)
            self.launch("re%d" % i, "reuse-%d" % i)
            self.grade("re%d" % i, "reuse-%d" % i, 1)
            self.wait_awards("re%d" % i, 1)
        self.assertEqual(len(self.fake.token_requests()), 1)
        calls = self.fake.matching(lambda r: r.api == "v2" and "oauth2" not in r.path)
        self.assertTrue(all(r.status != 401 for r in calls))

    def test_refused_client(self):
        self.server.stop()
        env = {"LTIBADGES_BACKEND_CAMPUS_CLIENT_SECRET": "wrong-" + self.client_secret[:8]}
        p = self.run_("backend", "check", "campus", env=env)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("refused the client id and secret", p.stderr)
        self.assertIn("Admin tools > API", p.stderr)
        self.server = self.serve(config=self.cfg, env=env)
        self.award_ready("rf", "refused-1")
        self.launch("rf", "refused-1")
        self.grade("rf", "refused-1", 1)
        self.fake.wait_for(lambda r: "oauth2" in r.path and r.status == 401, timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while True:
            [a] = self.awards("rf")
            if a.get("last_error"):
                break
            self.assertLess(time.monotonic(), deadline, a)
            time.sleep(0.1)
        self.assertIn("refused the client id and secret", a["last_error"])
        self.assertEqual(a["state"], "queued")
        self.assertEqual(self.fake.events(), [])


class Hangs(E2E):

    def test_hanging_platform_does_not_slow_hosted_awards_and_stop_is_prompt(self):
        ctx, ctx2 = "hang-1", "hang-2"
        for c in (ctx, ctx2):
            self.ok("context", "enable", "--consumer", self.key, "--context", c)
        self.badge("At OBF", "completion", context=ctx)
        hosted = self.badge("Hosted", "enrollment", "--backend", "hosted", context=ctx2)
        # a timeout far longer than the test: the first call that hangs hangs throughout
        self.server.stop()
        cfg = self.write("slow.ini", self.config_text(timeout=300))
        self.server = self.serve(config=cfg, env=self.env)
        self.fake.add_fault("hang", "*", r"^/v2/", count=1000)
        self.launch("hal", ctx)
        self.grade("hal", ctx, 1)
        self.fake.wait_hanging(1)
        self.launch("hub", ctx2)
        [a] = self.wait_awards("hub", 1)
        self.assertEqual(a["badge"], hosted)
        self.assertEqual(self.fake.hanging, 1, "OBF still hangs")
        rc, took = self.server.stop()
        self.assertEqual(rc, 0, self.server.stderr()[-2000:])
        # a bound of half the 300 s timeout, which no loaded machine comes near
        self.assertLess(took, 150, "serve waited for OBF's timeout to stop")
        [a] = self.awards("hal")
        self.assertIn(a["state"], ("queued", "issuing"))
        self.assertEqual(self.fake.events(), [])


if __name__ == "__main__":
    lt.main()
