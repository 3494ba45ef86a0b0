/*
 * zero-range-vs-writeback-storm — every zeroing path at once against a
 * background of writeback and reclaim, several files at a time.
 *
 * The races of the seed thread all come down to zero range looking at a
 * mapping and at the page cache at two different moments, while writeback
 * (which converts unwritten extents and cleans folios) and reclaim (which
 * drops clean folios, so a later one can start beyond EOF) move underneath.
 * This one does not aim at a single interleaving: it keeps writeback and
 * reclaim busy all the time and throws the whole mix of zeroing operations
 * at four files, so that any ordering bug between them shows up as stale
 * data, lost data, or non-zero bytes where zeros belong — or as a hang or
 * WARNING on the console.
 *
 * How: four files of up to 1 MiB.  Background threads, running the whole
 * time:
 *   - sync():     sync() every ~10 ms (syncfs() on the test fs with -D);
 *   - fdatasync:  fdatasync() of a random file every ~2 ms;
 *   - writeback:  sync_file_range(WRITE[|WAIT_AFTER]) of a random range of a
 *                 random file, continuously with short pauses;
 *   - reclaim:    echo 7 > /proc/sys/vm/drop_caches (3, silenced) every ~50 ms as root
 *                 (unless -D), else POSIX_FADV_DONTNEED of a random file every
 *                 ~5 ms.
 * The main thread does, per iteration, 24 random operations on random files:
 * buffered writes (unaligned, up to 64 KiB; some 64 KiB-aligned for large
 * folios), FALLOC_FL_ZERO_RANGE (with and without KEEP_SIZE, sometimes past
 * EOF), FALLOC_FL_PUNCH_HOLE, fallocate() of unwritten extents (with and
 * without KEEP_SIZE), truncate down/up to unaligned sizes, writes past EOF,
 * and fsx -e style mmap writes past EOF (which every later size extension
 * must zero); then verifies every file through the page cache; every fourth
 * iteration also from disk (fsync + O_DIRECT).
 */
#define PROG_NAME "zero-range-vs-writeback-storm"
#define PROG_PURPOSE "random zero/punch/fallocate/truncate/write on 4 files against sync, fdatasync, sync_file_range and drop_caches threads"
#define PROG_DEFAULT_ITERS 100
#define PROG_OPTSTR ""
#define PROG_SYNOPSIS ""
#define PROG_USAGE ""

#include "common.h"

#define NF 4
#define CAP (1024 * 1024ull)
#define OPS_PER_ITERATION 24

static struct fm *fs_[NF];
static pthread_t bg[4];
static int bg_quit;

static int quitting(void)
{
	return __atomic_load_n(&bg_quit, __ATOMIC_ACQUIRE);
}

static void *syncer(void *arg)
{
	(void)arg;
	while (!quitting()) {
		if (opt.host_friendly) {
			op_begin("syncfs");
			if (syncfs(fs_[0]->fd))
				run_error("syncfs");
			op_end();
		} else {
			op_begin("sync");
			sync();
			op_end();
		}
		delay_us(10000);
	}
	return NULL;
}

static void *fdatasyncer(void *arg)
{
	uint64_t s = opt.seed ^ 0x1111;

	(void)arg;
	while (!quitting()) {
		struct fm *f = fs_[rnd_r(&s) % NF];

		op_begin("fdatasync on %s", f->name);
		if (fdatasync(f->fd))
			run_error("fdatasync %s", f->name);
		op_end();
		delay_us(2000);
	}
	return NULL;
}

static void *range_writer(void *arg)
{
	uint64_t s = opt.seed ^ 0x2222;

	(void)arg;
	while (!quitting()) {
		struct fm *f = fs_[rnd_r(&s) % NF];
		uint64_t off = rnd_r(&s) % CAP, len = 1 + rnd_r(&s) % (256 * 1024);
		unsigned flags = SYNC_FILE_RANGE_WRITE | ((rnd_r(&s) & 1) ? SYNC_FILE_RANGE_WAIT_AFTER : 0);

		op_begin("sync_file_range(%" PRIu64 ", %" PRIu64 ") on %s", off, len, f->name);
		if (sync_file_range(f->fd, off, len, flags))
			run_error("sync_file_range %s", f->name);
		op_end();
		delay_us(rnd_r(&s) % 500);
	}
	return NULL;
}

