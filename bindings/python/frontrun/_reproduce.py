"""``@frontrun.reproduce(token)``: re-run one recorded interleaving.

A failure message ends with a replay token. Put the decorator, with that
token, on the test that failed (or on a copy of it): while the decorated
function runs, every ``explore_dpor`` call it makes skips the search and
runs exactly the recorded interleaving once, then reports as usual. So the
test keeps its own ``setup``, threads and invariant and fails with the same
explanation, and once the race is fixed it passes, which makes it a
regression test for that interleaving.

The decorator sets a context variable, so explorations started by other
threads or other tests are not affected.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from frontrun import _args, _spawn
from frontrun._result import InterleavingResult

if TYPE_CHECKING:
    from frontrun._run import Machinery

F = TypeVar("F", bound=Callable[..., Any])

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("frontrun_reproduce", default=None)


def reproduce(token: str) -> Callable[[F], F]:
    """Decorate a test so that the explorations it starts replay ``token``.

    ``token`` is the string in a failure message's ``Replay with:`` line
    (``fr1....``) or an engine schedule (``v1:0,1,1,0``). It is checked here,
    so a damaged token fails when the test module is imported.
    """
    if not isinstance(token, str):
        raise TypeError(f"reproduce() takes the token string from a failure message, got {type(token).__name__}")
    from frontrun import _token

    if not _token.parse(token)[1]:
        # It would constrain nothing: some arbitrary interleaving would run.
        raise ValueError(f"reproduce(): the token {token!r} has no steps; copy the token of a failure")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@frontrun.reproduce(...) decorates a function, got {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                reset = _forced.set(token)
                try:
                    return await fn(*args, **kwargs)
                finally:
                    _forced.reset(reset)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            reset = _forced.set(token)
            try:
                return fn(*args, **kwargs)
            finally:
                _forced.reset(reset)

        return run  # type: ignore[return-value]

    return decorate


def forced_token() -> str | None:
    """The token of the enclosing ``@reproduce``, if any."""
    return _forced.get()


def run_forced(
    machinery: Machinery,
    token: str,
    setup: Callable[[], Any],
    threads: Sequence[Callable[[Any], Any]],
    invariant: Callable[[Any], bool],
    *,
    timeout: float,
    deadlock_timeout: float,
) -> InterleavingResult:
    """What ``explore_dpor`` returns under ``@reproduce``: one replayed
    execution (under the exploration's ``machinery``), reported as an
    exploration of one execution."""
    from frontrun import _token

    recorded_threads, schedule = _token.parse(token)
    # The machinery may number more threads than it was given: the tasks
    # that explore_async's tasks create, the threads the workers start
    # (their tokens record them all).
    spare = 0 if recorded_threads == len(threads) else _spawn.spare_for(recorded_threads, machinery.num_threads)
    if spare is None:
        raise ValueError(
            f"the token given to @frontrun.reproduce was recorded with {recorded_threads} threads, "
            f"but this exploration has {len(threads)}"
        )
    machinery.spare_threads = spare
    run = machinery.replay(
        _args.check_schedule(schedule, max(len(threads), machinery.session_threads)),
        setup,
        threads,
        invariant,
        timeout=timeout,
        deadlock_timeout=deadlock_timeout,
    )
    if run.aborted is not None:
        raise RuntimeError(
            f"the interleaving recorded in {token} could not be followed ({run.aborted}); "
            "the code under test has probably changed since the token was printed"
        )
    result = InterleavingResult(num_explored=1, exhausted=False, stopped_by=f"@frontrun.reproduce({token!r})")
    if run.failed:
        result.property_holds = False
        result.counterexample = list(run.schedule)
        result.failures.append((1, list(run.schedule)))
        result.errors = dict(run.errors)
        result.explanation = run.explanation
        result.invariant_error = run.invariant_error
    return result
