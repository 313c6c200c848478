"""Type stubs for the native module ``frontrun._engine`` (hand-written)."""

from collections.abc import Callable, Iterator
from types import CodeType, FrameType
from typing import Any, Literal, final

# The names the module defines (PyO3 fills the runtime ``__all__`` in the
# order they are registered; stubtest compares the two).
__all__ = [
    "BACKEND",
    "OPKINDS",
    "Abandoned",
    "Access",
    "BlockedThread",
    "DeadlockDetail",
    "ExecutionAborted",
    "ExecutionEnd",
    "InternalError",
    "KeyDescription",
    "NativeCall",
    "Race",
    "RuntimeHooks",
    "Session",
    "Step",
    "SyncStep",
    "__version__",
    "_selftest_panic",
    "child_process",
    "child_reaped",
    "coop_block",
    "coop_event",
    "coop_tid",
    "coop_turn",
    "coop_yield",
    "debugger_active",
    "depth_mismatches",
    "detach_after_fork",
    "format_schedule",
    "inet_socket_name",
    "init_tables",
    "install_runtime_hooks",
    "instruction_callback",
    "io_hold",
    "io_step",
    "io_worker",
    "parse_schedule",
    "resource_key",
    "runtime_hook_slots",
    "task_block",
    "task_drain",
    "task_expect_spawn",
    "task_finish",
    "task_key",
    "task_next",
    "task_sites",
    "task_spawn",
    "task_unblock",
    "tasks_enter",
    "tasks_leave",
    "thread_join",
    "trace_function_set",
    "tracefunc_offset",
]

__version__: str
#: "settrace" (3.10, 3.11) or "sys.monitoring" (3.12+).
BACKEND: str
#: The instruction kinds of ``frontrun._opcodes`` by name (the numbers are
#: defined by the native module).
OPKINDS: dict[str, int]

class ExecutionAborted(BaseException):
    """Raised inside a worker thread when its execution was abandoned."""

class InternalError(RuntimeError):
    """A bug in the native module: a Rust panic, caught where Python called
    in and raised as this exception instead."""

