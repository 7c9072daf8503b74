"""Shared test helpers."""

import gc
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable


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
