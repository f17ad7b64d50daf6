#!/usr/bin/python3
"""The command line: consumer add/list/remove/rotate/enable/disable (and
their effect on a running server), migrate, --help and misuse, the
configuration file, environment variables against flags, and serve --demo."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, counts, run_cli  # noqa: E402

HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TempDirTest(lt.TempDirTest):
    def setUp(self):
        if not os.path.exists(lt.BIN):
            raise unittest.SkipTest("no binary at %s" % lt.BIN)
        super().setUp()

    def assertLaunchAccepted(self, key, secret, refused_secret=None):
        """The store holds `secret` for `key`: a server on self.db accepts a launch it
        signs (and refuses one `refused_secret` signs)."""
        s = self.serve()
        try:
            resp = s.post_form(lt.sign(s.launch_url, base_launch(), key, secret))
            self.assertEqual(resp.status, 303, resp)
            if refused_secret is not None:
                resp = s.post_form(lt.sign(s.launch_url, base_launch(), key, refused_secret))
                self.assertEqual(resp.status, 401, resp)
        finally:
            self.stop(s)


class ConsumerCommands(TempDirTest):

    def setUp(self):
        super().setUp()
        lt.migrate(self.db)

    def test_add_generates_key_and_secret(self):
        p = self.assertOk(self.cli("consumer", "add", "Canvas Production!", "--db", self.db))
        lines = p.stdout.splitlines()
        self.assertEqual([l.split("=", 1)[0] for l in lines], ["key", "secret"])
        kv = lt.parse_kv(p.stdout)
        self.assertRegex(kv["secret"], HEX64)
        self.assertRegex(kv["key"], r"^canvas-production-[0-9a-f]{12}$")
        rows = [(c["key"], c["name"], c["enabled"]) for c in lt.cli_json(self.db, "consumer",
                                                                          "list")]
        self.assertEqual(rows, [(kv["key"], "Canvas Production!", True)])
        self.assertLaunchAccepted(kv["key"], kv["secret"])
        # a second one gets another key and another secret
        kv2 = lt.parse_kv(self.assertOk(self.cli("consumer", "add", "Canvas Production!",
                                                 "--db", self.db)).stdout)
        self.assertNotEqual(kv2["key"], kv["key"])
        self.assertNotEqual(kv2["secret"], kv["secret"])

    def test_add_with_key_and_secret(self):
        p = self.assertOk(self.cli("consumer", "add", "Moodle", "--key", "moodle.example.edu",
                                   "--secret", "a-secret-of-20-chars", "--db", self.db))
        self.assertEqual(p.stdout, "key=moodle.example.edu\nsecret=a-secret-of-20-chars\n")
        p = self.assertOk(self.cli("consumer", "add", "Other", "--key=k2",
                                   "--secret=0123456789abcdef", "--db=" + self.db))
        self.assertEqual(lt.parse_kv(p.stdout), {"key": "k2", "secret": "0123456789abcdef"})
        self.assertEqual(sorted(lt.consumers(self.db)), ["k2", "moodle.example.edu"])
        self.assertLaunchAccepted("moodle.example.edu", "a-secret-of-20-chars")

    def test_add_duplicate_key(self):
        self.assertOk(self.cli("consumer", "add", "A", "--key", "dup", "--db", self.db))
        p = self.cli("consumer", "add", "B", "--key", "dup", "--db", self.db)
        self.assertOneLineError(p, 1, "dup")
        self.assertEqual({k: c["name"] for k, c in lt.consumers(self.db).items()}, {"dup": "A"})

    def test_add_bad_values(self):
        for args, phrase in ((["--secret", "short"], "--secret"),
                             (["--secret", "has a space in it!!"], "--secret"),
                             (["--key", "with space"], "--key"),
                             (["--key", ""], "--key"),
                             (["--key", "k" * 256], "--key")):
            with self.subTest(args=args):
                p = self.cli("consumer", "add", "X", "--db", self.db, *args)
                self.assertOneLineError(p, 2, phrase)
        p = self.cli("consumer", "add", "", "--db", self.db)
        self.assertOneLineError(p, 2, "NAME")
        self.assertFalse(os.path.exists(self.db) and lt.consumers(self.db))

    def test_list(self):
        p = self.assertOk(self.cli("consumer", "list", "--db", self.db))
        self.assertIn("no consumers", p.stdout)
        p = self.assertOk(self.cli("consumer", "list", "--json", "--db", self.db))
        self.assertEqual(json.loads(p.stdout), [])
        k1, s1 = lt.add_consumer(self.db, "First LMS")
        k2, s2 = lt.add_consumer(self.db, "Second", key="second-key",
                                 secret="second-secret-value-123")
        self.assertOk(self.cli("consumer", "disable", k2, "--db", self.db))
        p = self.assertOk(self.cli("consumer", "list", "--db", self.db))
        self.assertIn(k1, p.stdout)
        self.assertIn("First LMS", p.stdout)
        self.assertIn(k2, p.stdout)
        for secret in (s1, s2):
            self.assertNotIn(secret, p.stdout)
        p = self.assertOk(self.cli("consumer", "list", "--json", "--db", self.db))
        data = json.loads(p.stdout)
        self.assertIsInstance(data, list)
        self.assertEqual([(c["key"], c["name"], c["enabled"]) for c in data],
                         [(k1, "First LMS", True), (k2, "Second", False)])
        for c in data:
            self.assertNotIn("secret", c)
            self.assertEqual(c["users"], 0)
        for secret in (s1, s2):
            self.assertNotIn(secret, p.stdout)

    def test_keyed_commands_on_unknown_key(self):
        lt.add_consumer(self.db, "Exists")
        for verb in ("remove", "rotate", "enable", "disable"):
            with self.subTest(verb=verb):
                p = self.cli("consumer", verb, "no-such-key", "--db", self.db)
                self.assertOneLineError(p, 1, "no-such-key")

    def test_rotate_enable_disable_remove_output(self):
        key, secret = lt.add_consumer(self.db, "Rot")
        p = self.assertOk(self.cli("consumer", "rotate", key, "--db", self.db))
        kv = lt.parse_kv(p.stdout)
        self.assertEqual(kv["key"], key)
        self.assertRegex(kv["secret"], HEX64)
        self.assertNotEqual(kv["secret"], secret)
        # the new secret signs launches, the old one no longer does
        self.assertLaunchAccepted(key, kv["secret"], refused_secret=secret)
        p = self.assertOk(self.cli("consumer", "disable", key, "--db", self.db))
        self.assertIn("disabled", p.stdout)
        self.assertEqual([c["enabled"] for c in lt.consumers(self.db).values()], [False])
        p = self.assertOk(self.cli("consumer", "enable", key, "--db", self.db))
        self.assertIn("enabled", p.stdout)
        self.assertEqual([c["enabled"] for c in lt.consumers(self.db).values()], [True])
        p = self.assertOk(self.cli("consumer", "remove", key, "--db", self.db))
        self.assertIn(key, p.stdout)
        self.assertEqual(lt.consumers(self.db), {})
        self.assertOneLineError(self.cli("consumer", "remove", key, "--db", self.db), 1)


class Usage(TempDirTest):

    def test_help(self):
        for args in (["--help"], ["serve", "--help"], ["consumer", "--help"],
                     ["consumer", "add", "--help"], ["consumer", "list", "--help"],
                     ["consumer", "remove", "--help"], ["consumer", "rotate", "--help"],
                     ["consumer", "enable", "--help"], ["consumer", "disable", "--help"],
                     ["migrate", "--help"], ["serve", "-h"]):
            with self.subTest(args=args):
                p = self.cli(*args)
                self.assertEqual(p.returncode, 0, p)
                self.assertTrue(p.stdout.startswith("usage: ltibadges"), p.stdout)
                self.assertEqual(p.stderr, "")
        # --help does nothing else: no database is created
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "ltibadges.db")))

    def test_misuse(self):
        cases = [
            ([], None),
            (["frobnicate"], "frobnicate"),
            (["consumer"], None),
            (["consumer", "frobnicate"], "frobnicate"),
            (["consumer", "add"], "NAME"),
            (["consumer", "add", "X", "--bogus"], "--bogus"),
            (["consumer", "add", "X", "Y"], "Y"),
            (["consumer", "add", "X", "--key"], "--key"),
            (["consumer", "list", "extra"], "extra"),
            (["consumer", "list", "--key", "k"], "--key"),
            (["consumer", "list", "--json=yes"], "--json"),
            (["consumer", "remove"], "KEY"),
            (["consumer", "rotate"], "KEY"),
            (["consumer", "enable"], "KEY"),
            (["consumer", "disable"], "KEY"),
            (["consumer", "remove", "a", "b"], "b"),
            (["migrate", "extra"], "extra"),
            (["migrate", "--json"], "--json"),
            (["serve", "extra"], "extra"),
            (["serve", "--bogus"], "--bogus"),
            (["serve", "-x"], "-x"),
            (["serve", "--db"], "--db"),
        ]
        for args, phrase in cases:
            with self.subTest(args=args):
                p = self.cli(*args)
                self.assertOneLineError(p, 2, *([phrase] if phrase else []))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "ltibadges.db")))


class Version(TempDirTest):

    def test_version_in_version_help_and_startup_line(self):
        root = os.path.dirname(os.path.dirname(lt.HERE))
        with open(os.path.join(root, "CMakeLists.txt")) as f:
            project = re.search(r"project\(ltibadges VERSION (\S+)", f.read()).group(1)
        p = self.cli("--version")
        self.assertEqual((p.returncode, p.stderr), (0, ""), p)
        m = re.fullmatch(r"ltibadges (\S+)\n", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        version = m.group(1)
        # the project's VERSION, then git describe as semver build metadata when built in git
        m = re.fullmatch(re.escape(project) + r"(?:\+([0-9A-Za-z.-]+))?", version)
        self.assertIsNotNone(m, "%r is not %s[+describe]" % (version, project))
        if m.group(1):
            # describe ends in the abbreviated commit (gHASH when a tag is behind it)
            commit = re.search(r"(?:^|-g)([0-9a-f]{7,40})(?:-dirty)?$", m.group(1))
            self.assertIsNotNone(commit, m.group(1))
            if shutil.which("git") and os.path.exists(os.path.join(root, ".git")):
                g = subprocess.run(["git", "-C", root, "cat-file", "-t", commit.group(1)],
                                   capture_output=True, text=True)
                self.assertEqual(g.stdout.strip(), "commit", "%s: %s" % (version, g.stderr))
        p = self.cli("--help")
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("ltibadges --version", p.stdout)
        self.assertIn("\nltibadges %s\n" % version, p.stdout)
        s = self.serve()
        self.assertEqual(s.version, version)
        self.stop(s)


class Migrate(TempDirTest):

    def test_migrate_fresh_then_up_to_date(self):
        lt.skip_on_pg("reads the tables and user_version of the sqlite file "
                      "(test_postgresql checks db migrate there)")
        p = self.assertOk(self.cli("migrate", "--db", self.db))
        self.assertRegex(p.stdout, r"migrated from schema version 0 to [1-9]")
        v = lt.cli_json(self.db, "db", "version")
        version = v["schema_version"]
        self.assertEqual(version, v["program_schema_version"])
        self.assertGreaterEqual(version, 1)
        # every table is there, empty
        self.assertEqual(lt.counts(self.db), {t: 0 for t in lt.TABLES})
        p = self.assertOk(self.cli("migrate", "--db", self.db))
        self.assertIn("up to date", p.stdout)
        self.assertIn("version %d" % version, p.stdout)

    def test_migrate_unusable_path(self):
        lt.skip_on_pg("a sqlite file in a folder that does not exist")
        p = self.cli("migrate", "--db", os.path.join(self.tmp, "missing-dir", "x.db"))
        self.assertOneLineError(p, 1)

    def test_newer_schema_refused(self):
        self.assertOk(self.cli("migrate", "--db", self.db))
        if lt.ON_PG:
            lt.setup_sql(self.db, "UPDATE ltibadges_schema SET version = 99")
        else:
            lt.setup_sql(self.db, "PRAGMA user_version = 99")
        p = self.cli("consumer", "list", "--db", self.db)
        self.assertOneLineError(p, 1, "99")


class Configuration(TempDirTest):

    def serve_fails(self, *phrases, **kw):
        s = lt.Server(self.tmp, **kw)
        with self.assertRaises(AssertionError):
            s.start()
        s.kill()
        self.assertNotEqual(s.returncode, 0)
        self.assertIsNotNone(s.returncode, "serve must exit at once")
        err = s.stderr()
        self.assertEqual(len(err.splitlines()), 1, err)
        for ph in phrases:
            self.assertIn(ph, err)
        return err

    def test_bad_config_files(self):
        cases = [
            ("[server]\nbogus = 1\n", ["bogus"]),
            ("[server]\nlisten = nonsense\n", ["listen", "nonsense"]),
            ("[server]\nthreads = 0\n", ["threads"]),
            ("[server]\nthreads = many\n", ["threads"]),
            ("[server]\nmax_body = 10\n", ["max_body"]),
            ("[server]\npublic_url = ftp://example.org\n", ["public_url"]),
            ("[server]\npublic_url = https://example.org/?q=1\n", ["public_url"]),
            ("[lti]\ntimestamp_window = 0\n", ["timestamp_window"]),
            ("[lti]\nsession_ttl = 10\n", ["session_ttl"]),
            ("[database]\npath =\n", ["path"]),
            ("[nosuchsection]\nkey = 1\n", ["key"]),
            ("not an ini line\n", ["line 1"]),
        ]
        for i, (text, phrases) in enumerate(cases):
            with self.subTest(config=text):
                cfg = self.write("bad%d.ini" % i, text)
                self.serve_fails(*phrases, db=self.db, config=cfg)
                # the other commands read the same configuration
                p = self.cli("consumer", "list", "--config", cfg, "--db", self.db)
                self.assertOneLineError(p, 1, *phrases)
        self.serve_fails("nope.ini", db=self.db, config=os.path.join(self.tmp, "nope.ini"))

    def test_config_file_settings(self):
        lt.skip_on_pg("the configuration file's [database] path, a sqlite file")
        cfgdb = os.path.join(self.tmp, "from-config.db")
        cfg = self.write("good.ini", "; a comment\n[server]\nlisten = 127.0.0.1:0\n"
                         "public_url = https://cfg.example.org/lti-tool/\nthreads = 4\n"
                         "max_body = 4096\naccess_log = -\n[database]\npath = %s\n"
                         "[lti]\ntimestamp_window = 120\nsession_ttl = 3600\n"
                         "tool_title = Configured\ntool_description = From the file\n" % cfgdb)
        lt.migrate(cfgdb)
        p = self.assertOk(self.cli("consumer", "add", "Via config", "--config", cfg))
        key, secret = lt.parse_kv(p.stdout)["key"], lt.parse_kv(p.stdout)["secret"]
        self.assertEqual(list(lt.consumers(cfgdb)), [key])
        s = self.serve(db=False, listen=None, config=cfg)
        self.assertEqual(s.public_url, "https://cfg.example.org/lti-tool")
        resp = s.post_form(lt.sign(s.launch_url, base_launch(), key, secret))
        self.assertEqual(resp.status, 303, resp)
        self.assertEqual(counts(cfgdb)["sessions"], 1)
        self.stop(s)

    def test_readme_example_configuration(self):
        # the [server]/[database]/[lti] example of README.md, inline comments and all
        lt.skip_on_pg("README's example names a sqlite file ([database] path)")
        readme = os.path.join(lt.HERE, "..", "..", "README.md")
        if not os.path.exists(readme):
            self.skipTest("no README.md")
        with open(readme) as f:
            m = re.search(r"```ini\n(.*?)```", f.read(), re.S)
        self.assertIsNotNone(m, "README.md has an ini example")
        text = re.sub(r"(?m)^listen = \S+", "listen = 127.0.0.1:0", m.group(1))
        text = re.sub(r"(?m)^path = \S+", "path = " + self.db, text)
        cfg = self.write("readme.ini", text)
        s = self.serve(db=False, listen=None, config=cfg)
        self.assertEqual(s.public_url, "https://badges.example.edu/ltibadges")
        resp = s.get("/lti/config.xml")
        self.assertEqual(resp.status, 200)
        self.assertIn("<blti:title>Badges</blti:title>", resp.text)
        self.assertTrue(os.path.exists(self.db))
        self.stop(s)

    def test_env_and_flags(self):
        lt.skip_on_pg("the order of [database] path, LTIBADGES_DB and --db, sqlite's keys")
        envdb = os.path.join(self.tmp, "env.db")
        flagdb = os.path.join(self.tmp, "flag.db")
        cfgdb = os.path.join(self.tmp, "cfg.db")
        cfg = self.write("c.ini", "[database]\npath = %s\n[server]\nlisten = 127.0.0.1:0\n"
                         % cfgdb)
        env = {"LTIBADGES_DB": envdb, "LTIBADGES_LISTEN": "127.0.0.2:0",
               "LTIBADGES_PUBLIC_URL": "https://env.example.org/tool"}
        lt.migrate(envdb)
        lt.migrate(flagdb)
        # env over the config file
        env_secret = lt.parse_kv(self.assertOk(self.cli(
            "consumer", "add", "E", "--key", "env-key", "--config", cfg, env=env)).stdout)["secret"]
        self.assertEqual(list(lt.consumers(envdb)), ["env-key"])
        self.assertFalse(os.path.exists(cfgdb))
        # flags over env
        flag_secret = lt.parse_kv(self.assertOk(self.cli(
            "consumer", "add", "F", "--key", "flag-key", "--db", flagdb, env=env)).stdout)["secret"]
        self.assertEqual(list(lt.consumers(flagdb)), ["flag-key"])
        self.assertEqual(len(lt.consumers(envdb)), 1)

        s = self.serve(db=False, listen=None, env=env, config=cfg)
        self.assertEqual(s.host, "127.0.0.2")
        self.assertEqual(s.public_url, "https://env.example.org/tool")
        # the server uses the env database
        body = lt.sign("https://env.example.org/tool/lti/launch", base_launch(), "env-key",
                       env_secret)
        resp = lt.http_request(s.port, "POST", "/lti/launch", body=body,
                               headers={"Content-Type": lt.FORM}, host="127.0.0.2")
        self.assertEqual(resp.status, 303, resp)
        self.stop(s)

        s = self.serve(db=flagdb, listen="127.0.0.1:0", env=env,
                       public_url="http://flag.example.org:8080", config=cfg)
        self.assertEqual(s.host, "127.0.0.1")
        self.assertEqual(s.public_url, "http://flag.example.org:8080")
        body = lt.sign(s.launch_url, base_launch(), "flag-key", flag_secret)
        self.assertEqual(s.post_form(body).status, 303)
        self.assertEqual(counts(flagdb)["sessions"], 1)
        self.assertEqual(counts(envdb)["sessions"], 1)
        self.stop(s)

    def test_bad_env_value(self):
        self.serve_fails("LTIBADGES_PUBLIC_URL", db=self.db,
                         env={"LTIBADGES_PUBLIC_URL": "not a url"})
        self.serve_fails("LTIBADGES_LISTEN", db=self.db, listen=None,
                         env={"LTIBADGES_LISTEN": "nonsense"})

    def test_ipv6_listen(self):
        try:
            socket.socket(socket.AF_INET6).bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        key, secret = lt.add_consumer(self.db, "V6")
        s = self.serve(listen="[::1]:0")
        self.assertEqual(s.public_url, "http://[::1]:%d" % s.port)
        body = lt.sign(s.launch_url, base_launch(), key, secret)
        resp = lt.http_request(s.port, "POST", "/lti/launch", body=body,
                               headers={"Content-Type": lt.FORM}, host="::1")
        self.assertEqual(resp.status, 303, resp)
        self.assertTrue(resp.header("Location").startswith("http://[::1]:%d/badges?s=" % s.port))
        self.stop(s)

    def test_port_in_use(self):
        # a database migrated already: the refusal is serve's only line on stderr (serve
        # migrating a fresh PostgreSQL database says so there first)
        lt.migrate(self.db)
        sk = socket.socket()
        try:
            sk.bind(("127.0.0.1", 0))
            sk.listen(1)
            port = sk.getsockname()[1]
            self.serve_fails("127.0.0.1:%d" % port, db=self.db, listen="127.0.0.1:%d" % port)
        finally:
            sk.close()


class Demo(TempDirTest):

    def demo_lines(self, s):
        text = "\n".join(s.banner)
        key = re.search(r"consumer key:\s+(\S+)", text).group(1)
        secret = re.search(r"shared secret:\s+(\S+)", text).group(1)
        launch = re.search(r"launch URL:\s+(\S+)", text).group(1)
        xml = re.search(r"XML configuration:\s+(\S+)", text).group(1)
        return key, secret, launch, xml

    def test_demo_consumer_created_once(self):
        s = self.serve(demo=True)
        key, secret, launch, xml = self.demo_lines(s)
        self.assertEqual(key, "ltibadges-demo")
        self.assertRegex(secret, HEX64)
        self.assertEqual(launch, s.public_url + "/lti/launch")
        self.assertEqual(xml, s.public_url + "/lti/config.xml")
        resp = s.post_form(lt.sign(s.launch_url, base_launch(), key, secret))
        self.assertEqual(resp.status, 303, resp)
        self.stop(s)
        s2 = self.serve(demo=True)
        self.assertEqual(self.demo_lines(s2)[:2], (key, secret))
        self.stop(s2)
        # one consumer, whose secret is the one printed both times
        self.assertEqual(list(lt.consumers(self.db)), [key])
        self.assertLaunchAccepted(key, secret)
        # without --demo nothing about it is printed
        s3 = self.serve()
        self.assertEqual(s3.banner, [])
        self.stop(s3)


class ConsumersAndRunningServer(lt.ServerTestCase):
    """CLI changes take effect on a running server at once."""

    consumers = (("Rotating", None, None), ("Toggled", None, None), ("Removed", None, None),
                 ("Bystander", None, None))

    def launch_status(self, key, secret):
        return self.launch(base_launch(), key, secret).status

    def test_rotate(self):
        key, old = self.keys[0]
        self.assertEqual(self.launch_status(key, old), 303)
        p = run_cli("consumer", "rotate", key, "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        new = lt.parse_kv(p.stdout)["secret"]
        self.assertNotEqual(new, old)
        before = counts(self.db)
        resp = self.launch(base_launch(), key, old)
        self.assertRefusal(resp, 401, "signature does not match")
        self.assertNothingWritten(before)
        self.assertEqual(self.launch_status(key, new), 303)
        # the server knows `new` now; rotated again, a launch with the newest secret comes first
        p = run_cli("consumer", "rotate", key, "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        newest = lt.parse_kv(p.stdout)["secret"]
        self.assertEqual(self.launch_status(key, newest), 303)
        before = counts(self.db)
        self.assertRefusal(self.launch(base_launch(), key, new), 401, "signature does not match")
        self.assertNothingWritten(before)

    def test_db_stats_reads_what_a_launch_stored(self):
        """`db stats` counts what the store holds, while the server runs: a first launch adds
        one user, course, link, enrollment, grade column, session and claimed nonce; a
        relaunch one more session and nonce only. --json names each kind."""
        key, secret = self.keys[3]
        before = json.loads(run_cli("db", "stats", "--json", "--db", self.db).stdout)
        self.assertEqual(before["consumers"], 4)
        self.assertEqual(set(before), {"consumers", "nonces", "users", "contexts",
                                       "resource_links", "enrollments", "outcome_bindings",
                                       "sessions", "badge_classes", "awards", "grades",
                                       "completions"})
        launch = base_launch(user_id="stats-user", context_id="stats-course",
                             resource_link_id="stats-link", lis_result_sourcedid="stats-sd",
                             lis_outcome_service_url="https://lms.example/outcomes")
        self.assertEqual(self.launch(launch, key, secret).status, 303)
        p = run_cli("db", "stats", "--json", "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        after = json.loads(p.stdout)
        for kind in ("users", "contexts", "resource_links", "enrollments", "outcome_bindings",
                     "sessions", "nonces"):
            self.assertEqual(after[kind], before[kind] + 1, kind)
        for kind in ("consumers", "badge_classes", "awards", "grades", "completions"):
            self.assertEqual(after[kind], before[kind], kind)
        self.assertEqual(self.launch(launch, key, secret).status, 303)
        again = json.loads(run_cli("db", "stats", "--json", "--db", self.db).stdout)
        self.assertEqual(again, dict(after, sessions=after["sessions"] + 1,
                                     nonces=after["nonces"] + 1))
        # the same numbers as text, one kind a line
        p = run_cli("db", "stats", "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        text = dict(line.split() for line in p.stdout.splitlines())
        self.assertEqual({k: int(v) for k, v in text.items()}, again)

    def test_disable_enable(self):
        key, secret = self.keys[1]
        resp = self.launch(base_launch(), key, secret)
        self.assertRedirectToPage(resp)
        self.assertEqual(run_cli("consumer", "disable", key, "--db", self.db).returncode, 0)
        before = counts(self.db)
        self.assertRefusal(self.launch(base_launch(), key, secret), 401, "disabled")
        self.assertNothingWritten(before)
        self.assertEqual(self.server.get(self.server.page_path(resp.header("Location"))).status,
                         403)
        self.assertEqual(run_cli("consumer", "enable", key, "--db", self.db).returncode, 0)
        self.assertEqual(self.launch_status(key, secret), 303)
        self.page(resp)

    def test_remove(self):
        key, secret = self.keys[2]
        other_key, other_secret = self.keys[3]
        resp = self.launch(base_launch(lis_outcome_service_url="https://lms.example/o",
                                       lis_result_sourcedid="sid"), key, secret)
        self.assertRedirectToPage(resp)
        self.assertRedirectToPage(self.launch(base_launch(), other_key, other_secret))
        other = counts(self.db)
        p = run_cli("consumer", "remove", key, "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        # everything its one launch stored is gone, the others' rows stay
        after = counts(self.db)
        for t in ("users", "contexts", "resource_links", "nonces", "sessions"):
            self.assertEqual(after[t], other[t] - 1, t)
        self.assertEqual(after["consumers"], other["consumers"] - 1)
        self.assertEqual(after["outcome_bindings"], other["outcome_bindings"] - 1)
        self.assertEqual(after["enrollments"], other["enrollments"] - 1)
        self.assertEqual(self.launch_status(other_key, other_secret), 303)
        before = counts(self.db)
        self.assertRefusal(self.launch(base_launch(), key, secret), 401, "unknown or disabled consumer key")
        self.assertNothingWritten(before)
        self.assertEqual(self.server.get(self.server.page_path(resp.header("Location"))).status,
                         403)


if __name__ == "__main__":
    lt.main()
