"""The options with which commands read a NIR model (docs/frontends.md).

One decorator adds them all to a command and hands the command a single
:class:`FrontendOptions`; :func:`hwgen.cli.models.load_model` passes them to the NIR
frontend. Every option defaults to "not given" so the frontend's own defaults (and the
source framework's conventions) apply, and so that giving one for a model that is not NIR
is an error rather than silently ignored.
"""

import functools
from dataclasses import asdict, dataclass

import click

from hwgen.compiler.frontends.conventions import FRAMEWORKS, SPIKE_FNS
from hwgen.compiler.ir import FIRE_MODES, MAX_TIMESTEPS, ORDERS, RESET_MODES
from hwgen.compiler.ir.widths import MAX_V_BITS, MAX_WEIGHT_BITS, MIN_BITS
from hwgen.compiler.passes.quantize import LEAK_FORMS

from .params import PositiveFinite


@dataclass(frozen=True)
class FrontendOptions:
    dt: float = None
    source_framework: str = None
    timesteps: int = None
    fire: str = None
    reset: str = None
    order: str = None
    spike_fn: str = None
    weight_bits: int = None
    v_bits: int = None
    leak_form: str = None
    leak_frac_bits: int = None
    calibration: str = None

    def given(self):
        """The options the user gave, as keyword arguments of the NIR frontend's ``load``
        (the calibration file read into its inputs array)."""
        options = {k: v for k, v in asdict(self).items() if v is not None}
        if "calibration" in options:
            from hwgen.sim.stimulus import load_inputs
            options["calibration"] = load_inputs(options["calibration"]).inputs
        return options

    def flags(self):
        return [f"--{k.replace('_', '-')}" for k, v in asdict(self).items() if v is not None]


_OPTIONS = [
    click.option("--source-framework", type=click.Choice(sorted(FRAMEWORKS)),
                 help="NIR: the framework that exported the graph, whose conventions (dt, "
                      "spike comparison, reset, time step) apply where NIR is silent. "
                      "[default: generic]"),
    click.option("--dt", type=PositiveFinite(),
                 help="NIR: the time step (s) the graph's time constants assume "
                      "[default: the framework's: 1e-4, norse 1e-3, sinabs 1]."),
    click.option("--timesteps", type=click.IntRange(1, MAX_TIMESTEPS),
                 help="NIR: steps per sample T (NIR stores none) [default: the graph's "
                      "hwgen.timesteps metadata, else the calibration spike trains' length]."),
    click.option("--fire", type=click.Choice(FIRE_MODES),
                 help="NIR: override the spike comparison (ge: v >= theta, gt: v > theta)."),
    click.option("--reset", type=click.Choice(RESET_MODES),
                 help="NIR: override what a neuron's reset does."),
    click.option("--order", type=click.Choice(ORDERS),
                 help="NIR: override when the reset happens (same_step, or delayed one step "
                      "as snnTorch's default Leaky; with --source-framework snntorch, "
                      "same_step is its reset_delay=False order, snntorch_same_step)."),
    click.option("--spike-fn", type=click.Choice(SPIKE_FNS),
                 help="NIR: spikes per neuron and step: single, or multi (Sinabs's default "
                      "MultiSpike, floor(v/threshold); its export does not record it, and "
                      "layers that could emit several are refused) [default: multi for "
                      "sinabs, else single]."),
    click.option("--calibration", type=click.Path(dir_okay=False),
                 help="NIR: inputs .npz to calibrate quantization on and to measure "
                      "float-vs-integer spike agreement with."),
    click.option("--weight-bits", type=click.IntRange(MIN_BITS, MAX_WEIGHT_BITS),
                 help="NIR: weight width [default: exact for integer weights, else 8]."),
    click.option("--v-bits", type=click.IntRange(MIN_BITS, MAX_V_BITS),
                 help="NIR: membrane width [default: the narrowest that never saturates]."),
    click.option("--leak-form", type=click.Choice(LEAK_FORMS),
                 help="NIR: multiply ((a*v)>>F = floor(beta*v)) or shift (v - (v>>k)) "
                      "[default: multiply]."),
    click.option("--leak-frac-bits", type=click.IntRange(1, 16),
                 help="NIR: fraction bits F of an inexact multiply leak [default: 8]."),
]


def frontend_options(function):
    """Add the NIR frontend options to a click command; it receives ``frontend``."""
    names = [f.name for f in FrontendOptions.__dataclass_fields__.values()]

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        kwargs["frontend"] = FrontendOptions(**{name: kwargs.pop(name) for name in names})
        return function(*args, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
