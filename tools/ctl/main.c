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
    "Usage: vmdev-ctl --socket PATH [--json] COMMAND [ARGS]\n"
    "\n"
    "Talk to a VMM's control API (vmdev-run --api-socket PATH).\n"
    "\n"
    "Commands:\n"
    "  version        the VMM and the libvmdev it runs\n"
    "  device-add disk path=FILE[,id=ID,...]\n"
    "  device-add net slirp|socket=PATH|tap=NAME[,id=ID,...]\n"
    "  device-add rng [id=ID]\n"
    "                 add a device while the guest runs, with the keys\n"
    "                 vmdev-run's --disk and --net take; it goes into a\n"
    "                 free PCI Express root port and the guest finds it\n"
    "  device-del ID [--force]\n"
    "                 ask the guest to release device ID (its port's\n"
    "                 attention button): it is removed once the guest lets\n"
    "                 go, which the DEVICE_DELETED event tells (see events);\n"
    "                 --force removes it at once, by surprise\n"
    "  device-list    every device: id, type, PCI address, root port, state\n"
    "                 and what it owns\n"
    "  stats [ID]     every device's counters (or device ID's): requests,\n"
    "                 bytes, errors, frames and drops by queue, kicks and\n"
    "                 interrupts; and the VM's exits\n"
    "  pause          stop the vCPUs (devices finish what is in flight)\n"
    "  resume         let them run again\n"
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

struct command {
    const char *name;
    unsigned min_args, max_args; /* words after the command */
};

static const struct command commands[] = {
    { "version", 0, 0 },      { "device-add", 1, 2 }, { "device-del", 1, 2 },
    { "device-list", 0, 0 },  { "stats", 0, 1 },      { "pause", 0, 0 },
    { "resume", 0, 0 },       { "query-events", 0, 0 }, { "quit", 0, 0 },
    { "events", 0, 0 },
};

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

/* A member's text, or "-". */
static const char *member(struct json_object *obj, const char *key)
{
    struct json_object *v;
    const char *text = json_object_object_get_ex(obj, key, &v)
                           ? json_object_get_string(v)
                           : NULL;
    return text ? text : "-";
}

static void print_devices(struct json_object *result)
{
    struct json_object *devices;
    if (!json_object_object_get_ex(result, "devices", &devices))
        return;
    printf("%-16s %-16s %-8s %-12s %-16s %s\n", "ID", "TYPE", "PCI", "PORT",
           "STATE", "RESOURCES");
    for (size_t i = 0; i < json_object_array_length(devices); i++) {
        struct json_object *d = json_object_array_get_idx(devices, i);
        struct json_object *id, *type, *res;
        if (!json_object_object_get_ex(d, "id", &id) ||
            !json_object_object_get_ex(d, "type", &type))
            continue;
        printf("%-16s %-16s %-8s %-12s %-16s ", json_object_get_string(id),
               json_object_get_string(type), member(d, "pci"),
               member(d, "port"), member(d, "state"));
        if (json_object_object_get_ex(d, "resources", &res))
            for (size_t j = 0; j < json_object_array_length(res); j++)
                print_resource(json_object_array_get_idx(res, j), j == 0);
        putchar('\n');
    }
}

/* "key=value ..." for an object's numbers, and lists of them as
 * "key=a,b,c". */
static void print_counters(struct json_object *obj)
{
    const char *sep = "";
    json_object_object_foreach(obj, key, value)
    {
        if (json_object_is_type(value, json_type_int)) {
            printf("%s%s=%s", sep, key, json_object_get_string(value));
            sep = " ";
        } else if (json_object_is_type(value, json_type_array)) {
            printf("%s%s=", sep, key);
            for (size_t i = 0; i < json_object_array_length(value); i++)
                printf("%s%s", i ? "," : "",
                       json_object_get_string(
                           json_object_array_get_idx(value, i)));
            sep = " ";
        }
    }
    putchar('\n');
}

/* A line per device, one more for its disk's or card's counters, then the
 * VM's exits and notifications. */
static void print_stats(struct json_object *result)
{
    struct json_object *devices, *v;
    if (json_object_object_get_ex(result, "devices", &devices)) {
        for (size_t i = 0; i < json_object_array_length(devices); i++) {
            struct json_object *d = json_object_array_get_idx(devices, i);
            printf("%s (%s): ", member(d, "id"), member(d, "type"));
            print_counters(d);
            if (json_object_object_get_ex(d, "disk", &v) ||
                json_object_object_get_ex(d, "net", &v)) {
                printf("  ");
                print_counters(v);
            }
        }
    }
    if (json_object_object_get_ex(result, "exits", &v)) {
        printf("exits: ");
        print_counters(v);
    }
    if (json_object_object_get_ex(result, "notifications", &v)) {
        printf("notifications: ");
        print_counters(v);
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
    } else if (strcmp(command, "stats") == 0) {
        print_stats(result);
    } else if (strcmp(command, "device-del") == 0) {
        bool pending = json_object_object_get_ex(result, "pending", &v) &&
                       json_object_get_boolean(v);
        printf("%s\n", pending ? "removal pending: the guest was asked to "
                                 "release the device"
                               : "removed");
    } else if (strcmp(command, "query-events") == 0 &&
               json_object_object_get_ex(result, "events", &v)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            printf("%s\n", json_object_get_string(
                               json_object_array_get_idx(v, i)));
    }
}

