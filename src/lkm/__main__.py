from __future__ import annotations

import sys

from lkm.cli import main

sys.exit(main())
