"""Input files for ``hwgen simulate`` / ``hwgen reference`` / ``hwgen run`` (docs/formats.md).

An inputs file is a NumPy ``.npz`` archive with:

``inputs``
    integers (samples, inputs) for a model with an integer encoder, or spike trains
    (samples, T, inputs) of 0/1 for any model;
``labels`` (optional)
    the true class per sample (samples,), to report accuracy.
"""

import zipfile
from dataclasses import dataclass

import numpy as np

from hwgen.errors import InputError


@dataclass
class Stimulus:
    inputs: np.ndarray
    labels: np.ndarray = None

    def __len__(self):
        return self.inputs.shape[0]

    def head(self, samples):
        """The first ``samples`` samples (all if None)."""
        if samples is None:
            return self
        if samples < 1:
            raise InputError(f"--samples must be at least 1, got {samples}")
        labels = None if self.labels is None else self.labels[:samples]
        return Stimulus(self.inputs[:samples], labels)


def load_inputs(path):
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise InputError(f"{path}: not a NumPy .npz archive ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: is a single array; expected an .npz archive with an "
                         f"'inputs' array (and optionally 'labels')")
    with archive:
        names = set(archive.files)
        if "inputs" not in names:
            raise InputError(f"{path}: no array named 'inputs' (found: "
                             f"{', '.join(sorted(names)) or 'none'})")
        unknown = names - {"inputs", "labels"}
        if unknown:
            raise InputError(f"{path}: unexpected array(s) {', '.join(sorted(unknown))}; "
                             f"an inputs file holds 'inputs' and optionally 'labels'")
        try:
            inputs = archive["inputs"]
            labels = archive["labels"] if "labels" in names else None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise InputError(f"{path}: damaged array ({error})") from None
    if inputs.dtype.kind not in "iub":
        raise InputError(f"{path}: 'inputs' must hold integers, got dtype {inputs.dtype}")
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.shape != inputs.shape[:1]:
            raise InputError(f"{path}: 'labels' must be integers of shape "
                             f"({inputs.shape[0]},), got {labels.dtype} {labels.shape}")
    if inputs.shape[0] == 0:
        raise InputError(f"{path}: 'inputs' holds no samples")
    return Stimulus(inputs, labels)
