"""SQLAlchemy failures as :class:`~monitor.errors.StoreError`: what failed, where, what to do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from monitor.errors import StoreError

__all__ = ["masked", "store_errors"]


def masked(url: URL | str) -> str:
    """The URL as text with any password shown as ``***``."""
    if isinstance(url, str):
        return url
    return url.render_as_string(hide_password=True)


@contextmanager
def store_errors(url: URL, action: str) -> Iterator[None]:
    """Re-raise SQLAlchemy errors inside the block as ``StoreError`` naming ``action``."""
    try:
        yield
    except SQLAlchemyError as err:
        raise StoreError(
            f"store {masked(url)}: {action} failed: {_cause(err)}; {_advice(err)}"
        ) from err


def _cause(err: SQLAlchemyError) -> str:
    if isinstance(err, DBAPIError) and err.orig is not None:
        text = str(err.orig)
    else:
        text = str(err).split("\n(Background on this error", 1)[0]
    # A driver message can run to many lines (the failing SQL, hints); the first says it.
    first = " ".join(text.strip().splitlines()[:1]) or type(err).__name__
    return first[:500]


def _advice(err: SQLAlchemyError) -> str:
    if isinstance(err, OperationalError | InterfaceError):
        return (
            "check that the database server is running and reachable, that store.url in the "
            "config names it, and that the password variable named by store.password_env is set"
        )
    if isinstance(err, IntegrityError):
        return "the write broke a constraint of the store; nothing of it was saved"
    if isinstance(err, ProgrammingError):
        return (
            "the database schema may be older or newer than this driftline; "
            "run the same driftline version that migrated it"
        )
    return "nothing of the failed operation was saved; see the cause above"
