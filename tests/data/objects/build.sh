#!/bin/sh
# Rebuild the test objects from modtest.S.  Needs Debian's binutils-x86-64-linux-gnu,
# binutils-s390x-linux-gnu, binutils-arm-linux-gnueabihf and binutils-powerpc-linux-gnu.
set -eu
cd "$(dirname "$0")"
build() { # NAME ASSEMBLER ARGS...
	name=$1 as=$2
	shift 2
	"$as" "$@" -o "$name.o" modtest.S
	"$as" "$@" --defsym NOCRC=1 -o "$name-nocrc.o" modtest.S
	"$as" "$@" --defsym NOMODINFO=1 -o "$name-nomodinfo.o" modtest.S
}
build elf64-le x86_64-linux-gnu-as --64 --defsym BITS64=1
build elf64-be s390x-linux-gnu-as -m64 --defsym BITS64=1
build elf32-le arm-linux-gnueabihf-as
build elf32-be powerpc-linux-gnu-as -a32
