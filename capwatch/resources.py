"""Where the project's non-Python files are: SQL models, migrations and the Prefect flows.

In a checkout they are the top-level ``transforms/``, ``warehouse/`` and ``flows/`` folders. A wheel
carries the same files as package data under ``capwatch/_project/`` (see ``pyproject.toml``,
``force-include``), so an installed capwatch needs no checkout. This module is the one place that
knows both spellings.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


@cache
def project_dir(name: str) -> Path:
    """``transforms``, ``warehouse`` or ``flows``: the packaged copy, else the checkout's."""
    packaged = Path(str(resources.files("capwatch").joinpath("_project", name)))
    if packaged.is_dir():
        return packaged
    checkout = _CHECKOUT / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"capwatch is installed without its {name}/ folder (looked in {packaged} and {checkout})"
    )


def transforms_dir() -> Path:
    return project_dir("transforms")


def migrations_dir() -> Path:
    return project_dir("warehouse") / "migrations"


def flows_file() -> Path:
    return project_dir("flows") / "pipeline.py"
