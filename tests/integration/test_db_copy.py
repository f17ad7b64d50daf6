#!/usr/bin/python3
"""`ltibadges db copy --from PATH --to URL` (issue 23): a campus's sqlite database moved into
PostgreSQL, on the throwaway server of LTIBADGES_TEST_DATABASE_URL (tests/pgserver.sh, started
by scripts/test.sh), each test in a database of its own.

The sqlite database is filled through real use: a server on it, launches, a course badge with a
PNG image issued by the built-in issuer after a grade, a manual badge waiting for a learner
without an address, who gives one, gets the confirmation link mailed (smtpsink.py) and follows
it. Copied to a fresh PostgreSQL database, `serve` on it answers every hosted assertion, its
BadgeClass and the images with the same documents and bytes, a replayed launch and a guesser
at the recipient check's rate limit are still refused, a relaunching learner finds their
badges, a new learner's launch and award get ids of their own (the sequences moved past the
copied ids), and `db stats --json` counts the same on both. A copy of the campus a while later
leaves the expired session, the nonce past every window and the ended rate limit windows, and
says so. A second copy into the same database
is refused, changing nothing; so is a source at an older schema version (naming the version and
`db migrate`, leaving the target untouched) and an unreachable target (a clear message, non-zero
exit, no password shown).

Without LTIBADGES_TEST_DATABASE_URL the tests that need the server are skipped, saying so,
except under CI=true, where that is a failure."""
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
import test_ui as ui  # noqa: E402
from smtpsink import Sink  # noqa: E402

SERVER_URL = os.environ.get("LTIBADGES_TEST_DATABASE_URL", "")
need_server = lt.require_pg_server
with_database = lt.pg_url_with_database


def psql(url, sql):
    return lt.psql(url, sql, tuples_only=True)


PUBLIC = "http://badges.example.edu"
LINK_RE = re.compile(r"http://\S+(/badges/email/confirm\?t=[1-9][0-9]*-[0-9a-f]{64})")
WAIT = 20





def password_of(url):
    return urllib.parse.urlsplit(url).password or ""


