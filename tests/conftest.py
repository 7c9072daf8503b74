"""Shared test helpers.

Modules that only tests use (Python models of the hardware, simulator glue, framework
oracles) live in tests/support/ and are imported by name: pytest runs with
--import-mode=importlib, so that folder is put on the path here.
"""

import gc
import sys
import warnings
from pathlib import Path

import pytest
from amaranth.hdl import UnusedElaboratable

sys.path.insert(0, str(Path(__file__).parent / "support"))


@pytest.fixture
def refuses():
    """``refuses(build, error, match)``: ``build()`` raises ``error`` matching ``match``.

    A component whose ``__init__`` refuses its parameters still exists for a moment and
    would warn "created but never used" when collected; that warning is expected here.
    """
    def check(build, error, match):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnusedElaboratable)
            with pytest.raises(error, match=match):
                build()
            gc.collect()
    return check
