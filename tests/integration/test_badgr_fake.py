"""The Badgr v2 contract fake (badgrfake.py) against the contract it stands for:
each check refuses what badgr-server refuses, in its words and shapes, each
answer has the v2 envelope, and each fault and control does what it says.
Nothing here sleeps: the fake's clock is moved (advance) and states are
waited for."""
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import badgrfake  # noqa: E402
from badgrfake import BadgrFake, data_uri_png, tiny_png  # noqa: E402

USER, PASSWORD = "badges@example.edu", "correct horse"
OTHER = "someone@example.org"
FORM = "application/x-www-form-urlencoded"
SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
       b'<rect width="4" height="4"/></svg>')
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def request(fake, method, path, body=None, headers=None, timeout=10.0, context=None):
    """One request on a fresh connection: (status, headers (lower-case keys), body bytes,
    JSON or None)."""
    u = urlsplit(fake.base_url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict({"Content-Type": "application/json"}, **(headers or {}))
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
    fake_options = {}

    def setUp(self):
        self.fake = BadgrFake(**self.fake_options)
        self.fake.add_account(USER, PASSWORD)
        self.fake.add_account(OTHER, "other password")
        self.issuer = self.fake.add_issuer("Example U", staff={USER: "owner"})
        self.other_issuer = self.fake.add_issuer("Other U", staff={OTHER: "owner"})
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self._token = None

    def token_request(self, pairs, headers=None, path="/o/token"):
        h = {"Content-Type": FORM}
        h.update(headers or {})
        return request(self.fake, "POST", path, urlencode(pairs).encode(), h)

    def password_grant(self, username=USER, password=PASSWORD, scope="rw:issuer"):
        pairs = [("grant_type", "password"), ("client_id", "public"), ("scope", scope),
                 ("username", username), ("password", password)]
        return self.token_request(pairs)

    @property
    def token(self):
        if self._token is None:
            st, _, body, doc = self.password_grant()
            self.assertEqual(st, 200, body)
            self._token = doc["access_token"]
        return self._token

    def api(self, method, path, body=None, token=None, headers=None, **kw):
        h = {"Authorization": "Bearer " + (token or self.token), "Accept": "application/json"}
        h.update(headers or {})
        return request(self.fake, method, path, body, h, **kw)

    def badgeclass_doc(self, **over):
        doc = {"name": "Completed unit 1", "description": "Finished every activity of unit 1",
               "image": data_uri_png(tiny_png()), "criteriaUrl": "https://lms.example.edu/c/1",
               "tags": ["ltibadges", "ltibadges:slug=unit-1@tool.example.edu"]}
        for k, v in over.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
        return doc

    def create_badgeclass(self, **over):
        st, _, body, doc = self.api("POST", "/v2/issuers/%s/badgeclasses" % self.issuer,
                                    self.badgeclass_doc(**over))
        self.assertEqual(st, 201, body)
        return doc["result"][0]["entityId"]

    def award(self, bc, email="Learner@Example.EDU", **over):
        doc = {"recipient": {"identity": email, "type": "email", "hashed": True},
               "notify": False, "allowDuplicateAwards": False}
        doc.update(over)
        return self.api("POST", "/v2/badgeclasses/%s/assertions" % bc, doc)

    def assertEnvelopeOk(self, doc, n=None):
        self.assertEqual(doc["status"], {"success": True, "description": "ok"})
        self.assertIsInstance(doc["result"], list)
        self.assertNotIn("fieldErrors", doc)
        self.assertNotIn("validationErrors", doc)
        if n is not None:
            self.assertEqual(len(doc["result"]), n)

    def assertRefused(self, answer, status, description="bad request", field=None,
                      message=None, validation=None):
        st, hdrs, body, doc = answer
        self.assertEqual(st, status, body)
        self.assertEqual(doc["status"], {"success": False, "description": description})
        self.assertEqual(doc["result"], [])
        self.assertIn("fieldErrors", doc)
        self.assertIn("validationErrors", doc)
        if field is not None:
            self.assertIn(field, doc["fieldErrors"], doc)
            if message is not None:
                self.assertEqual(doc["fieldErrors"][field], message, doc)
        if validation is not None:
            self.assertEqual(doc["validationErrors"], validation, doc)
        return doc


class Token(FakeCase):
    """POST /o/token as [oauth2_api] TokenView, [validator] and oauthlib answer."""

    def test_password_grant(self):
        st, hdrs, body, doc = self.password_grant()
        self.assertEqual(st, 200, body)
        self.assertEqual(set(doc), {"access_token", "expires_in", "token_type", "scope",
                                    "refresh_token"})
        self.assertEqual((doc["token_type"], doc["expires_in"], doc["scope"]),
                         ("Bearer", 86400, "rw:issuer"))
        self.assertEqual(hdrs["cache-control"], "no-store")
        st, _, _, doc2 = self.api("GET", "/v2/issuers/" + self.issuer, token=doc["access_token"])
        self.assertEqual(st, 200)
        # the guide's curl: no client_id, no grant_type, no scope: the public app's scopes
        st, _, body, doc = self.token_request([("username", USER), ("password", PASSWORD)])
        self.assertEqual(st, 200, body)
        self.assertEqual(doc["scope"], "rw:profile rw:issuer rw:backpack")

    def test_form_body_only(self):
        st, hdrs, body, doc = self.token_request(
            [("grant_type", "password"), ("username", USER), ("password", PASSWORD)],
            path="/o/token?client_id=public")
        self.assertEqual(st, 400)
        self.assertEqual(doc, {"error": "Token grant parameters must be sent in post body, "
                                        "not query parameters"})
        self.assertTrue(hdrs["content-type"].startswith("text/html"))
        self.fake.advance(3)          # past the back-off that failure started
        st, _, body, doc = request(self.fake, "POST", "/o/token", {
            "grant_type": "password", "username": USER, "password": PASSWORD})
        self.assertEqual((st, doc["error"]), (400, "invalid_request"), body)
        self.assertEqual(request(self.fake, "GET", "/o/token")[0], 405)

    def test_wrong_password_then_throttled_then_back_off_grows(self):
        st, hdrs, body, doc = self.password_grant(password="wrong")
        self.assertEqual((st, doc), (400, {"error": "invalid_grant",
                                           "error_description": "Invalid credentials given."}))
        self.assertTrue(hdrs["content-type"].startswith("application/json"))
        # within the back-off, even the right password: 429, `expires`, no Retry-After
        st, hdrs, body, doc = self.password_grant()
        self.assertEqual(st, 429, body)
        self.assertEqual(doc, {"error_description": "Too many login attempts. Please wait and "
                                                    "try again.",
                               "error": "login attempts throttled", "expires": 2})
        self.assertNotIn("retry-after", hdrs)
        self.assertTrue(hdrs["content-type"].startswith("text/html"))
        # keyed by username: another account is not throttled
        self.assertEqual(self.password_grant(OTHER, "other password")[0], 200)
        self.fake.advance(2.5)
        self.assertEqual(self.password_grant(password="wrong again")[0], 400)
        st, _, _, doc = self.password_grant()
        self.assertEqual((st, doc["expires"]), (429, 4))      # 2 ** 2
        self.fake.advance(4.5)
        self.assertEqual(self.password_grant()[0], 200)       # a success clears it
        self.assertEqual(self.password_grant(password="wrong")[0], 400)
        self.assertEqual(self.password_grant()[3]["expires"], 2)

    def test_client_credentials(self):
        self.fake.add_app("lti-app", "app-secret", grant="client_credentials", user=USER,
                          scopes="rw:issuer", refresh_tokens=False)
        basic = "Basic " + base64.b64encode(b"lti-app:app-secret").decode()
        st, _, body, doc = self.token_request(
            [("grant_type", "client_credentials"), ("scope", "rw:issuer")],
            {"Authorization": basic})
        self.assertEqual(st, 200, body)
        self.assertNotIn("refresh_token", doc)
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer,
                                  token=doc["access_token"])[0], 200)
        wrong = "Basic " + base64.b64encode(b"lti-app:nope").decode()
        self.fake.advance(10)
        st, hdrs, _, doc = self.token_request([("grant_type", "client_credentials")],
                                              {"Authorization": wrong})
        self.assertEqual((st, doc), (400, {"error": "invalid client_secret"}))
        self.fake.advance(10)
        unknown = "Basic " + base64.b64encode(b"nobody:x").decode()
        st, _, _, doc = self.token_request([("grant_type", "client_credentials")],
                                           {"Authorization": unknown})
        self.assertEqual((st, doc), (400, {"error": "invalid client_id"}))
        self.fake.advance(10)
        st, _, _, doc = self.token_request(
            [("grant_type", "client_credentials"), ("scope", "rw:serverAdmin")],
            {"Authorization": basic})
        self.assertEqual((st, doc), (400, {"error": "invalid scope requested"}))
        self.fake.advance(10)
        public = "Basic " + base64.b64encode(b"public:").decode()
        st, _, _, doc = self.token_request([("grant_type", "client_credentials")],
                                           {"Authorization": public})
        self.assertEqual((st, doc), (401, {"error": "invalid_client"}))
        self.fake.advance(10)
        st, _, _, doc = self.token_request([("grant_type", "password"), ("username", USER),
                                            ("password", PASSWORD)], {"Authorization": basic})
        self.assertEqual((st, doc), (400, {"error": "unauthorized_client"}))

    def test_refresh_rotates(self):
        st, _, _, first = self.password_grant()
        st, _, body, second = self.token_request([("grant_type", "refresh_token"),
                                                  ("client_id", "public"),
                                                  ("refresh_token", first["refresh_token"])])
        self.assertEqual(st, 200, body)
        self.assertNotEqual(second["refresh_token"], first["refresh_token"])
        self.assertNotEqual(second["access_token"], first["access_token"])
        # the old access token went with its refresh token
        self.assertRefused(self.api("GET", "/v2/issuers/" + self.issuer,
                                    token=first["access_token"]), 401,
                           "no valid auth token found")
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer,
                                  token=second["access_token"])[0], 200)
        st, _, _, doc = self.token_request([("grant_type", "refresh_token"),
                                            ("client_id", "public"),
                                            ("refresh_token", first["refresh_token"])])
        self.assertEqual((st, doc), (400, {"error": "invalid_grant"}))

    def test_refused_refresh(self):
        st, _, _, first = self.password_grant()
        self.fake.refuse_refresh()
        pairs = [("grant_type", "refresh_token"), ("client_id", "public"),
                 ("refresh_token", first["refresh_token"])]
        self.assertEqual(self.token_request(pairs)[:4:3], (400, {"error": "invalid_grant"}))
        self.fake.advance(3)
        # revoked for good: a new grant is the way out
        self.assertEqual(self.token_request(pairs)[0], 400)
        self.fake.advance(5)
        self.assertEqual(self.password_grant()[0], 200)

    def test_expiry_and_expire_all(self):
        tok = self.token
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)
        self.fake.advance(86401)
        self.assertRefused(self.api("GET", "/v2/issuers/" + self.issuer), 401,
                           "no valid auth token found")
        self._token = None
        self.assertNotEqual(self.token, tok)
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)
        self.fake.expire_tokens()
        answer = self.api("GET", "/v2/issuers/" + self.issuer)
        self.assertRefused(answer, 401, "no valid auth token found")
        self.assertNotIn("www-authenticate", answer[1])
        self.assertRefused(request(self.fake, "GET", "/v2/issuers/" + self.issuer), 401,
                           "no valid auth token found")

    def test_sliding_life(self):
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)
        self.fake.advance(50000)          # past half its life: using it extends it
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)
        self.fake.advance(50000)
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)

    def test_scope_without_rw_issuer(self):
        st, _, body, doc = self.password_grant(scope="rw:profile")
        self.assertEqual(st, 200, body)
        self.assertRefused(self.api("GET", "/v2/issuers/" + self.issuer,
                                    token=doc["access_token"]), 404,
                           "entity not found or insufficient privileges")


