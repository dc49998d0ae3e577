// SPDX-License-Identifier: GPL-2.0
/* Uses lkm_provider's exported symbol, so lkm_provider lists it as a holder. */
#include <linux/module.h>

int lkm_provider_value(void);

static int __init lkm_consumer_init(void)
{
	return lkm_provider_value() == 42 ? 0 : -EINVAL;
}

static void __exit lkm_consumer_exit(void)
{
}

module_init(lkm_consumer_init);
module_exit(lkm_consumer_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lkm test module: uses lkm_provider_value");
