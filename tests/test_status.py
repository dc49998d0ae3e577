"""``lkm status``: each field of its records, read from a fake root through ``System.under``.

The root has a small tree (``a`` needs ``b``; ``c``; ``bi`` built in; ``pci:v1*`` an alias of
``a``), modprobe.d files in two directories, a kernel command line with options, a blacklist
and modules to load, ``/sys/module`` with ``b`` live and ``g`` going, and modules-load.d files
in all four directories, some masking others.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lkm.cli import status as cli
from lkm.config import Origin, load_config, load_config_located, parse_config_located
from lkm.index import write_index
from lkm.modules_load import BootEntry, boot_entries, find_files, parse_cmdline, parse_file
from lkm.status import Presence, Source, Want, status
from lkm.system import System
from support.elfbuild import elf64, modinfo_section
from support.schemas import validate_output

CMDLINE = 'a.x=1 modprobe.blacklist=c,zz quiet c.v="p q" modules_load=c,,e rd.modules_load=b\n'
ETC = """\
options a y=2
alias foo a
blacklist a
install c echo \\
  installing c
remove b echo bye
softdep a post: bi
"""
USR = "blacklist b\noptions foo z=3\ninstall c echo never\ninstall a echo never-run\n"
LOAD = {
    "etc/modules-load.d/x.conf": "; masks the lower x.conf\n",
    "usr/lib/modules-load.d/x.conf": "c\n",
    "usr/lib/modules-load.d/y.conf": "# boot\n  a  \n",
    "usr/local/lib/modules-load.d/z.conf": "foo\npci:v1234\nnosuch\n",
    "usr/lib/modules-load.d/m.conf": "b\n",
    "usr/lib/modules-load.d/.hidden.conf": "b\n",
    "usr/lib/modules-load.d/n.txt": "b\n",
}


def make_root(root: Path) -> System:
    moddir = root / "lib/modules/1.0"
    (moddir / "kernel").mkdir(parents=True)
    for name in ("a", "b", "c"):
        info = modinfo_section(b"license=GPL", f"name={name}".encode(), b"vermagic=1.0 SMP ")
        (moddir / f"kernel/{name}.ko").write_bytes(elf64({".modinfo": info}))
    deps = [
        ("a", "kernel/a.ko: kernel/b.ko", 0),
        ("b", "kernel/b.ko:", 1),
        ("c", "kernel/c.ko:", 2),
    ]
    (moddir / "modules.dep.bin").write_bytes(write_index(deps))
    (moddir / "modules.alias.bin").write_bytes(write_index([("pci:v1*", "a", 0)]))
    (moddir / "modules.symbols.bin").write_bytes(write_index([]))
    (moddir / "modules.builtin.bin").write_bytes(write_index([("bi", "", 0)]))
    (moddir / "modules.builtin.alias.bin").write_bytes(write_index([]))
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text(CMDLINE)
    for name, state in (("b", "live"), ("g", "going")):
        (root / "sys/module" / name / "holders").mkdir(parents=True)
        (root / "sys/module" / name / "initstate").write_text(state + "\n")
        (root / "sys/module" / name / "refcnt").write_text("1\n")
    for where in ("etc/modprobe.d", "usr/lib/modprobe.d", "run/modules-load.d"):
        (root / where).mkdir(parents=True)
    # What the kernel shows for a built-in module with parameters that modules.builtin lacks.
    (root / "sys/module/kb/parameters").mkdir(parents=True)
    (root / "etc/modprobe.d/t.conf").write_text(ETC)
    (root / "usr/lib/modprobe.d/u.conf").write_text(USR)
    for relative, text in LOAD.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / "run/modules-load.d/m.conf").symlink_to("/dev/null")
    return System.under(str(root), "1.0")


@pytest.fixture
def system(tmp_path: Path) -> System:
    return make_root(tmp_path / "root")


def one(system: System, name: str, want: Want | None = None) -> list:  # type: ignore[type-arg]
    with system.module_directory() as moddir:
        return list(status([name], system, moddir, want=want))


def test_module_with_everything(system: System) -> None:
    [a] = one(system, "a")
    etc = f"{system.basedir}/etc/modprobe.d/t.conf"
    root = system.basedir
    assert (a.query, a.module, a.found_as, a.alias) == ("a", "a", "module", None)
    assert (a.presence, a.loaded, a.builtin) == (Presence.AVAILABLE, None, False)
    assert a.path == f"{root}/lib/modules/1.0/kernel/a.ko"
    assert (a.blacklisted, a.blacklist, a.blacklist_applies) == (True, (Source(etc, 3),), False)
    assert [(o.name, o.options, str(o.source)) for o in a.options] == [
        ("a", "y=2", f"{etc}:1"),
        ("a", "x=1", "kernel command line"),
    ]
    assert a.effective_options == "y=2 x=1"
    # Its softdep finds a module (bi): modprobe passes the install command over.
    usr = f"{system.basedir}/usr/lib/modprobe.d/u.conf"
    assert a.install is not None and (a.install.command, a.install.source) == (
        "echo never-run",
        Source(usr, 4),
    )
    assert a.install_ignored and a.remove is None
    # y.conf names it, z.conf through the configuration's alias and the tree's.
    boot = [(b.name, str(b.source), b.initrd) for b in a.boot]
    usr_local = f"{root}/usr/local/lib/modules-load.d/z.conf"
    assert boot == [
        ("a", f"{root}/usr/lib/modules-load.d/y.conf:2", False),
        ("foo", f"{usr_local}:1", False),
        ("pci:v1234", f"{usr_local}:2", False),
    ]
    # b is live: modprobe loads only a.
    assert [s.line for s in a.plan] == [f"insmod {a.path} y=2 x=1 "]  # modprobe writes the space
    assert (a.want, a.satisfied, a.reason, a.error) == (None, None, None, None)


def test_alias_found_through_the_configuration_is_skipped_for_the_blacklist(
    system: System,
) -> None:
    [a] = one(system, "foo")
    usr = f"{system.basedir}/usr/lib/modprobe.d/u.conf"
    assert (a.module, a.found_as, a.alias) == ("a", "config-alias", "foo")
    assert a.blacklist_applies and a.plan == ()
    # Options of the alias join the module's, in the order read (u.conf after t.conf).
    assert [(o.name, str(o.source)) for o in a.options][1:] == [
        ("foo", f"{usr}:2"),
        ("a", "kernel command line"),
    ]
    assert a.effective_options == "y=2 z=3 x=1"


def test_loaded_module_its_remove_command_and_initrd_load(system: System) -> None:
    [b] = one(system, "b", Want.LOADED)
    etc = f"{system.basedir}/etc/modprobe.d/t.conf"
    usr = f"{system.basedir}/usr/lib/modprobe.d/u.conf"
    assert (b.presence, b.loaded) == (Presence.LOADED, "live")
    assert b.blacklist == (Source(usr, 1),)
    assert b.remove is not None and (b.remove.command, b.remove.source) == (
        "echo bye",
        Source(etc, 6),
    )
    # m.conf is masked by a link to /dev/null, .hidden.conf and n.txt are no files systemd reads.
    assert [(x.name, x.source, x.initrd) for x in b.boot] == [("b", Source(None, None), True)]
    assert b.plan == () and (b.satisfied, b.reason) == (True, None)


def test_kernel_command_line_blacklist_install_rule_and_boot(system: System) -> None:
    [c] = one(system, "c", Want.ABSENT)
    etc = f"{system.basedir}/etc/modprobe.d/t.conf"
    assert c.blacklist == (Source(None, None),)
    # The first install line that matches counts; a continued line has its last line's number.
    assert c.install is not None
    assert not c.install_ignored
    assert (c.install.pattern, c.install.command, c.install.source) == (
        "c",
        "echo   installing c",
        Source(etc, 5),
    )
    assert [(o.options, o.source) for o in c.options] == [('v="p q"', Source(None, None))]
    # x.conf of /etc masks /usr/lib's: only the command line loads c.
    assert [(x.name, x.source) for x in c.boot] == [("c", Source(None, None))]
    assert [s.line for s in c.plan] == ['install echo   installing c v="p q" ']
    assert (c.satisfied, c.reason) == (True, None)


def test_builtin_module_is_never_absent(system: System) -> None:
    [bi] = one(system, "bi", Want.ABSENT)
    assert (bi.presence, bi.builtin, bi.path, bi.found_as) == (
        Presence.BUILTIN,
        True,
        None,
        "builtin",
    )
    assert (bi.satisfied, bi.reason) == (False, "built into the kernel: it can never be absent")
    [bi] = one(system, "bi", Want.LOADED)
    assert (bi.satisfied, bi.reason) == (True, None)
    assert bi.plan == ()


def test_sysfs_directory_without_initstate_is_built_in(system: System) -> None:
    [kb] = one(system, "kb", Want.ABSENT)
    assert (kb.presence, kb.builtin, kb.loaded, kb.found_as) == (Presence.BUILTIN, True, None, None)
    assert (kb.satisfied, kb.reason) == (False, "built into the kernel: it can never be absent")
    assert one(system, "kb", Want.LOADED)[0].satisfied


def test_going_module_is_neither_loaded_nor_absent(system: System) -> None:
    # g has no file in the tree: the kernel's word makes the record.
    [g] = one(system, "g", Want.LOADED)
    assert (g.presence, g.loaded, g.found_as, g.path) == (Presence.LOADED, "going", None, None)
    assert (g.satisfied, g.reason) == (False, "in the kernel but going, not live")
    [g] = one(system, "g", Want.ABSENT)
    assert (g.satisfied, g.reason) == (False, "loaded (going)")


def test_alias_of_the_tree_and_unknown_names(system: System) -> None:
    [a] = one(system, "pci:v1234")
    assert (a.module, a.found_as, a.alias, a.blacklist_applies) == ("a", "alias", "pci:v1234", True)
    [missing] = one(system, "nosuch", Want.ABSENT)
    assert missing.error == "Module nosuch not found." and missing.module is None
    assert missing.satisfied is None


def run(
    system: System, capfdbinary: pytest.CaptureFixture[bytes], *args: str
) -> tuple[str, str, int]:
    code = cli.main(list(args), system=system)
    out, err = capfdbinary.readouterr()
    return out.decode(), err.decode(), code


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["a"], 0),
        (["a", "--want", "loaded"], 1),
        (["a", "--want", "absent"], 0),
        (["b", "bi", "--want=loaded"], 0),
        (["b", "--want", "absent"], 1),
        (["bi", "--want", "absent"], 1),
        (["a", "nosuch", "--want", "absent"], 2),
        (["--want", "loaded"], 2),
        (["a", "--want", "present"], 2),
        (["a", "--bogus"], 2),
        (["--help"], 0),
    ],
)
def test_exit_status(
    system: System, capfdbinary: pytest.CaptureFixture[bytes], args: list[str], code: int
) -> None:
    assert run(system, capfdbinary, *args)[2] == code


def test_text_output(system: System, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    out, err, code = run(system, capfdbinary, "bi", "foo", "nosuch", "--want", "absent")
    root = system.basedir
    assert (err, code) == ("lkm status: ERROR: Module nosuch not found.\n", 2)
    assert out == (
        "bi: builtin\n"
        "  file: -\n"
        "  blacklisted: no\n"
        "  options: -\n"
        "  install: -\n"
        "  remove: -\n"
        "  at boot: no\n"
        "  plan: nothing to do\n"
        "  want absent: does not hold: built into the kernel: it can never be absent\n"
        "a (foo): available\n"
        f"  file: {root}/lib/modules/1.0/kernel/a.ko\n"
        f"  blacklisted: {root}/etc/modprobe.d/t.conf:3; modprobe skips it for this name\n"
        "  options: y=2 z=3 x=1\n"
        f"    y=2  ({root}/etc/modprobe.d/t.conf:1)\n"
        f"    z=3  ({root}/usr/lib/modprobe.d/u.conf:2, for foo)\n"
        "    x=1  (kernel command line)\n"
        f"  install: echo never-run  ({root}/usr/lib/modprobe.d/u.conf:4)\n"
        "    (not run: the module's softdeps find modules, so modprobe loads it)\n"
        "  remove: -\n"
        f"  at boot: {root}/usr/lib/modules-load.d/y.conf:2\n"
        f"  at boot: {root}/usr/local/lib/modules-load.d/z.conf:1 as foo\n"
        f"  at boot: {root}/usr/local/lib/modules-load.d/z.conf:2 as pci:v1234\n"
        "  plan: nothing to do\n"
        "  want absent: holds\n"
    )


def test_json_output_is_valid(system: System, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    out, err, code = run(system, capfdbinary, "--json", "a", "b", "c", "bi", "foo", "g", "nosuch",
                         "--want", "loaded")  # fmt: skip
    assert code == 2 and err == ""
    document = validate_output("status", out)
    records = document["records"]
    assert [r["module"] for r in records] == ["a", "b", "c", "bi", "a", "g", None]
    assert records[-1]["error"] == "Module nosuch not found."
    assert records[2]["blacklist"] == [{"file": None, "line": None, "text": "kernel command line"}]
    assert records[0]["plan"][0]["action"] == "insmod"
    assert json.loads(out) == document


def test_config_options_with_a_missing_root_give_usage_error(
    tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    # No module directory at all: one error, no record, exit 2.
    system = System.under(str(tmp_path), "9.9")
    out, err, code = run(system, capfdbinary, "a")
    assert (out, code) == ("", 2)
    assert err == "lkm status: ERROR: Module a not found.\n"


# -- where configuration entries come from -----------------------------------------------------


def test_origins_follow_each_entry() -> None:
    text = "# c\noptions a x=1\nbad line here\nblacklist \\\n  b\nsoftdep a pre: b\nalias z a\n"
    config, origins = parse_config_located(text, "f.conf")
    assert origins.options == (Origin("f.conf", 2),)
    assert origins.blacklist == (Origin("f.conf", 5),)  # the continued line's last
    assert origins.softdeps == (Origin("f.conf", 6),)
    assert origins.aliases == (Origin("f.conf", 7),)
    assert [len(getattr(config, f)) for f in origins._fields] == [len(x) for x in origins]


def test_located_config_is_the_same_config(system: System) -> None:
    args = (system.modprobe_dirs,)
    kwargs = {"module_dir": system.module_dir(), "cmdline": system.cmdline}
    config, origins = load_config_located(*args, **kwargs)
    assert config == load_config(*args, **kwargs)
    assert origins.blacklist[-2:] == (Origin(str(system.cmdline), None),) * 2
    assert [len(x) for x in origins] == [len(getattr(config, f)) for f in origins._fields]


# -- modules-load.d ------------------------------------------------------------------------------


def test_modules_load_precedence_masking_and_order(system: System) -> None:
    dirs = system.modules_load_directories()
    root = system.basedir
    assert find_files(dirs) == (
        f"{root}/run/modules-load.d/m.conf",
        f"{root}/etc/modules-load.d/x.conf",
        f"{root}/usr/lib/modules-load.d/y.conf",
        f"{root}/usr/local/lib/modules-load.d/z.conf",
    )
    names = [(e.name, e.line, e.initrd) for e in boot_entries(dirs, system.cmdline)]
    assert names == [
        ("c", None, False),
        ("e", None, False),
        ("b", None, True),
        ("a", 2, False),
        ("foo", 1, False),
        ("pci:v1234", 2, False),
        ("nosuch", 3, False),
    ]


def test_modules_load_lines_and_command_line() -> None:
    data = b"a\r\n b \t\n;x\n#y\nc # d\ne \\\nf\0g\rh"
    assert [(e.name, e.line) for e in parse_file(data, "p")] == [
        ("a", 1), ("b", 2), ("c # d", 5), ("e \\", 6), ("f", 7), ("g", 8), ("h", 9),
    ]  # fmt: skip
    line = b'modules-load=a,b x.modules_load=c "modules_load=d e" rd.modules-load=f modules_load'
    assert parse_cmdline(line, "cmd") == (
        BootEntry("a", "cmd", None),
        BootEntry("b", "cmd", None),
        BootEntry("d e", "cmd", None),
        BootEntry("f", "cmd", None, True),
    )
