/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for vmdev-run (ACPI 6.5): RSDP, XSDT, FADT, FACS, DSDT, MADT,
 * MCFG.
 * They are built in a host buffer laid out exactly as in guest memory at
 * GUEST_ACPI, then copied in with one checked write.
 */
#include "acpi.h"

#include <stdio.h>
#include <string.h>

#include "aml.h"
#include "layout.h"
#include "vmdev/pci.h"
#include "vmdev/acpi_pm.h"
#include "vmdev/rtc.h"

#define TABLES_SIZE (GUEST_ACPI_END - GUEST_ACPI)

struct builder {
    uint8_t buf[TABLES_SIZE];
    size_t len;
};

static void put(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += p[i];
    return (uint8_t)-sum;
}

/* Reserve len bytes at the given alignment; returns the offset. */
static size_t reserve(struct builder *b, size_t len, size_t align)
{
    b->len = (b->len + align - 1) & ~(align - 1);
    size_t at = b->len;
    b->len += len;
    return at;
}

static uint64_t gpa(size_t offset)
{
    return GUEST_ACPI + offset;
}

/* A table header (ACPI 6.5, 5.2.6); the length and checksum are set by
 * finish_table once the body is written. */
static size_t begin_table(struct builder *b, const char *signature,
                          uint8_t revision)
{
    size_t at = reserve(b, 36, 16);
    uint8_t *h = b->buf + at;
    memcpy(h, signature, 4);
    h[8] = revision;
    memcpy(h + 10, "VMDEV ", 6);        /* OEM id */
    memcpy(h + 16, "VMDEVRUN", 8);      /* OEM table id */
    put(h + 24, 1, 4);                  /* OEM revision */
    memcpy(h + 28, "VMDV", 4);          /* creator id */
    put(h + 32, 1, 4);                  /* creator revision */
    return at;
}

static uint8_t *append(struct builder *b, size_t len)
{
    size_t at = reserve(b, len, 1);
    return b->buf + at;
}

static void finish_table(struct builder *b, size_t at)
{
    uint8_t *h = b->buf + at;
    put(h + 4, b->len - at, 4);
    h[9] = 0;
    h[9] = checksum(h, b->len - at);
}

/* A Generic Address Structure for an I/O port register (5.2.3.2). */
static void put_gas_io(uint8_t *p, unsigned bit_width, uint16_t port,
                       unsigned access_size)
{
    p[0] = 1; /* system I/O */
    p[1] = (uint8_t)bit_width;
    p[2] = 0;
    p[3] = (uint8_t)access_size; /* 1 byte, 2 word, 3 dword */
    put(p + 4, port, 8);
}

/* Word/DWord Address Space Descriptors (ACPI 6.5, 6.4.3.5.2-3): a
 * producer range with fixed minimum and maximum. */
static size_t put_word_space(uint8_t *p, uint8_t type, uint8_t type_flags,
                             uint16_t min, uint16_t max)
{
    p[0] = 0x88;
    put(p + 1, 13, 2);
    p[3] = type; /* 1 I/O, 2 bus number */
    p[4] = 0x0c; /* _MIF and _MAF fixed, positive decode, producer */
    p[5] = type_flags;
    put(p + 6, 0, 2); /* granularity */
    put(p + 8, min, 2);
    put(p + 10, max, 2);
    put(p + 12, 0, 2); /* translation */
    put(p + 14, (uint32_t)max - min + 1, 2);
    return 16;
}

static size_t put_dword_memory(uint8_t *p, uint32_t min, uint32_t max)
{
    p[0] = 0x87;
    put(p + 1, 23, 2);
    p[3] = 0;    /* memory */
    p[4] = 0x0c; /* fixed range, producer */
    p[5] = 0x01; /* read-write, non-cacheable */
    put(p + 6, 0, 4);
    put(p + 10, min, 4);
    put(p + 14, max, 4);
    put(p + 18, 0, 4);
    put(p + 22, max - min + 1, 4);
    return 26;
}

