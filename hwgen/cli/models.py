"""How CLI commands name models and inputs: a file path, or ``@digits`` for the bundled one."""

import click

from compiler import frontends

from .. import bundled
from sim.stimulus import Stimulus, load_inputs

BUNDLED = {"@digits": (bundled.digits_model, bundled.digits_test_set)}


def model_argument(function):
    return click.argument("model", metavar="MODEL")(function)


def load_model(name):
    if name in BUNDLED:
        return BUNDLED[name][0]()
    if name.startswith("@"):
        raise click.BadParameter(f"unknown bundled model {name!r}; "
                                 f"bundled: {', '.join(BUNDLED)}", param_hint="MODEL")
    return frontends.load(name)


def load_stimulus(model_name, inputs_path, samples):
    """The inputs to run: from ``inputs_path``, else the bundled model's held-out split."""
    if inputs_path is not None:
        stimulus = load_inputs(inputs_path)
    elif model_name in BUNDLED:
        stimulus = Stimulus(*BUNDLED[model_name][1]())
    else:
        raise click.UsageError("--inputs is required for a model that is not bundled")
    return stimulus.head(samples)
