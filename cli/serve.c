/*
 * cli/serve.c - `ltibadges serve`: open the store (migrating it), start the
 * HTTP server, wait for SIGTERM or SIGINT, stop gracefully.
 *
 * The signals are blocked before any thread starts, so that only the main
 * thread receives them (through sigwait): no handler runs in the middle of
 * a request or a database write.
 */
#include "base/base.h"
#include "base/version.h"
#include "awards/awards.h"
#include "cli/cli.h"
#include "store/store.h"
#include "web/web.h"

#include "net/net.h"
#include "base/log.h"

#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <libxml/parser.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef LTIBADGES_SYSTEMD
# include <systemd/sd-daemon.h>
#else
/* built without libsystemd: nobody to tell (the unit is Type=simple) */
# define sd_notify(unset_environment, state) ((void)0)
#endif

#define DEMO_KEY "ltibadges-demo"

static const char serve_usage[] =
    "usage: ltibadges serve [--config FILE] [--db PATH] [--listen HOST:PORT]\n"
    "                       [--public-url URL] [--demo]\n"
    "\n"
    "Serves the tool: LTI launches at /lti/launch, Basic Outcomes at /lti/outcomes,\n"
    "the XML configuration at /lti/config.xml, health at /healthz. Stops gracefully\n"
    "on SIGTERM or SIGINT.\n"
    "  --listen HOST:PORT  address to bind (default 127.0.0.1:8080; env LTIBADGES_LISTEN)\n"
    "  --db PATH           sqlite database (default ltibadges.db; env LTIBADGES_DB)\n"
    "  --public-url URL    the URL the LMS uses to reach the tool, e.g. behind a TLS proxy\n"
    "                      (default http://HOST:PORT; env LTIBADGES_PUBLIC_URL)\n"
    "  --demo              create the demo consumer if there is none and print its key,\n"
    "                      secret, launch URL and XML configuration URL\n";

static int demo_consumer(struct store *s, const char *public_url, struct err *err)
{
    struct store_consumer c;

    if (store_consumer_find(s, STR_LIT(DEMO_KEY), &c, err) < 0) {
        char secret[65];

        if (err->code != ERR_NOTFOUND)
            return -1;
        err_clear(err);
        if (util_random_hex(secret, 32, err) < 0 ||
            store_consumer_add(s, DEMO_KEY, secret, "Demo consumer", &c, err) < 0)
            return -1;
    }
    printf("demo consumer (add it to your LMS as an external tool):\n"
           "  consumer key:      %s\n"
           "  shared secret:     %s\n"
           "  launch URL:        %s/lti/launch\n"
           "  XML configuration: %s/lti/config.xml\n",
           c.key, c.secret, public_url, public_url);
    return 0;
}

/*
 * Where the page translations are: the configured folder, else "locale"
 * beside the program (a build tree), else where `make install` puts them.
 */
static void locale_dir(const struct cli_config *cfg, char out[static 4096], size_t len)
{
    char exe[4000];
    ssize_t n;
    struct stat st;

    if (cfg->locale_dir[0]) {
        snprintf(out, len, "%s", cfg->locale_dir);
        return;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        char *slash;

        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(out, len, "%s/locale", exe);
            if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
                return;
        }
    }
    snprintf(out, len, "%s", LTIBADGES_LOCALEDIR);
}

/* Whether `host` is a wildcard address: 0.0.0.0, ::, or another spelling of them ("0", "::0"). */
static bool wildcard_host(const char *host)
{
    struct addrinfo hints, *ai = NULL;
    bool any = false;

    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return false; /* a name: bound to what it resolves to, never every address */
    for (const struct addrinfo *a = ai; a; a = a->ai_next) {
        if (a->ai_family == AF_INET)
            any |= ((const struct sockaddr_in *)(const void *)a->ai_addr)->sin_addr.s_addr ==
                   htonl(INADDR_ANY);
        else if (a->ai_family == AF_INET6)
            any |= IN6_IS_ADDR_UNSPECIFIED(
                &((const struct sockaddr_in6 *)(const void *)a->ai_addr)->sin6_addr);
    }
    freeaddrinfo(ai);
    return any;
}

/*
 * What needs public_url: launches are signed for the URL the LMS was given,
 * and a server listening on every address has no such URL of its own
 * (http://0.0.0.0:8080 is no address an LMS can use); former URLs are
 * redirected to it.
 */
