#!/bin/bash
# Regenerate the console fixtures: build two 6.12 kernels from Debian's linux-source-6.12,
# boot each scenario once under QEMU (TCG) and keep the serial console as tests/data/console/NAME.log.
#
#   gen/make-fixtures.sh [WORKDIR] [NAME...]      (default WORKDIR /root/fixtures; default: all)
#
# Needs /usr/src/linux-source-6.12.tar.xz, gcc, make, qemu-system-x86_64, mke2fs, gzip.
# After a run, review the findings and refresh NAME.log.expected.json (see ../README.md).
set -euo pipefail

GEN=$(cd "$(dirname "$0")" && pwd)
OUT=$(dirname "$GEN")
REPO=$(cd "$OUT/../../.." && pwd)
W=${1:-/root/fixtures}
shift || true
SRC=$W/linux-source-6.12
JOBS=${JOBS:-2}

build_kernel() {   # NAME EXTRA_FRAGMENT
    local name=$1 frag=$2 b=$W/build-$1
    [ -f "$b/arch/x86/boot/bzImage" ] && return 0
    [ -d "$SRC" ] || tar -C "$W" -xf /usr/src/linux-source-6.12.tar.xz
    mkdir -p "$b"
    make -C "$SRC" O="$b" tinyconfig >/dev/null
    "$SRC/scripts/kconfig/merge_config.sh" -m -O "$b" "$b/.config" \
        "$REPO/configs/kconfig/virtio-guest.config" "$REPO/configs/kconfig/hang-detect.config" "$frag" >/dev/null
    make -C "$SRC" O="$b" olddefconfig >/dev/null
    nice -n 10 make -C "$SRC" O="$b" -j"$JOBS" bzImage
}

build_initramfs() {   # KERNEL [MODULE]
    local k=$1 b=$W/build-$1 list=$W/initramfs-$1.list
    gcc -static -O2 -Wall -o "$W/init" "$GEN/init.c"
    {
        echo "dir /dev 755 0 0"
        echo "nod /dev/console 600 0 0 c 5 1"
        for d in proc sys mnt; do echo "dir /$d 755 0 0"; done
        echo "file /init $W/init 755 0 0"
        [ -n "${2:-}" ] && echo "file /khbug.ko $2 644 0 0"
        true
    } >"$list"
    "$b/usr/gen_init_cpio" "$list" | gzip -9 >"$W/initramfs-$k.cpio.gz"
}

build_module() {   # KERNEL -> path of khbug.ko
    local m=$W/khbug-$1
    mkdir -p "$m"
    cp "$GEN/khbug.c" "$m/"
    cp "$GEN/Makefile.khbug" "$m/Kbuild"
    [ -f "$W/build-$1/Module.symvers" ] || nice -n 10 make -C "$SRC" O="$W/build-$1" -j"$JOBS" modules >/dev/null
    make -C "$W/build-$1" M="$m" modules >/dev/null
    echo "$m/khbug.ko"
}

boot() {   # NAME KERNEL TIMEOUT SCENARIO [APPEND] [QEMU ARGS...]
    local name=$1 k=$2 t=$3 sc=$4 app=${5:-}
    shift 5 || shift $#
    rm -f "$OUT/$name.log"
    echo "boot $name ($k, ${t}s): $sc"
    # virtio-guest.config has no ACPI: one socket per CPU (the CPUs come from SeaBIOS's MP
    # table) and a trusted TSC, as kharness/vm.py boots it.
    timeout -k 5 "$t" qemu-system-x86_64 -accel tcg -m 1G -smp 2,sockets=2 -display none -monitor none -no-reboot \
        -kernel "$W/build-$k/arch/x86/boot/bzImage" -initrd "$W/initramfs-$k.cpio.gz" \
        -append "console=ttyS0 panic=-1 tsc=reliable $app KH_SCENARIO=$sc" -serial "file:$OUT/$name.log" "$@" || true
}

