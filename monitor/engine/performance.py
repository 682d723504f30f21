"""Bounded, mergeable performance sketch of a model's predictions: no raw rows are kept.

Classification keeps a confusion matrix {(label class, predicted class): count}, the
log-loss sum over rows with probabilities, and, per true class, a histogram of the
positive-class probability (``prob_bins`` equal bins over [0, 1]) from which ROC AUC is
read. Regression keeps n, Σ|e| and Σe² (e = prediction − label).

ROC AUC from histograms. AUC = P(s⁺ > s⁻) + ½ P(s⁺ = s⁻) over (positive, negative)
pairs. Pairs in different bins are ordered exactly; pairs in the same bin b are all
counted ½, so, with P_b and N_b the positive and negative counts of bin b,

    |AUC_hist − AUC_exact| ≤ ½ Σ_b P_b · N_b / (Σ P · Σ N)       (``roc_auc_error_bound``),

≈ ∫ f⁺ f⁻ dp / (2 · prob_bins) with f± the score densities of each class: about
1 / (2 · prob_bins) for scores spread over [0, 1] (0.0026 on a Beta(2, 2) problem with
the default 200 bins, where the actual error is ~3e-5), and 0 when no bin holds both.

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
from numpy.typing import NDArray

from monitor.engine.calibration import Calibrator

__all__ = ["Calibrator", "PerformanceState", "class_key"]  # Calibrator re-exported

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
        binary positive-class probability). Only binary positive-class probabilities are
        calibrated; a multiclass {class: p} row uses its own probability. Regression has
        no estimate: a no-op.
        """
        if self.task == "regression":
            return
        _same_length(probabilities, predictions, None)
        pred_keys = None if predictions is None else [class_key(v) for v in predictions]
        p_pos, p_pred = self._unlabelled_probabilities(probabilities, pred_keys)
        if self.calibrator is not None:
            p_pos = self.calibrator.apply(p_pos)
        positive = self.positive_class
        if pred_keys is not None and positive is not None:
            predicted_pos = np.array([k == positive for k in pred_keys], dtype=np.bool_)
            confidence = np.where(predicted_pos, p_pos, 1.0 - p_pos)
        else:
            confidence = np.maximum(p_pos, 1.0 - p_pos)
        confidence = np.where(np.isnan(p_pos), p_pred, confidence)
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
        p_pos, p_true = self._labelled_probabilities(probabilities, label_keys)
        rows = ~np.isnan(p_true)
        self.n_log_loss += int(rows.sum())
        self.log_loss_sum += float(-np.log(np.clip(p_true[rows], _EPS, 1.0 - _EPS)).sum())
        rows = ~np.isnan(p_pos)
        labels = np.asarray(label_keys, dtype=object)[rows]
        bins = _bin_index(p_pos[rows], self.prob_bins)
        for label in set(labels.tolist()):
            counts = np.bincount(bins[labels == label], minlength=self.prob_bins)
            self.auc_hist[label] = self.auc_hist.get(label, _zeros(self.prob_bins)) + counts

    def _labelled_probabilities(
        self, probabilities: Sequence[Any] | NDArray[Any], label_keys: list[str]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(positive-class p, true-class p) per row, NaN where a row has no usable p."""
        positive = self.positive_class
        p_float = _as_float_array(probabilities)
        if p_float is not None:
            if not np.isnan(p_float).all():
                self._require_positive()
            is_pos = np.array([k == positive for k in label_keys], dtype=np.bool_)
            return p_float, np.where(is_pos, p_float, 1.0 - p_float)
        p_pos = np.full(len(label_keys), np.nan)
        p_true = np.full(len(label_keys), np.nan)
        for i, (row, label) in enumerate(zip(probabilities, label_keys, strict=True)):
            if isinstance(row, Mapping):
                dist = _normalised(row)
                if dist:
                    p_true[i] = dist.get(label, 0.0)
                    if positive is not None:
                        p_pos[i] = dist.get(positive, 0.0)
            elif row is not None:
                self._require_positive()
                p_pos[i] = float(row)
                p_true[i] = p_pos[i] if label == positive else 1.0 - p_pos[i]
        return p_pos, p_true

    def _unlabelled_probabilities(
        self, probabilities: Sequence[Any] | NDArray[Any], pred_keys: list[str] | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(binary positive-class p, multiclass predicted-class p) per row, NaN if unknown."""
        p_float = _as_float_array(probabilities)
        if p_float is not None:
            return p_float, np.full(p_float.shape, np.nan)
        positive = self.positive_class
        p_pos = np.full(len(probabilities), np.nan)
        p_pred = np.full(len(probabilities), np.nan)
        for i, row in enumerate(probabilities):
            if isinstance(row, Mapping):
                dist = _normalised(row)
                if not dist:
                    continue
                if positive is not None and len(dist) <= 2:
                    p_pos[i] = dist.get(positive, 0.0)
                elif pred_keys is None:
                    p_pred[i] = max(dist.values())
                else:
                    p_pred[i] = dist.get(pred_keys[i], 0.0)
            elif row is not None:
                p_pos[i] = float(row)
        return p_pos, p_pred

    def _require_positive(self) -> None:
        if self.positive_class is None:
            raise ValueError(
                "a float probability is the positive class's, but positive_class is "
                f"unknown for classes {sorted(self._seen_classes())}: pass positive_class"
            )

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
        zeros = _zeros(self.prob_bins)
        for label in set(self.auc_hist) | set(other.auc_hist):
            out.auc_hist[label] = self.auc_hist.get(label, zeros) + other.auc_hist.get(label, zeros)
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
            "accuracy": sum(n for (lab, pred), n in self.confusion.items() if lab == pred) / self.n,
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
        labelled: Counter[str] = Counter()
        predicted: Counter[str] = Counter()
        for (label, pred), n in self.confusion.items():
            labelled[label] += n
            predicted[pred] += n
        scores = []
        for cls in labelled | predicted:
            tp = self.confusion.get((cls, cls), 0)
            # F1 = 2·tp / (2·tp + fp + fn) = 2·tp / (labelled + predicted)
            scores.append(2 * tp / (labelled[cls] + predicted[cls]))
        return float(np.mean(scores))

    def _roc_auc(self) -> tuple[float | None, float | None]:
        positive = self.positive_class
        if positive is None or len(self._seen_classes() | {positive}) != 2:
            return None, None
        pos = self.auc_hist.get(positive, _zeros(self.prob_bins)).astype(np.float64)
        neg = np.zeros(self.prob_bins, dtype=np.float64)
        for label, hist in self.auc_hist.items():
            if label != positive:
                neg += hist
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


def _same_length(
    a: Sequence[Any] | NDArray[Any],
    b: Sequence[Any] | NDArray[Any] | None,
    c: Sequence[Any] | NDArray[Any] | None,
) -> None:
    lengths = {len(x) for x in (a, b, c) if x is not None}
    if len(lengths) > 1:
        raise ValueError(f"predictions, labels and probabilities differ in length: {lengths}")


def _zeros(bins: int) -> NDArray[np.int64]:
    return np.zeros(bins, dtype=np.int64)


def _as_float_array(probabilities: Sequence[Any] | NDArray[Any]) -> NDArray[np.float64] | None:
    """All rows as one float array (None → NaN), or None when some row is a dict."""
    if isinstance(probabilities, np.ndarray) and probabilities.dtype.kind in "fiub":
        return probabilities.astype(np.float64)
    if any(isinstance(row, Mapping) for row in probabilities):
        return None
    return np.array([np.nan if row is None else row for row in probabilities], dtype=np.float64)


def _normalised(row: Mapping[Any, Any]) -> dict[str, float]:
    """A {class: p} row with canonical keys, rescaled to sum to 1; {} when it sums to 0."""
    dist = {class_key(k): float(v) for k, v in row.items()}
    total = sum(dist.values())
    return {k: v / total for k, v in dist.items()} if total > 0 else {}


def _bin_index(p: NDArray[np.float64], bins: int) -> NDArray[np.intp]:
    """Equal-width bin of each probability in [0, 1]; monotone in p, so AUC ties stay ties."""
    return np.clip((np.clip(p, 0.0, 1.0) * bins).astype(np.intp), 0, bins - 1)
