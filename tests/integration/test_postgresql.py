#!/usr/bin/python3
"""PostgreSQL from the command line ([database] url, LTIBADGES_DATABASE_URL): `serve` with
a database it cannot reach exits non-zero at once with a clear message that names the
database without its password; `db migrate` and `db version` on the throwaway server of
LTIBADGES_TEST_DATABASE_URL (tests/pgserver.sh, started by scripts/test.sh), in a database
of their own; url and path both set is refused naming both keys; `pool` is range-checked.

The database restarted under load and stopped under a running `serve`, on a server of the
test's own (tests/pgserver.sh restart, down, up): launches and page loads in flight are
answered 503 with Retry-After or as usual, never 500 nor left hanging; nothing half-written
(the sessions and nonces `db stats` counts are the launches answered 303, a nonce used before
the restart refused after it); /healthz says the database is unreachable while it is down;
launches and pages work again on the same `serve` once it is back, and an award due meanwhile
is issued by its worker, which failed while the database was down and went on trying.

Without LTIBADGES_TEST_DATABASE_URL the tests that need the server are skipped, saying so,
except under CI=true, where that is a failure."""
import json
import os
import glob
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402

SERVER_URL = os.environ.get("LTIBADGES_TEST_DATABASE_URL", "")
need_server = lt.require_pg_server
psql = lt.psql
with_database = lt.pg_url_with_database
PASSWORD = "s3cr3t-Pa55"





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


PGSERVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "pgserver.sh")
KEY, SECRET = "pg-faults", "pg-faults-secret-0123456789"


