/* SPDX-License-Identifier: MIT */
/*
 * vmdev-run's control API (--api-socket): the commands, on the main
 * loop, over tools/common/api_server.c. docs/api.md lists them.
 */
#ifndef VMM_API_H
#define VMM_API_H

#include "machine.h"
#include "vm.h"
#include "vmdev/event_loop.h"

struct vmm_api;

/* Serve the API at path on loop (the main loop). NULL after printing
 * why. */
struct vmm_api *vmm_api_start(const char *path, struct vmdev_event_loop *loop,
                              struct vmm_vm *vm, struct vmm_machine *machine);
/* Closes the clients and removes the socket. Accepts NULL. */
void vmm_api_stop(struct vmm_api *api);

#endif
