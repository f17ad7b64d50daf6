/*
 * bench/presign.c - writes pre-signed LTI 1.1 launches for the load generator.
 *
 * wrk cannot sign requests at the rate it sends them, and signing on the
 * client would steal CPU from the server on a small machine, so every launch
 * is signed beforehand: COUNT unique launches, one application/x-www-form-urlencoded
 * body per line. Each has a fresh random nonce and a timestamp: the current
 * time, or with SPREAD, launch i of N is stamped now + i * SPREAD / N, as an
 * LMS stamps each launch when it is clicked and the load generator sends the
 * lines in order (the server's window is 300 s by default: run the load soon
 * after).
 *
 * The launches are those of one institution: 50 000 users (1 in 50 an
 * instructor), each in 4 of 2 000 courses (about 100 learners a course), each
 * course with 2 resource links (the tool placed twice: a badges page and a
 * graded activity). Every launch carries a fresh lis_result_sourcedid, as
 * real LMSes send them:
 * - Moodle (mod/lti/locallib.php, lti_build_sourcedid): the JSON
 *   {"data":{"instanceid","userid","typeid","launchid":mt_rand()},"hash":
 *   sha256(data JSON . servicesalt)}, a new launchid on every launch;
 * - Canvas (lib/basic_lti/sourcedid.rb, BasicLTI::Sourcedid#to_s): an
 *   encrypted JWT whose payload has iat, base64-encoded again; being
 *   encrypted, it is opaque and different on every launch (random bytes of
 *   its length here).
 * The other parameters are every one the LMS puts in its body, with values of
 * realistic lengths (a Moodle body is about 1.5 kB, a Canvas one about 2.6 kB).
 *
 * Which launches (--mix):
 * - active (default): an hour of a term under way. 5 000 learners are active
 *   (every tenth of the institution), each in their 4 courses, on either link:
 *   40 000 (user, link) pairs, picked at random. 1 launch in 50 is from
 *   another learner of the institution (one not active in the hour before).
 * - warm: the active hour's 40 000 pairs in order, each once from --start on
 *   (run them first, so that the active hour's launches are relaunches).
 * - term: the start of a term: the (user, link) pairs of the 45 000 learners
 *   outside the active tenth (360 000) in a fixed pseudo-random order from
 *   --start on, so that launches never repeat a pair while --start moves on:
 *   nearly every launch is a learner's first on that link, many their first in
 *   the course or at all.
 *
 * The signature is computed with ltibadges' own lti/ code (the same base
 * string and HMAC the server verifies with), over the launch URL as given:
 * pass exactly the URL the server reports as its public URL + /lti/launch.
 *
 * usage: presign [--lms moodle|canvas] [--mix active|warm|term] [--start N]
 *                KEY SECRET LAUNCH_URL COUNT OUTFILE [SPREAD]
 *        (OUTFILE "-" is stdout; SPREAD in seconds, 0 by default)
 */
#include "base/base.h"
#include "lti/lti.h"

#define LEARNERS               50000u /* the institution */
#define COURSES                2000u
#define COURSES_PER_USR        4u  /* each learner is enrolled in this many courses */
#define LINKS_PER_COURS        2u  /* resource links (tool placements) per course */
#define ACTIVE_EVERY           10u /* the active hour: every tenth learner, 5 000 */
#define NEWCOMER_ONE_IN        50u /* the active hour: launches of a learner not active before */
#define PAIRS_PER_USR          (COURSES_PER_USR * LINKS_PER_COURS)
#define ACTIVE_PAIRS           (LEARNERS / ACTIVE_EVERY * PAIRS_PER_USR)
#define TERM_PAIRS             ((LEARNERS - LEARNERS / ACTIVE_EVERY) * PAIRS_PER_USR)
#define TERM_STEP              104729u /* a prime: i -> i * STEP + 7 mod TERM_PAIRS is a permutation */
#define MAX_PARAMS             64
#define CANVAS_SOURCEDID_BYTES 520 /* the encrypted JWT's bytes, before the outer base64 */

enum lms { LMS_MOODLE, LMS_CANVAS };
enum mix { MIX_ACTIVE, MIX_WARM, MIX_TERM };

