/* SPDX-License-Identifier: MIT */
/* The I/O engines, each test run on io_uring and on the thread pool, on a
 * real file in the test's directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/io_uring.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/engines/engine.h"
#include "engine_wait.h"
#include "test.h"
#include "vmdev/io_engine.h"

static enum vmdev_io_engine_kind kind; /* the engine under test */
static unsigned done_calls;

static void count_done(struct vmdev_io *io, int64_t result)
{
    io->result = result; /* engines are done with it: the test's now */
    io->opaque = &done_calls;
    done_calls++;
}

static int temp_file(void)
{
    char path[] = "io-engine-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static bool wait_done(struct vmdev_io_engine *e, unsigned want)
{
    return engine_wait(e, &done_calls, want);
}

static struct vmdev_io request(enum vmdev_io_op op, int fd, uint64_t offset,
                               const struct iovec *iov, unsigned iovcnt,
                               uint64_t len)
{
    return (struct vmdev_io){ .op = op, .fd = fd, .offset = offset,
                              .iov = iov, .iovcnt = iovcnt, .len = len,
                              .done = count_done };
}

static struct vmdev_io_engine *engine(unsigned depth)
{
    done_calls = 0;
    return vmdev_io_engine_new(kind, depth);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed);
}

static void scattered_write_reads_back_gathered(void)
{
    struct vmdev_io_engine *e = engine(8);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    static uint8_t a[1000], b[5000], c[4192], back[10192];
    fill(a, sizeof(a), 1), fill(b, sizeof(b), 2), fill(c, sizeof(c), 3);
    struct iovec out[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
    struct vmdev_io w = request(VMDEV_IO_WRITE, fd, 4096, out, 3, 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &w), 0);
    CHECK_EQ(vmdev_io_engine_in_flight(e), 1);
    CHECK(wait_done(e, 1));
    CHECK_EQ(w.result, 10192);
    CHECK_EQ(vmdev_io_engine_in_flight(e), 0);
    struct iovec in[2] = { { back, 3 }, { back + 3, sizeof(back) - 3 } };
    struct vmdev_io r = request(VMDEV_IO_READ, fd, 4096, in, 2, 0);
    struct vmdev_io f = request(VMDEV_IO_FLUSH, fd, 0, NULL, 0, 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &r), 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &f), 0);
    CHECK(wait_done(e, 3));
    CHECK_EQ(r.result, 10192);
    CHECK_EQ(f.result, 0);
    CHECK(memcmp(back, a, sizeof(a)) == 0);
    CHECK(memcmp(back + sizeof(a), b, sizeof(b)) == 0);
    CHECK(memcmp(back + sizeof(a) + sizeof(b), c, sizeof(c)) == 0);
    vmdev_io_engine_free(e);
    close(fd);
}

static void read_past_end_of_file_is_short(void)
{
    struct vmdev_io_engine *e = engine(4);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    static uint8_t data[6000], back[8192];
    fill(data, sizeof(data), 9);
    CHECK_EQ(pwrite(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
    struct iovec in = { back, sizeof(back) };
    struct vmdev_io r = request(VMDEV_IO_READ, fd, 0, &in, 1, 0);
    struct vmdev_io beyond = request(VMDEV_IO_READ, fd, 1 << 20, &in, 1, 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &r), 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &beyond), 0);
    CHECK(wait_done(e, 2));
    CHECK_EQ(r.result, 6000);
    CHECK(memcmp(back, data, sizeof(data)) == 0);
    CHECK_EQ(beyond.result, 0);
    vmdev_io_engine_free(e);
    close(fd);
}

static void errors_come_back_as_negative_errno(void)
{
    struct vmdev_io_engine *e = engine(4);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY);
    CHECK(ro >= 0);
    uint8_t byte = 1;
    struct iovec out = { &byte, 1 };
    struct vmdev_io w = request(VMDEV_IO_WRITE, ro, 0, &out, 1, 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &w), 0);
    CHECK(wait_done(e, 1));
    CHECK_EQ(w.result, -EBADF);
    vmdev_io_engine_free(e);
    close(ro);
    close(fd);
}

