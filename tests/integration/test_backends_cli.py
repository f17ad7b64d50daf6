#!/usr/bin/python3
"""Named backends from the command line: the [awards] and [backend.NAME]
sections checked whole (each refusal one line naming the section and the
key, from serve and from a command that uses a backend), secrets from
LTIBADGES_BACKEND_<NAME>_<KEY>, no secret in any output of a failing or a
working run, and which backend a BadgeClass takes: its consumer's (consumer
add --backend, consumer backend), else [awards] backend, --backend over both,
a change for later BadgeClasses only, badge set --backend only while it has
no awards; backend list and check (at the Badgr contract fake), award list
--backend, badge create --backend-id asking the platform first; serve with a
Badgr backend, and the instructor's status line naming the course's backends
and a refused sign-in."""
import http.client
import json
import os
import re
import sys
import time
import unittest
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from badgrfake import BadgrFake, data_uri_png, tiny_png  # noqa: E402
from test_editor import multipart  # noqa: E402
from test_ui import form_fields  # noqa: E402


def badge_count(db):
    return lt.cli_json(db, "db", "stats")["badge_classes"]


def badge_backends(db):
    """(slug, backend, backend_id, course) of every BadgeClass, by slug."""
    return {b["slug"]: (b["backend"], b["backend_id"], b["context"])
            for b in lt.cli_json(db, "badge", "list")}


SECRET = "Zq8-very-secret-pw"
CLIENT_SECRET = "Cs9-client-secret-value"
USER = "badges@example.edu"
OTHER_USER = "other@example.org"
WAIT = 20
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       '<rect width="10" height="10"/></svg>')


