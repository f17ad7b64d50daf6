/*
 * tests/unit/lti/launch.c - the role vocabulary and launch parsing.
 */
#include "base/base.h"
#include "lti/lti.h"

#include <setjmp.h>
#include <cmocka.h>

static void roles(void **state)
{
    static const struct {
        const char *roles;
        unsigned flags;
    } cases[] = {
        { "Instructor", LTI_ROLE_INSTRUCTOR },
        { "Learner", LTI_ROLE_LEARNER },
        { "Student", LTI_ROLE_LEARNER },
        { "learner", LTI_ROLE_LEARNER },
        { "TeachingAssistant, Mentor", LTI_ROLE_TEACHING_ASSISTANT | LTI_ROLE_MENTOR },
        { "ContentDeveloper", LTI_ROLE_CONTENT_DEVELOPER },
        { "Administrator", LTI_ROLE_ADMINISTRATOR },
        { "urn:lti:role:ims/lis/Instructor", LTI_ROLE_INSTRUCTOR },
        { "urn:lti:role:ims/lis/Instructor/PrimaryInstructor", LTI_ROLE_INSTRUCTOR },
        { "urn:lti:role:ims/lis/TeachingAssistant/TeachingAssistantSection",
          LTI_ROLE_TEACHING_ASSISTANT },
        { "urn:lti:role:ims/lis/Learner/NonCreditLearner", LTI_ROLE_LEARNER },
        { "urn:lti:instrole:ims/lis/Instructor", 0 }, /* instructor elsewhere, not here */
        { "urn:lti:instrole:ims/lis/Student,Learner", LTI_ROLE_LEARNER },
        { "urn:lti:instrole:ims/lis/Administrator", LTI_ROLE_SYSADMIN },
        { "urn:lti:sysrole:ims/lis/SysAdmin", LTI_ROLE_SYSADMIN },
        { "urn:lti:sysrole:ims/lis/User", 0 },
        { "urn:other:Instructor", 0 },
        { "Learner,urn:lti:sysrole:ims/lis/Administrator", LTI_ROLE_LEARNER | LTI_ROLE_SYSADMIN },
        { "", 0 },
        { ",,", 0 },
        { "Instructorx", 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned got = lti_roles_parse(str_from_cstr(cases[i].roles));

        if (got != cases[i].flags)
            fail_msg("roles '%s': got %#x, want %#x", cases[i].roles, got, cases[i].flags);
    }
    assert_string_equal(lti_roles_view(LTI_ROLE_LEARNER), "learner");
    assert_string_equal(lti_roles_view(LTI_ROLE_MENTOR), "learner");
    assert_string_equal(lti_roles_view(LTI_ROLE_TEACHING_ASSISTANT | LTI_ROLE_LEARNER),
                        "instructor");
    assert_string_equal(lti_roles_view(LTI_ROLE_SYSADMIN), "instructor");
}

static const char base_launch[] = "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&"
                                  "resource_link_id=rl&user_id=u";

static int parse_with(const char *extra, struct arena *a, struct lti_launch *l, struct err *err)
{
    struct buf b = BUF_INIT(1 << 16);
    struct form f;
    int ret;

    buf_addstr(&b, base_launch);
    if (extra) {
        buf_addch(&b, '&');
        buf_addstr(&b, extra);
    }
    assert_int_equal(form_parse(a, b.ptr, b.len, 512, &f, err), 0);
    ret = lti_launch_parse(&f, l, err);
    buf_release(&b);
    return ret;
}

static void parses(void **state)
{
    struct arena a = ARENA_INIT;
    struct lti_launch l;
    struct err err = ERR_INIT;

    assert_int_equal(
        parse_with(
            "context_id=course-v1%3AOrg%2BNum%2BRun&roles=Student&custom_badge_mode=Verified&"
            "lis_person_contact_email_primary=&lis_person_name_full=Zo%C3%AB&"
            "lis_outcome_service_url=https%3A%2F%2Fedx%2Fhandler_noauth%2Foutcome_service_"
            "handler&lis_result_sourcedid=s",
            &a, &l, &err),
        0);
    assert_true(str_eq_cstr(l.context_id, "course-v1:Org+Num+Run"));
    assert_true(str_eq_cstr(l.mode, "verified"));
    assert_false(str_present(l.email)); /* empty means absent */
    assert_true(str_eq_cstr(l.full_name, "Zo\xc3\xab"));
    assert_true(str_eq_cstr(l.lms, "openedx"));
    assert_int_equal(l.role_flags, LTI_ROLE_LEARNER);
    arena_release(&a);
}

static void refuses(void **state)
{
    static const struct {
        const char *body, *msg;
    } cases[] = {
        { "lti_version=LTI-1p0&resource_link_id=r&user_id=u",
          "missing parameter 'lti_message_type'" },
        { "lti_message_type=ContentItemSelectionRequest&lti_version=LTI-1p0&resource_link_id=r&"
          "user_id=u",
          "unsupported 'lti_message_type' (basic-lti-launch-request expected)" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-2p0&resource_link_id=r&"
          "user_id=u",
          "unsupported 'lti_version' (LTI-1p0 expected)" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&user_id=u",
          "missing parameter 'resource_link_id'" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&resource_link_id=r",
          "missing parameter 'user_id' (the tool needs to know who is launching it)" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&resource_link_id=r&"
          "user_id=u&user_id=v",
          "parameter 'user_id' appears more than once" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&resource_link_id=r&"
          "user_id=u&context_title=a%0Ab",
          "parameter 'context_title' contains control characters" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&resource_link_id=r&"
          "user_id=u&context_title=%C3%28",
          "parameter 'context_title' is not valid UTF-8" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&resource_link_id=r&"
          "user_id=u&context_title=%ED%A0%80",
          "parameter 'context_title' is not valid UTF-8" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&resource_link_id=r&"
          "user_id=u&custom_badge_mode=a%20b",
          "parameter 'custom_badge_mode' may hold only letters, digits, '-' and '_'" },
        { "lti_message_type=basic-lti-launch-request&lti_version=LTI-1p0&resource_link_id=r&"
          "user_id=u&lis_outcome_service_url=javascript%3Aalert(1)",
          "parameter 'lis_outcome_service_url' must be an http(s) URL" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct arena a = ARENA_INIT;
        struct form f;
        struct lti_launch l;
        struct err err = ERR_INIT;

        assert_int_equal(form_parse(&a, cases[i].body, strlen(cases[i].body), 512, &f, &err), 0);
        assert_int_equal(lti_launch_parse(&f, &l, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        assert_string_equal(err.msg, cases[i].msg);
        arena_release(&a);
    }
}

static void id_length_limit(void **state)
{
    struct arena a = ARENA_INIT;
    struct buf b = BUF_INIT(4096);
    struct lti_launch l;
    struct err err = ERR_INIT;

    buf_addstr(&b, "context_id=");
    for (int i = 0; i < LIMIT_LTI_ID_LEN; i++)
        buf_addch(&b, 'c');
    assert_int_equal(parse_with(b.ptr, &a, &l, &err), 0); /* max */
    buf_addch(&b, 'c');
    assert_int_equal(parse_with(b.ptr, &a, &l, &err), -1); /* max + 1 */
    assert_string_equal(err.msg, "parameter 'context_id' is longer than 255 bytes");
    buf_release(&b);
    arena_release(&a);
}

static void return_url(void **state)
{
    struct arena a = ARENA_INIT;
    struct form f;
    struct err err = ERR_INIT;
    const char *b1 = "launch_presentation_return_url=https%3A%2F%2Flms%2Fret%3Fa%3D1";
    const char *b2 = "launch_presentation_return_url=javascript%3Aalert(1)";

    assert_int_equal(form_parse(&a, b1, strlen(b1), 10, &f, &err), 0);
    assert_true(str_eq_cstr(lti_launch_return_url(&f), "https://lms/ret?a=1"));
    assert_int_equal(form_parse(&a, b2, strlen(b2), 10, &f, &err), 0);
    assert_false(str_present(lti_launch_return_url(&f)));
    arena_release(&a);
}

static void email_without_at(void **state)
{
    struct arena a = ARENA_INIT;
    struct lti_launch l;
    struct err err = ERR_INIT;

    assert_int_equal(parse_with("lis_person_contact_email_primary=nobody", &a, &l, &err), 0);
    assert_false(str_present(l.email));
    assert_int_equal(parse_with("lis_person_contact_email_primary=a%40b.c", &a, &l, &err), 0);
    assert_true(str_eq_cstr(l.email, "a@b.c"));
    arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roles),      cmocka_unit_test(parses),
        cmocka_unit_test(refuses),    cmocka_unit_test(id_length_limit),
        cmocka_unit_test(return_url), cmocka_unit_test(email_without_at),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
