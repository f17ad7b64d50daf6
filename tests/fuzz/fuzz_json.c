/*
 * tests/fuzz/fuzz_json.c - the JSON ltibadges reads.
 *
 * No badge platform's answer is parsed yet: the built-in issuer (hosted.c)
 * computes its URLs and receives nothing, and the Badgr, Open Badge Factory
 * and BadgeKit backends that will parse remote JSON are still to come (add
 * their answer parsers here when they land, as they come off the wire).
 * What the server reads today is the JSON it keeps for a BadgeClass: its
 * tags and alignments, written by awards_tags_json() and
 * awards_alignments_json() from form fields and CLI flags, and read back
 * (json_loads) by the editor's form (awards_tags_text,
 * awards_alignments_text) and by the Open Badges BadgeClass document
 * (backend_hosted_badge_json). A database edited by hand or written by
 * another version can hold any text there.
 *
 * The input goes in twice: as the stored text itself, to every reader; and
 * split into lines, as the tags and the alignment specs a form sends, to the
 * writers, whose JSON then goes to every reader. Promises checked: the
 * writers' JSON is an array that jansson reads; the BadgeClass document is
 * JSON whose tags are strings.
 */
#include "tests/fuzz/fuzz.h"
#include "awards/awards.h"
#include "backends/backends.h"

#include <jansson.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* jansson seeds its hash tables from /dev/urandom: a fixed seed keeps runs reproducible */
    json_object_seed(1);
    return 0;
}

static void read_all(const char *tags, const char *alignments)
{
    static const struct hosted_issuer is = {
        "https://badges.example.edu", "Example", NULL, NULL, NULL, NULL
    };
    struct backend_badge bc;
    struct buf out = BUF_INIT(16 * 1024 * 1024);
    char *doc;
    json_t *j, *t, *v;
    size_t i;

    awards_tags_text(tags, &out);
    buf_reset(&out);
    awards_alignments_text(alignments, &out);
    buf_release(&out);

    memset(&bc, 0, sizeof(bc));
    bc.slug = "fuzz";
    bc.name = "Fuzz";
    bc.description = "A badge";
    bc.issuing_component = "ltibadges";
    bc.tags = tags;
    bc.alignments = alignments;
    doc = backend_hosted_badge_json(&is, &bc);
    j = json_loads(doc, 0, NULL);
    FUZZ_CHECK(json_is_object(j));
    t = json_object_get(j, "tags");
    FUZZ_CHECK(json_is_array(t));
    json_array_foreach(t, i, v) {
        FUZZ_CHECK(json_is_string(v));
    }
    json_decref(j);
    free(doc);
}

static void written(const char *json)
{
    json_t *j = json_loads(json, 0, NULL);

    FUZZ_CHECK(json_is_array(j));
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmemdupz(data, size), *lines = xmemdupz(data, size);
    const char *specs[LIMIT_BADGE_TAGS + 1];
    size_t n = 0;
    char *tags = NULL, *als = NULL;
    struct err err = ERR_INIT;

    read_all(text, text);
    for (char *p = lines; p && n < LIMIT_BADGE_TAGS + 1;) {
        char *nl = strchr(p, '\n');

        if (nl)
            *nl = '\0';
        specs[n++] = p;
        p = nl ? nl + 1 : NULL;
    }
    if (awards_tags_json(specs, n, &tags, &err) == 0)
        written(tags);
    err_clear(&err);
    if (awards_alignments_json(specs, n, &als, &err) == 0)
        written(als);
    if (tags || als)
        read_all(tags ? tags : "[]", als ? als : "[]");
    free(tags);
    free(als);
    free(lines);
    free(text);
    return 0;
}
