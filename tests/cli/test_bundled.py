"""The bundled digits model: accuracy, and that its held-out split is what the docs say."""

import numpy as np

from hwgen import bundled
from hwgen.compiler.ir import reference


def test_integer_reference_reaches_90_percent_on_the_held_out_split():
    inputs, labels = bundled.digits_test_set()
    trace = reference.run(bundled.digits_model(), inputs)
    accuracy = reference.accuracy(trace.predictions, labels)
    assert accuracy >= 0.90
    assert accuracy == bundled.digits_training_summary()["integer_accuracy"]


def test_bundled_split_is_the_documented_scikit_learn_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    split = bundled.digits_training_summary()["split"]
    digits = load_digits()
    _, x_test, _, y_test = train_test_split(
        digits.data, digits.target, test_size=split["test_size"],
        random_state=split["random_state"], stratify=digits.target)
    inputs, labels = bundled.digits_test_set()
    assert np.array_equal(inputs, x_test) and np.array_equal(labels, y_test)


def test_model_is_pruned_and_quantized_as_documented():
    model = bundled.digits_model()
    assert model.timesteps == 8
    for name, sparsity in zip(("fc1", "fc2"), (0.75, 0.5)):
        weight = model[name].weight
        assert model[name].weight_bits == 4
        assert abs(np.mean(weight == 0) - sparsity) < 0.02
