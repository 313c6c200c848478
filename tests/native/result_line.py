"""The one line the exploration scripts of this directory print for their
tests to read: ``RESULT <json>`` with the result's verdict and counts."""

from __future__ import annotations

import json
from typing import Any

import frontrun


def print_result(result: frontrun.InterleavingResult, **extra: Any) -> None:
    fields = {
        "holds": result.property_holds,
        "exhausted": result.exhausted,
        "executions": result.num_explored,
        "explanation": result.explanation,
        "reproduced": [result.reproduction_successes, result.reproduction_attempts],
        "native_events": result.native_events,
        "events_lost": result.events_lost,
        "inconclusive": result.inconclusive,
        "notes": result.notes,
    }
    print("RESULT " + json.dumps({**fields, **extra}))
