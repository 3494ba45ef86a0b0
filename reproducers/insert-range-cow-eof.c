/*
 * insert-range-cow-eof — race 5 of the seed thread (XFS with reflink), the
 * one Brian Foster hit as a generic/363 failure while dropping the flush for
 * hole mappings: "a large eof folio that fails to split on truncate due to
 * being dirty, COW prealloc and insert range racing with writeback ...
 * results in a mapped post-eof block on the file.  Technically that isn't the
 * end of the world so long as it is zeroed, but a subsequent zero range can
 * warn if the folio is reclaimed and we now end up with a new one that starts
 * beyond EOF, because those folios don't write back."
 *
 * The symptom to catch is either a kernel WARNING (the console's to report)
 * or a post-EOF block that is mapped but not zeroed, which shows up here as
 * stale bytes where a later extension must read zeros.
 *
 * How, per iteration, L = 256 KiB:
 *   1. f0: one buffered write of [0,L) (large folios), fsync;
 *   2. FICLONE f0 into f1: every block of f0 is now shared, so rewriting it
 *      goes through the COW fork, with speculative COW preallocation
 *      (cowextsize) beyond the written range;
 *   3. rewrite the last 64 KiB of f0 in one write: a dirty large EOF folio
 *      over shared blocks (COW delalloc);
 *   4. truncate f0 down to an unaligned offset inside that folio: the folio
 *      is dirty and cannot be split, so it stays large across the new EOF;
 *   5. a second thread starts writeback of f0 in a loop
 *      (sync_file_range(WRITE|WAIT_AFTER) and fdatasync, randomly spaced)
 *      while this thread does FALLOC_FL_INSERT_RANGE of 1..16 blocks at a
 *      block boundary below EOF (shifting the EOF block up),
 *      FALLOC_FL_ZERO_RANGE straddling the new EOF (the file grows), an
 *      mmap write of "pollution" past that EOF (as fsx -e does) and a
 *      truncate up (re-extension), which must expose zeros;
 *   6. stop the writeback thread, verify f0 through the page cache, from disk
 *      (fsync + O_DIRECT) and after dropping its cache; verify that the clone
 *      f1 still holds the original data (COW must not leak into it).
 * Without FICLONE (ext4, XFS without reflink) or FALLOC_FL_INSERT_RANGE it
 * exits 77.
 */
#define PROG_NAME "insert-range-cow-eof"
#define PROG_PURPOSE "dirty large EOF folio on shared (reflinked) blocks, truncate, insert range racing writeback, zero range"
#define PROG_DEFAULT_ITERS 40
#define PROG_OPTSTR ""
#define PROG_SYNOPSIS ""
#define PROG_USAGE ""

#include "common.h"

#define L (256 * 1024ull)
#define TAIL (64 * 1024ull)
#define CAP (L + 32 * 4096ull + 8 * 65536ull)

static struct fm *f0, *f1;
static pthread_t wb_thread;
static pthread_barrier_t barrier;
static int wb_quit, wb_run;

static void *writeback_loop(void *arg)
{
	uint64_t s = opt.seed ^ 0x9e3779b97f4a7c15ull;

	(void)arg;
	for (;;) {
		pthread_barrier_wait(&barrier);
		if (__atomic_load_n(&wb_quit, __ATOMIC_ACQUIRE))
			return NULL;
		while (__atomic_load_n(&wb_run, __ATOMIC_ACQUIRE)) {
			op_begin("writeback (sync_file_range or fdatasync) on %s", f0->name);
			if (rnd_r(&s) & 1) {
				if (sync_file_range(f0->fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER))
					run_error("sync_file_range %s", f0->name);
			} else if (fdatasync(f0->fd)) {
				run_error("fdatasync %s", f0->name);
			}
			op_end();
			delay_us(rnd_r(&s) % 150);
		}
		pthread_barrier_wait(&barrier);
	}
}

static void prog_setup(void)
{
	f0 = fm_create(0, CAP);
	f1 = fm_create(1, CAP);
	if (pthread_barrier_init(&barrier, NULL, 2) ||
	    pthread_create(&wb_thread, NULL, writeback_loop, NULL)) {
		errno = errno ? errno : EAGAIN;
		setup_error("start the writeback thread");
	}
}

static void prog_teardown(void)
{
	__atomic_store_n(&wb_quit, 1, __ATOMIC_RELEASE);
	pthread_barrier_wait(&barrier);
	pthread_join(wb_thread, NULL);
}

static void clone_f0_to_f1(void)
{
	fm_truncate(f1, 0);          /* FICLONE does not shrink a larger destination */
	op_begin("ioctl(FICLONE) %s -> %s", f0->name, f1->name);
	if (ioctl(f1->fd, FICLONE, f0->fd)) {
		if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL || errno == EXDEV)
			skip("FICLONE (reflink) is not supported on %s: %s", opt.dir, strerror(errno));
		run_error("ioctl(FICLONE) %s -> %s", f0->name, f1->name);
	}
	op_end();
	memcpy(f1->exp, f0->exp, f0->size);
	f1->size = f0->size;
	fm_note(f1, "ficlone(%s)", f0->name);
}

static void prog_iteration(long it)
{
	uint64_t bs = blksz, s, ins_off, ins_len, newsize, a, b, grow;

	(void)it;
	fm_note_reset(f0);
	fm_note_reset(f1);
	fm_truncate(f0, 0);
	fm_write(f0, 0, L);
	fm_fsync(f0);
	clone_f0_to_f1();
	fm_write(f0, L - TAIL, TAIL);
	s = L - TAIL + rnd_between(1, TAIL - 1);
	fm_truncate(f0, s);
	ins_off = (s - rnd_between(1, TAIL / 2)) / bs * bs;
	ins_len = rnd_between(1, 16) * bs;

	__atomic_store_n(&wb_run, 1, __ATOMIC_RELEASE);
	pthread_barrier_wait(&barrier);
	fm_fallocate(f0, FALLOC_FL_INSERT_RANGE, ins_off, ins_len);
	newsize = f0->size;
	a = rnd_between(1, bs);
	b = rnd_between(1, 2 * bs);
	fm_fallocate(f0, FALLOC_FL_ZERO_RANGE, newsize - a, a + b);
	grow = f0->size + rnd_between(1, 4 * bs);
	fm_pollute(f0, 0);
	fm_truncate(f0, grow);
	__atomic_store_n(&wb_run, 0, __ATOMIC_RELEASE);
	pthread_barrier_wait(&barrier);

	vlog("  %s\n", f0->last);
	if (fm_check(f0, CHECK_CACHED) || fm_check(f0, CHECK_DISK) || fm_check(f0, CHECK_DROPPED))
		return;
	if (fm_check(f1, CHECK_CACHED))
		return;
	fm_check(f1, CHECK_DISK);
}
