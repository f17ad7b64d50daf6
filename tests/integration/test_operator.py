#!/usr/bin/python3
"""What an operator relies on: the configuration file (LTIBADGES_CONFIG, paths in
it relative to it, --config and --db before the command), a database created
only by serve and db migrate and always mode 0600 (its -wal and -shm too), and
the database commands: db version, db backup while a server writes, db restore
(checked first, refused while a server has the database open); consumer keys
and secrets an LMS's format can hold; serve on a wildcard address only with a
public URL; the client address from X-Forwarded-For of trusted proxies only;
requests under a former public URL redirected to the public URL."""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, run_cli  # noqa: E402


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def run_umask0(*args, env=None, cwd=None):
    """`ltibadges ARGS` with umask 0: what it creates gets only the mode it asks for."""
    return subprocess.run([lt.BIN] + [str(a) for a in args], capture_output=True, text=True,
                          env=lt.clean_env(env), cwd=cwd, timeout=60,
                          preexec_fn=lambda: os.umask(0))


class OperatorTest(lt.TempDirTest):
    PREFIX = "ltibadges-op-"
    DB_NAME = "op.db"


class NoDatabaseCreated(OperatorTest):

    def test_commands_other_than_serve_and_migrate_never_create(self):
        cases = [
            ("consumer", "list"),
            ("consumer", "add", "X"),
            ("consumer", "rotate", "k"),
            ("badge", "list"),
            ("award", "list"),
            ("context", "enable", "--consumer", "k", "--context", "c"),
            ("db", "version"),
            ("db", "backup", os.path.join(self.tmp, "b.db")),
        ]
        for args in cases:
            with self.subTest(args=args):
                p = run_cli(*args, "--db", self.db)
                self.assertOneLineError(p, 1, "'%s' does not exist" % self.db, "db migrate")
                self.assertEqual(sorted(os.listdir(self.tmp)), [])

    def test_migrate_and_serve_create(self):
        self.assertOk(run_cli("db", "migrate", "--db", self.db))
        self.assertTrue(os.path.exists(self.db))
        other = os.path.join(self.tmp, "serve.db")
        self.stop(self.serve(db=other))
        self.assertTrue(os.path.exists(other))
        # the old spelling is the same command
        third = os.path.join(self.tmp, "third.db")
        self.assertOk(run_cli("migrate", "--db", third))
        self.assertTrue(os.path.exists(third))


class FileModes(OperatorTest):

    def test_database_wal_and_shm_are_0600(self):
        p = self.assertOk(run_umask0("db", "migrate", "--db", self.db))
        self.assertIn("migrated", p.stdout)
        self.assertEqual(mode(self.db), 0o600)
        # serve creates them too, and the WAL and shared memory files beside them
        served = os.path.join(self.tmp, "served.db")
        s = lt.Server(self.tmp, db=served)
        s.proc = None
        orig = subprocess.Popen

        def popen(*a, **kw):
            kw["preexec_fn"] = lambda: os.umask(0)
            return orig(*a, **kw)
        subprocess.Popen = popen
        try:
            s.start()
        finally:
            subprocess.Popen = orig
        self.servers.append(s)
        key, secret = lt.add_consumer(served, "Modes")
        resp, _ = s.launch(base_launch(), key, secret)
        self.assertEqual(resp.status, 303, resp)
        for suffix in ("", "-wal", "-shm"):
            with self.subTest(file=suffix or "database"):
                self.assertTrue(os.path.exists(served + suffix))
                self.assertEqual(mode(served + suffix), 0o600)
        self.stop(s)

    def test_serve_warns_of_a_database_others_may_read(self):
        lt.migrate(self.db)
        self.stop(self.serve())
        self.assertEqual(self.servers[-1].stderr().count("other users may read the database"), 0)
        os.chmod(self.db, 0o644)
        s = self.serve()
        self.stop(s)
        warn = [l for l in s.stderr().splitlines() if "other users may read the database" in l]
        self.assertEqual(len(warn), 1, s.stderr())
        self.assertIn("level=warn", warn[0])
        self.assertIn("mode=0644", warn[0])
        self.assertIn(self.db, warn[0])

    def test_backup_is_0600(self):
        lt.migrate(self.db)
        backup = os.path.join(self.tmp, "backup.db")
        self.assertOk(run_umask0("db", "backup", backup, "--db", self.db))
        self.assertEqual(mode(backup), 0o600)


