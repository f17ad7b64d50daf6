#!/usr/bin/python3
"""What an operator relies on: the configuration file (LTIBADGES_CONFIG, paths in
it relative to it, --config and --db before the command), a database created
only by serve and db migrate and always mode 0600 (its -wal and -shm too), and
the database commands: db version, db backup while a server writes, db restore
(checked first, refused while a server has the database open)."""
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, query, run_cli  # noqa: E402


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def run_umask0(*args, env=None, cwd=None):
    """`ltibadges ARGS` with umask 0: what it creates gets only the mode it asks for."""
    return subprocess.run([lt.BIN] + [str(a) for a in args], capture_output=True, text=True,
                          env=lt.clean_env(env), cwd=cwd, timeout=60,
                          preexec_fn=lambda: os.umask(0))


class OperatorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-op-")
        self.db = os.path.join(self.tmp, "op.db")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def ok(self, p):
        self.assertEqual(p.returncode, 0, "stdout %r stderr %r" % (p.stdout, p.stderr))
        return p

    def one_line_error(self, p, status, *phrases):
        self.assertEqual(p.returncode, status, p)
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, "one line on stderr, got %r" % p.stderr)
        for ph in phrases:
            self.assertIn(ph, lines[0])
        self.assertEqual(p.stdout, "")
        return lines[0]

    def serve(self, **kw):
        kw.setdefault("db", self.db)
        s = lt.Server(self.tmp, **kw).start()
        self.servers.append(s)
        return s

    def stop(self, s):
        rc, _ = s.stop()
        self.assertEqual(rc, 0, s.stderr()[-1500:])


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
                self.one_line_error(p, 1, "'%s' does not exist" % self.db, "db migrate")
                self.assertEqual(sorted(os.listdir(self.tmp)), [])

    def test_migrate_and_serve_create(self):
        self.ok(run_cli("db", "migrate", "--db", self.db))
        self.assertTrue(os.path.exists(self.db))
        other = os.path.join(self.tmp, "serve.db")
        self.stop(self.serve(db=other))
        self.assertTrue(os.path.exists(other))
        # the old spelling is the same command
        third = os.path.join(self.tmp, "third.db")
        self.ok(run_cli("migrate", "--db", third))
        self.assertTrue(os.path.exists(third))


class FileModes(OperatorTest):

    def test_database_wal_and_shm_are_0600(self):
        p = self.ok(run_umask0("db", "migrate", "--db", self.db))
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

    def test_backup_is_0600(self):
        lt.migrate(self.db)
        backup = os.path.join(self.tmp, "backup.db")
        self.ok(run_umask0("db", "backup", backup, "--db", self.db))
        self.assertEqual(mode(backup), 0o600)


class GlobalOptions(OperatorTest):

    def test_db_and_config_before_the_command(self):
        lt.migrate(self.db)
        self.ok(run_cli("--db", self.db, "consumer", "add", "Before", "--key", "before-key"))
        p = self.ok(run_cli("--db=" + self.db, "consumer", "list", "--json"))
        self.assertIn("before-key", p.stdout)
        cfg = self.write("g.ini", "[database]\npath = %s\n" % self.db)
        p = self.ok(run_cli("--config", cfg, "consumer", "list"))
        self.assertIn("before-key", p.stdout)
        p = self.ok(run_cli("--config", cfg, "db", "version"))
        self.assertIn("up to date", p.stdout)
        # given before and after: which one was meant?
        p = run_cli("--db", self.db, "consumer", "list", "--db", self.db)
        self.one_line_error(p, 2, "--db", "twice")
        p = run_cli("--db", self.db, "--db", self.db, "consumer", "list")
        self.one_line_error(p, 2, "--db", "twice")
        p = run_cli("--db")
        self.one_line_error(p, 2, "--db")


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
        self.ok(p)
        want = os.path.join(self.tmp, "var", "tool.db")
        self.assertTrue(os.path.exists(want), os.listdir(self.tmp))
        self.assertEqual(os.listdir(elsewhere), [])
        p = subprocess.run([lt.BIN, "consumer", "add", "Rel", "--key", "rel-key"],
                           capture_output=True, text=True, env=lt.clean_env(env), cwd=elsewhere,
                           timeout=30)
        self.ok(p)
        self.assertEqual(query(want, "SELECT key FROM consumers"), [{"key": "rel-key"}])
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
        self.ok(p)
        self.assertTrue(os.path.exists(other_db))
        # a flag's relative path is the current directory's
        p = subprocess.run([lt.BIN, "db", "migrate", "--db", "here.db"], capture_output=True,
                           text=True, env=lt.clean_env(env), cwd=elsewhere, timeout=30)
        self.ok(p)
        self.assertEqual([n for n in os.listdir(elsewhere) if not n.startswith("stderr-")],
                         ["here.db"])

    def test_missing_config_named_by_env(self):
        missing = os.path.join(self.tmp, "nope.ini")
        p = run_cli("consumer", "list", "--db", self.db, env={"LTIBADGES_CONFIG": missing})
        self.one_line_error(p, 1, missing)


