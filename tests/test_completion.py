"""Completion scripts and manual pages, generated from the table of commands: up to date in the
package, completing commands, options and module names in the real bash, zsh and fish, and
pages that render without a warning and list every option."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lkm.cli import completions, docs, manpages
from lkm.cli.commands import BY_NAME, COMMANDS, Command, Kind
from lkm.cli.interface import Operands, interface, interfaces
from lkm.index import Index, write_index
from support import shells
from support.world import unavailable

SHARE = docs.SHARE
RELEASE = "9.9.9-test"
# Modules of the test tree (modules.dep.bin) and its built-ins (modules.builtin.bin).
MODULES = ("ext4", "extcon_core", "snd_hda_codec", "snd_hda_intel", "xfs")
BUILTIN = ("exfat_builtin",)
# Aliases as depmod writes them (modules.alias.bin, '-' as '_'): names a user types, and
# patterns (a device's, a bracket expression) that completions leave out.
ALIASES = (
    ("fs_ext4", "ext4"), ("fs_xfs", "xfs"), ("fs_extra[0-9]", "ext4"),
    ("platform:snd_hda_dummy", "snd_hda_intel"),
    ("pci:v00008086d*sv*sd*bc04sc03i00*", "snd_hda_intel"),
)  # fmt: skip
BUILTIN_ALIASES = (("fs_exfat", "exfat_builtin"),)
# /proc/modules of the QEMU guest of the drivers tests (tests/vm/drivers_guest.py), when the
# HD-audio codec and the USB disk were in use.
PROC_MODULES = Path(__file__).resolve().parent / "data" / "proc-modules-qemu-trixie"
LOADED = sorted(line.split()[0] for line in PROC_MODULES.read_text().splitlines())


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lkm", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with ``lib/modules/9.9.9-test`` and its two indexes of names."""
    root = tmp_path_factory.mktemp("root")
    moddir = root / "lib" / "modules" / RELEASE
    moddir.mkdir(parents=True)
    deps = [(name, f"kernel/{name}.ko:", 0) for name in MODULES]
    (moddir / "modules.dep.bin").write_bytes(write_index(deps))
    (moddir / "modules.builtin.bin").write_bytes(write_index([(n, "", 0) for n in BUILTIN]))
    (moddir / "modules.alias.bin").write_bytes(write_index([(k, v, 0) for k, v in ALIASES]))
    (moddir / "modules.builtin.alias.bin").write_bytes(
        write_index([(k, v, 0) for k, v in BUILTIN_ALIASES])
    )
    (root / "lib" / "modules" / "1.0-other").mkdir()
    (root / "lfile").write_text("not a directory\n")
    return root


def loaded(prefix: str) -> list[str]:
    """The loaded modules of PROC_MODULES starting with ``prefix``, spelled as it is."""
    dashed = [name.replace("_", "-") for name in LOADED] if "-" in prefix else LOADED
    return [name for name in dashed if name.startswith(prefix)]


# --------------------------------------------------------------------- shipped and current


def test_the_shipped_files_are_up_to_date() -> None:
    assert docs.stale() == [], "run: python -m lkm.cli.docs"


def test_every_command_has_a_page_and_a_place_in_each_script() -> None:
    names = {p.name for p in (SHARE / "man" / "man1").glob("*.1")}
    assert names == {"lkm.1"} | {f"lkm-{c.name}.1" for c in COMMANDS}
    for path in ("completions/bash/lkm", "completions/zsh/_lkm", "completions/fish/lkm.fish"):
        text = (SHARE / path).read_text()
        for command in COMMANDS:
            assert command.name in text, (path, command.name)


def test_no_page_takes_a_name_of_kmod() -> None:
    """kmod ships modinfo(8) and the others: lkm's pages are all named lkm*."""
    assert all(p.name.startswith("lkm") for p in (SHARE / "man" / "man1").iterdir())


