#!/usr/bin/python3
"""LTI 1.1 Basic Outcomes in both directions, through the real server.

In: POST /lti/outcomes signed by oauthlib (an implementation independent of
ours: OAuth in the Authorization header with oauth_body_hash) with
replaceResult, readResult and deleteResult for the sourcedids of Canvas,
Moodle and Open edX launches and for the tool's own; every refusal (bad
signature, tampered body, replay, stale timestamp, wrong media type, huge
bodies, XML bombs and external entities, bad scores, unknown and foreign
sourcedids, unsupported operations) answered and changing nothing.

Out: a fake LMS (fakelms.py) that checks signatures and body hashes as Moodle
and Canvas do: grades read back at launch and periodically turn into awards,
an issued badge is written back with replaceResult (Canvas' resultData URL),
and an LMS that is down, slow, refusing or answering garbage is retried or
given up on, visibly in `award list --json`.
"""
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelms  # noqa: E402
import ltitest as lt  # noqa: E402
from ltitest import base_launch, hex_id, run_cli  # noqa: E402
from oauthlib import oauth1  # noqa: E402

NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
XML = "application/xml"
WAIT = float(os.environ.get("LTIBADGES_AWARD_WAIT", "20"))

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
       '<circle cx="32" cy="32" r="30" fill="#0a0"/></svg>')


def pox_request(op, sourcedid, score=None, msgid=None, data=None):
    """A request as the IMS spec prints it (and Moodle and Canvas send it)."""
    result = ""
    if score is not None or data:
        result = "<result>"
        if score is not None:
            result += ("<resultScore><language>en</language><textString>%s</textString>"
                       "</resultScore>" % score)
        if data:
            result += "<resultData>%s</resultData>" % data
        result += "</result>"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<imsx_POXEnvelopeRequest xmlns="%s"><imsx_POXHeader><imsx_POXRequestHeaderInfo>'
            '<imsx_version>V1.0</imsx_version><imsx_messageIdentifier>%s'
            '</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader>'
            '<imsx_POXBody><%s><resultRecord><sourcedGUID><sourcedId>%s</sourcedId>'
            '</sourcedGUID>%s</resultRecord></%s></imsx_POXBody></imsx_POXEnvelopeRequest>'
            % (NS, msgid or hex_id(8), op, sourcedid, result, op))


def parse_pox(resp):
    """The fields of a POX response: codeMajor, description, messageRef, operationRef, score."""
    root = ET.fromstring(resp.body)
    assert root.tag == "{%s}imsx_POXEnvelopeResponse" % NS, root.tag

    def text(path):
        e = root.find("/".join("{%s}%s" % (NS, p) for p in path.split("/")))
        return None if e is None else (e.text or "")
    info = "imsx_POXHeader/imsx_POXResponseHeaderInfo"
    return {
        "code": text(info + "/imsx_statusInfo/imsx_codeMajor"),
        "severity": text(info + "/imsx_statusInfo/imsx_severity"),
        "description": text(info + "/imsx_statusInfo/imsx_description"),
        "ref": text(info + "/imsx_statusInfo/imsx_messageRefIdentifier"),
        "opref": text(info + "/imsx_statusInfo/imsx_operationRefIdentifier"),
        "msgid": text(info + "/imsx_messageIdentifier"),
        "score": text("imsx_POXBody/readResultResponse/result/resultScore/textString"),
        "body": [c.tag.split("}")[1] for c in root.find("{%s}imsx_POXBody" % NS)],
    }


