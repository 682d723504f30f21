"""Reading a model's reference data (CSV or Parquet) into a frame, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from monitor.config import ModelConfig, ReferenceSource
from monitor.errors import ReferenceDataError

__all__ = ["load_reference", "reference_path"]

_CSV = (".csv", ".csv.gz", ".tsv")
_PARQUET = (".parquet", ".pq")


def reference_path(source: ReferenceSource, model: ModelConfig) -> Path:
    """The local file of the reference; ``ReferenceDataError`` when there is none."""
    if source.path is None:
        raise ReferenceDataError(
            f"model {model.name!r}: the reference has no local path "
            f"(uri={source.uri!r}); resolve the MLflow URI to a file before profiling"
        )
    return Path(source.path)


def load_reference(source: ReferenceSource, model: ModelConfig) -> pd.DataFrame:
    """Read the reference file named by ``source`` (CSV or Parquet, by suffix).

    Raises ``ReferenceDataError`` naming the model, the file and what is wrong: no such file,
    an unknown suffix, a file that does not parse, no rows, or columns the config names
    (features, target, prediction, probability) that the file lacks.
    """
    path = reference_path(source, model)
    where = f"model {model.name!r}: reference {path}"
    if not path.is_file():
        raise ReferenceDataError(f"{where} does not exist (paths are relative to the config file)")
    name = path.name.lower()
    try:
        if name.endswith(_CSV):
            frame = pd.read_csv(path, sep="\t" if name.endswith(".tsv") else ",")
        elif name.endswith(_PARQUET):
            frame = pd.read_parquet(path)
        else:
            raise ReferenceDataError(
                f"{where} has an unknown suffix; use one of {', '.join(_CSV + _PARQUET)}"
            )
    except ReferenceDataError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ReferenceDataError(f"{where} cannot be read: {err}") from err
    except Exception as err:  # pyarrow raises its own error types on corrupt files
        raise ReferenceDataError(f"{where} cannot be read: {err}") from err
    if len(frame) == 0:
        raise ReferenceDataError(f"{where} has no rows")
    named = [source.target, source.prediction, source.probability]
    named += [spec.name for spec in model.features or ()]
    missing = sorted({c for c in named if c is not None and c not in frame.columns})
    if missing:
        raise ReferenceDataError(
            f"{where} lacks the columns {missing} that the config names; "
            f"it has {[str(c) for c in frame.columns]}"
        )
    return frame
