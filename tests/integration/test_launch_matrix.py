#!/usr/bin/python3
"""Every role, with and without each optional launch parameter, lands on a page
that renders: LTI 1.1 makes context_id recommended, not required, and every
lis_person_* and launch_presentation_* field optional. Each cell is one signed
launch through the real server: a 303 to a page, and that page (and the
learner's "all my badges" page) 200 HTML naming the view, never a 5xx."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402

ROLES = {
    "Learner": "learner",
    "Instructor": "instructor",
    "TeachingAssistant": "instructor",
    "ContentDeveloper": "instructor",
    "Administrator": "instructor",
    "Mentor": "learner",
    None: "learner",  # no roles parameter at all
}

# each optional parameter, and what stands beside it (a binding needs both its fields)
OPTIONAL = (
    ("context_id", ("context_id", "context_title", "context_label")),
    ("context_title", ("context_title",)),
    ("context_label", ("context_label",)),
    ("resource_link_title", ("resource_link_title",)),
    ("lis_person_name_given", ("lis_person_name_given",)),
    ("lis_person_name_family", ("lis_person_name_family",)),
    ("lis_person_name_full", ("lis_person_name_full",)),
    ("lis_person_names", ("lis_person_name_given", "lis_person_name_family",
                          "lis_person_name_full")),
    ("lis_person_contact_email_primary", ("lis_person_contact_email_primary",)),
    ("lis_person_sourcedid", ("lis_person_sourcedid",)),
    ("launch_presentation_return_url", ("launch_presentation_return_url",)),
    ("launch_presentation_locale", ("launch_presentation_locale",)),
    ("launch_presentation_document_target", ("launch_presentation_document_target",)),
    ("lis_outcome_service_url", ("lis_outcome_service_url", "lis_result_sourcedid")),
    ("every optional one", None),
)


def full_launch(role):
    p = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": "rl-" + lt.hex_id(6),
        "resource_link_title": "Badges",
        "user_id": "u-" + lt.hex_id(6),
        "context_id": "ctx-" + lt.hex_id(6),
        "context_title": "Matrix course",
        "context_label": "MTX",
        "lis_person_name_given": "Rosalind",
        "lis_person_name_family": "Franklin",
        "lis_person_name_full": "Rosalind Franklin",
        "lis_person_contact_email_primary": "rf@example.edu",
        "lis_person_sourcedid": "sis-" + lt.hex_id(4),
        "launch_presentation_return_url": "https://lms.example.edu/return",
        "launch_presentation_locale": "es-ES",
        "launch_presentation_document_target": "iframe",
        "lis_outcome_service_url": "https://lms.example.edu/outcomes",
        "lis_result_sourcedid": "src-" + lt.hex_id(6),
    }
    if role is not None:
        p["roles"] = role
    return p


REQUIRED = ("lti_message_type", "lti_version", "resource_link_id", "user_id", "roles")


class LaunchMatrix(lt.ServerTestCase):

    def cell(self, role, view, drop):
        p = full_launch(role)
        if drop is None:
            p = {k: v for k, v in p.items() if k in REQUIRED}
        else:
            for k in drop:
                p.pop(k, None)
        resp = self.launch(list(p.items()))
        self.assertEqual(resp.status, 303, resp)
        page = self.server.get(self.server.page_path(resp.header("Location")))
        self.assertEqual(page.status, 200, page)
        self.assertTrue((page.header("Content-Type") or "").startswith("text/html"), page)
        self.assertIn("</html>", page.text)
        self.assertEqual(lt.page_view(page.text), view, page.text[:2000])
        return resp, page

    def test_every_role_with_and_without_each_optional_parameter(self):
        for role, view in ROLES.items():
            for name, drop in OPTIONAL:
                with self.subTest(role=role, without=name):
                    self.cell(role, view, drop)

    def test_without_context_the_page_says_so(self):
        # a launch from outside a course (an LMS's user or account menu): the learner sees
        # every badge of theirs, the instructor is told there is nothing to set up here, and
        # the course-only pages refuse with a reason instead of failing
        for role, words in (("Instructor", "Open this tool from inside a course"),
                            ("Learner", "opened outside a course")):
            with self.subTest(role=role):
                resp, page = self.cell(role, ROLES[role],
                                       ("context_id", "context_title", "context_label",
                                        "launch_presentation_locale"))
                self.assertIn(words, page.plain)
                token = resp.header("Location").split("s=", 1)[1]
                for path in ("/badges/edit", "/badges/awards", "/badges/awards.csv",
                             "/badges/all"):
                    r = self.server.get(path + "?s=" + token)
                    self.assertLess(r.status, 500, (path, r))
                    if role == "Instructor" and path != "/badges/all":
                        self.assertEqual(r.status, 403, (path, r))
                        self.assertIn("inside a course", r.plain)
                # the settings form of a course that is not there changes nothing
                before = lt.counts(self.db)
                r = self.server.post_form(lt.encode_params([
                    ("s", token), ("csrf", lt.csrf_of(self.db, token)), ("enabled", "1"),
                    ("pass_percent", "50")]), path="/badges/settings")
                self.assertIn(r.status, (403,), r)
                self.assertEqual(lt.counts(self.db), before)


if __name__ == "__main__":
    lt.main()
