#!/usr/bin/python3
"""Awards through a Badgr-compatible platform: how fast `ltibadges serve` issues
them to the Badgr contract fake (tests/integration/badgrfake.py, 127.0.0.1), next
to the fake's own ceiling measured in the same run, and whether hosted awards
slow down while a remote platform is busy.

    bench/run-badgr.py [BUILD_DIR]        (default ./build; Debian's python3)

Environment: BENCH_LAUNCHES (first launches per phase, default 6000: each
learner's first launch in a course earns a consumer-wide enrollment badge, about
5 000 awards), BENCH_KEEP=1 keeps the temporary directory.

Four phases, each with its own consumers and learners (bench/presign's start of
term: first launches, sent on 8 keep-alive connections):
  1. hosted alone: the awards of consumer B go to the built-in issuer;
  2. Badgr alone: consumer A's badge is on [backend.bench] (type badgr, rate
     1000/s): awards/s from the first launch to the last award issued, requests
     the fake saw per award (a token, a BadgeClass, then one POST per award),
     server CPU per award while the queue drains (all threads, and the remote
     backend's thread lb-b-bench), peak RSS;
  3. both at once (consumers C hosted and D Badgr): hosted awards/s next to
     phase 1's;
  4. hosted alone again (E), once the queue drained: phase 3's control, on
     the database phases 1 to 3 grew (phase 1's was empty).
Phases 3 and 4 run BENCH_ROUNDS times (default 3), one after the other, each
round with consumers of its own: the ratio of each round, and their median. For
each phase the CPU of every process over it, in cores: serve's hosted side
(every thread but the Badgr backend's), serve's Badgr thread, the fake, and this
script's senders; and serve's CPU per hosted award (its launch included). On two
cores the fake and the Badgr thread take CPU the hosted launches then do not
get: when serve's CPU per hosted award is the same in both phases, what hosted
awards lose is that CPU, not a lock or a disk flush they wait for.
The ceiling: this script POSTing assertions to the fake one after another,
each on a connection of its own, as the backend's single thread does.
Only 127.0.0.1 is used; nothing is installed.
"""
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
LB = os.path.join(BUILD, "ltibadges")
PRESIGN = os.path.join(BUILD, "bench", "presign")
LAUNCHES = int(os.environ.get("BENCH_LAUNCHES", "6000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'


def die(msg):
    print("run-badgr: " + msg, file=sys.stderr)
    sys.exit(1)


def note(msg):
    print("run-badgr: " + msg, file=sys.stderr, flush=True)


def ticks(pid, tid=None):
    """utime + stime in clock ticks of a process or one of its threads."""
    path = "/proc/%d/task/%d/stat" % (pid, tid) if tid else "/proc/%d/stat" % pid
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def thread_named(pid, name):
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
            if f.read().strip() == name:
                return int(t)
    return None


def vm_hwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Fake:
    """The Badgr fake in its own process (so that this script's client does not
    share its interpreter)."""

    def __init__(self, tmp):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "integration", "badgrfake.py")],
            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "fake.err"), "w"), text=True)
        line = self.proc.stdout.readline()
        if not line:
            die("the fake did not start")
        self.info = json.loads(line)
        u = urllib.parse.urlsplit(self.info["base_url"])
        self.host, self.port = u.hostname, u.port

    def conn(self):
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        c.connect()
        # as libcurl does: without it, each request waits out a delayed ACK (Nagle)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return c

    def state(self):
        c = self.conn()
        c.request("GET", "/_fake/state")
        doc = json.loads(c.getresponse().read())
        c.close()
        return doc

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def fake_requests(fake):
    """How many requests the fake answered (its request log)."""
    st = fake.state()
    for key in ("records", "requests"):
        if key in st:
            return len(st[key])
    die("the fake's state has no request log: %s" % sorted(st))


