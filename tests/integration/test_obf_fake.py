"""The Open Badge Factory contract fake (obffake.py) against the contract it
stands for: v2 tokens (the ten-second limit, expiry, Basic or body
credentials), Bearer checks, badges and events with their required fields and
types, {result, total} pages and resource_id; v1 over TLS with client
certificates (496, 495, 403), Location ids, line-delimited lists, 411,
meta: filters, revocation, enrolment with an RSA-encrypted API key; and each
fault and control. Nothing here sleeps: the fake's clock is moved (advance)
and states are waited for."""
import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
from urllib.parse import quote, urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import obffake  # noqa: E402
from obffake import ObfFake, data_uri_png, tiny_png  # noqa: E402

FORM = "application/x-www-form-urlencoded"
SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
       b'<rect width="4" height="4"/></svg>')
PKI = None
TMP = None


def setUpModule():
    global PKI, TMP
    if not shutil.which("openssl"):
        raise unittest.SkipTest("no openssl command")
    TMP = tempfile.mkdtemp(prefix="obffake-")
    PKI = obffake.make_pki(os.path.join(TMP, "pki"))


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def request(fake, method, path, body=None, headers=None, cert=None, timeout=10.0, raw=False):
    """One request on a fresh TLS connection (with a client certificate when
    cert is given): (status, headers (lower-case keys), body bytes, JSON or None)."""
    ctx = ssl.create_default_context(cafile=PKI["ca"])
    if cert:
        ctx.load_cert_chain(cert["cert"], cert["key"])
    conn = http.client.HTTPSConnection("127.0.0.1", fake.port, timeout=timeout, context=ctx)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict({"Content-Type": "application/json"}, **(headers or {}))
        if raw:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.endheaders()
            if body is not None:
                conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data, doc
    finally:
        conn.close()


class FakeCase(unittest.TestCase):
    def setUp(self):
        self.fake = ObfFake(PKI)
        self.cid, self.secret = self.fake.add_client("Example U")
        self.other, self.other_secret = self.fake.add_client("Other U")
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self._token = None
        self.dir = tempfile.mkdtemp(dir=TMP)

    # -- v2 helpers --

    def token_request(self, pairs, headers=None):
        h = {"Content-Type": FORM}
        h.update(headers or {})
        return request(self.fake, "POST", "/v2/client/oauth2/token", urlencode(pairs).encode(), h)

    def grant(self, cid=None, secret=None):
        return self.token_request([("grant_type", "client_credentials"),
                                   ("client_id", cid or self.cid),
                                   ("client_secret", secret or self.secret)])

    @property
    def token(self):
        if self._token is None:
            st, _, body, doc = self.grant()
            self.assertEqual(st, 200, body)
            self._token = doc["access_token"]
        return self._token

    def api(self, method, path, body=None, token=None, headers=None, **kw):
        h = {"Authorization": "Bearer " + (token or self.token)}
        h.update(headers or {})
        return request(self.fake, method, path, body, h, **kw)

    def badge_doc(self, **over):
        doc = {"draft": False, "image": data_uri_png(tiny_png()), "primary_language": "en",
               "content": [{"language": "en", "name": "Completed unit 1",
                            "description": "Finished unit 1",
                            "criteria": "Finish unit 1. https://lms.example.edu/c/1",
                            "tag": ["ltibadges", "ltibadges:m=abc"]}],
               "email_message": {"subject": "A badge", "body": "Well done",
                                 "link_text": "Accept", "footer": ""}}
        for k, v in over.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
        return doc

    def create_badge(self, **over):
        st, hd, body, doc = self.api("POST", "/v2/badge/%s" % self.cid, self.badge_doc(**over))
        self.assertEqual(st, 201, body)
        return doc["resource_id"]

    def issue_doc(self, email="learner@example.edu", **over):
        doc = {"recipient": [{"email": email, "name": "Ann Learner"}],
               "issued_on": 1760000000, "expires_on": 1860000000,
               "api_consumer_id": "ltibadges", "send_email": False,
               "log_entry": {"award": "u-1", "course": "c-1", "consumer": "lms"}}
        for k, v in over.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
        return doc

    def issue(self, bid, email="learner@example.edu", **over):
        return self.api("POST", "/v2/event/%s/%s/issue" % (self.cid, bid),
                        self.issue_doc(email, **over))

    # -- v1 helpers --

    def cert(self, cid=None, **kw):
        return self.fake.mint_client_cert(cid or self.cid, self.dir, **kw)

    @property
    def my_cert(self):
        if not hasattr(self, "_cert"):
            self._cert = self.cert()
        return self._cert

    def v1(self, method, path, body=None, cert=None, **kw):
        return request(self.fake, method, path, body, cert=cert or self.my_cert, **kw)

    def v1_badge_doc(self, **over):
        doc = {"name": "Unit 1", "description": "Finished unit 1",
               "image": base64.b64encode(tiny_png()).decode(),
               "criteria_html": "<p>Finish unit 1</p>", "tags": ["ltibadges"], "draft": False,
               "metadata": {"ltibadges": "m-1", "n": 123},
               "email_subject": "A badge", "email_body": "Well done"}
        for k, v in over.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
        return doc

    def v1_create(self, **over):
        st, hd, body, _ = self.v1("POST", "/v1/badge/%s" % self.cid, self.v1_badge_doc(**over))
        self.assertEqual(st, 201, body)
        return hd["location"].rsplit("/", 1)[1]


