#!/usr/bin/python3
"""The README's reverse-proxy examples, run for real: the nginx and the Caddy
blocks of "Behind a reverse proxy" are taken from README.md (so the examples
cannot drift from what is tested), given loopback ports and a self-signed
certificate made here with openssl, and run with Debian's nginx and caddy in
front of a real ltibadges whose public_url is the proxy's HTTPS URL.

Through each proxy, from another loopback address (127.0.0.2) so that the
client and the proxy differ: a launch signed for the public URL is accepted and
its page served with ltibadges's frame-ancestors for the launching LMS and no
X-Frame-Options; ltibadges, trusting the proxy ([server] trusted_proxies), logs
the client's address, never the X-Forwarded-For the client forged; a request
for a former public URL (the proxy passes Host on) is redirected to the public
URL; the same launch signed for the URL ltibadges listens on is
refused (the public URL is what counts); a launch over [server] max_body and a
page form of 900 KiB both reach ltibadges, which answers them itself;
/metrics is refused through the proxy (its X-Forwarded-For tells ltibadges the
request is not from this machine); and the proxy's access log (nginx) holds the
path without the session token.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ltitest as lt  # noqa: E402
from ltitest import base_launch  # noqa: E402

README = os.path.join(os.path.dirname(os.path.dirname(HERE)), "README.md")
SECTION = "## Behind a reverse proxy"
LMS_ORIGIN = "https://lms.example.edu"
CLIENT = "127.0.0.2"        # the browser's address, as the proxy sees it
FORGED = "198.51.100.7"     # an X-Forwarded-For the browser sends itself
# ltibadges's access log line of a launch (base/log.h's logfmt): its client address
LAUNCH_LOG_RE = re.compile(r"^time=\S+ level=info msg=request client=(\S+) method=POST "
                           r"path=/lti/launch ", re.M)
BOUND = 20.0                # seconds a proxy may take to start or stop, a log line to appear
FORMER = "localhost"        # the host name of a former public URL, on the proxy's port
UPLOAD = 900 * 1024         # a page form near the largest ltibadges takes (976 KiB)


def readme_block(lang):
    """The one ```LANG block of the README's reverse-proxy section."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    if SECTION not in text:
        raise AssertionError("README.md has no section %r" % SECTION)
    sec = text[text.index(SECTION):]
    end = sec.find("\n## ", 1)
    sec = sec if end < 0 else sec[:end]
    blocks = re.findall(r"^```%s\n(.*?)^```$" % re.escape(lang), sec, re.S | re.M)
    if len(blocks) != 1:
        raise AssertionError("README.md's %r section has %d ```%s blocks, not one"
                             % (SECTION, len(blocks), lang))
    return blocks[0]


def render(text, pairs):
    """`text` with each (old, new) replaced; each `old` must be there exactly once."""
    for old, new in pairs:
        n = text.count(old)
        if n != 1:
            raise AssertionError("the README example holds %r %d times, not once: the test "
                                 "cannot render it" % (old, n))
        text = text.replace(old, new)
    return text


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(program):
    path = shutil.which(program) or next(
        (p for p in ("/usr/sbin/" + program, "/usr/bin/" + program) if os.path.exists(p)), None)
    if not path:
        raise AssertionError("%s is not installed (sh scripts/deps.sh test installs it)" % program)
    return path


def wait_for(what, check, proc=None, log=None):
    """Waits until check() is true; fails if `proc` exits or BOUND passes."""
    deadline = time.monotonic() + BOUND
    while not check():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s: the process exited (%d) first; its log: %s"
                                 % (what, proc.returncode, read(log)[-3000:]))
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s; log: %s"
                                 % (what, BOUND, read(log)[-3000:]))
        time.sleep(0.05)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except (FileNotFoundError, TypeError):
        return ""


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Proxy:
    """A proxy process on 127.0.0.1:port (subclasses: how to configure and start it)."""

    name = None

    def __init__(self, workdir, port, backend_port, cert, key):
        self.dir = workdir
        self.port = port
        self.backend_port = backend_port
        self.cert = cert
        self.key = key
        self.log = os.path.join(workdir, "proxy.log")
        self.proc = None

    def start(self):
        self.write_config()
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self._out, stderr=subprocess.STDOUT,
                                     env=self.env(), cwd=self.dir)
        wait_for("%s listening on 127.0.0.1:%d" % (self.name, self.port),
                 lambda: accepts(self.port), self.proc, self.log)

    def env(self):
        return lt.clean_env()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=BOUND)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=BOUND)
        if getattr(self, "_out", None):
            self._out.close()
            self._out = None


