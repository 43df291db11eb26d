"""The example app (``examples.app.create_app``) started for a test: development mode,
an admin key and an audit trail in the test's own directory, its lifespan run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from examples.app import create_app
from pynomaly_security.settings import SecuritySettings


@asynccontextmanager
async def running_example(
    tmp_path: Path, admin_key: str, **settings: Any
) -> AsyncIterator[FastAPI]:
    """The example app on ``SecuritySettings`` built from ``settings`` (the environment's
    ``.env`` ignored), with its start-up done and its shut-down on exit."""
    application = create_app(
        SecuritySettings(
            _env_file=None,  # type: ignore[call-arg]
            admin_api_key=admin_key,
            development_mode=True,
            audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
            **settings,
        )
    )
    async with application.router.lifespan_context(application):
        yield application
