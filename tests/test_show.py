"""``lkm show``: typed records of small built modules, in a small tree, with a fake kernel state."""

from __future__ import annotations

import gzip
import lzma
import struct
from pathlib import Path

import pytest
import zstandard

from lkm.cli import show as show_cli
from lkm.index import write_index
from lkm.show import Failure, Field, Loaded, ModuleInfo, Parameter, Signature, SoftDeps, show
from lkm.system import System
from support import signatures
from support.elfbuild import elf64, modinfo_section
from support.schemas import validate_output

RELEASE = "1.0"

# Every kind of field: repeated single fields, lists, flags (one with an odd value), a parameter
# string without a colon, softdeps in two fields, and one field lkm has no name for.
RICH = modinfo_section(
    b"license=GPL",
    b"license=Dual MIT/GPL",
    b"description=A rich module",
    b"author=First Author",
    b"author=Second Author",
    b"version=1.2",
    b"srcversion=ABCDEF0123",
    b"alias=pci:v00001234d*sv*sd*bc*sc*i*",
    b"alias=rich-alias",
    b"firmware=rich/fw.bin",
    b"import_ns=CRYPTO_INTERNAL",
    b"import_ns=USB_STORAGE",
    b"softdep=pre: crc32c sha256 post: later",
    b"softdep=post: last",
    b"weakdep=weak_one",
    b"weakdep=weak_two",
    b"parm=count:How many",
    b"parmtype=count:int",
    b"parmtype=quiet:bool",
    b"parm=broken parameter",
    b"key_mappings=G1-G6 are mapped to F13-F18",
    b"depends=plain,other",
    b"staging=N",
    b"intree=Y",
    b"name=rich",
    b"retpoline=Y",
    b"vermagic=1.0 SMP mod_unload",
)
PLAIN = modinfo_section(b"license=GPL", b"depends=", b"name=plain", b"vermagic=1.0 SMP ")
OTHER = modinfo_section(b"license=GPL", b"depends=", b"name=other", b"vermagic=1.0 SMP ")
BUILD_ID = bytes.fromhex("00112233445566778899aabbccddeeff01234567")


def note(name: bytes, kind: int, desc: bytes) -> bytes:
    def padded(data: bytes) -> bytes:
        return data + bytes(-len(data) % 4)

    return struct.pack("<III", len(name), len(desc), kind) + padded(name) + padded(desc)


def module(info: bytes, **sections: bytes) -> bytes:
    return elf64({".modinfo": info, **{name.replace("_", "."): s for name, s in sections.items()}})


def with_build_id(info: bytes, notes: bytes) -> bytes:
    return elf64({".modinfo": info, ".note.gnu.build-id": notes})


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    """A module tree for release 1.0 under ``root``: ``files`` (name -> bytes) in kernel/, each
    without dependencies, an alias, and the built-in module ``blt`` with fields."""
    moddir = root / "lib/modules" / RELEASE
    (moddir / "kernel").mkdir(parents=True)
    deps = []
    for number, (file_name, data) in enumerate(sorted(files.items())):
        (moddir / "kernel" / file_name).write_bytes(data)
        deps.append((file_name.split(".", 1)[0], f"kernel/{file_name}:", number))
    (moddir / "modules.dep.bin").write_bytes(write_index(deps))
    aliases = [("rich_alias", "rich", 0), ("both", "plain", 1), ("both", "other", 2)]
    (moddir / "modules.alias.bin").write_bytes(write_index(aliases))
    (moddir / "modules.symbols.bin").write_bytes(write_index([]))
    (moddir / "modules.builtin.bin").write_bytes(write_index([("blt", "", 0)]))
    (moddir / "modules.builtin.alias.bin").write_bytes(write_index([("fs_blt", "blt", 0)]))
    (moddir / "modules.builtin.modinfo").write_bytes(
        b"blt.license=GPL\0blt.description=Built in\0blt.parmtype=depth:uint\0"
        b"blt.parm=depth:How deep\0blt.alias=fs-blt\0"
    )
    return moddir


