# Bench virtualenvs, sourced by the benchmark scripts (never .venv):
#   .bench/venv-peer  PyPI frontrun 0.7.0 (the peer) and psycopg2
#   .bench/venv-plot  matplotlib, for the report's plots
# Both use the interpreter of FRONTRUN_VENV (default .venv), so that both
# tools run on the same Python; they are rebuilt when that version changes.
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
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  fi
}
bench_peer="$bench_root/.bench/venv-peer"
bench_plot="$bench_root/.bench/venv-plot"
