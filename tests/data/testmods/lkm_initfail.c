// SPDX-License-Identifier: GPL-2.0
/* Its init fails with -ENODEV, so loading it fails after the kernel accepted the file. */
#include <linux/module.h>

static int __init lkm_initfail_init(void)
{
	return -ENODEV;
}

module_init(lkm_initfail_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lkm test module: init fails");
