"""The package's shape: the public API imports, and every module stays small enough to read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import engage

PACKAGE = Path(engage.__file__).resolve().parent


def test_the_public_api_is_what_all_lists_and_imports_without_torch():
    assert sorted(engage.__all__) == ["Draft", "EngageModel", "Scorer", "Settings", "load_posts",
                                      "load_settings", "train"]
    code = ("import sys, engage; assert 'torch' not in sys.modules; "
            "from engage import *; print(EngageModel.from_uri)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    assert "from_uri" in done.stdout


def test_no_module_in_the_package_is_over_500_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 500} == {}
