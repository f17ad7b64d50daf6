#!/usr/bin/python3
"""Observing the server: GET /metrics read by Prometheus's own text-format
parser (Debian's python3-prometheus-client), its counters moving with the
traffic that should move them, who may read it; /healthz saying what is
wrong; the log and the signals.

A request is counted when the server completes it, which may be just after
its client read the answer: the tests wait for a counter to reach the value
they expect (and then check it is exactly that), never for a time."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch  # noqa: E402

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

BOUND = 20.0  # seconds a state may take to come: a bound, not a measure


def wait_for(cond, what, bound=BOUND):
    deadline = time.monotonic() + bound
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def get_from(port, path, source=None, headers=None):
    """GET on a fresh connection from `source` (an address of this machine's loopback)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return lt.Response(resp.status, resp.reason, resp.msg, resp.read())
    finally:
        conn.close()


class Scrape:
    """One /metrics page, parsed: samples by (name, sorted labels)."""

    def __init__(self, text):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(port, source=None):
    resp = get_from(port, "/metrics", source=source)
    if resp.status != 200:
        raise AssertionError("GET /metrics: %r" % resp)
    assert resp.header("Content-Type").startswith("text/plain; version=0.0.4"), resp
    return Scrape(resp.text)


class Metrics(lt.ServerTestCase):
    consumers = (("Metrics LMS", None, None), ("Disabled LMS", None, None))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        lt.run_cli("consumer", "disable", cls.keys[1][0], "--db", cls.db)

    def launches(self, outcome, s=None):
        return (s or scrape(self.server.port)).get("ltibadges_launches_total", outcome=outcome)

    def wait_count(self, name, want, **labels):
        """Waits until the sample reaches `want`; returns that scrape."""
        def ok():
            s = scrape(self.server.port)
            return s if s.get(name, **labels) >= want else None
        s = wait_for(ok, "%s%r to reach %s" % (name, labels, want))
        self.assertEqual(s.get(name, **labels), want, "%s%r" % (name, labels))
        return s

    def test_families_and_types(self):
        s = scrape(self.server.port)
        types = {n: f.type for n, f in s.families.items()}
        for name, t in (("ltibadges_launches", "counter"),
                        ("ltibadges_http_request_duration_seconds", "histogram"),
                        ("ltibadges_db_transaction_duration_seconds", "histogram"),
                        ("ltibadges_awards", "gauge"), ("ltibadges_passbacks", "gauge"),
                        ("ltibadges_outbox_oldest_due_age_seconds", "gauge"),
                        ("ltibadges_mails", "counter"), ("ltibadges_http_connections", "gauge"),
                        ("process_resident_memory_bytes", "gauge"),
                        ("ltibadges_build_info", "gauge")):
            self.assertEqual(types.get(name), t, name)
        self.assertGreater(s.get("process_resident_memory_bytes"), 1024 * 1024)
        info = [x for x in s.families["ltibadges_build_info"].samples]
        self.assertEqual(len(info), 1)
        self.assertEqual(info[0].labels["version"], lt.run_cli("--version").stdout.split()[-1])
        self.assertEqual(s.get("ltibadges_database_up"), 1)

    def test_counters_move_with_launches(self):
        port = self.server.port
        before = scrape(port)
        hist = ("ltibadges_http_request_duration_seconds_count", {"route": "/lti/launch"})
        tx = ("ltibadges_db_transaction_duration_seconds_count", {"tx": "launch_batch"})

        resp, body = self.server.launch(base_launch(), self.key, self.secret)
        self.assertEqual(resp.status, 303, resp)
        s = self.wait_count("ltibadges_launches_total",
                            before.get("ltibadges_launches_total", outcome="accepted") + 1,
                            outcome="accepted")
        self.assertEqual(s.get(hist[0], **hist[1]), before.get(hist[0], **hist[1]) + 1)
        self.assertGreater(s.get(tx[0], **tx[1]), before.get(tx[0], **tx[1]))
        self.assertEqual(s.get("ltibadges_launches_committed_total"),
                         before.get("ltibadges_launches_committed_total") + 1)

        # the same form again: a replay
        self.assertEqual(self.server.post_form(body).status, 401)
        self.wait_count("ltibadges_launches_total",
                        before.get("ltibadges_launches_total", outcome="replay") + 1,
                        outcome="replay")
        # forged: signed with another secret
        resp, _ = self.server.launch(base_launch(), self.key, "not-the-secret-at-all")
        self.assertEqual(resp.status, 401)
        self.wait_count("ltibadges_launches_total",
                        before.get("ltibadges_launches_total", outcome="bad_signature") + 1,
                        outcome="bad_signature")
        # an unknown key, and a disabled consumer's
        resp, _ = self.server.launch(base_launch(), "no-such-key", self.secret)
        self.assertEqual(resp.status, 401)
        resp, _ = self.server.launch(base_launch(), self.keys[1][0], self.keys[1][1])
        self.assertEqual(resp.status, 401)
        self.wait_count("ltibadges_launches_total",
                        before.get("ltibadges_launches_total", outcome="unknown_consumer") + 2,
                        outcome="unknown_consumer")
        # stale timestamp, a verified launch missing its fields, malformed, wrong media type
        resp, _ = self.server.launch(base_launch(), self.key, self.secret,
                                     timestamp=int(time.time()) - 3600)
        self.assertEqual(resp.status, 401)
        resp, _ = self.server.launch(base_launch(resource_link_id=None), self.key, self.secret)
        self.assertEqual(resp.status, 400)
        self.assertEqual(self.server.post_form("a=b").status, 400)
        self.assertEqual(self.server.post_form("a=b", content_type="text/plain").status, 415)
        for outcome in ("stale_timestamp", "invalid_launch", "malformed", "media_type"):
            self.wait_count("ltibadges_launches_total",
                            before.get("ltibadges_launches_total", outcome=outcome) + 1,
                            outcome=outcome)
        s = scrape(port)
        total = sum(v for (n, _), v in s.samples.items() if n == "ltibadges_launches_total")
        total0 = sum(v for (n, _), v in before.samples.items() if n == "ltibadges_launches_total")
        self.assertEqual(total - total0, 9, "every launch counted once")
        self.assertEqual(s.get(hist[0], **hist[1]) - before.get(hist[0], **hist[1]), 9)
        # the buckets are cumulative and end with the count
        buckets = sorted((float(lbl[1]) if lbl[1] != "+Inf" else float("inf"), v)
                         for (n, labels), v in s.samples.items()
                         if n == "ltibadges_http_request_duration_seconds_bucket"
                         for lbl in labels if lbl[0] == "le" and ("route", "/lti/launch") in labels)
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values))
        self.assertEqual(values[-1], s.get(hist[0], **hist[1]))

    def test_open_connections(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            # this connection is still open while another scrapes
            self.assertGreaterEqual(scrape(self.server.port).get("ltibadges_http_connections"), 2)
        finally:
            conn.close()

    def test_other_peers_refused(self):
        # 127.0.0.2 is this machine too, but not what loopback means here (127.0.0.1, ::1)
        resp = get_from(self.server.port, "/metrics", source="127.0.0.2")
        self.assertEqual(resp.status, 403, resp)
        self.assertNotIn("ltibadges_", resp.text)
        # through a proxy on this machine: the client is someone else
        for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            resp = get_from(self.server.port, "/metrics", headers={h: "203.0.113.9"})
            self.assertEqual(resp.status, 403, h)
        # /healthz is for everyone
        self.assertEqual(get_from(self.server.port, "/healthz", source="127.0.0.2").status, 200)


class MetricsConfig(unittest.TestCase):
    """metrics_allow, metrics = off, metrics_listen: each its own server."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-metrics-")
        self.db = os.path.join(self.tmp, "m.db")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, ini):
        cfg = os.path.join(self.tmp, "m-%d.ini" % len(self.servers))
        with open(cfg, "w") as f:
            f.write(ini)
        s = lt.Server(self.tmp, db=self.db, config=cfg)
        self.servers.append(s)
        return s.start()

    def stop_ok(self, s):
        rc, _ = s.stop()
        self.assertEqual(rc, 0, s.stderr()[-2000:])

    def test_allow_list(self):
        s = self.start("[server]\nmetrics_allow = 10.0.0.0/8, 127.0.0.2 ::2\n")
        self.assertEqual(get_from(s.port, "/metrics", source="127.0.0.2").status, 200)
        self.assertEqual(get_from(s.port, "/metrics", source="127.0.0.3").status, 403)
        self.assertEqual(get_from(s.port, "/metrics").status, 200)
        self.stop_ok(s)

    def test_through_a_trusted_proxy(self):
        # the proxy (here: this test, from 127.0.0.1) is trusted: the client it names is who asks
        s = self.start("[server]\ntrusted_proxies = 127.0.0.1\n"
                       "metrics_allow = 203.0.113.0/24, 127.0.0.2\n")
        for xff, status in (("198.51.100.7", 403), ("203.0.113.9", 200), ("127.0.0.1", 200),
                            ("203.0.113.9, 198.51.100.7", 403)):
            r = get_from(s.port, "/metrics", headers={"X-Forwarded-For": xff})
            self.assertEqual(r.status, status, xff)
        # from a peer that is no trusted proxy (but allowed itself), a forwarded request is
        # refused whatever it says
        self.assertEqual(get_from(s.port, "/metrics", source="127.0.0.2").status, 200)
        r = get_from(s.port, "/metrics", source="127.0.0.2",
                     headers={"X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(r.status, 403)
        self.stop_ok(s)

    def test_bad_allow_list_refused(self):
        cfg = os.path.join(self.tmp, "bad.ini")
        with open(cfg, "w") as f:
            f.write("[server]\nmetrics_allow = 10.0.0.0/33\n")
        p = lt.run_cli("serve", "--config", cfg, "--db", self.db, "--listen", "127.0.0.1:0")
        self.assertEqual(p.returncode, 1)
        self.assertIn("metrics_allow", p.stderr)
        self.assertIn("10.0.0.0/33", p.stderr)

    def test_off(self):
        s = self.start("[server]\nmetrics = off\n")
        self.assertEqual(get_from(s.port, "/metrics").status, 404)
        self.stop_ok(s)

    def test_separate_address(self):
        s = self.start("[server]\nmetrics_listen = 127.0.0.1:0\n")
        line = [b for b in s.banner if b.startswith("ltibadges: metrics on ")]
        self.assertEqual(len(line), 1, s.banner)
        mport = int(line[0].rsplit(":", 1)[1])
        self.assertNotEqual(mport, s.port)
        # not on the main address any more, to anyone
        self.assertEqual(get_from(s.port, "/metrics").status, 404)
        # on its own, to whoever reaches it (the operator keeps that address private)
        m = scrape(mport, source="127.0.0.2")
        self.assertEqual(m.get("ltibadges_database_up"), 1)
        h = get_from(mport, "/healthz")
        self.assertEqual((h.status, h.text), (200, "ok\n"))
        self.assertEqual(get_from(mport, "/healthz?format=json").status, 200)
        self.assertEqual(get_from(mport, "/badges").status, 404)
        self.stop_ok(s)


class Logs(unittest.TestCase):
    """The log's formats, its files reopened on SIGHUP, and the signals that do not stop."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-logs-")
        self.db = os.path.join(self.tmp, "l.db")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, ini="", env=None):
        cfg = os.path.join(self.tmp, "l-%d.ini" % len(self.servers))
        with open(cfg, "w") as f:
            f.write(ini)
        s = lt.Server(self.tmp, db=self.db, config=cfg, env=env)
        self.servers.append(s)
        return s

    def stop_ok(self, s):
        rc, _ = s.stop()
        self.assertEqual(rc, 0, s.stderr()[-2000:])

    @staticmethod
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def test_text_lines(self):
        s = self.start().start()
        self.assertEqual(s.get("/healthz").status, 200)
        self.stop_ok(s)
        lines = s.stderr().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                                   r"level=(info|warn|error) msg=")
        self.assertTrue(any(" msg=request " in l and " path=/healthz " in l for l in lines))

    def test_json_lines(self):
        s = self.start("[server]\nlog_format = json\n").start()
        self.assertEqual(s.get("/healthz").status, 200)
        self.stop_ok(s)
        objs = [json.loads(l) for l in s.stderr().splitlines()]
        for o in objs:
            self.assertEqual(list(o)[:3], ["time", "level", "msg"], o)
        req = [o for o in objs if o["msg"] == "request"]
        self.assertEqual(len(req), 1, objs)
        self.assertEqual((req[0]["path"], req[0]["status"], req[0]["method"]),
                         ("/healthz", 200, "GET"))
        self.assertIsInstance(req[0]["duration_us"], int)
        self.assertIn("SIGTERM received, stopping", [o["msg"] for o in objs])

    def test_journald_gets_priority_and_no_time(self):
        s = self.start()
        # stderr is the journal when JOURNAL_STREAM names its device and inode, as systemd does
        open(s.stderr_path, "wb").close()
        st = os.stat(s.stderr_path)
        s.env = {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}
        s.start()
        self.assertEqual(s.get("/healthz").status, 200)
        self.stop_ok(s)
        lines = s.stderr().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[346]>level=(info|warn|error) msg=")
        # another stream named (stderr is not the journal's): times as usual
        s2 = self.start(env={"JOURNAL_STREAM": "1:2"}).start()
        self.stop_ok(s2)
        self.assertTrue(s2.stderr().startswith("time="), s2.stderr())

    def test_sighup_reopens_log_files(self):
        events = os.path.join(self.tmp, "events.log")
        access = os.path.join(self.tmp, "access.log")
        s = self.start("[server]\nlog_file = %s\naccess_log = %s\n" % (events, access)).start()
        self.assertEqual(s.get("/healthz").status, 200)
        wait_for(lambda: "path=/healthz" in self.read(access), "the first request's line")
        self.assertIn("msg=listening", self.read(events))
        self.assertEqual(s.stderr(), "", "nothing on stderr with a log file")
        # what logrotate does: move the files away, then SIGHUP (postrotate)
        os.rename(events, events + ".1")
        os.rename(access, access + ".1")
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "log files reopened" in self.read(events), "the reopened event log")
        self.assertEqual(s.get("/lti/config.xml").status, 200)
        wait_for(lambda: "path=/lti/config.xml" in self.read(access), "a line in the new file")
        self.assertNotIn("config.xml", self.read(access + ".1"))
        self.assertNotIn("reopened", self.read(events + ".1"))
        self.assertIn("path=/healthz", self.read(access + ".1"))
        self.stop_ok(s)
        self.assertIn("msg=stopped", self.read(events))

    def test_only_term_and_int_stop(self):
        s = self.start().start()
        for sig in (signal.SIGPIPE, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                    signal.SIGALRM):
            s.proc.send_signal(sig)
        # signals are taken in order by one thread: once USR2's and ALRM's notes are written,
        # the others were handled too
        wait_for(lambda: "signal=SIGALRM" in s.stderr() and "signal=SIGUSR2" in s.stderr(),
                 "the ignored signals noted")
        self.assertIn("signal=SIGUSR1", s.stderr())
        self.assertIn("log files reopened", s.stderr())
        self.assertIsNone(s.proc.poll(), "still running")
        self.assertEqual(s.get("/healthz").status, 200)
        self.stop_ok(s)


