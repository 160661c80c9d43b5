/* SPDX-License-Identifier: MIT */
/*
 * The control API's transport: JSON objects, one a line, over a UNIX
 * socket, in QMP's shape. A request {"execute": NAME, "arguments": {...},
 * "id": ANY} is answered {"return": {...}, "id": ANY} or {"error":
 * {"class": CLASS, "desc": TEXT}, "id": ANY}; events go to every client
 * as {"event": NAME, "data": {...}, "timestamp": {"seconds": S,
 * "microseconds": US}}. The commands are the owner's (a table of
 * handlers); this file is the socket, the framing and the limits.
 *
 * Everything runs on one event loop's thread: requests are handled one
 * at a time, in the order their lines arrive. A client is hostile like a
 * guest: a line longer than VMM_API_MAX_REQUEST closes its connection
 * (after an error), malformed JSON is answered with an error, and one
 * that does not read its answers is dropped once VMM_API_MAX_PENDING
 * bytes wait for it, so no client stalls the loop or another client.
 */
#ifndef VMM_API_SERVER_H
#define VMM_API_SERVER_H

#include <json-c/json.h>
#include <stddef.h>

#include "vmdev/event_loop.h"

#define VMM_API_MAX_REQUEST (64u * 1024)    /* bytes of one request line */
#define VMM_API_MAX_PENDING (1024u * 1024)  /* bytes waiting for a client */
#define VMM_API_MAX_CLIENTS 16

/* QMP's error classes. */
#define VMM_API_GENERIC_ERROR "GenericError"
#define VMM_API_COMMAND_NOT_FOUND "CommandNotFound"

struct vmm_api_error {
    const char *class; /* VMM_API_GENERIC_ERROR unless set */
    char desc[256];
};

/*
 * A command: args is the request's "arguments" object (NULL when there
 * is none). Returns its result (an object the server takes; NULL: {}),
 * or NULL after filling *error and setting error->desc[0].
 */
typedef struct json_object *vmm_api_handler_fn(void *opaque,
                                               struct json_object *args,
                                               struct vmm_api_error *error);

struct vmm_api_command {
    const char *name;
    vmm_api_handler_fn *handler;
};

struct vmm_api_server;

/*
 * Listen on `path` (mode 0600), serving `commands` (num entries, which
 * outlive the server) on `loop`. A socket file left by a dead process is
 * replaced; one a live process listens on is refused (EADDRINUSE). NULL
 * with errno and a sentence in why.
 */
struct vmm_api_server *vmm_api_server_new(const char *path,
                                          struct vmdev_event_loop *loop,
                                          const struct vmm_api_command *commands,
                                          size_t num, void *opaque, char *why,
                                          size_t why_len);
/* Closes every connection and removes the socket file. Accepts NULL;
 * from the loop's thread or once the loop stopped. */
void vmm_api_server_free(struct vmm_api_server *server);

/* Send an event to every client; takes data (NULL: {}). Loop thread. */
void vmm_api_server_event(struct vmm_api_server *server, const char *name,
                          struct json_object *data);

/* Answer one request line (without its newline) as the server would: the
 * reply to send, or NULL when the line is empty. For the fuzz target and
 * tests; the caller frees the reply. */
char *vmm_api_server_handle(struct vmm_api_server *server, const char *line,
                            size_t len);
/* A server without a socket, for vmm_api_server_handle alone. */
struct vmm_api_server *vmm_api_server_new_detached(
    const struct vmm_api_command *commands, size_t num, void *opaque);

#endif