class V2Token(FakeCase):
    def test_body_credentials(self):
        st, hd, body, doc = self.grant()
        self.assertEqual(st, 200, body)
        self.assertEqual(doc["token_type"], "bearer")
        self.assertEqual(doc["expires_in"], obffake.TOKEN_LIFETIME)
        self.assertEqual(self.api("GET", "/v2/client/%s/ping" % self.cid,
                                  token=doc["access_token"])[0], 200)

    def test_basic_credentials(self):
        auth = base64.b64encode(("%s:%s" % (self.cid, self.secret)).encode()).decode()
        st, _, body, doc = self.token_request([("grant_type", "client_credentials")],
                                              {"Authorization": "Basic " + auth})
        self.assertEqual(st, 200, body)

    def test_refusals(self):
        self.assertEqual(self.grant(secret="wrong")[0], 401)
        self.assertEqual(self.grant(cid="NOSUCHCLIENT")[0], 401)
        st, _, _, doc = self.token_request([("grant_type", "password"), ("client_id", self.cid),
                                            ("client_secret", self.secret)])
        self.assertEqual((st, doc["error"]), (400, "unsupported_grant_type"))
        # a JSON body is no form
        st, _, _, _ = request(self.fake, "POST", "/v2/client/oauth2/token",
                              {"grant_type": "client_credentials", "client_id": self.cid,
                               "client_secret": self.secret})
        self.assertEqual(st, 400)
        self.assertEqual(request(self.fake, "GET", "/v2/client/oauth2/token")[0], 405)
        # none of the refusals counted as a token: one is granted now
        self.assertEqual(self.grant()[0], 200)

    def test_one_token_per_ten_seconds(self):
        self.assertEqual(self.grant()[0], 200)
        self.fake.advance(9)
        st, hd, _, doc = self.grant()
        self.assertEqual(st, 429)
        self.assertEqual(hd["retry-after"], "1")
        # another client is not limited by this one's token
        self.assertEqual(self.grant(self.other, self.other_secret)[0], 200)
        self.fake.advance(1)
        self.assertEqual(self.grant()[0], 200)
        self.assertEqual(len(self.fake.token_requests(self.cid)), 3)

    def test_bearer_checks(self):
        path = "/v2/badge/%s" % self.cid
        self.assertEqual(request(self.fake, "GET", path)[0], 401)
        self.assertEqual(self.api("GET", path, token="not-a-token")[0], 401)
        self.assertEqual(self.api("GET", path)[0], 200)
        # a token of this client on another client's paths
        self.assertEqual(self.api("GET", "/v2/badge/%s" % self.other)[0], 403)

    def test_expiry(self):
        self.assertEqual(self.api("GET", "/v2/badge/%s" % self.cid)[0], 200)
        self.fake.advance(obffake.TOKEN_LIFETIME)
        self.assertEqual(self.api("GET", "/v2/badge/%s" % self.cid)[0], 401)

    def test_expire_tokens_control(self):
        t = self.token
        self.fake.expire_tokens()
        self.assertEqual(self.api("GET", "/v2/badge/%s" % self.cid, token=t)[0], 401)
        # the expiry does not lift the ten-second limit
        self.assertEqual(self.grant()[0], 429)
        self.fake.advance(10)
        self.assertEqual(self.grant()[0], 200)


