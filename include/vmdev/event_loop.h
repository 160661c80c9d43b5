/* SPDX-License-Identifier: MIT */
/*
 * An epoll event loop: fd watches, eventfds and timerfd-backed timers.
 *
 * A loop runs either on its own thread (vmdev_event_loop_start) or by hand
 * (vmdev_event_loop_run_once, for tests and for VMMs with their own main
 * loop). Callbacks run on the loop's thread, one at a time.
 *
 * Removal is safe from any thread and from inside a callback: once
 * vmdev_event_loop_remove() returns, the watch's callback is not running
 * and will not run again (a removal from another thread waits for a
 * callback of that watch in progress), so the caller may free its opaque.
 */
#ifndef VMDEV_EVENT_LOOP_H
#define VMDEV_EVENT_LOOP_H

#include <stdint.h>

#include "vmdev/clock.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMDEV_EVENT_IN 1u
#define VMDEV_EVENT_OUT 4u

typedef void (*vmdev_event_fn)(void *opaque, uint32_t events);

struct vmdev_event_loop;
struct vmdev_event_watch;

struct vmdev_event_loop *vmdev_event_loop_new(void);
/* Stops the loop's thread if it runs, then frees every watch and timer. */
void vmdev_event_loop_free(struct vmdev_event_loop *loop);

/* Watch fd for VMDEV_EVENT_* (level-triggered). NULL on error (errno). */
struct vmdev_event_watch *vmdev_event_loop_add(struct vmdev_event_loop *loop,
                                               int fd, uint32_t events,
                                               vmdev_event_fn fn,
                                               void *opaque);
/* The same, storing the watch in *slot before its callback can run: for a
 * watch added from another thread while the loop runs, whose callback
 * uses the stored pointer. */
struct vmdev_event_watch *
vmdev_event_loop_add_into(struct vmdev_event_loop *loop, int fd,
                          uint32_t events, vmdev_event_fn fn, void *opaque,
                          struct vmdev_event_watch **slot);
void vmdev_event_loop_remove(struct vmdev_event_loop *loop,
                             struct vmdev_event_watch *watch);
/* Wait until no callback whose opaque is opaque runs (from another
 * thread; on the loop's own it returns at once). Once the caller has
 * removed its watches and can add no more, it may then free opaque, even
 * if a callback had swapped one watch of it for another meanwhile. */
void vmdev_event_loop_wait_callbacks(struct vmdev_event_loop *loop,
                                     const void *opaque);

/*
 * Wait up to timeout_ms (-1: forever) and dispatch what is ready. Returns
 * the number of callbacks run, or -errno. Only for a loop without a thread.
 */
int vmdev_event_loop_run_once(struct vmdev_event_loop *loop, int timeout_ms);

/* Run the loop on a new thread until vmdev_event_loop_stop(). */
__attribute__((warn_unused_result))
int vmdev_event_loop_start(struct vmdev_event_loop *loop);
void vmdev_event_loop_stop(struct vmdev_event_loop *loop);

/*
 * A one-shot timer on CLOCK_MONOTONIC (timerfd, absolute deadlines). Fills
 * *timer with the arm/cancel pair a clocked device takes (clock.h); when a
 * deadline passes, expired(opaque) runs on the loop's thread.
 */
struct vmdev_event_timer;
struct vmdev_event_timer *
vmdev_event_loop_timer_new(struct vmdev_event_loop *loop,
                           void (*expired)(void *opaque), void *opaque,
                           struct vmdev_timer *timer);
void vmdev_event_loop_timer_free(struct vmdev_event_loop *loop,
                                 struct vmdev_event_timer *t);

/* eventfd helpers: a non-blocking, close-on-exec counter. */
int vmdev_eventfd_new(void);
void vmdev_eventfd_signal(int fd);
/* Reads and returns the counter (0 if it was not signalled). */
uint64_t vmdev_eventfd_drain(int fd);

#ifdef __cplusplus
}
#endif

#endif
