/*
 * cli/main.c - the ltibadges command: dispatches to the commands of cli/.
 */
#include "base/base.h"
#include "base/version.h"
#include "awards/awards.h"
#include "cli/cli.h"
#include "store/store.h"

static const char usage[] =
    "usage: ltibadges COMMAND [OPTIONS]\n"
    "       ltibadges --version\n"
    "\n"
    "An LTI 1.1 tool provider that awards Open Badges.\n"
    "\n"
    "commands:\n"
    "  serve       serve the tool (LTI launches, pages, XML configuration)\n"
    "  consumer    add, list, remove, rotate, enable or disable LTI consumers, or set\n"
    "              the hosts their grades may be sent to\n"
    "  context     enable badges for a course, set its pass mark\n"
    "  group       group courses for course-group badges\n"
    "  badge       create, set, list and show BadgeClasses\n"
    "  grade       record a grade as if the LMS had sent it\n"
    "  award       grant, list, retry and revoke awards\n"
    "  outcome     the sourcedid a grader sends to /lti/outcomes for a learner's result\n"
    "  migrate     create the database or bring its schema up to date\n"
    "\n"
    "Every command takes --db PATH, --config FILE and --help.\n";

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    /*
     * The one rule of what SVG images are stored, before any command opens
     * the store: it checks every image written against it, and its
     * migrations check the stored ones.
     */
    store_set_svg_rule(&awards_svg_rule);
    if (!cmd) {
        fprintf(stderr, "ltibadges: missing command (see 'ltibadges --help')\n");
        return 2;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        printf("\nltibadges %s\n", base_version);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("ltibadges %s\n", base_version);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cli_cmd_serve(argc, argv);
    if (strcmp(cmd, "consumer") == 0)
        return cli_cmd_consumer(argc, argv);
    if (strcmp(cmd, "migrate") == 0)
        return cli_cmd_migrate(argc, argv);
    if (strcmp(cmd, "context") == 0)
        return cli_cmd_context(argc, argv);
    if (strcmp(cmd, "group") == 0)
        return cli_cmd_group(argc, argv);
    if (strcmp(cmd, "badge") == 0)
        return cli_cmd_badge(argc, argv);
    if (strcmp(cmd, "grade") == 0)
        return cli_cmd_grade(argc, argv);
    if (strcmp(cmd, "outcome") == 0)
        return cli_cmd_outcome(argc, argv);
    if (strcmp(cmd, "award") == 0)
        return cli_cmd_award(argc, argv);
    fprintf(stderr, "ltibadges: unknown command '%s' (see 'ltibadges --help')\n", cmd);
    return 2;
}
