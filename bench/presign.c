/*
 * bench/presign.c - writes pre-signed LTI 1.1 launches for the load generator.
 *
 * wrk cannot sign requests at the rate it sends them, and signing on the
 * client would steal CPU from the server on a small machine, so every launch
 * is signed beforehand: N unique launches, one application/x-www-form-urlencoded
 * body per line. Each has a fresh random nonce and a timestamp: the current
 * time, or with SPREAD, launch i of N is stamped now + i * SPREAD / N, as an
 * LMS stamps each launch when it is clicked and the load generator sends the
 * lines in order (the server's window is 300 s by default: run the load soon
 * after). A server that keys its nonces by timestamp sees, with SPREAD, about
 * one second's launches per timestamp instead of all of them. Each looks
 * like what Canvas sends (about 2.2 kB): a learner or an instructor among
 * USERS users, in one of the user's courses among COURSES, on one of the
 * course's resource links, with names, email, roles and ext_roles, the
 * custom_canvas_* parameters, an outcome service URL and result sourcedid,
 * and a return URL.
 *
 * The signature is computed with ltibadges' own lti/ code (the same base
 * string and HMAC the server verifies with), over the launch URL as given:
 * pass exactly the URL the server reports as its public URL + /lti/launch.
 *
 * usage: presign KEY SECRET LAUNCH_URL COUNT OUTFILE [SPREAD]   (OUTFILE "-" is stdout;
 *        SPREAD in seconds, 0 by default)
 */
#include "base/base.h"
#include "lti/lti.h"

#define USERS           5000
#define COURSES         50
#define COURSES_PER_USR 4 /* each user is enrolled in this many courses */
#define LINKS_PER_COURS 4 /* resource links (tool placements) per course */
#define MAX_PARAMS      64

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

