"""Short commands import only what they use: start-up is most of their time.

Each command runs in a fresh interpreter without ``site`` (so that nothing but the command adds
to ``sys.modules``); the modules it added are compared with the expected sets. A new import on
one of these paths fails here, and is either made lazy or added with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import lkm
from support.modinfo_cases import GOOD

SRC = str(Path(lkm.__file__).resolve().parent.parent)

_SCRIPT = """
import io, sys
sys.path.insert(0, {src!r})
before = set(sys.modules)
from lkm.cli import main
sys.stdout = io.TextIOWrapper(io.BytesIO())
sys.stderr = io.TextIOWrapper(io.BytesIO())
try:
    main({argv!r})
except SystemExit:
    pass
sys.__stdout__.write(" ".join(sorted(set(sys.modules) - before)))
"""

# What every start-up loads: the dispatcher, the table of commands, the shared messages.
_DISPATCH = {
    "lkm", "lkm.errors", "lkm.typing_lite", "lkm.cli", "lkm.cli.commands", "lkm.cli.common",
    "lkm.cli.output",
}  # fmt: skip

# Modules of the standard library no short command needs: ``typing`` imports ``re`` and much
# more; ``signal`` wraps ``_signal`` in enums; ``enum`` imports ``functools``, which imports
# ``collections`` (lkm.enum_lite and lkm.typing_lite stand in for all of them).
_NEVER = {
    "typing", "re", "signal", "argparse", "dataclasses", "inspect", "pathlib", "json", "enum",
    "functools", "collections", "contextlib", "types",
}  # fmt: skip


def imported(argv: list[str]) -> set[str]:
    """The modules ``lkm ARGV...`` adds to a bare interpreter's."""
    script = _SCRIPT.format(src=SRC, argv=["lkm", *argv])
    done = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, check=True, timeout=60
    )
    return set(done.stdout.decode().split())


def test_version_imports_the_dispatcher_alone() -> None:
    found = imported(["--version"])
    assert {m for m in found if m.startswith("lkm")} == _DISPATCH
    # No named tuple is made: not even collections is needed.
    assert not found & (_NEVER | {"enum", "collections", "importlib"}), found


def test_lsmod_imports_the_kernel_state_readers_alone() -> None:
    found = imported(["lsmod"])
    assert {m for m in found if m.startswith("lkm")} == _DISPATCH | {
        "lkm.cli.getopt", "lkm.cli.lsmod", "lkm.kernel", "lkm.state", "lkm.system", "lkm.text",
        "lkm.enum_lite",
    }  # fmt: skip
    assert not found & _NEVER, found


def test_modprobe_resolving_an_alias_imports_no_pattern_compiler(tmp_path: Path) -> None:
    (tmp_path / "lib/modules/1.0").mkdir(parents=True)
    found = imported(["modprobe", "-R", "foo", "-d", str(tmp_path), "-S", "1.0"])
    assert {m for m in found if m.startswith("lkm")} == _DISPATCH - {"lkm.cli.common"} | {
        "lkm.cli.getopt", "lkm.cli.modprobe", "lkm.config", "lkm.fileset", "lkm.index",
        "lkm.moddir", "lkm.names", "lkm.resolve", "lkm.system", "lkm.wildcard", "lkm.enum_lite",
    }  # fmt: skip
    assert not found & _NEVER, found


@pytest.mark.parametrize("command", ["modinfo", "show"])
def test_modinfo_of_an_uncompressed_file_imports_no_decompressor(
    tmp_path: Path, command: str
) -> None:
    module = tmp_path / "good.ko"
    module.write_bytes(GOOD)
    found = imported([command, str(module)])
    assert "lkm.module" in found
    assert not found & (_NEVER | {"lzma", "zlib", "zstandard", "importlib"}), found


@pytest.mark.parametrize("tool", ["lsmod", "modprobe", "modinfo"])
def test_a_tools_help_imports_no_typing(tool: str) -> None:
    assert not imported([tool, "--help"]) & _NEVER


def test_the_completion_helper_imports_no_pattern_compiler(tmp_path: Path) -> None:
    """``lkm complete-modules`` runs on every TAB: the loaded modules need the system's places
    alone; a tree's names and aliases its indexes, nothing more."""
    (tmp_path / "lib/modules/1.0").mkdir(parents=True)
    helper = _DISPATCH - {"lkm.cli.common"} | {"lkm.cli.completion", "lkm.cli.getopt"}
    found = imported(["complete-modules", "--loaded", "x"])
    assert {m for m in found if m.startswith("lkm")} == helper | {"lkm.system"}
    assert not found & _NEVER, found
    found = imported(["complete-modules", "-b", str(tmp_path), "-k", "1.0", "--aliases", "x"])
    assert {m for m in found if m.startswith("lkm")} == helper | {
        "lkm.fileset", "lkm.index", "lkm.moddir", "lkm.names", "lkm.system", "lkm.wildcard",
    }  # fmt: skip
    assert not found & _NEVER, found


# What depmod's start-up cannot do without: array (its tables) imports collections.abc and so
# collections; _pickle (the worker processes' results, the module cache) imports functools.
_DEPMOD_NEVER = _NEVER - {"collections", "functools", "contextlib", "types"} | {
    "pickle", "signal", "bisect", "threading", "copy", "ast", "dis", "tokenize",
}  # fmt: skip


def test_depmod_imports_neither_dataclasses_nor_typing_nor_re(tmp_path: Path) -> None:
    """``lkm depmod`` is judged by its wall time against kmod's, start-up included: neither a
    small run (``-n``, one module, read in this process) nor a run over enough modules for
    worker processes, its files written, imports ``dataclasses``, ``typing``, ``re``, ``enum``,
    ``threading`` or pickle's and signal's Python modules (lkm.dataclasses_lite and the C
    modules stand in); nor, where every module reads well, lkm.elf and lkm.module."""
    moddir = tmp_path / "lib/modules/1.0/kernel"
    moddir.mkdir(parents=True)
    (moddir / "good.ko").write_bytes(GOOD)
    found = imported(["depmod", "-n", "-b", str(tmp_path), "1.0"])
    assert {m for m in found if m.startswith("lkm")} == _DISPATCH - {"lkm.cli.common"} | {
        "lkm.cli.depmod", "lkm.cli.getopt", "lkm.compress", "lkm.config",
        "lkm.dataclasses_lite", "lkm.depmod", "lkm.depmod.cache", "lkm.depmod.config",
        "lkm.depmod.order", "lkm.depmod.output", "lkm.depmod.records", "lkm.depmod.scan",
        "lkm.enum_lite", "lkm.index", "lkm.moddir", "lkm.names", "lkm.system", "lkm.text",
        "lkm.wildcard",
    }  # fmt: skip
    assert not found & _DEPMOD_NEVER, found
    for number in range(80):  # more than a run reads in one process
        (moddir / f"good{number}.ko").write_bytes(GOOD)
    found = imported(["depmod", "-b", str(tmp_path), "1.0"])
    assert {"lkm.depmod.parallel", "lkm.fileset"} <= found
    assert (tmp_path / "lib/modules/1.0/modules.dep.bin").exists()
    assert not found & _DEPMOD_NEVER, found
