"""Frontends: read a model file into the IR.

:func:`load` picks the frontend by file suffix. Each frontend records in the model's
metadata what it assumed where the source format was silent.
"""

from pathlib import Path

from ..errors import FormatError
from . import native


def load(path):
    """Read the model at ``path`` (``.hwgen`` native format)."""
    path = Path(path)
    if path.suffix == native.SUFFIX:
        return native.load(path)
    raise FormatError(f"{path}: unknown model file type {path.suffix!r}; hwgen reads "
                      f"{native.SUFFIX} (native) files")
