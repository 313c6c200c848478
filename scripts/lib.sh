# Shell helpers shared by the scripts in this folder (sourced, not run).

# Print the path of an interpreter given as a command, a path, or a bare
# version such as 3.12 (looked up under pyenv's versions, then on PATH).
frontrun_resolve_python() {
  local spec=$1 candidate
  if [[ "$spec" =~ ^3\.[0-9]+$ ]]; then
    # pyenv installs come first: its shims on PATH exist for every version
    # but refuse to run the ones not selected globally.
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$spec".*/bin/python"$spec" \
      "$(command -v "python$spec" 2>/dev/null)"; do
      if [[ -x "$candidate" ]] && "$candidate" -c pass >/dev/null 2>&1; then
        echo "$candidate"
        return 0
      fi
    done
    echo "no working Python $spec found under ${PYENV_ROOT:-$HOME/.pyenv}/versions or on PATH" >&2
    return 1
  fi
  if command -v "$spec" >/dev/null 2>&1; then
    command -v "$spec"
    return 0
  fi
  echo "no interpreter '$spec' found" >&2
  return 1
}

# Print the interpreter of a virtualenv that has zig (the ziglang package)
# for maturin --zig, making it under target/ on first use: zig is some
# 300 MB unpacked, too much to put in every development venv.
FRONTRUN_ZIGLANG_VERSION=0.13.0
frontrun_zig_python() {
  local root venv
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  venv=$root/target/zig-venv
  if [[ "$("$venv/bin/python" -m ziglang version 2>/dev/null)" != "$FRONTRUN_ZIGLANG_VERSION" ]]; then
    rm -rf "$venv"
    "$(frontrun_resolve_python python3)" -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$FRONTRUN_ZIGLANG_VERSION" >&2
  fi
  echo "$venv/bin/python"
}
