#!/usr/bin/python3
"""Self-test of fakelms, the contract fake of an LMS's Basic Outcomes service.

Requests are signed here the way a tool must sign them (Authorization header,
oauth_body_hash over the exact body bytes) with oauthlib's RFC 5849
primitives, an implementation independent of the fake's own verifier; every
test asserts on what the fake answers over HTTP and on what it recorded.

Run with Debian's /usr/bin/python3 (it has python3-oauthlib).
"""
import base64
import hashlib
import http.client
import json
import os
import secrets
import socket
import sys
import threading
import time
import unittest
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

from oauthlib.oauth1.rfc5849 import signature as oauth_sig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelms  # noqa: E402
from fakelms import CANVAS, EDX, FLAVOURS, MOODLE, FakeLMS, pox_request  # noqa: E402

KEY, SECRET = "tool-key", "tool-secret"
KEY2, SECRET2 = "other-key", "other-secret"
XML = "application/xml"


def oauth_header(url, body, key=KEY, secret=SECRET, method="HMAC-SHA1", nonce=None,
                 timestamp=None, version="1.0", body_hash=None, drop=(), realm=""):
    """The Authorization header a tool sends for `body` (bytes) POSTed to `url`.

    oauth_body_hash is base64(SHA-1(body)) (SHA-256 for HMAC-SHA256) unless
    `body_hash` is given; `drop` leaves oauth_* parameters out before signing.
    The signature covers the URL's query and the oauth_* parameters, not the
    XML body (RFC 5849 with the OAuth Request Body Hash extension).
    """
    digest = hashlib.sha256 if method == "HMAC-SHA256" else hashlib.sha1
    oauth = [
        ("oauth_consumer_key", key),
        ("oauth_signature_method", method),
        ("oauth_timestamp", str(int(time.time()) if timestamp is None else timestamp)),
        ("oauth_nonce", nonce or secrets.token_hex(16)),
        ("oauth_version", version),
        ("oauth_body_hash", body_hash if body_hash is not None
         else base64.b64encode(digest(body).digest()).decode()),
    ]
    oauth = [(k, v) for k, v in oauth if k not in drop and v is not None]
    params = oauth_sig.collect_parameters(uri_query=urlsplit(url).query,
                                          exclude_oauth_signature=True, with_realm=False)
    base = oauth_sig.signature_base_string("POST", oauth_sig.base_string_uri(url),
                                           oauth_sig.normalize_parameters(params + oauth))
    client = SimpleNamespace(client_secret=secret, resource_owner_secret="")
    if method == "HMAC-SHA256":
        sig = oauth_sig.sign_hmac_sha256_with_client(base, client)
    else:
        sig = oauth_sig.sign_hmac_sha1_with_client(base, client)
    pairs = oauth + [("oauth_signature", sig)]
    return "OAuth realm=\"%s\", " % realm + ", ".join(
        '%s="%s"' % (k, quote(v, safe="")) for k, v in pairs)


def post(url, body, headers, method="POST", timeout=5.0):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body,
                     headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class FakeCase(unittest.TestCase):
    strict = True
    options = {}

    def setUp(self):
        self.lms = FakeLMS({KEY: SECRET, KEY2: SECRET2}, strict=self.strict, **self.options)
        self.lms.start()
        self.addCleanup(self.lms.stop)
        self.sid = {
            CANVAS: fakelms.canvas_sourcedid(),
            MOODLE: fakelms.moodle_sourcedid(instanceid=2, userid=3, typeid=1, launchid=123),
            EDX: fakelms.edx_sourcedid(),
        }
        for sid in self.sid.values():
            self.lms.add_result(sid)

    def send(self, flavour, operation="replaceResult", score=None, body=None, url=None,
             content_type=XML, sign_body=None, auth=None, verb="POST", timeout=5.0, **kw):
        """Signs and sends a request; `sign_body` (if given) is what gets hashed
        and signed while `body` goes on the wire. Returns (status, headers,
        body, parsed POX or None)."""
        url = url or self.lms.url(flavour)
        if body is None:
            body = pox_request(operation, self.sid[flavour], score=score)
        headers = {"Content-Type": content_type}
        if auth is not False:
            headers["Authorization"] = auth or oauth_header(
                url, body if sign_body is None else sign_body, **kw)
        status, hdrs, rbody = post(url, body, headers, method=verb, timeout=timeout)
        return status, hdrs, rbody, fakelms.parse_response(rbody)

    def score(self, flavour):
        return self.lms.result(self.sid[flavour])["score"]

    def last(self):
        recs = self.lms.records
        self.assertTrue(recs, "the fake recorded nothing")
        return recs[-1]

    def assertRefused(self, flavour, status, code, sent, *phrases):
        """The answer `sent` (from send()) is a refusal in `flavour`'s voice."""
        st, hdrs, body, pox = sent
        self.assertEqual(st, status, body)
        if code is None:
            return
        self.assertIsNotNone(pox, body)
        self.assertEqual(pox["code_major"], code, body)
        for p in phrases:
            self.assertIn(p, pox["description"])

    def assertCanvas401(self, sent, message):
        st, hdrs, body, _ = sent
        self.assertEqual(st, 401, body)
        self.assertTrue(hdrs["content-type"].startswith("application/json"))
        self.assertEqual(json.loads(body)["errors"][0]["message"], message)