def test_completion_prints_the_shipped_script() -> None:
    for shell, path in (("bash", "bash/lkm"), ("zsh", "zsh/_lkm"), ("fish", "fish/lkm.fish")):
        done = run(["completion", shell])
        assert (done.stdout, done.returncode) == (
            (SHARE / "completions" / path).read_text(),
            0,
        )


def test_completion_of_an_unknown_shell() -> None:
    done = run(["completion", "tcsh"])
    assert (done.stdout, done.stderr, done.returncode) == (
        "",
        "lkm completion: ERROR: expected one shell: bash, zsh or fish.\n",
        1,
    )


def test_the_package_data_names_the_generated_files() -> None:
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    for pattern in ("share/completions/bash/lkm", "share/completions/zsh/_lkm",
                    "share/completions/fish/lkm.fish", "share/man/man1/*.1"):  # fmt: skip
        assert f'"{pattern}"' in text


# ----------------------------------------------------------------------- the helpers


def test_module_names_from_the_tree(tree: Path) -> None:
    done = run(["complete-modules", "-b", str(tree), "-k", RELEASE, "ex"])
    assert (done.stdout, done.stderr, done.returncode) == (
        "exfat_builtin\next4\nextcon_core\n",
        "",
        0,
    )


def test_module_names_spelled_with_dashes_as_the_prefix_is(tree: Path) -> None:
    done = run(["complete-modules", "-b", str(tree), "-k", RELEASE, "snd-hda-"])
    assert done.stdout == "snd-hda-codec\nsnd-hda-intel\n"


def test_module_names_of_a_missing_tree_are_none_and_silent(tmp_path: Path) -> None:
    done = run(["complete-modules", "-b", str(tmp_path), "-k", RELEASE])
    assert (done.stdout, done.stderr, done.returncode) == ("", "", 0)
    done = run(["complete-modules", "--frobnicate"])
    assert (done.stdout, done.stderr, done.returncode) == ("", "", 1)


def test_releases_under_a_root(tree: Path) -> None:
    done = run(["complete-releases", "-b", str(tree)])
    assert (done.stdout, done.returncode) == (f"1.0-other\n{RELEASE}\n", 0)
    assert run(["complete-releases", "-b", str(tree), "9"]).stdout == f"{RELEASE}\n"


def test_aliases_only_for_a_prefix_and_only_names_not_patterns(tree: Path) -> None:
    args = ["complete-modules", "-b", str(tree), "-k", RELEASE, "--aliases"]
    assert run([*args, "fs-"]).stdout == "fs-exfat\nfs-ext4\nfs-xfs\n"
    assert run([*args, "fs_ex"]).stdout == "fs_exfat\nfs_ext4\n"
    assert run([*args, "platform:"]).stdout == "platform:snd_hda_dummy\n"
    assert run([*args, "pci:"]).stdout == ""
    assert run([*args, "x"]).stdout == "xfs\n"
    # Without a prefix: the module names alone.
    assert run([*args, ""]).stdout == run(args[:-1]).stdout
    assert run(args[:-1]).stdout.split() == sorted((*MODULES, *BUILTIN))


def test_loaded_modules_of_a_missing_proc_are_none_and_silent(tmp_path: Path) -> None:
    from lkm.cli.completion import loaded_names

    with pytest.raises(FileNotFoundError):
        loaded_names(str(tmp_path), "")
    (tmp_path / "modules").write_text(PROC_MODULES.read_text())
    assert loaded_names(str(tmp_path), "snd-hda-") == loaded("snd-hda-")
    assert loaded_names(str(tmp_path), "") == LOADED
    if not Path("/proc/modules").exists():
        done = run(["complete-modules", "--loaded", "x"])
        assert (done.stdout, done.stderr, done.returncode) == ("", "", 1)


def test_every_option_taking_a_value_says_what_it_is() -> None:
    """Completions offer an option's value from its getopt table: ``kind`` (and ``choices``
    for a choice), never guessed from the help's words."""
    from lkm.cli.getopt import KINDS

    for found in interfaces():
        for doc in found.options:
            option = doc.option
            if option.has_arg:
                assert option.kind in KINDS, (found.command.name, doc.spellings)
                assert bool(option.choices) == (option.kind == "choice"), doc.spellings
            else:
                assert (option.kind, option.choices) == ("", ()), doc.spellings


