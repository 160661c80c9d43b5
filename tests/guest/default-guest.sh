# Sourced: `make run`'s default guest, for boot-default.sh and the tests
# that check it (lifecycle.sh). default_guest VMM KERNEL INITRAMFS DISK
# HVC_LOG sets the array vm to its command line: the stock kernel with a
# busybox shell on the serial console (stdin and stdout), 2 CPUs, DISK as
# /dev/vda, virtio-rng and a virtio console written to HVC_LOG.
default_guest() {
    vm=("$1" --kernel "$2" --initramfs "$3"
        --cmdline "console=ttyS0 quiet vmdev.test=shell"
        --cpus 2 --memory 512M --disk "path=$4" --rng
        --console "file=$5" --serial stdio)
}
