"""analysis_gc: the engine's collector settings apply inside, and the caller's come back."""

from __future__ import annotations

import gc

import pytest
from wirestream.processors.engine import gc_policy
from wirestream.processors.engine.gc_policy import analysis_gc


@pytest.fixture
def caller_gc():
    saved = gc.get_threshold()
    gc.set_threshold(555, 7, 3)
    yield (555, 7, 3)
    gc.set_threshold(*saved)


def test_settings_inside_and_restored_after(caller_gc) -> None:
    with analysis_gc():
        assert gc.get_threshold() == (gc_policy.YOUNG_THRESHOLD, *gc_policy.OLDER_THRESHOLDS)
        assert gc.get_freeze_count() > 0  # the objects existing at entry are frozen
    assert gc.get_threshold() == caller_gc
    assert gc.get_freeze_count() == 0


def test_nested_uses_keep_the_outer_setting_until_it_ends(caller_gc) -> None:
    with analysis_gc():
        with analysis_gc():
            pass
        assert gc.get_threshold()[0] == gc_policy.YOUNG_THRESHOLD
    assert gc.get_threshold() == caller_gc


def test_restored_after_an_error_and_as_decorator(caller_gc) -> None:
    @analysis_gc()
    def failing() -> None:
        assert gc.get_threshold()[0] == gc_policy.YOUNG_THRESHOLD
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        failing()
    with pytest.raises(ValueError, match="boom"):
        failing()  # the decorator makes a fresh context per call
    assert gc.get_threshold() == caller_gc
    assert gc.get_freeze_count() == 0
