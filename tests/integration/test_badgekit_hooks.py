#!/usr/bin/python3
"""BadgeKit's webhooks in (issue 21, section 6), end to end: `serve` with a
[backend.bk] section of type badgekit and a webhook_secret, the contract
fake (badgekitfake.py) as BadgeKit, its `webhooks` row pointing at
POST /hooks/badgekit/bk. The hooks BadgeKit sends itself (an award when an
instance is made, a revoke when one is deleted) and those the test has it
send: an award of ours whose outcome was unknown becomes issued; a revoke
of ours revokes it "revoked in BadgeKit", shown on the learner's page and
not sent back; an award never undoes a revoke; other instances and review
hooks are counted, not applied; replays change nothing; forged hooks
(wrong secret, tampered body, alg none, unsigned, hash mismatch, HS512, a
malformed header) are refused 401 and change nothing; 400, 403, 404, 405
and 413 as the issue lists, the body limit at max and max+1."""
import html
import http.client
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import badgekitfake  # noqa: E402
import ltitest as lt  # noqa: E402
from badgekitfake import BadgeKitFake, js_json  # noqa: E402

MASTER = "Mk4-badgekit-hooks-master-secret"
HOOK = "Wh7-badgekit-hook-secret"
SYSTEM = "badgekit"
SCOPE = "/systems/badgekit/issuers/uni"
WAIT = float(os.environ.get("LTIBADGES_AWARD_WAIT", "30"))
MAX_BODY = 64 * 1024
FORGERIES = ("wrong_secret", "tampered", "alg_none", "unsigned", "hash_mismatch", "other_alg",
             "malformed")


