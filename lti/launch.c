/*
 * lti/launch.c - basic-lti-launch-request parsing and the LTI 1.1 role vocabulary.
 *
 * Runs only after the signature was verified. Everything it accepts is
 * bounded (base/limits.h), valid UTF-8 and free of control characters, so
 * that store/ and web/ never see a value they would have to second-guess.
 * Fields an LTI consumer may legitimately leave out (context, email, names)
 * stay null views; ltibadges cannot work without user_id and resource_link_id.
 */
#include "base/base.h"
#include "lti/lti.h"

#include <strings.h>

struct role_name {
    const char *name;
    unsigned flag;
};

/* Context roles of the LIS vocabulary, plus Open edX's "Student". */
static const struct role_name context_roles[] = {
    { "Learner", LTI_ROLE_LEARNER },
    { "Student", LTI_ROLE_LEARNER },
    { "Instructor", LTI_ROLE_INSTRUCTOR },
    { "TeachingAssistant", LTI_ROLE_TEACHING_ASSISTANT },
    { "ContentDeveloper", LTI_ROLE_CONTENT_DEVELOPER },
    { "Administrator", LTI_ROLE_ADMINISTRATOR },
    { "Mentor", LTI_ROLE_MENTOR },
    { "Member", LTI_ROLE_MEMBER },
    { "Manager", LTI_ROLE_MANAGER },
};

static unsigned lookup_role(struct str name)
{
    /* a sub-role ("Instructor/PrimaryInstructor") counts as its role */
    const char *slash = name.len ? memchr(name.ptr, '/', name.len) : NULL;

    if (slash)
        name.len = (size_t)(slash - name.ptr);
    for (size_t i = 0; i < sizeof(context_roles) / sizeof(context_roles[0]); i++) {
        if (str_case_eq_cstr(name, context_roles[i].name))
            return context_roles[i].flag;
    }
    return 0;
}

static unsigned parse_one_role(struct str r)
{
    static const char ctx[] = "urn:lti:role:ims/lis/";
    static const char inst[] = "urn:lti:instrole:ims/lis/";
    static const char sys[] = "urn:lti:sysrole:ims/lis/";
    struct str rest;

    if (r.len >= sizeof(ctx) - 1 && strncasecmp(r.ptr, ctx, sizeof(ctx) - 1) == 0) {
        rest = (struct str){ r.ptr + sizeof(ctx) - 1, r.len - (sizeof(ctx) - 1) };
        return lookup_role(rest);
    }
    if (r.len >= sizeof(inst) - 1 && strncasecmp(r.ptr, inst, sizeof(inst) - 1) == 0) {
        rest = (struct str){ r.ptr + sizeof(inst) - 1, r.len - (sizeof(inst) - 1) };
        /* an institution's administrator administers its courses; other institution
         * roles (Instructor, Student, Faculty) say nothing about this course */
        return str_case_eq_cstr(rest, "Administrator") ? LTI_ROLE_SYSADMIN : 0;
    }
    if (r.len >= sizeof(sys) - 1 && strncasecmp(r.ptr, sys, sizeof(sys) - 1) == 0) {
        rest = (struct str){ r.ptr + sizeof(sys) - 1, r.len - (sizeof(sys) - 1) };
        return (str_case_eq_cstr(rest, "SysAdmin") || str_case_eq_cstr(rest, "Administrator"))
                   ? LTI_ROLE_SYSADMIN
                   : 0;
    }
    if (str_starts_with(r, "urn:"))
        return 0;
    return lookup_role(r);
}

unsigned lti_roles_parse(struct str roles)
{
    unsigned flags = 0;
    size_t i = 0;

    while (i < roles.len) {
        const char *start = roles.ptr + i;
        const char *comma = memchr(start, ',', roles.len - i);
        size_t n = comma ? (size_t)(comma - start) : roles.len - i;

        flags |= parse_one_role(str_trim((struct str){ start, n }));
        i += n + 1;
    }
    return flags;
}

const char *lti_roles_view(unsigned flags)
{
    return (flags & LTI_ROLES_STAFF) ? "instructor" : "learner";
}

