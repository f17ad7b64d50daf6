#!/usr/bin/python3
"""Browser tests: the real server on 127.0.0.1, Debian's chromium driven by
playwright-core (npm) from flows.js, axe-core for accessibility.

    run.py [SHOTS_DIR [GROUP]]

This driver starts `ltibadges serve` in a temporary directory (port 0), adds
a consumer, writes the images the flows use, and runs `node flows.js
CONFIG.json` with a line protocol between the two:

  node -> driver, on node's stdout:  @@rpc {"id": N, "op": ..., ...}
  driver -> node, on node's stdin:   {"id": N, "ok": true, "result": ...}

so that the flows can have a launch signed right when they use it (the
signature covers a timestamp and a nonce), run the ltibadges CLI (badges,
grades, awards) and read the database, as an LMS and an administrator would.
Every other line node prints is passed through. Screenshots go to SHOTS_DIR
(default $LTIBADGES_BROWSER_SHOTS, else a temporary directory). GROUP runs
the flows of that group (and those they need) only: "main" (the default),
"awards", "public" or "editor", which ctest runs as four tests side by side, each in
its own SHOTS_DIR and within TIMEOUT.

The test fails, never skips, when chromium, node or the npm packages
(`npm ci` in tests/browser) are missing. Run it with Debian's /usr/bin/python3
(python3-oauthlib); $LTIBADGES_BIN names the binary as for tests/integration.
"""
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import ltitest as lt  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
TIMEOUT = float(os.environ.get("LTIBADGES_BROWSER_TIMEOUT", "420"))
RPC_PREFIX = "@@rpc "


def fail(msg):
    print("browser: FAIL: " + msg, flush=True)
    sys.exit(1)


def png_bytes(w=64, h=64):
    """A small RGBA PNG: a blue disc on transparent, written by hand (zlib, struct)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    rows = []
    for y in range(h):
        row = bytearray(b"\x00")
        for x in range(w):
            dx, dy = x - w / 2 + 0.5, y - h / 2 + 0.5
            inside = dx * dx + dy * dy <= (w / 2 - 2) ** 2
            row += b"\x0b\x5c\xad\xff" if inside else b"\x00\x00\x00\x00"
        rows.append(bytes(row))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
       '<circle cx="32" cy="32" r="30" fill="#8a3ffc"/>'
       '<path d="M20 33l8 8 16-18" fill="none" stroke="#fff" stroke-width="5"/></svg>\n')


def preflight():
    """Everything the browser needs, or a failure saying what is missing and how to get it."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("%s (apt-get install chromium, or sh scripts/deps.sh test)" % CHROMIUM)
    node = shutil.which("node")
    if not node:
        missing.append("node (apt-get install nodejs)")
    for mod in ("playwright-core", "axe-core"):
        if not os.path.isfile(os.path.join(HERE, "node_modules", mod, "package.json")):
            missing.append("tests/browser/node_modules/%s (npm ci in tests/browser, "
                           "as scripts/test.sh does)" % mod)
    if not os.path.exists(lt.BIN):
        missing.append("the ltibadges binary at %s (set LTIBADGES_BIN)" % lt.BIN)
    if missing:
        fail("missing: " + "; ".join(missing))
    return node


class Driver:
    """Answers the flows' requests: sign a launch, run the CLI, read the database."""

    def __init__(self, server, db, key, secret):
        self.server, self.db, self.key, self.secret = server, db, key, secret

    def handle(self, req):
        op = req.get("op")
        if op == "sign":
            # fields: the launch parameters (before signing); the result is what an
            # LMS puts in its auto-submitted form: the action and every signed field
            params = lt.base_launch(**req["fields"])
            url = self.server.launch_url
            body = lt.sign(url, params, req.get("key", self.key), req.get("secret", self.secret))
            return {"action": url, "fields": lt.body_pairs(body)}
        if op == "cli":
            p = lt.run_cli(*(list(req["args"]) + ["--db", self.db]), timeout=60)
            return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
        if op == "query":
            # NEEDSWORK: flows.js's one read (a course's settings) could be 'context show'
            return lt.sqlite_file_query(self.db, req["sql"], *req.get("args", []))
        if op == "execute":
            lt.setup_sql(self.db, req["sql"], *req.get("args", []))
            return None
        if op == "server_log":
            return self.server.stderr()[-int(req.get("tail", 4000)):]
        raise ValueError("unknown op %r" % op)


