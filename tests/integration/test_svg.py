#!/usr/bin/python3
"""One SVG rule, whatever the way in: `badge create --image` and `badge set --image`
store a hostile SVG sanitized (the same bytes the editor stores for the same file)
and say how much they removed; what is neither PNG nor SVG, or an SVG the sanitizer cannot read, is
refused with a message that says why. Every image the server answers with
(stored, baked, the default image, the icon) carries
Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline' and
X-Content-Type-Options: nosniff. A database from before the rule, holding a
hostile SVG written straight into sqlite, is cleaned by the migration, which
says how many images it changed (`ltibadges migrate` and `serve`)."""
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import png_bytes, run_cli  # noqa: E402
from test_editor import multipart  # noqa: E402
from test_ui import PagesTestCase, form_fields  # noqa: E402

# store/migrate.c: the migration that re-sanitizes stored SVG images. The test
# below makes a database of the schema before it (`migrate --to`) and writes into
# it what an older ltibadges stored, straight into sqlite.
SVG_MIGRATION = 7

IMAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'"

OPEN = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="64" height="64">')
KEEP = '<circle cx="32" cy="32" r="30" fill="#0a0"/>'

# each passed `badge create --image` before the one rule (the CLI's own check)
HOSTILE = {
    "style-import": OPEN + "<style>@import url(https://evil.example/x.css);</style>" + KEEP
    + "</svg>",
    "style-url": OPEN + "<style>circle { fill: url(https://evil.example/p.svg#x) }</style>"
    + KEEP + "</svg>",
    "set-href": OPEN + '<a xlink:href="#c"><set attributeName="href" '
    'to="javascript:alert(1)"/>' + KEEP + "</a></svg>",
    "animate-xlink-href": OPEN + '<a><animate attributeName="xlink:href" '
    'values="#c;javascript:alert(1)"/>' + KEEP + "</a></svg>",
    "set-onclick": OPEN + '<g><set attributeName="onclick" to="alert(1)"/>' + KEEP + "</g></svg>",
    "fill-url": OPEN + '<rect width="5" height="5" fill="url(https://evil.example/p.svg#x)"/>'
    + KEEP + "</svg>",
    "style-attr-url": OPEN + '<rect width="5" style="fill:url(https://evil.example/p.svg#x)"/>'
    + KEEP + "</svg>",
    "marker-url": OPEN + '<path d="M0 0L5 5" marker-end="url(https://evil.example/m.svg#m)"/>'
    + KEEP + "</svg>",
    "image-svg-data": OPEN + '<image href="data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3'
    'd3dy53My5vcmcvMjAwMC9zdmcnIG9ubG9hZD0nYWxlcnQoMSknLz4="/>' + KEEP + "</svg>",
    "use-external": OPEN + '<use href="https://evil.example/s.svg#a"/>' + KEEP + "</svg>",
    "xml-base": OPEN + '<g xml:base="https://evil.example/">' + KEEP + "</g></svg>",
    "script": OPEN + "<script>alert(1)</script>" + KEEP + "</svg>",
    "onload": OPEN.replace("<svg ", '<svg onload="alert(1)" ') + KEEP + "</svg>",
    "foreign-object": OPEN + '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div>'
    "</foreignObject>" + KEEP + "</svg>",
}

# what none of the stored images may hold
LEFT = (b"evil.example", b"javascript", b"@import", b"<script", b"foreignObject", b"onload",
        b"onclick", b"data:image/svg", b"xml:base")

REMOVED_RE = re.compile(r"^ltibadges: (\d+) parts? of the SVG image that could run code or load "
                        r"other files (was|were) removed; the image is stored without (it|them)$")


def stored_image(db, slug):
    # NEEDSWORK: the stored bytes; GET /ob/v2/badges/SLUG/image gives them where a server runs
    rows = lt.sqlite_file_query(db, "SELECT image, image_type FROM badge_classes WHERE slug = ?",
                                slug)
    return bytes(rows[0]["image"]), rows[0]["image_type"]


