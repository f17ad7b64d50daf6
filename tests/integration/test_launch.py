#!/usr/bin/python3
"""Accepted launches end to end: Canvas-, Moodle- and Open edX-shaped
launches, HMAC-SHA1 and HMAC-SHA256, Unicode, '+' and '%20', repeated
parameters, HTML escaping, and what the database holds afterwards."""
import http.client
import json
import os
import sys
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ltitest as lt  # noqa: E402
from ltitest import HMAC_SHA1, HMAC_SHA256, base_launch, counts  # noqa: E402


def canvas_launch(role="Learner", ext_roles=None, name=("Ada", "Lovelace"), **over):
    given, family = name
    p = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": lt.hex_id(20),
        "resource_link_title": "Badges",
        "context_id": lt.hex_id(20),
        "context_title": "Introduction to Biology",
        "context_label": "BIO101",
        "user_id": lt.hex_id(20),
        "roles": role,
        "ext_roles": ext_roles or ("urn:lti:instrole:ims/lis/Student,urn:lti:role:ims/lis/"
                                   "Learner,urn:lti:sysrole:ims/lis/User"),
        "lis_person_name_given": given,
        "lis_person_name_family": family,
        "lis_person_name_full": "%s %s" % (given, family),
        "lis_person_contact_email_primary": "ada@example.edu",
        "lis_person_sourcedid": "SIS-1001",
        "custom_canvas_user_id": "1201",
        "custom_canvas_course_id": "345",
        "custom_canvas_api_domain": "canvas.example.edu",
        "custom_canvas_enrollment_state": "active",
        "custom_canvas_user_login_id": "ada",
        "ext_outcome_data_values_accepted": "url,text",
        "ext_outcome_result_total_score_accepted": "true",
        "ext_outcome_submission_submitted_at_accepted": "true",
        "lis_outcome_service_url": "https://canvas.example.edu/api/lti/v1/tools/77/"
                                   "grade_passback",
        "lis_result_sourcedid": "77-345-901-1201-" + lt.hex_id(20),
        "launch_presentation_document_target": "iframe",
        "launch_presentation_locale": "en",
        "launch_presentation_return_url": "https://canvas.example.edu/courses/345/"
                                          "external_content/success/external_tool_redirect",
        "tool_consumer_info_product_family_code": "canvas",
        "tool_consumer_info_version": "cloud",
        "tool_consumer_instance_guid": lt.hex_id(20) + ":canvas-lms",
        "tool_consumer_instance_name": "Example University",
        "tool_consumer_instance_contact_email": "notifications@canvas.example.edu",
    }
    p.update(over)
    return [(k, v) for k, v in p.items() if v is not None]


MOODLE_SOURCEDID = ('{"data":{"instanceid":"2","userid":"4","typeid":null,"launchid":123},'
                    '"hash":"3b2f8f0e6f1c0a9d2b7c9e1f4a5d6c7b8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b"}')


def moodle_launch(role="Learner", user="4", context="2", **over):
    p = {
        "user_id": user,
        "lis_person_sourcedid": "",
        "roles": role,
        "context_id": context,
        "context_label": "BIO",
        "context_title": "Biology (Moodle)",
        "context_type": "CourseSection",
        "resource_link_title": "Badges",
        "resource_link_description": "",
        "resource_link_id": "1",
        "lis_course_section_sourcedid": "",
        "lis_result_sourcedid": MOODLE_SOURCEDID,
        "lis_outcome_service_url": "https://moodle.example.edu/mod/lti/service.php",
        "lis_person_name_given": "Grace",
        "lis_person_name_family": "Hopper",
        "lis_person_name_full": "Grace Hopper",
        "ext_user_username": "ghopper",
        "lis_person_contact_email_primary": "grace@example.edu",
        "launch_presentation_locale": "en",
        "ext_lms": "moodle-2",
        "tool_consumer_info_product_family_code": "moodle",
        "tool_consumer_info_version": "2023100900",
        "lti_version": "LTI-1p0",
        "lti_message_type": "basic-lti-launch-request",
        "tool_consumer_instance_guid": "moodle.example.edu",
        "tool_consumer_instance_name": "Example Moodle",
        "tool_consumer_instance_description": "Example Moodle",
        "launch_presentation_document_target": "iframe",
        "launch_presentation_return_url": "https://moodle.example.edu/mod/lti/return.php?"
                                          "course=2&launch_container=3&instanceid=2&sesskey=abc",
        "custom_badge_mode": "Verified",
    }
    p.update(over)
    return [(k, v) for k, v in p.items() if v is not None]