KERNELS=${KERNELS:-debug plain kcsan}      # which kernels to build and boot
kernel() { [[ " $KERNELS " == *" $1 "* ]]; }
want() { [ ${#NAMES[@]} -eq 0 ] || [[ " ${NAMES[*]} " == *" $1 "* ]]; }
NAMES=("$@")

if kernel debug; then
    build_kernel debug "$GEN/debug-extra.config"
    build_initramfs debug "$(build_module debug)"
fi
if kernel plain; then
    build_kernel plain "$GEN/plain-extra.config"
    build_initramfs plain
fi
if kernel kcsan; then
    build_kernel kcsan "$GEN/kcsan-extra.config"
    build_initramfs kcsan "$(build_module kcsan)"
fi

# --- debug kernel: lockdep, KASAN, KFENCE, UBSAN, kmemleak, CONFIG_PRINTK_CALLER ---------------
if kernel debug; then
want clean-boot && boot clean-boot debug 300 "msg:hello+from+init"
want lkdtm-warn && boot lkdtm-warn debug 300 \
    "lkdtm:WARNING,lkdtm:WARNING_MESSAGE,lkdtm:WARNING,lkdtm:REFCOUNT_INC_OVERFLOW,lkdtm:ARRAY_BOUNDS"
want lkdtm-oops && boot lkdtm-oops debug 300 "insmod,lkdtm:BUG,lkdtm:EXCEPTION,lkdtm:WRITE_RO,kh:gpf"
want kasan && boot kasan debug 300 \
    "lkdtm:READ_AFTER_FREE,lkdtm:WRITE_AFTER_FREE,lkdtm:SLAB_FREE_DOUBLE,lkdtm:SLAB_LINEAR_OVERFLOW,lkdtm:KFENCE_READ_AFTER_FREE" \
    "kasan_multi_shot"
want hung-task && boot hung-task debug 300 \
    "sysctl:kernel.hung_task_timeout_secs=5,&lkdtm:HUNG_TASK,sleep:32"
want softlockup && boot softlockup debug 180 "&lkdtm:SOFTLOCKUP@1,sleep:60"
want hardlockup && boot hardlockup debug 180 "&lkdtm:HARDLOCKUP@1,sleep:30"
want lockdep-circular && boot lockdep-circular debug 300 "insmod,kh:abba"
want lockdep-recursive && boot lockdep-recursive debug 300 "insmod,kh:recursive"
want lockdep-inconsistent && boot lockdep-inconsistent debug 300 "insmod,kh:inconsistent"
want lockdep-spinlockup && boot lockdep-spinlockup debug 180 "lkdtm:SPINLOCKUP,sleep:2,&lkdtm:SPINLOCKUP@1,sleep:50"
want rcu-usage && boot rcu-usage debug 300 "insmod,kh:rcu"
want atomic-sleep && boot atomic-sleep debug 300 "insmod,kh:atomic-sleep"
want kmemleak && boot kmemleak debug 300 "insmod,kh:leak,sleep:6,kmemleak:scan,sleep:2,kmemleak:scan" \
    "kmemleak.verbose=1"
want wq-lockup && boot wq-lockup debug 300 "insmod,kh:wq-hog,sleep:20" \
    "workqueue.watchdog_thresh=5 rcupdate.rcu_cpu_stall_timeout=60"

fi

# --- plain kernel: timestamps only ------------------------------------------------------------
if kernel plain; then
if want fsfreeze-hung; then
    rm -f "$W/ext4.img"
    mke2fs -q -t ext4 -F "$W/ext4.img" 32M
    boot fsfreeze-hung plain 300 \
        "sysctl:kernel.hung_task_timeout_secs=5,mount:/dev/vda:/mnt:ext4,freeze:/mnt,&write:/mnt/f,sleep:22,sysrq:w" \
        "" -drive "file=$W/ext4.img,if=virtio,format=raw"
fi
want panic-init && boot panic-init plain 120 "msg:init+is+about+to+exit,exit:1"
want lkdtm-panic && boot lkdtm-panic plain 120 "lkdtm:PANIC"
want syslog-format && boot syslog-format plain 120 "lkdtm:WARNING,lkdtm:EXCEPTION,lkdtm:BUG" \
    "console_msg_format=syslog"
want noise && boot noise plain 120 \
"kmsg:kharness:+job-start+noise-1,\
msg:WARNING:+/etc/ssh/moduli+does+not+exist+-+using+fixed+modulus,\
msg:WARNING:+CPU:+0+PID:+1+at+fake.c:1+fake_func+0x1/0x2,\
msg:BUG:+this+is+a+test+program+saying+BUG,\
msg:Modules+linked+in:,\
msg:INFO:+task+list+printed+by+a+test,\
msg:Kernel+panic+-+not+syncing:+printed+by+a+test,\
kmsg:WARNING:+this+line+was+written+to+/dev/kmsg+by+a+test,\
kmsg:Modules+linked+in:,\
sysrq:w,sysrq:l,\
kmsg:kharness:+job-end+noise-1"
fi
# --- kcsan kernel ---------------------------------------------------------------------------
if kernel kcsan; then
want kcsan && boot kcsan kcsan 300 "insmod,kh:race,sleep:2"
fi
echo done
