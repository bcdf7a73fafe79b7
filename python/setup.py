"""Builds yuxi_config for the Python that runs this (Debian's python3), offline:

    /usr/bin/python3 -m pip install --no-build-isolation --break-system-packages ./python

(--no-build-isolation uses Debian's setuptools and pybind11 instead of downloading them;
--break-system-packages is Debian's PEP 668 guard for installs outside a venv.)

pip does not run CMake: the libraries the module needs are compiled into it from their
sources, as CMake links them. The lock library (lock/) needs hiredis; the admin library
(admin/, with the part of core/ it uses) needs libpq, toml++ and Valijson (headers). Without
hiredis the module builds read-only; without the others, without Admin and the writers.
"""

from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup

here = Path(__file__).resolve().parent
root = here.parent
include = root / "include"

has_hiredis = Path("/usr/include/hiredis/hiredis.h").exists()
has_admin = has_hiredis and all(Path(p).exists() for p in (
    "/usr/include/postgresql/libpq-fe.h", "/usr/include/toml++/toml.h",
    "/usr/include/valijson/validator.hpp"))

sources = ["src/native.cpp"]
macros = []
libraries = []
if has_hiredis:
    sources += [str(root / "lock" / f) for f in ("distributed_lock.cpp", "redis_connection.cpp")]
    macros.append(("YUXI_CONFIG_HAVE_LOCK", "1"))
    libraries.append("hiredis")
if has_admin:
    sources.append("src/native_admin.cpp")
    sources += [str(p) for p in sorted((root / "admin").glob("*.cpp"))]
    sources += [str(root / "core" / f) for f in (
        "agent_report.cpp", "database_url.cpp", "json_document.cpp", "schema_rules.cpp",
        "text.cpp", "toml_json.cpp", "value_schema.cpp", "value_schema_checks.cpp")]
    macros += [("YUXI_CONFIG_HAVE_ADMIN", "1"), ("TOML_HEADER_ONLY", "0"), ("TOML_SHARED_LIB", "1")]
    libraries += ["pq", "tomlplusplus"]

setup(
    name="yuxi_config",
    version="0.1.0",
    description="Read and write yuxi-config's configuration from Python",
    packages=["yuxi_config"],
    package_data={"yuxi_config": ["py.typed", "*.pyi"]},
    ext_modules=[
        Pybind11Extension(
            "yuxi_config._native",
            sources,
            include_dirs=[str(include), str(root), "/usr/include/postgresql"],
            cxx_std=20,
            define_macros=macros,
            libraries=libraries,
        )
    ],
    python_requires=">=3.10",
    zip_safe=False,
)
