/* SPDX-License-Identifier: MIT */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_server.h"
#include "machine.h"
#include "report.h"
#include "vmdev/device_manager.h"
#include "vmdev/version.h"

/* QMP's class for a device id that names nothing. */
#define API_DEVICE_NOT_FOUND "DeviceNotFound"

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

/* {"devices": [{"id", "type", "resources": [{"kind", "base", "size"}],
 * "pci", "port", "state"}]}, in the order the devices were added; pci
 * and port for the devices on root ports. */
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
        struct vmm_pci_place place;
        bool on_pci = vmm_machine_device_place(api->machine, d, &place);
        if (on_pci) {
            json_object_object_add(dev, "pci",
                                   json_object_new_string(place.address));
            json_object_object_add(dev, "port",
                                   json_object_new_string(place.port));
        }
        json_object_object_add(
            dev, "state",
            json_object_new_string(on_pci && place.removal_pending
                                       ? "removal-pending"
                                       : "running"));
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
    struct json_object *events = json_object_new_array();
    json_object_array_add(events, json_object_new_string("DEVICE_DELETED"));
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "events", events);
    return r;
}

/* The arguments as --disk or --net would spell them: "key=value" for a
 * string or a number, "key" alone for true (a --net backend such as
 * slirp), the backend first. False if a key or value cannot be spelled
 * so, after saying why. */
static bool spell_arguments(struct json_object *args, char *spec, size_t len,
                            struct vmm_api_error *error)
{
    static const char *const first[] = { "slirp", "socket", "tap" };
    size_t used = 0;
    spec[0] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        json_object_object_foreach(args, key, value)
        {
            bool is_first = false;
            for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
                is_first |= strcmp(key, first[i]) == 0;
            if (strcmp(key, "type") == 0 || is_first != (pass == 0))
                continue;
            const char *text = NULL;
            switch (json_object_get_type(value)) {
            case json_type_string:
            case json_type_int:
                text = json_object_get_string(value);
                break;
            case json_type_boolean:
                if (json_object_get_boolean(value))
                    break; /* the key alone */
                continue;  /* false: as if absent */
            default:
                snprintf(error->desc, sizeof(error->desc),
                         "device-add: '%s' must be a string, a number or true",
                         key);
                return false;
            }
            if (strpbrk(key, ",=") || !*key || (text && strchr(text, ','))) {
                snprintf(error->desc, sizeof(error->desc),
                         "device-add: '%s' cannot hold ',' (or '=' in a key)",
                         key);
                return false;
            }
            int n = snprintf(spec + used, len - used, "%s%s%s%s",
                             used ? "," : "", key, text ? "=" : "",
                             text ? text : "");
            if (n < 0 || (size_t)n >= len - used) {
                snprintf(error->desc, sizeof(error->desc),
                         "device-add: the arguments are too long");
                return false;
            }
            used += (size_t)n;
        }
    }
    return true;
}

/* {"type": "disk"|"net"|"rng", and the keys --disk or --net take}: {}
 * once the device is plugged (the guest then finds it on its own). */
static struct json_object *cmd_device_add(void *opaque,
                                          struct json_object *args,
                                          struct vmm_api_error *error)
{
    struct vmm_api *api = opaque;
    struct json_object *type;
    if (!args || !json_object_object_get_ex(args, "type", &type) ||
        !json_object_is_type(type, json_type_string)) {
        snprintf(error->desc, sizeof(error->desc),
                 "device-add: 'type' (disk, net or rng) is required");
        return NULL;
    }
    char spec[4096];
    if (!spell_arguments(args, spec, sizeof(spec), error))
        return NULL;
    vmm_report_capture(error->desc, sizeof(error->desc));
    int ret = vmm_machine_add_device(api->machine, json_object_get_string(type),
                                     spec);
    vmm_report_capture(NULL, 0);
    if (ret) {
        if (!error->desc[0])
            snprintf(error->desc, sizeof(error->desc), "device-add failed");
        return NULL;
    }
    return json_object_new_object();
}

/* {"id": ID, "force": false}: {} once the device is gone, or
 * {"pending": true} while the guest lets go of it (DEVICE_DELETED says
 * when it did). */
