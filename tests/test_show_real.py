"""``lkm show`` on the real trees: for a sample of modules (every module with a rare field, and
a spread of the others) and of built-in modules, every field of the record is what kmod 34's
``modinfo`` prints for it, field by field, and nothing modinfo prints is missing from the record;
the build-id is what ``readelf -n`` (binutils) says, the signature algorithm what
``openssl pkcs7 -print`` says; ``lkm show --json`` gives the same records, valid against the
schema."""

from __future__ import annotations

import json
import lzma
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest
import zstandard

from lkm.jsonable import to_jsonable
from lkm.moddir import ModuleDirectory
from lkm.show import Failure, ModuleInfo, show
from lkm.signature import read_trailer
from support import world
from support.schemas import validate

pytestmark = pytest.mark.slow

TREES = [*world.SPECS, "trixie-amd64-zstd"]
# Fields few modules have: every module with one is in the sample.
RARE = {"softdep", "weakdep", "version", "staging", "key_mappings", "import_ns", "firmware"}
SPREAD = 40  # of the other modules, one in this many
BUILTIN_SAMPLE = 60
# The fields modinfo pads even with -0, and the built-in module's heading.
PADDED = ("filename", "parm", "name")

Fields = dict[str, list[str]]


def kmod_records(tree: world.Tree, operands: list[str]) -> list[tuple[str, Fields]]:
    """kmod 34's ``modinfo -0`` for ``operands``: per module its filename and its fields."""
    done = world.kmod("modinfo", "-0", "-b", tree.chroot_root, "-k", tree.kver, *operands)
    records: list[tuple[str, Fields]] = []
    builtin_name: str | None = None
    for raw in done.stdout.split(b"\0")[:-1]:
        item = raw.decode("utf-8", "surrogateescape")
        padded = next((k for k in PADDED if item.startswith(f"{k}:{' ' * (15 - len(k))}")), None)
        if padded == "name":
            builtin_name = item[16:]
            continue
        if padded == "filename":
            records.append((item[16:], defaultdict(list)))
            if builtin_name is not None:
                records[-1][1]["name"].append(builtin_name)
                builtin_name = None
            continue
        if padded == "parm":
            records[-1][1]["parm"].append(item[16:])
            continue
        key, _, value = item.partition("=")
        records[-1][1][key].append(value)
    return records


