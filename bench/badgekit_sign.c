/*
 * bench/badgekit_sign.c - what signing one BadgeKit API request costs.
 *
 * Every call the badgekit backend makes carries a JWT of its own (HS256
 * over the method, the exact request target and the body's SHA-256), so
 * signing is paid once per request. This times
 * backend_badgekit_authorization() for the two requests an award makes at
 * most (the instance's POST with its JSON body, the look-up's GET) and
 * prints the microseconds per token next to the server CPU an award takes
 * (bench/run-badgekit.py prints both; bench/README.md).
 *
 * usage: bench/badgekit-sign [TOKENS]
 */
#include "base/base.h"
#include "backends/badgekit.h"

static double per_token_us(long n, const char *method, const char *target, const char *body)
{
    struct buf out = BUF_INIT(8192);
    struct err err = ERR_INIT;
    int64_t t0 = util_mono_ns(), now = util_now();

    for (long i = 0; i < n; i++) {
        buf_reset(&out);
        if (backend_badgekit_authorization("master", "a-master-secret-of-32-characters", method,
                                           target, body, body ? strlen(body) : 0, now, &out,
                                           &err) < 0) {
            fprintf(stderr, "badgekit-sign: %s\n", err.msg);
            exit(1);
        }
    }
    buf_release(&out);
    return (double)(util_mono_ns() - t0) / 1e3 / (double)n;
}

int main(int argc, char **argv)
{
    static const char post_target[] =
        "/systems/badgekit/issuers/uni/badges/ltibadges-0123456789ab-intro-course/instances";
    static const char get_target[] = "/systems/badgekit/issuers/uni/badges/"
                                     "ltibadges-0123456789ab-intro-course/instances/"
                                     "learner1234@example.edu";
    static const char body[] = "{\"email\":\"learner1234@example.edu\",\"slug\":"
                               "\"0123456789abcdef0123456789abcdef\",\"issuedOn\":"
                               "\"2026-12-07T12:00:00.000Z\",\"expires\":1796644800}";
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;

    if (n < 1) {
        fprintf(stderr, "usage: badgekit-sign [TOKENS]\n");
        return 2;
    }
    /* a first round warms the caches and OpenSSL's fetched digests */
    per_token_us(n / 10 + 1, "POST", post_target, body);
    printf("POST instance (%zu-byte body): %.2f us a token\n", strlen(body),
           per_token_us(n, "POST", post_target, body));
    printf("GET look-up: %.2f us a token\n", per_token_us(n, "GET", get_target, NULL));
    return 0;
}
