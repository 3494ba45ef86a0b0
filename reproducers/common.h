/* SPDX-License-Identifier: GPL-2.0 */
/*
 * common.h — shared by every reproducer: included once, after the file's PROG_*
 * defines (PROG_NAME, PROG_PURPOSE, PROG_DEFAULT_ITERS, PROG_OPTSTR, ...).
 */
#ifndef KHARNESS_REPRO_COMMON_H
#define KHARNESS_REPRO_COMMON_H

/*
 * Options, exit codes, data stamping, the in-memory model of every file's
 * expected content, the checks and the MISMATCH report.
 *
 * Stamping: a file is written in 32-byte cells; each cell carries a magic, the
 * file id, the cell's file offset, the write's generation and a checksum (all
 * XORed with 0xA5 so that no field reads as zeros).  Every write gets a new
 * generation, so a mismatch names what was found instead of the expected bytes:
 *   zero                          the bytes read as zeros
 *   stale(file=F,off=O,gen=G)     an older (or un-zeroed) write of this very place
 *   misplaced(file=F,off=O,gen=G) a valid cell that belongs to another place/file
 *   pollution(off=O,gen=G)        bytes a reproducer wrote past EOF via mmap
 *   garbage(hex=...)              anything else
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define EXIT_PASS 0
#define EXIT_MISMATCH 1
#define EXIT_USAGE 2
#define EXIT_ERROR 3
#define EXIT_SKIP 77

#define CELL 32u
#define MAGIC 0x525a484bu            /* "KHZR" */
#define POLLUTE_ID 0xeeeeu           /* file id stamped into post-EOF pollution */
#define MAX_FILES 16
#define MAX_RUNS 8                   /* MISMATCH lines printed per check */
#define MAYBE_UNUSED __attribute__((unused))

static struct {
	const char *dir;
	long iters;                  /* < 0: no limit */
	double seconds;              /* <= 0: no limit */
	uint64_t seed;
	int verbose, inject, host_friendly;
} opt = { ".", -1, 0, 0, 0, 0, 0 };

static char workdir[PATH_MAX - 32];
static volatile sig_atomic_t stop_signal;
static long iterations_done;
static double t_start;
static int mismatches;               /* runs reported so far */
static int injected;                 /* -X corruption already written */
static uint64_t rng_state;
static unsigned long blksz = 4096, pagesz = 4096;
static int is_root;

static void prog_setup(void);
static void prog_iteration(long it);
static void prog_teardown(void);
static int prog_option(int c, const char *arg);

#ifndef PROG_HAS_OPTIONS
/* A reproducer without options of its own: every option beyond the common ones is an error. */
static int prog_option(int c, const char *arg)
{
	(void)c;
	(void)arg;
	return -1;
}
#endif

static MAYBE_UNUSED double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- exits ---- */

static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER;

static MAYBE_UNUSED __attribute__((noreturn)) void finish(int code)
{
	static int finishing;

	pthread_mutex_lock(&exit_lock);
	if (finishing) {             /* another thread is already exiting */
		pthread_mutex_unlock(&exit_lock);
		for (;;)
			pause();
	}
	finishing = 1;
	pthread_mutex_unlock(&exit_lock);
	printf("iterations=%ld seconds=%.3f\n", iterations_done, now() - t_start);
	fflush(stdout);
	fflush(stderr);
	exit(code);
}

static MAYBE_UNUSED __attribute__((noreturn)) void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", PROG_NAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try -h)\n");
	exit(EXIT_USAGE);
}

/* a setup step failed (before the first iteration): status 2 */
static MAYBE_UNUSED __attribute__((noreturn)) void setup_error(const char *what)
{
	fprintf(stderr, "%s: setup: %s: %s\n", PROG_NAME, what, strerror(errno));
	exit(EXIT_USAGE);
}