# The records the module returns: frozen, with read-only fields; each also
# reads as the tuple of its fields in this order (len, indexing, unpacking),
# and compares equal to a record of its type with equal fields.
class _Record:
    def __len__(self) -> int: ...
    def __getitem__(self, key: int, /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class Race(_Record):
    """Two steps whose accesses to ``key`` are not ordered by happens-before."""
    @property
    def first_step(self) -> int: ...
    @property
    def second_step(self) -> int: ...
    @property
    def key(self) -> int: ...
    @property
    def first_writes(self) -> bool: ...
    @property
    def second_writes(self) -> bool: ...

@final
class BlockedThread(_Record):
    """A blocked thread of a deadlock: the locks it holds (keys, in
    acquisition order) and what it waits for (a lock or object key, a thread
    number, or 0 for "spawn")."""
    @property
    def thread(self) -> int: ...
    @property
    def holds(self) -> list[int]: ...
    @property
    def waits(self) -> Literal["lock", "object", "thread", "spawn"]: ...
    @property
    def target(self) -> int: ...

@final
class DeadlockDetail(_Record):
    """The wait-for ``cycle`` (empty when there is none) and every blocked thread."""
    @property
    def cycle(self) -> list[BlockedThread]: ...
    @property
    def blocked(self) -> list[BlockedThread]: ...

@final
class ExecutionEnd(_Record):
    """What ``Session.end()`` says about the execution that ended."""
    @property
    def schedule(self) -> list[int]: ...
    @property
    def races(self) -> list[Race]: ...
    #: The threads of a deadlock: the wait-for cycle, or every blocked thread.
    @property
    def deadlock(self) -> list[int] | None: ...
    @property
    def deadlock_detail(self) -> DeadlockDetail | None: ...
    #: Why the explorer cut the execution short.
    @property
    def engine_aborted(self) -> str | None: ...
    #: Why the session abandoned the execution.
    @property
    def aborted(self) -> str | None: ...

@final
class Abandoned(_Record):
    """Why ``Session.wait()`` gave up, and where the thread that held the
    turn was last seen."""
    @property
    def reason(self) -> str: ...
    @property
    def thread(self) -> int | None: ...
    @property
    def code(self) -> CodeType | None: ...
    @property
    def offset(self) -> int | None: ...

@final
class Access(_Record):
    @property
    def key(self) -> int: ...
    @property
    def is_write(self) -> bool: ...

@final
class Step(_Record):
    """One step of the last execution."""
    @property
    def thread(self) -> int: ...
    @property
    def code(self) -> CodeType | None: ...
    @property
    def offset(self) -> int: ...
    @property
    def accesses(self) -> list[Access]: ...

@final
class KeyDescription(_Record):
    """What a key stands for: a slot of ``owner`` (``kind`` "attr", "item",
    "index", "shape", "cell", "sync" or "global"), or an I/O resource
    (``owner`` None, ``kind`` "io", ``slot`` its name)."""
    @property
    def owner(self) -> Any: ...
    @property
    def kind(self) -> Literal["attr", "item", "index", "shape", "cell", "sync", "global", "io"]: ...
    @property
    def slot(self) -> Any: ...

@final
class SyncStep(_Record):
    """A cooperative synchronisation operation of the last execution."""
    @property
    def step(self) -> int: ...
    @property
    def thread(self) -> int: ...
    @property
    def op(self) -> str: ...
    @property
    def key(self) -> int: ...

@final
class NativeCall(_Record):
    """A C-level access: libc call, resource, statement ("" when none)."""
    @property
    def call(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def statement(self) -> str: ...
    @property
    def is_write(self) -> bool: ...

@final
class RuntimeHooks(_Record):
    """The objects and GOT slots ``install_runtime_hooks`` patched so far."""
    @property
    def objects(self) -> int: ...
    @property
    def slots(self) -> int: ...

@final
class Session:
    """One exploration: the explorer, code cache, turn-taking between workers."""

    @staticmethod
    def search(
        num_threads: int,
        decide: Callable[[CodeType, Any, bool], bool],
        classify: Callable[[CodeType], tuple[int, list[tuple[int, int, int, str | None, int]]]],
        *,
        max_branches: int = 100_000,
        max_executions: int | None = None,
        preemption_bound: int | None = None,
        native: bool = True,
    ) -> Session:
        """A search of every distinct interleaving (within ``preemption_bound``)."""
    @staticmethod
    def replay(
        num_threads: int,
        decide: Callable[[CodeType, Any, bool], bool],
        classify: Callable[[CodeType], tuple[int, list[tuple[int, int, int, str | None, int]]]],
        schedule: list[int],
        *,
        max_branches: int = 100_000,
        native: bool = True,
    ) -> Session:
        """One run that follows ``schedule``."""
    @staticmethod
    def serial(
        num_threads: int,
        decide: Callable[[CodeType, Any, bool], bool],
        classify: Callable[[CodeType], tuple[int, list[tuple[int, int, int, str | None, int]]]],
        *,
        runs: int = 1,
    ) -> Session:
        """``runs`` runs, each thread to its end before the next."""
    @property
    def num_threads(self) -> int: ...
    @property
    def executions(self) -> int: ...
    @property
    def exhausted(self) -> bool: ...
    @property
    def complete(self) -> bool: ...
    def begin(self, record_descriptions: bool = True) -> bool: ...
    def prenumber(self, objs: list[Any]) -> None: ...
    def kick(self) -> None: ...
    def enter(self, tid: int) -> None: ...
    def expect_spawns(self, first: int) -> None: ...
    def spawn(self, child: int) -> int | None: ...
    def enter_spawned(self, tid: int, generation: int) -> None: ...
    def leave(self, tid: int) -> None: ...
    def wait(self, timeout: float, deadlock_timeout: float) -> Abandoned | None: ...
    def abort(self, why: str) -> None: ...
    def end(self) -> ExecutionEnd: ...
    def steps(self) -> list[Step]: ...
    #: An I/O resource's key (reported from Python or seen in native events)
    #: has kind "io".
    def describe(self, key: int) -> KeyDescription | None: ...
    def sync_steps(self) -> list[SyncStep]:
        """Each cooperative synchronisation operation of the last execution."""
    def close(self) -> None: ...
    # Native events (libfrontrun_io.so); all 0/False when it is not loaded.
    @property
    def native_attached(self) -> bool: ...
    @property
    def native_events(self) -> int: ...
    @property
    def native_waits(self) -> int: ...
    @property
    def events_lost(self) -> int: ...
    #: ``"server: why"`` for each server whose statements could not be read.
    @property
    def unseen_statements(self) -> list[str]: ...
    #: Call sites of the threads native code started in the last execution
    #: that were still running when their worker ended.
    @property
    def native_threads_unfinished(self) -> list[str]: ...
    #: Per step of the last execution, its C-level accesses.
    def native_steps(self) -> list[list[NativeCall]]: ...

def init_tables(spec: dict[str, Any]) -> None: ...
def install_runtime_hooks(library: str) -> RuntimeHooks: ...
def runtime_hook_slots() -> int: ...
def instruction_callback() -> Any: ...
def depth_mismatches() -> int: ...
def trace_function_set(debugger: bool) -> None: ...
def debugger_active() -> bool: ...
def tracefunc_offset() -> int | None: ...
def format_schedule(schedule: list[int]) -> str: ...
def parse_schedule(text: str) -> list[int]: ...
def io_worker() -> int: ...
def io_step(resources: list[tuple[bytes, bool]], frame: FrameType | None = None, own_step: bool = True) -> bool: ...
def io_hold(on: bool) -> None: ...
def resource_key(name: bytes) -> int: ...
def inet_socket_name(host: str, port: int) -> str | None: ...
def detach_after_fork() -> None:
    """In the child of a fork: the calling thread leaves the scheduler and
    the parent's ring consumer is forgotten."""

def _selftest_panic(message: str) -> None:
    """Panics with ``message`` (for the test that panics become InternalError)."""

# Cooperative primitives (``frontrun._coop``), called from worker threads.
def coop_tid() -> int | None:
    """The calling worker's thread number while its execution runs, else None."""

def coop_turn(code: CodeType | None = None, offset: int = 0, *objs: object) -> None:
    """Take the scheduling point of a synchronisation operation."""

def coop_event(
    op: Literal["acquire", "try_acquire", "try_fail", "release", "read", "write", "unblock"],
    obj: object,
    thread: int = 0,
) -> None:
    """Report what the current step did to the primitive ``obj``."""

def coop_block(obj: object, lock: bool = False, timed: bool = False) -> bool:
    """Park until woken; False when a timed wait timed out."""

def coop_yield() -> bool:
    """End the calling worker's step in a yield; False outside a running execution."""

def child_process(pid: int, command: str) -> None:
    """The calling worker started process ``pid``: its native events are the worker's."""

def child_reaped(pid: int) -> None:
    """The calling worker reaped its child ``pid``: what it did joins the worker's step."""

def thread_join(thread: int, obj: object, timed: bool = False) -> bool:
    """At the scheduling point of ``Thread.join``: wait for the thread a worker
    started as ``thread`` to end; False when a timed join timed out."""

# The tasks of one event loop (``frontrun._async``), called from the loop's thread.
def tasks_enter(session: Session) -> None:
    """Make the calling thread the event loop of ``session``'s running
    execution, tracer installed; it works as task 0 until ``task_next``."""

def task_next(session: Session) -> int | None:
    """End the current task's step; the task that takes the next one, or
    None when none can (all finished, or a deadlock)."""

def task_drain(session: Session) -> None:
    """Between steps, before the loop waits for its sockets: the native
    events so far join the step that made them; the loop's own events
    belong to no task until the next ``task_next``."""

def task_block(session: Session, task: int, obj: object) -> None:
    """``task`` (the current one) has nothing ready: it waits on ``obj``."""

def task_unblock(session: Session, task: int) -> None:
    """The current step made ``task`` ready to run again."""

def task_expect_spawn(session: Session, task: int) -> None:
    """``task`` starts only when a task creates it (``task_spawn``)."""

def task_spawn(session: Session, parent: int, child: int) -> None:
    """``parent`` (the current task) created ``child`` in its step."""

def task_finish(session: Session, task: int) -> None:
    """``task`` (the current one) ended in the step it just ran."""

def task_key(session: Session, task: int, obj: object) -> int:
    """The key ``Session.describe`` knows ``obj`` by (a synchronisation object)."""

def tasks_leave(session: Session) -> bool:
    """The loop is done with the execution; False when the tracer was replaced."""

def task_sites(session: Session) -> list[tuple[int, int, bool, CodeType | None, int]]:
    """Where each access of the last execution's steps was made:
    ``(step, key, is_write, code, offset)``, in order."""
