"""``lkm.kmod`` against libkmod itself, called through ctypes: what python-kmod would return.

python-kmod is a thin wrapper over libkmod, so libkmod's answers are what a python-kmod user
sees. The trixie kmod 34 library cannot be loaded outside its chroot (it needs a newer C
library than the host's), so the witness is the host's libkmod when there is one (Debian
bookworm: kmod 30, which the reference accepts as a second witness where the two agree).
Compared for a sample of names: the modules a lookup gives and, for each, name, path,
options, install and remove commands, refcnt, size, info (keys, values and order) and
versions; both read the same configuration, kernel command line, ``/proc`` and ``/sys``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lkm import kmod
from lkm.kmod.error import KmodError
from support import world
from support.differential import COMPARED
from support.modprobe_world import TREE, device_strings

pytestmark = pytest.mark.slow

CONFIG = """\
options e1000e x=1
options pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00 y=2
install e1000e /bin/true $CMDLINE_OPTS
remove ext4 echo removed
softdep ext4 pre: crc32c
"""

_TEXT = (
    "kmod_module_get_name",
    "kmod_module_get_path",
    "kmod_module_get_options",
    "kmod_module_get_install_commands",
    "kmod_module_get_remove_commands",
    "kmod_module_info_get_key",
    "kmod_module_info_get_value",
    "kmod_module_version_get_symbol",
)


class LibKmod:
    """The few libkmod calls python-kmod makes, through ctypes."""

    def __init__(self, moddir: Path, config: Path) -> None:
        name = ctypes.util.find_library("kmod")
        if name is None:
            world.unavailable("no libkmod on this machine (Debian: libkmod2)")
        try:
            lib = ctypes.CDLL(name)
        except OSError as err:
            world.unavailable(f"libkmod cannot be loaded here: {err}")
        p = ctypes.c_void_p
        lib.kmod_new.restype = p
        lib.kmod_new.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
        for function in _TEXT:
            getattr(lib, function).restype = ctypes.c_char_p
            getattr(lib, function).argtypes = [p]
        lib.kmod_list_next.restype = p
        lib.kmod_list_next.argtypes = [p, p]
        lib.kmod_module_get_module.restype = p
        lib.kmod_module_get_module.argtypes = [p]
        lib.kmod_module_get_size.restype = ctypes.c_long
        lib.kmod_module_get_size.argtypes = [p]
        lib.kmod_module_get_refcnt.argtypes = [p]
        lib.kmod_module_version_get_crc.restype = ctypes.c_uint64
        lib.kmod_module_version_get_crc.argtypes = [p]
        for function in ("kmod_module_get_info", "kmod_module_get_versions"):
            getattr(lib, function).argtypes = [p, ctypes.POINTER(p)]
        lib.kmod_module_new_from_lookup.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(p)]
        lib.kmod_set_log_priority.argtypes = [p, ctypes.c_int]
        lib.kmod_load_resources.argtypes = [p]
        self.lib = lib
        paths = (ctypes.c_char_p * 2)(str(config).encode(), None)
        self.ctx = lib.kmod_new(str(moddir).encode(), paths)
        lib.kmod_set_log_priority(self.ctx, 0)  # its own log lines are not compared
        lib.kmod_load_resources(self.ctx)

    def _items(self, head: int | None) -> Iterator[int]:
        item = head
        while item:
            yield item
            item = self.lib.kmod_list_next(head, item)

    def lookup(self, name: str) -> list[tuple[Any, ...]]:
        found = ctypes.c_void_p()
        self.lib.kmod_module_new_from_lookup(self.ctx, name.encode(), ctypes.byref(found))
        return [self._module(self.lib.kmod_module_get_module(i)) for i in self._items(found.value)]

    def _module(self, module: int) -> tuple[Any, ...]:
        lib = self.lib
        info: Any = "error"
        found = ctypes.c_void_p()
        if lib.kmod_module_get_info(module, ctypes.byref(found)) >= 0:
            info = [
                (_text(lib.kmod_module_info_get_key(i)), _text(lib.kmod_module_info_get_value(i)))
                for i in self._items(found.value)
            ]
            info = list(dict(info).items())  # python-kmod's dict: the last value, first place
        versions: Any = "error"
        found = ctypes.c_void_p()
        if lib.kmod_module_get_versions(module, ctypes.byref(found)) >= 0:
            versions = [
                {
                    "symbol": _text(lib.kmod_module_version_get_symbol(i)),
                    "crc": lib.kmod_module_version_get_crc(i),
                }
                for i in self._items(found.value)
            ]
        return (
            _text(lib.kmod_module_get_name(module)),
            _text(lib.kmod_module_get_path(module)),
            _text(lib.kmod_module_get_options(module)),
            _text(lib.kmod_module_get_install_commands(module)),
            _text(lib.kmod_module_get_remove_commands(module)),
            lib.kmod_module_get_refcnt(module),
            lib.kmod_module_get_size(module),
            info,
            versions,
        )


def _text(raw: bytes | None) -> str | None:
    # python-kmod decodes as ASCII and fails on an author like "Bj\xc3\xb8rn"; lkm decodes
    # as UTF-8, keeping any other byte (surrogateescape), which is what is compared.
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


def _lkm(module: kmod.Module) -> tuple[Any, ...]:
    info: Any
    versions: Any
    try:
        info = list(module.info.items())
    except KmodError:
        info = "error"
    try:
        versions = list(module.versions)
    except KmodError:
        versions = "error"
    return (
        module.name,
        module.path,
        module.options,
        module.install_commands,
        module.remove_commands,
        module.refcnt,
        module.size,
        info,
        versions,
    )


def test_python_kmod_answers_like_libkmod(tmp_path: Path) -> None:
    tree = world.tree(TREE)
    (tmp_path / "t.conf").write_text(CONFIG)
    witness = LibKmod(tree.moddir, tmp_path)
    km = kmod.Kmod(str(tree.moddir), config_paths=[str(tmp_path)])
    names = ["e1000e", "ext4", "symbol:jbd2_journal_start", "no-such-module", "aes", "8250"]
    names.append("pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00")
    names += random.Random(4).sample(device_strings(tree), 400)
    modules = 0
    for name in names:
        expected = witness.lookup(name)
        assert [_lkm(m) for m in km.lookup(name)] == expected, name
        modules += len(expected)
    COMPARED["python-kmod layer against libkmod: names looked up"] += len(names)
    COMPARED["python-kmod layer against libkmod: modules, every property"] += modules


# Run in a mount namespace whose /sys/module is the case's: libkmod reads /sys itself.
_STATE_WITNESS = r"""
import ctypes, ctypes.util, json, sys
from lkm import kmod
from lkm.state import SysModule

