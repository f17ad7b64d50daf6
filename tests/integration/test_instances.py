#!/usr/bin/python3
"""Several instances, one truth (issue 23, sections 2 and 3): three `ltibadges serve` on one
PostgreSQL database (the throwaway server of LTIBADGES_TEST_DATABASE_URL, a database of
this test's own) behind Debian's haproxy, round robin on loopback, its configuration
written here.

- A launch on instance A, its page on B, the page's form posted on C (the session and its
  CSRF secret are rows of the database); launches and pages through haproxy land on every
  instance and all work.
- A launch replayed on the other instances is refused there (the nonce is the database's).
- A consumer's secret rotated, or the consumer disabled, through the CLI: launches signed
  with the old secret (or any) are refused on every instance within a second, each
  instance having served that consumer from its cache just before (the test waits for the
  state, with a deadline).
- Two instances relaunching the same 200 learners at once, one from the first, the other
  from the last: no batch deadlocks and runs again (a relaunch that changes nothing takes no
  row lock; each instance logs every transaction it runs again).
- The public page's recipient check counts on the database: a client's checks spread
  over the three instances are refused after the tenth, not the thirtieth.
- Awards (LTIBADGES_INSTANCES_AWARDS, 2 000 by default), earned by launches through haproxy
  in a course with an enrollment badge of the built-in issuer, while one instance is killed
  with SIGKILL every few seconds and started again: every award is issued exactly once (one
  award per learner, each issued, its own assertion), read through `award list --json`.
  [awards] lease is short (5 s) so that what a killed instance had claimed is taken by
  another instance within the test's time.

Without LTIBADGES_TEST_DATABASE_URL the tests are skipped, saying so, except under
CI=true, where that is a failure; without haproxy they fail (scripts/deps.sh installs it)."""
import concurrent.futures
import html
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402

SERVER_URL = os.environ.get("LTIBADGES_TEST_DATABASE_URL", "")
need_server = lt.require_pg_server
psql = lt.psql
with_database = lt.pg_url_with_database
HAPROXY = "/usr/sbin/haproxy"
AWARDS = int(os.environ.get("LTIBADGES_INSTANCES_AWARDS", "2000"))
# how often an instance is killed while the awards are launched and issued (seconds)
KILL_EVERY = 3.0
LEASE = 5
WAIT_ISSUED = 600





def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def form_fields(page_text, action):
    """The hidden inputs of the <form> whose action ends with `action`: name -> value."""
    m = re.search(r'<form[^>]*action="[^"]*%s"[^>]*>(.*?)</form>' % re.escape(action),
                  page_text, re.S)
    assert m, "no form posting to %s" % action
    fields = {}
    for tag in re.findall(r'<input type="hidden"[^>]*>', m.group(1)):
        name = re.search(r'name="([^"]*)"', tag).group(1)
        fields[html.unescape(name)] = html.unescape(re.search(r'value="([^"]*)"', tag).group(1))
    return fields


class Instance:
    """One `serve` on a fixed port, so that it can be killed and started again there."""

    def __init__(self, name, workdir, config, public_url):
        self.name = name
        self.port = free_port()
        self.workdir = workdir
        self.config = config
        self.public_url = public_url
        self.server = None
        self.logs = []

    def start(self):
        self.server = lt.Server(self.workdir, db=False, config=self.config,
                                public_url=self.public_url,
                                listen="127.0.0.1:%d" % self.port).start()
        self.logs.append(self.server.stderr_path)
        return self

    def kill(self):
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(timeout=10)
        self.server._close()

    def stderr(self):
        text = ""
        for p in self.logs:
            with open(p, "rb") as f:
                text += f.read().decode("utf-8", "replace")
        return text

    def request(self, method, path, **kw):
        return lt.http_request(self.port, method, path, **kw)


