"""Random modprobe.d files and kernel command lines, lkm against kmod 34, byte for byte.

A fixed seed makes the configurations: lines built from modprobe.d's directives (and unknown
ones, comments, include/config) over real module names, aliases and patterns, then mutated the
way hand-written files go wrong: blanks and tabs doubled or swapped, backslashes, quotes, glob
characters, continuation lines, dashes for underscores, stray brackets. The kernel command line
gets the same treatment. For every case both tools answer the same queries: ``-c`` and, for a
handful of names, ``-a -n -v``, ``-a -D``, ``-a -R`` and (with some modules loaded) ``-n -v -r``.

The module directory is a small real one: a few trixie modules with their dependencies, indexed
by kmod's depmod, so ``-c`` dumps short indexes. ``LKM_CONFIG_FUZZ_CASES`` runs more cases than
the default, ``LKM_CONFIG_FUZZ_SEED`` other ones.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support import world
from support.differential import COMPARED, diff

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("LKM_CONFIG_FUZZ_SEED", "20261202"))
CASES = int(os.environ.get("LKM_CONFIG_FUZZ_CASES", "100"))
SCRATCH = "scratch-config-fuzz"
TREE = "trixie-amd64"
# Modules of the small tree (their dependencies come along).
MODULES = ("dummy", "nlmon", "veth", "ext4", "vfat", "e1000e", "ip_gre", "xt_LOG")
LOADED = ("dummy", "veth", "fat", "vfat", "jbd2", "mbcache", "gre")

NAMES = (
    "dummy", "nlmon", "veth", "ext4", "jbd2", "mbcache", "crc16", "vfat", "fat", "e1000e",
    "ip_gre", "gre", "xt_LOG", "nf_log_syslog", "loop", "unix", "foo", "bar-baz", "crc32c",
    "rtnl-link-dummy", "fs-vfat", "net-pf-47", "symbol:jbd2_journal_start",
    "pci:v00008086d000010D3sv*",
)  # fmt: skip
COMMANDS = (
    "/bin/true", "/bin/false", "echo hi $CMDLINE_OPTS", "/sbin/modprobe --ignore-install dummy",
    "/sbin/modprobe nlmon; /bin/true", "echo 'a  b'\t\"c\"",
)  # fmt: skip
OPTIONS = ("x=1", 'y="a b"', "z", "p=1 q=2", "numdummies=2", 'w=\\"q\\"', "a=1,2")
KEYWORDS = ("alias", "options", "install", "remove", "blacklist", "softdep", "weakdep")
ODD_KEYWORDS = ("include", "config", "Alias", "foo", "options2", "#", "blacklist:")


def _blank(rng: random.Random) -> str:
    return rng.choice((" ", " ", " ", "\t", "  ", " \t", "\t\t", "   "))


def _name(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    roll = rng.random()
    if roll < 0.15:  # a glob in place of some characters
        at = rng.randrange(len(name) + 1)
        cut = rng.randrange(3)
        name = name[:at] + rng.choice(("*", "?", "[a-z]", "[!x]", "[dm]", "\\")) + name[at + cut :]
    elif roll < 0.3:
        name = name.replace("_", "-") if "_" in name else name.replace("-", "_")
    elif roll < 0.33:
        at = rng.randrange(len(name) + 1)
        name = name[:at] + rng.choice(("[", "]", "[-]", "-[_]")) + name[at:]
    return name


def _softdep_body(rng: random.Random) -> str:
    words = [
        rng.choice(("pre:", "post:", "pre:", "post:", "pre:x", "x", _name(rng)))
        if rng.random() < 0.4
        else _name(rng)
        for _ in range(rng.randrange(6))
    ]
    return "".join(_blank(rng) + word for word in words) + rng.choice(("", "", " ", "\t"))


def _line(rng: random.Random) -> str:
    keyword = rng.choice(KEYWORDS) if rng.random() < 0.9 else rng.choice(ODD_KEYWORDS)
    name = _name(rng)
    if keyword == "alias":
        rest = _name(rng) + rng.choice(("", "", " extra"))
    elif keyword == "options":
        rest = _blank(rng).join(rng.sample(OPTIONS, rng.randrange(1, 3)))
    elif keyword in ("install", "remove"):
        rest = rng.choice(COMMANDS)
    elif keyword == "softdep":
        rest = _softdep_body(rng)
    elif keyword == "weakdep":
        rest = _blank(rng).join(_name(rng) for _ in range(rng.randrange(4)))
    else:
        rest = rng.choice(("", "x", _name(rng)))
    parts = [rng.choice(("", "", "", " ", "\t")), keyword, _blank(rng), name]
    if rest or rng.random() < 0.7:
        parts += [_blank(rng), rest]
    return "".join(parts)


def _mutate(rng: random.Random, text: str) -> str:
    """One hand-made slip: a character doubled, dropped or inserted, a line continued."""
    if not text:
        return text
    at = rng.randrange(len(text) + 1)
    roll = rng.random()
    if roll < 0.5:
        return text[:at] + rng.choice(' \t\\"#*?[]-_=,\n\r\\\n') + text[at:]
    if roll < 0.75:
        return text[:at] + text[at + 1 :]
    return text[:at] + "\\\n" + text[at:]


def config_text(rng: random.Random) -> str:
    lines = [_line(rng) for _ in range(rng.randrange(1, 12))]
    if rng.random() < 0.2:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(("# comment", "", "  # x")))
    text = "\n".join(lines) + rng.choice(("\n", "\n", "", "\\", "\n\n"))
    for _ in range(rng.randrange(4)):
        text = _mutate(rng, text)
    return text


def cmdline_text(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randrange(1, 8)):
        roll = rng.random()
        if roll < 0.4:
            word = f"{_name(rng)}.{rng.choice(('p', 'x_y', 'numdummies', 'a-b'))}"
            word += rng.choice(("", "=1", '="a b"', "=x,y", "=", '=""'))
        elif roll < 0.55:
            word = "modprobe.blacklist=" + ",".join(_name(rng) for _ in range(rng.randrange(3)))
        else:
            word = rng.choice(("quiet", "root=/dev/sda1", "ro", "BOOT_IMAGE=/vmlinuz", "a.b.c=1"))
        words.append(word)
    text = _blank(rng).join(words)
    for _ in range(rng.randrange(4)):
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(('"', '"', " ", "\t", "\n", ".", "=", "-", "[")) + text[at:]
    return text + rng.choice(("\n", "", " "))


# -- the small tree ---------------------------------------------------------------------------


def _closure(moddir: Path) -> list[str]:
    """Relative paths of MODULES and their dependencies, from the tree's modules.dep."""
    deps: dict[str, list[str]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
    by_name = {
        Path(p).name.split(".")[0].replace("-", "_"): p for p in deps
    }  # crc32c-intel and friends keep their dash in the file name
    wanted: dict[str, None] = {}
    todo = [by_name[m] for m in MODULES]
    while todo:
        path = todo.pop()
        if path not in wanted:
            wanted[path] = None
            todo += deps[path]
    return sorted(wanted)


def small_tree(base: Path) -> Path:
    tree = world.tree(TREE)
    moddir = base / "tree" / "lib" / "modules" / tree.kver
    if (moddir / "modules.dep.bin").exists():
        return moddir
    for relative in _closure(tree.moddir):
        (moddir / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tree.moddir / relative, moddir / relative)
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        shutil.copy(tree.moddir / name, moddir / name)
    root = "/" + str((base / "tree").relative_to(world.CHROOT))
    world.kmod("depmod", "-b", root, tree.kver, check=True)
    return moddir


# -- running both tools -----------------------------------------------------------------------


def queries(rng: random.Random) -> list[list[str]]:
    names = [_name(rng) if rng.random() < 0.3 else rng.choice(NAMES) for _ in range(5)]
    return [
        ["-c"],
        ["-a", "-n", "-v", *names],
        ["-a", "-D", *names],
        ["-a", "-R", *names],
        ["load"],  # marks where the loaded modules appear
        ["-n", "-v", "-r", *names[:3]],
    ]


def _script(kmod: bool, case: Path, moddir: Path, runs: list[list[str]]) -> str:
    """The shell script that runs one tool's queries in a private mount namespace."""
    root = str(world.CHROOT)
    kver = moddir.name
    tree = "/" + str(moddir.parents[2].relative_to(world.CHROOT))
    if kmod:
        lines = [
            f'mount -t tmpfs none "{root}/proc" && cp {case}/cmdline "{root}/proc/cmdline" &&'
            f' mount -t tmpfs none "{root}/sys" && mkdir "{root}/sys/module" || exit 99'
        ]
        sysmod = f"{root}/sys/module"
        tool = f"chroot {root} modprobe -C /{case.relative_to(world.CHROOT)}/conf -d {tree}"
    else:
        lines = [
            f"mkdir -p {case}/sys && mount --bind {case}/cmdline /proc/cmdline &&"
            f" mount --bind {case}/sys /sys/module || exit 99"
        ]
        sysmod = "/sys/module"
        tool = f"{sys.executable} -m lkm modprobe -C {case}/conf -d {root}{tree}"
    out = case / ("kmod" if kmod else "lkm")
    lines.append(f"mkdir -p {out}")
    for i, args in enumerate(runs):
        if args == ["load"]:
            for name in LOADED:
                lines.append(
                    f"mkdir -p {sysmod}/{name}/holders && echo live > {sysmod}/{name}/initstate"
                    f" && echo 0 > {sysmod}/{name}/refcnt"
                )
            continue
        quoted = " ".join(shlex.quote(a) for a in args)
        lines.append(
            f"{tool} -S {kver} {quoted} > {out}/{i}.out 2> {out}/{i}.err; echo $? > {out}/{i}.rc"
        )
    return "\n".join(lines)


def run_case(index: int, base: Path, moddir: Path) -> list[str]:
    rng = random.Random(SEED * 100_003 + index)
    case = base / f"case{index}"
    if case.exists():
        shutil.rmtree(case)
    (case / "conf").mkdir(parents=True)
    conf = config_text(rng)
    (case / "conf" / "a.conf").write_text(conf, "utf-8", "surrogateescape")
    cmdline = cmdline_text(rng)
    (case / "cmdline").write_text(cmdline)
    runs = queries(rng)
    for kmod in (True, False):
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
        command.append(_script(kmod, case, moddir, runs))
        env = {k: v for k, v in os.environ.items() if k != "MODPROBE_OPTIONS"}
        done = subprocess.run(command, capture_output=True, check=False, env=env)
        assert done.returncode != 99, done.stderr
    prefix = os.fsencode(str(world.CHROOT))
    problems = []
    for i, args in enumerate(runs):
        if args == ["load"]:
            continue
        for part in ("out", "err", "rc"):
            expected = (case / "kmod" / f"{i}.{part}").read_bytes()
            actual = (case / "lkm" / f"{i}.{part}").read_bytes().replace(prefix, b"")
            if expected != actual:
                problems.append(
                    f"case {index}: modprobe {shlex.join(args)} ({part})\n"
                    f"a.conf: {conf!r}\ncmdline: {cmdline!r}\n{diff(expected, actual)}"
                )
        COMPARED["modprobe config fuzz queries"] += 1
    shutil.rmtree(case)
    return problems


def test_random_configurations_and_command_lines_match_kmod() -> None:
    base = world.CHROOT / SCRATCH
    base.mkdir(exist_ok=True)
    moddir = small_tree(base)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: run_case(i, base, moddir), range(CASES)))
    problems = [p for found in results for p in found]
    assert not problems, f"{len(problems)} differences:\n\n" + "\n\n".join(problems)