EDX_COURSE = "course-v1:ExampleX+BIO101+2024_T1"


def edx_launch(role="Student", anon=None, **over):
    anon = anon or lt.hex_id(16)
    block = "block-v1:ExampleX+BIO101+2024_T1+type@lti_consumer+block@" + lt.hex_id(16)
    link = "lms.example.com-" + lt.hex_id(16)
    p = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "user_id": anon,
        "roles": role,
        "resource_link_id": link,
        "context_id": EDX_COURSE,
        "context_title": "Biology on edX",
        "context_label": "ExampleX",
        "lis_result_sourcedid": "%s:%s:%s" % (EDX_COURSE, link, anon),
        "lis_outcome_service_url": "https://lms.example.com/courses/%s/xblock/%s/handler_noauth/"
                                   "outcome_service_handler" % (EDX_COURSE, block),
        "launch_presentation_return_url": "",
        "lis_person_sourcedid": "",
        "lis_person_contact_email_primary": "",
    }
    p.update(over)
    return [(k, v) for k, v in p.items() if v is not None]


class LaunchTests(lt.ServerTestCase):
    consumers = (("Canvas", None, None), ("Moodle", None, None), ("Open edX", None, None),
                 ("Other", None, None),
                 # no '%' in the key: oauthlib unescapes oauth_* values once more than RFC 5849
                 # says (collect_parameters), so it would sign another key than it sends; no ':'
                 # either, which consumer add refuses (Open edX's passport is id:key:secret)
                 ("Odd key and secret", "lms.example.edu/?a=1&b=+~@", "s3cr&t%2B+=/;~!*'()"),
                 ("Percent key", "pct%2Bkey", None))

    def key_of(self, i):
        return self.keys[i]

    def lms_family(self, key):
        return lt.consumers(self.db)[key]["lms"]

    def assertOneMore(self, before, after, tables):
        for t in lt.TABLES:
            want = before[t] + (1 if t in tables else 0)
            self.assertEqual(after[t], want, "table %s: %d -> %d" % (t, before[t], after[t]))

    # ---- Canvas

    def test_canvas_learner_end_to_end(self):
        key, secret = self.key_of(0)
        params = canvas_launch()
        d = dict(params)
        before = counts(self.db)
        resp = self.launch(params, key, secret, callback="about:blank")
        token = self.assertRedirectToPage(resp)
        after = counts(self.db)
        self.assertOneMore(before, after, ("nonces", "users", "contexts", "resource_links",
                                           "enrollments", "outcome_bindings", "sessions"))
        page = self.page(resp)
        self.assertEqual(lt.page_name(page.text), "Ada Lovelace")
        self.assertIn("Introduction to Biology", page.text)
        self.assertEqual(lt.page_view(page.text), "learner")
        self.assertEqual(lt.page_field(page.text, "Seen as"), "Learner")
        self.assertEqual(lt.page_field(page.text, "Learning platform"), "Canvas")
        self.assertIn("Back to the course", page.text)
        self.assertIsNone(page.header("Set-Cookie"))

        u = lt.user(self.db, key, d["user_id"])
        self.assertEqual((u["given_name"], u["family_name"], u["full_name"], u["email"],
                          u["person_sourcedid"]),
                         ("Ada", "Lovelace", "Ada Lovelace", "ada@example.edu", "SIS-1001"))
        self.assertEqual(len(u["enrollments"]), 1)
        enr = u["enrollments"][0]
        self.assertEqual(enr["context"], d["context_id"])
        self.assertEqual(enr["roles"], "Learner")
        self.assertEqual(enr["ext_roles"], d["ext_roles"])
        self.assertEqual(enr["first_launch_at"], enr["last_launch_at"])
        self.assertEqual(len(u["outcome_bindings"]), 1)
        ob = u["outcome_bindings"][0]
        self.assertEqual(ob["service_url"], d["lis_outcome_service_url"])
        self.assertEqual(ob["sourcedid"], d["lis_result_sourcedid"])
        self.assertEqual(ob["data_values_accepted"], "url,text")
        # the binding's resource link, and that link's course
        self.assertEqual((ob["resource_link"], ob["context"]),
                         (d["resource_link_id"], d["context_id"]))
        sess = lt.session(self.db, token)
        self.assertIsNotNone(sess, "the session is found by the SHA-256 of its secret")
        self.assertEqual((sess["user"], sess["context"]), (d["user_id"], d["context_id"]))
        self.assertEqual((sess["context_title"], sess["context_label"]),
                         ("Introduction to Biology", "BIO101"))
        self.assertEqual(sess["return_url"], d["launch_presentation_return_url"])
        self.assertEqual(sess["locale"], "en")
        self.assertEqual(sess["document_target"], "iframe")
        secret = token.split("-", 1)[1]
        self.assertNotIn(secret, lt.database_dump(self.db),
                         "the database must not hold the session secret")
        self.assertEqual(self.lms_family(key), "canvas")

    def test_canvas_instructor_and_institution_roles(self):
        key, secret = self.key_of(0)
        # instructor in the course
        resp = self.launch(canvas_launch(role="Instructor", ext_roles="urn:lti:instrole:ims/lis/"
                                         "Instructor,urn:lti:role:ims/lis/Instructor,"
                                         "urn:lti:sysrole:ims/lis/User",
                                         name=("Alan", "Turing")), key, secret)
        self.assertRedirectToPage(resp)
        page = self.page(resp)
        self.assertEqual(lt.page_view(page.text), "instructor")
        self.assertEqual(lt.page_name(page.text), "Alan Turing")
        # an institution instructor who is a learner in this course stays a learner
        resp = self.launch(canvas_launch(role="Learner", ext_roles="urn:lti:instrole:ims/lis/"
                                         "Instructor,urn:lti:role:ims/lis/Learner"), key, secret)
        self.assertRedirectToPage(resp)
        self.assertEqual(lt.page_view(self.page(resp).text), "learner")
        # institution roles in `roles` itself say nothing about this course either
        for roles in ("Learner,urn:lti:instrole:ims/lis/Instructor",
                      "urn:lti:instrole:ims/lis/Faculty,urn:lti:role:ims/lis/Learner",
                      "urn:lti:sysrole:ims/lis/User,Learner", "Mentor", "urn:lti:role:ims/lis/Member"):
            resp = self.launch(canvas_launch(role=roles), key, secret)
            self.assertRedirectToPage(resp)
            self.assertEqual(lt.page_view(self.page(resp).text), "learner", roles)
        # Canvas' TA and designer roles see the instructor view
        for role in ("urn:lti:role:ims/lis/TeachingAssistant", "ContentDeveloper",
                     "urn:lti:role:ims/lis/Instructor/PrimaryInstructor"):
            resp = self.launch(canvas_launch(role=role), key, secret)
            self.assertRedirectToPage(resp)
            self.assertEqual(lt.page_view(self.page(resp).text), "instructor", role)
        # a site administrator launching from a course they are not enrolled in
        resp = self.launch(canvas_launch(role="urn:lti:instrole:ims/lis/Administrator"),
                           key, secret)
        self.assertRedirectToPage(resp)
        self.assertEqual(lt.page_view(self.page(resp).text), "instructor")

    def test_relaunch_updates_rows_without_duplicates(self):
        key, secret = self.key_of(0)
        params = canvas_launch()
        d = dict(params)
        self.assertRedirectToPage(self.launch(params, key, secret))
        before = counts(self.db)
        again = dict(d)
        again["context_title"] = "Biology, renamed"
        again["roles"] = "Instructor"
        resp = self.launch(list(again.items()), key, secret)
        self.assertRedirectToPage(resp)
        after = counts(self.db)
        self.assertOneMore(before, after, ("nonces", "sessions"))
        page = self.page(resp)
        self.assertIn("Biology, renamed", page.text)
        self.assertEqual(lt.page_view(page.text), "instructor")
        enr = lt.user(self.db, key, d["user_id"])["enrollments"]
        self.assertEqual([e["roles"] for e in enr], ["Instructor"])

    # ---- Moodle

    def test_moodle_launch_with_query_string(self):
        key, secret = self.key_of(1)
        params = moodle_launch(user="4", context="2", resource_link_id="1")
        path = "/lti/launch?moodle_param=x%20y&id=7"
        before = counts(self.db)
        resp, body = self.server.launch(params, key, secret, path=path, callback="about:blank")
        self.assertIn("oauth_callback=about%3Ablank", body)
        self.assertRedirectToPage(resp)
        after = counts(self.db)
        self.assertOneMore(before, after, ("nonces", "users", "contexts", "resource_links",
                                           "enrollments", "outcome_bindings", "sessions"))
        page = self.page(resp)
        self.assertEqual(lt.page_name(page.text), "Grace Hopper")
        self.assertIn("Biology (Moodle)", page.text)
        self.assertEqual(lt.page_field(page.text, "Course"), "Biology (Moodle) (BIO)")
        self.assertEqual(lt.page_view(page.text), "learner")
        self.assertEqual(lt.page_field(page.text, "Track"), "verified")
        u = lt.user(self.db, key, "4")
        self.assertEqual([(o["sourcedid"], o["service_url"]) for o in u["outcome_bindings"]],
                         [(MOODLE_SOURCEDID, "https://moodle.example.edu/mod/lti/service.php")])
        # an empty lis_person_sourcedid counts as not given
        self.assertIsNone(u["person_sourcedid"])
        self.assertEqual(self.lms_family(key), "moodle")

    def canvas_signed(self, url, params, key, secret, nonce=None):
        """A launch signed by Debian's ruby-oauth exactly as Canvas signs one whose launch URL
        has a query (tests/integration/canvas_sign.rb): the body to POST to `url`."""
        req = {"url": url, "key": key, "secret": secret, "params": params,
               "nonce": nonce or lt.hex_id(16), "timestamp": int(time.time())}
        out = subprocess.run(["ruby", os.path.join(HERE, "canvas_sign.rb")],
                             input=json.dumps(req).encode(), capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode()

    def test_canvas_launch_url_with_query(self):
        # Canvas copies the launch URL's query into the form and signs the form alone: the
        # strict reading counts those pairs twice; the pairs found in both count once
        key, secret = self.key_of(0)
        path = "/lti/launch?tenant=3&campus=north%20side"
        url = self.server.public_url + path
        body = self.canvas_signed(url, canvas_launch(), key, secret)
        pairs = lt.body_pairs(body)
        self.assertIn(("tenant", "3"), pairs)
        self.assertIn(("campus", "north side"), pairs)
        before = counts(self.db)
        self.assertRedirectToPage(self.server.post_form(body, path=path))
        self.assertOneMore(before, counts(self.db),
                           ("nonces", "users", "contexts", "resource_links", "enrollments",
                            "outcome_bindings", "sessions"))

    def test_canvas_launch_url_with_query_tampered(self):
        key, secret = self.key_of(0)
        path = "/lti/launch?tenant=3"
        url = self.server.public_url + path
        for name, tamper in (
                # the copy in the body changed: counted apart from the query's, as signed
                ("body copy changed", lambda b, p: (lt.replace_param(b, "tenant", "4"), p)),
                # the query changed: its pair is not the body's, so it counts on its own
                ("query changed", lambda b, p: (b, "/lti/launch?tenant=4")),
                # a pair added to the query only was never signed
                ("query pair added", lambda b, p: (b, p + "&roles=Instructor")),
                ("user changed", lambda b, p: (lt.replace_param(b, "user_id", "someone"), p))):
            with self.subTest(tamper=name):
                body, p = tamper(self.canvas_signed(url, canvas_launch(), key, secret), path)
                before = counts(self.db)
                resp = self.server.post_form(body, path=p)
                self.assertEqual(resp.status, 401, resp)
                self.assertIn("signature does not match", resp.plain)
                self.assertEqual(counts(self.db), before)

    def test_moodle_query_string_is_signed(self):
        key, secret = self.key_of(1)
        signed_for = self.server.launch_url + "?moodle_param=x%20y"
        # signed with the query but posted without it, and the other way round
        for sign_url, path in ((signed_for, "/lti/launch"),
                               (self.server.launch_url, "/lti/launch?moodle_param=x%20y"),
                               (signed_for, "/lti/launch?moodle_param=x%20z")):
            before = counts(self.db)
            body = lt.sign(sign_url, moodle_launch(user="5"), key, secret)
            resp = self.server.post_form(body, path=path)
            self.assertRefusal(resp, 401, "signature does not match")
            self.assertNothingWritten(before)

    def test_moodle_instructor_admin(self):
        key, secret = self.key_of(1)
        resp = self.launch(moodle_launch(role="Instructor,urn:lti:sysrole:ims/lis/Administrator,"
                                         "urn:lti:instrole:ims/lis/Administrator", user="2",
                                         context="3", resource_link_id="9"),
                           key, secret, method=HMAC_SHA256)
        self.assertRedirectToPage(resp)
        self.assertEqual(lt.page_view(self.page(resp).text), "instructor")

    # ---- Open edX

    def test_openedx_anonymous_learner(self):
        key, secret = self.key_of(2)
        anon = lt.hex_id(16)
        params = edx_launch(anon=anon)
        before = counts(self.db)
        resp = self.launch(params, key, secret, callback="about:blank")
        self.assertRedirectToPage(resp)
        after = counts(self.db)
        self.assertOneMore(before, after, ("nonces", "users", "contexts", "resource_links",
                                           "enrollments", "outcome_bindings", "sessions"))
        page = self.page(resp)
        # no name: the page says so, and never shows a learner the LMS's internal id
        self.assertEqual(lt.page_name(page.text), "you (your learning platform shared no name)")
        self.assertNotIn(anon, page.text)
        self.assertIn("Biology on edX", page.text)
        self.assertEqual(lt.page_view(page.text), "learner")
        self.assertNotIn("Back to the course", page.text)
        u = lt.user(self.db, key, anon)
        self.assertIsNotNone(u)
        self.assertIsNone(u["email"])
        self.assertEqual([e["context"] for e in u["enrollments"]], [EDX_COURSE],
                         "context_id with '+' must be stored decoded")
        ob = u["outcome_bindings"]
        self.assertEqual(len(ob), 1)
        self.assertEqual(ob[0]["sourcedid"], dict(params)["lis_result_sourcedid"])
        self.assertTrue(ob[0]["service_url"].endswith("/handler_noauth/outcome_service_handler"))
        # no product family code: recognised by the course id and the outcome URL
        self.assertEqual(self.lms_family(key), "openedx")

    def test_openedx_staff(self):
        key, secret = self.key_of(2)
        for role in ("Instructor", "Administrator"):
            resp = self.launch(edx_launch(role=role), key, secret)
            self.assertRedirectToPage(resp)
            self.assertEqual(lt.page_view(self.page(resp).text), "instructor", role)

    # ---- scoping by consumer

    def test_same_ids_from_two_consumers_are_kept_apart(self):
        (k1, s1), (k2, s2) = self.key_of(3), self.key_of(0)
        before = counts(self.db)
        same = base_launch(context_id="1", user_id="1", resource_link_id="1",
                           context_title="Shared id")
        for k, s in ((k1, s1), (k2, s2)):
            self.assertRedirectToPage(self.launch(same, k, s))
        after = counts(self.db)
        for t in ("users", "contexts", "resource_links", "enrollments"):
            self.assertEqual(after[t], before[t] + 2, t)
        # each consumer's user "1" in that consumer's course "1"
        for k in (k1, k2):
            self.assertEqual([e["context"] for e in lt.user(self.db, k, "1")["enrollments"]],
                             ["1"], k)

    # ---- signature methods

    def test_hmac_sha256(self):
        resp = self.launch(base_launch(), method=HMAC_SHA256)
        self.assertRedirectToPage(resp)

    def test_sha256_signature_checked_as_sha256(self):
        # a SHA-1 signature announced as HMAC-SHA256 must not pass
        body = lt.sign(self.server.launch_url, base_launch(), self.key, self.secret)
        sig1 = dict(lt.body_pairs(body))["oauth_signature"]
        body2 = lt.sign_raw(self.server.launch_url, lt.encode_params(base_launch()), self.key,
                            self.secret, method=HMAC_SHA256, drop=("oauth_signature",))
        body2 += "&oauth_signature=" + lt.quote(sig1, safe="")
        before = counts(self.db)
        self.assertRefusal(self.server.post_form(body2), 401, "signature does not match")
        self.assertNothingWritten(before)

    def test_key_and_secret_with_reserved_characters(self):
        key, secret = self.key_of(4)
        self.assertEqual(key, "lms.example.edu/?a=1&b=+~@")
        for method in (HMAC_SHA1, HMAC_SHA256):
            with self.subTest(method=method):
                self.assertRedirectToPage(self.launch(base_launch(), key, secret, method=method))
        # the secret is used as given: not decoded, not trimmed
        before = counts(self.db)
        resp = self.launch(base_launch(), key, "s3cr&t++=/;~!*'()")
        self.assertRefusal(resp, 401, "signature does not match")
        self.assertNothingWritten(before)

    def test_key_with_percent_sign(self):
        # RFC 5849: the key is encoded once in the base string like any value. oauthlib
        # cannot sign this one (see the consumers above); the stdlib signer can.
        key, secret = self.key_of(5)
        pairs = [(k.encode(), v.encode()) for k, v in base_launch()]
        body = lt.sign_bytes(self.server.launch_url, pairs, key, secret)
        self.assertIn(b"oauth_consumer_key=pct%252Bkey", body)
        self.assertRedirectToPage(self.server.post_form(body))

    def test_outcome_binding_needs_url_and_sourcedid(self):
        before = counts(self.db)
        self.assertRedirectToPage(self.launch(base_launch(
            lis_outcome_service_url="https://lms.example.edu/outcomes")))
        self.assertRedirectToPage(self.launch(base_launch(lis_result_sourcedid="only-sid")))
        self.assertEqual(counts(self.db)["outcome_bindings"], before["outcome_bindings"])

    def test_email_without_at_sign_is_not_stored(self):
        uid = "mail-" + lt.hex_id(4)
        self.assertRedirectToPage(self.launch(base_launch(
            user_id=uid, lis_person_contact_email_primary="not-an-address")))
        self.assertIsNone(lt.user(self.db, self.key, uid)["email"])

    def test_body_with_empty_pairs(self):
        raw = "&&" + lt.encode_params(base_launch()).replace("&", "&&", 1) + "&"
        body = lt.sign_raw(self.server.launch_url, raw, self.key, self.secret)
        self.assertRedirectToPage(self.server.post_form(body + "&"))

    def test_content_type_is_case_insensitive(self):
        body = lt.sign(self.server.launch_url, base_launch(), self.key, self.secret)
        resp = self.server.post_form(body, content_type="Application/X-WWW-Form-URLEncoded")
        self.assertRedirectToPage(resp)

    # ---- Unicode, encodings, repeated parameters

    def test_unicode_names(self):
        name = "Zoë Ñúñez 李雷 🎓"
        title = "Café — 数学 101 🧪"
        params = base_launch(lis_person_name_full=name, context_title=title, context_label="Ω")
        resp = self.launch(params)
        token = self.assertRedirectToPage(resp)
        page = self.page(resp)
        self.assertEqual(lt.page_name(page.text), name)
        self.assertIn(title, page.text)
        self.assertEqual(lt.page_field(page.text, "Course"), title + " (Ω)")
        self.assertEqual(lt.user(self.db, self.key, dict(params)["user_id"])["full_name"], name)
        self.assertEqual(lt.session(self.db, token)["context_title"], title)

    def test_unicode_given_and_family_names_without_full_name(self):
        resp = self.launch(base_launch(lis_person_name_full=None, lis_person_name_given="Łukasz",
                                       lis_person_name_family="Żółć"))
        self.assertRedirectToPage(resp)
        self.assertEqual(lt.page_name(self.page(resp).text), "Łukasz Żółć")

    def test_plus_and_percent20_both_decode_to_space(self):
        url = self.server.launch_url
        for plus in (True, False):
            uid = "plus-%s-%s" % (plus, lt.hex_id(4))
            params = base_launch(user_id=uid, lis_person_name_full="Ana María de la Cruz",
                                 context_title="C++ for beginners & more")
            raw = lt.encode_params(params, plus=plus)
            if plus:
                self.assertIn("Ana+Mar%C3%ADa+de+la+Cruz", raw)
                self.assertIn("C%2B%2B+for", raw)
            else:
                self.assertIn("Ana%20Mar%C3%ADa%20de%20la%20Cruz", raw)
                self.assertIn("C%2B%2B%20for", raw)
            body = lt.sign_raw(url, raw, self.key, self.secret)
            resp = self.server.post_form(body)
            self.assertRedirectToPage(resp)
            page = self.page(resp)
            self.assertEqual(lt.page_name(page.text), "Ana María de la Cruz")
            self.assertIn("C++ for beginners &amp; more", page.text)
            self.assertEqual(lt.user(self.db, self.key, uid)["full_name"], "Ana María de la Cruz")

    def test_plus_signed_literally_is_refused(self):
        # a consumer that signed '+' as a plus sign (not a space) signed other bytes
        params = base_launch(lis_person_name_full="Ana+Maria")
        signed = lt.sign(self.server.launch_url, params, self.key, self.secret)
        # the value was signed as "Ana+Maria" (sent as Ana%2BMaria); now send a '+' instead
        self.assertIn("Ana%2BMaria", signed)
        tampered = signed.replace("Ana%2BMaria", "Ana+Maria")
        before = counts(self.db)
        self.assertRefusal(self.server.post_form(tampered), 401, "signature does not match")
        self.assertNothingWritten(before)

    def test_oauthlib_client_body_with_spaces(self):
        # the Client re-encodes the body itself (spaces as '+')
        resp, body = self.server.launch(base_launch(lis_person_name_full="Jean Paul Sartre"),
                                        self.key, self.secret)
        self.assertIn("Jean+Paul+Sartre", body)
        self.assertRedirectToPage(resp)
        self.assertEqual(lt.page_name(self.page(resp).text), "Jean Paul Sartre")

    def test_repeated_custom_parameter(self):
        params = base_launch() + [("custom_x", "one"), ("custom_x", "two")]
        body = lt.sign(self.server.launch_url, params, self.key, self.secret)
        self.assertEqual([v for k, v in lt.body_pairs(body) if k == "custom_x"], ["one", "two"])
        self.assertRedirectToPage(self.server.post_form(body))

    def test_repeated_parameter_is_signed_over_both_values(self):
        # signed over one value, sent with two: the server must include both
        params = base_launch() + [("custom_x", "one")]
        body = lt.sign(self.server.launch_url, params, self.key, self.secret)
        before = counts(self.db)
        self.assertRefusal(self.server.post_form(body + "&custom_x=two"), 401,
                           "signature does not match")
        self.assertNothingWritten(before)
        # and the order of two values of one name does not matter to the signature
        params = base_launch() + [("custom_y", "b"), ("custom_y", "a")]
        self.assertRedirectToPage(self.launch(params))

    def test_empty_and_valueless_parameters(self):
        raw = lt.encode_params(base_launch(context_label="")) + "&custom_flag&custom_empty="
        body = lt.sign_raw(self.server.launch_url, raw, self.key, self.secret)
        self.assertRedirectToPage(self.server.post_form(body))

    def test_percent_encoded_reserved_characters(self):
        title = "a=b&c=d;e/f?g#h%i*j'k(l)m!n~o"
        resp = self.launch(base_launch(context_title=title))
        self.assertRedirectToPage(resp)
        self.assertEqual(lt.page_field(self.page(resp).text, "Course"), title)

    def test_launch_without_context(self):
        before = counts(self.db)
        resp = self.launch(base_launch(context_id=None, context_title=None))
        self.assertRedirectToPage(resp)
        after = counts(self.db)
        self.assertOneMore(before, after, ("nonces", "users", "resource_links", "sessions"))
        page = self.page(resp)
        self.assertIn("launched outside a course", page.text)

    def test_content_type_with_charset(self):
        body = lt.sign(self.server.launch_url, base_launch(), self.key, self.secret)
        resp = self.server.post_form(body, content_type=lt.FORM + "; charset=UTF-8")
        self.assertRedirectToPage(resp)

    # ---- HTML escaping

    def test_names_and_titles_are_escaped(self):
        name = "<script>alert(\"x\")</script> O'Brien & Co"
        title = "\"><img src=x onerror=alert(1)> 'quoted'"
        label = "<b>L</b>"
        resp = self.launch(base_launch(lis_person_name_full=name, context_title=title,
                                       context_label=label, custom_badge_mode=None))
        self.assertRedirectToPage(resp)
        page = self.page(resp)
        text = page.text
        self.assertNotIn("<script>", text)
        self.assertNotIn("<img", text)
        self.assertNotIn("<b>L", text)
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; O&#39;Brien &amp; Co",
                      text)
        self.assertEqual(lt.page_name(text), name)
        self.assertEqual(lt.page_field(text, "Course"), "%s (%s)" % (title, label))
        # the <title> too
        self.assertIn("<title>Badges \u2014 &quot;&gt;&lt;img src=x onerror=alert(1)&gt; "
                      "&#39;quoted&#39;</title>", text)

    def test_return_url_is_escaped_in_the_link(self):
        ret = "https://lms.example.edu/return?a=1&b=\"><script>x</script>"
        resp = self.launch(base_launch(launch_presentation_return_url=ret))
        self.assertRedirectToPage(resp)
        text = self.page(resp).text
        self.assertNotIn("<script>", text)
        self.assertIn('href="https://lms.example.edu/return?a=1&amp;b=&quot;&gt;&lt;script&gt;'
                      'x&lt;/script&gt;"', text)

    def test_keep_alive_connection(self):
        # several launches and pages on one persistent connection
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        try:
            for i in range(5):
                body = lt.sign(self.server.launch_url,
                               base_launch(lis_person_name_full="Keep Alive %d" % i),
                               self.key, self.secret)
                conn.request("POST", "/lti/launch", body=body,
                             headers={"Content-Type": lt.FORM})
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 303)
                loc = r.getheader("Location")
                conn.request("GET", self.server.page_path(loc))
                r = conn.getresponse()
                page = r.read().decode()
                self.assertEqual(r.status, 200)
                self.assertEqual(lt.page_name(page), "Keep Alive %d" % i)
        finally:
            conn.close()

    # ---- concurrency

    def test_parallel_launches_all_recorded(self):
        n = 24
        results = [None] * n
        uids = ["par-%d-%s" % (i, lt.hex_id(3)) for i in range(n)]
        bodies = [lt.sign(self.server.launch_url, base_launch(user_id=u), self.key, self.secret)
                  for u in uids]
        before = counts(self.db)
        barrier = threading.Barrier(n)

        def go(i):
            barrier.wait()
            results[i] = self.server.post_form(bodies[i])

        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual([r.status for r in results], [303] * n)
        after = counts(self.db)
        for t in ("nonces", "users", "sessions", "contexts", "enrollments"):
            self.assertEqual(after[t], before[t] + n, t)
        tokens = {lt.LOCATION_RE.match(r.header("Location")).group("token") for r in results}
        self.assertEqual(len(tokens), n, "every launch gets its own session token")


class ConsumerListAfterLaunches(lt.ServerTestCase):
    consumers = (("Canvas", None, None),)

    def test_list_json_shows_lms_and_users(self):
        for _ in range(2):
            self.assertRedirectToPage(self.launch(canvas_launch()))
        p = lt.run_cli("consumer", "list", "--json", "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        data = json.loads(p.stdout)
        self.assertEqual(len(data), 1)
        self.assertEqual(data[0]["key"], self.key)
        self.assertEqual(data[0]["lms"], "canvas")
        self.assertEqual(data[0]["users"], 2)
        self.assertNotIn(self.secret, p.stdout)


if __name__ == "__main__":
    lt.main()