static uint64_t allocated(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void discard_and_write_zeroes(void)
{
    struct vmdev_io_engine *e = engine(4);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    static uint8_t data[1 << 20], back[1 << 20];
    fill(data, sizeof(data), 5);
    CHECK_EQ(pwrite(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
    CHECK_EQ(fsync(fd), 0);
    uint64_t before = allocated(fd);
    /* Discard 256 KiB, zero 128 KiB keeping it allocated, zero and unmap
     * another 128 KiB. */
    struct vmdev_io d = request(VMDEV_IO_DISCARD, fd, 256 << 10, NULL, 0, 256 << 10);
    struct vmdev_io z = request(VMDEV_IO_WRITE_ZEROES, fd, 0, NULL, 0, 128 << 10);
    struct vmdev_io u = request(VMDEV_IO_WRITE_ZEROES, fd, 768 << 10, NULL, 0,
                                128 << 10);
    u.unmap = true;
    CHECK_EQ(vmdev_io_engine_submit(e, &d), 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &z), 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &u), 0);
    CHECK(wait_done(e, 3));
    CHECK_EQ(d.result, 0);
    CHECK_EQ(z.result, 0);
    CHECK_EQ(u.result, 0);
    CHECK_EQ(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
    CHECK(all_zero(back, 128 << 10));
    CHECK(memcmp(back + (128 << 10), data + (128 << 10), 128 << 10) == 0);
    CHECK(all_zero(back + (256 << 10), 256 << 10));
    CHECK(memcmp(back + (512 << 10), data + (512 << 10), 256 << 10) == 0);
    CHECK(all_zero(back + (768 << 10), 128 << 10));
    CHECK(memcmp(back + (896 << 10), data + (896 << 10), 128 << 10) == 0);
    /* The discard and the unmapping zeroes gave 384 KiB back. */
    CHECK(allocated(fd) <= before - (384 << 10));
    vmdev_io_engine_free(e);
    close(fd);
}

/* Far more requests than the depth, in one plugged batch: all finish, the
 * engine never has more than depth in the kernel (it would fail). */
static void more_requests_than_depth_all_finish(void)
{
    struct vmdev_io_engine *e = engine(4);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    enum { N = 64, BLOCK = 4096 };
    static uint8_t blocks[N][BLOCK], back[N * BLOCK];
    static struct iovec iov[N];
    static struct vmdev_io io[N];
    vmdev_io_engine_plug(e);
    for (unsigned i = 0; i < N; i++) {
        fill(blocks[i], BLOCK, i);
        iov[i] = (struct iovec){ blocks[i], BLOCK };
        io[i] = request(VMDEV_IO_WRITE, fd, (uint64_t)i * BLOCK, &iov[i], 1, 0);
        CHECK_EQ(vmdev_io_engine_submit(e, &io[i]), 0);
    }
    CHECK_EQ(vmdev_io_engine_in_flight(e), N);
    vmdev_io_engine_unplug(e);
    CHECK(wait_done(e, N));
    for (unsigned i = 0; i < N; i++)
        CHECK_EQ(io[i].result, BLOCK);
    CHECK_EQ(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
    for (unsigned i = 0; i < N; i++)
        CHECK(memcmp(back + i * BLOCK, blocks[i], BLOCK) == 0);
    vmdev_io_engine_free(e);
    close(fd);
}

static void free_finishes_what_is_in_flight(void)
{
    struct vmdev_io_engine *e = engine(2);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    static uint8_t block[4096];
    struct iovec iov = { block, sizeof(block) };
    struct vmdev_io io[5];
    for (unsigned i = 0; i < 5; i++) {
        io[i] = request(VMDEV_IO_WRITE, fd, i * 4096ull, &iov, 1, 0);
        CHECK_EQ(vmdev_io_engine_submit(e, &io[i]), 0);
    }
    vmdev_io_engine_free(e);
    CHECK_EQ(done_calls, 5);
    for (unsigned i = 0; i < 5; i++)
        CHECK_EQ(io[i].result, 4096);
    close(fd);
}

/* done() runs without the engine's lock: it may submit the next request
 * (the block layer's writethrough flush does). */
static struct vmdev_io_engine *chained_engine;
static struct vmdev_io chained_second;

static void submit_second(struct vmdev_io *io, int64_t result)
{
    count_done(io, result);
    CHECK_EQ(vmdev_io_engine_submit(chained_engine, &chained_second), 0);
}

static void done_may_submit_again(void)
{
    struct vmdev_io_engine *e = chained_engine = engine(2);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    static uint8_t block[4096];
    fill(block, sizeof(block), 3);
    struct iovec iov = { block, sizeof(block) };
    struct vmdev_io first = request(VMDEV_IO_WRITE, fd, 0, &iov, 1, 0);
    first.done = submit_second;
    chained_second = request(VMDEV_IO_FLUSH, fd, 0, NULL, 0, 0);
    CHECK_EQ(vmdev_io_engine_submit(e, &first), 0);
    CHECK(wait_done(e, 2));
    CHECK_EQ(first.result, 4096);
    CHECK_EQ(chained_second.result, 0);
    vmdev_io_engine_free(e);
    close(fd);
}

/* Two threads submit in plugged batches while this one completes: every
 * request finishes once, with its data where it was written. */
enum { THREAD_WRITES = 256, THREAD_BLOCK = 512 };
struct submitter {
    struct vmdev_io_engine *engine;
    int fd;
    unsigned first; /* its blocks: first .. first + THREAD_WRITES - 1 */
    uint8_t data[THREAD_WRITES][THREAD_BLOCK];
    struct iovec iov[THREAD_WRITES];
    struct vmdev_io io[THREAD_WRITES];
    int failures;
};

static void *submit_all(void *opaque)
{
    struct submitter *s = opaque;
    for (unsigned i = 0; i < THREAD_WRITES; i++) {
        if (i % 8 == 0)
            vmdev_io_engine_plug(s->engine);
        fill(s->data[i], THREAD_BLOCK, s->first + i);
        s->iov[i] = (struct iovec){ s->data[i], THREAD_BLOCK };
        s->io[i] = request(VMDEV_IO_WRITE, s->fd,
                           (uint64_t)(s->first + i) * THREAD_BLOCK, &s->iov[i],
                           1, 0);
        if (vmdev_io_engine_submit(s->engine, &s->io[i]))
            s->failures++;
        if (i % 8 == 7)
            vmdev_io_engine_unplug(s->engine);
    }
    return NULL;
}

static void threads_submit_while_another_completes(void)
{
    struct vmdev_io_engine *e = engine(16);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    static struct submitter sub[2];
    pthread_t threads[2];
    for (unsigned t = 0; t < 2; t++) {
        sub[t] = (struct submitter){ .engine = e, .fd = fd,
                                     .first = t * THREAD_WRITES };
        CHECK_EQ(pthread_create(&threads[t], NULL, submit_all, &sub[t]), 0);
    }
    CHECK(wait_done(e, 2 * THREAD_WRITES));
    for (unsigned t = 0; t < 2; t++) {
        CHECK_EQ(pthread_join(threads[t], NULL), 0);
        CHECK_EQ(sub[t].failures, 0);
    }
    CHECK_EQ(vmdev_io_engine_in_flight(e), 0);
    static uint8_t back[THREAD_BLOCK];
    for (unsigned t = 0; t < 2; t++)
        for (unsigned i = 0; i < THREAD_WRITES; i++) {
            CHECK_EQ(sub[t].io[i].result, THREAD_BLOCK);
            CHECK_EQ(pread(fd, back, THREAD_BLOCK,
                           (off_t)(sub[t].first + i) * THREAD_BLOCK),
                     THREAD_BLOCK);
            CHECK(memcmp(back, sub[t].data[i], THREAD_BLOCK) == 0);
        }
    vmdev_io_engine_free(e);
    close(fd);
}

static void malformed_requests_are_refused(void)
{
    struct vmdev_io_engine *e = engine(4);
    int fd = temp_file();
    CHECK(e && fd >= 0);
    uint8_t byte;
    struct iovec one = { &byte, 1 }, huge[2] = { { &byte, SSIZE_MAX },
                                                 { &byte, 2 } };
    struct vmdev_io bad[] = {
        request(VMDEV_IO_READ, fd, 0, &one, 0, 0),         /* no iovec */
        request(VMDEV_IO_READ, fd, 0, NULL, 1, 0),
        request(VMDEV_IO_WRITE, fd, 0, huge, 2, 0),        /* over SSIZE_MAX */
        request(VMDEV_IO_READ, fd, INT64_MAX, &one, 1, 0), /* past off_t */
        request(VMDEV_IO_READ, fd, (uint64_t)INT64_MAX + 1, &one, 1, 0),
        request(VMDEV_IO_DISCARD, fd, 0, NULL, 0, 0),      /* empty range */
        request(VMDEV_IO_WRITE_ZEROES, fd, 1, NULL, 0, INT64_MAX),
        request(VMDEV_IO_READ, -1, 0, &one, 1, 0),
        request((enum vmdev_io_op)99, fd, 0, NULL, 0, 1),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(vmdev_io_engine_submit(e, &bad[i]), -EINVAL);
    struct vmdev_io no_done = request(VMDEV_IO_FLUSH, fd, 0, NULL, 0, 0);
    no_done.done = NULL;
    CHECK_EQ(vmdev_io_engine_submit(e, &no_done), -EINVAL);
    CHECK_EQ(vmdev_io_engine_in_flight(e), 0);
    CHECK_EQ(vmdev_io_engine_complete(e), 0);
    CHECK_EQ(done_calls, 0);
    vmdev_io_engine_free(e);
    close(fd);
}

/* The engine's own bookkeeping for a short transfer. */
static void a_short_transfer_resumes_mid_iovec(void)
{
    uint8_t buf[10];
    struct iovec iov[3] = { { buf, 3 }, { buf + 3, 5 }, { buf + 8, 2 } };
    struct vmdev_io io = request(VMDEV_IO_READ, 0, 0, iov, 3, 0);
    const struct iovec *rest;
    unsigned cnt;
    io_engine_pending_iov(&io, &rest, &cnt);
    CHECK(rest == iov && cnt == 3);
    CHECK_EQ(io_engine_advance(&io, 4), 0);
    io_engine_pending_iov(&io, &rest, &cnt);
    CHECK_EQ(cnt, 2);
    CHECK(rest[0].iov_base == buf + 4 && rest[0].iov_len == 4);
    CHECK(rest[1].iov_base == buf + 8 && rest[1].iov_len == 2);
    CHECK_EQ(io_engine_advance(&io, 4), 0);
    io_engine_pending_iov(&io, &rest, &cnt);
    CHECK_EQ(cnt, 1);
    CHECK(rest[0].iov_base == buf + 8);
    CHECK_EQ(io.transferred, 8);
    CHECK(iov[1].iov_len == 5); /* the caller's iovecs are not touched */
    free(io.rest);
}

static void engines_by_name(void)
{
    struct vmdev_io_engine *e = vmdev_io_engine_new(kind, 1);
    CHECK(e != NULL);
    CHECK(strcmp(vmdev_io_engine_name(e),
                 kind == VMDEV_IO_ENGINE_THREADS ? "threads" : "io_uring") == 0);
    vmdev_io_engine_free(e);
    errno = 0;
    CHECK(vmdev_io_engine_new(kind, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(vmdev_io_engine_new(kind, 4097) == NULL);
}

/* The kernel runs a ring's requests without the submitting thread's
 * seccomp filter: the engine's ring must run nothing but what the engine
 * submits, so that a confined thread cannot open a file or a socket
 * through it. */
static void uring_runs_only_the_engines_operations(void)
{
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_IO_URING, 4);
    CHECK(e != NULL);
    int32_t result = 1;
    CHECK_EQ(uring_engine_try_op(e, IORING_OP_NOP, &result), 0);
    CHECK_EQ(result, 0);
    static const uint8_t refused[] = { IORING_OP_OPENAT, IORING_OP_CONNECT,
                                       IORING_OP_ACCEPT, IORING_OP_SENDMSG,
                                       IORING_OP_SOCKET, IORING_OP_RENAMEAT,
                                       IORING_OP_UNLINKAT };
    for (unsigned i = 0; i < sizeof(refused); i++) {
        CHECK_EQ(uring_engine_try_op(e, refused[i], &result), 0);
        CHECK_EQ(result, -EACCES);
    }
    vmdev_io_engine_free(e);
}

#define BOTH(name)                                                             \
    static void name##_io_uring(void)                                          \
    {                                                                          \
        kind = VMDEV_IO_ENGINE_IO_URING;                                       \
        name();                                                                \
    }                                                                          \
    static void name##_threads(void)                                           \
    {                                                                          \
        kind = VMDEV_IO_ENGINE_THREADS;                                        \
        name();                                                                \
    }

BOTH(scattered_write_reads_back_gathered)
BOTH(read_past_end_of_file_is_short)
BOTH(errors_come_back_as_negative_errno)
BOTH(discard_and_write_zeroes)
BOTH(more_requests_than_depth_all_finish)
BOTH(free_finishes_what_is_in_flight)
BOTH(malformed_requests_are_refused)
BOTH(engines_by_name)
BOTH(done_may_submit_again)
BOTH(threads_submit_while_another_completes)

TEST_MAIN(TEST(scattered_write_reads_back_gathered_io_uring),
          TEST(scattered_write_reads_back_gathered_threads),
          TEST(read_past_end_of_file_is_short_io_uring),
          TEST(read_past_end_of_file_is_short_threads),
          TEST(errors_come_back_as_negative_errno_io_uring),
          TEST(errors_come_back_as_negative_errno_threads),
          TEST(discard_and_write_zeroes_io_uring),
          TEST(discard_and_write_zeroes_threads),
          TEST(more_requests_than_depth_all_finish_io_uring),
          TEST(more_requests_than_depth_all_finish_threads),
          TEST(free_finishes_what_is_in_flight_io_uring),
          TEST(free_finishes_what_is_in_flight_threads),
          TEST(malformed_requests_are_refused_io_uring),
          TEST(malformed_requests_are_refused_threads),
          TEST(a_short_transfer_resumes_mid_iovec),
          TEST(uring_runs_only_the_engines_operations),
          TEST(engines_by_name_io_uring), TEST(engines_by_name_threads),
          TEST(done_may_submit_again_io_uring),
          TEST(done_may_submit_again_threads),
          TEST(threads_submit_while_another_completes_io_uring),
          TEST(threads_submit_while_another_completes_threads))
