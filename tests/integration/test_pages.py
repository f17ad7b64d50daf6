#!/usr/bin/python3
"""Pages and the server's life: sessions (/badges), the XML configuration,
health, the home page and static files, the public URL behind a proxy (and
the signature base string it implies), the access log, and stopping on
SIGTERM/SIGINT with the database intact and nonces remembered."""
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, counts  # noqa: E402

NS_CC = "http://www.imsglobal.org/xsd/imslticc_v1p0"
NS_BLTI = "http://www.imsglobal.org/xsd/imsbasiclti_v1p0"
NS_LTICM = "http://www.imsglobal.org/xsd/imslticm_v1p0"
NS_LTICP = "http://www.imsglobal.org/xsd/imslticp_v1p0"
NS = {"cc": NS_CC, "blti": NS_BLTI, "lticm": NS_LTICM, "lticp": NS_LTICP}
# the access log's lines (base/log.h): time, client, method, path, status, bytes, microseconds
LOG_RE = re.compile(r"^time=(\S+) level=info msg=request client=(\S+) "
                    r"method=(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS|-) path=(\S+) "
                    r"status=(\d{1,3}) bytes=(\d+) duration_us=(\d+)$")
NO_SESSION = "open the tool again from your course"

# The element order of imsbasiclti_v1p0 (BasicLTILink.Type) and imslticc_v1p0:
# title, description, custom, extensions, launch_url, secure_launch_url, icon,
# secure_icon, vendor; then cartridge_bundle, cartridge_icon.
SCHEMA_ORDER = [
    "{%s}title" % NS_BLTI, "{%s}description" % NS_BLTI, "{%s}custom" % NS_BLTI,
    "{%s}extensions" % NS_BLTI, "{%s}launch_url" % NS_BLTI, "{%s}secure_launch_url" % NS_BLTI,
    "{%s}icon" % NS_BLTI, "{%s}secure_icon" % NS_BLTI, "{%s}vendor" % NS_BLTI,
    "{%s}cartridge_bundle" % NS_CC, "{%s}cartridge_icon" % NS_CC,
]


def parse_config_xml(testcase, server):
    resp = server.get("/lti/config.xml")
    testcase.assertEqual(resp.status, 200, resp)
    testcase.assertTrue(resp.header("Content-Type").startswith("application/xml"))
    root = ET.fromstring(resp.body)
    testcase.assertEqual(root.tag, "{%s}cartridge_basiclti_link" % NS_CC)
    return root


def check_config_xml(tc, root, public_url, title="Badges", description=None):
    launch = public_url + "/lti/launch"
    icon = public_url + "/static/icon.svg"
    tags = [c.tag for c in root]
    for t in tags:
        tc.assertIn(t, SCHEMA_ORDER, "unexpected element %s" % t)
    tc.assertEqual(tags, sorted(tags, key=SCHEMA_ORDER.index), "elements out of schema order")
    tc.assertEqual(len(tags), len(set(tags)), "an element appears twice: %s" % tags)
    for required in ("title", "description", "launch_url", "icon", "vendor", "extensions"):
        tc.assertIn("{%s}%s" % (NS_BLTI, required), tags, required)
    tc.assertIn("{%s}cartridge_bundle" % NS_CC, tags)
    tc.assertIn("{%s}cartridge_icon" % NS_CC, tags)
    tc.assertEqual(root.find("cc:cartridge_bundle", NS).get("identifierref"), "BLTI001_Bundle")
    tc.assertEqual(root.find("cc:cartridge_icon", NS).get("identifierref"), "BLTI001_Icon")
    # the IMS example puts title, description before launch_url and icon after it
    tc.assertLess(tags.index("{%s}description" % NS_BLTI), tags.index("{%s}launch_url" % NS_BLTI))

    tc.assertEqual(root.findtext("blti:title", namespaces=NS), title)
    if description is not None:
        tc.assertEqual(root.findtext("blti:description", namespaces=NS), description)
    else:
        tc.assertTrue(root.findtext("blti:description", namespaces=NS))
    tc.assertEqual(root.findtext("blti:launch_url", namespaces=NS), launch)
    tc.assertEqual(root.findtext("blti:icon", namespaces=NS), icon)
    if public_url.startswith("https://"):
        tc.assertEqual(root.findtext("blti:secure_launch_url", namespaces=NS), launch)
        tc.assertEqual(root.findtext("blti:secure_icon", namespaces=NS), icon)
    else:
        tc.assertIsNone(root.find("blti:secure_launch_url", NS))

    ext = root.find("blti:extensions", NS)
    tc.assertEqual(ext.get("platform"), "canvas.instructure.com")
    props = {p.get("name"): p.text for p in ext.findall("lticm:property", NS)}
    tc.assertEqual(props.get("privacy_level"), "public")
    host = re.match(r"https?://([^:/]+)", public_url).group(1)
    tc.assertEqual(props.get("domain"), host)
    opts = ext.findall("lticm:options", NS)
    nav = [o for o in opts if o.get("name") == "course_navigation"]
    tc.assertEqual(len(nav), 1)
    nprops = {p.get("name"): p.text for p in nav[0].findall("lticm:property", NS)}
    tc.assertEqual(nprops.get("url"), launch)
    tc.assertEqual(nprops.get("enabled"), "true")
    tc.assertEqual(nprops.get("text"), title)
    vendor = root.find("blti:vendor", NS)
    tc.assertTrue(vendor.findtext("lticp:code", namespaces=NS))
    tc.assertTrue(vendor.findtext("lticp:name", namespaces=NS))


