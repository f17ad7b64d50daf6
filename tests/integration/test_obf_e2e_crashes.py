#!/usr/bin/python3
"""Open Badge Factory end to end, v2: `serve` killed with SIGKILL between
sending a badge or an event and recording it (one of each at OBF after the
restart, and a revoke after such an unknown outcome), a revoke sent again
after a 503, and edits pushed with a PUT. The set-up is test_obf_e2e.py's."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from test_obf_e2e import E2E, WAIT  # noqa: E402


class Crashes(E2E):
    """The server killed between sending to OBF and recording its answer."""

    def kill_while_sending(self, user, ctx, path):
        """Starts an award whose request at `path` OBF carries out and then holds, kills the
        server with SIGKILL meanwhile; returns the badge's slug and the award."""
        slug = self.award_ready(user, ctx)
        self.fake.add_fault("hang_after", "POST", path)
        self.launch(user, ctx)
        self.grade(user, ctx, 1)
        self.fake.wait_hanging(1)
        self.server.kill()
        self.fake.release()
        [a] = self.awards(user)
        self.assertIsNone(a["assertion_id"])
        # the lease of an award being sent outlasts any call (LIMIT_AWARDS_REMOTE_LEASE):
        # the time it gives a server killed mid-call passes here at once
        lt.setup_sql(self.db, "UPDATE awards SET next_attempt_at = 0 WHERE id = ?", a["id"])
        return slug, a

    def test_kill9_between_send_and_record(self):
        for n, path in enumerate((r"^/v2/badge/[^/]+$", r"/issue$")):
            with self.subTest(path=path):
                user, ctx = "k%d" % n, "kill-%d" % n
                slug, a = self.kill_while_sending(user, ctx, path)
                self.server = self.serve(config=self.cfg, env=self.env)
                [a] = self.wait_awards(user, 1)
                [b] = self.marked(slug)
                self.assertOneEvent(b["id"], user + "@example.edu", a)
                self.assertEqual(self.show(slug)["backend_id"], b["id"])

    def test_revoke_after_an_unknown_outcome(self):
        slug, a = self.kill_while_sending("rv", "revoke-1", r"/issue$")
        [b] = self.marked(slug)
        [held] = self.fake.events(self.cid, b["id"], "rv@example.edu")
        self.ok("award", "revoke", str(a["id"]), "--reason", "granted in error")
        lt.setup_sql(self.db, "UPDATE awards SET next_attempt_at = 0 WHERE id = ?", a["id"])
        self.server = self.serve(config=self.cfg, env=self.env)
        self.fake.wait_for(lambda r: r.path.endswith("/revoke") and r.status == 200,
                           timeout=WAIT)
        [got] = self.fake.events(self.cid, b["id"], "rv@example.edu")
        self.assertEqual(got["id"], held["id"])
        self.assertTrue(got["recipient"][0]["revoked"])
        self.wait_awards("rv", 1, states=("revoked",))


class Revoke(E2E):

    def test_revoke_an_issued_award_once_even_if_asked_again(self):
        self.award_ready("rev", "rev-1")
        self.launch("rev", "rev-1")
        self.grade("rev", "rev-1", 1)
        [a] = self.wait_awards("rev", 1)
        # the first revoke's answer fails: it is sent again, and OBF counts it done
        self.fake.add_fault("status", "PUT", r"/revoke$", status=503)
        self.ok("award", "revoke", str(a["id"]), "--reason", "plagiarism")
        self.fake.wait_for(lambda r: r.path.endswith("/revoke") and r.status == 200,
                           timeout=WAIT)
        e = self.fake.event(a["assertion_id"])
        self.assertTrue(e["recipient"][0]["revoked"])
        revokes = self.fake.matching(lambda r: r.path.endswith("/revoke"))
        self.assertEqual([r.status for r in revokes], [503, 200])
        self.assertEqual(revokes[-1].json, {"recipient": ["Rev@Example.EDU"]})


class Edits(E2E):

    def test_edits_reach_obf(self):
        slug = self.award_ready("ed", "edit-1")
        self.launch("ed", "edit-1")
        self.grade("ed", "edit-1", 1)
        self.wait_awards("ed", 1)
        [b] = self.marked(slug)
        self.assertTrue(b["image"].startswith("data:image/png;"))
        # refused once (500), then taken
        self.fake.add_fault("status", "PUT", r"^/v2/badge/", status=500)
        self.ok("badge", "set", slug, "--image", self.svg)
        self.fake.wait_for(lambda r: r.method == "PUT" and r.status == 200, timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while self.show(slug)["update_due_at"]:
            self.assertLess(time.monotonic(), deadline, "the edit stayed due")
            time.sleep(0.1)
        b = self.fake.badge(b["id"])
        self.assertTrue(b["image"].startswith("data:image/svg+xml;"))
        self.assertEqual(b["content"][0]["name"], "Badge edit-1")
        self.assertEqual(len(self.marked(slug)), 1)


if __name__ == "__main__":
    lt.main()
