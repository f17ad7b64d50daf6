#!/usr/bin/python3
"""The instructor's BadgeClass editor over HTTP, against the real server:
create with a PNG, an SVG (sanitized) or the default image and every field of
the model; edit keeping the image; the rule's dry run, and saving awarding
exactly the learners it listed; archive, restore, delete only while never
awarded; bad images, bad fields, other courses' badges, learners' tokens and
missing CSRF tokens refused with nothing changed."""
import json
import os
import re
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import png_bytes  # noqa: E402
from test_ui import WAIT, PagesTestCase, form_fields, plain  # noqa: E402

EVIL_SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
            b'xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64" '
            b'onload="alert(1)"><script>alert(2)</script>'
            b'<a xlink:href="javascript:alert(3)"><circle cx="32" cy="32" r="30" fill="#c00"/></a>'
            b'<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>'
            b'<image href="https://evil.example/x.png" width="1" height="1"/></svg>')


def dry_run(page_text):
    """The text of the dry run's section, or ''."""
    m = re.search(r'<section aria-labelledby="dry-h"[^>]*>(.*?)</section>', page_text, re.S)
    return plain(m.group(1)) if m else ""


def multipart(fields, files=None):
    """A multipart/form-data body: fields name -> str, files name -> (filename, bytes, type)."""
    boundary = "lb" + uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        if value is None:
            continue
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                    % (boundary, name)).encode() + value.encode() + b"\r\n")
    for name, (filename, data, ctype) in (files or {}).items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: %s\r\n\r\n" % (boundary, name, filename, ctype)).encode()
                   + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


