// SPDX-License-Identifier: GPL-2.0
/* A module whose MODULE_LICENSE is not GPL-compatible: loading it taints the kernel with P. */
#include <linux/module.h>

static int __init lkm_proprietary_init(void)
{
	return 0;
}

static void __exit lkm_proprietary_exit(void)
{
}

module_init(lkm_proprietary_init);
module_exit(lkm_proprietary_exit);
MODULE_LICENSE("Proprietary");
MODULE_DESCRIPTION("lkm test module with a proprietary licence");