def test_choices_are_the_ones_the_commands_take() -> None:
    from lkm.cli.kmodcmd import FORMATS as STATIC_NODES_FORMATS
    from lkm.graph import FORMATS
    from lkm.sign import HASHES
    from lkm.status import Want

    def choices(command: str, long: str) -> tuple[str, ...]:
        doc = interface(BY_NAME[command]).spelled(long)
        assert doc is not None
        return doc.choices

    assert choices("graph", "format") == FORMATS == ("dot", "svg", "png")
    assert choices("status", "want") == tuple(w.value for w in Want) == ("loaded", "absent")
    assert choices("sign", "hash") == tuple(HASHES)
    assert choices("static-nodes", "format") == STATIC_NODES_FORMATS


def test_helpers_are_not_listed_by_help() -> None:
    assert "complete-modules" not in run(["--help"]).stdout


def test_index_keys_below_a_prefix_are_those_items_gives() -> None:
    keys = ["a", "ab", "abc", "abd", "b", "ba", "snd_hda_intel", "snd_hdb", "x*y"]
    index = Index.from_bytes(write_index([(k, "v", 0) for k in keys]))
    for prefix in ["", "a", "ab", "abc", "abz", "s", "snd_hd", "snd_hda_intel", "snd_hda_intelx",
                   "x", "x*", "z", "\u00e9"]:  # fmt: skip
        assert list(index.keys(prefix)) == [k for k, _ in index.items() if k.startswith(prefix)]


# --------------------------------------------------------------------------- bash


def test_bash(tree: Path) -> None:
    b, k = ["-b", str(tree)], ["-k", RELEASE]
    found = shells.bash(
        SHARE / "completions" / "bash" / "lkm",
        [
            ["lkm", "mod"],
            ["lkm", "modinfo", "-"],
            ["lkm", "modinfo", "--s"],
            ["lkm", "modinfo", *b, *k, "ex"],
            ["lkm", "modprobe", "-d", str(tree), "-S", RELEASE, "snd-hda-"],
            ["lkm", "modprobe", "--dirname", "=", str(tree), "--set-version", RELEASE, "x"],
            ["lkm", "modinfo", *b, "-k", ""],
            ["lkm", "kmod", ""],
            ["lkm", "kmod", "static-nodes", "--f"],
            ["lkm", "sandbox", "-k", "vmlinuz", "modinfo", *b, *k, "xf"],
            ["lkm", "completion", ""],
            ["lkm", "show", "--"],
            ["lkm", "show", *b, *k, "snd"],
        ],
    )
    assert found == [
        ["modinfo", "modprobe", "modules-load"],
        ["-a", "--author", "-d", "--description", "-l", "--license", "-p", "--parameters",
         "-n", "--filename", "-0", "--null", "-m", "--modname", "-F", "--field", "-k",
         "--set-version", "-b", "--basedir", "-V", "--version", "-h", "--help"],
        ["--set-version"],
        ["exfat_builtin", "ext4", "extcon_core"],
        ["snd-hda-codec", "snd-hda-intel"],
        ["xfs"],
        ["1.0-other", RELEASE],
        ["help", "list", "static-nodes"],
        ["--format"],
        ["xfs"],
        ["bash", "zsh", "fish"],
        ["--basedir", "--set-version", "--config", "--json", "--help"],
        ["snd_hda_codec", "snd_hda_intel"],
    ]  # fmt: skip


