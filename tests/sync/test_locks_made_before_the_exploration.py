"""Locks created before an exploration (at import time, while no
cooperative class is installed) are real ``_thread`` locks; while an
exploration runs they are wrapped by cooperative ones over the same real
lock (``frontrun._adopt``), and put back afterwards."""

from __future__ import annotations

import _thread
import threading

import pytest
from _sync_helpers import assert_found, assert_holds, explore_all
from frontrun import _adopt, _coop, _stats

MODULE_LOCK = threading.Lock()
MODULE_RLOCK = threading.RLock()
ALIAS = MODULE_LOCK


class Registry:
    class_lock = threading.Lock()

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0


REGISTRY = Registry()  # made at import: its lock is real


class Proxy:
    """Refuses every attribute, as a context-local proxy outside its context."""

    def __getattribute__(self, name: str) -> object:
        raise RuntimeError(f"working outside of context ({name})")


PROXY = Proxy()


class Counter:
    def __init__(self) -> None:
        self.value = 0


def guarded(lock_of: object) -> object:
    def increment(c: Counter) -> None:
        with lock_of():  # type: ignore[operator]
            current = c.value
            c.value = current + 1

    return increment


@pytest.fixture(autouse=True)
def _adopting(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever options the suite runs with (--frontrun-patch-locks installs
    # the classes for the whole run, which these tests must not see).
    if _coop.installed():
        pytest.fail("run this file without --frontrun-patch-locks: it tests locks made while nothing is installed")
    monkeypatch.setattr(_stats.DEFAULTS, "adopt_locks", True)


def test_the_locks_are_real_before_the_exploration() -> None:
    assert type(MODULE_LOCK) is _thread.LockType
    assert type(MODULE_RLOCK) is _thread.RLock
    assert type(Registry.class_lock) is _thread.LockType
    assert type(REGISTRY.lock) is _thread.LockType


@pytest.mark.parametrize(
    "lock_of",
    [
        lambda: MODULE_LOCK,
        lambda: MODULE_RLOCK,
        lambda: Registry.class_lock,
        lambda: REGISTRY.lock,
    ],
    ids=["module-lock", "module-rlock", "class-attribute", "instance-of-a-module-global"],
)
def test_a_lock_made_at_import_time_is_cooperative_inside_the_exploration(lock_of: object) -> None:
    increment = guarded(lock_of)
    result = explore_all(Counter, [increment, increment], lambda c: c.value == 2, deadlock_timeout=1.0)
    assert_holds(result)
    assert result.num_explored >= 2


def test_an_unguarded_update_next_to_an_adopted_lock_is_still_a_race() -> None:
    def racy(c: Counter) -> None:
        with MODULE_LOCK:
            pass
        current = c.value
        c.value = current + 1

    assert_found(explore_all(Counter, [racy, racy], lambda c: c.value == 2))


def test_two_names_for_one_real_lock_get_one_stand_in_and_everything_is_put_back() -> None:
    seen: list[object] = []

    def look(_: object) -> None:
        seen.extend([MODULE_LOCK, ALIAS, type(REGISTRY.lock), type(Registry.class_lock)])

    before = (MODULE_LOCK, MODULE_RLOCK, Registry.class_lock, REGISTRY.lock)
    explore_all(object, [look])
    lock, alias, instance_type, class_type = seen[:4]
    assert lock is alias and isinstance(lock, _coop.Lock)
    assert lock._real is before[0]  # type: ignore[attr-defined]
    assert instance_type is _coop.Lock and class_type is _coop.Lock
    assert (MODULE_LOCK, MODULE_RLOCK, Registry.class_lock, REGISTRY.lock) == before
    assert all(type(x) in (_thread.LockType, _thread.RLock) for x in before)


def test_a_lock_held_outside_the_exploration_is_the_same_lock_inside() -> None:
    states: list[bool] = []

    def probe(_: object) -> None:
        states.append(MODULE_LOCK.locked())

    with MODULE_LOCK:
        explore_all(object, [probe])
    assert states and all(states)
    assert not MODULE_LOCK.locked()


def test_with_adoption_turned_off_the_lock_stays_real(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stats.DEFAULTS, "adopt_locks", False)
    kinds: list[type] = []
    explore_all(object, [lambda _: kinds.append(type(MODULE_LOCK))])
    assert kinds == [_thread.LockType]


def test_standard_library_modules_are_left_alone() -> None:
    import logging

    assert not _adopt._program_module(logging)
    assert not _adopt._program_module(_coop)
    assert _adopt._program_module(pytest)  # an installed package: like the program's own code


def test_objects_whose_attributes_raise_are_left_alone() -> None:
    result = explore_all(object, [lambda _: None])
    assert_holds(result)
    assert type(PROXY) is Proxy
