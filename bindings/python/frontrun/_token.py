"""Replay tokens: a failing schedule as a short string to paste.

A schedule is the thread of every step, and real ones run to hundreds of
steps, so the engine's readable form (``v1:0,0,0,1,1,0,...``) grows long.
Schedules come in runs (a thread keeps the turn for several steps), so the
token stores runs instead of steps:

* the payload is a sequence of unsigned LEB128 varints: the number of
  threads, then one value per run, ``(run length - 1) * threads + thread``
  (two threads and runs up to 64 steps take one byte per run);
* three bytes of CRC-32 over the payload follow, so a token cut short or
  mistyped is refused instead of replaying some other interleaving;
* the bytes are written in lowercase base32 without padding (letters and
  digits only: nothing a shell, a terminal's word selection or a URL would
  split), after the versioned prefix ``fr1.``.

:func:`parse` accepts a token or the engine's ``v1:`` text, so everything
that takes a schedule string takes either.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Sequence

PREFIX = "fr1."
_CHECK_BYTES = 3


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varints(data: bytes) -> list[int]:
    values, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                raise ValueError("replay token holds a number too large to be a schedule run")
        else:
            values.append(value)
            value, shift = 0, 0
    if shift:
        raise ValueError("replay token ends in the middle of a number")
    return values


def threads_recorded(schedule: Sequence[int], given: int, numbered: int) -> int:
    """How many threads the token of ``schedule`` records: the ``given``
    ones, or all ``numbered`` when the schedule names a thread past them
    (a task that explore_async's tasks created)."""
    return given if max(schedule, default=-1) < given else numbered


def encode(schedule: Sequence[int], num_threads: int | None = None) -> str:
    """The token for ``schedule``; ``num_threads`` defaults to the highest
    thread in it plus one."""
    steps = list(schedule)
    for i, t in enumerate(steps):
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"schedule[{i}] = {t!r} is not a thread index")
    threads = num_threads if num_threads is not None else max(steps, default=-1) + 1
    if steps and max(steps) >= threads:
        raise ValueError(f"schedule names thread {max(steps)} but num_threads is {threads}")
    payload = bytearray(_varint(threads))
    i = 0
    while i < len(steps):
        j = i
        while j < len(steps) and steps[j] == steps[i]:
            j += 1
        payload += _varint((j - i - 1) * threads + steps[i])
        i = j
    check = zlib.crc32(payload).to_bytes(4, "big")[:_CHECK_BYTES]
    text = base64.b32encode(bytes(payload) + check).decode("ascii").rstrip("=").lower()
    return PREFIX + text


def decode(token: str) -> tuple[int, list[int]]:
    """``(number of threads, schedule)`` from a token; ``ValueError`` when
    the token is malformed or its checksum does not match."""
    if not token.startswith(PREFIX):
        raise ValueError(f"a replay token starts with {PREFIX!r}, got {token[:12]!r}")
    body = token[len(PREFIX) :].strip().upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise ValueError(
            f"replay token {token!r} is not valid base32; copy it whole from the failure message"
        ) from None
    payload, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    # The last character may carry unused bits; only the canonical spelling
    # is accepted, so that every character of the token counts.
    canonical = base64.b32encode(raw).decode("ascii").rstrip("=")
    if canonical != body or len(raw) <= _CHECK_BYTES or zlib.crc32(payload).to_bytes(4, "big")[:_CHECK_BYTES] != check:
        raise ValueError(f"replay token {token!r} fails its checksum; copy it whole from the failure message")
    values = _read_varints(payload)
    threads, runs = values[0], values[1:]
    if threads < 1:
        raise ValueError(f"replay token {token!r} names no threads")
    schedule: list[int] = []
    for value in runs:
        length, thread = divmod(value, threads)
        schedule.extend([thread] * (length + 1))
    return threads, schedule


def parse(text: str) -> tuple[int | None, list[int]]:
    """``(number of threads or None, schedule)`` from a token or from the
    engine's ``v1:`` text (which does not record the number of threads)."""
    text = text.strip()
    if text.startswith(PREFIX):
        return decode(text)
    from frontrun._engine import parse_schedule

    return None, parse_schedule(text)


def replay_line(
    schedule: Sequence[int], num_threads: int | None = None, detect_io: bool = True, virtual_time: bool = True
) -> str:
    """The line a failure message ends with: how to re-run this interleaving.

    ``replay`` must use the exploration's ``detect_io`` (it decides which
    native calls are scheduling points) and ``virtual_time`` (what the
    workers' clocks read), so the call spells them out when they are not
    the defaults; ``@reproduce`` takes them from the ``explore_dpor`` call
    it replaces.
    """
    token = encode(schedule, num_threads)
    options = ("" if detect_io else ", detect_io=False") + ("" if virtual_time else ", virtual_time=False")
    return (
        f'Replay with: @frontrun.reproduce("{token}") on the test, '
        f'or frontrun.replay("{token}", setup, threads, invariant{options})'
    )


#: Runs shown at each end of a schedule too long for one line.
SCHEDULE_ENDS = 6
#: The longest run-length text shown whole.
SCHEDULE_TEXT_LIMIT = 72


def _runs(schedule: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for thread in schedule:
        if runs and runs[-1][0] == thread:
            runs[-1] = (thread, runs[-1][1] + 1)
        else:
            runs.append((thread, 1))
    return runs


def schedule_text(schedule: Sequence[int]) -> str:
    """The ``Schedule`` line of an explanation: the threads that took the
    steps in runs (``1x8`` is eight steps of thread 1 in a row, a lone step
    is its thread), cut in the middle when long. It is for reading; the
    replay token on the next line holds the whole schedule."""
    runs = [f"{t}x{n}" if n > 1 else str(t) for t, n in _runs(schedule)]
    steps = f"{len(schedule)} step{'s' if len(schedule) != 1 else ''}"
    text = " ".join(runs)
    if len(text) <= SCHEDULE_TEXT_LIMIT:
        return f"Schedule ({steps}): {text}"
    head, tail = runs[:SCHEDULE_ENDS], runs[-SCHEDULE_ENDS:]
    left = len(runs) - len(head) - len(tail)
    return f"Schedule ({steps} in {len(runs)} runs): {' '.join(head)} ... {left} more runs ... {' '.join(tail)}"