/* The body parameters of launch number `i`, in Canvas' (alphabetical) order, oauth_* included. */
static int build(struct launch *l, uint64_t *rng, const char *key, int64_t now,
                 char (*user_ids)[41], char (*course_ids)[41], struct err *err)
{
    uint64_t r = next_rand(rng);
    unsigned user = (unsigned)(r % USERS);
    unsigned course =
        (unsigned)((user * 7u + (unsigned)((r >> 20) % COURSES_PER_USR) * 13u) % COURSES);
    unsigned link = course * LINKS_PER_COURS + (unsigned)((r >> 32) % LINKS_PER_COURS);
    bool instructor = user % 50 == 0;
    const char *given = given_names[user % 16];
    const char *family = family_names[(user / 16) % 16];
    const char *subject = subjects[course % 10];
    unsigned canvas_course = 1000 + course, canvas_user = 20000 + user;
    unsigned assignment = 50000 + link;
    char login[64], link_id[41], sourcedid_hash[41];
    char nonce[33];

    if (util_random_hex(nonce, 16, err) < 0)
        return -1;
    opaque_id(link_id, "link", link);
    opaque_id(sourcedid_hash, "result", user * 1000u + link);
    lower_dots(login, sizeof(login), given);
    {
        char fam[32];

        lower_dots(fam, sizeof(fam), family);
        snprintf(login + strlen(login), sizeof(login) - strlen(login), ".%s%u", fam, user);
    }

    l->n = 0;
    add(l, "context_id", "%s", course_ids[course]);
    add(l, "context_label", "%.4s-%u", subject, 100 + course);
    add(l, "context_title", "%s %u: Foundations (Fall 2026)", subject, 100 + course);
    add(l, "custom_canvas_api_domain", "canvas.example.edu");
    add(l, "custom_canvas_assignment_id", "%u", assignment);
    add(l, "custom_canvas_assignment_points_possible", "10");
    add(l, "custom_canvas_course_id", "%u", canvas_course);
    add(l, "custom_canvas_enrollment_state", "active");
    add(l, "custom_canvas_user_id", "%u", canvas_user);
    add(l, "custom_canvas_user_login_id", "%s", login);
    add(l, "custom_canvas_workflow_state", "available");
    add(l, "ext_ims_lis_basic_outcome_url",
        "https://canvas.example.edu/api/lti/v1/tools/4242/ext_grade_passback");
    add(l, "ext_lti_assignment_id", "%.8s-%.4s-%.4s-%.4s-%.12s", link_id, link_id + 8, link_id + 12,
        link_id + 16, link_id + 20);
    add(l, "ext_outcome_data_values_accepted", "url,text");
    add(l, "ext_outcome_result_total_score_accepted", "true");
    add(l, "ext_outcome_submission_submitted_at_accepted", "true");
    add(l, "ext_roles", "%s",
        instructor ? "urn:lti:instrole:ims/lis/Instructor,urn:lti:role:ims/lis/Instructor,"
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
    add(l, "lis_course_offering_sourcedid", "SIS-%s-%u-2026FA", subject, 100 + course);
    add(l, "lis_outcome_service_url",
        "https://canvas.example.edu/api/lti/v1/tools/4242/grade_passback");
    add(l, "lis_person_contact_email_primary", "%s@students.example.edu", login);
    add(l, "lis_person_name_family", "%s", family);
    add(l, "lis_person_name_full", "%s %s", given, family);
    add(l, "lis_person_name_given", "%s", given);
    add(l, "lis_person_sourcedid", "SIS%07u", canvas_user);
    add(l, "lis_result_sourcedid", "4242-%u-%u-%u-%s", canvas_course, assignment, canvas_user,
        sourcedid_hash);
    add(l, "lti_message_type", "basic-lti-launch-request");
    add(l, "lti_version", "LTI-1p0");
    add(l, "oauth_callback", "about:blank");
    add(l, "oauth_consumer_key", "%s", key);
    add(l, "oauth_nonce", "%s", nonce);
    add(l, "oauth_signature_method", "HMAC-SHA1");
    add(l, "oauth_timestamp", "%" PRId64, now);
    add(l, "oauth_version", "1.0");
    add(l, "resource_link_id", "%s", link_id);
    add(l, "resource_link_title", "Course badges");
    add(l, "roles", "%s", instructor ? "Instructor" : "Learner");
    add(l, "tool_consumer_info_product_family_code", "canvas");
    add(l, "tool_consumer_info_version", "cloud");
    add(l, "tool_consumer_instance_guid",
        "7db438071375c02373713c12c73869ff2f470b68.canvas.example.edu");
    add(l, "tool_consumer_instance_name", "Example University");
    add(l, "user_id", "%s", user_ids[user]);
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
    char(*user_ids)[41] = NULL, (*course_ids)[41] = NULL;
    const char *key, *secret, *path;
    int64_t count = 0, spread = 0, now;
    uint64_t rng;
    FILE *out = NULL;
    int ret = 1;

    if ((argc != 6 && argc != 7) ||
        str_to_i64(str_from_cstr(argv[4]), 1, INT64_C(100000000), &count) < 0 ||
        (argc == 7 && str_to_i64(str_from_cstr(argv[6]), 0, 3600, &spread) < 0)) {
        fprintf(stderr, "usage: presign KEY SECRET LAUNCH_URL COUNT OUTFILE [SPREAD]   (OUTFILE - "
                        "is stdout, SPREAD seconds)\n");
        return 2;
    }
    key = argv[1];
    secret = argv[2];
    path = argv[5];
    memset(&l, 0, sizeof(l));
    arena_init(&l.arena);

    /* the server signs over its normalized launch URL; its query parameters are signed too */
    if (lti_url_normalize(&base_uri, str_from_cstr(argv[3]), &url_query, &err) < 0)
        goto out;
    if (str_present(url_query) &&
        form_parse(&qarena, url_query.ptr, url_query.len, LIMIT_FORM_PARAMS, &query, &err) < 0)
        goto out;

    user_ids = xcalloc(USERS, sizeof(*user_ids));
    course_ids = xcalloc(COURSES, sizeof(*course_ids));
    for (unsigned i = 0; i < USERS; i++)
        opaque_id(user_ids[i], "user", i);
    for (unsigned i = 0; i < COURSES; i++)
        opaque_id(course_ids[i], "course", i);
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
        if (build(&l, &rng, key, now + i * spread / count, user_ids, course_ids, &err) < 0)
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
    free(user_ids);
    free(course_ids);
    return ret;
}