static const char *const given_names[] = {
    "Ada",   "Grace",  "Alan",     "Edsger",  "Barbara", "Donald", "Frances", "John",
    "Karen", "Leslie", "Margaret", "Niklaus", "Radia",   "Tim",    "Shafi",   "Ken",
};
static const char *const family_names[] = {
    "Lovelace", "Hopper",      "Turing",       "Dijkstra", "Liskov",   "Knuth",
    "Allen",    "McCarthy",    "Sparck Jones", "Lamport",  "Hamilton", "Wirth",
    "Perlman",  "Berners-Lee", "Goldwasser",   "Thompson",
};
static const char *const subjects[] = {
    "Biology",     "Chemistry",  "Computer Science", "Economics",  "History",
    "Mathematics", "Philosophy", "Physics",          "Psychology", "Statistics",
};

/* The identifiers an LMS derives from its database: 40 hex digits, like Canvas' opaque ids. */
static void opaque_id(char out[41], const char *kind, unsigned n)
{
    char in[64];
    unsigned char h[32];

    snprintf(in, sizeof(in), "%s:%u", kind, n);
    util_sha256(in, strlen(in), h);
    util_hex(out, h, 20);
}

/* xorshift64*: which user, course and link each launch is; no need for quality here. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* Course `k` (0..3) of learner `user`: four different courses, about 100 learners each. */
static unsigned course_of(unsigned user, unsigned k)
{
    return (unsigned)(((uint64_t)user * 2654435761u + (uint64_t)k * 499u) % COURSES);
}

struct launch {
    struct arena arena;
    struct form_param params[MAX_PARAMS];
    size_t n;
};

static void add(struct launch *l, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add(struct launch *l, const char *name, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;

    if (l->n >= MAX_PARAMS)
        BUG("too many launch parameters");
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        BUG("launch parameter '%s' too long", name);
    l->params[l->n].name = str_from_cstr(name);
    l->params[l->n].value = (struct str){ arena_memdupz(&l->arena, tmp, (size_t)n), (size_t)n };
    l->n++;
}

static void lower_dots(char *out, size_t outlen, const char *s)
{
    size_t j = 0;

    for (; *s && j + 1 < outlen; s++) {
        char c = *s;

        if (c == ' ' || c == '-')
            c = '.';
        else if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[j++] = c;
    }
    out[j] = '\0';
}

/* Unpadded base64url of `n` bytes into `out` (4 * n / 3 + 4 bytes). */
static void base64url(char *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t j = 0;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;

        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[j++] = tab[(v >> 18) & 63];
        out[j++] = tab[(v >> 12) & 63];
        if (i + 1 < n)
            out[j++] = tab[(v >> 6) & 63];
        if (i + 2 < n)
            out[j++] = tab[v & 63];
    }
    out[j] = '\0';
}

/* Who launches where: learner, course and link of launch number `i` of the mix. */
struct who {
    unsigned user, course, link;
};

static struct who pick(enum mix mix, uint64_t *rng, uint64_t i)
{
    unsigned user, pair;
    uint64_t r;

    switch (mix) {
    case MIX_WARM:
        pair = (unsigned)(i % ACTIVE_PAIRS);
        user = pair / PAIRS_PER_USR * ACTIVE_EVERY;
        pair %= PAIRS_PER_USR;
        break;
    case MIX_TERM:
        /* only learners outside the active tenth: the active hour's warm-up made theirs */
        pair = (unsigned)((i % TERM_PAIRS) * TERM_STEP % TERM_PAIRS + 7) % TERM_PAIRS;
        user = pair / PAIRS_PER_USR;
        user = user / (ACTIVE_EVERY - 1) * ACTIVE_EVERY + user % (ACTIVE_EVERY - 1) + 1;
        pair %= PAIRS_PER_USR;
        break;
    case MIX_ACTIVE:
    default:
        r = next_rand(rng);
        if (r % NEWCOMER_ONE_IN == 0) {
            /* a learner of the institution outside the active tenth */
            user = (unsigned)((r >> 8) % LEARNERS);
            if (user % ACTIVE_EVERY == 0)
                user++;
        } else {
            user = (unsigned)((r >> 8) % (LEARNERS / ACTIVE_EVERY)) * ACTIVE_EVERY;
        }
        pair = (unsigned)((r >> 40) % PAIRS_PER_USR);
        break;
    }
    {
        unsigned course = course_of(user, pair / LINKS_PER_COURS);

        return (struct who){ user, course, course * LINKS_PER_COURS + pair % LINKS_PER_COURS };
    }
}

