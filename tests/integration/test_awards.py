#!/usr/bin/python3
"""Awards end to end through the real server: the Open edX proposal's five use
cases and the mode fallback in every combination (signed launch -> grade ->
award -> assertion), every hosted Open Badges 2.0 document checked against the
specification's terms (test_ob_context.py checks them against its JSON-LD
context), recipient hashes recomputed, baked PNG and
SVG images read back, revocation (410 and the list), and a server killed with
SIGKILL while issuing, then restarted: nothing lost, nothing twice."""
import collections
import hashlib
import json
import os
import re
import signal
import struct
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, hex_id, png_bytes, run_cli  # noqa: E402

OB_CONTEXT = "https://w3id.org/openbadges/v2"
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
WAIT = float(os.environ.get("LTIBADGES_AWARD_WAIT", "20"))

# The terms Open Badges 2.0 defines (its classes, properties and prefixes), as the
# specification lists them: what the documents we serve may use. test_ob_context.py checks
# that they are exactly those of the published JSON-LD context whenever that file is at hand,
# so the two cannot drift apart.
OB_V2_TERMS = frozenset("""
    AlignmentObject Assertion BadgeClass Criteria CryptographicKey Endorsement Evidence
    Extension FrameValidation HostedBadge IdentityObject Image Issuer Profile RevocationList
    SignedBadge TypeValidation VerificationObject
    alignment allowedOrigins audience author badge caption claim created creator cred criteria
    dc description email endorsement endorsementComment evidence expires extensions genre
    hashed hosted id identity image issuedOn issuer name narrative obi owner publicKey
    publicKeyPem recipient related revocationList revocationReason revoked revokedAssertions
    salt schema sec signed startsWith tags targetCode targetDescription targetFramework
    targetName targetUrl telephone type uid url validatesType validation validationFrame
    validationSchema verification verificationProperty verify version xsd
""".split())


