"""Malformed environment variables: one ``frontrun:`` line each, naming the
variable and the value used instead; the wrapper refuses an empty
``FRONTRUN_RING``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import frontrun
import pytest
from frontrun import cli

FRONTRUN = Path(sys.executable).with_name("frontrun")

#: (variable, value, the whole line the library prints)
MALFORMED = [
    (
        "FRONTRUN_MUTEX",
        "yes",
        'frontrun: FRONTRUN_MUTEX="yes": expected 1 or 0; using 0 (mutex events only while an exploration asks '
        "for them)",
    ),
    (
        "FRONTRUN_RING_WAIT_US",
        "abc",
        'frontrun: FRONTRUN_RING_WAIT_US="abc": expected a whole number of microseconds; using 20000',
    ),
    (
        "FRONTRUN_RING_WAIT_US",
        "-5",
        'frontrun: FRONTRUN_RING_WAIT_US="-5": expected a whole number of microseconds; using 20000',
    ),
    (
        "FRONTRUN_RING_SLOTS",
        "1e6",
        'frontrun: FRONTRUN_RING_SLOTS="1e6": expected a whole number of slots; using 65536',
    ),
    (
        "FRONTRUN_RING_SLOTS",
        "-5",
        'frontrun: FRONTRUN_RING_SLOTS="-5": expected a whole number of slots; using 65536',
    ),
    (
        "FRONTRUN_RING_SLOTS",
        "10",
        "frontrun: FRONTRUN_RING_SLOTS=10: outside 64 to 16777216 slots; using 64",
    ),
    (
        "FRONTRUN_PROTOCOLS",
        "0=none,5433=pg",
        'frontrun: FRONTRUN_PROTOCOLS: ignoring ["0=none"]: expected <port 1-65535>=<pg|mysql|redis|none>, '
        "at most 16; the other entries apply",
    ),
]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTRUN_") and k != "LD_PRELOAD"}
    env.update(extra)
    return env


@pytest.mark.parametrize(("variable", "value", "line"), MALFORMED, ids=[f"{v}={x}" for v, x, _ in MALFORMED])
def test_a_malformed_variable_gets_one_line_naming_it_and_the_value_used(variable: str, value: str, line: str) -> None:
    env = _clean_env(LD_PRELOAD=frontrun.preload_path(), **{variable: value})
    proc = subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == [line]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("FRONTRUN_MUTEX", "1"), ("FRONTRUN_MUTEX", "0"), ("FRONTRUN_RING_WAIT_US", "0"), ("FRONTRUN_RING_SLOTS", "1000")],
)
def test_a_well_formed_variable_is_taken_quietly(variable: str, value: str) -> None:
    env = _clean_env(LD_PRELOAD=frontrun.preload_path(), **{variable: value})
    proc = subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_an_empty_ring_variable_is_refused_by_the_wrapper_with_status_4() -> None:
    proc = subprocess.run(
        [str(FRONTRUN), "true"], env=_clean_env(FRONTRUN_RING=""), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == cli.EXIT_NO_RING == 4
    assert proc.stderr == ("frontrun: FRONTRUN_RING is set but empty; unset it to let the library create a new ring\n")
