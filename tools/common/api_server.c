/* SPDX-License-Identifier: MIT */
#include "api_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

struct api_client {
    struct vmm_api_server *server;
    int fd;
    struct vmdev_event_watch *watch;
    bool watching_out;
    /* A request line being read. */
    char in[VMM_API_MAX_REQUEST];
    size_t in_len;
    /* Replies and events not yet written. */
    char *out;
    size_t out_len, out_cap;
};

struct vmm_api_server {
    struct vmdev_event_loop *loop;
    const struct vmm_api_command *commands;
    size_t num_commands;
    void *opaque;
    char *path; /* NULL: detached */
    int listen_fd;
    struct vmdev_event_watch *listen_watch; /* NULL while out of fds */
    struct api_client *clients[VMM_API_MAX_CLIENTS];
};

/* "PATH: REASON NOTE" in why, and errno. */
static void fail(char *why, size_t why_len, const char *path, int err,
                 const char *note)
{
    if (why_len)
        snprintf(why, why_len, "%s: %s%s", path, strerror(err), note);
    errno = err;
}

/* --- Requests and replies. --- */

static struct json_object *error_reply(const char *class, const char *desc)
{
    struct json_object *error = json_object_new_object();
    json_object_object_add(error, "class", json_object_new_string(class));
    json_object_object_add(error, "desc", json_object_new_string(desc));
    struct json_object *reply = json_object_new_object();
    json_object_object_add(reply, "error", error);
    return reply;
}

static const struct vmm_api_command *find(const struct vmm_api_server *s,
                                          const char *name)
{
    for (size_t i = 0; i < s->num_commands; i++)
        if (strcmp(s->commands[i].name, name) == 0)
            return &s->commands[i];
    return NULL;
}

/* The reply object for a parsed request. */
static struct json_object *dispatch(struct vmm_api_server *s,
                                    struct json_object *request)
{
    struct json_object *execute, *args = NULL;
    if (!json_object_is_type(request, json_type_object) ||
        !json_object_object_get_ex(request, "execute", &execute) ||
        !json_object_is_type(execute, json_type_string))
        return error_reply(VMM_API_GENERIC_ERROR,
                           "a request is an object with \"execute\" naming "
                           "the command");
    if (json_object_object_get_ex(request, "arguments", &args) &&
        !json_object_is_type(args, json_type_object))
        return error_reply(VMM_API_GENERIC_ERROR,
                           "\"arguments\" must be an object");
    const char *name = json_object_get_string(execute);
    const struct vmm_api_command *c = find(s, name);
    if (!c) {
        char desc[160];
        snprintf(desc, sizeof(desc), "the command %.100s is not found", name);
        return error_reply(VMM_API_COMMAND_NOT_FOUND, desc);
    }
    struct vmm_api_error error = { .class = VMM_API_GENERIC_ERROR };
    struct json_object *result = c->handler(s->opaque, args, &error);
    if (!result && error.desc[0])
        return error_reply(error.class, error.desc);
    struct json_object *reply = json_object_new_object();
    json_object_object_add(reply, "return",
                           result ? result : json_object_new_object());
    return reply;
}

