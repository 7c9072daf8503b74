"""Fixtures for the FPGA tests: a stand-in build directory (see fpga_standin.py)."""

import sys
from pathlib import Path

import pytest

# The tests import their helper module by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from fpga_standin import write_standin_build  # noqa: E402


@pytest.fixture
def standin_build(tmp_path):
    return write_standin_build(tmp_path / "build")


@pytest.fixture(scope="session")
def shared_standin_build(tmp_path_factory):
    """One stand-in build directory for a whole test session (do not modify it)."""
    return write_standin_build(tmp_path_factory.mktemp("standin") / "build")
