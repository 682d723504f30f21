"""The dashboard at ``/``: one static page that draws the read API's JSON with Plotly.js.

    app.include_router(dashboard.router(token_required=True))

The page (``static/index.html``, ``dashboard.js``, ``dashboard.css``) and Plotly.js (from
the installed ``plotly`` package, so it works offline) are public, like the probes: they
hold no data. The data comes from ``/api/*``; when the API needs a bearer token, the page
asks for it once, keeps it in the tab's ``sessionStorage`` and sends it as
``Authorization: Bearer <token>``. ``/dashboard.json`` tells the page whether to ask.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response

from monitor.dashboard.mlflow_links import MlflowTarget, mlflow_targets, retrain_links

__all__ = ["MlflowTarget", "mlflow_targets", "retrain_links", "router"]

PAGES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


def router(*, token_required: bool) -> APIRouter:
    """The page, its script and style, Plotly.js, and whether the API wants a token."""
    routes = APIRouter(include_in_schema=False)

    @routes.get("/")
    def index() -> Response:
        return Response(_page("index.html"), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @routes.get("/dashboard.json")
    def settings() -> dict[str, bool]:
        return {"token_required": token_required}

    @routes.get("/static/plotly.min.js")
    def plotly() -> Response:
        return Response(_plotly(), media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "max-age=86400"})

    @routes.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in PAGES:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(_page(name), media_type=PAGES[name],
                        headers={"Cache-Control": "no-cache"})

    return routes


@cache
def _page(name: str) -> bytes:
    return files("monitor.dashboard").joinpath("static", name).read_bytes()


@cache
def _plotly() -> bytes:
    """plotly.min.js as shipped in the ``plotly`` package (a dependency of evidently)."""
    try:
        source = files("plotly").joinpath("package_data", "plotly.min.js")
        return source.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        where = Path("plotly") / "package_data" / "plotly.min.js"
        raise HTTPException(
            503, f"{where} is missing: install the plotly package (pip install plotly)"
        ) from err