def fake_request(fake, method, path, body=None, headers=None):
    """One request to the fake: (status, the JSON answer)."""
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def fake_badgeclass(fake, username, password, issuer, name):
    """A BadgeClass made at the fake by `username` (as an operator would on the platform's
    site): its entity id."""
    st, tok = fake_request(fake, "POST", "/o/token", urlencode(
        {"grant_type": "password", "username": username, "password": password,
         "client_id": "public", "scope": "rw:issuer"}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, tok
    st, doc = fake_request(fake, "POST", "/v2/issuers/%s/badgeclasses" % issuer, json.dumps(
        {"name": name, "description": "Made on the platform", "image": data_uri_png(tiny_png()),
         "criteriaNarrative": "Do it"}).encode(),
        {"Content-Type": "application/json", "Authorization": "Bearer " + tok["access_token"]})
    assert st == 201, doc
    return doc["result"][0]["entityId"]


class BackendsCli(lt.TempDirTest):
    PREFIX = "ltibadges-backends-"
    DB_NAME = "b.db"

    def setUp(self):
        super().setUp()
        self.fake = BadgrFake()
        self.fake.add_account(USER, SECRET)
        self.fake.add_account(OTHER_USER, "other-password")
        self.issuer = self.fake.add_issuer("Example U", staff={USER: "owner"})
        self.other_issuer = self.fake.add_issuer("Other U", staff={OTHER_USER: "owner"})
        self.fake.add_app("ltibadges", CLIENT_SECRET, user=USER)
        self.fake.start()
        self.addCleanup(self.fake.stop)
        base = self.fake.base_url + "/"
        self.campus = ("[backend.campus]\ntype = badgr\nbase_url = %s\nallow_loopback = true\n"
                       "username = %s\npassword = %s\nissuer = %s\n"
                       % (base, USER, SECRET, self.issuer))
        self.eu = ("[backend.eu-test]\ntype = badgr\ngrant = client_credentials\n"
                   "base_url = %s\nallow_loopback = yes\nclient_id = ltibadges\nissuer = %s\n"
                   % (base, self.issuer))
        lt.migrate(self.db)
        self.image = self.write("i.svg", SVG)
        self.env = {"LTIBADGES_BACKEND_EU_TEST_CLIENT_SECRET": CLIENT_SECRET}
        self.outputs = []  # every stdout and stderr, to look for secrets in

    def tearDown(self):
        for out in self.outputs:
            for secret in (SECRET, CLIENT_SECRET):
                self.assertNotIn(secret, out)
        super().tearDown()

    def run_(self, *args, config=None, env=None):
        if config is not None:
            args += ("--config", config)
        p = self.cli(*(args + ("--db", self.db)), env=dict(self.env, **(env or {})))
        self.outputs += [p.stdout, p.stderr]
        return p

    def ok(self, *args, **kw):
        return self.assertOk(self.run_(*args, **kw))

    def config(self, text):
        return self.write("tool.ini", text)

    def badge(self, consumer, name, *extra, config):
        p = self.ok("badge", "create", "--consumer", consumer, "--name", name, "--description",
                    "d", "--image", self.image, "--rule", "manual", *extra, config=config)
        return lt.parse_kv(p.stdout)["slug"]

    def backend_of(self, slug, config):
        return json.loads(self.ok("badge", "show", slug, "--json", config=config).stdout)[
            "backend"]

    def test_config_errors_name_section_and_key(self):
        """Each bad section stops serve and a command that uses a backend with one line
        naming the section and the key; it is checked whole, so order does not matter."""
        cases = [
            (self.campus.replace("issuer = %s\n" % self.issuer, ""), "[backend.campus]",
             "'issuer' is required"),
            (self.campus.replace("base_url = %s/\n" % self.fake.base_url, ""),
             "[backend.campus]", "'base_url' is required"),
            (self.campus + "pasword = x\n", "[backend.campus]", "unknown key 'pasword' for type badgr"),
            (self.campus + "notify = sometimes\n", "[backend.campus]",
             "'notify' must be true or false, got 'sometimes'"),
            (self.campus + "rate = 1001\n", "[backend.campus]",
             "'rate' must be a whole number from 1 to 1000"),
            (self.campus + "grant = implicit\n", "[backend.campus]",
             "'grant' must be password or client_credentials"),
            (self.campus.replace("allow_loopback = true\n", ""), "[backend.campus]",
             "'base_url' must be an https:// URL (http:// only to 127.0.0.1 or ::1 with "
             "allow_loopback = true"),
            (self.campus + "ca_file = missing.pem\n", "[backend.campus]",
             "'ca_file' file '%s' cannot be read" % os.path.join(self.tmp, "missing.pem")),
            (self.campus.replace("type = badgr", "type = openbadges"), "[backend.campus]",
             "'type' must be one of: badgr, obf, badgekit, got 'openbadges'"),
            (self.campus.replace("password = %s\n" % SECRET, ""), "[backend.campus]",
             "'password' is required with grant = password (or set "
             "LTIBADGES_BACKEND_CAMPUS_PASSWORD)"),
            (self.eu.replace("client_id = ltibadges\n", ""), "[backend.eu-test]",
             "'client_id' is required with grant = client_credentials"),
            ("[awards]\nbackend = campus\n", "[awards]",
             "'backend' names 'campus', but there is no [backend.campus] section"),
            ("[backend.Campus]\ntype = badgr\n", "[backend.Campus]",
             "a backend section is [backend.NAME]"),
            ("[backend.hosted]\ntype = badgr\n", "[backend.hosted]",
             "'hosted' is the built-in issuer"),
        ]
        key, _ = lt.add_consumer(self.db, "LMS")
        for text, section, phrase in cases:
            with self.subTest(phrase=phrase):
                cfg = self.config(text)
                p = self.run_("serve", "--listen", "127.0.0.1:0", config=cfg)
                self.assertOneLineError(p, 1, section, phrase)
                p = self.run_("badge", "create", "--consumer", key, "--name", "N",
                              "--description", "d", "--image", self.image, "--rule", "manual",
                              config=cfg)
                self.assertOneLineError(p, 1, section, phrase)
                p = self.run_("backend", "check", config=cfg)
                self.assertOneLineError(p, 1, section, phrase)
        self.assertEqual(badge_count(self.db), 0)

    def test_secrets_from_the_environment(self):
        """A secret may come from LTIBADGES_BACKEND_<NAME>_<KEY> only, and wins over the file;
        a bad one is named, never shown."""
        cfg = self.config(self.campus.replace("password = %s" % SECRET, "password =") + self.eu)
        p = self.run_("backend", "check", "campus", config=cfg)
        self.assertOneLineError(p, 1, "LTIBADGES_BACKEND_CAMPUS_PASSWORD")
        p = self.ok("backend", "check", "campus", config=cfg,
                    env={"LTIBADGES_BACKEND_CAMPUS_PASSWORD": SECRET})
        self.assertIn("campus: ok (type badgr, host 127.0.0.1, issuer Example U)", p.stdout)
        # the client secret of eu-test only comes from the environment (self.env)
        p = self.ok("backend", "check", "eu-test", "--json", config=cfg,
                    env={"LTIBADGES_BACKEND_CAMPUS_PASSWORD": SECRET})
        self.assertEqual(json.loads(p.stdout)["eu-test"],
                         {"ok": True, "type": "badgr", "host": "127.0.0.1",
                          "issuer": "Example U", "badgeclasses_missing": []})
        p = self.run_("backend", "check", config=cfg,
                      env={"LTIBADGES_BACKEND_CAMPUS_PASSWORD": SECRET,
                           "LTIBADGES_BACKEND_EU_TEST_CLIENT_SECRET": ""})
        self.assertOneLineError(p, 1, "[backend.eu-test]", "'client_secret' is required",
                                "LTIBADGES_BACKEND_EU_TEST_CLIENT_SECRET")
        # the variable wins over the file's password: it is the one checked
        p = self.run_("backend", "check", config=self.config(self.campus + self.eu),
                      env={"LTIBADGES_BACKEND_CAMPUS_PASSWORD": SECRET + "x" * 300})
        self.assertOneLineError(p, 1, "LTIBADGES_BACKEND_CAMPUS_PASSWORD for [backend.campus]",
                                "'password' is longer than 255 bytes")

    def test_no_secret_in_any_output(self):
        """The secrets, in the file and the environment, appear in no output of any command,
        working or failing, nor in the log of a server that issues through the platform
        (tearDown looks at every one)."""
        cfg = self.config("[awards]\nbackend = campus\n" + self.campus + self.eu)
        key, secret = (lambda kv: (kv["key"], kv["secret"]))(lt.parse_kv(self.ok(
            "consumer", "add", "LMS", "--backend", "eu-test", config=cfg).stdout))
        slug = self.badge(key, "B", config=cfg)
        self.ok("consumer", "list", config=cfg)
        self.ok("consumer", "list", "--json", config=cfg)
        self.ok("consumer", "backend", key, config=cfg)
        self.ok("badge", "show", slug, config=cfg)
        self.ok("badge", "list", "--json", config=cfg)
        for args in (("backend", "list"), ("backend", "list", "--json"), ("backend", "check"),
                     ("backend", "check", "--json"), ("award", "list", "--backend", "campus")):
            self.ok(*args, config=cfg)
        self.run_("badge", "create", "--consumer", key, "--name", "X", "--description", "d",
                  "--image", self.image, "--rule", "manual", "--backend-id", "abc", config=cfg)
        self.run_("backend", "check", config=self.write("bad.ini", self.campus + self.eu +
                                                        "grant = password\n"))
        # a server that issues an award through the platform, and its log
        s = self.serve(config=cfg, env=self.env)
        resp, _ = s.launch(lt.base_launch(user_id="ada", context_id="c1",
                                          lis_person_contact_email_primary="Ada@Example.edu"),
                           key, secret)
        self.assertEqual(resp.status, 303, resp)
        self.ok("award", "grant", "--badge", slug, "--consumer", key, "--user", "ada",
                config=cfg)
        self.fake.wait_for(lambda r: r.path.endswith("/assertions") and r.status == 201,
                           timeout=WAIT)
        self.assertEqual([a["_identifier"] for a in self.fake.assertions()], ["ada@example.edu"])
        self.stop(s)
        self.outputs.append(s.stderr())
        self.assertGreater(len(self.outputs), 20)

    def test_which_backend(self):
        cfg = self.config("[awards]\nbackend = campus\n" + self.campus + self.eu)
        k1 = lt.parse_kv(self.ok("consumer", "add", "One", "--backend", "eu-test",
                                 config=cfg).stdout)["key"]
        k2 = lt.parse_kv(self.ok("consumer", "add", "Two", config=cfg).stdout)["key"]
        p = self.run_("consumer", "add", "Three", "--backend", "nowhere", config=cfg)
        self.assertOneLineError(p, 1, "there is no backend 'nowhere'")
        self.assertEqual(len(lt.consumers(self.db)), 2)
        self.assertEqual(self.ok("consumer", "backend", k1, config=cfg).stdout, "eu-test\n")
        self.assertEqual(self.ok("consumer", "backend", k2, config=cfg).stdout,
                         "campus (default)\n")
        listed = {c["key"]: (c["backend"], c["backend_default"]) for c in
                  json.loads(self.ok("consumer", "list", "--json", config=cfg).stdout)}
        self.assertEqual(listed, {k1: ("eu-test", False), k2: ("campus", True)})
        self.assertIn("campus (default)", self.ok("consumer", "list", config=cfg).stdout)

        # a BadgeClass takes its consumer's backend, else [awards] backend; --backend wins
        a = self.badge(k1, "A", config=cfg)
        b = self.badge(k2, "B", config=cfg)
        c = self.badge(k2, "C", "--backend", "hosted", config=cfg)
        self.assertEqual([self.backend_of(s, cfg) for s in (a, b, c)],
                         ["eu-test", "campus", "hosted"])
        p = self.run_("badge", "create", "--consumer", k2, "--name", "D", "--description", "d",
                      "--image", self.image, "--rule", "manual", "--backend", "nowhere",
                      config=cfg)
        self.assertOneLineError(p, 1, "there is no backend 'nowhere'")
        # a change applies to later BadgeClasses only
        self.ok("consumer", "backend", k1, "hosted", config=cfg)
        d = self.badge(k1, "D", config=cfg)
        self.assertEqual([self.backend_of(s, cfg) for s in (a, d)], ["eu-test", "hosted"])
        self.ok("consumer", "backend", k1, "default", config=cfg)
        self.assertEqual(self.ok("consumer", "backend", k1, config=cfg).stdout,
                         "campus (default)\n")
        self.assertTrue(lt.consumers(self.db)[k1]["backend_default"], "none of its own")
        p = self.run_("consumer", "backend", "no-such-key", "hosted", config=cfg)
        self.assertOneLineError(p, 1, "no consumer with key 'no-such-key'")

        # --backend-id needs a remote backend, and nothing is stored unless the platform says so
        before = badge_count(self.db)
        p = self.run_("badge", "create", "--consumer", k2, "--name", "E", "--description", "d",
                      "--image", self.image, "--rule", "manual", "--backend", "hosted",
                      "--backend-id", "abc", config=cfg)
        self.assertOneLineError(p, 1, "--backend-id needs a remote backend")
        # at the platform: one it does not have, and another issuer's, are refused
        theirs = fake_badgeclass(self.fake, OTHER_USER, "other-password", self.other_issuer,
                                 "Theirs")
        ours = fake_badgeclass(self.fake, USER, SECRET, self.issuer, "Ours")
        for bid, phrase in (("abc", "--backend-id 'abc' refused by backend 'campus', nothing "
                                    "stored"),
                            (theirs, "--backend-id '%s' refused by backend 'campus'" % theirs)):
            p = self.run_("badge", "create", "--consumer", k2, "--name", "E", "--description",
                          "d", "--image", self.image, "--rule", "manual", "--backend-id", bid,
                          config=cfg)
            self.assertOneLineError(p, 1, phrase)
        self.assertEqual(badge_count(self.db), before)
        e = self.badge(k2, "E", "--backend-id", ours, config=cfg)
        self.assertEqual(badge_backends(self.db)[e][:2], ("campus", ours))
        # backend check: every BadgeClass id still at the platform
        self.assertIn("campus: ok", self.ok("backend", "check", "campus", config=cfg).stdout)
        lt.setup_sql(self.db, "UPDATE badge_classes SET backend_id = ? WHERE slug = ?", theirs, e)
        p = self.run_("backend", "check", "campus", config=cfg)
        self.assertEqual(p.returncode, 1)
        self.assertIn("backend 'campus': BadgeClass '%s' (id %s)" % (e, theirs), p.stderr)
        lt.setup_sql(self.db, "DELETE FROM badge_classes WHERE slug = ?", e)

        # badge set --backend moves it while it has no awards, forgetting its id there
        lt.setup_sql(self.db, "UPDATE badge_classes SET backend_id = 'old-id' WHERE slug = ?", b)
        self.ok("badge", "set", b, "--backend", "eu-test", config=cfg)
        self.assertEqual(badge_backends(self.db)[b][:2], ("eu-test", None))
        self.ok("grade", "record", "--consumer", k2, "--context", "c1", "--user", "u1",
                "--resource-link", "r1", "--score", "0.2", config=cfg)
        self.ok("award", "grant", "--badge", b, "--consumer", k2, "--user", "u1", config=cfg)
        p = self.run_("badge", "set", b, "--backend", "campus", config=cfg)
        self.assertOneLineError(p, 1, "has awards: its backend can no longer change")
        self.assertEqual(self.backend_of(b, cfg), "eu-test")
        p = self.run_("badge", "set", "no-such-badge", "--backend", "campus", config=cfg)
        self.assertOneLineError(p, 1, "there is no BadgeClass 'no-such-badge'")

        # award list --backend
        awards = json.loads(self.ok("award", "list", "--backend", "eu-test", "--json",
                                    config=cfg).stdout)
        self.assertEqual([w["badge"] for w in awards], [b])
        self.assertEqual(json.loads(self.ok("award", "list", "--backend", "campus", "--json",
                                            config=cfg).stdout), [])

        # backend list counts what uses each
        rows = {r["name"]: r for r in
                json.loads(self.ok("backend", "list", "--json", config=cfg).stdout)}
        self.assertEqual(sorted(rows), ["campus", "eu-test", "hosted"])
        self.assertEqual((rows["campus"]["consumers"], rows["campus"]["badgeclasses"],
                          rows["campus"]["awards"], rows["campus"]["default"]), (2, 0, 0, True))
        self.assertEqual((rows["eu-test"]["badgeclasses"], rows["eu-test"]["awards"]), (2, 1))
        self.assertEqual((rows["hosted"]["badgeclasses"], rows["hosted"]["type"],
                          rows["hosted"]["host"]), (2, "hosted", "127.0.0.1:8080"))
        self.assertEqual(rows["campus"]["host"], "127.0.0.1")

    def test_completion_badge_takes_the_consumers_backend(self):
        """The BadgeClass a course's first completion makes goes where its consumer's go, else
        to [awards] backend."""
        cfg = self.config(self.campus)
        key = lt.parse_kv(self.ok("consumer", "add", "LMS", "--backend", "campus",
                                  config=cfg).stdout)["key"]
        self.ok("context", "enable", "--consumer", key, "--context", "course-1", config=cfg)
        self.ok("grade", "record", "--consumer", key, "--context", "course-1", "--user", "u1",
                "--resource-link", "r1", "--score", "0.9", config=cfg)
        self.assertEqual([v[0] for v in badge_backends(self.db).values()], ["campus"])
        # a consumer without its own: [awards] backend
        cfg = self.config("[awards]\nbackend = campus\n" + self.campus)
        key = lt.parse_kv(self.ok("consumer", "add", "Other", config=cfg).stdout)["key"]
        self.ok("context", "enable", "--consumer", key, "--context", "course-2", config=cfg)
        self.ok("grade", "record", "--consumer", key, "--context", "course-2", "--user", "u2",
                "--resource-link", "r2", "--score", "0.9", config=cfg)
        self.assertEqual(sorted((v[2], v[0]) for v in badge_backends(self.db).values()),
                         [("course-1", "campus"), ("course-2", "campus")])

    def test_missing_sections_stop_serve(self):
        """A backend consumers or BadgeClasses use but the file lacks stops serve and the
        commands that use a backend; backend list shows it."""
        cfg = self.config(self.campus)
        key = lt.parse_kv(self.ok("consumer", "add", "LMS", "--backend", "campus",
                                  config=cfg).stdout)["key"]
        self.badge(key, "A", config=cfg)
        bare = self.config("[server]\nthreads = 2\n")
        p = self.run_("serve", "--listen", "127.0.0.1:0", config=bare)
        self.assertOneLineError(p, 1, "[backend.campus]", "1 BadgeClass(es) use backend 'campus'")
        p = self.run_("backend", "check", config=bare)
        self.assertOneLineError(p, 1, "[backend.campus]", "no [backend.campus] section")
        p = self.run_("badge", "create", "--consumer", key, "--name", "N", "--description", "d",
                      "--image", self.image, "--rule", "manual", "--backend", "hosted",
                      config=bare)
        self.assertOneLineError(p, 1, "[backend.campus]")
        p = self.ok("backend", "list", config=bare)
        self.assertIn("(no such section in the configuration)", p.stdout)
        rows = {r["name"]: r for r in
                json.loads(self.ok("backend", "list", "--json", config=bare).stdout)}
        self.assertFalse(rows["campus"]["configured"])

    def test_instructor_status_line(self):
        """The course page names the course's backends and says, in words, that one refused
        the tool's sign-in."""
        cfg = self.config(self.campus.replace(SECRET, "not-the-password"))
        key, secret = (lambda kv: (kv["key"], kv["secret"]))(lt.parse_kv(self.ok(
            "consumer", "add", "LMS", "--backend", "campus", config=cfg).stdout))
        self.ok("context", "enable", "--consumer", key, "--context", "c1", config=cfg)
        slug = self.badge(key, "Remote", "--context", "c1", config=cfg)
        self.badge(key, "Local", "--context", "c1", "--backend", "hosted", config=cfg)
        s = self.serve(config=cfg)
        resp, _ = s.launch(lt.base_launch(user_id="ada", context_id="c1",
                                          lis_person_contact_email_primary="ada@example.edu"),
                           key, secret)
        self.assertEqual(resp.status, 303, resp)
        self.ok("award", "grant", "--badge", slug, "--consumer", key, "--user", "ada",
                config=cfg)
        self.fake.wait_for(lambda r: r.path == "/o/token" and r.status == 400, timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while True:
            resp, _ = s.launch(lt.base_launch(user_id="teacher", context_id="c1",
                                              resource_link_id="rl-1", roles="Instructor"),
                               key, secret)
            self.assertEqual(resp.status, 303, resp)
            page = s.get(s.page_path(resp.header("Location")))
            self.assertEqual(page.status, 200, page)
            text = " ".join(page.plain.split())
            if "refused this tool's sign-in" in text or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertIn("Badge service: campus, built-in Open Badges issuer.", text)
        self.assertIn("The badge platform campus refused this tool's sign-in: badges wait until "
                      "the administrator fixes its credentials.", text)
        # a BadgeClass made in the course's editor goes where its consumer's go
        token = re.search(r"[?&]s=([0-9a-f-]+)", resp.header("Location")).group(1)
        editor = s.get("/badges/edit?s=" + token)
        self.assertEqual(editor.status, 200, editor)
        fields = form_fields(editor.text, "/badges/save")
        for k in ("image", "image_choice", "passback", "revoke"):
            fields.pop(k, None)
        fields.update({"name": "From the editor", "description": "Made on the course page",
                       "kind": "manual", "do": "save"})
        body, ctype = multipart(fields)
        saved = s.request("POST", "/badges/save", body=body, headers={"Content-Type": ctype})
        self.assertEqual(saved.status, 303, saved)
        made = re.search(r"[?&]b=([a-z0-9-]+)", saved.header("Location")).group(1)
        self.assertEqual(self.backend_of(made, cfg), "campus")
        self.stop(s)
        self.outputs.append(s.stderr())

if __name__ == "__main__":
    lt.main()