class Accepts(FakeCase):
    """Correct requests are accepted, with each product's answer shape."""

    def test_canvas_replace_read_delete(self):
        st, hdrs, body, pox = self.send(CANVAS, "readResult")
        self.assertEqual((st, pox["code_major"], pox["score_text"]), (200, "success", ""))
        body = pox_request("replaceResult", self.sid[CANVAS], score="0.75", message_id="m-1")
        st, hdrs, rbody, pox = self.send(CANVAS, body=body)
        self.assertEqual(st, 200, rbody)
        self.assertTrue(hdrs["content-type"].startswith("application/xml"))
        self.assertEqual(pox["namespace"], fakelms.NS)
        self.assertEqual(pox["code_major"], "success")
        self.assertEqual(pox["severity"], "status")
        self.assertEqual(pox["message_ref"], "m-1")
        self.assertEqual(pox["operation_ref"], "replaceResult")
        self.assertEqual(pox["body"], ["replaceResultResponse"])
        self.assertEqual(self.score(CANVAS), 0.75)
        rec = self.last()
        self.assertEqual((rec.flavour, rec.operation, rec.message_id, rec.sourcedid),
                         (CANVAS, "replaceResultRequest", "m-1", self.sid[CANVAS]))
        self.assertEqual((rec.signature_ok, rec.body_hash_ok, rec.timestamp_ok, rec.nonce_fresh),
                         (True, True, True, True))
        self.assertEqual((rec.status, rec.code_major, rec.refusal, rec.score_text),
                         (200, "success", None, "0.75"))
        self.assertEqual(rec.params, {"tool_id": "1"})
        self.assertEqual(rec.consumer_key, KEY)
        self.assertEqual(rec.body, body)
        st, _, _, pox = self.send(CANVAS, "readResult")
        self.assertEqual((pox["code_major"], pox["score_text"], pox["language"]),
                         ("success", "0.75", "en"))
        self.assertEqual(pox["operation_ref"], "readResult")
        st, _, _, pox = self.send(CANVAS, "replaceResult", score="1")
        st, _, _, pox = self.send(CANVAS, "readResult")
        self.assertEqual(pox["score_text"], "1.0")          # Ruby's Float#to_s
        st, _, _, pox = self.send(CANVAS, "deleteResult")
        self.assertEqual((st, pox["code_major"], pox["body"]),
                         (200, "success", ["deleteResultResponse"]))
        self.assertIsNone(self.score(CANVAS))
        self.assertEqual(self.send(CANVAS, "readResult")[3]["score_text"], "")

    def test_moodle_replace_read_delete(self):
        st, hdrs, body, pox = self.send(MOODLE, "readResult")
        # a read with no grade is a success with an empty textString
        self.assertEqual((st, pox["code_major"], pox["description"], pox["score_text"]),
                         (200, "success", "Result read", ""))
        body = pox_request("replaceResult", self.sid[MOODLE], score="0.6", message_id="m-2")
        st, hdrs, rbody, pox = self.send(MOODLE, body=body, content_type="text/xml; charset=utf-8")
        self.assertEqual(st, 200, rbody)
        self.assertTrue(hdrs["content-type"].startswith("text/html"))   # PHP's default
        self.assertEqual(pox["code_major"], "success")
        self.assertEqual(pox["description"], "Grade replace response")
        self.assertEqual(pox["message_ref"], "m-2")
        self.assertEqual(pox["operation_ref"], "replaceResultRequest")
        self.assertTrue(pox["message_id"].isdigit())
        self.assertEqual(self.score(MOODLE), 0.6)
        st, _, _, pox = self.send(MOODLE, "readResult")
        self.assertEqual((pox["code_major"], pox["score_text"]), ("success", "0.6"))
        self.send(MOODLE, score="1.0")
        self.assertEqual(self.send(MOODLE, "readResult")[3]["score_text"], "1")   # PHP
        self.send(MOODLE, score="0.123456789")
        self.assertEqual(self.send(MOODLE, "readResult")[3]["score_text"], "0.1234568")
        st, _, _, pox = self.send(MOODLE, "deleteResult")
        self.assertEqual((pox["code_major"], pox["description"]),
                         ("success", "Grade delete request"))
        self.assertIsNone(self.score(MOODLE))

    def test_edx_replace_and_its_real_limits(self):
        body = pox_request("replaceResult", self.sid[EDX], score="0.9", message_id="m-3")
        st, hdrs, rbody, pox = self.send(EDX, body=body)
        self.assertEqual(st, 200, rbody)
        self.assertEqual(pox["code_major"], "success")
        self.assertEqual(pox["description"], "Score for %s is now 0.9" % self.sid[EDX])
        self.assertEqual(pox["message_id"], "m-3")          # not in messageRefIdentifier
        self.assertEqual(pox["message_ref"].strip(), "")
        self.assertIsNone(pox["operation_ref"])
        self.assertEqual(self.score(EDX), 0.9)
        self.assertEqual(self.last().params["course_id"], "course-v1:Org+Course+Run")
        # only replaceResult exists: read and delete carry no textString and fail parsing
        for op in ("readResult", "deleteResult"):
            st, _, _, pox = self.send(EDX, op)
            self.assertEqual((st, pox["code_major"], pox["message_id"]),
                             (200, "failure", "unknown"))
            self.assertIn("Failed to parse score textString", pox["description"])
        self.assertEqual(self.score(EDX), 0.9)

    def test_edx_verifies_the_decoded_url(self):
        plain = self.lms.edx_url()
        encoded = plain.replace("course-v1:Org+Course+Run/", "course-v1%3AOrg%2BCourse%2BRun/")
        body = pox_request("replaceResult", self.sid[EDX], score="0.5")
        st, _, rbody, pox = self.send(EDX, url=encoded, body=body,
                                      auth=oauth_header(plain, body))
        self.assertEqual(pox["code_major"], "success", rbody)
        st, _, rbody, pox = self.send(EDX, url=encoded, body=body,
                                      auth=oauth_header(encoded, body))
        self.assertIn("OAuth signature verification has failed.", pox["description"])

    def test_hmac_sha256(self):
        st, _, _, pox = self.send(CANVAS, score="0.5", method="HMAC-SHA256")
        self.assertEqual((st, pox["code_major"]), (200, "success"))
        self.assertEqual(self.last().signature_method, "HMAC-SHA256")
        # Moodle adds only OAuthSignatureMethod_HMAC_SHA1; Open edX calls verify_hmac_sha1
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="0.5",
                                                              method="HMAC-SHA256"),
                           "Message signature not valid")
        self.assertEqual(self.last().refusal, "signature_method")
        self.assertRefused(EDX, 200, "failure", self.send(EDX, score="0.5", method="HMAC-SHA256"),
                           "OAuth verification error")
        self.assertIsNone(self.score(MOODLE))

    def test_query_parameters_are_signed(self):
        url = self.lms.canvas_url(7) + "?a=b%20c&x=%2B1"
        st, _, body, pox = self.send(CANVAS, url=url, score="0.5")
        self.assertEqual((st, pox["code_major"]), (200, "success"), body)
        self.assertEqual(self.last().params, {"tool_id": "7"})
        # the same request signed without its query is refused
        body = pox_request("replaceResult", self.sid[CANVAS], score="0.5")
        auth = oauth_header(self.lms.canvas_url(7), body)
        self.assertCanvas401(self.send(CANVAS, url=url, body=body, auth=auth),
                             "Invalid authorization header")

    def test_result_data_canvas_only(self):
        sid = self.sid[CANVAS]
        body = pox_request("replaceResult", sid, score="0.5", result_data=[("text", "<b>hi</b>")])
        self.assertEqual(self.send(CANVAS, body=body)[3]["code_major"], "success")
        self.assertEqual(self.lms.result(sid)["text"], "<b>hi</b>")
        self.assertEqual(self.last().result_data_text, "<b>hi</b>")
        body = pox_request("replaceResult", sid, result_data=[("url", "https://x.example/1")])
        self.assertEqual(self.send(CANVAS, body=body)[3]["code_major"], "success")
        self.assertEqual(self.lms.result(sid)["url"], "https://x.example/1")
        self.assertEqual(self.lms.result(sid)["score"], 0.5)     # no score: left alone
        both = pox_request("replaceResult", sid, score="0.5",
                           result_data=[("text", "t"), ("url", "https://x.example/2")])
        self.assertRefused(CANVAS, 422, "failure", self.send(CANVAS, body=both), "exactly one")
        self.assertTrue(self.last().strict_only)
        # Moodle and Open edX do not read resultData: the score is taken, the rest ignored
        for fl in (MOODLE, EDX):
            body = pox_request("replaceResult", self.sid[fl], score="0.4",
                               result_data=[("text", "ignored")])
            self.assertEqual(self.send(fl, body=body)[3]["code_major"], "success")
            self.assertEqual(self.lms.result(self.sid[fl])["text"], None)
            self.assertEqual(self.last().result_data_text, "ignored")

    def test_canvas_total_score(self):
        body = pox_request("replaceResult", self.sid[CANVAS], total_score="17")
        self.assertEqual(self.send(CANVAS, body=body)[3]["code_major"], "success")
        self.assertEqual(self.lms.result(self.sid[CANVAS])["total_score"], 17.0)
        body = pox_request("replaceResult", self.sid[CANVAS], total_score="lots")
        self.assertRefused(CANVAS, 422, "failure", self.send(CANVAS, body=body),
                           "Unable to parse resultTotalScore: lots")

    def test_sourcedid_bound_to_a_consumer(self):
        sid = fakelms.canvas_sourcedid(legacy=True)
        self.lms.add_result(sid, consumer_key=KEY2)
        body = pox_request("replaceResult", sid, score="0.5")
        self.assertRefused(CANVAS, 422, "failure", self.send(CANVAS, body=body), "Tool is invalid")
        st, _, _, pox = self.send(CANVAS, body=body, key=KEY2, secret=SECRET2)
        self.assertEqual(pox["code_major"], "success")


