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
    "  backend     list the badge platforms awards go to, check their configuration\n"
    "  user        what the tool holds of a user: names, e-mail, courses, grade bindings\n"
    "  session     a launch's session, by its token: user, course, roles, expiry\n"
    "  db          migrate, version, backup or restore the database\n"
    "  migrate     create the database or bring its schema up to date (db migrate)\n"
    "\n"
    "Every command takes --db PATH, --config FILE and --help; --db and --config may\n"
    "also come before the command (ltibadges --db PATH consumer list). Without\n"
    "--config, the file named by LTIBADGES_CONFIG is read, else " CLI_DEFAULT_CONFIG "\n"
    "when it exists.\n";

/*
 * The options every command takes, given before the command: taken out of
 * argv (which then reads as if they were not there) and handed to
 * cli_parse_opts(). Returns the index of the command, or -1 after a usage
 * error.
 */
static int global_opts(int argc, char **argv)
{
    const char *config = NULL, *db = NULL;
    int i = 1;

    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        const char *a = argv[i] + 2, *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const char **slot = NULL, *v;

        if (n == 6 && strncmp(a, "config", 6) == 0)
            slot = &config;
        else if (n == 2 && strncmp(a, "db", 2) == 0)
            slot = &db;
        else
            break; /* --help, or the command's own options (an error there) */
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            fprintf(stderr, "ltibadges: option '--%.*s' needs a value\n", (int)n, a);
            return -1;
        }
        if (*slot) {
            fprintf(stderr, "ltibadges: option '--%.*s' is given twice\n", (int)n, a);
            return -1;
        }
        *slot = v;
        i++;
    }
    cli_set_global_opts(config, db);
    return i;
}

int main(int argc, char **argv)
{
    int first = global_opts(argc, argv);
    const char *cmd;

    if (first < 0)
        return 2;
    /* the commands read argv[1] as the command: the global options are skipped */
    if (first > 1) {
        argv[first - 1] = argv[0];
        argv += first - 1;
        argc -= first - 1;
    }
    cmd = argc > 1 ? argv[1] : NULL;

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
    if (strcmp(cmd, "db") == 0)
        return cli_cmd_db(argc, argv);
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
    if (strcmp(cmd, "backend") == 0)
        return cli_cmd_backend(argc, argv);
    if (strcmp(cmd, "user") == 0)
        return cli_cmd_user(argc, argv);
    if (strcmp(cmd, "session") == 0)
        return cli_cmd_session(argc, argv);
    fprintf(stderr, "ltibadges: unknown command '%s' (see 'ltibadges --help')\n", cmd);
    return 2;
}
