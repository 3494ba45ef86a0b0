/*
 * Fixture generator: a static /init for a tiny initramfs.  It runs the steps
 * named in the KH_SCENARIO environment variable (the kernel passes unknown
 * KEY=VALUE boot parameters to init as environment), one after another, then
 * restarts the VM (QEMU's -no-reboot ends it).  Steps are separated by commas:
 *
 *   lkdtm:NAME[@CPU]   write NAME to /sys/kernel/debug/provoke-crash/DIRECT in a
 *                      child (pinned to CPU), wait for it; "&lkdtm:..." does not wait
 *   kh:ACTION[@CPU]    same for /sys/kernel/debug/khbug (gen/khbug.c module)
 *   insmod             load /khbug.ko
 *   sysctl:PATH=VAL    write VAL to /proc/sys/PATH (PATH with '.' or '/')
 *   sysrq:C            write C to /proc/sysrq-trigger
 *   msg:TEXT           print TEXT on the console from user space ('+' = space)
 *   kmsg:TEXT          write TEXT to /dev/kmsg ('+' = space)
 *   kmemleak:CMD       write CMD to /sys/kernel/debug/kmemleak
 *   mount:DEV:DIR:FS   mount a block device
 *   freeze:DIR         FIFREEZE the file system mounted on DIR
 *   &write:FILE        background child that writes to FILE (blocks if frozen)
 *   sleep:N            sleep N seconds
 *   exit:N             init exits with status N (kernel panics)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *fmt, const char *a, const char *b)
{
	printf(fmt, a, b);
	fflush(stdout);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0) {
		say("init: open %s: %s\n", path, strerror(errno));
		return -1;
	}
	ssize_t n = write(fd, val, strlen(val));
	if (n < 0)
		say("init: write %s: %s\n", path, strerror(errno));
	close(fd);
	return n < 0 ? -1 : 0;
}

static void spaces(char *s)
{
	for (; *s; s++)
		if (*s == '+')
			*s = ' ';
}

/* Run write_file(path, val) in a child pinned to cpu (-1: any). */
static void trigger(const char *path, char *arg, int wait_child)
{
	int cpu = -1;
	char *at = strchr(arg, '@');
	if (at) {
		*at = 0;
		cpu = atoi(at + 1);
	}
	say("init: trigger %s %s\n", path, arg);
	pid_t pid = fork();
	if (pid == 0) {
		if (cpu >= 0) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		_exit(write_file(path, arg) ? 1 : 0);
	}
	if (wait_child) {
		int st = 0;
		waitpid(pid, &st, 0);
		if (WIFSIGNALED(st))
			printf("init: child killed by signal %d\n", WTERMSIG(st));
		else
			printf("init: child exited %d\n", WEXITSTATUS(st));
		fflush(stdout);
	}
}

int main(void)
{
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);

	char *sc = getenv("KH_SCENARIO");
	say("init: scenario %s%s\n", sc ? sc : "(none)", "");
	char *save = NULL;
	for (char *step = sc ? strtok_r(sc, ",", &save) : NULL; step;
	     step = strtok_r(NULL, ",", &save)) {
		int bg = 0;
		if (*step == '&') {
			bg = 1;
			step++;
		}
		char *arg = strchr(step, ':');
		if (arg)
			*arg++ = 0;
		else
			arg = "";
		if (!strcmp(step, "lkdtm")) {
			trigger("/sys/kernel/debug/provoke-crash/DIRECT", arg, !bg);
		} else if (!strcmp(step, "kh")) {
			trigger("/sys/kernel/debug/khbug", arg, !bg);
		} else if (!strcmp(step, "insmod")) {
			int fd = open("/khbug.ko", O_RDONLY);
			if (fd < 0 || syscall(SYS_finit_module, fd, "", 0))
				say("init: insmod: %s%s\n", strerror(errno), "");
			close(fd);
		} else if (!strcmp(step, "sysctl")) {
			char path[256], *eq = strchr(arg, '=');
			if (!eq)
				continue;
			*eq = 0;
			snprintf(path, sizeof(path), "/proc/sys/%s", arg);
			for (char *p = path + 10; *p; p++)
				if (*p == '.')
					*p = '/';
			write_file(path, eq + 1);
		} else if (!strcmp(step, "sysrq")) {
			write_file("/proc/sysrq-trigger", arg);
		} else if (!strcmp(step, "msg")) {
			spaces(arg);
			say("%s\n", arg, "");
		} else if (!strcmp(step, "kmsg")) {
			spaces(arg);
			write_file("/dev/kmsg", arg);
		} else if (!strcmp(step, "kmemleak")) {
			write_file("/sys/kernel/debug/kmemleak", arg);
		} else if (!strcmp(step, "mount")) {
			char *dir = strchr(arg, ':'), *fs;
			if (!dir || !(fs = strchr(dir + 1, ':')))
				continue;
			*dir++ = 0;
			*fs++ = 0;
			mkdir(dir, 0755);
			if (mount(arg, dir, fs, 0, NULL))
				say("init: mount %s: %s\n", arg, strerror(errno));
		} else if (!strcmp(step, "freeze")) {
			int fd = open(arg, O_RDONLY);
			if (fd < 0 || ioctl(fd, FIFREEZE, 0))
				say("init: freeze %s: %s\n", arg, strerror(errno));
			else
				say("init: froze %s%s\n", arg, "");
			/* keep fd open: the fs stays frozen */
		} else if (!strcmp(step, "write")) {
			say("init: writer on %s%s\n", arg, "");
			if (fork() == 0) {
				int fd = open(arg, O_WRONLY | O_CREAT, 0644);
				if (fd < 0 || write(fd, "x", 1) < 0)
					say("init: writer: %s%s\n", strerror(errno), "");
				_exit(0);
			}
		} else if (!strcmp(step, "sleep")) {
			sleep(atoi(arg));
		} else if (!strcmp(step, "exit")) {
			say("init: exiting with status %s%s\n", arg, "");
			return atoi(arg);
		} else {
			say("init: unknown step %s%s\n", step, "");
		}
	}
	say("init: done, restarting%s%s\n", "", "");
	sync();
	reboot(RB_AUTOBOOT);	/* QEMU runs with -no-reboot and exits; without ACPI a power-off only halts */
	return 0;
}