static MAYBE_UNUSED __attribute__((noreturn)) void skip(const char *fmt, ...)
{
	va_list ap;

	printf("SKIP: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fprintf(stderr, "SKIP: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	finish(EXIT_SKIP);
}

/* an operation failed mid-run for an unexpected reason (EIO, ENOSPC...): status 3 */
static MAYBE_UNUSED __attribute__((noreturn)) void run_error(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	fprintf(stderr, "ERROR: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s (iteration %ld)\n", strerror(e), iterations_done + 1);
	finish(EXIT_ERROR);
}

static MAYBE_UNUSED void vlog(const char *fmt, ...)
{
	va_list ap;

	if (!opt.verbose)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

/* ---- random numbers (xorshift64*) ---- */

/*
 * ---- progress heartbeat ----
 * With $KHARNESS_PROGRESS set (the harness's run-job sets it), a thread prints once a
 * second on stderr:
 *   kharness-progress t=SECONDS iterations=N ops=M in_flight=SECONDS op=OPERATION
 * where op is the operation in flight the longest (any thread) and in_flight how long it
 * has been running.  The harness calls a job hung when in_flight passes the manifest's
 * `progress` bound, or when the lines stop: a task spinning in the kernel reports no
 * hung task, but it does stop this.  Operations are marked with op_begin()/op_end().
 */
#define OP_SLOTS 16
static struct { char op[112]; double since; int busy; } op_slot[OP_SLOTS];
static pthread_mutex_t op_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long ops_done;
static int op_slots_used;
static __thread int my_op_slot = -1;

static MAYBE_UNUSED __attribute__((format(printf, 1, 2))) void op_begin(const char *fmt, ...)
{
	char op[112];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(op, sizeof(op), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&op_lock);
	if (my_op_slot < 0)
		my_op_slot = op_slots_used < OP_SLOTS ? op_slots_used++ : OP_SLOTS - 1;
	memcpy(op_slot[my_op_slot].op, op, sizeof(op));
	op_slot[my_op_slot].since = now();
	op_slot[my_op_slot].busy = 1;
	pthread_mutex_unlock(&op_lock);
}

static MAYBE_UNUSED void op_end(void)
{
	pthread_mutex_lock(&op_lock);
	if (my_op_slot >= 0)
		op_slot[my_op_slot].busy = 0;
	ops_done++;
	pthread_mutex_unlock(&op_lock);
}

static void *heartbeat(void *arg)
{
	struct timespec second = { 1, 0 };

	(void)arg;
	for (;;) {
		char op[112] = "-";
		double t = now(), oldest = 0;
		unsigned long ops;
		int i;

		pthread_mutex_lock(&op_lock);
		for (i = 0; i < op_slots_used; i++)
			if (op_slot[i].busy && t - op_slot[i].since > oldest) {
				oldest = t - op_slot[i].since;
				memcpy(op, op_slot[i].op, sizeof(op));
			}
		ops = ops_done;
		pthread_mutex_unlock(&op_lock);
		fprintf(stderr, "kharness-progress t=%.1f iterations=%ld ops=%lu in_flight=%.1f op=%s\n",
			t - t_start, iterations_done, ops, oldest, op);
		nanosleep(&second, NULL);
	}
	return NULL;
}

static MAYBE_UNUSED void start_heartbeat(void)
{
	pthread_t t;

	if (getenv("KHARNESS_PROGRESS") && !pthread_create(&t, NULL, heartbeat, NULL))
		pthread_detach(t);
}

static MAYBE_UNUSED uint64_t rnd_r(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static MAYBE_UNUSED uint64_t rnd(void)
{
	return rnd_r(&rng_state);
}

/* uniform in [lo, hi] */
static MAYBE_UNUSED uint64_t rnd_between(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

/* busy-wait (short) or sleep (long) for usec microseconds */
static MAYBE_UNUSED void delay_us(unsigned long usec)
{
	if (usec >= 200) {
		struct timespec ts = { usec / 1000000, (usec % 1000000) * 1000 };

		nanosleep(&ts, NULL);
	} else {
		double end = now() + usec / 1e6;

		while (now() < end)
			;
	}
}

/* ---- cells ---- */

static MAYBE_UNUSED uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static MAYBE_UNUSED void cell_make(uint8_t c[CELL], uint32_t file, uint64_t off, uint32_t gen)
{
	uint64_t h = mix64((((uint64_t)file << 32) | gen) ^ mix64(off + 1));
	uint32_t magic = MAGIC, sum = (uint32_t)h;
	uint64_t fill = mix64(h);
	unsigned i;

	memcpy(c + 0, &magic, 4);
	memcpy(c + 4, &file, 4);
	memcpy(c + 8, &off, 8);
	memcpy(c + 16, &gen, 4);
	memcpy(c + 20, &sum, 4);
	memcpy(c + 24, &fill, 8);
	for (i = 0; i < CELL; i++)
		c[i] ^= 0xa5;
}

static MAYBE_UNUSED int cell_decode(const uint8_t *in, uint32_t *file, uint64_t *off, uint32_t *gen)
{
	uint8_t c[CELL], ref[CELL];
	uint32_t magic;
	unsigned i;

	for (i = 0; i < CELL; i++)
		c[i] = in[i] ^ 0xa5;
	memcpy(&magic, c, 4);
	if (magic != MAGIC)
		return 0;
	memcpy(file, c + 4, 4);
	memcpy(off, c + 8, 8);
	memcpy(gen, c + 16, 4);
	cell_make(ref, *file, *off, *gen);
	return memcmp(ref, in, CELL) == 0;
}

/* the stamped bytes of [off, off+len) of file `file`, generation `gen` */
static MAYBE_UNUSED void fill_pattern(uint8_t *buf, uint32_t file, uint64_t off, size_t len, uint32_t gen)
{
	uint64_t pos = off, end = off + len;
	uint8_t c[CELL];

	while (pos < end) {
		uint64_t cstart = pos & ~(uint64_t)(CELL - 1);
		uint64_t n = cstart + CELL - pos;

		if (n > end - pos)
			n = end - pos;
		cell_make(c, file, cstart, gen);
		memcpy(buf + (pos - off), c + (pos - cstart), n);
		pos += n;
	}
}

/* ---- the file model ---- */

struct fm {
	char name[16];               /* f0, f1... as printed in MISMATCH lines */
	char path[PATH_MAX];
	int fd;
	uint32_t id;
	uint32_t gen;                /* generation of the latest write */
	uint8_t *exp;                /* expected content; bytes >= size are zero */
	uint8_t *rbuf;               /* read buffer, page aligned */
	uint64_t size, cap;
	char last[256];              /* the latest operations, for MISMATCH lines */
};

static struct fm *files[MAX_FILES];
static int nfiles;
static uint32_t pollute_gen;         /* generation of the latest pollution */
static uint32_t gen_hi;              /* highest generation of any file */

/* append an operation to f->last ("a+b+c"), dropping the oldest ones when full */
static MAYBE_UNUSED void fm_note(struct fm *f, const char *fmt, ...)
{
	char op[128], *cut;
	size_t have = strlen(f->last), add;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(op, sizeof(op), fmt, ap);
	va_end(ap);
	add = strlen(op) + (have ? 1 : 0);
	while (have && have + add >= sizeof(f->last)) {
		cut = strchr(f->last, '+');
		if (!cut) {
			have = 0;
			f->last[0] = 0;
			break;
		}
		memmove(f->last, cut + 1, strlen(cut + 1) + 1);
		have = strlen(f->last);
	}
	snprintf(f->last + have, sizeof(f->last) - have, "%s%s", have ? "+" : "", op);
}

static MAYBE_UNUSED void fm_note_reset(struct fm *f)
{
	f->last[0] = 0;
}

static MAYBE_UNUSED struct fm *fm_create(uint32_t id, uint64_t cap)
{
	struct fm *f = calloc(1, sizeof(*f));

	if (!f || nfiles >= MAX_FILES)
		setup_error("too many files");
	f->id = id;
	f->cap = cap;
	snprintf(f->name, sizeof(f->name), "f%u", id);
	snprintf(f->path, sizeof(f->path), "%s/%s", workdir, f->name);
	f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (f->fd < 0)
		setup_error(f->path);
	f->exp = calloc(1, cap + CELL);
	if (!f->exp || posix_memalign((void **)&f->rbuf, 4096, cap + 2 * 65536))
		setup_error("out of memory");
	fm_note(f, "create");
	files[nfiles++] = f;
	return f;
}

static MAYBE_UNUSED void check_cap(struct fm *f, uint64_t end, const char *op)
{
	if (end > f->cap) {
		fprintf(stderr, "%s: internal error: %s on %s ends at %" PRIu64 " > capacity %" PRIu64 "\n",
			PROG_NAME, op, f->name, end, f->cap);
		finish(EXIT_ERROR);
	}
}

static MAYBE_UNUSED void pwrite_all(struct fm *f, const uint8_t *buf, uint64_t off, uint64_t len)
{
	while (len) {
		ssize_t n;

		op_begin("write(%" PRIu64 ", %" PRIu64 ") on %s", off, len, f->name);
		n = pwrite(f->fd, buf, len, off);
		op_end();

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			run_error("pwrite %s offset=%" PRIu64 " len=%" PRIu64, f->name, off, len);
		buf += n;
		off += n;
		len -= n;
	}
}

/* buffered write of freshly stamped data (new generation) */
static MAYBE_UNUSED void fm_write(struct fm *f, uint64_t off, uint64_t len)
{
	uint8_t *buf;

	check_cap(f, off + len, "write");
	buf = malloc(len ? len : 1);
	if (!buf)
		run_error("malloc");
	if (++f->gen > gen_hi)
		gen_hi = f->gen;
	fill_pattern(buf, f->id, off, len, f->gen);
	pwrite_all(f, buf, off, len);
	memcpy(f->exp + off, buf, len);
	if (off + len > f->size)
		f->size = off + len;
	free(buf);
	fm_note(f, "write(%" PRIu64 ",%" PRIu64 ",gen=%u)", off, len, f->gen);
}

static MAYBE_UNUSED void fm_truncate(struct fm *f, uint64_t size)
{
	check_cap(f, size, "truncate");
	op_begin("truncate(%" PRIu64 ") on %s", size, f->name);
	if (ftruncate(f->fd, size))
		run_error("ftruncate %s %" PRIu64, f->name, size);
	op_end();
	if (size < f->size)
		memset(f->exp + size, 0, f->size - size);
	f->size = size;
	fm_note(f, "truncate(%" PRIu64 ")", size);
}

static MAYBE_UNUSED const char *falloc_name(int mode)
{
	switch (mode) {
	case 0: return "fallocate";
	case FALLOC_FL_KEEP_SIZE: return "fallocate_keep_size";
	case FALLOC_FL_ZERO_RANGE: return "zero_range";
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE: return "zero_range_keep_size";
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: return "punch_hole";
	case FALLOC_FL_INSERT_RANGE: return "insert_range";
	case FALLOC_FL_COLLAPSE_RANGE: return "collapse_range";
	default: return "fallocate(?)";
	}
}

/* fallocate with the model's idea of what it does; EOPNOTSUPP is a SKIP */
static MAYBE_UNUSED void fm_fallocate(struct fm *f, int mode, uint64_t off, uint64_t len)
{
	uint64_t end = off + len, zend;

	check_cap(f, (mode & FALLOC_FL_INSERT_RANGE) ? f->size + len : end, falloc_name(mode));
	op_begin("%s(%" PRIu64 ", %" PRIu64 ") on %s", falloc_name(mode), off, len, f->name);
	if (fallocate(f->fd, mode, off, len)) {
		if (errno == EOPNOTSUPP)
			skip("fallocate(%s) is not supported on %s", falloc_name(mode), opt.dir);
		run_error("fallocate(%s) %s offset=%" PRIu64 " len=%" PRIu64, falloc_name(mode), f->name, off, len);
	}
	op_end();
	if (mode & FALLOC_FL_INSERT_RANGE) {
		memmove(f->exp + off + len, f->exp + off, f->size - off);
		memset(f->exp + off, 0, len);
		f->size += len;
	} else if (mode & FALLOC_FL_COLLAPSE_RANGE) {
		memmove(f->exp + off, f->exp + end, f->size - end);
		memset(f->exp + f->size - len, 0, len);
		f->size -= len;
	} else {
		if (mode & (FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE)) {
			zend = end < f->size ? end : f->size;
			if (off < zend)
				memset(f->exp + off, 0, zend - off);
		}
		if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f->size)
			f->size = end;   /* exp beyond the old size is already zero */
	}
	fm_note(f, "%s(%" PRIu64 ",%" PRIu64 ")", falloc_name(mode), off, len);
}

static MAYBE_UNUSED void fm_fsync(struct fm *f)
{
	op_begin("fsync on %s", f->name);
	if (fsync(f->fd))
		run_error("fsync %s", f->name);
	op_end();
}

/*
 * fsx -e style post-EOF pollution: fill [EOF, end of the EOF page) through a
 * shared mapping with cells stamped POLLUTE_ID.  Those bytes are not part of
 * the file (the model does not change); whatever later grows the file must
 * zero them.  With do_msync the dirty page is also written back (writeback
 * must zero the post-EOF part too).
 */
static MAYBE_UNUSED void fm_pollute(struct fm *f, int do_msync)
{
	uint64_t size = f->size, maplen = (size + pagesz - 1) / pagesz * pagesz;
	uint8_t *map;

	if (maplen == size)
		return;
	op_begin("pollute(%" PRIu64 "%s) on %s", size, do_msync ? ", msync" : "", f->name);
	map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (map == MAP_FAILED)
		run_error("mmap %s", f->name);
	fill_pattern(map + size, POLLUTE_ID, size, maplen - size, ++pollute_gen);
	if (do_msync && msync(map, maplen, MS_SYNC))
		run_error("msync %s", f->name);
	if (munmap(map, maplen))
		run_error("munmap %s", f->name);
	op_end();
	fm_note(f, "pollute(%" PRIu64 "%s)", size, do_msync ? ",msync" : "");
}

/*
 * echo 7 > /proc/sys/vm/drop_caches: drop the page cache and slab (3) and set bit 4, which
 * stops the kernel's "drop_caches: N" line after the first (drop_caches_sysctl_handler(),
 * fs/drop_caches.c: stfu).  Returns 0 when the write took.
 */
static MAYBE_UNUSED int drop_all_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	op_begin("drop_caches");
	n = write(fd, "7\n", 2);
	op_end();
	close(fd);
	return n == 2 ? 0 : -1;
}

/* drop this file's clean page cache: globally if allowed, else POSIX_FADV_DONTNEED */
static MAYBE_UNUSED void drop_caches_for(struct fm *f)
{
	if (is_root && !opt.host_friendly && drop_all_caches() == 0)
		return;
	op_begin("fadvise(DONTNEED) on %s", f->name);
	posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
	op_end();
}

/* ---- checks ---- */

static MAYBE_UNUSED int all_zero(const uint8_t *p, uint64_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

/*
 * Name the bytes buf[s, e) (e within the cell of s).  `expected` selects the
 * wording: "data(...)" for the model, stale/misplaced for what was read.
 */
static MAYBE_UNUSED void describe(char *out, size_t outsz, const uint8_t *buf, uint64_t buflen,
		     uint64_t s, uint64_t e, const struct fm *f, int expected)
{
	uint64_t c = s & ~(uint64_t)(CELL - 1);
	uint32_t file = 0, gen = 0, ids[3] = { f->id, POLLUTE_ID, 0 }, maxgen, g;
	uint64_t off = 0;
	uint8_t ref[CELL];
	int found = 0, k;

	if (all_zero(buf + s, e - s)) {
		snprintf(out, outsz, "zero");
		return;
	}
	if (c + CELL <= buflen && cell_decode(buf + c, &file, &off, &gen))
		found = 1;
	maxgen = (gen_hi > pollute_gen ? gen_hi : pollute_gen) + 1;
	for (k = 0; !found && k < (f->id ? 3 : 2); k++)
		for (g = 0; g <= maxgen; g++) {
			cell_make(ref, ids[k], c, g);
			if (!memcmp(ref + (s - c), buf + s, e - s)) {
				file = ids[k], off = c, gen = g, found = 1;
				break;
			}
		}
	if (!found) {
		char hex[40] = "";
		unsigned i;

		for (i = 0; i < 8 && s + i < e; i++)
			sprintf(hex + 2 * i, "%02x", buf[s + i]);
		snprintf(out, outsz, "garbage(hex=%s)", hex);
	} else if (file == POLLUTE_ID) {
		snprintf(out, outsz, "pollution(off=%" PRIu64 ",gen=%u)", off, gen);
	} else {
		const char *label = expected ? "data" :
			(file == f->id && off == c) ? "stale" : "misplaced";

		snprintf(out, outsz, "%s(file=%u,off=%" PRIu64 ",gen=%u)", label, file, off, gen);
	}
}

/* the first cell segment of [s, e) whose bytes are not all zero, or s's */
static MAYBE_UNUSED uint64_t first_nonzero_seg(const uint8_t *buf, uint64_t s, uint64_t e, uint64_t *seg_end)
{
	uint64_t p = s;

	while (p < e) {
		uint64_t ce = (p & ~(uint64_t)(CELL - 1)) + CELL;

		if (ce > e)
			ce = e;
		if (!all_zero(buf + p, ce - p)) {
			*seg_end = ce;
			return p;
		}
		p = ce;
	}
	*seg_end = (s & ~(uint64_t)(CELL - 1)) + CELL < e ? (s & ~(uint64_t)(CELL - 1)) + CELL : e;
	return s;
}

static MAYBE_UNUSED void report(struct fm *f, const uint8_t *act, uint64_t actlen, uint64_t s, uint64_t e,
		   const char *check)
{
	char ex[96], fo[96];
	uint64_t ss, se;

	if (all_zero(f->exp + s, e - s)) {
		snprintf(ex, sizeof(ex), "zero");
	} else {
		ss = first_nonzero_seg(f->exp, s, e, &se);
		describe(ex, sizeof(ex), f->exp, f->size, ss, se, f, 1);
	}
	if (all_zero(act + s, e - s)) {
		snprintf(fo, sizeof(fo), "zero");
	} else {
		ss = first_nonzero_seg(act, s, e, &se);
		describe(fo, sizeof(fo), act, actlen, ss, se, f, 0);
	}
	fprintf(stderr, "MISMATCH file=%s offset=%" PRIu64 " len=%" PRIu64 " expected=%s found=%s"
		" check=%s iteration=%ld after=%s\n", f->name, s, e - s, ex, fo, check,
		iterations_done + 1, f->last);
}

/* compare act[0, n) with the model; print one MISMATCH line per differing run */
static MAYBE_UNUSED int compare(struct fm *f, const uint8_t *act, uint64_t actlen, uint64_t n, const char *check)
{
	uint64_t i = 0;
	int runs = 0;

	while (i < n) {
		uint64_t chunk = ((i + 4096) & ~4095ull) - i, s, last, c;

		if (chunk > n - i)
			chunk = n - i;
		if (!memcmp(act + i, f->exp + i, chunk)) {
			i += chunk;
			continue;
		}
		while (act[i] == f->exp[i])
			i++;
		s = last = i;
		/* extend over consecutive cells that differ anywhere */
		for (c = s & ~(uint64_t)(CELL - 1); c < n; c += CELL) {
			uint64_t j = c > s ? c : s, ce = c + CELL < n ? c + CELL : n;
			int diff = 0;

			for (; j < ce; j++)
				if (act[j] != f->exp[j])
					diff = 1, last = j;
			if (!diff)
				break;
		}
		if (runs < MAX_RUNS)
			report(f, act, actlen, s, last + 1, check);
		else if (runs == MAX_RUNS)
			fprintf(stderr, "MISMATCH file=%s: more differing runs not shown\n", f->name);
		runs++;
		i = last + 1;
	}
	return runs;
}

/* -X: write a stale cell where the model expects zeros (else over old data) */
static MAYBE_UNUSED void inject_corruption(struct fm *f)
{
	uint64_t p, len = CELL;
	uint8_t c[CELL];
	uint32_t gen = f->gen;

	for (p = 0; p + CELL <= f->size; p += CELL)
		if (all_zero(f->exp + p, CELL))
			break;
	if (p + CELL > f->size) {
		for (p = 0; p < f->size && f->exp[p]; p++)
			;
		if (p < f->size) {       /* a short zero run */
			for (len = 0; p + len < f->size && len < CELL && !f->exp[p + len]; len++)
				;
		} else {                 /* no zeros at all: an older generation */
			p = (f->size / 2) & ~(uint64_t)(CELL - 1);
			gen = f->gen ? f->gen - 1 : f->gen + 1000;
			if (p + len > f->size)
				len = f->size - p;
		}
	}
	if (!len || !f->size)
		return;
	cell_make(c, f->id, p & ~(uint64_t)(CELL - 1), gen);
	if (pwrite(f->fd, c + (p & (CELL - 1)), len, p) != (ssize_t)len)
		run_error("pwrite (inject) %s", f->name);
	fprintf(stderr, "INJECT file=%s offset=%" PRIu64 " len=%" PRIu64
		" (deliberate corruption, -X)\n", f->name, p, len);
	injected = 1;
}

static MAYBE_UNUSED uint64_t read_all(int fd, uint8_t *buf, uint64_t max, int direct)
{
	uint64_t got = 0;

	while (got < max) {
		uint64_t want = max - got;
		ssize_t n;

		if (want > (1u << 20))
			want = 1u << 20;
		if (direct)
			want = (want + 4095) & ~4095ull;
		op_begin("read(%" PRIu64 ", %" PRIu64 ")%s", got, want, direct ? " O_DIRECT" : "");
		n = pread(fd, buf + got, want, got);
		op_end();
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (uint64_t)-1;
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

enum check { CHECK_CACHED, CHECK_DISK, CHECK_DROPPED };

/*
 * CHECK_CACHED:  read through the page cache.
 * CHECK_DISK:    fsync, then O_DIRECT (or, where O_DIRECT is refused,
 *                POSIX_FADV_DONTNEED and a buffered read).
 * CHECK_DROPPED: fsync, drop caches (echo 7 > drop_caches as root unless -D,
 *                else POSIX_FADV_DONTNEED), then a buffered read.
 * Returns the number of differing runs (each printed as a MISMATCH line).
 */
static MAYBE_UNUSED int fm_check(struct fm *f, enum check how)
{
	const char *name = "cached";
	struct stat st;
	uint64_t n, want;
	int fd = f->fd, direct = 0, runs = 0;

	if (opt.inject && !injected)
		inject_corruption(f);
	if (how != CHECK_CACHED)
		fm_fsync(f);
	if (how == CHECK_DISK) {
		name = "disk";
		fd = open(f->path, O_RDONLY | O_DIRECT);
		if (fd >= 0) {
			direct = 1;
		} else {
			name = "disk-fadvise";
			fd = f->fd;
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		}
	} else if (how == CHECK_DROPPED) {
		name = "dropped";
		drop_caches_for(f);
	}
	if (fstat(fd, &st))
		run_error("fstat %s", f->name);
	want = (uint64_t)st.st_size;
	if (want > f->cap + 65536)
		want = f->cap + 65536;
	n = read_all(fd, f->rbuf, want, direct);
	if (n == (uint64_t)-1) {
		if (direct && errno == EINVAL) {     /* O_DIRECT refused at read time */
			close(fd);
			fd = f->fd, direct = 0, name = "disk-fadvise";
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			n = read_all(fd, f->rbuf, want, 0);
		}
		if (n == (uint64_t)-1)
			run_error("read %s (%s check)", f->name, name);
	}
	if (direct)
		close(fd);
	if (n > want)
		n = want;
	if ((uint64_t)st.st_size != f->size) {
		uint64_t lo = f->size < (uint64_t)st.st_size ? f->size : (uint64_t)st.st_size;
		uint64_t hi = f->size ^ (uint64_t)st.st_size ^ lo;

		fprintf(stderr, "MISMATCH file=%s offset=%" PRIu64 " len=%" PRIu64
			" expected=size(%" PRIu64 ") found=size(%" PRIu64 ") check=%s iteration=%ld after=%s\n",
			f->name, lo, hi - lo, f->size, (uint64_t)st.st_size, name, iterations_done + 1, f->last);
		runs++;
	}
	if (n < f->size && n < (uint64_t)st.st_size) {
		fprintf(stderr, "MISMATCH file=%s offset=%" PRIu64 " len=%" PRIu64
			" expected=data found=short-read check=%s iteration=%ld after=%s\n",
			f->name, n, f->size - n, name, iterations_done + 1, f->last);
		runs++;
	}
	runs += compare(f, f->rbuf, n, n < f->size ? n : f->size, name);
	if (runs) {
		if (!mismatches)
			fprintf(stderr, "files kept in %s\n", workdir);
		mismatches += runs;
	}
	return runs;
}

/* ---- main ---- */

static MAYBE_UNUSED void on_signal(int sig)
{
	stop_signal = sig;
}

static MAYBE_UNUSED void cleanup(void)
{
	int i;

	if (mismatches || !workdir[0])
		return;              /* keep the evidence */
	for (i = 0; i < nfiles; i++)
		unlink(files[i]->path);
	rmdir(workdir);
}

static MAYBE_UNUSED void usage(FILE *to)
{
	fprintf(to,
		"usage: %s [-d DIR] [-n ITERATIONS] [-t SECONDS] [-s SEED] [-v] [-D] [-X]%s\n"
		"  %s\n"
		"  -d DIR   a directory on the filesystem under test (default: .)\n"
		"  -n N     run N iterations (default %d, or no limit when -t is given)\n"
		"  -t SECS  stop after SECS seconds (checked between iterations);\n"
		"           with -n too, whichever ends first\n"
		"  -s SEED  random seed (default: from time and pid; printed at start)\n"
		"  -v       verbose: a line per iteration\n"
		"  -D       host-friendly: never write /proc/sys/vm/drop_caches or call\n"
		"           sync(); use POSIX_FADV_DONTNEED and syncfs() instead\n"
		"  -X       inject a deliberate corruption before verifying, to prove the\n"
		"           checker detects it (the run must then exit 1)\n"
		"%s"
		"  -h       this help\n"
		"exit status: 0 all data checks passed; 1 data mismatch (MISMATCH lines on\n"
		"stderr); 2 usage or setup error; 3 unexpected error from an operation during\n"
		"the run (ERROR line); 77 the filesystem lacks a needed operation (SKIP line);\n"
		"128+N stopped by signal N.  Last stdout line: iterations=N seconds=S\n",
		PROG_NAME, PROG_SYNOPSIS, PROG_PURPOSE, PROG_DEFAULT_ITERS, PROG_USAGE);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct statvfs sv;
	struct stat st;
	int c, n_given = 0;
	char *end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	t_start = now();
	opt.seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid() << 20;
	while ((c = getopt(argc, argv, "d:n:t:s:vDXh" PROG_OPTSTR)) != -1) {
		switch (c) {
		case 'd':
			opt.dir = optarg;
			break;
		case 'n':
			opt.iters = strtol(optarg, &end, 10);
			if (*end || end == optarg || opt.iters < 1)
				usage_error("-n wants a positive number of iterations, not '%s'", optarg);
			n_given = 1;
			break;
		case 't':
			opt.seconds = strtod(optarg, &end);
			if (*end || end == optarg || !(opt.seconds > 0))
				usage_error("-t wants a positive number of seconds, not '%s'", optarg);
			break;
		case 's':
			opt.seed = strtoull(optarg, &end, 0);
			if (*end || end == optarg)
				usage_error("-s wants a number, not '%s'", optarg);
			break;
		case 'v':
			opt.verbose = 1;
			break;
		case 'D':
			opt.host_friendly = 1;
			break;
		case 'X':
			opt.inject = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_PASS;
		default:
			if (c == '?' || prog_option(c, optarg))
				usage_error("bad option");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!n_given && opt.seconds <= 0)
		opt.iters = PROG_DEFAULT_ITERS;
	if (!opt.seed)
		opt.seed = 1;
	rng_state = opt.seed;
	is_root = geteuid() == 0;
	if (stat(opt.dir, &st) || !S_ISDIR(st.st_mode)) {
		errno = errno ? errno : ENOTDIR;
		setup_error(opt.dir);
	}
	if (statvfs(opt.dir, &sv) == 0 && sv.f_bsize >= 512)
		blksz = sv.f_bsize;
	pagesz = sysconf(_SC_PAGESIZE);
	snprintf(workdir, sizeof(workdir), "%s/%s.%d", opt.dir, PROG_NAME, (int)getpid());
	if (mkdir(workdir, 0755)) {
		workdir[0] = 0;
		setup_error("mkdir work directory");
	}
	atexit(cleanup);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	printf("%s: dir=%s seed=%" PRIu64 " block=%lu page=%lu iterations=%ld seconds=%g%s\n",
	       PROG_NAME, opt.dir, opt.seed, blksz, pagesz, opt.iters, opt.seconds,
	       opt.inject ? " inject=1" : "");
	prog_setup();
	start_heartbeat();
	while (!stop_signal && !mismatches) {
		if (opt.iters >= 0 && iterations_done >= opt.iters)
			break;
		if (opt.seconds > 0 && now() - t_start >= opt.seconds)
			break;
		prog_iteration(iterations_done);
		if (!mismatches)
			vlog("iteration %ld ok\n", iterations_done + 1);
		iterations_done++;
	}
	prog_teardown();
	if (mismatches)
		finish(EXIT_MISMATCH);
	if (stop_signal)
		finish(128 + stop_signal);
	finish(EXIT_PASS);
	return 0;
}

#endif /* KHARNESS_REPRO_COMMON_H */