char *vmm_api_server_handle(struct vmm_api_server *s, const char *line,
                            size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (!len)
        return NULL;
    if (len > VMM_API_MAX_REQUEST) /* the connection's reader cuts first */
        len = VMM_API_MAX_REQUEST;
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return NULL;
    struct json_object *request = json_tokener_parse_ex(tok, line, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    /* One value, the whole line: trailing text is a second request. */
    bool whole = request && jerr == json_tokener_success &&
                 json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    struct json_object *reply;
    if (!whole) {
        char desc[160];
        snprintf(desc, sizeof(desc), "JSON parse error: %s",
                 jerr == json_tokener_success || jerr == json_tokener_continue
                     ? "not one whole value"
                     : json_tokener_error_desc(jerr));
        reply = error_reply(VMM_API_GENERIC_ERROR, desc);
    } else {
        reply = dispatch(s, request);
    }
    struct json_object *id;
    if (whole && json_object_is_type(request, json_type_object) &&
        json_object_object_get_ex(request, "id", &id))
        json_object_object_add(reply, "id", json_object_get(id));
    char *text = strdup(json_object_to_json_string_ext(
        reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(reply);
    json_object_put(request);
    return text;
}

/* --- Connections. --- */

static void client_readable(void *opaque, uint32_t events);
static void accept_client(void *opaque, uint32_t events);

/* Only from the client's own callback (or the server's free): code up
 * the stack may hold the client. Elsewhere, hang_up(). */
static void client_close(struct api_client *c)
{
    struct vmm_api_server *s = c->server;
    for (size_t i = 0; i < VMM_API_MAX_CLIENTS; i++)
        if (s->clients[i] == c)
            s->clients[i] = NULL;
    vmdev_event_loop_remove(s->loop, c->watch);
    close(c->fd);
    free(c->out);
    free(c);
    /* An fd is free again: take connections again if they had stopped. */
    if (!s->listen_watch && s->listen_fd >= 0)
        s->listen_watch = vmdev_event_loop_add(s->loop, s->listen_fd,
                                               VMDEV_EVENT_IN, accept_client,
                                               s);
}

/* End the connection from anywhere: its callback then sees the end of
 * the stream and closes it. */
static void hang_up(struct api_client *c)
{
    shutdown(c->fd, SHUT_RDWR);
}

/* Watch for input, and for room to write while output waits. */
static bool client_rewatch(struct api_client *c)
{
    bool want_out = c->out_len > 0;
    if (c->watch && want_out == c->watching_out)
        return true;
    if (c->watch)
        vmdev_event_loop_remove(c->server->loop, c->watch);
    c->watching_out = want_out;
    c->watch = vmdev_event_loop_add(c->server->loop, c->fd,
                                    VMDEV_EVENT_IN |
                                        (want_out ? VMDEV_EVENT_OUT : 0),
                                    client_readable, c);
    return c->watch != NULL;
}

/* Write what waits; false when the client is gone. */
static bool client_flush(struct api_client *c)
{
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return false;
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    return client_rewatch(c);
}

/* Queue one line for the client; false when it must be dropped (it
 * does not read, or memory ran out). */
static bool client_queue(struct api_client *c, const char *text)
{
    size_t len = strlen(text);
    if (c->out_len + len + 1 > VMM_API_MAX_PENDING)
        return false;
    if (c->out_len + len + 1 > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len + 1)
            cap *= 2;
        char *out = realloc(c->out, cap);
        if (!out)
            return false;
        c->out = out;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, text, len);
    c->out[c->out_len + len] = '\n';
    c->out_len += len + 1;
    return true;
}

/* Answer every whole line read; false when the client must go. */
static bool client_answer_lines(struct api_client *c)
{
    size_t start = 0;
    for (size_t i = 0; i < c->in_len; i++) {
        if (c->in[i] != '\n')
            continue;
        char *reply = vmm_api_server_handle(c->server, c->in + start,
                                            i - start);
        bool queued = !reply || client_queue(c, reply);
        free(reply);
        if (!queued)
            return false;
        start = i + 1;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    if (c->in_len == sizeof(c->in)) {
        /* No newline in a whole buffer: say why, then hang up. */
        static const char too_long[] =
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"a request "
            "has no end of line within 65536 bytes\"}}";
        (void)(client_queue(c, too_long) && client_flush(c));
        return false;
    }
    return true;
}

static void client_readable(void *opaque, uint32_t events)
{
    struct api_client *c = opaque;
    bool keep = true;
    if (events & VMDEV_EVENT_IN) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
                         MSG_DONTWAIT);
        if (n > 0) {
            c->in_len += (size_t)n;
            keep = client_answer_lines(c);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            /* The client hung up, or stopped writing: what it was
             * answered still goes out, as far as it reads. */
            (void)client_flush(c);
            keep = false;
        }
    }
    if (keep)
        keep = client_flush(c);
    if (!keep)
        client_close(c);
}

static bool has_clients(const struct vmm_api_server *s)
{
    for (size_t i = 0; i < VMM_API_MAX_CLIENTS; i++)
        if (s->clients[i])
            return true;
    return false;
}

static void accept_client(void *opaque, uint32_t events)
{
    struct vmm_api_server *s = opaque;
    (void)events;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        /* Out of fds, the connection stays queued and the socket
         * readable: stop watching it until a client goes, rather than
         * spin. */
        if ((errno == EMFILE || errno == ENFILE) && has_clients(s)) {
            vmdev_event_loop_remove(s->loop, s->listen_watch);
            s->listen_watch = NULL;
        }
        return;
    }
    size_t slot = 0;
    while (slot < VMM_API_MAX_CLIENTS && s->clients[slot])
        slot++;
    struct api_client *c = slot < VMM_API_MAX_CLIENTS
                               ? calloc(1, sizeof(*c))
                               : NULL;
    if (!c) { /* as many clients as allowed, or no memory */
        close(fd);
        return;
    }
    c->server = s;
    c->fd = fd;
    s->clients[slot] = c;
    if (!client_rewatch(c))
        client_close(c);
}