class V2Badges(FakeCase):
    def test_create_get_list(self):
        st, hd, body, doc = self.api("POST", "/v2/badge/%s" % self.cid, self.badge_doc())
        self.assertEqual(st, 201, body)
        self.assertTrue(doc["success"])
        self.assertEqual(doc["resource_type"], "badge")
        bid = doc["resource_id"]
        self.assertTrue(hd["location"].endswith("/v2/badge/%s/%s" % (self.cid, bid)))
        st, _, _, b = self.api("GET", "/v2/badge/%s/%s" % (self.cid, bid))
        self.assertEqual(st, 200)
        self.assertEqual(b["content"][0]["tag"], ["ltibadges", "ltibadges:m=abc"])
        self.assertFalse(b["draft"])
        self.assertEqual(b["email_message"]["subject"], "A badge")
        st, _, _, page = self.api("GET", "/v2/badge/%s?limit=1000&offset=0" % self.cid)
        self.assertEqual((st, page["total"], page["result"][0]["id"]), (200, 1, bid))
        self.assertEqual(page["result"][0]["name"], "Completed unit 1")

    def test_svg_image(self):
        self.create_badge(image="data:image/svg+xml;base64," + base64.b64encode(SVG).decode())

    def test_required_fields_and_types(self):
        path = "/v2/badge/%s" % self.cid
        content = self.badge_doc()["content"][0]
        bad = [
            {"draft": None}, {"draft": "false"}, {"image": None}, {"image": 5},
            {"image": "data:image/jpeg;base64,/9j/4AA="},
            {"image": "data:image/png;base64," + base64.b64encode(b"not a png").decode()},
            {"image": "data:image/svg+xml;base64," + base64.b64encode(b"<html/>").decode()},
            {"image": base64.b64encode(tiny_png()).decode()},
            {"primary_language": None}, {"primary_language": 1},
            {"primary_language": "fi"},                  # no content in it
            {"content": None}, {"content": []}, {"content": {"language": "en"}},
            {"content": [dict(content, name="")]}, {"content": [dict(content, name=None)]},
            {"content": [dict(content, language=None)]},
            {"content": [dict(content, description=None)]},
            {"content": [dict(content, criteria=None)]},
            {"content": [dict(content, tag="ltibadges")]},
            {"content": [dict(content, tag=[1])]},
            {"content": [content, content]},
            {"email_message": "hello"}, {"email_message": {"subject": 1}},
            {"category": "x"}, {"expires": "0"},
        ]
        for over in bad:
            with self.subTest(over=over):
                st, _, body, doc = self.api("POST", path, self.badge_doc(**{
                    k: (v if v is not None else None) for k, v in over.items()}))
                self.assertEqual(st, 400, body)
                self.assertFalse(doc["success"])
                self.assertTrue(doc["message"])
        st, _, _, _ = self.api("POST", path, b"{not json", headers={
            "Content-Type": "application/json"})
        self.assertEqual(st, 400)
        st, _, _, _ = self.api("POST", path, [self.badge_doc()])
        self.assertEqual(st, 400)
        self.assertEqual(self.fake.badges(self.cid), [])

    def test_put(self):
        bid = self.create_badge()
        content = self.badge_doc()["content"]
        content[0]["name"] = "Renamed"
        st, _, body, doc = self.api("PUT", "/v2/badge/%s/%s" % (self.cid, bid),
                                    self.badge_doc(content=content))
        self.assertEqual(st, 200, body)
        self.assertEqual(self.fake.badge(bid)["content"][0]["name"], "Renamed")
        st, _, _, _ = self.api("PUT", "/v2/badge/%s/%s" % (self.cid, bid),
                               self.badge_doc(draft="no"))
        self.assertEqual(st, 400)
        self.assertEqual(self.api("PUT", "/v2/badge/%s/NOSUCH" % self.cid,
                                  self.badge_doc())[0], 404)

    def test_drafts_and_deleted(self):
        draft = self.create_badge(draft=True)
        gone = self.fake.add_badge(self.cid, "Gone", deleted=True)
        st, _, _, b = self.api("GET", "/v2/badge/%s/%s" % (self.cid, draft))
        self.assertEqual((st, b["draft"]), (200, True))
        self.assertEqual(self.api("GET", "/v2/badge/%s/%s" % (self.cid, gone))[0], 404)
        _, _, _, page = self.api("GET", "/v2/badge/%s" % self.cid)
        self.assertEqual([b["id"] for b in page["result"]], [draft])
        # a draft is not issued
        st, _, _, doc = self.issue(draft)
        self.assertEqual(st, 400)
        self.assertEqual(self.issue(gone)[0], 404)
        self.assertEqual(self.fake.events(), [])

    def test_other_clients_badge_not_found(self):
        theirs = self.fake.add_badge(self.other)
        self.assertEqual(self.api("GET", "/v2/badge/%s/%s" % (self.cid, theirs))[0], 404)
        self.assertEqual(self.issue(theirs)[0], 404)

    def test_paging(self):
        ids = [self.fake.add_badge(self.cid, "B%d" % i) for i in range(5)]
        _, _, _, page = self.api("GET", "/v2/badge/%s?limit=2&offset=2" % self.cid)
        self.assertEqual(page["total"], 5)
        self.assertEqual(len(page["result"]), 2)
        seen = []
        for off in range(0, 5, 2):
            _, _, _, p = self.api("GET", "/v2/badge/%s?limit=2&offset=%d" % (self.cid, off))
            seen += [b["id"] for b in p["result"]]
        self.assertEqual(sorted(seen), sorted(ids))
        self.assertEqual(self.api("GET", "/v2/badge/%s?limit=1000" % self.cid)[0], 200)
        for q in ("limit=1001", "limit=0", "limit=x", "offset=-1"):
            with self.subTest(q=q):
                self.assertEqual(self.api("GET", "/v2/badge/%s?%s" % (self.cid, q))[0], 400)


