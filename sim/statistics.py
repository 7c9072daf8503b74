"""Per-layer activity statistics from a reference run.

These are the numbers the scheduler balances on and the hardware's cycle counts are judged
against: how often neurons spike, how many are silent for all T steps (and so cost nothing
downstream), how dense the weights are, and how many (spiking input, nonzero weight)
pairs the inner join must process.
"""

from dataclasses import dataclass

import numpy as np

from hwgen.compiler.ir import LIF, Dense, Flatten, Input


@dataclass
class LayerStatistics:
    """Statistics of one op over the samples of a run.

    For spike-producing ops (input, LIF): ``spike_density[t]`` is the fraction of neurons
    spiking at step t and ``silent_fraction`` the fraction spiking at no step, both averaged
    over samples. For Dense ops: ``weight_density`` is the fraction of nonzero weights and
    ``matched_pairs[s]`` the number of (input neuron active in sample s, nonzero weight)
    pairs, summed over output neurons.
    """

    name: str
    kind: str
    neurons: int
    spike_density: np.ndarray = None
    silent_fraction: float = None
    weight_density: float = None
    matched_pairs: np.ndarray = None

    def to_json(self):
        data = {"name": self.name, "kind": self.kind, "neurons": self.neurons}
        if self.spike_density is not None:
            data["spike_density"] = [round(float(x), 6) for x in self.spike_density]
            data["silent_fraction"] = round(float(self.silent_fraction), 6)
        if self.weight_density is not None:
            data["weight_density"] = round(float(self.weight_density), 6)
            data["matched_pairs_mean"] = round(float(self.matched_pairs.mean()), 3)
            data["matched_pairs_max"] = int(self.matched_pairs.max())
        return data


def active_neurons(spikes):
    """(samples, T, neurons) spikes -> (samples, neurons) bool: spiked at least once."""
    return spikes.any(axis=1)


def layer_statistics(model, trace):
    """One :class:`LayerStatistics` per input, Dense and LIF op, in model order."""
    result = []
    for op in model.ops:
        if isinstance(op, (Input, LIF)):
            spikes = trace.spikes[op.name]
            result.append(LayerStatistics(
                op.name, op.type_name, spikes.shape[2],
                spike_density=spikes.mean(axis=(0, 2)),
                silent_fraction=float((~active_neurons(spikes)).mean())))
        elif isinstance(op, Dense):
            producer = model.inputs_of(op.name)[0]
            while isinstance(model[producer], Flatten):          # same spikes, reshaped
                producer = model.inputs_of(producer)[0]
            source = trace.spikes[producer]
            nonzero = op.weight != 0
            active = active_neurons(source).astype(np.int64)
            result.append(LayerStatistics(
                op.name, op.type_name, op.outputs,
                weight_density=float(nonzero.mean()),
                matched_pairs=(active @ nonzero.T.astype(np.int64)).sum(axis=1)))
    return result
