#!/usr/bin/python3
"""PostgreSQL from the command line ([database] url, LTIBADGES_DATABASE_URL): `serve` with
a database it cannot reach exits non-zero at once with a clear message that names the
database without its password; `db migrate` and `db version` on the throwaway server of
LTIBADGES_TEST_DATABASE_URL (tests/pgserver.sh, started by scripts/test.sh), in a database
of their own; url and path both set is refused naming both keys; `pool` is range-checked.

Without LTIBADGES_TEST_DATABASE_URL the tests that need the server are skipped, saying so,
except under CI=true, where that is a failure."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402

SERVER_URL = os.environ.get("LTIBADGES_TEST_DATABASE_URL", "")
PASSWORD = "s3cr3t-Pa55"


def need_server():
    if SERVER_URL:
        return
    if os.environ.get("CI") == "true":
        raise AssertionError("LTIBADGES_TEST_DATABASE_URL is not set under CI=true: "
                             "scripts/test.sh starts a PostgreSQL server for it")
    raise unittest.SkipTest("LTIBADGES_TEST_DATABASE_URL not set (scripts/test.sh sets it)")


def psql(url, sql):
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("psql %r: %s" % (sql, p.stderr))
    return p.stdout


def with_database(url, name):
    """SERVER_URL (postgresql://user:pw@/db?host=DIR) naming database `name` instead."""
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return base + "/" + name + ("?" + query if query else "")


class Unreachable(unittest.TestCase):

    def setUp(self):
        if not os.path.exists(lt.BIN):
            raise unittest.SkipTest("no binary at %s" % lt.BIN)
        # a socket folder where no server listens
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-nopg-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check_refused(self, p, url_shown):
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot connect to the database", p.stderr)
        # the database named (its password redacted), and libpq's reason: the socket tried
        self.assertIn("database '%s'" % url_shown, p.stderr)
        self.assertIn(os.path.join(self.tmp, ".s.PGSQL.5432"), p.stderr)
        self.assertNotIn(PASSWORD, p.stderr + p.stdout)

    def test_serve_exits_with_a_clear_message(self):
        url = "postgresql://badges:%s@/ltibadges?host=%s" % (PASSWORD, self.tmp)
        start = time.monotonic()
        p = lt.run_cli("serve", "--listen", "127.0.0.1:0",
                       env={"LTIBADGES_DATABASE_URL": url})
        self.check_refused(p, "postgresql://badges:***@/ltibadges?host=%s" % self.tmp)
        # at once: no listening, no retrying for ever
        self.assertLess(time.monotonic() - start, 20)
        self.assertNotIn("listening on", p.stderr)

    def test_from_the_configuration_file_too(self):
        ini = os.path.join(self.tmp, "ltibadges.ini")
        with open(ini, "w") as f:
            f.write("[database]\nurl = postgresql://badges@/ltibadges?host=%s&password=%s\n"
                    "pool = 4\n" % (self.tmp, PASSWORD))
        p = lt.run_cli("serve", "--config", ini)
        self.check_refused(p, "postgresql://badges@/ltibadges?host=%s&password=***" % self.tmp)
        # LTIBADGES_DEBUG prints the detail (libpq's whole message): no password there either
        p = lt.run_cli("db", "version", "--config", ini, env={"LTIBADGES_DEBUG": "1"})
        self.check_refused(p, "postgresql://badges@/ltibadges?host=%s&password=***" % self.tmp)
        self.assertIn("detail:", p.stderr)


class Keys(unittest.TestCase):

    def setUp(self):
        if not os.path.exists(lt.BIN):
            raise unittest.SkipTest("no binary at %s" % lt.BIN)
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-pgkeys-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_url_and_path_both_set(self):
        url = "postgresql://badges:%s@db.example.edu/badges" % PASSWORD
        for args, env in ((["--db", os.path.join(self.tmp, "x.db")],
                           {"LTIBADGES_DATABASE_URL": url}),
                          ([], {"LTIBADGES_DATABASE_URL": url,
                                "LTIBADGES_DB": os.path.join(self.tmp, "x.db")})):
            p = lt.run_cli("db", "version", *args, env=env)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("'url'", p.stderr)
            self.assertIn("'path'", p.stderr)
            self.assertNotIn(PASSWORD, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.db")))

    def test_bad_values(self):
        for text, words in (("url = mysql://u:%s@h/d\n" % PASSWORD, "'url' must be a PostgreSQL"),
                            ("url = postgresql://h/d\npool = 0\n", "'pool' must be"),
                            ("url = postgresql://h/d\npool = 65\n", "'pool' must be")):
            ini = os.path.join(self.tmp, "t.ini")
            with open(ini, "w") as f:
                f.write("[database]\n" + text)
            p = lt.run_cli("db", "version", "--config", ini)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(words, p.stderr)
            self.assertNotIn(PASSWORD, p.stderr)


class OnTheServer(unittest.TestCase):

    def setUp(self):
        if not os.path.exists(lt.BIN):
            raise unittest.SkipTest("no binary at %s" % lt.BIN)
        need_server()
        self.name = "lbit_%d_%s" % (os.getpid(), lt.hex_id(4))
        psql(SERVER_URL, "CREATE DATABASE %s" % self.name)
        self.url = with_database(SERVER_URL, self.name)
        self.env = {"LTIBADGES_DATABASE_URL": self.url}

    def tearDown(self):
        psql(SERVER_URL, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)

    def test_db_migrate_and_version(self):
        p = lt.run_cli("db", "version", "--json", env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        v = json.loads(p.stdout)
        self.assertEqual(v["schema_version"], 0)
        latest = v["program_schema_version"]
        self.assertNotIn(SERVER_URL.split("@")[0].split(":")[-1], p.stdout)
        self.assertIn(":***@", v["database"])

        p = lt.run_cli("db", "migrate", env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("migrated from schema version 0 to %d" % latest, p.stdout)
        p = lt.run_cli("db", "migrate", env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("is up to date (schema version %d)" % latest, p.stdout)
        p = lt.run_cli("db", "version", "--json", env=self.env)
        self.assertEqual(json.loads(p.stdout)["schema_version"], latest)
        # the tables are there, as PostgreSQL's
        out = psql(self.url, "SELECT count(*) FROM information_schema.tables "
                   "WHERE table_schema = 'public' AND table_name IN "
                   "('consumers', 'awards', 'nonces', 'sessions', 'ltibadges_schema')")
        self.assertIn("5", out)

    def test_newer_schema_refused(self):
        self.assertEqual(lt.run_cli("db", "migrate", env=self.env).returncode, 0)
        psql(self.url, "UPDATE ltibadges_schema SET version = version + 1")
        for cmd in (("db", "migrate"), ("serve", "--listen", "127.0.0.1:0")):
            p = lt.run_cli(*cmd, env=self.env)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("newer than this program", p.stderr)
            self.assertNotIn("listening on", p.stderr)

    def test_backup_is_postgresqls_own(self):
        p = lt.run_cli("db", "backup", os.path.join(tempfile.gettempdir(), self.name + ".db"),
                       env=self.env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("pg_dump", p.stderr)


if __name__ == "__main__":
    lt.main(skip_status=77)
