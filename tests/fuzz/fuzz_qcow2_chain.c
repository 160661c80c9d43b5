/* SPDX-License-Identifier: MIT */
/*
 * qcow2 backing chains of two and three images whose backing names are
 * an attacker's: the input describes a top qcow2, a middle qcow2 or raw
 * file and a base raw or qcow2 file (sizes, cluster sizes, which clusters
 * of the lower qcow2 images hold data), the backing name and format
 * extension each qcow2 image's header carries, and the caller's options
 * (backing_outside, backing=PATH with a format hint, backing=off).
 *
 * Names are well formed (relative, in the images' folder, also through
 * "./", "../chain/", a symbolic link inside, a NUL ending the name early,
 * 1023 bytes of "./") or hostile: absolute (/etc/passwd, /proc/self/mem,
 * /dev/zero, the absolute path of an image of the chain), "../" escapes
 * and a symbolic link to a file outside the folder, a link to /dev/null,
 * a newline, a name too long for the header or for the file system, a
 * name leading back to the image itself or to the top (loops), a
 * directory, a FIFO, a missing file; format extensions right, wrong,
 * missing or unknown.
 *
 * The target models the backing rules (vmdev/block.h) to predict each
 * open: refused (with a reason) or opened onto which chain of files,
 * and asserts the library does exactly that, for a read-only open, a
 * writable one and a read-only one again after writing. In particular,
 * with backing_outside off no file outside the chain's folder is ever
 * opened: each level holds its own byte pattern (the file outside the
 * folder another), and every byte read of the disk must be what the
 * modelled chain holds there: the top's own writes, the pattern of the
 * level that has the cluster, a raw file's bytes, or zero. Writes,
 * write-zeroes and discards go to the top only (copy-on-write): every
 * file below it, and the one outside, is byte for byte what it was.
 * Loops and chains too deep are refused within qcow2_rig.h's watchdog
 * bound, as is all the work of one input.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "block_sync.h"
#include "qcow2_rig.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LEVELS 3
#define MAX_OPS 12
#define MAX_NAME 1100 /* room for a name one byte too long (1024) */
#define PATTERN_TOP_WRITES 4
#define PATTERN_OUTSIDE 6

/*
 * The byte of pattern k at disk offset x: patterns differ from each
 * other at every offset (k * 0x20 apart), so a byte read says which
 * file it came from.
 */
/* The target's own byte loops are not what coverage should steer by, and
 * uninstrumented they run several times faster. */
#define NOT_FUZZED __attribute__((disable_sanitizer_instrumentation))

NOT_FUZZED static uint8_t pattern(unsigned k, uint64_t x)
{
    return (uint8_t)((x >> 9) * 29 + x + k * 0x20 + 1);
}

/* p[k] = pattern(level, from + k). */
NOT_FUZZED static void fill_pattern(uint8_t *p, unsigned level, uint64_t from,
                                    uint64_t n)
{
    for (uint64_t k = 0; k < n; k++)
        p[k] = pattern(level, from + k);
}

/* What a backing name in a header leads to. */
enum name_kind {
    NAME_NONE,
    NAME_NEXT,          /* "mid.img": the next level, well formed */
    NAME_NEXT_DOT,      /* "./mid.img" */
    NAME_NEXT_DOTDOT,   /* "../chain/mid.img": out and back in */
    NAME_NEXT_LINK,     /* "link-mid", a symbolic link in the folder */
    NAME_NEXT_NUL,      /* "mid.img\0/etc/passwd": the NUL ends it */
    NAME_NEXT_LONG,     /* "././...mid.img", 1023 bytes */
    NAME_NEXT_ABSOLUTE, /* the next level's absolute path */
    NAME_SELF,          /* the image itself */
    NAME_TOP,           /* "top.img": a loop back to the top */
    NAME_MID,           /* "mid.img" from the base: a loop */
    NAME_OUT_DOTDOT,    /* "../outside.raw" */
    NAME_OUT_ABSOLUTE,  /* the outside file's absolute path */
    NAME_OUT_LINK,      /* "link-out" -> ../outside.raw */
    NAME_OUT_DEEP,      /* "../../../../../../../../etc/passwd" */
    NAME_PASSWD,        /* "/etc/passwd" */
    NAME_PROC_MEM,      /* "/proc/self/mem" (a regular file, 0 bytes) */
    NAME_DEV_ZERO,      /* "/dev/zero" */
    NAME_LINK_NULL,     /* "link-null" -> /dev/null */
    NAME_DIR,           /* "dir", a directory in the folder */
    NAME_FIFO,          /* "fifo", a FIFO in the folder */
    NAME_NEWLINE,       /* "mid.img\n" */
    NAME_MISSING,       /* "missing.img" */
    NAME_TOO_LONG,      /* 1024 bytes, over the limit */
    NAME_LONG_COMPONENT,/* one 300-byte component */
    NAME_LEADING_NUL,   /* "\0/etc/passwd": no name at all */
    NAME_KINDS
};

