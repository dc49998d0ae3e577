// SPDX-License-Identifier: GPL-2.0
/* Exports a symbol that lkm_consumer uses: loading order and holders. */
#include <linux/module.h>

int lkm_provider_value(void)
{
	return 42;
}
EXPORT_SYMBOL_GPL(lkm_provider_value);

static int __init lkm_provider_init(void)
{
	return 0;
}

static void __exit lkm_provider_exit(void)
{
}

module_init(lkm_provider_init);
module_exit(lkm_provider_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lkm test module: exports lkm_provider_value");
