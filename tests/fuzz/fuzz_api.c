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

/* One of "return" and "error", and the request's id when it had one
 * (the request as the server reads it: one whole object). */
static void check_reply(const char *reply, const char *line, size_t len)
{
    struct json_object *r = json_tokener_parse(reply);
    struct json_object *unused, *id, *echoed;
    if (!r || !json_object_is_type(r, json_type_object) ||
        (json_object_object_get_ex(r, "return", &unused) ==
         json_object_object_get_ex(r, "error", &unused)))
        abort();
    struct json_tokener *tok = json_tokener_new();
    struct json_object *req = json_tokener_parse_ex(tok, line, (int)len);
    size_t end = json_tokener_get_parse_end(tok);
    while (end < len && (line[end] == ' ' || line[end] == '\r'))
        end++;
    if (req && end == len && json_object_is_type(req, json_type_object) &&
        json_object_object_get_ex(req, "id", &id) &&
        (!json_object_object_get_ex(r, "id", &echoed) ||
         !json_object_equal(id, echoed)))
        abort();
    json_tokener_free(tok);
    json_object_put(req);
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
                check_reply(reply, p, len);
            free(reply);
        }
        p += len + 1;
    }
    return 0;
}