class Issuers(FakeCase):

    def test_get_own_and_not_others(self):
        st, hdrs, body, doc = self.api("GET", "/v2/issuers/" + self.issuer)
        self.assertEqual(st, 200, body)
        self.assertEnvelopeOk(doc, 1)
        self.assertEqual((doc["result"][0]["entityId"], doc["result"][0]["name"]),
                         (self.issuer, "Example U"))
        self.assertEqual(hdrs["content-type"], "application/json")
        for eid in (self.other_issuer, "no-such-issuer"):
            self.assertRefused(self.api("GET", "/v2/issuers/" + eid), 404,
                               "entity not found or insufficient privileges",
                               validation=[])
            self.assertRefused(self.api("POST", "/v2/issuers/%s/badgeclasses" % eid,
                                        self.badgeclass_doc()), 404,
                               "entity not found or insufficient privileges")

    def test_content_negotiation_and_unknown_routes(self):
        st, hdrs, _, doc = request(self.fake, "GET", "/v2/issuers/" + self.issuer,
                                   headers={"Authorization": "Bearer " + self.token})
        self.assertEqual((st, hdrs["content-type"]), (200, "application/ld+json"))
        st, hdrs, body, _ = self.api("GET", "/v2/nothing-here")
        self.assertEqual(st, 404)
        self.assertTrue(hdrs["content-type"].startswith("text/html"))
        self.assertRefused(self.api("POST", "/v2/issuers/" + self.issuer, {}), 405,
                           "miscellaneous error")

    def test_staff_role_reads_and_issues_but_does_not_edit(self):
        iss = self.fake.add_issuer("Staffed", staff={USER: "staff", OTHER: "owner"})
        self.assertEqual(self.api("GET", "/v2/issuers/" + iss)[0], 200)
        self.assertRefused(self.api("POST", "/v2/issuers/%s/badgeclasses" % iss,
                                    self.badgeclass_doc()), 404,
                           "entity not found or insufficient privileges")


