"""``python -m retrain --model NAME --config PATH``: the retrain job, by hand."""

from __future__ import annotations

import sys

from retrain.cli import main

if __name__ == "__main__":
    sys.exit(main())
