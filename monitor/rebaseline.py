"""Re-baselining: the reference profile of the model version that ``champion`` points to.

The retrain job logs ``reference_profile.json`` with every version it registers; when the
daemon sees a promotion it loads that profile and scores new windows against it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from monitor.config import ModelConfig
from monitor.engine.profile import ReferenceProfile
from monitor.errors import ReferenceDataError

__all__ = ["champion_profile", "profile_from_uri"]


def profile_from_uri(model_uri: str, tracking_uri: str | None) -> ReferenceProfile:
    """The reference profile logged with a registered version (``models:/name@alias``)."""
    from retrain.registry import (  # noqa: PLC0415 - MLflow loads only when it is needed
        PROFILE_ARTIFACT,
        download_run_artifact,
    )

    try:
        with tempfile.TemporaryDirectory() as folder:
            path = download_run_artifact(model_uri, PROFILE_ARTIFACT, Path(folder),
                                         tracking_uri=tracking_uri)
            return ReferenceProfile.load(path)
    except Exception as err:  # MLflow raises many kinds: name the URI and the way out
        raise ReferenceDataError(
            f"cannot load the reference profile of {model_uri} from MLflow "
            f"({tracking_uri or 'default tracking URI'}): {err}; check retrain.tracking_uri "
            "and that the version was registered by `driftline retrain` or with a "
            f"{PROFILE_ARTIFACT} artifact"
        ) from err


def champion_profile(model: ModelConfig) -> ReferenceProfile:
    """The reference profile of the version ``champion`` points to."""
    registered = model.retrain.registered_model or model.name
    return profile_from_uri(f"models:/{registered}@champion", model.retrain.tracking_uri)
