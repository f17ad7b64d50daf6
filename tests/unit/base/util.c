/*
 * tests/unit/base/util.c - util_random: its per-thread buffer never hands
 * the same bytes out twice, in one thread, across threads or across fork().
 */
#include "base/base.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

/* Many small draws, each compared with every other: no 16 bytes come twice. */
static void draws_differ(void **state)
{
    enum { N = 400 }; /* several refills of the buffer */
    static unsigned char got[N][16];

    (void)state;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(util_random(got[i], sizeof(got[i]), NULL), 0);
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            assert_memory_not_equal(got[i], got[j], sizeof(got[i]));
}

/* Large requests bypass the buffer and still work. */
static void large_draw(void **state)
{
    unsigned char a[4096], b[4096];

    (void)state;
    assert_int_equal(util_random(a, sizeof(a), NULL), 0);
    assert_int_equal(util_random(b, sizeof(b), NULL), 0);
    assert_memory_not_equal(a, b, sizeof(a));
}

static void *draw_in_thread(void *arg)
{
    util_random(arg, 32, NULL);
    return NULL;
}

/* Two threads each fill their own buffer: they never get the same bytes. */
static void threads_differ(void **state)
{
    unsigned char a[32], b[32];
    pthread_t t;

    (void)state;
    assert_int_equal(util_random(a, sizeof(a), NULL), 0);
    assert_int_equal(pthread_create(&t, NULL, draw_in_thread, b), 0);
    pthread_join(t, NULL);
    assert_memory_not_equal(a, b, sizeof(a));
}

/*
 * After fork(), the child's next bytes are not the parent's next bytes: the
 * child inherits a copy of the parent's buffer, which it must not use.
 */
static void fork_differs(void **state)
{
    unsigned char warm[8], parent[32], child[32];
    int fds[2];
    pid_t pid;
    int status;

    (void)state;
    assert_int_equal(util_random(warm, sizeof(warm), NULL), 0); /* the buffer holds bytes now */
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        unsigned char c[32];

        close(fds[0]);
        if (util_random(c, sizeof(c), NULL) < 0 || write(fds[1], c, sizeof(c)) != sizeof(c))
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(util_random(parent, sizeof(parent), NULL), 0);
    assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_memory_not_equal(parent, child, sizeof(parent));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(draws_differ),
        cmocka_unit_test(large_draw),
        cmocka_unit_test(threads_differ),
        cmocka_unit_test(fork_differs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
