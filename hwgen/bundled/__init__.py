"""Models that ship inside hwgen, so the flow runs with no training framework installed.

``digits_mlp.hwgen`` is the spiking MLP for scikit-learn's digits trained by
examples/digits/train.py; ``digits_test.npz`` is its held-out split (inputs, labels);
``digits_mlp.json`` records the split and the accuracies the script measured.
"""

import json
from importlib import resources

import numpy as np

from hwgen.compiler.frontends import native


def _path(name):
    return resources.files(__name__) / name


def digits_model_path():
    return _path("digits_mlp.hwgen")


def digits_model():
    with resources.as_file(digits_model_path()) as path:
        return native.load(path)


def digits_test_set():
    """(inputs uint8 (samples, 64), labels uint8 (samples,)) of the held-out split."""
    with resources.as_file(_path("digits_test.npz")) as path, np.load(path) as data:
        return data["inputs"], data["labels"]


def digits_training_summary():
    return json.loads(_path("digits_mlp.json").read_text())


MODELS = {"@digits": (digits_model, digits_test_set)}
"""The bundled models by the name commands take (``@digits``): (model, held-out split)."""
