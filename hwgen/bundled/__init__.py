"""Models that ship inside hwgen, so the flow runs with no training framework installed.

``digits_mlp.hwgen`` is the spiking MLP for scikit-learn's digits trained by
examples/digits/train.py; ``digits_cnn.hwgen`` the spiking CNN (strided convolutions) for
the same digits trained by examples/digits/train_cnn.py; ``digits_transformer.hwgen`` a
spiking transformer (Spike-driven Transformer v1) for them, trained by
examples/digits/train_transformer.py. All are scored on one held-out split,
``digits_test.npz`` (inputs, labels); ``digits_mlp.json``, ``digits_cnn.json`` and
``digits_transformer.json`` record the split and the accuracies the scripts measured.
"""

import json
from importlib import resources

import numpy as np

from hwgen.compiler.frontends import native


def _path(name):
    return resources.files(__name__) / name


def _load(name):
    with resources.as_file(_path(name)) as path:
        return native.load(path)


def digits_model_path():
    return _path("digits_mlp.hwgen")


def digits_model():
    return _load("digits_mlp.hwgen")


def digits_cnn_model_path():
    return _path("digits_cnn.hwgen")


def digits_cnn_model():
    """The spiking CNN: conv 1->16 and 16->32 (3x3, stride 2) -> dense 128->10, LIF after
    each, spike-count readout; its input is the (1, 8, 8) image, which also accepts the
    flat 64 pixels of :func:`digits_test_set`."""
    return _load("digits_cnn.hwgen")


def digits_transformer_model_path():
    return _path("digits_transformer.hwgen")


def digits_transformer_model():
    """The spiking transformer: 2x2 patches of the (1, 8, 8) image as 16 tokens, SDSA and
    MLP blocks, a head summing its logits over the steps (final-membrane readout)."""
    return _load("digits_transformer.hwgen")


def digits_test_set():
    """(inputs uint8 (samples, 64), labels uint8 (samples,)) of the held-out split."""
    with resources.as_file(_path("digits_test.npz")) as path, np.load(path) as data:
        return data["inputs"], data["labels"]


def digits_training_summary():
    return json.loads(_path("digits_mlp.json").read_text())


def digits_cnn_training_summary():
    return json.loads(_path("digits_cnn.json").read_text())


def digits_transformer_training_summary():
    return json.loads(_path("digits_transformer.json").read_text())


MODELS = {"@digits": (digits_model, digits_test_set),
          "@digits_cnn": (digits_cnn_model, digits_test_set),
          "@digits_transformer": (digits_transformer_model, digits_test_set)}
"""The bundled models by the name commands take (``@digits``): (model, held-out split)."""
