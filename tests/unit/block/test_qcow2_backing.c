/* SPDX-License-Identifier: MIT */
/*
 * Which backing file a qcow2 image may make the host read (vmdev/block.h).
 * A header's name is the image's choice, not the user's: it is followed
 * only when relative and inside the naming image's directory (unless
 * backing_outside), only to a regular file (always), at every level of a
 * chain. The caller may name the backing file itself, or refuse any.
 * Each refusal names its rule and the option that relaxes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "block_sync.h"
#include "image_dir.h"
#include "test.h"
#include "vmdev/block.h"

#define DISK_SIZE (1u << 20)

static struct vmdev_io_engine *engine;

/* The absolute path of the directory's file name, into out (PATH_MAX
 * bytes): kept there, where img_path()'s buffers are reused. */
static const char *absolute(const char *name, char *out)
{
    return realpath(img_path(name), out) ? out : "";
}

/* Reading the image `name` as qcow2 with the safe defaults (its path kept
 * in path, PATH_MAX bytes); tests change fields. */
static struct vmdev_block_options qcow2_options(const char *name, char *path)
{
    return (struct vmdev_block_options){
        .path = absolute(name, path), .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK, .readonly = true,
    };
}

/* An empty qcow2 image `name` whose header names `backing` in `format`,
 * whether it exists or not (qemu-img's -u). */
static bool make_overlay(const char *name, const char *backing,
                         const char *format)
{
    return img_sh("qemu-img create -q -f qcow2 -u -b '%s' -F %s %s %u",
                  backing, format, name, DISK_SIZE);
}


/* Opening as o says is refused, and why has every one of the words. */
static bool refused_saying(const struct vmdev_block_options *o,
                           const char *const *words)
{
    char why[1024] = "";
    struct vmdev_block *b = vmdev_block_new(o, why, sizeof(why));
    vmdev_block_free(b);
    bool ok = !b;
    for (unsigned i = 0; ok && words[i]; i++)
        ok = strstr(why, words[i]) != NULL;
    if (!ok)
        fprintf(stderr, "%s: %s, expected a refusal saying '%s'...\n", o->path,
                b ? "opened" : why, words[0]);
    return ok;
}

#define REFUSED(o, ...)                                                        \
    refused_saying(o, (const char *const[]){ __VA_ARGS__, NULL })

/* Opening as o says works, and the disk reads as the raw file `expect`
 * (the top image is empty, so every byte is the backing file's). */
static bool reads_as(const struct vmdev_block_options *o, const char *expect)
{
    char why[1024] = "";
    struct vmdev_block *b = vmdev_block_new(o, why, sizeof(why));
    if (!b) {
        fprintf(stderr, "%s: %s\n", o->path, why);
        return false;
    }
    size_t size = 0;
    uint8_t *want = img_load(expect, &size);
    uint8_t *got = malloc(DISK_SIZE);
    bool same = want && got && size == DISK_SIZE &&
                block_sync(b, engine, VMDEV_IO_READ, 0, got, DISK_SIZE) ==
                    DISK_SIZE &&
                memcmp(got, want, DISK_SIZE) == 0;
    if (!same)
        fprintf(stderr, "%s does not read as %s\n", o->path, expect);
    free(got);
    free(want);
    vmdev_block_free(b);
    return same;
}

static void an_absolute_name_is_refused(void)
{
    img_dir_create();
    char image[PATH_MAX], abs[PATH_MAX];
    CHECK(img_make_source("base.raw", DISK_SIZE, 1));
    CHECK(make_overlay("top.qcow2", "/etc/passwd", "raw"));
    struct vmdev_block_options o = qcow2_options("top.qcow2", image);
    CHECK(REFUSED(&o, "backing file name '/etc/passwd'", "top.qcow2",
                  "is absolute", "backing=PATH", "backing_outside=on"));
    /* Even the image's own directory, named absolutely. */
    CHECK(make_overlay("beside.qcow2", absolute("base.raw", abs), "raw"));
    o = qcow2_options("beside.qcow2", image);
    CHECK(REFUSED(&o, "is absolute", "backing_outside=on"));
    img_dir_remove();
}