/* QWord Address Space Descriptor (6.4.3.5.1): a 64-bit memory range. */
static size_t put_qword_memory(uint8_t *p, uint64_t min, uint64_t max)
{
    p[0] = 0x8a;
    put(p + 1, 43, 2);
    p[3] = 0;    /* memory */
    p[4] = 0x0c; /* fixed range, producer */
    p[5] = 0x03; /* read-write, cacheable: prefetchable BARs live here */
    put(p + 6, 0, 8);
    put(p + 14, min, 8);
    put(p + 22, max, 8);
    put(p + 30, 0, 8);
    put(p + 38, max - min + 1, 8);
    return 46;
}

/* The host bridge's resources: buses 0-255 (the root ports' buses), the
 * I/O space but conf1's ports (which it consumes), the 32-bit memory
 * window and the 64-bit one. */
static void build_pci_crs(struct aml *a, uint64_t mmio64_base)
{
    uint8_t r[192];
    size_t n = 0;
    n += put_word_space(r + n, 2, 0, 0, 255);
    /* I/O (Decode16, 0xcf8, 0xcf8, 1, 8): consumed by the bridge. */
    const uint8_t conf1[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
    memcpy(r + n, conf1, sizeof(conf1));
    n += sizeof(conf1);
    n += put_word_space(r + n, 1, 0x03, 0x0000, 0x0cf7);
    n += put_word_space(r + n, 1, 0x03, 0x0d00, 0xffff);
    n += put_dword_memory(r + n, (uint32_t)GUEST_PCI_MMIO,
                          (uint32_t)(GUEST_PCI_MMIO + GUEST_PCI_MMIO_SIZE - 1));
    n += put_qword_memory(r + n, mmio64_base,
                          mmio64_base + GUEST_PCI_MMIO64_SIZE - 1);
    r[n++] = 0x79; /* end tag, checksum 0 */
    r[n++] = 0x00;
    aml_name(a, "_CRS");
    aml_buffer_open(a, n);
    aml_bytes(a, r, n);
    aml_close(a);
}

/* _PRT (ACPI 6.5, 6.2.13): INTA-INTD of every slot straight to a GSI. */
static void build_pci_prt(struct aml *a)
{
    aml_name(a, "_PRT");
    aml_package_open(a, (VMDEV_PCI_SLOTS - 1) * 4);
    for (unsigned slot = 1; slot < VMDEV_PCI_SLOTS; slot++) {
        for (unsigned pin = 1; pin <= 4; pin++) {
            aml_package_open(a, 4);
            aml_dword(a, slot << 16 | 0xffff); /* any function */
            aml_integer(a, pin - 1);
            aml_integer(a, 0); /* source: a GSI, not a link device */
            aml_integer(a, pci_intx_gsi(slot, pin));
            aml_close(a);
        }
    }
    aml_close(a);
}

/*
 * The DSDT: \_S5 for ACPI poweroff (7.4.2) and the PCI Express host
 * bridge \_SB.PCI0 with its resources and interrupt routing. _OSC hands
 * every requested control to the OS by returning its capabilities
 * buffer unchanged: there is no firmware to keep any.
 */
static int build_dsdt_body(struct builder *b, uint64_t mmio64_base)
{
    struct aml a;
    aml_init(&a, b->buf + b->len, sizeof(b->buf) - b->len);

    aml_name(&a, "_S5_");
    aml_package_open(&a, 4);
    aml_integer(&a, VMDEV_ACPI_SLP_TYP_S5); /* SLP_TYPa */
    aml_integer(&a, VMDEV_ACPI_SLP_TYP_S5); /* SLP_TYPb */
    aml_integer(&a, 0);
    aml_integer(&a, 0);
    aml_close(&a);

    aml_scope_open(&a, "\\_SB_");
    aml_device_open(&a, "PCI0");
    aml_name(&a, "_HID");
    aml_eisaid(&a, "PNP0A08"); /* PCI Express root bridge */
    aml_name(&a, "_CID");
    aml_eisaid(&a, "PNP0A03"); /* PCI root bridge */
    aml_name(&a, "_SEG");
    aml_integer(&a, 0);
    aml_name(&a, "_BBN");
    aml_integer(&a, 0);
    aml_name(&a, "_UID");
    aml_integer(&a, 0);
    build_pci_crs(&a, mmio64_base);
    build_pci_prt(&a);
    aml_method_open(&a, "_OSC", 4);
    aml_return_arg(&a, 3);
    aml_close(&a);
    aml_close(&a); /* PCI0 */
    aml_close(&a); /* \_SB */

    if (a.error || a.depth) {
        fprintf(stderr, "vmdev-run: the DSDT does not fit\n");
        return -1;
    }
    b->len += a.len;
    return 0;
}

/* MCFG (PCI Firmware Specification 3.2, 4.1.2): ECAM for buses 0-255. */
static size_t build_mcfg(struct builder *b)
{
    size_t at = begin_table(b, "MCFG", 1);
    append(b, 8); /* reserved */
    uint8_t *e = append(b, 16);
    put(e, GUEST_PCI_ECAM, 8);
    put(e + 8, 0, 2); /* segment */
    e[10] = 0;        /* first bus */
    e[11] = (uint8_t)(GUEST_PCI_ECAM_SIZE / VMDEV_PCI_ECAM_BUS_SIZE - 1);
    finish_table(b, at);
    return at;
}

static size_t build_fadt(struct builder *b, size_t dsdt, size_t facs)
{
    size_t at = begin_table(b, "FACP", 6);
    uint8_t *f = append(b, 276 - 36);
    uint8_t *t = f - 36; /* offsets below are from the table start (5.2.9) */
    uint16_t pm = PORT_ACPI_PM;
    put(t + 36, 0, 4);                       /* FIRMWARE_CTRL: see X_ */
    put(t + 40, gpa(dsdt), 4);               /* DSDT */
    t[45] = 0;                               /* preferred PM profile: unspecified */
    put(t + 46, IRQ_SCI, 2);                 /* SCI_INT */
    put(t + 48, 0, 4);                       /* SMI_CMD 0: ACPI mode always on */
    put(t + 56, pm + VMDEV_ACPI_PM1_EVT_OFFSET, 4); /* PM1a_EVT_BLK */
    put(t + 64, pm + VMDEV_ACPI_PM1_CNT_OFFSET, 4); /* PM1a_CNT_BLK */
    put(t + 76, pm + VMDEV_ACPI_PM_TMR_OFFSET, 4);  /* PM_TMR_BLK */
    t[88] = VMDEV_ACPI_PM1_EVT_LEN;
    t[89] = VMDEV_ACPI_PM1_CNT_LEN;
    t[91] = VMDEV_ACPI_PM_TMR_LEN;
    put(t + 96, 101, 2);                     /* P_LVL2_LAT > 100: no C2 */
    put(t + 98, 1001, 2);                    /* P_LVL3_LAT > 1000: no C3 */
    t[108] = VMDEV_RTC_REG_CENTURY;          /* CENTURY */
    /* IAPC_BOOT_ARCH: no legacy devices to enumerate, no 8042 (so Linux
     * skips keyboard probing), VGA not present. */
    put(t + 109, 1u << 2, 2);
    /* Flags: WBINVD, PROC_C1, SLP_BUTTON (none), RESET_REG_SUP,
     * TMR_VAL_EXT (32-bit PM timer). */
    uint32_t flags = 1u << 0 | 1u << 2 | 1u << 5 | 1u << 10 | 1u << 8;
    put(t + 112, flags, 4);
    put_gas_io(t + 116, 8, pm + VMDEV_ACPI_RESET_REG_OFFSET, 1); /* RESET_REG */
    t[128] = VMDEV_ACPI_RESET_VALUE;
    put(t + 131, 0, 1);                      /* FADT minor version */
    put(t + 132, gpa(facs), 8);              /* X_FIRMWARE_CTRL */
    put(t + 140, gpa(dsdt), 8);              /* X_DSDT */
    put_gas_io(t + 148, 8 * VMDEV_ACPI_PM1_EVT_LEN, pm + VMDEV_ACPI_PM1_EVT_OFFSET, 2);
    put_gas_io(t + 172, 8 * VMDEV_ACPI_PM1_CNT_LEN, pm + VMDEV_ACPI_PM1_CNT_OFFSET, 2);
    put_gas_io(t + 208, 8 * VMDEV_ACPI_PM_TMR_LEN, pm + VMDEV_ACPI_PM_TMR_OFFSET, 3);
    finish_table(b, at);
    return at;
}

static size_t build_madt(struct builder *b, unsigned cpus)
{
    size_t at = begin_table(b, "APIC", 5);
    uint8_t *m = append(b, 8);
    put(m, GUEST_LAPIC, 4);
    put(m + 4, 1, 4); /* PCAT_COMPAT: dual 8259s are present */
    for (unsigned i = 0; i < cpus; i++) {
        uint8_t *lapic = append(b, 8); /* Processor Local APIC (5.2.12.2) */
        lapic[0] = 0;
        lapic[1] = 8;
        lapic[2] = (uint8_t)i; /* ACPI processor UID */
        lapic[3] = (uint8_t)i; /* APIC id */
        put(lapic + 4, 1, 4);  /* enabled */
    }
    uint8_t *ioapic = append(b, 12); /* I/O APIC (5.2.12.3) */
    ioapic[0] = 1;
    ioapic[1] = 12;
    ioapic[2] = 0; /* IOAPIC id */
    put(ioapic + 4, GUEST_IOAPIC, 4);
    put(ioapic + 8, 0, 4); /* GSI base */
    /* Interrupt source overrides (5.2.12.5): the PIT's IRQ0 is GSI 2; the
     * SCI is level-triggered, active high. */
    uint8_t *iso = append(b, 10);
    iso[0] = 2; iso[1] = 10; iso[2] = 0; iso[3] = 0;
    put(iso + 4, 2, 4);
    put(iso + 8, 0, 2); /* conforms to the bus: edge, active high */
    iso = append(b, 10);
    iso[0] = 2; iso[1] = 10; iso[2] = 0; iso[3] = IRQ_SCI;
    put(iso + 4, IRQ_SCI, 4);
    put(iso + 8, 0x1 | 0x3 << 2, 2); /* active high, level */
    uint8_t *nmi = append(b, 6); /* Local APIC NMI on LINT1 of every CPU */
    nmi[0] = 4; nmi[1] = 6; nmi[2] = 0xff;
    put(nmi + 3, 0, 2);
    nmi[5] = 1;
    finish_table(b, at);
    return at;
}

int vmm_build_acpi(const struct vmdev_guest_memory *mem, unsigned cpus,
                   uint64_t high_ram_end, uint64_t *rsdp_gpa)
{
    static struct builder b;
    memset(&b, 0, sizeof(b));

    size_t rsdp = reserve(&b, 36, 16);
    size_t facs = reserve(&b, 64, 64);
    memcpy(b.buf + facs, "FACS", 4);
    put(b.buf + facs + 4, 64, 4);
    b.buf[facs + 32] = 2; /* version */

    size_t dsdt = begin_table(&b, "DSDT", 2);
    if (build_dsdt_body(&b, guest_pci_mmio64_base(high_ram_end)))
        return -1;
    finish_table(&b, dsdt);
    size_t fadt = build_fadt(&b, dsdt, facs);
    size_t madt = build_madt(&b, cpus);
    size_t mcfg = build_mcfg(&b);

    size_t xsdt = begin_table(&b, "XSDT", 1);
    put(append(&b, 8), gpa(fadt), 8);
    put(append(&b, 8), gpa(madt), 8);
    put(append(&b, 8), gpa(mcfg), 8);
    finish_table(&b, xsdt);

    /* RSDP (5.2.5.3): the first checksum covers the first 20 bytes, the
     * extended one all 36. */
    uint8_t *r = b.buf + rsdp;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, "VMDEV ", 6);
    r[15] = 2; /* revision: ACPI 2.0+ */
    put(r + 20, 36, 4);
    put(r + 24, gpa(xsdt), 8);
    r[8] = checksum(r, 20);
    r[32] = checksum(r, 36);

    if (vmdev_guest_memory_write(mem, GUEST_ACPI, b.buf, b.len)) {
        fprintf(stderr, "vmdev-run: guest RAM cannot hold the ACPI tables\n");
        return -1;
    }
    *rsdp_gpa = gpa(rsdp);
    return 0;
}
