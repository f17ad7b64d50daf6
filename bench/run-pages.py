#!/usr/bin/python3
"""bench/run-pages.py [BUILD_DIR [OLD_BUILD_DIR...]] - server CPU per learner page
and per public assertion page (bench/README.md).

With more than one build directory (say, a second one built from an older
commit), each build is measured in turn in the same run on its own database,
and the learner page's server CPU is printed side by side at the end: the
before and after of a change. A build without public badge pages is measured
on the learner page only.

Sets up one learner in one course with 50 BadgeClasses (25 earned and
issued by the built-in issuer, 25 still to earn, each with its rule, progress
and "why not yet"), then drives GET /badges?s=TOKEN with wrk and reads the
server's CPU time (utime + stime in /proc/PID/stat) before and after: CPU per
page is that difference over the pages served. Then the same for one of the
learner's badges at its assertion URL, asked for by a browser (Accept:
text/html..., the public badge page) and by a machine client (the JSON-LD
document). Then the instructor's awards table of a course with BENCH_AWARDS
awards (default 500, written straight into the database; the page shows the
newest LIMIT_AWARDS_TABLE_ROWS), newest first and sorted by learner. Also prints the page size, requests/s and latency. Only 127.0.0.1 is used. Installs nothing: needs wrk.

Environment: BENCH_DURATION (seconds, default 10), BENCH_CONNS (default 4),
BENCH_BADGES (default 50), BENCH_KEEP=1 keeps the temporary directory.
"""
import json
import os
import re
import secrets
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib

BUILDS = [os.path.abspath(b) for b in (sys.argv[1:] or ["build"])]
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNS = int(os.environ.get("BENCH_CONNS", "4"))
BADGES = int(os.environ.get("BENCH_BADGES", "50"))
AWARDS = int(os.environ.get("BENCH_AWARDS", "500"))
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def die(msg):
    sys.exit("run-pages: " + msg)


