"""Property tests with oracles: inputs generated with a known meaning, read back by lkm.

Where test_reader_fuzz.py and the robustness tests check only that nothing but LkmError
escapes, these check what is read: a module's ``.modinfo`` built from generated strings (every
ELF class and byte order, every compression), a modprobe.d file written from generated
entries, and appended signatures (PKCS#7 and the raw trailer) with a known signer, key and
hash. The index's write-then-read and lookup oracles are in test_index.py.
"""

from __future__ import annotations

import gzip
import lzma

import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from lkm.config import Alias, Command, Options, parse_config
from lkm.module import ModuleFile
from lkm.signature import find_signature
from support import elfbuild
from support.signatures import (
    CN,
    DIGESTS,
    UNSIGNED,
    appended,
    cms,
    integer,
    name,
    signer_info,
    tlv,
)

COMPRESSORS = (
    lambda data: data,
    lambda data: lzma.compress(data, check=lzma.CHECK_CRC32),
    lambda data: zstandard.ZstdCompressor().compress(data),
    lambda data: gzip.compress(data, mtime=0),
)
SETTINGS = settings(max_examples=150, deadline=None)


# -- .modinfo ------------------------------------------------------------------------------

# A key holds neither NUL nor '='; a value holds no NUL ('=' included).
KEYS = st.sampled_from([b"name", b"alias", b"license", b"depends", b"parm"]) | st.binary(
    max_size=8
).map(lambda b: b.replace(b"\0", b"").replace(b"=", b""))
VALUES = st.binary(max_size=16).map(lambda b: b.replace(b"\0", b""))
# An entry: key=value, a key alone (kmod: an empty value), or padding (an empty string).
ENTRY = st.one_of(
    st.tuples(KEYS, VALUES).map(lambda kv: kv[0] + b"=" + kv[1]),
    KEYS,
    st.just(b""),
)


@SETTINGS
@given(
    st.lists(ENTRY, max_size=12),
    st.booleans(),
    st.sampled_from([(64, False), (32, False), (64, True), (32, True)]),
    st.sampled_from(COMPRESSORS),
)
def test_modinfo_strings_read_back(
    entries: list[bytes], terminated: bool, layout: tuple[int, bool], compress: object
) -> None:
    section = b"".join(entry + b"\0" for entry in entries)
    if not terminated:
        section = section[:-1]  # an unterminated last string counts too
    bits, big_endian = layout
    data = elfbuild.elf({".modinfo": section, ".text": b"\xc3"}, bits=bits, big_endian=big_endian)
    module = ModuleFile.from_bytes(compress(data), path="/x/gen-mod.ko")  # type: ignore[operator]

    def text(raw: bytes) -> str:
        return raw.decode("utf-8", "surrogateescape")

    expected = tuple(
        (text(key), text(value))
        for key, _, value in (entry.partition(b"=") for entry in entries if entry)
    )
    if len(section.lstrip(b"\0")) < 2:
        expected = ()  # kmod 34 finds no string in one byte left after the leading NULs
    assert module.modinfo == expected
    names = [value for key, value in expected if key == "name"]
    assert module.name == (names[0] if names else "gen_mod")


# -- modprobe.d ----------------------------------------------------------------------------

NAME = st.text(alphabet="abz09_-", min_size=1, max_size=8)
# Words of an options or command line: no blanks, no backslash, no '#', no NUL.
WORD = st.text(alphabet="abz09=,.-_$/'\"", min_size=1, max_size=6)
BLANK = st.sampled_from([" ", "\t", "  ", " \t "])
ONE_BLANK = st.sampled_from([" ", "\t"])


def _normal(module: str) -> str:
    return module.replace("-", "_")


@st.composite
def entry(draw: st.DrawFn) -> tuple[list[str], str, object]:
    """(physical lines, kind, what it means) for one line of a modprobe.d file."""
    kind = draw(st.sampled_from(["alias", "blacklist", "options", "install", "remove", "bad"]))
    module = draw(NAME)
    lead = draw(st.sampled_from(["", " ", "\t"]))
    if kind == "bad":
        # Not a command, or a command without its argument: a bad line.
        word = draw(st.sampled_from(["frobnicate", "options", "install", "alias"]))
        return [f"{lead}{word}{draw(BLANK)}"] if word != "frobnicate" else [f"{word} x"], kind, word
    if kind == "alias":
        target = draw(NAME)
        line = f"{lead}alias{draw(BLANK)}{module}{draw(BLANK)}{target}"
        return [line], kind, Alias(_normal(module), _normal(target))
    if kind == "blacklist":
        return [f"{lead}blacklist{draw(BLANK)}{module}"], kind, _normal(module)
    words = draw(st.lists(WORD, min_size=1, max_size=4))
    gaps = [draw(ONE_BLANK) for _ in words[1:]]
    rest = words[0] + "".join(gap + word for gap, word in zip(gaps, words[1:], strict=True))
    head = f"{lead}{kind}{draw(BLANK)}{module}{draw(ONE_BLANK)}"
    if draw(st.booleans()) and len(words) > 1:
        # A backslash at the end of a line joins the next one, adding nothing.
        first, _, second = rest.partition(gaps[0])
        lines = [f"{head}{first}{gaps[0]}\\", second]
    else:
        lines = [head + rest]
    if kind == "options":
        return lines, kind, Options(_normal(module), rest.replace("\t", " "))
    return lines, kind, Command(_normal(module), rest)


