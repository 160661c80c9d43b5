/* SPDX-License-Identifier: MIT */
#include "vmdev/event_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_EVENTS 32

struct vmdev_event_watch {
    int fd;
    vmdev_event_fn fn;
    void *opaque;
    bool removed;
    struct vmdev_event_watch *next_zombie;
};

struct vmdev_event_timer {
    int fd;
    void (*expired)(void *opaque);
    void *opaque;
    struct vmdev_event_watch *watch;
};

struct vmdev_event_loop {
    int epoll_fd;
    int stop_fd;
    struct vmdev_event_watch *stop_watch;
    pthread_mutex_t lock;
    pthread_cond_t dispatch_done;
    /* The watch whose callback runs now, and on which thread. */
    struct vmdev_event_watch *dispatching;
    pthread_t loop_thread;
    bool dispatching_thread_valid;
    bool thread_running;
    bool stop_requested;
    /* Removed watches, freed by the loop once no event can refer to them. */
    struct vmdev_event_watch *zombies;
    /* Watches are owned by the caller until removed; track them to free
     * what is left in vmdev_event_loop_free. */
    struct vmdev_event_watch **live;
    unsigned live_count, live_capacity;
};

int vmdev_eventfd_new(void)
{
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void vmdev_eventfd_signal(int fd)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: the reader wakes anyway. */
    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

uint64_t vmdev_eventfd_drain(int fd)
{
    uint64_t value = 0;
    while (read(fd, &value, sizeof(value)) < 0 && errno == EINTR)
        ;
    return value;
}

static void stop_event(void *opaque, uint32_t events)
{
    struct vmdev_event_loop *loop = opaque;
    vmdev_eventfd_drain(loop->stop_fd);
}

struct vmdev_event_loop *vmdev_event_loop_new(void)
{
    struct vmdev_event_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->stop_fd = vmdev_eventfd_new();
    pthread_mutex_init(&loop->lock, NULL);
    pthread_cond_init(&loop->dispatch_done, NULL);
    if (loop->epoll_fd < 0 || loop->stop_fd < 0)
        goto fail;
    loop->stop_watch = vmdev_event_loop_add(loop, loop->stop_fd,
                                            VMDEV_EVENT_IN, stop_event, loop);
    if (!loop->stop_watch)
        goto fail;
    return loop;
fail:
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    if (loop->stop_fd >= 0)
        close(loop->stop_fd);
    free(loop);
    return NULL;
}

/* Caller holds loop->lock. */
static void free_zombies(struct vmdev_event_loop *loop)
{
    while (loop->zombies) {
        struct vmdev_event_watch *w = loop->zombies;
        loop->zombies = w->next_zombie;
        free(w);
    }
}

void vmdev_event_loop_free(struct vmdev_event_loop *loop)
{
    if (!loop)
        return;
    vmdev_event_loop_stop(loop);
    pthread_mutex_lock(&loop->lock);
    for (unsigned i = 0; i < loop->live_count; i++)
        free(loop->live[i]);
    free(loop->live);
    free_zombies(loop);
    pthread_mutex_unlock(&loop->lock);
    close(loop->stop_fd);
    close(loop->epoll_fd);
    pthread_cond_destroy(&loop->dispatch_done);
    pthread_mutex_destroy(&loop->lock);
    free(loop);
}

struct vmdev_event_watch *vmdev_event_loop_add(struct vmdev_event_loop *loop,
                                               int fd, uint32_t events,
                                               vmdev_event_fn fn,
                                               void *opaque)
{
    return vmdev_event_loop_add_into(loop, fd, events, fn, opaque, NULL);
}

struct vmdev_event_watch *
vmdev_event_loop_add_into(struct vmdev_event_loop *loop, int fd,
                          uint32_t events, vmdev_event_fn fn, void *opaque,
                          struct vmdev_event_watch **slot)
{
    struct vmdev_event_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    *w = (struct vmdev_event_watch){ .fd = fd, .fn = fn, .opaque = opaque };

    pthread_mutex_lock(&loop->lock);
    if (loop->live_count == loop->live_capacity) {
        unsigned cap = loop->live_capacity ? loop->live_capacity * 2 : 16;
        struct vmdev_event_watch **grown =
            realloc(loop->live, cap * sizeof(*grown));
        if (!grown) {
            pthread_mutex_unlock(&loop->lock);
            free(w);
            errno = ENOMEM;
            return NULL;
        }
        loop->live = grown;
        loop->live_capacity = cap;
    }
    struct epoll_event ev = { .events = 0, .data.ptr = w };
    if (events & VMDEV_EVENT_IN)
        ev.events |= EPOLLIN;
    if (events & VMDEV_EVENT_OUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int saved = errno;
        pthread_mutex_unlock(&loop->lock);
        free(w);
        errno = saved;
        return NULL;
    }
    loop->live[loop->live_count++] = w;
    /* Dispatch takes the lock first: the callback sees *slot set. */
    if (slot)
        *slot = w;
    pthread_mutex_unlock(&loop->lock);
    return w;
}

static bool on_loop_thread(const struct vmdev_event_loop *loop)
{
    return loop->dispatching_thread_valid &&
           pthread_equal(loop->loop_thread, pthread_self());
}

void vmdev_event_loop_remove(struct vmdev_event_loop *loop,
                             struct vmdev_event_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&loop->lock);
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
    w->removed = true;
    for (unsigned i = 0; i < loop->live_count; i++) {
        if (loop->live[i] == w) {
            loop->live[i] = loop->live[--loop->live_count];
            break;
        }
    }
    /* An event for w may already sit in the loop's current batch: free it
     * only after that batch. Wait for its callback when it runs elsewhere. */
    while (loop->dispatching == w && !on_loop_thread(loop))
        pthread_cond_wait(&loop->dispatch_done, &loop->lock);
    w->next_zombie = loop->zombies;
    loop->zombies = w;
    pthread_mutex_unlock(&loop->lock);
}