class OutcomesCase(lt.ServerTestCase):
    consumers = (("LMS A", None, None), ("LMS B", None, None))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.svg_path = os.path.join(cls.tmp, "badge.svg")
        with open(cls.svg_path, "w") as f:
            f.write(SVG)
        cls.outcomes_url = cls.server.public_url + "/lti/outcomes"

    def cli(self, *args, ok=True):
        p = run_cli(*args, "--db", self.db)
        if ok:
            self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p

    def badge(self, name, rule, context=None, *extra, key=None):
        args = ["badge", "create", "--consumer", key or self.key, "--name", name,
                "--description", "About " + name, "--image", self.svg_path, "--rule", rule]
        if context:
            args += ["--context", context]
        p = self.cli(*(args + list(extra)))
        return re.match(r"^slug=(\S+)$", p.stdout.strip()).group(1)

    def awards(self):
        return json.loads(self.cli("award", "list", "--json").stdout)

    def user_awards(self, user):
        return [a for a in self.awards() if a["user"] == user]

    def wait_for(self, what, fn, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                self.fail("%s did not happen in time" % what)
            time.sleep(0.1)

    def wait_award(self, user, state="issued"):
        return self.wait_for("award of %s %s" % (user, state),
                             lambda: [a for a in self.user_awards(user) if a["state"] == state])

    def counts(self):
        """Row counts of every table but nonces (a signed request claims its nonce)."""
        c = lt.counts(self.db)
        c.pop("nonces")
        return c

    def grades(self, user):
        """The grades the store holds for the first consumer's `user`: (link, score, source)."""
        u = lt.user(self.db, self.key, user)
        return [(g["resource_link"], g["score"], g["source"]) for g in u["grades"]] if u else []

    def binding_of(self, user, sourcedid):
        """The outcome binding of `user` (of the first consumer) with `sourcedid`."""
        (b,) = [b for b in lt.user(self.db, self.key, user)["outcome_bindings"]
                if b["sourcedid"] == sourcedid]
        return b

    def launch_with_binding(self, user, context, link, sourcedid, service_url, key=None,
                            secret=None, **extra):
        params = base_launch(user_id=user, context_id=context, resource_link_id=link,
                             lis_result_sourcedid=sourcedid, lis_outcome_service_url=service_url,
                             lis_person_contact_email_primary=user + "@example.edu", **extra)
        resp, _ = self.server.launch(params, key or self.key, secret or self.secret)
        self.assertRedirectToPage(resp)

    def post_pox(self, body, key=None, secret=None, method=lt.HMAC_SHA1, url=None,
                 content_type=XML, tamper=None, nonce=None, timestamp=None, headers=None):
        """Signs `body` with oauthlib (Authorization header, oauth_body_hash) and POSTs it."""
        client = oauth1.Client(key or self.key, client_secret=secret or self.secret,
                               signature_type=oauth1.SIGNATURE_TYPE_AUTH_HEADER,
                               signature_method=method, nonce=nonce,
                               timestamp=None if timestamp is None else str(timestamp))
        _, h, _ = client.sign(url or self.outcomes_url, http_method="POST", body=body,
                              headers={"Content-Type": XML})
        h = dict(h)
        if content_type != XML:
            h["Content-Type"] = content_type
        h.update(headers or {})
        if tamper:
            body = tamper(body)
        path = urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else "") \
            if url else "/lti/outcomes"
        return self.server.request("POST", path, body=body, headers=h)

    def assertPox(self, resp, code, *phrases, status=200):
        self.assertEqual(resp.status, status, resp)
        self.assertTrue((resp.header("Content-Type") or "").startswith("application/xml"), resp)
        p = parse_pox(resp)
        self.assertEqual(p["code"], code, p)
        self.assertEqual(p["severity"], "status" if code == "success" else "error", p)
        for ph in phrases:
            self.assertIn(ph, p["description"], p)
        return p


