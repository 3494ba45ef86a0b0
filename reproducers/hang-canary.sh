#!/bin/sh
# hang-canary.sh — a task that must hang, to prove the harness sees hangs.
#
# Usage: hang-canary.sh [MOUNTPOINT]     (default /mnt/test)
# Environment: CANARY_WAIT  seconds to wait before giving up (default 120)
#
# It freezes the mounted test filesystem (fsfreeze -f) and starts a background
# writer, `(echo x > MNT/canary; sync)`, whose open() blocks in
# sb_start_write() in D state.  After kernel.hung_task_timeout_secs the
# kernel's hung-task detector prints
#     INFO: task sh:NN blocked for more than N seconds.
# (7.1+: "blocked in I/O wait for more than") on the console.  The script
# then just waits, up to CANARY_WAIT seconds: the harness detects the report,
# collects evidence and thaws or reboots.  If the wait runs out, it thaws and
# exits 0.  On any exit (end of wait, error, SIGTERM/SIGINT/SIGHUP) the
# filesystem is thawed, so the blocked writer completes.
#
# Exit status: 0 waited and thawed; 2 usage/setup error (not a mountpoint,
# fsfreeze failed); 128+N killed by signal N (after thawing).

MNT=${1:-/mnt/test}
WAIT=${CANARY_WAIT:-120}
FROZEN=0
WRITER=

case $WAIT in
''|*[!0-9]*) echo "hang-canary: CANARY_WAIT must be a number of seconds, not '$WAIT'" >&2; exit 2 ;;
esac

thaw() {
	if [ "$FROZEN" = 1 ]; then
		fsfreeze -u "$MNT" 2>/dev/null && echo "hang-canary: thawed $MNT"
		FROZEN=0
	fi
}

cleanup() {
	thaw
	if [ -n "$WRITER" ]; then
		# the writer completes once the fs is thawed; give it a moment
		i=0
		while kill -0 "$WRITER" 2>/dev/null && [ $i -lt 10 ]; do
			sleep 1
			i=$((i + 1))
		done
		rm -f "$MNT/canary"
	fi
}

trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

cd / || exit 2
if ! mountpoint -q "$MNT"; then
	echo "hang-canary: $MNT is not a mountpoint" >&2
	exit 2
fi
if ! fsfreeze -f "$MNT"; then
	echo "hang-canary: fsfreeze -f $MNT failed" >&2
	exit 2
fi
FROZEN=1
echo "hang-canary: froze $MNT"

(echo x > "$MNT/canary"; sync) &
WRITER=$!
sleep 2
state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$WRITER/status" 2>/dev/null)
echo "hang-canary: writer pid $WRITER state ${state:-gone}; waiting up to $WAIT s for the hung-task report"

i=2
while [ $i -lt "$WAIT" ]; do
	sleep 1
	i=$((i + 1))
done
echo "hang-canary: waited $WAIT s; thawing"
exit 0
