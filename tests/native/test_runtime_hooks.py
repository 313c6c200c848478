"""The GOT rewriting behind run-time hooks (``bindings/src/got_hooks.rs``),
in child processes started without ``LD_PRELOAD``: installing while other
threads load extension modules, and the state of the objects afterwards."""

from __future__ import annotations

import os
import subprocess
import sys

import frontrun

CONCURRENT_LOADS = """
import sys, threading
from frontrun import _engine, preload_path

MODULES = ["zlib", "_bz2", "_lzma", "_decimal", "_sqlite3", "_elementtree", "_hashlib", "_ssl",
           "_ctypes", "mmap", "array", "_json", "_csv", "_struct", "_pickle", "_datetime"]
start = threading.Barrier(2)
loaded = []

def load():
    start.wait()
    for name in MODULES:
        try:
            __import__(name)
            loaded.append(name)
        except ImportError:
            pass

t = threading.Thread(target=load)
t.start()
start.wait()
for _ in range(20):
    objects, slots = _engine.install_runtime_hooks(preload_path())
t.join()
objects, slots = _engine.install_runtime_hooks(preload_path())

# Everything still works: code in the patched objects, data next to their GOTs.
import zlib, json, sqlite3
assert zlib.decompress(zlib.compress(b"x" * 1000)) == b"x" * 1000
db = sqlite3.connect(":memory:")
db.execute("create table t (v)")
db.executemany("insert into t values (?)", [(i,) for i in range(100)])
assert db.execute("select sum(v) from t").fetchone() == (4950,)
with open(__file__, "rb") as f:
    assert f.read(3) == bytes([34, 34, 34])
print(len(loaded), objects, slots)
"""


def test_installing_while_another_thread_loads_extension_modules_leaves_a_working_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    for _ in range(3):
        proc = subprocess.run(
            [sys.executable, "-c", CONCURRENT_LOADS.replace("__file__", repr(__file__))],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        loaded, objects, slots = (int(x) for x in proc.stdout.split())
        assert loaded >= 10 and objects > 0 and slots > 0, proc.stdout


def test_the_library_is_loaded_once_and_its_ring_is_its_own() -> None:
    code = (
        "from frontrun import _engine, preload_path\n"
        "a = _engine.install_runtime_hooks(preload_path())\n"
        "b = _engine.install_runtime_hooks(preload_path())\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(a == b, len({l.split()[-1] for l in maps.splitlines() if 'libfrontrun_io' in l}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FRONTRUN_")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "1"], proc.stdout
    assert frontrun.preload_path().endswith("libfrontrun_io.so")