def run_node(node, config_path, driver, deadline):
    proc = subprocess.Popen([node, os.path.join(HERE, "flows.js"), config_path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                            cwd=HERE, start_new_session=True)
    buf = b""
    out_fd = proc.stdout.fileno()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                print("browser: FAIL: the flows did not finish in %.0f s" % TIMEOUT, flush=True)
                return 124
            r, _, _ = select.select([out_fd], [], [], min(left, 1.0))
            if not r:
                continue
            chunk = os.read(out_fd, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace")
                if not line.startswith(RPC_PREFIX):
                    print(line, flush=True)
                    continue
                req = json.loads(line[len(RPC_PREFIX):])
                try:
                    reply = {"id": req["id"], "ok": True, "result": driver.handle(req)}
                except Exception as e:  # reported to the flow that asked, which fails
                    reply = {"id": req["id"], "ok": False, "error": "%s: %s"
                             % (type(e).__name__, e)}
                try:
                    proc.stdin.write((json.dumps(reply) + "\n").encode())
                    proc.stdin.flush()
                except BrokenPipeError:
                    pass
        if buf:
            print(buf.decode("utf-8", "replace"), flush=True)
        return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        print("browser: FAIL: node did not exit", flush=True)
        return 124
    finally:
        if proc.poll() is None:
            # node and the chromium it started: its own process group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def main():
    t0 = time.monotonic()
    deadline = t0 + TIMEOUT
    node = preflight()
    shots = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LTIBADGES_BROWSER_SHOTS"))
    tmp = tempfile.mkdtemp(prefix="ltibadges-browser-")
    if not shots:
        shots = os.path.join(tmp, "browser-shots")
    os.makedirs(shots, exist_ok=True)
    for f in os.listdir(shots):  # this run's screenshots only
        if f.endswith(".png"):
            os.unlink(os.path.join(shots, f))
    server = None
    rc = 1
    try:
        db = os.path.join(tmp, "ltibadges.db")
        key, secret = lt.add_consumer(db, "Browser LMS")
        # no SMTP relay here: a learner's address is taken as given (the mailed confirmation
        # is tested against a real SMTP sink in tests/integration/test_email.py)
        ini = os.path.join(tmp, "tool.ini")
        with open(ini, "w") as f:
            f.write("[email]\naccept_unconfirmed = true\n")
        server = lt.Server(tmp, db=db, config=ini).start()
        png = os.path.join(tmp, "score.png")
        with open(png, "wb") as f:
            f.write(png_bytes())
        svg = os.path.join(tmp, "star.svg")
        with open(svg, "w") as f:
            f.write(SVG)
        config = {
            "base": server.public_url,
            "launchUrl": server.launch_url,
            "consumerKey": key,
            "images": {"png": png, "svg": svg},
            "shots": os.path.abspath(shots),
            "group": sys.argv[2] if len(sys.argv) > 2 else "main",
            "chromium": CHROMIUM,
            "tmp": tmp,
            "deadline_ms": int((deadline - time.monotonic()) * 1000) - 5000,
        }
        config_path = os.path.join(tmp, "config.json")
        with open(config_path, "w") as f:
            json.dump(config, f, indent=1)
        print("browser: server %s, screenshots in %s (setup %.1f s)"
              % (server.public_url, shots, time.monotonic() - t0), flush=True)
        rc = run_node(node, config_path, Driver(server, db, key, secret), deadline)
    finally:
        if server is not None:
            src, elapsed = server.stop()
            if src != 0:
                print("browser: FAIL: the server exited with %r after %.1f s on SIGTERM; "
                      "stderr tail:\n%s" % (src, elapsed, server.stderr()[-3000:]), flush=True)
                rc = rc or 1
            elif rc != 0:
                print("browser: server stderr tail:\n" + server.stderr()[-3000:], flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print("browser: %s in %.1f s" % ("passed" if rc == 0 else "FAILED (%d)" % rc,
                                     time.monotonic() - t0), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
