/* SPDX-License-Identifier: MIT */
/*
 * The control API's request handling: each line of the input is a
 * request from a hostile client. Every non-empty line gets exactly one
 * reply, a JSON object with "return" or "error", echoing the request's
 * id when it had one; nothing leaks or crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns its arguments, or an error without them. */
static struct json_object *echo(void *opaque, struct json_object *args,
                                struct vmm_api_error *error)
{
    (void)opaque;
    if (!args) {
        strcpy(error->desc, "echo: no arguments");
        return NULL;
    }
    return json_object_get(args);
}

static struct json_object *nothing(void *opaque, struct json_object *args,
                                   struct vmm_api_error *error)
{
    (void)opaque;
    (void)args;
    (void)error;
    return NULL; /* {} */
}

static const struct vmm_api_command commands[] = {
    { "echo", echo },
    { "quit", nothing },
};

static void check_reply(const char *reply)
{
    struct json_object *r = json_tokener_parse(reply);
    struct json_object *unused;
    if (!r || !json_object_is_type(r, json_type_object) ||
        (json_object_object_get_ex(r, "return", &unused) ==
         json_object_object_get_ex(r, "error", &unused)))
        abort();
    json_object_put(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vmm_api_server *server;
    if (!server && !(server = vmm_api_server_new_detached(commands, 2, NULL)))
        abort();
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len <= VMM_API_MAX_REQUEST) {
            char *reply = vmm_api_server_handle(server, p, len);
            if (reply)
                check_reply(reply);
            free(reply);
        }
        p += len + 1;
    }
    return 0;
}
