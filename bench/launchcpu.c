/*
 * bench/launchcpu.c - the CPU a launch costs on its HTTP thread, by step,
 * without the network, the writer or MHD.
 *
 * run-launch.sh measures the whole server; this takes the steps
 * web/launch.c runs on a request's own thread, in order, over pre-signed
 * bodies (bench/presign), and reports the thread CPU time of each per launch:
 * parsing the form, finding the oauth_* parameters, verifying the signature,
 * parsing the LTI fields, the session's random secrets and hash, the nonce's
 * digest and the writer cache's digests (store_launch_digest). What it does
 * not count: MHD reading the request and sending the answer, suspending and
 * resuming the connection, the consumer lookup (a cached read), the writer.
 *
 * usage: launchcpu SECRET LAUNCH_URL BODIES_FILE [ROUNDS]
 *        (BODIES_FILE: presign's output, one body per line)
 */
#include "base/base.h"
#include "lti/lti.h"
#include "store/store.h"
#include "store/store_int.h" /* store_nonce_fp */

#include <time.h>

enum { P_FORM, P_PARAMS, P_VERIFY, P_LAUNCH, P_SECRETS, P_NONCE, P_DIGESTS, P__COUNT };

static const char *const phase_name[P__COUNT] = {
    "form_parse",      "lti_oauth_params", "lti_oauth_verify_launch", "lti_launch_parse",
    "session secrets", "store_nonce_fp",   "store_launch_digest",
};

/*
 * Steps are timed by the monotonic clock (a vDSO read: the thread CPU clock
 * is a system call under virtualization, costing more than some steps); the
 * whole run's thread CPU time is reported beside their sum.
 */
static int64_t clock_ns(clockid_t id)
{
    struct timespec t;

    clock_gettime(id, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int main(int argc, char **argv)
{
    struct err err = ERR_INIT;
    struct buf base_uri = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct str url_query = STR_NULL;
    struct arena qarena = ARENA_INIT;
    struct form query = { 0 };
    int64_t rounds = 3, spent[P__COUNT] = { 0 }, n = 0, cpu0, cpu1;
    char *line = NULL;
    size_t cap = 0;
    FILE *in;
    int ret = 1;

    if (argc < 4 || argc > 5 ||
        (argc == 5 && str_to_i64(str_from_cstr(argv[4]), 1, 1000, &rounds) < 0)) {
        fprintf(stderr, "usage: launchcpu SECRET LAUNCH_URL BODIES_FILE [ROUNDS]\n");
        return 2;
    }
    if (lti_url_normalize(&base_uri, str_from_cstr(argv[2]), &url_query, &err) < 0 ||
        (str_present(url_query) &&
         form_parse(&qarena, url_query.ptr, url_query.len, LIMIT_FORM_PARAMS, &query, &err) < 0))
        goto out;
    in = fopen(argv[3], "r");
    if (!in) {
        err_set(&err, ERR_INVALID, "cannot read '%s': %s", argv[3], strerror(errno));
        goto out;
    }
    cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (int64_t round = 0; round < rounds; round++) {
        ssize_t len;

        rewind(in);
        while ((len = getline(&line, &cap, in)) > 0) {
            struct arena a = ARENA_INIT;
            struct form body;
            const struct form *lists[2] = { &query, &body };
            struct lti_oauth o;
            struct lti_launch l;
            struct store_launch sl;
            struct store_launch_digests dg;
            unsigned char rnd[64], hash[32];
            char token[65];
            int64_t t[P__COUNT + 1];

            if (line[len - 1] == '\n')
                line[--len] = '\0';
            t[0] = clock_ns(CLOCK_MONOTONIC);
            if (form_parse(&a, line, (size_t)len, LIMIT_FORM_PARAMS, &body, &err) < 0)
                goto fail;
            t[1] = clock_ns(CLOCK_MONOTONIC);
            if (lti_oauth_params(lists, 2, &o, &err) < 0)
                goto fail;
            t[2] = clock_ns(CLOCK_MONOTONIC);
            if (lti_oauth_verify_launch(&o, buf_view(&base_uri), &query, &body,
                                        str_from_cstr(argv[1]), &err) < 0)
                goto fail;
            t[3] = clock_ns(CLOCK_MONOTONIC);
            if (lti_launch_parse(&body, &l, &err) < 0)
                goto fail;
            t[4] = clock_ns(CLOCK_MONOTONIC);
            if (util_random(rnd, sizeof(rnd), &err) < 0)
                goto fail;
            util_hex(token, rnd, 32);
            util_sha256(token, 64, hash);
            t[5] = clock_ns(CLOCK_MONOTONIC);
            memset(&sl, 0, sizeof(sl));
            sl.consumer_id = 1;
            sl.nonce = o.nonce;
            sl.now = o.ts;
            sl.lms = l.lms;
            sl.user_id = l.user_id;
            sl.given_name = l.given_name;
            sl.family_name = l.family_name;
            sl.full_name = l.full_name;
            sl.email = l.email;
            sl.person_sourcedid = l.person_sourcedid;
            sl.context_id = l.context_id;
            sl.context_title = l.context_title;
            sl.context_label = l.context_label;
            sl.resource_link_id = l.resource_link_id;
            sl.resource_link_title = l.resource_link_title;
            sl.points_possible = l.points_possible;
            sl.roles = l.roles;
            sl.ext_roles = l.ext_roles;
            sl.role_flags = l.role_flags;
            sl.mode = l.mode;
            sl.outcome_service_url = l.outcome_service_url;
            sl.result_sourcedid = l.result_sourcedid;
            sl.outcome_data_accepted = l.outcome_data_accepted;
            sl.total_score_accepted = l.total_score_accepted;
            if (store_nonce_fp(1, o.nonce, &dg.nonce_fp, &err) < 0)
                goto fail;
            t[6] = clock_ns(CLOCK_MONOTONIC);
            store_launch_digest(&sl, &dg);
            t[7] = clock_ns(CLOCK_MONOTONIC);
            for (int p = 0; p < P__COUNT; p++)
                spent[p] += t[p + 1] - t[p];
            n++;
            arena_release(&a);
            continue;
        fail:
            arena_release(&a);
            fclose(in);
            goto out;
        }
    }
    cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    fclose(in);
    if (n == 0) {
        err_set(&err, ERR_INVALID, "no launch in '%s'", argv[3]);
        goto out;
    }
    {
        int64_t total = 0;

        printf("| step (HTTP thread) | µs per launch |\n|---|---:|\n");
        for (int p = 0; p < P__COUNT; p++) {
            printf("| %s | %.2f |\n", phase_name[p], (double)spent[p] / (double)n / 1000.0);
            total += spent[p];
        }
        printf("| all of them | %.2f |\n", (double)total / (double)n / 1000.0);
        printf("| thread CPU per launch, reading the file included | %.2f |\n",
               (double)(cpu1 - cpu0) / (double)n / 1000.0);
        printf("(%" PRId64 " launches)\n", n);
    }
    ret = 0;
out:
    if (ret)
        fprintf(stderr, "launchcpu: %s\n", err.msg);
    free(line);
    buf_release(&base_uri);
    arena_release(&qarena);
    return ret;
}