class Pages(lt.ServerTestCase):

    def launch_ok(self, **over):
        resp = self.launch(base_launch(**over))
        token = self.assertRedirectToPage(resp)
        return resp, token

    # ---- sessions

    def test_page_without_or_with_bad_session(self):
        valid_resp, token = self.launch_ok()
        for path in ("/badges", "/badges?", "/badges?s=", "/badges?s=xyz",
                     "/badges?s=" + secrets.token_hex(32),
                     "/badges?s=" + token.upper(),
                     "/badges?s=" + token[:-1],
                     "/badges?s=" + token + "0",
                     # the right session id with another secret, and the secret under another id
                     "/badges?s=" + token.split("-")[0] + "-" + secrets.token_hex(32),
                     "/badges?s=" + str(int(token.split("-")[0]) + 1) + "-" + token.split("-")[1],
                     "/badges?s=0-" + token.split("-")[1],
                     "/badges?s=-" + token.split("-")[1],
                     "/badges?t=" + token):
            with self.subTest(path=path):
                resp = self.server.get(path)
                self.assertRefusal(resp, 403, "Forbidden", NO_SESSION)
        # a query that is not one: malformed, before any session is looked at
        self.assertRefusal(self.server.get("/badges?s=%zz"), 400, "malformed percent-encoding")
        # the valid one still works, more than once (no cookie, no one-shot token)
        for _ in range(2):
            self.page(valid_resp)

    def test_head_of_page(self):
        resp, token = self.launch_ok()
        head = self.server.request("HEAD", "/badges?s=" + token)
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")

    def test_expired_session(self):
        resp, token = self.launch_ok()
        self.page(resp)
        sess = lt.session(self.db, token)
        self.assertIsNotNone(sess)
        self.assertEqual(sess["expires_at"] - sess["created_at"], 8 * 3600,
                         "the default session lifetime is 8 hours")
        lt.setup_sql(self.db, "UPDATE sessions SET expires_at = ? WHERE id = ?",
                     int(time.time()) - 5, sess["id"])
        self.assertIsNone(lt.session(self.db, token), "'session show' knows only live ones")
        page = self.server.get(self.server.page_path(resp.header("Location")))
        self.assertRefusal(page, 403, "expired", NO_SESSION)

    def test_session_of_disabled_consumer(self):
        key, secret = lt.add_consumer(self.db, "Soon disabled")
        resp = self.launch(base_launch(), key, secret)
        self.assertRedirectToPage(resp)
        self.page(resp)
        p = lt.run_cli("consumer", "disable", key, "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        page = self.server.get(self.server.page_path(resp.header("Location")))
        self.assertRefusal(page, 403, NO_SESSION)
        p = lt.run_cli("consumer", "enable", key, "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.page(resp)

    def test_page_security_headers(self):
        resp, token = self.launch_ok()
        page = self.page(resp)
        self.assertEqual(page.header("Referrer-Policy"), "no-referrer",
                         "the token is in the URL: it must not leak through Referer")
        self.assertIn("no-store", page.header("Cache-Control"))
        self.assertEqual(page.header("X-Content-Type-Options"), "nosniff")
        csp = page.header("Content-Security-Policy")
        self.assertIn("default-src 'none'", csp)
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("<script>", page.text, "no inline script")
        self.assertNotIn(" style=", page.text, "no inline style")
        # the token travels in links and forms (no cookie in an LMS iframe), but only in
        # links to this tool's own pages and in its forms' hidden fields
        for m in re.finditer(re.escape(token), page.text):
            before = page.text[max(0, m.start() - 200):m.start()]
            attr = before[before.rfind("<"):]
            self.assertRegex(attr, r'(href="/badges[a-z/]*\?s=$|name="s" value="$)',
                             "the token only in links to our pages: %s" % attr)

    # ---- the XML configuration

    def test_config_xml(self):
        root = parse_config_xml(self, self.server)
        self.assertTrue(self.server.public_url.startswith("http://127.0.0.1:"))
        check_config_xml(self, root, self.server.public_url)

    def test_config_xml_head(self):
        resp = self.server.request("HEAD", "/lti/config.xml")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"")

    # ---- small endpoints

    def test_healthz(self):
        resp = self.server.get("/healthz")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.text.strip(), "ok")
        self.assertTrue(resp.header("Content-Type").startswith("text/plain"))
        self.assertEqual(self.server.request("HEAD", "/healthz").status, 200)

    def test_home_and_static(self):
        home = self.server.get("/")
        self.assertEqual(home.status, 200)
        self.assertIn(self.server.launch_url, home.text)
        self.assertIn(self.server.public_url + "/lti/config.xml", home.text)
        css = self.server.get("/static/style.css")
        self.assertEqual(css.status, 200)
        self.assertTrue(css.header("Content-Type").startswith("text/css"))
        icon = self.server.get("/static/icon.svg")
        self.assertEqual(icon.status, 200)
        self.assertEqual(icon.header("Content-Type"), "image/svg+xml")
        ET.fromstring(icon.body)

    def test_query_on_pages_is_ignored(self):
        self.assertEqual(self.server.get("/healthz?x=1").status, 200)