class Incoming(OutcomesCase):
    """POST /lti/outcomes: an LMS (or a grader with the consumer's key) pushes grades."""

    def setUp(self):
        self.ctx = "ctx-" + hex_id(4)
        self.user = "u-" + hex_id(4)
        self.link = "quiz-" + hex_id(3)
        self.sourcedid = "canvas-" + hex_id(12)
        self.cli("context", "enable", "--consumer", self.key, "--context", self.ctx)
        # the service URL is never called here: loopback is not allowed by default
        self.launch_with_binding(self.user, self.ctx, self.link, self.sourcedid,
                                 "https://canvas.example.edu/api/lti/v1/tools/1/grade_passback",
                                 ext_outcome_data_values_accepted="url,text",
                                 ext_outcome_result_total_score_accepted="true",
                                 tool_consumer_info_product_family_code="canvas")

    def test_replace_read_delete_with_an_lms_sourcedid(self):
        slug = self.badge("Quiz ace", "score:0.8:" + self.link, self.ctx)
        msgid = "msg-" + hex_id(4)
        r = self.assertPox(self.post_pox(pox_request("replaceResultRequest", self.sourcedid,
                                                     "0.92", msgid=msgid)),
                           "success", "0.92")
        self.assertEqual(r["ref"], msgid)
        self.assertEqual(r["opref"], "replaceResult")
        self.assertEqual(r["body"], ["replaceResultResponse"])
        self.assertNotEqual(r["msgid"], msgid)
        self.assertEqual(self.grades(self.user), [(self.link, 0.92, "outcomes")])
        award = self.wait_award(self.user)[0]
        self.assertEqual(award["badge"], slug)
        self.assertEqual(award["reason"], "score")
        # the LMS is owed a replaceResult; its host does not resolve here, so it waits
        pb = self.wait_for("a passback attempt", lambda: (self.user_awards(self.user)[0]
                                                          ["passback"] or {}).get("answer"))
        self.assertIn("could not reach the LMS", pb)
        self.assertIn(self.user_awards(self.user)[0]["passback"]["state"], ("queued", "sending"))

        r = self.assertPox(self.post_pox(pox_request("readResultRequest", self.sourcedid)),
                           "success")
        self.assertEqual(r["score"], "0.92")
        self.assertEqual(r["body"], ["readResultResponse"])

        r = self.assertPox(self.post_pox(pox_request("deleteResultRequest", self.sourcedid)),
                           "success", "deleted")
        self.assertEqual(r["opref"], "deleteResult")
        self.assertEqual(self.grades(self.user), [])
        # an issued badge stays when its grade is deleted (revoke_on_withdrawn is off)
        self.assertEqual(self.user_awards(self.user)[0]["state"], "issued")
        r = self.assertPox(self.post_pox(pox_request("readResultRequest", self.sourcedid)),
                           "success")
        self.assertEqual(r["score"], "")

    def test_tool_sourcedid_and_hmac_sha256(self):
        link = "essay-" + hex_id(3)
        sid = self.cli("outcome", "sourcedid", "--consumer", self.key, "--context", self.ctx,
                       "--user", self.user, "--resource-link", link).stdout.strip()
        self.assertRegex(sid, r"^lb-[0-9a-f]{40}$")
        # asked again, the same one
        self.assertEqual(sid, self.cli("outcome", "sourcedid", "--consumer", self.key,
                                       "--context", self.ctx, "--user", self.user,
                                       "--resource-link", link).stdout.strip())
        self.assertPox(self.post_pox(pox_request("replaceResultRequest", sid, ".5"),
                                     method=lt.HMAC_SHA256), "success")
        self.assertIn((link, 0.5, "outcomes"), self.grades(self.user))

    def test_moodle_and_openedx_sourcedids(self):
        moodle_sid = json.dumps({"data": {"instanceid": "2", "userid": "7", "typeid": "1",
                                          "launchid": 1234567}, "hash": hex_id(32)})
        u2, u3 = "7", "edx-" + hex_id(16)
        self.launch_with_binding(u2, self.ctx, "m-link", moodle_sid,
                                 "https://moodle.example.edu/mod/lti/service.php",
                                 tool_consumer_info_product_family_code="moodle")
        edx_sid = "course-v1:Org+CS101+2026:lti.example.edu-%s:%s" % (hex_id(16), u3)
        self.launch_with_binding(u3, self.ctx, "block-v1:Org+CS101+2026+type@lti+block@x",
                                 edx_sid,
                                 "https://lms.example.edu/courses/course-v1:Org+CS101+2026/xblock/"
                                 "block-v1:Org+CS101+2026+type@lti+block@x/handler_noauth/"
                                 "outcome_service_handler")
        self.assertPox(self.post_pox(pox_request("replaceResultRequest",
                                                 moodle_sid.replace("&", "&amp;"), "0.7")),
                       "success")
        self.assertPox(self.post_pox(pox_request("replaceResultRequest", edx_sid, "1.0")),
                       "success")
        self.assertEqual(self.grades(u2), [("m-link", 0.7, "outcomes")])
        self.assertEqual(self.grades(u3), [("block-v1:Org+CS101+2026+type@lti+block@x", 1.0,
                                            "outcomes")])

    def test_failures_change_nothing(self):
        before = self.counts(), self.grades(self.user)
        cases = [
            (pox_request("replaceResultRequest", self.sourcedid, "1.5"), "resultScore"),
            (pox_request("replaceResultRequest", self.sourcedid, "abc"), "resultScore"),
            (pox_request("replaceResultRequest", self.sourcedid, "-0.5"), "resultScore"),
            (pox_request("replaceResultRequest", self.sourcedid, ""), "resultScore"),
            (pox_request("replaceResultRequest", self.sourcedid), "resultScore"),
            (pox_request("replaceResultRequest", "nobody-" + hex_id(4), "0.5"), "sourcedId"),
            (pox_request("readResultRequest", ""), "sourcedId"),
            ("<not-pox/>", "imsx_POXEnvelopeRequest"),
            ("not xml at all", "well-formed"),
        ]
        for body, phrase in cases:
            msgid = hex_id(4)
            body = body.replace("<imsx_messageIdentifier>", "<imsx_messageIdentifier>" + msgid, 1)
            r = self.assertPox(self.post_pox(body), "failure", phrase)
            if "imsx_messageIdentifier" in body:
                self.assertTrue(r["ref"].startswith(msgid), (body, r))
        # another consumer's learner: found for nobody else
        r = self.assertPox(self.post_pox(pox_request("replaceResultRequest", self.sourcedid,
                                                     "1.0"), key=self.keys[1][0],
                                         secret=self.keys[1][1]), "failure", "sourcedId")
        self.assertEqual(r["body"], [])
        self.assertEqual((self.counts(), self.grades(self.user)), before)

    def test_unsupported_operation(self):
        r = self.assertPox(self.post_pox(pox_request("readMembershipRequest", self.sourcedid)),
                           "unsupported", "readMembership")
        self.assertEqual(r["opref"], "readMembership")

    def test_refused_before_reading_the_xml(self):
        body = pox_request("replaceResultRequest", self.sourcedid, "1.0")
        before = self.counts()
        # wrong secret, body changed after signing, replayed nonce, stale timestamp
        self.assertPox(self.post_pox(body, secret="wrong"), "failure", "signature",
                       status=401)
        self.assertPox(self.post_pox(body, tamper=lambda b: b.replace("1.0", "0.1")),
                       "failure", "oauth_body_hash", status=401)
        nonce = hex_id(8)
        self.assertPox(self.post_pox(pox_request("readResultRequest", self.sourcedid),
                                     nonce=nonce), "success")
        self.assertPox(self.post_pox(body, nonce=nonce), "failure", "nonce", status=401)
        self.assertPox(self.post_pox(body, timestamp=int(time.time()) - 3600), "failure",
                       "timestamp", status=401)
        # no Authorization header; one without a body hash (signed as if it were a form)
        resp = self.server.request("POST", "/lti/outcomes", body=body,
                                   headers={"Content-Type": XML})
        self.assertPox(resp, "failure", "Authorization", status=401)
        client = oauth1.Client(self.key, client_secret=self.secret,
                               signature_type=oauth1.SIGNATURE_TYPE_AUTH_HEADER)
        _, h, _ = client.sign(self.outcomes_url, http_method="POST")
        resp = self.server.request("POST", "/lti/outcomes", body=body,
                                   headers={"Content-Type": XML,
                                            "Authorization": h["Authorization"]})
        self.assertPox(resp, "failure", "oauth_body_hash", status=401)
        # unknown key
        self.assertPox(self.post_pox(body, key="nobody"), "failure", "consumer", status=401)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.grades(self.user), [])
        # the HTTP level: method, media type, size
        self.assertRefusal(self.server.get("/lti/outcomes"), 405)
        self.assertRefusal(self.post_pox(body, content_type=lt.FORM), 415, "application/xml")
        self.assertEqual(self.grades(self.user), [])

    def test_huge_bodies_refused_before_they_are_read(self):
        # announced: answered from the headers, the 10 MB never sent
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        conn.putrequest("POST", "/lti/outcomes")
        conn.putheader("Content-Type", XML)
        conn.putheader("Content-Length", str(10 * 1024 * 1024))
        conn.endheaders()
        conn.send(b"<imsx_POXEnvelopeRequest>")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413)
        self.assertIn(b"larger than", resp.read())
        conn.close()
        # streamed without a length: read and dropped past the cap (nothing kept), then refused
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        conn.putrequest("POST", "/lti/outcomes")
        conn.putheader("Content-Type", XML)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = b"<a>0123456789abcdef0123456789abcdef0123456789abcdef0123456789</a>" * 1024
        try:
            for _ in range(10 * 1024 * 1024 // len(chunk)):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the client is done
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413)
        self.assertIn(b"larger than", resp.read())
        conn.close()
        self.assertEqual(self.server.get("/healthz").status, 200)

    def test_xml_bombs_and_external_entities(self):
        laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join('<!ENTITY lol%d "%s">' % (i, ("&lol%s;" % (i - 1 if i > 2 else ""))
                                                            * 10) for i in range(2, 10))
                  + ']><imsx_POXEnvelopeRequest><imsx_POXHeader><imsx_POXRequestHeaderInfo>'
                  '<imsx_messageIdentifier>&lol9;</imsx_messageIdentifier>'
                  '</imsx_POXRequestHeaderInfo></imsx_POXHeader></imsx_POXEnvelopeRequest>')
        xxe = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               + pox_request("replaceResultRequest", "&x;", "1.0").split("?>", 1)[1])
        remote = ('<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">'
                  + pox_request("readResultRequest", self.sourcedid).split("?>", 1)[1])
        for body in (laughs, xxe, remote):
            t0 = time.monotonic()
            self.assertPox(self.post_pox(body), "failure", "DOCTYPE")
            self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.grades(self.user), [])


