"""Bounded, mergeable performance sketch of a model's predictions: no raw rows are kept.

Classification keeps a confusion matrix {(label class, predicted class): count}, the
log-loss sum over rows with probabilities, and, per true class, a histogram of the
positive-class probability (``prob_bins`` equal bins over [0, 1]) from which ROC AUC is
read. Regression keeps n, Σ|e| and Σe² (e = prediction − label).

ROC AUC from histograms. AUC = P(s⁺ > s⁻) + ½ P(s⁺ = s⁻) over (positive, negative)
pairs. Pairs in different bins are ordered exactly; pairs in the same bin b are all
counted ½, so, with P_b and N_b the positive and negative counts of bin b,

    |AUC_hist − AUC_exact| ≤ ½ Σ_b P_b · N_b / (Σ P · Σ N)       (``roc_auc_error_bound``),

about 1 / (2 · prob_bins) for scores spread over [0, 1] and 0 when no bin holds both.

Unlabelled rows feed a confidence-based accuracy estimate (as NannyML's CBPE): with
calibrated probabilities the expected accuracy is the mean probability of the predicted
class, so the sketch keeps Σ confidence and a count. A ``Calibrator`` (isotonic, fitted on
the reference) corrects a miscalibrated model's positive-class probability first.

>>> state = PerformanceState("classification", classes=("0", "1"))
>>> state.add([1, 0, 1, 1], [1, 0, 0, 1], [0.9, 0.2, 0.6, 0.7])
>>> state.metrics()["accuracy"], state.metrics()["roc_auc"]
(0.75, 1.0)
>>> state.merge(PerformanceState.from_dict(state.to_dict())).metrics()["n_labels"]
8
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Calibrator", "PerformanceState", "class_key"]

Task = Literal["classification", "regression"]
_TASKS = ("classification", "regression")
_EPS = float(np.finfo(np.float64).eps)  # log-loss clipping, as sklearn's log_loss


def class_key(value: object) -> str:
    """Canonical class name, so label 1, prediction 1.0 and probability key "1" meet.

    >>> [class_key(v) for v in (True, 1, 1.0, 2.5, "cat")]
    ['true', '1', '1', '2.5', 'cat']
    """
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, str):
        return value
    raise TypeError(
        f"a class must be a bool, number or string, got {type(value).__name__} {value!r}"
    )


class Calibrator:
    """Monotone map of raw to calibrated positive-class probability (isotonic regression).

    Stored as the fitted thresholds (x, y) and applied by linear interpolation, clipped at
    the ends: exactly sklearn's ``IsotonicRegression(out_of_bounds="clip").predict``.
    The identity when not fitted.

    >>> cal = Calibrator.fit([0.1, 0.3, 0.6, 0.8], [0, 1, 0, 1])
    >>> cal.apply(np.array([0.0, 0.45, 1.0])).tolist()
    [0.0, 0.5, 1.0]
    >>> Calibrator().apply(np.array([0.3])).tolist()
    [0.3]
    """

    def __init__(self, x: ArrayLike = (), y: ArrayLike = ()) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        if self.x.ndim != 1 or self.x.shape != self.y.shape:
            raise ValueError(f"calibrator x and y must be 1-D of one length, got {x!r}, {y!r}")
        if np.any(np.diff(self.x) <= 0):
            raise ValueError(f"calibrator x must be strictly increasing, got {self.x}")

    @classmethod
    def fit(cls, probabilities: ArrayLike, outcomes: ArrayLike) -> Calibrator:
        """Fit on reference positive-class probabilities and outcomes (1/True = positive)."""
        from sklearn.isotonic import IsotonicRegression  # heavy import, fitting only

        p = np.asarray(probabilities, dtype=np.float64)
        y = np.asarray(outcomes, dtype=np.float64)
        if p.shape != y.shape or p.ndim != 1:
            raise ValueError(f"probabilities and outcomes differ in shape: {p.shape}, {y.shape}")
        keep = np.isfinite(p) & np.isfinite(y)
        if not keep.any():
            return cls()
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(p[keep], y[keep])
        return cls(iso.X_thresholds_, iso.y_thresholds_)

    @property
    def fitted(self) -> bool:
        return self.x.size > 0

    def apply(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        if not self.fitted:
            return np.array(p, dtype=np.float64)
        return np.interp(p, self.x, self.y)

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> Calibrator:
        return cls(data["x"], data["y"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Calibrator):
            return NotImplemented
        return np.array_equal(self.x, other.x) and np.array_equal(self.y, other.y)

    __hash__ = None  # type: ignore[assignment]  # mutable arrays: not hashable


class PerformanceState:
    """Mergeable performance of one window: real metrics from labels, estimated without.

    ``positive_class`` names the class whose probability a float ``probabilities`` value
    is (and whose probability the AUC histograms record). When omitted it is inferred:
    the greater of two configured ``classes``, else "1" or "true" once every class seen
    is in {"0", "1"} or {"false", "true"}.
    """

    def __init__(
        self,
        task: Task,
        classes: Sequence[str] = (),
        positive_class: str | None = None,
        prob_bins: int = 200,
        calibrator: Calibrator | None = None,
    ) -> None:
        if task not in _TASKS:
            raise ValueError(f"task must be one of {_TASKS}, got {task!r}")
        if prob_bins < 1:
            raise ValueError(f"prob_bins must be >= 1, got {prob_bins}")
        self.task: Task = task
        self.classes = tuple(class_key(c) for c in classes)
        if positive_class is None and len(self.classes) == 2:
            positive_class = _greater(*self.classes)
        self.positive_class = None if positive_class is None else class_key(positive_class)
        self.prob_bins = int(prob_bins)
        self.calibrator = calibrator
        self.n = 0
        self.confusion: dict[tuple[str, str], int] = {}
        self.n_log_loss = 0
        self.log_loss_sum = 0.0
        self.auc_hist: dict[str, NDArray[np.int64]] = {}
        self.abs_error_sum = 0.0
        self.sq_error_sum = 0.0
        self.n_unlabelled = 0
        self.confidence_sum = 0.0

    # -- updates ---------------------------------------------------------------------

    def add(
        self,
        predictions: Sequence[Any] | NDArray[Any],
        labels: Sequence[Any] | NDArray[Any],
        probabilities: Sequence[Any] | NDArray[Any] | None = None,
    ) -> None:
        """Add labelled rows; ``probabilities`` per row: float, {class: p} or None."""
        _same_length(predictions, labels, probabilities)
        if self.task == "regression":
            pred = np.asarray(predictions, dtype=np.float64)
            error = pred - np.asarray(labels, dtype=np.float64)
            error = error[np.isfinite(error)]  # a missing label or prediction: skip the row
            self.n += int(error.size)
            self.abs_error_sum += float(np.abs(error).sum())
            self.sq_error_sum += float((error * error).sum())
            return
        pred_keys = [class_key(v) for v in predictions]
        label_keys = [class_key(v) for v in labels]
        for pair, count in Counter(zip(label_keys, pred_keys, strict=True)).items():
            self.confusion[pair] = self.confusion.get(pair, 0) + count
        self.n += len(label_keys)
        if probabilities is not None:
            self._add_probabilities(label_keys, pred_keys, probabilities)

    def add_unlabelled(
        self,
        probabilities: Sequence[Any] | NDArray[Any],
        predictions: Sequence[Any] | NDArray[Any] | None = None,
    ) -> None:
        """Add rows to the confidence-based accuracy estimate (rows without p are skipped).

        Confidence is the calibrated probability of the predicted class: of
        ``predictions`` when given, else of the most probable class (max(p, 1 − p) for a
        binary positive-class probability). Regression has no estimate: a no-op.
        """
        if self.task == "regression":
            return
        _same_length(probabilities, predictions, None)
        pred_keys = None if predictions is None else [class_key(v) for v in predictions]
        p_pos, top = self._positive_probabilities(probabilities)
        p_pos = self.calibrator.apply(p_pos) if self.calibrator else p_pos
        positive = self.positive_class
        if pred_keys is not None and positive is not None:
            predicted_pos = np.array([k == positive for k in pred_keys], dtype=np.bool_)
            confidence = np.where(predicted_pos, p_pos, 1.0 - p_pos)
        else:
            confidence = np.maximum(p_pos, 1.0 - p_pos)
        # Rows with only a multiclass dict fall back to its (uncalibrated) top probability.
        confidence = np.where(np.isnan(p_pos), top, confidence)
        known = ~np.isnan(confidence)
        self.n_unlabelled += int(known.sum())
        self.confidence_sum += float(confidence[known].sum())

    def _add_probabilities(
        self,
        label_keys: list[str],
        pred_keys: list[str],
        probabilities: Sequence[Any] | NDArray[Any],
    ) -> None:
        self._infer_positive(label_keys, pred_keys)
        positive = self.positive_class
        p_pos, p_true = self._row_probabilities(probabilities, label_keys)
        rows = ~np.isnan(p_true)
        self.n_log_loss += int(rows.sum())
        self.log_loss_sum += float(-np.log(np.clip(p_true[rows], _EPS, 1.0 - _EPS)).sum())
        if positive is None:
            return
        rows = ~np.isnan(p_pos)
        labels = np.asarray(label_keys, dtype=object)[rows]
        bins = _bin_index(p_pos[rows], self.prob_bins)
        for label in set(labels.tolist()):
            counts = np.bincount(bins[labels == label], minlength=self.prob_bins)
            self.auc_hist[label] = self.auc_hist.get(label, 0) + counts

    def _row_probabilities(
        self, probabilities: Sequence[Any] | NDArray[Any], label_keys: list[str]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(positive-class p, true-class p) per row, NaN where a row has no usable p."""
        positive = self.positive_class
        p_float = _as_float_array(probabilities)
        if p_float is not None:
            if positive is None:
                raise ValueError(
                    "a float probability is the positive class's, but positive_class is "
                    f"unknown for classes {sorted(self._seen_classes())}: pass positive_class"
                )
            is_pos = np.array([k == positive for k in label_keys], dtype=np.bool_)
            return p_float, np.where(is_pos, p_float, 1.0 - p_float)
        p_pos = np.full(len(label_keys), np.nan)
        p_true = np.full(len(label_keys), np.nan)
        for i, (row, label) in enumerate(zip(probabilities, label_keys, strict=True)):
            dist = _distribution(row, positive)
            if dist:
                p_true[i] = dist.get(label, 0.0)
                if positive is not None:
                    p_pos[i] = dist.get(positive, 0.0)
        return p_pos, p_true

    def _positive_probabilities(
        self, probabilities: Sequence[Any] | NDArray[Any]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(positive-class p, top-class p) per row, NaN where unknown."""
        p_float = _as_float_array(probabilities)
        if p_float is not None:
            return p_float, np.full(p_float.shape, np.nan)
        positive = self.positive_class
        p_pos = np.full(len(probabilities), np.nan)
        top = np.full(len(probabilities), np.nan)
        for i, row in enumerate(probabilities):
            dist = _distribution(row, positive)
            if dist:
                top[i] = max(dist.values())
                if positive is not None and len(dist) <= 2:
                    p_pos[i] = dist.get(positive, 0.0)
        return p_pos, top

    def _infer_positive(self, label_keys: list[str], pred_keys: list[str]) -> None:
        if self.positive_class is not None:
            return
        seen = self._seen_classes() | set(label_keys) | set(pred_keys)
        if seen and seen <= {"0", "1"}:
            self.positive_class = "1"
        elif seen and seen <= {"false", "true"}:
            self.positive_class = "true"

    def _seen_classes(self) -> set[str]:
        seen = set(self.classes) | set(self.auc_hist)
        for label, pred in self.confusion:
            seen.update((label, pred))
        return seen

    # -- merge and persistence -------------------------------------------------------

    def merge(self, other: PerformanceState) -> PerformanceState:
        """A new state holding the rows of both (associative and commutative)."""
        for name in ("task", "classes", "prob_bins", "calibrator"):
            if getattr(self, name) != getattr(other, name):
                raise ValueError(
                    f"cannot merge performance states with different {name}: "
                    f"{getattr(self, name)!r} != {getattr(other, name)!r}"
                )
        if None not in (self.positive_class, other.positive_class) and (
            self.positive_class != other.positive_class
        ):
            raise ValueError(
                "cannot merge performance states with different positive_class: "
                f"{self.positive_class!r} != {other.positive_class!r}"
            )
        out = PerformanceState(
            self.task,
            self.classes,
            self.positive_class or other.positive_class,
            self.prob_bins,
            self.calibrator,
        )
        out.n = self.n + other.n
        out.confusion = dict(Counter(self.confusion) + Counter(other.confusion))
        out.n_log_loss = self.n_log_loss + other.n_log_loss
        out.log_loss_sum = self.log_loss_sum + other.log_loss_sum
        for label in set(self.auc_hist) | set(other.auc_hist):
            zeros = np.zeros(self.prob_bins, dtype=np.int64)
            out.auc_hist[label] = self.auc_hist.get(label, zeros) + other.auc_hist.get(
                label, zeros
            )
        out.abs_error_sum = self.abs_error_sum + other.abs_error_sum
        out.sq_error_sum = self.sq_error_sum + other.sq_error_sum
        out.n_unlabelled = self.n_unlabelled + other.n_unlabelled
        out.confidence_sum = self.confidence_sum + other.confidence_sum
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe state; ``from_dict(to_dict())`` restores it exactly."""
        return {
            "task": self.task,
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "prob_bins": self.prob_bins,
            "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
            "n": self.n,
            "confusion": [[lab, pred, n] for (lab, pred), n in sorted(self.confusion.items())],
            "n_log_loss": self.n_log_loss,
            "log_loss_sum": self.log_loss_sum,
            "auc_hist": {label: h.tolist() for label, h in sorted(self.auc_hist.items())},
            "abs_error_sum": self.abs_error_sum,
            "sq_error_sum": self.sq_error_sum,
            "n_unlabelled": self.n_unlabelled,
            "confidence_sum": self.confidence_sum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceState:
        try:
            cal = data["calibrator"]
            state = cls(
                data["task"],
                data["classes"],
                data["positive_class"],
                data["prob_bins"],
                None if cal is None else Calibrator.from_dict(cal),
            )
            state.n = int(data["n"])
            state.confusion = {(lab, pred): int(n) for lab, pred, n in data["confusion"]}
            state.n_log_loss = int(data["n_log_loss"])
            state.log_loss_sum = float(data["log_loss_sum"])
            state.auc_hist = {
                label: np.asarray(h, dtype=np.int64) for label, h in data["auc_hist"].items()
            }
            state.abs_error_sum = float(data["abs_error_sum"])
            state.sq_error_sum = float(data["sq_error_sum"])
            state.n_unlabelled = int(data["n_unlabelled"])
            state.confidence_sum = float(data["confidence_sum"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a performance state dict ({err!r}): {data!r:.200}") from err
        return state

    # -- results ---------------------------------------------------------------------

    def metrics(self) -> dict[str, Any] | None:
        """Real metrics from labelled rows; None before any label joined."""
        if self.n == 0:
            return None
        if self.task == "regression":
            return {
                "mae": self.abs_error_sum / self.n,
                "rmse": float(np.sqrt(self.sq_error_sum / self.n)),
                "n_labels": self.n,
            }
        return {
            "accuracy": sum(n for (lab, pred), n in self.confusion.items() if lab == pred)
            / self.n,
            "f1_macro": self._f1_macro(),
            "roc_auc": self._roc_auc()[0],
            "log_loss": self.log_loss_sum / self.n_log_loss if self.n_log_loss else None,
            "n_labels": self.n,
        }

    def roc_auc_error_bound(self) -> float | None:
        """Upper bound of |roc_auc − exact AUC| due to the histograms (module docstring)."""
        return self._roc_auc()[1]

    def estimated(self) -> dict[str, Any] | None:
        """Confidence-based accuracy estimate of the unlabelled rows; None without rows."""
        if self.n_unlabelled == 0:
            return None
        accuracy = self.confidence_sum / self.n_unlabelled
        return {"accuracy": accuracy, "estimated": True, "n": self.n_unlabelled}

    def _f1_macro(self) -> float:
        """Macro F1 over the classes seen in labels or predictions, as sklearn's f1_score."""
        classes = {c for pair in self.confusion for c in pair}
        scores = []
        for cls in classes:
            tp = self.confusion.get((cls, cls), 0)
            wrong = sum(n for (lab, pred), n in self.confusion.items() if (lab == cls) != (pred == cls))
            scores.append(2 * tp / (2 * tp + wrong))
        return float(np.mean(scores))

    def _roc_auc(self) -> tuple[float | None, float | None]:
        positive = self.positive_class
        if positive is None or len(self._seen_classes() | {positive}) != 2:
            return None, None
        zeros = np.zeros(self.prob_bins, dtype=np.int64)
        pos = self.auc_hist.get(positive, zeros).astype(np.float64)
        neg = sum((h for lab, h in self.auc_hist.items() if lab != positive), zeros)
        neg = np.asarray(neg, dtype=np.float64)
        pairs = pos.sum() * neg.sum()
        if pairs == 0:
            return None, None
        neg_below = neg.cumsum() - neg
        auc = float((pos * (neg_below + 0.5 * neg)).sum() / pairs)
        return auc, float(0.5 * (pos * neg).sum() / pairs)


def _greater(a: str, b: str) -> str:
    """The greater class name, numerically when both are numbers (sklearn's pos_label)."""
    try:
        return a if float(a) > float(b) else b
    except ValueError:
        return max(a, b)


def _same_length(a: Sized_, b: Sized_ | None, c: Sized_ | None) -> None:
    lengths = {len(x) for x in (a, b, c) if x is not None}
    if len(lengths) > 1:
        raise ValueError(f"predictions, labels and probabilities differ in length: {lengths}")


Sized_ = Sequence[Any] | NDArray[Any]


def _as_float_array(probabilities: Sequence[Any] | NDArray[Any]) -> NDArray[np.float64] | None:
    """All rows as one float array (None → NaN), or None when some row is a dict."""
    if isinstance(probabilities, np.ndarray) and probabilities.dtype.kind in "fiub":
        return probabilities.astype(np.float64)
    if any(isinstance(row, Mapping) for row in probabilities):
        return None
    return np.array([np.nan if row is None else row for row in probabilities], dtype=np.float64)


def _distribution(row: object, positive: str | None) -> dict[str, float]:
    """A row's probabilities as {class: p} summing to 1; {} when it has none."""
    if row is None:
        return {}
    if isinstance(row, Mapping):
        dist = {class_key(k): float(v) for k, v in row.items()}
        total = sum(dist.values())
        return {k: v / total for k, v in dist.items()} if total > 0 else {}
    p = float(row)  # type: ignore[arg-type]
    if positive is None or np.isnan(p):
        return {}
    return {positive: p}


def _bin_index(p: NDArray[np.float64], bins: int) -> NDArray[np.intp]:
    """Equal-width bin of each probability in [0, 1]; monotone in p, so AUC ties stay ties."""
    return np.clip((np.clip(p, 0.0, 1.0) * bins).astype(np.intp), 0, bins - 1)
