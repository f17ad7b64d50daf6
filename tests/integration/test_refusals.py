#!/usr/bin/python3
"""Every way a launch is refused: the status, a short HTML page naming the
reason, no redirect (unless a verified launch has an LTI-level problem and
a return URL), and nothing written to any table."""
import http.client
import os
import secrets
import sys
import threading
import time
import urllib.parse
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, counts  # noqa: E402

RETURN = "https://lms.example.edu/courses/7/return"
RETURN_Q = "https://lms.example.edu/mod/lti/return.php?course=2&instanceid=5"


class Refusals(lt.ServerTestCase):
    consumers = (("Main", None, None), ("Second", None, None), ("Disabled", None, None))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dis_key, cls.dis_secret = cls.keys[2]
        p = lt.run_cli("consumer", "disable", cls.dis_key, "--db", cls.db)
        assert p.returncode == 0, p.stderr

    def setUp(self):
        self.before = counts(self.db)

    def signed(self, params=None, key=None, secret=None, **kw):
        return lt.sign(self.server.launch_url, params or base_launch(), key or self.key,
                       secret or self.secret, **kw)

    def refused(self, body, status, *phrases, path="/lti/launch", **kw):
        resp = self.server.post_form(body, path=path, **kw)
        self.assertRefusal(resp, status, *phrases)
        self.assertNothingWritten(self.before)
        return resp

    # ---- who signs

    def test_bad_signature(self):
        body = self.signed(base_launch(lis_person_name_full="Mallory"))
        tampered = body.replace("Mallory", "Mallorz")
        self.assertNotEqual(body, tampered)
        self.refused(tampered, 401, "Not authorized", "signature does not match")

    def test_signature_value_garbled(self):
        body = self.signed()
        sig = dict(lt.body_pairs(body))["oauth_signature"]
        bad = lt.replace_param(body, "oauth_signature", sig[:-2] + ("A=" if sig[-2] != "A" else
                                                                    "B="))
        self.refused(bad, 401, "signature does not match")
        # a signature longer than any HMAC is malformed
        self.refused(lt.replace_param(body, "oauth_signature", "A" * 100), 400,
                     "oauth_signature")

    def test_wrong_secret(self):
        self.refused(self.signed(secret=self.secret[:-1] + ("0" if self.secret[-1] != "0"
                                                             else "1")), 401,
                     "signature does not match")
        # the secret of another consumer
        self.refused(self.signed(secret=self.keys[1][1]), 401, "signature does not match")

    def test_unknown_key(self):
        self.refused(self.signed(key="no-such-key", secret="x" * 32), 401, "unknown or disabled consumer key")

    def test_disabled_consumer(self):
        self.refused(self.signed(key=self.dis_key, secret=self.dis_secret), 401, "disabled")

    def test_missing_oauth_parameters(self):
        raw = lt.encode_params(base_launch())
        for name in ("oauth_consumer_key", "oauth_signature_method", "oauth_signature",
                     "oauth_timestamp", "oauth_nonce"):
            with self.subTest(name=name):
                body = lt.sign_raw(self.server.launch_url, raw, self.key, self.secret, drop=(name,))
                self.assertNotIn(name + "=", body)
                self.refused(body, 400, "Bad request", "missing parameter '%s'" % name)
                # present but empty counts as missing
                body = lt.sign_raw(self.server.launch_url, raw, self.key, self.secret)
                self.refused(lt.replace_param(body, name, ""), 400, "missing parameter '%s'" % name)

    def test_oauth_version_2(self):
        body = lt.sign_raw(self.server.launch_url, lt.encode_params(base_launch()), self.key,
                           self.secret, version="2.0")
        self.refused(body, 400, "oauth_version")

    def test_oauth_version_may_be_absent(self):
        body = lt.sign_raw(self.server.launch_url, lt.encode_params(base_launch()), self.key,
                           self.secret, version=None)
        self.assertNotIn("oauth_version", body)
        self.assertRedirectToPage(self.server.post_form(body))

    def test_plaintext_signature_method(self):
        body = self.signed(method=lt.oauth1.SIGNATURE_PLAINTEXT)
        self.assertIn("oauth_signature_method=PLAINTEXT", body)
        self.refused(body, 400, "oauth_signature_method")

    def test_rsa_sha1_and_lowercase_method(self):
        raw = lt.encode_params(base_launch())
        for m in ("RSA-SHA1", "hmac-sha1", "HMAC-SHA512"):
            with self.subTest(method=m):
                body = lt.sign_raw(self.server.launch_url, raw, self.key, self.secret)
                self.refused(lt.replace_param(body, "oauth_signature_method", m), 400,
                             "oauth_signature_method")

    def test_malformed_timestamp(self):
        raw = lt.encode_params(base_launch())
        for ts in ("abc", "-5", "0", "12.5", "99999999999999999999999"):
            with self.subTest(ts=ts):
                body = lt.sign_raw(self.server.launch_url, raw, self.key, self.secret, timestamp=ts)
                self.refused(body, 400, "oauth_timestamp")

    def test_timestamp_too_old_and_too_new(self):
        now = int(time.time())
        for ts in (now - 3600, now - 400, now + 400, now + 86400):
            with self.subTest(ts=ts - now):
                self.refused(self.signed(timestamp=ts), 401, "timestamp",
                             "open the tool again")
        # inside the window (300 s by default) is fine
        for ts in (now - 200, now + 200):
            self.assertRedirectToPage(self.server.post_form(self.signed(timestamp=ts)))

    def test_overlong_nonce(self):
        self.refused(self.signed(nonce="n" * 129), 400, "oauth_nonce")

    # ---- replays

    def test_replay_of_the_same_launch(self):
        body = self.signed()
        first = self.server.post_form(body)
        self.assertRedirectToPage(first)
        after_first = counts(self.db)
        self.assertEqual(after_first["nonces"], self.before["nonces"] + 1)
        self.assertEqual(after_first["sessions"], self.before["sessions"] + 1)
        second = self.server.post_form(body)
        self.assertRefusal(second, 401, "Launch again from your course", "already used",
                           "open the tool again from there")
        self.assertNothingWritten(after_first)

    def test_replay_and_stale_timestamp_go_back_to_the_lms(self):
        # verified launches refused for a used nonce or a stale timestamp go back to the
        # LMS's return URL with lti_errormsg, and write nothing
        ret = "https://lms.example/return?x=1"
        body = self.signed(base_launch(launch_presentation_return_url=ret))
        self.assertRedirectToPage(self.server.post_form(body))
        after_first = counts(self.db)
        for resp, words in ((self.server.post_form(body), "already used"),
                            (self.server.post_form(self.signed(
                                base_launch(launch_presentation_return_url=ret),
                                timestamp=int(time.time()) - 3600)), "timestamp")):
            self.assertEqual(resp.status, 302, resp)
            loc = resp.header("Location")
            self.assertTrue(loc.startswith(ret + "&lti_errormsg="), loc)
            self.assertIn(words, urllib.parse.unquote(loc))
            self.assertNothingWritten(after_first)

    def test_nonce_reused_with_another_launch(self):
        nonce = secrets.token_hex(16)
        self.assertRedirectToPage(self.server.post_form(self.signed(nonce=nonce)))
        after_first = counts(self.db)
        resp = self.server.post_form(self.signed(base_launch(user_id="other"), nonce=nonce))
        self.assertRefusal(resp, 401, "already used")
        self.assertNothingWritten(after_first)

    def test_nonce_reused_with_another_timestamp(self):
        # a nonce seen within the window is refused whatever timestamp comes with it:
        # earlier, later, and after the writer moved it into `nonces`
        now = int(time.time())
        nonce = secrets.token_hex(16)
        self.assertRedirectToPage(self.server.post_form(self.signed(nonce=nonce, timestamp=now)))
        after_first = counts(self.db)
        for ts in (now + 1, now - 1, now + 250, now - 250):
            with self.subTest(ts=ts - now):
                resp = self.server.post_form(self.signed(base_launch(user_id="other"),
                                                         nonce=nonce, timestamp=ts))
                self.assertRefusal(resp, 401, "already used")
                self.assertNothingWritten(after_first)

    def test_same_nonce_for_two_consumers(self):
        # nonces are per consumer: another consumer's launch with the same nonce is fine
        nonce = secrets.token_hex(16)
        self.assertRedirectToPage(self.server.post_form(self.signed(nonce=nonce)))
        k2, s2 = self.keys[1]
        self.assertRedirectToPage(self.server.post_form(self.signed(key=k2, secret=s2,
                                                                    nonce=nonce)))

    def test_simultaneous_launches_with_one_nonce(self):
        rounds, width = 6, 4
        for r in range(rounds):
            nonce = secrets.token_hex(16)
            bodies = [self.signed(base_launch(user_id="race-%d-%d" % (r, i)), nonce=nonce)
                      for i in range(width)]
            before = counts(self.db)
            results = [None] * width
            barrier = threading.Barrier(width)

            def go(i):
                barrier.wait()
                results[i] = self.server.post_form(bodies[i])

            threads = [threading.Thread(target=go, args=(i,)) for i in range(width)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            statuses = sorted(x.status for x in results)
            self.assertEqual(statuses, [303] + [401] * (width - 1), results)
            for x in results:
                if x.status == 401:
                    self.assertRefusal(x, 401, "already used")
            after = counts(self.db)
            for t in ("nonces", "users", "sessions", "resource_links", "contexts",
                      "enrollments"):
                self.assertEqual(after[t], before[t] + 1, t)

    def test_identical_simultaneous_launches(self):
        body = self.signed()
        results = [None] * 6
        barrier = threading.Barrier(6)

        def go(i):
            barrier.wait()
            results[i] = self.server.post_form(body)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(x.status for x in results), [303] + [401] * 5)
        self.assertEqual(counts(self.db)["sessions"], self.before["sessions"] + 1)

    # ---- duplicated parameters

    def test_duplicated_oauth_nonce(self):
        body = self.signed()
        self.refused(body + "&oauth_nonce=" + secrets.token_hex(8), 400, "oauth_nonce",
                     "more than once")

    def test_duplicated_oauth_parameter_in_query_and_body(self):
        body = self.signed()
        key = dict(lt.body_pairs(body))["oauth_consumer_key"]
        self.refused(body, 400, "oauth_consumer_key", "more than once",
                     path="/lti/launch?oauth_consumer_key=" + key)

    def test_request_text_in_error_pages_is_escaped(self):
        body = self.signed()
        name = "oauth_<script>alert(1)</script>"
        resp = self.refused(body + "&" + lt.quote(name) + "=1&" + lt.quote(name) + "=2", 400,
                            "more than once")
        self.assertNotIn("<script>", resp.text)
        self.assertIn("&lt;script&gt;", resp.text)

    def test_duplicated_user_id(self):
        params = base_launch() + [("user_id", "someone-else")]
        self.refused(self.signed(params), 400, "user_id", "more than once")

    def test_duplicated_user_id_with_return_url_goes_back(self):
        params = base_launch(launch_presentation_return_url=RETURN) + [("user_id", "x2")]
        resp = self.server.post_form(self.signed(params))
        self.assertLtiError(resp, RETURN, "user_id")

    # ---- LTI-level refusals of verified launches

    def assertLtiError(self, resp, return_url, phrase):
        self.assertEqual(resp.status, 302, resp)
        loc = resp.header("Location")
        sep = "&" if "?" in return_url else "?"
        self.assertTrue(loc.startswith(return_url + sep + "lti_errormsg="), loc)
        q = dict(parse_qsl(urlsplit(loc).query))
        self.assertIn(phrase, q["lti_errormsg"])
        for k, v in parse_qsl(urlsplit(return_url).query):
            self.assertEqual(q[k], v, "the return URL's own query is kept")
        self.assertIsNone(resp.header("Set-Cookie"))
        self.assertNothingWritten(self.before)

    def lti_cases(self):
        return (
            ("lti_message_type", dict(lti_message_type="ContentItemSelectionRequest")),
            ("lti_message_type", dict(lti_message_type=None)),
            ("lti_version", dict(lti_version="LTI-2p0")),
            ("lti_version", dict(lti_version=None)),
            ("resource_link_id", dict(resource_link_id=None)),
            ("user_id", dict(user_id=None)),
            ("lis_person_name_full", dict(lis_person_name_full="bell\x07name")),
            ("custom_badge_mode", dict(custom_badge_mode="not a mode!")),
            ("lis_outcome_service_url", dict(lis_outcome_service_url="ftp://x/y")),
        )

    def test_lti_errors_with_return_url_redirect(self):
        for ret in (RETURN, RETURN_Q):
            for phrase, over in self.lti_cases():
                with self.subTest(ret=ret, phrase=phrase, over=over):
                    params = base_launch(launch_presentation_return_url=ret, **over)
                    resp = self.server.post_form(self.signed(params))
                    self.assertLtiError(resp, ret, phrase)

    def test_lti_errors_without_return_url_are_400(self):
        for phrase, over in self.lti_cases():
            with self.subTest(phrase=phrase, over=over):
                self.refused(self.signed(base_launch(**over)), 400, "Bad request", phrase)

    def test_lti_error_with_unusable_return_url_is_400(self):
        params = base_launch(launch_presentation_return_url="javascript:alert(1)",
                             lti_version="LTI-2p0")
        self.refused(self.signed(params), 400)

    def test_byte_signer_agrees_with_oauthlib(self):
        # the stdlib signer used below gives what oauthlib gives for ordinary values
        params = base_launch(lis_person_name_full="Zoë + Ñ ~*'()")
        pairs = [(k.encode(), v.encode()) for k, v in params]
        mine = lt.sign_bytes(self.server.launch_url, pairs, self.key, self.secret,
                             nonce="fixed-nonce", timestamp=1700000000)
        theirs = lt.sign_raw(self.server.launch_url, lt.encode_params(params), self.key,
                             self.secret, nonce="fixed-nonce", timestamp=1700000000)
        self.assertEqual(dict(lt.body_pairs(mine.decode()))["oauth_signature"],
                         dict(lt.body_pairs(theirs))["oauth_signature"])
        self.assertRedirectToPage(self.server.post_form(lt.sign_bytes(
            self.server.launch_url, pairs, self.key, self.secret)))

    def test_invalid_utf8_is_refused(self):
        for field in ("lis_person_name_full", "context_title", "user_id"):
            with self.subTest(field=field):
                pairs = [(k.encode(), v.encode()) for k, v in base_launch(**{field: None})]
                pairs.append((field.encode(), b"bad \xc3\x28 bytes"))
                body = lt.sign_bytes(self.server.launch_url, pairs, self.key, self.secret)
                self.refused(body, 400, field, "UTF-8")

    def test_nul_and_control_characters(self):
        pairs = [(k.encode(), v.encode()) for k, v in base_launch(context_title=None)]
        body = lt.sign_bytes(self.server.launch_url,
                             pairs + [(b"context_title", b"before\x00after")], self.key,
                             self.secret)
        self.refused(body, 400, "context_title", "control characters")
        # a NUL in a parameter the tool does not read is signed like any byte
        body = lt.sign_bytes(self.server.launch_url,
                             pairs + [(b"custom_blob", b"a\x00b\xffc")], self.key, self.secret)
        self.assertRedirectToPage(self.server.post_form(body))

    def test_badly_signed_launch_with_return_url_does_not_redirect(self):
        params = base_launch(launch_presentation_return_url=RETURN, lti_version="LTI-9")
        body = self.signed(params, secret="wrong-secret-0123456789")
        self.refused(body, 401, "signature does not match")
        body = self.signed(base_launch(launch_presentation_return_url=RETURN), key="nobody",
                           secret="wrong-secret-0123456789")
        self.refused(body, 401, "unknown or disabled consumer key")

    # ---- HTTP-level refusals

    def test_body_too_large(self):
        big = base_launch(custom_filler="x" * (70 * 1024))
        body = self.signed(big)
        self.assertGreater(len(body), 64 * 1024)
        resp = self.server.post_form(body)
        self.assertRefusal(resp, 413, "larger than 65536 bytes")
        self.assertNothingWritten(self.before)

    def test_body_just_under_the_limit_is_accepted(self):
        params = base_launch(custom_filler="")
        body = self.signed(params)
        filler = 64 * 1024 - len(body) - 200
        body = self.signed(base_launch(custom_filler="y" * filler))
        self.assertLessEqual(len(body), 64 * 1024)
        self.assertRedirectToPage(self.server.post_form(body))

    def chunked_post(self, data, chunk=8192):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        try:
            raw = data.encode()

            def gen():
                for i in range(0, len(raw), chunk):
                    yield raw[i:i + chunk]

            conn.request("POST", "/lti/launch", body=gen(),
                         headers={"Content-Type": lt.FORM, "Transfer-Encoding": "chunked"},
                         encode_chunked=True)
            r = conn.getresponse()
            return lt.Response(r.status, r.reason, r.msg, r.read())
        finally:
            conn.close()

    def test_chunked_body_under_the_limit(self):
        resp = self.chunked_post(self.signed(), chunk=50)
        self.assertRedirectToPage(resp)

    def test_chunked_body_too_large(self):
        body = self.signed(base_launch(custom_filler="z" * (100 * 1024)))
        resp = self.chunked_post(body)
        self.assertRefusal(resp, 413, "larger than")
        self.assertNothingWritten(self.before)

    def test_unsupported_media_types(self):
        body = self.signed()
        for ct in ("application/json", "text/plain", "multipart/form-data; boundary=x", None):
            with self.subTest(ct=ct):
                self.refused(body, 415, "application/x-www-form-urlencoded", content_type=ct)

    def test_get_and_put_launch(self):
        resp = self.server.get("/lti/launch")
        self.assertRefusal(resp, 405, "Method not allowed")
        self.assertEqual(resp.header("Allow"), "POST")
        body = self.signed()
        for m in ("PUT", "DELETE", "PATCH"):
            with self.subTest(method=m):
                resp = self.server.request(m, "/lti/launch", body=body,
                                           headers={"Content-Type": lt.FORM})
                self.assertRefusal(resp, 405)
                self.assertEqual(resp.header("Allow"), "POST")
        self.assertNothingWritten(self.before)

    def test_post_to_pages_is_405(self):
        for path in ("/badges", "/healthz", "/lti/config.xml", "/"):
            with self.subTest(path=path):
                resp = self.server.request("POST", path, body="a=b",
                                           headers={"Content-Type": lt.FORM})
                self.assertRefusal(resp, 405)
                self.assertIn("GET", resp.header("Allow"))

    def test_unknown_paths(self):
        for path in ("/nope", "/lti/launch/", "/lti", "/badges/x", "/LTI/LAUNCH", "/%2e%2e/etc"):
            with self.subTest(path=path):
                self.assertRefusal(self.server.get(path), 404, "Not found")
        self.refused(self.signed(), 404, path="/lti/launch2")

    def test_malformed_percent_encoding(self):
        body = self.signed()
        for bad in ("%zz", "%4", "%", "%g1"):
            with self.subTest(bad=bad):
                self.refused(body + "&custom_bad=" + bad, 400, "percent-encoding")
                self.refused(body + "&" + bad + "=1", 400, "percent-encoding")
        # in the launch URL's query too
        self.refused(body, 400, "percent-encoding", path="/lti/launch?x=%zz")

    def test_too_many_parameters(self):
        params = base_launch() + [("custom_p%d" % i, "v") for i in range(600)]
        self.refused(self.signed(params), 400, "more than 512 parameters")

    def test_duplicated_signature(self):
        body = self.signed()
        sig = dict(lt.body_pairs(body))["oauth_signature"]
        self.refused(body + "&oauth_signature=" + lt.quote(sig, safe=""), 400, "oauth_signature",
                     "more than once")

    def test_lti_error_return_url_with_fragment(self):
        # lti_errormsg must land in the query the LMS receives, not in the fragment
        ret = "https://lms.example.edu/return?x=1#section"
        resp = self.server.post_form(self.signed(base_launch(launch_presentation_return_url=ret,
                                                             lti_version="LTI-3")))
        self.assertEqual(resp.status, 302, resp)
        loc = urlsplit(resp.header("Location"))
        self.assertIn("lti_errormsg", dict(parse_qsl(loc.query)), resp.header("Location"))
        self.assertEqual(dict(parse_qsl(loc.query)).get("x"), "1")
        self.assertNothingWritten(self.before)

    def test_head_launch(self):
        resp = self.server.request("HEAD", "/lti/launch")
        self.assertEqual(resp.status, 405)
        self.assertEqual(resp.header("Allow"), "POST")

    def test_long_launch_url_is_not_truncated(self):
        # a correctly signed launch whose URL carries a long query is accepted up to
        # LIMIT_URI_LEN (8 KiB) and refused as too long (414) beyond it: the server must
        # never check the signature against a truncated URL and call it forged
        before = counts(self.db)
        for n, status in ((5000, 303), (8100, 303), (9000, 414)):
            with self.subTest(query_len=n):
                path = "/lti/launch?moodle_param=" + "q" * n
                body = lt.sign(self.server.launch_url + path[len("/lti/launch"):],
                               base_launch(), self.key, self.secret)
                resp = self.server.post_form(body, path=path)
                self.assertEqual(resp.status, status, resp)
        after = counts(self.db)
        self.assertEqual(after["sessions"], before["sessions"] + 2)

    def test_empty_body(self):
        self.refused("", 400, "missing parameter")

    def test_control_characters_in_nonce(self):
        body = lt.sign_raw(self.server.launch_url, lt.encode_params(base_launch()), self.key,
                           self.secret, nonce="abc\x01def")
        self.refused(body, 400, "oauth_nonce")


class SmallBodyLimit(lt.ServerTestCase):
    """max_body from the configuration file."""

    CONFIG = "[server]\nmax_body = 2048\n[lti]\ntimestamp_window = 30\n"

    def test_config_max_body(self):
        before = counts(self.db)
        body = lt.sign(self.server.launch_url, base_launch(custom_f="q" * 2100), self.key,
                       self.secret)
        self.assertRefusal(self.server.post_form(body), 413, "larger than 2048 bytes")
        self.assertNothingWritten(before)
        body = lt.sign(self.server.launch_url, base_launch(), self.key, self.secret)
        self.assertRedirectToPage(self.server.post_form(body))

    def test_config_timestamp_window(self):
        before = counts(self.db)
        body = lt.sign(self.server.launch_url, base_launch(), self.key, self.secret,
                       timestamp=int(time.time()) - 60)
        self.assertRefusal(self.server.post_form(body), 401, "30 seconds")
        self.assertNothingWritten(before)


if __name__ == "__main__":
    lt.main()