class CliAndEditor(PagesTestCase):
    """`badge create --image` and the editor's upload store the same sanitized bytes."""

    def create(self, path, ok=True):
        p = run_cli("badge", "create", "--consumer", self.key, "--name", "Vector",
                    "--description", "d", "--image", path, "--rule", "manual", "--db", self.db)
        if ok:
            self.assertEqual(p.returncode, 0, (path, p.stdout, p.stderr))
            return re.match(r"^slug=(\S+)$", p.stdout.strip()).group(1), p
        return None, p

    def upload(self, token, data):
        """Saves a new badge of the course through the editor with `data` as its image."""
        page = self.server.get("/badges/edit?s=%s" % token)
        self.assertEqual(page.status, 200, page)
        fields = form_fields(page.text, "/badges/save")
        for k in ("image", "image_choice", "passback", "revoke"):
            fields.pop(k, None)
        fields.update({"name": "Vector", "description": "d", "kind": "manual", "do": "save"})
        body, ctype = multipart(fields, {"image": ("x.svg", data, "image/svg+xml")})
        resp = self.server.request("POST", "/badges/save", body=body,
                                   headers={"Content-Type": ctype})
        self.assertEqual(resp.status, 303, resp)
        return re.search(r"[?&]b=([a-z0-9-]+)", resp.header("Location")).group(1)

    def test_hostile_svgs_are_stored_sanitized_as_the_editor_stores_them(self):
        ctx = "svg-" + lt.hex_id(4)
        token, _ = self.open_page("prof-" + ctx, ctx, roles="Instructor")
        for name, svg in HOSTILE.items():
            with self.subTest(name):
                path = os.path.join(self.tmp, name + ".svg")
                with open(path, "w") as f:
                    f.write(svg)
                slug, p = self.create(path)
                m = REMOVED_RE.match(p.stderr.strip())
                self.assertIsNotNone(m, p.stderr)
                self.assertGreaterEqual(int(m.group(1)), 1)
                img, ctype = stored_image(self.db, slug)
                self.assertEqual(ctype, "image/svg+xml")
                for bad in LEFT:
                    self.assertNotIn(bad, img, (name, img))
                self.assertIn(b"<circle", img)
                # one rule: the editor stores the very same bytes for the same file
                ed = self.upload(token, svg.encode())
                self.assertEqual(stored_image(self.db, ed)[0], img, name)
                # and what is served is what is stored
                self.assertEqual(self.server.get("/ob/v2/badges/%s/image" % slug).body, img)

    def test_badge_set_image_takes_the_same_way(self):
        png = os.path.join(self.tmp, "set.png")
        with open(png, "wb") as f:
            f.write(png_bytes())
        slug, _ = self.create(png)
        for name, svg in HOSTILE.items():
            with self.subTest(name):
                path = os.path.join(self.tmp, "set-" + name + ".svg")
                with open(path, "w") as f:
                    f.write(svg)
                p = run_cli("badge", "set", slug, "--image", path, "--db", self.db)
                self.assertEqual(p.returncode, 0, p)
                self.assertEqual(p.stdout, "BadgeClass %s updated\n" % slug)
                self.assertIsNotNone(REMOVED_RE.match(p.stderr.strip()), p.stderr)
                img, ctype = stored_image(self.db, slug)
                self.assertEqual(ctype, "image/svg+xml")
                for bad in LEFT:
                    self.assertNotIn(bad, img, (name, img))
                # the same bytes as `badge create` stores for the file
                created, _ = self.create(path)
                self.assertEqual(stored_image(self.db, created)[0], img, name)
        # back to a PNG, and what cannot be read changes nothing
        self.assertEqual(run_cli("badge", "set", slug, "--image", png, "--db",
                                 self.db).returncode, 0)
        self.assertEqual(stored_image(self.db, slug), (png_bytes(), "image/png"))
        bad = os.path.join(self.tmp, "bad.svg")
        with open(bad, "w") as f:
            f.write(OPEN + "<g>")
        p = run_cli("badge", "set", slug, "--image", bad, "--passback-score", "0.5",
                    "--db", self.db)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("not well-formed", p.stderr)
        self.assertEqual(stored_image(self.db, slug), (png_bytes(), "image/png"))
        self.assertEqual(lt.badge(self.db, slug)["passback_score"], 1.0)

    def test_benign_svg_says_nothing(self):
        path = os.path.join(self.tmp, "benign.svg")
        with open(path, "w") as f:
            f.write(OPEN + '<defs><linearGradient id="g"/></defs><rect fill="url(#g)" '
                    'width="5"/><use href="#g"/>' + KEEP + "</svg>")
        slug, p = self.create(path)
        self.assertEqual(p.stderr, "")
        img, _ = stored_image(self.db, slug)
        self.assertIn(b'fill="url(#g)"', img)
        self.assertIn(b'<use href="#g"/>', img)

    def test_unreadable_images_are_refused_saying_why(self):
        cases = {
            "html.svg": ("<html><body>not svg</body></html>", "not an SVG document"),
            "text.svg": ("hello", "the image is neither PNG nor SVG"),
            "xxe.svg": ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM '
                        '"file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg">'
                        "<text>&x;</text></svg>", "may not have a DOCTYPE"),
            "broken.svg": (OPEN + "<g>", "not well-formed"),
        }
        before = lt.counts(self.db)
        for name, (content, phrase) in cases.items():
            with self.subTest(name):
                path = os.path.join(self.tmp, name)
                with open(path, "w") as f:
                    f.write(content)
                _, p = self.create(path, ok=False)
                self.assertEqual(p.returncode, 1, p)
                self.assertEqual(p.stdout, "")
                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                self.assertTrue(p.stderr.startswith("ltibadges: "), p.stderr)
                self.assertIn(phrase, p.stderr)
        self.assertEqual(lt.counts(self.db), before)


