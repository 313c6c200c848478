# Bench virtualenvs, sourced by the benchmark scripts (never .venv):
#   .bench/venv-peer  PyPI frontrun 0.7.0 (the peer), psycopg2 and the pinned
#                     third-party libraries of the library workloads
#   .bench/venv-plot  matplotlib, for the report's plots
# Both use the interpreter of FRONTRUN_VENV (default .venv), so that both
# tools run on the same Python; they are rebuilt when that version changes,
# and topped up when the packages asked for change (a stamp file in the venv
# records the last set installed).
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_venv=${FRONTRUN_VENV:-$bench_root/.venv}
bench_py="$bench_venv/bin/python"
[[ -x "$bench_py" ]] || { echo "bench: no venv at $bench_venv (run scripts/setup)" >&2; exit 1; }
bench_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
bench_make_venv() { # dir packages...
  local dir=$1
  shift
  if [[ -x "$dir/bin/python" ]] && [[ "$(bench_version "$dir/bin/python")" != "$(bench_version "$bench_py")" ]]; then
    rm -rf "$dir"
  fi
  if [[ ! -x "$dir/bin/python" ]]; then
    "$("$bench_py" -c 'import sys; print(sys._base_executable)')" -m venv "$dir"
  fi
  bench_install "$dir/bin/python" "$@"
}
bench_install() { # python packages...: pip install them unless the stamp says they are there
  local py=$1
  shift
  local stamp
  stamp="$("$py" -c 'import sys; print(sys.prefix)')/.frontrun-bench-packages"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$*" ]]; then
    "$py" -m pip install --quiet --disable-pip-version-check "$@"
    printf '%s' "$*" >"$stamp"
  fi
}
# The pinned versions of the library workloads' packages, read from
# scripts/requirements-dev.txt (the versions tests/libraries follows).
bench_library_pins() { "$bench_py" "$bench_root/scripts/bench.d/libraries.py" --pins "$bench_root/scripts/requirements-dev.txt"; }
bench_peer="$bench_root/.bench/venv-peer"
# The peer's venv with everything any workload needs, so that the explore,
# db and libraries benchmarks ask for the same set.
bench_make_peer() {
  local pins
  pins=$(bench_library_pins) || { echo "bench: cannot read the library pins" >&2; exit 1; }
  # shellcheck disable=SC2086
  bench_make_venv "$bench_peer" "frontrun==0.7.0" psycopg2-binary $pins
}
bench_plot="$bench_root/.bench/venv-plot"
