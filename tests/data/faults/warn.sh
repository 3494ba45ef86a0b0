#!/bin/sh
# Self-test (tests kharness, not the kernel): put a real WARNING report on the console, then go
# on working for SECONDS (default 30) and exit 0. The report is lkdtm's WARNING from
# tests/data/console/lkdtm-warn.log (6.12, captured), written line by line through /dev/kmsg
# (needs printk.devkmsg=on). With warn_is_failure the job is `warn`: at once with
# warn_action: stop, after SECONDS with warn_action: continue.
mnt=$1
seconds=${2:-30}
while IFS= read -r line; do
    printf '<4>%s\n' "$line" > /dev/kmsg
done <<'REPORT'
------------[ cut here ]------------
WARNING: CPU: 0 PID: 43 at drivers/misc/lkdtm/bugs.c:112 lkdtm_WARNING+0xc/0xf
Modules linked in:
CPU: 0 UID: 0 PID: 43 Comm: init Not tainted 6.12.117 #1 
RIP: 0010:lkdtm_WARNING+0xc/0xf
Code: 10 00 41 5c 41 5d 41 5e 41 5f e9 89 a2 90 ff 5b 5d 41 5c 41 5d 41 5e 41 5f e9 5e 04 9c ff f3 0f 1e fa ff 05 ab 78 6a 02 74 02 <0f> 0b c3 f3 0f 1e fa 41 55 b8 ff ff 37 00 45 31 c0 48 c7 c7 20 8e
RSP: 0018:ffff8880066f7d30 EFLAGS: 00000202
RAX: ffffffff817413cb RBX: ffffffff8293b5d0 RCX: ffffffff81740abf
RDX: 2000040000000000 RSI: 0000000000000000 RDI: ffffffff8293b5d8
RBP: 0000000000000007 R08: 0000000000000007 R09: 0000000000000000
R10: ffffffff8107cd81 R11: fffffbfff049d128 R12: ffffffff8293b5d0
R13: ffff8880066f7ee8 R14: ffff8880005e5be8 R15: ffff8880066f7ee8
FS:  00000000125e5380(0000) GS:ffff888036600000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 000000000047b238 CR3: 0000000006a0a000 CR4: 00000000000006b0
Call Trace:
 <TASK>
 lkdtm_do_action+0x26/0x2a
 direct_entry+0xc2/0xe9
 full_proxy_write+0x61/0x7d
 ? full_proxy_poll+0x64/0x64
 vfs_write+0x116/0x273
 ? kernel_write+0x74/0x74
 ? kmem_cache_free+0x209/0x274
 ? do_sys_openat2+0xe2/0x10c
 ? do_sys_openat2+0xe2/0x10c
 ? file_open_root+0xd6/0xd6
 ? __fget_light+0x8a/0xb4
 ksys_write+0xc6/0x115
 ? __x64_sys_read+0x40/0x40
 do_syscall_64+0x6e/0xc5
 entry_SYSCALL_64_after_hwframe+0x4b/0x53
RIP: 0033:0x439f60
Code: 40 00 48 c7 c2 b8 ff ff ff f7 d8 64 89 02 48 c7 c0 ff ff ff ff eb b7 0f 1f 00 80 3d 01 e1 06 00 00 74 17 b8 01 00 00 00 0f 05 <48> 3d 00 f0 ff ff 77 58 c3 0f 1f 80 00 00 00 00 48 83 ec 28 48 89
RSP: 002b:00007fff443d4f98 EFLAGS: 00000202 ORIG_RAX: 0000000000000001
RAX: ffffffffffffffda RBX: 0000000000000003 RCX: 0000000000439f60
RDX: 0000000000000007 RSI: 00007fff443d6f97 RDI: 0000000000000003
RBP: 00007fff443d6f97 R08: 0000000000000000 R09: 00000000004aeaa0
R10: 0000000000000000 R11: 0000000000000202 R12: 000000000047b238
R13: 000000000047b0b1 R14: 0000000000491a9d R15: 00007fff443d6f91
 </TASK>
irq event stamp: 485
hardirqs last  enabled at (493): [<ffffffff81101ad1>] __up_console_sem+0x4e/0x50
hardirqs last disabled at (500): [<ffffffff81101ab6>] __up_console_sem+0x33/0x50
softirqs last  enabled at (182): [<ffffffff81087b1e>] handle_softirqs+0x487/0x4e8
softirqs last disabled at (177): [<ffffffff81087eff>] irq_exit_rcu+0x9/0x11
---[ end trace 0000000000000000 ]---
REPORT
echo "warn: report written; working for $seconds s"
sleep "$seconds"
echo "warn: done"
