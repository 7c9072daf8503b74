"""The scripts in benchmarks/ as modules, for the tests of their pieces (they are scripts,
not a package: run as ``python benchmarks/NAME.py``)."""

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name):
    """benchmarks/``name``.py, imported as a module of that name."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
