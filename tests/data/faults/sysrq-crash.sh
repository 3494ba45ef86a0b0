#!/bin/sh
# Crash the guest kernel: "Kernel panic - not syncing: sysrq triggered crash".
# With the harness's panic=-1 and QEMU's -no-reboot, QEMU then exits.
echo "sysrq-crash: crashing the kernel"
sync
echo 1 > /proc/sys/kernel/sysrq
echo c > /proc/sysrq-trigger
echo "sysrq-crash: still alive?" >&2
exit 1