class Refuses(FakeCase):
    """Each check answers as the product does, and changes nothing."""

    def tearDown(self):
        for fl in FLAVOURS:
            self.assertIsNone(self.score(fl), "a refused request changed the gradebook")

    def test_wrong_secret(self):
        self.assertCanvas401(self.send(CANVAS, score="0.5", secret="nope"),
                             "Invalid authorization header")
        self.assertFalse(self.last().signature_ok)
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="0.5", secret="nope"),
                           "Message signature not valid")
        st, _, _, pox = self.send(MOODLE, score="0.5", secret="nope")
        self.assertEqual(pox["operation_ref"], "unknownRequest")   # not parsed yet
        self.assertEqual(pox["message_ref"], "")
        self.assertRefused(EDX, 200, "failure", self.send(EDX, score="0.5", secret="nope"),
                           "OAuth signature verification has failed.")
        rec = self.last()
        self.assertEqual((rec.signature_ok, rec.body_hash_ok, rec.refusal, rec.strict_only),
                         (False, True, "signature", False))
        self.assertIn("POST&http%3A%2F%2F127.0.0.1%3A", rec.base_string)

    def test_unknown_consumer_key(self):
        self.assertCanvas401(self.send(CANVAS, score="0.5", key="who"),
                             "Invalid authorization header")
        self.assertEqual(self.last().refusal, "consumer_key")
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="0.5", key="who"),
                           "Message signature not valid")

    def test_tampered_body(self):
        for fl in FLAVOURS:
            signed = pox_request("replaceResult", self.sid[fl], score="0.1", message_id="x")
            sent = pox_request("replaceResult", self.sid[fl], score="0.9", message_id="x")
            out = self.send(fl, body=sent, sign_body=signed)
            rec = self.last()
            self.assertEqual((rec.signature_ok, rec.body_hash_ok, rec.refusal),
                             (True, False, "body_hash"), fl)
            if fl == CANVAS:
                self.assertCanvas401(out, "Invalid authorization header")
                self.assertTrue(rec.strict_only)      # Canvas itself never compares
            elif fl == MOODLE:
                self.assertRefused(fl, 200, "failure", out, "Message signature not valid")
            else:
                self.assertRefused(fl, 200, "failure", out,
                                   "OAuth body hash verification has failed.")

    def test_missing_body_hash(self):
        self.assertCanvas401(self.send(CANVAS, score="0.5", drop=("oauth_body_hash",)),
                             "Invalid authorization header")
        self.assertEqual((self.last().refusal, self.last().body_hash_ok),
                         ("body_hash_missing", None))
        self.assertRefused(MOODLE, 200, "failure",
                           self.send(MOODLE, score="0.5", drop=("oauth_body_hash",)),
                           "Message signature not valid")
        self.assertFalse(self.last().strict_only)
        self.assertRefused(EDX, 200, "failure",
                           self.send(EDX, score="0.5", drop=("oauth_body_hash",)),
                           "OAuth body hash verification has failed.")

    def test_body_hash_of_sha256_with_hmac_sha1(self):
        body = pox_request("replaceResult", self.sid[MOODLE], score="0.5")
        bh = base64.b64encode(hashlib.sha256(body).digest()).decode()
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, body=body, body_hash=bh),
                           "Message signature not valid")

    def test_replayed_nonce(self):
        for fl in FLAVOURS:
            nonce = "n-" + fl
            st, _, _, pox = self.send(fl, "deleteResult" if fl != EDX else "replaceResult",
                                      score=None if fl != EDX else "0", nonce=nonce)
            self.assertEqual(pox["code_major"] if pox else st, "success", fl)
            self.lms.add_result(self.sid[fl])
            out = self.send(fl, score="0.5", nonce=nonce)
            rec = self.last()
            self.assertEqual((rec.nonce_fresh, rec.refusal), (False, "nonce"), fl)
            if fl == CANVAS:
                self.assertCanvas401(out, "Duplicate nonce detected")
                self.assertFalse(rec.strict_only)
            else:
                self.assertEqual(out[3]["code_major"], "failure")
                self.assertTrue(rec.strict_only)      # Moodle and Open edX keep no nonces
        # a refused request does not use up its nonce
        self.send(CANVAS, score="0.5", nonce="n-x", secret="nope")
        self.lms.add_result(self.sid[CANVAS], score=None)
        self.assertEqual(self.send(CANVAS, "readResult", nonce="n-x")[3]["code_major"], "success")

    def test_stale_and_future_timestamps(self):
        old, new = int(time.time()) - 600, int(time.time()) + 600
        self.assertCanvas401(self.send(CANVAS, score="0.5", timestamp=old),
                             "Timestamp too old or too far in the future, request has expired")
        self.assertTrue(self.last().strict_only)      # Canvas allows 90 minutes
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="0.5", timestamp=old),
                           "Message signature not valid")
        self.assertFalse(self.last().strict_only)     # Moodle: 300 s, only the past
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="0.5", timestamp=new))
        self.assertTrue(self.last().strict_only)
        self.assertRefused(EDX, 200, "failure", self.send(EDX, score="0.5", timestamp=old))
        self.assertEqual((self.last().refusal, self.last().timestamp_ok), ("timestamp", False))
        self.assertCanvas401(self.send(CANVAS, score="0.5", timestamp="soon"),
                             "Timestamp too old or too far in the future, request has expired")

    def test_oauth_version(self):
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="0.5", version="2.0"),
                           "Message signature not valid")
        self.assertFalse(self.last().strict_only)
        self.assertCanvas401(self.send(CANVAS, score="0.5", version=None),
                             "Invalid authorization header")
        self.assertEqual((self.last().refusal, self.last().strict_only), ("oauth_version", True))

    def test_missing_authorization(self):
        self.assertCanvas401(self.send(CANVAS, score="0.5", auth=False),
                             "Invalid authorization header")
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="0.5", auth=False),
                           "Consumer key is missing.")
        self.assertRefused(EDX, 500, None, self.send(EDX, score="0.5", auth=False))
        self.assertEqual(self.last().refusal, "missing_header")

    def test_doctype(self):
        for fl in FLAVOURS:
            body = pox_request("replaceResult", self.sid[fl], score="0.5").replace(
                b"?>\n", b'?>\n<!DOCTYPE imsx_POXEnvelopeRequest SYSTEM "http://x.example/d">\n', 1)
            st, _, rbody, pox = self.send(fl, body=body)
            self.assertEqual(st, 422 if fl == CANVAS else 200, rbody)
            self.assertEqual(pox["code_major"], "failure", fl)
            self.assertEqual((self.last().refusal, self.last().doctype), ("doctype", True))

    def test_not_xml_and_wrong_namespace(self):
        st, _, _, pox = self.send(MOODLE, body=b"<imsx_POXEnvelopeRequest>")
        self.assertEqual((pox["code_major"], pox["description"]),
                         ("failure", "Invalid XML content"))
        st, _, _, pox = self.send(CANVAS, body=b"not xml at all")
        self.assertEqual((st, pox["code_major"]), (422, "unsupported"))
        st, _, _, pox = self.send(EDX, body=b"not xml at all")
        self.assertIn("Request body XML parsing error", pox["description"])
        body = pox_request("replaceResult", self.sid[EDX], score="0.5", namespace=None)
        st, _, _, pox = self.send(EDX, body=body)
        self.assertIn("Failed to parse imsx_messageIdentifier", pox["description"])
        self.assertFalse(self.last().strict_only)
        body = pox_request("replaceResult", self.sid[CANVAS], score="0.5", namespace=None)
        self.assertRefused(CANVAS, 422, "failure", self.send(CANVAS, body=body), "namespace")
        self.assertTrue(self.last().strict_only)

    def test_version_and_message_id(self):
        body = pox_request("replaceResult", self.sid[MOODLE], score="0.5", version="V2.0")
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, body=body), "V1.0")
        body = pox_request("replaceResult", self.sid[CANVAS], score="0.5", message_id="")
        self.assertRefused(CANVAS, 422, "failure", self.send(CANVAS, body=body),
                           "imsx_messageIdentifier")

    def test_unknown_sourcedid(self):
        st, hdrs, body, pox = self.send(CANVAS, body=pox_request("replaceResult", "nope", "0.5"))
        self.assertEqual((st, pox["code_major"], pox["canvas_error_code"]),
                         (422, "failure", "sourcedid_invalid"))
        self.assertTrue(pox["description"].startswith("Invalid sourcedid\n[EID_"))
        self.assertRefused(MOODLE, 200, "failure",
                           self.send(MOODLE, body=pox_request("readResult", "{}")),
                           "SourcedId hash not valid")
        self.assertRefused(EDX, 200, "failure",
                           self.send(EDX, body=pox_request("replaceResult", "a:b:c", "0.5")),
                           "User not found.")
        self.assertEqual(self.last().refusal, "sourcedid")

    def test_score_out_of_range(self):
        self.assertRefused(CANVAS, 422, "failure", self.send(CANVAS, score="1.5"),
                           "Score is not between 0 and 1")
        self.assertEqual(self.last().refusal, "score_range")
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="1.5"),
                           "Score not between 0.0 and 1.0")
        self.assertRefused(EDX, 200, "failure", self.send(EDX, score="1.5"),
                           "score value outside the permitted range of 0.0-1.0")
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="-0.1"))

    def test_score_not_a_number(self):
        self.assertRefused(CANVAS, 422, "failure", self.send(CANVAS, score="abc"),
                           "Unable to parse resultScore: abc")
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="abc"),
                           "Score must be numeric")
        self.assertRefused(EDX, 500, None, self.send(EDX, score="abc"))   # float() escapes
        self.assertEqual(self.last().refusal, "score_format")
        # what the products parse but the contract does not allow
        self.assertRefused(MOODLE, 200, "failure", self.send(MOODLE, score="5e-1"), "decimal")
        self.assertTrue(self.last().strict_only)
        body = pox_request("replaceResult", self.sid[CANVAS], score="0.5", language="fr")
        self.assertRefused(CANVAS, 422, "failure", self.send(CANVAS, body=body), "language")
        self.assertRefused(CANVAS, 422, "failure",
                           self.send(CANVAS, body=pox_request("replaceResult", self.sid[CANVAS])),
                           "No score given")

    def test_unknown_operation(self):
        for fl in FLAVOURS:
            # with a textString somewhere, or Open edX fails parsing before it looks
            body = pox_request("frobnicateResult", self.sid[fl], score="0.5", message_id="u-1")
            st, _, rbody, pox = self.send(fl, body=body)
            self.assertEqual(st, 422 if fl == CANVAS else 200, rbody)
            self.assertEqual(pox["code_major"], "unsupported", fl)
            self.assertEqual(self.last().refusal, "unsupported")
            if fl == MOODLE:
                self.assertEqual((pox["operation_ref"], pox["message_ref"], pox["body"]),
                                 ("frobnicateResultRequest", "u-1", ["frobnicateResultRequest"]))

    def test_content_type(self):
        st, _, body, _ = self.send(CANVAS, score="0.5", content_type="text/xml")
        self.assertEqual(st, 415)
        self.assertEqual(json.loads(body)["errors"][0]["message"],
                         "Content-Type must be 'application/xml'")
        self.assertEqual(self.send(CANVAS, score="0.5",
                                   content_type="application/xml; charset=utf-8")[0], 415)
        self.assertRefused(MOODLE, 200, "failure",
                           self.send(MOODLE, score="0.5",
                                     content_type="application/x-www-form-urlencoded"),
                           "Message signature not valid")
        self.assertRefused(EDX, 200, "failure", self.send(EDX, score="0.5",
                                                          content_type="text/plain"),
                           "Content-Type")
        self.assertTrue(self.last().strict_only)

    def test_method_and_path(self):
        st, _, _, _ = self.send(CANVAS, "readResult", verb="PUT")
        self.assertEqual(st, 404)
        self.assertEqual(self.last().refusal, "method")
        st, _, body = post(self.lms.base_url + "/mod/lti/other.php", b"x", {})
        self.assertEqual(st, 404)
        self.assertEqual((self.last().flavour, self.last().refusal), (None, "path"))


