#!/usr/bin/python3
"""A learner whose LMS shares no e-mail address gives one (issue 6, needs_email),
against the real server and a real SMTP server on loopback (smtpsink.py, Debian's
python3-aiosmtpd): the form on the learner's page, the confirmation mail and its
link, the badge issued once the link is followed and only once, and every
refusal (expired, used, unknown or malformed links, the hourly limit, CSRF, bad
addresses, a relay that refuses or fails) changing nothing. Without SMTP the
operator chooses: addresses taken as given (accept_unconfirmed), or no form at
all. The [email] configuration is checked at start."""
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
import test_ui as ui  # noqa: E402
from smtpsink import Sink  # noqa: E402

LINK_RE = re.compile(r"(http://\S+/badges/email/confirm\?t=([1-9][0-9]*)-([0-9a-f]{64}))")


class EmailCase(ui.PagesTestCase):
    """A server, courses with a manual badge, learners launched without an address."""

    def waiting_learner(self, user, locale=None):
        """A learner launched without an address, with a manual award waiting for one."""
        ctx = "em-" + lt.hex_id(4)
        self.cli("context", "enable", "--consumer", self.key, "--context", ctx)
        slug = self.badge("Helper " + ctx, "manual", ctx)
        over = {"launch_presentation_locale": locale} if locale else {}
        token, _ = self.open_page(user, ctx, email=False, **over)
        self.cli("award", "grant", "--badge", slug, "--consumer", self.key, "--user", user)
        self.wait_state(user, slug, "needs_email")
        return token, slug

    def awards_of(self, user):
        return [a for a in json.loads(self.cli("award", "list", "--json").stdout)
                if a["user"] == user]

    def user_row(self, user):
        return lt.user(self.db, self.key, user)

    def links(self, user):
        return self.user_row(user)["email_links"]

    def give(self, token, email, **extra):
        page = self.get_page(token)
        fields = ui.form_fields(page.text, "/badges/email")
        fields["email"] = email
        fields.update(extra)
        return self.post("/badges/email", {k: v for k, v in fields.items() if v is not None})


class SmtpCase(EmailCase):
    """The server sends through a sink of its own (smtpsink.py)."""

    @classmethod
    def setUpClass(cls):
        cls.mail_dir = tempfile.mkdtemp(prefix="ltibadges-mail-")
        cls.sink = Sink(cls.mail_dir)
        port = cls.sink.start()
        cls.CONFIG = ("[email]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = badges@example.edu\n"
                      "from_name = Insignias de Ejemplo\nstarttls = false\n"
                      "allow_loopback = true\n" % port)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.sink.stop()
            shutil.rmtree(cls.mail_dir, ignore_errors=True)

    def setUp(self):
        self.sink.set_fault(None)

    def mail_to(self, address, count=1):
        """The messages sent to `address`, waiting for `count` of them."""
        deadline = time.monotonic() + 10
        while True:
            got = [(m, e) for m, e in zip(self.sink.messages(), self.sink.envelopes())
                   if e["rcpt_tos"] == [address]]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                self.fail("%d mail(s) to %s, expected %d" % (len(got), address, count))
            time.sleep(0.05)


