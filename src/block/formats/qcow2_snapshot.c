/* SPDX-License-Identifier: MIT */
/*
 * qcow2 internal snapshots (qcow2.txt, "Snapshots"): the snapshot table,
 * read at open and written whole, and the library's snapshot operations.
 *
 * A snapshot is an L1 table of its own. Creating one hands the current
 * active L1 table (and through it the L2 tables and data) to the
 * snapshot, and gives the image a new active L1 table over copies of the
 * L2 tables; writes then copy shared data clusters before changing them.
 * Applying one makes the active L1 table point at copies of the
 * snapshot's L2 tables. Deleting one drops its table from the list. Each
 * is a qcow2_switch_metadata() (qcow2_switch.c): recounted, written beside the
 * old metadata and switched to with one header write.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vmdev/log.h"
#include "qcow2.h"

/* As QEMU. */
#define MAX_SNAPSHOTS 65536
#define MAX_TABLE_BYTES (64u << 20)
#define MAX_EXTRA 1024
/* Ours: within what QEMU's tools print and a table stays small with. */
#define MAX_NAME 1023

/* An entry's fixed part, then extra data, ID, name, padding to 8. */
#define ENTRY_FIXED 40
/* Our extra data: the VM state's size (none), the disk's size, and the
 * record/replay instruction count (-1: none), as QEMU writes it. */
#define OUR_EXTRA 24

static void snapshot_free(struct qcow2_snapshot *s)
{
    free(s->id);
    free(s->name);
    free(s->extra);
}

void qcow2_snapshot_table_close(struct qcow2 *q)
{
    for (uint32_t i = 0; i < q->num_snapshots; i++)
        snapshot_free(&q->snapshots[i]);
    free(q->snapshots);
    q->snapshots = NULL;
    q->num_snapshots = 0;
}

