/*
 * zero-range-vs-sync-range — race 3 of the seed thread: iomap_zero_range()
 * samples `range_dirty` once for the whole range, then looks up mappings.
 *
 *     | dirty folio 1  || dirty folio 2  |
 *     [uuuuuuuuuuuuuuuu][uuuuuuuuuuuuuuuu]     u: unwritten extent
 *
 * zero range (folio 1+2)               sync_file_range (folio 1)
 *   range_dirty = true
 *   ->iomap_begin: extent 1 unwritten
 *                                      writeback folio 1; on completion
 *                                      extent 1 becomes written, folio clean
 *   batch fill: folio 1 clean, not batched
 *   !batch && UNWRITTEN && range_dirty -> flush folio 1+2
 *
 * On ext4 with buffered iomap the flush runs under a journal handle and
 * deadlocks (a hang: the console reports it).  Where the fs locking does not
 * order the lookup against writeback completion, a zero range can instead
 * skip a block that writeback has just made written, leaving stale data
 * where zeros belong (a MISMATCH here).
 *
 * How, per iteration: truncate the file to 0, fallocate extent 2 [E,2E) and
 * then extent 1 [0,E) (in that order, so their physical blocks are not
 * contiguous and the two extents stay separate), E = 64 KiB; write each
 * extent with one buffered write (dirty, large folios where the fs uses
 * them); then a second thread runs sync_file_range(WRITE|WAIT_AFTER) on
 * folio 1 while this thread zeroes across both folios, rotating through:
 *   FALLOC_FL_ZERO_RANGE unaligned across the folio boundary; the same with
 *   KEEP_SIZE; FALLOC_FL_PUNCH_HOLE unaligned (partial-block zeroing);
 *   truncate down to an unaligned offset in folio 1 and back up (XFS zeroes
 *   the partial EOF block with iomap_truncate_page(), then the extension
 *   with iomap_zero_range()); the same with the new EOF in folio 2.  Before
 *   growing back, the bytes past the new EOF are polluted through mmap (as
 *   fsx -e does), so a zeroing that is skipped — the block looked unwritten,
 *   or writeback raced the lookup — leaves visible garbage, not just zeros
 *   that happen to be right.
 * Small random delays on either side move the sync across the window.
 * Then verify through the page cache and from disk (fsync + O_DIRECT).
 *
 * The race window is microseconds wide.  A debug knob of the project's
 * race-window patch, if present, delays iomap_zero_range() between its dirty
 * check and the mapping lookup: this program writes KNOB_DELAY_MS to it for
 * the run (restoring the old value at exit) and spreads the sync over twice
 * that delay.  Looked for at -k PATH, else at
 * /sys/kernel/debug/iomap_zero_range_delay_ms and
 * /sys/module/iomap/parameters/zero_range_delay_ms.
 */
#define PROG_NAME "zero-range-vs-sync-range"
#define PROG_PURPOSE "zero range across two dirty folios over unwritten extents racing sync_file_range on the first"
#define PROG_DEFAULT_ITERS 200
#define PROG_OPTSTR "k:"
#define PROG_SYNOPSIS " [-k KNOB]"
#define PROG_USAGE \
	"  -k KNOB  race-window knob (delay in ms inside iomap_zero_range) to set\n" \
	"           for the run; default: the first of\n" \
	"           /sys/kernel/debug/iomap_zero_range_delay_ms\n" \
	"           /sys/module/iomap/parameters/zero_range_delay_ms that exists\n"

#define PROG_HAS_OPTIONS	/* prog_option() below parses PROG_OPTSTR */
#include "common.h"

#define E (64 * 1024ull)
#define KNOB_DELAY_MS 1

static const char *knob_arg;
static const char *knob_defaults[] = {
	"/sys/kernel/debug/iomap_zero_range_delay_ms",
	"/sys/module/iomap/parameters/zero_range_delay_ms",
};
static char knob_path[PATH_MAX];
static char knob_orig[64];
static int knob_active;

static struct fm *f0;
static pthread_t syncer_thread;
static pthread_barrier_t barrier;
static volatile int syncer_quit;
static volatile unsigned long syncer_delay_us;

static int prog_option(int c, const char *arg)
{
	if (c != 'k')
		return -1;
	knob_arg = arg;
	return 0;
}

static int knob_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static void knob_restore(void)
{
	if (knob_active && knob_write(knob_path, knob_orig))
		fprintf(stderr, "%s: could not restore %s to %s\n", PROG_NAME, knob_path, knob_orig);
	knob_active = 0;
}

