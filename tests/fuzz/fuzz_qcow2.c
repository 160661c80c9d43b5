/* SPDX-License-Identifier: MIT */
/*
 * qcow2 images as an attacker writes them: the input is the image file.
 * qcow2_rig.h's exercise runs on it: opened read-only as qcow2 and read
 * whole through the real I/O engine, in two chunkings; then writable,
 * written, zeroed, discarded, flushed and read again; then its snapshots
 * listed, one created, applied and deleted with writes between. A
 * refusal must come with a reason, and the work and growth of the file
 * stay within the rig's bound. fuzz_qcow2_meta builds images whose
 * tables are consistent enough to get past the header checks.
 */
#include "qcow2_rig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct qcow2_rig rig;
static char image[96];

static void remove_scratch(void)
{
    unlink(image);
    rmdir(rig.dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rig.engine) {
        qcow2_rig_init(&rig, "vmdev-fuzz-qcow2");
        qcow2_rig_path(&rig, "image.qcow2", image, sizeof(image));
        atexit(remove_scratch);
    }
    FILE *f = fopen(image, "w");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f))
        abort();
    qcow2_rig_exercise(&rig, (struct vmdev_block_options){
        .path = image, .format = VMDEV_BLOCK_FORMAT_QCOW2,
        .cache = VMDEV_BLOCK_CACHE_WRITEBACK });
    return 0;
}