static char *string_of(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/* Entry s's fixed part, then its variable part, read from `at`; its
 * size in the table in *len. */
static int read_entry(struct qcow2 *q, uint64_t at, uint64_t disk_size,
                      struct qcow2_snapshot *s, uint64_t *len, char *why,
                      size_t why_len)
{
    uint8_t fixed[ENTRY_FIXED];
    if (!inside_file(q, at, sizeof(fixed)) ||
        block_pread_exact(q->meta_fd, fixed, sizeof(fixed), at))
        return block_refuse(why, why_len, "the qcow2 snapshot table runs "
                            "past the end of the image");
    s->l1_offset = be64_at(fixed);
    s->l1_size = be32_at(fixed + 8);
    uint16_t id_len = be16_at(fixed + 12), name_len = be16_at(fixed + 14);
    s->date_sec = be32_at(fixed + 16);
    s->date_nsec = be32_at(fixed + 20);
    s->vm_clock_nsec = be64_at(fixed + 24);
    s->vm_state_size32 = be32_at(fixed + 32);
    s->extra_len = be32_at(fixed + 36);
    if (s->extra_len > MAX_EXTRA || !id_len)
        return block_refuse(why, why_len, "bad qcow2 snapshot table entry "
                            "at 0x%llx", (unsigned long long)at);
    uint64_t rest = (uint64_t)s->extra_len + id_len + name_len;
    uint8_t *buf = malloc(rest);
    if (!buf)
        return -ENOMEM;
    if (!inside_file(q, at + sizeof(fixed), rest) ||
        block_pread_exact(q->meta_fd, buf, rest, at + sizeof(fixed))) {
        free(buf);
        return block_refuse(why, why_len, "the qcow2 snapshot table runs "
                            "past the end of the image");
    }
    /* Rewritten by their string length: no NUL inside. */
    if (memchr(buf + s->extra_len, '\0', (size_t)id_len + name_len)) {
        free(buf);
        return block_refuse(why, why_len, "a qcow2 snapshot's ID or name "
                            "holds a NUL byte");
    }
    s->extra = malloc(s->extra_len + 1);
    if (s->extra)
        memcpy(s->extra, buf, s->extra_len);
    s->id = string_of(buf + s->extra_len, id_len);
    s->name = string_of(buf + s->extra_len + id_len, name_len);
    free(buf);
    if (!s->extra || !s->id || !s->name)
        return -ENOMEM;
    s->vm_state_size = s->extra_len >= 8 ? be64_at(s->extra)
                                         : s->vm_state_size32;
    /* Version 2 images may lack it: the disk has not changed size. */
    s->disk_size = s->extra_len >= 16 ? be64_at(s->extra + 8) : disk_size;
    *len = (sizeof(fixed) + rest + 7) & ~7ull;

    /* Its L1 table: aligned, in the file, covering its disk. */
    uint64_t l2_span = q->cluster_size << q->l2_bits;
    if (s->disk_size > (1ull << 62) ||
        s->l1_size < (s->disk_size + l2_span - 1) / l2_span ||
        (uint64_t)s->l1_size * 8 > MAX_L1_BYTES ||
        s->l1_offset & (q->cluster_size - 1) ||
        !inside_file(q, s->l1_offset, (uint64_t)s->l1_size * 8))
        return block_refuse(why, why_len, "bad L1 table for qcow2 snapshot "
                            "'%s' (%u entries at 0x%llx)", s->id, s->l1_size,
                            (unsigned long long)s->l1_offset);
    return 0;
}

int qcow2_snapshot_table_open(struct qcow2 *q, uint32_t count, uint64_t offset,
                        uint64_t disk_size, char *why, size_t why_len)
{
    if (!count)
        return 0;
    if (count > MAX_SNAPSHOTS || offset & (q->cluster_size - 1))
        return block_refuse(why, why_len, "bad qcow2 snapshot table (%u "
                            "snapshots at 0x%llx)", count,
                            (unsigned long long)offset);
    q->snapshots = calloc(count, sizeof(*q->snapshots));
    if (!q->snapshots)
        return -ENOMEM;
    q->snapshots_offset = offset;
    uint64_t at = offset;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t len = 0;
        q->num_snapshots = i + 1; /* released by close, even half read */
        int ret = read_entry(q, at, disk_size, &q->snapshots[i], &len, why,
                             why_len);
        if (ret)
            return ret;
        at += len;
        if (at - offset > MAX_TABLE_BYTES)
            return block_refuse(why, why_len, "the qcow2 snapshot table is "
                                "bigger than 64 MiB");
    }
    /* Distinct L1 tables lie apart in the file; ones that add up to more
     * than the file overlap, and would multiply the work of reading them. */
    struct l1_use *tables;
    size_t n;
    int ret = qcow2_snapshot_l1_tables(q->snapshots, count, &tables, &n);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n && !ret; i++)
        bytes += (uint64_t)tables[i].size * 8;
    free(tables);
    if (!ret && bytes > q->file_size)
        return block_refuse(why, why_len, "the qcow2 snapshots' L1 tables "
                            "overlap");
    return ret;
}

static uint64_t entry_size(uint64_t extra_len, size_t id_len, size_t name_len)
{
    return (ENTRY_FIXED + extra_len + id_len + name_len + 7) & ~7ull;
}

static uint64_t entry_bytes(const struct qcow2_snapshot *s)
{
    return entry_size(s->extra_len, strlen(s->id), strlen(s->name));
}

uint64_t qcow2_snapshot_table_bytes(const struct qcow2_snapshot *list,
                              uint32_t count)
{
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < count; i++)
        bytes += entry_bytes(&list[i]);
    return bytes;
}

void qcow2_snapshot_table_fill(uint8_t *buf, const struct qcow2_snapshot *list,
                         uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        const struct qcow2_snapshot *s = &list[i];
        size_t id_len = strlen(s->id), name_len = strlen(s->name);
        uint8_t *p = buf;
        p = put_be(p, s->l1_offset, 8);
        p = put_be(p, s->l1_size, 4);
        p = put_be(p, id_len, 2);
        p = put_be(p, name_len, 2);
        p = put_be(p, s->date_sec, 4);
        p = put_be(p, s->date_nsec, 4);
        p = put_be(p, s->vm_clock_nsec, 8);
        p = put_be(p, s->vm_state_size32, 4);
        p = put_be(p, s->extra_len, 4);
        memcpy(p, s->extra, s->extra_len);
        memcpy(p + s->extra_len, s->id, id_len);
        memcpy(p + s->extra_len + id_len, s->name, name_len);
        buf += entry_bytes(s);
    }
}