moddir, names = sys.argv[1], sys.argv[2:]
lib = ctypes.CDLL(ctypes.util.find_library("kmod"))
p = ctypes.c_void_p
lib.kmod_new.restype = p
lib.kmod_new.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
lib.kmod_set_log_priority.argtypes = [p, ctypes.c_int]
lib.kmod_module_new_from_name.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(p)]
lib.kmod_module_get_initstate.argtypes = [p]
lib.kmod_module_probe_insert_module.argtypes = [p, ctypes.c_uint, ctypes.c_char_p, p, p, p]
paths = (ctypes.c_char_p * 2)(b"/dev/null", None)
ctx = lib.kmod_new(moddir.encode(), paths)
lib.kmod_set_log_priority(ctx, 0)
km = kmod.Kmod(moddir, config_paths=["/dev/null"], cmdline=None)
states = {0: "builtin", 1: "live", 2: "coming", 3: "going"}
out = {}
for name in names:
    module = p()
    lib.kmod_module_new_from_name(ctx, name.encode(), ctypes.byref(module))
    code = lib.kmod_module_get_initstate(module)
    probe = lib.kmod_module_probe_insert_module(module, 0x10 | 0x20, None, None, None, None)
    try:
        found = SysModule(name).initstate()
        ours = None if found is None else found.value
    except Exception:
        ours = "error"
    try:
        km.modprobe(name, flags=kmod.KMOD_PROBE_DRY_RUN | kmod.KMOD_PROBE_FAIL_ON_LOADED)
        loaded = False
    except kmod.KmodError:
        loaded = True
    out[name] = [[states.get(code) if code >= 0 else None, probe == -17],
                 [ours, loaded]]
print(json.dumps(out))
"""


def test_initstate_and_probe_like_libkmod(tmp_path: Path) -> None:
    """What libkmod reports as a module's initstate, and whether its probe takes the module as
    loaded, for every kind of /sys/module entry: lkm.state and lkm.kmod say the same. To
    libkmod a directory without initstate is a module coming, which a probe loads over."""
    import json
    import subprocess
    import sys

    if ctypes.util.find_library("kmod") is None:
        pytest.skip("no libkmod on this machine")
    tree = world.tree("bookworm-amd64")
    module = tmp_path / "module"
    cases = {
        "loop": {},  # a directory alone
        "dummy": {"parameters/numdummies": "1\n"},
        "vfat": {"initstate": "live\n", "refcnt": "0\n"},
        "fat": {"initstate": "coming\n", "refcnt": "0\n"},
        "msdos": {"initstate": "going\n", "refcnt": "0\n"},
        "ext4": None,
    }
    for name, files in cases.items():
        if files is None:
            continue
        (module / name).mkdir(parents=True)
        for relative, text in files.items():
            (module / name / relative).parent.mkdir(parents=True, exist_ok=True)
            (module / name / relative).write_text(text)
    script = 'mount --bind "$0" /sys/module && exec "$@"'
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(module)]
    command += [sys.executable, "-c", _STATE_WITNESS, str(tree.moddir), *cases]
    done = subprocess.run(command, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    results = json.loads(done.stdout)
    for name, (theirs, ours) in results.items():
        assert ours == theirs, (name, results)
    assert results["loop"][0] == ["coming", False]  # libkmod's word, and loaded over
    assert results["vfat"][0] == ["live", True]
    COMPARED["python-kmod layer against libkmod: /sys/module states"] += len(results)
