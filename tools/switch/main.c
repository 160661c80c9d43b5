/* SPDX-License-Identifier: MIT */
/*
 * vmdev-switch: a learning Ethernet switch (net_switch.h) on a UNIX
 * socket, for VMs on one host without privileges. Each connection is a
 * port speaking QEMU's `-netdev stream` framing (vmdev-run --net
 * socket=PATH, QEMU -netdev stream,addr.type=unix,addr.path=PATH); an
 * optional uplink (user-mode NAT through libslirp, or a tap) is one more
 * port. Runs until SIGINT or SIGTERM, then removes its socket.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmdev/clock.h"
#include "vmdev/event_loop.h"
#include "vmdev/net.h"
#include "vmdev/net_switch.h"

#include "net_spec.h"

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

static const char usage[] =
    "usage: vmdev-switch --listen PATH [--uplink UPLINK] [--stats]\n"
    "\n"
    "A learning Ethernet switch for virtual machines on this host, without\n"
    "privileges: each connection to the UNIX socket PATH is a port that\n"
    "carries Ethernet frames each after its 4-byte big-endian length, as\n"
    "vmdev-run --net socket=PATH and QEMU -netdev stream connect. Frames go to\n"
    "the port their destination was last seen on, or to every other port;\n"
    "a port that reads too slowly loses frames, never the others. Runs until\n"
    "SIGINT or SIGTERM, then removes PATH.\n"
    "\n"
    "  --listen PATH        the UNIX socket to listen on (a stale socket file\n"
    "                       there is replaced; one a switch listens on is not)\n"
    "  --uplink UPLINK      one more port, to the world outside:\n"
    "                       slirp[,ipv6=on|off][,restrict=on|off][,hostfwd=...]\n"
    "                         user-mode NAT through libslirp, as vmdev-run\n"
    "                         --net slirp (10.0.2.0/24, DHCP from 10.0.2.15:\n"
    "                         one lease per MAC, the host at 10.0.2.2);\n"
    "                         ipv6=on adds fec0::/64 (the host fec0::2),\n"
    "                         restrict=on cuts the VMs off from everything\n"
    "                         but forwarded ports (both default off),\n"
    "                         hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT\n"
    "                         forwards a host port, up to 16\n"
    "                       tap=IFNAME[,bridge=BR]\n"
    "                         a host tap, created if absent and put up, on\n"
    "                         Linux bridge BR if given (CAP_NET_ADMIN)\n"
    "  --stats              at exit, print the switch's counters: ports, frames\n"
    "                       forwarded and flooded, copies queued and dropped,\n"
    "                       frames filtered, addresses learned\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit status: 0 after SIGINT, SIGTERM, SIGHUP or SIGQUIT, 1 when the\n"
    "socket or the uplink cannot be set up, 2 for a bad option (nothing\n"
    "created).\n";

struct options {
    const char *listen;
    const char *uplink; /* as given (uplink_text), for messages; or NULL */
    char uplink_text[1024];
    struct net_spec backend;
    bool stats;
};

static int bad(const char *option, const char *value, const char *why)
{
    fprintf(stderr, "vmdev-switch: --%s '%s': %s\n", option, value, why);
    return EXIT_USAGE;
}