class V2Events(FakeCase):
    def test_issue_find_revoke(self):
        bid = self.create_badge()
        st, hd, body, doc = self.issue(bid, "Learner@Example.edu")
        self.assertEqual(st, 201, body)
        self.assertEqual(doc["resource_type"], "event")
        eid = doc["resource_id"]
        self.assertTrue(hd["location"].endswith("/v2/event/%s/%s" % (self.cid, eid)))
        # the recipient's assertion URL
        st, _, _, rows = self.api("GET", "/v2/event/%s/recipient?%s" % (
            self.cid, urlencode({"event_id": eid, "email": "learner@example.edu"})))
        self.assertEqual((st, rows["total"]), (200, 1))
        r = rows["result"][0]
        self.assertEqual((r["event_id"], r["email"], r["revoked"]),
                         (eid, "Learner@Example.edu", False))
        self.assertTrue(r["assertion_json_url"].startswith(self.fake.base_url + "/obv3/"))
        # look-up by badge + email + api_consumer_id; log_entry as a JSON string
        q = urlencode({"badge_id": bid, "email": "learner@example.edu",
                       "api_consumer_id": "ltibadges", "limit": 1000, "offset": 0})
        st, _, _, page = self.api("GET", "/v2/event/%s?%s" % (self.cid, q))
        self.assertEqual((st, page["total"], page["result"][0]["id"]), (200, 1, eid))
        self.assertEqual(json.loads(page["result"][0]["log_entry"]),
                         {"award": "u-1", "course": "c-1", "consumer": "lms"})
        for miss in ({"api_consumer_id": "moodle"}, {"email": "x@example.edu"},
                     {"badge_id": "NOSUCH"}):
            p = dict({"badge_id": bid, "email": "learner@example.edu"}, **miss)
            _, _, _, page = self.api("GET", "/v2/event/%s?%s" % (self.cid, urlencode(p)))
            self.assertEqual(page["total"], 0, miss)
        st, _, _, ev = self.api("GET", "/v2/event/%s/%s" % (self.cid, eid))
        self.assertEqual(st, 200)
        self.assertIsInstance(ev["log_entry"], str)
        self.assertEqual(json.loads(ev["log_entry"])["award"], "u-1")
        self.assertEqual(ev["badge"]["id"], bid)
        # revoke, twice
        for _ in range(2):
            st, _, body, doc = self.api("PUT", "/v2/event/%s/%s/revoke" % (self.cid, eid),
                                        {"recipient": ["learner@example.edu"]})
            self.assertEqual((st, doc["count"]), (200, 1), body)
        _, _, _, rows = self.api("GET", "/v2/event/%s/recipient?event_id=%s" % (self.cid, eid))
        self.assertTrue(rows["result"][0]["revoked"])
        self.assertEqual(self.api("PUT", "/v2/event/%s/NOSUCH/revoke" % self.cid,
                                  {"recipient": ["a@example.edu"]})[0], 404)
        self.assertEqual(self.api("PUT", "/v2/event/%s/%s/revoke" % (self.cid, eid),
                                  {"recipient": "learner@example.edu"})[0], 400)

    def test_send_email(self):
        bid = self.create_badge()
        self.issue(bid, "quiet@example.edu", send_email=False)
        self.issue(bid, "loud@example.edu", send_email=True)
        self.assertEqual([m[0] for m in self.fake.mailed], ["loud@example.edu"])

    def test_issue_fields_and_types(self):
        bid = self.create_badge()
        bad = [
            {"recipient": None}, {"recipient": []}, {"recipient": ["a@example.edu"]},
            {"recipient": [{"name": "No mail"}]}, {"recipient": [{"email": "not-an-address"}]},
            {"recipient": [{"email": "a@example.edu", "name": 5}]},
            {"issued_on": "2025-01-01"}, {"issued_on": True}, {"issued_on": -1},
            {"expires_on": "soon"}, {"expires_on": 1700000000},        # before issued_on
            {"send_email": "yes"}, {"api_consumer_id": 7}, {"log_entry": "u-1"},
            {"email_message": "hi"},
        ]
        for over in bad:
            with self.subTest(over=over):
                doc = self.issue_doc(**{k: v for k, v in over.items() if v is not None})
                for k, v in over.items():
                    if v is None:
                        doc.pop(k)
                st, _, body, _ = self.api("POST", "/v2/event/%s/%s/issue" % (self.cid, bid), doc)
                self.assertEqual(st, 400, body)
        self.assertEqual(self.fake.events(), [])
        # the optional ones may go
        st, _, body, _ = self.issue(bid, issued_on=None, expires_on=None, log_entry=None,
                                    api_consumer_id=None, send_email=None)
        self.assertEqual(st, 201, body)

    def test_event_paging(self):
        bid = self.create_badge()
        for i in range(3):
            self.issue(bid, "l%d@example.edu" % i)
        _, _, _, page = self.api("GET", "/v2/event/%s?badge_id=%s&limit=2&offset=2"
                                 % (self.cid, bid))
        self.assertEqual((page["total"], len(page["result"])), (3, 1))
        self.assertEqual(self.api("GET", "/v2/event/%s?limit=1001" % self.cid)[0], 400)