static int compare_l1(const void *a, const void *b)
{
    const struct l1_use *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->size < y->size ? -1 : x->size > y->size;
}

int qcow2_snapshot_l1_tables(const struct qcow2_snapshot *list, uint32_t count,
                       struct l1_use **out, size_t *n)
{
    struct l1_use *v = malloc((count ? count : 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++)
        v[i] = (struct l1_use){ list[i].l1_offset, list[i].l1_size, 1 };
    qsort(v, count, sizeof(*v), compare_l1);
    size_t kept = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (kept && !compare_l1(&v[kept - 1], &v[i]))
            v[kept - 1].users++;
        else
            v[kept++] = v[i];
    }
    *out = v;
    *n = kept;
    return 0;
}

int qcow2_snapshot_metadata_add(struct qcow2 *q)
{
    struct l1_use *tables;
    size_t n;
    int ret = qcow2_snapshot_l1_tables(q->snapshots, q->num_snapshots, &tables, &n);
    if (ret)
        return ret;
    qcow2_metadata_append_range(q, q->snapshots_offset,
                          qcow2_snapshot_table_bytes(q->snapshots, q->num_snapshots));
    for (size_t i = 0; i < n && !ret; i++) {
        uint64_t *l1 = malloc(((size_t)tables[i].size + 1) * 8);
        if (!l1) {
            ret = -ENOMEM;
            break;
        }
        ret = qcow2_l1_read(q, tables[i].offset, tables[i].size, l1);
        qcow2_metadata_append_range(q, tables[i].offset,
                              (uint64_t)tables[i].size * 8);
        for (uint32_t k = 0; !ret && k < tables[i].size; k++)
            if (l1[k] & L1_OFFSET_MASK)
                qcow2_metadata_append(q, l1[k] & L1_OFFSET_MASK);
        free(l1);
    }
    free(tables);
    qcow2_metadata_sort(q);
    return ret;
}

/* After a switch: the set of metadata clusters, from scratch. Without
 * all of it, data writes could land on a snapshot's tables: none then. */
static void metadata_rebuild(struct qcow2 *q)
{
    qcow2_metadata_clear(q);
    qcow2_metadata_add_tables(q);
    if (qcow2_snapshot_metadata_add(q)) {
        vmdev_log(q->log, VMDEV_LOG_ERROR,
                  "qcow2: cannot reread the snapshots' tables; the image "
                  "takes no more writes");
        q->corrupt = true;
    }
}

/* The snapshot with this id, else the first with this name; -1 if none. */
static int find(const struct qcow2 *q, const char *id_or_name)
{
    for (uint32_t i = 0; i < q->num_snapshots; i++)
        if (strcmp(q->snapshots[i].id, id_or_name) == 0)
            return (int)i;
    for (uint32_t i = 0; i < q->num_snapshots; i++)
        if (strcmp(q->snapshots[i].name, id_or_name) == 0)
            return (int)i;
    return -1;
}

/* Snapshot operations start from a consistent image with nothing in
 * flight (a read or write mapped before the switch would move data in
 * clusters the switch shares or frees). q->lock held. */
static int changeable(struct vmdev_block *b, struct qcow2 *q, char *why,
                      size_t why_len)
{
    if (q->corrupt) {
        block_refuse(why, why_len, "the image is marked corrupt");
        return -EIO;
    }
    if (atomic_load(&b->in_flight)) {
        block_refuse(why, why_len, "requests to the image are in flight");
        return -EBUSY;
    }
    return 0;
}

static int find_or_refuse(const struct qcow2 *q, const char *id_or_name,
                          char *why, size_t why_len)
{
    int i = find(q, id_or_name);
    if (i < 0)
        block_refuse(why, why_len, "the image has no snapshot with id or "
                     "name '%s'", id_or_name);
    return i < 0 ? -ENOENT : i;
}

