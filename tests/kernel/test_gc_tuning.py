"""The collector is tuned once per process, after start-up (services/gc_tuning.py). Run in a child interpreter:
the test session's own collector state is not the thing under test."""

from __future__ import annotations

import subprocess
import sys


def test_startup_objects_are_frozen_once_and_the_young_threshold_raised():
    script = """
import gc
from services import gc_tuning
alive = [object() for _ in range(10)] + [[i] for i in range(1000)]
assert gc.get_freeze_count() == 0
gc_tuning.freeze_startup_objects()
frozen = gc.get_freeze_count()
assert frozen >= 1000, frozen
assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD, *gc_tuning.OLDER_THRESHOLDS)
later = [[i] for i in range(1000)]
gc_tuning.freeze_startup_objects()  # a second app in the same process: nothing more is frozen
assert gc.get_freeze_count() == frozen, (gc.get_freeze_count(), frozen)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
