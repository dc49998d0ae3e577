"""Which modules serve the devices a kernel sees, and which driver each device has now.

Every device the kernel puts on a bus is a link ``/sys/bus/BUS/devices/NAME`` into
``/sys/devices``; a device a module can serve has a ``modalias`` file, the string udev hands to
``modprobe`` at boot. For each one :func:`drivers` returns a :class:`Device`: the modules that
string stands for, exactly as ``modprobe -R MODALIAS`` (kmod 34) finds them (modprobe.d aliases
first, which shadow the indexes; then modules.alias.bin, modules.builtin.bin and
modules.builtin.alias.bin, with kmod's wildcard matching), each marked loaded, built in or
blacklisted, and the driver bound to the device now (the ``driver`` link) with the module that
driver belongs to (the driver's ``module`` link, which built-in drivers have too)::

    from lkm.drivers import drivers
    from lkm.system import System

    system = System.running()
    for device in drivers(system, system.module_directory()):
        print(device.bus, device.name, device.modalias, device.driver,
              [c.module for c in device.candidates if c.loaded])

Devices without a ``modalias`` are left out. Whatever cannot be read in a device's part of the
tree (a link to nothing, a file where a directory should be, a ``modalias`` that cannot be
read) gives that device's record an ``error``; the rest are still reported.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from lkm.errors import LkmError

if TYPE_CHECKING:
    from lkm.config import Config
    from lkm.moddir import ModuleDirectory
    from lkm.resolve import Resolver
    from lkm.system import System


class Candidate(NamedTuple):
    """A module a device's modalias stands for."""

    module: str  # its name, as modprobe -R prints it
    loaded: bool  # /sys/module/NAME/initstate reads "live"
    builtin: bool  # modules.builtin lists it: part of the kernel image
    blacklisted: bool  # a modprobe.d "blacklist" line names it: udev's modprobe -b skips it


class Device(NamedTuple):
    """One device on a bus, what could drive it and what drives it now."""

    bus: str
    name: str | None  # its link's name under bus/BUS/devices (None: the bus itself failed)
    devpath: str | None  # where the link leads, below the sysfs root ("/devices/..."), as udev
    modalias: str | None  # None when it could not be read
    candidates: tuple[Candidate, ...]  # modprobe -R's modules, in its order, each once
    driver: str | None  # the bound driver's name (the driver link's last part); None: unbound
    driver_module: str | None  # the module of that driver (its module link), when it has one
    error: str | None = None  # what could not be read, when something could not


class DriversError(LkmError):
    """The sysfs tree has no bus directory to read."""


def drivers(
    system: System, moddir: ModuleDirectory, *, config: Config | None = None
) -> tuple[Device, ...]:
    """Every device with a ``modalias`` under ``system.sysfs``'s ``bus/*/devices``, buses and
    devices sorted by name; modules are looked up in ``moddir`` with ``config`` (default:
    ``system``'s modprobe.d directories and kernel command line, as modprobe reads them).

    Raises DriversError when ``bus`` itself cannot be listed.
    """
    from lkm.resolve import Resolver

    if config is None:
        from lkm.config import load_config

        config = load_config(system.modprobe_dirs, module_dir=moddir.path, cmdline=system.cmdline)
    resolver = Resolver(moddir, config)
    sysfs = system.sysfs
    buses = _listing(f"{sysfs}/bus")
    if isinstance(buses, OSError):
        raise DriversError(_cannot("open", f"{sysfs}/bus", buses))
    root = os.path.realpath(sysfs)
    states: dict[str, Candidate] = {}
    found: list[Device] = []
    for bus in buses:
        folder = f"{sysfs}/bus/{bus}/devices"
        names = _listing(folder)
        if isinstance(names, OSError):
            if not isinstance(names, FileNotFoundError):  # no devices folder: no devices
                found.append(
                    Device(bus, None, None, None, (), None, None, _cannot("open", folder, names))
                )
            continue
        for name in names:
            device = _device(bus, name, f"{folder}/{name}", root)
            if device is None:
                continue
            if device.modalias:
                device = device._replace(
                    candidates=_candidates(resolver, device.modalias, sysfs, states)
                )
            found.append(device)
    return tuple(found)


def _listing(path: str) -> list[str] | OSError:
    try:
        return sorted(os.listdir(path))
    except OSError as err:
        return err


def _cannot(verb: str, path: str, err: OSError) -> str:
    return f"could not {verb} {path}: {os.strerror(err.errno or 0)}"


def _device(bus: str, name: str, entry: str, root: str) -> Device | None:
    """The record of one ``bus/BUS/devices/NAME``; None for a device without ``modalias``."""
    target = os.path.realpath(entry)
    devpath = "/" + os.path.relpath(target, root) if target.startswith(root + "/") else None
    record = Device(bus, name, devpath, None, (), None, None)
    try:
        return _read_device(record, entry)
    except OSError as err:  # the tree changed under us (a device went away while we read)
        return record._replace(
            error=f"could not read {err.filename}: {os.strerror(err.errno or 0)}"
        )


def _dangling(link: str) -> str:
    return f"{link} is a link to {os.readlink(link)}, which does not exist"


def _read_device(record: Device, entry: str) -> Device | None:
    if os.path.islink(entry) and not os.path.exists(entry):
        return record._replace(error=_dangling(entry))
    if not os.path.isdir(entry):
        return record._replace(error=f"{entry} is not a directory")
    modalias_path = f"{entry}/modalias"
    try:
        with open(modalias_path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        return record._replace(error=_cannot("read", modalias_path, err))
    from lkm.text import decode

    modalias = decode(raw).removesuffix("\n")
    # Only the first problem is told; what can still be read is read.
    problem = None if modalias else f"{modalias_path} is empty"
    record = record._replace(modalias=modalias, error=problem)
    driver_link = f"{entry}/driver"
    if not os.path.islink(driver_link):
        if os.path.lexists(driver_link):
            return record._replace(error=problem or f"{driver_link} is not a link")
        return record
    record = record._replace(driver=os.path.basename(os.readlink(driver_link).rstrip("/")))
    if not os.path.exists(driver_link):
        return record._replace(error=problem or _dangling(driver_link))
    module_link = f"{driver_link}/module"
    if os.path.islink(module_link):
        module = os.path.basename(os.readlink(module_link).rstrip("/"))
        return record._replace(driver_module=module)
    if os.path.lexists(module_link):
        return record._replace(error=problem or f"{module_link} is not a link")
    return record


def _candidates(
    resolver: Resolver, modalias: str, sysfs: str, states: dict[str, Candidate]
) -> tuple[Candidate, ...]:
    """The modules ``modprobe -R`` prints for ``modalias``, each once, in its order."""
    names = dict.fromkeys(match.name for match in resolver.lookup(modalias, paths=False))
    return tuple(_candidate(resolver, name, sysfs, states) for name in names)


def _candidate(
    resolver: Resolver, name: str, sysfs: str, states: dict[str, Candidate]
) -> Candidate:
    known = states.get(name)
    if known is None:
        from lkm.state import ModuleState, SysModule

        try:
            loaded = SysModule(name, sysfs).initstate() is ModuleState.LIVE
        except LkmError:  # a state the kernel does not write: not one to count as loaded
            loaded = False
        builtin = resolver.moddir.is_builtin(name)
        known = states[name] = Candidate(name, loaded, builtin, resolver.is_blacklisted(name))
    return known


__all__ = ["Candidate", "Device", "DriversError", "drivers"]