def softdep_words(values: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    pre: list[str] = []
    post: list[str] = []
    current: list[str] | None = None
    for value in values:
        for word in value.split():
            if word in ("pre:", "post:"):
                current = pre if word == "pre:" else post
            elif current is not None:
                current.append(word)
    return tuple(pre), tuple(post)


def parm_line(name: str, kind: str | None, description: str | None) -> str:
    """A parameter as modinfo prints it in its full listing."""
    if kind is not None and description is not None:
        return f"{name}:{description} ({kind})"
    return f"{name}:{description if description is not None else kind}"


def modinfo_of(record: ModuleInfo) -> Fields:
    """The fields modinfo prints, rebuilt from the typed record alone."""
    fields: Fields = defaultdict(list)
    for key, value in (
        ("license", record.license),
        ("description", record.description),
        ("version", record.version),
        ("srcversion", record.srcversion),
        ("vermagic", record.vermagic),
    ):
        if value is not None:
            fields[key].append(value)
    fields["author"] = list(record.authors)
    fields["alias"] = list(record.aliases)
    fields["firmware"] = list(record.firmware)
    fields["import_ns"] = list(record.import_ns)
    fields["weakdep"] = list(record.weakdeps)
    odd_flags = {f.key for f in record.other if f.key in ("intree", "retpoline", "staging")}
    for flag in ("intree", "retpoline", "staging"):
        if getattr(record, flag) and flag not in odd_flags:
            fields[flag].append("Y")
    for field in record.other:
        fields[field.key].append(field.value)
    fields["parm"] = [parm_line(*param) for param in record.parameters]
    if record.signature is not None:
        signature = record.signature
        fields["sig_id"].append(signature.id_type)
        fields["signer"].append(signature.signer)
        fields["sig_key"].append(signature.key_id)
        fields["sig_hashalgo"].append(signature.hash_algorithm)
        fields["signature"].append(signature.signature)
    return {key: values for key, values in fields.items() if values}


SINGLE = ("license", "description", "version", "srcversion", "vermagic", "name")
LISTS = ("author", "alias", "firmware", "import_ns", "weakdep", "depends", "softdep")


def leftovers_only(record: ModuleInfo) -> bool:
    """Whether ``other`` holds only what has no typed place: a field lkm has no name for, a
    single field's repeat, a flag's odd value, a parameter string without ':'."""
    for field in record.other:
        if field.key in LISTS:
            return False
        if field.key in SINGLE and getattr(record, field.key) is None:
            return False
        if field.key in ("intree", "retpoline", "staging") and field.value == "Y":
            return False
        if field.key in ("parm", "parmtype") and ":" in field.value:
            return False
    return True


def expected_from(kmod_fields: Fields) -> Fields:
    """kmod's fields in the shape :func:`modinfo_of` gives: the ones a record keeps in a form of
    its own (name, depends, softdep) taken out, to be compared on their own; hex without
    colons and line breaks, as the record keeps it."""
    fields = {key: list(values) for key, values in kmod_fields.items() if values}
    for key in ("name", "depends", "softdep"):
        fields.pop(key, None)
    for key in ("sig_key", "signature"):
        if key in fields:
            fields[key] = [v.replace(":\n\t\t", ":").replace(":", "").lower() for v in fields[key]]
    return fields


def sample(tree: world.Tree) -> tuple[list[str], list[str]]:
    """Module files (paths as kmod sees them) and built-in module names to compare."""
    paths = [tree.chroot_path(p) for p in tree.modules()]
    everything = kmod_records(tree, paths)
    chosen = [
        path
        for number, (path, fields) in enumerate(everything)
        if number % SPREAD == 0
        or RARE & set(fields)
        or any(len(v) > 1 for k, v in fields.items() if k not in ("alias", "parm", "author"))
    ]
    builtin = (tree.moddir / "modules.builtin").read_text().split()
    names = sorted(p.rsplit("/", 1)[-1].split(".", 1)[0] for p in builtin)
    step = max(1, len(names) // BUILTIN_SAMPLE)
    return chosen, names[::step]


@pytest.mark.parametrize("name", TREES)
def test_records_hold_what_modinfo_prints(name: str) -> None:
    tree = world.tree(name)
    paths, builtins = sample(tree)
    # By path (the files) and by name (the built-in modules, and the files' names again: then
    # found through modules.dep, with the same fields).
    by_name = [p.rsplit("/", 1)[-1].split(".", 1)[0] for p in paths[:: max(1, len(paths) // 50)]]
    operands = [*paths, *builtins, *by_name]
    expected = kmod_records(tree, operands)
    records = []
    with ModuleDirectory.for_release(str(tree.root), tree.kver) as moddir:
        for operand in operands:
            host = str(world.CHROOT) + operand if operand.startswith("/") else operand
            records.extend(show(host, moddir))
    assert len(records) == len(expected)
    prefix = str(world.CHROOT)
    for record, (filename, kmod_fields) in zip(records, expected, strict=True):
        assert isinstance(record, ModuleInfo), record
        where = f"{name}: {filename}"
        if filename == "(builtin)":
            assert record.builtin and record.filename is None, where
            assert kmod_fields["name"] == [record.name], where
        else:
            assert not record.builtin, where
            assert record.filename == prefix + filename, where
            assert kmod_fields["name"][:1] == [record.name], where
            assert kmod_fields["depends"] == [",".join(record.depends)], where
        assert softdep_words(kmod_fields.get("softdep", [])) == tuple(record.softdeps), where
        assert modinfo_of(record) == expected_from(kmod_fields), where
        assert leftovers_only(record), where
        assert record.problems == (), where
    print(f"{name}: {len(records)} records equal to kmod 34's modinfo, field by field")


def decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def readelf_build_ids(files: list[Path]) -> dict[str, str | None]:
    done = subprocess.run(
        ["readelf", "-W", "-n", *map(str, files)], capture_output=True, text=True, check=False
    )
    found: dict[str, str | None] = {str(f): None for f in files}
    current = str(files[0])
    for line in done.stdout.splitlines():
        if line.startswith("File: "):
            current = line[len("File: ") :]
        match = re.search(r"Build ID: ([0-9a-f]+)$", line)
        if match:
            found[current] = match.group(1)
    return found


def openssl_signature_algorithm(blob: bytes) -> str:
    done = subprocess.run(
        ["openssl", "pkcs7", "-inform", "DER", "-print", "-noout"],
        input=blob,
        capture_output=True,
        check=True,
    )
    text = done.stdout.decode()
    # The signer info's digest_enc_alg, the algorithm line after it.
    after = text[text.index("digest_enc_alg:") :]
    match = re.search(r"algorithm: (.+?) \(", after)
    assert match, text
    return match.group(1)


@pytest.mark.parametrize("name", TREES)
def test_build_id_and_signature_algorithm(name: str) -> None:
    if shutil.which("readelf") is None:
        world.unavailable("readelf (binutils) is not installed")
    tree = world.tree(name)
    modules = tree.modules()[:: max(1, len(tree.modules()) // 40)]
    with tempfile.TemporaryDirectory(prefix="lkm-show-") as scratch:
        plain = []
        for number, path in enumerate(modules):
            target = Path(scratch) / f"{number}.ko"
            target.write_bytes(decompressed(path))
            plain.append(target)
        build_ids = readelf_build_ids(plain)
        with ModuleDirectory.for_release(str(tree.root), tree.kver) as moddir:
            for path, copy in zip(modules, plain, strict=True):
                (record,) = show(str(path), moddir)
                assert isinstance(record, ModuleInfo), record
                assert record.build_id == build_ids[str(copy)], path
                if record.signature is None or shutil.which("openssl") is None:
                    continue
                raw = copy.read_bytes()
                trailer = read_trailer(raw)
                blob = raw[trailer.blob_start : trailer.struct_start]
                algorithm = openssl_signature_algorithm(blob)
                assert record.signature.signature_algorithm == algorithm, path
    assert any(build_ids.values()), "no module with a build-id: nothing was compared"


@pytest.mark.parametrize("name", ["trixie-amd64", "bookworm-s390x"])
def test_json_is_the_records_and_valid(name: str) -> None:
    tree = world.tree(name)
    modules = tree.modules()[:: max(1, len(tree.modules()) // 30)]
    operands = [str(p) for p in modules] + ["ext4", "nosuch-module"]
    done = subprocess.run(
        [sys.executable, "-m", "lkm", "show", "--json", "-b", str(tree.root), "-k", tree.kver,
         *operands],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    validate("show", document)
    records = []
    with ModuleDirectory.for_release(str(tree.root), tree.kver) as moddir:
        for operand in operands:
            records.extend(show(operand, moddir))
    # The command line reads the kernel's state from the tree's root, where there is none.
    assert document["records"] == [to_jsonable(r) for r in records]
    assert records[-1] == Failure("nosuch-module", "Module nosuch-module not found.")
