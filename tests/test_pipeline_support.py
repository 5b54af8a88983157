"""Shared set-up for the pipeline tests: a private topic namespace on the real broker."""

from __future__ import annotations

import uuid

from wirestream import topics
from wirestream.config import Settings


def create_topics(settings: Settings, logs: tuple[str, ...] = ()) -> None:
    """The system topics (and the given log topics) under the settings' prefix, on the broker."""
    from wirestream.admin import ensure_topics

    specs = topics.system_topic_specs(settings) + [topics.log_topic_spec(g, settings) for g in logs]
    ensure_topics(settings, specs)


def private_settings(settings: Settings) -> Settings:
    """Settings whose every topic is new: a unique topic prefix, system topics created."""
    ours = settings.with_overrides(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    create_topics(ours)
    return ours
