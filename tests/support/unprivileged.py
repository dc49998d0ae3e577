"""Commands held to file modes, even when the tests run as root (as CI does).

Root reads and writes whatever the mode bits say, through CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH. A command started with both dropped from its bounding set (and none
inheritable) runs as root without them: a file of mode 0 cannot be read, a directory of mode
0555 cannot be written, as for any user. Elsewhere the mode bits hold already.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

DROP_DAC = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def held_to_modes(command: Sequence[str]) -> list[str]:
    """``command`` run so that file modes apply to it."""
    return [*DROP_DAC, *command] if os.geteuid() == 0 else list(command)
