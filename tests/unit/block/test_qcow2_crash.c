/* SPDX-License-Identifier: MIT */
/*
 * Crash consistency of qcow2 writes: a child process writes, zeroes,
 * discards, flushes and creates and deletes internal snapshots (keeping
 * up to three) through the block layer and is SIGKILLed at a
 * random moment, 200 times over the same image (a qcow2 over a raw
 * backing file). After each kill `qemu-img check` finds no corruption
 * (leaked clusters are allowed: a crash between allocating and using a
 * cluster leaks it, as in QEMU, and qemu-img repairs them before the next
 * round), and every sector holds what the last
 * write acknowledged before the last completed flush left there, or what
 * a later write put there.
 *
 * Every sector a write touches is filled with one 64-bit tag naming the
 * write, so a sector's content says which write it came from. A snapshot
 * operation leaves the disk as it is and, like a flush, everything before
 * it durable.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_wait.h"
#include "image_dir.h"
#include "test.h"
#include "vmdev/block.h"

#define KILLS 200
#define DISK_SIZE (4u << 20)
#define SECTOR 512
#define SECTORS (DISK_SIZE / SECTOR)
#define OPS 160
#define MAX_SECTORS 64
#define CLUSTER 4096
#define FLUSHED 0x80000000u
#define BASE_TAG 0xba5e000000000000ull
#define KEPT_SNAPSHOTS 3
/* Not a request: create a snapshot, or delete the oldest. */
#define SNAPSHOT_OP ((enum vmdev_io_op)100)

struct op {
    enum vmdev_io_op op;
    uint32_t first, count; /* sectors */
    bool unmap;
    uint64_t tag; /* WRITE */
};

static void make_ops(struct op *ops, unsigned round, uint64_t seed)
{
    for (unsigned k = 0; k < OPS; k++) {
        struct op *o = &ops[k];
        unsigned kind = test_random(&seed) % 17;
        o->op = kind < 11  ? VMDEV_IO_WRITE
                : kind < 13 ? VMDEV_IO_FLUSH
                : kind < 15 ? VMDEV_IO_WRITE_ZEROES
                : kind < 16 ? VMDEV_IO_DISCARD
                            : SNAPSHOT_OP;
        o->count = 1 + test_random(&seed) % MAX_SECTORS;
        o->first = test_random(&seed) % (SECTORS - o->count);
        if (o->op == VMDEV_IO_DISCARD) {
            /* Whole clusters: what discard leaves is then exact. */
            unsigned per = CLUSTER / SECTOR;
            o->first -= o->first % per;
            o->count = per * (1 + o->count / per);
            if (o->first + o->count > SECTORS)
                o->first = SECTORS - o->count;
        }
        o->unmap = test_random(&seed) & 1;
        o->tag = (uint64_t)(round + 1) << 32 | (k + 1);
    }
}

static unsigned child_done;

static void child_note(struct vmdev_block_request *req, int64_t result)
{
    (void)req;
    if (result < 0)
        _exit(3);
    child_done++;
}

/* Keep up to KEPT_SNAPSHOTS: delete the oldest, else create one. */
static void snapshot_op(struct vmdev_block *b, const struct op *op)
{
    struct vmdev_block_snapshot *list;
    int n = vmdev_block_snapshot_list(b, &list);
    char name[32];
    snprintf(name, sizeof(name), "t%llx", (unsigned long long)op->tag);
    int ret = n < 0 ? n
              : n >= KEPT_SNAPSHOTS
                  ? vmdev_block_snapshot_delete(b, list[0].id, NULL, 0)
                  : vmdev_block_snapshot_create(b, name, NULL, 0);
    vmdev_block_snapshot_list_free(list, n);
    if (ret)
        _exit(6);
}

/* A request, waited for; the child exits if it fails. */
static void request(struct vmdev_block *b, struct vmdev_io_engine *e,
                    const struct op *op)
{
    static uint64_t data[MAX_SECTORS * SECTOR / 8];
    struct iovec iov = { data, (size_t)op->count * SECTOR };
    struct vmdev_block_request req = {
        .op = op->op, .offset = (uint64_t)op->first * SECTOR,
        .len = op->op == VMDEV_IO_FLUSH ? 0 : (uint64_t)op->count * SECTOR,
        .unmap = op->unmap, .done = child_note,
    };
    if (op->op == VMDEV_IO_FLUSH)
        req.offset = 0;
    if (op->op == VMDEV_IO_WRITE) {
        for (size_t i = 0; i < iov.iov_len / 8; i++)
            data[i] = op->tag;
        req.iov = &iov;
        req.iovcnt = 1;
    }
    unsigned want = child_done + 1;
    if (vmdev_block_submit(b, e, &req) || !engine_wait(e, &child_done, want))
        _exit(4);
}

/* The writer: each op waited for, then reported on fd. */
static void writer(int fd, const struct op *ops)
{
    struct vmdev_block_options o = {
        .path = img_path("img.qcow2"), .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = false,
    };
    struct vmdev_block *b = vmdev_block_new(&o, NULL, 0);
    struct vmdev_io_engine *e = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 4);
    if (!b || !e)
        _exit(2);
    for (uint32_t k = 0; k < OPS; k++) {
        const struct op *op = &ops[k];
        if (op->op == SNAPSHOT_OP)
            snapshot_op(b, op);
        else
            request(b, e, op);
        bool durable = op->op == VMDEV_IO_FLUSH || op->op == SNAPSHOT_OP;
        uint32_t report = k | (durable ? FLUSHED : 0);
        if (write(fd, &report, sizeof(report)) != sizeof(report))
            _exit(5);
    }
    _exit(0);
}

