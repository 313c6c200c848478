"""The environment variables frontrun reads and sets, by name, in one place."""

from __future__ import annotations

#: Set in the command's environment by the ``frontrun`` wrapper, so that
#: frontrun code running inside it (the pytest plugin, the explorer) knows
#: it was started by the wrapper.
ENV_ACTIVE = "FRONTRUN_ACTIVE"
#: Mirrors ``frontrun_ring::env::ENV_RING``: the ring to attach to.
ENV_RING = "FRONTRUN_RING"
#: Set to 0 to never install the native hooks at run time.
ENV_RUNTIME_HOOKS = "FRONTRUN_RUNTIME_HOOKS"
