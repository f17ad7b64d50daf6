"""The BadgeKit API contract fake (badgekitfake.py) against the contract it stands
for: each JWT check refuses in BadgeKit's order and words (app/lib/middleware.js),
scoping and the badge and instance validations answer as app/routes/ do, each
fault does what it says, and hooks are signed as app/models/webhook.js signs
them. Nothing here sleeps: states are waited for."""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import sys
import threading
import unittest
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import badgekitfake  # noqa: E402
from badgekitfake import BadgeKitFake, b64url, b64url_decode, sign_jwt, sign_request  # noqa

MASTER = "master-secret"
KEY, SECRET = "lti-consumer", "consumer-secret"
HOOK_SECRET = "hook-secret"
SYS = "badgekit"


def badge_doc(slug="intro", **over):
    doc = {"slug": slug, "name": "Intro", "earnerDescription": "You did it",
           "consumerDescription": "They did it", "criteriaUrl": "https://lti.example.edu/c/1",
           "imageUrl": "https://lti.example.edu/i/1.png", "unique": True, "type": "Course",
           "criteria": [{"description": "Finish", "required": True, "note": ""}],
           "tags": ["lti"]}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps what it gets."""

    def __init__(self):
        self.got = []
        self.cond = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.cond:
                    outer.got.append((dict(self.headers.items()), body))
                    outer.cond.notify_all()
                self.send_response(500)          # BadgeKit ignores the answer
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hooks/badgekit/bk" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def wait(self, n):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.got) >= n, 10):
                raise AssertionError("%d of %d hooks" % (len(self.got), n))
            return list(self.got)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def verify_hook(headers, body, secret):
    """What a receiver must check, from app/models/webhook.js: HS256 over the token,
    payload {body: {alg: sha256, hash: hex sha256(body)}}."""
    auth = headers.get("Authorization") or ""
    if not (auth.startswith('JWT token="') and auth.endswith('"')):
        return False
    parts = auth[11:-1].split(".")
    if len(parts) != 3:
        return False
    head = json.loads(b64url_decode(parts[0]))
    if head.get("alg") != "HS256":
        return False
    want = hmac.new(secret.encode(), (parts[0] + "." + parts[1]).encode(),
                    hashlib.sha256).digest()
    if not hmac.compare_digest(want, b64url_decode(parts[2])):
        return False
    pl = json.loads(b64url_decode(parts[1]))
    return pl == {"body": {"alg": "sha256", "hash": hashlib.sha256(body).hexdigest()}}


class FakeCase(unittest.TestCase):
    def setUp(self):
        self.hooks = Receiver()
        self.addCleanup(self.hooks.close)
        self.fake = BadgeKitFake(secret=MASTER)
        self.fake.add_system(SYS, consumer=(KEY, SECRET), webhook=(self.hooks.url, HOOK_SECRET))
        self.fake.add_issuer(SYS, "uni")
        self.fake.add_program(SYS, "uni", "cs")
        self.fake.add_system("other", consumer=("other-key", "other-secret"))
        self.fake.start()
        self.addCleanup(self.fake.stop)

    def call(self, method, target, doc=None, raw=None, key=KEY, secret=SECRET, auth=None,
             ctype="application/json", exp=None, timeout=10):
        body = raw if raw is not None else (json.dumps(doc).encode() if doc is not None
                                            else None)
        headers = {}
        if body is not None:
            headers["Content-Type"] = ctype
        if auth is None:
            auth = sign_request(method, target, key, secret, body, exp=exp,
                                now=self.fake.now())
        if auth is not False:
            headers["Authorization"] = auth
        u = urlsplit(self.fake.base_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            try:
                out = json.loads(data)
            except ValueError:
                out = None
            return r.status, out, {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()

    def token(self, claims, secret=SECRET, alg="HS256"):
        return 'JWT token="%s"' % sign_jwt(claims, secret, alg)

    def make_badge(self, slug="intro", scope="/systems/badgekit", **over):
        st, doc, _ = self.call("POST", scope + "/badges", badge_doc(slug, **over))
        self.assertEqual(st, 201, doc)
        return doc


class AuthTest(FakeCase):
    """app/lib/middleware.js verifyRequest, check by check."""

    def refused(self, message, *args, **kw):
        st, doc, _ = self.call(*args, **kw)
        self.assertEqual((st, doc), (403, {"code": "NotAuthorized", "message": message}))

    def test_signed_calls_pass(self):
        self.make_badge()
        st, doc, _ = self.call("GET", "/systems/badgekit/badges/intro")
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["badge"]["slug"], "intro")
        st, doc, _ = self.call("GET", "/systems/badgekit/badges/intro", key="master",
                               secret=MASTER)
        self.assertEqual(st, 200, doc)

    def test_header_form(self):
        tok = sign_request("GET", "/systems/badgekit/badges", KEY, SECRET)[11:-1]
        for bad in (False, "Bearer " + tok, "JWT token=" + tok, 'JWT token=""',
                    'jwt token="%s"' % tok, 'JWT token="%s" ' % tok):
            self.refused("Missing valid Authorization header", "GET",
                         "/systems/badgekit/badges", auth=bad)

    def test_undecodable(self):
        self.refused("Could not decode JWT", "GET", "/systems/badgekit/badges",
                     auth='JWT token="a.b"')
        self.refused("Could not decode JWT", "GET", "/systems/badgekit/badges",
                     auth='JWT token="!!.??.x"')

    def test_claims_in_order(self):
        t = "/systems/badgekit/badges"
        self.refused("Missing JWT payload", "GET", t, auth=self.token(None))
        self.refused("Missing JWT payload", "GET", t, auth=self.token(0))
        # {} is a payload in JavaScript; without typ JWT the payload stays a string
        self.refused("Missing JWT claim: method", "GET", t, auth=self.token({}))
        self.refused("Missing JWT claim: method", "GET", t, auth='JWT token="%s"' % sign_jwt(
            {"method": "GET", "path": t, "key": KEY}, SECRET, header={"alg": "HS256"}))
        self.refused("Missing JWT claim: method", "GET", t, auth=self.token({"path": t}))
        self.refused('`method` does not match: using "POST" token for "GET" request', "GET", t,
                     auth=self.token({"method": "POST", "path": t, "key": KEY}))
        self.refused("Missing JWT claim: path", "GET", t,
                     auth=self.token({"method": "get", "key": KEY}))
        self.refused('`path` does not match: trying to use token for "/systems/badgekit" on '
                     '"%s"' % t, "GET", t,
                     auth=self.token({"method": "GET", "path": "/systems/badgekit",
                                      "key": KEY}))
        self.refused("Missing JWT claim: key", "GET", t,
                     auth=self.token({"method": "GET", "path": t}))

    def test_path_is_the_exact_target(self):
        t = "/systems/badgekit/badges?archived=any"
        st, doc, _ = self.call("GET", t)
        self.assertEqual(st, 200, doc)
        self.refused('`path` does not match: trying to use token for "/systems/badgekit/badges"'
                     ' on "%s"' % t, "GET", t,
                     auth=sign_request("GET", "/systems/badgekit/badges", KEY, SECRET))
        # percent-encoding as sent, not decoded
        self.make_badge("a-b")
        st, _, _ = self.call("GET", "/systems/badgekit/badges/a%2Db")
        self.assertEqual(st, 200)
        self.refused('`path` does not match: trying to use token for "/systems/badgekit/badges/'
                     'a-b" on "/systems/badgekit/badges/a%2Db"', "GET",
                     "/systems/badgekit/badges/a%2Db",
                     auth=sign_request("GET", "/systems/badgekit/badges/a-b", KEY, SECRET))

    def test_expiry(self):
        now = int(self.fake.now())
        self.fake.advance(100)
        st, doc, _ = self.call("GET", "/systems/badgekit/badges", exp=now + 60)
        self.assertEqual(st, 403)
        self.assertTrue(doc["message"].startswith("Token is expired (token expiry: %d, server "
                                                  "time: " % (now + 60)), doc)
        st, doc, _ = self.call("GET", "/systems/badgekit/badges", exp=str(now + 60))
        self.assertEqual(st, 403)
        self.assertIn("Token is expired", doc["message"])
        # without exp BadgeKit accepts the token ([mw] `auth.exp && ...`)
        t = "/systems/badgekit/badges"
        st, doc, _ = self.call("GET", t, auth=self.token({"method": "GET", "path": t,
                                                          "key": KEY}))
        self.assertEqual(st, 200, doc)

    def test_body_claims(self):
        t = "/systems/badgekit/badges"
        raw = json.dumps(badge_doc()).encode()
        base = {"method": "POST", "path": t, "key": KEY}
        self.refused("Missing JWT claim: body", "POST", t, raw=raw, auth=self.token(base))
        self.refused("Missing JWT claim: body.alg", "POST", t, raw=raw,
                     auth=self.token(dict(base, body={"hash": "x"})))
        self.refused("Missing JWT claim: body.hash", "POST", t, raw=raw,
                     auth=self.token(dict(base, body={"alg": "sha256"})))
        self.refused("Could not calculate hash, unsupported algorithm: rot13", "POST", t,
                     raw=raw, auth=self.token(dict(base, body={"alg": "rot13", "hash": "x"})))
        good = hashlib.sha256(raw).hexdigest()
        other = hashlib.sha256(raw + b" ").hexdigest()
        self.refused("Computed hash does not match given hash: %s != %s" % (other, good),
                     "POST", t, raw=raw,
                     auth=self.token(dict(base, body={"alg": "sha256", "hash": other})))
        self.assertEqual(self.fake.badges(), [])
        st, doc, _ = self.call("POST", t, raw=raw, auth=self.token(
            dict(base, body={"alg": "sha256", "hash": good})))
        self.assertEqual(st, 201, doc)

    def test_key_bound_to_system(self):
        self.refused("Could not find consumer for API key", "GET", "/systems/badgekit/badges",
                     key="nobody")
        self.refused("Invalid token for system", "GET", "/systems/other/badges")
        st, _, _ = self.call("GET", "/systems/other/badges", key="other-key",
                             secret="other-secret")
        self.assertEqual(st, 200)
        # master works in any system
        st, _, _ = self.call("GET", "/systems/other/badges", key="master", secret=MASTER)
        self.assertEqual(st, 200)

    def test_signature(self):
        t = "/systems/badgekit/badges"
        claims = {"method": "GET", "path": t, "key": KEY}
        self.refused("Invalid token signature", "GET", t, auth=self.token(claims, "wrong"))
        self.refused("Invalid token signature", "GET", t,
                     auth=self.token(dict(claims, key="master"), SECRET))
        self.refused("Invalid token signature", "GET", t, auth=self.token(claims, alg="none"))
        self.refused("Invalid token signature", "GET", t, auth=self.token(claims, alg="HS512"))
        # HS256 only: a right HMAC-SHA256 under a header naming another alg is refused
        signing = b64url(b'{"typ":"JWT","alg":"%s"}') + "." + b64url(json.dumps(claims).encode())
        for alg in ("none", "HS512", "hs256"):
            s = signing.replace(b64url(b'{"typ":"JWT","alg":"%s"}'),
                                b64url(('{"typ":"JWT","alg":"%s"}' % alg).encode()))
            sig = b64url(hmac.new(SECRET.encode(), s.encode(), hashlib.sha256).digest())
            self.refused("Invalid token signature", "GET", t,
                         auth='JWT token="%s.%s"' % (s, sig))
        s = signing.replace(b64url(b'{"typ":"JWT","alg":"%s"}'),
                            b64url(b'{"typ":"JWT","alg":"HS256"}'))
        sig = b64url(hmac.new(SECRET.encode(), s.encode(), hashlib.sha256).digest())
        self.assertEqual(self.call("GET", t, auth='JWT token="%s.%s"' % (s, sig))[0], 200)
        good = self.token(claims)[11:-1].split(".")
        tampered = b64url(json.dumps(dict(claims, extra=1)).encode())
        self.refused("Invalid token signature", "GET", t,
                     auth='JWT token="%s.%s.%s"' % (good[0], tampered, good[2]))


class RouteTest(FakeCase):
    def test_unknown_route_and_method(self):
        st, doc, _ = self.call("GET", "/nowhere")
        self.assertEqual((st, doc["code"]), (404, "ResourceNotFound"))
        st, doc, h = self.call("PATCH", "/systems/badgekit/badges/intro", auth=False)
        self.assertEqual((st, doc["code"]), (405, "MethodNotAllowed"))
        self.assertIn("PUT", h["allow"])

    def test_unsupported_media_type_before_auth(self):
        st, doc, _ = self.call("POST", "/systems/badgekit/badges", raw=b"slug=x",
                               ctype="text/plain", auth=False)
        self.assertEqual((st, doc["code"]), (415, "UnsupportedMediaType"))
        st, doc, _ = self.call("POST", "/systems/badgekit/badges", raw=b"{", auth=False)
        self.assertEqual((st, doc["code"]), (400, "InvalidContent"))

    def test_scopes(self):
        self.make_badge("sysb")
        self.make_badge("prog", scope="/systems/badgekit/issuers/uni/programs/cs")
        self.assertEqual(self.fake.badge("prog")["program"], "cs")
        for target, model, value in (
                ("/systems/nope/badges/x", "system", "nope"),
                ("/systems/badgekit/issuers/nope/badges/x", "issuer", "nope"),
                ("/systems/badgekit/issuers/uni/programs/nope/badges/x", "program", "nope"),
                ("/systems/badgekit/issuers/uni/badges/sysb", "badge", "sysb"),
                ("/systems/badgekit/badges/none", "badge", "none")):
            st, doc, _ = self.call("GET", target, key="master", secret=MASTER)
            self.assertEqual((st, doc), (404, {"code": "ResourceNotFound", "message":
                                               "Could not find %s field: `slug`, value: `%s`"
                                               % (model, value)}), target)
        # a system scope sees its programs' badges ([rb] findBadge where systemId)
        st, doc, _ = self.call("GET", "/systems/badgekit/badges/prog")
        self.assertEqual(st, 200, doc)
        st, doc, _ = self.call("GET", "/systems/badgekit/issuers/uni/programs/cs/badges/prog")
        self.assertEqual((st, doc["badge"]["slug"]), (200, "prog"))


    def test_scope_itself(self):
        st, doc, _ = self.call("GET", "/systems/badgekit")
        self.assertEqual((st, doc["system"]["slug"]), (200, "badgekit"), doc)
        st, doc, _ = self.call("GET", "/systems/badgekit/issuers/uni")
        self.assertEqual((st, doc["issuer"]["slug"]), (200, "uni"), doc)
        st, doc, _ = self.call("GET", "/systems/badgekit/issuers/uni/programs/cs")
        self.assertEqual((st, doc["program"]["slug"]), (200, "cs"), doc)
        st, doc, _ = self.call("GET", "/systems/badgekit/issuers/nope")
        self.assertEqual((st, doc["message"]), (404, "Could not find issuer field: `slug`, "
                                                     "value: `nope`"))
        st, doc, _ = self.call("GET", "/systems/other")
        self.assertEqual((st, doc["message"]), (403, "Invalid token for system"))


class BadgeTest(FakeCase):
    def test_created_as_sent(self):
        doc = self.make_badge()
        b = doc["badge"]
        self.assertEqual(doc["status"], "created")
        self.assertEqual((b["slug"], b["type"], b["unique"], b["criteriaUrl"], b["imageUrl"]),
                         ("intro", "Course", True, "https://lti.example.edu/c/1",
                          "https://lti.example.edu/i/1.png"))
        self.assertEqual(b["criteria"][0]["description"], "Finish")
        self.assertEqual(b["tags"], [{"value": "lti"}])

    def validation(self, doc, fields):
        st, out, _ = self.call("POST", "/systems/badgekit/badges", doc)
        self.assertEqual(st, 400, out)
        self.assertEqual((out["code"], out["message"]),
                         ("ValidationError", "Could not validate required fields"))
        self.assertEqual(sorted(d["field"] for d in out["details"]), sorted(fields), out)
        self.assertEqual(self.fake.badges(), [])
        return out["details"]

    def test_validation(self):
        d = self.validation({"slug": "x"}, ["name", "earnerDescription", "consumerDescription",
                                            "unique", "criteriaUrl", "image"])
        self.assertIn({"message": "Required field", "field": "name", "value": ""}, d)
        self.assertIn({"message": "Missing value", "field": "image"}, d)
        self.validation(badge_doc(name="x" * 256), ["name"])
        self.validation(badge_doc(slug="s" * 256), ["slug"])
        self.validation(badge_doc(criteriaUrl="not a url"), ["criteriaUrl"])
        self.validation(badge_doc(unique="yes"), ["unique"])
        self.validation(badge_doc(earnerDescription=""), ["earnerDescription"])
        self.validation(badge_doc(imageUrl="no url"), ["url"])
        self.validation(badge_doc(timeUnits="years"), ["timeUnits"])

    def test_type_required_by_the_database(self):
        st, doc, _ = self.call("POST", "/systems/badgekit/badges", badge_doc(type=None))
        self.assertEqual((st, doc["code"]), (500, "InternalError"))
        self.assertEqual(self.fake.badges(), [])

    def test_bad_criterion_is_a_500_after_the_row(self):
        st, doc, _ = self.call("POST", "/systems/badgekit/badges",
                               badge_doc(criteria=[{"note": "x"}]))
        self.assertEqual(st, 500, doc)
        self.assertEqual([b["slug"] for b in self.fake.badges()], ["intro"])
        st, doc, _ = self.call("POST", "/systems/badgekit/badges", badge_doc())
        self.assertEqual(st, 409)

    def test_slug_unique_across_badgekit(self):
        self.make_badge()
        st, doc, _ = self.call("POST", "/systems/other/badges", badge_doc(), key="master",
                               secret=MASTER)
        self.assertEqual((st, doc["code"], doc["message"]),
                         (409, "ResourceConflict", "badge with that `slug` already exists"))
        self.assertEqual(len(self.fake.badges()), 1)

    def test_put(self):
        self.make_badge()
        st, doc, _ = self.call("PUT", "/systems/badgekit/badges/intro",
                               {"name": "Intro 2", "criteria": [{"description": "More",
                                                                 "required": True}]})
        self.assertEqual((st, doc["status"]), (200, "updated"), doc)
        self.assertEqual(self.fake.badge("intro")["name"], "Intro 2")
        self.assertEqual(self.fake.badge("intro")["criteria"][0]["description"], "More")
        st, doc, _ = self.call("PUT", "/systems/badgekit/badges/intro", {"name": ""})
        self.assertEqual((st, doc["details"][0]["field"]), (400, "name"))
        st, doc, _ = self.call("PUT", "/systems/badgekit/badges/none", {"name": "x"})
        self.assertEqual(st, 404)


class InstanceTest(FakeCase):
    T = "/systems/badgekit/badges/intro/instances"

    def setUp(self):
        super().setUp()
        self.make_badge()

    def test_award_conflict_get_delete(self):
        st, doc, h = self.call("POST", self.T, {"email": "a@example.edu", "slug": "uid-1",
                                                "issuedOn": 1700000000})
        self.assertEqual(st, 201, doc)
        url = doc["instance"]["assertionUrl"]
        self.assertEqual(url, "%s/public/assertions/uid-1" % self.fake.base_url)
        self.assertEqual(h["location"], "/public/assertions/uid-1")
        st, doc, _ = self.call("POST", self.T, {"email": "a@example.edu", "slug": "uid-2"})
        self.assertEqual((st, doc), (409, {
            "code": "ResourceConflict",
            "message": "User a@example.edu has already been awarded badge intro",
            "details": {"assertionUrl": url}}))
        self.assertEqual(len(self.fake.instances()), 1)
        st, doc, _ = self.call("GET", self.T + "/a@example.edu")
        self.assertEqual((st, doc["instance"]["slug"]), (200, "uid-1"))
        st, doc, _ = self.call("DELETE", self.T + "/a@example.edu")
        self.assertEqual((st, doc["instance"]["slug"]), (200, "uid-1"))
        self.assertEqual(self.fake.instances(), [])
        st, doc, _ = self.call("DELETE", self.T + "/a@example.edu")
        self.assertEqual((st, doc["message"]), (404, "Could not find badgeInstance field: "
                                                     "`email`, value: `a@example.edu`"))

    def test_case_insensitive_keys(self):
        st, doc, _ = self.call("POST", self.T, {"email": "A@Example.edu", "slug": "u1"})
        self.assertEqual(st, 201, doc)
        st, doc, _ = self.call("POST", self.T, {"email": "a@example.edu", "slug": "u2"})
        self.assertEqual(st, 409, doc)
        st, doc, _ = self.call("GET", self.T + "/a@example.edu")
        self.assertEqual((st, doc["instance"]["email"]), (200, "A@Example.edu"))
        st, doc, _ = self.call("POST", "/systems/badgekit/badges", badge_doc("INTRO"))
        self.assertEqual(st, 409, doc)
        st, doc, _ = self.call("GET", "/systems/badgekit/badges/Intro")
        self.assertEqual((st, doc["badge"]["slug"]), (200, "intro"))

    def test_public_assertion_gone_after_delete(self):
        st, doc, _ = self.call("POST", self.T, {"email": "a@example.edu", "slug": "u1",
                                                "issuedOn": 1700000000,
                                                "expires": 1800000000})
        self.assertEqual(st, 201, doc)
        path = urlsplit(doc["instance"]["assertionUrl"]).path
        st, a, _ = self.call("GET", path, auth=False)
        self.assertEqual(st, 200, a)
        self.assertEqual(a["recipient"], {"identity": "sha256$" + hashlib.sha256(
            b"a@example.edu").hexdigest(), "type": "email", "hashed": True})
        self.assertEqual((a["uid"], a["issuedOn"], a["expires"]), ("u1", 1700000000, 1800000000))
        self.assertEqual(a["badge"], self.fake.base_url + "/public/systems/badgekit/badges/intro")
        st, bc, _ = self.call("GET", urlsplit(a["badge"]).path, auth=False)
        self.assertEqual((st, bc["criteria"]), (200, "https://lti.example.edu/c/1"))
        self.assertEqual(self.call("DELETE", self.T + "/a@example.edu")[0], 200)
        st, doc, _ = self.call("GET", path, auth=False)
        self.assertEqual((st, doc["message"]), (404, "Could not find badge instance"))

    def test_learner_instances_whole_system(self):
        self.make_badge("prog", scope="/systems/badgekit/issuers/uni/programs/cs")
        self.assertEqual(self.call("POST", self.T, {"email": "a@example.edu"})[0], 201)
        self.assertEqual(self.call("POST", "/systems/badgekit/issuers/uni/programs/cs/badges/"
                                           "prog/instances", {"email": "a@example.edu"})[0], 201)
        for scope in ("/systems/badgekit", "/systems/badgekit/issuers/uni/programs/cs"):
            st, doc, _ = self.call("GET", scope + "/instances/a@example.edu")
            self.assertEqual(st, 200, doc)
            self.assertEqual(sorted(i["badge"]["slug"] for i in doc["instances"]),
                             ["intro", "prog"])

    def test_archived_parameter(self):
        st, doc, _ = self.call("GET", "/systems/badgekit/badges?archived=maybe")
        self.assertEqual((st, doc["code"], doc["parameter"]), (400, "InvalidParameter",
                                                               "archived"))
        st, doc, _ = self.call("GET", "/systems/badgekit/badges?archived=false")
        self.assertEqual([b["slug"] for b in doc["badges"]], ["intro"])

    def test_validation(self):
        for body, value in (({}, ""), ({"email": "nope"}, "nope")):
            st, doc, _ = self.call("POST", self.T, body)
            self.assertEqual(st, 400, doc)
            self.assertEqual(doc["code"], "ValidationError")
            self.assertEqual([(d["field"], d["value"]) for d in doc["details"]],
                             [("email", value)])
        self.assertEqual(self.fake.instances(), [])

    def test_unknown_badge(self):
        st, doc, _ = self.call("POST", "/systems/badgekit/badges/none/instances",
                               {"email": "a@example.edu"})
        self.assertEqual((st, doc["message"]), (404, "Could not find badge field: `slug`, "
                                                     "value: `none`"))


class FaultTest(FakeCase):
    T = "/systems/badgekit/badges/intro/instances"

    def test_status(self):
        self.fake.add_fault("status", "POST", r"/badges$")
        st, doc, _ = self.call("POST", "/systems/badgekit/badges", badge_doc())
        self.assertEqual((st, doc["code"]), (500, "InternalError"))
        self.assertEqual(self.fake.badges(), [])
        self.make_badge()

    def test_stored_500_then_409(self):
        self.fake.add_fault("stored_500", "POST", r"/badges$")
        st, _, _ = self.call("POST", "/systems/badgekit/badges", badge_doc())
        self.assertEqual(st, 500)
        self.assertEqual(len(self.fake.badges()), 1)
        st, doc, _ = self.call("POST", "/systems/badgekit/badges", badge_doc())
        self.assertEqual((st, doc["code"]), (409, "ResourceConflict"))

    def test_lost_instance(self):
        self.make_badge()
        self.fake.add_fault("lost", "POST", r"/instances$")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.call("POST", self.T, {"email": "a@example.edu", "slug": "u1"})
        self.assertEqual([i["slug"] for i in self.fake.instances()], ["u1"])
        st, doc, _ = self.call("POST", self.T, {"email": "a@example.edu", "slug": "u1"})
        self.assertEqual(st, 409)

    def test_hang_until_release(self):
        self.make_badge()
        self.fake.add_fault("hang", "POST", r"/instances$")
        errors = []

        def go():
            try:
                self.call("POST", self.T, {"email": "a@example.edu"})
            except (http.client.HTTPException, OSError) as e:
                errors.append(e)
        t = threading.Thread(target=go)
        t.start()
        self.fake.wait_hanging(1)
        self.fake.release()
        t.join(10)
        self.assertEqual(len(errors), 1)
        self.assertEqual(self.fake.instances(), [])

    def test_hang_ends_on_stop(self):
        self.make_badge()
        self.fake.add_fault("hang", "DELETE")
        errors = []

        def go():
            try:
                self.call("DELETE", self.T + "/a@example.edu")
            except (http.client.HTTPException, OSError) as e:
                errors.append(e)
        t = threading.Thread(target=go)
        t.start()
        self.fake.wait_hanging(1)
        self.fake.stop()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(errors), 1)

    def test_drop_does_nothing(self):
        self.make_badge()
        self.fake.add_fault("drop", "POST", r"/instances$")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.call("POST", self.T, {"email": "a@example.edu"})
        self.assertEqual(self.fake.instances(), [])
        st, _, _ = self.call("POST", self.T, {"email": "a@example.edu"})
        self.assertEqual(st, 201)

    def test_fault_matching(self):
        self.make_badge()
        self.fake.add_fault("status", "DELETE", r"/instances", count=2, status=503)
        st, _, _ = self.call("POST", self.T, {"email": "a@example.edu"})
        self.assertEqual(st, 201)           # another method: not taken
        for _ in range(2):
            self.assertEqual(self.call("DELETE", self.T + "/a@example.edu")[0], 503)
        self.assertEqual(len(self.fake.instances()), 1)
        self.assertEqual(self.fake.faults, [])
        self.assertEqual(self.call("DELETE", self.T + "/a@example.edu")[0], 200)

    def test_control_api(self):
        u = urlsplit(self.fake.base_url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("POST", "/_fake/faults", body=json.dumps({"kind": "drop", "method": "GET"}))
        self.assertEqual(c.getresponse().status, 204)
        c.close()
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.call("GET", "/systems/badgekit/badges")
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("GET", "/_fake/state")
        st = json.loads(c.getresponse().read())
        c.close()
        self.assertEqual(st["requests"][-1]["fault"], "drop")
        self.assertFalse(st["requests"][-1]["delivered"])


class HookTest(FakeCase):
    T = "/systems/badgekit/badges/intro/instances"

    def test_award_and_revoke_hooks_signed_as_badgekit(self):
        self.make_badge()
        st, doc, _ = self.call("POST", self.T, {"email": "a@example.edu", "slug": "u1",
                                                "issuedOn": 1700000000})
        self.assertEqual(st, 201)
        headers, body = self.hooks.wait(1)[0]
        self.assertTrue(verify_hook(headers, body, HOOK_SECRET))
        self.assertFalse(verify_hook(headers, body, "other"))
        self.assertEqual(headers["Content-Type"], "application/json")
        d = json.loads(body)
        self.assertEqual((d["action"], d["uid"], d["email"], d["issuedOn"], d["comment"],
                          d["badge"]["slug"]),
                         ("award", "u1", "a@example.edu", 1700000000, None, "intro"))
        self.assertEqual(d["assertionUrl"], doc["instance"]["assertionUrl"])
        # no claims but the body's: no exp, path, method, key
        tok = headers["Authorization"][11:-1].split(".")
        self.assertEqual(json.loads(b64url_decode(tok[1])).keys(), {"body"})
        self.assertEqual(json.loads(b64url_decode(tok[0])), {"typ": "JWT", "alg": "HS256"})
        self.call("DELETE", self.T + "/a@example.edu")
        headers, body = self.hooks.wait(2)[1]
        self.assertTrue(verify_hook(headers, body, HOOK_SECRET))
        self.assertEqual({k: v for k, v in json.loads(body).items() if k != "badge"},
                         {"action": "revoke", "uid": "u1", "email": "a@example.edu"})
        # sent once, the receiver's 500 ignored (no retry)
        self.fake.wait_hooks(2)
        self.assertEqual([h.status for h in self.fake.hooks_sent], [500, 500])

    def test_forged_hooks_fail_verification(self):
        self.make_badge()
        data = {"action": "award", "uid": "u9", "email": "a@example.edu"}
        for how in ("wrong_secret", "tampered", "alg_none", "unsigned", "hash_mismatch",
                    "other_alg", "malformed"):
            self.fake.forge_hook(SYS, data, how)
        got = self.hooks.wait(7)
        self.assertEqual([verify_hook(h, b, HOOK_SECRET) for h, b in got], [False] * 7)
        self.assertNotIn("Authorization", got[3][0])
        good = self.fake.send_hook(SYS, data)
        again = self.fake.replay_hook(good)
        got = self.hooks.wait(9)
        self.assertTrue(verify_hook(*got[7], HOOK_SECRET))
        self.assertEqual(got[7], got[8])
        self.assertEqual(again.body, good.body)

    def test_hook_control(self):
        u = urlsplit(self.fake.base_url)

        def control(doc):
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("POST", "/_fake/hook", body=json.dumps(doc))
            r = c.getresponse()
            out = (r.status, json.loads(r.read()))
            c.close()
            return out
        data = {"action": "revoke", "uid": "u1", "email": "a@example.edu"}
        self.assertEqual(control({"system": SYS, "data": data})[0], 200)
        self.assertEqual(control({"system": SYS, "data": data, "forge": "alg_none"})[0], 200)
        self.assertEqual(control({"replay": 0})[0], 200)
        got = self.hooks.wait(3)
        self.assertEqual([verify_hook(h, b, HOOK_SECRET) for h, b in got], [True, False, True])
        self.assertEqual(json.loads(got[0][1]), data)

    def test_no_webhook_row_no_hook(self):
        self.fake.set_webhook(SYS, None, None)
        self.make_badge()
        self.assertEqual(self.call("POST", self.T, {"email": "a@example.edu"})[0], 201)
        self.assertEqual(self.fake.hooks_sent, [])     # recorded before the answer when sent
        self.fake.send_hook(SYS, {"action": "x"}, url=self.hooks.url, secret=HOOK_SECRET)
        got = self.hooks.wait(1)
        self.assertEqual(json.loads(got[0][1]), {"action": "x"})   # the award sent none

    def test_review_hook(self):
        self.make_badge()
        self.fake.review_hook(SYS, "intro", "a@example.edu")
        h, b = self.hooks.wait(1)[0]
        self.assertTrue(verify_hook(h, b, HOOK_SECRET))
        d = json.loads(b)
        self.assertEqual((d["action"], d["approved"], d["application"]["learner"]),
                         ("review", True, "a@example.edu"))


class MainTest(unittest.TestCase):
    def test_standalone(self):
        import subprocess
        p = subprocess.Popen([sys.executable, badgekitfake.__file__], stdout=subprocess.PIPE,
                             text=True)
        try:
            info = json.loads(p.stdout.readline())
            u = urlsplit(info["base_url"])
            self.assertEqual(u.hostname, "127.0.0.1")
            t = "/systems/%s/badges" % info["system"]
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("GET", t, headers={"Authorization": sign_request(
                "GET", t, info["key"], info["secret"])})
            self.assertEqual(c.getresponse().status, 200)
            c.close()
        finally:
            p.terminate()
            p.wait(10)
            p.stdout.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
