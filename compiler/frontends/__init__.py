"""Frontends: read a model file into the IR.

:func:`load` picks the frontend by file suffix. Each frontend records in the model's
metadata what it assumed where the source format was silent.
"""

from pathlib import Path

from hwgen.errors import ConfigError, FormatError
from . import native
from . import nir as nir_frontend


def load(path, **options):
    """Read the model at ``path``: ``.hwgen`` (native) or ``.nir`` (NIR, with ``options`` as
    for :func:`hwgen.compiler.frontends.nir.load`)."""
    path = Path(path)
    if path.suffix == native.SUFFIX:
        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            raise ConfigError(f"{path}: {', '.join(given)} only apply to NIR models; a "
                             f"{native.SUFFIX} model is already quantized")
        return native.load(path)
    if path.suffix == nir_frontend.SUFFIX:
        return nir_frontend.load(path, **{k: v for k, v in options.items() if v is not None})
    raise FormatError(f"{path}: unknown model file type {path.suffix!r}; hwgen reads "
                      f"{native.SUFFIX} (native) and {nir_frontend.SUFFIX} (NIR) files")
