# Shell helpers shared by the scripts in this folder (sourced, not run).

# Print the path of an interpreter given as a command, a path, or a bare
# version such as 3.12 (looked up on PATH, then under pyenv's versions).
frontrun_resolve_python() {
  local spec=$1 candidate
  if [[ "$spec" =~ ^3\.[0-9]+$ ]]; then
    if command -v "python$spec" >/dev/null 2>&1; then
      command -v "python$spec"
      return 0
    fi
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$spec".*/bin/python"$spec"; do
      if [[ -x "$candidate" ]]; then
        echo "$candidate"
        return 0
      fi
    done
    echo "no Python $spec found on PATH or under ${PYENV_ROOT:-$HOME/.pyenv}/versions" >&2
    return 1
  fi
  if command -v "$spec" >/dev/null 2>&1; then
    command -v "$spec"
    return 0
  fi
  echo "no interpreter '$spec' found" >&2
  return 1
}
