// SPDX-License-Identifier: GPL-2.0
/*
 * Stays in use on demand: writing 1 to /sys/module/lkm_busy/parameters/hold takes a reference
 * on the module (refcnt 1, removal refused), writing 0 drops it again.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

static bool held;

static int hold_set(const char *value, const struct kernel_param *kp)
{
	bool want;
	int err = kstrtobool(value, &want);

	if (err)
		return err;
	if (want && !held && !try_module_get(THIS_MODULE))
		return -ENODEV;
	if (!want && held)
		module_put(THIS_MODULE);
	held = want;
	return 0;
}

static int hold_get(char *buffer, const struct kernel_param *kp)
{
	return sprintf(buffer, "%c\n", held ? 'Y' : 'N');
}

static const struct kernel_param_ops hold_ops = {
	.set = hold_set,
	.get = hold_get,
};
module_param_cb(hold, &hold_ops, NULL, 0644);
MODULE_PARM_DESC(hold, "Y: keep a reference on the module");

static int __init lkm_busy_init(void)
{
	return 0;
}

static void __exit lkm_busy_exit(void)
{
}

module_init(lkm_busy_init);
module_exit(lkm_busy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lkm test module: stays in use");
