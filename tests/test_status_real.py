"""``lkm status`` against what kmod 34 and systemd say for the same configuration and tree.

kmod 34 (in the chroot, with the trixie tree, a configuration directory of two files and a
kernel command line): for every name, each options, blacklist and install/remove line the
record gives must be what ``modprobe -c`` shows for that module (and its alias), the sources
must point at those lines, and the plan must be ``modprobe -n -v NAME``'s output. systemd's
own reading of modules-load.d (``systemd-modules-load`` in a mount namespace where the four
directories and the kernel command line are the test's, and ``systemd-analyze cat-config``)
must name the same files and modules, in the same order, as lkm.modules_load.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lkm.modules_load import boot_entries, find_files
from lkm.status import ModuleStatus, Source, status
from lkm.system import MODULES_LOAD_DIRS, System
from support import world
from support.differential import COMPARED
from support.modprobe_world import SCRATCH, TREE, Loaded, make_state, run_kmod, scratch, tree_args

pytestmark = pytest.mark.slow

FILES = {
    "conf/10-a.conf": """\
options e1000e debug=1 \\
  copybreak=64
blacklist e1000e
alias mynet e1000e
options mynet InterruptThrottleRate=1
install dummy /bin/echo dummy-install $CMDLINE_OPTS
remove dummy /bin/echo dummy-remove
blacklist snd_pcsp
options snd-pcsp index=2
# a comment
options ext4 nodelalloc=1
""",
    "conf/20-b.conf": """\
options e1000e SmartPowerDownEnable=1
install dumm* /bin/false
install loop /bin/true
remove lo?p /bin/echo loop-remove
options loop max_loop=4
blacklist e1000e
alias pci:v00008086d000010D3sv* mynet
install ext4 /bin/echo never-run
install snd_pcsp /bin/echo pcsp-install
""",
}
CMDLINE = (
    'e1000e.debug=2 loop.max_part=3 e1000e.TxIntDelay="1 2" modprobe.blacklist=loop,btusb quiet '
    "snd-pcsp.x=1\n"
)
LOADED = (Loaded("crc16"), Loaded("mbcache", "going"))
NAMES = (
    "e1000e",
    "mynet",
    "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00",
    "dummy",
    "loop",
    "snd_pcsp",
    "snd-pcsp",
    "btusb",
    "ext4",
    "crc16",
    "zbud",  # built in
    "nosuch",
)


@pytest.fixture(scope="module")
def world_status() -> tuple[Path, Path, list[ModuleStatus]]:
    tree = world.tree(TREE)
    base = scratch("status")
    for relative, text in FILES.items():
        (base / relative).parent.mkdir(parents=True, exist_ok=True)
        (base / relative).write_text(text)
    state = make_state(base, CMDLINE, LOADED)
    system = System(
        procfs=str(state),
        sysfs=str(state),
        cmdline=str(state / "cmdline"),
        basedir=str(tree.root),
        release=tree.kver,
        modprobe_dirs=(str(base / "conf"),),
        modules_load_dirs=(),
    )
    with system.module_directory() as moddir:
        records = list(status(NAMES, system, moddir))
    return base, state, records


def _chroot(text: str) -> str:
    return text.replace(str(world.CHROOT), "")


def test_plan_is_modprobe_dry_run(world_status: tuple[Path, Path, list[ModuleStatus]]) -> None:
    base, state, records = world_status
    conf = f"/{SCRATCH}/{base.name}/conf"
    for name in NAMES:
        expected = run_kmod([*tree_args(), "-C", conf, "-n", "-v", name], state)
        mine = [r for r in records if r.query == name]
        if any(r.error for r in mine):
            assert expected.status == 1 and expected.stdout == b"", (name, expected)
            assert [r.error for r in mine] == [f"Module {name} not found."]
            continue
        assert expected.status == 0, (name, expected)
        # A step with nothing to load prints nothing.
        lines = "".join(_chroot(s.line) + "\n" for r in mine for s in r.plan if s.line)
        assert lines == expected.stdout.decode(), name
        COMPARED["lkm status: plans against modprobe -n -v"] += 1
    by_name = {r.query: r for r in records}
    # The cases mean what they should: skipped for the blacklist, the built-in, a loaded one.
    assert by_name["mynet"].blacklist_applies and not by_name["e1000e"].blacklist_applies
    assert by_name["zbud"].builtin and by_name["crc16"].loaded == "live"
    assert by_name["ext4"].plan[-1].options == "nodelalloc=1 "
    # modules.softdep gives ext4 a softdep: kmod passes its install command over.
    assert by_name["ext4"].install_ignored and by_name["ext4"].plan[-1].action == "insmod"
    assert not by_name["snd-pcsp"].install_ignored
    assert by_name["snd-pcsp"].plan[-1].action == "install"


def _physical(source: Source) -> str:
    assert source.file is not None and source.line is not None
    return Path(source.file).read_text().splitlines()[source.line - 1]


def test_configuration_is_modprobe_c(world_status: tuple[Path, Path, list[ModuleStatus]]) -> None:
    base, state, records = world_status
    conf = f"/{SCRATCH}/{base.name}/conf"
    shown = run_kmod([*tree_args(), "-C", conf, "-c"], state)
    assert shown.status == 0
    config = shown.stdout.decode().split("\n# End of configuration files.")[0].splitlines()
    words = [[*line.split(" ", 2), ""][:3] for line in config]
    compared = 0
    for record in records:
        if record.error is not None:
            continue
        name = record.module
        keys = {name, record.alias}
        assert [f"options {o.name} {o.options}" for o in record.options] == [
            line for line, (kind, module, _) in zip(config, words, strict=True)
            if kind == "options" and module in keys
        ], name  # fmt: skip
        blacklisted = [line for line in config if line == f"blacklist {name}"]
        assert len(record.blacklist) == len(blacklisted), name
        for kind, rule in (("install", record.install), ("remove", record.remove)):
            first = next(
                (w for w in words if w[0] == kind and fnmatch.fnmatchcase(str(name), w[1])), None
            )
            assert (None if rule is None else [kind, rule.pattern, rule.command]) == first, name
            if rule is not None and rule.source.file is not None:
                assert _physical(rule.source).split(" ", 2)[1:] == [rule.pattern, rule.command]
        for source in record.blacklist:
            if source.file is None:
                assert f"{name}" in CMDLINE.split("blacklist=")[1].split(maxsplit=1)[0].split(",")
            else:
                assert _physical(source) == f"blacklist {name}"
        for option in record.options:
            if option.source.file is None:
                assert f"{option.name}.{option.options}".replace("_", "-") in (
                    CMDLINE.replace("_", "-")
                )
            else:
                # The last physical line of the logical line holds the options' last word.
                assert option.options.split()[-1] in _physical(option.source)
        compared += 1
    assert compared == len(NAMES) - 1
    COMPARED["lkm status: records against modprobe -c"] += compared


# -- modules-load.d against systemd ---------------------------------------------------------------

MODULES_LOAD = {
    "etc/x.conf": "zzlkm_etc\n",
    "usr/lib/x.conf": "zzlkm_masked\n",
    "usr/lib/m.conf": "zzlkm_masked_by_null\n",
    "usr/lib/b.conf": "# c\n;d\n\n  zzlkm_b1 \t\r\nzzlkm_b2 # not a comment\nzzlkm-b3 \\\nzzlkm_b4",
    "usr/local/lib/a.conf": "zzlkm_a\n",
    "run/c.conf": "zzlkm_c\n",
    "etc/.hidden.conf": "zzlkm_hidden\n",
    "etc/n.txt": "zzlkm_txt\n",
}
SYSTEMD_CMDLINE = (
    "quiet modules_load=zzlkm_k1,,zzlkm_k2 rd.modules_load=zzlkm_rd "
    'modules-load=zzlkm_dash "modules_load=zzlkm_q1,zzlkm_q2" x.modules_load=zzlkm_no'
)
SYSTEMD = "/usr/lib/systemd/systemd-modules-load"


def _modules_load_root(root: Path) -> None:
    for relative, text in MODULES_LOAD.items():
        top, _, name = relative.rpartition("/")
        path = root / top / "modules-load.d" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "run/modules-load.d/m.conf").symlink_to("/dev/null")
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text(SYSTEMD_CMDLINE + "\n")


_SYSTEMD_SCRIPT = """
root=$0
mount -t tmpfs none /run && mkdir /run/modules-load.d || exit 99
mount -t tmpfs none /usr/local/lib && mkdir /usr/local/lib/modules-load.d || exit 99
for d in etc run usr/local/lib usr/lib; do
    mount --bind "$root/$d/modules-load.d" "/$d/modules-load.d" || exit 99
