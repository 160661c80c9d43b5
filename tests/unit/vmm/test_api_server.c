/* SPDX-License-Identifier: MIT */
/*
 * The control API's socket, framing and limits, with a client written
 * here: replies in QMP's shape, malformed, unknown and oversized
 * requests, two clients at once, events to every client, a client that
 * never reads, the socket's mode and a stale socket replaced.
 */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api_server.h"
#include "test.h"

static unsigned echo_calls;

/* {"execute": "echo", "arguments": {"x": ...}} returns {"x": ...}. */
static struct json_object *echo(void *opaque, struct json_object *args,
                                struct vmm_api_error *error)
{
    echo_calls++;
    struct json_object *x;
    if (!args || !json_object_object_get_ex(args, "x", &x)) {
        snprintf(error->desc, sizeof(error->desc), "echo: no x");
        return NULL;
    }
    struct json_object *result = json_object_new_object();
    json_object_object_add(result, "x", json_object_get(x));
    return result;
}

static const struct vmm_api_command commands[] = { { "echo", echo } };

static char path[64];
static struct vmdev_event_loop *loop;
static struct vmm_api_server *server;

static void setup(void)
{
    snprintf(path, sizeof(path), "/tmp/vmdev-api-test-%d.sock", getpid());
    loop = vmdev_event_loop_new();
    char why[256] = "";
    server = vmm_api_server_new(path, loop, commands, 1, NULL, why,
                                sizeof(why));
    if (!loop || !server) {
        fprintf(stderr, "%s\n", why);
        abort();
    }
}

static void teardown(void)
{
    vmm_api_server_free(server);
    vmdev_event_loop_free(loop);
}

static int connect_client(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
        abort();
    vmdev_event_loop_run_once(loop, 1000); /* the accept */
    return fd;
}

static void send_text(int fd, const char *text)
{
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        abort();
}

/* Run the server until the client has a whole line (bounded by a
 * timeout that only a broken server reaches); the line, or "" if the
 * server hung up. */
static char line[512];
static const char *read_line(int fd)
{
    size_t len = 0;
    for (unsigned rounds = 0; rounds < 1000; rounds++) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 0) == 1) {
            ssize_t n = read(fd, line + len, 1);
            if (n <= 0)
                break;
            if (line[len] == '\n') {
                line[len] = 0;
                return line;
            }
            if (++len == sizeof(line) - 1)
                break;
            continue;
        }
        vmdev_event_loop_run_once(loop, 100);
    }
    line[len] = 0;
    return line;
}

/* Write len bytes, running the server between pieces (the socket's
 * buffer holds less than a request); false once the server hung up. */
static bool send_serving(int fd, const char *data, size_t len)
{
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, data + sent, len - sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            return false;
        vmdev_event_loop_run_once(loop, 10);
    }
    return true;
}

static void replies_in_qmp_shape(void)
{
    setup();
    int fd = connect_client();
    send_text(fd, "{\"execute\": \"echo\", \"arguments\": {\"x\": 5}, "
                  "\"id\": \"a1\"}\n");
    CHECK(strcmp(read_line(fd), "{\"return\":{\"x\":5},\"id\":\"a1\"}") == 0);
    send_text(fd, "{\"execute\": \"echo\", \"id\": 2}\n");
    CHECK(strcmp(read_line(fd), "{\"error\":{\"class\":\"GenericError\","
                                "\"desc\":\"echo: no x\"},\"id\":2}") == 0);
    close(fd);
    teardown();
}

static void bad_requests_get_errors_and_the_connection_stays(void)
{
    setup();
    int fd = connect_client();
    echo_calls = 0;
    send_text(fd, "{\"execute\": \"echo\", \n");
    CHECK(strstr(read_line(fd), "JSON parse error") != NULL);
    send_text(fd, "[1, 2]\n");
    CHECK(strstr(read_line(fd), "a request is an object") != NULL);
    send_text(fd, "{\"execute\": \"reboot-the-host\", \"id\": 3}\n");
    CHECK(strcmp(read_line(fd),
                 "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"the "
                 "command reboot-the-host is not found\"},\"id\":3}") == 0);
    send_text(fd, "{\"execute\": \"echo\", \"arguments\": 7}\n");
    CHECK(strstr(read_line(fd), "must be an object") != NULL);
    send_text(fd, "{\"execute\": \"echo\"} {\"execute\": \"echo\"}\n");
    CHECK(strstr(read_line(fd), "not one whole value") != NULL);
    CHECK_EQ(echo_calls, 0);
    /* Still served after all that. */
    send_text(fd, "\n{\"execute\": \"echo\", \"arguments\": {\"x\": 1}}\n");
    CHECK(strcmp(read_line(fd), "{\"return\":{\"x\":1}}") == 0);
    close(fd);
    teardown();
}

