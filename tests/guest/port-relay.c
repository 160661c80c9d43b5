/* SPDX-License-Identifier: MIT */
/*
 * port-relay SOCKET=PORT... -- COMMAND [ARG...]
 *
 * Run inside the outer QEMU guest of nested.sh: for each pair it makes a
 * UNIX stream socket at SOCKET and, once COMMAND (vmdev-run) connects,
 * copies bytes both ways between that connection and the virtio-serial
 * port named PORT, whose other end nested.sh connected to a socket on the
 * machine outside (vmdev-switch, passt). So `vmdev-run --net socket=SOCKET`
 * in the outer guest talks to a peer outside it; the bytes, and so the
 * stream framing, pass unchanged. The sockets exist before COMMAND starts;
 * each relay ends with its connection.
 */
#define _GNU_SOURCE /* accept4 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PORTS_DIR "/sys/class/virtio-ports"

static void die(const char *what)
{
    fprintf(stderr, "port-relay: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The device of the virtio-serial port named NAME (/dev/vportNpM). */
static bool find_port(const char *name, char *dev, size_t size)
{
    DIR *dir = opendir(PORTS_DIR);
    if (!dir)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(dir));) {
        if (e->d_name[0] == '.')
            continue;
        char path[512], got[128] = "";
        snprintf(path, sizeof(path), PORTS_DIR "/%s/name", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(got, sizeof(got), f))
            got[strcspn(got, "\n")] = '\0';
        fclose(f);
        if (strcmp(got, name) == 0) {
            snprintf(dev, size, "/dev/%s", e->d_name);
            found = true;
        }
    }
    closedir(dir);
    return found;
}

/* One direction's bytes read but not yet written. */
struct pipe_buf {
    int from, to;
    size_t have, at;
    char data[65536];
};

/* Moves what it can; false once FROM has ended. */
static bool pump(struct pipe_buf *p, short from_events, short to_events)
{
    if (p->have == 0 && (from_events & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(p->from, p->data, sizeof(p->data));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return false;
        p->have = n > 0 ? (size_t)n : 0;
        p->at = 0;
        to_events |= POLLOUT; /* try at once */
    }
    if (p->have > 0 && (to_events & (POLLOUT | POLLERR))) {
        ssize_t n = write(p->to, p->data + p->at, p->have);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return false;
        if (n > 0) {
            p->at += (size_t)n;
            p->have -= (size_t)n;
        }
    }
    return true;
}

static void relay(int conn, int port)
{
    static struct pipe_buf out, in;
    out.from = conn, out.to = port;
    in.from = port, in.to = conn;
    for (;;) {
        struct pollfd fds[2] = { { conn, 0, 0 }, { port, 0, 0 } };
        fds[0].events = (out.have ? 0 : POLLIN) | (in.have ? POLLOUT : 0);
        fds[1].events = (in.have ? 0 : POLLIN) | (out.have ? POLLOUT : 0);
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (!pump(&out, fds[0].revents, fds[1].revents) ||
            !pump(&in, fds[1].revents, fds[0].revents))
            return;
    }
}

static void start_relay(const char *pair)
{
    const char *eq = strchr(pair, '=');
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (!eq || (size_t)(eq - pair) >= sizeof(sun.sun_path) || !eq[1]) {
        fprintf(stderr, "port-relay: '%s' is not SOCKET=PORT\n", pair);
        exit(2);
    }
    memcpy(sun.sun_path, pair, (size_t)(eq - pair));
    char dev[300];
    if (!find_port(eq + 1, dev, sizeof(dev))) {
        fprintf(stderr, "port-relay: no virtio-serial port named '%s'\n", eq + 1);
        exit(1);
    }
    int port = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (port < 0)
        die(dev);
    int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (server < 0 || bind(server, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(server, 1) < 0)
        die(sun.sun_path);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid > 0) {
        close(server);
        close(port);
        return;
    }
    int conn = accept4(server, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (conn < 0)
        die("accept");
    close(server);
    unlink(sun.sun_path);
    relay(conn, port);
    _exit(0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a peer gone is an EPIPE, ending its relay */
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++)
        start_relay(argv[i]);
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: port-relay SOCKET=PORT... -- COMMAND [ARG...]\n");
        return 2;
    }
    execvp(argv[i + 1], argv + i + 1);
    die(argv[i + 1]);
}
