#!/usr/bin/python3
"""Awards through a self-hosted BadgeKit API end to end: `serve` with a
[backend.bk] section of type badgekit talking to the contract fake
(badgekitfake.py) on 127.0.0.1, every call signed and checked there as
BadgeKit checks it. The proposal's five use cases
(../shared/seeds/000_571e62eb8fdee2be.txt) with badges in BadgeKit; each
fault (500, 500 after the row was stored, a hang, a connection dropped
before or after the instance was made, 429) leaving exactly one badge and
one instance per learner; an instance made by other means adopted; a
revoke deleting the instance; `backend check` reading the scope; and no
secret in any output."""
import http.client
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import badgekitfake  # noqa: E402
import ltitest as lt  # noqa: E402
from badgekitfake import BadgeKitFake  # noqa: E402

MASTER = "Mk4-badgekit-e2e-master-secret"
PUBLIC = "https://tool.example.edu"
SCOPE = "/systems/badgekit/issuers/uni"
WAIT = float(os.environ.get("LTIBADGES_AWARD_WAIT", "30"))


class E2E(lt.TempDirTest):
    PREFIX = "ltibadges-badgekit-"
    DB_NAME = "e2e.db"
    refusals = False

    def setUp(self):
        super().setUp()
        self.fake = BadgeKitFake(secret=MASTER)
        self.fake.add_system("badgekit", name="Campus badges")
        self.fake.add_issuer("badgekit", "uni", name="The University")
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.outputs = []
        self.png = os.path.join(self.tmp, "badge.png")
        with open(self.png, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        self.cfg = self.write("tool.ini", (
            "[awards]\nbackend = bk\n[backend.bk]\ntype = badgekit\nbase_url = %s\n"
            "allow_loopback = true\nsystem = badgekit\nissuer = uni\n"
            "connect_timeout = 2\ntimeout = 2\nrate = 1000\n" % self.fake.base_url))
        self.env = {"LTIBADGES_BACKEND_BK_SECRET": MASTER}
        lt.migrate(self.db)
        kv = lt.parse_kv(self.ok("consumer", "add", "LMS").stdout)
        self.key, self.secret = kv["key"], kv["secret"]
        self.server = self.serve(config=self.cfg, env=self.env)

    def serve(self, **kw):
        # one public URL across restarts: it names this server in the badge slugs
        kw.setdefault("public_url", PUBLIC)
        return super().serve(**kw)

    def tearDown(self):
        for s in self.servers:
            self.outputs.append(s.stderr())
        for out in self.outputs:
            self.assertNotIn(MASTER, out)
        # every call BadgeKit got was signed and passed its checks (but the ones refused on
        # purpose)
        refused = [(r.method, r.target, r.response_body) for r in self.fake.records
                   if r.status == 403]
        self.assertEqual(refused, [] if not self.refusals else refused)
        super().tearDown()

    # the command line

    def run_(self, *args):
        p = self.cli(*(args + ("--db", self.db, "--config", self.cfg)), env=self.env)
        self.outputs += [p.stdout, p.stderr]
        return p

    def ok(self, *args):
        return self.assertOk(self.run_(*args))

    def badge(self, name, rule, *extra, context=None):
        args = ["badge", "create", "--consumer", self.key, "--name", name, "--description",
                "About " + name, "--image", self.png, "--rule", rule]
        if context:
            args += ["--context", context]
        return lt.parse_kv(self.ok(*(args + list(extra))).stdout)["slug"]

    def show(self, slug):
        return json.loads(self.ok("badge", "show", slug, "--json").stdout)

    def launch(self, user, ctx, mode=None):
        params = lt.base_launch(user_id=user, context_id=ctx, context_title="Course " + ctx,
                                lis_person_contact_email_primary=user.capitalize() +
                                "@Example.EDU", custom_badge_mode=mode)
        resp, _ = self.server.launch(params, self.key, self.secret)
        self.assertEqual(resp.status, 303, resp)

    def grade(self, user, ctx, score):
        self.ok("grade", "record", "--consumer", self.key, "--context", ctx, "--user", user,
                "--resource-link", "final", "--score", str(score))

    def awards(self, user):
        return [a for a in json.loads(self.ok("award", "list", "--json").stdout)
                if a["user"] == user]

    def wait_awards(self, user, n, states=("issued",)):
        deadline = time.monotonic() + WAIT
        while True:
            got = self.awards(user)
            if len(got) >= n and all(a["state"] in states for a in got):
                return got
            if time.monotonic() > deadline:
                self.fail("awards of %s not %s in time: %r; BadgeKit saw %r" % (
                    user, states, got, [(r.method, r.target, r.status, r.fault)
                                        for r in self.fake.records]))
            time.sleep(0.1)

    def uid(self, award):
        return lt.award(self.db, award["id"])["uid"]

    # BadgeKit

    def signed(self, method, target, doc=None):
        """A call to the fake as another BadgeKit client would make it (an operator)."""
        body = json.dumps(doc).encode() if doc is not None else None
        headers = {"Authorization": badgekitfake.sign_request(method, target, "master", MASTER,
                                                              body=body)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.fake.host, self.fake.port, timeout=10)
        conn.request(method, target, body, headers)
        resp = conn.getresponse()
        out = (resp.status, json.loads(resp.read() or b"null"))
        conn.close()
        return out

    def operator_badge(self, slug):
        st, _ = self.signed("POST", SCOPE + "/badges", {
            "slug": slug, "name": "Made in BadgeKit " + slug, "earnerDescription": "e",
            "consumerDescription": "c", "criteriaUrl": "https://example.edu/c",
            "imageUrl": "https://example.edu/i.png", "unique": True, "type": "Skill"})
        self.assertEqual(st, 201)
        return slug

    def ours(self, slug):
        """BadgeKit's badges made for this server's BadgeClass `slug`."""
        return [b for b in self.fake.badges()
                if b["slug"].startswith("ltibadges-") and b["slug"][23:] == slug]

    def assertOneInstance(self, badge, email, award, uid=True):
        got = [i for i in self.fake.instances(badge=badge) if i["email"].lower() == email]
        self.assertEqual(len(got), 1, got)
        i = got[0]
        self.assertEqual(award["assertion_id"], i["slug"])
        self.assertEqual(award["assertion_url"],
                         self.fake.base_url + "/public/assertions/" + i["slug"])
        if uid:
            self.assertEqual(i["slug"], self.uid(award))
        return i


class UseCases(E2E):
    """The five use cases, with the badges in BadgeKit."""

    def test_1_existing_badge_with_course_and_mode(self):
        theirs = self.operator_badge("made-by-the-operator")
        ctx = "course-v1:edX+UC1+run"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("UC1", "completion", "--mode", "verified", "--backend-id", theirs,
                          context=ctx)
        self.assertEqual((self.show(slug)["backend"], self.show(slug)["backend_id"]),
                         ("bk", theirs))
        self.launch("ann", ctx, mode="verified")
        self.grade("ann", ctx, 0.9)
        [a] = self.wait_awards("ann", 1)
        self.assertOneInstance(theirs, "ann@example.edu", a)
        self.assertEqual(len(self.fake.badges()), 1, "nothing else was made")
        # a slug the scope lacks is refused, nothing stored
        p = self.run_("badge", "create", "--consumer", self.key, "--name", "X",
                      "--description", "d", "--image", self.png, "--rule", "manual",
                      "--backend-id", "no-such-badge")
        self.assertOneLineError(p, 1, "refused by backend 'bk'",
                                "no badge no-such-badge in " + SCOPE)

    def test_2_existing_badge_without_course_or_mode(self):
        # any BadgeKit slug: its unreserved characters ('.', '~' too) and longer than a Badgr id
        theirs = self.operator_badge("anywhere.2026~" + "x" * 80)
        slug = self.badge("UC2", "enrollment", "--backend-id", theirs)
        self.launch("bea", "uc2-course")
        [a] = self.wait_awards("bea", 1)
        self.assertEqual(a["badge"], slug)
        self.assertOneInstance(theirs, "bea@example.edu", a)

    def test_3_created_in_badgekit_on_first_award(self):
        ctx = "uc3-course"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("UC3", "completion", "--tag", "biology", "--expires-days", "30",
                          context=ctx)
        self.assertIsNone(self.show(slug)["backend_id"])
        self.launch("cy", ctx)
        self.grade("cy", ctx, 1.0)
        [a] = self.wait_awards("cy", 1)
        [b] = self.ours(slug)
        self.assertEqual(self.show(slug)["backend_id"], b["slug"])
        self.assertLessEqual(len(b["slug"]), 255)
        self.assertEqual((b["system"], b["issuer"], b["program"]), ("badgekit", "uni", None))
        self.assertEqual((b["name"], b["earnerDescription"], b["consumerDescription"],
                          b["type"], b["unique"]),
                         ("UC3", "About UC3", "About UC3", "Course", True))
        # BadgeKit keeps URLs: this server's criteria page and image
        self.assertEqual(b["criteriaUrl"], PUBLIC + "/badges/criteria/" + slug)
        self.assertEqual(b["imageUrl"], PUBLIC + "/ob/v2/badges/" + slug + "/image")
        self.assertEqual([(c["description"], c["required"]) for c in b["criteria"]],
                         [("About UC3", 1)])
        self.assertIn("biology", b["tags"])
        # and this server answers both
        for url in (b["criteriaUrl"], b["imageUrl"]):
            r = lt.http_request(self.server.port, "GET", url[len(PUBLIC):])
            self.assertEqual(r.status, 200, url)
        self.assertEqual(lt.http_request(self.server.port, "GET",
                                         b["imageUrl"][len(PUBLIC):]).body[:8],
                         b"\x89PNG\r\n\x1a\n")
        i = self.assertOneInstance(b["slug"], "cy@example.edu", a)
        # issued when earned, expiring 30 days after
        self.assertEqual(i["issuedOn"], badgekitfake.iso(a["created_at"]))
        self.assertEqual(i["expires"], badgekitfake.iso(a["created_at"] + 30 * 86400))
        # its public assertion answers
        conn = http.client.HTTPConnection(self.fake.host, self.fake.port, timeout=10)
        conn.request("GET", "/public/assertions/" + i["slug"])
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()

    def test_4_enabled_course_without_badge(self):
        ctx = "uc4-course"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        self.launch("dan", ctx, mode="honor")
        self.grade("dan", ctx, 0.8)
        [a] = self.wait_awards("dan", 1)
        self.assertEqual(self.show(a["badge"])["backend"], "bk")
        [b] = self.ours(a["badge"])
        self.assertOneInstance(b["slug"], "dan@example.edu", a)

    def test_5_group_and_count_rules_with_badgekit_slugs(self):
        grp_id, cnt_id = self.operator_badge("track"), self.operator_badge("two")
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
        self.assertOneInstance(grp_id, "eve@example.edu", got[grp])
        self.assertOneInstance(cnt_id, "eve@example.edu", got[cnt])


class Faults(E2E):
    """Each fault of BadgeKit: the award ends issued, with exactly one badge and one instance
    for the learner there."""

    CASES = [
        ("500 on create", "status", "POST", r"/badges$"),
        ("500 after the badge row was stored", "stored_500", "POST", r"/badges$"),
        ("create answer lost", "lost", "POST", r"/badges$"),
        ("500 on issue", "status", "POST", r"/instances$"),
        ("500 after the instance was stored", "stored_500", "POST", r"/instances$"),
        ("dropped before the instance was made", "drop", "POST", r"/instances$"),
        ("dropped after the instance was made", "lost", "POST", r"/instances$"),
        ("hang on issue", "hang", "POST", r"/instances$"),
        ("429 on issue", "status429", "POST", r"/instances$"),
        ("500 on the look-up before a re-send", "lookup500", "POST", r"/instances$"),
    ]

    def test_each_fault_leaves_one_of_each(self):
        for i, (name, kind, method, path) in enumerate(self.CASES):
            with self.subTest(fault=name):
                ctx, user = "f%d" % i, "learner%d" % i
                self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
                slug = self.badge("Fault %d" % i, "completion", context=ctx)
                if kind == "status429":
                    self.fake.add_fault("status", method, path, status=429)
                elif kind == "lookup500":
                    self.fake.add_fault("lost", method, path)
                    self.fake.add_fault("status", "GET", r"/instances/")
                else:
                    self.fake.add_fault(kind, method, path)
                self.launch(user, ctx)
                self.grade(user, ctx, 1)
                if kind == "hang":
                    self.fake.wait_hanging(1)
                    self.fake.release()
                [a] = self.wait_awards(user, 1)
                [b] = self.ours(slug)
                self.assertOneInstance(b["slug"], user + "@example.edu", a)
                self.assertEqual(self.show(slug)["backend_id"], b["slug"])
                self.assertEqual(self.fake.faults, [], "every fault was met")


class Instances(E2E):

    def test_instance_made_by_other_means_is_adopted_and_noted(self):
        ctx = "adopt-1"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("Adopted", "completion", context=ctx)
        # the badge is made by a first learner's award
        self.launch("first", ctx)
        self.grade("first", ctx, 1)
        self.wait_awards("first", 1)
        [b] = self.ours(slug)
        # the second learner was given it in BadgeKit directly, before ltibadges awards it
        st, _ = self.signed("POST", SCOPE + "/badges/%s/instances" % b["slug"],
                            {"email": "gil@example.edu", "slug": "made-elsewhere-1"})
        self.assertEqual(st, 201)
        self.launch("gil", ctx)
        self.grade("gil", ctx, 1)
        [a] = self.wait_awards("gil", 1)
        self.assertOneInstance(b["slug"], "gil@example.edu", a, uid=False)
        self.assertEqual(a["assertion_id"], "made-elsewhere-1")
        self.assertIn("adopted BadgeKit's instance made-elsewhere-1", a["last_error"])
        # the operator's 201, then ltibadges' one POST: its 409 answered by a look-up of the
        # learner's instance, nothing sent twice
        posts = [r for r in self.fake.records
                 if r.method == "POST" and r.path.endswith("/instances") and
                 b"gil@example.edu" in r.body]
        self.assertEqual([r.status for r in posts], [201, 409])

    def test_revoke_deletes_the_instance(self):
        ctx = "revoke-1"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("Revocable", "completion", context=ctx)
        self.launch("rex", ctx)
        self.grade("rex", ctx, 1)
        [a] = self.wait_awards("rex", 1)
        [b] = self.ours(slug)
        i = self.assertOneInstance(b["slug"], "rex@example.edu", a)
        self.ok("award", "revoke", str(a["id"]), "--reason", "granted in error")
        self.fake.wait_for(lambda r: r.method == "DELETE" and r.status == 200, timeout=WAIT)
        self.assertEqual(self.fake.instances(badge=b["slug"]), [])
        self.wait_awards("rex", 1, states=("revoked",))
        deadline = time.monotonic() + WAIT
        while not lt.award(self.db, a["id"])["revoke_synced"]:
            self.assertLess(time.monotonic(), deadline, "the revoke stayed pending")
            time.sleep(0.1)
        # BadgeKit deleted it: its public assertion is gone
        conn = http.client.HTTPConnection(self.fake.host, self.fake.port, timeout=10)
        conn.request("GET", "/public/assertions/" + i["slug"])
        self.assertEqual(conn.getresponse().status, 404)
        conn.close()

    def test_edits_reach_badgekit(self):
        ctx = "edit-1"
        self.ok("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("Editable", "completion", context=ctx)
        self.launch("ed", ctx)
        self.grade("ed", ctx, 1)
        self.wait_awards("ed", 1)
        # refused once (500), then taken
        self.fake.add_fault("status", "PUT", r"/badges/")
        with open(self.png, "wb") as f:
            f.write(lt.png_bytes(16, 16))
        self.ok("badge", "set", slug, "--image", self.png)
        self.fake.wait_for(lambda r: r.method == "PUT" and r.status == 200, timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while self.show(slug)["update_due_at"]:
            self.assertLess(time.monotonic(), deadline, "the edit stayed due")
            time.sleep(0.1)
        [b] = self.ours(slug)
        self.assertEqual((b["name"], b["type"], b["imageUrl"]),
                         ("Editable", "Course", PUBLIC + "/ob/v2/badges/" + slug + "/image"))
        self.assertEqual(len(self.fake.badges()), 1)


class Check(E2E):

    def test_backend_check_reads_the_scope(self):
        self.operator_badge("one")
        self.operator_badge("two")
        out = self.ok("backend", "check").stdout
        self.assertEqual(out, "hosted: ok (the built-in issuer: nothing to sign in to)\n"
                              "bk: ok (type badgekit, host 127.0.0.1, issuer The University "
                              "(" + SCOPE + ", 2 badges))\n"
                              # no webhook_secret here (test_badgekit_hooks has one)
                              "bk: hooks off (webhook_secret is empty): 0 received (0 applied, "
                              "0 unchanged, 0 ignored), 0 refused\n")
        gets = [r.target for r in self.fake.records if r.method == "GET"]
        self.assertIn(SCOPE, gets)
        # a wrong secret: BadgeKit's refusal, said as auth
        self.env = {"LTIBADGES_BACKEND_BK_SECRET": "not-the-secret"}
        p = self.run_("backend", "check", "bk")
        self.assertEqual(p.returncode, 1)
        self.assertIn("BadgeKit refused the signed request: Invalid token signature", p.stderr)
        self.refusals = True
        # BadgeKit's clock a few minutes ahead of ours: the token expired on arrival
        self.env = {"LTIBADGES_BACKEND_BK_SECRET": MASTER}
        self.fake.advance(300)
        p = self.run_("backend", "check", "bk")
        self.assertEqual(p.returncode, 1)
        self.assertIn("BadgeKit refused the signed request: Token is expired", p.stderr)
        self.assertIn("check the clocks of this server and of BadgeKit's", p.stderr)
        self.fake.advance(-300)
        # a scope BadgeKit lacks
        with open(self.cfg) as f:
            self.cfg = self.write("other.ini", f.read().replace("issuer = uni", "issuer = nope"))
        self.env = {"LTIBADGES_BACKEND_BK_SECRET": MASTER}
        p = self.run_("backend", "check", "bk")
        self.assertEqual(p.returncode, 1)
        self.assertIn("BadgeKit has no issuer 'nope'", p.stderr)


if __name__ == "__main__":
    lt.main()