def pgserver(cmd, folder):
    p = subprocess.run(["sh", PGSERVER, cmd, folder], capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        raise AssertionError("pgserver.sh %s: %s" % (cmd, p.stderr))
    return p.stdout


class Restarted(unittest.TestCase):
    """A PostgreSQL server of the test's own, restarted and stopped under one `serve`."""

    def setUp(self):
        if not os.path.exists(lt.BIN):
            raise unittest.SkipTest("no binary at %s" % lt.BIN)
        if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
            if os.environ.get("CI") == "true":
                raise AssertionError("no PostgreSQL under /usr/lib/postgresql under CI=true")
            raise unittest.SkipTest("no PostgreSQL server installed (sh scripts/deps.sh test)")
        # short: the server's socket path must fit in sockaddr_un
        self.pgdir = tempfile.mkdtemp(prefix="lbpgr-", dir="/tmp")
        self.work = tempfile.mkdtemp(prefix="ltibadges-pgr-")
        self.srv = None
        self.url = pgserver("start", self.pgdir).strip().splitlines()[-1]
        self.env = {"LTIBADGES_DATABASE_URL": self.url}
        for args in (("db", "migrate"), ("consumer", "add", "LMS", "--key", KEY, "--secret",
                                         SECRET)):
            p = lt.run_cli(*args, env=self.env)
            self.assertEqual(p.returncode, 0, p.stderr)
        self.srv = lt.Server(self.work, db=False, env=self.env).start()

    def tearDown(self):
        if self.srv:
            self.srv.stop()
        pgserver("stop", self.pgdir)
        shutil.rmtree(self.work, ignore_errors=True)

    def stats(self):
        p = lt.run_cli("db", "stats", "--json", env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def launch(self, log, lock):
        """One launch and, when it is recorded, its page: what each got, into log."""
        params = lt.base_launch(context_id="ctx-faults", user_id="u-" + lt.hex_id(3))
        try:
            r, body = self.srv.launch(params, KEY, SECRET)
        except Exception as e:  # a hang (timeout) or a dropped connection
            with lock:
                log.append(("launch", "error", repr(e), None))
            return None
        with lock:
            log.append(("launch", r.status, r.header("Retry-After"), body))
        if r.status != 303:
            return r
        path = self.srv.page_path(r.header("Location"))
        try:
            g = self.srv.get(path, timeout=30)
        except Exception as e:
            with lock:
                log.append(("page", "error", repr(e), path))
            return r
        with lock:
            log.append(("page", g.status, g.header("Retry-After"), path))
        return r

    def wait_for(self, what, pred, timeout=120):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                self.fail("no %s within %d s; serve's log: %s" % (what, timeout,
                                                                  self.srv.stderr()[-3000:]))
            time.sleep(0.05)

    def check_answers(self, log):
        """Every answer a success or a 503 with Retry-After: never a 500, never a hang."""
        for kind, status, retry_after, _ in log:
            self.assertNotEqual(status, "error", "%s: %s" % (kind, retry_after))
            self.assertIn(status, (303, 503) if kind == "launch" else (200, 503), (kind, status))
            if status == 503:
                self.assertEqual(retry_after, "1", kind)

    def test_restart_under_load(self):
        log, lock, stop = [], threading.Lock(), threading.Event()

        def ok_launches(since=0):
            with lock:
                return sum(1 for e in log[since:] if e[0] == "launch" and e[1] == 303)

        def loop():
            while not stop.is_set():
                self.launch(log, lock)

        threads = [threading.Thread(target=loop) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            self.wait_for("launches before the restart", lambda: ok_launches() >= 20)
            pgserver("restart", self.pgdir)
            with lock:
                after = len(log)
            # the same serve, its connections made again
            self.wait_for("launches after the restart", lambda: ok_launches(after) >= 20)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads), "a request hangs")
        print("\n%d answers: %s" % (len(log), sorted(
            {(k, s): sum(1 for e in log if e[:2] == (k, s)) for k, s, _, _ in log}.items())),
            file=sys.stderr)
        self.check_answers(log)
        recorded = [e for e in log if e[0] == "launch" and e[1] == 303]
        # nothing half-written, nothing lost: one session and one nonce per launch answered 303
        st = self.stats()
        self.assertEqual(st["sessions"], len(recorded), st)
        self.assertEqual(st["nonces"], len(recorded), st)
        # a nonce used before the restart is refused after it
        r = self.srv.post_form(recorded[0][3], timeout=30)
        self.assertEqual(r.status, 401, r)
        self.assertIn("already used", r.text)
        self.assertIsNone(self.srv.proc.poll())

    def test_database_down_then_back(self):
        log, lock = [], threading.Lock()
        first = self.launch(log, lock)
        self.assertEqual(first.status, 303, first)
        page = self.srv.page_path(first.header("Location"))
        health = self.srv.get("/healthz?format=json")
        self.assertEqual(json.loads(health.body)["checks"]["database"], "ok", health)

        pgserver("down", self.pgdir)
        # a launch, a page and a form post of a session: 503, Retry-After, a clear message
        r = self.launch(log, lock)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertIn("try again", r.text)
        g = self.srv.get(page, timeout=30)
        self.assertEqual(g.status, 503, g)
        self.assertEqual(g.header("Retry-After"), "1")
        health = self.srv.get("/healthz?format=json", timeout=30)
        self.assertEqual(health.status, 503, health)
        h = json.loads(health.body)
        self.assertEqual(h["checks"]["database"], "unreachable", h)
        self.assertTrue(any("database unreachable" in p for p in h["problems"]), h)
        # the password is nobody's business, even in the log
        self.assertNotIn(self.url.split("@")[0].rsplit(":", 1)[1], health.text + self.srv.stderr())

        pgserver("up", self.pgdir)
        # back at once, on the same serve: its connections made again as they are next used
        r = self.launch(log, lock)
        self.assertEqual(r.status, 303, r)
        self.assertEqual(self.srv.get(page, timeout=30).status, 200)
        health = self.srv.get("/healthz?format=json", timeout=30)
        self.assertEqual(json.loads(health.body)["checks"]["database"], "ok", health)
        self.check_answers(log)
        st = self.stats()
        self.assertEqual(st["sessions"], 2, st)
        self.assertEqual(st["nonces"], 2, st)
        self.assertIsNone(self.srv.proc.poll())

    def awards(self):
        p = lt.run_cli("award", "list", "--json", env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_outbox_worker_resumes(self):
        # a learner, and a badge granted by hand (with no serve running: no worker claims it yet)
        r, _ = self.srv.launch(lt.base_launch(user_id="learner-1", context_id="ctx-w",
                                              lis_person_contact_email_primary="l1@example.edu"),
                               KEY, SECRET)
        self.assertEqual(r.status, 303, r)
        self.srv.stop()
        image = os.path.join(self.work, "badge.png")
        with open(image, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        p = lt.run_cli("badge", "create", "--consumer", KEY, "--context", "ctx-w", "--name",
                       "Helper", "--description", "d", "--image", image, "--rule", "manual",
                       env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        slug = p.stdout.strip().split("=", 1)[1]
        p = lt.run_cli("award", "grant", "--badge", slug, "--consumer", KEY, "--user",
                       "learner-1", env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # due once the database has been away and back
        psql(self.url, "UPDATE awards SET next_attempt_at = extract(epoch FROM now())::bigint + 20")
        self.srv = lt.Server(self.work, db=False, env=self.env).start()
        [a] = self.awards()
        self.assertEqual(a["state"], "queued", a)

        pgserver("down", self.pgdir)
        # the worker's claims fail, said in the log, and it goes on trying
        self.wait_for("the award worker's failure in the log",
                      lambda: "award worker" in self.srv.stderr(), timeout=60)
        pgserver("up", self.pgdir)

        def issued():
            [a] = self.awards()
            return a["state"] == "issued"

        self.wait_for("the award issued", issued, timeout=90)
        self.assertIsNone(self.srv.proc.poll())


if __name__ == "__main__":
    lt.main(skip_status=77)
