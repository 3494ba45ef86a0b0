// SPDX-License-Identifier: GPL-2.0
/*
 * khbug: a deliberately broken out-of-tree test module that makes the kernel
 * print the reports LKDTM cannot (lockdep splats, sleeping in atomic context,
 * a non-canonical pointer dereference, a memory leak, a workqueue hog, a data race).
 * Write an action name to /sys/kernel/debug/khbug.  Only for fixture boots.
 */
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/timer.h>
#include <linux/workqueue.h>

static DEFINE_MUTEX(khbug_a);
static DEFINE_MUTEX(khbug_b);
static spinlock_t khbug_pair[2];
static DEFINE_SPINLOCK(khbug_irq_lock);
static struct timer_list khbug_timer;
static int khbug_counter;
static int __rcu *khbug_ptr;
static void *khbug_leaked;

static noinline void khbug_lock_ab(void)
{
	mutex_lock(&khbug_a);
	mutex_lock(&khbug_b);
	mutex_unlock(&khbug_b);
	mutex_unlock(&khbug_a);
}

static noinline void khbug_lock_ba(void)
{
	mutex_lock(&khbug_b);
	mutex_lock(&khbug_a);
	mutex_unlock(&khbug_a);
	mutex_unlock(&khbug_b);
}

/* Both locks have the same lockdep class (one init site), no nesting annotation. */
static noinline void khbug_lock_pair(void)
{
	spin_lock(&khbug_pair[0]);
	spin_lock(&khbug_pair[1]);
	spin_unlock(&khbug_pair[1]);
	spin_unlock(&khbug_pair[0]);
}

static void khbug_timer_fn(struct timer_list *t)
{
	spin_lock(&khbug_irq_lock);
	khbug_counter++;
	spin_unlock(&khbug_irq_lock);
}

/* Taken in softirq (timer) and here with softirqs enabled. */
static noinline void khbug_irq_unsafe(void)
{
	timer_setup(&khbug_timer, khbug_timer_fn, 0);
	mod_timer(&khbug_timer, jiffies + 1);
	msleep(100);
	spin_lock(&khbug_irq_lock);
	khbug_counter++;
	spin_unlock(&khbug_irq_lock);
	del_timer_sync(&khbug_timer);
}

static noinline int khbug_rcu_deref(void)
{
	int *p = rcu_dereference(khbug_ptr);

	return p ? *p : 0;
}

static noinline void khbug_atomic_sleep(void)
{
	void *p;

	preempt_disable();
	p = kmalloc(64, GFP_KERNEL);
	preempt_enable();
	kfree(p);
}

static noinline void khbug_gpf(void)
{
	pr_info("khbug: reading a non-canonical address\n");
	khbug_counter += *(volatile int *)0xdead000000000100UL;
}

static noinline void khbug_leak(void)
{
	khbug_leaked = kmalloc(128, GFP_KERNEL);
	khbug_leaked = NULL;
}

static void khbug_hog_fn(struct work_struct *w)
{
	int i;

	/* 12 s without sleeping: the per-CPU pool makes no progress. */
	for (i = 0; i < 1200; i++)
		mdelay(10);
}

static void khbug_victim_fn(struct work_struct *w)
{
	pr_info("khbug: victim work ran\n");
}

static DECLARE_WORK(khbug_hog, khbug_hog_fn);
static DECLARE_WORK(khbug_victim, khbug_victim_fn);

static noinline void khbug_wq_hog(void)
{
	queue_work_on(1, system_wq, &khbug_hog);
	msleep(10);
	queue_work_on(1, system_wq, &khbug_victim);
}

/* Two threads bump a plain int: a data race for KCSAN. */
static int khbug_racer(void *arg)
{
	unsigned long end = jiffies + 2 * HZ;

	while (time_before(jiffies, end)) {
		khbug_counter++;
		cpu_relax();
	}
	return 0;
}

static noinline void khbug_race(void)
{
	kthread_run(khbug_racer, NULL, "khbug_racer/0");
	kthread_run(khbug_racer, NULL, "khbug_racer/1");
	msleep(3000);
}

static ssize_t khbug_write(struct file *f, const char __user *ubuf, size_t len,
			   loff_t *off)
{
	char buf[32];

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	strim(buf);
	pr_info("khbug: action %s\n", buf);
	if (!strcmp(buf, "abba")) {
		khbug_lock_ab();
		khbug_lock_ba();
	} else if (!strcmp(buf, "recursive")) {
		khbug_lock_pair();
	} else if (!strcmp(buf, "inconsistent")) {
		khbug_irq_unsafe();
	} else if (!strcmp(buf, "rcu")) {
		khbug_rcu_deref();
	} else if (!strcmp(buf, "atomic-sleep")) {
		khbug_atomic_sleep();
	} else if (!strcmp(buf, "gpf")) {
		khbug_gpf();
	} else if (!strcmp(buf, "leak")) {
		khbug_leak();
	} else if (!strcmp(buf, "wq-hog")) {
		khbug_wq_hog();
	} else if (!strcmp(buf, "race")) {
		khbug_race();
	} else {
		return -EINVAL;
	}
	return len;
}

static const struct file_operations khbug_fops = {
	.write = khbug_write,
};

static struct dentry *khbug_dentry;

static int __init khbug_init(void)
{
	int i;

	for (i = 0; i < 2; i++)
		spin_lock_init(&khbug_pair[i]);
	khbug_dentry = debugfs_create_file("khbug", 0200, NULL, NULL, &khbug_fops);
	return 0;
}

static void __exit khbug_exit(void)
{
	debugfs_remove(khbug_dentry);
}

module_init(khbug_init);
module_exit(khbug_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("deliberately broken module for console fixtures");
