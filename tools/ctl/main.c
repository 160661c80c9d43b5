/* SPDX-License-Identifier: MIT */
/*
 * vmdev-ctl: the control API's command-line client. One command a run:
 * it sends the request, prints the answer (a table, or the JSON with
 * --json) and exits 0, or 1 on an error answer or a failed connection,
 * 2 on a bad command line. `events` prints each event as it comes, one
 * JSON object a line, until the VMM closes the connection.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define EXIT_ERROR 1
#define EXIT_USAGE 2
/* How long a command waits for its answer: a VMM that does not answer
 * is an error, not a hang. */
#define ANSWER_TIMEOUT_S 30

static const char usage[] =
    "Usage: vmdev-ctl --socket PATH [--json] COMMAND\n"
    "\n"
    "Talk to a VMM's control API (vmdev-run --api-socket PATH).\n"
    "\n"
    "Commands:\n"
    "  version        the VMM and the libvmdev it runs\n"
    "  device-list    every device: id, type and what it owns\n"
    "  query-events   the events the VMM sends\n"
    "  quit           stop the VM; the VMM exits 0, as after a poweroff\n"
    "  events         print events as they come, one JSON object a line,\n"
    "                 until the VMM closes the connection\n"
    "\n"
    "Options:\n"
    "  --socket PATH  the API's UNIX socket (required)\n"
    "  --json         print the answer's JSON instead of a table\n"
    "  --help         show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on an error answer, when the VMM cannot be\n"
    "reached or when it does not answer within 30 s, 2 for a bad command\n"
    "line.\n";

static const char *const commands[] = { "version", "device-list",
                                        "query-events", "quit", "events" };