class Copy(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(lt.BIN):
            raise AssertionError("no binary at %s (set LTIBADGES_BIN)" % lt.BIN)
        cls.tmp = tempfile.mkdtemp(prefix="ltibadges-copy-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.mail_dir = os.path.join(cls.tmp, "mail")
        cls.sink = Sink(cls.mail_dir)
        port = cls.sink.start()
        cls.addClassCleanup(cls.sink.stop)
        cls.config = os.path.join(cls.tmp, "tool.ini")
        with open(cls.config, "w") as f:
            f.write("[email]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = badges@example.edu\n"
                    "starttls = false\nallow_loopback = true\n" % port)
        cls.png = os.path.join(cls.tmp, "badge.png")
        with open(cls.png, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        cls.dbs = []

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()

    @classmethod
    def tearDownClass(cls):
        for name in cls.dbs:  # made by fresh_pg, on the server
            psql(SERVER_URL, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)

    # helpers

    def fresh_pg(self):
        """A new empty database on the server; its URL."""
        name = "lbcp_%d_%s" % (os.getpid(), lt.hex_id(4))
        psql(SERVER_URL, "CREATE DATABASE %s" % name)
        self.dbs.append(name)
        return with_database(SERVER_URL, name)

    def cli(self, *args, env=None, ok=True):
        p = lt.run_cli(*args, env=env)
        if ok:
            self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p

    def on(self, where, *args, ok=True):
        """A command on the sqlite file `where`, or on PostgreSQL when it is a URL."""
        if where.startswith("postgresql://"):
            return self.cli(*args, env={"LTIBADGES_DATABASE_URL": where}, ok=ok)
        return self.cli(*(args + ("--db", where)), ok=ok)

    def serve(self, where):
        kw = dict(public_url=PUBLIC, config=self.config)
        if where.startswith("postgresql://"):
            kw.update(db=False, env={"LTIBADGES_DATABASE_URL": where})
        else:
            kw.update(db=where)
        s = lt.Server(self.tmp, **kw).start()
        self.servers.append(s)
        return s

    def stop(self, s):
        rc, _ = s.stop()
        self.assertEqual(rc, 0, s.stderr()[-2000:])

    def stats(self, where):
        return json.loads(self.on(where, "db", "stats", "--json").stdout)

    def awards(self, where):
        return json.loads(self.on(where, "award", "list", "--json").stdout)

    def wait_award(self, where, user, state):
        deadline = time.monotonic() + WAIT
        while True:
            got = [a for a in self.awards(where) if a["user"] == user]
            if got and all(a["state"] == state for a in got):
                return got
            if time.monotonic() > deadline:
                self.fail("awards of %s not %s: %r" % (user, state, got))
            time.sleep(0.1)

    def launch(self, server, key, secret, user, ctx, email=True):
        params = lt.base_launch(user_id=user, context_id=ctx, roles="Learner",
                                context_title="Course " + ctx,
                                lis_person_contact_email_primary=(user + "@example.edu")
                                if email else None)
        resp, body = server.launch(params, key, secret)
        self.assertEqual(resp.status, 303, (resp, server.stderr()[-3000:]))
        loc = resp.header("Location")
        m = lt.LOCATION_RE.match(loc)
        self.assertIsNotNone(m, loc)
        self.last_launch = body
        return m.group("token")

    def page(self, server, token):
        page = server.get("/badges?s=" + token)
        self.assertEqual(page.status, 200, page)
        return page

    def mail_link(self, address):
        deadline = time.monotonic() + 10
        while True:
            for e in self.sink.envelopes():
                if e["rcpt_tos"] == [address]:
                    m = LINK_RE.search(e["text"])
                    self.assertIsNotNone(m, e["text"])
                    return m.group(1)
            if time.monotonic() > deadline:
                self.fail("no mail to %s" % address)
            time.sleep(0.05)

    def checks(self, server, award, n):
        """`n` recipient checks of `award` (guesses of its e-mail address): their statuses."""
        uid = award["assertion_url"].rsplit("/", 1)[1]
        return [server.request("POST", "/badges/check/" + uid,
                               body=urllib.parse.urlencode({"email": "x%d@example.org" % i})
                               .encode(), headers={"Content-Type": lt.FORM}).status
                for i in range(n)]

    def documents(self, server, awards):
        """What the server answers for each issued award: the assertion, its BadgeClass, the
        BadgeClass's image and the baked image, by URL."""
        out = {}
        for a in awards:
            url = a["assertion_url"]
            self.assertTrue(url.startswith(PUBLIC + "/ob/v2/assertions/"), url)
            for u in (url, url + "/image"):
                resp = server.get(u[len(PUBLIC):], headers={"Accept": "application/ld+json"})
                self.assertEqual(resp.status, 200, (u, resp))
                out[u] = (resp.header("Content-Type"), resp.body)
            doc = json.loads(out[url][1])
            badge = doc["badge"]
            resp = server.get(badge[len(PUBLIC):], headers={"Accept": "application/ld+json"})
            self.assertEqual(resp.status, 200, resp)
            out[badge] = (resp.header("Content-Type"), resp.body)
            image = json.loads(resp.body)["image"]
            resp = server.get(image[len(PUBLIC):])
            self.assertEqual(resp.status, 200, resp)
            out[image] = (resp.header("Content-Type"), resp.body)
        return out

    def campus(self):
        """A sqlite database filled through use; (path, key, secret, course, slugs)."""
        db = os.path.join(self.tmp, "campus-%s.db" % lt.hex_id(4))
        key, secret = lt.add_consumer(db, "Campus LMS")
        ctx = "course-" + lt.hex_id(3)
        self.on(db, "context", "enable", "--consumer", key, "--context", ctx)
        slugs = []
        for name, rule in (("Finisher", "completion"), ("Helper", "manual")):
            p = self.on(db, "badge", "create", "--consumer", key, "--name", name,
                        "--description", "About " + name, "--image", self.png, "--rule", rule,
                        "--context", ctx)
            slugs.append(re.match(r"^slug=(\S+)$", p.stdout.strip()).group(1))
        s = self.serve(db)
        # ana: her LMS gives her address; a grade completes the course
        self.launch(s, key, secret, "ana", ctx)
        replay = self.last_launch
        self.on(db, "grade", "record", "--consumer", key, "--context", ctx, "--user", "ana",
                "--resource-link", "final", "--score", "0.9")
        self.on(db, "award", "grant", "--badge", slugs[1], "--consumer", key, "--user", "ana")
        self.wait_award(db, "ana", "issued")
        # ben: no address from the LMS; he gives one and follows the link mailed to him
        token = self.launch(s, key, secret, "ben", ctx, email=False)
        self.on(db, "award", "grant", "--badge", slugs[1], "--consumer", key, "--user", "ben")
        self.wait_award(db, "ben", "needs_email")
        fields = ui.form_fields(self.page(s, token).text, "/badges/email")
        fields["email"] = "ben@example.org"
        resp = s.request("POST", "/badges/email", body=urllib.parse.urlencode(fields).encode(),
                         headers={"Content-Type": lt.FORM})
        self.assertEqual(resp.status, 303, resp)
        done = s.get(self.mail_link("ben@example.org"))
        self.assertEqual(done.status, 200, done)
        self.wait_award(db, "ben", "issued")
        awards = self.awards(db)
        self.assertEqual(len(awards), 3, awards)
        docs = self.documents(s, awards)
        # someone guesses who holds one of ana's badges until the rate limit stops them
        self.assertEqual(self.checks(s, awards[0], 10), [200] * 10)
        self.assertEqual(self.checks(s, awards[0], 1), [429])
        self.stop(s)
        return db, key, secret, ctx, slugs, awards, docs, replay

    # tests

    def test_copy_serve_and_refusals(self):
        need_server()
        db, key, secret, ctx, slugs, awards, docs, replay = self.campus()
        before = self.stats(db)
        self.assertEqual((before["consumers"], before["users"], before["badge_classes"],
                          before["awards"], before["grades"]), (1, 2, 2, 3, 1), before)
        url = self.fresh_pg()

        p = self.cli("db", "copy", "--from", db, "--to", url, "--json")
        self.assertNotIn(password_of(url), p.stdout + p.stderr)
        report = json.loads(p.stdout)
        self.assertEqual(report["from"], db)
        self.assertIn(":***@", report["to"])
        self.assertEqual(report["target_schema_before"], 0)
        latest = json.loads(self.on(db, "db", "version", "--json").stdout)
        self.assertEqual(report["schema_version"], latest["program_schema_version"])
        self.assertGreaterEqual(report["migrations_applied"], 1)
        for table in ("consumers", "users", "contexts", "resource_links", "enrollments",
                      "sessions", "badge_classes", "awards", "grades", "completions", "nonces"):
            self.assertEqual(report["copied"][table], before[table], table)
        self.assertEqual(report["copied"]["email_confirmations"], 1)
        self.assertEqual(report["not_copied"], {"sessions": 0, "nonces": 0, "rate_limits": 0})
        self.assertGreater(report["copied"]["rate_limits"], 0)
        # the store on PostgreSQL counts what the one on sqlite counted
        self.assertEqual(self.stats(url), before)

        # a second copy into it is refused, and changes nothing
        p = self.cli("db", "copy", "--from", db, "--to", url, ok=False)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("the target is not empty", p.stderr)
        self.assertIn("--replace", p.stderr)
        self.assertNotIn(password_of(url), p.stdout + p.stderr)
        self.assertEqual(self.stats(url), before)

        s = self.serve(url)
        # every hosted document and image the same, to the byte
        self.assertEqual(self.documents(s, self.awards(url)), docs)
        # the awards as the CLI lists them: ids, assertion ids, recipients, times
        self.assertEqual(sorted(self.awards(url), key=lambda a: a["id"]),
                         sorted(awards, key=lambda a: a["id"]))
        # a launch of the sqlite days replayed: its nonce came along
        resp = s.post_form(replay)
        self.assertEqual(resp.status, 401, resp)
        self.assertIn("this launch was already used", resp.plain.lower())
        # the rate limit's window came along: the guesser is still refused
        self.assertEqual(self.checks(s, awards[0], 1), [429])
        # ana relaunches: her badges are there
        token = self.launch(s, key, secret, "ana", ctx)
        earned = ui.plain(ui.section(self.page(s, token).text, "earned-h"))
        self.assertIn("Finisher", earned)
        self.assertIn("Helper", earned)
        # ben's confirmed address stays
        token = self.launch(s, key, secret, "ben", ctx, email=False)
        self.assertIn("Helper", ui.plain(ui.section(self.page(s, token).text, "earned-h")))
        # a new learner and a new award: ids past the copied ones (the sequences moved; a
        # user or an award given id 1 again would collide, and the launch or grant fail)
        self.launch(s, key, secret, "cy", ctx)
        self.on(url, "award", "grant", "--badge", slugs[1], "--consumer", key, "--user", "cy")
        [cy] = self.wait_award(url, "cy", "issued")
        self.assertNotIn(cy["assertion_url"], [a["assertion_url"] for a in awards])
        self.assertGreater(cy["id"], max(a["id"] for a in awards))
        self.stop(s)

        # the same campus a while later: a session expired, a nonce past every window, the rate
        # limits' windows ended
        later = db + ".later"
        shutil.copyfile(db, later)
        lt.setup_sql(later, "UPDATE sessions SET expires_at = 1 WHERE id = (SELECT min(id) FROM "
                     "sessions)")
        # the nonce in `nonces`, or in the launch writer's log if it had not moved it yet
        aged = []
        for t in ("nonces", "nonce_log"):
            aged = aged or lt.setup_sql(later, "UPDATE %s SET ts = ts - 7200 WHERE fp = (SELECT fp "
                                        "FROM %s LIMIT 1) RETURNING fp" % (t, t))
        self.assertEqual(len(aged), 1, aged)
        limits = len(lt.setup_sql(later, "UPDATE rate_limits SET expires_at = 1 RETURNING key"))
        self.assertGreater(limits, 0)
        url2 = self.fresh_pg()
        report = json.loads(self.cli("db", "copy", "--from", later, "--to", url2,
                                     "--json").stdout)
        self.assertEqual(report["not_copied"], {"sessions": 1, "nonces": 1,
                                                "rate_limits": limits})
        self.assertEqual(report["copied"]["sessions"], before["sessions"] - 1)
        self.assertEqual(report["copied"]["nonces"], before["nonces"] - 1)
        after = self.stats(url2)
        self.assertEqual(after, dict(before, sessions=before["sessions"] - 1,
                                     nonces=before["nonces"] - 1))

        # --replace puts the source's data back in place of what the target holds
        p = self.cli("db", "copy", "--from", db, "--to", url, "--replace")
        self.assertIn("copied '%s' to 'postgresql://" % db, p.stdout)
        self.assertNotIn(password_of(url), p.stdout + p.stderr)
        self.assertEqual(self.stats(url), before)

    def test_older_source_refused(self):
        old = os.path.join(self.tmp, "old-%s.db" % lt.hex_id(4))
        need_server()
        self.cli("db", "migrate", "--to", "13", "--db", old)
        latest = json.loads(self.cli("db", "version", "--json", "--db", old).stdout)
        self.assertEqual(latest["schema_version"], 13)
        url = self.fresh_pg()
        p = self.cli("db", "copy", "--from", old, "--to", url, ok=False)
        self.assertEqual(p.returncode, 1, p)
        line = p.stderr.strip()
        self.assertEqual(len(line.splitlines()), 1, p.stderr)
        self.assertIn("schema version 13 is older than this program's (%d)"
                      % latest["program_schema_version"], line)
        self.assertIn("'ltibadges db migrate --db %s'" % old, line)
        # the target untouched: not even migrated
        v = json.loads(self.on(url, "db", "version", "--json").stdout)
        self.assertEqual(v["schema_version"], 0)
        # and a source that is not there
        p = self.cli("db", "copy", "--from", old + ".missing", "--to", url, ok=False)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("the source does not exist", p.stderr)

    def test_unreachable_target(self):
        db = os.path.join(self.tmp, "small-%s.db" % lt.hex_id(4))
        lt.add_consumer(db, "Small LMS")
        nowhere = tempfile.mkdtemp(prefix="ltibadges-nopg-")
        self.addCleanup(shutil.rmtree, nowhere, True)
        url = "postgresql://badges:s3cr3t-Pa55@/ltibadges?host=%s" % nowhere
        start = time.monotonic()
        p = self.cli("db", "copy", "--from", db, "--to", url, ok=False)
        self.assertEqual(p.returncode, 1, p)
        self.assertLess(time.monotonic() - start, 20)
        self.assertIn("cannot copy '%s' to 'postgresql://badges:***@/ltibadges?host=%s'"
                      % (db, nowhere), p.stderr)
        self.assertIn("cannot connect to the database", p.stderr)
        self.assertIn(os.path.join(nowhere, ".s.PGSQL.5432"), p.stderr)
        self.assertNotIn("s3cr3t-Pa55", p.stdout + p.stderr)
        # the URL from the environment: the password stays off the command line
        p = self.cli("db", "copy", "--from", db, env={"LTIBADGES_DATABASE_URL": url}, ok=False)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("cannot connect to the database", p.stderr)
        self.assertNotIn("s3cr3t-Pa55", p.stdout + p.stderr)


if __name__ == "__main__":
    lt.main(skip_status=77)
