/* SPDX-License-Identifier: MIT */
#include "image_dir.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

void img_dir_create(void)
{
    strcpy(dir, "image-test-XXXXXX");
    if (!mkdtemp(dir))
        abort();
}

void img_dir_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        abort();
}

const char *img_path(const char *name)
{
    static char path[4][256];
    static unsigned next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    return p;
}

__attribute__((format(printf, 1, 0)))
static int run(const char *fmt, va_list ap)
{
    char cmd[1024];
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    char full[1200];
    snprintf(full, sizeof(full), "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    int rc = system(full);
    return rc >= 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool img_sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = run(fmt, ap);
    va_end(ap);
    if (status != 0) {
        char cmd[1024];
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        fprintf(stderr, "command exited %d: %s\n", status, cmd);
    }
    return status == 0;
}

int img_sh_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = run(fmt, ap);
    va_end(ap);
    return status;
}

uint8_t *img_load(const char *name, size_t *size)
{
    FILE *f = fopen(img_path(name), "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    uint8_t *data = malloc(*size ? *size : 1);
    if (data && fread(data, 1, *size, f) != *size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

uint64_t img_read_be(const char *name, uint64_t offset, unsigned width)
{
    uint8_t be[8] = { 0 };
    int fd = open(img_path(name), O_RDONLY);
    if (fd >= 0 && pread(fd, be, width, (off_t)offset) != (ssize_t)width)
        memset(be, 0, sizeof(be));
    if (fd >= 0)
        close(fd);
    uint64_t value = 0;
    for (unsigned i = 0; i < width; i++)
        value = value << 8 | be[i];
    return value;
}

bool img_patch(const char *name, uint64_t offset, uint64_t value,
               unsigned width)
{
    uint8_t be[8];
    for (unsigned i = 0; i < width; i++)
        be[i] = (uint8_t)(value >> (8 * (width - 1 - i)));
    int fd = open(img_path(name), O_WRONLY);
    bool ok = fd >= 0 && pwrite(fd, be, width, (off_t)offset) == (ssize_t)width;
    if (fd >= 0)
        close(fd);
    return ok;
}

bool img_make_source(const char *name, uint64_t size, unsigned seed)
{
    FILE *f = fopen(img_path(name), "w");
    if (!f)
        return false;
    uint8_t block[4096];
    for (unsigned b = 0; b < size / sizeof(block); b++) {
        for (unsigned i = 0; i < sizeof(block); i++)
            block[i] = (b * 7 + seed) % 5 == 0 ? 0
                                               : (uint8_t)(b * 31 + i * seed + seed);
        fwrite(block, sizeof(block), 1, f);
    }
    return fclose(f) == 0;
}