class Health(lt.ServerTestCase):
    """/healthz says what is wrong: the database, the outbox stuck (a backend in auth state is
    checked by tests/unit/awards/outbox.c: no backend here can refuse credentials)."""

    CONFIG = "[server]\nhealth_outbox_stuck = 1\n"

    def health(self, json_form=False):
        if json_form:
            r = self.server.get("/healthz", headers={"Accept": "application/json"})
            self.assertEqual(r.header("Content-Type"), "application/json")
            return r.status, json.loads(r.text)
        r = self.server.get("/healthz")
        return r.status, r.text

    def test_ok_and_json(self):
        self.assertEqual(self.health(), (200, "ok\n"))
        status, body = self.health(json_form=True)
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["problems"], [])
        self.assertEqual(body["checks"], {"database": "ok", "outbox": "ok", "backends": "ok"})
        self.assertEqual(body["version"], lt.run_cli("--version").stdout.split()[-1])
        r = self.server.get("/healthz?format=json")
        self.assertEqual(json.loads(r.text)["status"], "ok")

    def test_database_gone(self):
        moved = self.db + ".away"
        os.rename(self.db, moved)
        try:
            status, text = self.health()
            self.assertEqual(status, 503)
            self.assertRegex(text, r"^database unreachable: unable to open database file\n$")
            self.assertNotIn(self.tmp, text, "no path in a public answer")
            status, body = self.health(json_form=True)
            self.assertEqual((status, body["status"], body["checks"]["database"]),
                             (503, "failing", "unreachable"))
        finally:
            os.rename(moved, self.db)
        self.assertEqual(self.health(), (200, "ok\n"))
        self.assertFalse(os.path.exists(moved))

    def test_outbox_stuck(self):
        import sqlite3
        ctx, user = "h-" + lt.hex_id(3), "h-u-" + lt.hex_id(3)
        png = os.path.join(self.tmp, "b.png")
        with open(png, "wb") as f:
            f.write(lt.png_bytes())
        p = lt.run_cli("badge", "create", "--consumer", self.key, "--context", ctx, "--name",
                       "Helper", "--description", "Helped", "--image", png, "--rule", "manual",
                       "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        slug = p.stdout.strip().split("=", 1)[1]
        resp, _ = self.server.launch(base_launch(user_id=user, context_id=ctx,
                                                 lis_person_contact_email_primary="h@example.edu"),
                                     self.key, self.secret)
        self.assertEqual(resp.status, 303)
        p = lt.run_cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user,
                       "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: lt.awards(self.db)[0]["state"] == "issued",
                 "the award issued")
        # due again in 3 s; then the award worker is kept from the database (another process
        # holds the write lock) while it waits past health_outbox_stuck (1 s)
        lt.setup_sql(self.db, "UPDATE awards SET state = 'queued', next_attempt_at = ? ",
                     int(time.time()) + 3)
        lock = sqlite3.connect(self.db, timeout=10, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
            status, text = wait_for(lambda: (lambda h: h if h[0] == 503 else None)(self.health()),
                                    "the outbox seen stuck")
            self.assertRegex(text, r"^outbox stuck: the oldest award due has waited \d+ s\n$")
            status, body = self.health(json_form=True)
            self.assertEqual(body["checks"], {"database": "ok", "outbox": "stuck",
                                              "backends": "ok"})
            self.assertEqual(len(body["problems"]), 1)
            self.assertGreaterEqual(scrape(self.server.port).get(
                "ltibadges_outbox_oldest_due_age_seconds", outbox="awards"), 1)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        wait_for(lambda: self.health() == (200, "ok\n"), "the outbox going again")


class Messages(unittest.TestCase):
    """Errors say their cause without LTIBADGES_DEBUG: the database's path and sqlite's (or the
    system's) reason, the errno text of a port that cannot be bound. (The image that is neither
    PNG nor SVG: test_svg and test_editor.)"""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-msg-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def serve(self, *args, user=None):
        binary = lt.BIN
        if user is not None:
            # the build may sit where that user cannot go (a clone in /root): run a copy
            # with the translations beside it, where the program looks for them
            binary = os.path.join(self.tmp, "ltibadges")
            shutil.copy(lt.BIN, binary)
            os.chmod(binary, 0o755)
            locale = os.path.join(os.path.dirname(lt.BIN), "locale")
            if os.path.isdir(locale):
                shutil.copytree(locale, os.path.join(self.tmp, "locale"))
        return subprocess.run([binary, "serve"] + list(args), capture_output=True, text=True,
                              env=lt.clean_env(), timeout=60, user=user, cwd=self.tmp)

    def test_database_cannot_be_opened(self):
        missing = os.path.join(self.tmp, "no", "such", "dir", "x.db")
        p = self.serve("--db", missing, "--listen", "127.0.0.1:0")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "ltibadges: database '%s': cannot create the database: "
                                   "No such file or directory\n" % missing)
        garbage = os.path.join(self.tmp, "garbage.db")
        with open(garbage, "w") as f:
            f.write("this is not a database, but it is long enough to have a header. " * 20)
        for args in (("serve",), ("consumer", "list")):
            p = lt.run_cli(*args, "--db", garbage, "--listen", "127.0.0.1:0") \
                if args[0] == "serve" else lt.run_cli(*args, "--db", garbage)
            self.assertEqual(p.returncode, 1, args)
            self.assertIn("database '%s'" % garbage, p.stderr)
            self.assertIn("file is not a database", p.stderr)

    def test_port_in_use(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            db = os.path.join(self.tmp, "p.db")
            p = self.serve("--db", db, "--listen", "127.0.0.1:%d" % port)
            self.assertEqual(p.returncode, 1)
            self.assertEqual(p.stderr, "ltibadges: cannot listen on 127.0.0.1:%d: Address "
                                       "already in use\n" % port)
            cfg = os.path.join(self.tmp, "m.ini")
            with open(cfg, "w") as f:
                f.write("[server]\nmetrics_listen = 127.0.0.1:%d\n" % port)
            p = self.serve("--db", db, "--listen", "127.0.0.1:0", "--config", cfg)
            self.assertEqual(p.returncode, 1)
            self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % port,
                          p.stderr)

    def test_privileged_port(self):
        # below net.ipv4.ip_unprivileged_port_start, as a user without CAP_NET_BIND_SERVICE
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            if int(f.read()) <= 1:
                self.skipTest("every port is unprivileged on this machine")
        user = None
        if os.getuid() == 0:
            user = "nobody"
            os.chmod(self.tmp, 0o777)
        p = self.serve("--db", os.path.join(self.tmp, "q.db"), "--listen", "127.0.0.1:1",
                       user=user)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stderr, "ltibadges: cannot listen on 127.0.0.1:1: Permission denied\n")


if __name__ == "__main__":
    unittest.main()
