"""Build the Cython extension modules of fogcore.

Switches (environment variables):
  FOGCORE_DEBUG=1     line tracing, FOG_DEBUG macro, allocation counters, -O0 -g
  FOGCORE_ANNOTATE=1  write Cython's annotated HTML next to each .pyx
  FOGCORE_EXT=a,b     build only these modules (developer convenience)

Both stages run in parallel, one job per usable CPU: cythonize's worker processes, then
build_ext's C compiler jobs (`-j N` on the command line overrides the default).
"""

import glob
import os

from setuptools import Extension, find_packages, setup

DEBUG = os.environ.get("FOGCORE_DEBUG") == "1"
ANNOTATE = os.environ.get("FOGCORE_ANNOTATE") == "1"
ONLY = {name for name in os.environ.get("FOGCORE_EXT", "").split(",") if name}


def usable_cpus():
    """CPUs this process may run on: the affinity mask where the OS has one, so a build in
    a CPU-limited container starts no more jobs than it can run."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def extensions():
    from Cython.Build import cythonize

    directives = {
        "language_level": 3,
        "embedsignature": True,
        "boundscheck": DEBUG,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": DEBUG,
        "linetrace": DEBUG,
        "profile": DEBUG,
    }
    macros = [("FOG_DEBUG", "1" if DEBUG else "0")]
    if DEBUG:
        macros.append(("CYTHON_TRACE_NOGIL", "1"))
        cflags = ["-O0", "-g3", "-Wall"]
    else:
        # -g0 drops the debug info Python's own CFLAGS ask for (-g): the same machine code,
        # a fifth less compile time and a wheel several times smaller.
        cflags = ["-O3", "-g0", "-Wall", "-Wno-unused-function"]
    modules = []
    for pyx in sorted(glob.glob("fogcore/_ext/*.pyx")):
        stem = os.path.splitext(os.path.basename(pyx))[0]
        if ONLY and stem not in ONLY:
            continue
        modules.append(
            Extension(
                f"fogcore._ext.{stem}",
                [pyx],
                include_dirs=["fogcore/_ext/includes"],
                define_macros=macros,
                extra_compile_args=cflags,
                libraries=["dl"],
            )
        )
    return cythonize(
        modules,
        compiler_directives=directives,
        annotate=ANNOTATE,
        force=DEBUG,
        nthreads=usable_cpus(),
    )


def packages():
    """fogcore plus the top-level api/ and bench/ folders, installed as fogcore.api and
    fogcore.bench so they shadow no common module name."""
    found = find_packages(include=["fogcore", "fogcore.*"])
    for folder in ("api", "bench"):
        if os.path.isdir(folder):
            found.append(f"fogcore.{folder}")
            found += [f"fogcore.{folder}.{sub}" for sub in find_packages(where=folder)]
    return found


PACKAGE_DIR = {f"fogcore.{folder}": folder for folder in ("api", "bench") if os.path.isdir(folder)}

# The static control panel ships as data of a package of its own, fogcore.panel (its file
# patterns are in pyproject.toml's package-data).
if os.path.isdir("panel"):
    PACKAGE_DIR["fogcore.panel"] = "panel"

setup(
    ext_modules=extensions(),
    packages=packages() + (["fogcore.panel"] if os.path.isdir("panel") else []),
    package_dir=PACKAGE_DIR,
    # Without it the ten modules' C compiles one after another, the bulk of an install.
    options={"build_ext": {"parallel": usable_cpus()}},
)
