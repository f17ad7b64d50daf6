#!/usr/bin/python3
"""Public pages of BadgeClasses, whatever their backend (issue 21, section 3):
every BadgeClass's image at PUBLIC/ob/v2/badges/SLUG/image (a remote
platform that keeps an image URL, such as BadgeKit, points there; so do our
own learner pages), and its criteria page at PUBLIC/badges/criteria/SLUG
(name, description, narrative, criteria URL), escaped, cacheable (ETag,
Cache-Control, 304 on If-None-Match), 404 for an unknown or malformed slug,
kept for an archived BadgeClass."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, png_bytes, run_cli  # noqa: E402

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       '<rect width="10" height="10" fill="#123"/></svg>')
HOSTILE_NAME = '<script>alert("n")</script> & \'quoted\' "B"'
HOSTILE_DESC = '<img src=x onerror=alert(1)> described & so on'
HOSTILE_NARRATIVE = ('First </p><script>alert(2)</script> step & more.\n\n'
                     'Second paragraph with <b>tags</b> and "quotes".')
HOSTILE_URL = "https://criteria.example.edu/c?a=1&b=<2>"


class PublicPages(lt.ServerTestCase):
    # a remote backend that is never called here: no award is made through it
    CONFIG = ("[backend.campus]\ntype = badgr\nbase_url = http://127.0.0.1:9/\n"
              "allow_loopback = true\nusername = u@example.edu\npassword = not-used-here\n"
              "issuer = abcdefghijklmnopqrstuv\n")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config = os.path.join(cls.tmp, "tool.ini")
        cls.png = png_bytes(6, 6)
        cls.png_path = os.path.join(cls.tmp, "b.png")
        with open(cls.png_path, "wb") as f:
            f.write(cls.png)
        cls.svg_path = os.path.join(cls.tmp, "b.svg")
        with open(cls.svg_path, "w") as f:
            f.write(SVG)

    def cli(self, *args):
        p = run_cli(*args, "--db", self.db, "--config", self.config)
        self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p

    def badge(self, name, *extra, image=None, backend=None):
        args = ["badge", "create", "--consumer", self.key, "--name", name, "--description",
                "About " + name, "--image", image or self.png_path, "--rule", "manual"]
        if backend:
            args += ["--backend", backend]
        return lt.parse_kv(self.cli(*(args + list(extra))).stdout)["slug"]

    def backend_of(self, slug):
        return lt.badge(self.db, slug)["backend"]

    # ---- images

    def test_image_of_every_backend(self):
        hosted = self.badge("Hosted image")
        remote = self.badge("Remote image", backend="campus")
        remote_svg = self.badge("Remote SVG", image=self.svg_path, backend="campus")
        self.assertEqual(self.backend_of(hosted), "hosted")
        self.assertEqual(self.backend_of(remote), "campus")
        for slug, ctype in ((hosted, "image/png"), (remote, "image/png"),
                            (remote_svg, "image/svg+xml")):
            with self.subTest(slug=slug):
                r = self.server.get("/ob/v2/badges/%s/image" % slug)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("Content-Type"), ctype)
                self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
                self.assertIn("default-src 'none'", r.header("Content-Security-Policy") or "")
                if ctype == "image/png":
                    self.assertEqual(r.body, self.png)
                else:
                    self.assertIn(b"<svg", r.body)
                    self.assertIn(b'fill="#123"', r.body)
                # the ETag answers a revalidation with 304 and no body
                etag = r.header("ETag")
                self.assertRegex(etag or "", r'^"[0-9a-f]{32}"$')
                self.assertEqual(r.header("Cache-Control"), "no-cache")
                again = self.server.get("/ob/v2/badges/%s/image" % slug,
                                        headers={"If-None-Match": 'W/"x", ' + etag})
                self.assertEqual(again.status, 304, again)
                self.assertEqual(again.body, b"")
                self.assertEqual(again.header("ETag"), etag)
                other = self.server.get("/ob/v2/badges/%s/image" % slug,
                                        headers={"If-None-Match": '"0000"'})
                self.assertEqual(other.status, 200)
                self.assertEqual(other.body, r.body)
        # the BadgeClass document itself stays the hosted issuer's only
        self.assertEqual(self.server.get("/ob/v2/badges/" + remote).status, 404)
        self.assertEqual(self.server.get("/ob/v2/badges/" + hosted).status, 200)
        # unknown and malformed slugs
        for path in ("/ob/v2/badges/no-such-badge/image", "/ob/v2/badges/a.b/image",
                     "/ob/v2/badges/%2e%2e/image", "/ob/v2/badges/x/image/"):
            with self.subTest(path=path):
                self.assertEqual(self.server.get(path).status, 404)

    def test_image_changes_with_the_badge(self):
        slug = self.badge("Changing image", backend="campus")
        first = self.server.get("/ob/v2/badges/%s/image" % slug)
        self.cli("badge", "set", slug, "--image", self.svg_path)
        after = self.server.get("/ob/v2/badges/%s/image" % slug,
                                headers={"If-None-Match": first.header("ETag")})
        self.assertEqual(after.status, 200, after)
        self.assertEqual(after.header("Content-Type"), "image/svg+xml")
        self.assertNotEqual(after.header("ETag"), first.header("ETag"))

    def test_learner_page_image_of_a_remote_badge_loads(self):
        slug = self.badge("Seen by learners", backend="campus")
        resp = self.launch(base_launch(user_id="pp-learner", context_id="pp-course",
                                       roles="Learner"))
        page = self.page(resp)
        m = re.search(r'data-slug="%s">\s*<img src="([^"]+)"' % re.escape(slug), page.text)
        self.assertIsNotNone(m, page.text)
        img = self.server.get(m.group(1))
        self.assertEqual(img.status, 200, img)
        self.assertEqual(img.body, self.png)

    # ---- criteria pages

    def test_criteria_page_escaped(self):
        slug = self.badge(HOSTILE_NAME, "--criteria", HOSTILE_NARRATIVE, "--criteria-url",
                          HOSTILE_URL, backend="campus")
        lt.setup_sql(self.db, "UPDATE badge_classes SET description = ? WHERE slug = ?",
                     HOSTILE_DESC, slug)
        r = self.server.get("/badges/criteria/" + slug)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        text = r.text
        # nothing the BadgeClass holds becomes markup
        self.assertNotIn("<script", text)
        self.assertNotIn("<img src=x", text)
        self.assertNotIn("<b>", text)
        self.assertIn("&lt;script&gt;alert(&quot;n&quot;)&lt;/script&gt; &amp; "
                      "&#39;quoted&#39; &quot;B&quot;", text)
        self.assertIn("<title>&lt;script&gt;", text)
        plain = r.plain
        self.assertIn(HOSTILE_NAME, plain)
        self.assertIn(HOSTILE_DESC, plain)
        # the narrative's paragraphs, each its own element
        paras = re.findall(r'<p class="narrative">(.*?)</p>', text, re.S)
        self.assertEqual(len(paras), 2, text)
        self.assertIn("&lt;/p&gt;&lt;script&gt;", paras[0])
        self.assertIn("&lt;b&gt;tags&lt;/b&gt;", paras[1])
        # the criteria URL as a link, escaped in the attribute and the text
        esc = "https://criteria.example.edu/c?a=1&amp;b=&lt;2&gt;"
        self.assertIn('<a href="%s" rel="noopener">%s</a>' % (esc, esc), text)
        # the image is ours, whatever the backend
        self.assertIn('src="/ob/v2/badges/%s/image"' % slug, text)
        # the page's own policy: no script
        self.assertIn("script-src 'self'", r.header("Content-Security-Policy"))

    def test_criteria_page_cacheable(self):
        slug = self.badge("Cached criteria", "--criteria", "Do the thing.")
        r = self.server.get("/badges/criteria/" + slug)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Cache-Control"), "public, max-age=300")
        self.assertEqual(r.headers.get_all("Cache-Control"), ["public, max-age=300"])
        self.assertEqual(r.header("Vary"), "Accept-Language")
        etag = r.header("ETag")
        self.assertRegex(etag or "", r'^"[0-9a-f]{32}"$')
        # the same page again: the same ETag; revalidated: 304, no body
        self.assertEqual(self.server.get("/badges/criteria/" + slug).header("ETag"), etag)
        for inm in (etag, "W/" + etag, '"nope", ' + etag, "*"):
            with self.subTest(inm=inm):
                nm = self.server.get("/badges/criteria/" + slug, headers={"If-None-Match": inm})
                self.assertEqual(nm.status, 304, nm)
                self.assertEqual(nm.body, b"")
                self.assertEqual(nm.header("ETag"), etag)
                self.assertEqual(nm.header("Cache-Control"), "public, max-age=300")
        self.assertEqual(self.server.get("/badges/criteria/" + slug,
                                         headers={"If-None-Match": '"other"'}).status, 200)
        head = self.server.request("HEAD", "/badges/criteria/" + slug)
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertEqual(head.header("ETag"), etag)
        # an edit changes the page and its ETag
        lt.setup_sql(self.db, "UPDATE badge_classes SET criteria_narrative = ? WHERE slug = ?",
                     "Do another thing.", slug)
        after = self.server.get("/badges/criteria/" + slug, headers={"If-None-Match": etag})
        self.assertEqual(after.status, 200, after)
        self.assertIn("Do another thing.", after.plain)
        self.assertNotEqual(after.header("ETag"), etag)

    def test_criteria_page_in_the_browsers_language(self):
        slug = self.badge("Languages", "--criteria", "Text.")
        en = self.server.get("/badges/criteria/" + slug)
        es = self.server.get("/badges/criteria/" + slug, headers={"Accept-Language": "es"})
        self.assertIn('<html lang="en">', en.text)
        self.assertIn('<html lang="es">', es.text)
        self.assertNotEqual(en.header("ETag"), es.header("ETag"))

    def test_criteria_page_of_archived_badge_stays(self):
        slug = self.badge("Archived criteria", "--criteria", "Still described.")
        lt.setup_sql(self.db, "UPDATE badge_classes SET archived_at = 1 WHERE slug = ?", slug)
        r = self.server.get("/badges/criteria/" + slug)
        self.assertEqual(r.status, 200, r)
        self.assertIn("Still described.", r.plain)

    def test_criteria_page_without_narrative_or_url(self):
        slug = self.badge("Bare criteria")
        r = self.server.get("/badges/criteria/" + slug)
        self.assertEqual(r.status, 200, r)
        self.assertIn("Bare criteria", r.plain)
        self.assertIn("About Bare criteria", r.plain)
        self.assertNotIn('class="narrative"', r.text)
        self.assertNotIn('class="criteria-url"', r.text)

    def test_criteria_page_refusals(self):
        for path in ("/badges/criteria/no-such-badge", "/badges/criteria/",
                     "/badges/criteria/a.b", "/badges/criteria/a/b", "/badges/criteria/..",
                     "/badges/criteria/%3Cscript%3E", "/badges/criteria/" + "a" * 101):
            with self.subTest(path=path):
                r = self.server.get(path)
                self.assertRefusal(r, 404, "there is no BadgeClass at this address")
                self.assertEqual(r.header("Cache-Control"), "no-store")
        slug = self.badge("Post refused")
        self.assertRefusal(self.server.request("POST", "/badges/criteria/" + slug, body=b""),
                           405)


if __name__ == "__main__":
    lt.main()