class WithSmtp(SmtpCase):
    def test_link_mailed_followed_and_badge_issued_once(self):
        token, slug = self.waiting_learner("mia")
        page = self.get_page(token)
        pend = ui.section(page.text, "pending-h")
        self.assertIn('type="email"', pend)
        self.assertIn('autocomplete="email"', pend)
        self.assertRegex(pend, r'<label for="email-input">[^<]+</label>')
        self.assertIn("Send me the link", ui.plain(pend))

        resp = self.give(token, "mia@example.org")
        self.assertEqual(resp.status, 303, resp)
        self.assertIn("m=mailed", resp.header("Location"))
        (msg, env), = self.mail_to("mia@example.org")
        self.assertEqual(env["mail_from"], "badges@example.edu")
        self.assertEqual(env["defects"], [])
        self.assertEqual(env["subject"], "Confirm your e-mail address for your badges")
        m = LINK_RE.search(env["text"])
        self.assertIsNotNone(m, env["text"])
        link, lid, secret = m.groups()
        self.assertTrue(link.startswith(self.server.public_url + "/badges/email/confirm?t="))
        self.assertIn("48 hours", env["text"])

        # only the secret's hash is stored; nothing is released before the link is followed
        (row,) = self.links("mia")
        self.assertEqual(row["id"], int(lid))
        self.assertEqual(row["secret_sha256"], hashlib.sha256(secret.encode()).hexdigest())
        self.assertNotIn(secret, json.dumps({k: str(v) for k, v in row.items()}))
        self.assertIsNone(row["used_at"])
        self.assertEqual(self.awards_of("mia")[0]["state"], "needs_email")
        self.assertIsNone(self.user_row("mia")["email"])
        page = self.get_page(token)
        self.assertIn("We sent a link to mia@example.org", page.plain)
        self.assertIn("Send the link again", page.plain)

        path = link[len(self.server.public_url):]
        # a HEAD (link checkers, previews) does not use the link
        head = self.server.request("HEAD", path)
        self.assertEqual(head.status, 200)
        self.assertIsNone(self.links("mia")[0]["used_at"])

        done = self.server.get(path)
        self.assertEqual(done.status, 200, done)
        self.assertIn("mia@example.org is confirmed", done.plain)
        user = self.user_row("mia")
        self.assertEqual((user["email"], user["email_source"]), ("mia@example.org", "confirmed"))
        award = self.wait_state("mia", slug, "issued")
        self.assertEqual(award["recipient"], "mia@example.org")
        used_at = self.links("mia")[0]["used_at"]
        self.assertIsNotNone(used_at)

        again = self.server.get(path)
        self.assertRefusal(again, 410, "used already")
        awards = self.awards_of("mia")
        self.assertEqual([(a["state"], a["assertion_id"]) for a in awards],
                         [("issued", award["assertion_id"])], "issued once")
        self.assertEqual(self.links("mia")[0]["used_at"], used_at)

        # the page shows the badge earned; no form any more
        page = self.get_page(token)
        self.assertNotIn('name="email"', page.text)
        self.assertIn("Helper", ui.plain(ui.section(page.text, "earned-h")))
        # the token never reaches the access log
        self.assertNotIn(secret, self.server.stderr())
        self.assertIn("method=GET path=/badges/email/confirm status=410",
                      self.server.stderr())

        # a later launch without an address keeps the confirmed one
        ctx = "em-re-" + lt.hex_id(3)
        self.open_page("mia", ctx, email=False)
        user = self.user_row("mia")
        self.assertEqual((user["email"], user["email_source"]), ("mia@example.org", "confirmed"))

    def test_mail_in_the_learners_language(self):
        token, _ = self.waiting_learner("lucia", locale="es-MX")
        resp = self.give(token, "lucia@example.org")
        self.assertEqual(resp.status, 303, resp)
        (_, env), = self.mail_to("lucia@example.org")
        self.assertEqual(env["subject"], "Confirma tu dirección de correo para tus insignias")
        self.assertIn("48 horas", env["text"])
        self.assertIn("Insignias de Ejemplo", env["from_rfc2047"])
        self.assertIsNotNone(LINK_RE.search(env["text"]))

    def test_expired_link_refused(self):
        token, slug = self.waiting_learner("exp")
        self.assertEqual(self.give(token, "exp@example.org").status, 303)
        (_, env), = self.mail_to("exp@example.org")
        link = LINK_RE.search(env["text"]).group(1)
        lt.setup_sql(self.db, "UPDATE email_confirmations SET expires_at = ? WHERE id = ?",
                     int(time.time()) - 1, self.links("exp")[0]["id"])
        resp = self.server.get(link[len(self.server.public_url):])
        self.assertRefusal(resp, 410, "expired")
        self.assertIsNone(self.links("exp")[0]["used_at"])
        self.assertIsNone(self.user_row("exp")["email"])
        self.assertEqual(self.awards_of("exp")[0]["state"], "needs_email")

    def test_bad_links_refused(self):
        token, _ = self.waiting_learner("badlink")
        self.assertEqual(self.give(token, "badlink@example.org").status, 303)
        (_, env), = self.mail_to("badlink@example.org")
        _, lid, secret = LINK_RE.search(env["text"]).groups()
        for q in ("", "?t=", "?t=%s" % lid, "?t=%s-%s" % (lid, secret[:-1]),
                  "?t=%s-%s" % (lid, secret.upper()), "?t=x-%s" % secret, "?s=%s-%s" % (lid, secret)):
            self.assertRefusal(self.server.get("/badges/email/confirm" + q), 400, "incomplete")
        other = ("0" if secret[0] != "0" else "1") + secret[1:]
        self.assertRefusal(self.server.get("/badges/email/confirm?t=%s-%s" % (lid, other)), 404,
                           "not valid")
        self.assertRefusal(self.server.get("/badges/email/confirm?t=999999-%s" % secret), 404)
        self.assertRefusal(self.server.request("POST", "/badges/email/confirm?t=%s-%s"
                                               % (lid, secret)), 405)
        self.assertIsNone(self.links("badlink")[0]["used_at"])
        self.assertIsNone(self.user_row("badlink")["email"])

    def test_newer_link_replaces_address_and_voids_the_other(self):
        # the learner mistypes the address (a stranger's), then asks again with the right one
        token, slug = self.waiting_learner("two")
        self.assertEqual(self.give(token, "old@example.org").status, 303)
        self.assertEqual(self.give(token, "new@example.org").status, 303)
        old = LINK_RE.search(self.mail_to("old@example.org")[0][1]["text"]).group(1)
        new = LINK_RE.search(self.mail_to("new@example.org")[0][1]["text"]).group(1)
        # the stranger follows the first link before the learner follows theirs: it is void
        resp = self.server.get(old[len(self.server.public_url):])
        self.assertRefusal(resp, 410, "replaced by a newer one")
        self.assertIsNone(self.user_row("two")["email"])
        self.assertEqual(self.awards_of("two")[0]["state"], "needs_email")
        self.assertEqual(len(self.links("two")), 2, "both links count against the hourly limit")
        self.assertEqual(self.server.get(new[len(self.server.public_url):]).status, 200)
        self.assertRefusal(self.server.get(old[len(self.server.public_url):]), 410, "replaced")
        self.assertEqual(self.user_row("two")["email"], "new@example.org")
        self.assertEqual(self.wait_state("two", slug, "issued")["recipient"], "new@example.org")

    def test_lms_address_sent_meanwhile_is_kept(self):
        token, slug = self.waiting_learner("late")
        self.assertEqual(self.give(token, "late@example.org").status, 303)
        link = LINK_RE.search(self.mail_to("late@example.org")[0][1]["text"]).group(1)
        # the LMS shares the address before the learner follows the link
        self.open_page("late", "em-late-" + lt.hex_id(3))
        self.wait_state("late", slug, "issued")
        done = self.server.get(link[len(self.server.public_url):])
        self.assertEqual(done.status, 200, done)
        self.assertNotIn("late@example.org", done.plain)
        self.assertNotIn("is confirmed", done.plain)
        self.assertIn("the address your learning platform shares is kept", done.plain)
        self.assertNotIn("late@example.edu", done.plain, "the link is no proof of the LMS's address")
        user = self.user_row("late")
        self.assertEqual((user["email"], user["email_source"]), ("late@example.edu", None))
        self.assertEqual(self.awards_of("late")[0]["recipient"], "late@example.edu")
        self.assertIsNotNone(self.links("late")[0]["used_at"])

    def test_hourly_limit(self):
        token, _ = self.waiting_learner("often")
        before = len(self.sink.messages())
        for i in range(5):
            resp = self.give(token, "often%d@example.org" % i)
            self.assertEqual(resp.status, 303, (i, resp))
        resp = self.give(token, "often5@example.org")
        self.assertRefusal(resp, 429, "5 confirmation e-mails in the last hour")
        self.assertEqual(len(self.links("often")), 5)
        self.mail_to("often4@example.org")
        self.assertEqual(len(self.sink.messages()), before + 5)
        # an hour later another may be asked for
        lt.setup_sql(self.db, "UPDATE email_confirmations SET created_at = created_at - 3601 "
                     "WHERE user_id = ?", self.user_row("often")["id"])
        self.assertEqual(self.give(token, "often6@example.org").status, 303)

    def test_csrf_session_and_address_checked(self):
        token, _ = self.waiting_learner("csrf")
        connections = self.sink.connections()
        self.assertRefusal(self.give(token, "csrf@example.org", csrf=None), 403)
        self.assertRefusal(self.give(token, "csrf@example.org", csrf="0" * 64), 403)
        self.assertRefusal(self.give(token, "csrf@example.org", s="1-" + "0" * 64), 403)
        for bad in ("", "not-an-address", "a@b", "a b@example.org", "<a@example.org>",
                    "a@example.org\r\nBcc: x@example.org", "\u00e9@example.org",
                    "a@[127.0.0.1]", "x" * 250 + "@example.org"):
            self.assertRefusal(self.give(token, bad), 400, "not an e-mail address")
        self.assertEqual(self.links("csrf"), [])
        self.assertIsNone(self.user_row("csrf")["email"])
        self.assertEqual(self.sink.connections(), connections, "nothing was sent")
        # the form is a form: another method or media type is refused
        self.assertRefusal(self.server.get("/badges/email?s=" + token), 405)
        resp = self.post("/badges/email", {"s": token}, content_type="application/json")
        self.assertRefusal(resp, 415)

    def test_no_badge_waiting_or_address_known(self):
        ctx = "known-" + lt.hex_id(3)
        token, page = self.open_page("known", ctx)
        self.assertNotIn('name="email"', page.text, "the LMS shared an address: no form")
        resp = self.post("/badges/email", {"s": token, "csrf": lt.csrf_of(self.db, token),
                                           "email": "other@example.org"})
        self.assertRefusal(resp, 409, "knows your e-mail address already")
        self.assertEqual(self.user_row("known")["email"], "known@example.edu")
        self.assertEqual(self.links("known"), [])

        token2, _ = self.waiting_learner("nowait")
        fields = ui.form_fields(self.get_page(token2).text, "/badges/email")
        self.cli("award", "revoke", str(self.awards_of("nowait")[0]["id"]), "--reason", "test")
        resp = self.post("/badges/email", dict(fields, email="nowait@example.org"))
        self.assertRefusal(resp, 409, "no badge of yours is waiting")
        self.assertEqual(self.links("nowait"), [])

    def test_relay_failures_leave_nothing_half_made(self):
        token, slug = self.waiting_learner("fail")
        for fault, status, phrase in (("reject", 400, "refused"), ("tempfail", 502, "try again"),
                                      ("drop", 502, "try again")):
            self.sink.set_fault(fault)
            resp = self.give(token, "fail@example.org")
            self.assertRefusal(resp, status, phrase)
            # the link is kept, unusable, so that it counts against the hourly limit
            link = self.links("fail")[-1]
            self.assertIsNone(link["used_at"])
            self.assertLessEqual(link["expires_at"], int(time.time()), fault)
            self.assertIsNone(self.user_row("fail")["email"])
            self.assertNotIn("We sent a link", self.get_page(token).plain)
            # the error's detail goes to the log, not to the page
            self.assertIn("a confirmation mail was not sent", self.server.stderr())
            self.assertIn("last SMTP reply", self.server.stderr())
            self.assertNotIn("SMTP reply", resp.text)
        self.assertEqual(len(self.links("fail")), 3)
        self.assertNotIn("fail@example.org", self.server.stderr(), "no address in the log")
        # once the relay works, a retry does
        self.sink.set_fault(None)
        self.assertEqual(self.give(token, "fail@example.org").status, 303)
        link = LINK_RE.search(self.mail_to("fail@example.org")[0][1]["text"]).group(1)
        self.assertEqual(self.server.get(link[len(self.server.public_url):]).status, 200)
        self.wait_state("fail", slug, "issued")

    def test_failing_relay_tried_at_most_the_hourly_limit(self):
        token, _ = self.waiting_learner("refused")
        self.sink.set_fault("reject")
        connections = self.sink.connections()
        for i in range(5):
            self.assertRefusal(self.give(token, "refused@example.org"), 400, "refused")
        self.assertRefusal(self.give(token, "refused@example.org"), 429,
                           "5 confirmation e-mails in the last hour")
        self.sink.set_fault(None)
        self.assertRefusal(self.give(token, "refused@example.org"), 429)
        self.assertEqual(self.sink.connections(), connections + 5, "the relay tried 5 times")
        self.assertEqual(len(self.links("refused")), 5)


