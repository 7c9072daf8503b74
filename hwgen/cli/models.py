"""How CLI commands name models and inputs: a file path, or a bundled model's name
(``@digits``, ``@digits_cnn``, ``@digits_transformer``)."""

import click

from hwgen.compiler import frontends
from hwgen.errors import InputError

from .. import bundled
from hwgen.sim.stimulus import Stimulus, load_inputs

BUNDLED = bundled.MODELS


MODEL_HELP = ("MODEL is a .hwgen file, a .nir file (NIR, quantized on import; see the NIR "
              "options), or a bundled model: @digits (the digits MLP), @digits_cnn (the "
              "spiking CNN for the same digits) or @digits_transformer (a spiking "
              "transformer for them: Spike-driven Transformer v1).")


def model_argument(function):
    return click.argument("model", metavar="MODEL")(function)


def load_model(name, frontend=None):
    """The model named on the command line; ``frontend`` (:class:`FrontendOptions`) applies
    to NIR files only."""
    flags = frontend.flags() if frontend is not None else []
    if name in BUNDLED:
        if flags:
            raise click.UsageError(f"{', '.join(flags)} only apply to NIR models, not {name}")
        return BUNDLED[name][0]()
    if name.startswith("@"):
        raise click.BadParameter(f"unknown bundled model {name!r}; "
                                 f"bundled: {', '.join(BUNDLED)}", param_hint="MODEL")
    if flags and not name.endswith(frontends.nir_frontend.SUFFIX):
        raise click.UsageError(f"{', '.join(flags)} only apply to NIR (.nir) models")
    try:
        return frontends.load(name, **(frontend.given() if frontend is not None else {}))
    except InputError as error:
        # Only the calibration inputs are input data here; a model file's own faults are
        # FormatError or ModelError.
        if frontend is None or frontend.calibration is None \
                or str(error).startswith(f"{frontend.calibration}: "):
            raise
        raise InputError(f"{frontend.calibration}: {error}") from None


def load_stimulus(model_name, inputs_path, samples):
    """The inputs to run: from ``inputs_path``, else the bundled model's held-out split."""
    if inputs_path is not None:
        stimulus = load_inputs(inputs_path)
    elif model_name in BUNDLED:
        stimulus = Stimulus(*BUNDLED[model_name][1](), source=f"{model_name}'s held-out split")
    else:
        raise click.UsageError("--inputs is required for a model that is not bundled")
    return stimulus.head(samples)
