"""``modprobe -c`` of lkm against kmod 34, byte for byte, on configuration scenarios.

Each scenario is a set of files written under the chroot's ``scratch-config/<name>/``, given to
both tools with ``-C`` (chroot-relative for kmod, the same relative path from the chroot's root
for lkm). The kernel command line is fed to each tool in a private mount namespace: kmod gets a
tmpfs over the chroot's /proc holding the chosen ``cmdline``, lkm gets that file bound over the
host's /proc/cmdline (an empty one when the scenario has none: kmod's chroot has no
/proc/cmdline, which kmod treats as empty).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lkm.config import DEFAULT_CONFIG_DIRS, load_config, show_config
from support import world
from support.differential import COMPARED, HASH_SEED, Result, assert_same

pytestmark = pytest.mark.slow

SCRATCH = "scratch-config"
TREE = "trixie-amd64"


@dataclass(frozen=True)
class Scenario:
    name: str
    files: dict[str, bytes]
    args: tuple[str, ...] = ("-C", "conf")  # paths relative to the scenario directory
    cmdline: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    tree_args: bool = True  # add -d/-S for the trixie tree


SCENARIOS = [
    Scenario(
        "directives",
        {
            "conf/one.conf": b"options foo a=1 \\\n\tb=2\nalias bar foo\nblacklist baz\n"
            b"softdep foo pre: x y post: z\nweakdep foo w1 w2\ninstall foo /bin/true\n"
            b"remove foo /bin/false\n"
        },
    ),
    Scenario(
        "continuations-and-tabs",
        {
            "conf/a.conf": b'options m-n  p=1   q="a b"  \t r\noptions o2\tx=1\ty=2\t\n'
            b"install m-n  echo  hi  \\\n there\ninstall i1\tcmd\targ\t\noptions m3\t\tx\tq\n"
            b"options m2   \n"
        },
    ),
    Scenario(
        "escapes",
        {
            "conf/a.conf": b'options a x=\\\\y z=\\"q\\" \\# w=\\t\n'
            b"install b echo \\$X \\\\\\\\ e\n"
            b"bad \\\n  continued \\\n more\nalias \\\n\n#c\nbad2\n  \\\n bad3\n"
            b"install c a\\\\\nblacklist d\nalias e\\\nf g\n\\#notcomment x\nblacklist tail\\"
        },
    ),
    Scenario(
        "aliases-of-aliases",
        {
            "conf/a.conf": b"alias my-al* some-mod extra\nalias some-mod real_mod\n"
            b"alias pci:v-[a-z]-x*  m-[x]\nalias a-[!x-y]-c x\noptions my-al1 o=1\n"
            b"options pci:v-[a-z]-x* o=2\n"
        },
    ),
    Scenario(
        "blacklist",
        {"conf/a.conf": b"blacklist a-b c\nblacklist\nblacklist  bl  \nblacklist m-[x]\n"},
    ),
    Scenario(
        "softdeps",
        {
            "conf/a.conf": b"softdep m1 pre: a post: b pre: c post: d\nsoftdep m2 post: a pre: b\n"
            b"softdep m3 pre: a b post: c d\nsoftdep m4 x pre: a\nsoftdep m5 post: a b c\n"
            b"softdep m6 pre: post:\nsoftdep m7 pre:a post:b\nsoftdep m8 pre: a\tb   post:  c  \n"
            b"softdep m1 pre: zz\nsoftdep s2\nsoftdep s3 x y\nsoftdep s1 \nsoftdep s2\t \n"
            b"softdep s-d pre: a-b pre: c post: d pre: e\n"
        },
    ),
    Scenario(
        "weakdeps",
        {"conf/a.conf": b"weakdep w-d a-b c\nweakdep w2\nweakdep\nweakdep w a pre: b post:\n"},
    ),
    Scenario(
        "install-and-remove",
        {
            "conf/a.conf": b"install x /sbin/modprobe y; /sbin/modprobe --ignore-install x "
            b"$CMDLINE_OPTS\ninstall x second\nremove x /bin/echo bye\ninstall q\nremove r \n"
        },
    ),
    Scenario(
        "bad-lines",
        {
            "conf/a.conf": b"alias  x\nalias\noptions\noptions m\n  # indented\nfoo bar\n"
            b"include /x\nconfig y\nAlias A b\nalias a[b x\nalias a]b x\nalias ok y[-x\n"
            b"blacklist bl[-x\noptions op[-x y\ninstall in[-x c\nsoftdep so[-x pre: a\n"
            b"weakdep we[-x a\nalias nul\0x y\nalias crlf mod\r\nblacklist \xff\xfe-x\n"
        },
    ),
    Scenario(
        "files-sorted-shadowed-filtered",
        {
            "h1/same.conf": b"blacklist h1-same\n",
            "h2/same.conf": b"blacklist h2-same\n",
            "h1/a.conf": b"blacklist h1-a\n",
            "h2/b.conf": b"blacklist h2-b\n",
            "h2/z.conf": b"blacklist h2-z\n",
            "h2/modules.softdep0.conf": b"softdep after-moddir-file pre: x\n",
            "h2/.dot.conf": b"blacklist dot\n",
            "h2/x.conf~": b"blacklist backup\n",
            "h2/X.CONF": b"blacklist upper\n",
            "h2/sub.conf/in.conf": b"blacklist insub\n",
            "file2": b"blacklist file2\n",
        },
        args=("-C", "h1", "-C", "file2", "-C", "h2", "-C", "missing"),
    ),
    Scenario(
        "config-file-only",
        {"one": b"blacklist single\noptions x y\n"},
        args=("--config=one",),
    ),
    Scenario(
        "kernel-cmdline",
        {"conf/a.conf": b"options cfg x=1\nblacklist cfgbl\n"},
        cmdline="BOOT_IMAGE=/vmlinuz root=/dev/sda ro quiet foo.bar=1 foo.baz a-b.c-d=x-y "
        'modprobe.blacklist=m1,m-2 x.y="a b" "q.r=s t" w.v="1 2"3 modprobe.blacklist=m3 .x=1 '
        'y.=2 z. nodot=1 a.b.c=d "q.r" q."r=s t" a[b.c=1 a]b.c=2 d[[]e.f=3 '
        "modprobe.blacklist=z-1,,z2, modprobe.blacklist\tk.l=1\n",
    ),
    Scenario(
        "kernel-cmdline-unterminated",
        {"conf/a.conf": b""},
        cmdline='a.b=1 c.d="x y',
    ),
    Scenario(
        "modprobe-options",
        {"h1/a.conf": b"blacklist from-env\n", "h2/a.conf": b"blacklist from-argv\n"},
        args=("-C", "h2"),
        env={"MODPROBE_OPTIONS": "-C 'h1'"},
    ),
    Scenario(
        "verbose-and-quiet",
        {"conf/a.conf": b"bogus line\n"},
        args=("-C", "conf", "-q", "-v"),
    ),
    Scenario("trailing-slash", {"conf/a.conf": b"bogus\n"}, args=("-C", "conf/")),
    Scenario("usage-error", {}, args=("-c", "-C"), tree_args=False),
    Scenario("ambiguous", {}, args=("--sh",), tree_args=False),
    Scenario("missing-tree", {"conf/a.conf": b"alias a b\n"}, args=("-C", "conf", "-S", "none")),
]


def materialise(scenario: Scenario) -> Path:
    base = world.CHROOT / SCRATCH / scenario.name
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    for relative, data in scenario.files.items():
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return base


def arguments(scenario: Scenario, tree: world.Tree) -> list[str]:
    """Arguments as kmod gets them; paths after -C are made chroot-absolute."""
    args = ["-c"] if scenario.name not in ("usage-error", "ambiguous") else []
    given = list(scenario.args)
    for i, arg in enumerate(given):
        if (i > 0 and given[i - 1] == "-C") or arg.startswith("--config="):
            prefix, _, value = arg.rpartition("=") if arg.startswith("--") else ("", "", arg)
            path = f"/{SCRATCH}/{scenario.name}/{value}"
            given[i] = f"{prefix}={path}" if prefix else path
    args += given
    if scenario.tree_args:
        args += ["-d", tree.chroot_root]
        if "-S" not in given:
            args += ["-S", tree.kver]
    return args


_KMOD_SCRIPT = """
mount -t tmpfs none "$0/proc" || exit 99
if [ "$1" = yes ]; then printf %s "$2" > "$0/proc/cmdline"; fi
root=$0; shift 2
exec chroot "$root" modprobe "$@"
"""
_LKM_SCRIPT = """
mount --bind "$0" /proc/cmdline || exit 99
exec "$@"
"""


def run_kmod(scenario: Scenario, args: Sequence[str], env: dict[str, str]) -> Result:
    has = "yes" if scenario.cmdline is not None else "no"
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _KMOD_SCRIPT]
    command += [str(world.CHROOT), has, scenario.cmdline or "", *args]
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    assert done.returncode != 99, done.stderr
    return Result(done.stdout, done.stderr, done.returncode)


def run_lkm(scenario: Scenario, args: Sequence[str], env: dict[str, str], tmp: Path) -> Result:
    cmdline = tmp / "cmdline"
    cmdline.write_text(scenario.cmdline or "")
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _LKM_SCRIPT]
    host_args = [world.CHROOT.as_posix() + a if a.startswith("/") else a for a in args]
    host_args = [
        a.replace("--config=/", f"--config={world.CHROOT}/") if a.startswith("--config=") else a
        for a in host_args
    ]
    command += [str(cmdline), sys.executable, "-m", "lkm", "modprobe", *host_args]
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    assert done.returncode != 99, done.stderr
    prefix = os.fsencode(str(world.CHROOT))
    return Result(
        done.stdout.replace(prefix, b""), done.stderr.replace(prefix, b""), done.returncode
    )


def environment(scenario: Scenario) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MODPROBE_OPTIONS"}
    for key, value in scenario.env.items():
        # Relative -C paths in MODPROBE_OPTIONS: kmod runs in the chroot's /, lkm gets them
        # rewritten to the same place.
        env[key] = value.replace("'h1'", f"'/{SCRATCH}/{scenario.name}/h1'")
    return env


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_show_config_matches_kmod(scenario: Scenario, tmp_path: Path) -> None:
    tree = world.tree(TREE)
    materialise(scenario)
    args = arguments(scenario, tree)
    kmod_env = environment(scenario)
    lkm_env = dict(kmod_env)
    if "MODPROBE_OPTIONS" in lkm_env:
        lkm_env["MODPROBE_OPTIONS"] = lkm_env["MODPROBE_OPTIONS"].replace("'/", f"'{world.CHROOT}/")
    lkm_env["PYTHONHASHSEED"] = HASH_SEED
    expected = run_kmod(scenario, args, kmod_env)
    actual = run_lkm(scenario, args, lkm_env, tmp_path)
    assert_same(expected, actual)
    COMPARED["modprobe -c scenarios"] += 1


@pytest.mark.parametrize("tree_name", ["trixie-amd64", "bookworm-amd64", "trixie-armhf"])
def test_index_dump_of_real_trees(tree_name: str, tmp_path: Path) -> None:
    tree = world.tree(tree_name)
    empty = materialise(Scenario(f"empty-{tree_name}", {"conf/.keep": b""}))
    args = ["-c", "-C", f"/{SCRATCH}/{empty.name}/conf", "-d", tree.chroot_root, "-S", tree.kver]
    scenario = Scenario(empty.name, {})
    env = environment(scenario)
    expected = run_kmod(scenario, args, env)
    assert expected.stdout.count(b"\n") > 1000
    assert_same(expected, run_lkm(scenario, args, {**env, "PYTHONHASHSEED": HASH_SEED}, tmp_path))
    COMPARED["modprobe -c index dumps (lines)"] += expected.stdout.count(b"\n")


_DEFAULT_DIRS_SCRIPT = """
root=$0; scen=$1; shift
mount -t tmpfs none "$root/proc" || exit 99
mount -t tmpfs none "$root/run" || exit 99
mount -t tmpfs none "$root/usr/local/lib" || exit 99
for d in /etc/modprobe.d /run/modprobe.d /usr/local/lib/modprobe.d /usr/lib/modprobe.d; do
    mkdir -p "$root$d" && mount --bind "$scen$d" "$root$d" || exit 99