done
exec "$@"
"""


@pytest.mark.skipif(
    not (os.path.exists(SYSTEMD) and shutil.which("systemd-analyze")), reason="no systemd"
)
def test_modules_load_is_systemds(tmp_path: Path) -> None:
    # /lib/modules-load.d, which a split-/usr systemd reads too, must be /usr/lib's here.
    assert os.path.realpath("/lib/modules-load.d") == "/usr/lib/modules-load.d"
    root = tmp_path / "root"
    _modules_load_root(root)
    system = System.under(str(root))
    assert system.modules_load_dirs == tuple(str(root) + d for d in MODULES_LOAD_DIRS)
    files = find_files(system.modules_load_directories())
    listed = subprocess.run(
        ["systemd-analyze", "cat-config", f"--root={root}", "modules-load.d"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    headers = [line[2:] for line in listed.stdout.splitlines() if line.startswith(f"# {root}/")]
    assert list(files) == headers
    env = {
        **os.environ,
        "SYSTEMD_PROC_CMDLINE": SYSTEMD_CMDLINE,
        "SYSTEMD_LOG_LEVEL": "debug",
        "SYSTEMD_LOG_TARGET": "console",
    }
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SYSTEMD_SCRIPT]
    ran = subprocess.run(
        [*command, str(root), SYSTEMD], capture_output=True, text=True, check=False, env=env
    )
    assert ran.returncode != 99, ran.stderr
    loaded = re.findall(r"^Loading module: (.*)$", ran.stdout + ran.stderr, re.MULTILINE)
    mine = [e.name for e in boot_entries(system.modules_load_directories(), system.cmdline)]
    assert [name for name in mine if name != "zzlkm_rd"] == loaded
    assert "zzlkm_rd" in mine and len(loaded) > 10
    COMPARED["lkm status: modules-load.d names against systemd-modules-load"] += len(loaded)