class StuckRelay(SmtpCase):
    """A relay that takes the message and never answers: the learners asking
    meanwhile are told at once to try again once the mailer's few places are
    taken, and stopping the server does not wait for their mails."""

    QUEUE = 3  # LIMIT_MAIL_QUEUE: the mail being sent and those waiting

    def test_full_queue_refused_at_once_and_stop_does_not_wait(self):
        forms = []
        for i in range(self.QUEUE + 1):
            token, _ = self.waiting_learner("stuck%d" % i)
            fields = ui.form_fields(self.get_page(token).text, "/badges/email")
            forms.append(dict(fields, email="stuck%d@example.org" % i))
        self.sink.set_fault("hang")
        connections = self.sink.connections()
        answers = [None] * self.QUEUE

        def ask(i):
            try:
                answers[i] = self.post("/badges/email", forms[i])
            except Exception as e:  # noqa: BLE001 - reported by the assertions below
                answers[i] = e

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(self.QUEUE)]
        for t in threads:
            t.start()
        # every place taken: the first mail stuck at the relay, the others waiting behind it
        deadline = time.monotonic() + 10
        while (self.sink.connections() == connections or
               sum(len(self.links("stuck%d" % i)) for i in range(self.QUEUE)) < self.QUEUE):
            self.assertLess(time.monotonic(), deadline, "the mails were not queued")
            time.sleep(0.05)
        time.sleep(0.3)
        t0 = time.monotonic()
        full = lt.http_request(self.server.port, "POST", "/badges/email",
                               body=urllib.parse.urlencode(forms[-1]).encode(),
                               headers={"Content-Type": lt.FORM}, timeout=5)
        self.assertLess(time.monotonic() - t0, 2, "refused at once, not queued")
        self.assertRefusal(full, 503, "Too many e-mails are waiting")
        self.assertLessEqual(self.links("stuck%d" % self.QUEUE)[0]["expires_at"], int(time.time()))

        rc, elapsed = self.server.stop(timeout=15)
        self.assertEqual(rc, 0, self.server.stderr()[-2000:])
        self.assertLess(elapsed, 5, "stopping waited for the stuck relay")
        for t in threads:
            t.join(5)
        for i, resp in enumerate(answers):
            self.assertIsInstance(resp, lt.Response, (i, resp))
            self.assertRefusal(resp, 503, "restarting")
            # not sent: the link never works, and counts against the hourly limit
            (link,) = self.links("stuck%d" % i)
            self.assertLessEqual(link["expires_at"], link["created_at"], i)
            self.assertIsNone(self.user_row("stuck%d" % i)["email"])
        self.assertEqual(self.sink.messages(), [])
        self.assertEqual(self.server.stderr().count(
            "a confirmation mail was not sent: the server is stopping"), self.QUEUE)