static void *reclaimer(void *arg)
{
	uint64_t s = opt.seed ^ 0x3333;
	int global = is_root && !opt.host_friendly;

	(void)arg;
	while (!quitting()) {
		if (global) {
			if (drop_all_caches())      /* 7: silent after the first (common.h) */
				global = 0;
			delay_us(50000);
		} else {
			op_begin("fadvise(DONTNEED)");
			posix_fadvise(fs_[rnd_r(&s) % NF]->fd, 0, 0, POSIX_FADV_DONTNEED);
			op_end();
			delay_us(5000);
		}
	}
	return NULL;
}

static void prog_setup(void)
{
	void *(*fn[4])(void *) = { syncer, fdatasyncer, range_writer, reclaimer };
	int i;

	for (i = 0; i < NF; i++)
		fs_[i] = fm_create(i, CAP);
	for (i = 0; i < 4; i++)
		if (pthread_create(&bg[i], NULL, fn[i], NULL)) {
			errno = EAGAIN;
			setup_error("start a background thread");
		}
}

static void prog_teardown(void)
{
	int i;

	__atomic_store_n(&bg_quit, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 4; i++)
		pthread_join(bg[i], NULL);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void random_op(struct fm *f)
{
	uint64_t bs = blksz, off, len, size = f->size;
	int op = rnd() % 11;

	switch (op) {
	case 0:
	case 1:         /* unaligned write inside or just past EOF */
		off = rnd_between(0, min_u64(size + bs, CAP - 1));
		len = rnd_between(1, min_u64(64 * 1024, CAP - off));
		fm_write(f, off, len);
		break;
	case 2:         /* large-folio write */
		off = rnd_between(0, CAP / 65536 - 1) * 65536;
		fm_write(f, off, 65536);
		break;
	case 3:         /* zero range, maybe past EOF */
	case 4:
		off = rnd_between(0, min_u64(size + bs, CAP - 2));
		len = rnd_between(1, min_u64(128 * 1024, CAP - off));
		fm_fallocate(f, FALLOC_FL_ZERO_RANGE | ((rnd() & 1) ? FALLOC_FL_KEEP_SIZE : 0), off, len);
		break;
	case 5:         /* punch hole */
		off = rnd_between(0, min_u64(size + bs, CAP - 2));
		len = rnd_between(1, min_u64(128 * 1024, CAP - off));
		fm_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
		break;
	case 6:         /* unwritten extents, inside or past EOF */
		off = rnd_between(0, min_u64(size + 4 * bs, CAP - 2));
		len = rnd_between(1, min_u64(128 * 1024, CAP - off));
		fm_fallocate(f, (rnd() & 1) ? FALLOC_FL_KEEP_SIZE : 0, off, len);
		break;
	case 7:         /* truncate down, unaligned */
		if (size)
			fm_truncate(f, rnd_between(0, size - 1));
		break;
	case 8:         /* truncate up, unaligned */
		fm_truncate(f, rnd_between(size, min_u64(size + 16 * bs, CAP)));
		break;
	case 9:         /* post-EOF pollution through mmap (fsx -e) */
		fm_pollute(f, rnd() % 4 == 0);
		break;
	default:        /* write well past EOF: the gap must be zeroed */
		off = rnd_between(min_u64(size, CAP - 2), min_u64(size + 8 * bs, CAP - 2));
		len = rnd_between(1, min_u64(16 * 1024, CAP - off));
		fm_write(f, off, len);
		break;
	}
}

static void prog_iteration(long it)
{
	int i;

	for (i = 0; i < OPS_PER_ITERATION; i++) {
		struct fm *f = fs_[rnd() % NF];

		random_op(f);
		vlog("  %s: %s (size %" PRIu64 ")\n", f->name, f->last, f->size);
	}
	for (i = 0; i < NF; i++)
		if (fm_check(fs_[i], CHECK_CACHED))
			return;
	if (it % 4 == 3)
		for (i = 0; i < NF; i++)
			if (fm_check(fs_[i], CHECK_DISK))
				return;
}