class Editor(PagesTestCase):
    def setUp(self):
        self.ctx = "ed-" + lt.hex_id(4)
        self.token, self.page = self.open_page("prof-" + self.ctx, self.ctx, roles="Instructor",
                                               resource_link_id="quiz",
                                               resource_link_title="Quiz 1")

    def editor(self, slug=None, token=None):
        path = "/badges/edit?s=%s" % (token or self.token)
        if slug:
            path += "&b=" + slug
        page = self.server.get(path)
        return page

    def save(self, fields, files=None, token=None, page=None, **over):
        page = page or self.editor()
        self.assertEqual(page.status, 200, page)
        base = form_fields(page.text, "/badges/save")
        # as a browser sends it: no empty file field, checkboxes only when ticked
        for k in ("image", "default_image", "passback", "revoke"):
            base.pop(k, None)
        base.update({"name": "Quiz master", "description": "Scored well on the quiz",
                     "kind": "score", "threshold": "0.8", "link": "quiz", "do": "save"})
        base.update(fields)
        for k, v in over.items():
            base[k] = v
        body, ctype = multipart(base, files)
        return self.server.request("POST", "/badges/save", body=body,
                                   headers={"Content-Type": ctype})

    def badges(self):
        """Every BadgeClass, once the award worker is done (it writes to them as it issues:
        a before and an after read apart from it would differ by what it did meanwhile)."""
        self.wait_outbox_settled()
        return {b["slug"]: b for b in json.loads(self.cli("badge", "list", "--json").stdout)}

    def wait_outbox_settled(self):
        deadline = time.monotonic() + WAIT
        while True:
            busy = lt.query(self.db, "SELECT id, state FROM awards WHERE state IN "
                                     "('queued', 'issuing')")
            if not busy:
                return
            self.assertLess(time.monotonic(), deadline, "the worker did not settle: %r" % busy)
            time.sleep(0.05)

    def awards(self, slug):
        return sorted(a["user"] for a in json.loads(self.cli("award", "list", "--json").stdout)
                      if a["badge"] == slug)

    def created_slug(self, resp):
        self.assertEqual(resp.status, 303, resp)
        loc = resp.header("Location")
        self.assertIn("m=created", loc)
        slug = re.search(r"[?&]b=([a-z0-9-]+)", loc).group(1)
        self.assertEqual(self.badges()[slug]["context"], self.ctx)
        return slug

    def test_create_with_png_and_every_field(self):
        resp = self.save({"criteria": "Score 0.8 on Quiz 1", "criteria_url": "https://ex.edu/c",
                          "mode": "verified", "expires_days": "365",
                          "tags": "math, quiz ,  algebra",
                          "alignments": "Algebra | https://ex.edu/std/alg | Solving | CCSS | A1\n"
                                        "Logic|https://ex.edu/std/log",
                          "issuing_component": "quizzes", "passback": "1",
                          "passback_score": "0.9", "revoke": "1"},
                         files={"image": ("b.png", png_bytes(16, 16), "image/png")})
        slug = self.created_slug(resp)
        b = self.badges()[slug]
        self.assertEqual((b["name"], b["image_type"], b["mode"], b["expires_days"]),
                         ("Quiz master", "image/png", "verified", 365))
        self.assertEqual(b["tags"], ["math", "quiz", "algebra"])
        self.assertEqual([a["targetName"] for a in b["alignments"]], ["Algebra", "Logic"])
        self.assertEqual(b["alignments"][0]["targetCode"], "A1")
        self.assertEqual(b["rule"], {"kind": "score", "threshold": 0.8, "resource_link": "quiz"})
        # the hosted BadgeClass carries them, and the image is the uploaded PNG
        doc = json.loads(self.server.get("/ob/v2/badges/%s" % slug).body)
        self.assertEqual(doc["tags"][:3], ["math", "quiz", "algebra"])
        self.assertEqual(doc["criteria"]["narrative"], "Score 0.8 on Quiz 1")
        self.assertEqual(doc["criteria"]["id"], "https://ex.edu/c")
        img = self.server.get("/ob/v2/badges/%s/image" % slug)
        self.assertEqual(img.body, png_bytes(16, 16))
        # the editor shows the stored values back
        page = self.editor(slug)
        self.assertEqual(page.status, 200, page)
        self.assertIn("Signed in as <strong>Test User</strong>", page.text)
        self.assertNotIn("<dt>Track</dt>", page.text)
        for v in ('value="Quiz master"', 'value="365"', 'value="math, quiz, algebra"',
                  "Algebra | https://ex.edu/std/alg | Solving | CCSS | A1",
                  'value="quiz" selected', 'value="score" selected', 'value="0.90"'):
            self.assertIn(v, page.text)
        # the course page links to it
        course = self.get_page(self.token)
        self.assertIn("/badges/edit?s=%s&amp;b=%s" % (self.token, slug), course.text)

    def test_svg_is_sanitized_and_default_image(self):
        resp = self.save({"name": "Vector"},
                         files={"image": ("x.svg", EVIL_SVG, "image/svg+xml")})
        slug = self.created_slug(resp)
        self.assertRegex(resp.header("Location"), r"cleaned=[1-9]")
        img = self.server.get("/ob/v2/badges/%s/image" % slug).body
        for bad in (b"script", b"onload", b"javascript", b"foreignObject", b"evil.example"):
            self.assertNotIn(bad, img)
        self.assertIn(b"<circle", img)
        page = self.server.get(self.server.page_path(resp.header("Location")))
        self.assertIn("removed", page.text)
        # no file: the default image
        slug2 = self.created_slug(self.save({"name": "Plain", "kind": "manual"}))
        self.assertEqual(self.server.get("/ob/v2/badges/%s/image" % slug2).body,
                         self.server.get("/static/default-badge.svg").body)

    def test_bad_images_and_fields_change_nothing(self):
        before = self.badges()
        big = png_bytes(8, 8)[:-12] + b"\0" * (300 * 1024)
        for fields, files, status, phrase in (
                ({}, {"image": ("b.png", png_bytes()[:40], "image/png")}, 400, "PNG or an SVG"),
                ({}, {"image": ("b.gif", b"GIF89a....", "image/gif")}, 400,
                 "the image is neither PNG nor SVG"),
                ({}, {"image": ("b.svg", b"<svg><unclosed", "image/svg+xml")}, 400,
                 "PNG or an SVG"),
                ({}, {"image": ("b.png", big, "image/png")}, 413, "256 KiB"),
                ({}, {"image": ("huge.png", png_bytes(3000, 1), "image/png")}, 400, "2048"),
                ({"name": ""}, None, 400, "needs a name"),
                ({"name": "a\x01b"}, None, 400, "needs a name"),
                ({"threshold": "1.5"}, None, 400, "from 0 to 1"),
                ({"link": "elsewhere"}, None, 400, "not part of this course"),
                ({"kind": "bogus"}, None, 400, "how the badge is earned"),
                ({"kind": "count", "count": "0"}, None, 400, "whole number"),
                ({"criteria_url": "javascript:alert(1)"}, None, 400, "https://"),
                ({"expires_days": "-3"}, None, 400, "days"),
                ({"alignments": "no url here"}, None, 400, "alignment"),
                ({"tags": ",".join("t%d" % i for i in range(40))}, None, 400, "tags"),
                ({"kind": "group", "group": "nosuch"}, None, 404, "no course group")):
            resp = self.save(fields, files)
            self.assertEqual(resp.status, status, (fields, resp))
            self.assertIn(phrase, resp.plain, (fields, resp.plain[:600]))
            self.assertEqual(self.badges(), before, fields)
        # the form comes back with what was typed
        resp = self.save({"name": "Kept <name>", "threshold": "7"})
        self.assertIn('value="Kept &lt;name&gt;"', resp.text)
        # a body over the upload cap
        resp = self.save({"filler": "x" * (400 * 1024)})
        self.assertRefusal(resp, 413)
        self.assertEqual(self.badges(), before)

    def test_dry_run_lists_who_saving_awards(self):
        self.settings_on()
        for user, score in (("ann", 0.92), ("bob", 0.5), ("cyd", 0.8)):
            self.open_page(user, self.ctx, resource_link_id="quiz")
            self.grade(user, self.ctx, score, link="quiz")
        before = self.badges()
        resp = self.save({"do": "dryrun"})
        self.assertEqual(resp.status, 200, resp)
        dry = dry_run(resp.text)
        self.assertIn("ann", dry)
        self.assertIn("cyd", dry)
        self.assertNotIn("bob", dry)
        self.assertIn("0.92", dry)
        self.assertEqual(self.badges(), before, "a dry run saves nothing")
        self.assertIn('value="Quiz master"', resp.text)
        slug = self.created_slug(self.save({}))
        self.assertEqual(self.awards(slug), ["ann", "cyd"])
        self.wait_state("ann", slug, "issued")
        # edited to a lower threshold: bob qualifies, the others are not awarded twice
        page = self.editor(slug)
        resp = self.save({"b": slug, "threshold": "0.5", "do": "dryrun"}, page=page)
        dry = dry_run(resp.text)
        self.assertIn("bob", dry)
        self.assertNotIn("ann", dry)
        resp = self.save({"b": slug, "threshold": "0.5", "name": "Renamed"}, page=page)
        self.assertEqual(resp.status, 303, resp)
        self.assertIn("m=saved", resp.header("Location"))
        self.assertEqual(self.awards(slug), ["ann", "bob", "cyd"])
        b = self.badges()[slug]
        self.assertEqual((b["name"], b["rule"]["threshold"], b["image_type"]),
                         ("Renamed", 0.5, "image/svg+xml"))

    def settings_on(self):
        fields = form_fields(self.page.text, "/badges/settings")
        resp = self.post("/badges/settings", dict(fields, enabled="1", pass_mark="0.6"))
        self.assertEqual(resp.status, 303, resp)

    def test_turning_badges_on_awards_who_already_qualified(self):
        slug = self.created_slug(self.save({"threshold": "0.7"}))
        self.open_page("dee", self.ctx, resource_link_id="quiz")
        self.grade("dee", self.ctx, 0.75, link="quiz")
        self.assertEqual(self.awards(slug), [], "badges are off for the course")
        self.settings_on()
        self.assertEqual(self.awards(slug), ["dee"])
        # the same when an operator turns them on with the CLI
        off = form_fields(self.page.text, "/badges/settings")
        off.pop("enabled", None)  # an unticked checkbox is not sent
        self.assertEqual(self.post("/badges/settings", dict(off, pass_mark="0.6")).status, 303)
        self.open_page("eli", self.ctx, resource_link_id="quiz")
        self.grade("eli", self.ctx, 0.8, link="quiz")
        self.assertEqual(self.awards(slug), ["dee"])
        out = self.cli("context", "enable", "--consumer", self.key, "--context", self.ctx).stdout
        self.assertIn("1 award(s)", out)
        self.assertEqual(self.awards(slug), ["dee", "eli"])

    def test_count_and_group_rules_of_a_course_reach_only_its_learners(self):
        """A course's 'complete N courses' badge: its own learners only, never another course's;
        a group badge of course X is earned when the group's last course is completed,
        whichever it is."""
        self.settings_on()
        other = "elsewhere-" + self.ctx
        self.open_page("outsider", other, resource_link_id="q2")
        self.grade("outsider", other, 0.9, link="q2")  # completed the other course
        self.open_page("insider", self.ctx, resource_link_id="quiz")
        self.grade("insider", self.ctx, 0.9, link="quiz")  # completed this one
        resp = self.save({"kind": "count", "count": "1", "do": "dryrun"})
        dry = dry_run(resp.text)
        self.assertIn("insider", dry)
        self.assertNotIn("outsider", dry)
        slug = self.created_slug(self.save({"kind": "count", "count": "1", "name": "One"}))
        self.assertEqual(self.awards(slug), ["insider"])
        # group {this course, y}: a learner of this course completes it first, then y
        y = "y-" + self.ctx
        self.cli("group", "add", "pair-" + self.ctx, "--consumer", self.key, "--context", self.ctx,
                 "--context", y)
        gslug = self.created_slug(self.save({"kind": "group", "group": "pair-" + self.ctx,
                                             "name": "Pair"}))
        self.open_page("both", self.ctx, resource_link_id="quiz")
        self.grade("both", self.ctx, 0.9, link="quiz")
        self.assertEqual(self.awards(gslug), [])
        self.grade("both", y, 0.9, link="y-final")  # the group's last course, not this one
        self.assertEqual(self.awards(gslug), ["both"])
        award = [a for a in json.loads(self.cli("award", "list", "--json").stdout)
                 if a["badge"] == gslug][0]
        self.assertEqual(award["context"], self.ctx, "recorded in the badge's own course")

    def test_completion_badge_for_a_track_after_the_fact(self):
        """Rule 1: a completion earns one badge. Who got the course's mode-less one before a
        badge for their track existed is not offered the track's badge too."""
        self.settings_on()
        self.open_page("hal", self.ctx, resource_link_id="quiz", custom_badge_mode="verified")
        self.grade("hal", self.ctx, 0.9, link="quiz")
        auto = [a for a in json.loads(self.cli("award", "list", "--json").stdout)
                if a["user"] == "hal"]
        self.assertEqual(len(auto), 1, auto)
        resp = self.save({"kind": "completion", "mode": "verified", "do": "dryrun"})
        self.assertNotIn("hal", dry_run(resp.text))

    def test_completion_badge_once_per_course_and_mode(self):
        self.created_slug(self.save({"kind": "completion", "name": "Done"}))
        resp = self.save({"kind": "completion", "name": "Done again"})
        self.assertEqual(resp.status, 409, resp)
        self.assertIn("already has a completion badge", resp.plain)

    def test_archive_restore_and_delete(self):
        self.settings_on()
        unused = self.created_slug(self.save({"name": "Unused", "kind": "manual"}))
        used = self.created_slug(self.save({"name": "Used"}))
        self.open_page("eve", self.ctx, resource_link_id="quiz")
        self.grade("eve", self.ctx, 0.9, link="quiz")
        self.assertEqual(self.awards(used), ["eve"])
        page = self.editor(used)
        self.assertNotIn("/badges/delete", page.text)
        fields = form_fields(page.text, "/badges/archive")
        # delete refused once awarded, even when posted by hand
        resp = self.post("/badges/delete", fields)
        self.assertRefusal(resp, 409, "only archived")
        resp = self.post("/badges/archive", dict(fields, archive="1"))
        self.assertEqual(resp.status, 303, resp)
        self.assertIn("m=archived", resp.header("Location"))
        self.assertTrue(self.badges()[used]["archived_at"])
        learner, _ = self.open_page("fay", self.ctx, resource_link_id="quiz")
        self.grade("fay", self.ctx, 0.95, link="quiz")
        self.assertEqual(self.awards(used), ["eve"], "archived: awards nothing more")
        resp = self.post("/badges/archive", dict(fields, archive="0"))
        self.assertIn("m=restored", resp.header("Location"))
        self.assertEqual(self.awards(used), ["eve", "fay"], "restored: who qualified gets it")
        page = self.editor(unused)
        self.assertIn("/badges/delete", page.text)
        resp = self.post("/badges/delete", form_fields(page.text, "/badges/delete"))
        self.assertEqual(resp.status, 303, resp)
        self.assertIn("m=deleted", resp.header("Location"))
        self.assertNotIn(unused, self.badges())

    def test_refusals(self):
        slug = self.created_slug(self.save({"name": "Mine"}))
        before = self.badges()
        learner, _ = self.open_page("gus", self.ctx)
        self.assertRefusal(self.editor(token=learner), 403, "instructors")
        fields = form_fields(self.editor(slug).text, "/badges/archive")
        for path in ("/badges/save", "/badges/archive", "/badges/delete"):
            self.assertRefusal(self.post(path, dict(fields, s=learner,
                                                    csrf=lt.csrf_of(self.db, learner))), 403)
            self.assertRefusal(self.post(path, dict(fields, csrf="0" * 64)), 403)
        # another course's instructor cannot reach this course's badge
        other, opage = self.open_page("prof-x", "other-" + self.ctx, roles="Instructor")
        ofields = form_fields(opage.text, "/badges/settings")
        self.assertRefusal(self.editor(slug, token=other), 404)
        resp = self.post("/badges/delete", {"s": other, "csrf": ofields["csrf"], "b": slug})
        self.assertRefusal(resp, 404)
        resp = self.save({"b": slug, "name": "Taken over"},
                         page=self.server.get("/badges/edit?s=%s" % other))
        self.assertRefusal(resp, 404)
        self.assertEqual(self.badges(), before)
        # a course-less BadgeClass is the operator's: not editable here
        op = self.badge("Operator's", "manual")
        self.assertRefusal(self.editor(op), 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