/* Where a name leads, for the model. */
enum node {
    NODE_NONE,    /* no backing file */
    NODE_REFUSED, /* refused whatever backing_outside says */
    NODE_LEVEL,   /* a file of the chain (level in .level) */
    NODE_OUTSIDE, /* outside.raw, beside the chain's folder */
    NODE_PASSWD,
    NODE_PROC_MEM,
};

struct target {
    enum node node;
    unsigned level;
    bool leaves_folder; /* refused unless backing_outside */
};

/* A header's backing format extension. */
enum ext_kind { EXT_RIGHT, EXT_RAW, EXT_QCOW2, EXT_ABSENT, EXT_UNKNOWN };

struct level {
    bool qcow2;
    uint64_t size; /* the disk (qcow2) or the file (raw) */
    unsigned cluster_bits;
    uint8_t alloc_seed, alloc_density;
    enum name_kind name;
    enum ext_kind ext;
    char path[PATH_MAX];
    uint8_t *file; /* its bytes as written, to compare after */
    uint64_t file_len;
};

static const char *const level_names[LEVELS] = { "top.img", "mid.img",
                                                 "base.img" };

static struct qcow2_rig rig;
static char chain_dir[PATH_MAX], outside_path[PATH_MAX];
static uint8_t *outside_bytes;
#define OUTSIDE_SIZE (40u << 10)

static struct level levels[LEVELS];

