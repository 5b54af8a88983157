"""Shared fixtures: the real broker, the shared reference data, fresh topic names."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from wirestream.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WIRESTREAM_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only ../shared reference data; tests that need it skip, saying why, without it."""
    if not (SHARED / "zeek-ref").is_dir():
        pytest.skip(f"shared reference data not found at {SHARED} (set WIRESTREAM_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings pointing at a live broker: WIRESTREAM_BOOTSTRAP_SERVERS, else the local broker."""
    from wirestream.kafka import resolve_bootstrap

    return resolve_bootstrap(load_settings())


@pytest.fixture
def topic_name() -> str:
    """A unique topic name, so tests never see each other's records."""
    return f"test.{uuid.uuid4().hex[:12]}"