def make_sys(root: Path, name: str, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> None:
    base = root / "sys/module" / name
    base.mkdir(parents=True)
    for leaf, data in files.items():
        (base / leaf).parent.mkdir(parents=True, exist_ok=True)
        (base / leaf).write_bytes(data)
    for leaf in dirs:
        (base / leaf).mkdir(parents=True)


def system_under(root: Path) -> System:
    return System.under(str(root), RELEASE)


def shown(root: Path, query: str, *, kernel: bool = True) -> list[ModuleInfo | Failure]:
    system = system_under(root)
    with system.module_directory() as moddir:
        return show(query, moddir, system if kernel else None)


def only(records: list[ModuleInfo | Failure]) -> ModuleInfo:
    assert len(records) == 1, records
    record = records[0]
    assert isinstance(record, ModuleInfo), record
    return record


def test_every_field_typed_and_nothing_lost(tmp_path: Path) -> None:
    data = module(RICH)
    moddir = make_tree(tmp_path, {"rich.ko": data})
    record = only(shown(tmp_path, "rich"))
    assert record == ModuleInfo(
        query="rich",
        name="rich",
        builtin=False,
        filename=f"{moddir}/kernel/rich.ko",
        compression="none",
        file_size=len(data),
        license="GPL",
        description="A rich module",
        authors=("First Author", "Second Author"),
        version="1.2",
        srcversion="ABCDEF0123",
        vermagic="1.0 SMP mod_unload",
        intree=True,
        retpoline=True,
        staging=True,
        # modinfo's order: the parameter met last first.
        parameters=(Parameter("quiet", "bool", None), Parameter("count", "int", "How many")),
        aliases=("pci:v00001234d*sv*sd*bc*sc*i*", "rich-alias"),
        depends=("plain", "other"),
        softdeps=SoftDeps(pre=("crc32c", "sha256"), post=("later", "last")),
        weakdeps=("weak_one", "weak_two"),
        firmware=("rich/fw.bin",),
        import_ns=("CRYPTO_INTERNAL", "USB_STORAGE"),
        other=(
            Field("license", "Dual MIT/GPL"),
            Field("parm", "broken parameter"),
            Field("key_mappings", "G1-G6 are mapped to F13-F18"),
            Field("staging", "N"),
        ),
        signature=None,
        build_id=None,
        loaded=None,
        problems=(),
    )


def test_softdep_words_as_modprobe_reads_modules_softdep() -> None:
    from lkm.show import _softdep

    assert _softdep("pre: a\tb  post: c") == (("a", "b"), ("c",))
    assert _softdep("before pre: a") == (("a",), ())  # words before a marker belong nowhere
    assert _softdep("pre:a") == ((), ())  # "pre:a" is no marker
    assert _softdep("") == ((), ())


def test_found_by_alias_path_and_several(tmp_path: Path) -> None:
    moddir = make_tree(tmp_path, {"rich.ko": module(RICH), "plain.ko": module(PLAIN),
                                  "other.ko": module(OTHER)})  # fmt: skip
    assert only(shown(tmp_path, "rich-alias")).name == "rich"
    by_path = only(shown(tmp_path, f"{moddir}/kernel/plain.ko"))
    assert (by_path.query, by_path.name) == (f"{moddir}/kernel/plain.ko", "plain")
    both = shown(tmp_path, "both")
    assert [r.name for r in both if isinstance(r, ModuleInfo)] == ["plain", "other"]


@pytest.mark.parametrize(
    ("kind", "pack"),
    [
        ("none", lambda data: data),
        ("xz", lambda data: lzma.compress(data, lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)),
        ("zstd", lambda data: zstandard.ZstdCompressor().compress(data)),
        ("gzip", gzip.compress),
    ],
)
def test_compression_from_the_first_bytes(tmp_path: Path, kind: str, pack: object) -> None:
    assert callable(pack)
    packed = pack(with_build_id(PLAIN, note(b"GNU\0", 3, BUILD_ID)))
    # Named .ko whatever it holds: the bytes decide.
    make_tree(tmp_path, {"plain.ko": packed})
    record = only(shown(tmp_path, "plain"))
    assert (record.compression, record.file_size) == (kind, len(packed))
    assert (record.license, record.build_id) == ("GPL", BUILD_ID.hex())


def test_build_id_is_the_gnu_note_of_type_3(tmp_path: Path) -> None:
    notes = note(b"Xen\0", 3, b"\x01\x02") + note(b"GNU\0", 1, b"\x03") + note(b"GNU\0", 3, b"\xab")
    make_tree(tmp_path, {"plain.ko": with_build_id(PLAIN, notes), "other.ko": module(OTHER)})
    assert only(shown(tmp_path, "plain")).build_id == "ab"
    assert only(shown(tmp_path, "other")).build_id is None  # no such section


def test_broken_build_id_note_is_a_problem_not_a_failure(tmp_path: Path) -> None:
    notes = struct.pack("<III", 4, 20, 3) + b"GNU\0" + b"\x01" * 8  # 12 of 20 bytes
    moddir = make_tree(tmp_path, {"plain.ko": with_build_id(PLAIN, notes)})
    record = only(shown(tmp_path, "plain"))
    assert record.build_id is None
    assert record.license == "GPL"
    assert record.problems == (
        f"build-id: {moddir}/kernel/plain.ko: note at 0 of section '.note.gnu.build-id' with a "
        "4-byte name and a 20-byte descriptor ends beyond the section (24 bytes) (at byte 0x72)",
    )


def test_pkcs7_signature(tmp_path: Path) -> None:
    blob = signatures.cms(serial=signatures.integer(0x1234AB))
    make_tree(tmp_path, {"plain.ko": signatures.appended(blob, body=module(PLAIN))})
    assert only(shown(tmp_path, "plain")).signature == Signature(
        "PKCS#7", "crafted", "1234ab", "sha256", "rsaEncryption", "11" * 8
    )


def test_x509_trailer_signature(tmp_path: Path) -> None:
    blob = b"signer\0" + b"\x0a\x0b" + b"\xff" * 4
    signed = signatures.appended(
        blob, algo=1, hash_=4, id_type=1, signer_len=7, key_id_len=2, sig_len=4,
        body=module(PLAIN),
    )  # fmt: skip
    make_tree(tmp_path, {"plain.ko": signed})
    assert only(shown(tmp_path, "plain")).signature == Signature(
        "X509", "signer", "0a0b", "sha256", "rsa", "ffffffff"
    )


def test_builtin_module_has_its_builtin_modinfo(tmp_path: Path) -> None:
    make_tree(tmp_path, {})
    for query in ("blt", "fs-blt"):
        record = only(shown(tmp_path, query, kernel=False))
        assert record == ModuleInfo(
            query=query, name="blt", builtin=True, filename=None, compression=None,
            file_size=None, license="GPL", description="Built in", authors=(), version=None,
            srcversion=None, vermagic=None, intree=False, retpoline=False, staging=False,
            parameters=(Parameter("depth", "uint", "How deep"),), aliases=("fs-blt",),
            depends=(), softdeps=SoftDeps((), ()), weakdeps=(), firmware=(), import_ns=(),
            other=(), signature=None, build_id=None, loaded=None, problems=(),
        )  # fmt: skip


def test_builtin_in_the_kernel_with_its_parameters(tmp_path: Path) -> None:
    make_tree(tmp_path, {})
    make_sys(tmp_path, "blt", {"parameters/depth": b"3\n"})
    assert only(shown(tmp_path, "blt")).loaded == Loaded(
        "builtin", None, None, (), "", {"depth": "3"}
    )


def test_not_found_and_unreadable_are_failures(tmp_path: Path) -> None:
    make_tree(tmp_path, {"nodata.ko": elf64({".text": b"\0"}), "notelf.ko": b"not an ELF file"})
    assert shown(tmp_path, "nosuch") == [Failure("nosuch", "Module nosuch not found.")]
    assert shown(tmp_path, "a]b") == [Failure("a]b", "Module alias a]b not found.")]
    assert shown(tmp_path, "nodata") == [
        Failure("nodata", "could not get modinfo from 'nodata': No data available")
    ]
    assert shown(tmp_path, "notelf") == [
        Failure("notelf", "could not get modinfo from 'notelf': Exec format error")
    ]


def live_module(root: Path, name: str = "plain", **more: bytes) -> None:
    files = {
        "initstate": b"live\n",
        "refcnt": b"2\n",
        "coresize": b"16384\n",
        "taint": b"OE\n",
        "parameters/b_value": b"Y\n",
        "parameters/a_value": b"12\n",
        **more,
    }
    make_sys(root, name, files, ("holders/zeta", "holders/alpha"))


def test_loaded_module_read_from_the_systems_sysfs(tmp_path: Path) -> None:
    make_tree(tmp_path, {"plain.ko": module(PLAIN), "other.ko": module(OTHER)})
    live_module(tmp_path)
    assert only(shown(tmp_path, "plain")).loaded == Loaded(
        "live", 16384, 2, ("alpha", "zeta"), "OE", {"a_value": "12", "b_value": "Y"}
    )
    assert only(shown(tmp_path, "other")).loaded is None
    assert only(shown(tmp_path, "plain", kernel=False)).loaded is None


def test_loaded_size_from_proc_modules_when_sysfs_has_none(tmp_path: Path) -> None:
    make_tree(tmp_path, {"plain.ko": module(PLAIN)})
    make_sys(tmp_path, "plain", {"initstate": b"coming\n", "refcnt": b"0\n"}, ("holders",))
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/modules").write_bytes(b"plain 8192 0 - Loading 0x0\n")
    assert only(shown(tmp_path, "plain")).loaded == Loaded("coming", 8192, 0, (), "", {})


def test_odd_sysfs_entries_are_problems(tmp_path: Path) -> None:
    make_tree(tmp_path, {"plain.ko": module(PLAIN), "other.ko": module(OTHER)})
    live_module(tmp_path, refcnt=b"abc\n", coresize=b"x\n")
    record = only(shown(tmp_path, "plain"))
    assert record.loaded == Loaded("live", None, None, ("alpha", "zeta"), "OE",
                                   {"a_value": "12", "b_value": "Y"})  # fmt: skip
    sys_module = tmp_path / "sys/module/plain"
    assert record.problems == (
        f"could not read integer from '{sys_module}/refcnt': 'Invalid argument'",
        f"failed to read coresize from {sys_module}",
    )
    make_sys(tmp_path, "other", {"initstate": b"weird\n"})
    record = only(shown(tmp_path, "other"))
    assert record.loaded is None
    assert record.problems == (f"unknown {tmp_path}/sys/module/other/initstate: 'weird\n'",)


# --- the command line ---------------------------------------------------------------------

TEXT = """\
name:         rich
filename:     {moddir}/kernel/rich.ko
compression:  none
file size:    {size}
builtin:      no
license:      GPL
description:  A rich module
version:      1.2
srcversion:   ABCDEF0123
vermagic:     1.0 SMP mod_unload
author:       First Author
              Second Author
intree:       yes
retpoline:    yes
staging:      yes
depends:      plain other
softdeps:     pre: crc32c sha256 post: later last
weakdeps:     weak_one
              weak_two
alias:        pci:v00001234d*sv*sd*bc*sc*i*
              rich-alias
firmware:     rich/fw.bin
import_ns:    CRYPTO_INTERNAL
              USB_STORAGE
license:      Dual MIT/GPL
parm:         broken parameter
key_mappings: G1-G6 are mapped to F13-F18
staging:      N
signature:    none
parameters:
  quiet (bool)
  count (int): How many
loaded:       live
  size:       16384
  refcnt:     2
  holders:    alpha zeta
  taint:      OE
  parameters:
    a_value = 12
    b_value = Y

name:         blt
builtin:      yes
license:      GPL
description:  Built in
intree:       no
retpoline:    no
depends:
alias:        fs-blt
parameters:
  depth (uint): How deep
loaded:       builtin
"""


def run(args: list[str], capfdbinary: pytest.CaptureFixture[bytes]) -> tuple[str, str, int]:
    status = show_cli.main(args, system=System(sysfs="/nonexistent", procfs="/nonexistent"))
    out, err = capfdbinary.readouterr()
    return out.decode(), err.decode(), status


def test_text(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    data = module(RICH)
    moddir = make_tree(tmp_path, {"rich.ko": data})
    live_module(tmp_path, "rich")
    out, err, status = run(["-b", str(tmp_path), "-k", RELEASE, "rich", "blt"], capfdbinary)
    assert (out, err, status) == (TEXT.format(moddir=moddir, size=len(data)), "", 0)


def test_text_errors_and_warnings(
    tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    make_tree(tmp_path, {"plain.ko": module(PLAIN)})
    make_sys(tmp_path, "plain", {"initstate": b"weird\n"})
    out, err, status = run(["-b", str(tmp_path), "-k", RELEASE, "nosuch", "plain"], capfdbinary)
    assert status == 1
    assert out.startswith("name:         plain\n")
    assert err == (
        "lkm show: ERROR: Module nosuch not found.\n"
        f"lkm show: WARNING: plain: unknown {tmp_path}/sys/module/plain/initstate: 'weird\n'\n"
    )


def test_json_validates(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    blob = signatures.cms()
    signed = signatures.appended(blob, body=with_build_id(PLAIN, note(b"GNU\0", 3, BUILD_ID)))
    make_tree(tmp_path, {"rich.ko": module(RICH), "plain.ko": signed})
    live_module(tmp_path, "rich")
    args = ["--json", "-b", str(tmp_path), "-k", RELEASE, "rich", "plain", "blt", "nosuch"]
    out, err, status = run(args, capfdbinary)
    assert (err, status) == ("", 1)
    records = validate_output("show", out)["records"]
    assert [r.get("name") for r in records] == ["rich", "plain", "blt", None]
    assert records[0]["loaded"]["parameters"] == {"a_value": "12", "b_value": "Y"}
    assert records[0]["softdeps"] == {"pre": ["crc32c", "sha256"], "post": ["later", "last"]}
    assert records[0]["parameters"][1] == {"name": "count", "type": "int",
                                           "description": "How many"}  # fmt: skip
    assert records[1]["signature"] == {
        "id_type": "PKCS#7",
        "signer": "crafted",
        "key_id": "42",
        "hash_algorithm": "sha256",
        "signature_algorithm": "rsaEncryption",
        "signature": "11" * 8,
    }
    assert records[1]["build_id"] == BUILD_ID.hex()
    assert records[3] == {"query": "nosuch", "error": "Module nosuch not found."}


def test_usage(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    out, err, status = run([], capfdbinary)
    assert (out, status) == ("", 1)
    assert err == (
        "lkm show: ERROR: missing module, alias or file name.\n"
        "Try 'lkm show --help' for more information.\n"
    )
    out, err, status = run(["--help"], capfdbinary)
    assert status == 0
    assert out.startswith("Usage: lkm show [options] MODULE|ALIAS|FILE...\n")
    assert "--json" in out
