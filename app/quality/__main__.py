"""``python -m app.quality``: the quality harness without the app's command line."""

from __future__ import annotations

import sys

from app.quality import main

if __name__ == "__main__":
    sys.exit(main())
