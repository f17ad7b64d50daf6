#!/usr/bin/python3
"""Awards through Open Badge Factory: how fast `ltibadges serve` issues them to
the OBF contract fake (tests/integration/obffake.py, over TLS on 127.0.0.1)
through API v2 and API v1, next to the fake's own ceiling measured in the same
run.

    bench/run-obf.py [BUILD_DIR]        (default ./build; Debian's python3)

Environment: BENCH_LAUNCHES (first launches per phase, default 3000: each
learner's first launch in a course earns a consumer-wide enrollment badge, about
2 500 awards), BENCH_TOKEN_LIFETIME (expires_in of the fake's v2 tokens,
default 20 s, so that a run sees several), BENCH_KEEP=1 keeps the temporary
directory.

Two phases, each with its own consumer and learners (bench/presign's start of
term, sent on 8 keep-alive connections), one serve with two backends:
  1. v2 ([backend.v2], client credentials): awards/s from the first launch to
     the last award issued; requests the fake answered per award in steady
     state (the drain, tokens and the badge's creation left out: the issue and
     the recipient look-up of its assertion URL); token requests, and that per
     hour next to one per token lifetime; server CPU per award while the queue
     drains (all threads, and the backend's thread lb-b-v2);
  2. v1 ([backend.v1], a client certificate): awards/s, requests per award, and
     TLS handshakes per 1 000 awards, full and resumed (the fake counts each
     connection's handshake and whether it resumed a session).
The ceiling: this script issuing to the fake one after another, each POST on a
TLS connection of its own as the backend sends them (v2 with a token; v1 with
the client certificate), resuming the previous connection's TLS session as
libcurl does.
Only 127.0.0.1 is used; nothing is installed.
"""
import importlib.util
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
LB = os.path.join(BUILD, "ltibadges")
PRESIGN = os.path.join(BUILD, "bench", "presign")
os.environ.setdefault("BENCH_LAUNCHES", "3000")
TOKEN_LIFETIME = int(os.environ.get("BENCH_TOKEN_LIFETIME", "20"))

# the launch sending, CPU and drain helpers of the Badgr benchmark
_spec = importlib.util.spec_from_file_location("run_badgr", os.path.join(ROOT, "bench",
                                                                         "run-badgr.py"))
rb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rb)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import obffake  # noqa: E402 - the fake's resuming HTTPS connection


def die(msg):
    print("run-obf: " + msg, file=sys.stderr)
    sys.exit(1)


def note(msg):
    print("run-obf: " + msg, file=sys.stderr, flush=True)


def png():
    import ltitest
    return ltitest.png_bytes(8, 8)


class Fake:
    """The OBF fake in its own process."""

    def __init__(self, tmp):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "integration", "obffake.py"),
             "--dir", os.path.join(tmp, "pki"), "--token-lifetime", str(TOKEN_LIFETIME)],
            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "fake.err"), "w"), text=True)
        line = self.proc.stdout.readline()
        if not line:
            die("the fake did not start")
        self.info = json.loads(line)
        u = urllib.parse.urlsplit(self.info["base_url"])
        self.host, self.port = u.hostname, u.port

    def context(self, cert=False):
        ctx = ssl.create_default_context(cafile=self.info["ca"])
        if cert:
            ctx.load_cert_chain(self.info["cert"], self.info["key"])
        return ctx

    def conn(self, cert=False, ctx=None, session=None):
        """A new TLS connection; with `ctx` and `session` (of an earlier one made
        with that context) offering that session for resumption."""
        c = obffake.ResumingConnection(self.host, self.port, timeout=30,
                                       context=ctx or self.context(cert), session=session)
        c.connect()
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


def counts(fake):
    """(requests answered, token requests, connections, full TLS handshakes,
    resumed ones) so far."""
    st = fake.state()
    reqs = [r for r in st["requests"] if not r["path"].startswith("/_fake/")]
    tokens = sum(1 for r in reqs if r["path"] == "/v2/client/oauth2/token")
    return (len(reqs), tokens, st["connections"], st["handshakes"]["full"],
            st["handshakes"]["resumed"])


