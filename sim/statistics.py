"""Per-layer activity statistics from a reference run.

These are the numbers the scheduler balances on and the hardware's cycle counts are judged
against: how often neurons spike, how many are silent for all T steps (and so cost nothing
downstream), how dense the weights are, and how many (spiking input, nonzero weight)
pairs the inner join must process.
"""

from dataclasses import dataclass

import numpy as np

from hwgen.compiler.ir import LIF, Conv1d, Conv2d, Dense, Flatten, Input
from hwgen.compiler.ir.reference import convolve


@dataclass
class LayerStatistics:
    """Statistics of one op over the samples of a run.

    For spike-producing ops (input, LIF): ``spike_density[t]`` is the fraction of neurons
    spiking at step t and ``silent_fraction`` the fraction spiking at no step, both averaged
    over samples. For Dense ops: ``weight_density`` is the fraction of nonzero weights and
    ``matched_pairs[s]`` the number of (input neuron active in sample s, nonzero weight)
    pairs, summed over output neurons. For convolutions fed by spikes the same, a pair
    being an (active input in the window, nonzero weight) pair of one output neuron (one
    channel at one position), summed over output neurons: what im2col's product walks.
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
    """One :class:`LayerStatistics` per input, Dense, LIF op and convolution fed by spikes,
    in model order."""
    result = []
    types = None
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
        elif isinstance(op, (Conv1d, Conv2d)):
            producer = model.inputs_of(op.name)[0]
            while isinstance(model[producer], Flatten):
                producer = model.inputs_of(producer)[0]
            if producer not in trace.spikes:          # fed by a current: no spike fiber
                continue
            types = types or model.infer()
            shape = types[model.inputs_of(op.name)[0]].shape
            active = active_neurons(trace.spikes[producer]).reshape(-1, *shape)
            nonzero = op.weight != 0
            # each output neuron's count of active inputs under its nonzero weights: the
            # convolution of the active map by the nonzero mask (exact small integers)
            pairs = convolve(active, nonzero, None, stride=op.stride, padding=op.padding,
                             dilation=op.dilation, groups=op.groups)
            result.append(LayerStatistics(
                op.name, op.type_name, int(np.prod(types[op.name].shape)),
                weight_density=float(nonzero.mean()),
                matched_pairs=np.rint(pairs.reshape(len(pairs), -1).sum(axis=1))
                .astype(np.int64)))
    return result
