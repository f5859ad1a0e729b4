#!/usr/bin/env bash
# Create or update a virtualenv in the repository root with everything in a requirements file, and install this
# package into it in editable mode (console scripts land in $VENV/bin). Re-running is a no-op while the
# requirements files, setup.py and setup.cfg are unchanged.
#   VENV          virtualenv directory, relative to the repository root (default .venv)
#   REQUIREMENTS  requirements file, relative to the repository root (default requirements-dev.txt; it may `-r`
#                 include other requirements*.txt files, which are part of the up-to-date check)
#   PYTHON        interpreter that creates the virtualenv (default python3)
# `make setup` builds .venv (ROS 2 Kilted); `make test-jazzy` builds .venv-jazzy from requirements-jazzy.txt.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/${VENV:-.venv}"
requirements="${REQUIREMENTS:-requirements-dev.txt}"
python="${PYTHON:-python3}"
stamp="$venv/.setup-stamp"

want="$(cat "$root/$requirements" "$root"/requirements*.txt "$root/setup.py" "$root/setup.cfg" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/python" -I -c "import depth_anything_ros" 2>/dev/null; then
    echo "setup_venv: $venv is up to date"
    exit 0
fi

if ! "$venv/bin/python" -c "" 2>/dev/null; then
    echo "setup_venv: creating $venv with $("$python" --version)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "setup_venv: installing $requirements"
"$venv/bin/python" -m pip install -qq --upgrade pip
"$venv/bin/python" -m pip install -qq -r "$root/$requirements"
echo "setup_venv: installing depth_anything_ros (editable)"
"$venv/bin/python" -m pip install -qq --no-deps --no-build-isolation -e "$root"
"$venv/bin/python" -m pip check
echo "$want" > "$stamp"
echo "setup_venv: ready ($venv)"
