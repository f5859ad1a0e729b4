"""Linters as tests: ruff (pycodestyle, pyflakes, pep257 docstrings); the layer rules are in test_layout.py."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_ruff_check_whole_repository():
    result = ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pep257_docstrings_are_checked_in_package():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    lint = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "D" in lint["select"] and lint["pydocstyle"]["convention"] == "pep257"
    assert set(lint["ignore"]) <= {"D105", "D107"}, "only magic methods and __init__ may go undocumented"
    assert not [pattern for pattern in lint.get("per-file-ignores", {}) if "depth_anything_ros" in pattern]