/* What both LMSes say about the learner, the course and the link. */
struct names {
    bool instructor;
    const char *given, *family, *subject;
    char login[64];
    char user_hex[41], course_hex[41], link_hex[41];
};

static void describe(struct names *nm, struct who w)
{
    char fam[32];

    nm->instructor = w.user / ACTIVE_EVERY % 50 == 7; /* 1 in 50, active or not */
    nm->given = given_names[w.user % 16];
    nm->family = family_names[(w.user / 16) % 16];
    nm->subject = subjects[w.course % 10];
    lower_dots(nm->login, sizeof(nm->login), nm->given);
    lower_dots(fam, sizeof(fam), nm->family);
    snprintf(nm->login + strlen(nm->login), sizeof(nm->login) - strlen(nm->login), ".%s%u", fam,
             w.user);
    opaque_id(nm->user_hex, "user", w.user);
    opaque_id(nm->course_hex, "course", w.course);
    opaque_id(nm->link_hex, "link", w.link);
}

/*
 * What Moodle 4.x sends (mod/lti/locallib.php: lti_build_request,
 * lti_build_standard_message, lti_get_launch_data), in its order, with name,
 * email and grades shared, before the oauth_* parameters.
 */
static void build_moodle(struct launch *l, uint64_t *rng, struct who w, const struct names *nm)
{
    unsigned instance = 1000 + w.link, userid = 3000 + w.user, course = 100 + w.course;
    unsigned launchid = (unsigned)(next_rand(rng) % 2147483648u); /* mt_rand(): 0 .. 2^31 - 1 */
    char data[256], hash_hex[65];
    unsigned char h[32];
    int n;

    add(l, "resource_link_title", "%s",
        w.link % LINKS_PER_COURS ? "Graded activity: badges" : "Course badges");
    add(l, "resource_link_description", "%s",
        "Badges you can earn in this course, and what each one asks of you.");
    add(l, "user_id", "%u", userid);
    add(l, "lis_person_sourcedid", "SIS%07u", userid);
    add(l, "roles", "%s",
        nm->instructor ? "Instructor,urn:lti:sysrole:ims/lis/Administrator,"
                         "urn:lti:instrole:ims/lis/Administrator"
                       : "Learner");
    add(l, "context_id", "%u", course);
    add(l, "context_label", "%.4s%u", nm->subject, 100 + w.course);
    add(l, "context_title", "%s %u: Foundations (2026/27)", nm->subject, 100 + w.course);
    add(l, "resource_link_id", "%u", instance);
    add(l, "context_type", "CourseSection");
    add(l, "lis_course_section_sourcedid", "%.4s%u-2026", nm->subject, 100 + w.course);
    /* json_encode of lti_build_sourcedid's container: ids come from the database as strings */
    n = snprintf(data, sizeof(data),
                 "{\"instanceid\":\"%u\",\"userid\":\"%u\",\"typeid\":\"3\",\"launchid\":%u}",
                 instance, userid, launchid);
    if (n < 0 || (size_t)n >= sizeof(data))
        BUG("sourcedid data too long");
    {
        char salted[320];
        int m = snprintf(salted, sizeof(salted), "%s%s", data, "65d2f0c1a8e3b4.27183645");

        if (m < 0 || (size_t)m >= sizeof(salted))
            BUG("sourcedid salt too long");
        util_sha256(salted, (size_t)m, h);
    }
    util_hex(hash_hex, h, 32);
    add(l, "lis_result_sourcedid", "{\"data\":%s,\"hash\":\"%s\"}", data, hash_hex);
    add(l, "lis_outcome_service_url", "https://moodle.example.edu/mod/lti/service.php");
    add(l, "lis_person_name_given", "%s", nm->given);
    add(l, "lis_person_name_family", "%s", nm->family);
    add(l, "lis_person_name_full", "%s %s", nm->given, nm->family);
    add(l, "ext_user_username", "%s", nm->login);
    add(l, "lis_person_contact_email_primary", "%s@students.example.edu", nm->login);
    add(l, "launch_presentation_locale", "en");
    add(l, "ext_lms", "moodle-2");
    add(l, "tool_consumer_info_product_family_code", "moodle");
    add(l, "tool_consumer_info_version", "2024042200");
    add(l, "oauth_callback", "about:blank");
    add(l, "lti_version", "LTI-1p0");
    add(l, "lti_message_type", "basic-lti-launch-request");
    add(l, "tool_consumer_instance_guid", "moodle.example.edu");
    add(l, "tool_consumer_instance_name", "Example University");
    add(l, "tool_consumer_instance_description", "Example University Moodle");
    add(l, "launch_presentation_document_target", "iframe");
    add(l, "launch_presentation_return_url",
        "https://moodle.example.edu/mod/lti/return.php?course=%u&launch_container=3&"
        "instanceid=%u&sesskey=%.10s",
        course, instance, nm->user_hex);
}

