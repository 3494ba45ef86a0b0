/*
 * zero-range-clean-unwritten-dirty-neighbor — race 4 of the seed thread:
 * the range_dirty flush with no concurrent sync at all.
 *
 *     | clean folio 1  || dirty folio 2  |
 *     [uuuuuuuuuuuuuuuu][uuuuuuuuuuuuuuuu]     u: unwritten extent
 *
 * iomap_zero_range() over folio 1+2 samples range_dirty once for the whole
 * range: folio 2 makes it true.  The first mapping is unwritten extent 1,
 * whose folio is clean and so is not batched; !batch && UNWRITTEN &&
 * range_dirty -> flush of folio 1+2 — writeback of folio 2 from inside zero
 * range (on ext4 with buffered iomap: under a journal handle, a deadlock).
 * And the data must still come out right: folio 2's bytes outside the zeroed
 * range survive, the zeroed part reads zero, before and after writeback.
 *
 * How, per iteration, E = 64 KiB: truncate to 0; fallocate extent 2 [E,2E)
 * then extent 1 [0,E) (separate extents); read [0,E) so folio 1 is in the
 * page cache, clean, over unwritten blocks; make folio 2 dirty — over its
 * unwritten extent, or (every third iteration) over a written extent: write,
 * fsync, write a new generation.  Then zero across both folios, rotating
 * through FALLOC_FL_ZERO_RANGE, ZERO_RANGE|KEEP_SIZE and PUNCH_HOLE|KEEP_SIZE
 * with unaligned ends, and a truncate to an unaligned offset in folio 2
 * followed by extension back to 2E (with the bytes past the short EOF
 * polluted through mmap in between, as fsx -e does, so a skipped zeroing
 * shows).  Verify through the page cache, after
 * fsync from disk (O_DIRECT), and after dropping the caches (echo 7 >
 * /proc/sys/vm/drop_caches as root unless -D, else POSIX_FADV_DONTNEED) read
 * back through a fresh page cache.
 */
#define PROG_NAME "zero-range-clean-unwritten-dirty-neighbor"
#define PROG_PURPOSE "zero range over a clean folio on unwritten blocks and its dirty neighbour folio"
#define PROG_DEFAULT_ITERS 40
#define PROG_OPTSTR ""
#define PROG_SYNOPSIS ""
#define PROG_USAGE ""

#include "common.h"

#define E (64 * 1024ull)

static struct fm *f0;
static uint8_t *tmp;

static void prog_setup(void)
{
	f0 = fm_create(0, 2 * E + blksz);
	tmp = malloc(E);
	if (!tmp)
		setup_error("malloc");
}

static void prog_teardown(void)
{
}

static void prog_iteration(long it)
{
	uint64_t bs = blksz;
	uint64_t u1 = rnd_between(1, bs - 1), u2 = rnd_between(1, bs - 1);
	uint64_t zoff = E / 2 + u1, zlen = E + u2 - u1, t = E + E / 2 + u2;
	int written = it % 3 == 2, op = it % 4;

	fm_note_reset(f0);
	fm_truncate(f0, 0);
	fm_fallocate(f0, 0, E, E);
	fm_fallocate(f0, 0, 0, E);
	if (written) {
		fm_write(f0, E, E);
		fm_fsync(f0);
	}
	posix_fadvise(f0->fd, 0, 0, POSIX_FADV_DONTNEED);
	if (pread(f0->fd, tmp, E, 0) != (ssize_t)E)       /* clean folio 1 over unwritten */
		run_error("pread %s", f0->name);
	fm_write(f0, E, E);                                /* dirty folio 2 */
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
	default:
		fm_truncate(f0, t);
		fm_pollute(f0, 0);
		fm_truncate(f0, 2 * E);
		break;
	}
	vlog("  folio 2 over %s extent: %s\n", written ? "written" : "unwritten", f0->last);
	if (fm_check(f0, CHECK_CACHED) || fm_check(f0, CHECK_DISK))
		return;
	fm_check(f0, CHECK_DROPPED);
}