def test_bash_loaded_aliases_and_values(tree: Path) -> None:
    b, k, d = ["-b", str(tree)], ["-k", RELEASE], ["-d", str(tree), "-S", RELEASE]
    found = shells.bash(
        SHARE / "completions" / "bash" / "lkm",
        [
            ["lkm", "rmmod", "snd_hda"],
            ["lkm", "rmmod", "snd-hda-c"],
            ["lkm", "modprobe", "-r", "e"],
            ["lkm", "modprobe", "-vr", "e"],
            ["lkm", "modprobe", "--remove", *d, "e"],
            ["lkm", "modprobe", *d, "-Cr", "e"],  # "r" is -C's value: no removal
            ["lkm", "modprobe", *d, "fs-"],
            ["lkm", "show", *b, *k, "fs_e"],
            ["lkm", "status", *b, *k, ""],
            f"lkm modprobe -d {tree} -S {RELEASE} platform:snd",
            f"lkm closure -b {tree} -k {RELEASE} platform:",
            ["lkm", "verify", *b, *k, "fs"],
            ["lkm", "graph", "--format", ""],
            ["lkm", "graph", "-T", "s"],
            ["lkm", "graph", "--format", "=", "p"],
            ["lkm", "status", "--want", ""],
            ["lkm", "sign", "--hash", "sha3-"],
            ["lkm", "kmod", "static-nodes", "-f", ""],
            ["lkm", "closure", "--firmware-dir", f"{tree}/l"],
            ["lkm", "graph", "-o", f"{tree}/l"],
            ["lkm", "status", "-C", f"{tree}/l"],
            ["lkm", "status", *b, *k, "--json", "x"],
        ],
        proc_modules=PROC_MODULES,
    )
    assert found == [
        loaded("snd_hda"),
        loaded("snd-hda-c"),
        loaded("e"),
        loaded("e"),
        loaded("e"),
        ["exfat_builtin", "ext4", "extcon_core"],
        ["fs-exfat", "fs-ext4", "fs-xfs"],
        ["fs_exfat", "fs_ext4"],
        sorted((*MODULES, *BUILTIN)),
        ["snd_hda_dummy"],
        ["snd_hda_dummy"],
        [],
        ["dot", "svg", "png"],
        ["svg"],
        ["png"],
        ["loaded", "absent"],
        ["sha3-256", "sha3-384", "sha3-512"],
        ["human", "tmpfiles", "devname"],
        [f"{tree}/lib"],
        [f"{tree}/lfile", f"{tree}/lib"],
        [f"{tree}/lfile", f"{tree}/lib"],
        ["xfs"],
    ]
    assert len(loaded("e")) > 0 and len(loaded("snd_hda")) >= 3


# ---------------------------------------------------------------------------- zsh


def test_zsh(tree: Path, tmp_path: Path) -> None:
    b, k = f"-b {tree}", f"-k {RELEASE}"
    found = shells.zsh(
        SHARE / "completions" / "zsh",
        [
            "lkm mod",
            "lkm modinfo -",
            f"lkm modinfo {b} {k} ex",
            f"lkm modprobe -d {tree} -S {RELEASE} snd-hda-",
            f"lkm modinfo --basedir={tree} -k ",
            "lkm show --",
            f"lkm show {b} {k} snd",
        ],
        tmp_path,
    )
    assert found[0] == ["modinfo", "modprobe", "modules-load"]
    options = {"-a", "--author", "-F", "--field", "-b", "--basedir", "-0", "--null", "-h"}
    assert options <= set(found[1]) and all(word.startswith("-") for word in found[1])
    assert [sorted(words) for words in found[2:]] == [
        ["exfat_builtin", "ext4", "extcon_core"],
        ["snd-hda-codec", "snd-hda-intel"],
        ["1.0-other", RELEASE],
        ["--basedir", "--config", "--help", "--json", "--set-version"],
        ["snd_hda_codec", "snd_hda_intel"],
    ]