class Nginx(Proxy):
    name = "nginx"

    def write_config(self):
        # the worker runs as nobody when the master is root: its temporary files (request
        # bodies over 16 KiB) go to a directory it can reach, not the test's 0700 one
        self.spool = tempfile.mkdtemp(prefix="ltibadges-nginx-")
        os.chmod(self.spool, 0o755)
        self.access_log = os.path.join(self.dir, "access.log")
        site = render(readme_block("nginx"), [
            ("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % self.port),
            ("/etc/letsencrypt/live/badges.example.edu/fullchain.pem", self.cert),
            ("/etc/letsencrypt/live/badges.example.edu/privkey.pem", self.key),
            ("/var/log/nginx/ltibadges.log", self.access_log),
            ("http://127.0.0.1:8080;", "http://127.0.0.1:%d;" % self.backend_port),
        ])
        temps = "".join("    %s_temp_path %s/%s;\n" % (t, self.spool, t)
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("pid %s/nginx.pid;\nworker_processes 1;\nevents { worker_connections 64; }\n"
                    "http {\n%s    access_log off;\n%s\n}\n"
                    % (self.dir, temps, site))
        test = subprocess.run(self.base() + ["-t"], capture_output=True, text=True,
                              timeout=BOUND, env=self.env())
        if test.returncode != 0:
            raise AssertionError("nginx -t refuses the README's example: %s" % test.stderr)

    def base(self):
        return [need("nginx"), "-p", self.dir, "-e", os.path.join(self.dir, "error.log"),
                "-c", self.conf, "-g", "daemon off;"]

    def command(self):
        return self.base()

    def stop(self):
        super().stop()
        shutil.rmtree(getattr(self, "spool", ""), ignore_errors=True)


class Caddy(Proxy):
    name = "caddy"

    def write_config(self):
        # what the test adds: no admin endpoint, certificates from files (never ACME),
        # loopback only, state in the test's directory
        site = render(readme_block("caddy"), [
            ("badges.example.edu {",
             "https://127.0.0.1:%d, https://%s:%d {\n\ttls %s %s"
             % (self.port, FORMER, self.port, self.cert, self.key)),
            ("reverse_proxy 127.0.0.1:8080", "reverse_proxy 127.0.0.1:%d" % self.backend_port),
        ])
        self.conf = os.path.join(self.dir, "Caddyfile")
        with open(self.conf, "w") as f:
            f.write("{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n"
                    "\tstorage file_system %s/data\n}\n\n%s" % (self.dir, site))

    def env(self):
        return lt.clean_env({"HOME": self.dir, "XDG_DATA_HOME": self.dir,
                             "XDG_CONFIG_HOME": self.dir})

    def command(self):
        return [need("caddy"), "run", "--adapter", "caddyfile", "--config", self.conf]


class ProxyTests:
    """Mixed into a TestCase with PROXY, a Proxy subclass."""

    PROXY = None

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(lt.BIN):
            raise AssertionError("no binary at %s (set LTIBADGES_BIN)" % lt.BIN)
        cls.tmp = tempfile.mkdtemp(prefix="ltibadges-proxy-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key_file = os.path.join(cls.tmp, "key.pem")
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                            "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost,IP:127.0.0.1",
                            "-keyout", cls.key_file, "-out", cls.cert],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("openssl req failed: %s" % p.stderr)
        cls.db = os.path.join(cls.tmp, "ltibadges.db")
        cls.key, cls.secret = lt.add_consumer(cls.db, "Proxied LMS")
        cls.port = free_port()
        cls.public = "https://127.0.0.1:%d" % cls.port
        cfg = os.path.join(cls.tmp, "ltibadges.ini")
        with open(cfg, "w") as f:
            f.write("[server]\ntrusted_proxies = 127.0.0.1\n"
                    "former_public_urls = https://%s:%d\n" % (FORMER, cls.port))
        cls.server = lt.Server(cls.tmp, db=cls.db, public_url=cls.public, config=cfg)
        cls.addClassCleanup(cls.server.kill)
        cls.server.start()
        pdir = os.path.join(cls.tmp, cls.PROXY.name)
        os.mkdir(pdir)
        cls.proxy = cls.PROXY(pdir, cls.port, cls.server.port, cls.cert, cls.key_file)
        cls.addClassCleanup(cls.proxy.stop)
        cls.proxy.start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        rc, _ = cls.server.stop()
        if rc != 0:
            raise AssertionError("ltibadges exited with %r: %s"
                                 % (rc, cls.server.stderr()[-2000:]))

    def https(self, method, path, body=None, headers=None):
        """One request to the proxy over TLS (its certificate verified), from CLIENT."""
        ctx = ssl.create_default_context(cafile=self.cert)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=BOUND,
                                           source_address=(CLIENT, 0))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return lt.Response(resp.status, resp.reason, resp.msg, resp.read())
        finally:
            conn.close()

    def launch(self, sign_url, **over):
        body = lt.sign(sign_url, base_launch(**over), self.key, self.secret)
        return self.https("POST", "/lti/launch", body,
                          {"Content-Type": lt.FORM, "Origin": LMS_ORIGIN,
                           "X-Forwarded-For": FORGED})

    def from_ltibadges(self, resp):
        """Whether ltibadges wrote this answer (every one of its replies has nosniff)."""
        return resp.header("X-Content-Type-Options") == "nosniff"

    def test_launch_through_the_proxy(self):
        resp = self.launch(self.public + "/lti/launch")
        self.assertEqual(resp.status, 303, resp)
        loc = resp.header("Location")
        self.assertTrue(loc.startswith(self.public + "/badges?s="), loc)
        page = self.https("GET", urlsplit(loc).path + "?" + urlsplit(loc).query)
        self.assertEqual(page.status, 200, page)
        csp = page.header("Content-Security-Policy") or ""
        self.assertIn("frame-ancestors 'self' " + LMS_ORIGIN, csp,
                      "the page may be framed by the LMS that launched it")
        self.assertEqual(len(page.headers.get_all("Content-Security-Policy")), 1, page.headers)
        self.assertIsNone(page.header("X-Frame-Options"), "no X-Frame-Options through the proxy")
        token = loc.split("s=", 1)[1]
        self.assertIsNotNone(lt.session(self.db, token))

    def test_client_address_is_the_browsers(self):
        resp = self.launch(self.public + "/lti/launch")
        self.assertEqual(resp.status, 303, resp)
        log = self.server.stderr_path

        def launch_lines():
            return [m.group(1) for m in LAUNCH_LOG_RE.finditer(read(log))]
        wait_for("ltibadges's access log line of the launch", launch_lines, log=log)
        self.assertEqual(set(launch_lines()), {CLIENT},
                         "the browser's address, not the proxy's or the forged one")
        self.assertNotIn(FORGED, read(log))

    def test_former_public_url_is_redirected(self):
        for method, status in (("GET", 301), ("POST", 308)):
            with self.subTest(method=method):
                resp = self.https(method, "/ob/v2/issuer?x=1",
                                  b"" if method == "POST" else None,
                                  {"Host": "%s:%d" % (FORMER, self.port)})
                self.assertEqual(resp.status, status, resp)
                self.assertEqual(resp.header("Location"), self.public + "/ob/v2/issuer?x=1")

    def test_launch_signed_for_the_backend_url_is_refused(self):
        resp = self.launch("http://127.0.0.1:%d/lti/launch" % self.server.port)
        self.assertEqual(resp.status, 401, resp)
        self.assertIn("signature does not match", resp.plain)

    def test_metrics_are_not_shown_through_the_proxy(self):
        # the proxy connects from loopback, where /metrics is shown: its X-Forwarded-For is
        # what keeps the world's requests out
        self.assertEqual(lt.http_request(self.server.port, "GET", "/metrics").status, 200)
        resp = self.https("GET", "/metrics")
        self.assertEqual(resp.status, 403, resp)
        self.assertTrue(self.from_ltibadges(resp), resp)

    def test_ltibadges_answers_large_bodies_itself(self):
        big = self.launch(self.public + "/lti/launch", custom_pad="x" * (70 * 1024))
        self.assertEqual(big.status, 413, big)
        self.assertTrue(self.from_ltibadges(big), "413 from ltibadges, not the proxy: %r" % big)
        self.assertIn("larger than 65536 bytes", big.plain)

        # a page form ltibadges reads: 300 KiB of values, each byte escaped (%41), 900 KiB on
        # the wire, under its 976 KiB for a form; without a session it answers 403
        form = b"s=1-" + b"0" * 64 + b"&name=" + b"%41" * (UPLOAD // 3)
        up = self.https("POST", "/badges/save", form, {"Content-Type": lt.FORM})
        self.assertTrue(self.from_ltibadges(up), "the proxy let %d bytes through: %r"
                        % (len(form), up))
        self.assertNotEqual(up.status, 413, up)


class NginxTest(ProxyTests, unittest.TestCase):
    PROXY = Nginx

    def test_access_log_has_no_token(self):
        resp = self.launch(self.public + "/lti/launch")
        self.assertEqual(resp.status, 303, resp)
        loc = urlsplit(resp.header("Location"))
        self.assertEqual(self.https("GET", loc.path + "?" + loc.query).status, 200)
        log = self.proxy.access_log
        wait_for("nginx's access log line of the page", lambda: '"GET /badges"' in read(log),
                 log=log)
        text = read(log)
        self.assertIn(CLIENT + " ", text)
        self.assertNotIn(loc.query, text)
        self.assertNotIn("s=", text)


class CaddyTest(ProxyTests, unittest.TestCase):
    PROXY = Caddy


if __name__ == "__main__":
    unittest.main(verbosity=2)