class Hooks(lt.TempDirTest):
    PREFIX = "ltibadges-bkhooks-"
    DB_NAME = "hooks.db"

    def setUp(self):
        super().setUp()
        self.fake = BadgeKitFake(secret=MASTER)
        self.fake.add_system(SYSTEM, name="Campus badges")
        self.fake.add_issuer(SYSTEM, "uni", name="The University")
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.outputs = []
        self.png = os.path.join(self.tmp, "badge.png")
        with open(self.png, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        self.cfg = self.write("tool.ini", (
            "[issuer]\nname = Hosted Hall\n"
            "[awards]\nbackend = bk\n[backend.bk]\ntype = badgekit\nbase_url = %s\n"
            "allow_loopback = true\nsystem = badgekit\nissuer = uni\n"
            "issuer_name = The University\n"
            # long enough that a hung call is still hung when the test sends its hook
            "connect_timeout = 2\ntimeout = 20\nrate = 1000\n"
            # a backend of another type: no hooks there
            "[backend.campus]\ntype = badgr\nbase_url = http://127.0.0.1:9/\n"
            "allow_loopback = true\nusername = u@example.edu\nissuer = abcdefghijklmnopqrstuv\n"
            % self.fake.base_url))
        self.env = {"LTIBADGES_BACKEND_BK_SECRET": MASTER,
                    "LTIBADGES_BACKEND_BK_WEBHOOK_SECRET": HOOK,
                    "LTIBADGES_BACKEND_CAMPUS_PASSWORD": "not-used-here"}
        lt.migrate(self.db)
        kv = lt.parse_kv(self.ok("consumer", "add", "LMS").stdout)
        self.key, self.secret = kv["key"], kv["secret"]
        self.server = self.serve(config=self.cfg, env=self.env)
        self.hook_url = "http://127.0.0.1:%d/hooks/badgekit/bk" % self.server.port
        self.fake.set_webhook(SYSTEM, self.hook_url, HOOK)

    def tearDown(self):
        for s in self.servers:
            self.outputs.append(s.stderr())
        for out in self.outputs:
            self.assertNotIn(MASTER, out)
            self.assertNotIn(HOOK, out)
        super().tearDown()

    # the command line

    def run_(self, *args, env=None):
        p = self.cli(*(args + ("--db", self.db, "--config", self.cfg)), env=env or self.env)
        self.outputs += [p.stdout, p.stderr]
        return p

    def ok(self, *args):
        return self.assertOk(self.run_(*args))

    def badge(self, name):
        return lt.parse_kv(self.ok(
            "badge", "create", "--consumer", self.key, "--name", name, "--description",
            "About " + name, "--image", self.png, "--rule", "manual").stdout)["slug"]

    def launch(self, user, ctx="hooks-course"):
        params = lt.base_launch(user_id=user, context_id=ctx, context_title="Course " + ctx,
                                lis_person_contact_email_primary=user + "@example.edu")
        resp, _ = self.server.launch(params, self.key, self.secret)
        self.assertEqual(resp.status, 303, resp)
        return resp

    def grant(self, slug, user):
        self.ok("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user)
        [a] = [a for a in self.awards() if a["user"] == user and a["badge"] == slug]
        return a

    def awards(self):
        return json.loads(self.ok("award", "list", "--json").stdout)

    def award(self, award_id):
        return lt.award(self.db, award_id)

    def snapshot(self):
        """Every award with its last passback, and the row counts: what a refused or replayed
        hook must not change."""
        return (lt.awards(self.db), lt.cli_json(self.db, "db", "stats"))

    def counts(self):
        """The hooks the server counted for backend bk (`backend list --json`)."""
        (bk,) = [b for b in json.loads(self.ok("backend", "list", "--json").stdout)
                 if b["name"] == "bk"]
        return bk["hooks"]

    def wait_state(self, award_id, states, what=""):
        deadline = time.monotonic() + WAIT
        while True:
            row = self.award(award_id)
            if row["state"] in states:
                return row
            if time.monotonic() > deadline:
                self.fail("award %d not %s in time%s: %r; BadgeKit saw %r" % (
                    award_id, states, what, row, [(r.method, r.target, r.status, r.fault)
                                                  for r in self.fake.records]))
            time.sleep(0.05)

    def issued(self, user, name="Hooked"):
        """A badge issued to `user` through BadgeKit, and the award hook BadgeKit sent for it."""
        slug = self.badge(name)
        self.launch(user)
        a = self.grant(slug, user)
        row = self.wait_state(a["id"], ("issued",))
        n = len(self.fake.hooks_sent)
        # BadgeKit's award hook for the instance, answered
        hook = [h for h in self.fake.wait_hooks(max(n, 1)) if h.kind == "award"][-1]
        return slug, row, hook

    def post(self, body, authorization=None, path="/hooks/badgekit/bk", method="POST",
             headers=None):
        h = {"Content-Type": "application/json"}
        if authorization is not None:
            h["Authorization"] = authorization
        h.update(headers or {})
        return self.server.request(method, path, body=body, headers=h)

    def signed_post(self, data, secret=HOOK, path="/hooks/badgekit/bk"):
        body = data if isinstance(data, bytes) else js_json(data)
        return self.post(body, BadgeKitFake.hook_authorization(body, secret), path=path)

    def operator(self, method, target, doc=None):
        """A call to BadgeKit as its operator would make it (signed with the master key)."""
        body = json.dumps(doc).encode() if doc is not None else None
        headers = {"Authorization": badgekitfake.sign_request(method, target, "master", MASTER,
                                                              body=body)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.fake.host, self.fake.port, timeout=10)
        try:
            conn.request(method, target, body, headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    # ---- the hooks BadgeKit sends

    def test_award_hook_of_an_issued_award(self):
        slug, row, hook = self.issued("ann")
        self.assertEqual(hook.kind, "award")
        self.assertEqual(hook.status, 200, hook)
        self.assertEqual(json.loads(hook.body)["uid"], row["uid"])
        self.assertEqual(row["assertion_id"], row["uid"])
        self.assertEqual(row["assertion_url"],
                         self.fake.base_url + "/public/assertions/" + row["uid"])
        c = self.counts()
        self.assertEqual((c["received"], c["refused"]), (1, 0), c)
        self.assertEqual(c["applied"] + c["unchanged"], 1, c)

    def test_unknown_outcome_becomes_issued(self):
        """The issue call hangs (the worker cannot know whether the instance was made); the
        award hook of our uid makes it issued with the hook's URL, and the worker's late
        answer does not undo that."""
        slug = self.badge("Unknown outcome")
        self.fake.add_fault("hang", method="POST", path=r"/instances$")
        self.launch("bea")
        a = self.grant(slug, "bea")
        self.fake.wait_hanging(1, timeout=WAIT)
        row = self.wait_state(a["id"], ("issuing",))
        self.assertIsNone(row["assertion_id"])
        self.assertEqual(row["attempts"], 1)
        url = self.fake.base_url + "/public/assertions/" + row["uid"]
        badge_slug = lt.badge(self.db, slug)["backend_id"]
        hook = self.fake.send_hook(SYSTEM, {
            "action": "award", "uid": row["uid"], "badge": {"slug": badge_slug},
            "email": "bea@example.edu", "assertionUrl": url, "issuedOn": int(time.time()),
            "comment": None})
        self.assertEqual(hook.status, 200, hook)
        row = self.award(a["id"])
        self.assertEqual(row["state"], "issued")
        self.assertEqual((row["assertion_id"], row["assertion_url"]), (row["uid"], url))
        self.assertIsNone(row["last_error"])
        self.assertEqual(row["issued_at"], row["created_at"])
        self.assertEqual(self.counts()["applied"], 1)
        # the hung call ends without an answer: the worker's late retry does not reopen it
        self.fake.release()
        self.fake.wait_for(lambda r: r.fault == "hang", timeout=WAIT)
        self.assertEqual(self.award(a["id"])["state"], "issued")
        self.assertEqual(self.award(a["id"])["assertion_url"], url)

    def test_revoke_hook_revokes_and_is_not_sent_back(self):
        slug, row, _ = self.issued("cid", name="Revoked there")
        badge_slug = lt.badge(self.db, slug)["backend_id"]
        deletes_before = [r for r in self.fake.records if r.method == "DELETE"]
        # the operator deletes the instance in BadgeKit: BadgeKit sends the revoke hook
        st, _ = self.operator("DELETE", "%s/badges/%s/instances/%s" % (
            SCOPE, badge_slug, "cid@example.edu"))
        self.assertEqual(st, 200)
        revoke = self.fake.wait_hooks(2)[-1]
        self.assertEqual((revoke.kind, revoke.status), ("revoke", 200), revoke)
        row = self.award(row["id"])
        self.assertEqual(row["state"], "revoked")
        self.assertEqual(row["revoke_reason"], "revoked in BadgeKit")
        # already revoked at BadgeKit: nothing due for the worker, no DELETE from us
        self.assertTrue(row["revoke_synced"])
        self.assertNotIn(row["state"], ("queued", "issuing"), "nothing due for the worker")
        # the operator's DELETE only
        self.assertEqual(len([r for r in self.fake.records if r.method == "DELETE"]),
                         len(deletes_before) + 1)
        # the learner's page says so
        page = self.server.get(self.server.page_path(self.launch("cid").header("Location")))
        self.assertEqual(page.status, 200)
        self.assertIn("revoked in BadgeKit", page.plain)
        self.assertRegex(page.plain, r"Revoked on \d{1,2} [A-Z][a-z]+ \d{4}: revoked in BadgeKit")

    def test_linkedin_names_the_platform_issuer(self):
        """The add-to-profile link of a badge issued through BadgeKit names the issuer it was
        issued as (the backend's issuer_name), not this server's built-in issuer."""
        _, row, _ = self.issued("lin", name="Shared")
        page = self.server.get(self.server.page_path(self.launch("lin").header("Location")))
        self.assertEqual(page.status, 200)
        li = re.search(r'<a class="linkedin" href="([^"]+)"', page.text)
        self.assertIsNotNone(li, page.text)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(html.unescape(li.group(1))).query))
        self.assertEqual(q["organizationName"], "The University")
        self.assertEqual(q["certUrl"], row["assertion_url"])
        issued = time.gmtime(row["issued_at"])
        self.assertEqual((q["issueYear"], q["issueMonth"]),
                         (str(issued.tm_year), str(issued.tm_mon)))

    def test_public_pages_name_the_platform_issuer(self):
        """The public page of a badge issued through BadgeKit, and of its BadgeClass, name the
        issuer it was issued as (the backend's issuer_name), never this server's built-in
        issuer, and link to the platform's own page of the assertion."""
        slug, row, _ = self.issued("pub", name="Shown")
        browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        page = self.server.get("/ob/v2/assertions/" + row["uid"], headers=browser)
        self.assertEqual(page.status, 200, page.text)
        issued_by = re.search(r"<dt>Issued by</dt><dd>(.*?)</dd>", page.text)
        self.assertIsNotNone(issued_by, page.text)
        self.assertIn("The University", issued_by.group(1))
        self.assertNotIn("Hosted Hall", page.text)
        self.assertIn('<meta property="og:site_name" content="The University">', page.text)
        self.assertIn('href="%s"' % html.escape(row["assertion_url"]), page.text)
        badge = self.server.get("/ob/v2/badges/" + slug, headers=browser)
        self.assertEqual(badge.status, 200, badge.text)
        self.assertIn("The University", re.search(r"<dt>Issued by</dt><dd>(.*?)</dd>",
                                                  badge.text).group(1))
        self.assertNotIn("Hosted Hall", badge.text)
        # without issuer_name the page names no issuer rather than this server
        self.stop(self.server)
        with open(self.cfg) as f:
            text = f.read()
        with open(self.cfg, "w") as f:
            f.write(text.replace("issuer_name = The University\n", ""))
        self.server = self.serve(config=self.cfg, env=self.env)
        page = self.server.get("/ob/v2/assertions/" + row["uid"], headers=browser)
        self.assertEqual(page.status, 200, page.text)
        self.assertEqual(re.search(r"<dt>Issued by</dt><dd>(.*?)</dd>", page.text).group(1),
                         '<span class="issuer">the institution&#39;s badge platform</span>')
        self.assertNotIn("Hosted Hall", page.text)
        self.assertNotIn("og:site_name", page.text)
        # the built-in issuer's own page still names it
        issuer = self.server.get("/ob/v2/issuer", headers=browser)
        self.assertIn("<h1>Hosted Hall</h1>", issuer.text)

    def test_replays_change_nothing(self):
        slug, row, award_hook = self.issued("dee", name="Replayed")
        badge_slug = lt.badge(self.db, slug)["backend_id"]
        st, _ = self.operator("DELETE", "%s/badges/%s/instances/%s" % (
            SCOPE, badge_slug, "dee@example.edu"))
        self.assertEqual(st, 200)
        revoke_hook = self.fake.wait_hooks(2)[-1]
        self.assertEqual(self.award(row["id"])["state"], "revoked")
        before = self.snapshot()
        counts = self.counts()
        # the award hook again: an award never undoes a revoke; the revoke hook again: done
        for hook in (award_hook, revoke_hook, award_hook, revoke_hook):
            replay = self.fake.replay_hook(hook)
            self.assertEqual(replay.status, 200, replay)
        self.assertEqual(self.snapshot(), before)
        after = self.counts()
        self.assertEqual(after["received"], counts["received"] + 4)
        self.assertEqual(after["unchanged"], counts["unchanged"] + 4)
        self.assertEqual((after["applied"], after["refused"]), (counts["applied"], 0))

    def test_other_instances_and_review_hooks_are_counted_not_applied(self):
        slug, row, _ = self.issued("eve", name="Others")
        badge_slug = lt.badge(self.db, slug)["backend_id"]
        before = self.snapshot()
        counts = self.counts()
        url = self.fake.base_url + "/public/assertions/"
        hooks = [
            # an instance made in BadgeKit by other means
            {"action": "award", "uid": "made-elsewhere", "badge": {"slug": badge_slug},
             "email": "zed@example.edu", "assertionUrl": url + "made-elsewhere",
             "issuedOn": 1, "comment": None},
            {"action": "revoke", "uid": "made-elsewhere", "badge": {"slug": badge_slug},
             "email": "zed@example.edu"},
            # our uid under another of BadgeKit's badges: not the instance we made
            {"action": "revoke", "uid": row["uid"], "badge": {"slug": "another-badge"},
             "email": "eve@example.edu"},
            # an action this version does not know
            {"action": "claim", "uid": row["uid"]},
        ]
        for data in hooks:
            with self.subTest(data=data):
                h = self.fake.send_hook(SYSTEM, data)
                self.assertEqual(h.status, 200, h)
        review = self.fake.review_hook(SYSTEM, badge_slug, "eve@example.edu")
        self.assertEqual(review.status, 200, review)
        self.assertEqual(self.snapshot(), before)
        after = self.counts()
        self.assertEqual(after["received"], counts["received"] + 5)
        self.assertEqual(after["ignored"], counts["ignored"] + 5)
        self.assertEqual(after["applied"], counts["applied"])
        # a hook about an award of the hosted issuer, or of another backend, is not ours here
        hosted = lt.parse_kv(self.ok(
            "badge", "create", "--consumer", self.key, "--name", "Hosted", "--description", "d",
            "--image", self.png, "--rule", "manual", "--backend", "hosted").stdout)["slug"]
        a = self.grant(hosted, "eve")
        hosted_row = self.wait_state(a["id"], ("issued",))
        h = self.fake.send_hook(SYSTEM, {"action": "revoke", "uid": hosted_row["uid"],
                                         "badge": {"slug": badge_slug}, "email": "e@x.y"})
        self.assertEqual(h.status, 200, h)
        self.assertEqual(self.award(a["id"])["state"], "issued")

    # ---- refusals

    def test_forged_hooks_change_nothing(self):
        slug, row, _ = self.issued("fay", name="Forged")
        badge_slug = lt.badge(self.db, slug)["backend_id"]
        before = self.snapshot()
        counts = self.counts()
        data = {"action": "revoke", "uid": row["uid"], "badge": {"slug": badge_slug},
                "email": "fay@example.edu"}
        for how in FORGERIES:
            with self.subTest(how=how):
                h = self.fake.forge_hook(SYSTEM, data, how)
                self.assertEqual(h.status, 401, h)
        # an award hook tampered into a revoke
        award = {"action": "award", "uid": row["uid"], "badge": {"slug": badge_slug},
                 "email": "fay@example.edu", "assertionUrl": row["assertion_url"],
                 "issuedOn": 1, "comment": None}
        h = self.fake.forge_hook(SYSTEM, award, "tampered")
        self.assertEqual(h.status, 401, h)
        self.assertIn(b'"revoke"', h.body)
        # a token with alg none and the right signature after it, and one signed with HS256
        # under a header naming none
        body = js_json(data)
        good = BadgeKitFake.hook_authorization(body, HOOK)
        head, claims, sig = good[len('JWT token="'):-1].split(".")
        none_head = badgekitfake.b64url(js_json({"typ": "JWT", "alg": "none"}))
        for tok in (none_head + "." + claims + "." + sig, none_head + "." + claims + "."):
            r = self.post(body, 'JWT token="%s"' % tok)
            self.assertEqual(r.status, 401, r)
            self.assertIn("not HS256", json.loads(r.body)["error"])
        r = self.post(body, good.replace("JWT token=", "JWT  token="))
        self.assertEqual(r.status, 401)
        self.assertEqual(self.snapshot(), before)
        # the right token still works after all that (and the refusals are counted)
        ok = self.post(body, good)
        self.assertEqual(ok.status, 200, ok)
        self.assertEqual(self.award(row["id"])["state"], "revoked")
        c = self.counts()
        self.assertEqual(c["refused"], counts["refused"] + len(FORGERIES) + 4)
        self.assertEqual(c["received"], counts["received"] + len(FORGERIES) + 5)
        self.assertEqual(c["last_refusal"], "the hook's Authorization header is not of the "
                         "form JWT token=\"...\"")
        # backend check says so
        out = self.ok("backend", "check", "bk").stdout
        self.assertIn("bk: hooks on: %d received (%d applied, %d unchanged, %d ignored), "
                      "%d refused\n" % (c["received"], c["applied"], c["unchanged"],
                                        c["ignored"], c["refused"]), out)
        self.assertRegex(out, r"bk: last hook refused \d{4}-\d\d-\d\dT[\d:]+Z: the hook's "
                         r"Authorization header is not of the form")
        doc = json.loads(self.ok("backend", "check", "bk", "--json").stdout)
        hooks = doc["bk"]["hooks"]
        self.assertEqual((hooks["on"], hooks["received"], hooks["refused"]),
                         (True, c["received"], c["refused"]))

    def test_refusals_by_status(self):
        slug, row, _ = self.issued("gus", name="Refusals")
        before = self.snapshot()
        data = {"action": "revoke", "uid": row["uid"], "email": "gus@example.edu"}
        # 400: signed, but not a hook
        for body in (b"{not json", b"[]", b'{"uid":"x"}', b'{"action":"award","uid":"x"}',
                     b""):
            with self.subTest(body=body):
                r = self.signed_post(body)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.header("Content-Type"), "application/json")
                self.assertIn("error", json.loads(r.body))
        # 404: no backend of that name, or not a BadgeKit one (signed all the same)
        for path in ("/hooks/badgekit/nope", "/hooks/badgekit/campus", "/hooks/badgekit/hosted",
                     "/hooks/badgekit/", "/hooks/badgekit/BK", "/hooks/badgekit/bk/x",
                     "/hooks/badgekit/" + "b" * 40):
            with self.subTest(path=path):
                r = self.signed_post(data, path=path)
                self.assertEqual(r.status, 404, r)
        # 405: not a POST
        for method in ("GET", "PUT", "DELETE"):
            with self.subTest(method=method):
                r = self.server.request(method, "/hooks/badgekit/bk")
                self.assertEqual(r.status, 405, r)
                self.assertEqual(r.header("Allow"), "POST")
        # the body limit: at 64 KiB a hook is read (here: about no award of ours), one byte more
        # is refused from its Content-Length, and a chunked one at its end
        pad = {"action": "award", "uid": "padded", "assertionUrl": "https://x.example/a",
               "comment": ""}
        pad["comment"] = "p" * (MAX_BODY - len(js_json(pad)))
        body = js_json(pad)
        self.assertEqual(len(body), MAX_BODY)
        r = self.signed_post(body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.body), {"effect": "ignored"})
        over = body[:-1] + b' }'
        self.assertEqual(len(over), MAX_BODY + 1)
        r = self.signed_post(over)
        self.assertEqual(r.status, 413, r)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        try:
            conn.putrequest("POST", "/hooks/badgekit/bk")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.putheader("Authorization", BadgeKitFake.hook_authorization(over, HOOK))
            conn.endheaders()
            for i in range(0, len(over), 8192):
                chunk = over[i:i + 8192]
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 413)
        finally:
            conn.close()
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.award(row["id"])["state"], "issued")

    def test_hooks_off_without_a_webhook_secret(self):
        """A badgekit section without webhook_secret takes no hook, a well signed one neither."""
        slug, row, _ = self.issued("hal", name="No secret")
        self.server.stop()
        env = dict(self.env)
        del env["LTIBADGES_BACKEND_BK_WEBHOOK_SECRET"]
        server = self.serve(config=self.cfg, env=env)
        before = self.snapshot()
        for secret in (HOOK, ""):
            body = js_json({"action": "revoke", "uid": row["uid"], "email": "hal@example.edu"})
            r = server.request("POST", "/hooks/badgekit/bk", body=body, headers={
                "Authorization": BadgeKitFake.hook_authorization(body, secret)})
            self.assertEqual(r.status, 403, r)
            self.assertIn("webhook_secret is empty", json.loads(r.body)["error"])
        self.assertEqual(self.snapshot(), before)
        self.stop(server)
        # counted when the server stopped
        self.assertEqual(self.counts()["refused"], 2)
        out = self.run_("backend", "check", "bk", env=env).stdout
        self.assertIn("bk: hooks off (webhook_secret is empty): ", out)
        self.assertIn(", 2 refused\n", out)


if __name__ == "__main__":
    lt.main()