static int check_public_url(const struct cli_config *cfg, struct err *err)
{
    if (cfg->public_url[0])
        return 0;
    if (wildcard_host(cfg->listen_host))
        return err_set(err, ERR_INVALID,
                       "listening on every address ('%s') needs public_url: LTI launches are "
                       "signed for the URL the LMS uses, and the server checks signatures "
                       "against it (set [server] public_url, --public-url or "
                       "LTIBADGES_PUBLIC_URL)",
                       cfg->listen_host);
    if (cfg->former_public_urls[0])
        return err_set(err, ERR_INVALID,
                       "former_public_urls needs public_url: the URL they are redirected to");
    return 0;
}

int cli_cmd_serve(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    struct cli_config cfg;
    struct web_config wc;
    struct store *s = NULL;
    struct web *w = NULL;
    struct awards *aw = NULL;
    struct awards_config ac;
    struct net_mail_config mail; /* borrows from cfg; both outlive the server */
    sigset_t set;
    int sig = 0, ret = 0;

    if (cli_parse_opts(argc, argv, 2, "config,db,listen,public-url,demo", 0, &o, &err) < 0)
        return cli_usage_error("serve", "%s", err.msg);
    if (o.help) {
        fputs(serve_usage, stdout);
        return 0;
    }
    if (cli_config_resolve(&cfg, &o, &err) < 0)
        return cli_fail(&err);
    if (cli_config_mail(&cfg, &mail, &err) < 0 || check_public_url(&cfg, &err) < 0)
        return cli_fail(&err);

    /*
     * A page is rendered into buffers of tens of KiB that are freed when it
     * is sent. With glibc's defaults the biggest get a fresh mmap each time
     * and a freed heap top goes back to the kernel (madvise), so every page
     * paid page faults; keeping up to a few MiB per thread for reuse costs
     * little memory and removes that (bench/run-pages.py).
     */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    /* the libraries' global set-up is not thread-safe: do it before any thread starts */
    xmlInitParser();
    net_http_global_init();
    {
        char dir[4096];

        locale_dir(&cfg, dir, sizeof(dir));
        if (web_i18n_init(dir, &err) < 0) {
            LOG(LOG_LEVEL_WARN, err.msg, LOG_STR("dir", dir));
            err_clear(&err);
        }
    }
    /*
     * Only TERM and INT stop the server. HUP reopens the log files, USR1,
     * USR2 and ALRM are noted and otherwise ignored (their default action
     * would end the process), PIPE is ignored (a client that went away is
     * an error of that write only).
     */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (log_setup(cfg.log_json, cfg.log_file, cfg.access_log, &err) < 0)
        return cli_fail(&err);

    if (cli_store_open(&cfg, STORE_OPEN_WRITER, &s, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    {
        /* what cli_report_svg_migration() says, as one event of the log */
        size_t checked = 0, changed = 0;

        store_svg_migrated(s, &checked, &changed);
        if (checked)
            LOG(LOG_LEVEL_INFO,
                "stored SVG images checked by the SVG rule (parts that could run code or load other "
                "files removed)",
                LOG_INT("checked", checked), LOG_INT("changed", changed));
    }
    store_set_nonce_window(s, cfg.oauth_window);
    {
        struct stat st;

        /* made 0600 since, but an older one keeps its mode: said at every start */
        if (stat(cfg.db, &st) == 0 && (st.st_mode & 077)) {
            char mode[8];

            snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
            LOG(LOG_LEVEL_WARN,
                "other users may read the database, which holds the consumers' secrets: chmod "
                "600 it and its -wal and -shm files",
                LOG_STR("path", cfg.db), LOG_STR("mode", mode));
        }
    }

    memset(&ac, 0, sizeof(ac));
    ac.issuer_name = cfg.issuer_name;
    ac.issuer_url = cfg.issuer_url;
    ac.issuer_email = cfg.issuer_email;
    ac.issuer_description = cfg.issuer_description;
    ac.issuer_image_url = cfg.issuer_image;
    ac.default_backend = cfg.awards_backend;
    ac.lease = cfg.awards_lease;
    /* every backend the database names is configured, and each section makes its backend */
    if (awards_new(&aw, s, &ac, &err) < 0 || cli_backends_check_used(&cfg, s, &err) < 0 ||
        cli_backends_register(&cfg, aw, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    {
        struct awards_outcomes_config oc;

        awards_outcomes_config_init(&oc);
        oc.read_interval = cfg.outcomes_read_interval;
        oc.rate = (double)cfg.outcomes_rate;
        oc.connect_timeout_ms = (long)cfg.outcomes_connect_timeout * 1000;
        oc.timeout_ms = (long)cfg.outcomes_timeout * 1000;
        oc.allow_loopback = cfg.outcomes_allow_loopback;
        oc.ca_file = cfg.outcomes_ca_file[0] ? cfg.outcomes_ca_file : NULL;
        awards_outcomes_configure(aw, &oc);
    }

    web_config_init(&wc);
    wc.awards = aw;
    wc.listen_host = cfg.listen_host;
    wc.listen_port = cfg.listen_port;
    wc.public_url = cfg.public_url[0] ? cfg.public_url : NULL;
    wc.max_body = cfg.max_body;
    wc.max_header = cfg.max_header;
    wc.header_timeout = cfg.header_timeout;
    wc.oauth_window = cfg.oauth_window;
    wc.session_ttl = cfg.session_ttl;
    wc.threads = cfg.threads;
    wc.tool_title = cfg.tool_title;
    wc.tool_description = cfg.tool_description;
    wc.mail = &mail;
    wc.accept_unconfirmed_email = cfg.email_accept_unconfirmed;
    wc.show_holders = cfg.issuer_show_holders;
    wc.metrics_off = cfg.metrics_off;
    wc.metrics_allow = cfg.metrics_allow[0] ? cfg.metrics_allow : NULL;
    wc.trusted_proxies = cfg.trusted_proxies[0] ? cfg.trusted_proxies : NULL;
    wc.former_public_urls = cfg.former_public_urls[0] ? cfg.former_public_urls : NULL;
    wc.metrics_listen_host = cfg.metrics_listen_host[0] ? cfg.metrics_listen_host : NULL;
    wc.metrics_listen_port = cfg.metrics_listen_port;
    wc.health_outbox_stuck = cfg.health_outbox_stuck;
    if (web_start(&w, &wc, s, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    if (awards_worker_start(aw, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    if (o.demo && demo_consumer(s, web_public_url(w), &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    if (web_metrics_port(w))
        printf("ltibadges: metrics on %s:%u\n", cfg.metrics_listen_host, web_metrics_port(w));
    printf("ltibadges: listening on %s:%u, public URL %s, version %s\n", cfg.listen_host,
           web_port(w), web_public_url(w), base_version);
    fflush(stdout);
    LOG(LOG_LEVEL_INFO, "listening", LOG_STR("address", cfg.listen_host),
        LOG_INT("port", web_port(w)), LOG_STR("public_url", web_public_url(w)),
        LOG_STR("version", base_version));
    /* under systemd's Type=notify: started once it listens (a no-op without $NOTIFY_SOCKET) */
    sd_notify(0, "READY=1");
    while (sig != SIGTERM && sig != SIGINT) {
        if (sigwait(&set, &sig) != 0)
            break;
        if (sig == SIGHUP) {
            if (log_reopen(&err) < 0) {
                LOG(LOG_LEVEL_ERROR, err.msg, LOG_STR("signal", "SIGHUP"));
                err_clear(&err);
            } else {
                LOG(LOG_LEVEL_INFO, "log files reopened", LOG_STR("signal", "SIGHUP"));
            }
        } else if (sig != SIGTERM && sig != SIGINT) {
            char name[32];

            snprintf(name, sizeof(name), "SIG%s", sigabbrev_np(sig));
            LOG(LOG_LEVEL_INFO, "signal ignored (only SIGTERM and SIGINT stop the server)",
                LOG_STR("signal", name));
        }
    }
    sd_notify(0, "STOPPING=1");
    LOG(LOG_LEVEL_INFO, sig == SIGINT ? "SIGINT received, stopping" : "SIGTERM received, stopping",
        LOG_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
out:
    /* the workers' waits for the database run while the server's end */
    awards_worker_request_stop(aw);
    web_stop(w);
    if (s && w) {
        struct store_stats st;

        store_stats(s, &st);
        LOG(LOG_LEVEL_INFO, "stopped", LOG_INT("launches", st.launches),
            LOG_INT("commits", st.batches), LOG_INT("replays_refused", st.replays),
            LOG_INT("checkpoints", st.checkpoints), LOG_INT("wal_catch_ups", st.catch_ups),
            LOG_INT("wal_catch_up_frames", st.catch_up_frames));
    }
    /* after the server: no launch can reach the enrollment hook or wake the worker now */
    awards_free(aw);
    store_close(s);
    log_close();
    return ret;
}
