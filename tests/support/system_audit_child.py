"""Runs every tool in this process against a fake root, under an audit hook (see
tests/test_system_audit.py); each file the tools open outside the root is written to the report.

Usage: python -m support.system_audit_child ROOT REPORT. An audit hook cannot be removed:
hence a process of its own.
"""

from __future__ import annotations

import errno
import os
import site
import sys

# Events that name a file or directory the process touches, and which of their arguments do.
EVENTS = {
    "open": (0,),
    "os.listdir": (0,),
    "os.scandir": (0,),
    "os.mkdir": (0,),
    "os.rmdir": (0,),
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.replace": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.chdir": (0,),
    "shutil.copyfile": (0, 1),
    "glob.glob": (0,),
}


def allowed_places(root: str) -> tuple[str, ...]:
    """Where Python itself and the code under test live: imports read there (stdlib modules
    and lkm's own are imported lazily, while the tools run). /dev/null is what a closed
    pipe's output is sent to."""
    import lkm

    places = {root, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    places.add(os.path.dirname(os.path.dirname(os.path.abspath(lkm.__file__))))
    places.update(site.getsitepackages())
    return tuple(sorted(os.path.realpath(p) for p in places if p))


def install(root: str, report: int) -> None:
    places = allowed_places(root)

    def hook(event: str, args: tuple[object, ...]) -> None:
        where = EVENTS.get(event)
        if where is None:
            return
        for index in where:
            if index >= len(args):
                continue
            path = args[index]
            if isinstance(path, int) or path is None:
                continue  # a file descriptor: what it is was checked when it was opened
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if not isinstance(path, str):
                path = os.fspath(path)  # type: ignore[call-overload]
            full = os.path.normpath(os.path.join(os.getcwd(), path))
            if full == os.devnull:
                continue
            if any(full == p or full.startswith(p + "/") for p in places):
                continue
            os.write(report, f"{event} {full}\n".encode())

    sys.addaudithook(hook)


def tools(root: str, report: int) -> list[tuple[str, int]]:
    from lkm.cli import (
        audit,
        closure,
        depmod,
        drivers,
        graph,
        insmod,
        kmodcmd,
        loaded,
        lsmod,
        modinfo,
        modprobe,
        modules_load,
        rmmod,
        show,
        verify,
    )
    from lkm.cli import status as status_verb
    from lkm.system import System
    from support.kernel import FakeKernel

    system = System.under(root, "1.0")
    moddir = f"{root}/lib/modules/1.0"
    ko = f"{moddir}/kernel/a.ko"

    def kernel() -> FakeKernel:
        return FakeKernel(every=errno.ENOSYS)  # a kernel without module support

    def python_kmod() -> int:
        from lkm.kmod import Kmod
        from lkm.resolve import Resolver

        km = Kmod(system=system, kernel=kernel())
        loaded = [(m.name, m.size, m.refcnt) for m in km.loaded()]
        found = [(m.name, m.path, m.options, dict(m.info)) for m in km.lookup("foo")]
        km.modprobe("a")  # live: nothing to do
        with Resolver.open(system=system) as resolver:
            plan = resolver.plan("pci:v1234")
        return 0 if loaded and found and plan else 1

    runs = [
        ("python-kmod and Resolver.open", python_kmod),
        ("modinfo a", lambda: modinfo.main(["a"], system=system)),
        ("modinfo -F depends b", lambda: modinfo.main(["-F", "depends", "b"], system=system)),
        ("modinfo FILE", lambda: modinfo.main([ko], system=system)),
        ("modinfo builtin", lambda: modinfo.main(["bi"], system=system)),
        ("modprobe -n -v a", lambda: modprobe.main(["-n", "-v", "a"], system=system)),
        ("modprobe -n -v fooalias", lambda: modprobe.main(["-n", "-v", "foo"], system=system)),
        ("modprobe -r -n -v a", lambda: modprobe.main(["-r", "-n", "-v", "a"], system=system)),
        ("modprobe -c", lambda: modprobe.main(["-c"], system=system)),
        ("modprobe -D a", lambda: modprobe.main(["-D", "a"], system=system)),
        ("modprobe -R foo", lambda: modprobe.main(["-R", "foo"], system=system)),
        (
            "modprobe --show-modversions",
            lambda: modprobe.main(["--show-modversions", ko], system=system),
        ),
        ("modprobe a", lambda: modprobe.main(["a"], kernel=kernel(), system=system)),
        ("modprobe -r b", lambda: modprobe.main(["-r", "b"], kernel=kernel(), system=system)),
        ("depmod", lambda: depmod.main(["-o", f"{root}/out"], system=system)),
        ("depmod -n", lambda: depmod.main(["-n"], system=system)),
        ("lsmod", lambda: lsmod.main([], system=system)),
        ("insmod", lambda: insmod.main([ko, "x=1"], kernel=kernel(), system=system)),
        ("rmmod", lambda: rmmod.main(["b"], kernel=kernel(), system=system)),
        ("kmod list", lambda: kmodcmd.main(["list"], system=system)),
        ("kmod static-nodes", lambda: kmodcmd.main(["static-nodes"], system=system)),
        ("lkm loaded --tree", lambda: loaded.main(["--tree"], system=system)),
        (
            "lkm closure",
            lambda: closure.main(["--no-cache", "--softdeps", "--weakdeps", "foo"], system=system),
        ),
        (
            "lkm status",
            lambda: status_verb.main(["--json", "a", "foo", "bi", "--want=loaded"], system=system),
        ),
        ("lkm drivers", lambda: drivers.main(["--json"], system=system)),
        ("lkm graph foo", lambda: graph.main(["--softdeps", "foo"], system=system)),
        ("lkm show", lambda: show.main(["a", "bi", ko, "b"], system=system)),
        ("lkm audit", lambda: audit.main(["--json"], system=system)),
        ("lkm modules-load", lambda: modules_load.main([], kernel=kernel(), system=system)),
        (
            "lkm verify",
            lambda: verify.main(
                [f"--cert={root}/etc/keys/signing.der", "a", "bi", ko], system=system
            ),
        ),
    ]
    done = []
    for name, run in runs:
        os.write(report, f"# {name}\n".encode())
        done.append((name, run()))
    return done


def main(root: str, report_path: str) -> int:
    report = os.open(report_path, os.O_WRONLY | os.O_APPEND)
    import support.kernel  # noqa: F401  (imported before the hook: it is the test's own)
    from lkm.cli import (  # noqa: F401
        audit,
        closure,
        depmod,
        drivers,
        graph,
        insmod,
        kmodcmd,
        loaded,
        lsmod,
        modinfo,
        modprobe,
        modules_load,
        rmmod,
        show,
        verify,
    )
    from lkm.cli import status as status_verb  # noqa: F401

    os.environ.pop("MODPROBE_OPTIONS", None)
    install(os.path.realpath(root), report)
    for name, status in tools(os.path.realpath(root), report):
        os.write(report, f"= {name} {status}\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