/* device-add TYPE [KEY=VALUE,WORD,...]: {"type": TYPE, KEY: VALUE, WORD:
 * true}; NULL after saying why. */
static struct json_object *device_add_arguments(char **words, int count)
{
    struct json_object *args = json_object_new_object();
    json_object_object_add(args, "type", json_object_new_string(words[0]));
    char *spec = count > 1 ? words[1] : NULL;
    for (char *save, *kv = spec ? strtok_r(spec, ",", &save) : NULL; kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == kv || strcmp(kv, "type") == 0 ||
            (eq && strncmp(kv, "type=", 5) == 0)) {
            fprintf(stderr, "vmdev-ctl: device-add: bad element '%s'\n", kv);
            json_object_put(args);
            return NULL;
        }
        if (eq)
            *eq = '\0';
        json_object_object_add(args, kv,
                               eq ? json_object_new_string(eq + 1)
                                  : json_object_new_boolean(true));
    }
    return args;
}

/* device-del ID [--force]: {"id": ID, "force": true}; NULL after saying
 * why. */
static struct json_object *device_del_arguments(char **words, int count)
{
    if (count > 1 && strcmp(words[1], "--force") != 0) {
        fprintf(stderr, "vmdev-ctl: device-del: unexpected '%s' (see "
                        "--help)\n",
                words[1]);
        return NULL;
    }
    struct json_object *args = json_object_new_object();
    json_object_object_add(args, "id", json_object_new_string(words[0]));
    if (count > 1)
        json_object_object_add(args, "force", json_object_new_boolean(true));
    return args;
}

/* Send `command` with args (taken; NULL: none) on fd and print its
 * answer, read from in. */
static int run_command(int fd, FILE *in, const char *command,
                       struct json_object *args, bool json)
{
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "execute", json_object_new_string(command));
    if (args)
        json_object_object_add(req, "arguments", args);
    json_object_object_add(req, "id", json_object_new_int(1));
    const char *text = json_object_to_json_string_ext(req,
                                                      JSON_C_TO_STRING_PLAIN);
    size_t len = strlen(text);
    bool sent = send(fd, text, len, MSG_NOSIGNAL) == (ssize_t)len &&
                send(fd, "\n", 1, MSG_NOSIGNAL) == 1;
    json_object_put(req);
    if (!sent) {
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
    if (optind == argc) {
        fprintf(stderr, "vmdev-ctl: a command is required (see --help)\n");
        return EXIT_USAGE;
    }
    const char *command = argv[optind];
    const struct command *known = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, command) == 0)
            known = &commands[i];
    if (!known) {
        fprintf(stderr, "vmdev-ctl: unknown command '%s' (see --help)\n",
                command);
        return EXIT_USAGE;
    }
    int count = argc - optind - 1;
    if ((unsigned)count < known->min_args ||
        (unsigned)count > known->max_args) {
        fprintf(stderr, "vmdev-ctl: %s: %s (see --help)\n", command,
                (unsigned)count < known->min_args ? "arguments missing"
                                                  : "too many arguments");
        return EXIT_USAGE;
    }
    struct json_object *args = NULL;
    char **words = argv + optind + 1;
    if (strcmp(command, "device-add") == 0 &&
        !(args = device_add_arguments(words, count)))
        return EXIT_USAGE;
    if (strcmp(command, "device-del") == 0 &&
        !(args = device_del_arguments(words, count)))
        return EXIT_USAGE;
    if (strcmp(command, "stats") == 0 && count == 1) {
        args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(words[0]));
    }
    int fd = connect_to(path);
    if (fd < 0) {
        json_object_put(args);
        return EXIT_ERROR;
    }
    FILE *in = fdopen(fd, "r");
    if (!in) {
        close(fd);
        json_object_put(args);
        return EXIT_ERROR;
    }
    bool events = strcmp(command, "events") == 0;
    if (!events) {
        struct timeval limit = { .tv_sec = ANSWER_TIMEOUT_S };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    }
    int status = events ? print_events(in)
                        : run_command(fd, in, command, args, json);
    fclose(in);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "vmdev-ctl: writing the answer: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    return status;
}
