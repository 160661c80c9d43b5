# qcow2ro: a read-only qcow2 disk (serial vmdev-qcow2ro) over a chain of
# a qcow2 and a raw image, its top layer zstd-compressed, reads as the
# host's flattened copy and refuses writes.
. /tests/lib.sh
readonly_disk_reads vmdev-qcow2ro qcow2ro_sha256
