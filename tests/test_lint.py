"""The suite runs the linter over the project's own Python code."""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
    targets = [str(ROOT / name) for name in ("fogcore", "api", "bench", "tests", "setup.py")
               if (ROOT / name).exists()]
    proc = subprocess.run([ruff, "check", *targets], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