class GlobalOptions(OperatorTest):

    def test_db_and_config_before_the_command(self):
        lt.migrate(self.db)
        self.assertOk(run_cli("--db", self.db, "consumer", "add", "Before", "--key", "before-key"))
        p = self.assertOk(run_cli("--db=" + self.db, "consumer", "list", "--json"))
        self.assertIn("before-key", p.stdout)
        cfg = self.write("g.ini", "[database]\npath = %s\n" % self.db)
        p = self.assertOk(run_cli("--config", cfg, "consumer", "list"))
        self.assertIn("before-key", p.stdout)
        p = self.assertOk(run_cli("--config", cfg, "db", "version"))
        self.assertIn("up to date", p.stdout)
        # given before and after: which one was meant?
        p = run_cli("--db", self.db, "consumer", "list", "--db", self.db)
        self.assertOneLineError(p, 2, "--db", "twice")
        p = run_cli("--db", self.db, "--db", self.db, "consumer", "list")
        self.assertOneLineError(p, 2, "--db", "twice")
        p = run_cli("--db")
        self.assertOneLineError(p, 2, "--db")


class ConfigFile(OperatorTest):

    def test_ltibadges_config_and_relative_paths(self):
        # the file lives in etc/; its database path is relative to it, not to the current dir
        cfg = self.write("etc/tool.ini", "[database]\npath = ../var/tool.db\n"
                         "[server]\naccess_log = ../log/access.log\nlisten = 127.0.0.1:0\n")
        os.makedirs(os.path.join(self.tmp, "var"))
        os.makedirs(os.path.join(self.tmp, "log"))
        elsewhere = os.path.join(self.tmp, "elsewhere")
        os.makedirs(elsewhere)
        env = {"LTIBADGES_CONFIG": cfg}
        p = subprocess.run([lt.BIN, "db", "migrate"], capture_output=True, text=True,
                           env=lt.clean_env(env), cwd=elsewhere, timeout=30)
        self.assertOk(p)
        want = os.path.join(self.tmp, "var", "tool.db")
        self.assertTrue(os.path.exists(want), os.listdir(self.tmp))
        self.assertEqual(os.listdir(elsewhere), [])
        p = subprocess.run([lt.BIN, "consumer", "add", "Rel", "--key", "rel-key"],
                           capture_output=True, text=True, env=lt.clean_env(env), cwd=elsewhere,
                           timeout=30)
        self.assertOk(p)
        self.assertEqual(list(lt.consumers(want)), ["rel-key"])
        # serve reads it too, from anywhere: the access log is beside the file's folder
        s = lt.Server(elsewhere, db=False, listen=None, env=env)
        s.start()
        self.servers.append(s)
        self.assertEqual(s.get("/healthz").status, 200)
        self.stop(s)
        with open(os.path.join(self.tmp, "log", "access.log")) as f:
            self.assertIn("/healthz", f.read())
        # --config wins over LTIBADGES_CONFIG
        other_db = os.path.join(self.tmp, "other.db")
        other = self.write("other.ini", "[database]\npath = other.db\n")
        p = subprocess.run([lt.BIN, "db", "migrate", "--config", other], capture_output=True,
                           text=True, env=lt.clean_env(env), cwd=elsewhere, timeout=30)
        self.assertOk(p)
        self.assertTrue(os.path.exists(other_db))
        # a flag's relative path is the current directory's
        p = subprocess.run([lt.BIN, "db", "migrate", "--db", "here.db"], capture_output=True,
                           text=True, env=lt.clean_env(env), cwd=elsewhere, timeout=30)
        self.assertOk(p)
        self.assertEqual([n for n in os.listdir(elsewhere) if not n.startswith("stderr-")],
                         ["here.db"])

    def test_missing_config_named_by_env(self):
        missing = os.path.join(self.tmp, "nope.ini")
        p = run_cli("consumer", "list", "--db", self.db, env={"LTIBADGES_CONFIG": missing})
        self.assertOneLineError(p, 1, missing)


