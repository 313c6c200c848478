"""Native I/O detection without ``LD_PRELOAD``.

When ``libfrontrun_io.so`` was not preloaded, the first exploration that
wants native events (``detect_io=True``) loads it with ``dlopen`` and
redirects the already-loaded shared objects' imports of the hooked
functions (their GOT/PLT slots for ``send``, ``recv``, ...,
``pthread_mutex_*``) to it, and the objects loaded later too (the objects'
``dlopen`` is redirected as well). The work is done in Rust
(``bindings/src/got_hooks.rs``); this module decides when, and says once,
on stderr, when it cannot.

What this cannot see, and ``LD_PRELOAD`` can: calls made before the
hooks were installed (a connection opened at import time keeps working,
but its earlier traffic is gone), calls inside libc itself, statically
linked code, and processes the program starts (``exec`` drops the hooks;
under ``frontrun pytest`` children inherit the library).
"""

from __future__ import annotations

import os
import sys

from frontrun._env import ENV_RING, ENV_RUNTIME_HOOKS

_state: str | None = None  # None: not tried; "installed"; "preloaded"; "refused: ..."


def ensure() -> bool:
    """Make native events available to explorations; True when they are
    (preloaded, or hooks installed now or earlier)."""
    global _state
    from frontrun import _engine
    from frontrun._paths import preload_loaded, preload_path

    if _state == "installed":
        # Objects dlopen'ed since are patched by the dlopen hook; a rescan
        # also catches objects loaded by other means.
        try:
            _engine.install_runtime_hooks(preload_path())
        except OSError:
            pass
        return True
    if _state is not None:
        return _state == "preloaded"
    if preload_loaded():
        _state = "preloaded"
        return True
    if os.environ.get(ENV_RUNTIME_HOOKS) == "0":
        _state = f"refused: {ENV_RUNTIME_HOOKS}=0"
        return False
    # Every process its own consumer: a ring inherited from a parent (in
    # FRONTRUN_RING) already has one, so the library must make its own.
    # And once it has, it must not hand it to children in the environment
    # the way a preloaded library does: they are not hooked, and a child
    # that is (started under `frontrun`) needs a ring of its own too.
    os.environ.pop(ENV_RING, None)
    try:
        _engine.install_runtime_hooks(preload_path())
    except (OSError, FileNotFoundError) as exc:
        _state = f"refused: {exc}"
        print(
            f"frontrun: cannot install the native hooks at run time ({exc}); native I/O is not seen, "
            "run under `frontrun pytest` to see it",
            file=sys.stderr,
        )
        return False
    os.unsetenv(ENV_RING)  # set by the library's constructor, below os.environ
    _state = "installed"
    return True


def installed() -> bool:
    """Whether this process got the hooks at run time (not preloaded)."""
    return _state == "installed"


def unseen_reason() -> str | None:
    """Why native I/O is not visible to explorations in this process, or
    None when it is (preloaded, or hooks installed at run time). Meaningful
    once an exploration with ``detect_io=True`` has started (``ensure`` ran)."""
    if _state in ("installed", "preloaded"):
        return None
    if _state is None:
        return "no exploration with detect_io=True has run yet"
    return _state.removeprefix("refused: ")
