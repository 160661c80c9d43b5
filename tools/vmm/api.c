/* SPDX-License-Identifier: MIT */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>

#include "api_server.h"
#include "vmdev/device_manager.h"
#include "vmdev/version.h"

struct vmm_api {
    struct vmm_vm *vm;
    struct vmm_machine *machine;
    struct vmm_api_server *server;
};

/* {"vmdev": "0.1.0", "vmm": "vmdev-run"}: the library the VMM runs with. */
static struct json_object *cmd_version(void *opaque, struct json_object *args,
                                       struct vmm_api_error *error)
{
    (void)opaque;
    (void)args;
    (void)error;
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "vmdev", json_object_new_string(vmdev_version()));
    json_object_object_add(r, "vmm", json_object_new_string("vmdev-run"));
    return r;
}

static struct json_object *resource_json(const struct vmdev_resource *res)
{
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "kind", json_object_new_string(
                                          vmdev_resource_kind_name(res->kind)));
    json_object_object_add(r, "base", json_object_new_int64((int64_t)res->base));
    json_object_object_add(r, "size", json_object_new_int64((int64_t)res->size));
    return r;
}

/* {"devices": [{"id", "type", "resources": [{"kind", "base", "size"}]}]},
 * in the order the devices were added. */
static struct json_object *cmd_device_list(void *opaque,
                                           struct json_object *args,
                                           struct vmm_api_error *error)
{
    struct vmm_api *api = opaque;
    (void)args;
    (void)error;
    struct vmdev_device_manager *devices = vmm_machine_devices(api->machine);
    struct json_object *list = json_object_new_array();
    for (struct vmdev_device *d = vmdev_device_next(devices, NULL); d;
         d = vmdev_device_next(devices, d)) {
        struct json_object *dev = json_object_new_object();
        json_object_object_add(dev, "id",
                               json_object_new_string(vmdev_device_id(d)));
        json_object_object_add(dev, "type",
                               json_object_new_string(vmdev_device_type(d)));
        struct vmdev_resource res[32];
        size_t n = vmdev_device_resources(d, res, 32);
        struct json_object *owned = json_object_new_array();
        for (size_t i = 0; i < n && i < 32; i++)
            json_object_array_add(owned, resource_json(&res[i]));
        json_object_object_add(dev, "resources", owned);
        json_object_array_add(list, dev);
    }
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "devices", list);
    return r;
}

/* The VM stops and vmdev-run exits 0, as after the guest's poweroff. */
static struct json_object *cmd_quit(void *opaque, struct json_object *args,
                                    struct vmm_api_error *error)
{
    struct vmm_api *api = opaque;
    (void)args;
    (void)error;
    vmm_vm_request_exit(api->vm, VMM_EXIT_POWEROFF);
    return NULL;
}

/* {"events": [...]}: the events this VMM sends (none yet). */
static struct json_object *cmd_query_events(void *opaque,
                                            struct json_object *args,
                                            struct vmm_api_error *error)
{
    (void)opaque;
    (void)args;
    (void)error;
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "events", json_object_new_array());
    return r;
}

static const struct vmm_api_command commands[] = {
    { "version", cmd_version },
    { "device-list", cmd_device_list },
    { "quit", cmd_quit },
    { "query-events", cmd_query_events },
};

struct vmm_api *vmm_api_start(const char *path, struct vmdev_event_loop *loop,
                              struct vmm_vm *vm, struct vmm_machine *machine)
{
    struct vmm_api *api = calloc(1, sizeof(*api));
    if (!api) {
        fprintf(stderr, "vmdev-run: --api-socket: out of memory\n");
        return NULL;
    }
    api->vm = vm;
    api->machine = machine;
    char why[256];
    api->server = vmm_api_server_new(path, loop, commands,
                                     sizeof(commands) / sizeof(commands[0]),
                                     api, why, sizeof(why));
    if (!api->server) {
        fprintf(stderr, "vmdev-run: --api-socket %s\n", why);
        free(api);
        return NULL;
    }
    return api;
}

void vmm_api_stop(struct vmm_api *api)
{
    if (!api)
        return;
    vmm_api_server_free(api->server);
    free(api);
}