def test_zsh_loaded_aliases_and_values(tree: Path, tmp_path: Path) -> None:
    b, d = f"-b {tree} -k {RELEASE}", f"-d {tree} -S {RELEASE}"
    lines = {
        "lkm rmmod snd_hda": loaded("snd_hda"),
        "lkm rmmod snd-hda-c": loaded("snd-hda-c"),
        "lkm modprobe -r e": loaded("e"),
        "lkm modprobe -vr e": loaded("e"),
        f"lkm modprobe --remove {d} e": loaded("e"),
        f"lkm modprobe {d} -Cr e": ["exfat_builtin", "ext4", "extcon_core"],
        f"lkm modprobe {d} fs-": ["fs-exfat", "fs-ext4", "fs-xfs"],
        f"lkm show {b} fs_e": ["fs_exfat", "fs_ext4"],
        f"lkm status {b} ": sorted((*MODULES, *BUILTIN)),
        f"lkm modprobe {d} platform:snd": ["platform:snd_hda_dummy"],
        f"lkm verify {b} fs": [],
        "lkm graph --format ": ["dot", "png", "svg"],
        "lkm graph -T s": ["svg"],
        "lkm graph --format=p": ["png"],
        "lkm status --want ": ["absent", "loaded"],
        "lkm sign --hash sha3-": ["sha3-256", "sha3-384", "sha3-512"],
        "lkm kmod static-nodes -f ": ["devname", "human", "tmpfiles"],
        f"lkm closure --firmware-dir {tree}/l": ["lib"],
        f"lkm graph -o {tree}/l": ["lfile", "lib"],
        f"lkm status -C {tree}/l": ["lfile", "lib"],
        f"lkm status {b} --json x": ["xfs"],
    }
    found = shells.zsh(SHARE / "completions" / "zsh", list(lines), tmp_path, PROC_MODULES)
    # _files may add a directory in two passes; zsh shows it once.
    assert {line: sorted(set(words)) for line, words in zip(lines, found, strict=True)} == lines


# --------------------------------------------------------------------------- fish


def test_fish(tree: Path) -> None:
    b, k = f"-b {tree}", f"-k {RELEASE}"
    found = shells.fish(
        SHARE / "completions" / "fish" / "lkm.fish",
        [
            "lkm mod",
            "lkm modinfo -",
            "lkm modinfo --s",
            f"lkm modinfo {b} {k} ex",
            f"lkm modprobe -d {tree} -S {RELEASE} snd-hda-",
            f"lkm modinfo -b{tree} --set-version={RELEASE} x",
            f"lkm modinfo {b} -k ",
            "lkm kmod ",
            f"lkm sandbox -k vmlinuz modinfo {b} {k} xf",
            "lkm show --",
            f"lkm show {b} {k} snd",
        ],
    )
    assert found[0] == ["modinfo", "modprobe", "modules-load"]
    assert {"-a", "--author", "-F", "--field", "-0", "--null", "-h", "--help"} <= set(found[1])
    assert found[2:] == [
        ["--set-version"],
        ["exfat_builtin", "ext4", "extcon_core"],
        ["snd-hda-codec", "snd-hda-intel"],
        ["xfs"],
        ["1.0-other", RELEASE],
        ["help", "list", "static-nodes"],
        ["xfs"],
        ["--basedir", "--config", "--help", "--json", "--set-version"],
        ["snd_hda_codec", "snd_hda_intel"],
    ]


def test_fish_loaded_aliases_and_values(tree: Path) -> None:
    b, d = f"-b {tree} -k {RELEASE}", f"-d {tree} -S {RELEASE}"
    lines = {
        "lkm rmmod snd_hda": loaded("snd_hda"),
        "lkm rmmod snd-hda-c": loaded("snd-hda-c"),
        "lkm modprobe -r e": loaded("e"),
        "lkm modprobe -vr e": loaded("e"),
        f"lkm modprobe --remove {d} e": loaded("e"),
        f"lkm modprobe {d} -Cr e": ["exfat_builtin", "ext4", "extcon_core"],
        f"lkm modprobe {d} fs-": ["fs-exfat", "fs-ext4", "fs-xfs"],
        f"lkm show {b} fs_e": ["fs_exfat", "fs_ext4"],
        f"lkm status {b} ": sorted((*MODULES, *BUILTIN)),
        f"lkm modprobe {d} platform:snd": ["platform:snd_hda_dummy"],
        f"lkm verify {b} fs": [],
        "lkm graph --format ": ["dot", "png", "svg"],
        "lkm graph -T s": ["svg"],
        "lkm graph --format=p": ["--format=png"],
        "lkm status --want ": ["absent", "loaded"],
        "lkm sign --hash sha3-": ["sha3-256", "sha3-384", "sha3-512"],
        "lkm kmod static-nodes -f ": ["devname", "human", "tmpfiles"],
        f"lkm closure --firmware-dir {tree}/l": [f"{tree}/lib/"],
        f"lkm graph -o {tree}/l": [f"{tree}/lfile", f"{tree}/lib/"],
        f"lkm status -C {tree}/l": [f"{tree}/lfile", f"{tree}/lib/"],
        f"lkm status {b} --json x": ["xfs"],
    }
    found = shells.fish(SHARE / "completions" / "fish" / "lkm.fish", list(lines), PROC_MODULES)
    assert dict(zip(lines, map(sorted, found), strict=True)) == lines