class PublicUrlBehindProxy(lt.ServerTestCase):
    server_kwargs = {"public_url": "https://Badges.Example.EDU:443/prefix"}
    PUBLIC = "https://badges.example.edu/prefix"

    def test_public_url_is_normalized(self):
        self.assertEqual(self.server.public_url, self.PUBLIC)

    def signed(self, url, **over):
        return lt.sign(url, base_launch(**over), self.key, self.secret)

    def test_launch_signed_for_public_url(self):
        for path in ("/lti/launch", "/prefix/lti/launch"):
            with self.subTest(path=path):
                resp = self.server.post_form(self.signed(self.PUBLIC + "/lti/launch"), path=path)
                token = self.assertRedirectToPage(resp)
                self.assertEqual(resp.header("Location"), self.PUBLIC + "/badges?s=" + token)
                page = self.server.get("/prefix/badges?s=" + token)
                self.assertEqual(page.status, 200)
                self.assertIn('href="/prefix/static/style.css"', page.text)
                self.assertEqual(self.server.get("/badges?s=" + token).status, 200)
                self.assertEqual(self.server.get("/prefix/static/style.css").status, 200)

    def test_launch_signed_for_the_url_as_written(self):
        # the LMS may keep the URL as typed: oauthlib normalizes it as RFC 5849 requires
        resp = self.server.post_form(self.signed("https://Badges.Example.EDU:443/prefix/lti/"
                                                 "launch"))
        self.assertRedirectToPage(resp)

    def test_other_base_urls_fail(self):
        port = self.server.port
        for url in ("http://badges.example.edu/prefix/lti/launch",
                    "https://badges.example.edu/lti/launch",
                    "https://badges.example.edu:8443/prefix/lti/launch",
                    "https://badges.example.edu/prefix/lti/launch/",
                    "https://badges.example.edu/PREFIX/lti/launch",
                    "http://127.0.0.1:%d/lti/launch" % port,
                    "http://127.0.0.1:%d/prefix/lti/launch" % port):
            with self.subTest(url=url):
                before = counts(self.db)
                resp = self.server.post_form(self.signed(url), path="/prefix/lti/launch")
                self.assertRefusal(resp, 401, "signature does not match")
                self.assertNothingWritten(before)

    def test_config_xml_with_https(self):
        root = parse_config_xml(self, self.server)
        check_config_xml(self, root, self.PUBLIC)
        self.assertEqual(self.server.get("/prefix/lti/config.xml").status, 200)

    def test_paths_outside_the_prefix(self):
        self.assertEqual(self.server.get("/prefix/healthz").status, 200)
        self.assertEqual(self.server.get("/prefixx/healthz").status, 404)
        self.assertEqual(self.server.get("/prefix").status, 200)


