/* SPDX-License-Identifier: MIT */
/*
 * The thread-pool engine: worker threads run each request with blocking
 * system calls and queue it as done; the owner's thread runs done().
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"
#include "vmdev/event_loop.h"

#define MAX_WORKERS 16

/* A FIFO of requests linked through io->next. */
struct io_list {
    struct vmdev_io *head, *tail;
};

static void list_push(struct io_list *l, struct vmdev_io *io)
{
    io->next = NULL;
    if (l->tail)
        l->tail->next = io;
    else
        l->head = io;
    l->tail = io;
}

static struct vmdev_io *list_pop(struct io_list *l)
{
    struct vmdev_io *io = l->head;
    if (io) {
        l->head = io->next;
        if (!l->head)
            l->tail = NULL;
    }
    return io;
}

struct thread_engine {
    struct vmdev_io_engine base;
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct io_list queued, finished;
    bool stopping;
    unsigned workers;
    pthread_t threads[MAX_WORKERS];
};

static void *worker(void *opaque)
{
    struct thread_engine *t = opaque;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        struct vmdev_io *io;
        while (!(io = list_pop(&t->queued)) && !t->stopping)
            pthread_cond_wait(&t->work, &t->lock);
        if (!io)
            break;
        pthread_mutex_unlock(&t->lock);
        io->result = io_engine_run_blocking(io);
        pthread_mutex_lock(&t->lock);
        list_push(&t->finished, io);
        vmdev_eventfd_signal(t->base.event_fd);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static void thread_start(struct vmdev_io_engine *e, struct vmdev_io *io)
{
    struct thread_engine *t = (struct thread_engine *)e;
    pthread_mutex_lock(&t->lock);
    list_push(&t->queued, io);
    pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->lock);
}

static void thread_submit_batch(struct vmdev_io_engine *e)
{
    (void)e; /* each request starts when a worker is free */
}

static struct vmdev_io *thread_reap(struct vmdev_io_engine *e)
{
    struct thread_engine *t = (struct thread_engine *)e;
    vmdev_eventfd_drain(e->event_fd);
    pthread_mutex_lock(&t->lock);
    struct vmdev_io *finished = t->finished.head;
    t->finished = (struct io_list){ NULL, NULL };
    pthread_mutex_unlock(&t->lock);
    return finished;
}

static void thread_destroy(struct vmdev_io_engine *e)
{
    struct thread_engine *t = (struct thread_engine *)e;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_broadcast(&t->work);
    pthread_mutex_unlock(&t->lock);
    for (unsigned i = 0; i < t->workers; i++)
        pthread_join(t->threads[i], NULL);
    pthread_cond_destroy(&t->work);
    pthread_mutex_destroy(&t->lock);
    if (e->event_fd >= 0)
        close(e->event_fd);
    io_engine_base_fini(e);
    free(t);
}

static const struct io_engine_ops thread_ops = {
    .name = "threads",
    .start = thread_start,
    .submit_batch = thread_submit_batch,
    .reap = thread_reap,
    .destroy = thread_destroy,
};

struct vmdev_io_engine *thread_engine_new(unsigned depth)
{
    struct thread_engine *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    io_engine_base_init(&t->base, &thread_ops, depth);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->work, NULL);
    t->base.event_fd = vmdev_eventfd_new();
    if (t->base.event_fd < 0) {
        thread_destroy(&t->base);
        return NULL;
    }
    unsigned want = depth < MAX_WORKERS ? depth : MAX_WORKERS;
    for (; t->workers < want; t->workers++) {
        int ret = pthread_create(&t->threads[t->workers], NULL, worker, t);
        if (ret) {
            thread_destroy(&t->base);
            errno = ret;
            return NULL;
        }
    }
    return &t->base;
}
