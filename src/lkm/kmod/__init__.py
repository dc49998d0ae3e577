"""python-kmod's API on lkm: switch a script over by changing ``import kmod`` only.

    import lkm.kmod as kmod

    km = kmod.Kmod()
    [(m.name, m.size) for m in km.loaded()]
    km.modprobe("btrfs")
    km.rmmod("btrfs")

Names, signatures and return shapes are python-kmod 0.9's (``Kmod``, ``Module``,
``kmod.error.KmodError``, the ``KMOD_PROBE_*`` flags of libkmod): strings are ``str`` (or
None where libkmod has no value), ``info`` is an OrderedDict, ``versions``, ``lookup``,
``loaded`` and ``list`` are generators. Values are compared with libkmod's own answers
(tests/test_kmod_api_libkmod.py). One difference is kept on purpose: python-kmod
decodes text as ASCII and raises on a module whose author is "Bjørn"; lkm decodes UTF-8.

What python-kmod leaves to libkmod, lkm does itself: the lookup and the load plan come from
:class:`lkm.resolve.Resolver`, loading goes through :mod:`lkm.probe` and :mod:`lkm.kernel`.
Beyond python-kmod, ``Kmod`` takes keyword-only roots (configuration, kernel command line,
``/proc``, ``/sys``) and a kernel, for tests and for trees other than the running system's.
"""

from __future__ import annotations

from lkm.kmod.error import KmodError
from lkm.kmod.kmod import Kmod
from lkm.kmod.module import Module
from lkm.probe import ProbeFlag

KMOD_PROBE_FORCE_VERMAGIC = int(ProbeFlag.FORCE_VERMAGIC)
KMOD_PROBE_FORCE_MODVERSION = int(ProbeFlag.FORCE_MODVERSION)
KMOD_PROBE_IGNORE_COMMAND = int(ProbeFlag.IGNORE_COMMAND)
KMOD_PROBE_IGNORE_LOADED = int(ProbeFlag.IGNORE_LOADED)
KMOD_PROBE_DRY_RUN = int(ProbeFlag.DRY_RUN)
KMOD_PROBE_FAIL_ON_LOADED = int(ProbeFlag.FAIL_ON_LOADED)
KMOD_PROBE_APPLY_BLACKLIST_ALL = int(ProbeFlag.APPLY_BLACKLIST_ALL)
KMOD_PROBE_APPLY_BLACKLIST = int(ProbeFlag.APPLY_BLACKLIST)
KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY = int(ProbeFlag.APPLY_BLACKLIST_ALIAS_ONLY)

__all__ = [
    "KMOD_PROBE_APPLY_BLACKLIST",
    "KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY",
    "KMOD_PROBE_APPLY_BLACKLIST_ALL",
    "KMOD_PROBE_DRY_RUN",
    "KMOD_PROBE_FAIL_ON_LOADED",
    "KMOD_PROBE_FORCE_MODVERSION",
    "KMOD_PROBE_FORCE_VERMAGIC",
    "KMOD_PROBE_IGNORE_COMMAND",
    "KMOD_PROBE_IGNORE_LOADED",
    "Kmod",
    "KmodError",
    "Module",
]
