#!/usr/bin/python3
"""Awards through a self-hosted BadgeKit API: what signing a request costs, how
fast `ltibadges serve` issues awards to the BadgeKit contract fake
(tests/integration/badgekitfake.py, 127.0.0.1) next to the fake's own ceiling
measured in the same run, and whether hosted awards slow down meanwhile.

    bench/run-badgekit.py [BUILD_DIR]        (default ./build; Debian's python3)

The phases, the environment (BENCH_LAUNCHES, BENCH_KEEP) and the helpers are
bench/run-badgr.py's, with [backend.bench] of type badgekit (master key, the
fake's issuer scope, rate 1000/s) in place of Badgr:
  0. signing: bench/badgekit-sign, microseconds per token (POST and GET);
  1. hosted alone;
  2. BadgeKit alone: awards/s from the first launch to the last award issued,
     requests the fake saw per award (a look-up and a create of the badge once,
     then one signed POST per award), server CPU per award while the queue
     drains, peak RSS;
  3. hosted while BadgeKit drains.
The ceiling: this script POSTing signed instances to the fake one after
another, each on a connection of its own, as the backend's single thread does
(signed in Python here, checked in Python by the fake: the fake's cost
dominates). Only 127.0.0.1 is used; nothing is installed.
"""
import http.client
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import badgekitfake  # noqa: E402

_spec = importlib.util.spec_from_file_location("run_badgr",
                                               os.path.join(ROOT, "bench", "run-badgr.py"))
rb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rb)

SIGN = os.path.join(rb.BUILD, "bench", "badgekit-sign")


def die(msg):
    print("run-badgekit: " + msg, file=sys.stderr)
    sys.exit(1)


def note(msg):
    print("run-badgekit: " + msg, file=sys.stderr, flush=True)


class Fake(rb.Fake):
    """The BadgeKit fake in its own process."""

    def __init__(self, tmp):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "integration", "badgekitfake.py")],
            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "fake.err"), "w"), text=True)
        line = self.proc.stdout.readline()
        if not line:
            die("the fake did not start")
        self.info = json.loads(line)
        u = urllib.parse.urlsplit(self.info["base_url"])
        self.host, self.port = u.hostname, u.port
        self.scope = "/systems/%s/issuers/%s" % (self.info["system"], self.info["issuer"])

    def signed(self, c, method, target, doc):
        body = json.dumps(doc).encode()
        c.request(method, target, body, {
            "Content-Type": "application/json",
            "Authorization": badgekitfake.sign_request(method, target, "master",
                                                       self.info["master_secret"], body=body)})
        r = c.getresponse()
        return r.status, r.read()


def ceiling(fake, n, run):
    """Instances a second, one after another, each POST on a connection of its own."""
    c = fake.conn()
    badge = "ceiling-%d" % run
    st, out = fake.signed(c, "POST", fake.scope + "/badges", {
        "slug": badge, "name": "Ceiling", "earnerDescription": "d", "consumerDescription": "d",
        "criteriaUrl": "https://bench.example.edu/c", "imageUrl": "https://bench.example.edu/i",
        "unique": True, "type": "Course"})
    if st != 201:
        die("the fake refused a badge: %s" % out)
    c.close()
    t0 = time.monotonic()
    for i in range(n):
        c = fake.conn()
        st, out = fake.signed(c, "POST", "%s/badges/%s/instances" % (fake.scope, badge), {
            "email": "ceiling%d-%d@example.edu" % (run, i), "slug": "c%d-%d" % (run, i),
            "issuedOn": "2026-12-07T12:00:00.000Z"})
        if st != 201:
            die("the fake refused an instance: %d %s" % (st, out))
        c.close()
    return n / (time.monotonic() - t0)