class Withdrawn(OutcomesCase):
    """A grade deleted or lowered revokes the badge only where the BadgeClass says so."""

    def states(self, user, *slugs):
        got = {a["badge"]: a["state"] for a in self.user_awards(user)}
        return [got.get(s) for s in slugs]

    def test_withdrawn_grades(self):
        ctx, link = "ctx-" + hex_id(4), "final"
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        strict = self.badge("Strict", "score:0.8:" + link, ctx, "--revoke-on-withdrawn", "yes")
        lenient = self.badge("Lenient", "score:0.6:" + link, ctx)
        shown = json.loads(self.cli("badge", "show", strict, "--json").stdout)
        self.assertTrue(shown["revoke_on_withdrawn"])
        self.assertEqual(shown["passback_score"], 1.0)
        users = {}
        for name in ("lowered", "deleted"):
            user, sid = name + "-" + hex_id(3), "sid-" + hex_id(8)
            self.launch_with_binding(user, ctx, link, sid, "https://lms.example.edu/outcomes")
            self.assertPox(self.post_pox(pox_request("replaceResultRequest", sid, "0.9")),
                           "success")
            users[name] = (user, sid)
        for user, _ in users.values():
            self.wait_for("both badges of " + user,
                          lambda u=user: self.states(u, strict, lenient) == ["issued", "issued"])
        user, sid = users["lowered"]
        self.assertPox(self.post_pox(pox_request("replaceResultRequest", sid, "0.7")), "success")
        got = {a["badge"]: a for a in self.user_awards(user)}
        self.assertEqual(got[strict]["state"], "revoked")
        self.assertIn("70%", got[strict]["revoke_reason"])
        self.assertIn("80%", got[strict]["revoke_reason"])
        self.assertEqual(got[lenient]["state"], "issued")  # 0.7 still passes 0.6
        self.assertEqual(self.grades(user), [(link, 0.7, "outcomes")])

        user, sid = users["deleted"]
        self.assertPox(self.post_pox(pox_request("deleteResultRequest", sid)), "success")
        got = {a["badge"]: a for a in self.user_awards(user)}
        self.assertEqual(got[strict]["state"], "revoked")
        self.assertIn("withdrawn", got[strict]["revoke_reason"])
        self.assertEqual(got[lenient]["state"], "issued")
        self.assertEqual(self.grades(user), [])

        # switched off later: a lowered grade is only recorded
        self.cli("badge", "set", strict, "--revoke-on-withdrawn", "no")
        user, sid = "late-" + hex_id(3), "sid-" + hex_id(8)
        self.launch_with_binding(user, ctx, link, sid, "https://lms.example.edu/outcomes")
        self.assertPox(self.post_pox(pox_request("replaceResultRequest", sid, "1")), "success")
        self.wait_for("badges of " + user,
                      lambda: self.states(user, strict, lenient) == ["issued", "issued"])
        self.assertPox(self.post_pox(pox_request("replaceResultRequest", sid, "0.1")), "success")
        self.assertEqual(self.states(user, strict, lenient), ["issued", "issued"])
        self.assertEqual(self.grades(user), [(link, 0.1, "outcomes")])


