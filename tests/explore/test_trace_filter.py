"""What is traced by default, and how ``trace_packages``/``skip_packages``
widen and narrow it.

Third-party packages (anything installed under ``site-packages`` or
``dist-packages``, or outside the interpreter's own library) are traced; the
standard library and frontrun are not. The packages here are written into a
temporary ``site-packages`` directory put on ``sys.path``, so they are
installed packages as far as the filter can tell.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import frontrun
import frontrun._tracefilter
import pytest
from _helpers import explore, explore_all

PACKAGE = '''
"""A counter whose increment is a lost update, in the package's __init__."""

class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        v = self.n
        self.n = v + 1
'''

SUBMODULE = """
class Tally:
    def __init__(self):
        self.n = 0

    def incr(self):
        v = self.n
        self.n = v + 1
"""


@pytest.fixture
def racylib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    site = tmp_path / "site-packages"
    (site / "racylib").mkdir(parents=True)
    (site / "racylib" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    (site / "racylib" / "tally.py").write_text(textwrap.dedent(SUBMODULE))
    monkeypatch.syspath_prepend(str(site))
    lib = importlib.import_module("racylib")
    lib.tally = importlib.import_module("racylib.tally")
    yield lib
    for name in ("racylib", "racylib.tally"):
        sys.modules.pop(name, None)


def _counter_race(lib: Any, **kwargs: Any) -> frontrun.InterleavingResult:
    return explore(lib.Counter, [lambda c: c.incr(), lambda c: c.incr()], lambda c: c.n == 2, **kwargs)


def _tally_race(lib: Any, **kwargs: Any) -> frontrun.InterleavingResult:
    return explore(lib.tally.Tally, [lambda c: c.incr(), lambda c: c.incr()], lambda c: c.n == 2, **kwargs)


def test_a_race_inside_an_installed_package_is_found_by_default(racylib: Any) -> None:
    assert not _counter_race(racylib).property_holds
    assert not _tally_race(racylib).property_holds


def test_skip_packages_leaves_a_package_and_its_init_untraced(racylib: Any) -> None:
    # "racylib.*" covers racylib/__init__.py (module "racylib") too.
    for race in (_counter_race, _tally_race):
        result = race(racylib, skip_packages=["racylib.*"])
        assert result.property_holds and result.num_explored == 1


def test_skip_packages_can_name_one_submodule(racylib: Any) -> None:
    assert _tally_race(racylib, skip_packages=["racylib.tally"]).property_holds
    assert not _counter_race(racylib, skip_packages=["racylib.tally"]).property_holds


def test_trace_packages_wins_over_skip_packages(racylib: Any) -> None:
    result = _tally_race(racylib, skip_packages=["racylib.*"], trace_packages=["racylib.tally"])
    assert not result.property_holds
    assert _counter_race(racylib, skip_packages=["racylib.*"], trace_packages=["racylib.tally"]).property_holds


def test_the_standard_library_is_not_traced_unless_named() -> None:
    def dump(state: dict[str, list[int]]) -> None:
        json.dumps(state)

    def locations(**kwargs: Any) -> list[str]:
        return [loc for _t, _k, loc, _l in frontrun.record_accesses(lambda: {"a": [1]}, [dump], **kwargs)]

    # json.dumps (in json/__init__.py, module "json") reads its module's
    # _default_encoder: seen only when json is traced, and "json.*" covers
    # the package's __init__.
    assert "json._default_encoder" not in locations()
    assert "json._default_encoder" in locations(trace_packages=["json.*"])
    assert "json._default_encoder" not in locations(trace_packages=["json.?*"])


def test_frontrun_itself_is_not_traced() -> None:
    flt = frontrun._tracefilter.TraceFilter()
    assert not flt.wants(frontrun.explore_dpor.__code__, "frontrun.dpor")
    assert not flt.wants(json.dumps.__code__, "json")
    assert flt.wants(pytest.importorskip.__code__, "_pytest.outcomes")  # an installed package


@pytest.mark.parametrize("parameter", ["trace_packages", "skip_packages"])
@pytest.mark.parametrize("value", [[1], [None], ("ok", b"bytes"), "mypkg", 3])
def test_a_pattern_list_that_is_not_strings_is_refused(parameter: str, value: Any) -> None:
    calls = [
        lambda **kw: frontrun.explore_dpor(dict, [lambda s: None], lambda s: True, detect_io=False, **kw),
        lambda **kw: frontrun.replay([0], dict, [lambda s: None], detect_io=False, **kw),
        lambda **kw: frontrun.record_accesses(dict, [lambda s: None], detect_io=False, **kw),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=parameter):
            call(**{parameter: value})


def test_an_error_of_the_trace_filter_is_raised_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    class FilterBroke(Exception):
        pass

    def broken(self: Any, code: Any, module: Any) -> bool:
        raise FilterBroke(f"cannot decide {code.co_name}")

    monkeypatch.setattr(frontrun._tracefilter.TraceFilter, "wants", broken)

    def incr(s: dict[str, int]) -> None:
        s["n"] = s["n"] + 1

    with pytest.raises(FilterBroke, match="cannot decide"):
        explore_all(lambda: {"n": 0}, [incr, incr], lambda s: s["n"] == 2)


def test_database_clients_are_left_to_the_wire_level_unless_named() -> None:
    import redis.client

    code = redis.client.Redis.execute_command.__code__
    assert not frontrun._tracefilter.TraceFilter().wants(code, "redis.client")
    assert frontrun._tracefilter.TraceFilter(trace_packages=["redis.*"]).wants(code, "redis.client")
    # Their module names, not their files, decide.
    assert frontrun._tracefilter.TraceFilter().wants(code, "myapp.models")


def _userdict_incr(d: Any) -> None:
    # UserDict's __getitem__/__setitem__ are Python code of the standard
    # library (collections), so the lost update happens out of sight.
    d["n"] = d["n"] + 1


def _userdict() -> Any:
    import collections

    return collections.UserDict(n=0)


def test_a_pass_that_saw_nothing_says_where_the_workers_were() -> None:
    result = explore(_userdict, [_userdict_incr, _userdict_incr], lambda d: d["n"] == 2)
    assert result.property_holds and result.num_explored == 1
    assert "collections" in result.untraced_modules
    assert len(result.notes) == 1
    assert "no shared access was seen" in result.notes[0] and "collections" in result.notes[0]
    # Widened as the note says, the race is found.
    assert not explore(
        _userdict, [_userdict_incr, _userdict_incr], lambda d: d["n"] == 2, trace_packages=["collections"]
    ).property_holds


def test_a_pass_that_saw_shared_accesses_has_no_note(racylib: Any) -> None:
    result = _counter_race(racylib, skip_packages=["racylib.tally"])
    assert not result.property_holds
    safe = explore(lambda: [0, 0], [lambda s: s.__setitem__(0, 1), lambda s: s.__setitem__(1, 1)], lambda s: True)
    assert safe.property_holds and safe.num_explored == 1 and not safe.notes
