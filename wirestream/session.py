"""The notebook-sized entry points: submit captures to the pipeline and get their details back.

``wirestream.submit(["x.pcap"])`` is the seed's ``store`` + ``view_pcap_details`` in one call:
it reaches (or starts) the broker, sends the captures, runs a processor in-process if none is
running, and returns each capture's details record once its analysis is final.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wirestream.config import Settings, load_settings
from wirestream.kafka import resolve_bootstrap


def connect(settings: Settings | None = None) -> Settings:
    """Settings with a live broker: the configured cluster, else the local broker (started)."""
    return resolve_bootstrap(settings or load_settings())


def submit(
    paths: Iterable[str | Path],
    *,
    settings: Settings | None = None,
    engine: str | None = None,
    force: bool = False,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Send captures through the pipeline; ``{path: CaptureDetails}`` once each is analysed."""
    from wirestream.processors.pipeline_cli import run_pipeline

    return run_pipeline(
        connect(settings), [Path(p) for p in paths], engine=engine, force=force, timeout=timeout
    )