done
exec chroot "$root" modprobe "$@"
"""


def test_default_directories_shadow_by_basename(tmp_path: Path) -> None:
    """kmod's own directories (bound over the chroot's in a private namespace) against the
    library given the same directories; /lib is /usr/lib in the chroot."""
    tree = world.tree(TREE)
    files = {
        "etc/modprobe.d/same.conf": b"blacklist etc-same\n",
        "run/modprobe.d/same.conf": b"blacklist run-same\n",
        "run/modprobe.d/run.conf": b"blacklist run-only\n",
        "usr/local/lib/modprobe.d/same.conf": b"blacklist local-same\n",
        "usr/local/lib/modprobe.d/local.conf": b"blacklist local-only\n",
        "usr/local/lib/modprobe.d/run.conf": b"blacklist local-run\n",
        "usr/lib/modprobe.d/same.conf": b"blacklist lib-same\n",
        "usr/lib/modprobe.d/aa.conf": b"blacklist lib-aa\nbogus\n",
        "etc/modprobe.d/zz.conf": b"blacklist etc-zz\n",
    }
    base = materialise(Scenario("default-dirs", files))
    args = ["-c", "-d", tree.chroot_root, "-S", tree.kver]
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    command += [_DEFAULT_DIRS_SCRIPT, str(world.CHROOT), str(base), *args]
    done = subprocess.run(command, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    sources = [str(base) + d for d in DEFAULT_CONFIG_DIRS]
    config = load_config(sources, module_dir=str(tree.moddir), cmdline=None)
    text = "".join(show_config(config, str(tree.moddir))).encode("utf-8", "surrogateescape")
    assert text == done.stdout
    messages = b"".join(f"libkmod: ERROR: {p.message}\n".encode() for p in config.problems)
    assert messages.replace(os.fsencode(str(base)), b"") == done.stderr
    assert b"blacklist etc_same\n" in text and b"blacklist local_run\n" not in text
    COMPARED["modprobe -c scenarios"] += 1
