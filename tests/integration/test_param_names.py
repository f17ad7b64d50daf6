#!/usr/bin/python3
"""A parameter whose name holds NUL, another control character or bytes that
are not UTF-8 is refused with 400 and changes nothing, wherever it comes: a
launch's body or query, a page's query, a page's urlencoded or multipart
form, an outcomes request's query or Authorization header. (Values were
already checked field by field; a name no one reads was signed and passed.)"""
import os
import sys
import time
import uuid
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from oauthlib import oauth1  # noqa: E402

BAD_NAMES = (b"nul\x00name", b"soh\x01name", b"tab\tname", b"nl\nname", b"del\x7fname",
             b"latin1\xe9", b"overlong\xc0\xaf", b"surrogate\xed\xa0\x80", b"\xff")
GOOD_NAMES = (b"custom_caf\xc3\xa9", b"ext_\xe2\x9c\x93")  # UTF-8 names are fine


def pct(b):
    return quote(b, safe="")


class ParamNames(lt.ServerTestCase):

    def signed_pairs(self, extra, path="/lti/launch"):
        pairs = [(k.encode(), v.encode()) for k, v in lt.base_launch()] + list(extra)
        return lt.sign_bytes(self.server.public_url + path, pairs, self.key, self.secret)

    def test_launch_body(self):
        for name in BAD_NAMES:
            with self.subTest(name=name):
                before = lt.counts(self.db)
                resp = self.server.post_form(self.signed_pairs([(name, b"1")]).decode())
                self.assertRefusal(resp, 400, "parameter name")
                self.assertEqual(lt.counts(self.db), before)
        for name in GOOD_NAMES:
            with self.subTest(name=name):
                resp = self.server.post_form(self.signed_pairs([(name, b"1")]).decode())
                self.assertRedirectToPage(resp)

    def test_launch_query(self):
        for name in BAD_NAMES:
            with self.subTest(name=name):
                before = lt.counts(self.db)
                path = "/lti/launch?" + pct(name) + "=1"
                body = lt.sign(self.server.public_url + path, lt.base_launch(), self.key,
                               self.secret)
                resp = self.server.post_form(body, path=path)
                self.assertRefusal(resp, 400, "parameter name")
                self.assertEqual(lt.counts(self.db), before)

    def instructor_token(self):
        resp = self.launch(lt.base_launch(roles="Instructor"))
        return self.assertRedirectToPage(resp)

    def test_page_query_and_forms(self):
        token = self.instructor_token()
        csrf = lt.csrf_of(self.db, token)
        ctx = lt.session(self.db, token)["context"]

        def enabled():
            return lt.context(self.db, self.key, ctx)["badges_enabled"]
        for name in BAD_NAMES:
            with self.subTest(where="query", name=name):
                resp = self.server.get("/badges?s=%s&%s=1" % (token, pct(name)))
                self.assertRefusal(resp, 400, "parameter name")
            with self.subTest(where="urlencoded form", name=name):
                body = "s=%s&csrf=%s&enabled=1&pass_percent=50&%s=1" % (token, csrf, pct(name))
                before = enabled()
                resp = self.server.post_form(body, path="/badges/settings")
                self.assertRefusal(resp, 400, "parameter name")
                self.assertEqual(enabled(), before)
            # the bad name last, first, and first behind a preamble (which MHD skips)
            for where, first, preamble in (("last", False, b""), ("first", True, b""),
                                           ("first, preamble", True, b"x\n")):
                with self.subTest(where="multipart form, " + where, name=name):
                    boundary = "lb" + uuid.uuid4().hex
                    parts = [(b"s", token.encode()), (b"csrf", csrf.encode()),
                             (b"enabled", b"1"), (b"pass_percent", b"50")]
                    parts = [(name, b"1")] + parts if first else parts + [(name, b"1")]
                    body = preamble + b"".join(
                        b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data;"
                        b" name=\"" + k + b"\"\r\n\r\n" + v + b"\r\n" for k, v in parts)
                    body += b"--" + boundary.encode() + b"--\r\n"
                    before = enabled()
                    resp = self.server.request("POST", "/badges/settings", body=body, headers={
                        "Content-Type": "multipart/form-data; boundary=" + boundary})
                    self.assertEqual(resp.status, 400, resp)
                    self.assertEqual(enabled(), before)
        # the same forms with good names go through
        resp = self.server.post_form("s=%s&csrf=%s&enabled=1&pass_percent=50&%s=1"
                                     % (token, csrf, pct(GOOD_NAMES[0])), path="/badges/settings")
        self.assertEqual(resp.status, 303, resp)

    def test_outcomes_query_and_header(self):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><imsx_POXEnvelopeRequest xmlns="
                "\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\"/>")
        for name in BAD_NAMES:
            with self.subTest(where="query", name=name):
                url = self.server.public_url + "/lti/outcomes?" + pct(name) + "=1"
                client = oauth1.Client(self.key, client_secret=self.secret,
                                       signature_type=oauth1.SIGNATURE_TYPE_AUTH_HEADER)
                _, h, _ = client.sign(url, http_method="POST", body=body,
                                      headers={"Content-Type": "application/xml"})
                u = urlsplit(url)
                resp = self.server.request("POST", u.path + "?" + u.query, body=body,
                                           headers=dict(h))
                self.assertEqual(resp.status, 400, resp)
                self.assertIn(b"parameter name", resp.body)
            with self.subTest(where="header", name=name):
                client = oauth1.Client(self.key, client_secret=self.secret,
                                       signature_type=oauth1.SIGNATURE_TYPE_AUTH_HEADER,
                                       timestamp=str(int(time.time())))
                _, h, _ = client.sign(self.server.public_url + "/lti/outcomes",
                                      http_method="POST", body=body,
                                      headers={"Content-Type": "application/xml"})
                h = dict(h)
                h["Authorization"] += ', %s="1"' % pct(name)
                resp = self.server.request("POST", "/lti/outcomes", body=body, headers=h)
                self.assertEqual(resp.status, 400, resp)
                self.assertIn(b"parameter name", resp.body)


if __name__ == "__main__":
    lt.main()