/*
 * What Canvas sends (lib/lti/... and Lti::LtiOutboundAdapter), in its
 * (alphabetical) order, before the oauth_* parameters.
 */
static void build_canvas(struct launch *l, uint64_t *rng, struct who w, const struct names *nm)
{
    unsigned canvas_course = 1000 + w.course, canvas_user = 20000 + w.user;
    unsigned assignment = 50000 + w.link;
    const char *link_id = nm->link_hex;
    unsigned char jwe[CANVAS_SOURCEDID_BYTES];
    char sourcedid[CANVAS_SOURCEDID_BYTES * 4 / 3 + 4];

    /* an encrypted JWT (header, iv, ciphertext, tag) is opaque: its bytes change every launch */
    for (size_t i = 0; i < sizeof(jwe); i += 8) {
        uint64_t r = next_rand(rng);

        memcpy(jwe + i, &r, sizeof(jwe) - i < 8 ? sizeof(jwe) - i : 8);
    }
    base64url(sourcedid, jwe, sizeof(jwe));

    add(l, "context_id", "%s", nm->course_hex);
    add(l, "context_label", "%.4s-%u", nm->subject, 100 + w.course);
    add(l, "context_title", "%s %u: Foundations (Fall 2026)", nm->subject, 100 + w.course);
    add(l, "custom_canvas_api_domain", "canvas.example.edu");
    add(l, "custom_canvas_assignment_id", "%u", assignment);
    add(l, "custom_canvas_assignment_points_possible", "10");
    add(l, "custom_canvas_course_id", "%u", canvas_course);
    add(l, "custom_canvas_enrollment_state", "active");
    add(l, "custom_canvas_user_id", "%u", canvas_user);
    add(l, "custom_canvas_user_login_id", "%s", nm->login);
    add(l, "custom_canvas_workflow_state", "available");
    add(l, "ext_ims_lis_basic_outcome_url",
        "https://canvas.example.edu/api/lti/v1/tools/4242/ext_grade_passback");
    add(l, "ext_lti_assignment_id", "%.8s-%.4s-%.4s-%.4s-%.12s", link_id, link_id + 8, link_id + 12,
        link_id + 16, link_id + 20);
    add(l, "ext_outcome_data_values_accepted", "url,text");
    add(l, "ext_outcome_result_total_score_accepted", "true");
    add(l, "ext_outcome_submission_needs_additional_review_accepted", "true");
    add(l, "ext_outcome_submission_prioritize_non_tool_grade_accepted", "true");
    add(l, "ext_outcome_submission_submitted_at_accepted", "true");
    add(l, "ext_roles", "%s",
        nm->instructor ? "urn:lti:instrole:ims/lis/Instructor,urn:lti:role:ims/lis/Instructor,"
                         "urn:lti:sysrole:ims/lis/User"
                       : "urn:lti:instrole:ims/lis/Student,urn:lti:role:ims/lis/Learner,"
                         "urn:lti:sysrole:ims/lis/User");
    add(l, "launch_presentation_document_target", "iframe");
    add(l, "launch_presentation_height", "400");
    add(l, "launch_presentation_locale", "en");
    add(l, "launch_presentation_return_url",
        "https://canvas.example.edu/courses/%u/external_content/success/external_tool_redirect",
        canvas_course);
    add(l, "launch_presentation_width", "800");
    add(l, "lis_course_offering_sourcedid", "SIS-%s-%u-2026FA", nm->subject, 100 + w.course);
    add(l, "lis_outcome_service_url",
        "https://canvas.example.edu/api/lti/v1/tools/4242/grade_passback");
    add(l, "lis_person_contact_email_primary", "%s@students.example.edu", nm->login);
    add(l, "lis_person_name_family", "%s", nm->family);
    add(l, "lis_person_name_full", "%s %s", nm->given, nm->family);
    add(l, "lis_person_name_given", "%s", nm->given);
    add(l, "lis_person_sourcedid", "SIS%07u", canvas_user);
    add(l, "lis_result_sourcedid", "%s", sourcedid);
    add(l, "lti_message_type", "basic-lti-launch-request");
    add(l, "lti_version", "LTI-1p0");
    add(l, "oauth_callback", "about:blank");
    add(l, "resource_link_id", "%s", link_id);
    add(l, "resource_link_title", "%s",
        w.link % LINKS_PER_COURS ? "Graded activity: badges" : "Course badges");
    add(l, "roles", "%s", nm->instructor ? "Instructor" : "Learner");
    add(l, "tool_consumer_info_product_family_code", "canvas");
    add(l, "tool_consumer_info_version", "cloud");
    add(l, "tool_consumer_instance_contact_email", "notifications@instructure.com");
    add(l, "tool_consumer_instance_guid",
        "7db438071375c02373713c12c73869ff2f470b68.canvas.example.edu");
    add(l, "tool_consumer_instance_name", "Example University");
    add(l, "user_id", "%s", nm->user_hex);
    add(l, "user_image", "https://canvas.example.edu/images/thumbnails/%u/avatar.png", canvas_user);
}