class BadgeClasses(FakeCase):

    def test_create_png_and_svg(self):
        st, hdrs, body, doc = self.api("POST", "/v2/issuers/%s/badgeclasses" % self.issuer,
                                       self.badgeclass_doc(
                                           alignments=[{"targetName": "Outcome 1",
                                                        "targetUrl": "https://ex.edu/o/1",
                                                        "targetCode": "O1"}],
                                           expires={"amount": 365, "duration": "days"},
                                           criteriaNarrative="Do **all** of it"))
        self.assertEqual(st, 201, body)
        self.assertEnvelopeOk(doc, 1)
        b = doc["result"][0]
        self.assertEqual(len(b["entityId"]), 22)
        self.assertEqual((b["entityType"], b["issuer"], b["name"]),
                         ("BadgeClass", self.issuer, "Completed unit 1"))
        self.assertEqual(b["expires"], {"amount": 365, "duration": "days"})
        self.assertEqual(b["tags"], ["ltibadges", "ltibadges:slug=unit-1@tool.example.edu"])
        self.assertEqual(b["alignments"][0]["targetCode"], "O1")
        self.assertTrue(b["image"].startswith("http"))      # an image URL comes back
        self.assertEqual(b["openBadgeId"], self.fake.base_url + "/public/badges/" + b["entityId"])
        svg = "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()
        self.create_badgeclass(image=svg)
        self.assertEqual(len(self.fake.badgeclasses(self.issuer)), 2)
        rec = self.fake.records[-1]
        self.assertTrue(rec.done)
        self.assertEqual(rec.entity, self.fake.badgeclasses(self.issuer)[1]["entityId"])

    def test_refusals(self):
        path = "/v2/issuers/%s/badgeclasses" % self.issuer

        def post(**over):
            return self.api("POST", path, self.badgeclass_doc(**over))

        b64 = base64.b64encode
        self.assertRefused(post(image="data:image/jpeg;base64," + b64(JPEG).decode()), 400,
                           field="image", message=["Invalid PNG"])
        self.assertRefused(post(image="data:image/png;base64," + b64(b"not an image").decode()),
                           400, field="image", message=["Invalid image."])
        broken = bytearray(tiny_png())
        broken[20] ^= 0xff                  # a CRC that no longer holds
        self.assertRefused(post(image="data:image/png;base64," + b64(bytes(broken)).decode()),
                           400, field="image", message=["Invalid image."])
        self.assertRefused(post(image="iVBORw0KGgo="), 400, field="image",
                           message=[badgrfake.NOT_A_FILE])
        self.assertRefused(post(image="data:image/x-nothing;base64,AAAA"), 400, field="image",
                           message=["Invalid MIME type"])
        # a URL is skipped, then create() finds no image: a string, not a list
        self.assertRefused(post(image="https://example.edu/b.png"), 400, field="image",
                           message="Valid image file or data URI required.")
        self.assertRefused(post(image=None), 400, field="image",
                           message="Valid image file or data URI required.")
        self.assertRefused(post(name=None), 400, field="name",
                           message=["This field is required."])
        self.assertRefused(post(name="   "), 400, field="name",
                           message=["This field may not be blank."])
        self.assertRefused(post(name="x" * 1025), 400, field="name",
                           message=["Ensure this field has no more than 1024 characters."])
        self.assertRefused(post(description=None), 400, field="description",
                           message=["This field is required."])
        self.assertRefused(post(criteriaUrl="not a url"), 400, field="criteriaUrl",
                           message=["Enter a valid URL."])
        self.assertRefused(post(criteriaUrl=None), 400, validation=[
            "One or both of criteriaNarrative and criteriaUrl must be provided."])
        self.assertRefused(post(criteriaNarrative="![x](https://e/x.png)"), 400,
                           field="criteriaNarrative",
                           message=["Images not supported in markdown"])
        self.assertRefused(post(tags="ltibadges"), 400, field="tags",
                           message=['Expected a list of items but got type "str".'])
        self.assertRefused(post(tags=["ok", {"no": 1}]), 400, field="tags",
                           message={"1": ["Not a valid string."]})
        self.assertRefused(post(alignments=[{"targetName": "x", "targetUrl": "nope"}]), 400,
                           field="alignments", message=[{"targetUrl": ["Enter a valid URL."]}])
        self.assertRefused(post(expires={"amount": 3, "duration": "fortnights"}), 400,
                           field="expires",
                           message={"duration": ['"fortnights" is not a valid choice.']})
        self.assertRefused(post(expires={"amount": 0, "duration": "days"}), 400,
                           field="expires", message={"amount": ["Must be a positive integer"]})
        st, hdrs, body, _ = self.api("POST", path, b"{not json",
                                     headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400)
        self.assertTrue(json.loads(body)["validationErrors"][0].startswith("JSON parse error"))
        self.assertRefused(self.api("POST", path, b"name=x",
                                    headers={"Content-Type": FORM}), 415, "miscellaneous error")
        self.assertRefused(self.api("POST", path, [1, 2]), 400, validation=[
            "Invalid data. Expected a dictionary, but got list."])
        st, hdrs, body, _ = post(image=12)
        self.assertEqual((st, body), (500, badgrfake.HTML_500))
        self.assertEqual(self.fake.badgeclasses(), [])

    def test_get_put_and_others(self):
        bc = self.create_badgeclass()
        st, _, body, doc = self.api("GET", "/v2/badgeclasses/" + bc)
        self.assertEqual(st, 200, body)
        self.assertEqual(doc["result"][0]["entityId"], bc)
        new = self.badgeclass_doc(name="Unit 1, renamed", description="New text",
                                  criteriaUrl=None, criteriaNarrative="Now a narrative",
                                  tags=["ltibadges", "x"],
                                  alignments=[{"targetName": "A", "targetUrl": "https://ab.example/c"}],
                                  expires={"amount": 2, "duration": "years"},
                                  image="data:image/svg+xml;base64,"
                                        + base64.b64encode(SVG).decode())
        st, _, body, doc = self.api("PUT", "/v2/badgeclasses/" + bc, new)
        self.assertEqual(st, 200, body)
        got = self.fake.badgeclass(bc)
        self.assertEqual((got["name"], got["description"], got["criteriaNarrative"],
                          got["tags"], got["expires"], got["_image_type"], got["_updates"]),
                         ("Unit 1, renamed", "New text", "Now a narrative", ["ltibadges", "x"],
                          {"amount": 2, "duration": "years"}, "image/svg+xml", 1))
        self.assertRefused(self.api("PUT", "/v2/badgeclasses/" + bc,
                                    self.badgeclass_doc(name=None)), 400, field="name")
        # another issuer's BadgeClass is not there for this account
        st, _, _, doc = request(self.fake, "POST", "/o/token", urlencode(
            [("username", OTHER), ("password", "other password")]).encode(),
            {"Content-Type": FORM})
        other_token = doc["access_token"]
        for method, body in (("GET", None), ("PUT", self.badgeclass_doc())):
            self.assertRefused(self.api(method, "/v2/badgeclasses/" + bc, body,
                                        token=other_token), 404,
                               "entity not found or insufficient privileges")
        self.assertRefused(self.api("GET", "/v2/badgeclasses/nope"), 404,
                           "entity not found or insufficient privileges")

    def test_list_by_issuer_with_link(self):
        ids = [self.create_badgeclass(name="B%d" % i) for i in range(3)]
        st, hdrs, _, doc = self.api("GET", "/v2/issuers/%s/badgeclasses" % self.issuer)
        self.assertEqual([b["entityId"] for b in doc["result"]], ids)
        self.assertNotIn("link", hdrs)
        st, hdrs, _, doc = self.api("GET", "/v2/issuers/%s/badgeclasses?num=2" % self.issuer)
        self.assertEqual(len(doc["result"]), 2)
        nxt = hdrs["link"].split(";")[0].strip("<>")
        self.assertTrue(nxt.startswith(self.fake.base_url + "/v2/issuers/"))
        u = urlsplit(nxt)
        st, hdrs, _, doc = self.api("GET", u.path + "?" + u.query)
        self.assertEqual([b["entityId"] for b in doc["result"]], ids[2:])
        self.assertNotIn('rel="next"', hdrs.get("link", ""))


