"""A window's retained row sample as plain rows: what a drill-down report compares.

``WindowState`` keeps two bottom-k samples with the same row priorities: raw values of the
numeric features and codes of the categorical ones. ``sample_rows`` joins them back into
rows (on the priority, so both halves of a row meet) in the profile's feature order, with
codes decoded to the reference's category strings: missing is None, and a category the
reference never had is ``UNSEEN`` (its own value was not kept, only that it was new).

>>> import pandas as pd
>>> from monitor.engine.profile import ReferenceProfile
>>> from monitor.engine.window_state import WindowState, to_batch
>>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0], "c": ["a", "b", "a"]})
>>> profile = ReferenceProfile.build(frame, task="regression", features=None)
>>> state = WindowState(profile, sample_size=10)
>>> rows = [{"x": 1.5, "c": "b"}, {"x": None, "c": "zzz"}, {"c": None}]
>>> state.update(to_batch(rows, profile, keys=["e1", "e2", "e3"]))
>>> sample = sample_rows(state)
>>> sample.columns
[{'name': 'x', 'kind': 'numeric'}, {'name': 'c', 'kind': 'categorical'}]
>>> sorted(sample.rows, key=str)
[[1.5, 'b'], [None, '<unseen>'], [None, None]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.engine.window_state import WindowState

__all__ = ["UNSEEN", "SampleRows", "sample_rows"]

UNSEEN = "<unseen>"  # a category the reference did not have


@dataclass(frozen=True, slots=True)
class SampleRows:
    """Columns (``{"name", "kind"}`` in profile order) and rows of JSON-safe values."""

    columns: list[dict[str, str]]
    rows: list[list[Any]]


def sample_rows(state: WindowState) -> SampleRows:
    """The rows of ``state``'s bounded sample (at most ``sample_size``), decoded."""
    profile = state.profile
    numeric, numeric_keys = state.features.rows.rows()
    codes, code_keys = state.category_rows.rows()
    # Both samples keep the rows of smallest priority; a side without columns has no rows,
    # and a state saved before the categorical sample existed has no codes.
    keys = numeric_keys if numeric.shape[0] else code_keys
    columns: dict[str, list[Any]] = {}
    for j, number in enumerate(profile.numeric):
        values = numeric[j].astype(object)
        values[np.isnan(numeric[j])] = None
        columns[number.name] = values.tolist()
    # each row's categorical half, found by its priority (none: a state saved before)
    position = {priority: i for i, priority in enumerate(code_keys.tolist())}
    at = np.array([position.get(priority, -1) for priority in keys.tolist()], dtype=np.int64)
    for j, category in enumerate(profile.categorical):
        names = np.array([*category.categories, UNSEEN, None], dtype=object)
        code = codes[j, at] if code_keys.size else np.full(keys.size, np.nan)
        code = np.where((at >= 0) & ~np.isnan(code), code, len(names) - 1)
        columns[category.name] = names[np.minimum(code, len(names) - 1).astype(np.int64)].tolist()
    out_rows = [list(row) for row in zip(*(columns[f.name] for f in profile.features),
                                         strict=True)] if profile.features else [[]] * keys.size
    return SampleRows([{"name": f.name, "kind": f.kind} for f in profile.features], out_rows)
