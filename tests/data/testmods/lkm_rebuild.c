// SPDX-License-Identifier: GPL-2.0
/*
 * Linked into a second build of lkm_busy (Kbuild.other): the same module with one more object,
 * so its GNU build-id differs from the first build's.
 */
const char lkm_rebuild_marker[] = "another build of lkm_busy";
