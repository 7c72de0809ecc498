"""Adds the CMake-built extension (qmtl/_qmtl*.so) to the package: the C++ is
built once, by CMake, not again by setuptools. QMTL_BUILD_DIR names the build
tree (default: build/release; relative to the repository)."""
import os
import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
# Relative to the repository, wherever pip runs this from.
BUILD = (HERE.parent / os.environ.get("QMTL_BUILD_DIR", "build/release")).resolve()


class BuildPyWithExtension(build_py):
    def run(self):
        super().run()
        built = sorted((BUILD / "python" / "qmtl").glob("_qmtl*.so"))
        if not built:
            raise SystemExit(
                f"qmtl: no _qmtl extension in {BUILD}/python/qmtl; build the release preset "
                "first (scripts/setup.sh), or set QMTL_BUILD_DIR"
            )
        target = pathlib.Path(self.build_lib) / "qmtl"
        target.mkdir(parents=True, exist_ok=True)
        for f in built:
            shutil.copy2(f, target / f.name)


setup(packages=["qmtl"], cmdclass={"build_py": BuildPyWithExtension})