void vmdev_event_loop_wait_callbacks(struct vmdev_event_loop *loop,
                                     const void *opaque)
{
    pthread_mutex_lock(&loop->lock);
    /* The watch being dispatched is freed only after its batch, so its
     * opaque can be read while it is dispatching. */
    while (loop->dispatching && loop->dispatching->opaque == opaque &&
           !on_loop_thread(loop))
        pthread_cond_wait(&loop->dispatch_done, &loop->lock);
    pthread_mutex_unlock(&loop->lock);
}

int vmdev_event_loop_run_once(struct vmdev_event_loop *loop, int timeout_ms)
{
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(loop->epoll_fd, events, MAX_EVENTS, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;

    int ran = 0;
    pthread_mutex_lock(&loop->lock);
    loop->loop_thread = pthread_self();
    loop->dispatching_thread_valid = true;
    for (int i = 0; i < n; i++) {
        struct vmdev_event_watch *w = events[i].data.ptr;
        if (w->removed)
            continue;
        uint32_t ev = 0;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            ev |= VMDEV_EVENT_IN;
        if (events[i].events & EPOLLOUT)
            ev |= VMDEV_EVENT_OUT;
        loop->dispatching = w;
        pthread_mutex_unlock(&loop->lock);
        w->fn(w->opaque, ev);
        pthread_mutex_lock(&loop->lock);
        loop->dispatching = NULL;
        pthread_cond_broadcast(&loop->dispatch_done);
        if (w != loop->stop_watch)
            ran++;
    }
    loop->dispatching_thread_valid = false;
    free_zombies(loop);
    pthread_mutex_unlock(&loop->lock);
    return ran;
}

static void *loop_thread_main(void *opaque)
{
    struct vmdev_event_loop *loop = opaque;
    for (;;) {
        pthread_mutex_lock(&loop->lock);
        bool stop = loop->stop_requested;
        pthread_mutex_unlock(&loop->lock);
        if (stop)
            break;
        vmdev_event_loop_run_once(loop, -1);
    }
    return NULL;
}

int vmdev_event_loop_start(struct vmdev_event_loop *loop)
{
    pthread_mutex_lock(&loop->lock);
    if (loop->thread_running) {
        pthread_mutex_unlock(&loop->lock);
        return -EBUSY;
    }
    loop->stop_requested = false;
    int err = pthread_create(&loop->loop_thread, NULL, loop_thread_main, loop);
    loop->thread_running = err == 0;
    pthread_mutex_unlock(&loop->lock);
    return -err;
}

void vmdev_event_loop_stop(struct vmdev_event_loop *loop)
{
    pthread_mutex_lock(&loop->lock);
    if (!loop->thread_running) {
        pthread_mutex_unlock(&loop->lock);
        return;
    }
    loop->stop_requested = true;
    pthread_t thread = loop->loop_thread;
    pthread_mutex_unlock(&loop->lock);
    vmdev_eventfd_signal(loop->stop_fd);
    pthread_join(thread, NULL);
    pthread_mutex_lock(&loop->lock);
    loop->thread_running = false;
    pthread_mutex_unlock(&loop->lock);
}

static void timer_fired(void *opaque, uint32_t events)
{
    struct vmdev_event_timer *t = opaque;
    uint64_t expirations;
    /* A read that finds nothing means the timer was re-armed or cancelled
     * after it fired: the expiry is stale, so do not report it. */
    if (read(t->fd, &expirations, sizeof(expirations)) != sizeof(expirations))
        return;
    t->expired(t->opaque);
}

static void timer_arm(void *opaque, uint64_t deadline_ns)
{
    struct vmdev_event_timer *t = opaque;
    struct itimerspec spec = {
        .it_value = { .tv_sec = (time_t)(deadline_ns / 1000000000u),
                      .tv_nsec = (long)(deadline_ns % 1000000000u) },
    };
    /* A zero it_value would disarm: deadline 0 means "already due". */
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0)
        spec.it_value.tv_nsec = 1;
    timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

static void timer_cancel(void *opaque)
{
    struct vmdev_event_timer *t = opaque;
    struct itimerspec off = { 0 };
    timerfd_settime(t->fd, 0, &off, NULL);
}

struct vmdev_event_timer *
vmdev_event_loop_timer_new(struct vmdev_event_loop *loop,
                           void (*expired)(void *opaque), void *opaque,
                           struct vmdev_timer *timer)
{
    struct vmdev_event_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->expired = expired;
    t->opaque = opaque;
    t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t->fd < 0) {
        free(t);
        return NULL;
    }
    t->watch = vmdev_event_loop_add(loop, t->fd, VMDEV_EVENT_IN, timer_fired, t);
    if (!t->watch) {
        close(t->fd);
        free(t);
        return NULL;
    }
    *timer = (struct vmdev_timer){ timer_arm, timer_cancel, t };
    return t;
}

void vmdev_event_loop_timer_free(struct vmdev_event_loop *loop,
                                 struct vmdev_event_timer *t)
{
    if (!t)
        return;
    vmdev_event_loop_remove(loop, t->watch);
    close(t->fd);
    free(t);
}
