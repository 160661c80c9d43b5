/* SPDX-License-Identifier: MIT */
#include "test.h"
#include "vmdev/event_loop.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct counter {
    int calls;
    int fd;
    struct vmdev_event_loop *loop;
    struct vmdev_event_watch *self;
};

static void count_and_drain(void *opaque, uint32_t events)
{
    struct counter *c = opaque;
    c->calls++;
    vmdev_eventfd_drain(c->fd);
}

static void eventfd_wakes_its_callback(void)
{
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    struct counter c = { .fd = vmdev_eventfd_new() };
    struct vmdev_event_watch *w = vmdev_event_loop_add(loop, c.fd, VMDEV_EVENT_IN, count_and_drain, &c);
    CHECK(w != NULL);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 0), 0);
    vmdev_eventfd_signal(c.fd);
    vmdev_eventfd_signal(c.fd);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 1000), 1);
    CHECK_EQ(c.calls, 1);
    CHECK_EQ(vmdev_eventfd_drain(c.fd), 0);
    vmdev_event_loop_remove(loop, w);
    vmdev_eventfd_signal(c.fd);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 0), 0);
    close(c.fd);
    vmdev_event_loop_free(loop);
}

static void remove_self(void *opaque, uint32_t events)
{
    struct counter *c = opaque;
    c->calls++;
    vmdev_event_loop_remove(c->loop, c->self);
}

static void removal_inside_callback(void)
{
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    struct counter a = { .fd = vmdev_eventfd_new(), .loop = loop };
    struct counter b = { .fd = vmdev_eventfd_new(), .loop = loop };
    a.self = vmdev_event_loop_add(loop, a.fd, VMDEV_EVENT_IN, remove_self, &a);
    b.self = vmdev_event_loop_add(loop, b.fd, VMDEV_EVENT_IN, remove_self, &b);
    vmdev_eventfd_signal(a.fd);
    vmdev_eventfd_signal(b.fd);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 1000), 2);
    /* Both stay readable but are gone from the loop. */
    CHECK_EQ(vmdev_event_loop_run_once(loop, 0), 0);
    CHECK_EQ(a.calls + b.calls, 2);
    close(a.fd);
    close(b.fd);
    vmdev_event_loop_free(loop);
}

struct timer_probe {
    int fired;
};

static void note_expiry(void *opaque)
{
    struct timer_probe *p = opaque;
    p->fired++;
}

static void timer_fires_once_and_cancel_holds(void)
{
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    struct timer_probe p = { 0 };
    struct vmdev_timer timer;
    struct vmdev_event_timer *t = vmdev_event_loop_timer_new(loop, note_expiry, &p, &timer);
    CHECK(t != NULL);
    uint64_t now = vmdev_clock_now(&vmdev_host_clock, VMDEV_CLOCK_MONOTONIC);
    timer.arm(timer.opaque, now + 1000000);
    /* Bounded wait: the timer is due in 1 ms; allow 5 s under load. */
    for (int i = 0; i < 50 && !p.fired; i++)
        CHECK(vmdev_event_loop_run_once(loop, 100) >= 0);
    CHECK_EQ(p.fired, 1);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 0), 0);

    /* A deadline in the past is due at once; a cancelled one never fires. */
    timer.arm(timer.opaque, 0);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 5000), 1);
    CHECK_EQ(p.fired, 2);
    now = vmdev_clock_now(&vmdev_host_clock, VMDEV_CLOCK_MONOTONIC);
    timer.arm(timer.opaque, now + 1000000);
    timer.cancel(timer.opaque);
    CHECK_EQ(vmdev_event_loop_run_once(loop, 20), 0);
    CHECK_EQ(p.fired, 2);
    vmdev_event_loop_timer_free(loop, t);
    vmdev_event_loop_free(loop);
}

struct slow_watch {
    int fd;
    int entered_fd; /* signalled when the callback starts */
    int release_fd; /* the callback waits for this */
    int finished;
};

static void slow_callback(void *opaque, uint32_t events)
{
    struct slow_watch *s = opaque;
    vmdev_eventfd_drain(s->fd);
    vmdev_eventfd_signal(s->entered_fd);
    uint64_t v;
    if (read(s->release_fd, &v, sizeof(v)) == sizeof(v)) /* blocks */
        s->finished = 1;
}

struct remover {
    struct vmdev_event_loop *loop;
    struct vmdev_event_watch *w;
    struct slow_watch *s;
    int finished_when_removed;
};

static void *remove_from_thread(void *opaque)
{
    struct remover *r = opaque;
    vmdev_event_loop_remove(r->loop, r->w);
    r->finished_when_removed = r->s->finished;
    return NULL;
}