def token(fake):
    """A v2 access token, waiting out the fake's ten-second rule (the backend may
    have taken one just before)."""
    info = fake.info
    form = urllib.parse.urlencode({"grant_type": "client_credentials",
                                   "client_id": info["client_id"],
                                   "client_secret": info["client_secret"]})
    while True:
        c = fake.conn()
        c.request("POST", "/v2/client/oauth2/token", form,
                  {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        tok = json.loads(r.read())
        c.close()
        if r.status != 429:
            break
        time.sleep(int(r.getheader("Retry-After", "10")))
    if r.status != 200:
        die("the fake refused a token: %s" % tok)
    return tok["access_token"]


def ceiling_v2(fake, n):
    info = fake.info
    auth = {"Authorization": "Bearer " + token(fake), "Content-Type": "application/json"}
    ctx, session = fake.context(), None
    t0 = time.monotonic()
    i = 0
    while i < n:
        c = fake.conn(ctx=ctx, session=session)
        body = {"recipient": [{"email": "ceiling%d@example.edu" % i, "name": ""}],
                "issued_on": int(time.time()), "api_consumer_id": "ltibadges",
                "send_email": False, "log_entry": {"award_uid": "c%d" % i}}
        c.request("POST", "/v2/event/%s/%s/issue" % (info["client_id"], info["badge"]),
                  json.dumps(body), auth)
        r = c.getresponse()
        r.read()
        session = c.sock.session
        c.close()
        if r.status == 401:
            # the token expired (BENCH_TOKEN_LIFETIME on a slow machine): a new one
            auth["Authorization"] = "Bearer " + token(fake)
            continue
        if r.status != 201:
            die("the fake refused an issue: %d" % r.status)
        i += 1
    return n / (time.monotonic() - t0)


def ceiling_v1(fake, n):
    info = fake.info
    ctx, session = fake.context(cert=True), None
    t0 = time.monotonic()
    for i in range(n):
        c = fake.conn(ctx=ctx, session=session)
        body = {"recipient": ["ceiling1-%d@example.edu" % i], "issued_on": int(time.time()),
                "api_consumer_id": "ltibadges", "log_entry": {"award_uid": "c%d" % i}}
        c.request("POST", "/v1/badge/%s/%s" % (info["client_id"], info["badge"]),
                  json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            die("the fake refused a v1 issue: %d" % r.status)
        session = c.sock.session
        c.close()
    return n / (time.monotonic() - t0)


class Server(rb.Server):
    def __init__(self, tmp, fake):
        self.tmp = tmp
        self.db = os.path.join(tmp, "bench.db")
        info = fake.info
        self.ini = os.path.join(tmp, "ltibadges.ini")
        common = ("type = obf\nbase_url = %s\nallow_loopback = true\nclient_id = %s\n"
                  "ca_file = %s\nrate = 1000\nnotify = false\n"
                  % (info["base_url"], info["client_id"], info["ca"]))
        with open(self.ini, "w") as f:
            f.write("[server]\naccess_log = off\n"
                    "[backend.v2]\n%sclient_secret = %s\n"
                    "[backend.v1]\n%sapi = v1\ncertificate = %s\nkey = %s\n"
                    "email_subject = Your badge\nemail_body = You earned a badge\n"
                    % (common, info["client_secret"], common, info["cert"], info["key"]))
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
        self.pid = self.proc.pid

    def consumer(self, name, backend=None):
        args = ["consumer", "add", name] + (["--backend", backend] if backend else [])
        out = self.cli(*args)
        key = re.search(r"key=(\S+)", out).group(1)
        secret = re.search(r"secret=(\S+)", out).group(1)
        badge = os.path.join(self.tmp, "badge.png")
        with open(badge, "wb") as f:
            f.write(png())
        self.cli("badge", "create", "--consumer", key, "--name", "Welcome " + name,
                 "--description", "Joined a course", "--image", badge, "--rule", "enrollment")
        return key, secret


def phase(srv, fake, bodies, backend, hz):
    """Launches a consumer's learners and waits for its backend's queue to drain."""
    req0, tok0, conn0, full0, res0 = counts(fake)
    t0 = time.monotonic()
    rb.launch(srv, bodies)
    cpu_sent, issued_sent = rb.ticks(srv.pid), rb.issued(srv, backend)
    tid = rb.thread_named(srv.pid, "lb-b-" + backend)
    thr_sent = rb.ticks(srv.pid, tid) if tid else 0
    req_sent = counts(fake)[0]
    n, failed, t1 = rb.drained(srv, backend, 1)
    cpu_end, thr_end = rb.ticks(srv.pid), (rb.ticks(srv.pid, tid) if tid else 0)
    req1, tok1, conn1, full1, res1 = counts(fake)
    drain = n - issued_sent
    return {"awards": n, "failed": failed, "seconds": t1 - t0, "requests": req1 - req0,
            "drain_awards": drain, "drain_requests": req1 - req_sent,
            "tokens": tok1 - tok0, "connections": conn1 - conn0,
            "full": full1 - full0, "resumed": res1 - res0,
            "cpu_us": (cpu_end - cpu_sent) * 1e6 / hz / drain if drain > 0 else 0,
            "thread_us": (thr_end - thr_sent) * 1e6 / hz / drain if drain > 0 else 0}


def main():
    for b in (LB, PRESIGN):
        if not os.access(b, os.X_OK):
            die("%s not found: cmake --build %s" % (b, BUILD))
    tmp = tempfile.mkdtemp(prefix="ltibadges-obf.")
    fake = srv = None
    try:
        fake = Fake(tmp)
        note("the fake's ceilings")
        c2_before, c1_before = ceiling_v2(fake, 500), ceiling_v1(fake, 500)
        srv = Server(tmp, fake)
        keys = {"v2": srv.consumer("A", "v2"), "v1": srv.consumer("B", "v1")}
        bodies = {n: (keys[n], os.path.join(tmp, "launches-%s.txt" % n)) for n in keys}
        hz = os.sysconf("SC_CLK_TCK")
        note("v2")
        p2 = phase(srv, fake, bodies["v2"], "v2", hz)
        note("v1")
        p1 = phase(srv, fake, bodies["v1"], "v1", hz)
        c2_after, c1_after = ceiling_v2(fake, 500), ceiling_v1(fake, 500)
        c2, c1 = min(c2_before, c2_after), min(c1_before, c1_after)
        print("| target | awards | seconds | awards/s | x the fake's ceiling |")
        print("|---|---:|---:|---:|---:|")
        print("| fake's v2 ceiling (before, after) | 500 | - | %.0f, %.0f | 1 |"
              % (c2_before, c2_after))
        print("| v2 through serve (first launch to last award) | %d | %.2f | %.0f | %.3f |"
              % (p2["awards"], p2["seconds"], p2["awards"] / p2["seconds"],
                 p2["awards"] / p2["seconds"] / c2))
        print("| fake's v1 ceiling (before, after) | 500 | - | %.0f, %.0f | 1 |"
              % (c1_before, c1_after))
        print("| v1 through serve (first launch to last award) | %d | %.2f | %.0f | %.3f |"
              % (p1["awards"], p1["seconds"], p1["awards"] / p1["seconds"],
                 p1["awards"] / p1["seconds"] / c1))
        print()
        for name, p in (("v2", p2), ("v1", p1)):
            if p["failed"]:
                print("%s: %d awards failed" % (name, p["failed"]))
            print("%s: requests per award %.3f over the phase (%d for %d), %.3f in steady "
                  "state (the drain: %d for %d)"
                  % (name, p["requests"] / p["awards"], p["requests"], p["awards"],
                     p["drain_requests"] / max(p["drain_awards"], 1), p["drain_requests"],
                     p["drain_awards"]))
            print("%s: server CPU per award while the queue drained: %.0f us (all threads), "
                  "%.0f us (lb-b-%s)" % (name, p["cpu_us"], p["thread_us"], name))
        per_hour = p2["tokens"] * 3600.0 / p2["seconds"]
        print("v2: %d token requests in %.1f s with expires_in %d: %.0f an hour (one per "
              "token's life, renewed a tenth early: %.0f an hour)"
              % (p2["tokens"], p2["seconds"], TOKEN_LIFETIME, per_hour,
                 3600.0 / (TOKEN_LIFETIME - max(1, TOKEN_LIFETIME // 10))))
        for name, p in (("v1", p1), ("v2", p2)):
            print("%s: TLS handshakes per 1 000 awards: %.1f full, %.1f resumed (%d full and %d "
                  "resumed for %d awards, %d connections; each POST has a connection of its own)"
                  % (name, p["full"] * 1000.0 / p["awards"], p["resumed"] * 1000.0 / p["awards"],
                     p["full"], p["resumed"], p["awards"], p["connections"]))
        print("peak RSS: %.1f MiB" % rb.vm_hwm(srv.pid))
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