# -------------------------------------------------------------------------- pages


def test_pages_render_without_warnings() -> None:
    groff = shutil.which("groff")
    man = shutil.which("man")
    if groff is None or man is None:
        unavailable("groff and man are not installed (apt-get install groff-base man-db)")
    pages = sorted((SHARE / "man" / "man1").glob("*.1"))
    for page in pages:
        done = subprocess.run(
            [groff, "-ww", "-man", "-z", str(page)], capture_output=True, check=False
        )
        assert (done.stderr, done.returncode) == (b"", 0), page.name
    done = subprocess.run(
        [man, "--warnings", "-l", *map(str, pages)],
        capture_output=True, check=False, env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert (done.stderr, done.returncode) == (b"", 0)
    assert done.stdout.count(b"\nNAME\n") == done.stdout.count(b"\nOPTIONS\n") == len(pages)


def test_each_page_lists_every_option_of_its_command() -> None:
    for found in interfaces():
        text = (SHARE / "man" / "man1" / f"lkm-{found.command.name}.1").read_text()
        for doc in found.options:
            for spelling in doc.spellings:
                roff = spelling.replace("-", "\\-")
                assert f"\\fB{roff}\\fR" in text, (found.command.name, spelling)
            assert doc.description, (found.command.name, doc.spellings)


# ---------------------------------------------------------------- a verb added later


VERB = '''
from lkm.cli.getopt import Option
from lkm.cli.verb import parse

OPTIONS = (Option(None, "softdeps"), Option("F", "firmware-dir", has_arg=True, kind="directory"))
USAGE = """\\
Usage:
\\t{prog} [options] MOD|ALIAS...
Options:
      --softdeps         follow soft dependencies
  -F, --firmware-dir=DIR  look for firmware in DIR
"""

def main(args):
    parsed = parse("later", args, USAGE, OPTIONS)
    return parsed if isinstance(parsed, int) else 0
'''


def test_a_verb_added_to_the_table_gets_completions_and_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "later_verb.py").write_text(textwrap.dedent(VERB))
    monkeypatch.syspath_prepend(str(tmp_path))
    command = Command("later", "a verb the generator has not seen", "later_verb:main", Kind.VERB)
    found = interface(command)
    spellings = [s for doc in found.options for s in doc.spellings]
    assert spellings == ["--softdeps", "-F", "--firmware-dir", "-b", "--basedir", "-k",
                         "--set-version", "-C", "--config", "--json", "-h", "--help"]  # fmt: skip
    assert found.operands is Operands.MODULES
    assert "_lkm_modules \"$(_lkm_value \"$1\" '-b' '--basedir')\"" in completions.bash([found])
    assert "'--firmware-dir=[look for firmware in DIR]:DIR:_files -/'" in completions.zsh([found])
    assert "-l softdeps -d 'follow soft dependencies'" in completions.fish([found])
    page = manpages.page(found)
    assert "\\fB\\-\\-firmware\\-dir\\fR=\\fIDIR\\fR" in page
    assert "\\fB\\-\\-json\\fR" in page
