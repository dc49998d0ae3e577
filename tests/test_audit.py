"""``lkm audit`` on fake running systems: a module tree, /proc and /sys as a kernel writes them,
and modprobe.d, all below a root (System.under). Each kind of finding, odd files, the exit
status and the JSON document against its schema."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from lkm.audit import (
    TAINTS,
    Finding,
    Severity,
    audit,
    decode_taint,
    exit_status,
    parse_build_id_note,
)
from lkm.cli import audit as audit_cli
from lkm.index import write_index
from lkm.system import System
from support import signatures
from support.elfbuild import elf64, modinfo_section
from support.schemas import validate_output
from support.unprivileged import held_to_modes

RELEASE = "1.0"
ID_A = bytes.fromhex("aa" * 20)
ID_B = bytes.fromhex("bb" * 20)
ID_C = bytes.fromhex("cc" * 20)


def note(desc: bytes, name: bytes = b"GNU\0", kind: int = 3) -> bytes:
    def padded(data: bytes) -> bytes:
        return data + bytes(-len(data) % 4)

    return struct.pack("<III", len(name), len(desc), kind) + padded(name) + padded(desc)


def module_file(name: str, build_id: bytes | None, *, signed: bool) -> bytes:
    info = modinfo_section(b"license=GPL", f"name={name}".encode(), b"vermagic=1.0 SMP ")
    sections = {".modinfo": info}
    if build_id is not None:
        sections[".note.gnu.build-id"] = note(build_id)
    body = elf64(sections)
    return signatures.appended(signatures.cms(), body=body) if signed else body


class Root:
    """A running system below ``path``: call the methods to load modules, then :meth:`audit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.moddir = path / "lib/modules" / RELEASE
        (self.moddir / "kernel").mkdir(parents=True)
        (path / "proc/sys/kernel").mkdir(parents=True)
        (path / "etc/modprobe.d").mkdir(parents=True)
        self.files: dict[str, bytes] = {}
        self.loaded: list[str] = []
        self.write("proc/sys/kernel/tainted", "0\n")
        self.write("proc/sys/kernel/modules_disabled", "0\n")
        self.write("proc/kallsyms", "ffffffff81000000 T _stext\n")
        self.write("sys/module/module/parameters/sig_enforce", "N\n")
        self.write("sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
        self.write("proc/cmdline", "quiet\n")
        self.proc_modules()
        self.index()

    def write(self, where: str, text: str | bytes) -> Path:
        path = self.path / where
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, str):
            text = text.encode()
        path.write_bytes(text)
        return path

    def install(self, name: str, data: bytes) -> None:
        """``data`` as the tree's file of ``name``."""
        self.files[name] = data
        (self.moddir / "kernel" / f"{name}.ko").write_bytes(data)
        self.index()

    def index(self) -> None:
        deps = [(n, f"kernel/{n}.ko:", i) for i, n in enumerate(sorted(self.files))]
        (self.moddir / "modules.dep.bin").write_bytes(write_index(deps))

    def load(self, name: str, build_id: bytes | None, taint: str = "") -> None:
        """The kernel has ``name`` live, with ``build_id`` in its notes."""
        self.loaded.append(name)
        self.write(f"sys/module/{name}/initstate", "live\n")
        self.write(f"sys/module/{name}/taint", taint + "\n")
        (self.path / f"sys/module/{name}/notes").mkdir(exist_ok=True)
        if build_id is not None:
            self.write(f"sys/module/{name}/notes/.note.gnu.build-id", note(build_id))
        self.proc_modules()
        with open(self.path / "proc/kallsyms", "a") as stream:
            stream.write(f"ffffffffc0000000 t {name}_init\t[{name}]\n")

    def proc_modules(self) -> None:
        lines = [f"{n} 16384 0 - Live 0xffffffffc0000000\n" for n in reversed(self.loaded)]
        self.write("proc/modules", "".join(lines))

    def system(self) -> System:
        return System.under(str(self.path), RELEASE)

    def audit(self) -> list[Finding]:
        return audit(self.system(), signers=False)


def good(root: Root, name: str = "good", build_id: bytes = ID_A) -> None:
    root.install(name, module_file(name, build_id, signed=True))
    root.load(name, build_id)


STATE = [
    ("info", "kernel-taint", None, "the kernel is not tainted"),
    ("info", "modules-disabled", None, "modules can be loaded"),
    ("info", "sig-enforce", None, "modules without a valid signature are loaded (and taint "
     "the kernel E)"),
    ("info", "lockdown", None, "the kernel is not locked down"),
]  # fmt: skip


def rows(findings: list[Finding]) -> list[tuple[str, str, str | None, str]]:
    return [(f.severity.value, f.kind, f.module, f.message) for f in findings]


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is not Severity.INFO]


def test_a_clean_system_has_nothing_but_its_state(tmp_path: Path) -> None:
    root = Root(tmp_path)
    good(root, "good")
    good(root, "other", ID_B)
    root.write("sys/module/builtin_with_params/parameters/x", "1\n")  # no initstate: built in
    findings = root.audit()
    assert rows(findings) == STATE
    assert exit_status(findings) == 0


def test_signed_modules_named_with_their_signer(tmp_path: Path) -> None:
    root = Root(tmp_path)
    good(root)
    signed = [f for f in audit(root.system()) if f.kind == "signed"]
    assert [(f.module, f.message, dict(f.details)) for f in signed] == [
        (
            "good",
            "good: signed by crafted (not verified)",
            {
                "file": f"{root.moddir}/kernel/good.ko",
                "signer": "crafted",
                "key_id": "42",
                "hash_algorithm": "sha256",
            },
        )
    ]


def test_every_taint_flag_decoded_with_its_letter_and_meaning(tmp_path: Path) -> None:
    assert "".join(t.letter for t in TAINTS) == "PFSRMBUDAWCIOELKXTNJ"
    assert [t.bit for t in TAINTS] == list(range(20))
    root = Root(tmp_path)
    value = (1 << 20) - 1 | 1 << 25
    root.write("proc/sys/kernel/tainted", f"{value}\n")
    findings = [f for f in root.audit() if f.kind == "kernel-taint"]
    assert [f.details["letter"] for f in findings] == [*"PFSRMBUDAWCIOELKXTNJ", "?"]
    assert [f.details["bit"] for f in findings] == [*range(20), 25]
    out_of_tree = "kernel tainted O: externally-built (out-of-tree) module was loaded"
    assert findings[12].message == out_of_tree
    assert findings[-1].message == "kernel tainted ?: unknown taint bit 25"
    assert all(f.details["value"] == value for f in findings)
    assert [t.letter for t in decode_taint(4097 | 8192)] == ["P", "O", "E"]


def test_module_taints_one_finding_a_letter_and_forced_loads(tmp_path: Path) -> None:
    root = Root(tmp_path)
    root.install("oot", module_file("oot", ID_A, signed=True))
    root.load("oot", ID_A, taint="POF")
    root.write("proc/sys/kernel/tainted", str(1 | 2 | 4096) + "\n")
    found = [r for r in rows(root.audit()) if r[2] == "oot"]
    assert found == [
        ("notice", "module-taint", "oot", "oot: taint P: proprietary module was loaded"),
        ("notice", "module-taint", "oot", "oot: taint O: externally-built (out-of-tree) module "
         "was loaded"),
        ("problem", "forced-load", "oot", "oot: loaded with its version checks forced (taint F)"),
    ]  # fmt: skip


def test_loaded_modules_against_their_files(tmp_path: Path) -> None:
    root = Root(tmp_path)
    good(root)
    root.install("plain", module_file("plain", ID_B, signed=False))
    root.load("plain", ID_B, taint="E")
    root.install("swapped", module_file("swapped", ID_C, signed=True))
    root.load("swapped", ID_A)
    root.load("gone", ID_A)
    root.install("noid", module_file("noid", None, signed=True))
    root.load("noid", ID_A)
    root.install("nonote", module_file("nonote", ID_A, signed=True))
    root.load("nonote", None)  # a kernel that shows no build-id: nothing to compare
    kernel = f"{root.moddir}/kernel"
    # In /proc/modules' order: the newest module first.
    assert rows(problems(root.audit())) == [
        ("warning", "module-taint", "plain", "plain: taint E: unsigned module was loaded"),
        ("warning", "build-id-mismatch", "noid", "noid: the file has no GNU build-id, the other "
         "has one"),
        ("warning", "missing-file", "gone", f"gone: no file in the module tree {root.moddir}"),
        ("problem", "build-id-mismatch", "swapped", f"swapped: {kernel}/swapped.ko is not the "
         f"module loaded (build-id {ID_C.hex()}, loaded {ID_A.hex()})"),
        ("warning", "unsigned", "plain", f"plain: {kernel}/plain.ko has no signature"),
    ]  # fmt: skip
    mismatch = next(f for f in root.audit() if f.module == "swapped")
    assert mismatch.details == {
        "file": f"{kernel}/swapped.ko",
        "loaded_build_id": ID_A.hex(),
        "file_build_id": ID_C.hex(),
    }


def test_no_module_tree_is_an_error(tmp_path: Path) -> None:
    root = Root(tmp_path)
    good(root)
    findings = audit(root.system()._replace(release="2.0"))
    assert rows(problems(findings)) == [
        ("error", "missing-tree", None, f"no module tree at {tmp_path}/lib/modules/2.0: loaded "
         "modules not compared with their files"),
    ]  # fmt: skip
    assert exit_status(findings) == 3


def test_modules_hidden_from_proc_modules(tmp_path: Path) -> None:
    root = Root(tmp_path)
    good(root)
    root.write("sys/module/rootkit/initstate", "live\n")
    with open(tmp_path / "proc/kallsyms", "a") as stream:
        stream.write(
            "ffffffffc0100000 t hide_me\t[rootkit]\n"
            "ffffffffc0200000 t other_hidden\t[sneaky]\n"
            "ffffffffc0300000 t bpf_prog_6deef7357e7b4530_sd_fw_egress\t[bpf]\n"
            "ffffffffc0400000 t ftrace_trampoline\t[__builtin__ftrace]\n"
        )
    assert rows(problems(root.audit())) == [
        ("problem", "hidden-module", "rootkit", "rootkit: in sysfs and kallsyms but not in "
         "/proc/modules"),
        ("problem", "hidden-module", "sneaky", "sneaky: in kallsyms but not in /proc/modules"),
    ]  # fmt: skip


def test_loaded_blacklisted_modules_with_each_place(tmp_path: Path) -> None:
    root = Root(tmp_path)
    good(root, "good")
    good(root, "snd_pcsp", ID_B)
    conf = root.write("etc/modprobe.d/bl.conf", "# no beeping\nblacklist snd-pcsp\nblacklist x\n")
    root.write("proc/cmdline", "quiet modprobe.blacklist=snd_pcsp,y\n")
    found = problems(root.audit())
    assert rows(found) == [
        ("warning", "blacklisted", "snd_pcsp", f"snd_pcsp: loaded although blacklisted "
         f"({conf}:2, kernel command line)"),
    ]  # fmt: skip
    assert found[0].details == {"sources": [f"{conf}:2", "kernel command line"]}


@pytest.mark.parametrize(
    ("disabled", "enforce", "lockdown", "messages"),
    [
        ("1\n", "Y\n", "none [integrity] confidentiality\n", [
            "no module can be loaded or removed",
            "only modules with a valid signature are loaded",
            "locked down: nothing may modify the running kernel",
        ]),
        ("0\n", None, "none integrity [confidentiality]\n", [
            "modules can be loaded",
            "the kernel does not check module signatures",
            "locked down: nothing may modify or read the kernel's memory",
        ]),
        (None, "N\n", None, [
            "modules without a valid signature are loaded (and taint the kernel E)",
            "lockdown state unknown: no lockdown file (securityfs not mounted, or no lockdown in "
            "the kernel)",
        ]),
    ],
)  # fmt: skip
def test_module_loading_signature_enforcement_and_lockdown(
    tmp_path: Path,
    disabled: str | None,
    enforce: str | None,
    lockdown: str | None,
    messages: list[str],
) -> None:
    root = Root(tmp_path)
    for where, value in (
        ("proc/sys/kernel/modules_disabled", disabled),
        ("sys/module/module/parameters/sig_enforce", enforce),
        ("sys/kernel/security/lockdown", lockdown),
    ):
        if value is None:
            (tmp_path / where).unlink()
        else:
            root.write(where, value)
    findings = root.audit()
    assert [f.message for f in findings[1:]] == messages
    assert exit_status(findings) == 0


def test_odd_state_files_are_one_finding_each(tmp_path: Path) -> None:
    root = Root(tmp_path)
    good(root)
    root.write("proc/sys/kernel/modules_disabled", "2\n")
    root.write("sys/module/module/parameters/sig_enforce", "maybe\n")
    root.write("sys/kernel/security/lockdown", "none integrity\n")
    (tmp_path / "proc/kallsyms").unlink()
    (tmp_path / "proc/kallsyms").mkdir()
    root.write("sys/module/good/taint", "Z\n")
    notes = tmp_path / "sys/module/good/notes/.note.gnu.build-id"
    notes.write_bytes(note(ID_A)[:20])
    s, p = "warning", str(tmp_path)
    assert rows(problems(root.audit())) == [
        (s, "unreadable", "good", f"{p}/sys/module/good/taint: unknown taint letter 'Z'"),
        (s, "unreadable", "good", f"{p}/sys/module/good/notes/.note.gnu.build-id: a note of 20 "
         "bytes runs past the 20 bytes read"),
        (s, "unreadable", None, f"{p}/proc/kallsyms: Is a directory"),
        (s, "unreadable", None, f"{p}/proc/sys/kernel/modules_disabled: neither 0 nor 1: '2'"),
        (s, "unreadable", None, f"{p}/sys/module/module/parameters/sig_enforce: neither Y nor N: "
         "'maybe'"),
        (s, "unreadable", None, f"{p}/sys/kernel/security/lockdown: no [mode] in 'none "
         "integrity'"),
    ]  # fmt: skip


def test_unreadable_module_file_and_taint(tmp_path: Path) -> None:
    root = Root(tmp_path)
    root.install("broken", b"\x7fELF" + b"\0" * 100)
    root.load("broken", ID_A)
    (tmp_path / "sys/module/broken/taint").unlink()
    (tmp_path / "sys/module/broken/taint").mkdir()
    found = rows(problems(root.audit()))
    assert [(s, k, m) for s, k, m, _ in found] == [
        ("warning", "unreadable", "broken"),
        ("warning", "unreadable", "broken"),
    ]
    assert found[0][3] == f"{tmp_path}/sys/module/broken/taint: Is a directory"
    assert found[1][3].startswith(f"{root.moddir}/kernel/broken.ko: ")


@pytest.mark.parametrize(
    ("tainted", "message"),
    [
        ("abc\n", "proc/sys/kernel/tainted: not a number: 'abc'"),
        (None, "proc/sys/kernel/tainted: No such file or directory"),
    ],
)
def test_kernel_taint_unreadable_is_an_error(
    tmp_path: Path, tainted: str | None, message: str
) -> None:
    root = Root(tmp_path)
    if tainted is None:
        (tmp_path / "proc/sys/kernel/tainted").unlink()
    else:
        root.write("proc/sys/kernel/tainted", tainted)
    findings = root.audit()
    assert rows(problems(findings)) == [("error", "unreadable", None, f"{tmp_path}/{message}")]
    assert exit_status(findings) == 3


def test_no_proc_modules_skips_the_module_checks(tmp_path: Path) -> None:
    root = Root(tmp_path)
    good(root)
    (tmp_path / "proc/modules").unlink()
    findings = root.audit()
    assert rows(problems(findings)) == [
        ("error", "unreadable", None, f"{tmp_path}/proc/modules: No such file or directory")
    ]
    assert exit_status(findings) == 3


def test_build_id_notes_only_root_reads_are_one_notice(tmp_path: Path) -> None:
    """/sys/module/NAME/notes/* are root's alone (mode 0400): one notice for all of them."""
    root = Root(tmp_path)
    good(root, "good")
    good(root, "other", ID_B)
    for name in ("good", "other"):
        notes = tmp_path / f"sys/module/{name}/notes/.note.gnu.build-id"
        notes.chmod(0o400)
        if os.geteuid() == 0:
            os.chown(notes, 65534, 65534)  # not root's: root without its capabilities cannot
    command = [sys.executable, "-m", "lkm", "audit", "--json", f"--root={tmp_path}", "-k", "1.0"]
    done = subprocess.run(held_to_modes(command), capture_output=True, check=False)
    if b"Operation not permitted" in done.stderr:
        pytest.skip("setpriv may not drop capabilities here")
    records = validate_output("audit", done.stdout)["records"]
    found = [r for r in records if r["severity"] != "info"]
    assert found == [
        {
            "severity": "notice",
            "kind": "unreadable",
            "module": None,
            "message": "build-ids of 2 loaded modules not compared: Permission denied (only "
            "root can read them)",
            "details": {
                "path": f"{tmp_path}/sys/module/*/notes/.note.gnu.build-id",
                "reason": "Permission denied",
                "modules": ["other", "good"],  # /proc/modules' order
            },
        }
    ]
    assert done.returncode == 1


def test_build_id_note_reader() -> None:
    assert parse_build_id_note(note(b"\x01\x02", b"Xen\0", 3) + note(ID_A)) == ID_A
    assert parse_build_id_note(note(ID_A, kind=1)) is None
    assert parse_build_id_note(b"") is None
    with pytest.raises(ValueError, match=r"^a note of 20 bytes runs past the 30 bytes read$"):
        parse_build_id_note(note(ID_A)[:30])
    with pytest.raises(ValueError, match=r"^3 bytes after the last note are no note$"):
        parse_build_id_note(note(ID_A, kind=1) + b"abc")


def test_exit_status_is_the_worst_severity() -> None:
    def of(*severities: Severity) -> int:
        return exit_status([Finding(s, "k", None, "m", {}) for s in severities])

    assert [of(), of(Severity.INFO), of(Severity.NOTICE), of(Severity.WARNING)] == [0, 0, 1, 1]
    assert [of(Severity.INFO, Severity.PROBLEM), of(Severity.ERROR, Severity.NOTICE)] == [2, 3]


# -- the command line ----------------------------------------------------------------------------


def run(args: list[str], capfdbinary: pytest.CaptureFixture[bytes]) -> tuple[str, str, int]:
    status = audit_cli.main(args, system=System(sysfs="/nonexistent", procfs="/nonexistent"))
    out, err = capfdbinary.readouterr()
    return out.decode(), err.decode(), status


UNVERIFIED = (
    "lkm audit: WARNING: signatures not verified: cannot read ROOT/boot/vmlinuz-1.0 (give --cert "
    "or --kernel)\n"
)


def test_text(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    root = Root(tmp_path)
    good(root)
    root.install("plain", module_file("plain", ID_B, signed=False))
    root.load("plain", ID_B, taint="OE")
    root.write("proc/sys/kernel/tainted", "12288\n")
    out, err, status = run([f"--root={tmp_path}", "-k", RELEASE], capfdbinary)
    kernel = f"{root.moddir}/kernel"
    assert (out, err.replace(str(tmp_path), "ROOT"), status) == (
        "notice   kernel tainted O: externally-built (out-of-tree) module was loaded\n"
        "warning  kernel tainted E: unsigned module was loaded\n"
        "notice   plain: taint O: externally-built (out-of-tree) module was loaded\n"
        "warning  plain: taint E: unsigned module was loaded\n"
        f"warning  plain: {kernel}/plain.ko has no signature\n"
        "info     modules can be loaded\n"
        "info     modules without a valid signature are loaded (and taint the kernel E)\n"
        "info     the kernel is not locked down\n",
        UNVERIFIED,
        1,
    )
    out, _, status = run([f"--root={tmp_path}", "-k", RELEASE, "-v"], capfdbinary)
    assert "info     good: signed by crafted (not verified)\n" in out


def test_text_of_a_clean_system(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    root = Root(tmp_path)
    good(root)
    out, err, status = run([f"--root={tmp_path}", "-k", RELEASE], capfdbinary)
    assert (out.splitlines()[-1], status) == ("nothing found", 0)
    assert err.replace(str(tmp_path), "ROOT") == UNVERIFIED


def test_json_validates(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    root = Root(tmp_path)
    good(root)
    root.install("plain", module_file("plain", ID_B, signed=False))
    root.load("plain", ID_A, taint="OEF")
    root.load("gone", ID_A)
    root.write("sys/module/rootkit/initstate", "live\n")
    root.write("etc/modprobe.d/bl.conf", "blacklist good\n")
    root.write("proc/sys/kernel/tainted", str(2 | 4096 | 8192) + "\n")
    root.write("sys/module/module/parameters/sig_enforce", "odd\n")
    out, err, status = run(["--json", f"--root={tmp_path}", "-k", RELEASE], capfdbinary)
    assert (err.replace(str(tmp_path), "ROOT"), status) == (UNVERIFIED, 2)
    records = validate_output("audit", out)["records"]
    kinds = {r["kind"] for r in records}
    assert kinds == {
        "kernel-taint", "module-taint", "forced-load", "unsigned", "signed", "build-id-mismatch",
        "missing-file", "hidden-module", "blacklisted", "modules-disabled", "unreadable",
        "lockdown",
    }  # fmt: skip


def test_bad_command_lines(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    assert run(["extra"], capfdbinary) == (
        "",
        "lkm audit: ERROR: unexpected argument 'extra'.\n"
        "Try 'lkm audit --help' for more information.\n",
        4,
    )
    out, err, status = run(["--nosuch"], capfdbinary)
    assert (out, status) == ("", 4)
    assert err.endswith("Try 'lkm audit --help' for more information.\n")
    out, err, status = run(["--help"], capfdbinary)
    assert (err, status) == ("", 0)
    assert out.startswith("Usage: lkm audit [options]\n")


# -- signatures verified against certificates ---------------------------------------------------


class Key(NamedTuple):
    key: bytes  # PEM
    cert: bytes  # PEM
    der: bytes


def make_key(name: str) -> Key:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(0x5A17)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Key(
        pem,
        cert.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.DER),
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {"trusted": make_key("Trusted key"), "other": make_key("Other key")}


def signed_with(key: Key, name: str, build_id: bytes) -> bytes:
    from lkm.sign import sign_module

    return sign_module(module_file(name, build_id, signed=False), key.key, key.cert)


def test_signatures_verified_against_the_certificates(tmp_path: Path, keys: dict[str, Key]) -> None:
    root = Root(tmp_path)
    root.install("good", signed_with(keys["trusted"], "good", ID_A))
    root.load("good", ID_A)
    root.install("stranger", signed_with(keys["other"], "stranger", ID_B))
    root.load("stranger", ID_B)
    data = bytearray(signed_with(keys["trusted"], "flipped", ID_C))
    data[70] ^= 1  # inside the signed content, outside the build-id note
    root.install("flipped", bytes(data))
    root.load("flipped", ID_C)
    findings = audit(root.system(), certificates=[keys["trusted"].der])
    kernel = f"{root.moddir}/kernel"
    found = [(f.severity.value, f.kind, f.module, f.message) for f in findings[1:-3]]
    assert len(found) == 3  # newest first, as /proc/modules lists them
    assert found[0][:3] == ("problem", "bad-signature", "flipped")
    assert found[0][3].startswith(f"flipped: {kernel}/flipped.ko: a signature the kernel refuses (")
    assert found[1][:3] == ("warning", "unknown-key", "stranger")
    assert found[1][3].startswith(f"stranger: {kernel}/stranger.ko: signed with a key not trusted")
    assert found[2] == (
        "info", "signed", "good", "good: signed by Trusted key, verified with CN=Trusted key"
    )  # fmt: skip
    assert findings[2].details["verdict"] == "unknown-key"
    assert exit_status(findings) == 2


def test_cert_and_kernel_options(
    tmp_path: Path, keys: dict[str, Key], capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    root = Root(tmp_path)
    root.install("good", signed_with(keys["trusted"], "good", ID_A))
    root.load("good", ID_A)
    cert = root.write("trusted.pem", keys["trusted"].cert)
    args = ["--json", f"--root={tmp_path}", "-k", RELEASE, f"--cert={cert}"]
    out, err, status = run(args, capfdbinary)
    assert (err, status) == ("", 0)
    records = validate_output("audit", out)["records"]
    assert [r["details"].get("verdict") for r in records if r["kind"] == "signed"] == ["valid"]
    out, err, status = run([*args[:-1], f"--cert={root.moddir}/kernel/good.ko"], capfdbinary)
    assert (out, status) == ("", 3)
    assert err.startswith("lkm audit: ERROR: ")
    out, err, status = run([*args[:-1], f"--kernel={cert}"], capfdbinary)
    assert (out, status) == ("", 3)
    assert err.startswith("lkm audit: ERROR: ")
