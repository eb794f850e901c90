"""setup.py asks for what a fast release build needs: both stages in parallel (Cython's
workers, then one C compiler job per usable CPU), optimised code without debug info, and
a wheel without the generated C or annotated HTML; the FOGCORE_* switches still work.

setup.py runs here with `setuptools.setup` and Cython's `cythonize` replaced by recorders,
so nothing is compiled or written and Cython need not be installed."""

import os
import runpy
import shutil
import sys
import types
from pathlib import Path

import pytest
import setuptools
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(path.stem for path in (ROOT / "fogcore" / "_ext").glob("*.pyx"))
USABLE_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.fixture
def run_setup(monkeypatch):
    """Run setup.py under `env` in `cwd`; return (the distribution it would build with
    `args` on the command line, the keyword arguments it passed to cythonize)."""

    def run(args=("build_ext",), env=None, cwd=ROOT):
        captured = {}
        cythonize_calls = []

        def cythonize(modules, **options):
            cythonize_calls.append(options)
            return modules

        cython_build = types.ModuleType("Cython.Build")
        cython_build.cythonize = cythonize
        monkeypatch.setitem(sys.modules, "Cython.Build", cython_build)
        monkeypatch.setattr(setuptools, "setup", lambda **attrs: captured.update(attrs))
        for name in ("FOGCORE_DEBUG", "FOGCORE_ANNOTATE", "FOGCORE_EXT"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(cwd)
        runpy.run_path("setup.py")
        distribution = Distribution(captured)
        distribution.parse_config_files()
        distribution.script_args = list(args)
        distribution.parse_command_line()
        (options,) = cythonize_calls
        return distribution, options

    return run


def _build_ext(distribution):
    command = distribution.get_command_obj("build_ext")
    command.ensure_finalized()
    return command


def test_c_compiles_one_job_per_usable_cpu(run_setup):
    distribution, options = run_setup()
    assert _build_ext(distribution).parallel == USABLE_CPUS
    assert options["nthreads"] == USABLE_CPUS


def test_jobs_on_the_command_line_win(run_setup):
    distribution, _ = run_setup(args=["build_ext", "-j", "1"])
    assert _build_ext(distribution).parallel == 1


def test_release_build_is_optimised_without_debug_info_or_annotation(run_setup):
    distribution, options = run_setup()
    extensions = _build_ext(distribution).extensions
    assert sorted(ext.name.rsplit(".", 1)[1] for ext in extensions) == MODULES
    for ext in extensions:
        assert "-O3" in ext.extra_compile_args and "-g0" in ext.extra_compile_args
        assert ("FOG_DEBUG", "0") in ext.define_macros
    assert options["annotate"] is False and options["force"] is False


def test_debug_annotate_and_module_switches(run_setup):
    distribution, options = run_setup(
        env={"FOGCORE_DEBUG": "1", "FOGCORE_ANNOTATE": "1", "FOGCORE_EXT": "_mem,_frames"}
    )
    extensions = _build_ext(distribution).extensions
    assert [ext.name for ext in extensions] == ["fogcore._ext._frames", "fogcore._ext._mem"]
    for ext in extensions:
        assert "-O0" in ext.extra_compile_args and "-g0" not in ext.extra_compile_args
        assert ("FOG_DEBUG", "1") in ext.define_macros
    assert options["annotate"] is True and options["force"] is True
    assert options["compiler_directives"]["linetrace"] is True


def test_wheel_leaves_out_generated_c_and_html(run_setup, tmp_path):
    # A copy with Cython's outputs beside the sources, as a build leaves them.
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "fogcore",
        tmp_path / "fogcore",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.html"),
    )
    (tmp_path / "fogcore" / "_ext" / "_mem.c").write_text("/* generated */\n")
    (tmp_path / "fogcore" / "_ext" / "_mem.html").write_text("<!-- generated -->\n")
    distribution, _ = run_setup(args=["build_py"], cwd=tmp_path)
    build_py = distribution.get_command_obj("build_py")
    build_py.ensure_finalized()
    shipped = {
        f"{package}/{name}"
        for package, _src, _build, names in build_py.data_files
        for name in names
    }
    assert "fogcore._ext/_mem.pyi" in shipped
    assert not {name for name in shipped if name.endswith((".c", ".html")) and "_ext" in name}