class Assertions(FakeCase):

    def test_issue_lower_cased_and_hashed(self):
        bc = self.create_badgeclass()
        st, _, body, doc = self.award(bc, "Learner@Example.EDU", issuedOn="2026-11-30T10:00:00Z",
                                      expires="2027-11-30T10:00:00Z",
                                      evidence=[{"narrative": "Completed unit 1 of Course"}])
        self.assertEqual(st, 201, body)
        self.assertEnvelopeOk(doc, 1)
        a = doc["result"][0]
        r = a["recipient"]
        self.assertEqual((r["type"], r["hashed"], r["plaintextIdentity"]),
                         ("email", True, "learner@example.edu"))
        self.assertEqual(r["identity"], "sha256$" + hashlib.sha256(
            ("learner@example.edu" + r["salt"]).encode()).hexdigest())
        self.assertEqual((a["issuedOn"], a["expires"], a["badgeclass"], a["revoked"]),
                         ("2026-11-30T10:00:00Z", "2027-11-30T10:00:00Z", bc, False))
        self.assertEqual(a["openBadgeId"], self.fake.base_url + "/public/assertions/"
                         + a["entityId"])
        self.assertEqual(a["evidence"], [{"url": None, "narrative": "Completed unit 1 of Course"}])
        # the first award to an address is mailed even with notify false
        self.assertEqual(self.fake.notified, [("learner@example.edu", a["entityId"])])
        st, _, _, _ = self.award(bc, "learner2@example.edu", notify=False)
        self.assertEqual(len(self.fake.notified), 2)
        self.fake.notified.clear()
        bc2 = self.create_badgeclass(name="Another")
        self.award(bc2, "learner@example.edu")
        self.assertEqual(self.fake.notified, [])

    def test_duplicates(self):
        bc = self.create_badgeclass()
        self.assertEqual(self.award(bc, "learner@example.edu")[0], 201)
        self.assertRefused(self.award(bc, "learner@example.edu"), 400, validation=[
            "A previous award of this badge already exists for this recipient."])
        self.assertEqual(self.award(bc, "learner@example.edu", allowDuplicateAwards=True)[0],
                         201)
        # the check compares the identity as sent: not lower-cased, it misses the stored one
        self.assertEqual(self.award(bc, "Learner@Example.edu")[0], 201)
        self.assertEqual(len(self.fake.assertions(bc, "learner@example.edu")), 3)
        # the default allows duplicates
        st, _, _, _ = self.api("POST", "/v2/badgeclasses/%s/assertions" % bc,
                               {"recipient": {"identity": "learner@example.edu"}})
        self.assertEqual(st, 201)

    def test_refusals(self):
        bc = self.create_badgeclass()
        future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        self.assertRefused(self.award(bc, issuedOn=future), 400, field="issuedOn",
                           message=["Only issuedOn dates in the past are acceptable."])
        self.assertRefused(self.award(bc, issuedOn="yesterday"), 400, field="issuedOn",
                           message=[badgrfake.DATETIME_FORMAT_ERROR])
        self.assertRefused(self.award(bc, "not-an-email"), 400, field="recipient",
                           message={"non_field_errors": ["Enter a valid email address."]})
        self.assertRefused(self.award(bc, recipient={"type": "email"}), 400, field="recipient",
                           message={"identity": ["This field is required."]})
        self.assertRefused(self.api("POST", "/v2/badgeclasses/%s/assertions" % bc,
                                    {"notify": False}), 400, field="recipient",
                           message=["This field is required"])
        self.assertRefused(self.award(bc, evidence=[{}]), 400, field="evidence",
                           message=[{"non_field_errors": ["Either url or narrative is "
                                                          "required"]}])
        self.assertRefused(self.award(bc, notify="maybe"), 400, field="notify",
                           message=["Must be a valid boolean."])
        self.assertRefused(self.award("no-such-badgeclass"), 404,
                           "entity not found or insufficient privileges")
        self.assertEqual(self.fake.assertions(), [])

    def test_issued_on_against_the_platform_clock(self):
        bc = self.create_badgeclass()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        self.fake.set_clock_behind(60)
        self.assertRefused(self.award(bc, issuedOn=now), 400, field="issuedOn")
        st, _, body, doc = self.award(bc)             # sent again without it
        self.assertEqual(st, 201, body)

    def test_find_by_recipient_following_link(self):
        bc = self.create_badgeclass()
        ids = [self.award(bc, "learner@example.edu", allowDuplicateAwards=True)[3]
               ["result"][0]["entityId"] for _ in range(5)]
        self.award(bc, "someone-else@example.edu")
        seen, path = [], "/v2/badgeclasses/%s/assertions?%s" % (
            bc, urlencode({"recipient": "learner@example.edu", "num": 2}))
        while path:
            st, hdrs, body, doc = self.api("GET", path)
            self.assertEqual(st, 200, body)
            self.assertEnvelopeOk(doc)
            seen += [a["entityId"] for a in doc["result"]]
            path = None
            for part in hdrs.get("link", "").split(","):
                if 'rel="next"' in part:
                    u = urlsplit(part.split(";")[0].strip().strip("<>"))
                    self.assertEqual("%s://%s" % (u.scheme, u.netloc), self.fake.base_url)
                    path = u.path + "?" + u.query
        self.assertEqual(seen, ids[::-1])           # newest first
        # exact identifiers only: the recipient as sent in another case finds nothing
        st, _, _, doc = self.api("GET", "/v2/badgeclasses/%s/assertions?recipient=%s"
                                 % (bc, "Learner@example.edu"))
        self.assertEqual(doc["result"], [])

    def test_revoke(self):
        bc = self.create_badgeclass()
        eid = self.award(bc)[3]["result"][0]["entityId"]
        self.assertRefused(self.api("DELETE", "/v2/assertions/" + eid), 400,
                           field="revocation_reason", message="This field is required")
        st, _, body, doc = self.api("DELETE", "/v2/assertions/" + eid,
                                    {"revocation_reason": "awarded by mistake"})
        self.assertEqual(st, 200, body)
        self.assertEqual((doc["result"][0]["revoked"], doc["result"][0]["revocationReason"]),
                         (True, "awarded by mistake"))
        self.assertRefused(self.api("DELETE", "/v2/assertions/" + eid,
                                    {"revocation_reason": "again"}), 400,
                           validation=["Assertion is already revoked"])
        self.assertRefused(self.api("DELETE", "/v2/assertions/gone-long-ago",
                                    {"revocation_reason": "x"}), 404,
                           "entity not found or insufficient privileges")
        # a revoked award is no duplicate, and is listed only with include_revoked
        self.assertEqual(self.award(bc)[0], 201)
        q = "/v2/badgeclasses/%s/assertions?recipient=learner%%40example.edu" % bc
        self.assertEqual(len(self.api("GET", q)[3]["result"]), 1)
        self.assertEqual(len(self.api("GET", q + "&include_revoked=true")[3]["result"]), 2)

    def test_staff_role_issues_but_does_not_revoke(self):
        iss = self.fake.add_issuer("Staffed", staff={USER: "staff", OTHER: "owner"})
        st, _, _, doc = request(self.fake, "POST", "/o/token", urlencode(
            [("username", OTHER), ("password", "other password")]).encode(),
            {"Content-Type": FORM})
        owner_token = doc["access_token"]
        st, _, body, doc = self.api("POST", "/v2/issuers/%s/badgeclasses" % iss,
                                    self.badgeclass_doc(), token=owner_token)
        bc = doc["result"][0]["entityId"]
        st, _, body, doc = self.award(bc)
        self.assertEqual(st, 201, body)
        self.assertRefused(self.api("DELETE", "/v2/assertions/" + doc["result"][0]["entityId"],
                                    {"revocation_reason": "x"}), 404,
                           "entity not found or insufficient privileges")