static void foreign_removal_waits_for_running_callback(void)
{
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    /* entered_fd and release_fd block on read: they hand-shake threads. */
    struct slow_watch s = { vmdev_eventfd_new(), eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC), 0 };
    struct vmdev_event_watch *w = vmdev_event_loop_add(loop, s.fd, VMDEV_EVENT_IN, slow_callback, &s);
    CHECK_EQ(vmdev_event_loop_start(loop), 0);
    vmdev_eventfd_signal(s.fd);
    uint64_t v;
    CHECK(read(s.entered_fd, &v, sizeof(v)) == sizeof(v)); /* callback runs */
    struct remover r = { loop, w, &s, 0 };
    pthread_t th;
    pthread_create(&th, NULL, remove_from_thread, &r);
    vmdev_eventfd_signal(s.release_fd);
    pthread_join(th, NULL);
    CHECK_EQ(r.finished_when_removed, 1);
    vmdev_event_loop_stop(loop);
    close(s.fd);
    close(s.entered_fd);
    close(s.release_fd);
    vmdev_event_loop_free(loop);
}

/* A callback that swaps its watch for another of the same opaque (as a
 * backend does when what it waits for changes), then blocks. */
struct swapping {
    struct slow_watch s;
    struct vmdev_event_loop *loop;
    struct vmdev_event_watch *first, *second;
    int second_fd;
};

static void swap_then_block(void *opaque, uint32_t events)
{
    struct swapping *sw = opaque;
    vmdev_event_loop_remove(sw->loop, sw->first);
    sw->second = vmdev_event_loop_add(sw->loop, sw->second_fd, VMDEV_EVENT_IN,
                                      swap_then_block, sw);
    slow_callback(&sw->s, events);
}

struct closer {
    struct swapping *sw;
    int about_to_wait; /* eventfd: the thread is at the wait */
    int returned;      /* eventfd: the wait returned */
    int finished_when_done;
};

/* As a backend closes: its current watch, then whatever callback of it
 * still runs. */
static void *close_from_thread(void *opaque)
{
    struct closer *c = opaque;
    vmdev_eventfd_signal(c->about_to_wait);
    vmdev_event_loop_remove(c->sw->loop, c->sw->second);
    vmdev_event_loop_wait_callbacks(c->sw->loop, c->sw);
    c->finished_when_done = c->sw->s.finished;
    vmdev_eventfd_signal(c->returned);
    return NULL;
}

static void waiting_for_callbacks_covers_a_swapped_watch(void)
{
    struct vmdev_event_loop *loop = vmdev_event_loop_new();
    struct swapping sw = {
        .s = { vmdev_eventfd_new(), eventfd(0, EFD_CLOEXEC),
               eventfd(0, EFD_CLOEXEC), 0 },
        .loop = loop,
        .second_fd = vmdev_eventfd_new(),
    };
    sw.first = vmdev_event_loop_add(loop, sw.s.fd, VMDEV_EVENT_IN,
                                    swap_then_block, &sw);
    CHECK(sw.first != NULL);
    CHECK_EQ(vmdev_event_loop_start(loop), 0);
    vmdev_eventfd_signal(sw.s.fd);
    uint64_t v;
    CHECK(read(sw.s.entered_fd, &v, sizeof(v)) == sizeof(v));
    /* The callback runs, from the first watch, having made the second. */
    CHECK(sw.second != NULL);
    struct closer c = { &sw, eventfd(0, EFD_CLOEXEC), vmdev_eventfd_new(), 0 };
    pthread_t th;
    pthread_create(&th, NULL, close_from_thread, &c);
    CHECK(read(c.about_to_wait, &v, sizeof(v)) == sizeof(v));
    /* While the callback is held, the closer must not come back: a wait
     * that did not wait returns at once, well inside this window (which
     * a correct one simply outlasts). */
    struct pollfd back = { c.returned, POLLIN, 0 };
    CHECK_EQ(poll(&back, 1, 100), 0);
    vmdev_eventfd_signal(sw.s.release_fd);
    pthread_join(th, NULL);
    CHECK_EQ(c.finished_when_done, 1);
    vmdev_event_loop_stop(loop);
    close(sw.s.fd);
    close(sw.second_fd);
    close(sw.s.entered_fd);
    close(sw.s.release_fd);
    close(c.about_to_wait);
    close(c.returned);
    vmdev_event_loop_free(loop);
}

TEST_MAIN(TEST(eventfd_wakes_its_callback), TEST(removal_inside_callback),
          TEST(timer_fires_once_and_cancel_holds),
          TEST(foreign_removal_waits_for_running_callback),
          TEST(waiting_for_callbacks_covers_a_swapped_watch))