class Server(rb.Server):
    def __init__(self, tmp, fake):
        info = fake.info
        ini = os.path.join(tmp, "ltibadges.ini")
        with open(ini, "w") as f:
            f.write("[server]\naccess_log = off\n"
                    "[backend.bench]\ntype = badgekit\nbase_url = %s\nallow_loopback = true\n"
                    "system = %s\nissuer = %s\nsecret = %s\nrate = 1000\n"
                    % (info["base_url"], info["system"], info["issuer"], info["master_secret"]))
        self._start(tmp, ini)

    def _start(self, tmp, ini):
        # rb.Server.__init__ without its [backend] text: the same start-up and parsing
        import re
        self.tmp, self.ini = tmp, ini
        self.db = os.path.join(tmp, "bench.db")
        self.out = open(os.path.join(tmp, "server.out"), "w+")
        self.proc = subprocess.Popen(
            [rb.LB, "serve", "--demo", "--config", ini, "--db", self.db, "--listen",
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
        self.pid = self.proc.pid


def main():
    for b in (rb.LB, rb.PRESIGN, SIGN):
        if not os.access(b, os.X_OK):
            die("%s not found: cmake --build %s" % (b, rb.BUILD))
    note("signing")
    sign = subprocess.run([SIGN], capture_output=True, text=True, check=True).stdout
    import tempfile
    import shutil
    tmp = tempfile.mkdtemp(prefix="ltibadges-badgekit.")
    fake = srv = None
    try:
        fake = Fake(tmp)
        note("the fake's ceiling")
        ceil_before = ceiling(fake, 2000, 1)
        srv = Server(tmp, fake)
        keys = {n: srv.consumer(n, backend) for n, backend in
                (("B", None), ("A", "bench"), ("C", None), ("D", "bench"))}
        bodies = {n: (keys[n], os.path.join(tmp, "launches-%s.txt" % n)) for n in "BACD"}
        hz = os.sysconf("SC_CLK_TCK")

        note("hosted alone")
        t0 = time.monotonic()
        rb.launch(srv, bodies["B"])
        n1, _, t1 = rb.drained(srv, "hosted", 1)
        hosted1 = (n1, t1 - t0)

        note("BadgeKit alone")
        req0 = rb.fake_requests(fake)
        with open("/proc/%d/clear_refs" % srv.pid, "w") as f:
            f.write("5")
        t0 = time.monotonic()
        rb.launch(srv, bodies["A"])
        cpu_sent, issued_sent = rb.ticks(srv.pid), rb.issued(srv, "bench")
        tid = rb.thread_named(srv.pid, "lb-b-bench")
        thr_sent = rb.ticks(srv.pid, tid) if tid else 0
        n2, failed2, t2 = rb.drained(srv, "bench", 1)
        cpu_end, thr_end = rb.ticks(srv.pid), (rb.ticks(srv.pid, tid) if tid else 0)
        bk = (n2, t2 - t0)
        drain_awards = n2 - issued_sent
        rss = rb.vm_hwm(srv.pid)
        req1 = rb.fake_requests(fake)
        if failed2:
            die("%d BadgeKit awards failed: see %s" % (failed2, tmp))

        note("hosted while BadgeKit drains")
        rb.launch(srv, bodies["D"])
        before3 = rb.issued(srv, "hosted")
        t0 = time.monotonic()
        rb.launch(srv, bodies["C"])
        n3, _, t3 = rb.drained(srv, "hosted", before3 + 1)
        busy = sum(n for (b, s_), n in srv.counts().items()
                   if b == "bench" and s_ in ("queued", "issuing"))
        hosted3 = (n3 - before3, t3 - t0)
        rb.drained(srv, "bench", 1)
        ceil_after = ceiling(fake, 2000, 2)

        ceil = min(ceil_before, ceil_after)
        rate2 = bk[0] / bk[1]
        h1 = hosted1[0] / hosted1[1]
        h3 = hosted3[0] / hosted3[1]
        print("signing (bench/badgekit-sign):")
        print("  " + sign.strip().replace("\n", "\n  "))
        print()
        print("| target | awards | seconds | awards/s | x the fake's ceiling |")
        print("|---|---:|---:|---:|---:|")
        print("| fake's ceiling (before, after) | 2000 | - | %.0f, %.0f | 1 |"
              % (ceil_before, ceil_after))
        print("| BadgeKit through serve (first launch to last award) | %d | %.2f | %.0f | %.3f |"
              % (bk[0], bk[1], rate2, rate2 / ceil))
        print("| hosted alone | %d | %.2f | %.0f | - |" % (hosted1[0], hosted1[1], h1))
        print("| hosted while BadgeKit drains | %d | %.2f | %.0f | - |"
              % (hosted3[0], hosted3[1], h3))
        print()
        print("requests the fake answered per BadgeKit award: %.3f (%d for %d awards: the "
              "badge's look-up and create included)" % ((req1 - req0) / bk[0], req1 - req0, bk[0]))
        if drain_awards > 0:
            print("server CPU per BadgeKit award while the queue drained: %.0f us (all threads), "
                  "%.0f us (lb-b-bench), over %d awards"
                  % ((cpu_end - cpu_sent) * 1e6 / hz / drain_awards,
                     (thr_end - thr_sent) * 1e6 / hz / drain_awards, drain_awards))
        print("peak RSS (phase 2): %.1f MiB" % rss)
        print("hosted awards/s while BadgeKit drains / alone: %.2f (BadgeKit awards still queued "
              "when the hosted ones were done: %d)" % (h3 / h1, busy))
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