class DatabaseCommands(OperatorTest):

    def test_version(self):
        lt.migrate(self.db)
        p = self.assertOk(run_cli("db", "version", "--db", self.db))
        lines = p.stdout.splitlines()
        latest = int(lines[0].rsplit(" ", 1)[1])
        self.assertEqual(lines, ["database '%s': schema version %d" % (self.db, latest),
                                 "this program: schema version %d" % latest, "up to date"])
        old = os.path.join(self.tmp, "old.db")
        self.assertOk(run_cli("db", "migrate", "--to", "3", "--db", old))
        p = self.assertOk(run_cli("db", "version", "--db", old, "--json"))
        self.assertIn('"schema_version": 3', p.stdout)
        self.assertIn('"program_schema_version": %d' % latest, p.stdout)
        p = self.assertOk(run_cli("db", "version", "--db", old))
        self.assertIn("%d migrations pending" % (latest - 3), p.stdout)
        # db version changes nothing
        self.assertEqual(lt.sqlite_file_query(old, "PRAGMA user_version")[0]["user_version"], 3)
        lt.setup_sql(old, "PRAGMA user_version = 99")
        p = self.assertOk(run_cli("db", "version", "--db", old))
        self.assertIn("newer than this program", p.stdout)

    def test_backup_while_serving_then_restore(self):
        key, secret = lt.add_consumer(self.db, "Backup LMS")
        s = self.serve()
        stop = threading.Event()
        sent = []

        def launches():
            while not stop.is_set():
                resp, _ = s.launch(base_launch(user_id=lt.hex_id(8)), key, secret)
                sent.append(resp.status)
        t = threading.Thread(target=launches)
        t.start()
        try:
            while len(sent) < 5:
                stop.wait(0.01)
            backups = []
            for i in range(3):
                b = os.path.join(self.tmp, "backup-%d.db" % i)
                p = self.assertOk(run_cli("db", "backup", b, "--db", self.db))
                self.assertIn("backed up to '%s'" % b, p.stdout)
                backups.append(b)
        finally:
            stop.set()
            t.join()
        self.assertEqual(set(sent), {303})
        for b in backups:
            # the file as sqlite sees it, then what the store reads in it
            self.assertEqual(lt.sqlite_file_query(b, "PRAGMA integrity_check")[0]
                             ["integrity_check"], "ok")
            self.assertEqual(lt.sqlite_file_query(b, "PRAGMA journal_mode")[0]["journal_mode"],
                             "delete")
            self.assertFalse(os.path.exists(b + "-wal"))
            self.assertEqual(list(lt.consumers(b)), [key])
            self.assertGreaterEqual(lt.counts(b)["users"], 5)
        # an existing file is never overwritten
        p = run_cli("db", "backup", backups[0], "--db", self.db)
        self.assertOneLineError(p, 1, backups[0], "exists")

        # restore is refused while the server has the database open, and changes nothing
        users_before = lt.counts(self.db)["users"]
        p = run_cli("db", "restore", backups[0], "--db", self.db)
        self.assertOneLineError(p, 1, self.db, "in use", "stop it")
        self.assertEqual(lt.counts(self.db)["users"], users_before)
        self.stop(s)

        # stopped: the restore puts the backup's content back
        lt.setup_sql(self.db, "DELETE FROM consumers")
        p = self.assertOk(run_cli("db", "restore", backups[0], "--db", self.db))
        self.assertIn("restored from '%s'" % backups[0], p.stdout)
        self.assertEqual(list(lt.consumers(self.db)), [key])
        s = self.serve()
        resp, _ = s.launch(base_launch(), key, secret)
        self.assertEqual(resp.status, 303, resp)
        self.stop(s)

        # onto a machine with no database yet: created 0600
        fresh = os.path.join(self.tmp, "fresh.db")
        self.assertOk(run_umask0("db", "restore", backups[1], "--db", fresh))
        self.assertEqual(mode(fresh), 0o600)
        self.assertEqual(list(lt.consumers(fresh)), [key])

    def test_restore_checks_the_file_first(self):
        key, _ = lt.add_consumer(self.db, "Keep")
        good = os.path.join(self.tmp, "good.db")
        self.assertOk(run_cli("db", "backup", good, "--db", self.db))
        not_db = self.write("notes.txt", "not a database\n" * 100)
        other = os.path.join(self.tmp, "other.db")
        c = sqlite3.connect(other)
        c.execute("CREATE TABLE t(x)")
        c.execute("PRAGMA user_version = 2")
        c.commit()
        c.close()
        newer = os.path.join(self.tmp, "newer.db")
        shutil.copy(good, newer)
        lt.setup_sql(newer, "PRAGMA user_version = 99")
        corrupt = os.path.join(self.tmp, "corrupt.db")
        with open(good, "rb") as f:
            data = bytearray(f.read())
        # damage a b-tree page past the header: integrity_check finds it
        page = 4096
        for i in range(2 * page + 8, 2 * page + 200):
            data[i] = 0xA5
        with open(corrupt, "wb") as f:
            f.write(data)
        cases = [(not_db, "not a database"), (other, "not an ltibadges database"),
                 (newer, "newer than this build"), (corrupt, "integrity"),
                 (os.path.join(self.tmp, "missing.db"), "does not exist")]
        for path, phrase in cases:
            with self.subTest(file=os.path.basename(path)):
                p = run_cli("db", "restore", path, "--db", self.db)
                line = self.assertOneLineError(p, 1, path)
                self.assertIn(phrase, line.lower() if phrase.islower() else line)
                self.assertEqual(list(lt.consumers(self.db)), [key])


