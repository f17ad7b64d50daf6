#!/usr/bin/python3
"""bench/run-hooks.py [BUILD_DIR] - BadgeKit webhooks verified per second, next
to /healthz in the same run (bench/README.md, "BadgeKit hooks").

Starts the BadgeKit contract fake (tests/integration/badgekitfake.py) and
`ltibadges serve` with a [backend.bench] section of type badgekit and a
webhook_secret, issues one award through it and keeps the award hook the fake
sent for it (signed as BadgeKit signs: HS256 over {body: {alg, hash}}). Then,
with wrk on the same server, one phase after the other:
  1. GET /healthz (the floor: a request that reads the database once);
  2. that award hook posted again and again to POST /hooks/badgekit/bench:
     each one is verified (header, HMAC-SHA256, SHA-256 of the body), read,
     and applied in one transaction with its count (our award, already
     issued: "unchanged");
  3. the same hook signed with another secret: each is refused 401 (counted
     in memory, written at most once a second).
For each: requests/s, p50 and p99 latency, server CPU per request (utime +
stime of the server in /proc/PID/stat over the phase). Only 127.0.0.1 is
used; installs nothing: needs wrk.

Environment: BENCH_DURATION (seconds a phase, default 10), BENCH_CONNS (default
4), BENCH_KEEP=1 keeps the temporary directory.
"""
import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
from badgekitfake import BadgeKitFake  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
BIN = os.path.join(BUILD, "ltibadges")
PRESIGN = os.path.join(BUILD, "bench", "presign")
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNS = int(os.environ.get("BENCH_CONNS", "4"))
MASTER = "bench-master-secret"
HOOK = "bench-hook-secret"

POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("HOOK_AUTH")
local f = io.open(os.getenv("HOOK_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""


def die(msg):
    sys.exit("run-hooks: " + msg)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def png(w=8, h=8):
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\x00" + b"\x10\x60\xc0\xff" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def wrk(url, pid, script=None, env=None, expect_status="2xx"):
    args = ["wrk", "-t2", "-c%d" % CONNS, "-d%ds" % DURATION, "--latency"]
    if script:
        args += ["-s", script]
    cpu0 = cpu_seconds(pid)
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True,
                         env=dict(os.environ, **(env or {}))).stdout
    cpu1 = cpu_seconds(pid)
    n = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if "Socket errors" in out:
        die("socket errors during the run:\n" + out)
    if expect_status == "2xx" and bad:
        die("answers other than 2xx:\n" + out)
    if expect_status != "2xx" and (not bad or int(bad.group(1)) != n):
        die("answers other than %s:\n%s" % (expect_status, out))
    return {"n": n, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1),
            "p99": re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1),
            "cpu_us": (cpu1 - cpu0) / n * 1e6}