class DatabaseCommands(OperatorTest):

    def test_version(self):
        lt.migrate(self.db)
        p = self.ok(run_cli("db", "version", "--db", self.db))
        lines = p.stdout.splitlines()
        latest = int(lines[0].rsplit(" ", 1)[1])
        self.assertEqual(lines, ["database '%s': schema version %d" % (self.db, latest),
                                 "this program: schema version %d" % latest, "up to date"])
        old = os.path.join(self.tmp, "old.db")
        self.ok(run_cli("db", "migrate", "--to", "3", "--db", old))
        p = self.ok(run_cli("db", "version", "--db", old, "--json"))
        self.assertIn('"schema_version": 3', p.stdout)
        self.assertIn('"program_schema_version": %d' % latest, p.stdout)
        p = self.ok(run_cli("db", "version", "--db", old))
        self.assertIn("%d migrations pending" % (latest - 3), p.stdout)
        # db version changes nothing
        self.assertEqual(query(old, "PRAGMA user_version")[0]["user_version"], 3)
        lt.execute(old, "PRAGMA user_version = 99")
        p = self.ok(run_cli("db", "version", "--db", old))
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
                p = self.ok(run_cli("db", "backup", b, "--db", self.db))
                self.assertIn("backed up to '%s'" % b, p.stdout)
                backups.append(b)
        finally:
            stop.set()
            t.join()
        self.assertEqual(set(sent), {303})
        for b in backups:
            c = sqlite3.connect(b)
            try:
                self.assertEqual(c.execute("PRAGMA integrity_check").fetchone()[0], "ok")
                self.assertEqual(c.execute("PRAGMA journal_mode").fetchone()[0], "delete")
                self.assertEqual(c.execute("SELECT key FROM consumers").fetchall(), [(key,)])
                users = c.execute("SELECT count(*) FROM users").fetchone()[0]
            finally:
                c.close()
            self.assertGreaterEqual(users, 5)
            self.assertFalse(os.path.exists(b + "-wal"))
        # an existing file is never overwritten
        p = run_cli("db", "backup", backups[0], "--db", self.db)
        self.one_line_error(p, 1, backups[0], "exists")

        # restore is refused while the server has the database open, and changes nothing
        users_before = lt.counts(self.db)["users"]
        p = run_cli("db", "restore", backups[0], "--db", self.db)
        self.one_line_error(p, 1, self.db, "in use", "stop it")
        self.assertEqual(lt.counts(self.db)["users"], users_before)
        self.stop(s)

        # stopped: the restore puts the backup's content back
        lt.execute(self.db, "DELETE FROM consumers")
        p = self.ok(run_cli("db", "restore", backups[0], "--db", self.db))
        self.assertIn("restored from '%s'" % backups[0], p.stdout)
        self.assertEqual(query(self.db, "SELECT key FROM consumers"), [{"key": key}])
        s = self.serve()
        resp, _ = s.launch(base_launch(), key, secret)
        self.assertEqual(resp.status, 303, resp)
        self.stop(s)

        # onto a machine with no database yet: created 0600
        fresh = os.path.join(self.tmp, "fresh.db")
        self.ok(run_umask0("db", "restore", backups[1], "--db", fresh))
        self.assertEqual(mode(fresh), 0o600)
        self.assertEqual(query(fresh, "SELECT key FROM consumers"), [{"key": key}])

    def test_restore_checks_the_file_first(self):
        key, _ = lt.add_consumer(self.db, "Keep")
        good = os.path.join(self.tmp, "good.db")
        self.ok(run_cli("db", "backup", good, "--db", self.db))
        not_db = self.write("notes.txt", "not a database\n" * 100)
        other = os.path.join(self.tmp, "other.db")
        c = sqlite3.connect(other)
        c.execute("CREATE TABLE t(x)")
        c.execute("PRAGMA user_version = 2")
        c.commit()
        c.close()
        newer = os.path.join(self.tmp, "newer.db")
        shutil.copy(good, newer)
        lt.execute(newer, "PRAGMA user_version = 99")
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
                line = self.one_line_error(p, 1, path)
                self.assertIn(phrase, line.lower() if phrase.islower() else line)
                self.assertEqual(query(self.db, "SELECT key FROM consumers"), [{"key": key}])


if __name__ == "__main__":
    lt.main()
