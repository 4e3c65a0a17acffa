"""Builds copse's Python module: the C library (../src) compiled into one extension.

The library's sources are compiled here rather than linked from an installed libcopse, so
`pip install --no-build-isolation .` from this folder needs nothing but a C compiler and the
Python headers. Each source gets the flags the root CMakeLists.txt gives it: the kernel files
their instruction sets, from cmake/kernel_flags.txt (the library only calls them on CPUs that
have them).
"""
import os
import platform
import re
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INCLUDE = ROOT / "include"
HEADER = INCLUDE / "copse.h"

LIB_FLAGS = ["-std=c11", "-O2", "-fvisibility=hidden"]
LIB_MACROS = [("COPSE_BUILDING", None), ("_GNU_SOURCE", None)]
KERNEL_FLAGS_FILE = ROOT / "cmake" / "kernel_flags.txt"


def header_text():
    return HEADER.read_text(encoding="utf-8")


def library_version():
    """The version in copse.h, so the package and the library cannot disagree."""
    text = header_text()
    parts = [re.search(r"#define COPSE_VERSION_%s (\d+)" % p, text).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def library_sources():
    return sorted((ROOT / "src").glob("*.c")) + sorted((ROOT / "src" / "kernels").glob("*.c"))


def kernel_flags():
    """{kernel file: flags} for this machine, from the table CMakeLists.txt reads too."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(),
                                                      platform.machine().lower())
    flags = {}
    for line in KERNEL_FLAGS_FILE.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and fields[0] == arch:
            flags[fields[1]] = fields[2:]
    return flags


class BuildWithLibrary(build_ext):
    """Compiles the library's sources with their own flags, then links them into the module."""

    def build_extension(self, ext):
        if not self.force and self.up_to_date(ext):
            print("copse extension is up to date: %s" % self.get_ext_fullpath(ext.name))
            return
        objects = []
        for group, flags in self.source_groups():
            objects += self.compiler.compile(
                [str(p) for p in group], output_dir=os.path.join(self.build_temp, "libcopse"),
                macros=LIB_MACROS, include_dirs=[str(INCLUDE)], extra_postargs=LIB_FLAGS + flags,
                debug=self.debug, depends=[str(HEADER)])
        ext.extra_objects = objects
        super().build_extension(ext)

    def up_to_date(self, ext):
        """True when the built module is newer than every source and header it comes from."""
        target = Path(self.get_ext_fullpath(ext.name))
        if not target.exists():
            return False
        inputs = [HERE / p for p in ext.sources] + [HERE / p for p in ext.depends]
        inputs += library_sources() + sorted((ROOT / "src").rglob("*.h")) + [Path(__file__)]
        inputs.append(KERNEL_FLAGS_FILE)
        newest = max(p.stat().st_mtime for p in inputs if p.exists())
        return target.stat().st_mtime >= newest

    def source_groups(self):
        special = kernel_flags()
        plain = [p for p in library_sources()
                 if not (p.parent.name == "kernels" and p.name in special)]
        groups = [(plain, [])]
        for name, flags in special.items():
            path = ROOT / "src" / "kernels" / name
            if path.exists():
                groups.append(([path], flags))
        return groups


extension = Extension(
    "copse._copse",
    sources=["src/module.c", "src/convert.c"],
    depends=["src/convert.h", str(HEADER)],
    include_dirs=[str(INCLUDE)],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
    libraries=["m", "pthread"],
)

setup(
    name="copse",
    version=library_version(),
    description="Approximate nearest neighbours with a forest of random-projection trees; "
                "a drop-in for Annoy's AnnoyIndex",
    long_description=(ROOT / "docs" / "PYTHON.md").read_text(encoding="utf-8")
    if (ROOT / "docs" / "PYTHON.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=["copse"],
    package_data={"copse": ["__init__.pyi", "py.typed"]},
    ext_modules=[extension],
    cmdclass={"build_ext": BuildWithLibrary},
    extras_require={"numpy": ["numpy"], "dask": ["numpy", "dask", "distributed"]},
    zip_safe=False,
)
