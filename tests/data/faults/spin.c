/*
 * Self-test (not a user reproducer): a task that spins in the kernel without ever blocking.
 *
 * After -n 3 normal iterations, one thread reads /dev/zero 64 MiB at a time for ever: the
 * kernel clears user memory in read_iter_zero(), calling cond_resched(), so the task stays
 * runnable: no hung-task report, no soft lockup.  Its read() stays "in flight" in the
 * progress heartbeat (common.h), which is what the harness must notice.
 */
#define PROG_NAME "fault-spin"
#define PROG_PURPOSE "self-test: spin in read(/dev/zero) for ever after a few iterations (no hung task)"
#define PROG_DEFAULT_ITERS 1000000
#define PROG_OPTSTR ""
#define PROG_SYNOPSIS ""
#define PROG_USAGE ""
#include "common.h"

#define CHUNK (64u << 20)

static uint8_t *buf;
static int zero_fd = -1;

static void prog_setup(void)
{
	buf = malloc(CHUNK);
	zero_fd = open("/dev/zero", O_RDONLY);
	if (!buf || zero_fd < 0)
		setup_error("open /dev/zero");
}

static void prog_iteration(long it)
{
	if (it < 3) {
		op_begin("iteration %ld", it);
		delay_us(100000);
		op_end();
		return;
	}
	op_begin("read(/dev/zero, %u) for ever", CHUNK);
	while (!stop_signal)
		if (read(zero_fd, buf, CHUNK) < 0 && errno != EINTR)
			run_error("read /dev/zero");
	op_end();
}

static void prog_teardown(void)
{
	free(buf);
}