static void remove_scratch(void)
{
    char p[PATH_MAX];
    static const char *const fixtures[] = { "top.img", "mid.img", "base.img",
                                            "link-mid", "link-base",
                                            "link-out", "link-null", "fifo" };
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(*fixtures); i++) {
        snprintf(p, sizeof(p), "%s/%s", chain_dir, fixtures[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/dir", chain_dir);
    rmdir(p);
    rmdir(chain_dir);
    unlink(outside_path);
    rmdir(rig.dir);
}

static void write_file(const char *path, const uint8_t *bytes, uint64_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (len && pwrite(fd, bytes, len, 0) != (ssize_t)len) ||
        close(fd))
        abort();
}

/* The whole of a file (at most max bytes; the rest is never read). */
static uint8_t *read_file(const char *path, uint64_t *len, uint64_t max)
{
    struct stat st;
    if (stat(path, &st))
        abort();
    uint64_t n = (uint64_t)st.st_size < max ? (uint64_t)st.st_size : max;
    uint8_t *p = malloc(n ? n : 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (!p || fd < 0 || (n && pread(fd, p, n, 0) != (ssize_t)n))
        abort();
    close(fd);
    *len = (uint64_t)st.st_size;
    return p;
}

/*
 * The folder: rig.dir/chain holds the images, a directory, a FIFO and
 * symbolic links (to images of the chain, to outside.raw beside the
 * folder, to /dev/null); rig.dir/outside.raw holds its own pattern.
 */
static void set_up_once(void)
{
    qcow2_rig_init(&rig, "vmdev-fuzz-qcow2-chain");
    snprintf(chain_dir, sizeof(chain_dir), "%s/chain", rig.dir);
    snprintf(outside_path, sizeof(outside_path), "%s/outside.raw", rig.dir);
    atexit(remove_scratch);
    char p[PATH_MAX];
    if (mkdir(chain_dir, 0700))
        abort();
    snprintf(p, sizeof(p), "%s/dir", chain_dir);
    if (mkdir(p, 0700))
        abort();
    snprintf(p, sizeof(p), "%s/fifo", chain_dir);
    if (mkfifo(p, 0600))
        abort();
    static const char *const links[][2] = { { "mid.img", "link-mid" },
                                            { "base.img", "link-base" },
                                            { "../outside.raw", "link-out" },
                                            { "/dev/null", "link-null" } };
    for (size_t i = 0; i < sizeof(links) / sizeof(*links); i++) {
        snprintf(p, sizeof(p), "%s/%s", chain_dir, links[i][1]);
        if (symlink(links[i][0], p))
            abort();
    }
    outside_bytes = malloc(OUTSIDE_SIZE);
    if (!outside_bytes)
        abort();
    fill_pattern(outside_bytes, PATTERN_OUTSIDE, 0, OUTSIDE_SIZE);
    write_file(outside_path, outside_bytes, OUTSIDE_SIZE);
    for (unsigned i = 0; i < LEVELS; i++)
        snprintf(levels[i].path, sizeof(levels[i].path), "%s/%s", chain_dir,
                 level_names[i]);
}

/* The name's bytes as the header carries them (len, NULs included). */
static size_t name_bytes(unsigned i, enum name_kind kind, char *out)
{
    const char *next = i + 1 < LEVELS ? level_names[i + 1] : "";
    size_t n = 0;
    /* The base has no next level: no name (target_of agrees). */
    if (!next[0] && kind >= NAME_NEXT && kind <= NAME_NEXT_ABSOLUTE)
        return 0;
    switch (kind) {
    case NAME_NONE:
    case NAME_KINDS:
        return 0;
    case NAME_NEXT:
        return (size_t)sprintf(out, "%s", next);
    case NAME_NEXT_DOT:
        return (size_t)sprintf(out, "./%s", next);
    case NAME_NEXT_DOTDOT:
        return (size_t)sprintf(out, "../chain/%s", next);
    case NAME_NEXT_LINK:
        return (size_t)sprintf(out, "link-%s", i == 0 ? "mid" : "base");
    case NAME_NEXT_NUL:
        n = (size_t)sprintf(out, "%s", next);
        memcpy(out + n, "\0/etc/passwd", 12);
        return n + 12;
    case NAME_NEXT_LONG:
    case NAME_TOO_LONG: {
        size_t total = kind == NAME_TOO_LONG ? 1024 : 1023;
        size_t tail = strlen(next);
        /* "./" repeated, then "/" if one byte is left over. */
        while (n + 2 + tail <= total) {
            memcpy(out + n, "./", 2);
            n += 2;
        }
        if (n + tail < total)
            out[n++] = '/';
        memcpy(out + n, next, tail);
        return n + tail;
    }
    case NAME_NEXT_ABSOLUTE:
        return (size_t)sprintf(out, "%s/%s", chain_dir, next);
    case NAME_SELF:
        return (size_t)sprintf(out, "%s", level_names[i]);
    case NAME_TOP:
        return (size_t)sprintf(out, "top.img");
    case NAME_MID:
        return (size_t)sprintf(out, "mid.img");
    case NAME_OUT_DOTDOT:
        return (size_t)sprintf(out, "../outside.raw");
    case NAME_OUT_ABSOLUTE:
        return (size_t)sprintf(out, "%s", outside_path);
    case NAME_OUT_LINK:
        return (size_t)sprintf(out, "link-out");
    case NAME_OUT_DEEP:
        return (size_t)sprintf(out, "../../../../../../../../etc/passwd");
    case NAME_PASSWD:
        return (size_t)sprintf(out, "/etc/passwd");
    case NAME_PROC_MEM:
        return (size_t)sprintf(out, "/proc/self/mem");
    case NAME_DEV_ZERO:
        return (size_t)sprintf(out, "/dev/zero");
    case NAME_LINK_NULL:
        return (size_t)sprintf(out, "link-null");
    case NAME_DIR:
        return (size_t)sprintf(out, "dir");
    case NAME_FIFO:
        return (size_t)sprintf(out, "fifo");
    case NAME_NEWLINE:
        return (size_t)sprintf(out, "%s\n", next[0] ? next : "mid.img");
    case NAME_MISSING:
        return (size_t)sprintf(out, "missing.img");
    case NAME_LONG_COMPONENT:
        memset(out, 'a', 300);
        return 300;
    case NAME_LEADING_NUL:
        memcpy(out, "\0/etc/passwd", 12);
        return 12;
    }
    return 0;
}

/* Where level i's name leads (the next level for NEXT names; the base
 * has none, so there they mean no name). */
static struct target target_of(unsigned i, enum name_kind kind)
{
    bool has_next = i + 1 < LEVELS;
    switch (kind) {
    case NAME_NEXT:
    case NAME_NEXT_DOT:
    case NAME_NEXT_DOTDOT:
    case NAME_NEXT_LINK:
    case NAME_NEXT_NUL:
    case NAME_NEXT_LONG:
        return has_next ? (struct target){ NODE_LEVEL, i + 1, false }
                        : (struct target){ NODE_NONE, 0, false };
    case NAME_NEXT_ABSOLUTE:
        return has_next ? (struct target){ NODE_LEVEL, i + 1, true }
                        : (struct target){ NODE_NONE, 0, false };
    case NAME_SELF:
        return (struct target){ NODE_LEVEL, i, false };
    case NAME_TOP:
        return (struct target){ NODE_LEVEL, 0, false };
    case NAME_MID:
        return (struct target){ NODE_LEVEL, 1, false };
    case NAME_OUT_DOTDOT:
    case NAME_OUT_ABSOLUTE:
    case NAME_OUT_LINK:
        return (struct target){ NODE_OUTSIDE, 0, true };
    case NAME_OUT_DEEP:
    case NAME_PASSWD:
        return (struct target){ NODE_PASSWD, 0, true };
    case NAME_PROC_MEM:
        return (struct target){ NODE_PROC_MEM, 0, true };
    case NAME_NONE:
    case NAME_LEADING_NUL:
    case NAME_KINDS:
        return (struct target){ NODE_NONE, 0, false };
    case NAME_DEV_ZERO:
    case NAME_LINK_NULL:
    case NAME_DIR:
    case NAME_FIFO:
    case NAME_NEWLINE:
    case NAME_MISSING:
    case NAME_TOO_LONG:
    case NAME_LONG_COMPONENT:
        break;
    }
    return (struct target){ NODE_REFUSED, 0, false };
}

static const char *ext_text(const struct level *l, bool target_qcow2)
{
    switch (l->ext) {
    case EXT_RIGHT:
        return target_qcow2 ? "qcow2" : "raw";
    case EXT_RAW:
        return "raw";
    case EXT_QCOW2:
        return "qcow2";
    case EXT_UNKNOWN:
        return "vmdk";
    case EXT_ABSENT:
        break;
    }
    return NULL;
}

/* Whether the file the target names is a qcow2 image of the chain. */
static bool target_is_qcow2(struct target t)
{
    return t.node == NODE_LEVEL && levels[t.level].qcow2;
}

/* Whether level i's guest cluster c holds data (its pattern). */
NOT_FUZZED static bool allocated(const struct level *l, uint64_t c)
{
    return (uint8_t)((c * 2654435761u) >> 11 ^ l->alloc_seed) <
           l->alloc_density;
}

/* Level i's file: a raw file of its pattern, or a qcow2 image made by
 * the library and written with its pattern in the allocated clusters;
 * its header then gets the backing format extension and name. */
static void build_level(unsigned i)
{
    struct level *l = &levels[i];
    unlink(l->path);
    if (!l->qcow2) {
        uint8_t *p = malloc(l->size ? l->size : 1);
        if (!p)
            abort();
        fill_pattern(p, i, 0, l->size);
        write_file(l->path, p, l->size);
        free(p);
        return;
    }
    char why[512] = "";
    struct vmdev_block_create_options c = {
        .path = l->path, .format = VMDEV_BLOCK_FORMAT_QCOW2, .size = l->size,
        .cluster_size = 1u << l->cluster_bits,
    };
    if (vmdev_block_create(&c, why, sizeof(why))) {
        fprintf(stderr, "qcow2 chain fuzz: cannot create %s: %s\n", l->path,
                why);
        abort();
    }
    uint64_t cs = 1ull << l->cluster_bits;
    if (i > 0) {
        struct vmdev_block_options o = { .path = l->path,
                                         .format = VMDEV_BLOCK_FORMAT_QCOW2 };
        struct vmdev_block *b = vmdev_block_new(&o, why, sizeof(why));
        if (!b)
            abort();
        uint8_t *p = rig.buf;
        for (uint64_t c0 = 0; c0 * cs < l->size; c0++) {
            if (!allocated(l, c0))
                continue;
            uint64_t at = c0 * cs, n = l->size - at < cs ? l->size - at : cs;
            fill_pattern(p, i, at, n);
            qcow2_rig_run(&rig, b, VMDEV_IO_WRITE, at, p, n, 1);
        }
        vmdev_block_free(b);
    }
    /* The header: extension at 112 (the end marker after it), then the
     * name; only what lies in the header cluster is written, so a name
     * that does not fit reads as running past it. */
    uint8_t head[2048] = { 0 };
    size_t at = 112;
    const char *ext = ext_text(l, target_is_qcow2(target_of(i, l->name)));
    if (ext) {
        uint32_t type = htobe32(0xe2792acau), len = htobe32((uint32_t)strlen(ext));
        memcpy(head + at, &type, 4);
        memcpy(head + at + 4, &len, 4);
        memcpy(head + at + 8, ext, strlen(ext));
        at += 8 + ((strlen(ext) + 7) & ~7u);
    }
    at += 8; /* the end of the extensions */
    char name[MAX_NAME];
    size_t name_len = name_bytes(i, l->name, name);
    memcpy(head + at, name, name_len);
    uint64_t head_len = at + name_len < cs ? at + name_len : cs;
    int fd = open(l->path, O_WRONLY | O_CLOEXEC);
    uint64_t be_offset = htobe64(name_len ? at : 0);
    uint32_t be_size = htobe32((uint32_t)name_len);
    if (fd < 0 || pwrite(fd, head + 112, head_len - 112, 112) !=
                      (ssize_t)(head_len - 112) ||
        pwrite(fd, &be_offset, 8, 8) != 8 || pwrite(fd, &be_size, 4, 16) != 4 ||
        close(fd))
        abort();
}

/* A file of the modelled chain, from the top down. */
struct view {
    bool qcow2;        /* a level's qcow2 image, else a file read raw */
    unsigned level;    /* a qcow2 view, or a raw view of a level's file */
    enum node node;    /* what a raw view reads */
    const uint8_t *bytes;
    uint64_t size;
};

struct model {
    bool refused;
    /* Each level once, the top once more (met again below an explicit
     * backing file), and a raw file at the end. */
    struct view views[LEVELS + 2];
    unsigned num_views;
    /* A raw view of the top's own file: its bytes change as the top is
     * written, so the content is not predicted. */
    bool top_read_raw;
};

struct options {
    bool outside;
    enum vmdev_block_backing mode;
    bool explicit_outside; /* backing=PATH names outside.raw, else mid.img */
    enum vmdev_block_format explicit_format;
};

static uint8_t *raw_bytes[LEVELS];
static uint8_t *passwd;
static uint64_t passwd_len;

/* What opening the top with options o must come to, by the rules of
 * vmdev/block.h. */
static struct model predict(const struct options *o)
{
    struct model m = { .views = { { .qcow2 = true, .level = 0,
                                    .size = levels[0].size } },
                       .num_views = 1 };
    /* A qcow2 image met again is a loop: the walk repeats from there. The
     * top opened with an explicit backing file is the exception, as met
     * again (through a lower image's name) it follows its own header. */
    bool visited[LEVELS] = { o->mode != VMDEV_BLOCK_BACKING_EXPLICIT };
    unsigned cur = 0;
    for (bool first = true;; first = false) {
        const struct level *l = &levels[cur];
        char name[MAX_NAME];
        size_t name_len = name_bytes(cur, l->name, name);
        uint64_t cs = 1ull << l->cluster_bits;
        const char *ext = ext_text(l, target_is_qcow2(target_of(cur, l->name)));
        size_t name_at = 112 + (ext ? 8 + ((strlen(ext) + 7) & ~7u) : 0) + 8;
        if (name_len > 1023 || name_at + name_len > cs) {
            m.refused = true;
            return m;
        }
        struct target t;
        enum vmdev_block_format format = VMDEV_BLOCK_FORMAT_DEFAULT;
        if (first && o->mode == VMDEV_BLOCK_BACKING_OFF) {
            m.refused = name_len && name[0];
            return m;
        }
        if (first && o->mode == VMDEV_BLOCK_BACKING_EXPLICIT) {
            t = o->explicit_outside ? (struct target){ NODE_OUTSIDE, 0, false }
                                    : (struct target){ NODE_LEVEL, 1, false };
            format = o->explicit_format;
        } else {
            t = target_of(cur, l->name);
            if (t.node == NODE_NONE)
                return m;
            if (t.node == NODE_REFUSED || (t.leaves_folder && !o->outside)) {
                m.refused = true;
                return m;
            }
        }
        if (format == VMDEV_BLOCK_FORMAT_DEFAULT) {
            if (!ext || strcmp(ext, "vmdk") == 0) {
                m.refused = true;
                return m;
            }
            format = strcmp(ext, "qcow2") == 0 ? VMDEV_BLOCK_FORMAT_QCOW2
                                               : VMDEV_BLOCK_FORMAT_RAW;
        }
        struct view *v = &m.views[m.num_views++];
        if (format == VMDEV_BLOCK_FORMAT_QCOW2) {
            /* Only the chain's qcow2 images are qcow2, and one met again
             * is a loop, refused once too deep. */
            if (!target_is_qcow2(t) || visited[t.level]) {
                m.refused = true;
                return m;
            }
            visited[t.level] = true;
            *v = (struct view){ .qcow2 = true, .level = t.level,
                                .size = levels[t.level].size };
            cur = t.level;
            continue;
        }
        *v = (struct view){ .node = t.node, .level = t.level };
        switch (t.node) {
        case NODE_LEVEL:
            m.top_read_raw |= t.level == 0;
            v->bytes = raw_bytes[t.level];
            v->size = levels[t.level].file_len;
            break;
        case NODE_OUTSIDE:
            v->bytes = outside_bytes;
            v->size = OUTSIDE_SIZE;
            break;
        case NODE_PASSWD:
            v->bytes = passwd;
            v->size = passwd_len;
            break;
        default: /* /proc/self/mem: a regular file of no bytes */
            v->size = 0;
            break;
        }
        return m;
    }
}

/* The top's own writes, byte by byte over its disk. */
static uint8_t top_bytes[QCOW2_RIG_MAX_READ];
static bool top_written[QCOW2_RIG_MAX_READ];

/* The byte the modelled chain holds at disk offset x. */
NOT_FUZZED static uint8_t expected_at(const struct model *m, uint64_t x)
{
    if (top_written[x])
        return top_bytes[x];
    for (unsigned k = 1; k < m->num_views; k++) {
        const struct view *v = &m->views[k];
        if (x >= v->size)
            return 0;
        if (!v->qcow2)
            return v->bytes ? v->bytes[x] : 0;
        /* The top met again holds only its writes, seen above. */
        if (v->level == 0)
            continue;
        const struct level *l = &levels[v->level];
        if (allocated(l, x >> l->cluster_bits))
            return pattern(v->level, x);
    }
    return 0;
}

/* One request, waited for: its result (or the submit error). */
static int64_t run(struct vmdev_block *b, enum vmdev_io_op op, uint64_t offset,
                   uint8_t *buf, uint64_t len)
{
    int64_t result = block_sync(b, rig.engine, op, offset, buf, len);
    if (result == -ETIMEDOUT)
        abort(); /* a request that never finishes */
    return result;
}

/* The first byte of buf (the disk's first len bytes) that is not what
 * the model holds there, or len. */
NOT_FUZZED static uint64_t first_mismatch(const struct model *m,
                                          const uint8_t *buf, uint64_t len)
{
    for (uint64_t x = 0; x < len; x++)
        if (buf[x] != expected_at(m, x))
            return x;
    return len;
}

/* Records the top's writes of pattern PATTERN_TOP_WRITES (varied by n)
 * over [offset, offset + len), into buf and the model. */
NOT_FUZZED static void top_write_bytes(uint8_t *buf, uint64_t offset,
                                       uint64_t len, unsigned n)
{
    for (uint64_t k = 0; k < len; k++) {
        buf[k] = pattern(PATTERN_TOP_WRITES, offset + k) ^ (uint8_t)n;
        top_bytes[offset + k] = buf[k];
        top_written[offset + k] = true;
    }
}

static void check_disk(const struct model *m, struct vmdev_block *b,
                       const char *when)
{
    uint64_t size = vmdev_block_size(b);
    if (size != levels[0].size)
        abort();
    if (run(b, VMDEV_IO_READ, 0, rig.buf, size) != (int64_t)size)
        abort();
    if (m->top_read_raw)
        return;
    uint64_t x = first_mismatch(m, rig.buf, size);
    if (x < size) {
        fprintf(stderr, "qcow2 chain fuzz: %s, byte %llu of the disk is "
                "0x%02x, the modelled chain (%u files) holds 0x%02x\n", when,
                (unsigned long long)x, rig.buf[x], m->num_views,
                expected_at(m, x));
        abort();
    }
}

static struct vmdev_block *open_top(const struct options *o,
                                    const struct model *m, bool readonly,
                                    const char *when)
{
    char explicit_path[PATH_MAX];
    snprintf(explicit_path, sizeof(explicit_path), "%s",
             o->explicit_outside ? outside_path : levels[1].path);
    struct vmdev_block_options opts = {
        .path = levels[0].path, .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = readonly,
        .backing = o->mode, .backing_outside = o->outside,
        .backing_file = o->mode == VMDEV_BLOCK_BACKING_EXPLICIT ? explicit_path
                                                                 : NULL,
        .backing_format = o->mode == VMDEV_BLOCK_BACKING_EXPLICIT
                              ? o->explicit_format
                              : VMDEV_BLOCK_FORMAT_DEFAULT,
    };
    char why[1024] = "";
    struct vmdev_block *b = vmdev_block_new(&opts, why, sizeof(why));
    if (!b && !why[0])
        abort(); /* a refusal must say why */
    if (!b != m->refused) {
        fprintf(stderr, "qcow2 chain fuzz: %s, the open %s (%s), the rules "
                "say it must %s\n", when, b ? "succeeded" : "was refused",
                b ? "" : why, m->refused ? "be refused" : "succeed");
        abort();
    }
    return b;
}

/* One write, write-zeroes or discard on the top, into the model too. */
static void apply_op(struct vmdev_block *b, struct input *in, unsigned n)
{
    uint8_t kind = take8(in);
    uint64_t size = levels[0].size;
    uint64_t offset = (uint64_t)take16(in) * 8 % size;
    uint64_t len = 1 + (uint64_t)take16(in) * (kind >> 4 | 1) % (size - offset);
    uint64_t cs = 1ull << levels[0].cluster_bits;
    switch (kind % 4) {
    case 0:
    case 1:
        top_write_bytes(rig.buf, offset, len, n);
        if (run(b, VMDEV_IO_WRITE, offset, rig.buf, len) != (int64_t)len)
            abort();
        break;
    case 2:
        if (run(b, VMDEV_IO_WRITE_ZEROES, offset, NULL, len))
            abort();
        memset(top_bytes + offset, 0, len);
        memset(top_written + offset, true, len);
        break;
    case 3: {
        /* Whole clusters read as zeroes afterwards, parts stay. */
        if (run(b, VMDEV_IO_DISCARD, offset, NULL, len))
            abort();
        uint64_t from = (offset + cs - 1) & ~(cs - 1);
        uint64_t to = (offset + len) & ~(cs - 1);
        for (uint64_t x = from; x < to; x++) {
            top_bytes[x] = 0;
            top_written[x] = true;
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rig.engine) {
        set_up_once();
        passwd = read_file("/etc/passwd", &passwd_len, QCOW2_RIG_MAX_READ);
    }
    struct input in = { data, size };
    uint8_t flags = take8(&in), shape = take8(&in);
    struct options o = {
        .outside = flags & 1,
        .mode = (flags >> 1 & 3) == 2   ? VMDEV_BLOCK_BACKING_EXPLICIT
                : (flags >> 1 & 3) == 3 ? VMDEV_BLOCK_BACKING_OFF
                                        : VMDEV_BLOCK_BACKING_FROM_IMAGE,
        .explicit_outside = flags & 8,
        .explicit_format = (enum vmdev_block_format)(flags >> 4 & 3) % 3,
    };
    for (unsigned i = 0; i < LEVELS; i++) {
        struct level *l = &levels[i];
        uint8_t sz = take8(&in), bits = take8(&in), nm = take8(&in),
                ext = take8(&in);
        l->qcow2 = i == 0 || (shape >> i & 1);
        l->cluster_bits = 9 + bits % 8;
        l->size = (uint64_t)(sz % 64 + 1) * 4096;
        if (!l->qcow2) /* a raw file need not end on a sector */
            l->size -= bits;
        l->alloc_seed = take8(&in);
        l->alloc_density = take8(&in);
        l->name = (enum name_kind)(nm % NAME_KINDS);
        l->ext = ext % 8 < 4 ? EXT_RIGHT : (enum ext_kind)(ext % 8 - 3);
    }
    qcow2_rig_arm(&rig, true);
    for (unsigned i = LEVELS; i-- > 0;) {
        build_level(i);
        free(levels[i].file);
        levels[i].file = read_file(levels[i].path, &levels[i].file_len,
                                   UINT64_MAX);
        raw_bytes[i] = levels[i].file;
    }
    struct model m = predict(&o);
    memset(top_written, 0, sizeof(top_written));

    struct vmdev_block *b = open_top(&o, &m, true, "read-only");
    if (b) {
        check_disk(&m, b, "read-only");
        vmdev_block_free(b);
    }
    b = open_top(&o, &m, false, "writable");
    if (b) {
        for (unsigned n = 0; n < MAX_OPS && in.left; n++)
            apply_op(b, &in, n);
        check_disk(&m, b, "after writing");
        if (run(b, VMDEV_IO_FLUSH, 0, NULL, 0))
            abort();
        vmdev_block_free(b);
        b = open_top(&o, &m, true, "reopened");
        check_disk(&m, b, "reopened");
        vmdev_block_free(b);
    }
    qcow2_rig_arm(&rig, false);

    /* Copy-on-write: nothing below the top changed, nor outside. */
    for (unsigned i = 1; i < LEVELS; i++) {
        uint64_t len;
        uint8_t *now = read_file(levels[i].path, &len, UINT64_MAX);
        if (len != levels[i].file_len || memcmp(now, levels[i].file, len)) {
            fprintf(stderr, "qcow2 chain fuzz: %s changed under the top\n",
                    levels[i].path);
            abort();
        }
        free(now);
    }
    uint64_t len;
    uint8_t *now = read_file(outside_path, &len, UINT64_MAX);
    if (len != OUTSIDE_SIZE || memcmp(now, outside_bytes, len))
        abort();
    free(now);
    return 0;
}
