/* SPDX-License-Identifier: MIT */
/*
 * stream-tap --listen PATH --tap NAME
 *
 * A test peer for `vmdev-run --net socket=PATH`: it creates the tap NAME
 * (IFF_TAP, no packet information) and a UNIX stream socket at PATH, puts
 * itself in the background once both exist (so the caller can go on), and
 * then moves Ethernet frames between the tap and one connection, each
 * frame on the socket after its 4-byte big-endian length, the framing of
 * QEMU's -netdev stream and passt. It ends when the connection does.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FRAME 65536u

static void die(const char *what)
{
    fprintf(stderr, "stream-tap: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write");
        p += n;
        len -= (size_t)n;
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL, *name = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            path = argv[i + 1];
        else if (strcmp(argv[i], "--tap") == 0)
            name = argv[i + 1];
    }
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (!path || !name || strlen(path) >= sizeof(sun.sun_path) ||
        strlen(name) >= IFNAMSIZ) {
        fprintf(stderr, "usage: stream-tap --listen PATH --tap NAME\n");
        return 2;
    }
    int tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tap < 0)
        die("/dev/net/tun");
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
    strcpy(ifr.ifr_name, name);
    if (ioctl(tap, TUNSETIFF, &ifr) < 0)
        die("TUNSETIFF");
    strcpy(sun.sun_path, path);
    unlink(path);
    int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (server < 0 || bind(server, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(server, 1) < 0)
        die(path);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid > 0)
        return 0; /* both exist: the caller may connect */
    int conn = accept(server, NULL, NULL);
    if (conn < 0)
        die("accept");
    close(server);

    static uint8_t from_tap[4 + MAX_FRAME], from_sock[2 * (4 + MAX_FRAME)];
    size_t have = 0;
    struct pollfd fds[2] = { { tap, POLLIN, 0 }, { conn, POLLIN, 0 } };
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (fds[0].revents & POLLIN) {
            ssize_t n = read(tap, from_tap + 4, MAX_FRAME);
            if (n > 0) {
                from_tap[0] = (uint8_t)(n >> 24);
                from_tap[1] = (uint8_t)(n >> 16);
                from_tap[2] = (uint8_t)(n >> 8);
                from_tap[3] = (uint8_t)n;
                write_all(conn, from_tap, 4 + (size_t)n);
            }
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(conn, from_sock + have, sizeof(from_sock) - have);
            if (n <= 0)
                return 0; /* the VMM went away */
            have += (size_t)n;
            size_t at = 0;
            while (have - at >= 4) {
                uint32_t len = (uint32_t)from_sock[at] << 24 |
                               (uint32_t)from_sock[at + 1] << 16 |
                               (uint32_t)from_sock[at + 2] << 8 |
                               from_sock[at + 3];
                if (len > MAX_FRAME) {
                    fprintf(stderr, "stream-tap: frame of %u bytes\n", len);
                    return 1;
                }
                if (have - at < 4 + len)
                    break;
                /* A tap takes one frame per write. */
                if (write(tap, from_sock + at + 4, len) < 0 && errno != EIO)
                    die("write to tap");
                at += 4 + len;
            }
            memmove(from_sock, from_sock + at, have - at);
            have -= at;
        }
    }
}
