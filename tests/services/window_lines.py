"""Comparing window lines written by different runs: the newest revision of each window,
without the time it was written, floats to 1e-9 relative."""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["assert_same", "final_lines"]


def final_lines(lines: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The last revision of every window, by window key, without the time of writing."""
    out: dict[int, dict[str, Any]] = {}
    for line in lines:
        if "summary" in line:
            continue
        kept = {k: v for k, v in line.items() if k not in ("as_of", "revision", "finalised_at")}
        key = line["window_key"]
        if key not in out or line["revision"] >= out[key][1]:
            out[key] = (kept, line["revision"])  # type: ignore[assignment]
    return {k: v[0] for k, v in out.items()}  # type: ignore[index]


def assert_same(a: Any, b: Any, where: str = "", *, abs_tol: float = 1e-12) -> None:
    """Equal, floats to 1e-9 relative (a sum over labels may add in another order) or
    ``abs_tol``."""
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}", abs_tol=abs_tol)
    elif isinstance(a, list):
        assert isinstance(b, list), where
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]", abs_tol=abs_tol)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=abs_tol), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