/* The snapshot apply or delete acts on: its index, or -errno and why. */
static int changeable_target(struct vmdev_block *b, struct qcow2 *q,
                             const char *id_or_name, char *why, size_t why_len)
{
    int ret = changeable(b, q, why, why_len);
    return ret ? ret : find_or_refuse(q, id_or_name, why, why_len);
}

int qcow2_snapshot_list(struct vmdev_block *b,
                        struct vmdev_block_snapshot **list)
{
    struct qcow2 *q = b->format_state;
    pthread_mutex_lock(&q->lock);
    uint32_t n = q->num_snapshots;
    struct vmdev_block_snapshot *out = calloc(n ? n : 1, sizeof(*out));
    int ret = out ? (int)n : -ENOMEM;
    for (uint32_t i = 0; out && i < n; i++) {
        const struct qcow2_snapshot *s = &q->snapshots[i];
        out[i] = (struct vmdev_block_snapshot){
            .id = strdup(s->id), .name = strdup(s->name),
            .disk_size = s->disk_size, .vm_state_size = s->vm_state_size,
            .date_sec = s->date_sec, .date_nsec = s->date_nsec,
            .vm_clock_nsec = s->vm_clock_nsec,
        };
        if (!out[i].id || !out[i].name)
            ret = -ENOMEM;
    }
    pthread_mutex_unlock(&q->lock);
    if (ret < 0) {
        vmdev_block_snapshot_list_free(out, (int)n);
        out = NULL;
    }
    *list = out;
    return ret;
}

/* The next ID as QEMU picks it: one past the largest number in use. */
static char *next_id(const struct qcow2 *q)
{
    unsigned long long top = 0;
    for (uint32_t i = 0; i < q->num_snapshots; i++) {
        /* Only plain decimal IDs below 10^18 count: no wrap past them. */
        const char *id = q->snapshots[i].id;
        size_t len = strlen(id);
        if (!len || len > 18 || strspn(id, "0123456789") != len)
            continue;
        unsigned long long v = strtoull(id, NULL, 10);
        if (v > top)
            top = v;
    }
    char id[24];
    snprintf(id, sizeof(id), "%llu", top + 1);
    return strdup(id);
}