static int connect_to(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "vmdev-ctl: --socket %s: %s\n", path,
                strerror(ENAMETOOLONG));
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
        fprintf(stderr, "vmdev-ctl: --socket %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The next line from the VMM, parsed; NULL at its end or on bad JSON. */
static struct json_object *read_object(FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    struct json_object *obj = NULL;
    if (getline(&line, &cap, in) > 0)
        obj = json_tokener_parse(line);
    free(line);
    return obj;
}

/* "mmio 0xfec00000-0xfec000ff", "gsi 16-23", "pci-slot 1". */
static void print_resource(struct json_object *r, bool first)
{
    struct json_object *kind, *base, *size;
    if (!json_object_object_get_ex(r, "kind", &kind) ||
        !json_object_object_get_ex(r, "base", &base) ||
        !json_object_object_get_ex(r, "size", &size))
        return;
    const char *k = json_object_get_string(kind);
    if (!k)
        return;
    uint64_t b = (uint64_t)json_object_get_int64(base);
    uint64_t last = b + (uint64_t)json_object_get_int64(size) - 1;
    bool address = strcmp(k, "pio") == 0 || strcmp(k, "mmio") == 0;
    printf("%s%s ", first ? "" : ", ", k);
    if (address)
        printf("0x%" PRIx64 "-0x%" PRIx64, b, last);
    else if (last > b)
        printf("%" PRIu64 "-%" PRIu64, b, last);
    else
        printf("%" PRIu64, b);
}

static void print_devices(struct json_object *result)
{
    struct json_object *devices;
    if (!json_object_object_get_ex(result, "devices", &devices))
        return;
    printf("%-16s %-16s %s\n", "ID", "TYPE", "RESOURCES");
    for (size_t i = 0; i < json_object_array_length(devices); i++) {
        struct json_object *d = json_object_array_get_idx(devices, i);
        struct json_object *id, *type, *res;
        if (!json_object_object_get_ex(d, "id", &id) ||
            !json_object_object_get_ex(d, "type", &type))
            continue;
        printf("%-16s %-16s ", json_object_get_string(id),
               json_object_get_string(type));
        if (json_object_object_get_ex(d, "resources", &res))
            for (size_t j = 0; j < json_object_array_length(res); j++)
                print_resource(json_object_array_get_idx(res, j), j == 0);
        putchar('\n');
    }
}

static void print_result(const char *command, struct json_object *result)
{
    struct json_object *v;
    if (strcmp(command, "version") == 0) {
        const char *vmm = json_object_object_get_ex(result, "vmm", &v)
                              ? json_object_get_string(v) : "?";
        const char *lib = json_object_object_get_ex(result, "vmdev", &v)
                              ? json_object_get_string(v) : "?";
        printf("%s with libvmdev %s\n", vmm, lib);
    } else if (strcmp(command, "device-list") == 0) {
        print_devices(result);
    } else if (strcmp(command, "query-events") == 0 &&
               json_object_object_get_ex(result, "events", &v)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            printf("%s\n", json_object_get_string(
                               json_object_array_get_idx(v, i)));
    }
}

/* Send `command` on fd and print its answer, read from in. */
static int run_command(int fd, FILE *in, const char *command, bool json)
{
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "execute", json_object_new_string(command));
    json_object_object_add(req, "id", json_object_new_int(1));
    char line[256];
    int len = snprintf(line, sizeof(line), "%s\n",
                       json_object_to_json_string_ext(req,
                                                      JSON_C_TO_STRING_PLAIN));
    json_object_put(req);
    if (len <= 0 || (size_t)len >= sizeof(line) ||
        send(fd, line, (size_t)len, MSG_NOSIGNAL) != len) {
        fprintf(stderr, "vmdev-ctl: %s: %s\n", command, strerror(errno));
        return EXIT_ERROR;
    }
    struct json_object *reply;
    /* Events may come before the answer, which has "return" or "error". */
    struct json_object *unused;
    errno = 0;
    while ((reply = read_object(in))) {
        if (json_object_object_get_ex(reply, "return", &unused) ||
            json_object_object_get_ex(reply, "error", &unused))
            break;
        json_object_put(reply);
    }
    if (!reply) {
        fprintf(stderr, "vmdev-ctl: %s: %s\n", command,
                errno == EAGAIN || errno == EWOULDBLOCK
                    ? "no answer within 30 s"
                    : "no answer: the VMM closed the connection or sent "
                      "something other than JSON");
        return EXIT_ERROR;
    }
    struct json_object *result, *error, *desc;
    int status = 0;
    if (json_object_object_get_ex(reply, "return", &result)) {
        if (json)
            printf("%s\n", json_object_to_json_string_ext(
                               result, JSON_C_TO_STRING_PLAIN));
        else
            print_result(command, result);
    } else {
        bool has_desc = json_object_object_get_ex(reply, "error", &error) &&
                        json_object_object_get_ex(error, "desc", &desc);
        fprintf(stderr, "vmdev-ctl: %s: %s\n", command,
                has_desc ? json_object_get_string(desc) : "a malformed answer");
        status = EXIT_ERROR;
    }
    json_object_put(reply);
    return status;
}

static int print_events(FILE *io)
{
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, io) > 0) {
        fputs(line, stdout);
        fflush(stdout);
    }
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (c) {
        case 's': path = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            fprintf(stderr, "vmdev-ctl: see --help\n");
            return EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "vmdev-ctl: --socket PATH is required (see --help)\n");
        return EXIT_USAGE;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "vmdev-ctl: %s (see --help)\n",
                optind == argc ? "a command is required"
                               : "one command at a time");
        return EXIT_USAGE;
    }
    const char *command = argv[optind];
    bool known = false;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        known |= strcmp(commands[i], command) == 0;
    if (!known) {
        fprintf(stderr, "vmdev-ctl: unknown command '%s' (see --help)\n",
                command);
        return EXIT_USAGE;
    }
    int fd = connect_to(path);
    if (fd < 0)
        return EXIT_ERROR;
    FILE *in = fdopen(fd, "r");
    if (!in) {
        close(fd);
        return EXIT_ERROR;
    }
    bool events = strcmp(command, "events") == 0;
    if (!events) {
        struct timeval limit = { .tv_sec = ANSWER_TIMEOUT_S };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    }
    int status = events ? print_events(in) : run_command(fd, in, command, json);
    fclose(in);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "vmdev-ctl: writing the answer: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    return status;
}