static struct json_object *cmd_device_del(void *opaque,
                                          struct json_object *args,
                                          struct vmm_api_error *error)
{
    struct vmm_api *api = opaque;
    struct json_object *id, *force = NULL;
    if (!args || !json_object_object_get_ex(args, "id", &id) ||
        !json_object_is_type(id, json_type_string)) {
        snprintf(error->desc, sizeof(error->desc),
                 "device-del: 'id' is required");
        return NULL;
    }
    if (json_object_object_get_ex(args, "force", &force) &&
        !json_object_is_type(force, json_type_boolean)) {
        snprintf(error->desc, sizeof(error->desc),
                 "device-del: 'force' must be true or false");
        return NULL;
    }
    const char *name = json_object_get_string(id);
    if (!vmdev_device_find(vmm_machine_devices(api->machine), name)) {
        error->class = API_DEVICE_NOT_FOUND;
        snprintf(error->desc, sizeof(error->desc), "device-del: no device '%s'",
                 name);
        return NULL;
    }
    vmm_report_capture(error->desc, sizeof(error->desc));
    int ret = vmm_machine_remove_device(api->machine, name,
                                        force && json_object_get_boolean(force));
    vmm_report_capture(NULL, 0);
    if (ret < 0)
        return NULL;
    struct json_object *r = json_object_new_object();
    if (ret == VMM_PCI_REMOVAL_PENDING)
        json_object_object_add(r, "pending", json_object_new_boolean(true));
    return r;
}

/* {"id": ID} optional: every device's counters, or that one's, and the
 * VM's exits and notifications (vmm_machine_stats_json). */
static struct json_object *cmd_stats(void *opaque, struct json_object *args,
                                     struct vmm_api_error *error)
{
    struct vmm_api *api = opaque;
    struct json_object *id = NULL;
    if (args && json_object_object_get_ex(args, "id", &id)) {
        if (!json_object_is_type(id, json_type_string)) {
            snprintf(error->desc, sizeof(error->desc),
                     "stats: 'id' must be a string");
            return NULL;
        }
        if (!vmdev_device_find(vmm_machine_devices(api->machine),
                               json_object_get_string(id))) {
            error->class = API_DEVICE_NOT_FOUND;
            snprintf(error->desc, sizeof(error->desc), "stats: no device '%s'",
                     json_object_get_string(id));
            return NULL;
        }
    }
    return vmm_machine_stats_json(api->machine,
                                  id ? json_object_get_string(id) : NULL);
}

/* Every vCPU stopped (answered once they all are); devices run on. */
static struct json_object *cmd_pause(void *opaque, struct json_object *args,
                                     struct vmm_api_error *error)
{
    struct vmm_api *api = opaque;
    (void)args;
    (void)error;
    vmm_vm_pause(api->vm);
    return NULL;
}

static struct json_object *cmd_resume(void *opaque, struct json_object *args,
                                      struct vmm_api_error *error)
{
    struct vmm_api *api = opaque;
    (void)args;
    (void)error;
    vmm_vm_resume(api->vm);
    return NULL;
}

static const struct vmm_api_command commands[] = {
    { "version", cmd_version },
    { "stats", cmd_stats },
    { "pause", cmd_pause },
    { "resume", cmd_resume },
    { "device-add", cmd_device_add },
    { "device-del", cmd_device_del },
    { "device-list", cmd_device_list },
    { "quit", cmd_quit },
    { "query-events", cmd_query_events },
};

/* DEVICE_DELETED {"id": ID} to every client. */
static void device_deleted(void *opaque, const char *id)
{
    struct vmm_api *api = opaque;
    if (!api->server)
        return;
    struct json_object *data = json_object_new_object();
    json_object_object_add(data, "id", json_object_new_string(id));
    vmm_api_server_event(api->server, "DEVICE_DELETED", data);
}

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
    vmm_machine_on_removed(machine, device_deleted, api);
    return api;
}

void vmm_api_stop(struct vmm_api *api)
{
    if (!api)
        return;
    vmm_machine_on_removed(api->machine, NULL, NULL);
    vmm_api_server_free(api->server);
    free(api);
}