static void an_allowed_absolute_name_opens(void)
{
    img_dir_create();
    char image[PATH_MAX], abs[PATH_MAX];
    CHECK(img_make_source("base.raw", DISK_SIZE, 2));
    CHECK(make_overlay("top.qcow2", absolute("base.raw", abs), "raw"));
    struct vmdev_block_options o = qcow2_options("top.qcow2", image);
    o.backing_outside = true;
    CHECK(reads_as(&o, "base.raw"));
    img_dir_remove();
}

static void a_name_climbing_out_is_refused(void)
{
    img_dir_create();
    char image[PATH_MAX];
    CHECK(img_make_source("base.raw", DISK_SIZE, 3));
    CHECK(img_sh("mkdir sub"));
    CHECK(make_overlay("sub/top.qcow2", "../base.raw", "raw"));
    struct vmdev_block_options o = qcow2_options("sub/top.qcow2", image);
    CHECK(REFUSED(&o, "backing file name '../base.raw'",
                  "leads outside the image's directory", "backing_outside=on"));
    /* In and out again, and to a file that does not exist. */
    CHECK(make_overlay("sub/back.qcow2", "./../sub/../base.raw", "raw"));
    o = qcow2_options("sub/back.qcow2", image);
    CHECK(REFUSED(&o, "leads outside"));
    CHECK(make_overlay("sub/missing.qcow2", "../../nothing.raw", "raw"));
    o = qcow2_options("sub/missing.qcow2", image);
    CHECK(REFUSED(&o, "leads outside"));
    /* Allowed, it opens. */
    o = qcow2_options("sub/top.qcow2", image);
    o.backing_outside = true;
    CHECK(reads_as(&o, "base.raw"));
    img_dir_remove();
}

/* A symbolic link beside the image, to a file outside its directory. */
static void a_link_leading_outside_is_refused(void)
{
    img_dir_create();
    char image[PATH_MAX];
    CHECK(img_make_source("base.raw", DISK_SIZE, 4));
    CHECK(img_sh("mkdir sub && ln -s ../base.raw sub/link.raw && "
                 "ln -s /etc/passwd sub/passwd"));
    CHECK(make_overlay("sub/top.qcow2", "link.raw", "raw"));
    struct vmdev_block_options o = qcow2_options("sub/top.qcow2", image);
    CHECK(REFUSED(&o, "backing file name 'link.raw'", "leads outside",
                  "base.raw", "backing_outside=on"));
    CHECK(make_overlay("sub/passwd.qcow2", "passwd", "raw"));
    o = qcow2_options("sub/passwd.qcow2", image);
    CHECK(REFUSED(&o, "leads outside", "/etc/passwd"));
    /* A link that stays inside is followed. */
    CHECK(img_sh("cp base.raw sub/real.raw && ln -s real.raw sub/alias.raw"));
    CHECK(make_overlay("sub/alias.qcow2", "alias.raw", "raw"));
    o = qcow2_options("sub/alias.qcow2", image);
    CHECK(reads_as(&o, "base.raw"));
    img_dir_remove();
}

/* Not a regular file: refused even when names may go anywhere, and never
 * opened (a FIFO would block the open). */
static void only_regular_files_even_when_allowed(void)
{
    img_dir_create();
    char image[PATH_MAX];
    CHECK(img_sh("mkdir adir && mkfifo fifo && ln -s /dev/zero zero"));
    /* Refused as kind; without backing_outside, as because. */
    static const struct {
        const char *name, *kind, *because;
    } cases[] = {
        { "adir", "is a directory, not a regular file", "is a directory" },
        { "fifo", "is a FIFO, not a regular file", "is a FIFO" },
        { "/dev/zero", "is a character device, not a regular file",
          "is absolute" },
        { "zero", "is a character device, not a regular file",
          "leads outside" },
        { "/proc/self/fd/N", "is a character device, not a regular file",
          "is absolute" },
    };
    /* A descriptor of this process on a device, named through /proc. */
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(null_fd >= 0);
    char through_proc[64];
    snprintf(through_proc, sizeof(through_proc), "/proc/self/fd/%d", null_fd);
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *name = strcmp(cases[i].name, "/proc/self/fd/N") == 0
                               ? through_proc
                               : cases[i].name;
        CHECK(img_sh("rm -f top.qcow2"));
        CHECK(make_overlay("top.qcow2", name, "raw"));
        struct vmdev_block_options o = qcow2_options("top.qcow2", image);
        o.backing_outside = true;
        CHECK(REFUSED(&o, cases[i].kind, "backing=PATH"));
        o.backing_outside = false;
        CHECK(REFUSED(&o, cases[i].because));
    }
    close(null_fd);
    img_dir_remove();
}

