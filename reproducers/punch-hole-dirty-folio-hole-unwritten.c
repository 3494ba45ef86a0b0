/*
 * punch-hole-dirty-folio-hole-unwritten — race 2 of the seed thread: one
 * dirty folio covering a hole and then an unwritten extent.
 *
 *     |----------- dirty folio -----------|
 *     [hhhhhhhhhhhhhhhhhuuuuuuuuuuuuuuuuuu]      h: hole, u: unwritten
 *
 * Punching the hole part zeroes the partial blocks at its ends
 * (ext4_punch_hole() -> ext4_zero_partial_blocks(), or iomap_zero_range() on
 * XFS and ext4 with buffered iomap).  The folio batch skips the hole mapping,
 * so iomap_zero_range() falls back to flushing — the whole folio, including
 * the dirty part over the unwritten extent, whose writeback needs a new
 * journal handle: under ext4's running handle that deadlocks (a hang for the
 * console).  If the partial zeroing or the flush goes wrong the other way,
 * data is lost or stale bytes survive in the punched range (a MISMATCH).
 *
 * How, per iteration, with L = 64 KiB (a large folio where the fs uses them):
 *   [0,L) written and fsynced, [L,1.5L) a hole, [1.5L,2L) unwritten
 *   (fallocate KEEP_SIZE), [2L,3L) written — then make [L,2L) one dirty folio
 *   over hole+unwritten, alternately
 *     A: one buffered write of all of [L,2L) (the hole part is then delalloc,
 *        which ext4's map_blocks still reports as a hole), or
 *     B: a read of [L,2L) (readahead builds the large folio, clean) and a
 *        write of only [1.5L,2L): the folio is dirty, its hole part a real hole;
 *   then FALLOC_FL_PUNCH_HOLE|KEEP_SIZE the hole part with unaligned ends
 *   (rotating: unaligned start; unaligned start and an end a few bytes into
 *   the unwritten part; aligned start and such an end; both ends inside the
 *   hole part), and verify through the page cache and from disk;
 * then rewrite the unwritten part (dirty over unwritten again), truncate to an
 * unaligned offset inside it, pollute the bytes past the new EOF through mmap
 * (as fsx -e does) and grow the file back: the zeroing of that partial block
 * (iomap_zero_range() over a dirty folio on an unwritten extent) must leave
 * zeros, and is checked the same two ways.
 */
#define PROG_NAME "punch-hole-dirty-folio-hole-unwritten"
#define PROG_PURPOSE "punch the hole part of a dirty (large) folio that covers a hole then an unwritten extent"
#define PROG_DEFAULT_ITERS 40
#define PROG_OPTSTR ""
#define PROG_SYNOPSIS ""
#define PROG_USAGE ""

#include "common.h"

#define L (64 * 1024ull)

static struct fm *f0;

static void prog_setup(void)
{
	f0 = fm_create(0, 3 * L + blksz);
}

static void prog_teardown(void)
{
}

static void prog_iteration(long it)
{
	uint64_t bs = blksz, off, len;
	uint64_t u1 = rnd_between(1, bs - 1), u2 = rnd_between(1, bs - 1);
	int variant = it & 1, shape = (it >> 1) % 4;
	uint8_t *tmp;

	fm_note_reset(f0);
	fm_truncate(f0, 0);
	fm_write(f0, 0, L);
	fm_write(f0, 2 * L, L);
	fm_fallocate(f0, FALLOC_FL_KEEP_SIZE, L + L / 2, L / 2);
	fm_fsync(f0);
	if (variant == 0) {
		fm_write(f0, L, L);
	} else {
		posix_fadvise(f0->fd, 0, 0, POSIX_FADV_DONTNEED);
		tmp = malloc(L);
		if (!tmp)
			run_error("malloc");
		if (pread(f0->fd, tmp, L, L) != (ssize_t)L)
			run_error("pread %s", f0->name);
		free(tmp);
		fm_write(f0, L + L / 2, L / 2);
	}
	switch (shape) {
	case 0:  off = L + u1; len = L / 2 - u1; break;
	case 1:  off = L + u1; len = L / 2 + u2 - u1; break;
	case 2:  off = L; len = L / 2 + u2; break;
	default: off = L + u1; len = L / 2 - bs + u2 - u1; break;
	}
	fm_fallocate(f0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	vlog("  %s, %s\n", variant ? "read+partial write" : "one write", f0->last);
	if (fm_check(f0, CHECK_CACHED) || fm_check(f0, CHECK_DISK))
		return;

	/* then EOF inside the folio's unwritten part: pollute past it, grow back */
	fm_write(f0, L + L / 2, L / 2);
	fm_truncate(f0, L + L / 2 + rnd_between(1, L / 2 - 1));
	fm_pollute(f0, 0);
	fm_truncate(f0, 3 * L);
	vlog("  then %s\n", f0->last);
	if (fm_check(f0, CHECK_CACHED))
		return;
	fm_check(f0, CHECK_DISK);
}
