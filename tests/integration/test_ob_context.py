#!/usr/bin/python3
"""The Open Badges 2.0 terms test_awards checks every hosted document against
are exactly those of the specification's published JSON-LD context
(1EdTech's openbadges-specification, ob_v2p0/v2/context.json, what
https://w3id.org/openbadges/v2 serves).

The context is read from $LTIBADGES_OB_CONTEXT, else from the project's shared
data beside the clone (../shared/openbadges-v2/v2/context.json). On a clone
with neither, this test is reported as skipped, by name and with the reason
(exit status 77, ctest's SKIP_RETURN_CODE; scripts/test.sh prints the reason);
a LTIBADGES_OB_CONTEXT naming no file is an error."""
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ltitest as lt  # noqa: E402
from test_awards import OB_V2_TERMS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(ROOT, "..", "shared", "openbadges-v2", "v2", "context.json")
SKIP_STATUS = 77


def context_path():
    """(path, None) of the context to read, or (None, the reason there is none)."""
    given = os.environ.get("LTIBADGES_OB_CONTEXT")
    if given:
        return given, None
    if os.path.exists(SHARED):
        return SHARED, None
    return None, ("the Open Badges 2.0 JSON-LD context is neither named by LTIBADGES_OB_CONTEXT "
                  "nor at %s: set LTIBADGES_OB_CONTEXT to a copy of ob_v2p0/v2/context.json of "
                  "github.com/1EdTech/openbadges-specification" % os.path.normpath(SHARED))


class PublishedContext(unittest.TestCase):

    def test_terms_are_the_published_contexts(self):
        path, why = context_path()
        if path is None:
            self.skipTest(why)
        self.assertTrue(os.path.exists(path),
                        "LTIBADGES_OB_CONTEXT names %r, which does not exist" % path)
        with open(path) as f:
            terms = set(json.load(f)["@context"].keys())
        self.assertEqual(OB_V2_TERMS, terms,
                         "test_awards' terms and the context at %s differ: only in the list %s, "
                         "only in the context %s" % (path, sorted(OB_V2_TERMS - terms),
                                                      sorted(terms - OB_V2_TERMS)))


if __name__ == "__main__":
    lt.main(SKIP_STATUS)