class Faults(FakeCase):

    def test_html_500_503_and_429(self):
        self.fake.add_fault("html500", "GET", r"^/v2/issuers/")
        self.fake.add_fault("status", "GET", r"^/v2/issuers/", status=503)
        self.fake.add_fault("status", "GET", r"^/v2/issuers/", status=429, retry_after=7)
        st, hdrs, body, doc = self.api("GET", "/v2/issuers/" + self.issuer)
        self.assertEqual((st, doc), (500, None))
        self.assertTrue(hdrs["content-type"].startswith("text/html"))
        st, hdrs, body, _ = self.api("GET", "/v2/issuers/" + self.issuer)
        self.assertEqual((st, body), (503, badgrfake.HTML_503))
        st, hdrs, body, _ = self.api("GET", "/v2/issuers/" + self.issuer)
        self.assertEqual((st, hdrs["retry-after"]), (429, "7"))
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)
        self.assertEqual([r.fault for r in self.fake.records[-4:]],
                         ["html500", "status", "status", None])

    def test_faults_match_method_and_path(self):
        bc = self.create_badgeclass()
        self.fake.add_fault("html500", "POST", r"/assertions$", count=2)
        self.assertEqual(self.api("GET", "/v2/badgeclasses/%s/assertions" % bc)[0], 200)
        self.assertEqual(self.award(bc)[0], 500)
        self.assertEqual(self.award(bc)[0], 500)
        self.assertEqual(self.award(bc)[0], 201)
        self.assertEqual(self.fake.faults, [])

    def test_hang_until_released_and_until_stopped(self):
        self.fake.add_fault("hang", "GET", r"^/v2/issuers/")
        with self.assertRaises((TimeoutError, socket.timeout)):
            self.api("GET", "/v2/issuers/" + self.issuer, timeout=0.3)
        self.fake.wait_hanging(1)
        self.fake.release()
        rec = self.fake.wait_for(lambda r: r.fault == "hang")[0]
        self.assertEqual((rec.status, rec.delivered), (None, False))
        # a hang that outlives the client ends when the fake stops
        self.fake.add_fault("hang", "GET", r"^/v2/issuers/")
        out = {}

        def call():
            t0 = time.monotonic()
            try:
                out["answer"] = self.api("GET", "/v2/issuers/" + self.issuer, timeout=60)
            except (OSError, http.client.HTTPException) as e:
                out["error"] = e
            out["elapsed"] = time.monotonic() - t0
        t = threading.Thread(target=call)
        t.start()
        self.fake.wait_hanging(1)
        self.fake.stop()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertIn("error", out)
        self.assertLess(out["elapsed"], 30)

    def test_drop_does_nothing_lost_does_the_work(self):
        self.fake.add_fault("drop", "POST", r"/badgeclasses$")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.api("POST", "/v2/issuers/%s/badgeclasses" % self.issuer, self.badgeclass_doc())
        self.assertEqual(self.fake.badgeclasses(), [])
        self.fake.add_fault("lost", "POST", r"/badgeclasses$")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.api("POST", "/v2/issuers/%s/badgeclasses" % self.issuer, self.badgeclass_doc())
        made = self.fake.badgeclasses()
        self.assertEqual(len(made), 1)
        rec = self.fake.records[-1]
        self.assertEqual((rec.fault, rec.done, rec.delivered, rec.entity, rec.status),
                         ("lost", True, False, made[0]["entityId"], 201))
        self.fake.add_fault("lost", "POST", r"/assertions$")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.award(made[0]["entityId"], "learner@example.edu")
        self.assertEqual(len(self.fake.assertions(made[0]["entityId"])), 1)
        # the re-send is refused as a duplicate; the look-up finds it
        self.assertRefused(self.award(made[0]["entityId"], "learner@example.edu"), 400,
                           validation=[badgrfake.DUPLICATE])

    def test_hang_after_the_work(self):
        self.fake.add_fault("hang_after", "POST", r"/badgeclasses$")
        with self.assertRaises((TimeoutError, socket.timeout)):
            self.api("POST", "/v2/issuers/%s/badgeclasses" % self.issuer, self.badgeclass_doc(),
                     timeout=0.5)
        self.fake.wait_hanging(1)
        self.assertEqual(len(self.fake.badgeclasses()), 1)      # made while it hangs
        self.fake.release()
        rec = self.fake.wait_for(lambda r: r.fault == "hang_after")[0]
        self.assertEqual((rec.done, rec.delivered, rec.status), (True, False, 201))

    def test_one_401(self):
        self.fake.add_fault("unauthorized", "*", r"^/v2/")
        self.assertRefused(self.api("GET", "/v2/issuers/" + self.issuer), 401,
                           "no valid auth token found")
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)

    def test_malformed_and_no_entity_after_the_work(self):
        self.fake.add_fault("malformed", "POST", r"/badgeclasses$")
        st, _, body, doc = self.api("POST", "/v2/issuers/%s/badgeclasses" % self.issuer,
                                    self.badgeclass_doc())
        self.assertEqual((st, doc), (201, None))
        self.assertEqual(len(self.fake.badgeclasses()), 1)
        self.fake.add_fault("no_entity", "POST", r"/badgeclasses$")
        st, _, body, doc = self.api("POST", "/v2/issuers/%s/badgeclasses" % self.issuer,
                                    self.badgeclass_doc())
        self.assertEqual(st, 201)
        self.assertNotIn("entityId", doc["result"][0])
        self.assertEqual(len(self.fake.badgeclasses()), 2)

    def test_refused_grant_fault(self):
        self.fake.add_fault("invalid_grant", "POST", r"^/o/token$")
        st, _, _, doc = self.password_grant()
        self.assertEqual((st, doc), (400, {"error": "invalid_grant"}))
        self.assertEqual(self.password_grant()[0], 200)

    def test_rate_limit_per_client(self):
        self.fake.set_rate_limit(rate=0.001, burst=2, retry_after=3)
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)
        st, hdrs, body, doc = self.api("GET", "/v2/issuers/" + self.issuer)
        self.assertEqual((st, hdrs["retry-after"]), (429, "3"))
        self.assertEqual(doc["status"]["success"], False)
        # another client has its own bucket
        st, _, _, other = request(self.fake, "POST", "/o/token", urlencode(
            [("username", OTHER), ("password", "other password")]).encode(),
            {"Content-Type": FORM})
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.other_issuer,
                                  token=other["access_token"])[0], 200)
        self.fake.set_rate_limit(None)
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 200)


