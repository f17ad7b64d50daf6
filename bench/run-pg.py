#!/usr/bin/python3
"""bench/run-pg.py [BUILD_DIR] - ltibadges on PostgreSQL, one to three instances
behind haproxy, next to sqlite's single instance and the bare ceiling (bench/README.md).

In one run, on 127.0.0.1 only:
  - the ceiling (bench/ceiling: libmicrohttpd answering 303, verifying nothing);
  - sqlite: one `serve` on a fresh database file;
  - PostgreSQL: a throwaway server of its own (tests/pgserver.sh with
    PGSERVER_DURABLE=1: fsync and synchronous commits on, as in production),
    one database, `serve` instances on it ([database] url), measured with one
    instance straight and with one, two and three behind Debian's haproxy
    (round robin, keep-alive to the instances), all with the public URL of the
    balancer, so one signature is good on every instance.
Each target gets the active hour of bench/run-launch.sh (bench/presign, Moodle's
launches: a warm-up makes each (learner, link) of 5 000 learners once, then
relaunches with a fresh nonce and sourcedid each), wrk at BENCH_CONNS (64)
connections for BENCH_DURATION (10) s. Printed per target: launches/s, the ratio to
the ceiling and to sqlite, p50 and p99, server CPU per launch (the instances),
the database's CPU per launch (every process of the PostgreSQL server) and
haproxy's.

Then awards: a consumer-wide enrollment badge of the built-in issuer, and
BENCH_AWARDS (3 000) first launches of new learners, each earning it; awards/s
from the first launch to the last award issued, with sqlite's one worker and
with one and with three instances' workers on PostgreSQL (each instance's
worker claims with FOR UPDATE SKIP LOCKED), and that no award was issued twice.

Environment: BENCH_DURATION, BENCH_CONNS, BENCH_AWARDS, BENCH_POOL ([database]
pool, default 8), BENCH_WARM (the warm-up's first launches, 40 000: fewer for a
quick check of the script, whose active hour is then mostly first launches),
BENCH_KEEP=1 keeps the temporary directory.
Needs wrk, haproxy and postgresql (sh scripts/deps.sh test installs them).
"""
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
# the launch sender of the Badgr benchmark (each body POSTed once, each answer a 303)
_spec = importlib.util.spec_from_file_location("run_badgr", os.path.join(ROOT, "bench",
                                                                         "run-badgr.py"))
rb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rb)
LB = os.path.join(BUILD, "ltibadges")
PRESIGN = os.path.join(BUILD, "bench", "presign")
CEILING = os.path.join(BUILD, "bench", "ceiling")
LUA = os.path.join(ROOT, "bench", "launch.lua")
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNS = int(os.environ.get("BENCH_CONNS", "64"))
AWARDS = int(os.environ.get("BENCH_AWARDS", "3000"))
POOL = int(os.environ.get("BENCH_POOL", "8"))
ACTIVE_PAIRS = 40000  # bench/presign.c: 5 000 learners x 4 courses x 2 links
# the warm-up's first launches: all the active hour's pairs, unless told fewer (a quick check)
WARM = min(int(os.environ.get("BENCH_WARM", str(ACTIVE_PAIRS))), ACTIVE_PAIRS)
HZ = os.sysconf("SC_CLK_TCK")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'


def die(msg):
    print("run-pg: " + msg, file=sys.stderr)
    sys.exit(1)


def note(msg):
    print("run-pg: " + msg, file=sys.stderr, flush=True)


def ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks; 0 once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (FileNotFoundError, ProcessLookupError):
        return 0


