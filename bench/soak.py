#!/usr/bin/python3
"""bench/soak.py BUILD MINUTES - a soak of `ltibadges serve` (bench/soak.sh runs it).

For MINUTES, 64 connections (one thread each, keep-alive) send the traffic of a
term to the real server on 127.0.0.1: signed launches of learners in a few
courses each (a fresh lis_result_sourcedid per launch, as Moodle sends), the
learner's page of each launch, and grades pushed to /lti/outcomes (signed POX)
that earn a course's score badge. The LMS's outcomes service is the contract
fake of tests/integration/fakelms.py (Moodle's), which the server reads grades
from and writes passbacks to.

Every minute it prints requests, errors, 5xx, the server's RSS and open
descriptors, the WAL's size and the outbox. At the end, after the outbox
drained: no error, no 5xx, every award a learner earned issued once (none
missing, none extra, none failed), descriptors and RSS flat after the first
minutes, the WAL bounded, and a clean exit on SIGTERM. Exit status 1 otherwise.
"""
import http.client
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import fakelms  # noqa: E402
import ltitest as lt  # noqa: E402
from oauthlib import oauth1  # noqa: E402

CONNS = 64
COURSES = 12
LEARNERS = 3000
LINKS = 3            # graded activities per course
THRESHOLD = 0.8      # each course's score badge
P_GRADE = 0.25       # share of launches followed by a grade pushed to /lti/outcomes
WAL_BOUND = 80 << 20  # the writer restarts the WAL past 64 MiB
POOL_FDS = 2 * 16 + 8  # LIMIT_STORE_READERS readers (database and WAL each), libcurl's cache

# each learner's courses: two or three of the COURSES
rnd = random.Random(7)
ENROLLED = {u: rnd.sample(range(COURSES), rnd.choice((2, 3))) for u in range(LEARNERS)}