/* backing_file replaces the header's name; its format is the one given,
 * or the one the header names. */
static void an_explicit_backing_file_replaces_the_name(void)
{
    img_dir_create();
    char image[PATH_MAX], given[PATH_MAX];
    CHECK(img_make_source("named.raw", DISK_SIZE, 5));
    CHECK(img_make_source("given.raw", DISK_SIZE, 6));
    CHECK(make_overlay("top.qcow2", "named.raw", "raw"));
    struct vmdev_block_options o = qcow2_options("top.qcow2", image);
    CHECK(reads_as(&o, "named.raw"));
    o.backing = VMDEV_BLOCK_BACKING_EXPLICIT;
    o.backing_file = absolute("given.raw", given);
    CHECK(reads_as(&o, "given.raw"));
    o.backing_format = VMDEV_BLOCK_FORMAT_RAW;
    CHECK(reads_as(&o, "given.raw"));
    /* The user's path is not held to the rules for names, and a relative
     * one is from the current directory, not the image's. */
    CHECK(img_sh("mkdir sub && mv top.qcow2 sub/"));
    o.path = absolute("sub/top.qcow2", image);
    snprintf(given, sizeof(given), "%s", img_path("given.raw"));
    CHECK(given[0] != '/');
    CHECK(reads_as(&o, "given.raw"));
    /* An image naming a file it may not gets one it may. */
    CHECK(make_overlay("hostile.qcow2", "/etc/passwd", "raw"));
    o.path = absolute("hostile.qcow2", image);
    CHECK(reads_as(&o, "given.raw"));
    /* An image that names no backing file, no format either. */
    CHECK(img_sh("qemu-img create -q -f qcow2 plain.qcow2 %u", DISK_SIZE));
    o = qcow2_options("plain.qcow2", image);
    o.backing = VMDEV_BLOCK_BACKING_EXPLICIT;
    o.backing_file = absolute("given.raw", given);
    CHECK(REFUSED(&o, "does not say the format", "backing_format"));
    o.backing_format = VMDEV_BLOCK_FORMAT_RAW;
    CHECK(reads_as(&o, "given.raw"));
    /* A raw image has no backing file to replace. */
    o.path = given;
    o.format = VMDEV_BLOCK_FORMAT_RAW;
    CHECK(REFUSED(&o, "raw image"));
    img_dir_remove();
}

static void backing_off_refuses_an_image_naming_one(void)
{
    img_dir_create();
    char image[PATH_MAX];
    CHECK(img_make_source("base.raw", DISK_SIZE, 7));
    CHECK(make_overlay("top.qcow2", "base.raw", "raw"));
    struct vmdev_block_options o = qcow2_options("top.qcow2", image);
    o.backing = VMDEV_BLOCK_BACKING_OFF;
    CHECK(REFUSED(&o, "top.qcow2 names a backing file ('base.raw')",
                  "backing=off"));
    CHECK(img_sh("qemu-img create -q -f qcow2 plain.qcow2 %u", DISK_SIZE));
    o = qcow2_options("plain.qcow2", image);
    o.backing = VMDEV_BLOCK_BACKING_OFF;
    char why[256] = "";
    struct vmdev_block *b = vmdev_block_new(&o, why, sizeof(why));
    CHECK(b != NULL);
    vmdev_block_free(b);
    img_dir_remove();
}

