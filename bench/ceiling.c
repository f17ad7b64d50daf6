/*
 * bench/ceiling.c - the ceiling of the launch benchmark: what libmicrohttpd
 * alone can do on this machine with ltibadges' threading model.
 *
 * It runs MHD exactly as web/server.c does (internal polling threads, epoll,
 * a pool of two, the same connection, memory and timeout limits), reads the
 * whole form body of every request into a bounded buffer, and answers
 * 303 See Other with a Location as long as ltibadges' (a /badges URL with a
 * 64-digit token). It verifies nothing and stores nothing: the ratio of
 * ltibadges' throughput to this one is the cost of the LTI work itself.
 *
 * usage: ceiling PORT   (0 picks a free port; the bound port is printed).
 * Listens on 127.0.0.1 only; stops on SIGTERM or SIGINT.
 */
#include "base/base.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* One request's body, read in full as the real server does. */
struct body {
    struct buf b;
};

/* Set once before the daemon starts: the same shape as ltibadges' redirect. */
static char location[256];

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct body *r = *con_cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (!r) {
        r = xcalloc(1, sizeof(*r));
        buf_init(&r->b, LIMIT_LAUNCH_BODY_DEFAULT);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* past the cap the buffer drops the rest; the answer is the same */
        buf_add(&r->b, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Location", location);
    ret = MHD_queue_response(conn, MHD_HTTP_SEE_OTHER, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct body *r = *con_cls;

    if (!r)
        return;
    buf_release(&r->b);
    free(r);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sin;
    sigset_t set;
    int64_t port = 0;
    int sig = 0;

    if (argc != 2 || str_to_i64(str_from_cstr(argv[1]), 0, 65535, &port) < 0) {
        fprintf(stderr, "usage: ceiling PORT   (0 = any free port)\n");
        return 2;
    }
    /* only the main thread takes the stop signals, through sigwait */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)port, NULL,
                         NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                         MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_THREAD_POOL_SIZE,
                         2u, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)LIMIT_HTTP_CONNECTIONS,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)LIMIT_HTTP_CONN_MEMORY,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)LIMIT_HTTP_CONN_TIMEOUT,
                         MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: cannot start the HTTP server on port %" PRId64 ": %s\n", port,
                strerror(errno));
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        port = info->port;
    snprintf(location, sizeof(location), "http://127.0.0.1:%" PRId64 "/badges?s=%064d", port, 0);
    printf("ceiling: listening on 127.0.0.1:%" PRId64 "\n", port);
    fflush(stdout);

    while (sig != SIGTERM && sig != SIGINT) {
        if (sigwait(&set, &sig) != 0)
            break;
    }
    MHD_stop_daemon(d);
    return 0;
}