static void knob_setup(void)
{
	unsigned i, n = knob_arg ? 1 : sizeof(knob_defaults) / sizeof(knob_defaults[0]);
	char val[16];

	for (i = 0; i < n; i++) {
		const char *p = knob_arg ? knob_arg : knob_defaults[i];
		int fd = open(p, O_RDONLY);
		ssize_t r;

		if (fd < 0) {
			if (knob_arg)
				setup_error(p);
			continue;
		}
		r = read(fd, knob_orig, sizeof(knob_orig) - 1);
		close(fd);
		if (r <= 0) {
			if (knob_arg)
				setup_error(p);
			continue;
		}
		knob_orig[r] = 0;
		snprintf(knob_path, sizeof(knob_path), "%s", p);
		snprintf(val, sizeof(val), "%d\n", KNOB_DELAY_MS);
		if (knob_write(p, val)) {
			if (knob_arg)
				setup_error(p);
			printf("knob %s present but not writable (%s); running without it\n", p, strerror(errno));
			continue;
		}
		knob_active = 1;
		atexit(knob_restore);
		printf("knob %s set to %d ms for the run (was %s)\n", p, KNOB_DELAY_MS,
		       strtok(knob_orig, "\n") ? knob_orig : "");
		strcat(knob_orig, "\n");
		return;
	}
	printf("no race-window knob; relying on timing jitter\n");
}

static void *syncer(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_barrier_wait(&barrier);
		if (syncer_quit)
			return NULL;
		delay_us(syncer_delay_us);
		op_begin("sync_file_range(0, %" PRIu64 ") on %s", (uint64_t)E, f0->name);
		if (sync_file_range(f0->fd, 0, E, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER))
			run_error("sync_file_range %s", f0->name);
		op_end();
		pthread_barrier_wait(&barrier);
	}
}

static void prog_setup(void)
{
	f0 = fm_create(0, 2 * E + blksz);
	knob_setup();
	if (pthread_barrier_init(&barrier, NULL, 2) ||
	    pthread_create(&syncer_thread, NULL, syncer, NULL)) {
		errno = errno ? errno : EAGAIN;
		setup_error("start the sync_file_range thread");
	}
}

static void prog_teardown(void)
{
	syncer_quit = 1;
	pthread_barrier_wait(&barrier);
	pthread_join(syncer_thread, NULL);
	knob_restore();
}

static void prog_iteration(long it)
{
	uint64_t bs = blksz;
	uint64_t u1 = rnd_between(1, bs - 1), u2 = rnd_between(1, bs - 1);
	uint64_t zoff = E / 2 + u1, zlen = E + u2 - u1;    /* across the boundary at E */
	uint64_t t1 = E / 2 + u1, t2 = E + E / 2 + u2;      /* unaligned EOFs in folio 1 / 2 */
	unsigned long main_delay = 0;
	int op = it % 5;

	fm_note_reset(f0);
	fm_truncate(f0, 0);
	fm_fallocate(f0, 0, E, E);
	fm_fallocate(f0, 0, 0, E);
	fm_write(f0, 0, E);
	fm_write(f0, E, E);

	if (knob_active) {
		syncer_delay_us = rnd_between(0, 2000 * KNOB_DELAY_MS);
	} else if (rnd() & 1) {
		syncer_delay_us = rnd_between(0, 100);
	} else {
		syncer_delay_us = 0;
		main_delay = rnd_between(0, 100);
	}
	pthread_barrier_wait(&barrier);
	delay_us(main_delay);
	switch (op) {
	case 0:
		fm_fallocate(f0, FALLOC_FL_ZERO_RANGE, zoff, zlen);
		break;
	case 1:
		fm_fallocate(f0, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, zoff, zlen);
		break;
	case 2:
		fm_fallocate(f0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, zoff, zlen);
		break;
	case 3:
		fm_truncate(f0, t1);
		fm_pollute(f0, 0);
		fm_truncate(f0, 2 * E);
		break;
	case 4:
		fm_truncate(f0, t2);
		fm_pollute(f0, 0);
		fm_truncate(f0, 2 * E);
		break;
	}
	pthread_barrier_wait(&barrier);
	vlog("  op %d: %s; sync delay %lu us, zero delay %lu us\n", op, f0->last, syncer_delay_us, main_delay);
	if (fm_check(f0, CHECK_CACHED))
		return;
	fm_check(f0, CHECK_DISK);
}
