// SPDX-License-Identifier: GPL-2.0
/* Parameters of several types, to be read back under /sys/module/lkm_params/parameters. */
#include <linux/module.h>
#include <linux/moduleparam.h>

static int count = 3;
module_param(count, int, 0444);
MODULE_PARM_DESC(count, "an int");

static unsigned long big = 1;
module_param(big, ulong, 0644);
MODULE_PARM_DESC(big, "an unsigned long, writable");

static bool flag;
module_param(flag, bool, 0444);
MODULE_PARM_DESC(flag, "a bool");

static char *word = "default";
module_param(word, charp, 0444);
MODULE_PARM_DESC(word, "a string (charp)");

static short level = -1;
module_param(level, short, 0444);

static int list[4];
static int list_len;
module_param_array(list, int, &list_len, 0444);
MODULE_PARM_DESC(list, "up to four ints");

static int __init lkm_params_init(void)
{
	return 0;
}

static void __exit lkm_params_exit(void)
{
}

module_init(lkm_params_init);
module_exit(lkm_params_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lkm test module: parameters");