def png_chunks(data):
    """Decodes a PNG's chunk list, checking signature and every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    i, out = 8, []
    while i < len(data):
        n, = struct.unpack(">I", data[i:i + 4])
        t = data[i + 4:i + 8]
        d = data[i + 8:i + 8 + n]
        crc, = struct.unpack(">I", data[i + 8 + n:i + 12 + n])
        assert crc == zlib.crc32(t + d) & 0xffffffff, "bad CRC in %r" % t
        out.append((t, d))
        i += 12 + n
    assert out[-1][0] == b"IEND"
    return out


def png_pixels(data):
    """The RGBA pixels of an 8-bit RGBA non-interlaced PNG (what the server writes)."""
    ch = png_chunks(data)
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ch[0][1])
    assert (depth, ctype, interlace) == (8, 6, 0)
    raw = zlib.decompress(b"".join(d for t, d in ch if t == b"IDAT"))
    stride, rows, prev = w * 4, [], bytearray(w * 4)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - 4] if x >= 4 else 0
            b = prev[x]
            c = prev[x - 4] if x >= 4 else 0
            if f == 1:
                line[x] = (line[x] + a) & 0xff
            elif f == 2:
                line[x] = (line[x] + b) & 0xff
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append(bytes(line))
        prev = line
    return w, h, b"".join(rows)


def itxt_openbadges(data):
    """The text of every iTXt chunk with keyword openbadges."""
    out = []
    for t, d in png_chunks(data):
        if t != b"iTXt":
            continue
        key, rest = d.split(b"\0", 1)
        if key != b"openbadges":
            continue
        comp_flag = rest[0]
        lang, rest = rest[2:].split(b"\0", 1)
        tkey, text = rest.split(b"\0", 1)
        out.append(zlib.decompress(text).decode() if comp_flag else text.decode())
    return out


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
       '<circle cx="32" cy="32" r="30" fill="#0a0"/></svg>')


class AwardsTestCase(lt.ServerTestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.png_path = os.path.join(cls.tmp, "badge.png")
        with open(cls.png_path, "wb") as f:
            f.write(png_bytes(8, 8))
        cls.svg_path = os.path.join(cls.tmp, "badge.svg")
        with open(cls.svg_path, "w") as f:
            f.write(SVG)
        cls.terms = set(OB_V2_TERMS)

    # helpers

    def cli(self, *args, ok=True):
        p = run_cli(*args, "--db", self.db)
        if ok:
            self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p

    def badge(self, name, rule, context=None, mode=None, image=None, *extra):
        args = ["badge", "create", "--consumer", self.key, "--name", name,
                "--description", "About " + name, "--image", image or self.png_path,
                "--rule", rule]
        if context:
            args += ["--context", context]
        if mode:
            args += ["--mode", mode]
        p = self.cli(*(args + list(extra)))
        m = re.match(r"^slug=(\S+)$", p.stdout.strip())
        self.assertIsNotNone(m, p.stdout)
        return m.group(1)

    def launch(self, user, context, mode=None, email=True, roles="Learner", title=None):
        params = base_launch(user_id=user, context_id=context, roles=roles,
                             context_title=title or ("Course " + context),
                             lis_person_contact_email_primary=(user + "@example.edu") if email
                             else None,
                             custom_badge_mode=mode)
        resp, _ = self.server.launch(params, self.key, self.secret)
        self.assertRedirectToPage(resp)

    def grade(self, user, context, score, link="final"):
        self.cli("grade", "record", "--consumer", self.key, "--context", context, "--user",
                 user, "--resource-link", link, "--score", str(score))

    def awards(self, **filters):
        args = ["award", "list", "--json"]
        for k, v in filters.items():
            args += ["--" + k, v]
        return json.loads(self.cli(*args).stdout)

    def user_awards(self, user):
        return [a for a in self.awards() if a["user"] == user]

    def wait_issued(self, user, n):
        deadline = time.monotonic() + WAIT
        while True:
            got = self.user_awards(user)
            if len(got) >= n and all(a["state"] in ("issued", "needs_email", "failed", "revoked")
                                     for a in got):
                return got
            if time.monotonic() > deadline:
                self.fail("awards of %s not issued in time: %r" % (user, got))
            time.sleep(0.1)

    def get_json(self, url, accept="application/ld+json"):
        path = url[len(self.server.public_url):]
        resp = self.server.get(path, headers={"Accept": accept})
        return resp, (json.loads(resp.body) if resp.body else None)

    # Open Badges 2.0 checks, from the specification's text

    def check_terms(self, doc, where):
        for k, v in doc.items():
            if k == "@context":
                continue
            self.assertIn(k, self.terms, "%s: property %r is not in the OB 2.0 context" % (where, k))
            if isinstance(v, dict):
                self.check_terms(v, where + "." + k)
            if isinstance(v, list):
                for i, item in enumerate(v):
                    if isinstance(item, dict):
                        self.check_terms(item, "%s.%s[%d]" % (where, k, i))

    def check_doc(self, url, type_, status=200):
        resp, doc = self.get_json(url)
        self.assertEqual(resp.status, status, (url, resp))
        self.assertEqual(resp.header("Content-Type"), "application/ld+json")
        self.assertEqual(resp.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(doc["@context"], OB_CONTEXT)
        self.assertEqual(doc["type"], type_)
        self.assertEqual(doc["id"], url, "id must be the URL the document is served at")
        self.check_terms(doc, type_)
        plain, doc2 = self.get_json(url, accept="application/json")
        self.assertEqual(plain.header("Content-Type"), "application/json")
        self.assertEqual(doc2, doc)
        return doc

    def check_issuer(self, url):
        doc = self.check_doc(url, "Issuer")
        for prop in ("name", "url", "email"):
            self.assertIsInstance(doc.get(prop), str, prop)
        self.assertRegex(doc["url"], r"^https?://")
        self.assertRegex(doc["email"], r"^[^@\s]+@[^@\s]+$")
        self.assertEqual(doc["revocationList"], self.server.public_url + "/ob/v2/revocations")
        return doc

    def check_badge_class(self, url):
        doc = self.check_doc(url, "BadgeClass")
        self.assertIsInstance(doc["name"], str)
        self.assertIsInstance(doc["description"], str)
        self.assertRegex(doc["image"], r"^https?://")
        crit = doc["criteria"]
        self.assertTrue(isinstance(crit, str) or ("id" in crit or "narrative" in crit), crit)
        self.check_issuer(doc["issuer"])
        img = self.server.get(doc["image"][len(self.server.public_url):])
        self.assertEqual(img.status, 200)
        self.assertIn(img.header("Content-Type"), ("image/png", "image/svg+xml"))
        for t in doc.get("tags", []):
            self.assertIsInstance(t, str)
        return doc

    def check_assertion(self, award):
        url = award["assertion_url"]
        self.assertTrue(url.startswith(self.server.public_url + "/ob/v2/assertions/"), url)
        doc = self.check_doc(url, "Assertion")
        r = doc["recipient"]
        self.assertEqual(r["type"], "email")
        self.assertIs(r["hashed"], True)
        self.assertIsInstance(r["salt"], str)
        self.assertGreaterEqual(len(r["salt"]), 16)
        want = "sha256$" + hashlib.sha256((award["recipient"].lower() + r["salt"]).encode()).hexdigest()
        self.assertEqual(r["identity"], want, "recipient hash recomputed from email and salt")
        self.assertEqual(doc["verification"], {"type": "hosted"})
        self.assertRegex(doc["issuedOn"], ISO_RE)
        self.assertEqual(doc["badge"], self.server.public_url + "/ob/v2/badges/" + award["badge"])
        self.check_badge_class(doc["badge"])
        ev = doc["evidence"]
        self.assertIsInstance(ev, list)
        self.assertTrue(ev and all("narrative" in e or "id" in e for e in ev), ev)
        return doc

    def check_baked(self, award):
        url = award["assertion_url"]
        img = self.server.get(url[len(self.server.public_url):] + "/image")
        self.assertEqual(img.status, 200, img)
        if img.header("Content-Type") == "image/png":
            self.assertEqual(itxt_openbadges(img.body), [url])
            return png_pixels(img.body)
        self.assertEqual(img.header("Content-Type"), "image/svg+xml")
        root = ET.fromstring(img.body)
        found = root.findall("{http://openbadges.org}assertion")
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0].get("verify"), url)
        self.assertIs(list(root)[0], found[0], "the assertion element comes first")
        return None


class UseCases(AwardsTestCase):
    """The five use cases of ../shared/seeds/000_571e62eb8fdee2be.txt."""

    def test_1_course_badge_with_mode(self):
        # an existing backend id is a remote platform's (test_badgr*): hosted makes its own
        ctx = "course-v1:edX+UC1+" + hex_id(3)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        p = self.cli("badge", "create", "--consumer", self.key, "--name", "UC1 verified",
                     "--description", "d", "--image", self.png_path, "--rule", "completion",
                     "--context", ctx, "--mode", "verified", "--backend-id",
                     "existing-entity-123", ok=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--backend-id needs a remote backend", p.stderr)
        slug = self.badge("UC1 verified", "completion", ctx, "verified")
        self.launch("uc1-a", ctx, mode="verified")
        self.grade("uc1-a", ctx, 0.9)
        [a] = self.wait_issued("uc1-a", 1)
        self.assertEqual((a["badge"], a["state"], a["reason"]), (slug, "issued", "completion"))
        shown = json.loads(self.cli("badge", "show", slug, "--json").stdout)
        self.assertEqual(shown["backend"], "hosted")
        self.check_assertion(a)
        pixels = self.check_baked(a)
        self.assertEqual(pixels[:2], (8, 8))
        self.assertEqual(pixels[2][:4], bytes((200, 30, 30, 255)), "baking keeps the pixels")

    def test_3_badge_class_created_at_backend_on_first_award(self):
        ctx = "uc3-" + hex_id(3)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("UC3", "completion", ctx)
        self.assertIsNone(json.loads(self.cli("badge", "show", slug, "--json").stdout)["backend_id"])
        self.launch("uc3-a", ctx, mode="honor")
        self.grade("uc3-a", ctx, 1.0)
        [a] = self.wait_issued("uc3-a", 1)
        self.assertEqual(a["badge"], slug)
        shown = json.loads(self.cli("badge", "show", slug, "--json").stdout)
        self.assertEqual(shown["backend_id"], self.server.public_url + "/ob/v2/badges/" + slug)
        self.assertIsNone(shown["update_due_at"])
        self.check_assertion(a)

    def test_3b_edits_of_a_created_badge_class_are_sent(self):
        """An edit of a BadgeClass that exists at its backend is due there (schema 10's
        trigger) until the worker sent it (the built-in issuer has nothing to send: its
        documents are read from the record); a refusal shows in `badge show`."""
        ctx = "uc3b-" + hex_id(3)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("UC3b", "completion", ctx)
        self.launch("uc3b-a", ctx, mode="honor")
        self.grade("uc3b-a", ctx, 1.0)
        self.wait_issued("uc3b-a", 1)
        self.cli("badge", "set", slug, "--image", self.svg_path)
        deadline = time.monotonic() + WAIT
        while json.loads(self.cli("badge", "show", slug, "--json").stdout)["update_due_at"]:
            self.assertLess(time.monotonic(), deadline, "the edit was never sent")
            time.sleep(0.1)
        shown = json.loads(self.cli("badge", "show", slug, "--json").stdout)
        self.assertIsNone(shown["update_error"])
        self.assertNotIn("update:", self.cli("badge", "show", slug).stdout)
        # what a platform's refusal leaves behind, as the worker records it
        lt.setup_sql(self.db, "UPDATE badge_classes SET sync_error = 'image: Invalid PNG' "
                     "WHERE slug = ?", slug)
        self.assertEqual(json.loads(self.cli("badge", "show", slug, "--json").stdout)[
            "update_error"], "image: Invalid PNG")
        self.assertIn("update:      refused by hosted (edit again to resend): image: Invalid PNG\n",
                      self.cli("badge", "show", slug).stdout)

    def test_4_enabled_course_without_badge_class_gets_one(self):
        ctx = "uc4-" + hex_id(3)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        self.launch("uc4-a", ctx, mode="honor", title="Intro to Biology")
        self.grade("uc4-a", ctx, 0.8)
        [a] = self.wait_issued("uc4-a", 1)
        shown = json.loads(self.cli("badge", "show", a["badge"], "--json").stdout)
        self.assertTrue(a["badge"].startswith("intro-to-biology-honor"), a["badge"])
        self.assertEqual(shown["description"], 'Completed the course "Intro to Biology" (honor)')
        self.assertEqual((shown["context"], shown["mode"]), (ctx, "honor"))
        self.assertEqual(shown["image_type"], "image/svg+xml")
        self.assertEqual(shown["rule"]["kind"], "completion")
        self.assertIsNotNone(shown["backend_id"])
        self.check_assertion(a)
        self.check_baked(a)
        # a second learner of the same mode gets the same BadgeClass, no new one
        self.launch("uc4-b", ctx, mode="honor", title="Intro to Biology")
        self.grade("uc4-b", ctx, 0.9)
        [b] = self.wait_issued("uc4-b", 1)
        self.assertEqual(b["badge"], a["badge"])

    def test_instructors_and_disabled_courses_earn_nothing(self):
        ctx = "off-" + hex_id(3)
        self.badge("Off enrolled", "enrollment", ctx)
        self.launch("off-a", ctx)                       # badges not enabled for ctx
        self.grade("off-a", ctx, 1.0)
        self.launch("off-t", ctx, roles="Instructor")   # staff enroll in nothing
        time.sleep(0.3)
        self.assertEqual(self.user_awards("off-a"), [], "nothing while the course's badges are off")
        # turned on: the learner who already met the rule gets it then, the instructor never
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        self.launch("off-t", ctx, roles="Instructor")
        [a] = self.user_awards("off-a")
        self.assertEqual((a["reason"], a["context"]), ("enrollment", ctx))
        self.assertEqual(self.user_awards("off-t"), [])

    def test_score_rule_threshold_and_link(self):
        ctx = "score-" + hex_id(3)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        self.cli("context", "pass-mark", "--consumer", self.key, "--context", ctx, "--score",
                 "0.95", "--resource-link", "exam")
        quiz = self.badge("Quiz ace", "score:0.8:quiz1", ctx)
        self.launch("sc-a", ctx)
        self.grade("sc-a", ctx, 0.79, link="quiz1")
        self.grade("sc-a", ctx, 0.99, link="quiz2")      # another link
        time.sleep(0.2)
        self.assertEqual(self.user_awards("sc-a"), [], "no completion either: not the exam link")
        self.grade("sc-a", ctx, 0.8, link="quiz1")
        [a] = self.wait_issued("sc-a", 1)
        self.assertEqual((a["badge"], a["reason"]), (quiz, "score"))

    def test_missing_email_waits_until_given(self):
        ctx = "mail-" + hex_id(3)
        slug = self.badge("Mail wait", "enrollment", ctx)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        self.launch("mail-a", ctx, email=False)
        time.sleep(0.3)
        [a] = self.user_awards("mail-a")
        self.assertEqual((a["badge"], a["state"]), (slug, "needs_email"))
        self.launch("mail-a", ctx, email=True)
        [a] = self.wait_issued("mail-a", 1)
        self.assertEqual(a["state"], "issued")
        self.assertEqual(a["recipient"], "mail-a@example.edu")

    def test_manual_grant_revoke_and_retry(self):
        ctx = "man-" + hex_id(3)
        slug = self.badge("Helper", "manual", ctx, None, self.svg_path)
        self.launch("man-a", ctx)
        p = self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", "man-a",
                     "--narrative", "Helped everyone")
        self.assertIn("queued", p.stdout)
        again = self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user",
                         "man-a")
        self.assertIn("already has", again.stdout)
        [a] = self.wait_issued("man-a", 1)
        self.assertEqual(a["narrative"], "Helped everyone")
        self.check_assertion(a)
        self.check_baked(a)
        self.assertEqual(self.cli("award", "retry", str(a["id"]), ok=False).returncode, 1)
        self.cli("award", "revoke", str(a["id"]), "--reason", "Granted by mistake")
        resp, doc = self.get_json(a["assertion_url"])
        self.assertEqual(resp.status, 410)
        self.assertEqual(doc["id"], a["assertion_url"])
        self.assertIs(doc["revoked"], True)
        self.assertEqual(doc["revocationReason"], "Granted by mistake")
        self.check_terms(doc, "revoked")
        rl = self.check_doc(self.server.public_url + "/ob/v2/revocations", "RevocationList")
        self.assertIn({"id": a["assertion_url"], "revocationReason": "Granted by mistake"},
                      rl["revokedAssertions"])
        self.assertEqual(self.cli("award", "revoke", str(a["id"]), "--reason", "x",
                                  ok=False).returncode, 1)
        img = self.server.get(a["assertion_url"][len(self.server.public_url):] + "/image")
        self.assertEqual(img.status, 404)

    def test_unknown_documents_and_bad_ids(self):
        for path in ("/ob/v2/badges/nope", "/ob/v2/assertions/0123", "/ob/v2/badges/a%2Fb",
                     "/ob/v2/badges/../issuer", "/ob/v2/issuer/", "/ob/v2/", "/ob/v2/x/y/z/w"):
            self.assertEqual(self.server.get(path).status, 404, path)
        self.assertEqual(self.server.request("POST", "/ob/v2/issuer").status, 405)
        self.check_issuer(self.server.public_url + "/ob/v2/issuer")


class ConsumerWide(AwardsTestCase):
    """Use cases 2 and 5: BadgeClasses tied to no course apply to every learner of the
    consumer, so they get a server of their own."""

    def test_2_badge_without_course_or_mode_for_consumer_wide_rules(self):
        slug = self.badge("UC2 anywhere", "enrollment")
        shown = json.loads(self.cli("badge", "show", slug, "--json").stdout)
        self.assertIsNone(shown["context"])
        self.assertIsNone(shown["mode"])
        ctx = "uc2-" + hex_id(3)
        self.launch("uc2-a", ctx)
        [a] = self.wait_issued("uc2-a", 1)
        self.assertEqual((a["badge"], a["reason"]), (slug, "enrollment"))
        self.check_assertion(a)

    def test_5_enrollment_group_and_count_rules(self):
        c1, c2, c3 = ("uc5-%s-%d" % (hex_id(2), i) for i in range(3))
        for c in (c1, c2, c3):
            self.cli("context", "enable", "--consumer", self.key, "--context", c)
        group = "track-" + hex_id(2)
        self.cli("group", "add", group, "--consumer", self.key, "--context", c1, c2)
        enrol = self.badge("UC5 enrolled " + c1, "enrollment", c1)
        grp = self.badge("UC5 track", "group:" + group)
        cnt = self.badge("UC5 three courses", "count:3")
        user = "uc5-" + hex_id(3)
        self.launch(user, c1)
        got = {a["badge"] for a in self.wait_issued(user, 1)}
        self.assertIn(enrol, got)
        self.grade(user, c1, 0.9)
        time.sleep(0.2)
        self.assertNotIn(grp, {a["badge"] for a in self.user_awards(user)})
        self.grade(user, c2, 0.9)
        got = {a["badge"] for a in self.user_awards(user)}
        self.assertIn(grp, got)
        self.assertNotIn(cnt, got, "two completions are not three")
        self.grade(user, c3, 0.6)
        awards = self.wait_issued(user, 1)
        self.assertIn(cnt, {a["badge"] for a in awards})
        # relaunches and repeated grades add nothing
        before = len(self.user_awards(user))
        self.launch(user, c1)
        self.grade(user, c2, 1.0)
        self.assertEqual(len(self.user_awards(user)), before)


class ModeFallback(AwardsTestCase):
    """Rule 1 and 4 in every combination of existing BadgeClasses and learner modes."""

    def run_case(self, existing, learner_mode):
        ctx = "mf-" + hex_id(4)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        slugs = {}
        for mode in existing:
            slugs[mode] = self.badge("MF %s %s" % (ctx, mode), "completion", ctx, mode)
        user = "mf-u-" + hex_id(3)
        self.launch(user, ctx, mode=learner_mode)
        self.grade(user, ctx, 0.9)
        [a] = self.wait_issued(user, 1)
        shown = json.loads(self.cli("badge", "show", a["badge"], "--json").stdout)
        return slugs, a, shown

    def test_every_combination(self):
        for existing in ((), (None,), ("honor",), ("honor", None), ("honor", "verified")):
            for learner in (None, "honor", "verified"):
                with self.subTest(existing=existing, learner=learner):
                    slugs, a, shown = self.run_case(existing, learner)
                    if learner in slugs:
                        want = slugs[learner]
                    elif None in slugs:
                        want = slugs[None]
                    else:
                        want = None  # created for exactly (course, learner's mode)
                    if want:
                        self.assertEqual(a["badge"], want)
                    else:
                        self.assertNotIn(a["badge"], slugs.values(), "never another mode's badge")
                        self.assertEqual(shown["mode"], learner)
                        self.assertEqual(shown["rule"]["kind"], "completion")

    def test_one_completion_badge_per_course_and_mode(self):
        ctx = "one-" + hex_id(3)
        self.badge("One", "completion", ctx, "honor")
        p = self.cli("badge", "create", "--consumer", self.key, "--context", ctx, "--mode",
                     "honor", "--name", "Two", "--description", "d", "--image", self.png_path,
                     "--rule", "completion", ok=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already has a completion badge", p.stderr)
        # any number of other badges
        self.badge("Extra", "manual", ctx, "honor")


class BadInput(AwardsTestCase):
    def test_bad_images_and_rules_change_nothing(self):
        # (an SVG with scripts or outside links is stored sanitized: test_svg.py)
        bad = {
            "xxe.svg": '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                       '<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
            "html.svg": "<html><body>not svg</body></html>",
            "trunc.png": png_bytes(4, 4)[:40],
            "text.png": "hello",
            "big.png": png_bytes(4, 4) + b"\0" * (256 * 1024),
        }
        before = lt.counts(self.db)
        nbadges = len(json.loads(self.cli("badge", "list", "--json").stdout))
        for name, content in bad.items():
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
            p = self.cli("badge", "create", "--consumer", self.key, "--name", "B",
                         "--description", "d", "--image", path, "--rule", "manual", ok=False)
            self.assertEqual(p.returncode, 1, (name, p.stdout, p.stderr))
            self.assertTrue(p.stderr.startswith("ltibadges: "), p.stderr)
        for rule in ("score", "score:1.5", "score:x", "count:0", "group:nosuch", "bogus",
                     "manual:1", "completion"):
            p = self.cli("badge", "create", "--consumer", self.key, "--name", "B",
                         "--description", "d", "--image", self.png_path, "--rule", rule, ok=False)
            self.assertIn(p.returncode, (1, 2), (rule, p.stderr))
        for score in ("1.01", "-0.1", "abc", ""):
            p = self.cli("grade", "record", "--consumer", self.key, "--context", "c", "--user",
                         "u", "--resource-link", "r", "--score", score, ok=False)
            self.assertEqual(p.returncode, 2, (score, p.stderr))
        p = self.cli("badge", "create", "--consumer", "nokey", "--name", "B", "--description",
                     "d", "--image", self.png_path, "--rule", "manual", ok=False)
        self.assertIn("no consumer", p.stderr)
        self.assertEqual(lt.counts(self.db), before)
        self.assertEqual(len(json.loads(self.cli("badge", "list", "--json").stdout)), nbadges)


class KillWhileIssuing(unittest.TestCase):
    """SIGKILL in the middle of issuing a few hundred awards, then a restart: every award
    is issued exactly once (one assertion, one id), none is lost."""

    def test_sigkill_and_restart(self):
        tmp = tempfile.mkdtemp(prefix="ltibadges-kill-")
        db = os.path.join(tmp, "ltibadges.db")
        key, secret = lt.add_consumer(db, "Kill LMS")
        png = os.path.join(tmp, "b.png")
        with open(png, "wb") as f:
            f.write(png_bytes())
        ctx = "kill-course"
        run = lambda *a: run_cli(*a, "--db", db)  # noqa: E731
        self.assertEqual(run("context", "enable", "--consumer", key, "--context", ctx).returncode, 0)
        slugs = []
        for i in range(4):
            p = run("badge", "create", "--consumer", key, "--context", ctx, "--name", "K%d" % i,
                    "--description", "d", "--image", png, "--rule", "enrollment")
            self.assertEqual(p.returncode, 0, p.stderr)
            slugs.append(p.stdout.strip().split("=", 1)[1])
        # The killed server's claim (up to a batch of awards, issuing) is left to its lease: the
        # restarted one takes it back at once on sqlite (one process owns the database), and
        # after the lease on PostgreSQL (another live instance may hold it), the shortest here
        cfg = os.path.join(tmp, "lease.ini")
        with open(cfg, "w") as f:
            f.write("[awards]\nlease = 5\n")
        # 150 learners x 4 badges = 600 awards, queued while no server runs
        server = lt.Server(tmp, db=db, config=cfg).start()
        try:
            for i in range(150):
                params = base_launch(user_id="k-%03d" % i, context_id=ctx, roles="Learner",
                                     lis_person_contact_email_primary="k%03d@example.edu" % i)
                resp, _ = server.launch(params, key, secret)
                self.assertEqual(resp.status, 303)
            deadline = time.monotonic() + WAIT
            while True:
                if lt.awards(db, "--state", "issued") or time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=10)
            server._close()
            states = collections.Counter(a["state"] for a in lt.awards(db))
            self.assertEqual(sum(states.values()), 600, states)
            server = lt.Server(tmp, db=db, config=cfg).start()
            deadline = time.monotonic() + WAIT
            while True:
                got = lt.awards(db)
                states = collections.Counter(a["state"] for a in got)
                if states == {"issued": 600} or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(states, {"issued": 600})
            dup = collections.Counter((a["user"], a["badge"]) for a in got)
            self.assertEqual([k for k, n in dup.items() if n > 1], [])
            self.assertEqual(len({a["assertion_id"] for a in got}), 600)
        finally:
            rc, _ = server.stop()
            self.assertEqual(rc, 0, server.stderr()[-2000:])

if __name__ == "__main__":
    unittest.main()
