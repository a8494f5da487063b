/*
 * The boot ROM QEMU runs with `-bios` (FIRMWARE=bios, the default).
 *
 * Without firmware QEMU copies this file to real address 0 and starts the CPU at
 * 0x100 in real mode, 32-bit, big-endian, with the flattened device tree's address
 * in r3 (docs/boot.md). The kernel ELF is loaded at 0x400000 by `-kernel`; all the
 * ROM does is branch there, leaving r3 as it is. Bytes 0..0x100 are padding.
 *
 * Built by the Makefile: powerpc64-linux-gnu-as, then objcopy -O binary.
 */
	.section .text
	.org	0x100
	ba	0x400000	/* absolute branch to the kernel's entry */