class NotStrict(FakeCase):
    """strict=False: the products' own leniency, which a tool must not rely on."""
    strict = False

    def test_canvas_never_compares_the_body_hash(self):
        signed = pox_request("replaceResult", self.sid[CANVAS], score="0.1", message_id="x")
        sent = pox_request("replaceResult", self.sid[CANVAS], score="0.9", message_id="x")
        st, _, _, pox = self.send(CANVAS, body=sent, sign_body=signed)
        self.assertEqual((st, pox["code_major"]), (200, "success"))
        self.assertEqual((self.last().body_hash_ok, self.score(CANVAS)), (False, 0.9))
        st, _, _, pox = self.send(CANVAS, score="0.2", drop=("oauth_body_hash",))
        self.assertEqual(pox["code_major"], "success")

    def test_moodle_and_edx_keep_no_nonces(self):
        for fl in (MOODLE, EDX):
            for _ in range(2):
                self.assertEqual(self.send(fl, score="0.3", nonce="same")[3]["code_major"],
                                 "success", fl)
        self.assertCanvas401(self.send(CANVAS, score="0.3", nonce="c1") and
                             self.send(CANVAS, score="0.3", nonce="c1"),
                             "Duplicate nonce detected")

    def test_windows(self):
        old = int(time.time()) - 3600
        self.assertEqual(self.send(CANVAS, score="0.3", timestamp=old)[3]["code_major"],
                         "success")
        self.assertEqual(self.send(EDX, score="0.3", timestamp=1)[3]["code_major"], "success")
        self.assertEqual(self.send(MOODLE, score="0.3", timestamp=old)[3]["code_major"],
                         "failure")
        future = int(time.time()) + 3600
        self.assertEqual(self.send(MOODLE, score="0.3", timestamp=future)[3]["code_major"],
                         "success")

    def test_canvas_takes_text_over_url_and_doctype_passes(self):
        body = pox_request("replaceResult", self.sid[CANVAS], score="5e-1",
                           result_data=[("text", "t"), ("url", "https://x.example/")])
        self.assertEqual(self.send(CANVAS, body=body)[3]["code_major"], "success")
        self.assertEqual(self.lms.result(self.sid[CANVAS])["text"], "t")
        self.assertIsNone(self.lms.result(self.sid[CANVAS])["url"])
        self.assertEqual(self.score(CANVAS), 0.5)