class ConsumerFormat(OperatorTest):

    def test_keys_and_secrets_an_lms_can_hold(self):
        lt.migrate(self.db)
        cases = [(["--key", "edx:course"], "--key", "':'"),
                 (["--secret", "0123456789:abcdefg"], "--secret", "':'"),
                 (["--key", "tab\tkey"], "--key", "control"),
                 (["--key", "new\nline"], "--key", "control"),
                 (["--secret", "0123456789 abcdefg"], "--secret", "spaces")]
        for args, opt, phrase in cases:
            with self.subTest(args=args):
                p = run_cli("consumer", "add", "X", "--db", self.db, *args)
                line = self.assertOneLineError(p, 2, opt, phrase)
                if phrase == "':'":
                    self.assertIn("Open edX", line)
        self.assertEqual(lt.consumers(self.db), {})
        # what Open edX's passport can hold is still accepted
        self.assertOk(run_cli("consumer", "add", "Edx", "--db", self.db, "--key", "edx.example-1_x",
                        "--secret", "A-secret_of.20+chars/="))


class WildcardListen(OperatorTest):

    def serve_fails(self, listen, **kw):
        s = lt.Server(self.tmp, db=self.db, listen=listen, **kw)
        with self.assertRaises(AssertionError):
            s.start()
        s.kill()
        err = s.stderr()
        self.assertEqual(len(err.splitlines()), 1, err)
        return err

    def test_every_address_needs_public_url(self):
        for listen in ("0.0.0.0:0", "[::]:0", "0:0", "[::0]:0"):
            with self.subTest(listen=listen):
                err = self.serve_fails(listen)
                self.assertIn("public_url", err)
                self.assertIn("signatures", err)
        self.assertFalse(os.path.exists(self.db), "refused before the database is opened")
        # with one, it listens
        s = self.serve(listen="0.0.0.0:0", public_url="https://badges.example.edu")
        self.assertEqual(s.public_url, "https://badges.example.edu")
        self.assertEqual(s.get("/healthz").status, 200)
        self.stop(s)
        # a specific address needs none
        self.stop(self.serve(listen="127.0.0.1:0"))


