"""Re-baselining: the reference profile of the model version that ``champion`` points to.

The retrain job logs ``reference_profile.json`` with every version it registers; when the
daemon sees a promotion it loads that profile and scores new windows against it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from monitor.config import ModelConfig
from monitor.engine.profile import ReferenceProfile

__all__ = ["champion_profile"]


def champion_profile(model: ModelConfig) -> ReferenceProfile:
    """Download and load the champion's reference profile from MLflow."""
    from retrain.registry import (  # noqa: PLC0415 - MLflow loads only when it is needed
        PROFILE_ARTIFACT,
        download_run_artifact,
    )

    registered = model.retrain.registered_model or model.name
    with tempfile.TemporaryDirectory() as folder:
        path = download_run_artifact(f"models:/{registered}@champion", PROFILE_ARTIFACT,
                                     Path(folder), tracking_uri=model.retrain.tracking_uri)
        return ReferenceProfile.load(path)
