"""T_c for a model with recurrent layers, chosen on calibration activity.

A recurrent layer runs T_c sub-passes per time chunk (docs/architecture.md, "Recurrent
layers"), each walking the union of the chunk's active inputs, while every other layer
runs once per chunk. Which T_c is fastest depends on where the work is and on how spikes
spread in time: T_c = 1 for the braille RNN, whose recurrent layer is the work; 16 for a
wide feed-forward front before a small recurrent layer (docs/results.md). With calibration
spikes the scheduler estimates each candidate's cycles per inference with the cost model
it balances TPPEs on (:func:`~.assign.neuron_costs` per neuron, the busiest TPPE per pass,
plus :func:`~.cycle_model.pass_overhead`) and takes the fastest; without them it keeps
T_c = 1 (or the smallest an explicit lif_steps allows), the choice that never walks a
recurrent layer more than its steps.
"""

import numpy as np

from ..hardware_config import AUTO, MAX_TIME_CHUNK
from .assign import neuron_costs, schedule_layer, window_costs
from .cycle_model import pass_overhead


def candidates(config, timesteps, early_exit):
    """The T_c an 'auto' time_chunk may take: divisors of T up to MAX_TIME_CHUNK that an
    explicit lif_steps divides, below T with an early exit (it decides between chunks)."""
    return [d for d in range(1, min(timesteps, MAX_TIME_CHUNK) + 1)
            if timesteps % d == 0
            and (config.lif_steps == AUTO or d % config.lif_steps == 0)
            and not (early_exit and d == timesteps)]


def estimated_cycles(chain, config, timesteps, lanes, spikes):
    """Cycles per inference at T_c = ``lanes``, estimated from ``spikes`` ({op: (samples,
    T, neurons)}, a reference run on calibration inputs)."""
    lif_steps = config.auto_lif_steps(lanes) if config.lif_steps == AUTO else config.lif_steps
    chunks = timesteps // lanes
    total = 0.0
    for layer in chain.layers:
        columns = layer.input_spikes(spikes)
        if layer.dense.recurrent:
            own = spikes[layer.name]
            late = np.concatenate([np.zeros_like(own[:, :1]), own[:, :-1]], axis=1)
            columns = np.concatenate([columns, late], axis=2)
        samples = len(columns)
        activity = columns.reshape(samples, chunks, lanes, -1).any(axis=2).mean(axis=(0, 1))
        costs = neuron_costs(layer.dense.weight, config.chunk, lanes // lif_steps, activity,
                             config.join, None, config.fetch_width)
        busiest = max(schedule_layer(window_costs(costs, layer.pool),
                                     config.tppes).estimated_cycles)
        passes = chunks * (lanes if layer.dense.recurrent else 1)
        total += passes * (busiest + pass_overhead(config.join, config.fetch_width, lanes,
                                                   lif_steps))
    return total


def choose_time_chunk(chain, config, timesteps, spikes, early_exit=False):
    """(T_c, {candidate: estimated cycles}) for a model with recurrent layers. Without
    calibration ``spikes``, the smallest candidate (1, or an explicit lif_steps) and no
    estimates. Ties go to the smaller T_c (less area)."""
    options = candidates(config, timesteps, early_exit)
    if not options:
        return 1, {}        # lif_steps and the early exit contradict: refused after
    if spikes is None:
        return options[0], {}
    estimates = {d: estimated_cycles(chain, config, timesteps, d, spikes) for d in options}
    return min(options, key=lambda d: (estimates[d], d)), estimates