class Outgoing(OutcomesCase):
    """The tool calls the LMS: grades read back, badges passed back, faults survived."""

    CONFIG = ("[outcomes]\nallow_loopback = true\nread_interval = 2\nrate = 50\n"
              "connect_timeout = 2\ntimeout = 2\n")

    def setUp(self):
        self.lms = fakelms.FakeLMS({self.key: self.secret}).start()
        self.addCleanup(self.lms.stop)
        self.ctx = "ctx-" + hex_id(4)
        self.cli("context", "enable", "--consumer", self.key, "--context", self.ctx)

    def learner(self, url, score=None, link="final", ctx=None, **extra):
        user, sid = "u-" + hex_id(4), "sid-" + hex_id(10)
        self.lms.add_result(sid, score=score)
        self.launch_with_binding(user, ctx or self.ctx, link, sid, url, **extra)
        return user, sid

    def quiet_course(self):
        """A course whose grades nothing needs (badges off, no course-wide rules): never read,
        so every request the fake sees for it is a passback."""
        return "quiet-" + hex_id(4)

    def replaces(self, sid):
        return [r for r in self.lms.records
                if r.sourcedid == sid and r.operation == "replaceResultRequest"]

    def passback(self, user, state):
        def done():
            got = [a for a in self.user_awards(user)
                   if (a["passback"] or {}).get("state") == state]
            return got[0] if got else None
        return self.wait_for("passback %s for %s" % (state, user), done)

    def test_canvas_grade_read_back_awards_and_passes_back_the_url(self):
        slug = self.badge("Quiz ace", "score:0.8:final", self.ctx)
        user, sid = self.learner(self.lms.canvas_url(), score=0.9,
                                 ext_outcome_data_values_accepted="url,text")
        # the launch asked for the LMS grade; it was signed as the LMS checks it
        read = self.lms.wait_for(lambda r: r.sourcedid == sid
                                 and r.operation == "readResultRequest")[0]
        self.assertTrue(read.signature_ok and read.body_hash_ok and read.nonce_fresh, read)
        self.assertEqual(read.code_major, "success")
        award = self.passback(user, "done")
        self.assertEqual(award["badge"], slug)
        self.assertIn((award["reason"]), ("score", "completion"))
        self.assertTrue(award["passback"]["answer"].startswith("success"), award)
        self.assertIn(("final", 0.9, "lms"), self.grades(user))
        rep = self.replaces(sid)
        self.assertTrue(rep and all(r.signature_ok and r.body_hash_ok for r in rep), rep)
        # the LMS's own grade is kept; the badge's URL goes with it
        urls = {a["assertion_url"] for a in self.user_awards(user)}
        self.assertTrue(all(float(r.score_text) == 0.9 for r in rep), rep)
        self.assertEqual({r.result_data_url for r in rep}, urls)
        self.assertEqual(self.lms.result(sid)["score"], 0.9)

    def test_moodle_passback_writes_the_badge_score(self):
        slug = self.badge("Joined", "enrollment", self.ctx)
        user, sid = self.learner(self.lms.moodle_url())
        award = self.passback(user, "done")
        self.assertEqual(award["badge"], slug)
        rep = self.replaces(sid)
        self.assertEqual(len(rep), 1, rep)
        self.assertEqual(float(rep[0].score_text), 1.0)
        self.assertIsNone(rep[0].result_data_url)  # Moodle takes no resultData
        self.assertEqual(self.lms.result(sid)["score"], 1.0)
        # a read of an empty Moodle grade is an answer, not an error
        self.assertIsNone(self.binding_of(user, sid)["last_read_error"])

    def test_openedx_score_and_passback_off(self):
        url = self.lms.edx_url()
        scored = self.badge("Scored", "manual", self.ctx, "--passback-score", "0.75")
        silent = self.badge("Silent", "manual", self.ctx, "--passback-score", "off")
        user, sid = self.learner(url)
        self.cli("award", "grant", "--badge", scored, "--consumer", self.key, "--user", user)
        self.passback(user, "done")
        self.assertEqual(self.lms.result(sid)["score"], 0.75)
        user2, sid2 = self.learner(url)
        self.cli("award", "grant", "--badge", silent, "--consumer", self.key, "--user", user2)
        self.wait_award(user2)
        time.sleep(1)
        self.assertEqual(self.replaces(sid2), [])
        self.assertIsNone(self.user_awards(user2)[0]["passback"])
        # Open edX supports replaceResult only: its refusal of a read is recorded, not fatal
        err = self.wait_for("a failed read",
                            lambda: self.binding_of(user, sid)["last_read_error"])
        self.assertIn("failure", err)

    def test_lms_errors_are_retried_until_it_answers(self):
        ctx = self.quiet_course()
        slug = self.badge("Persistent", "manual", ctx)
        for fault in ({"mode": "status", "status": 503, "retry_after": 1, "count": 2},
                      {"mode": "garbage", "count": 1},
                      {"mode": "drop", "count": 1},
                      {"mode": "slow", "delay": 4, "count": 1}):
            user, sid = self.learner(self.lms.moodle_url(), ctx=ctx)
            mode = fault.pop("mode")
            self.lms.set_fault(mode, **fault)
            self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user)
            award = self.passback(user, "done")
            # a dropped keep-alive connection is retried by libcurl itself, at once
            if mode != "drop":
                self.assertGreaterEqual(award["passback"]["attempts"], 2, (mode, award))
            # (a slow answer is recorded once the fake finished it, after the tool gave up)
            self.lms.wait_for(lambda r, s=sid, m=mode: r.sourcedid == s and r.fault == m,
                              timeout=10)
            self.assertEqual(self.lms.result(sid)["score"], 1.0)
            self.lms.set_fault("ok")

    def test_lms_down_then_back(self):
        ctx = self.quiet_course()
        slug = self.badge("Patient", "manual", ctx)
        user, sid = self.learner(self.lms.moodle_url(), ctx=ctx)
        self.lms.set_fault("refuse")
        self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user)
        self.wait_for("a refused attempt", lambda: "could not reach" in (
            (self.user_awards(user)[0]["passback"] or {}).get("answer") or ""))
        self.lms.set_fault("ok")
        self.passback(user, "done")
        self.assertEqual(self.lms.result(sid)["score"], 1.0)

    def test_refusal_is_final_until_retried(self):
        ctx = self.quiet_course()
        slug = self.badge("Refused", "manual", ctx)
        user, sid = self.learner(self.lms.canvas_url(), ctx=ctx)
        self.lms.set_fault("failure")
        self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user)
        award = self.passback(user, "failed")
        self.assertIn("failure", award["passback"]["answer"])
        self.lms.set_fault("ok")
        out = self.cli("award", "retry", str(award["id"])).stdout
        self.assertIn("passback(s) queued again", out)
        self.passback(user, "done")
        self.assertEqual(self.lms.result(sid)["score"], 1.0)
        self.assertEqual(self.user_awards(user)[0]["state"], "issued")

    def test_addresses_and_hosts_the_tool_may_not_call(self):
        slug = self.badge("Guarded", "manual", self.ctx)
        user, _ = self.learner("http://169.254.169.254/latest/meta-data/")
        self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user)
        self.assertIn("link-local", self.passback(user, "failed")["passback"]["answer"])
        # a consumer limited to its own hosts: the fake's 127.0.0.1 is not one of them
        self.cli("consumer", "outcome-hosts", self.key, "lms.example.edu,.example.org")
        try:
            user, sid = self.learner(self.lms.moodle_url())
            self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user)
            self.assertIn("not among", self.passback(user, "failed")["passback"]["answer"])
            self.assertEqual(self.replaces(sid), [])
        finally:
            self.cli("consumer", "outcome-hosts", self.key)

    def test_periodic_reads_award_and_withdraw(self):
        slug = self.badge("Strict", "score:0.8:final", self.ctx, "--revoke-on-withdrawn", "yes")
        user, sid = self.learner(self.lms.canvas_url())
        time.sleep(0.5)
        self.assertEqual([a for a in self.user_awards(user) if a["badge"] == slug], [])
        # the instructor grades in the LMS: the next periodic read brings it
        self.lms.add_result(sid, score=0.85)
        self.wait_for("the badge", lambda: [a for a in self.user_awards(user)
                                            if a["badge"] == slug and a["state"] == "issued"])
        # and takes the grade back: the badge is revoked with the reason
        self.lms.add_result(sid, score=None)
        got = self.wait_for("the revocation", lambda: [
            a for a in self.user_awards(user) if a["badge"] == slug and a["state"] == "revoked"])
        self.assertIn("withdrawn", got[0]["revoke_reason"])


if __name__ == "__main__":
    lt.main()
