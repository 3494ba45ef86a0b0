#!/bin/sh
# Flood the serial console: LINES numbered lines through /dev/kmsg, one write each
# (the kernel prints every record on the console). Needs printk.devkmsg=on on the
# kernel command line (otherwise /dev/kmsg rate-limits each opener to 10 lines per 5 s).
# The last line says how many were written.
mnt=$1
lines=${2:-200000}
seq 1 "$lines" | sed -u 's/^/kharness-flood line /' > /dev/kmsg || exit 2
echo "<5>kharness-flood done $lines" > /dev/kmsg
echo "console-flood: wrote $lines lines"
