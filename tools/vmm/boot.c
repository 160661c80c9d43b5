/* SPDX-License-Identifier: MIT */
/*
 * Loading Linux by the x86 boot protocol (Documentation/arch/x86/boot.rst),
 * entering the kernel at its 64-bit entry point.
 */
#include "boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"

/* Offsets in struct boot_params (the zero page) and its setup header. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_E820_ENTRIES 0x1e8
#define BP_SETUP_HEADER 0x1f1
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

#define HDR_SETUP_SECTS 0x1f1
#define HDR_VID_MODE 0x1fa
#define HDR_JUMP 0x200 /* the byte at 0x201 is the header's length - 0x202 */
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238

#define LOADFLAGS_LOADED_HIGH 0x01
#define LOADFLAGS_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01
#define MIN_BOOT_PROTOCOL 0x020c /* 2.12: xloadflags, 64-bit entry */

#define E820_RAM 1
#define E820_RESERVED 2

struct file_map {
    const uint8_t *data;
    size_t size;
};

static int map_file(const char *path, struct file_map *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "vmdev-run: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    out->size = (size_t)st.st_size;
    out->data = out->size ? mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0)
                          : NULL;
    close(fd);
    if (out->size && out->data == MAP_FAILED) {
        fprintf(stderr, "vmdev-run: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void unmap_file(struct file_map *f)
{
    if (f->size)
        munmap((void *)f->data, f->size);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void add_e820(uint8_t *zero_page, uint64_t addr, uint64_t size,
                     uint32_t type)
{
    uint8_t n = zero_page[BP_E820_ENTRIES];
    if (n == BP_E820_MAX || !size)
        return;
    uint8_t *e = zero_page + BP_E820_TABLE + 20 * n;
    put_le(e, addr, 8);
    put_le(e + 8, size, 8);
    put_le(e + 16, type, 4);
    zero_page[BP_E820_ENTRIES] = n + 1;
}

static int write_guest(const struct vmdev_guest_memory *mem, uint64_t gpa,
                       const void *data, size_t len, const char *what)
{
    if (vmdev_guest_memory_write(mem, gpa, data, len) == 0)
        return 0;
    fprintf(stderr, "vmdev-run: the %s (%zu bytes at 0x%llx) does not fit in guest RAM\n",
            what, len, (unsigned long long)gpa);
    return -1;
}

/* Identity map of the first 4 GiB with 2 MiB pages, and the boot GDT. */
static int write_page_tables_and_gdt(const struct vmdev_guest_memory *mem)
{
    uint8_t pml4[4096] = { 0 }, pdpt[4096] = { 0 }, pd[4 * 4096];
    put_le(pml4, GUEST_PDPT | 0x3, 8); /* present, writable */
    for (uint64_t i = 0; i < 4; i++)
        put_le(pdpt + 8 * i, (GUEST_PD + i * 4096) | 0x3, 8);
    for (uint64_t i = 0; i < 4 * 512; i++)
        put_le(pd + 8 * i, (i << 21) | 0x83, 8); /* present, writable, 2 MiB */

    /* Null, null, 64-bit code at selector 0x10, data at 0x18: the
     * selectors the 64-bit entry expects (__BOOT_CS, __BOOT_DS). */
    static const uint64_t gdt[4] = {
        0, 0, 0x00af9a000000ffffull, 0x00cf92000000ffffull,
    };
    return write_guest(mem, GUEST_PML4, pml4, sizeof(pml4), "PML4") ||
           write_guest(mem, GUEST_PDPT, pdpt, sizeof(pdpt), "PDPT") ||
           write_guest(mem, GUEST_PD, pd, sizeof(pd), "page directory") ||
           write_guest(mem, GUEST_GDT, gdt, sizeof(gdt), "GDT");
}

static int check_setup_header(const struct file_map *k, const char *path)
{
    if (k->size < 0x250 || memcmp(k->data + HDR_MAGIC, "HdrS", 4) != 0) {
        fprintf(stderr, "vmdev-run: --kernel '%s': not a bzImage (no HdrS header)\n",
                path);
        return -1;
    }
    unsigned version = k->data[HDR_VERSION] | k->data[HDR_VERSION + 1] << 8;
    if (version < MIN_BOOT_PROTOCOL || !(k->data[HDR_XLOADFLAGS] & XLF_KERNEL_64)) {
        fprintf(stderr, "vmdev-run: --kernel '%s': boot protocol %u.%02u without a "
                "64-bit entry point (need 2.12 and XLF_KERNEL_64)\n",
                path, version >> 8, version & 0xff);
        return -1;
    }
    return 0;
}

int vmm_load_linux(const struct vmdev_guest_memory *mem,
                   const struct vmm_boot_params *params,
                   struct vmm_boot_entry *entry)
{
    struct file_map kernel = { 0 }, initrd = { 0 };
    int ret = -1;
    if (map_file(params->kernel_path, &kernel) ||
        check_setup_header(&kernel, params->kernel_path))
        goto out;

    unsigned setup_sects = kernel.data[HDR_SETUP_SECTS] ? kernel.data[HDR_SETUP_SECTS] : 4;
    size_t setup_size = (setup_sects + 1) * 512ull;
    size_t header_end = 0x202 + kernel.data[HDR_JUMP + 1];
    if (setup_size >= kernel.size || header_end > setup_size) {
        fprintf(stderr, "vmdev-run: --kernel '%s': truncated bzImage\n",
                params->kernel_path);
        goto out;
    }
    size_t payload = kernel.size - setup_size;
    if (write_guest(mem, GUEST_KERNEL, kernel.data + setup_size, payload, "kernel"))
        goto out;

    static uint8_t zero_page[4096];
    memset(zero_page, 0, sizeof(zero_page));
    memcpy(zero_page + BP_SETUP_HEADER, kernel.data + BP_SETUP_HEADER,
           header_end - BP_SETUP_HEADER);
    zero_page[HDR_TYPE_OF_LOADER] = 0xff; /* an unregistered loader */
    zero_page[HDR_LOADFLAGS] |= LOADFLAGS_LOADED_HIGH | LOADFLAGS_CAN_USE_HEAP;
    put_le(zero_page + HDR_VID_MODE, 0xffff, 2); /* "normal" */
    put_le(zero_page + HDR_HEAP_END_PTR, 0xfe00, 2);

    size_t cmdline_len = strlen(params->cmdline);
    uint32_t cmdline_max = le32(kernel.data + HDR_CMDLINE_SIZE);
    if (cmdline_len > cmdline_max || cmdline_len >= GUEST_CMDLINE_MAX) {
        fprintf(stderr, "vmdev-run: --cmdline: %zu bytes, the kernel takes at most %u\n",
                cmdline_len, cmdline_max);
        goto out;
    }
    if (write_guest(mem, GUEST_CMDLINE, params->cmdline, cmdline_len + 1,
                    "command line"))
        goto out;
    put_le(zero_page + HDR_CMD_LINE_PTR, GUEST_CMDLINE, 4);

    if (params->initramfs_path) {
        if (map_file(params->initramfs_path, &initrd))
            goto out;
        /* As high as the kernel allows, page aligned, above the kernel. */
        uint64_t limit = (uint64_t)le32(kernel.data + HDR_INITRD_ADDR_MAX) + 1;
        if (limit > params->low_ram_end)
            limit = params->low_ram_end;
        uint64_t addr = (limit - initrd.size) & ~0xfffull;
        if (initrd.size > limit || addr < GUEST_KERNEL + payload) {
            fprintf(stderr, "vmdev-run: --initramfs '%s': %zu bytes do not fit below "
                    "0x%llx with the kernel\n", params->initramfs_path, initrd.size,
                    (unsigned long long)limit);
            goto out;
        }
        if (write_guest(mem, addr, initrd.data, initrd.size, "initramfs"))
            goto out;
        put_le(zero_page + HDR_RAMDISK_IMAGE, addr, 4);
        put_le(zero_page + HDR_RAMDISK_SIZE, initrd.size, 4);
        put_le(zero_page + BP_EXT_RAMDISK_IMAGE, addr >> 32, 4);
        put_le(zero_page + BP_EXT_RAMDISK_SIZE, (uint64_t)initrd.size >> 32, 4);
    }

    put_le(zero_page + BP_ACPI_RSDP_ADDR, params->rsdp, 8);
    add_e820(zero_page, 0, GUEST_EBDA, E820_RAM);
    add_e820(zero_page, GUEST_EBDA, 0xa0000 - GUEST_EBDA, E820_RESERVED);
    add_e820(zero_page, GUEST_ACPI, GUEST_ACPI_END - GUEST_ACPI, E820_RESERVED);
    add_e820(zero_page, GUEST_KERNEL, params->low_ram_end - GUEST_KERNEL, E820_RAM);
    /* Firmware reserves ECAM, so Linux trusts the MCFG entry. */
    add_e820(zero_page, GUEST_PCI_ECAM, GUEST_PCI_ECAM_SIZE, E820_RESERVED);
    if (params->high_ram_end > GUEST_HIGH_RAM)
        add_e820(zero_page, GUEST_HIGH_RAM, params->high_ram_end - GUEST_HIGH_RAM,
                 E820_RAM);
    if (write_guest(mem, GUEST_ZERO_PAGE, zero_page, sizeof(zero_page), "zero page") ||
        write_page_tables_and_gdt(mem))
        goto out;

    entry->rip = GUEST_KERNEL + 0x200; /* the 64-bit entry point */
    entry->zero_page = GUEST_ZERO_PAGE;
    ret = 0;
out:
    unmap_file(&kernel);
    unmap_file(&initrd);
    return ret;
}