class V1Certificates(FakeCase):
    def test_missing_invalid_expired_foreign(self):
        path = "/v1/ping/%s" % self.cid
        self.assertEqual(self.v1("GET", path)[0], 200)
        self.assertEqual(request(self.fake, "GET", path)[0], 496)
        self.assertEqual(self.v1("GET", path, cert=self.cert(rogue=True))[0], 495)
        self.assertEqual(self.v1("GET", path, cert=self.cert(expired=True))[0], 495)
        # a certificate of another client
        self.assertEqual(self.v1("GET", path, cert=self.cert(self.other))[0], 403)
        # of no client OBF knows
        self.assertEqual(self.v1("GET", path, cert=self.cert("NOBODY"))[0], 403)

    def test_expiry_follows_the_clock(self):
        path = "/v1/ping/%s" % self.cid
        self.assertEqual(self.v1("GET", path)[0], 200)
        self.fake.advance(obffake.CLIENT_CERT_DAYS * 86400 + 60)
        self.assertEqual(self.v1("GET", path)[0], 495)

    def test_length_required(self):
        st, _, _, _ = self.v1("POST", "/v1/badge/%s" % self.cid,
                              json.dumps(self.v1_badge_doc()).encode(),
                              headers={"Content-Type": "application/json",
                                       "Transfer-Encoding": "chunked"}, raw=True)
        self.assertEqual(st, 411)
        self.assertEqual(self.fake.badges(), [])
        # a v2 PUT likewise
        st, _, _, _ = self.api("PUT", "/v2/badge/%s/X" % self.cid, b"{}",
                               headers={"Content-Type": "application/json",
                                        "Transfer-Encoding": "chunked"}, raw=True)
        self.assertEqual(st, 411)


class Wire(FakeCase):
    def test_keep_alive_one_handshake(self):
        ctx = ssl.create_default_context(cafile=PKI["ca"])
        ctx.load_cert_chain(self.my_cert["cert"], self.my_cert["key"])
        before = self.fake.connections
        conn = http.client.HTTPSConnection("127.0.0.1", self.fake.port, context=ctx, timeout=10)
        try:
            for _ in range(3):
                conn.request("GET", "/v1/ping/%s" % self.cid)
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
        finally:
            conn.close()
        self.assertEqual(self.fake.connections - before, 1)
        recs = self.fake.matching(lambda r: r.path.startswith("/v1/ping/"))
        self.assertEqual(len({r.conn for r in recs}), 1)
        self.assertEqual({r.cert_cn for r in recs}, {self.cid})

    def test_handshakes_full_and_resumed(self):
        # each connection's handshake is counted, full or resumed; a resumed v1
        # session still names its client certificate
        ctx = ssl.create_default_context(cafile=PKI["ca"])
        ctx.load_cert_chain(self.my_cert["cert"], self.my_cert["key"])
        before, session = self.fake.handshakes, None
        for _ in range(3):
            conn = obffake.ResumingConnection("127.0.0.1", self.fake.port, context=ctx,
                                              timeout=10, session=session)
            try:
                conn.request("GET", "/v1/ping/%s" % self.cid)
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                session = conn.sock.session
            finally:
                conn.close()
        after = self.fake.handshakes
        self.assertEqual((after["full"] - before["full"], after["resumed"] - before["resumed"]),
                         (1, 2))
        self.assertEqual(self.fake.state()["handshakes"], after)
        recs = self.fake.matching(lambda r: r.path.startswith("/v1/ping/"))
        self.assertEqual([r.cert_cn for r in recs], [self.cid] * 3)

    def test_too_large(self):
        ctx = ssl.create_default_context(cafile=PKI["ca"])
        ctx.load_cert_chain(self.my_cert["cert"], self.my_cert["key"])
        conn = http.client.HTTPSConnection("127.0.0.1", self.fake.port, context=ctx, timeout=10)
        try:
            conn.putrequest("POST", "/v1/badge/%s" % self.cid)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(obffake.MAX_BODY + 1))
            conn.endheaders()
            r = conn.getresponse()
            self.assertEqual(r.status, 413)
        finally:
            conn.close()
        self.assertEqual(self.fake.badges(), [])

    def test_method_and_path(self):
        st, hd, _, _ = self.v1("PATCH", "/v1/badge/%s" % self.cid, {})
        self.assertEqual(st, 405)
        self.assertIn("POST", hd["allow"])
        self.assertEqual(self.v1("GET", "/v1/nosuch/%s" % self.cid)[0], 404)
        self.assertEqual(self.api("DELETE", "/v2/event/%s" % self.cid)[0], 405)
        self.assertEqual(self.api("GET", "/v2/nosuch")[0], 404)