class ImageHeaders(PagesTestCase):
    """Every image the server answers with: stored, baked, default, icon."""

    def assertImageHeaders(self, resp, what):
        self.assertEqual(resp.status, 200, (what, resp))
        self.assertTrue(resp.header("Content-Type").startswith("image/"), (what, resp))
        self.assertEqual(resp.header("Content-Security-Policy"), IMAGE_CSP, what)
        self.assertEqual(resp.header("X-Content-Type-Options"), "nosniff", what)

    def test_images_carry_csp_and_nosniff(self):
        ctx = "hdr-" + lt.hex_id(4)
        svg = os.path.join(self.tmp, "h.svg")
        with open(svg, "w") as f:
            f.write(OPEN + KEEP + "</svg>")
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        p = self.cli("badge", "create", "--consumer", self.key, "--context", ctx, "--name",
                     "Hdr SVG", "--description", "d", "--image", svg, "--rule", "enrollment")
        slugs = {"svg": re.match(r"^slug=(\S+)$", p.stdout.strip()).group(1),
                 "png": self.badge("Hdr PNG", "enrollment", ctx)}
        user = "hdr-learner-" + lt.hex_id(4)
        self.open_page(user, ctx)
        for kind, slug in slugs.items():
            self.assertImageHeaders(self.server.get("/ob/v2/badges/%s/image" % slug),
                                    "stored " + kind)
            award = self.wait_state(user, slug, "issued")
            url = award["assertion_url"]
            self.assertTrue(url.startswith(self.server.public_url), url)
            baked = self.server.get(url[len(self.server.public_url):] + "/image")
            self.assertImageHeaders(baked, "baked " + kind)
        for path in ("/static/default-badge.svg", "/static/icon.svg"):
            self.assertImageHeaders(self.server.get(path), path)
        # the JSON documents keep their own headers
        doc = self.server.get("/ob/v2/badges/%s" % slugs["svg"])
        self.assertEqual(doc.status, 200)
        self.assertIsNone(doc.header("Content-Security-Policy"))