class AcceptUnconfirmed(EmailCase):
    CONFIG = "[email]\naccept_unconfirmed = true\n"

    def test_address_taken_as_given(self):
        token, slug = self.waiting_learner("una")
        page = self.get_page(token)
        pend = ui.plain(ui.section(page.text, "pending-h"))
        self.assertIn("Your badges are issued to this address.", pend)
        self.assertNotIn("Ask your instructor", pend)
        self.assertRefusal(self.give(token, "una@"), 400)
        resp = self.give(token, "una@example.org")
        self.assertEqual(resp.status, 303, resp)
        self.assertIn("m=email", resp.header("Location"))
        user = self.user_row("una")
        self.assertEqual((user["email"], user["email_source"]), ("una@example.org", "unconfirmed"))
        self.assertEqual(self.wait_state("una", slug, "issued")["recipient"], "una@example.org")
        self.assertEqual(self.links("una"), [], "no link without mail")
        resp = self.post("/badges/email", dict(
            ui.form_fields(page.text, "/badges/email"), email="other@example.org"))
        self.assertRefusal(resp, 409, "knows your e-mail address already")
        self.assertEqual(self.user_row("una")["email"], "una@example.org")
        self.assertEqual(len(self.awards_of("una")), 1)


class NoMail(EmailCase):
    def test_no_form_and_post_refused(self):
        token, slug = self.waiting_learner("nomail")
        page = self.get_page(token)
        self.assertNotIn('name="email"', page.text)
        self.assertIn("Ask your instructor", ui.plain(ui.section(page.text, "pending-h")))
        fields = {"s": token, "csrf": lt.csrf_of(self.db, token), "email": "nomail@example.org"}
        resp = self.post("/badges/email", fields)
        self.assertRefusal(resp, 403)
        self.assertIsNone(self.user_row("nomail")["email"])
        self.assertEqual(self.awards_of("nomail")[0]["state"], "needs_email")
        self.assertRefusal(self.server.get("/badges/email/confirm?t=1-" + "a" * 64), 404)