class Control(FakeCase):
    """The HTTP control API does what the methods do, and reads state only."""

    def test_faults_state_and_tokens_over_http(self):
        st, _, body, doc = request(self.fake, "POST", "/_fake/faults", {"faults": [
            {"kind": "status", "method": "GET", "path": "^/v2/issuers/", "status": 503}]})
        self.assertEqual(st, 200, body)
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 503)
        bc = self.create_badgeclass()
        self.award(bc)
        st, _, _, state = request(self.fake, "GET", "/_fake/state")
        self.assertEqual(st, 200)
        self.assertEqual([b["entityId"] for b in state["badgeclasses"]], [bc])
        self.assertEqual(len(state["assertions"]), 1)
        self.assertTrue(any(r["fault"] == "status" for r in state["requests"]))
        self.assertFalse(any(r["path"].startswith("/_fake/") for r in state["requests"]))
        request(self.fake, "POST", "/_fake/tokens/expire", {})
        self.assertEqual(self.api("GET", "/v2/issuers/" + self.issuer)[0], 401)
        request(self.fake, "POST", "/_fake/clock", {"behind": 3600})
        self._token = None
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.assertRefused(self.award(bc, "x@example.edu", issuedOn=now), 400, field="issuedOn")
        # no control creates or awards
        for path in ("/_fake/badgeclasses", "/_fake/assertions", "/_fake/state"):
            self.assertEqual(request(self.fake, "POST", path, {"name": "x"})[0], 404)


class Tls(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("no openssl command")
        cls.tmp = tempfile.mkdtemp(prefix="badgrfake-")
        cls.pki = badgrfake.make_ca(os.path.join(cls.tmp, "a"))
        cls.other = badgrfake.make_ca(os.path.join(cls.tmp, "b"), name="other")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_https_with_the_test_ca_only(self):
        fake = BadgrFake(tls=self.pki)
        fake.add_account(USER, PASSWORD)
        with fake:
            self.assertTrue(fake.base_url.startswith("https://127.0.0.1:"))
            ctx = ssl.create_default_context(cafile=self.pki["ca"])
            st, _, body, doc = request(fake, "POST", "/o/token", urlencode(
                [("username", USER), ("password", PASSWORD)]).encode(),
                {"Content-Type": FORM}, context=ctx)
            self.assertEqual(st, 200, body)
            bad = ssl.create_default_context(cafile=self.other["ca"])
            with self.assertRaises(ssl.SSLCertVerificationError):
                request(fake, "GET", "/v2/issuers/x", context=bad)
            # the fake still serves after a client refused its certificate
            self.assertEqual(request(fake, "GET", "/v2/issuers/x", context=ctx)[0], 401)


if __name__ == "__main__":
    unittest.main(verbosity=2)