def server_stats(pid, db):
    with open("/proc/%d/status" % pid) as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)
    wal = db + "-wal"
    return {
        "rss_mib": int(st["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir("/proc/%d/fd" % pid)),
        "wal_mib": (os.path.getsize(wal) if os.path.exists(wal) else 0) / (1 << 20),
    }


def outbox(db):
    rows = lt.query(db, "SELECT state, count(*) AS n FROM awards GROUP BY state")
    return {r["state"]: r["n"] for r in rows}


class Counters:
    def __init__(self):
        self.mu = threading.Lock()
        self.requests = 0
        self.errors = []
        self.status5xx = 0
        self.earned = set()  # (course, user) with a grade at or over the threshold

    def add(self, n=1):
        with self.mu:
            self.requests += n

    def server_error(self):
        with self.mu:
            self.status5xx += 1

    def error(self, what):
        with self.mu:
            if len(self.errors) < 20:
                self.errors.append(what)
            else:
                self.errors.append(None)


def worker(srv, key, secret, lms, deadline, c, seed):
    r = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    launch_url = srv.public_url + "/lti/launch"
    outcomes_url = srv.public_url + "/lti/outcomes"

    def request(method, path, body=None, headers=None):
        nonlocal conn
        for attempt in (0, 1):
            try:
                conn.request(method, path, body=body, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                return resp.status, resp, data
            except (ConnectionError, http.client.HTTPException):
                # a keep-alive connection the server closed between requests: once more
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    while time.monotonic() < deadline:
        # a learner is one thread's (one browser): their launch and its grade are not
        # overtaken by another launch of theirs with a newer sourcedid
        u = r.randrange(seed, LEARNERS, CONNS)
        course = r.choice(ENROLLED[u])
        link = r.randrange(LINKS)
        sourcedid = fakelms.moodle_sourcedid(instanceid=course * 10 + link, userid=u,
                                             launchid=r.getrandbits(31))
        lms.add_result(sourcedid, consumer_key=key)
        params = [
            ("lti_message_type", "basic-lti-launch-request"), ("lti_version", "LTI-1p0"),
            ("resource_link_id", "c%d-l%d" % (course, link)),
            ("resource_link_title", "Quiz %d" % link),
            ("context_id", "course-%d" % course), ("context_title", "Course %d" % course),
            ("context_label", "C%d" % course), ("user_id", "u%d" % u), ("roles", "Learner"),
            ("lis_person_name_full", "Learner %d" % u),
            ("lis_person_contact_email_primary", "u%d@example.edu" % u),
            ("lis_outcome_service_url", lms.moodle_url()),
            ("lis_result_sourcedid", sourcedid),
            ("launch_presentation_locale", "en"),
            ("launch_presentation_return_url", "https://lms.example.edu/course/%d" % course),
            ("tool_consumer_info_product_family_code", "moodle"),
        ]
        body = lt.sign(launch_url, params, key, secret)
        try:
            status, resp, _ = request("POST", "/lti/launch", body,
                                      {"Content-Type": lt.FORM})
            c.add()
            if status >= 500:
                c.server_error()
            if status != 303:
                c.error("launch answered %d" % status)
                continue
            loc = urlsplit(resp.getheader("Location"))
            status, _, page = request("GET", loc.path + "?" + loc.query)
            c.add()
            if status >= 500:
                c.server_error()
            if status != 200 or b"</html>" not in page:
                c.error("page answered %d" % status)
                continue
            if r.random() < P_GRADE:
                score = round(r.uniform(0.4, 1.0), 2)
                pox = fakelms.pox_request(fakelms.REPLACE, sourcedid, score=score,
                                          message_id=secrets.token_hex(8))
                client = oauth1.Client(key, client_secret=secret,
                                       signature_type=oauth1.SIGNATURE_TYPE_AUTH_HEADER)
                _, h, _ = client.sign(outcomes_url, http_method="POST", body=pox,
                                      headers={"Content-Type": "application/xml"})
                status, _, answer = request("POST", "/lti/outcomes", pox, dict(h))
                c.add()
                if status >= 500:
                    c.server_error()
                if status != 200 or b"<imsx_codeMajor>success</imsx_codeMajor>" not in answer:
                    c.error("outcomes answered %d: %r" % (status, fakelms.parse_response(answer)
                                                          if status == 200 else answer[:200]))
                    continue
                if score >= THRESHOLD:
                    with c.mu:
                        c.earned.add((course, u))
        except Exception as e:  # noqa: BLE001 - any failure of a request is reported
            c.error("%s: %s" % (type(e).__name__, e))
    conn.close()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench/soak.py BUILD MINUTES")
    build, minutes = os.path.abspath(sys.argv[1]), float(sys.argv[2])
    os.environ["LTIBADGES_BIN"] = lt.BIN = os.path.join(build, "ltibadges")
    tmp = tempfile.mkdtemp(prefix="ltibadges-soak-")
    db = os.path.join(tmp, "ltibadges.db")
    key, secret = lt.add_consumer(db, "Soak Moodle")
    png = os.path.join(tmp, "badge.png")
    with open(png, "wb") as f:
        f.write(lt.png_bytes(8, 8))
    slugs = {}
    for course in range(COURSES):
        ctx = "course-%d" % course
        lt.run_cli("context", "enable", "--consumer", key, "--context", ctx, "--db", db)
        # completing the course is the score badge's score too: both badges or neither
        lt.run_cli("context", "pass-mark", "--consumer", key, "--context", ctx, "--score",
                   str(THRESHOLD), "--db", db)
        p = lt.run_cli("badge", "create", "--consumer", key, "--context", ctx, "--name",
                       "Course %d: quiz master" % course, "--description", "Scored 0.8",
                       "--image", png, "--rule", "score:%s" % THRESHOLD, "--db", db)
        if p.returncode != 0:
            sys.exit("badge create: %s" % p.stderr)
        slugs[course] = p.stdout.strip().split("=", 1)[1]
    cfg = os.path.join(tmp, "soak.ini")
    with open(cfg, "w") as f:
        f.write("[server]\naccess_log = off\nthreads = 2\n[outcomes]\nallow_loopback = yes\n")
    lms = fakelms.FakeLMS({key: secret})
    lms.start()
    srv = lt.Server(tmp, db=db, config=cfg)
    srv.start()
    pid = srv.proc.pid
    idle = server_stats(pid, db)  # before any traffic: what the descriptors come back to
    c = Counters()
    deadline = time.monotonic() + minutes * 60
    threads = [threading.Thread(target=worker, args=(srv, key, secret, lms, deadline, c, i),
                                daemon=True) for i in range(CONNS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    samples = []
    print("minute  requests  req/s  errors  5xx  RSS MiB  fds  WAL MiB  outbox", flush=True)
    last_req, last_t = 0, t0
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=max(0.0, min(60.0, deadline - time.monotonic())) / CONNS + 0.01)
        now = time.monotonic()
        if now - last_t >= 60 or not any(t.is_alive() for t in threads):
            s = server_stats(pid, db)
            samples.append(s)
            print("%6.1f  %8d  %5.0f  %6d  %3d  %7.1f  %3d  %7.1f  %s"
                  % ((now - t0) / 60, c.requests, (c.requests - last_req) / (now - last_t),
                     len(c.errors), c.status5xx, s["rss_mib"], s["fds"], s["wal_mib"],
                     json.dumps(outbox(db), sort_keys=True)), flush=True)
            last_req, last_t = c.requests, now
    # the outbox drains: every award issued (a state, bounded in time)
    drain_deadline = time.monotonic() + 120
    while True:
        ob = outbox(db)
        if not ob.get("queued") and not ob.get("issuing"):
            break
        if time.monotonic() > drain_deadline:
            break
        time.sleep(0.2)
    final = server_stats(pid, db)
    if os.environ.get("SOAK_SHOW_FDS"):
        for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
            print("fd %s -> %s" % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
    rc, elapsed = srv.stop()
    lms.stop()

    failures = []
    if c.errors:
        failures.append("errors: %r" % [e for e in c.errors if e][:20])
    if c.status5xx:
        failures.append("%d answers were 5xx" % c.status5xx)
    rows = lt.query(db, "SELECT a.state, b.slug, x.lti_context_id, u.lti_user_id FROM awards a "
                        "JOIN badge_classes b ON b.id = a.badge_class_id "
                        "JOIN contexts x ON x.id = b.context_id "
                        "JOIN users u ON u.id = a.user_id")
    by_slug = {v: k for k, v in slugs.items()}
    # each course's score badge, and its completion badge (made at the first completion)
    for kind, pick in (("score", lambda r: r["slug"] in by_slug),
                       ("completion", lambda r: r["slug"] not in by_slug)):
        got = [(int(r["lti_context_id"].split("-")[1]), int(r["lti_user_id"][1:]))
               for r in rows if pick(r)]
        if len(got) != len(set(got)):
            failures.append("a %s award was made twice" % kind)
        if set(got) != c.earned:
            failures.append("%s awards differ from what was earned: %d missing, %d extra"
                            % (kind, len(c.earned - set(got)), len(set(got) - c.earned)))
    states = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    if set(states) - {"issued"}:
        failures.append("awards not issued: %r" % states)
    # the clients are gone and the outbox is empty: every descriptor a request took is back,
    # but for the pools that grew to the traffic (sqlite readers, two each; libcurl's
    # connections to the LMS); and during the traffic the count stays flat
    if final["fds"] > idle["fds"] + POOL_FDS:
        failures.append("descriptors leaked: %d before the traffic, %d after it"
                        % (idle["fds"], final["fds"]))
    if len(samples) >= 3 and max(s["fds"] for s in samples[2:]) > samples[1]["fds"] + CONNS:
        failures.append("descriptors grew during the traffic: %r"
                        % [s["fds"] for s in samples])
    if len(samples) >= 3:
        ref = samples[1]
        if final["rss_mib"] > ref["rss_mib"] * 1.25 + 4:
            failures.append("RSS grew: %.1f MiB after the second minute, %.1f at the end"
                            % (ref["rss_mib"], final["rss_mib"]))
    walmax = max(s["wal_mib"] for s in samples + [final])
    if walmax * (1 << 20) > WAL_BOUND:
        failures.append("the WAL reached %.1f MiB" % walmax)
    if rc != 0:
        failures.append("serve exited %r on SIGTERM" % rc)
    print("soak: descriptors %d before the traffic, %d after it; RSS %.1f MiB idle, %.1f at the "
          "end" % (idle["fds"], final["fds"], idle["rss_mib"], final["rss_mib"]))
    print("soak: %.1f min, %d requests, %d earned awards issued once each (%r), WAL at most "
          "%.1f MiB, stop in %.1f s" % (minutes, c.requests, len(c.earned), states, walmax,
                                         elapsed))
    if failures:
        print("soak: FAILED\n  " + "\n  ".join(failures))
        print("server stderr tail:\n" + srv.stderr()[-3000:])
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
