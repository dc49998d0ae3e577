"""Properties of the kernel-state parsers, and strip_for_force on a hand-made ELF file."""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lkm.cli.kmodcmd import DeviceNode, format_node, parse_devname_line
from lkm.elf import ElfFile
from lkm.kernel import LoadError, strip_for_force
from lkm.module import ModuleFile
from lkm.state import ProcModule, parse_proc_modules
from support import elfbuild

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=20)


@given(st.binary(max_size=400))
def test_proc_modules_parser_takes_any_bytes(data: bytes) -> None:
    modules = parse_proc_modules(data)
    assert len(modules) == len(data.splitlines())
    assert all(isinstance(m, ProcModule) for m in modules)


@st.composite
def proc_lines(draw: st.DrawFn) -> tuple[ProcModule, bytes]:
    name = draw(NAME)
    size = draw(st.integers(0, 1 << 40))
    users = tuple(draw(st.lists(NAME, max_size=4, unique=True)))
    state = draw(st.sampled_from(["Live", "Loading", "Unloading"]))
    address = draw(st.integers(0, (1 << 64) - 1))
    taint = draw(st.sampled_from(["", "O", "OE", "POE"]))
    record = ProcModule(name, size, len(users), users, state, address, taint)
    line = (
        f"{name} {size} {len(users)} {''.join(u + ',' for u in users) or '-'} {state} "
        f"0x{address:016x}{f' ({taint})' if taint else ''}\n"
    )
    return record, line.encode()


@given(st.lists(proc_lines(), max_size=8))
def test_proc_modules_as_the_kernel_writes_them(lines: list[tuple[ProcModule, bytes]]) -> None:
    data = b"".join(line for _record, line in lines)
    assert parse_proc_modules(data) == tuple(record for record, _line in lines)


@given(st.text(max_size=80))
def test_devname_parser_takes_any_line(line: str) -> None:
    node = parse_devname_line(line)
    assert node is None or isinstance(node, DeviceNode)


@given(
    NAME,
    st.lists(NAME, min_size=1, max_size=3).map("/".join),
    st.sampled_from("cb"),
    st.integers(0, (1 << 32) - 1),
    st.integers(0, (1 << 32) - 1),
)
def test_devname_entries_round_trip(
    module: str, devname: str, kind: str, major: int, minor: int
) -> None:
    line = f"{module} {devname} {kind}{major}:{minor}"
    node = parse_devname_line(line)
    assert node == DeviceNode(module, devname, kind, major, minor)
    assert format_node(node, "devname") == line + "\n"


def _module(vermagic: bytes = b"vermagic=6.1.0-50-amd64 SMP mod_unload modversions ") -> bytes:
    modinfo = elfbuild.modinfo_section(b"license=GPL", vermagic, b"name=fake")
    versions = struct.pack("<Q56s", 0x1234, b"module_layout")
    return elfbuild.elf64({".modinfo": modinfo, "__versions": versions, ".text": b"\x90" * 16})


def test_strip_for_force_blanks_vermagic_and_hides_versions() -> None:
    image = _module()
    stripped = strip_for_force(image)
    assert len(stripped) == len(image)
    module = ModuleFile(stripped)
    assert [key for key, _value in module.modinfo] == ["license", "name"]
    elf = ElfFile(stripped)
    versions = elf.section("__versions")
    assert versions is not None and not versions.flags & 2  # no longer SHF_ALLOC
    text = elf.section(".text")
    assert text is not None and text.flags & 2
    # Nothing else changed: the bytes differ only in the vermagic string and one flags field.
    changed = [i for i, (a, b) in enumerate(zip(image, stripped, strict=True)) if a != b]
    start = image.index(b"vermagic=")
    flags_at = elf.header.shoff + versions.number * elf.header.shentsize + 8
    assert set(changed) <= set(range(start, start + 60)) | {flags_at}


def test_strip_for_force_without_those_sections_changes_nothing() -> None:
    image = elfbuild.elf64({".text": b"\x90" * 4})
    assert strip_for_force(image) == image


@pytest.mark.parametrize(
    ("image", "code"),
    [(b"not an elf file", errno.ENOEXEC), (b"\x7fELF\x02\x01\x01" + bytes(20), errno.EINVAL)],
)
def test_strip_for_force_of_a_broken_file(image: bytes, code: int) -> None:
    with pytest.raises(LoadError) as caught:
        strip_for_force(image, path="x.ko")
    assert caught.value.errno == code