def children(ppid):
    """The pids whose parent is ppid (the PostgreSQL server's backends and workers)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(d))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_line(path, pattern, proc, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    die("%s did not start: %s" % (what, open(path + ".err").read()[-2000:]))


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-pg-bench.")
        self.procs = []
        self.pgdir = None
        self.nwrk = 0  # wrk's outputs are kept as wrk-NN-TARGET.txt
        self.warnings = []

    def spawn(self, name, argv, env=None):
        out = os.path.join(self.tmp, name)
        p = subprocess.Popen(argv, stdout=open(out, "w"), stderr=open(out + ".err", "w"),
                             env=env, cwd=self.tmp)
        self.procs.append(p)
        return p, out

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in self.procs:
            self.stop(p)
        if self.pgdir:
            subprocess.run(["sh", os.path.join(ROOT, "tests", "pgserver.sh"), "stop",
                            self.pgdir], capture_output=True)
        if os.environ.get("BENCH_KEEP") == "1":
            note("kept " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Target:
    """What one wrk run loads: its URL, the processes whose CPU counts, and where."""

    def __init__(self, name, url, servers, db_parent=None, proxy=None, signed_for=None):
        self.name, self.url, self.servers = name, url, servers
        self.db_parent, self.proxy = db_parent, proxy
        # the URL launches are signed for: the servers' public URL
        self.signed_for = signed_for or url

    def cpu(self):
        db = 0
        if self.db_parent:
            db = ticks(self.db_parent) + sum(ticks(p) for p in children(self.db_parent))
        return (sum(ticks(p) for p in self.servers), db,
                ticks(self.proxy) if self.proxy else 0)


def to_ms(v):
    m = re.match(r"([0-9.]+)(us|ms|s|m)$", v)
    n = float(m.group(1))
    return n / 1000 if m.group(2) == "us" else n * 1000 if m.group(2) == "s" else \
        n * 60000 if m.group(2) == "m" else n


def wrk(env, target, bodies, conns, secs, mode="once"):
    """One wrk run: rate, p50, p99, requests, non-3xx, exhausted, CPU µs per request."""
    c0 = target.cpu()
    p = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % secs, "--timeout", "5s",
                        "--latency", "-s", LUA, target.url, "--", bodies, "2", mode],
                       capture_output=True, text=True)
    c1 = target.cpu()
    out = p.stdout + p.stderr
    env.nwrk += 1
    with open(os.path.join(env.tmp, "wrk-%02d-%s.txt" % (env.nwrk, target.name)), "w") as f:
        f.write(out)
    if p.returncode != 0:
        die("wrk failed: " + out[-2000:])
    m = re.search(r"^launch\.lua: steady rate (\d+)", out, re.M) or \
        re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    reqs = int(re.search(r"(\d+) requests in ", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    upto = re.search(r"^launch\.lua: lines sent up to (\d+)", out, re.M)
    r = {
        "rps": float(m.group(1)), "reqs": reqs,
        "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "bad": int(bad.group(1)) if bad else 0,
        "sockerr": sum(int(x) for x in re.findall(r"\d+", sock.group(1))) if sock else 0,
        "exhausted": int(re.search(r"^launch\.lua: .*, (\d+) thread\(s\) exhausted$", out,
                                   re.M).group(1)) > 0,
        "upto": int(upto.group(1)) if upto else 0,
    }
    per = [(b - a) / HZ * 1e6 / reqs if reqs else 0 for a, b in zip(c0, c1)]
    r["cpu"], r["db_cpu"], r["proxy_cpu"] = per
    return r


def sign(env, mix, start, key, secret, url, n, spread):
    path = os.path.join(env.tmp, "bodies.txt")
    p = subprocess.run([PRESIGN, "--mix", mix, "--start", str(start), key, secret, url, str(n),
                        path, str(spread)], capture_output=True, text=True)
    if p.returncode != 0:
        die("presign: " + p.stderr)
    return path


def launches(env, target, key, secret, mix, start, n, conns):
    """Sends n pre-signed launches of `mix` from `start`, each once."""
    while n > 0:
        bodies = sign(env, mix, start, key, secret, target.signed_for, n, 10)
        r = wrk(env, target, bodies, conns, 30)
        if r["bad"] or r["sockerr"]:
            die("%s: %d non-3xx answers, %d socket errors in %s" %
                (target.name, r["bad"], r["sockerr"], mix))
        if r["upto"] <= 0:
            die("%s: wrk sent no launch of %s" % (target.name, mix))
        start += r["upto"]
        n -= r["upto"]


def measure(env, target, key, secret, start):
    """The active hour at CONNS connections; repeated with more launches if they ran out."""
    n = 40000
    while True:
        bodies = sign(env, "active", start, key, secret, target.signed_for, n, DURATION)
        r = wrk(env, target, bodies, CONNS, DURATION)
        start += r["upto"]
        if r["bad"] or r["sockerr"]:
            # reported next to the rate, as bench/run-launch.sh does (a 503 is the server
            # shedding load, a 401 a launch refused)
            env.warnings.append("%s: %d non-3xx answers, %d socket errors (wrk-%02d-%s.txt)" % (
                target.name, r["bad"], r["sockerr"], env.nwrk, target.name))
        if not r["exhausted"]:
            return r, start
        n *= 4


def serve(env, name, ini, extra_env=None, listen="127.0.0.1:0", db=None):
    argv = [LB, "serve", "--config", ini, "--listen", listen]
    if db:
        argv += ["--db", db, "--demo"]
    e = dict(os.environ)
    e.update(extra_env or {})
    p, out = env.spawn(name, argv, e)
    m = wait_line(out, r"listening on 127\.0\.0\.1:(\d+)", p, name)
    return p, int(m.group(1))


def cli(args, extra_env=None):
    e = dict(os.environ)
    e.update(extra_env or {})
    p = subprocess.run([LB] + args, capture_output=True, text=True, env=e)
    if p.returncode != 0:
        die("ltibadges %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


def kv(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def awards_state(port):
    """Awards by state from an instance's /metrics (the database's counts)."""
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30).read()
    out = {}
    for m in re.finditer(r'^ltibadges_awards\{state="(\w+)",backend="[^"]*"\} (\d+)',
                         text.decode(), re.M):
        out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def awards_run(env, target, port, key, secret, start, cli_args, cli_env):
    """BENCH_AWARDS first launches of new learners (term), whose first launch in a course earns
    the enrollment badge: awards/s from the first launch until none is queued or issuing, and
    that every issued award has an assertion id of its own."""
    before = awards_state(port)
    bodies = sign(env, "term", start, key, secret, target.signed_for, AWARDS, 10)
    t0 = time.monotonic()
    rb.send(target.url, bodies, 8)
    while True:
        st = awards_state(port)  # the launches queued theirs in their own transactions
        if st.get("queued", 0) + st.get("issuing", 0) == 0:
            break
        if time.monotonic() - t0 > 600:
            die("%s: awards not issued after 10 minutes: %s" % (target.name, st))
        time.sleep(0.05)
    dt = time.monotonic() - t0
    n = st.get("issued", 0) - before.get("issued", 0)
    if n <= 0:
        die("%s: no award was issued" % target.name)
    rows = json.loads(cli(["award", "list", "--state", "issued", "--json"] + cli_args, cli_env))
    if isinstance(rows, dict):
        rows = rows.get("awards", [])
    ids = [a.get("assertion_id") for a in rows]
    if len(ids) != len(set(ids)) or None in ids:
        die("%s: issued awards without an assertion id of their own" % target.name)
    return n / dt, n


def main():
    for tool in ("wrk", "haproxy"):
        if not shutil.which(tool):
            die("%s not found: sh scripts/deps.sh test installs it" % tool)
    for b in (LB, PRESIGN, CEILING):
        if not os.access(b, os.X_OK):
            die("%s not found: cmake --build %s" % (b, BUILD))
    env = Env()
    try:
        run(env)
    finally:
        env.close()


def run(env):
    results = {}
    # ---- the ceiling
    cp, cout = env.spawn("ceiling", [CEILING, "0"])
    port = int(wait_line(cout, r"listening on 127\.0\.0\.1:(\d+)", cp, "ceiling").group(1))
    ceiling = Target("ceiling", "http://127.0.0.1:%d/lti/launch" % port, [cp.pid])
    bodies = sign(env, "active", 0, "k", "s", ceiling.url, 20000, DURATION)
    results["ceiling"] = wrk(env, ceiling, bodies, CONNS, DURATION, "cycle")
    note("ceiling: %.0f requests/s" % results["ceiling"]["rps"])

    # ---- sqlite, one instance
    ini = os.path.join(env.tmp, "sqlite.ini")
    with open(ini, "w") as f:
        f.write("[server]\naccess_log = off\n")
    sp, sport = serve(env, "sqlite", ini, db=os.path.join(env.tmp, "bench.db"))
    text = open(os.path.join(env.tmp, "sqlite")).read()
    skey = re.search(r"consumer key:\s+(\S+)", text).group(1)
    ssecret = re.search(r"shared secret:\s+(\S+)", text).group(1)
    lite = Target("sqlite", "http://127.0.0.1:%d/lti/launch" % sport, [sp.pid])
    note("sqlite: warm-up (%d first launches)" % WARM)
    launches(env, lite, skey, ssecret, "warm", 0, WARM, CONNS)
    results["sqlite"], _ = measure(env, lite, skey, ssecret, 0)
    note("sqlite: %.0f launches/s" % results["sqlite"]["rps"])

    # ---- PostgreSQL
    # beside the temporary folder, not in it: the server runs as nobody when this runs as root
    env.pgdir = "%s-pg" % env.tmp
    p = subprocess.run(["sh", os.path.join(ROOT, "tests", "pgserver.sh"), "start", env.pgdir],
                       capture_output=True, text=True, env=dict(os.environ, PGSERVER_DURABLE="1"))
    if p.returncode != 0:
        die("tests/pgserver.sh start: " + p.stderr)
    url = p.stdout.strip().splitlines()[-1]
    with open(os.path.join(env.pgdir, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    dbenv = {"LTIBADGES_DATABASE_URL": url}
    cli(["db", "migrate"], dbenv)
    c = kv(cli(["consumer", "add", "bench"], dbenv))
    key, secret = c["key"], c["secret"]
    hport = free_port()
    public = "http://127.0.0.1:%d" % hport
    pini = os.path.join(env.tmp, "pg.ini")
    with open(pini, "w") as f:
        f.write("[server]\naccess_log = off\npublic_url = %s\n[database]\npool = %d\n"
                % (public, POOL))
    instances = []
    for i in range(3):
        ip, iport = serve(env, "pg-%d" % (i + 1), pini, dbenv)
        instances.append((ip, iport))
    # straight to one instance, signed for the balancer's URL, which is its public URL
    straight = Target("pg1-straight", "http://127.0.0.1:%d/lti/launch" % instances[0][1],
                      [instances[0][0].pid], postmaster, signed_for=public + "/lti/launch")

    def balancer(n):
        cfg = os.path.join(env.tmp, "haproxy-%d.cfg" % n)
        with open(cfg, "w") as f:
            f.write("global\n    maxconn 4096\n    nbthread 1\n"
                    "defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n"
                    "    timeout server 60s\n    option http-keep-alive\n    http-reuse always\n"
                    "frontend lti\n    bind 127.0.0.1:%d\n    default_backend instances\n"
                    "backend instances\n    balance roundrobin\n" % hport)
            for k in range(n):
                f.write("    server i%d 127.0.0.1:%d\n" % (k + 1, instances[k][1]))
        hp, _ = env.spawn("haproxy-%d" % n, ["haproxy", "-db", "-f", cfg])
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", hport), 1).close()
                break
            except OSError:
                if hp.poll() is not None or time.monotonic() > deadline:
                    die("haproxy did not start: " +
                        open(os.path.join(env.tmp, "haproxy-%d.err" % n)).read())
                time.sleep(0.05)
        return hp, Target("pg%d" % n, public + "/lti/launch",
                          [p.pid for p, _ in instances[:n]], postmaster, hp.pid)

    # the warm-up through one instance: first launches of one learner's pairs on several
    # instances at once meet in their batches' transactions (see bench/README.md)
    note("PostgreSQL: warm-up (%d first launches, one instance)" % WARM)
    launches(env, straight, key, secret, "warm", 0, WARM, CONNS)
    astart = 0
    results["pg1-straight"], astart = measure(env, straight, key, secret, astart)
    for n in (1, 2, 3):
        hp, t = balancer(n)
        results["pg%d" % n], astart = measure(env, t, key, secret, astart)
        note("PostgreSQL, %d instance(s) behind haproxy: %.0f launches/s"
             % (n, results["pg%d" % n]["rps"]))
        if n < 3:
            env.stop(hp)

    # ---- awards: sqlite's one worker, PostgreSQL's one and three
    with open(os.path.join(env.tmp, "badge.svg"), "wb") as f:
        f.write(SVG)
    badge = ["badge", "create", "--name", "Welcome", "--description", "Joined a course",
             "--image", os.path.join(env.tmp, "badge.svg"), "--rule", "enrollment"]
    cli(badge + ["--consumer", skey, "--db", os.path.join(env.tmp, "bench.db")])
    cli(badge + ["--consumer", key], dbenv)
    aw = {}
    aw["sqlite"] = awards_run(env, lite, sport, skey, ssecret, 100000,
                              ["--db", os.path.join(env.tmp, "bench.db")], {})
    aw["pg3"] = awards_run(env, t, instances[0][1], key, secret, 200000, [], dbenv)
    env.stop(hp)
    for ip, _ in instances[1:]:
        env.stop(ip)
    hp, t = balancer(1)
    aw["pg1"] = awards_run(env, t, instances[0][1], key, secret, 300000, [], dbenv)
    report(results, aw)
    for w in env.warnings:
        print("WARNING: " + w)


def report(res, aw):
    ceil = res["ceiling"]["rps"]
    lite = res["sqlite"]["rps"]
    print("Launches, active hour, %d connections, %d s (Moodle's launches)\n" % (CONNS, DURATION))
    print("| target | launches/s | x ceiling | x sqlite | p50 ms | p99 ms | server CPU us/launch "
          "| database CPU us/launch | haproxy CPU us/launch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {"ceiling": "ceiling (bare libmicrohttpd)", "sqlite": "sqlite, one instance",
             "pg1-straight": "PostgreSQL, one instance, no balancer",
             "pg1": "PostgreSQL, one instance behind haproxy",
             "pg2": "PostgreSQL, two instances behind haproxy",
             "pg3": "PostgreSQL, three instances behind haproxy"}
    for k in ("ceiling", "sqlite", "pg1-straight", "pg1", "pg2", "pg3"):
        r = res[k]
        print("| %s | %.0f | %.3f | %s | %.1f | %.1f | %.0f | %s | %s |" % (
            names[k], r["rps"], r["rps"] / ceil, "-" if k == "ceiling" else "%.2f" % (
                r["rps"] / lite), r["p50"], r["p99"], r["cpu"],
            "%.0f" % r["db_cpu"] if k.startswith("pg") else "-",
            "%.0f" % r["proxy_cpu"] if k in ("pg1", "pg2", "pg3") else "-"))
    print("\nAwards: %d first launches each earning the enrollment badge (built-in issuer), "
          "from the first launch to the last award issued\n" % AWARDS)
    print("| target | awards issued | awards/s | x sqlite |")
    print("|---|---:|---:|---:|")
    for k, name in (("sqlite", "sqlite, one worker"), ("pg1", "PostgreSQL, one instance"),
                    ("pg3", "PostgreSQL, three instances")):
        rate, n = aw[k]
        print("| %s | %d | %.0f | %.2f |" % (name, n, rate, rate / aw["sqlite"][0]))


if __name__ == "__main__":
    main()
