/*
 * A miniature kernel module object for lkm's reader tests, written with assembler directives
 * only, so the same source assembles for every architecture.  build.sh assembles it per
 * ELF class and byte order; --defsym selects the variant:
 *   BITS64    64-bit __versions entries ({u64 crc; char name[56]}), else {u32; char[60]}
 *   NOCRC     no __crc_ symbols: exports come from __ksymtab_strings
 *   NOMODINFO no .modinfo section at all
 */

	.macro	version crc, name
0:
	.ifdef	BITS64
	.quad	\crc
	.else
	.long	\crc
	.endif
	.asciz	"\name"
	.org	0b + 64
	.endm

	.ifndef	NOMODINFO
	.section .modinfo, "a"
	.ascii	"version=1.0\0"
	.ascii	"license=GPL\0"
	.ascii	"author=Jane Doe <jane@example.org>\0"
	.ascii	"author=Second Author\0"
	.ascii	"description=lkm reader test object\0"
	.ascii	"\0"				/* an empty string: padding between entries */
	.ascii	"\0"
	.ascii	"noequalsign\0"			/* a string without '=' */
	.ascii	"empty=\0"			/* an empty value */
	.ascii	"key=value=with=equals\0"
	.ascii	"utf8=caf\303\251\0"		/* valid UTF-8 */
	.ascii	"latin1=caf\351 \377\0"		/* not UTF-8 */
	.ascii	"parm=debug:enable debugging\0"
	.ascii	"parmtype=debug:int\0"
	.ascii	"alias=lkm-test-alias\0"
	.ascii	"depends=\0"
	.ascii	"retpoline=Y\0"
	.ascii	"name=lkm_test\0"
	.ascii	"vermagic=6.1.0-test SMP preempt mod_unload modversions \0"
	.balign	8, 0				/* trailing padding NULs, as the linker leaves them */
	.endif

	.section __versions, "a"
	version	0x0b1b2c3d, "module_layout"
	version	0x92997ed8, "_printk"
	version	0xfedcba98, "kmalloc_caches"

	.section __ksymtab_strings, "a"
	.asciz	"lkm_test_func"
	.asciz	"lkm_test_data"
	.asciz	"lkm_test_abs"

	.ifndef	NOCRC
	/* Since Linux 5.19 CRCs are u32 data in a section; before, absolute symbols. */
	.section .rodata, "a"
	.long	0x11111111			/* so the CRC sits at a non-zero section offset */
	.globl	__crc_lkm_test_func
__crc_lkm_test_func:
	.long	0xcafef00d
	.globl	__crc_lkm_test_data
__crc_lkm_test_data:
	.long	0x01020304
	.globl	__crc_lkm_test_abs
	.set	__crc_lkm_test_abs, 0x7654321
	.endif

	.section .gnu.linkonce.this_module, "aw"
	.zero	64

	.data
	.globl	lkm_test_func
lkm_test_func:
	.long	_printk				/* undefined: an import with a CRC in __versions */
	.long	kmalloc_caches
	.long	no_crc_import			/* undefined, without a __versions entry */
	.globl	lkm_test_data
lkm_test_data:
	.long	0