static int create_locked(struct vmdev_block *b, struct qcow2 *q,
                         const char *name, char *why, size_t why_len)
{
    int ret = changeable(b, q, why, why_len);
    if (ret)
        return ret;
    if (find(q, name) >= 0) {
        block_refuse(why, why_len, "a snapshot with id or name '%s' exists",
                     name);
        return -EEXIST;
    }
    uint32_t n = q->num_snapshots;
    /* An ID is at most 19 digits (next_id()). */
    if (n >= MAX_SNAPSHOTS ||
        qcow2_snapshot_table_bytes(q->snapshots, n) +
                entry_size(OUR_EXTRA, 19, strlen(name)) >
            MAX_TABLE_BYTES) {
        block_refuse(why, why_len, "the image has as many snapshots as "
                     "qcow2 allows (%d, or a 64 MiB table)", MAX_SNAPSHOTS);
        return -EFBIG;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct qcow2_snapshot fresh = {
        /* The active L1 table becomes the snapshot's as it is. */
        .l1_offset = q->l1_offset, .l1_size = q->l1_size,
        .id = next_id(q), .name = strdup(name),
        .date_sec = (uint32_t)now.tv_sec, .date_nsec = (uint32_t)now.tv_nsec,
        .disk_size = b->size,
        .extra = malloc(OUR_EXTRA), .extra_len = OUR_EXTRA,
    };
    struct qcow2_snapshot *list = malloc((n + 1) * sizeof(*list));
    if (!fresh.id || !fresh.name || !fresh.extra || !list) {
        snapshot_free(&fresh);
        free(list);
        return -ENOMEM;
    }
    put_be(put_be(put_be(fresh.extra, 0, 8), b->size, 8), UINT64_MAX, 8);
    if (n)
        memcpy(list, q->snapshots, n * sizeof(*list));
    list[n] = fresh;
    ret = qcow2_switch_metadata(q, q->l1, list, n + 1, why, why_len);
    if (ret) {
        snapshot_free(&fresh);
        free(list);
        return ret;
    }
    free(q->snapshots);
    q->snapshots = list;
    q->num_snapshots = n + 1;
    metadata_rebuild(q);
    return 0;
}

typedef int locked_op(struct vmdev_block *b, struct qcow2 *q, const char *arg,
                      char *why, size_t why_len);

static int under_lock(locked_op *op, struct vmdev_block *b, const char *arg,
                      char *why, size_t why_len)
{
    struct qcow2 *q = b->format_state;
    pthread_mutex_lock(&q->lock);
    int ret = op(b, q, arg, why, why_len);
    pthread_mutex_unlock(&q->lock);
    return ret;
}

int qcow2_snapshot_create(struct vmdev_block *b, const char *name, char *why,
                          size_t why_len)
{
    size_t len = strlen(name);
    if (!len || len > MAX_NAME)
        return block_refuse(why, why_len, "a snapshot name is 1 to %d bytes",
                            MAX_NAME);
    return under_lock(create_locked, b, name, why, why_len);
}

static int apply_locked(struct vmdev_block *b, struct qcow2 *q,
                        const char *id_or_name, char *why, size_t why_len)
{
    int i = changeable_target(b, q, id_or_name, why, why_len);
    if (i < 0)
        return i;
    const struct qcow2_snapshot *s = &q->snapshots[i];
    if (s->disk_size != b->size) {
        block_refuse(why, why_len, "snapshot '%s' is of a %llu-byte disk and "
                     "the disk is %llu bytes now (resizing is not supported)",
                     id_or_name, (unsigned long long)s->disk_size,
                     (unsigned long long)b->size);
        return -ENOTSUP;
    }
    /* Its L1 table, as far as the disk goes (the rest holds saved VM
     * state, which the active table does not need). */
    uint32_t entries = s->l1_size > q->l1_size ? s->l1_size : q->l1_size;
    uint64_t *source = calloc(entries + 1ull, 8);
    if (!source)
        return -ENOMEM;
    int ret = qcow2_l1_read(q, s->l1_offset, s->l1_size, source);
    if (ret)
        block_refuse(why, why_len, "cannot read the L1 table of snapshot "
                     "'%s'", id_or_name);
    else
        ret = qcow2_switch_metadata(q, source, q->snapshots, q->num_snapshots, why,
                              why_len);
    free(source);
    if (!ret)
        metadata_rebuild(q);
    return ret;
}

int qcow2_snapshot_apply(struct vmdev_block *b, const char *id_or_name,
                         char *why, size_t why_len)
{
    return under_lock(apply_locked, b, id_or_name, why, why_len);
}

static int delete_locked(struct vmdev_block *b, struct qcow2 *q,
                         const char *id_or_name, char *why, size_t why_len)
{
    int i = changeable_target(b, q, id_or_name, why, why_len);
    if (i < 0)
        return i;
    uint32_t n = q->num_snapshots;
    struct qcow2_snapshot *list = malloc(n * sizeof(*list));
    if (!list)
        return -ENOMEM;
    memcpy(list, q->snapshots, (size_t)i * sizeof(*list));
    memcpy(list + i, q->snapshots + i + 1, (n - i - 1) * sizeof(*list));
    int ret = qcow2_switch_metadata(q, q->l1, list, n - 1, why, why_len);
    if (ret) {
        free(list);
        return ret;
    }
    snapshot_free(&q->snapshots[i]);
    free(q->snapshots);
    q->snapshots = list;
    q->num_snapshots = n - 1;
    metadata_rebuild(q);
    return 0;
}

int qcow2_snapshot_delete(struct vmdev_block *b, const char *id_or_name,
                          char *why, size_t why_len)
{
    return under_lock(delete_locked, b, id_or_name, why, why_len);
}