/* --- The socket. --- */

/* Whether the socket file at addr is a dead process's: a connection is
 * refused (ECONNREFUSED: nothing listens). 0 stale, or the errno that
 * keeps it: EADDRINUSE when someone listens (or its queue is full), or
 * why it cannot be told (EACCES: another user's). */
static int socket_is_stale(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int err = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0
                  ? EADDRINUSE
                  : errno;
    close(fd);
    if (err == ECONNREFUSED)
        return 0;
    return err == EAGAIN ? EADDRINUSE : err;
}

static int listen_on(const char *path, char *why, size_t why_len)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path)) {
        fail(why, why_len, path, ENAMETOOLONG, "");
        return -1;
    }
    strcpy(addr.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fail(why, why_len, path, EEXIST, " (not a socket)");
            return -1;
        }
        int err = socket_is_stale(&addr);
        if (err) {
            fail(why, why_len, path, err,
                 err == EADDRINUSE ? " (another process serves it)" : "");
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(why, why_len, path, errno, "");
        return -1;
    }
    /* Linux makes the file with the socket's own mode: 0600 from the
     * start, whatever the umask, with no window and no path to follow. */
    if (fchmod(fd, 0600) || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
        listen(fd, VMM_API_MAX_CLIENTS)) {
        int err = errno;
        close(fd);
        fail(why, why_len, path, err, "");
        return -1;
    }
    return fd;
}

struct vmm_api_server *vmm_api_server_new_detached(
    const struct vmm_api_command *commands, size_t num, void *opaque)
{
    struct vmm_api_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->commands = commands;
    s->num_commands = num;
    s->opaque = opaque;
    s->listen_fd = -1;
    return s;
}

struct vmm_api_server *vmm_api_server_new(const char *path,
                                          struct vmdev_event_loop *loop,
                                          const struct vmm_api_command *commands,
                                          size_t num, void *opaque, char *why,
                                          size_t why_len)
{
    struct vmm_api_server *s = vmm_api_server_new_detached(commands, num,
                                                           opaque);
    if (!s) {
        fail(why, why_len, path, ENOMEM, "");
        return NULL;
    }
    s->loop = loop;
    s->path = strdup(path);
    s->listen_fd = s->path ? listen_on(path, why, why_len) : -1;
    if (s->listen_fd < 0) {
        int err = errno; /* listen_on said why */
        if (!s->path)
            fail(why, why_len, path, err = ENOMEM, "");
        free(s->path);
        free(s);
        errno = err;
        return NULL;
    }
    s->listen_watch = vmdev_event_loop_add(loop, s->listen_fd, VMDEV_EVENT_IN,
                                           accept_client, s);
    if (!s->listen_watch) {
        int err = errno ? errno : ENOMEM;
        vmm_api_server_free(s);
        fail(why, why_len, path, err, "");
        return NULL;
    }
    return s;
}

void vmm_api_server_free(struct vmm_api_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < VMM_API_MAX_CLIENTS; i++)
        if (s->clients[i])
            client_close(s->clients[i]);
    if (s->listen_watch)
        vmdev_event_loop_remove(s->loop, s->listen_watch);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        if (s->path)
            unlink(s->path);
    }
    free(s->path);
    free(s);
}

void vmm_api_server_event(struct vmm_api_server *s, const char *name,
                          struct json_object *data)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    struct json_object *stamp = json_object_new_object();
    json_object_object_add(stamp, "seconds", json_object_new_int64(now.tv_sec));
    json_object_object_add(stamp, "microseconds",
                           json_object_new_int64(now.tv_usec));
    struct json_object *event = json_object_new_object();
    json_object_object_add(event, "event", json_object_new_string(name));
    json_object_object_add(event, "data",
                           data ? data : json_object_new_object());
    json_object_object_add(event, "timestamp", stamp);
    const char *text = json_object_to_json_string_ext(
        event, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    /* A client that cannot take it is hung up on, not closed: an event
     * may come from a command, with that client's request under way. */
    for (size_t i = 0; i < VMM_API_MAX_CLIENTS; i++) {
        struct api_client *c = s->clients[i];
        if (c && !(client_queue(c, text) && client_flush(c)))
            hang_up(c);
    }
    json_object_put(event);
}
