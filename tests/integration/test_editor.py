#!/usr/bin/python3
"""The instructor's BadgeClass editor over HTTP, against the real server:
create with a PNG, an SVG (sanitized) or the default image and every field of
the model; edit keeping the image, or choosing the default one; only the
chosen rule's fields stored whatever else a form without the script posts;
scores in percent (points shown where the LMS sent them); alignments as rows
of fields, the BadgeClass document unchanged byte for byte when a badge's
form is saved back as shown; the rule's dry run, and saving awarding
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


def checked_radios(page_text, action):
    """The radio buttons checked in the form posting to `action`: name -> value."""
    m = re.search(r'<form[^>]*action="[^"]*%s"[^>]*>(.*?)</form>' % re.escape(action),
                  page_text, re.S)
    out = {}
    for tag in re.findall(r'<input[^>]*type="radio"[^>]*>', m.group(1)):
        if re.search(r"\schecked\b", tag):
            out[re.search(r'name="([^"]*)"', tag).group(1)] = \
                re.search(r'value="([^"]*)"', tag).group(1)
    return out


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
        # as a browser sends it: no empty file field, checkboxes only when ticked, the
        # radio buttons as checked
        for k in ("image", "passback", "revoke", "kind", "image_choice"):
            base.pop(k, None)
        base.update(checked_radios(page.text, "/badges/save"))
        base.update({"name": "Quiz master", "description": "Scored well on the quiz",
                     "kind": "score", "threshold_percent": "80", "link": "quiz", "do": "save"})
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
            busy = [(a["id"], a["state"]) for a in lt.awards(self.db)
                    if a["state"] in ("queued", "issuing")]
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
                          "al_name_0": "Algebra", "al_url_0": "https://ex.edu/std/alg",
                          "al_description_0": "Solving", "al_framework_0": "CCSS",
                          "al_code_0": "A1", "al_name_1": " Logic",
                          "al_url_1": "https://ex.edu/std/log ",
                          "issuing_component": "quizzes", "passback": "1",
                          "passback_percent": "90", "revoke": "1"},
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
                  'name="al_name_0" type="text" value="Algebra"',
                  'name="al_code_0" type="text" value="A1"',
                  'name="al_url_1" type="url" value="https://ex.edu/std/log"',
                  'value="quiz" selected', 'name="threshold_percent"',
                  'name="passback_percent" type="number" min="0" max="100" step="any" '
                  'inputmode="decimal" value="90"'):
            self.assertIn(v, page.text)
        self.assertEqual(checked_radios(page.text, "/badges/save"),
                         {"kind": "score", "image_choice": "keep"})
        self.assertRegex(page.text, r'name="threshold_percent"[^>]*value="80"')
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
                ({"threshold_percent": "150"}, None, 400, "from 0 to 100"),
                ({"threshold_percent": "0.8.1"}, None, 400, "from 0 to 100"),
                ({"threshold_percent": None}, None, 400, "from 0 to 100"),
                ({"passback": "1", "passback_percent": "101"}, None, 400, "from 0 to 100"),
                ({"link": "elsewhere"}, None, 400, "not part of this course"),
                ({"kind": "bogus"}, None, 400, "how the badge is earned"),
                ({"kind": "count", "count": "0"}, None, 400, "whole number"),
                ({"criteria_url": "javascript:alert(1)"}, None, 400, "https://"),
                ({"expires_days": "-3"}, None, 400, "days"),
                ({"al_name_0": "no url here"}, None, 400, "alignment 1 needs"),
                ({"al_name_0": "A", "al_url_0": "https://ex.edu/a", "al_code_3": "c"}, None, 400,
                 "alignment 2 needs"),
                ({"al_name_0": "A", "al_url_0": "javascript:alert(1)"}, None, 400,
                 "alignment 1 needs"),
                ({"al_name_0": "A\nB", "al_url_0": "https://ex.edu/a"}, None, 400,
                 "alignment 1: each field is one line"),
                (dict(("al_name_%d" % i, "A") for i in range(33)), None, 400,
                 "at most 32 alignments"),
                ({"image_choice": "upload"}, None, 400, "choose the image file"),
                ({"tags": ",".join("t%d" % i for i in range(40))}, None, 400, "tags"),
                ({"kind": "group", "group": "nosuch"}, None, 404, "no course group")):
            resp = self.save(fields, files)
            self.assertEqual(resp.status, status, (fields, resp))
            self.assertIn(phrase, resp.plain, (fields, resp.plain[:600]))
            self.assertEqual(self.badges(), before, fields)
        # the form comes back with what was typed
        resp = self.save({"name": "Kept <name>", "threshold_percent": "700"})
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
        self.assertIn("score 92% on \u201cQuiz 1\u201d", dry)
        self.assertEqual(self.badges(), before, "a dry run saves nothing")
        self.assertIn('value="Quiz master"', resp.text)
        slug = self.created_slug(self.save({}))
        self.assertEqual(self.awards(slug), ["ann", "cyd"])
        self.wait_state("ann", slug, "issued")
        # edited to a lower threshold: bob qualifies, the others are not awarded twice
        page = self.editor(slug)
        resp = self.save({"b": slug, "threshold_percent": "50", "do": "dryrun"}, page=page)
        dry = dry_run(resp.text)
        self.assertIn("bob", dry)
        self.assertNotIn("ann", dry)
        resp = self.save({"b": slug, "threshold_percent": "50", "name": "Renamed"}, page=page)
        self.assertEqual(resp.status, 303, resp)
        self.assertIn("m=saved", resp.header("Location"))
        self.assertEqual(self.awards(slug), ["ann", "bob", "cyd"])
        b = self.badges()[slug]
        self.assertEqual((b["name"], b["rule"]["threshold"], b["image_type"]),
                         ("Renamed", 0.5, "image/svg+xml"))

    def settings_on(self):
        fields = form_fields(self.page.text, "/badges/settings")
        resp = self.post("/badges/settings", dict(fields, enabled="1", pass_percent="60"))
        self.assertEqual(resp.status, 303, resp)

    def test_turning_badges_on_awards_who_already_qualified(self):
        slug = self.created_slug(self.save({"threshold_percent": "70"}))
        self.open_page("dee", self.ctx, resource_link_id="quiz")
        self.grade("dee", self.ctx, 0.75, link="quiz")
        self.assertEqual(self.awards(slug), [], "badges are off for the course")
        self.settings_on()
        self.assertEqual(self.awards(slug), ["dee"])
        # the same when an operator turns them on with the CLI
        off = form_fields(self.page.text, "/badges/settings")
        off.pop("enabled", None)  # an unticked checkbox is not sent
        self.assertEqual(self.post("/badges/settings", dict(off, pass_percent="60")).status, 303)
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

    def test_only_the_chosen_rules_fields_are_stored(self):
        """A form without the script posts every rule's fields; only the chosen rule's are
        read (and checked): the others' values, valid or not, are stored nowhere."""
        grp = "grp-" + self.ctx
        self.cli("group", "add", grp, "--consumer", self.key, "--context", self.ctx)
        for junk in ({"threshold_percent": "55", "link": "quiz", "count": "3", "group": grp},
                     {"threshold_percent": "junk", "link": "elsewhere", "count": "-1",
                      "group": "no\nsuch"}):
            for kind, want in (
                    ("completion", {"kind": "completion"}),
                    ("enrollment", {"kind": "enrollment"}),
                    ("manual", {"kind": "manual"}),
                    ("count", {"kind": "count", "count": 4}),
                    ("group", {"kind": "group", "group": grp}),
                    ("score", {"kind": "score", "threshold": 0.65, "resource_link": "quiz"})):
                fields = dict(junk, kind=kind, name="%s %s" % (kind, junk["count"]),
                              mode="m%s" % junk["count"])
                fields.update({"count": {"kind": "count", "count": "4"},
                               "group": {"group": grp},
                               "score": {"threshold_percent": "65", "link": "quiz"}}
                              .get(kind, {}))
                resp = self.save(fields)
                slug = self.created_slug(resp)
                self.assertEqual(self.badges()[slug]["rule"], want, (kind, junk))
                # the editor shows it back with its rule chosen, the others' fields empty
                page = self.editor(slug)
                self.assertEqual(checked_radios(page.text, "/badges/save")["kind"], kind)
                shown = form_fields(page.text, "/badges/save")
                if kind != "count":
                    self.assertEqual(shown["count"], "")
                if kind != "group":
                    self.assertEqual(shown["group"], "")
                if kind != "score":
                    self.assertEqual(shown["threshold_percent"], "80", "the default")
        # each rule's fields sit beneath its own radio button, for the stylesheet and script
        page = self.editor()
        for kind, names in (("score", ["threshold_percent", "link"]), ("count", ["count"]),
                            ("group", ["group"])):
            m = re.search(r'<div class="rule"><input type="radio" id="kind-%s".*?'
                          r'<div class="rule-fields sub" id="rule-%s">(.*?)</div></div>'
                          % (kind, kind), page.text, re.S)
            self.assertTrue(m, kind)
            self.assertEqual(re.findall(r'name="([^"]+)"', m.group(1)), names)

    def test_percent_and_points(self):
        for typed, stored, shown in (("72.5", 0.725, "72.5"), ("72,5", 0.725, "72.5"),
                                     ("80 %", 0.8, "80"), ("100", 1.0, "100"), ("0", 0.0, "0"),
                                     ("33.3333", 0.333333, "33.33")):
            slug = self.created_slug(self.save({"threshold_percent": typed, "name": typed,
                                                "passback": "1", "passback_percent": typed}))
            b = self.badges()[slug]
            self.assertEqual((b["rule"]["threshold"], b["passback_score"]), (stored, stored),
                             typed)
            page = self.editor(slug)
            self.assertRegex(page.text, r'name="threshold_percent"[^>]*value="%s"'
                             % re.escape(shown))
            self.assertRegex(page.text, r'name="passback_percent"[^>]*value="%s"'
                             % re.escape(shown))
        # "80" stores the very number the CLI's 0.8 does
        cli = self.badge("Cli", "score:0.8:quiz", self.ctx)
        web = self.created_slug(self.save({"threshold_percent": "80", "name": "Web"}))
        self.assertEqual(lt.badge(self.db, cli)["rule"]["threshold"],
                         lt.badge(self.db, web)["rule"]["threshold"])
        # points where the LMS sent the activity's points possible
        self.open_page("prof-" + self.ctx, self.ctx, roles="Instructor", resource_link_id="quiz",
                       resource_link_title="Quiz 1",
                       custom_canvas_assignment_points_possible="10")
        page = self.editor(web)
        self.assertIn('<option value="quiz" selected>Quiz 1 (10 points)</option>', page.text)
        self.assertIn("On \u201cQuiz 1\u201d that is 8 of 10 points.", plain(page.text))
        self.settings_on()
        self.open_page("ivy", self.ctx, resource_link_id="quiz")
        self.grade("ivy", self.ctx, 0.85, link="quiz")
        dry = dry_run(self.save({"do": "dryrun"}).text)
        self.assertIn("score 8.5 of 10 points on \u201cQuiz 1\u201d", dry)

    def test_alignment_rows_keep_the_badgeclass_document(self):
        """A badge made by the CLI with alignments, its form saved back as shown: the
        BadgeClass document is the same bytes; rows added, removed and holding a '|'."""
        slug = self.badge("Aligned", "score:0.8:quiz", self.ctx, None,
                          "--alignment", "Algebra | https://ex.edu/std/alg | Solving | CCSS | A1",
                          "--alignment", "Logic|https://ex.edu/std/log",
                          "--alignment", "Sets|https://ex.edu/s|||S")
        before = self.server.get("/ob/v2/badges/%s" % slug).body
        stored = lt.badge(self.db, slug)["alignments"]
        page = self.editor(slug)
        self.assertIn("<details class=\"aligns\" id=\"aligns\" open>", page.text)
        shown = form_fields(page.text, "/badges/save")
        self.assertEqual([shown["al_name_%d" % i] for i in range(5)],
                         ["Algebra", "Logic", "Sets", "", ""], "the rows, then two empty ones")
        self.assertNotIn("al_name_5", shown)
        resp = self.save({"b": slug, "name": "Aligned", "description": "About Aligned"},
                         page=page)
        self.assertEqual(resp.status, 303, resp)
        self.assertEqual(lt.badge(self.db, slug)["alignments"], stored)
        self.assertEqual(self.server.get("/ob/v2/badges/%s" % slug).body, before,
                         "the BadgeClass document unchanged byte for byte")
        # a row added (in an empty one), one removed (emptied), a '|' in a name kept
        resp = self.save({"b": slug, "name": "Aligned", "al_name_1": "", "al_url_1": "",
                          "al_name_3": "Geometry | plane", "al_url_3": "https://ex.edu/g",
                          "al_framework_3": "CCSS"}, page=page)
        self.assertEqual(resp.status, 303, resp)
        doc = json.loads(self.server.get("/ob/v2/badges/%s" % slug).body)
        self.assertEqual([(a["targetName"], a.get("targetFramework")) for a in doc["alignment"]],
                         [("Algebra", "CCSS"), ("Sets", None), ("Geometry | plane", "CCSS")])
        page = self.editor(slug)
        self.assertIn('name="al_name_2" type="text" value="Geometry | plane"', page.text)
        # a badge without alignments: two empty rows, closed
        page = self.editor()
        self.assertIn("<details class=\"aligns\" id=\"aligns\">", page.text)
        self.assertEqual(len(re.findall(r'name="al_name_\d+"', page.text)), 2)

    def test_one_image_choice(self):
        page = self.editor()
        self.assertNotIn("default_image", page.text, "no second default-image control")
        self.assertEqual(checked_radios(page.text, "/badges/save")["image_choice"], "default")
        self.assertNotIn('id="image-keep"', page.text, "a new badge has no image to keep")
        slug = self.created_slug(self.save({"name": "Pic"},
                                           files={"image": ("b.png", png_bytes(16, 16),
                                                            "image/png")}))
        img = "/ob/v2/badges/%s/image" % slug
        default = self.server.get("/static/default-badge.svg").body
        self.assertEqual(self.server.get(img).body, png_bytes(16, 16))
        page = self.editor(slug)
        self.assertEqual(page.text.count('type="radio" id="image-'), 3)
        # kept as it is
        self.assertEqual(self.save({"b": slug, "name": "Pic"}, page=page).status, 303)
        self.assertEqual(self.server.get(img).body, png_bytes(16, 16))
        # a file chosen wins over a radio left on "keep" (a form without the script)
        self.assertEqual(self.save({"b": slug, "name": "Pic"}, page=page,
                                   files={"image": ("c.png", png_bytes(8, 8), "image/png")})
                         .status, 303)
        self.assertEqual(self.server.get(img).body, png_bytes(8, 8))
        # the default one
        self.assertEqual(self.save({"b": slug, "name": "Pic", "image_choice": "default"},
                                   page=page).status, 303)
        self.assertEqual(self.server.get(img).body, default)

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
