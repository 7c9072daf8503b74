"""Layers of gates: Boolean functions of spikes computed exactly on the accelerator's own
datapath, so that the ops between spikes and spikes need no unit of their own.

A gate is a neuron that forgets: its leak multiplies the membrane by 0 (``(0 * v) >> 1``),
so whatever it held, its potential at step t is its current at t, and it fires at t
exactly when that current reaches its threshold (docs/semantics.md section 3, same-step
order; reset and saturation never matter, the current being 0 .. 2 in 3 bits). Its
synapse is an ordinary sparse matrix of 1s that the TPPEs walk like any other:

- an AND of two spikes (a Hadamard mask, ``spike_and``) is a gate of threshold 2 reading
  both, one weight of 1 each (a mask's feature spike is read by every position of its
  feature); the current is the number of the two that spike;
- a copy of a spike is a gate of threshold 1 reading it with a weight of 1: the model's
  input copied into a layer, so that its spikes are kept for the later layers that read
  them (the input's own region is overwritten by the second layer).

A gate layer costs what a layer of its size costs: per neuron and time chunk one or two
matched pairs at most, the LIF stage's cycles, and one program entry per chunk it reads.
"""

import numpy as np
import scipy.sparse

from ..ir import LIF, Leak
from ..ir.neuron import signed_range
from .unroll import UnrolledDense, signed_bits

GATE_V_BITS = 3
"""A gate's membrane width: its potential is 0, 1 or 2."""

FORGET = Leak.by_multiply(0, 1)
"""The leak of a neuron that keeps nothing from one step to the next."""


def gate_lif(name, thresholds):
    """Gates named ``name`` firing at every step where their current reaches
    ``thresholds`` (one per gate)."""
    return LIF(name, np.asarray(thresholds, dtype=np.int64), leak=FORGET, fire="ge",
               reset="zero", order="same_step", v_bits=GATE_V_BITS)


def gate_dense(name, rows, columns, shape):
    weight = scipy.sparse.csr_array(
        (np.ones(len(rows), dtype=np.int64), (rows, columns)), shape=shape, dtype=np.int64)
    weight.sum_duplicates()                 # x AND x: one weight of 2 on x's column
    weight.sort_indices()
    largest = int(weight.data.max(initial=1))
    return UnrolledDense(name, weight, None, weight_bits=signed_bits(0, largest),
                         acc_bits=signed_bits(-2 * largest, 2 * largest))


def and_gates(op, inputs, columns, types):
    """The layer computing the ``spike_and`` op ``op`` whose inputs are the spiking ops
    named ``inputs``: (its :class:`UnrolledDense`, its gate :class:`LIF`). ``columns``: the
    layer's spike sources as names, in the order of its matrix's columns (each source's
    neurons in C order); ``types``: the model's value types."""
    offsets, total = {}, 0
    for name in columns:
        offsets[name] = total
        total += types[name].size
    first, second = inputs
    size = types[first].size
    rows = np.arange(size, dtype=np.int64)
    # C order: feature c's positions are the consecutive elements c P .. c P + P - 1, so a
    # mask of one spike per feature is read by row n at column n // P
    spread = size // types[second].size
    cols = np.concatenate([offsets[first] + rows, offsets[second] + rows // spread])
    dense = gate_dense(op.name, np.concatenate([rows, rows]), cols, (size, total))
    return dense, gate_lif(op.name, np.full(size, 2))


def input_copy(model, types):
    """The layer copying the model's input into a layer of its own, named as the input
    (whose spikes it reproduces): (its :class:`UnrolledDense`, its gate :class:`LIF`)."""
    name = model.input.name
    size = types[name].size
    rows = np.arange(size, dtype=np.int64)
    return gate_dense(name, rows, rows, (size, size)), gate_lif(name, np.ones(size))


def silent_lif(li, size):
    """A non-spiking integrator (``li``, of ``size`` neurons) as neurons that never fire:
    same leak, synapse and width, a threshold at the membrane's largest value and ``fire``
    when above it, which the saturated potential never is; with no spike there is no
    reset, so the membrane evolves as the integrator's, v = sat(L(v) + I)
    (docs/semantics.md section 4)."""
    largest = signed_range(li.v_bits)[1]
    return LIF(li.name, np.full(size, largest),
               leak=li.leak, fire="gt", reset="none", order="same_step", v_bits=li.v_bits,
               synapse=li.synapse, i_bits=li.i_bits, synapse_rounding=li.synapse_rounding)