class V1Badges(FakeCase):
    def test_create_location_get_list(self):
        st, hd, body, _ = self.v1("POST", "/v1/badge/%s" % self.cid, self.v1_badge_doc())
        self.assertEqual((st, body), (201, b""))
        bid = hd["location"].rsplit("/", 1)[1]
        self.assertEqual(hd["location"], "%s/v1/badge/%s/%s" % (self.fake.base_url, self.cid, bid))
        st, _, _, b = self.v1("GET", "/v1/badge/%s/%s" % (self.cid, bid))
        self.assertEqual((st, b["name"], b["metadata"]["ltibadges"]), (200, "Unit 1", "m-1"))
        self.v1_create(name="Second", metadata={"ltibadges": "m-2"})
        st, hd, body, _ = self.v1("GET", "/v1/badge/%s" % self.cid)
        self.assertEqual(st, 200)
        lines = body.split(b"\r\n")
        self.assertEqual(lines[-1], b"")
        self.assertEqual([json.loads(x)["name"] for x in lines[:-1]], ["Unit 1", "Second"])
        self.assertNotIn(b"\n", lines[0])

    def test_meta_filter(self):
        a = self.v1_create()
        self.v1_create(metadata={"ltibadges": "m-2", "n": 124})
        for q, want in (("meta:ltibadges=m-1", [a]), ("meta:n=123", [a]),
                        ("meta:ltibadges=m-1&meta:n=124", []), ("meta:nosuch=1", [])):
            with self.subTest(q=q):
                _, _, body, _ = self.v1("GET", "/v1/badge/%s?%s" % (self.cid, q))
                self.assertEqual([json.loads(x)["id"] for x in body.split(b"\r\n") if x], want)

    def test_required_fields_png_only(self):
        svg = "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()
        bad = [{"name": None}, {"name": 3}, {"description": None}, {"draft": None},
               {"draft": 0}, {"image": base64.b64encode(SVG).decode()}, {"image": svg},
               {"image": "!!!"}, {"tags": "x"}, {"tags": [1]}, {"metadata": []},
               {"expires": "tomorrow"}, {"email_subject": 1}]
        for over in bad:
            with self.subTest(over=over):
                doc = self.v1_badge_doc()
                for k, v in over.items():
                    if v is None:
                        doc.pop(k)
                    else:
                        doc[k] = v
                st, _, body, err = self.v1("POST", "/v1/badge/%s" % self.cid, doc)
                self.assertEqual(st, 400, body)
                self.assertTrue(err["error"])
        self.assertEqual(self.fake.badges(), [])

    def test_put_delete(self):
        bid = self.v1_create()
        st, _, body, _ = self.v1("PUT", "/v1/badge/%s/%s" % (self.cid, bid),
                                 self.v1_badge_doc(name="Renamed"))
        self.assertEqual(st, 204, body)
        self.assertEqual(self.fake.badge(bid)["content"][0]["name"], "Renamed")
        self.assertEqual(self.v1("DELETE", "/v1/badge/%s/%s" % (self.cid, bid))[0], 204)
        self.assertEqual(self.v1("GET", "/v1/badge/%s/%s" % (self.cid, bid))[0], 404)


class V1Events(FakeCase):
    def test_issue_list_revoke(self):
        bid = self.v1_create()
        doc = {"recipient": ["learner@example.edu"], "issued_on": 1760000000,
               "expires": 1860000000, "api_consumer_id": "ltibadges",
               "log_entry": {"award": "u-1"}}
        st, hd, body, _ = self.v1("POST", "/v1/badge/%s/%s" % (self.cid, bid), doc)
        self.assertEqual((st, body), (201, b""))
        eid = hd["location"].rsplit("/", 1)[1]
        self.assertEqual(hd["location"], "%s/v1/event/%s/%s" % (self.fake.base_url, self.cid, eid))
        q = urlencode({"badge_id": bid, "email": "learner@example.edu",
                       "api_consumer_id": "ltibadges"})
        st, _, body, _ = self.v1("GET", "/v1/event/%s?%s" % (self.cid, q))
        lines = [json.loads(x) for x in body.split(b"\r\n") if x]
        self.assertEqual([e["id"] for e in lines], [eid])
        self.assertEqual(lines[0]["log_entry"], {"award": "u-1"})
        self.assertEqual(lines[0]["recipient"], ["learner@example.edu"])
        st, _, body, _ = self.v1("DELETE", "/v1/event/%s/%s/?email=%s" % (
            self.cid, eid, quote("learner@example.edu")))
        self.assertEqual((st, body), (204, b""))
        _, _, _, rv = self.v1("GET", "/v1/event/%s/%s/revoked" % (self.cid, eid))
        self.assertIn("learner@example.edu", rv["revoked"])
        self.assertEqual(self.v1("DELETE", "/v1/event/%s/%s/" % (self.cid, eid))[0], 400)

    def test_issue_refusals(self):
        bid = self.v1_create(email_subject=None, email_body=None)
        ok = {"recipient": ["learner@example.edu"], "email_subject": "S", "email_body": "B"}
        path = "/v1/badge/%s/%s" % (self.cid, bid)
        bad = [dict(ok, recipient=[]), dict(ok, recipient="learner@example.edu"),
               dict(ok, recipient=[{"email": "learner@example.edu"}]),
               dict(ok, recipient=["nope"]), dict(ok, issued_on="today"),
               dict(ok, expires=True), dict(ok, log_entry="x"),
               {"recipient": ["learner@example.edu"]}]     # no e-mail parts stored or sent
        for doc in bad:
            with self.subTest(doc=doc):
                self.assertEqual(self.v1("POST", path, doc)[0], 400)
        self.assertEqual(self.v1("POST", path, ok)[0], 201)
        draft = self.v1_create(draft=True)
        self.assertEqual(self.v1("POST", "/v1/badge/%s/%s" % (self.cid, draft), ok)[0], 400)

    def test_event_limit(self):
        self.assertEqual(self.v1("GET", "/v1/event/%s?limit=1001" % self.cid)[0], 400)
        self.assertEqual(self.v1("GET", "/v1/event/%s?limit=1000" % self.cid)[0], 200)

    def test_event_pages(self):
        # [v1doc] limit (at most 1000, also when none is asked for), offset, order_by date
        bid = self.fake.add_badge(self.cid)
        late = self.fake.add_events(self.cid, bid, "a@example.edu", 600, 1770000000,
                                    uid_prefix="late")
        early = self.fake.add_events(self.cid, bid, "a@example.edu", 600, 1760000000)

        def ids(query):
            st, _, body, _ = self.v1("GET", "/v1/event/%s?badge_id=%s&%s"
                                     % (self.cid, bid, query))
            self.assertEqual(st, 200)
            return [json.loads(x)["id"] for x in body.split(b"\r\n") if x]

        self.assertEqual(ids("order_by=asc"), early + late[:400])
        self.assertEqual(ids("order_by=desc"), late[::-1] + early[::-1][:400])
        self.assertEqual(ids("order_by=asc&limit=1000&offset=1000"), late[400:])
        self.assertEqual(ids("order_by=asc&limit=500&offset=1100"), late[500:])
        self.assertEqual(ids("order_by=asc&offset=1200"), [])