class Instances(unittest.TestCase):
    """Three instances and haproxy for the class, on a database of its own."""

    @classmethod
    def setUpClass(cls):
        need_server()
        if not os.path.exists(lt.BIN):
            raise AssertionError("no binary at %s (set LTIBADGES_BIN)" % lt.BIN)
        if not os.path.exists(HAPROXY):
            raise AssertionError("no %s: sh scripts/deps.sh test installs haproxy" % HAPROXY)
        cls.tmp = tempfile.mkdtemp(prefix="ltibadges-inst-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.dbname = "lbi_%d_%s" % (os.getpid(), secrets.token_hex(3))
        psql(SERVER_URL, "CREATE DATABASE %s" % cls.dbname)
        cls.addClassCleanup(psql, SERVER_URL, "DROP DATABASE IF EXISTS %s WITH (FORCE)"
                            % cls.dbname)
        cls.db = with_database(SERVER_URL, cls.dbname)
        cls.cli_ok("db", "migrate")
        cls.key, cls.secret = cls.consumer("Shared LMS")
        cls.lb_port = free_port()
        cls.public_url = "http://127.0.0.1:%d" % cls.lb_port
        cls.config = os.path.join(cls.tmp, "tool.ini")
        with open(cls.config, "w") as f:
            f.write("[database]\nurl = %s\npool = 6\n[awards]\nlease = %d\n"
                    "[server]\ntrusted_proxies = 127.0.0.1\n" % (cls.db, LEASE))
        cls.instances = [Instance(n, cls.tmp, cls.config, cls.public_url) for n in "ABC"]
        for i in cls.instances:
            i.start()
            cls.addClassCleanup(lambda i=i: i.server.kill())
        cls.start_haproxy()

    @classmethod
    def start_haproxy(cls):
        cfg = os.path.join(cls.tmp, "haproxy.cfg")
        servers = "".join("    server %s 127.0.0.1:%d check\n" % (i.name, i.port)
                          for i in cls.instances)
        with open(cfg, "w") as f:
            f.write("global\n    maxconn 512\n"
                    "defaults\n    mode http\n    timeout connect 1s\n"
                    "    timeout client 30s\n    timeout server 30s\n"
                    "    retries 3\n    option redispatch\n"
                    "frontend lb\n    bind 127.0.0.1:%d\n    default_backend instances\n"
                    "backend instances\n    balance roundrobin\n"
                    "    option httpchk GET /healthz\n"
                    "    default-server inter 200ms fall 1 rise 1\n%s" % (cls.lb_port, servers))
        cls.haproxy_log = open(os.path.join(cls.tmp, "haproxy.log"), "wb")
        cls.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=cls.haproxy_log,
                                       stderr=subprocess.STDOUT)
        cls.addClassCleanup(cls.haproxy_log.close)
        cls.addClassCleanup(cls.haproxy.wait, 10)
        cls.addClassCleanup(cls.haproxy.kill)
        deadline = time.monotonic() + 20
        while True:
            try:
                if lt.http_request(cls.lb_port, "GET", "/healthz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            if cls.haproxy.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(cls.tmp, "haproxy.log"), "rb") as f:
                    raise AssertionError("haproxy did not answer: %r" % f.read())
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        for i in cls.instances:
            rc, _ = i.server.stop()
            if rc != 0:
                raise AssertionError("instance %s exited with %r on SIGTERM: %s"
                                     % (i.name, rc, i.stderr()[-2000:]))

    # ---- helpers

    @classmethod
    def cli_ok(cls, *args):
        p = lt.db_cli(cls.db, *args, timeout=120)
        if p.returncode != 0:
            raise AssertionError("ltibadges %s failed (%d): %s"
                                 % (" ".join(args), p.returncode, p.stderr))
        return p

    @classmethod
    def consumer(cls, name):
        kv = lt.parse_kv(cls.cli_ok("consumer", "add", name).stdout)
        return kv["key"], kv["secret"]

    def signed(self, params, key=None, secret=None):
        return lt.sign(self.public_url + "/lti/launch", params, key or self.key,
                       secret or self.secret)

    def launch_on(self, inst, params, key=None, secret=None):
        """A launch signed for the public (haproxy's) launch URL, sent to `inst` (an Instance,
        or None for haproxy)."""
        body = self.signed(params, key, secret)
        port = inst.port if inst else self.lb_port
        return lt.http_request(port, "POST", "/lti/launch", body=body.encode(),
                               headers={"Content-Type": lt.FORM}), body

    def page_path(self, resp):
        self.assertEqual(resp.status, 303, resp)
        loc = resp.header("Location")
        self.assertTrue(loc.startswith(self.public_url + "/badges?s="), loc)
        return loc[len(self.public_url):]

    def launches_seen(self, inst):
        return inst.stderr().count("path=/lti/launch ")

    # ---- tests

    def test_a_launch_on_a_its_page_on_b_its_form_on_c(self):
        a, b, c = self.instances
        ctx = "course-" + lt.hex_id(3)
        resp, _ = self.launch_on(a, lt.base_launch(user_id="prof-abc", context_id=ctx,
                                                  roles="Instructor"))
        path = self.page_path(resp)
        page = b.request("GET", path)
        self.assertEqual(page.status, 200, page)
        self.assertIn("Course settings", page.text)
        fields = form_fields(page.text, "/badges/settings")
        fields.update(enabled="1", pass_percent="70")
        saved = c.request("POST", "/badges/settings", body=urlencode(fields).encode(),
                          headers={"Content-Type": lt.FORM})
        self.assertEqual(saved.status, 303, saved)
        self.assertIn("m=saved", saved.header("Location"))
        # what C saved, read on A: the checkbox checked, the pass mark 70
        again = a.request("GET", saved.header("Location")[len(self.public_url):])
        self.assertEqual(again.status, 200, again)
        self.assertIn("Saved.", again.text)
        self.assertRegex(again.text, r'id="enabled" name="enabled" value="1"\s*checked')
        self.assertIn('value="70"', again.text)
        # a CSRF token of that session is one of the database's: a wrong one is refused on B
        bad = dict(fields, csrf="0" * 64)
        refused = b.request("POST", "/badges/settings", body=urlencode(bad).encode(),
                            headers={"Content-Type": lt.FORM})
        self.assertEqual(refused.status, 403, refused)

    def test_a_replay_is_refused_on_the_other_instances(self):
        a, b, c = self.instances
        resp, body = self.launch_on(a, lt.base_launch(user_id="replayed"))
        self.assertEqual(resp.status, 303, resp)
        for inst in (b, c, a):
            again = inst.request("POST", "/lti/launch", body=body.encode(),
                                 headers={"Content-Type": lt.FORM})
            self.assertEqual(again.status, 401, (inst.name, again))

    def test_launches_and_pages_spread_over_every_instance(self):
        before = [self.launches_seen(i) for i in self.instances]
        for n in range(12):
            resp, _ = self.launch_on(None, lt.base_launch(user_id="spread-%d" % n))
            page = lt.http_request(self.lb_port, "GET", self.page_path(resp))
            self.assertEqual(page.status, 200, page)
        after = [self.launches_seen(i) for i in self.instances]
        # round robin over launches and pages: each instance had some of the 12 launches
        for inst, x, y in zip(self.instances, before, after):
            self.assertGreater(y, x, "instance %s served no launch" % inst.name)

    def wait_refused_everywhere(self, key, secret, what):
        """Launches signed with `secret` are refused (401) on every instance within a second
        of now; returns the seconds it took. Each try is a fresh launch (a new nonce)."""
        t0 = time.monotonic()
        pending = list(self.instances)
        while pending:
            inst = pending[0]
            resp, _ = self.launch_on(inst, lt.base_launch(user_id="rot-" + lt.hex_id(4)),
                                     key, secret)
            if resp.status == 401:
                pending.pop(0)
            else:
                self.assertEqual(resp.status, 303, resp)
            self.assertLess(time.monotonic() - t0, 1.0,
                            "%s: instance %s still accepts after a second" % (what, inst.name))
        return time.monotonic() - t0

    def test_a_rotated_or_disabled_consumer_is_refused_everywhere_within_a_second(self):
        key, secret = self.consumer("Rotating LMS")
        # every instance serves the consumer from its cache first
        for inst in self.instances:
            for _ in range(2):
                resp, _ = self.launch_on(inst, lt.base_launch(user_id="warm-" + lt.hex_id(4)),
                                         key, secret)
                self.assertEqual(resp.status, 303, (inst.name, resp))
        new = lt.parse_kv(self.cli_ok("consumer", "rotate", key).stdout)["secret"]
        self.assertNotEqual(new, secret)
        self.wait_refused_everywhere(key, secret, "rotated")
        for inst in self.instances:
            resp, _ = self.launch_on(inst, lt.base_launch(user_id="new-" + lt.hex_id(4)),
                                     key, new)
            self.assertEqual(resp.status, 303, (inst.name, resp))
        self.cli_ok("consumer", "disable", key)
        self.wait_refused_everywhere(key, new, "disabled")

    def retries_logged(self, inst, since):
        """The batches `inst` ran again (a deadlock, a lost connection) after offset `since` of
        its log."""
        return [line for line in inst.stderr()[since:].splitlines()
                if "running a transaction again" in line]

    def test_relaunches_in_opposite_orders_on_two_instances_never_deadlock(self):
        # Two instances relaunching the same learners, one from the first, the other from the
        # last, many at once: their batches meet on the same users' rows in opposite orders.
        # A relaunch that changes nothing takes no row lock, so neither batch waits for the
        # other: no deadlock, no batch run again (store_tx_backoff logs each).
        a, b, _ = self.instances
        run = lt.hex_id(3)
        users = [dict(user_id="opp-%s-%d" % (run, i), context_id=None,
                      resource_link_id="opp-%s-%d" % (run, i), lis_person_name_full="Learner %d" % i)
                 for i in range(200)]

        def launch(inst, params):
            resp, _ = self.launch_on(inst, lt.base_launch(**params))
            return inst.name, params["user_id"], resp.status

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            # the first launches through A only: new rows, each made once
            for name, user, status in pool.map(lambda u: launch(a, u), users):
                self.assertEqual(status, 303, (name, user))
        since = [len(i.stderr()) for i in (a, b)]
        jobs = []
        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            for _ in range(3):
                for i in range(len(users)):
                    jobs.append(pool.submit(launch, a, users[i]))
                    jobs.append(pool.submit(launch, b, users[-1 - i]))
            for j in jobs:
                name, user, status = j.result()
                self.assertEqual(status, 303, (name, user))
        retried = self.retries_logged(a, since[0]) + self.retries_logged(b, since[1])
        self.assertEqual(retried, [], "batches ran again")

    def test_recipient_checks_count_over_every_instance(self):
        ctx = "check-" + lt.hex_id(3)
        self.cli_ok("context", "enable", "--consumer", self.key, "--context", ctx)
        png = os.path.join(self.tmp, "badge.png")
        with open(png, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        slug = lt.parse_kv(self.cli_ok(
            "badge", "create", "--consumer", self.key, "--name", "Checked", "--description",
            "Checked", "--image", png, "--rule", "manual").stdout)["slug"]
        resp, _ = self.launch_on(None, lt.base_launch(
            user_id="checked", context_id=ctx, lis_person_contact_email_primary="c@example.edu"))
        self.assertEqual(resp.status, 303, resp)
        self.cli_ok("award", "grant", "--badge", slug, "--consumer", self.key, "--user",
                    "checked")
        uid = self.wait_issued_uid(slug)
        answers = []
        for n in range(11):
            inst = self.instances[n % 3]
            answers.append(inst.request(
                "POST", "/badges/check/" + uid,
                body=urlencode({"email": "guess%d@example.edu" % n}).encode(),
                headers={"Content-Type": lt.FORM, "X-Forwarded-For": "203.0.113.9"}).status)
        self.assertEqual(answers, [200] * 10 + [429])

    def wait_issued_uid(self, slug):
        deadline = time.monotonic() + 60
        while True:
            got = lt.cli_json(self.db, "award", "list", "--badge", slug)
            if got and got[0]["state"] == "issued":
                return got[0]["uid"]
            self.assertLess(time.monotonic(), deadline, got)
            time.sleep(0.1)

    # ---- awards while instances die

    def launch_until_recorded(self, user, ctx, errors):
        """Launches `user` through haproxy until one is answered 303 (a launch whose instance
        was killed before answering is sent again, freshly signed: its first try may have
        been recorded, and its replay would be refused)."""
        params = lt.base_launch(user_id=user, context_id=ctx, roles="Learner",
                                lis_person_contact_email_primary=user + "@example.edu")
        for _ in range(50):
            try:
                resp, _ = self.launch_on(None, params)
            except OSError as e:
                errors.append(repr(e))
                continue
            if resp.status == 303:
                return True
            errors.append(resp.status)
            time.sleep(0.05)
        return False

    def killer(self, stop, kills):
        rng = random.Random(23)
        # the first a second in, while the launches run; then every KILL_EVERY seconds
        wait = 1.0
        while not stop.wait(wait):
            wait = KILL_EVERY
            inst = rng.choice(self.instances)
            inst.kill()
            kills.append(inst.name)
            inst.start()

    def test_awards_issued_exactly_once_while_instances_are_killed(self):
        ctx = "many-" + lt.hex_id(3)
        self.cli_ok("context", "enable", "--consumer", self.key, "--context", ctx)
        png = os.path.join(self.tmp, "many.png")
        with open(png, "wb") as f:
            f.write(lt.png_bytes(8, 8))
        slug = lt.parse_kv(self.cli_ok(
            "badge", "create", "--consumer", self.key, "--context", ctx, "--name", "Enrolled",
            "--description", "Enrolled", "--image", png, "--rule", "enrollment",
            "--backend", "hosted").stdout)["slug"]
        users = ["learner-%04d" % n for n in range(AWARDS)]
        stop, kills, errors = threading.Event(), [], []
        killer = threading.Thread(target=self.killer, args=(stop, kills))
        killer.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                done = list(pool.map(lambda u: self.launch_until_recorded(u, ctx, errors),
                                     users))
            self.assertTrue(all(done), "launches never answered: %d; errors %r"
                            % (done.count(False), errors[:10]))
            deadline = time.monotonic() + WAIT_ISSUED
            while True:
                awards = lt.cli_json(self.db, "award", "list", "--badge", slug)
                issued = sum(1 for a in awards if a["state"] == "issued")
                if issued == len(users) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        finally:
            stop.set()
            killer.join()
        self.assertGreater(len(kills), 0)
        # exactly once: one award per learner, each issued, each with its own assertion
        self.assertEqual(sorted(a["user"] for a in awards), users)
        states = {}
        for a in awards:
            states[a["state"]] = states.get(a["state"], 0) + 1
        self.assertEqual(states, {"issued": len(users)})
        self.assertEqual(len({a["uid"] for a in awards}), len(users))
        self.assertEqual(len({a["assertion_url"] for a in awards}), len(users))
        for a in awards:
            self.assertTrue(a["assertion_url"].startswith(self.public_url + "/"), a)
        # a few through their public URL, on each instance
        for n, a in enumerate(awards[:: max(1, len(awards) // 9)]):
            inst = self.instances[n % 3]
            r = inst.request("GET", a["assertion_url"][len(self.public_url):])
            self.assertEqual(r.status, 200, (inst.name, r))
            self.assertEqual(json.loads(r.body)["id"], a["assertion_url"])
        sys.stderr.write("\n%d awards, %d kills (%s), %d launch retries\n"
                         % (len(users), len(kills), "".join(kills), len(errors)))


if __name__ == "__main__":
    lt.main(skip_status=77)