def main():
    for b in (BIN, PRESIGN):
        if not os.access(b, os.X_OK):
            die("%s not found: build first (cmake -B build && cmake --build build -j2)" % b)
    if not shutil.which("wrk"):
        die("wrk not found: install it (apt-get install wrk)")
    tmp = tempfile.mkdtemp(prefix="ltibadges-bench-hooks-")
    db = os.path.join(tmp, "bench.db")
    fake = BadgeKitFake(secret=MASTER)
    fake.add_system("badgekit", name="Bench")
    fake.start()
    server = None
    env = dict(os.environ, LTIBADGES_BACKEND_BENCH_SECRET=MASTER,
               LTIBADGES_BACKEND_BENCH_WEBHOOK_SECRET=HOOK)
    try:
        ini = os.path.join(tmp, "bench.ini")
        with open(ini, "w") as f:
            f.write("[server]\naccess_log = off\n[awards]\nbackend = bench\n"
                    "[backend.bench]\ntype = badgekit\nbase_url = %s\nallow_loopback = true\n"
                    "system = badgekit\nrate = 1000\n" % fake.base_url)

        def cli(*args):
            p = subprocess.run([BIN] + list(args) + ["--db", db, "--config", ini],
                               capture_output=True, text=True, env=env)
            if p.returncode != 0:
                die("%s: %s" % (" ".join(args), p.stderr.strip()))
            return p.stdout

        cli("db", "migrate")
        out = cli("consumer", "add", "Bench LMS")
        key = re.search(r"^key=(\S+)", out, re.M).group(1)
        image = os.path.join(tmp, "badge.png")
        with open(image, "wb") as f:
            f.write(png())
        slug = re.search(r"^slug=(\S+)", cli(
            "badge", "create", "--consumer", key, "--name", "Bench", "--description", "d",
            "--image", image, "--rule", "manual"), re.M).group(1)
        server = subprocess.Popen([BIN, "serve", "--config", ini, "--db", db, "--listen",
                                   "127.0.0.1:0"], stdout=subprocess.PIPE, env=env,
                                  stderr=open(os.path.join(tmp, "server.err"), "wb"), text=True)
        port = None
        for line in server.stdout:
            m = re.match(r"^ltibadges: listening on .*?:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if not port:
            die("the server did not start")
        base = "http://127.0.0.1:%d" % port
        fake.set_webhook("badgekit", base + "/hooks/badgekit/bench", HOOK)

        # one learner (a launch signed by bench/presign with the server's own lti/ code), one
        # award issued through BadgeKit, and BadgeKit's hook for it
        secret = re.search(r"^secret=(\S+)", out, re.M).group(1)
        bodies = subprocess.run([PRESIGN, key, secret, base + "/lti/launch", "50", "-"],
                                capture_output=True, text=True, check=True).stdout.split("\n")
        launch = next(b for b in bodies if "roles=Learner&" in b and "email_primary" in b)
        user = urllib.parse.parse_qs(launch)["user_id"][0]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/lti/launch", launch,
                     {"Content-Type": "application/x-www-form-urlencoded"})
        if conn.getresponse().status != 303:
            die("the launch was not verified")
        conn.close()
        cli("award", "grant", "--badge", slug, "--consumer", key, "--user", user)
        hook = [h for h in fake.wait_hooks(1, timeout=60) if h.kind == "award"][0]
        if hook.status != 200:
            die("the award hook was answered %r" % ((hook.status, hook.error),))
        body = os.path.join(tmp, "hook.json")
        with open(body, "wb") as f:
            f.write(hook.body)
        lua = os.path.join(tmp, "post.lua")
        with open(lua, "w") as f:
            f.write(POST_LUA)
        forged = BadgeKitFake.hook_authorization(hook.body, HOOK + "-not")

        health = wrk(base + "/healthz", server.pid)
        hooks = wrk(base + "/hooks/badgekit/bench", server.pid, lua,
                    {"HOOK_AUTH": hook.authorization, "HOOK_BODY": body})
        refused = wrk(base + "/hooks/badgekit/bench", server.pid, lua,
                      {"HOOK_AUTH": forged, "HOOK_BODY": body}, expect_status="401")
        server.terminate()
        server.wait(10)
        server = None
        counts = sqlite3.connect(db).execute(
            "SELECT received, unchanged, refused FROM backend_hooks WHERE backend = 'bench'"
        ).fetchone()
        # wrk counts the answers it read; at most one request a connection was in flight when
        # it stopped
        if not (hooks["n"] <= counts[1] <= hooks["n"] + CONNS + 1 and
                refused["n"] <= counts[2] <= refused["n"] + CONNS):
            die("counted %r, sent %d valid and %d forged" % (counts, hooks["n"], refused["n"]))
        print("hook body %d bytes; wrk -t2 -c%d -d%ds a phase" % (len(hook.body), CONNS,
                                                                DURATION))
        for name, r in (("GET /healthz", health), ("valid hooks (verified, applied)", hooks),
                        ("forged hooks (refused 401)", refused)):
            print("%-34s %8.0f req/s  p50 %-8s p99 %-8s server CPU %5.0f us/req" % (
                name, r["rps"], r["p50"], r["p99"], r["cpu_us"]))
        print("valid hooks/s over /healthz req/s: %.2f" % (hooks["rps"] / health["rps"]))
        print(json.dumps({"healthz": health, "hooks": hooks, "refused": refused}))
    finally:
        if server:
            server.terminate()
            server.wait(10)
        fake.stop()
        if os.environ.get("BENCH_KEEP") == "1":
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