class Options(FakeCase):
    options = {"accept_sha256": True, "canvas_exact_content_type": False,
               "canvas_tools": {"5": KEY2}}

    def test_sha256_everywhere(self):
        for fl in (MOODLE, EDX):
            self.assertEqual(self.send(fl, score="0.5", method="HMAC-SHA256")[3]["code_major"],
                             "success", fl)

    def test_canvas_charset_and_tools(self):
        url = self.lms.canvas_url(5)
        st, _, body, pox = self.send(CANVAS, url=url, score="0.5", key=KEY2, secret=SECRET2,
                                     content_type="application/xml; charset=UTF-8")
        self.assertEqual((st, pox["code_major"]), (200, "success"), body)
        # Canvas signs with the tool's secret whatever key the request names
        self.assertCanvas401(self.send(CANVAS, url=url, score="0.5"),
                             "Invalid authorization header")
        self.assertEqual(self.send(CANVAS, score="0.5")[0], 404)     # tool 1 does not exist


class Issued(FakeCase):
    """Sourcedids the fake issues are checked as Moodle and Canvas check theirs: any one
    issued for a (link, user) writes that pair's one cell; forged ones are refused."""

    def op(self, flavour, operation, sid, score=None, **kw):
        """(status, code_major, description or JSON message, canvas error code) of a request."""
        st, _, body, pox = self.send(flavour, body=pox_request(operation, sid, score=score), **kw)
        if pox is None:
            return st, None, json.loads(body)["errors"][0]["message"], None
        return st, pox["code_major"], pox["description"].split("\n[EID_")[0], \
            pox["canvas_error_code"]

    def test_moodle_any_issued_sourcedid_and_forgeries(self):
        sids = [self.lms.issue_sourcedid(MOODLE, 7, 42) for _ in range(3)]
        self.assertEqual(len(set(sids)), 3)
        data = [json.loads(s)["data"] for s in sids]
        self.assertEqual({(d["instanceid"], d["userid"], d["typeid"]) for d in data},
                         {("7", "42", "1")})
        self.assertEqual(len({d["launchid"] for d in data}), 3)
        self.assertEqual(self.lms.issued_for(MOODLE, 7, 42), sids)
        self.assertEqual(self.lms.cell(MOODLE, 7, 42)["score"], None)
        # the oldest writes, the newest reads the same cell
        self.assertEqual(self.op(MOODLE, "replaceResult", sids[0], "0.4")[:2], (200, "success"))
        self.assertEqual(self.last().cell, (MOODLE, "7", "42"))
        st, _, _, pox = self.send(MOODLE, body=pox_request("readResult", sids[2]))
        self.assertEqual(pox["score_text"], "0.4")
        self.assertEqual(self.lms.result(sids[1])["score"], 0.4)
        other = self.lms.issue_sourcedid(MOODLE, 7, 43)
        self.assertEqual(self.op(MOODLE, "replaceResult", other, "0.9")[1], "success")
        self.assertEqual((self.lms.cell(MOODLE, 7, 42)["score"],
                          self.lms.cell(MOODLE, 7, 43)["score"]), (0.4, 0.9))
        # forgeries: another learner or launch under the hash, another salt, another instance
        doc = json.loads(sids[0])
        forged = []
        for field, value in (("userid", "43"), ("launchid", 1), ("typeid", "2")):
            d = dict(doc["data"], **{field: value})
            forged.append(json.dumps({"data": d, "hash": doc["hash"]}))
        forged += [fakelms.moodle_sourcedid(7, 42, 1),                 # the helper's salt
                   fakelms.moodle_sourcedid(8, 42, 1),                 # no such instance
                   json.dumps({"data": dict(doc["data"], launchid=0),
                               "hash": doc["hash"]}),
                   "not json", ""]
        for sid in forged:
            self.assertEqual(self.op(MOODLE, "replaceResult", sid, "1.0"),
                             (200, "failure", "SourcedId hash not valid", None), sid)
            self.assertEqual((self.last().refusal, self.last().cell), ("sourcedid", None))
            self.assertIsNone(self.lms.issued(sid))
        self.assertEqual(self.lms.cell(MOODLE, 7, 42)["score"], 0.4)

    def test_canvas_any_issued_sourcedid_while_enrolled(self):
        sids = [self.lms.issue_sourcedid(CANVAS, 3, 42, course=2) for _ in range(2)]
        sids.append(self.lms.issue_sourcedid(CANVAS, 3, 42, course=2, legacy=True))
        self.assertEqual(len(set(sids)), 3)
        self.assertGreater(len(sids[0]), 400)
        self.assertRegex(sids[2], r"^1-2-3-42-[0-9a-f]{40}$")
        for i, sid in enumerate(sids):
            self.assertEqual(self.op(CANVAS, "replaceResult", sid, "0.%d" % (i + 1))[:2],
                             (200, "success"), sid)
            self.assertEqual(self.last().cell, (CANVAS, "3", "42"))
            self.assertEqual(self.lms.cell(CANVAS, 3, 42)["score"], (i + 1) / 10)
        st, _, _, pox = self.send(CANVAS, body=pox_request("readResult", sids[0]))
        self.assertEqual(pox["score_text"], "0.3")
        # another tool's URL, and sourcedids no Canvas issued
        self.assertEqual(self.op(CANVAS, "replaceResult", sids[0], "1", url=self.lms.canvas_url(9)),
                         (422, "failure", "Tool is invalid", "tool_invalid"))
        token = base64.b64decode(sids[0]).split(b".")
        ct = base64.urlsafe_b64decode(token[3] + b"=" * (-len(token[3]) % 4))
        token[3] = base64.urlsafe_b64encode(bytes([ct[0] ^ 1]) + ct[1:]).rstrip(b"=")
        tampered = base64.b64encode(b".".join(token)).decode()
        # a token that does not decrypt: CanvasSecurity::InvalidToken, which nothing rescues
        self.assertEqual(self.op(CANVAS, "replaceResult", tampered, "1"),
                         (500, None, "An error occurred.", None))
        self.assertEqual(self.op(CANVAS, "replaceResult", fakelms.canvas_sourcedid(), "1")[:3],
                         (500, None, "An error occurred."))
        self.assertEqual(self.op(CANVAS, "replaceResult", "1-2-3-43" + sids[2][8:], "1"),
                         (422, "failure", "Invalid signature", "signature_invalid"))
        self.assertEqual(self.op(CANVAS, "replaceResult", "bogus", "1"),
                         (422, "failure", "Invalid sourcedid", "sourcedid_invalid"))
        self.assertEqual(self.lms.cell(CANVAS, 3, 42)["score"], 0.3)
        # a concluded enrollment reads but does not write; a deleted one does neither
        self.lms.conclude(2, 42)
        self.assertEqual(self.op(CANVAS, "replaceResult", sids[1], "1"),
                         (422, "failure", "Course not available for student",
                          "course_not_available"))
        self.assertEqual(self.op(CANVAS, "readResult", sids[1])[:2], (200, "success"))
        self.lms.unenroll(2, 42)
        for sid in sids:
            for operation in ("replaceResult", "readResult"):
                self.assertEqual(self.op(CANVAS, operation, sid, "1"),
                                 (422, "failure", "User is no longer in course",
                                  "user_not_in_course"))
                self.assertEqual(self.last().refusal, "sourcedid")
        self.assertEqual(self.lms.cell(CANVAS, 3, 42)["score"], 0.3)
        # enrolled again: the oldest sourcedid is as good as ever
        self.lms.enroll(2, 42)
        self.assertEqual(self.op(CANVAS, "replaceResult", sids[0], "1")[:2], (200, "success"))
        self.assertEqual(self.lms.cell(CANVAS, 3, 42)["score"], 1.0)

    def test_issue_arguments(self):
        with self.assertRaises(ValueError):
            self.lms.issue_sourcedid(EDX, "abc", "u1")
        with self.assertRaises(ValueError):
            self.lms.issue_sourcedid(CANVAS, 3, "not-a-number")
        self.lms.issue_sourcedid(CANVAS, 3, 42, course=2)
        with self.assertRaises(ValueError):
            self.lms.issue_sourcedid(CANVAS, 3, 42, course=5)   # an assignment has one course
        with self.assertRaises(KeyError):
            self.lms.set_cell(MOODLE, 1, 1, score=0.5)
        self.lms.set_cell(CANVAS, 3, 42, score=0.5)
        self.assertEqual(self.lms.cells[(CANVAS, "3", "42")]["score"], 0.5)


