"""Assigning a layer's output neurons to TPPEs.

With one sample, a fully-connected layer has a single row of spikes (M = 1), so the
accelerator broadcasts the spike fiber and spreads the N output neurons over the TPPEs.
A TPPE's time on a layer is roughly the sum over its neurons of the larger of the
neuron's matched pairs (one per cycle), its fiber entries (one per cycle in the fetch
stage) and its LIF time (T / lif_steps cycles, overlapped); balancing that sum balances
the layer. Matched pairs depend on the input, so they are estimated from each input
neuron's probability of being active (measured on calibration data, else assumed 1:
then the balance is over nonzero weights).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Assignment:
    """``neurons[p]``: the output neurons TPPE p computes, in ascending order."""

    neurons: tuple
    estimated_cycles: tuple


def neuron_costs(weight, chunk, lif_cycles, activity=None):
    """Estimated cycles per output neuron of a (outputs, inputs) weight matrix."""
    nonzero = weight != 0
    if activity is None:
        activity = np.ones(weight.shape[1])
    pairs = nonzero @ np.asarray(activity, dtype=float)
    padded = -(-weight.shape[1] // chunk) * chunk
    blocks = np.zeros((weight.shape[0], padded), dtype=bool)
    blocks[:, :weight.shape[1]] = nonzero
    entries = 1 + blocks.reshape(weight.shape[0], -1, chunk).any(axis=2).sum(axis=1)
    return np.maximum(np.maximum(pairs, entries), lif_cycles)


def schedule_layer(costs, tppes):
    """Longest-processing-time-first: the costliest neuron goes to the least-loaded TPPE.

    Deterministic: ties go to the lower neuron index and the lower TPPE.
    """
    costs = np.asarray(costs, dtype=float)
    order = sorted(range(len(costs)), key=lambda n: (-costs[n], n))
    loads = [0.0] * tppes
    owned = [[] for _ in range(tppes)]
    for n in order:
        p = min(range(tppes), key=lambda q: (loads[q], len(owned[q]), q))
        owned[p].append(n)
        loads[p] += costs[n]
    return Assignment(tuple(tuple(sorted(ns)) for ns in owned), tuple(loads))
