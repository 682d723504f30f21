"""Progress bars for long commands (``replay``, ``retrain``), on stderr, for people only.

A bar is drawn only when stderr is a terminal, so logs, pipes and tests stay clean;
``--no-progress`` or ``DRIFTLINE_PROGRESS=0`` turn it off there too. The decision is
made once, by the command line (``wanted``), and passed down as a bool.

>>> wanted(no_progress=False, environ={"DRIFTLINE_PROGRESS": "0"})
False
>>> with progress_bar(False, total=3) as bar:  # off: a bar that draws nothing
...     bar.update(3)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Any

from tqdm import tqdm

__all__ = ["ENV", "progress_bar", "wanted"]

ENV = "DRIFTLINE_PROGRESS"  # "0" turns bars off


def wanted(no_progress: bool, environ: Mapping[str, str], stream: IO[str] | None = None) -> bool:
    """Whether to draw bars: not turned off, and ``stream`` (stderr) is a terminal."""
    if no_progress or environ.get(ENV, "").strip() == "0":
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: no bar
        return False


def progress_bar(enabled: bool, **options: Any) -> tqdm[Any]:
    """A ``tqdm`` bar on stderr (``options`` as tqdm's); a silent one when not ``enabled``."""
    return tqdm(disable=not enabled, file=sys.stderr, dynamic_ncols=True, leave=False,
                **options)