class Faults(FakeCase):
    """Injected faults, switched from the test thread."""

    def ok(self, flavour=MOODLE, **kw):
        st, _, body, pox = self.send(flavour, score="0.5", **kw)
        self.assertEqual((st, pox and pox["code_major"]), (200, "success"), body)

    def test_refuse_then_ok_on_the_same_port(self):
        port = self.lms.port
        self.lms.set_fault("refuse")
        self.assertFalse(self.lms.listening)
        with self.assertRaises(ConnectionRefusedError):
            self.send(MOODLE, score="0.5")
        self.lms.set_fault("ok")
        self.assertEqual(self.lms.port, port)
        self.ok()
        self.lms.set_fault("down", duration=1.0)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        deadline = time.monotonic() + 5
        while not self.lms.listening and time.monotonic() < deadline:
            time.sleep(0.02)
        self.ok()
        with self.assertRaises(ValueError):
            self.lms.set_fault("refuse", count=1)

    def test_drop(self):
        self.lms.set_fault("drop")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.send(MOODLE, score="0.5")
        rec = self.last()
        self.assertEqual((rec.fault, rec.status, rec.delivered), ("drop", None, False))
        self.assertEqual(rec.score_text, "0.5")
        self.assertIsNone(self.score(MOODLE))

    def test_lost_applies_the_grade_but_never_answers(self):
        self.lms.set_fault("lost", count=1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.send(CANVAS, score="0.7")
        rec = self.last()
        self.assertEqual((rec.status, rec.code_major, rec.delivered), (200, "success", False))
        self.assertEqual(self.score(CANVAS), 0.7)
        self.ok(CANVAS)

    def test_slow(self):
        self.lms.set_fault("slow", delay=1.0)
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.send(MOODLE, score="0.5", timeout=0.3)
        t0 = time.monotonic()
        self.ok(timeout=5)
        self.assertGreaterEqual(time.monotonic() - t0, 0.95)
        with self.assertRaises(ValueError):
            self.lms.set_fault("slow")

    def test_garbage(self):
        self.lms.set_fault("garbage")
        st, hdrs, body, pox = self.send(CANVAS, score="0.5")
        self.assertEqual(st, 200)
        self.assertIsNone(pox)
        self.assertIsNone(fakelms.parse_response(body))
        self.assertIsNone(self.score(CANVAS))
        self.assertEqual(self.last().fault, "garbage")
        self.assertTrue(self.last().signature_ok)      # still checked, for the record

    def test_status_with_retry_after(self):
        self.lms.set_fault("status", status=503, retry_after=7)
        st, hdrs, body, _ = self.send(EDX, score="0.5")
        self.assertEqual((st, hdrs.get("retry-after")), (503, "7"))
        self.assertIsNone(self.score(EDX))
        self.lms.set_fault("status", status=500)
        st, hdrs, _, _ = self.send(EDX, score="0.5")
        self.assertEqual(st, 500)
        self.assertNotIn("retry-after", hdrs)

    def test_failure_and_unsupported(self):
        self.lms.set_fault("failure")
        st, _, _, pox = self.send(CANVAS, score="0.5")
        self.assertEqual((st, pox["code_major"]), (422, "failure"))
        st, _, _, pox = self.send(MOODLE, score="0.5")
        self.assertEqual((st, pox["code_major"], pox["operation_ref"]),
                         (200, "failure", "replaceResultRequest"))
        self.lms.set_fault("unsupported")
        st, _, _, pox = self.send(EDX, score="0.5")
        self.assertEqual((st, pox["code_major"]), (200, "unsupported"))
        for fl in FLAVOURS:
            self.assertIsNone(self.score(fl))
        # a faulted request does not use up its nonce
        self.lms.set_fault("ok")
        self.ok(CANVAS, nonce="kept")
        with self.assertRaises(ValueError):
            self.lms.set_fault("sideways")

    def test_one_shot(self):
        self.lms.set_fault("status", status=500, count=2)
        self.assertEqual(self.send(MOODLE, score="0.5")[0], 500)
        self.assertEqual(self.lms.fault["count"], 1)
        self.assertEqual(self.send(MOODLE, score="0.5")[0], 500)
        self.assertEqual(self.lms.fault["mode"], "ok")
        self.ok()
        self.assertEqual([r.fault for r in self.lms.records], ["status", "status", None])

    def test_concurrent_requests_and_wait_for(self):
        sids = ["c-%d" % i for i in range(24)]
        for s in sids:
            self.lms.add_result(s)
        self.lms.set_fault("slow", delay=0.2)
        results = []

        def one(s):
            body = pox_request("replaceResult", s, score="0.25")
            results.append(self.send(CANVAS, body=body)[0])

        threads = [threading.Thread(target=one, args=(s,)) for s in sids]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        recs = self.lms.wait_for(lambda r: r.sourcedid in sids, timeout=10, count=len(sids))
        for t in threads:
            t.join(10)
        self.assertLess(time.monotonic() - t0, 4.0)       # in series: 4.8 s
        self.assertEqual(results, [200] * len(sids))
        self.assertEqual(len(recs), len(sids))
        self.assertEqual({self.lms.result(s)["score"] for s in sids}, {0.25})
        with self.assertRaises(AssertionError):
            self.lms.wait_for(lambda r: r.sourcedid == "never", timeout=0.2)

    def test_wait_for_a_later_request(self):
        timer = threading.Timer(0.2, lambda: self.send(EDX, score="0.8"))
        timer.start()
        self.addCleanup(timer.cancel)
        rec = self.lms.wait_for(lambda r: r.flavour == EDX and r.accepted, timeout=5)[0]
        self.assertEqual(rec.score_text, "0.8")
        timer.join(5)


class Helpers(unittest.TestCase):
    def test_sourcedid_shapes(self):
        sid = json.loads(fakelms.moodle_sourcedid(2, 3, 1, 123))
        self.assertEqual(sid["data"], {"instanceid": "2", "userid": "3", "typeid": "1",
                                       "launchid": 123})
        self.assertEqual(len(sid["hash"]), 64)
        self.assertRegex(fakelms.canvas_sourcedid(1, 2, 3, 4, legacy=True),
                         r"^1-2-3-4-[0-9a-f]{40}$")
        self.assertGreater(len(fakelms.canvas_sourcedid()), 400)
        self.assertTrue(fakelms.edx_sourcedid(user_id="u1").startswith(
            "course-v1%3AOrg%2BCourse%2BRun:localhost%3A18000-abc:u1"))

    def test_float_formats(self):
        self.assertEqual([fakelms.ruby_float_str(x) for x in (1, 0.6, 1e-05)],
                         ["1.0", "0.6", "1.0e-05"])
        self.assertEqual([fakelms.php_float_str(x) for x in (1, 0.6, 1e-05, 12.34568 / 100)],
                         ["1", "0.6", "1.0E-5", "0.1234568"])

    def test_urls(self):
        lms = FakeLMS({})
        with lms:
            self.assertEqual(lms.edx_url(block="b1"), lms.base_url + (
                "/courses/course-v1:Org+Course+Run/xblock/block-v1:Org+Course+Run+type@"
                "lti_consumer+block@b1/handler_noauth/outcome_service_handler"))
            self.assertTrue(lms.base_url.startswith("http://127.0.0.1:"))
        self.assertFalse(lms.listening)


if __name__ == "__main__":
    unittest.main()