class BehindAProxy(OperatorTest):

    def start(self, config, **kw):
        cfg = self.write("proxy.ini", "[server]\nlog_format = json\n" + config)
        return self.serve(config=cfg, **kw)

    def clients(self, s):
        """The client of each access-log line, by path, once the server stopped."""
        self.stop(s)
        out = {}
        for line in s.stderr().splitlines():
            o = json.loads(line)
            if o.get("msg") == "request":
                out[o["path"]] = o["client"]
        return out

    def test_forwarded_for_from_trusted_proxies_only(self):
        s = self.start("trusted_proxies = 127.0.0.1, 10.0.0.0/8\n")
        hdr = lambda v: {"X-Forwarded-For": v}  # noqa: E731
        self.assertEqual(s.get("/healthz", headers=hdr("198.51.100.1")).status, 200)
        s.get("/nothing-1", headers=hdr("6.6.6.6, 198.51.100.2"))
        s.get("/nothing-2", headers=hdr("6.6.6.6, 198.51.100.3, 10.9.9.9"))
        s.get("/nothing-3", headers=hdr("unknown"))
        s.get("/nothing-4")
        self.assertEqual(self.clients(s), {"/healthz": "198.51.100.1",
                                           "/nothing-1": "198.51.100.2",
                                           "/nothing-2": "198.51.100.3",
                                           "/nothing-3": "127.0.0.1",
                                           "/nothing-4": "127.0.0.1"})

    def test_forwarded_for_ignored_from_others(self):
        s = self.start("trusted_proxies = 10.0.0.0/8\n")
        s.get("/healthz", headers={"X-Forwarded-For": "198.51.100.1"})
        self.assertEqual(self.clients(s), {"/healthz": "127.0.0.1"})
        s = self.start("")
        s.get("/healthz", headers={"X-Forwarded-For": "198.51.100.1"})
        self.assertEqual(self.clients(s), {"/healthz": "127.0.0.1"})

    def test_bad_trusted_proxies(self):
        for v, bad in (("10.0.0.0/33", "10.0.0.0/33"), ("proxy.example.edu", "proxy.example.edu"),
                       ("10.0.0.0/8, nope", "'nope'")):
            with self.subTest(value=v):
                cfg = self.write("bad.ini", "[server]\ntrusted_proxies = %s\n" % v)
                p = run_cli("db", "version", "--config", cfg, "--db", self.db)
                self.assertOneLineError(p, 1, "trusted_proxies", bad)


class FormerPublicUrls(OperatorTest):

    def test_requests_under_a_former_url_are_redirected(self):
        cfg = self.write("moved.ini", "[server]\npublic_url = https://new.example.edu/tool\n"
                         "former_public_urls = https://old.example.edu/ltibadges, "
                         "http://older.example.edu\n")
        s = self.serve(config=cfg)

        def get(host, path, method="GET"):
            return s.request(method, path, headers={"Host": host})
        # a hosted assertion's URL as issued under the old public URL, its query kept
        r = get("old.example.edu", "/ltibadges/ob/v2/assertions/abc?v=1")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.header("Location"),
                         "https://new.example.edu/tool/ob/v2/assertions/abc?v=1")
        r = get("OLD.example.edu:443", "/ltibadges")
        self.assertEqual((r.status, r.header("Location")), (301, "https://new.example.edu/tool"))
        # a POST stays a POST (308)
        r = get("old.example.edu", "/ltibadges/lti/outcomes", method="POST")
        self.assertEqual((r.status, r.header("Location")),
                         (308, "https://new.example.edu/tool/lti/outcomes"))
        # a former URL without a path: all of its host
        r = get("older.example.edu:80", "/ob/v2/issuer")
        self.assertEqual((r.status, r.header("Location")),
                         (301, "https://new.example.edu/tool/ob/v2/issuer"))
        # not under the old prefix, another host, and the public URL itself: served as before
        self.assertEqual(get("old.example.edu", "/other/healthz").status, 404)
        self.assertEqual(get("old.example.edu", "/ltibadgesx/healthz").status, 404)
        self.assertEqual(get("elsewhere.example.edu", "/healthz").status, 200)
        self.assertEqual(get("new.example.edu", "/tool/healthz").status, 200)
        # where the redirect points is served
        self.assertEqual(get("new.example.edu", "/tool/ob/v2/issuer").status, 200)
        self.stop(s)

    def test_former_urls_need_a_distinct_public_url(self):
        cases = [("former_public_urls = https://old.example.edu\n", "needs public_url"),
                 ("public_url = https://b.example.edu/x\n"
                  "former_public_urls = http://b.example.edu/x/\n", "scheme"),
                 ("public_url = https://b.example.edu\nformer_public_urls = not-a-url\n",
                  "'not-a-url'")]
        for text, phrase in cases:
            with self.subTest(config=text):
                cfg = self.write("f.ini", "[server]\n" + text)
                s = lt.Server(self.tmp, db=self.db, config=cfg)
                with self.assertRaises(AssertionError):
                    s.start()
                s.kill()
                err = s.stderr()
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertIn(phrase, err)


if __name__ == "__main__":
    lt.main()
