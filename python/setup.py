"""Builds yuxi_config for the Python that runs this (Debian's python3), offline:

    /usr/bin/python3 -m pip install --no-build-isolation --break-system-packages ./python

(--no-build-isolation uses Debian's setuptools and pybind11 instead of downloading them;
--break-system-packages is Debian's PEP 668 guard for installs outside a venv.)
"""

from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup

here = Path(__file__).resolve().parent
root = here.parent
include = root / "include"
# DistributedLock needs hiredis (Debian: libhiredis-dev); without it the module builds
# without the lock. The lock library's sources (lock/) are compiled into the module, as
# CMake links them (yuxi::config_lock): pip does not run CMake.
has_hiredis = Path("/usr/include/hiredis/hiredis.h").exists()
lock_sources = [str(root / "lock" / f) for f in ("distributed_lock.cpp", "redis_connection.cpp")]

setup(
    name="yuxi_config",
    version="0.1.0",
    description="Read yuxi-config's shared-memory configuration segment from Python",
    packages=["yuxi_config"],
    package_data={"yuxi_config": ["py.typed", "*.pyi"]},
    ext_modules=[
        Pybind11Extension(
            "yuxi_config._native",
            ["src/native.cpp"] + (lock_sources if has_hiredis else []),
            include_dirs=[str(include), str(root)],
            cxx_std=20,
            define_macros=[("YUXI_CONFIG_HAVE_LOCK", "1")] if has_hiredis else [],
            libraries=["hiredis"] if has_hiredis else [],
        )
    ],
    python_requires=">=3.10",
    zip_safe=False,
)