static bool valid_utf8(struct str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0;

    while (i < s.len) {
        unsigned c = p[i];
        size_t n;
        unsigned cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* overlong forms, surrogates and values past U+10FFFF */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/*
 * Reads one field: at most once, within `max`, valid UTF-8, no control
 * characters. An empty value counts as absent (LMSes send empty fields for
 * data they withhold).
 */
/*
 * The launch's parameters by name, indexed once: a launch looks up some 26
 * names among 40 or so parameters, and a linear scan per name was a visible
 * part of a launch's cost. Open addressing over a power-of-two table at
 * least twice the parameter count; a name seen twice is marked.
 */
#define FIDX_SLOTS 2048 /* > 2 * LIMIT_FORM_PARAMS */

struct fidx {
    const struct form *f;
    uint16_t slot[FIDX_SLOTS]; /* parameter index + 1; 0: empty */
    bool dup[FIDX_SLOTS];
};

static uint32_t name_hash(struct str s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 16777619u;
    return h;
}

static void fidx_build(struct fidx *x, const struct form *f)
{
    _Static_assert(FIDX_SLOTS > 2 * LIMIT_FORM_PARAMS, "the index needs room");
    x->f = f;
    memset(x->slot, 0, sizeof(x->slot));
    memset(x->dup, 0, sizeof(x->dup));
    for (size_t i = 0; i < f->count && i < LIMIT_FORM_PARAMS; i++) {
        struct str name = f->params[i].name;
        size_t k = name_hash(name) & (FIDX_SLOTS - 1);

        while (x->slot[k] && !str_eq(f->params[x->slot[k] - 1].name, name))
            k = (k + 1) & (FIDX_SLOTS - 1);
        if (x->slot[k])
            x->dup[k] = true;
        else
            x->slot[k] = (uint16_t)(i + 1);
    }
}

static int field(const struct fidx *x, const char *name, size_t max, struct str *out,
                 struct err *err)
{
    struct str v = STR_NULL, want = str_from_cstr(name);
    size_t k = name_hash(want) & (FIDX_SLOTS - 1);
    bool seen = false;

    while (x->slot[k] && !str_eq(x->f->params[x->slot[k] - 1].name, want))
        k = (k + 1) & (FIDX_SLOTS - 1);
    if (x->slot[k]) {
        if (x->dup[k])
            return err_set(err, ERR_INVALID, "parameter '%s' appears more than once", name);
        seen = true;
        v = x->f->params[x->slot[k] - 1].value;
    }
    *out = STR_NULL;
    if (!seen || v.len == 0)
        return 0;
    if (v.len > max)
        return err_set(err, ERR_INVALID, "parameter '%s' is longer than %zu bytes", name, max);
    if (!valid_utf8(v))
        return err_set(err, ERR_INVALID, "parameter '%s' is not valid UTF-8", name);
    if (str_has_ctl(v))
        return err_set(err, ERR_INVALID, "parameter '%s' contains control characters", name);
    *out = v;
    return 0;
}

static bool is_http_url(struct str s)
{
    return (s.len > 7 && strncasecmp(s.ptr, "http://", 7) == 0) ||
           (s.len > 8 && strncasecmp(s.ptr, "https://", 8) == 0);
}

struct str lti_launch_return_url(const struct form *f)
{
    struct str v;
    struct err ignored = ERR_INIT;
    struct fidx x;

    fidx_build(&x, f);
    if (field(&x, "launch_presentation_return_url", LIMIT_LTI_URL_LEN, &v, &ignored) < 0 ||
        !is_http_url(v) || memchr(v.ptr, ' ', v.len))
        return STR_NULL;
    return v;
}

static int url_field(const struct fidx *x, const char *name, struct str *out, struct err *err)
{
    if (field(x, name, LIMIT_LTI_URL_LEN, out, err) < 0)
        return -1;
    if (str_present(*out) && (!is_http_url(*out) || memchr(out->ptr, ' ', out->len)))
        return err_set(err, ERR_INVALID, "parameter '%s' must be an http(s) URL", name);
    return 0;
}

static int parse_mode(struct lti_launch *l, struct err *err)
{
    if (!str_present(l->mode))
        return 0;
    if (l->mode.len >= sizeof(l->mode_buf))
        return err_set(err, ERR_INVALID, "parameter 'custom_badge_mode' is longer than %zu bytes",
                       sizeof(l->mode_buf) - 1);
    for (size_t i = 0; i < l->mode.len; i++) {
        char c = l->mode.ptr[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return err_set(
                err, ERR_INVALID,
                "parameter 'custom_badge_mode' may hold only letters, digits, '-' and '_'");
        l->mode_buf[i] = c;
    }
    l->mode_buf[l->mode.len] = '\0';
    l->mode = (struct str){ l->mode_buf, l->mode.len };
    return 0;
}

static struct str detect_lms(const struct lti_launch *l)
{
    struct str fam = l->product_family;

    if (str_case_eq_cstr(fam, "canvas"))
        return STR_LIT("canvas");
    if (str_case_eq_cstr(fam, "moodle"))
        return STR_LIT("moodle");
    if (str_case_eq_cstr(fam, "openedx") || str_case_eq_cstr(fam, "edx") ||
        str_starts_with(l->context_id, "course-v1:") ||
        (str_present(l->outcome_service_url) &&
         memmem(l->outcome_service_url.ptr, l->outcome_service_url.len, "/handler_noauth/", 16)))
        return STR_LIT("openedx");
    if (str_present(fam))
        return fam;
    return STR_NULL;
}

/*
 * Points possible as Canvas writes them ("10", "12.5"): digits with at most
 * one '.', no sign or exponent; 0 for anything else or out of range.
 */
static double points_of(struct str s)
{
    double v = 0, scale = 1;
    bool dot = false;
    size_t digits = 0;

    s = str_trim(s);
    if (!s.len || s.len > 16)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.ptr[i];

        if (ch == '.' && !dot) {
            dot = true;
            continue;
        }
        if (ch < '0' || ch > '9')
            return 0;
        digits++;
        if (dot) {
            scale /= 10;
            v += (ch - '0') * scale;
        } else {
            v = v * 10 + (ch - '0');
        }
    }
    return digits && v > 0 && v <= LTI_POINTS_MAX ? v : 0;
}

/* The launch's fields from its indexed parameters. */
static int parse(const struct fidx *x, struct lti_launch *l, struct err *err)
{
    struct str total_score = STR_NULL, points = STR_NULL;

    memset(l, 0, sizeof(*l));
    if (field(x, "lti_message_type", 64, &l->message_type, err) < 0 ||
        field(x, "lti_version", 64, &l->version, err) < 0)
        return -1;
    if (!str_present(l->message_type))
        return err_set(err, ERR_INVALID, "missing parameter 'lti_message_type'");
    if (!str_eq_cstr(l->message_type, "basic-lti-launch-request"))
        return err_set(err, ERR_INVALID,
                       "unsupported 'lti_message_type' (basic-lti-launch-request expected)");
    if (!str_present(l->version))
        return err_set(err, ERR_INVALID, "missing parameter 'lti_version'");
    if (!str_eq_cstr(l->version, "LTI-1p0"))
        return err_set(err, ERR_INVALID, "unsupported 'lti_version' (LTI-1p0 expected)");

    if (field(x, "resource_link_id", LIMIT_LTI_ID_LEN, &l->resource_link_id, err) < 0 ||
        field(x, "user_id", LIMIT_LTI_ID_LEN, &l->user_id, err) < 0 ||
        field(x, "lis_person_name_given", LIMIT_LTI_TEXT_LEN, &l->given_name, err) < 0 ||
        field(x, "lis_person_name_family", LIMIT_LTI_TEXT_LEN, &l->family_name, err) < 0 ||
        field(x, "lis_person_name_full", LIMIT_LTI_TEXT_LEN, &l->full_name, err) < 0 ||
        field(x, "lis_person_contact_email_primary", 254, &l->email, err) < 0 ||
        field(x, "lis_person_sourcedid", LIMIT_LTI_ID_LEN, &l->person_sourcedid, err) < 0 ||
        field(x, "context_id", LIMIT_LTI_ID_LEN, &l->context_id, err) < 0 ||
        field(x, "context_title", LIMIT_LTI_TEXT_LEN, &l->context_title, err) < 0 ||
        field(x, "context_label", LIMIT_LTI_TEXT_LEN, &l->context_label, err) < 0 ||
        field(x, "resource_link_title", LIMIT_LTI_TEXT_LEN, &l->resource_link_title, err) < 0 ||
        field(x, "roles", LIMIT_LTI_ROLES_LEN, &l->roles, err) < 0 ||
        field(x, "ext_roles", LIMIT_LTI_ROLES_LEN, &l->ext_roles, err) < 0 ||
        field(x, "custom_badge_mode", 256, &l->mode, err) < 0 ||
        field(x, "custom_canvas_assignment_points_possible", LIMIT_LTI_TEXT_LEN, &points, err) <
            0 ||
        url_field(x, "lis_outcome_service_url", &l->outcome_service_url, err) < 0 ||
        field(x, "lis_result_sourcedid", LIMIT_LTI_SOURCEDID_LEN, &l->result_sourcedid, err) < 0 ||
        field(x, "ext_outcome_data_values_accepted", 256, &l->outcome_data_accepted, err) < 0 ||
        field(x, "ext_outcome_result_total_score_accepted", 16, &total_score, err) < 0 ||
        url_field(x, "launch_presentation_return_url", &l->return_url, err) < 0 ||
        field(x, "launch_presentation_document_target", 32, &l->document_target, err) < 0 ||
        field(x, "launch_presentation_locale", 35, &l->locale, err) < 0 ||
        field(x, "tool_consumer_info_product_family_code", 64, &l->product_family, err) < 0)
        return -1;
    if (!str_present(l->resource_link_id))
        return err_set(err, ERR_INVALID, "missing parameter 'resource_link_id'");
    if (!str_present(l->user_id))
        return err_set(err, ERR_INVALID,
                       "missing parameter 'user_id' (the tool needs to know who is launching it)");
    /* an "email" without '@' cannot receive a badge: treat it as not given */
    if (str_present(l->email) && !memchr(l->email.ptr, '@', l->email.len))
        l->email = STR_NULL;
    if (parse_mode(l, err) < 0)
        return -1;
    l->total_score_accepted = str_eq_cstr(total_score, "true");
    l->points_possible = points_of(points);
    l->role_flags = lti_roles_parse(l->roles);
    l->lms = detect_lms(l);
    return 0;
}

int lti_launch_parse(const struct form *f, struct lti_launch *l, struct err *err)
{
    struct fidx x;

    fidx_build(&x, f);
    return parse(&x, l, err);
}
