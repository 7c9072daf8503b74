"""Design-space sweeps: ``hwgen sweep`` and its Python API for notebooks.

    from hwgen.sweep import sweep
    result = sweep("@digits", {"tppes": [1, 2, 4], "chunk": [8, 16]}, "sw", samples=8)
    result.rows            # one dict per point, the same figures as sw/results.csv
    result.to_pandas()     # if pandas is installed

See docs/sweeps.md; the engine is :mod:`hwgen.sweep.engine`.
"""

from hwgen.bundled import MODELS as BUNDLED
from hwgen.compiler import frontends, hardware_config
from hwgen.errors import ConfigError
from hwgen.sim.stimulus import Stimulus, load_inputs

from . import engine
from .engine import SEQUENTIAL, SweepResult, parse_grid

__all__ = ["sweep", "SweepResult", "SEQUENTIAL", "parse_grid"]


def sweep(model, grid, out, *, inputs=None, samples=None, config=None, overrides=(),
          synth=None, frequency="auto", scheduler=None, workers=None, processes=True,
          progress=None, log=None):
    """Compile, co-simulate and (with ``synth``) synthesise every point of ``grid``.

    ``model``: a model name as on the command line (a .hwgen or .nir path, ``@digits``) or
    an IR model. ``grid``: {parameter: [values]} or ``["KEY=V1,V2", ...]``. ``inputs``: an
    .npz path or a :class:`~hwgen.sim.stimulus.Stimulus` (default: a bundled model's held-out
    split), cut to ``samples``. ``config`` / ``overrides``: the base configuration file and
    ``KEY=VALUE`` settings the grid overrides. ``scheduler``: None (a local Dask cluster of
    ``workers`` processes), ``"tcp://HOST:PORT"`` (an existing Dask cluster), or
    ``"sequential"`` (no Dask). Writes DIR's tables and plots and returns a
    :class:`SweepResult`.
    """
    name = model if isinstance(model, str) else None
    if name in BUNDLED:
        model = BUNDLED[name][0]()
    elif name is not None:
        model = frontends.load(name)
    if isinstance(grid, dict):
        grid = parse_grid([f"{k}={','.join(str(v) for v in values)}"
                           for k, values in grid.items()])
    else:
        grid = parse_grid(grid)
    if inputs is None:
        if name not in BUNDLED:
            raise ConfigError("sweep: inputs are required for a model that is not bundled")
        stimulus = Stimulus(*BUNDLED[name][1]())
    elif isinstance(inputs, Stimulus):
        stimulus = inputs
    else:
        stimulus = load_inputs(inputs)
    stimulus = stimulus.head(samples)
    base = hardware_config.load(config, overrides)
    return engine.sweep(model, grid, out, stimulus=stimulus, base_config=base, synth=synth,
                        frequency=frequency, scheduler=scheduler, workers=workers,
                        processes=processes, progress=progress, log=log)
