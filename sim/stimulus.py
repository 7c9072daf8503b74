"""Input files for ``hwgen simulate`` / ``hwgen reference`` / ``hwgen run`` (docs/formats.md).

An inputs file is a NumPy ``.npz`` archive with:

``inputs``
    integers (samples, inputs) for a model with an integer encoder, or spike trains
    (samples, T, inputs) of 0/1 for any model;
``labels`` (optional)
    the true class per sample (samples,), to report accuracy.

Every error names the file: the archive is read member by member with sizes checked before
anything is inflated or allocated, and :meth:`Stimulus.check` checks the arrays against the
model they are for.
"""

import zipfile
from dataclasses import dataclass

import numpy as np

from hwgen.compiler.frontends.native import read_npy
from hwgen.compiler.ir import reference
from hwgen.errors import InputError

# What an inputs file may inflate to (declared sizes, checked before reading): 10,000
# samples of 16 steps x 4,096 spike inputs as int8 is 640 MB.
MAX_INPUTS_BYTES = 1 << 30


@dataclass
class Stimulus:
    inputs: np.ndarray
    labels: np.ndarray = None
    source: str = "inputs"
    """What the arrays came from (a file name), for error messages."""

    def __len__(self):
        return self.inputs.shape[0]

    def head(self, samples):
        """The first ``samples`` samples (all if None)."""
        if samples is None:
            return self
        if samples < 1:
            raise InputError(f"--samples must be at least 1, got {samples}")
        labels = None if self.labels is None else self.labels[:samples]
        return Stimulus(self.inputs[:samples], labels, self.source)

    def check(self, model):
        """Check the inputs' shape and values and the labels' range against ``model``;
        InputError naming the file otherwise. Returns self."""
        try:
            reference.encode(model, self.inputs)
        except InputError as error:
            raise InputError(f"{self.source}: {error}") from None
        if self.labels is not None and self.labels.size:
            # Labels are compared with a readout's prediction or the index of the last
            # layer's most active neuron: a class is an index into the model's one output.
            types = model.infer()
            outputs = [types[op.name] for op in model.outputs]
            classes = (getattr(outputs[0], "classes", None) or outputs[0].size
                       if len(outputs) == 1 else None)
            low, high = int(self.labels.min()), int(self.labels.max())
            if low < 0 or (classes is not None and high >= classes):
                raise InputError(f"{self.source}: 'labels' must be classes 0.."
                                 f"{'' if classes is None else classes - 1} (the model's "
                                 f"outputs), got {low}..{high}")
        return self


def load_inputs(path):
    def fail(message):
        return InputError(f"{path}: {message}")

    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory, not an .npz archive") from None
    except OSError as error:
        raise fail(f"cannot read ({error.strerror or error})") from None
    except (ValueError, zipfile.BadZipFile, EOFError) as error:
        raise fail(f"not a NumPy .npz archive ({error}); expected one with an 'inputs' "
                   f"array (and optionally 'labels')") from None
    with archive:
        try:
            infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise fail(f"not a NumPy .npz archive ({error})") from None
        names = {info.filename.removesuffix(".npy"): info.filename for info in infos}
        if len(names) != len(infos) or any(not n.endswith(".npy") for n in names.values()):
            raise fail("not a NumPy .npz archive (members must be distinct .npy arrays)")
        if "inputs" not in names:
            raise fail(f"no array named 'inputs' (found: {', '.join(sorted(names)) or 'none'})")
        unknown = set(names) - {"inputs", "labels"}
        if unknown:
            raise fail(f"unexpected array(s) {', '.join(sorted(unknown))}; an inputs file "
                       f"holds 'inputs' and optionally 'labels'")
        inflated = sum(info.file_size for info in infos)
        if inflated > MAX_INPUTS_BYTES:
            raise fail(f"inflates to {inflated} bytes, more than the {MAX_INPUTS_BYTES} an "
                       f"inputs file may hold")
        inputs = read_npy(archive, names["inputs"], fail, kinds="iub", label=names["inputs"])
        labels = (read_npy(archive, names["labels"], fail, label=names["labels"])
                  if "labels" in names else None)
    if inputs.ndim < 2:
        raise fail(f"'inputs' must be (samples, inputs...) or (samples, T, inputs...), got "
                   f"shape {inputs.shape}")
    if labels is not None and labels.shape != inputs.shape[:1]:
        raise fail(f"'labels' must be integers of shape ({inputs.shape[0]},), got "
                   f"{labels.dtype} {labels.shape}")
    if inputs.shape[0] == 0:
        raise fail("'inputs' holds no samples")
    return Stimulus(inputs, labels, str(path))
