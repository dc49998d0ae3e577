"""The fuzz targets: one function per parser, taking arbitrary bytes.

Each target feeds its bytes to one of lkm's parsers and then asks for everything the parser
can give, so that lazily parsed parts are reached too. ``LkmError`` is the one failure lkm
promises on bad input: a target swallows it and lets anything else escape, which is a finding.
Each target also names the tokens worth inserting (a libFuzzer dictionary) and makes a few
seeds of its own, so that it runs without a generated corpus (the quick test does that).
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from lkm.errors import LkmError

# Object files built for the tests: small real ELF modules of both classes and byte orders.
_OBJECTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "objects"
_SIGNED = Path(__file__).resolve().parent.parent / "tests" / "data" / "signatures"


class Target(NamedTuple):
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    tokens: tuple[bytes, ...] = ()
    modules: tuple[str, ...] = ()  # lkm modules the target exercises (for instrumentation)


# The errors the targets swallowed, for an engine that steers by them (cleared after each run).
ERRORS: list[str] = []


@contextlib.contextmanager
def _tolerated() -> Iterator[None]:
    try:
        yield
    except LkmError as err:
        ERRORS.append(f"{type(err).__name__}: {err}")


def _all(*reads: Callable[[], object]) -> None:
    # Each read may fail with lkm's error; the others are still worth trying.
    for read in reads:
        with _tolerated():
            read()


def _objects() -> list[bytes]:
    return [path.read_bytes() for path in sorted(_OBJECTS.glob("*.o"))]


def _signed() -> list[bytes]:
    return [path.read_bytes() for path in sorted(_SIGNED.glob("*.ko"))]


# -- decompression -----------------------------------------------------------------------------


_XZ_BUFFER: list[object] = []


def run_decompress(data: bytes) -> None:
    from lkm.compress import decompress, xz_reread_reasons
    from lkm.xz_buffer import XzBuffer

    if not _XZ_BUFFER:
        _XZ_BUFFER.append(XzBuffer.load())
    buffer = _XZ_BUFFER[0]
    # depmod's own xz decoder: what it decodes, decompress must decode to the same bytes.
    fast = buffer.decompress(data) if isinstance(buffer, XzBuffer) else None
    fast_bytes = None if fast is None else fast.tobytes()
    try:
        plain = decompress(data, path="fuzz.ko")
    except LkmError as err:
        ERRORS.append(f"{type(err).__name__}: {err}")
        if fast_bytes is not None:
            raise AssertionError(f"XzBuffer decoded what decompress refuses: {err}") from None
        with _tolerated():
            xz_reread_reasons(data, 2)
        return
    if fast_bytes is not None and fast_bytes != plain:
        raise AssertionError("XzBuffer and decompress decoded different bytes")


def seeds_decompress() -> list[bytes]:
    import zstandard

    body = _objects()[0]
    return [
        lzma.compress(body, check=lzma.CHECK_CRC32),
        lzma.compress(body, check=lzma.CHECK_CRC64) + b"\0" * 4 + lzma.compress(b"x"),
        zstandard.ZstdCompressor(write_checksum=True).compress(body),
        zstandard.ZstdCompressor(write_content_size=False).compress(body),
        gzip.compress(body, mtime=0),
    ]


# -- ELF, module, modinfo ----------------------------------------------------------------------


def run_elf(data: bytes) -> None:
    from lkm.elf import ElfFile

    elf = None
    with _tolerated():
        elf = ElfFile(data, path="fuzz.ko")
    if elf is None:
        return
    _all(lambda: elf.sections, lambda: elf.symbols)
    with _tolerated():
        for section in elf.sections:
            _all(
                lambda s=section: elf.section_data(s),  # type: ignore[misc]
                lambda s=section: elf.notes(s),  # type: ignore[misc]
            )
    _all(lambda: elf.sections_named((".modinfo", "__versions", ".gnu.linkonce.this_module")))


def run_module(data: bytes) -> None:
    from lkm.module import ModuleFile

    module = ModuleFile.from_bytes(data, path="fuzz.ko")
    _all(
        lambda: module.has_modinfo,
        lambda: module.modinfo,
        lambda: module.name,
        lambda: module.build_id,
        lambda: module.versions,
        lambda: module.exports,
        lambda: module.imports,
        lambda: module.has_this_module,
        lambda: module.signature,
        lambda: module.unsigned_size,
    )


def run_modinfo(data: bytes) -> None:
    """The .modinfo strings of a module as modinfo shows them (parameters gathered)."""
    from lkm.modinfo import collect_params
    from lkm.module import ModuleFile

    module = ModuleFile.from_bytes(data, path="fuzz.ko")
    with _tolerated():
        collect_params(module.modinfo)


# -- signatures, PKCS#7, DER, X.509 ------------------------------------------------------------


def run_signature(data: bytes) -> None:
    from lkm.signature import find_signature

    find_signature(data, path="fuzz.ko")
    with _tolerated():
        _, signature = find_signature(data, path="fuzz.ko", strict=True)
        if signature is not None:
            signature.modinfo_fields()


def run_pkcs7(data: bytes) -> None:
    from lkm.der import DerReader
    from lkm.signature import read_pkcs7

    with _tolerated():
        read_pkcs7(data, path="fuzz.p7s", offset=0, algo=0, hash=0)
    # Walk every value, as a generic DER reader would.
    der = DerReader(data, "fuzz.p7s")
    with _tolerated():
        pending = [der.read(0, len(data))]
        seen = 0
        while pending and seen < 10_000:
            tlv = pending.pop()
            seen += 1
            _all(lambda t=tlv: der.content(t), lambda t=tlv: der.integer(t))  # type: ignore[misc]
            _all(lambda t=tlv: der.oid(t))  # type: ignore[misc]
            if tlv.constructed:
                with _tolerated():
                    pending.extend(der.children(tlv))


def run_certificate(data: bytes) -> None:
    from lkm.certificates import load_der, load_file

    certs = []
    with _tolerated():
        certs.append(load_der(data))
    with _tolerated():
        certs += load_file(data)
    for cert in certs:
        cert.to_json()
        cert.pem()


def seeds_pkcs7() -> list[bytes]:
    from lkm.signature import read_trailer

    blobs = []
    for module in _signed():
        with _tolerated():
            trailer = read_trailer(module)
            blobs.append(module[trailer.blob_start : trailer.struct_start])
    return blobs


def seeds_certificate() -> list[bytes]:
    # Certificates are inside the signatures' PKCS#7 (``rsa-certs.ko`` carries one).
    from lkm.der import DerReader

    found = []
    for blob in seeds_pkcs7():
        der = DerReader(blob)
        with _tolerated():
            pending = [der.read(0, len(blob))]
            while pending:
                tlv = pending.pop()
                if tlv.constructed:
                    pending.extend(der.children(tlv))
                # A certificate is a SEQUENCE of three: TBSCertificate, algorithm, signature.
                if tlv.is_universal(0x10, constructed=True) and tlv.end - tlv.start > 300:
                    parts = der.children(tlv)
                    if len(parts) == 3 and parts[0].is_universal(0x10, constructed=True):
                        found.append(blob[tlv.start : tlv.end])
    return found or seeds_pkcs7()


# -- the binary index --------------------------------------------------------------------------

_INDEX_QUERIES = ("dummy", "ext4", "pci:v00008086d000010D3sv00000000", "", "a", "symbol:x")


def run_index(data: bytes) -> None:
    from lkm.index import Index

    index = None
    with _tolerated():
        index = Index.from_bytes(data, path="fuzz.bin")
    if index is None:
        return
    found: list[str] = []
    with _tolerated():
        for key, _ in index.items():
            found.append(key)
    for query in (*_INDEX_QUERIES, *found[:3]):
        _all(lambda q=query: index.lookup(q), lambda q=query: index.search_wildcard(q))  # type: ignore[misc]
    _all(lambda: list(index.keys("a")), lambda: list(index.keys("")))


def seeds_index() -> list[bytes]:
    from lkm.index import write_index

    return [
        write_index([("dummy", "kernel/dummy.ko:", 0), ("ext4", "kernel/ext4.ko: jbd2", 0)]),
        write_index(
            [
                ("pci:v00008086d*sv*", "e1000e", 0),
                ("pci:v00008086d000010D3sv*", "e1000e", 1),
                ("fs-ext4", "ext4", 2),
                ("a[bc]?", "x", 3),
            ]
        ),
        write_index([(f"symbol:s{i}", f"m{i % 3}", i) for i in range(20)]),
    ]


# -- configuration ------------------------------------------------------------------------------


def run_modprobe_d(data: bytes) -> None:
    from lkm.config import parse_config, parse_config_located

    config, _ = parse_config_located(data, "fuzz.conf")
    parse_config(data, "fuzz.conf")
    for name in ("dummy", "ext4", "pci:v00008086d000010D3sv00000000", ""):
        config.alias_targets(name)
        config.install_command(name)
        config.softdep(name)
        config.weakdep(name)
        config.options_for(name)
    for softdep in config.softdeps:
        softdep.shown()
    ERRORS.extend(problem.message for problem in config.problems)


_CONFIG_TOKENS = (
    b"alias", b"options", b"install", b"remove", b"blacklist", b"softdep", b"weakdep",
    b"include", b"config", b"pre:", b"post:", b"\\\n", b"#", b"*", b"?", b"[", b"]", b"[!",
    b"\t", b"\"", b"'", b"\0", b"-", b"_", b"=", b",",
)  # fmt: skip


def seeds_modprobe_d() -> list[bytes]:
    return [
        b"# Debian-style aliases\nalias char-major-10-175 agpgart\nalias binfmt-0064 binfmt_aout\n",
        b"options loop max_loop=8\noptions snd-hda-intel model=auto power_save=1\n",
        b"install dummy /sbin/modprobe --ignore-install dummy $CMDLINE_OPTS; /bin/true\n"
        b"remove dummy /bin/true\nblacklist pcspkr\n",
        b"softdep ext4 pre: crc32c post: jbd2\nweakdep nlmon veth\n"
        b'options dummy numdummies=2 w="a b" \\\n  z=1\n',
        b"alias pci:v00008086d*sv*sd*bc02sc00i* e1000e\nalias fs-* [a-z]*\n",
    ]


def run_depmod_d(data: bytes) -> None:
    from lkm.depmod.config import parse_config

    text = data.decode("utf-8", "surrogateescape")
    problems: list[str] = []
    for release in ("6.12.117+deb13-amd64", "6.1.0-50-amd64", ""):
        parse_config([("fuzz.conf", text), ("more.conf", text[: len(text) // 2])], release,
                     problems.append)  # fmt: skip
    ERRORS.extend(problems)


_DEPMOD_TOKENS = (
    b"search", b"override", b"external", b"exclude", b"built-in", b"updates", b"extra",
    b"*", b".*", b"(", b")", b"[", b"\\", b"\n", b"#", b"\t",
)  # fmt: skip


def seeds_depmod_d() -> list[bytes]:
    return [
        b"search updates ubuntu built-in\n",
        b"override e1000e 6.12.* kernel/drivers/net/ethernet/intel\noverride dummy * extra\n",
        b"external 6.1.0-50-amd64 /lib/modules/external\nexclude .debug\n",
        b"# comment\nsearch extra \\\n  updates\n",
    ]


def run_cmdline(data: bytes) -> None:
    from lkm.config import cmdline_words, parse_kernel_cmdline, split_modprobe_options
    from lkm.modules_load import parse_cmdline

    text = data.decode("utf-8", "surrogateescape")
    parse_kernel_cmdline(data)
    cmdline_words(text)
    split_modprobe_options(text)
    parse_cmdline(data, "/proc/cmdline")


_CMDLINE_TOKENS = (
    b"modprobe.blacklist=", b"modules_load=", b"rd.modules_load=", b"modules-load=", b".",
    b"=", b"\"", b"'", b" ", b"\t", b"\n", b",", b"--",
)  # fmt: skip


def seeds_cmdline() -> list[bytes]:
    return [
        b"BOOT_IMAGE=/boot/vmlinuz-6.12.117+deb13-amd64 root=UUID=0a1b ro quiet\n",
        b'console=ttyS0 dummy.numdummies=2 "nlmon.x=a b" modprobe.blacklist=pcspkr,floppy\n',
        b"modules_load=dummy,veth rd.modules-load=nlmon panic=1 -- init args\n",
    ]


def run_modules_load_d(data: bytes) -> None:
    from lkm.modules_load import parse_file

    parse_file(data, "fuzz.conf")


def seeds_modules_load_d() -> list[bytes]:
    return [
        b"# /etc/modules: kernel modules to load at boot time.\nloop\n;lp\n",
        b"dummy\r\n  veth \t\n#nlmon\n\nbr_netfilter\n",
    ]


TARGETS = {
    target.name: target
    for target in (
        Target("decompress", run_decompress, seeds_decompress,
               (b"\xfd7zXZ\0", b"YZ", b"\x28\xb5\x2f\xfd", b"\x1f\x8b\x08"),
               ("compress", "xz_buffer")),
        Target("elf", run_elf, _objects, (b"\x7fELF", b".modinfo", b"__versions", b".symtab"),
               ("elf",)),
        Target("module", run_module, lambda: _objects() + seeds_decompress() + _signed(),
               (b"\x7fELF", b"~Module signature appended~\n", b"name=", b"vermagic="),
               ("module", "elf", "compress", "signature", "der")),
        Target("modinfo", run_modinfo, _objects, (b"parm=", b"parmtype=", b":", b"\0"),
               ("modinfo", "module", "elf")),
        Target("signature", run_signature, _signed, (b"~Module signature appended~\n",),
               ("signature", "der")),
        Target("pkcs7", run_pkcs7, seeds_pkcs7, (b"\x30\x82", b"\x06\x09", b"\x80", b"\xa0"),
               ("signature", "der")),
        Target("certificate", run_certificate, seeds_certificate,
               (b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n"),
               ("certificates",)),
        Target("index", run_index, seeds_index, (b"\xb0\x07\xf4\x57", b"\x00\x02\x00\x01"),
               ("index",)),
        Target("modprobe.d", run_modprobe_d, seeds_modprobe_d, _CONFIG_TOKENS,
               ("config", "wildcard")),
        Target("depmod.d", run_depmod_d, seeds_depmod_d, _DEPMOD_TOKENS, ("depmod.config",)),
        Target("cmdline", run_cmdline, seeds_cmdline, _CMDLINE_TOKENS,
               ("config", "modules_load")),
        Target("modules-load.d", run_modules_load_d, seeds_modules_load_d,
               (b"#", b";", b"\r\n", b"\n"), ("modules_load",)),
    )
}  # fmt: skip
