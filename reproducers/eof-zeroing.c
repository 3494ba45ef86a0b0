/*
 * eof-zeroing — post-EOF zeroing on size extension, polluted the way
 * fsx -e does it (fstests generic/363).
 *
 * The bytes of the EOF page (folio) beyond i_size can be written through a
 * shared mmap: the page is mapped whole, so stores past EOF land in the page
 * cache, and nothing writes them to a file offset that exists.  When the file
 * later grows — truncate up, a write beyond EOF, fallocate, zero range — the
 * filesystem must zero [old EOF, new EOF) first: XFS does it with
 * iomap_zero_range() from xfs_setattr_size()/xfs_file_write_checks(), ext4
 * with its partial-block zeroing, and pagecache_isize_extended() takes care of
 * the partial page.  The seed thread's change ("drop the flush on hole
 * mapping") relies on exactly this; generic/363 caught the XFS case where a
 * large EOF folio left a mapped, un-zeroed post-EOF block behind.
 *
 * How, per iteration (the file carries over between iterations, like fsx):
 *   1. sometimes truncate down first; keep EOF unaligned; then a third of the
 *      time rewrite data near EOF (a dirty EOF folio), a third of the time
 *      turn the last blocks into unwritten extents (ZERO_RANGE|KEEP_SIZE,
 *      reaching past EOF) and rewrite them (a dirty EOF folio over unwritten
 *      blocks: iomap_zero_range() must flush or zero it, not skip it); and
 *      half the time fsync (a clean EOF folio);
 *   2. mmap the file and fill [EOF, end of the EOF page) with "pollution"
 *      cells (stamped file id 0xeeee, so a leak reads found=pollution(...));
 *      every fourth time msync it (writeback must zero it too);
 *   3. grow the file, rotating through: truncate up; a buffered write past
 *      EOF; fallocate() past EOF; FALLOC_FL_ZERO_RANGE past EOF; fallocate
 *      KEEP_SIZE past EOF and then truncate up; ZERO_RANGE straddling EOF —
 *      by 1 byte up to 3 pages, so the new EOF may stay in the same page;
 *   4. the gap must read zeros: check through the page cache and from disk
 *      (fsync + O_DIRECT).
 * The file restarts (truncate 0, fresh data) when it passes 384 KiB.
 */
#define PROG_NAME "eof-zeroing"
#define PROG_PURPOSE "fsx -e style post-EOF mmap pollution, then grow the file six ways; the gap must read zeros"
#define PROG_DEFAULT_ITERS 60
#define PROG_OPTSTR ""
#define PROG_SYNOPSIS ""
#define PROG_USAGE ""

#include "common.h"

#define CAP (512 * 1024ull)
#define RESTART (384 * 1024ull)

static struct fm *f0;

static void prog_setup(void)
{
	f0 = fm_create(0, CAP);
}

static void prog_teardown(void)
{
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void prog_iteration(long it)
{
	uint64_t bs = blksz, size, delta, d1, k, b0, end;
	int op = it % 6, eof = rnd() % 3;

	fm_note_reset(f0);
	if (f0->size == 0 || f0->size > RESTART) {
		fm_truncate(f0, 0);
		fm_write(f0, 0, rnd_between(bs, 16 * bs));
	}
	if (rnd() % 3 == 0 && f0->size > 1)    /* truncate down first */
		fm_truncate(f0, f0->size - rnd_between(1, min_u64(f0->size - 1, 3 * bs)));
	if (f0->size % pagesz == 0)
		fm_truncate(f0, f0->size - rnd_between(1, 100));
	size = f0->size;
	if (eof == 0) {                        /* dirty EOF folio */
		k = rnd_between(1, min_u64(size, 2 * bs));
		fm_write(f0, size - k, k);
	} else if (eof == 1) {                 /* dirty EOF folio over unwritten blocks */
		b0 = (size - 1) / bs * bs;
		b0 = b0 >= bs ? b0 - bs : b0;
		end = (size + bs - 1) / bs * bs + 2 * pagesz;
		fm_fallocate(f0, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, b0, end - b0);
		fm_write(f0, b0, size - b0);
	}
	if (rnd() & 1)
		fm_fsync(f0);                  /* clean EOF folio */
	fm_pollute(f0, it % 4 == 3);

	delta = rnd_between(1, 3 * pagesz);
	d1 = rnd_between(0, delta - 1);
	switch (op) {
	case 0:
		fm_truncate(f0, size + delta);
		break;
	case 1:
		fm_write(f0, size + delta, rnd_between(1, 2 * bs));
		break;
	case 2:
		fm_fallocate(f0, 0, size + d1, delta - d1);
		break;
	case 3:
		fm_fallocate(f0, FALLOC_FL_ZERO_RANGE, size + d1, delta - d1);
		break;
	case 4:
		fm_fallocate(f0, FALLOC_FL_KEEP_SIZE, size, delta + bs);
		fm_truncate(f0, size + delta);
		break;
	default:
		k = rnd_between(1, min_u64(size, bs));
		fm_fallocate(f0, FALLOC_FL_ZERO_RANGE, size - k, k + delta);
		break;
	}
	vlog("  %s\n", f0->last);
	if (fm_check(f0, CHECK_CACHED))
		return;
	fm_check(f0, CHECK_DISK);
}