def ceiling(fake, n):
    """Assertions a second, one after another, each POST on a connection of its own."""
    info = fake.info
    c = fake.conn()
    form = urllib.parse.urlencode({"grant_type": "password", "client_id": "public",
                                   "username": info["username"], "password": info["password"],
                                   "scope": "rw:issuer"})
    c.request("POST", "/o/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    tok = json.loads(r.read())
    if r.status != 200:
        die("the fake refused a token: %s" % tok)
    auth = {"Authorization": "Bearer " + tok["access_token"], "Content-Type": "application/json"}
    import base64
    bc = {"name": "Ceiling", "description": "d", "criteriaNarrative": "c",
          "image": "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()}
    c.request("POST", "/v2/issuers/%s/badgeclasses" % info["issuer"], json.dumps(bc), auth)
    r = c.getresponse()
    doc = json.loads(r.read())
    if r.status != 201:
        die("the fake refused a BadgeClass: %s" % doc)
    bcid = doc["result"][0]["entityId"]
    c.close()
    t0 = time.monotonic()
    for i in range(n):
        # a connection of its own, as the backend sends each POST (backends/badgr.c)
        c = fake.conn()
        body = {"recipient": {"identity": "ceiling%d@example.edu" % i, "type": "email",
                              "hashed": True},
                "notify": False, "allowDuplicateAwards": False,
                "evidence": [{"narrative": "bench"}]}
        c.request("POST", "/v2/badgeclasses/%s/assertions" % bcid, json.dumps(body), auth)
        r = c.getresponse()
        r.read()
        if r.status != 201:
            die("the fake refused an assertion: %d" % r.status)
        c.close()
    dt = time.monotonic() - t0
    return n / dt


class Server:
    def __init__(self, tmp, fake):
        self.tmp = tmp
        self.db = os.path.join(tmp, "bench.db")
        info = fake.info
        self.ini = os.path.join(tmp, "ltibadges.ini")
        with open(self.ini, "w") as f:
            f.write("[server]\naccess_log = off\n"
                    "[backend.bench]\ntype = badgr\nbase_url = %s\nallow_loopback = true\n"
                    "username = %s\npassword = %s\nissuer = %s\nrate = 1000\n"
                    % (info["base_url"], info["username"], info["password"], info["issuer"]))
        self.out = open(os.path.join(tmp, "server.out"), "w+")
        self.proc = subprocess.Popen(
            [LB, "serve", "--demo", "--config", self.ini, "--db", self.db, "--listen",
             "127.0.0.1:0"], stdout=self.out, stderr=open(os.path.join(tmp, "server.err"), "w"))
        deadline = time.monotonic() + 30
        text = ""
        while "launch URL:" not in text:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                die("serve did not start: " + open(os.path.join(tmp, "server.err")).read())
            time.sleep(0.05)
            self.out.seek(0)
            text = self.out.read()
        self.url = re.search(r"launch URL:\s+(\S+)", text).group(1)
        self.demo_key = re.search(r"consumer key:\s+(\S+)", text).group(1)
        self.demo_secret = re.search(r"shared secret:\s+(\S+)", text).group(1)
        self.pid = self.proc.pid

    def cli(self, *args):
        p = subprocess.run([LB] + list(args) + ["--db", self.db, "--config", self.ini],
                           capture_output=True, text=True)
        if p.returncode != 0:
            die("ltibadges %s: %s" % (" ".join(args), p.stderr.strip()))
        return p.stdout

    def consumer(self, name, backend=None):
        args = ["consumer", "add", name] + (["--backend", backend] if backend else [])
        out = self.cli(*args)
        key = re.search(r"key=(\S+)", out).group(1)
        secret = re.search(r"secret=(\S+)", out).group(1)
        badge = os.path.join(self.tmp, "badge.svg")
        with open(badge, "wb") as f:
            f.write(SVG)
        self.cli("badge", "create", "--consumer", key, "--name", "Welcome " + name,
                 "--description", "Joined a course", "--image", badge, "--rule", "enrollment")
        return key, secret

    def counts(self):
        """{(backend, state): n} of the awards, read from the database (read only)."""
        db = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
        try:
            rows = db.execute("SELECT b.backend, a.state, count(*) FROM awards a "
                              "JOIN badge_classes b ON b.id = a.badge_class_id "
                              "GROUP BY 1, 2").fetchall()
        finally:
            db.close()
        return {(b, s): n for b, s, n in rows}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def sign(key, secret, url, start, out):
    subprocess.run([PRESIGN, "--mix", "term", "--start", str(start), key, secret, url,
                    str(LAUNCHES), out, "5"], check=True, stdout=subprocess.DEVNULL)


def send(url, bodies, conns=8):
    """POSTs every line of `bodies` once, on `conns` keep-alive connections;
    dies unless each is answered 303."""
    u = urllib.parse.urlsplit(url)
    with open(bodies) as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    bad = []

    def worker(k):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        for body in lines[k::conns]:
            c.request("POST", u.path, body,
                      {"Content-Type": "application/x-www-form-urlencoded"})
            r = c.getresponse()
            r.read()
            if r.status != 303:
                bad.append(r.status)
        c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if bad:
        die("%d launches were not answered 303 (e.g. %d)" % (len(bad), bad[0]))


def drained(srv, backend, want_min):
    """Waits until `backend` has no queued or issuing award and at least want_min
    issued; returns (issued, failed, when)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        c = srv.counts()
        busy = sum(n for (b, s), n in c.items() if b == backend and s in ("queued", "issuing"))
        issued = c.get((backend, "issued"), 0)
        if busy == 0 and issued >= want_min:
            return issued, c.get((backend, "failed"), 0), time.monotonic()
        time.sleep(0.02)
    die("awards of %s did not drain: %s" % (backend, srv.counts()))


def launch(srv, consumer):
    """Signs a consumer's launches and sends them; returns when every one was
    answered."""
    (key, secret), bodies = consumer
    sign(key, secret, srv.url, 0, bodies)
    send(srv.url, bodies)


def issued(srv, backend):
    return srv.counts().get((backend, "issued"), 0)


def main():
    for b in (LB, PRESIGN):
        if not os.access(b, os.X_OK):
            die("%s not found: cmake --build %s" % (b, BUILD))
    tmp = tempfile.mkdtemp(prefix="ltibadges-badgr.")
    fake = srv = None
    try:
        fake = Fake(tmp)
        note("the fake's ceiling")
        ceil_before = ceiling(fake, 2000)
        srv = Server(tmp, fake)
        # consumers: B hosted (phase 1), A Badgr (2); each round of phases 3 and 4: C hosted
        # and D Badgr (3), E hosted (4)
        names = [("B", None), ("A", "bench")]
        for r in range(ROUNDS):
            names += [("C%d" % r, None), ("D%d" % r, "bench"), ("E%d" % r, None)]
        keys = {n: srv.consumer(n, backend) for n, backend in names}
        # signed just before they are sent: their timestamps are the time of the click
        bodies = {n: (keys[n], os.path.join(tmp, "launches-%s.txt" % n)) for n, _ in names}

        hz = os.sysconf("SC_CLK_TCK")

        # 1: hosted alone: from the first launch to the last award issued
        note("hosted alone")
        t0 = time.monotonic()
        launch(srv, bodies["B"])
        n1, _, t1 = drained(srv, "hosted", 1)
        hosted1 = (n1, t1 - t0)

        # 2: Badgr alone; CPU per award over the drain, after the launches were answered
        note("Badgr alone")
        req0 = fake_requests(fake)
        with open("/proc/%d/clear_refs" % srv.pid, "w") as f:
            f.write("5")
        t0 = time.monotonic()
        launch(srv, bodies["A"])
        cpu_sent, issued_sent = ticks(srv.pid), issued(srv, "bench")
        tid = thread_named(srv.pid, "lb-b-bench")
        thr_sent = ticks(srv.pid, tid) if tid else 0
        n2, _, t2 = drained(srv, "bench", 1)
        cpu_end, thr_end = ticks(srv.pid), (ticks(srv.pid, tid) if tid else 0)
        badgr = (n2, t2 - t0)
        drain_awards = n2 - issued_sent
        rss = vm_hwm(srv.pid)
        req1 = fake_requests(fake)

        def cpu_now():
            """CPU ticks so far: serve, its Badgr thread, the fake, this script (senders)."""
            me = os.times()
            return (ticks(srv.pid), ticks(srv.pid, tid) if tid else 0, ticks(fake.proc.pid),
                    (me.user + me.system) * hz)

        def hosted_phase(consumer):
            """A consumer's launches, to its last hosted award: (awards, seconds, cores over
            the phase: serve's hosted side, its Badgr thread, the fake, this script; serve's
            CPU per hosted award in us, its Badgr thread's left out)."""
            before = issued(srv, "hosted")
            c0, t0 = cpu_now(), time.monotonic()
            launch(srv, bodies[consumer])
            n, _, t = drained(srv, "hosted", before + 1)
            c1 = cpu_now()
            d = [(b - a) / hz for a, b in zip(c0, c1)]
            n -= before
            cores = ((d[0] - d[1]) / (t - t0), d[1] / (t - t0), d[2] / (t - t0), d[3] / (t - t0))
            return n, t - t0, cores, (d[0] - d[1]) * 1e6 / n

        rounds = []
        for r in range(ROUNDS):
            # 3: hosted launches while the Badgr queue of consumer D drains
            note("round %d: hosted while Badgr drains" % (r + 1))
            launch(srv, bodies["D%d" % r])
            p3 = hosted_phase("C%d" % r)
            busy = sum(n for (b, s_), n in srv.counts().items()
                       if b == "bench" and s_ in ("queued", "issuing"))
            drained(srv, "bench", 1)
            # 4: hosted alone again, on the database the phases before grew: 3's control
            note("round %d: hosted alone" % (r + 1))
            p4 = hosted_phase("E%d" % r)
            rounds.append((p3, p4, busy))
        ceil_after = ceiling(fake, 2000)

        ceil = min(ceil_before, ceil_after)
        rate2 = badgr[0] / badgr[1]
        h1 = hosted1[0] / hosted1[1]
        print("| target | awards | seconds | awards/s | x the fake's ceiling |")
        print("|---|---:|---:|---:|---:|")
        print("| fake's ceiling (before, after) | 2000 | - | %.0f, %.0f | 1 |"
              % (ceil_before, ceil_after))
        print("| Badgr through serve (first launch to last award) | %d | %.2f | %.0f | %.3f |"
              % (badgr[0], badgr[1], rate2, rate2 / ceil))
        print("| hosted alone (fresh database) | %d | %.2f | %.0f | - |"
              % (hosted1[0], hosted1[1], h1))
        print()
        print("requests the fake answered per Badgr award: %.3f (%d for %d awards: token and "
              "BadgeClass included)" % ((req1 - req0) / badgr[0], req1 - req0, badgr[0]))
        if drain_awards > 0:
            print("server CPU per Badgr award while the queue drained: %.0f us (all threads), "
                  "%.0f us (lb-b-bench), over %d awards"
                  % ((cpu_end - cpu_sent) * 1e6 / hz / drain_awards,
                     (thr_end - thr_sent) * 1e6 / hz / drain_awards, drain_awards))
        print("peak RSS (phase 2): %.1f MiB" % rss)
        print()
        print("| round | phase | hosted awards/s | serve's CPU per hosted award | cores: serve's "
              "hosted side, its Badgr thread, the fake, the senders | Badgr awards queued at "
              "the end |")
        print("|---:|---|---:|---:|---|---:|")
        ratios = []
        for r, (p3, p4, busy) in enumerate(rounds):
            for name, p, q in (("hosted while Badgr drains", p3, busy),
                               ("hosted alone", p4, 0)):
                print("| %d | %s | %.0f | %.0f us | %.2f, %.2f, %.2f, %.2f | %d |"
                      % (r + 1, name, p[0] / p[1], p[3], p[2][0], p[2][1], p[2][2], p[2][3], q))
            ratios.append(((p3[0] / p3[1]) / (p4[0] / p4[1]), p3[3] / p4[3]))
        mid = len(ratios) // 2
        print()
        print("hosted awards/s while Badgr drains / alone after it, per round: %s; median %.2f"
              % (", ".join("%.2f" % x[0] for x in ratios), sorted(x[0] for x in ratios)[mid]))
        print("serve's CPU per hosted award while Badgr drains / alone, per round: %s; "
              "median %.2f" % (", ".join("%.2f" % x[1] for x in ratios),
                               sorted(x[1] for x in ratios)[mid]))
    finally:
        if srv:
            srv.stop()
        if fake:
            fake.stop()
        if os.environ.get("BENCH_KEEP") == "1":
            print("kept " + tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