class ConfiguredTool(lt.ServerTestCase):
    TITLE = 'Badges <&> "Q" \'s'
    DESC = "Earn badges & show them <here>"

    CONFIG = ("[server]\npublic_url = http://Tool.Example.ORG:8080/\nthreads = 3\n"
              "[lti]\nsession_ttl = 60\ntool_title = %s\ntool_description = %s\n"
              % (TITLE, DESC))

    def test_title_and_description_in_config_xml(self):
        self.assertEqual(self.server.public_url, "http://tool.example.org:8080")
        root = parse_config_xml(self, self.server)
        check_config_xml(self, root, "http://tool.example.org:8080", title=self.TITLE,
                         description=self.DESC)

    def test_session_ttl(self):
        resp = self.launch(base_launch())
        token = self.assertRedirectToPage(resp)
        sess = lt.session(self.db, token)
        self.assertEqual(sess["expires_at"] - sess["created_at"], 60)
        # signed for the configured public URL, port included
        body = lt.sign("http://tool.example.org/lti/launch", base_launch(), self.key,
                       self.secret)
        self.assertRefusal(self.server.post_form(body), 401, "signature does not match")


class LifeCycle(unittest.TestCase):
    """Each test runs its own server and stops it."""

    def setUp(self):
        if not os.path.exists(lt.BIN):
            raise unittest.SkipTest("no binary at %s" % lt.BIN)
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-life-")
        self.db = os.path.join(self.tmp, "life.db")
        self.key, self.secret = lt.add_consumer(self.db, "Life")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, **kw):
        s = lt.Server(self.tmp, db=self.db, **kw).start()
        self.servers.append(s)
        return s

    def stop_ok(self, server, sig=signal.SIGTERM):
        rc, elapsed = server.stop(sig)
        self.assertEqual(rc, 0, "exit status after %s; stderr: %s" % (sig, server.stderr()[-2000:]))
        self.assertLess(elapsed, lt.STOP_TIMEOUT)
        return elapsed

    def launch(self, server, **over):
        body = lt.sign(server.launch_url, base_launch(**over), self.key, self.secret)
        return server.post_form(body), body

    def test_sigterm_and_sigint(self):
        for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
            with self.subTest(sig=name):
                s = self.start()
                resp, _ = self.launch(s)
                self.assertEqual(resp.status, 303)
                # an idle keep-alive connection must not hold the stop up
                conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                try:
                    self.stop_ok(s, sig)
                finally:
                    conn.close()
                self.assertIn("%s received" % name, s.stderr())

    def test_restart_keeps_data_and_nonces(self):
        # a fixed public URL: the port changes with the restart, the signed URL must not
        public = "https://badges.example.org"
        s = self.start(public_url=public)
        resp, body = self.launch(s, lis_person_name_full="Persistent Person")
        self.assertEqual(resp.status, 303, resp)
        loc = resp.header("Location")
        self.stop_ok(s)
        before = counts(self.db)
        self.assertEqual(before["sessions"], 1)
        self.assertEqual(before["nonces"], 1)
        if not lt.ON_PG:  # the sqlite file whole after the stop
            self.assertEqual(lt.sqlite_file_query(self.db, "PRAGMA integrity_check")[0]
                             ["integrity_check"], "ok")
            self.assertEqual(lt.sqlite_file_query(self.db, "PRAGMA foreign_key_check"), [])
        s2 = self.start(public_url=public)
        replay = s2.post_form(body)
        self.assertEqual(replay.status, 401, replay)
        self.assertIn("already used", replay.plain)
        self.assertIsNone(replay.header("Location"))
        self.assertEqual(counts(self.db), before)
        # the session made before the restart still works (the port changed, the path did not)
        page = s2.get(lt.urlsplit(loc).path + "?" + lt.urlsplit(loc).query)
        self.assertEqual(page.status, 200)
        self.assertIn("Persistent Person", page.text)
        self.stop_ok(s2)

    def test_access_log(self):
        s = self.start()
        n_requests = 0
        tokens, sigs, nonces = [], [], []
        for i in range(3):
            resp, body = self.launch(s, user_id="log-%d" % i)
            n_requests += 1
            self.assertEqual(resp.status, 303)
            token = lt.LOCATION_RE.match(resp.header("Location")).group("token")
            tokens.append(token)
            pairs = dict(lt.body_pairs(body))
            sigs.append(pairs["oauth_signature"])
            nonces.append(pairs["oauth_nonce"])
            self.assertEqual(s.get("/badges?s=" + token).status, 200)
            n_requests += 1
        bad = lt.sign(s.launch_url, base_launch(), self.key, "not-the-secret-at-all")
        self.assertEqual(s.post_form(bad).status, 401)
        n_requests += 1
        self.assertEqual(s.post_form(bad, path="/lti/launch?token=querysecret").status, 401)
        n_requests += 1
        self.assertEqual(s.get("/badges?s=" + "f" * 64).status, 403)
        n_requests += 1
        self.assertEqual(s.get("/healthz").status, 200)
        n_requests += 1
        self.assertEqual(s.get("/no/such/page").status, 404)
        n_requests += 1
        self.stop_ok(s)
        err = s.stderr()
        lines = [l for l in err.splitlines() if l]
        log = [l for l in lines if LOG_RE.match(l)]
        other = [l for l in lines if not LOG_RE.match(l)]
        self.assertEqual(len(log), n_requests, "one line per request:\n" + err)
        # the other events: started, the signal, stopped (with how much it did)
        self.assertEqual(len(other), 3, err)
        self.assertRegex(other[0], r"^time=\S+ level=info msg=listening address=127\.0\.0\.1 "
                                   r"port=%d public_url=\S+ version=\S+$" % s.port)
        self.assertRegex(other[1], r"^time=\S+ level=info msg=\"SIGTERM received, stopping\" "
                                   r"signal=SIGTERM$")
        self.assertRegex(other[2], r"^time=\S+ level=info msg=stopped launches=3 commits=\d+ "
                                   r"replays_refused=0 checkpoints=\d+ wal_catch_ups=0 "
                                   r"wal_catch_up_frames=0$")
        statuses = [LOG_RE.match(l).group(5) for l in log]
        self.assertEqual(statuses.count("303"), 3)
        self.assertEqual(statuses.count("401"), 2)
        paths = {LOG_RE.match(l).group(4) for l in log}
        self.assertEqual(paths, {"/lti/launch", "/badges", "/healthz", "/no/such/page"})
        for m in (LOG_RE.match(l) for l in log):
            self.assertEqual(m.group(2), "127.0.0.1")
        for secret in tokens + sigs + nonces + [self.secret, "not-the-secret-at-all",
                                                "querysecret", "f" * 64]:
            self.assertNotIn(secret, err)
        self.assertNotIn("?", err, "no query string is logged")
        self.assertNotIn("oauth_", err)
        self.assertNotRegex(err, r"(^|[?&\s])s=", "no session parameter is logged")

    def test_access_log_off_and_to_file(self):
        cfg = os.path.join(self.tmp, "log.ini")
        logfile = os.path.join(self.tmp, "access.log")
        with open(cfg, "w") as f:
            f.write("[server]\naccess_log = %s\n" % logfile)
        s = self.start(config=cfg)
        self.assertEqual(s.get("/healthz").status, 200)
        self.assertEqual(s.get("/nothing").status, 404)
        self.stop_ok(s)
        with open(logfile) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(all(LOG_RE.match(l) for l in lines), lines)
        self.assertFalse([l for l in s.stderr().splitlines() if LOG_RE.match(l)])

        with open(cfg, "w") as f:
            f.write("[server]\naccess_log = off\n")
        s = self.start(config=cfg)
        self.assertEqual(s.get("/healthz").status, 200)
        self.stop_ok(s)
        self.assertFalse([l for l in s.stderr().splitlines() if LOG_RE.match(l)])

    def test_first_launches_in_parallel_after_start(self):
        # The first signature checks of a fresh process run on several threads at once
        # (an LMS sends a class's launches together after a deploy). Whatever is set up
        # lazily is set up once per process, so this is repeated on fresh servers. Every
        # request is sent but for its last byte; the last bytes then go out together so
        # that the server's threads verify their launches at the same moment.
        cfg = os.path.join(self.tmp, "threads.ini")
        with open(cfg, "w") as f:
            f.write("[server]\nthreads = 8\n")
        width = 16
        for rnd in range(30):
            s = self.start(config=cfg)
            raws = []
            for _ in range(width):
                body = lt.sign(s.launch_url, base_launch(), self.key, self.secret).encode()
                raws.append(b"POST /lti/launch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Type: application/x-www-form-urlencoded\r\n"
                            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
                            + body)
            socks = [socket.create_connection(("127.0.0.1", s.port), timeout=10)
                     for _ in range(width)]
            try:
                for sk, raw in zip(socks, raws):
                    sk.sendall(raw[:-1])
                time.sleep(0.1)
                for sk, raw in zip(socks, raws):
                    sk.sendall(raw[-1:])
                results = []
                for sk in socks:
                    try:
                        data = b""
                        while True:
                            chunk = sk.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                        results.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                    except OSError as e:
                        results.append(repr(e))
            finally:
                for sk in socks:
                    sk.close()
            alive = s.proc.poll() is None
            rc, _ = s.stop()
            ok = all(re.match(r"HTTP/1\.1 303\b", r) for r in results)
            self.assertTrue(alive and ok and rc == 0,
                            "round %d: server %s, exit %r, results %r; stderr: %s"
                            % (rnd, "alive" if alive else "died", rc, results,
                               s.stderr()[-1000:]))

    def test_stop_while_a_launch_waits_for_the_database(self):
        # a launch suspended while the writer waits for the database lock, then SIGTERM:
        # the launch gets its answer, a launch sent afterwards on a kept-alive connection
        # gets 503, and the server exits 0 (MHD must never be stopped with a suspended
        # connection: libmicrohttpd aborts the process)
        s = self.start()
        body_a = lt.sign(s.launch_url, base_launch(user_id="held-a"), self.key, self.secret)
        body_c = lt.sign(s.launch_url, base_launch(user_id="held-c"), self.key, self.secret)
        holder = sqlite3.connect(s.db, isolation_level=None, timeout=10)
        holder.execute("BEGIN IMMEDIATE")
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        result = {}

        def send_a():
            conn.request("POST", "/lti/launch", body=body_a,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            result["a"] = conn.getresponse()
            result["a"].read()

        t = threading.Thread(target=send_a)
        t.start()
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        holder.execute("ROLLBACK")
        holder.close()
        t.join(30)
        self.assertIn("a", result)
        self.assertEqual(result["a"].status, 303)
        try:
            conn.request("POST", "/lti/launch", body=body_c,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            late = conn.getresponse()
            self.assertEqual(late.status, 503)
            self.assertEqual(late.getheader("Connection"), "close")
        except (ConnectionError, http.client.HTTPException):
            pass  # or the connection was already closed: either way no launch went through
        conn.close()
        rc = s.proc.wait(timeout=lt.STOP_TIMEOUT)
        self.assertEqual(rc, 0, s.stderr()[-2000:])
        self.assertNotIn("Fatal error", s.stderr())
        self.assertIsNotNone(lt.user(s.db, self.key, "held-a"))
        self.assertIsNone(lt.user(s.db, self.key, "held-c"))

    def test_stop_while_launching(self):
        s = self.start()
        bodies = [lt.sign(s.launch_url, base_launch(user_id="stop-%d" % i), self.key,
                          self.secret) for i in range(300)]
        results = []
        t0 = time.monotonic()
        lock = threading.Lock()
        go = threading.Event()

        def worker(chunk):
            go.wait()
            for b in chunk:
                try:
                    r = s.post_form(b, timeout=10)
                    with lock:
                        results.append(r)
                except (OSError, http.client.HTTPException):
                    with lock:
                        results.append(None)

        threads = [threading.Thread(target=worker, args=(bodies[i::6],)) for i in range(6)]
        for t in threads:
            t.start()
        go.set()
        # stop while launches are still coming in
        while len(results) < 30 and time.monotonic() - t0 < 10:
            time.sleep(0.005)
        self.stop_ok(s)
        for t in threads:
            t.join(20)
        ok = [r for r in results if r is not None and r.status == 303]
        for r in results:
            if r is not None:
                self.assertIn(r.status, (303, 503), r)
        # every launch that was answered 303 is in the database with its session
        tokens = [lt.LOCATION_RE.match(r.header("Location")).group("token") for r in ok]
        for t in tokens:
            self.assertIsNotNone(lt.session(self.db, t), t)
        self.assertEqual(counts(self.db)["sessions"], len(ok))
        self.assertGreaterEqual(len(ok), 30)
        self.assertLess(len(ok), len(bodies), "the stop came after every launch: no test")


if __name__ == "__main__":
    lt.main()