class V1Enrolment(FakeCase):
    def csr(self, cn):
        key, csr = os.path.join(self.dir, cn + ".key"), os.path.join(self.dir, cn + ".csr")
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", csr, "-subj", "/CN=" + cn], check=True, capture_output=True)
        with open(csr) as f:
            return key, f.read()

    def test_enrol_and_use(self):
        st, _, pub, _ = request(self.fake, "GET", "/v1/client/OBF.rsa.pub")
        self.assertEqual(st, 200)
        self.assertIn(b"BEGIN PUBLIC KEY", pub)
        api_key = self.fake.mint_api_key(self.cid)
        # the API key decodes with the public key as OBF's page says (PKCS#1)
        pubfile = os.path.join(self.dir, "obf.pub")
        with open(pubfile, "wb") as f:
            f.write(pub)
        plain = subprocess.run(["openssl", "pkeyutl", "-verifyrecover", "-pubin", "-inkey",
                                pubfile, "-pkeyopt", "rsa_padding_mode:pkcs1"],
                               input=base64.b64decode(api_key), capture_output=True,
                               check=True).stdout
        self.assertEqual(json.loads(plain)["id"], self.cid)
        key, csr = self.csr(self.cid)
        st, hd, pem, _ = request(self.fake, "POST", "/v1/client/%s/sign_request" % self.cid,
                                 {"signature": api_key, "request": csr})
        self.assertEqual(st, 200, pem)
        self.assertIn(b"BEGIN CERTIFICATE", pem)
        certfile = os.path.join(self.dir, "enrolled.pem")
        with open(certfile, "wb") as f:
            f.write(pem)
        self.assertEqual(self.v1("GET", "/v1/ping/%s" % self.cid,
                                 cert={"cert": certfile, "key": key})[0], 200)

    def test_refusals(self):
        key, csr = self.csr(self.cid)
        path = "/v1/client/%s/sign_request" % self.cid
        good = self.fake.mint_api_key(self.cid)
        self.assertEqual(request(self.fake, "POST", path, {"signature": good})[0], 400)
        self.assertEqual(request(self.fake, "POST", path,
                                 {"signature": good, "request": "garbage"})[0], 400)
        # a CSR for another name
        _, other_csr = self.csr(self.other)
        self.assertEqual(request(self.fake, "POST", path,
                                 {"signature": good, "request": other_csr})[0], 400)
        # a key of another client, a forged one, an expired one
        self.assertEqual(request(self.fake, "POST", path, {
            "signature": self.fake.mint_api_key(self.other), "request": csr})[0], 403)
        forged = base64.b64encode(json.dumps({"id": self.cid}).encode()).decode()
        self.assertEqual(request(self.fake, "POST", path,
                                 {"signature": forged, "request": csr})[0], 403)
        old = self.fake.mint_api_key(self.cid, lifetime=60)
        self.fake.advance(61)
        st, _, _, doc = request(self.fake, "POST", path, {"signature": old, "request": csr})
        self.assertEqual(st, 403)
        self.assertIn("expired", doc["error"])
        self.assertEqual(request(self.fake, "POST", path,
                                 {"signature": self.fake.mint_api_key(self.cid),
                                  "request": csr})[0], 200)


