/*
 * zero-range-basic — the first, simple job: does FALLOC_FL_ZERO_RANGE zero
 * exactly what it is asked to, and nothing else?
 *
 * What it aims at: iomap_zero_range() (XFS; ext4 with -o buffered_iomap) and
 * ext4's own zeroing of partial blocks.  A zero range whose ends are not
 * block-aligned is done in two parts: the whole blocks in the middle are
 * unmapped or converted to unwritten extents, and the partial blocks at the
 * ends are zeroed in the page cache.  The partial-block zeroing is where the
 * iomap zero range series changed behaviour (which dirty folios over
 * unwritten/hole mappings get zeroed, flushed or skipped).
 *
 * How: per iteration, for each variation — aligned, unaligned start,
 * unaligned end, sub-block, unaligned both ends across many blocks, and a
 * range that runs past EOF (the file grows) — each once with the data still
 * dirty in the page cache and once after fsync (clean):
 *   1. write a stamped pattern over 16 blocks in one buffered write;
 *   2. fallocate(FALLOC_FL_ZERO_RANGE) the range (offsets randomised per
 *      iteration within each variation's class, from -s SEED);
 *   3. read back through the page cache, then fsync and read with O_DIRECT
 *      (POSIX_FADV_DONTNEED + buffered read where O_DIRECT is refused), and
 *      require zeros inside the range and the pattern outside it.
 * A filesystem without FALLOC_FL_ZERO_RANGE exits 77.
 */
#define PROG_NAME "zero-range-basic"
#define PROG_PURPOSE "write a pattern, FALLOC_FL_ZERO_RANGE (un)aligned ranges, verify zeros inside and data outside"
#define PROG_DEFAULT_ITERS 3
#define PROG_OPTSTR ""
#define PROG_SYNOPSIS ""
#define PROG_USAGE ""

#include "common.h"

#define NBLOCKS 16

static struct fm *f0;

static void prog_setup(void)
{
	f0 = fm_create(0, (NBLOCKS + 4) * blksz);
}

static void prog_teardown(void)
{
}

static void one_case(const char *variation, int clean, uint64_t off, uint64_t len)
{
	uint64_t size = NBLOCKS * blksz;

	fm_note_reset(f0);
	fm_truncate(f0, 0);
	fm_write(f0, 0, size);
	if (clean)
		fm_fsync(f0);
	fm_fallocate(f0, FALLOC_FL_ZERO_RANGE, off, len);
	vlog("  %s %s: zero_range(%" PRIu64 ",%" PRIu64 ")\n", variation, clean ? "clean" : "dirty",
	     off, len);
	if (fm_check(f0, CHECK_CACHED))
		return;
	fm_check(f0, CHECK_DISK);
}

static void prog_iteration(long it)
{
	uint64_t bs = blksz, size = NBLOCKS * bs;
	uint64_t a = rnd_between(1, bs - 1), b = rnd_between(1, bs - 1);
	uint64_t sub_off = rnd_between(1, bs / 2), sub_len = rnd_between(1, bs / 2 - 1);
	int clean;

	(void)it;
	for (clean = 0; clean < 2 && !mismatches; clean++) {
		struct { const char *name; uint64_t off, len; } v[] = {
			{ "aligned", 2 * bs, 3 * bs },
			{ "unaligned-start", 2 * bs + a, 3 * bs - a },
			{ "unaligned-end", 2 * bs, 3 * bs + b },
			{ "sub-block", 2 * bs + sub_off, sub_len },
			{ "unaligned-both", a, (NBLOCKS - 3) * bs + b - a },
			{ "past-eof", size - a, 2 * bs + b },
		};
		unsigned i;

		for (i = 0; i < sizeof(v) / sizeof(v[0]) && !mismatches; i++)
			one_case(v[i].name, clean, v[i].off, v[i].len);
	}
}