class MigrationOfStoredImages(unittest.TestCase):
    """A database from before the one rule, holding hostile SVGs the old CLI check let
    through (written straight into sqlite), is cleaned by the migration, with a count."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-svg-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.db = os.path.join(self.tmp, "old.db")
        self.benign = (OPEN + KEEP + "</svg>").encode()
        self.png = png_bytes()
        self.slugs = {n: n.replace(".", "-") for n in
                      ("benign.svg", "hostile-a.svg", "hostile-b.svg", "b.png")}

    def cli(self, *args, ok=True):
        p = run_cli(*args, "--db", self.db)
        if ok:
            self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p

    def make_old(self):
        """What an older ltibadges left: the schema before the rule's migration, and the
        images its `badge create` stored as they came (two of them hostile)."""
        lt.skip_on_pg("a schema before the SVG rule's migration: a PostgreSQL database starts "
                      "at a later one")
        p = self.cli("migrate", "--to", str(SVG_MIGRATION - 1))
        self.assertIn("to %d" % (SVG_MIGRATION - 1), p.stdout)
        old = "(SELECT id FROM consumers WHERE key = 'old')"
        setup = [("INSERT INTO consumers(key, secret, name, created_at) "
                  "VALUES ('old', 'old-secret-0123456789', 'Old LMS', 1)", ())]
        for name, image, ctype in (
                ("benign.svg", self.benign, "image/svg+xml"),
                ("hostile-a.svg", HOSTILE["style-import"].encode(), "image/svg+xml"),
                ("hostile-b.svg", HOSTILE["set-href"].encode(), "image/svg+xml"),
                ("b.png", self.png, "image/png")):
            setup += [("INSERT INTO badge_classes(slug, consumer_id, name, description, image, "
                       "image_type, backend, created_at, updated_at) "
                       "VALUES (?, %s, ?, 'd', ?, ?, 'hosted', 1, 1)" % old,
                       (self.slugs[name], name, image, ctype)),
                      ("INSERT INTO rules(badge_class_id, consumer_id, kind) VALUES "
                       "((SELECT id FROM badge_classes WHERE slug = ?), %s, 'manual')" % old,
                       (self.slugs[name],))]
        lt.setup_sql_batch(self.db, setup)

    def assertCleaned(self):
        for name in ("hostile-a.svg", "hostile-b.svg"):
            img, ctype = stored_image(self.db, self.slugs[name])
            self.assertEqual(ctype, "image/svg+xml")
            for bad in LEFT:
                self.assertNotIn(bad, img, (name, img))
            self.assertIn(b"<circle", img)
        # what the rule leaves as it is stays byte for byte
        self.assertEqual(stored_image(self.db, self.slugs["benign.svg"])[0], self.benign)
        self.assertEqual(stored_image(self.db, self.slugs["b.png"])[0], self.png)
        self.assertGreaterEqual(lt.cli_json(self.db, "db", "version")["schema_version"],
                                SVG_MIGRATION)

    def test_migrate_cleans_and_counts(self):
        self.make_old()
        p = self.cli("migrate")
        latest = lt.cli_json(self.db, "db", "version")["schema_version"]
        self.assertEqual(p.stdout.splitlines(), [
            "database '%s' migrated from schema version %d to %d"
            % (self.db, SVG_MIGRATION - 1, latest),
            "stored SVG images: 3 checked, 2 changed by the SVG rule (parts that could run code "
            "or load other files removed)"], p.stdout)
        self.assertEqual(p.stderr, "")
        self.assertCleaned()
        # once done, nothing more to say
        p = self.cli("migrate")
        self.assertEqual(p.stdout, "database '%s' is up to date (schema version %d)\n"
                         % (self.db, latest))
        for to in ("0", str(latest + 1), "x"):
            p = self.cli("migrate", "--to", to, ok=False)
            self.assertEqual(p.returncode, 2, p)
            self.assertIn("--to is a schema version from 1 to %d" % latest, p.stderr)

    def test_serve_cleans_counts_and_serves_the_clean_image(self):
        self.make_old()
        server = lt.Server(self.tmp, db=self.db).start()
        try:
            # one event of the server's log
            self.assertRegex(server.stderr(), r"(?m)^time=\S+ level=info msg=\"stored SVG images "
                                              r"checked by the SVG rule [^\n]*\" checked=3 "
                                              r"changed=2$")
            self.assertCleaned()
            for name in ("hostile-a.svg", "hostile-b.svg"):
                img = server.get("/ob/v2/badges/%s/image" % self.slugs[name])
                self.assertEqual(img.status, 200)
                self.assertEqual(img.body, stored_image(self.db, self.slugs[name])[0])
                self.assertEqual(img.header("Content-Security-Policy"), IMAGE_CSP)
                self.assertEqual(img.header("X-Content-Type-Options"), "nosniff")
        finally:
            rc, _ = server.stop()
        self.assertEqual(rc, 0, server.stderr()[-1500:])

    def test_any_command_migrating_says_so(self):
        self.make_old()
        p = self.cli("badge", "list", "--json")
        self.assertEqual(len(json.loads(p.stdout)), 4)
        self.assertIn("ltibadges: stored SVG images: 3 checked, 2 changed", p.stderr)
        self.assertCleaned()


if __name__ == "__main__":
    lt.main()