class Configuration(unittest.TestCase):
    """`serve` refuses an [email] section that does not hold together, naming the key."""

    def refused(self, config, *phrases, env=None):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tool.ini")
            with open(path, "w") as f:
                f.write(config)
            p = lt.run_cli("serve", "--config", path, "--db", os.path.join(d, "x.db"),
                           "--listen", "127.0.0.1:0", env=env, timeout=20)
        self.assertEqual(p.returncode, 1, (config, p.stdout, p.stderr))
        for phrase in phrases:
            self.assertIn(phrase, p.stderr, config)
        return p.stderr

    def test_bad_email_sections(self):
        self.refused("[email]\nsmtp = smtp://x\n", "unknown key 'email.smtp'")
        self.refused("[email]\nsmtp_url = http://mail.example.edu\n", "'smtp_url' must be smtp://")
        self.refused("[email]\nfrom = not an address\n", "'from' must be a plain e-mail address")
        self.refused("[email]\nstarttls = maybe\n", "'starttls' must be true or false")
        self.refused("[email]\naccept_unconfirmed = 2\n", "'accept_unconfirmed' must be true")
        self.refused("[email]\nsmtp_url = smtp://mail.example.edu\n", "'from'", "needed")
        self.refused("[email]\nsmtp_url = smtp://mail.example.edu\nfrom = b@example.edu\n"
                     "accept_unconfirmed = true\n", "'accept_unconfirmed'")
        self.refused("[email]\nsmtp_url = smtp://mail.example.edu\nfrom = b@example.edu\n"
                     "username = u\n", "'username' and 'password' go together")
        err = self.refused("[email]\nsmtp_url = smtp://mail.example.edu\nfrom = b@example.edu\n"
                           "starttls = false\nusername = u\npassword = s3cret-pw\n",
                           "only sent over TLS")
        self.assertNotIn("s3cret-pw", err)
        self.refused("[email]\nfrom = b@example.edu\n", "need 'smtp_url'")
        self.refused("[email]\nsmtp_url = smtp://u:p@mail.example.edu\nfrom = b@example.edu\n",
                     "must not hold credentials")
        self.refused("", "'smtp_url' must be smtp://",
                     env={"LTIBADGES_SMTP_URL": "ftp://mail.example.edu"})


if __name__ == "__main__":
    lt.main()