def png(w=64, h=64):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\x00" + b"\x10\x60\xc0\xff" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid, url, accept=None):
    """wrk on `url` for DURATION seconds: (pages, pages/s, p50, p99, server CPU us a page)."""
    hdr = ["-H", "Accept: " + accept] if accept else []
    for _ in range(200):
        urllib.request.urlopen(urllib.request.Request(
            url, headers={"Accept": accept} if accept else {})).read()
    cpu0 = cpu_seconds(pid)
    wrk = subprocess.run(["wrk", "-t2", "-c%d" % CONNS, "-d%ds" % DURATION, "--latency"] + hdr
                         + [url], capture_output=True, text=True, check=True).stdout
    cpu1 = cpu_seconds(pid)
    n = int(re.search(r"(\d+) requests in", wrk).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
    p50 = re.search(r"^\s*50%\s+(\S+)", wrk, re.M).group(1)
    p99 = re.search(r"^\s*99%\s+(\S+)", wrk, re.M).group(1)
    if re.search(r"Non-2xx or 3xx responses: (\d+)", wrk) or "Socket errors" in wrk:
        die("errors during the run:\n" + wrk)
    return n, rps, p50, p99, (cpu1 - cpu0) / n * 1e6


def awards_table(cli, opener, base, key, staff, image, db, pid):
    """The instructor's awards table of a course of AWARDS issued awards, one learner each."""
    sctx = dict(urllib.parse.parse_qsl(staff))["context_id"]
    req = urllib.request.Request(base + "/lti/launch", data=staff.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        opener.open(req)
        die("the instructor's launch was not redirected")
    except urllib.error.HTTPError as e:
        location = e.headers["Location"]
    cli("context", "enable", "--consumer", key, "--context", sctx)
    slug = re.search(r"slug=(\S+)", cli(
        "badge", "create", "--consumer", key, "--context", sctx, "--name", "Handed out",
        "--description", "Given by hand.", "--image", image, "--rule", "manual")).group(1)
    c = sqlite3.connect(db, timeout=30)
    try:
        cid = c.execute("SELECT id FROM contexts WHERE lti_context_id = ?", (sctx,)).fetchone()[0]
        bid = c.execute("SELECT id FROM badge_classes WHERE slug = ?", (slug,)).fetchone()[0]
        con = c.execute("SELECT consumer_id FROM badge_classes WHERE id = ?", (bid,)).fetchone()[0]
        for i in range(AWARDS):
            uid = c.execute("INSERT INTO users(consumer_id, lti_user_id, full_name, created_at, "
                            "updated_at) VALUES (?, ?, ?, 1, 1) RETURNING id",
                            (con, "bench-%05d" % i, "Learner %05d" % ((i * 7919) % AWARDS))
                            ).fetchone()[0]
            c.execute("INSERT INTO enrollments(user_id, context_id, role_flags, first_launch_at, "
                      "last_launch_at) VALUES (?, ?, 1, 1, 1)", (uid, cid))
            u = secrets.token_hex(16)
            c.execute("INSERT INTO awards(uid, badge_class_id, user_id, context_id, reason, salt, "
                      "state, narrative, issued_at, assertion_url, created_at, updated_at) "
                      "VALUES (?, ?, ?, ?, 'manual', 's', 'issued', 'Helped.', ?, ?, 1, 1)",
                      (u, bid, uid, cid, 1700000000 + i * 3600,
                       base + "/ob/v2/assertions/" + u))
        c.commit()
    finally:
        c.close()
    u = urllib.parse.urlsplit(location)
    table = base + "/badges/awards?" + u.query
    for label, url in (("newest first", table), ("by learner", table + "&sort=learner&dir=asc")):
        page = urllib.request.urlopen(url).read()
        rows = page.count(b"<tr data-award=")
        if rows < 200:
            die("the awards table shows %d rows" % rows)
        n, rps, p50, p99, cpu = measure(pid, url)
        print("awards table, %d awards, %s: %d rows, %d bytes; %d pages, %.0f pages/s, p50 %s, "
              "p99 %s; server CPU per page: %.0f us" % (AWARDS, label, rows, len(page), n, rps,
                                                       p50, p99, cpu))


def run(build):
    """Measures one build; the learner page's server CPU per page (us)."""
    BIN = os.path.join(build, "ltibadges")
    PRESIGN = os.path.join(build, "bench", "presign")
    print("== %s" % build)
    for b in (BIN, PRESIGN):
        if not os.access(b, os.X_OK):
            die("%s not found: build first (cmake -B build && cmake --build build -j2)" % b)
    if not shutil.which("wrk"):
        die("wrk not found: install it (apt-get install wrk)")
    tmp = tempfile.mkdtemp(prefix="ltibadges-bench-pages-")
    db = os.path.join(tmp, "bench.db")
    server = None
    try:
        def cli(*args):
            p = subprocess.run([BIN] + list(args) + ["--db", db], capture_output=True, text=True)
            if p.returncode != 0:
                die("%s: %s" % (" ".join(args), p.stderr.strip()))
            return p.stdout

        cli("db", "migrate")
        out = cli("consumer", "add", "Bench LMS")
        key = re.search(r"^key=(\S+)", out, re.M).group(1)
        secret = re.search(r"^secret=(\S+)", out, re.M).group(1)
        ini = os.path.join(tmp, "bench.ini")
        with open(ini, "w") as f:
            f.write("[server]\naccess_log = off\n")
        server = subprocess.Popen([BIN, "serve", "--config", ini, "--db", db, "--listen",
                                   "127.0.0.1:0"], stdout=subprocess.PIPE,
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

        # a learner's launch, signed by bench/presign with the server's own lti/ code
        bodies = subprocess.run([PRESIGN, key, secret, base + "/lti/launch", "200", "-"],
                                capture_output=True, text=True, check=True).stdout.split("\n")
        body = next(b for b in bodies if b and "roles=Learner" in b and "Instructor" not in b)
        staff = next(b for b in bodies if b and "roles=Instructor" in b)
        params = dict(urllib.parse.parse_qsl(body))
        user, ctx = params["user_id"], params["context_id"]

        image = os.path.join(tmp, "badge.png")
        with open(image, "wb") as f:
            f.write(png())
        cli("context", "enable", "--consumer", key, "--context", ctx)
        for i in range(BADGES):
            cli("badge", "create", "--consumer", key, "--context", ctx, "--name",
                "Badge %d of the course" % i, "--description", "What badge %d stands for." % i,
                "--image", image, "--rule", "score:0.%d:link-%d" % (5 + i % 4, i),
                "--criteria", "Reach the score on activity %d.\n\nAsk for help early." % i,
                "--criteria-url", "https://lms.example.edu/criteria/%d" % i)
        opener = urllib.request.build_opener(NoRedirect)
        req = urllib.request.Request(base + "/lti/launch", data=body.encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        try:
            opener.open(req)
            die("the launch was not redirected")
        except urllib.error.HTTPError as e:
            if e.code != 303:
                die("the launch answered %d" % e.code)
            location = e.headers["Location"]
        # half earned (a grade of 0.9 on their link), half with a grade short of the rule
        for i in range(BADGES):
            cli("grade", "record", "--consumer", key, "--context", ctx, "--user", user,
                "--resource-link", "link-%d" % i, "--score", "0.9" if i % 2 == 0 else "0.3")
        deadline = time.monotonic() + 60
        while True:
            awards = json.loads(cli("award", "list", "--json"))
            if sum(a["state"] == "issued" for a in awards) >= (BADGES + 1) // 2:
                break
            if time.monotonic() > deadline:
                die("awards were not issued in time")
            time.sleep(0.2)

        url = base + urllib.parse.urlsplit(location).path + "?" + urllib.parse.urlsplit(
            location).query
        page = urllib.request.urlopen(url).read()
        if page.count(b'class="badge earned"') < BADGES // 2 or \
                page.count(b'class="badge available"') < BADGES // 2 - 1:
            die("the page does not show the badges")
        n, rps, p50, p99, cpu = measure(server.pid, url)
        print("learner page: %d badges (%d earned), %d bytes" % (
            BADGES, page.count(b'class="badge earned"'), len(page)))
        print("wrk -t2 -c%d -d%ds: %d pages, %.0f pages/s, p50 %s, p99 %s" % (
            CONNS, DURATION, n, rps, p50, p99))
        print("server CPU per page: %.0f us" % cpu)
        learner_cpu = cpu

        # one of the learner's badges at its assertion URL: the public page, then the document
        issued = next(a for a in awards if a["state"] == "issued")
        aurl = base + urllib.parse.urlsplit(issued["assertion_url"]).path
        html = urllib.request.urlopen(urllib.request.Request(
            aurl, headers={"Accept": BROWSER})).read()
        if b'data-state="valid"' not in html:
            print("public assertion page: not in this build")
            return learner_cpu
        doc = urllib.request.urlopen(aurl).read()
        for label, accept, body in (("public assertion page (browser)", BROWSER, html),
                                    ("assertion document (JSON-LD)", None, doc)):
            n, rps, p50, p99, cpu = measure(server.pid, aurl, accept)
            print("%s: %d bytes; %d pages, %.0f pages/s, p50 %s, p99 %s; server CPU per page: "
                  "%.0f us" % (label, len(body), n, rps, p50, p99, cpu))
        awards_table(cli, opener, base, key, staff, image, db, server.pid)
        return learner_cpu
    finally:
        if server:
            server.terminate()
            server.wait(10)
        if os.environ.get("BENCH_KEEP") == "1":
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    cpus = [run(b) for b in BUILDS]
    if len(cpus) > 1:
        print("learner page, server CPU per page: " + ", ".join(
            "%s %.0f us" % (os.path.relpath(b), c) for b, c in zip(BUILDS, cpus)))


if __name__ == "__main__":
    main()