class Faults(FakeCase):
    def test_status_429_503_500(self):
        path = "/v2/badge/%s" % self.cid
        t = self.token
        self.fake.add_fault("status", "GET", path + "$", status=429, retry_after=7)
        self.fake.add_fault("status", "GET", path + "$", status=503)
        self.fake.add_fault("status", "GET", path + "$", status=500)
        st, hd, _, _ = self.api("GET", path, token=t)
        self.assertEqual((st, hd["retry-after"]), (429, "7"))
        self.assertEqual(self.api("GET", path, token=t)[0], 503)
        self.assertEqual(self.api("GET", path, token=t)[0], 500)
        self.assertEqual(self.api("GET", path, token=t)[0], 200)

    def test_lost_create_and_issue(self):
        self.fake.add_fault("lost", "POST", r"^/v2/badge/")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.api("POST", "/v2/badge/%s" % self.cid, self.badge_doc())
        [b] = self.fake.badges(self.cid)                  # the work was done
        rec = self.fake.wait_for(lambda r: r.fault == "lost")[0]
        self.assertEqual((rec.status, rec.delivered, rec.done, rec.entity),
                         (201, False, True, b["id"]))
        self.fake.add_fault("lost", "POST", r"/issue$")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.issue(b["id"])
        self.assertEqual(len(self.fake.events(badge_id=b["id"])), 1)
        self.fake.add_fault("lost", "POST", r"^/v1/badge/[^/]+/[^/]+$")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.v1("POST", "/v1/badge/%s/%s" % (self.cid, b["id"]),
                    {"recipient": ["v1@example.edu"]})
        self.assertEqual(len(self.fake.events(email="v1@example.edu")), 1)

    def test_drop_does_nothing(self):
        bid = self.create_badge()
        self.fake.add_fault("drop", "POST", r"/issue$")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.issue(bid)
        self.assertEqual(self.fake.events(), [])

    def test_hang_until_release(self):
        t = self.token
        self.fake.add_fault("hang", "GET", r"/ping$")
        out = {}

        def call():
            try:
                out["r"] = self.api("GET", "/v2/client/%s/ping" % self.cid, token=t)
            except (http.client.HTTPException, OSError) as e:
                out["e"] = e
        th = threading.Thread(target=call)
        th.start()
        self.fake.wait_hanging(1)
        self.fake.release()
        th.join(10)
        self.assertIn("e", out)
        self.assertEqual(self.fake.hanging, 0)
        self.assertEqual(self.api("GET", "/v2/client/%s/ping" % self.cid, token=t)[0], 200)

    def test_hang_after_does_the_work(self):
        bid = self.create_badge()
        self.fake.add_fault("hang_after", "POST", r"/issue$")
        th = threading.Thread(target=lambda: self.assertRaises(
            (http.client.HTTPException, OSError), self.issue, bid))
        th.start()
        self.fake.wait_hanging(1)
        self.assertEqual(len(self.fake.events()), 1)
        self.fake.stop()                                   # a stop ends the hang too
        th.join(10)
        self.assertFalse(th.is_alive())

    def test_unauthorized_and_token_refused(self):
        t = self.token
        self.fake.add_fault("unauthorized", "GET", r"^/v2/badge/")
        self.assertEqual(self.api("GET", "/v2/badge/%s" % self.cid, token=t)[0], 401)
        self.assertEqual(self.api("GET", "/v2/badge/%s" % self.cid, token=t)[0], 200)
        self.fake.advance(10)
        self.fake.add_fault("token_refused", "POST", "oauth2/token")
        st, _, _, doc = self.grant()
        self.assertEqual((st, doc["error"]), (401, "invalid_client"))
        # a refused request is no token: the next one within ten seconds is granted
        self.assertEqual(self.grant()[0], 200)

    def test_expired_cert(self):
        self.fake.add_fault("expired_cert", "GET", r"^/v1/ping/")
        self.assertEqual(self.v1("GET", "/v1/ping/%s" % self.cid)[0], 495)
        self.assertEqual(self.v1("GET", "/v1/ping/%s" % self.cid)[0], 200)

    def test_control_api(self):
        st, _, _, doc = request(self.fake, "POST", "/_fake/faults", {"faults": [
            {"kind": "status", "method": "GET", "path": "/ping", "status": 503}]})
        self.assertEqual((st, len(doc["faults"])), (200, 1))
        self.assertEqual(self.api("GET", "/v2/client/%s/ping" % self.cid)[0], 503)
        t = self.token
        request(self.fake, "POST", "/_fake/tokens/expire", {})
        self.assertEqual(self.api("GET", "/v2/client/%s/ping" % self.cid, token=t)[0], 401)
        request(self.fake, "POST", "/_fake/clock", {"advance": 10})
        self.assertEqual(self.grant()[0], 200)
        st, _, _, doc = request(self.fake, "POST", "/_fake/api-key", {"client_id": self.cid})
        self.assertEqual(st, 200)
        self.assertTrue(doc["api_key"])
        _, _, _, state = request(self.fake, "GET", "/_fake/state")
        self.assertTrue(state["requests"])
        self.assertNotIn(self.secret, json.dumps(state))
        self.assertEqual(request(self.fake, "POST", "/_fake/faults", {"faults": [
            {"kind": "nonsense"}]})[0], 400)


class Standalone(unittest.TestCase):
    def test_main_prints_its_setup(self):
        d = tempfile.mkdtemp(dir=TMP)
        p = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "obffake.py"), "--dir", d],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            info = json.loads(p.stdout.readline())
            port = int(info["base_url"].rsplit(":", 1)[1])
            self.assertTrue(info["base_url"].startswith("https://127.0.0.1:"))
            ctx = ssl.create_default_context(cafile=info["ca"])
            ctx.load_cert_chain(info["cert"], info["key"])
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
            conn.request("GET", "/v1/ping/" + info["client_id"])
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
        finally:
            p.terminate()
            p.wait(10)
            p.stdout.close()
            p.stderr.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