static void an_oversized_request_closes_its_connection_only(void)
{
    setup();
    int big = connect_client(), other = connect_client();
    char *junk = malloc(VMM_API_MAX_REQUEST + 16);
    memset(junk, 'x', VMM_API_MAX_REQUEST + 16);
    (void)send_serving(big, junk, VMM_API_MAX_REQUEST + 16);
    free(junk);
    CHECK(strstr(read_line(big), "no end of line within 65536 bytes") != NULL);
    CHECK(strcmp(read_line(big), "") == 0); /* then the end */
    send_text(other, "{\"execute\": \"echo\", \"arguments\": {\"x\": 2}}\n");
    CHECK(strcmp(read_line(other), "{\"return\":{\"x\":2}}") == 0);
    close(big);
    close(other);
    teardown();
}

static void events_reach_every_client(void)
{
    setup();
    int a = connect_client(), b = connect_client();
    struct json_object *data = json_object_new_object();
    json_object_object_add(data, "id", json_object_new_string("disk1"));
    vmm_api_server_event(server, "DEVICE_DELETED", data);
    for (int fd = a; fd; fd = fd == a ? b : 0) {
        static const char start[] =
            "{\"event\":\"DEVICE_DELETED\",\"data\":{\"id\":\"disk1\"},"
            "\"timestamp\":{\"seconds\":";
        const char *ev = read_line(fd);
        CHECK(strncmp(ev, start, strlen(start)) == 0);
        CHECK(strstr(ev, ",\"microseconds\":") != NULL);
    }
    close(a);
    close(b);
    teardown();
}

/* A client that sends requests and never reads its answers is dropped
 * once a bounded amount waits for it; the other client is served on. */
static void a_client_that_never_reads_is_dropped(void)
{
    setup();
    int deaf = connect_client(), other = connect_client();
    char request[VMM_API_MAX_REQUEST / 2];
    /* An answer as long as its request: each echo returns its x. */
    memset(request, 'y', sizeof(request));
    int head = snprintf(request, sizeof(request),
                        "{\"execute\": \"echo\", \"arguments\": {\"x\": \"");
    request[head] = 'y';
    memcpy(request + sizeof(request) - 5, "\"}}\n", 4);
    request[sizeof(request) - 1] = 0;
    bool dropped = false;
    for (unsigned i = 0; i < 4 * VMM_API_MAX_PENDING / sizeof(request) &&
                         !dropped;
         i++)
        dropped = !send_serving(deaf, request, strlen(request));
    CHECK(dropped);
    send_text(other, "{\"execute\": \"echo\", \"arguments\": {\"x\": 3}}\n");
    CHECK(strcmp(read_line(other), "{\"return\":{\"x\":3}}") == 0);
    close(deaf);
    close(other);
    teardown();
}

static void the_socket_is_private_and_a_stale_one_replaced(void)
{
    setup();
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    /* A second server on a live socket is refused. */
    char why[256];
    CHECK(vmm_api_server_new(path, loop, commands, 1, NULL, why,
                             sizeof(why)) == NULL);
    CHECK_EQ(errno, EADDRINUSE);
    CHECK(strstr(why, path) != NULL);
    /* A dead server's socket file: left behind, then replaced. */
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strcpy(addr.sun_path, path);
    vmm_api_server_free(server);
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(stale >= 0 && bind(stale, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    close(stale); /* bound, never listened: nobody answers */
    server = vmm_api_server_new(path, loop, commands, 1, NULL, why,
                                sizeof(why));
    CHECK(server != NULL);
    int fd = connect_client();
    send_text(fd, "{\"execute\": \"echo\", \"arguments\": {\"x\": 4}}\n");
    CHECK(strcmp(read_line(fd), "{\"return\":{\"x\":4}}") == 0);
    close(fd);
    teardown();
    CHECK(access(path, F_OK) != 0); /* removed at free */
}

TEST_MAIN(TEST(replies_in_qmp_shape),
          TEST(bad_requests_get_errors_and_the_connection_stays),
          TEST(an_oversized_request_closes_its_connection_only),
          TEST(events_reach_every_client),
          TEST(a_client_that_never_reads_is_dropped),
          TEST(the_socket_is_private_and_a_stale_one_replaced))