/* top -> sub/mid.qcow2 (allowed) -> a name mid may not give. */
static void every_level_of_a_chain_is_checked(void)
{
    img_dir_create();
    char image[PATH_MAX], mid[PATH_MAX];
    CHECK(img_make_source("base.raw", DISK_SIZE, 8));
    CHECK(img_sh("mkdir sub"));
    CHECK(img_sh("qemu-img create -q -f qcow2 -u -b ../base.raw -F raw "
                 "sub/mid.qcow2 %u", DISK_SIZE));
    CHECK(make_overlay("top.qcow2", "sub/mid.qcow2", "qcow2"));
    struct vmdev_block_options o = qcow2_options("top.qcow2", image);
    CHECK(REFUSED(&o, "backing file name '../base.raw' in ", "mid.qcow2",
                  "leads outside"));
    /* backing_outside holds for the whole chain. */
    o.backing_outside = true;
    CHECK(reads_as(&o, "base.raw"));
    /* An explicit backing file's own chain is checked too. */
    CHECK(img_make_source("other.raw", DISK_SIZE, 9));
    CHECK(make_overlay("plain.qcow2", "other.raw", "raw"));
    o = qcow2_options("plain.qcow2", image);
    o.backing = VMDEV_BLOCK_BACKING_EXPLICIT;
    o.backing_file = absolute("sub/mid.qcow2", mid);
    o.backing_format = VMDEV_BLOCK_FORMAT_QCOW2;
    CHECK(REFUSED(&o, "'../base.raw'", "leads outside"));
    o.backing_outside = true;
    CHECK(reads_as(&o, "base.raw"));
    /* A non-regular file at the second level. */
    CHECK(img_sh("mkfifo sub/fifo && qemu-img rebase -u -f qcow2 -b fifo "
                 "-F raw sub/mid.qcow2"));
    o = qcow2_options("top.qcow2", image);
    CHECK(REFUSED(&o, "'fifo' in ", "mid.qcow2", "is a FIFO"));
    img_dir_remove();
}

/* vmdev_block_create: the caller's backing file is theirs to choose (an
 * absolute name, one outside the directory); the new image then opens
 * with backing_outside, as any image naming such a file. */
static void create_takes_the_callers_backing_file(void)
{
    img_dir_create();
    char image[PATH_MAX];
    char abs[PATH_MAX], why[1024] = "";
    CHECK(img_make_source("base.raw", DISK_SIZE, 10));
    CHECK(img_sh("mkdir sub"));
    struct vmdev_block_create_options c = {
        .path = img_path("sub/over.qcow2"),
        .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .backing_file = absolute("base.raw", abs),
        .backing_format = VMDEV_BLOCK_FORMAT_RAW,
    };
    CHECK_EQ(vmdev_block_create(&c, why, sizeof(why)), 0);
    c.path = img_path("sub/up.qcow2");
    c.backing_file = "../base.raw";
    CHECK_EQ(vmdev_block_create(&c, why, sizeof(why)), 0);
    struct vmdev_block_options o = qcow2_options("sub/over.qcow2", image);
    CHECK(REFUSED(&o, "is absolute"));
    o.backing_outside = true;
    CHECK(reads_as(&o, "base.raw"));
    o = qcow2_options("sub/up.qcow2", image);
    CHECK(REFUSED(&o, "leads outside"));
    o.backing_outside = true;
    CHECK(reads_as(&o, "base.raw"));
    img_dir_remove();
}

static void setup(void)
{
    engine = vmdev_io_engine_new(VMDEV_IO_ENGINE_AUTO, 8);
    CHECK(engine != NULL);
}

TEST_MAIN(TEST(setup), TEST(an_absolute_name_is_refused),
          TEST(an_allowed_absolute_name_opens),
          TEST(a_name_climbing_out_is_refused),
          TEST(a_link_leading_outside_is_refused),
          TEST(only_regular_files_even_when_allowed),
          TEST(an_explicit_backing_file_replaces_the_name),
          TEST(backing_off_refuses_an_image_naming_one),
          TEST(every_level_of_a_chain_is_checked),
          TEST(create_takes_the_callers_backing_file))