/* slirp[,KEY=VALUE]... or tap=IFNAME[,bridge=BR] (net_spec.h), into o. */
static int parse_uplink(char *value, struct options *o)
{
    char *original = o->uplink_text;
    snprintf(original, sizeof(o->uplink_text), "%s", value);
    o->uplink = original;
    o->backend.allowed = NET_SPEC_SLIRP | NET_SPEC_TAP;
    char why[512], *save;
    for (char *kv = strtok_r(value, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = '\0';
        int ret = net_spec_element(&o->backend, kv, eq ? eq + 1 : NULL,
                                   kv == value, why, sizeof(why));
        if (ret == NET_SPEC_NOT_MINE)
            snprintf(why, sizeof(why), "unknown key '%s' (slirp takes ipv6, "
                     "restrict, hostfwd; tap takes bridge)", kv);
        if (ret)
            return bad("uplink", original, why);
    }
    if (net_spec_finish(&o->backend, why, sizeof(why)))
        return bad("uplink", original, why);
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        { "listen", required_argument, NULL, 'l' },
        { "uplink", required_argument, NULL, 'u' },
        { "stats", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", longs, NULL)) != -1;) {
        switch (c) {
        case 'l':
            o->listen = optarg;
            break;
        case 'u': {
            if (o->uplink)
                return bad("uplink", optarg, "one uplink only");
            int ret = parse_uplink(optarg, o);
            if (ret)
                return ret;
            break;
        }
        case 's':
            o->stats = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return -1;
        case ':':
            fprintf(stderr, "vmdev-switch: option '%s' needs a value (see "
                    "--help)\n", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "vmdev-switch: unknown option '%s' (see --help)\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vmdev-switch: unexpected argument '%s' (see --help)\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (!o->listen) {
        fprintf(stderr, "vmdev-switch: --listen PATH is required (see --help)\n");
        return EXIT_USAGE;
    }
    struct sockaddr_un sun;
    if (!*o->listen || strlen(o->listen) >= sizeof(sun.sun_path))
        return bad("listen", o->listen, "not a UNIX socket path (1 to 107 bytes)");
    return 0;
}

/* A listening socket at path: a stale socket file (no listener) is
 * replaced, a live one refused. fd, or -1 after a message. */
static int listen_at(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        perror("vmdev-switch: socket");
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        /* Stale only when nothing listens (ECONNREFUSED); a listener with
         * a full backlog (EAGAIN) or a socket we may not use is not ours
         * to remove. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                           0);
        int err = probe < 0 ? errno
                  : connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0
                      ? 0
                      : errno;
        if (probe >= 0)
            close(probe);
        if (err != ECONNREFUSED) {
            fprintf(stderr, "vmdev-switch: --listen %s: %s\n", path,
                    err == 0 || err == EAGAIN ? "a switch already listens there"
                                              : strerror(err));
            close(fd);
            return -1;
        }
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, 16) < 0) {
        fprintf(stderr, "vmdev-switch: --listen %s: %s\n", path,
                strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct state {
    struct vmdev_event_loop *loop;
    struct vmdev_net_switch *sw;
    int listen_fd, signal_fd;
    struct vmdev_event_watch *listen_watch;
    struct vmdev_event_timer *accept_timer_owner;
    struct vmdev_timer accept_timer;
    dev_t socket_dev; /* the socket file we made, to remove only it */
    ino_t socket_ino;
    unsigned connections;
    bool stop;
};

static void on_connection(void *opaque, uint32_t events);

static void resume_accepting(void *opaque)
{
    struct state *s = opaque;
    s->listen_watch = vmdev_event_loop_add(s->loop, s->listen_fd,
                                           VMDEV_EVENT_IN, on_connection, s);
}

static void on_connection(void *opaque, uint32_t events)
{
    struct state *s = opaque;
    (void)events;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                   errno == ENOMEM)) {
        /* The connection stays queued and the watch would fire at once,
         * forever: stop listening for a second. */
        fprintf(stderr, "vmdev-switch: cannot accept a connection (%s); "
                "trying again in 1 s\n", strerror(errno));
        vmdev_event_loop_remove(s->loop, s->listen_watch);
        s->listen_watch = NULL;
        s->accept_timer.arm(s->accept_timer.opaque,
                            vmdev_clock_now(&vmdev_host_clock,
                                            VMDEV_CLOCK_MONOTONIC) +
                                1000000000ull);
        return;
    }
    if (fd < 0)
        return; /* EAGAIN, or the peer gave up already */
    struct ucred cred;
    socklen_t len = sizeof(cred);
    char name[VMDEV_NET_SWITCH_NAME_LEN];
    s->connections++;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        snprintf(name, sizeof(name), "connection %u (pid %d)",
                 s->connections, (int)cred.pid);
    else
        snprintf(name, sizeof(name), "connection %u", s->connections);
    struct vmdev_net_backend *b = vmdev_net_stream_new_from_fd(fd, s->loop);
    int port = b ? vmdev_net_switch_add(s->sw, b, name) : -errno;
    if (port < 0)
        fprintf(stderr, "vmdev-switch: %s refused: %s\n", name,
                port == -ENOSPC ? "every port is taken" : strerror(-port));
    else
        printf("vmdev-switch: %s on port %d\n", name, port);
    fflush(stdout);
}

static void on_signal(void *opaque, uint32_t events)
{
    struct state *s = opaque;
    struct signalfd_siginfo info;
    (void)events;
    if (read(s->signal_fd, &info, sizeof(info)) == sizeof(info))
        s->stop = true;
}

/* The uplink's backend as a port; 0, or -1 after a message. */
static int add_uplink(struct state *s, const struct options *o)
{
    char why[512] = "";
    struct vmdev_net_backend *b = NULL;
    if (!net_spec_open(&o->backend, &s->loop, 1, &b, why, sizeof(why)))
        b = NULL;
    int port = b ? vmdev_net_switch_add(s->sw, b, "uplink") : -errno;
    if (port < 0) {
        fprintf(stderr, "vmdev-switch: --uplink %s: %s\n", o->uplink,
                *why ? why : strerror(-port));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    int ret = parse_options(argc, argv, &o);
    if (ret)
        return ret < 0 ? EXIT_OK : ret;

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    sigaddset(&stop_signals, SIGQUIT);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct state s = { .listen_fd = -1, .signal_fd = -1 };
    s.loop = vmdev_event_loop_new();
    s.sw = s.loop ? vmdev_net_switch_new(s.loop) : NULL;
    s.signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (!s.sw || s.signal_fd < 0 ||
        !vmdev_event_loop_add(s.loop, s.signal_fd, VMDEV_EVENT_IN, on_signal,
                              &s)) {
        perror("vmdev-switch: cannot set up");
        return EXIT_ERROR;
    }
    int status = EXIT_ERROR;
    if (o.uplink && add_uplink(&s, &o))
        goto out;
    s.listen_fd = listen_at(o.listen);
    if (s.listen_fd < 0)
        goto out;
    struct stat made;
    if (stat(o.listen, &made) == 0) {
        s.socket_dev = made.st_dev;
        s.socket_ino = made.st_ino;
    }
    s.accept_timer_owner = vmdev_event_loop_timer_new(
        s.loop, resume_accepting, &s, &s.accept_timer);
    resume_accepting(&s);
    if (!s.accept_timer_owner || !s.listen_watch) {
        perror("vmdev-switch: cannot watch the socket");
        goto out;
    }
    printf("vmdev-switch: listening on %s%s%s\n", o.listen,
           o.uplink ? ", uplink " : "", o.uplink ? o.uplink : "");
    fflush(stdout);
    while (!s.stop)
        vmdev_event_loop_run_once(s.loop, -1);
    status = EXIT_OK;
    if (o.stats) {
        struct vmdev_net_switch_stats st = vmdev_net_switch_stats(s.sw);
        printf("vmdev-switch: ports=%u forwarded=%llu flooded=%llu "
               "queued=%llu dropped=%llu filtered=%llu learned=%llu\n",
               st.ports, (unsigned long long)st.forwarded,
               (unsigned long long)st.flooded,
               (unsigned long long)st.queued,
               (unsigned long long)st.dropped,
               (unsigned long long)st.filtered,
               (unsigned long long)st.learned);
    }
out:
    vmdev_net_switch_free(s.sw);
    if (s.accept_timer_owner)
        vmdev_event_loop_timer_free(s.loop, s.accept_timer_owner);
    if (s.listen_fd >= 0) {
        close(s.listen_fd);
        /* Only the socket file this switch made: not one a later switch
         * put there after ours was taken for stale. */
        struct stat now;
        if (stat(o.listen, &now) == 0 && now.st_dev == s.socket_dev &&
            now.st_ino == s.socket_ino)
            unlink(o.listen);
    }
    vmdev_event_loop_free(s.loop);
    close(s.signal_fd);
    return status;
}
