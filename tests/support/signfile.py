"""The kernel's ``scripts/sign-file`` as Debian ships it, run inside the kmod 34 chroot.

``sign-file`` comes in ``linux-kbuild-<version>``, built against trixie's libcrypto, so it runs
in the chroot (which has that libcrypto, openssl and kmod 34). The package is the one matching
the trixie tree's kernel, downloaded once into the world's ``debs/`` and unpacked into
``chroot/kbuild/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import world


def sign_file() -> str:
    """The chroot path of Debian's sign-file for the trixie tree's kernel."""
    trixie = world.tree("trixie-amd64")
    # 6.12.117+deb13-amd64 is built by linux-kbuild-6.12.117+deb13.
    package = "linux-kbuild-" + re.sub(r"-[a-z0-9]+$", "", trixie.kver)
    target = world.CHROOT / "kbuild" / package
    tool = target / "scripts" / "sign-file"
    with world.locked():
        if not tool.exists():
            found = sorted(world.DEBS.glob(f"{package}_*_amd64.deb"))
            if not found:
                world.log(f"downloading {package} (trixie amd64)")
                opts = world.apt_options("trixie", "amd64")
                world.run(["apt-get", *opts, "download", package], cwd=world.DEBS)
                found = sorted(world.DEBS.glob(f"{package}_*_amd64.deb"))
            with tempfile.TemporaryDirectory(dir=world.CACHE) as tmp:
                world.run(["dpkg-deb", "-x", found[-1], tmp])
                target.mkdir(parents=True, exist_ok=True)
                (target / "scripts").mkdir(exist_ok=True)
                shutil.copy2(Path(tmp) / "usr/lib" / package / "scripts/sign-file", tool)
    return "/" + str(tool.relative_to(world.CHROOT))


def chroot(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run a command inside the chroot."""
    return subprocess.run(["chroot", str(world.CHROOT), *args], capture_output=True, check=check)


@contextmanager
def scratch() -> Iterator[tuple[Path, str]]:
    """A directory inside the chroot, removed afterwards: (host path, chroot path)."""
    directory = Path(tempfile.mkdtemp(prefix="scratch-sign-", dir=world.CHROOT))
    try:
        yield directory, "/" + directory.name
    finally:
        shutil.rmtree(directory)
