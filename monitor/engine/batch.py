"""The columnar form of a list of feature dicts: what ``WindowState.update`` consumes.

Numeric features become one float64 matrix (features x rows, profile order) with NaN for
missing; categorical features become a matrix of codes into the profile's categories,
where code K (K = number of reference categories) is "unseen" and K + 1 is "missing".
Values of the wrong type are counted per feature and treated as missing:

- numeric feature: a string, a boolean, a non-finite number or anything else that is not
  an int or float;
- categorical feature: anything that is not a string, number or boolean. Numbers and
  booleans are keyed with ``class_key`` like the reference's values, so 3 and "3" meet.

Each row also gets a sample priority in [0, 1): the window's bounded samples keep the
rows of smallest priority. Given ``keys`` (the events' ``event_id``), the priority is a
seeded hash of the key, so a row keeps its priority whichever partition or batch it comes
in and merged partitions hold exactly the sample one pass would. Without keys the window
state draws priorities from its own seeded counter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from monitor.engine.performance import class_key

if TYPE_CHECKING:
    from monitor.engine.profile import ReferenceProfile

__all__ = ["Batch", "counter_priorities", "key_priorities", "to_batch"]

_UNIT = 2.0**-53


@dataclass(frozen=True, eq=False)
class Batch:
    """Feature rows in columnar form (see the module docstring for the encoding)."""

    numeric: NDArray[np.float64]  # (n_numeric, n_rows), NaN = missing
    categorical: NDArray[np.int64]  # (n_categorical, n_rows), codes
    type_errors: NDArray[np.int64]  # (n_numeric + n_categorical,), numeric first
    n_rows: int
    priorities: NDArray[np.float64] | None = None  # (n_rows,) sample priority per row

    @classmethod
    def from_columns(
        cls,
        profile: ReferenceProfile,
        columns: Mapping[str, ArrayLike],
        keys: Sequence[str] | None = None,
        seed: int = 0,
    ) -> Batch:
        """Build from arrays per feature name (absent name: all missing).

        >>> import pandas as pd
        >>> from monitor.engine.profile import ReferenceProfile
        >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
        >>> profile = ReferenceProfile.build(frame, task="regression", features=None)
        >>> batch = Batch.from_columns(profile, {"x": [2.5, np.nan], "c": ["b", "z"]})
        >>> batch.numeric.tolist(), batch.categorical.tolist()
        ([[2.5, nan]], [[1, 2]])
        """
        n = len(keys) if keys is not None else _column_length(columns)
        n_num = len(profile.numeric)
        errors = np.zeros(n_num + len(profile.categorical), dtype=np.int64)
        numeric = np.full((n_num, n), np.nan)
        for j, num in enumerate(profile.numeric):
            if num.name in columns:
                values = np.asarray(columns[num.name])
                if values.dtype.kind in "fiu":
                    numeric[j] = values
                else:
                    errors[j] += _numeric_slow(list(values), numeric[j])
        errors[:n_num] += _drop_non_finite(numeric)
        categorical = np.empty((len(profile.categorical), n), dtype=np.int64)
        for j, cat in enumerate(profile.categorical):
            raw = np.asarray(columns[cat.name], dtype=object) if cat.name in columns else [None] * n
            codes, bad = _encode(list(raw), profile.index_of[j])
            categorical[j] = codes
            errors[n_num + j] = bad
        priorities = None if keys is None else key_priorities(keys, seed)
        return cls(numeric, categorical, errors, n, priorities)


def to_batch(
    rows: Sequence[Mapping[str, object]],
    profile: ReferenceProfile,
    keys: Sequence[str] | None = None,
    seed: int = 0,
) -> Batch:
    """Columnar ``Batch`` of feature dicts as they arrive in events.

    >>> import pandas as pd
    >>> from monitor.engine.profile import ReferenceProfile
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    >>> profile = ReferenceProfile.build(frame, task="regression", features=None)
    >>> batch = to_batch([{"x": 1, "c": "a"}, {"x": "oops", "c": 7}, {}], profile)
    >>> batch.numeric.tolist(), batch.categorical.tolist(), batch.type_errors.tolist()
    ([[1.0, nan, nan]], [[0, 2, 3]], [1, 0])
    """
    n = len(rows)
    n_num = len(profile.numeric)
    errors = np.zeros(n_num + len(profile.categorical), dtype=np.int64)
    numeric = np.empty((n_num, n))
    for j, column in enumerate(profile.numeric):
        name = column.name
        values = [row.get(name) for row in rows]
        if set(map(type, values)) <= {float, int}:
            try:
                numeric[j] = values  # type: ignore[assignment]  # ints and floats only
                continue
            except OverflowError:
                pass
        errors[j] += _numeric_slow(values, numeric[j])
    errors[:n_num] += _drop_non_finite(numeric)
    categorical = np.empty((len(profile.categorical), n), dtype=np.int64)
    for j, cat in enumerate(profile.categorical):
        name = cat.name
        codes, bad = _encode([row.get(name) for row in rows], profile.index_of[j])
        categorical[j] = codes
        errors[n_num + j] = bad
    priorities = None if keys is None else key_priorities(keys, seed)
    return Batch(numeric, categorical, errors, n, priorities)


def key_priorities(keys: Sequence[str], seed: int) -> NDArray[np.float64]:
    """Priority in [0, 1) per key: a seeded SipHash of the key (pandas ``hash_array``).

    >>> key_priorities(["a", "b"], 0).tolist() == key_priorities(["a", "b"], 0).tolist()
    True
    """
    hash_key = f"{seed % 10**16:016d}"
    hashed = pd.util.hash_array(np.asarray(list(keys), dtype=object), hash_key=hash_key)
    return (hashed >> np.uint64(11)).astype(np.float64) * _UNIT


def counter_priorities(seed: int, start: int, n: int) -> NDArray[np.float64]:
    """Priorities of rows ``start .. start + n - 1``: splitmix64 of (seed, row number).

    >>> counter_priorities(1, 0, 3).tolist() == counter_priorities(1, 0, 5)[:3].tolist()
    True
    """
    with np.errstate(over="ignore"):
        base = np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
        z = np.arange(start, start + n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + base
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * _UNIT


def _column_length(columns: Mapping[str, ArrayLike]) -> int:
    lengths = {len(np.asarray(values)) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns differ in length: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _numeric_slow(values: Sequence[object], out: NDArray[np.float64]) -> int:
    """Fill ``out`` from mixed values; return how many were of the wrong type."""
    errors = 0
    for i, value in enumerate(values):
        if value is None:
            out[i] = np.nan
        elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool | np.bool_
        ):
            try:
                out[i] = float(value)
            except OverflowError:
                out[i] = np.nan
                errors += 1
        else:
            out[i] = np.nan
            errors += 1
    return errors


def _drop_non_finite(numeric: NDArray[np.float64]) -> NDArray[np.int64]:
    """Set ±inf to NaN in place; return the count per row of the matrix."""
    infinite = np.isinf(numeric)
    if not infinite.any():
        return np.zeros(numeric.shape[0], dtype=np.int64)
    numeric[infinite] = np.nan
    return infinite.sum(axis=1).astype(np.int64)


def _encode(values: Sequence[object], index: Mapping[str, int]) -> tuple[NDArray[np.int64], int]:
    """Codes of raw categorical values and the number of wrong-typed ones."""
    unseen = len(index)
    missing = unseen + 1
    wrong: list[object] = []

    def code(value: object) -> int:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return missing
        if isinstance(value, str | int | float | np.number | np.bool_):
            return index.get(class_key(value), unseen)
        wrong.append(value)
        return missing

    codes = [index.get(v, unseen) if isinstance(v, str) else code(v) for v in values]
    return np.array(codes, dtype=np.int64), len(wrong)