/* The body parameters of launch number `i`, oauth_* included. */
static int build(struct launch *l, enum lms lms, enum mix mix, uint64_t *rng, uint64_t i,
                 const char *key, int64_t now, struct err *err)
{
    struct who w = pick(mix, rng, i);
    struct names nm;
    char nonce[33];

    if (util_random_hex(nonce, 16, err) < 0)
        return -1;
    describe(&nm, w);
    l->n = 0;
    if (lms == LMS_MOODLE)
        build_moodle(l, rng, w, &nm);
    else
        build_canvas(l, rng, w, &nm);
    add(l, "oauth_consumer_key", "%s", key);
    add(l, "oauth_nonce", "%s", nonce);
    add(l, "oauth_signature_method", "HMAC-SHA1");
    add(l, "oauth_timestamp", "%" PRId64, now);
    add(l, "oauth_version", "1.0");
    return 0;
}

/* Appends "name=value&..." for the body, RFC 3986-encoded (a subset of what forms accept). */
static void add_body(struct buf *out, const struct launch *l, struct str sig)
{
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            buf_addch(out, '&');
        form_encode_rfc3986(out, l->params[i].name);
        buf_addch(out, '=');
        form_encode_rfc3986(out, l->params[i].value);
    }
    buf_addstr(out, "&oauth_signature=");
    form_encode_rfc3986(out, sig);
}