@SETTINGS
@given(st.lists(st.tuples(entry(), st.sampled_from(["", "# a comment", "   ", None])), max_size=12))
def test_modprobe_d_entries_read_back(
    entries: list[tuple[tuple[list[str], str, object], str | None]],
) -> None:
    lines: list[str] = []
    expected: dict[str, list[object]] = {
        "alias": [],
        "blacklist": [],
        "options": [],
        "install": [],
        "remove": [],
        "bad": [],
    }
    for (physical, kind, meaning), filler in entries:
        if filler is not None:
            lines.append(filler)
        lines.extend(physical)
        # A bad line is reported with the number of its (single) physical line.
        expected[kind].append((len(lines), meaning) if kind == "bad" else meaning)
    config = parse_config("\n".join(lines) + "\n", "/gen.conf")
    assert list(config.aliases) == expected["alias"]
    assert list(config.blacklist) == expected["blacklist"]
    assert list(config.options) == expected["options"]
    assert list(config.install) == expected["install"]
    assert list(config.remove) == expected["remove"]
    assert [
        (problem.line, problem.message.rpartition("'")[0].rpartition("'")[2])
        for problem in config.problems
    ] == expected["bad"]
    assert all(
        problem.message.startswith(f"kmod_config_parse: /gen.conf line {problem.line}: ")
        for problem in config.problems
    )


# -- appended signatures -------------------------------------------------------------------

SIGNER = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\0", exclude_categories=["Cs"]),
    max_size=20,
)


@SETTINGS
@given(
    SIGNER,
    st.integers(1, 2**160),
    st.sampled_from(sorted(DIGESTS)),
    st.binary(min_size=1, max_size=64),
)
def test_pkcs7_signature_reads_back(signer: str, serial: int, digest: str, raw: bytes) -> None:
    blob = cms(
        digest=digest,
        signers=[
            signer_info(
                issuer=name((CN, 0x0C, signer.encode())),
                serial=integer(serial),
                digest=digest,
                signature=tlv(4, raw),
            )
        ],
    )
    data = appended(blob)
    size, sig = find_signature(data, path="gen.ko")
    assert size == len(UNSIGNED)
    assert sig is not None
    assert sig.signer == signer
    assert sig.key_id == serial.to_bytes((serial.bit_length() + 7) // 8, "big")
    assert sig.hash_algo == DIGESTS[digest]
    assert sig.signature == raw
    assert ModuleFile.from_bytes(data).unsigned_size == len(UNSIGNED)


# The trailer's hash numbers seen with kmod 34 (test_signature.py's trailer cases).
TRAILER_HASHES = {0: "md4", 4: "sha256", 8: "sm3"}


@SETTINGS
@given(
    st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"\0", b"s")),
    st.binary(min_size=1, max_size=20),
    st.binary(min_size=1, max_size=40),
    st.sampled_from(sorted(TRAILER_HASHES)),
    st.sampled_from([(0, "PGP"), (1, "X509")]),
)
def test_raw_trailer_reads_back(
    signer: bytes, key: bytes, raw: bytes, hash_: int, id_type: tuple[int, str]
) -> None:
    data = appended(
        signer + key + raw,
        algo=1,
        hash_=hash_,
        id_type=id_type[0],
        signer_len=len(signer),
        key_id_len=len(key),
        sig_len=len(raw),
    )
    size, sig = find_signature(data, path="gen.ko")
    assert size == len(UNSIGNED)
    assert sig is not None
    assert (sig.signer, sig.key_id, sig.signature) == (
        signer.decode("utf-8", "surrogateescape"),
        key,
        raw,
    )
    assert sig.hash_algo == TRAILER_HASHES[hash_]
    assert dict(sig.modinfo_fields())["sig_id"] == id_type[1]
