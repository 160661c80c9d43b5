# blkro: a disk given with readonly=on is read-only to Linux and refuses writes.
. /tests/lib.sh
readonly_disk_reads vmdev-ro blkro_sha256