static int usage(void)
{
    fprintf(stderr, "usage: presign [--lms moodle|canvas] [--mix active|warm|term] [--start N] "
                    "KEY SECRET LAUNCH_URL COUNT OUTFILE [SPREAD]\n"
                    "       (OUTFILE - is stdout, SPREAD seconds)\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct err err = ERR_INIT;
    struct buf base_uri = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct buf base = BUF_INIT(LIMIT_BASE_STRING_LEN);
    struct buf sig = BUF_INIT(128);
    struct buf line = BUF_INIT(LIMIT_LAUNCH_BODY_DEFAULT);
    struct arena qarena = ARENA_INIT;
    struct launch l;
    struct form query = { NULL, 0 }, body;
    const struct form *lists[2];
    struct str url_query;
    const char *key, *secret, *path;
    int64_t count = 0, spread = 0, start = 0, now;
    enum lms lms = LMS_MOODLE;
    enum mix mix = MIX_ACTIVE;
    uint64_t rng;
    FILE *out = NULL;
    int ret = 1, a = 1;

    for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
        const char *v = argv[a + 1];

        if (strcmp(argv[a], "--lms") == 0 && strcmp(v, "moodle") == 0)
            lms = LMS_MOODLE;
        else if (strcmp(argv[a], "--lms") == 0 && strcmp(v, "canvas") == 0)
            lms = LMS_CANVAS;
        else if (strcmp(argv[a], "--mix") == 0 && strcmp(v, "active") == 0)
            mix = MIX_ACTIVE;
        else if (strcmp(argv[a], "--mix") == 0 && strcmp(v, "warm") == 0)
            mix = MIX_WARM;
        else if (strcmp(argv[a], "--mix") == 0 && strcmp(v, "term") == 0)
            mix = MIX_TERM;
        else if (strcmp(argv[a], "--start") != 0 ||
                 str_to_i64(str_from_cstr(v), 0, INT64_C(1) << 40, &start) < 0)
            return usage();
    }
    if ((argc - a != 5 && argc - a != 6) ||
        str_to_i64(str_from_cstr(argv[a + 3]), 1, INT64_C(100000000), &count) < 0 ||
        (argc - a == 6 && str_to_i64(str_from_cstr(argv[a + 5]), 0, 3600, &spread) < 0))
        return usage();
    key = argv[a];
    secret = argv[a + 1];
    path = argv[a + 4];
    memset(&l, 0, sizeof(l));
    arena_init(&l.arena);

    /* the server signs over its normalized launch URL; its query parameters are signed too */
    if (lti_url_normalize(&base_uri, str_from_cstr(argv[a + 2]), &url_query, &err) < 0)
        goto out;
    if (str_present(url_query) &&
        form_parse(&qarena, url_query.ptr, url_query.len, LIMIT_FORM_PARAMS, &query, &err) < 0)
        goto out;

    if (util_random((unsigned char *)&rng, sizeof(rng), &err) < 0)
        goto out;
    rng |= 1; /* xorshift must not start at 0 */

    out = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!out) {
        err_set(&err, ERR_INVALID, "cannot write '%s': %s", path, strerror(errno));
        goto out;
    }
    now = util_now();
    for (int64_t i = 0; i < count; i++) {
        if (build(&l, lms, mix, &rng, (uint64_t)(start + i), key, now + i * spread / count, &err) <
            0)
            goto out;
        body = (struct form){ l.params, l.n };
        lists[0] = &query;
        lists[1] = &body;
        buf_reset(&base);
        buf_reset(&sig);
        buf_reset(&line);
        if (lti_oauth_base_string(&base, STR_LIT("POST"), buf_view(&base_uri), lists, 2, &err) <
                0 ||
            lti_oauth_sign(&sig, LTI_SIG_HMAC_SHA1, buf_view(&base), str_from_cstr(secret),
                           STR_LIT(""), &err) < 0)
            goto out;
        add_body(&line, &l, buf_view(&sig));
        buf_addch(&line, '\n');
        if (buf_check(&line, "launch body", &err) < 0)
            goto out;
        if (fwrite(line.ptr, 1, line.len, out) != line.len) {
            err_set(&err, ERR_INTERNAL, "cannot write '%s': %s", path, strerror(errno));
            goto out;
        }
        arena_release(&l.arena);
    }
    if (fflush(out) != 0) {
        err_set(&err, ERR_INTERNAL, "cannot write '%s': %s", path, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (ret)
        fprintf(stderr, "presign: %s\n", err.msg[0] ? err.msg : "failed");
    if (out && out != stdout && fclose(out) != 0 && ret == 0) {
        fprintf(stderr, "presign: cannot write '%s': %s\n", path, strerror(errno));
        ret = 1;
    }
    arena_release(&l.arena);
    arena_release(&qarena);
    buf_release(&base_uri);
    buf_release(&base);
    buf_release(&sig);
    buf_release(&line);
    return ret;
}
