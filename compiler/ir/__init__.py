"""The hwgen IR: a graph of typed integer operations over T discrete time steps.

See docs/semantics.md for what each op computes, exactly.
"""

from .graph import MAX_TIMESTEPS, Model
from .neuron import (FIRE_MODES, LEAK_KINDS, ORDERS, RESET_MODES, SYNAPSE_ROUNDINGS, Leak,
                     saturate, signed_range)
from .ops import (LI, LIF, OP_TYPES, Add, Conv1d, Conv2d, Dense, Flatten, Input, MaxPool2d, Op,
                  Readout, SumPool2d, op_type)
from .transformer_ops import CurrentMatmul, SpikeAnd, SpikeMatmul, TokenSum
from .values import Current, Membrane, Prediction, Spikes

__all__ = [
    "Model", "MAX_TIMESTEPS",
    "Op", "Input", "Dense", "LIF", "Readout", "Conv1d", "Conv2d", "SumPool2d", "MaxPool2d",
    "Add", "Flatten", "LI", "SpikeAnd", "TokenSum", "SpikeMatmul", "CurrentMatmul",
    "OP_TYPES", "op_type",
    "Leak", "FIRE_MODES", "RESET_MODES", "ORDERS", "LEAK_KINDS", "SYNAPSE_ROUNDINGS", "saturate",
    "signed_range",
    "Spikes", "Current", "Membrane", "Prediction",
]
