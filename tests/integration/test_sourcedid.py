#!/usr/bin/python3
"""Grade passback after 100 relaunches, each with a fresh lis_result_sourcedid,
as Moodle and Canvas send them (issue 17).

The fake LMS (fakelms.py) issues every launch's sourcedid as the product does
(Moodle: a new launchid under the instance's salted hash; Canvas: an encrypted
token with the time of issue) and checks the one the tool sends back as the
product does: any sourcedid it issued for that (link, learner) names the same
grade cell, none expires, and Canvas refuses all of them once the learner is no
longer enrolled. Whatever sourcedid the tool keeps of the 100, its reads and
its passbacks must be ones the fake issued for that pair and be accepted.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelms  # noqa: E402
import ltitest as lt  # noqa: E402
import test_outcomes  # noqa: E402
from fakelms import CANVAS, MOODLE, READ, REPLACE  # noqa: E402
from ltitest import hex_id  # noqa: E402

LAUNCHES = 100


class Relaunches(test_outcomes.OutcomesCase):
    # the fake LMS listens on 127.0.0.1; grades are read back every 2 seconds
    CONFIG = test_outcomes.Outgoing.CONFIG

    def setUp(self):
        self.lms = fakelms.FakeLMS({self.key: self.secret}).start()
        self.addCleanup(self.lms.stop)
        self.ctx = "ctx-" + hex_id(4)
        self.cli("context", "enable", "--consumer", self.key, "--context", self.ctx)

    def relaunch(self, flavour, link, lms_user, tool_link, tool_user, url, n=LAUNCHES,
                 issue=None, **extra):
        """`n` launches of one learner on one link, each with a sourcedid the fake
        issued just before, as the LMS does at every click; returns them in order."""
        sids = []
        for _ in range(n):
            sids.append(self.lms.issue_sourcedid(flavour, link, lms_user, **(issue or {})))
            self.launch_with_binding(tool_user, self.ctx, tool_link, sids[-1], url,
                                     tool_consumer_info_product_family_code=flavour, **extra)
        self.assertEqual(len(set(sids)), n)
        self.assertEqual(self.lms.issued_for(flavour, link, lms_user), sids)
        return sids

    def binding(self, tool_user, tool_link):
        rows = [b for b in lt.user(self.db, self.key, tool_user)["outcome_bindings"]
                if b["resource_link"] == tool_link]
        self.assertEqual(len(rows), 1, rows)
        return rows[0]

    def passback_of(self, tool_user, slug, state):
        """The award of `slug` once its passback is in `state`."""
        def got():
            return [a for a in self.user_awards(tool_user) if a["badge"] == slug
                    and (a["passback"] or {}).get("state") == state]
        return self.wait_for("passback %s of %s" % (state, slug), got)[0]

    def all_passed_back(self, tool_user):
        """The learner's awards once each one's passback is done (a grade that earns the
        link's badge also completes the course, which earns the course's own badge)."""
        def settled():
            awards = self.user_awards(tool_user)
            return awards if awards and all((a["passback"] or {}).get("state")
                                            in ("done", "failed") for a in awards) else None
        try:
            awards = self.wait_for("every passback of %s" % tool_user, settled)
        except AssertionError as e:
            raise AssertionError("%s; the LMS refused: %s" % (e, [
                (r.operation, r.description) for r in self.lms.records if r.refusal])) from None
        for a in awards:
            self.assertEqual(a["passback"]["state"], "done", a)
            self.assertTrue(a["passback"]["answer"].startswith("success"), a)
        return awards

    def assertIssuedAndAccepted(self, recs, pair, sids):
        """Every request is for a sourcedid the fake issued for `pair`, and was accepted."""
        self.assertTrue(recs)
        for r in recs:
            self.assertIn(r.sourcedid, sids, r)
            self.assertEqual(self.lms.issued(r.sourcedid), pair, r)
            self.assertEqual(r.cell, pair, r)
            self.assertTrue(r.signature_ok and r.body_hash_ok, r)
            self.assertEqual((r.status, r.code_major, r.refusal), (200, "success", None),
                             (r.operation, r.description))

    def test_moodle_passback_after_100_relaunches(self):
        instance, lms_user = random.randrange(100, 10**6), random.randrange(100, 10**6)
        link, user = str(instance), str(lms_user)      # Moodle's resource_link_id and user_id
        pair = (MOODLE, link, user)
        slug = self.badge("Quiz ace", "score:0.8:" + link, self.ctx)
        sids = self.relaunch(MOODLE, instance, lms_user, link, user, self.lms.moodle_url())
        # the tool read the (empty) grade back with one of them
        self.lms.wait_for(lambda r: r.operation == READ, timeout=test_outcomes.WAIT)
        # a grade the LMS does not hold earns the badge: its score (1.0) goes to Moodle
        self.cli("grade", "record", "--consumer", self.key, "--context", self.ctx, "--user", user,
                 "--resource-link", link, "--score", "0.9")
        awards = self.all_passed_back(user)
        self.assertIn(slug, [a["badge"] for a in awards])
        replaces = self.lms.matching(lambda r: r.operation == REPLACE)
        self.assertEqual(len(replaces), len(awards), replaces)
        self.assertEqual({float(r.score_text) for r in replaces}, {1.0})
        self.assertEqual(self.lms.cell(MOODLE, instance, lms_user)["score"], 1.0)
        # Moodle accepted each read and each passback, all with sourcedids it issued the learner
        self.assertIssuedAndAccepted(self.lms.records, pair, sids)
        # the passbacks went with the sourcedid the binding holds, one of the 100
        bound = self.binding(user, link)
        self.assertIn(bound["sourcedid"], sids)
        self.assertEqual({r.sourcedid for r in replaces}, {bound["sourcedid"]})
        self.assertIsNone(bound["last_read_error"])

    def test_canvas_passback_after_100_relaunches_and_unenrolled(self):
        course, assignment, lms_user = (random.randrange(100, 10**6) for _ in range(3))
        user, link = hex_id(20), hex_id(20)     # Canvas sends opaque user and link ids
        pair = (CANVAS, str(assignment), str(lms_user))
        slug = self.badge("Quiz ace", "score:0.8:" + link, self.ctx)
        sids = self.relaunch(CANVAS, assignment, lms_user, link, user, self.lms.canvas_url(),
                             issue={"course": course},
                             ext_outcome_data_values_accepted="url,text")
        self.assertTrue(all(len(s) > 400 for s in sids))
        # the instructor grades in Canvas; the tool's next read brings the grade, which earns
        # the badge; the grade is kept and the badge's URL goes with it
        self.lms.set_cell(CANVAS, assignment, lms_user, score=0.9)
        awards = self.all_passed_back(user)
        self.assertIn(slug, [a["badge"] for a in awards])
        urls = {a["assertion_url"] for a in awards}
        replaces = self.lms.matching(lambda r: r.operation == REPLACE)
        self.assertEqual(len(replaces), len(awards), replaces)
        self.assertEqual({(float(r.score_text), r.result_data_url) for r in replaces},
                         {(0.9, u) for u in urls})
        cell = self.lms.cell(CANVAS, assignment, lms_user)
        self.assertEqual(cell["score"], 0.9)
        self.assertIn(cell["url"], urls)
        self.assertIssuedAndAccepted(self.lms.records, pair, sids)
        bound = self.binding(user, link)
        self.assertIn(bound["sourcedid"], sids)
        self.assertEqual({r.sourcedid for r in replaces}, {bound["sourcedid"]})
        written = cell["url"]

        # unenrolled: Canvas refuses every sourcedid of the learner, so the next badge's
        # passback fails, final (a 422 failure), with Canvas's reason recorded
        self.lms.unenroll(course, lms_user)
        extra = self.badge("Extra credit", "manual", self.ctx)
        self.cli("award", "grant", "--badge", extra, "--consumer", self.key, "--user", user)
        failed = self.passback_of(user, extra, "failed")
        self.assertIn("failure", failed["passback"]["answer"])
        self.assertIn("User is no longer in course", failed["passback"]["answer"])
        refused = self.lms.matching(lambda r: r.operation == REPLACE and r.refusal)
        self.assertTrue(refused)
        for r in refused:
            self.assertEqual(self.lms.issued(r.sourcedid), pair, r)
            self.assertEqual((r.status, r.code_major), (422, "failure"), r)
            self.assertIn("User is no longer in course", r.description)
        self.assertEqual(self.lms.cell(CANVAS, assignment, lms_user)["url"], written)
        # enrolled again, the same sourcedids pass: a retry is written
        self.lms.enroll(course, lms_user)
        self.cli("award", "retry", str(failed["id"]))
        again = self.passback_of(user, extra, "done")
        self.assertEqual(self.lms.cell(CANVAS, assignment, lms_user)["url"],
                         again["assertion_url"])
        last = self.lms.matching(lambda r: r.operation == REPLACE)[-1]
        self.assertEqual((last.code_major, self.lms.issued(last.sourcedid)), ("success", pair))

    # A binding keeps its sourcedid instead of being rewritten at every launch (refreshed
    # at most hourly): the LMS accepts any it issued.
    def test_relaunches_keep_the_binding(self):
        instance, lms_user = random.randrange(100, 10**6), random.randrange(100, 10**6)
        link, user = str(instance), str(lms_user)
        self.badge("Kept", "score:0.8:" + link, self.ctx)
        sids = self.relaunch(MOODLE, instance, lms_user, link, user, self.lms.moodle_url())
        bound = self.binding(user, link)
        self.assertIn(bound["sourcedid"], sids)
        self.assertEqual(bound["sourcedid"], sids[0], "the binding was rewritten by relaunches")
        self.assertEqual(bound["updated_at"], bound["created_at"])


if __name__ == "__main__":
    lt.main()