/* What op leaves in a sector it covers. */
static uint64_t tag_of(const struct op *op)
{
    return op->op == VMDEV_IO_WRITE ? op->tag : 0;
}

static bool covers(const struct op *op, uint32_t s)
{
    return op->op != VMDEV_IO_FLUSH && op->op != SNAPSHOT_OP &&
           s >= op->first &&
           s < op->first + op->count;
}

/* The image's sectors as tags (0: zeroes); false if a sector is torn. */
static bool read_tags(uint64_t *tags)
{
    if (!img_sh("qemu-img convert -O raw img.qcow2 got.raw"))
        return false;
    size_t size;
    uint8_t *got = img_load("got.raw", &size);
    bool ok = got && size == DISK_SIZE;
    for (uint32_t s = 0; ok && s < SECTORS; s++) {
        uint64_t words[SECTOR / 8];
        memcpy(words, got + (size_t)s * SECTOR, SECTOR);
        tags[s] = words[0];
        for (unsigned i = 1; i < SECTOR / 8 && ok; i++)
            if (words[i] != words[0]) {
                fprintf(stderr, "sector %u is torn\n", s);
                ok = false;
            }
    }
    free(got);
    return ok;
}

static void survives_200_kills(void)
{
    img_dir_create();
    /* The backing file: each sector tagged with its number. */
    uint64_t *tags = malloc(SECTORS * sizeof(*tags));
    uint64_t *now = malloc(SECTORS * sizeof(*now));
    static uint64_t sector[SECTOR / 8];
    FILE *f = fopen(img_path("base.raw"), "w");
    CHECK(tags && now && f);
    for (uint32_t s = 0; s < SECTORS; s++) {
        tags[s] = BASE_TAG | s;
        for (unsigned i = 0; i < SECTOR / 8; i++)
            sector[i] = tags[s];
        CHECK(fwrite(sector, SECTOR, 1, f) == 1);
    }
    CHECK(fclose(f) == 0);
    CHECK(img_sh("qemu-img create -f qcow2 -o cluster_size=%u -b base.raw "
                 "-F raw img.qcow2", CLUSTER));
    static struct op ops[OPS];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    unsigned leaked_runs = 0, flushed_runs = 0, in_snapshot_op = 0;
    for (unsigned round = 0; round < KILLS; round++) {
        make_ops(ops, round, test_random(&seed));
        int fds[2];
        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            writer(fds[1], ops);
        }
        close(fds[1]);
        /* Kill after a random number of acknowledged ops (0: at once). */
        unsigned target = test_random(&seed) % 48, seen = 0;
        int64_t flushed = -1, last = -1;
        uint32_t report;
        while (seen < target && read(fds[0], &report, 4) == 4) {
            seen++;
            last = report & ~FLUSHED;
            if (report & FLUSHED)
                flushed = last;
        }
        kill(pid, SIGKILL);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        while (read(fds[0], &report, 4) == 4) {
            last = report & ~FLUSHED;
            if (report & FLUSHED)
                flushed = last;
        }
        close(fds[0]);
        in_snapshot_op += last + 1 < OPS && ops[last + 1].op == SNAPSHOT_OP;

        int check = img_sh_status("qemu-img check img.qcow2");
        if (check != 0 && check != 3)
            img_sh("qemu-img check img.qcow2 >&2");
        CHECK(check == 0 || check == 3);
        leaked_runs += check == 3;
        /* QEMU reclaims the leaks; the next round starts from its repair. */
        CHECK(check == 0 || img_sh("qemu-img check -r leaks img.qcow2"));
        flushed_runs += flushed >= 0;
        CHECK(read_tags(now));
        for (uint32_t s = 0; s < SECTORS; s++) {
            /* What the flush made durable, then what any later op (up to
             * one past the last reported) may have put there. */
            uint64_t durable = tags[s];
            for (int64_t k = 0; k <= flushed; k++)
                if (covers(&ops[k], s))
                    durable = tag_of(&ops[k]);
            bool allowed = now[s] == durable;
            for (int64_t k = flushed + 1; k < OPS && !allowed; k++)
                allowed = covers(&ops[k], s) && now[s] == tag_of(&ops[k]);
            if (!allowed)
                fprintf(stderr, "round %u: sector %u holds %#llx, not %#llx "
                        "(flushed through op %lld, last %lld)\n", round, s,
                        (unsigned long long)now[s],
                        (unsigned long long)durable, (long long)flushed,
                        (long long)last);
            CHECK(allowed);
        }
        memcpy(tags, now, SECTORS * sizeof(*tags));
    }
    fprintf(stderr, "%u kills, %u after a flush, %u with a snapshot operation "
            "next, %u left leaked clusters\n", KILLS, flushed_runs,
            in_snapshot_op, leaked_runs);
    CHECK(img_sh("qemu-img snapshot -l img.qcow2 | grep -q ' t'"));
    free(tags);
    free(now);
    img_dir_remove();
}

TEST_MAIN(TEST(survives_200_kills))
