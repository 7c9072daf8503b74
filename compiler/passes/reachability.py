"""Which spiking layers can never fire: a compile-time warning for silent models.

A model whose layer cannot reach its threshold within T steps compiles and simulates
bit-exactly -- to a network that never spikes. This pass bounds, for every LIF neuron, the
largest membrane any input can produce and reports the layers where no neuron gets there.

The bound: with every input that could spike spiking at every step, only the positive
weights (and a positive bias) counting, each step adds at most
``P[n] = sum_k max(w[n, k], 0) * m[k] + max(b[n], 0)``, where ``m[k]`` is 1 if input k can
spike at all (0 for a neuron this pass already found silent; always 1 for the own spikes a
recurrent synapse takes back, docs/semantics.md section 4c). Until a neuron first fires
no reset happens, and both leak forms and the saturation are monotone in v, so iterating
``h = sat(L(h) + P)`` from 0 over the T steps gives the largest h it can reach (the leak's
best case); if that never passes the threshold, the neuron cannot fire.
"""

import numpy as np

from ..ir import (LI, LIF, Add, Conv1d, Conv2d, Dense, Flatten, Input, MaxPool2d, Readout,
                  SumPool2d, saturate)


def _reach(op, current, timesteps):
    """The largest h each neuron of LIF ``op`` reaches over the T steps with input
    ``current`` (per neuron, >= 0) at every step. Both leaks are non-decreasing, so the
    largest input at every step also gives a current-based neuron its largest synaptic
    current at every step."""
    h = np.zeros(op.size, dtype=np.int64)
    i = np.zeros(op.size, dtype=np.int64)
    best = np.full(op.size, np.iinfo(np.int64).min, dtype=np.int64)
    for _ in range(timesteps):
        if op.synapse is not None:
            i = saturate(op.synapse.apply(i) + current, op.i_bits)
        h = saturate(op.leak.apply(h) + (current if op.synapse is None else i), op.v_bits)
        best = np.maximum(best, h)
    return best


def silent_layers(model):
    """One warning (a sentence) per LIF layer none of whose neurons can ever fire."""
    types = model.infer()
    most = {}           # per op: the largest value each element can carry (>= 0)
    warnings = []
    for op in model.ops:
        sources = model.inputs_of(op.name)
        upstream = most.get(sources[0]) if sources else None
        if isinstance(op, Input):
            most[op.name] = np.ones(int(np.prod(op.shape)), dtype=np.int64)
        elif isinstance(op, Flatten):
            most[op.name] = upstream
        elif isinstance(op, Add):
            summed = [most.get(name) for name in sources]
            if all(value is not None for value in summed):
                most[op.name] = sum(summed)
        elif upstream is None:
            continue            # fed by something this pass does not bound (an integrator)
        elif isinstance(op, Dense):
            bias = np.zeros(op.outputs, dtype=np.int64) if op.bias is None else op.bias
            if op.recurrent:
                # The fed neurons' own spikes of step t-1 are inputs that may be 1 too
                # (whether a neuron can fire is what this pass is finding out).
                upstream = np.concatenate([upstream, np.ones(op.outputs, dtype=np.int64)])
            most[op.name] = np.maximum(op.weight, 0) @ upstream + np.maximum(bias, 0)
        elif isinstance(op, (Conv1d, Conv2d)):
            # Per output channel, every positive weight over a full window of the largest
            # input: an upper bound at every position.
            positive = np.maximum(op.weight, 0).reshape(op.weight.shape[0], -1).sum(axis=1)
            bias = np.zeros(op.weight.shape[0], dtype=np.int64) if op.bias is None else op.bias
            per_channel = positive * int(upstream.max(initial=0)) + np.maximum(bias, 0)
            positions = int(np.prod(types[op.name].shape)) // per_channel.size
            most[op.name] = np.repeat(per_channel, positions)
        elif isinstance(op, MaxPool2d):
            size = int(np.prod(types[op.name].shape))
            most[op.name] = np.full(size, int(upstream.max(initial=0)), dtype=np.int64)
        elif isinstance(op, SumPool2d):
            size = int(np.prod(types[op.name].shape))
            most[op.name] = np.full(size, int(upstream.max(initial=0))
                                    * op.kernel[0] * op.kernel[1], dtype=np.int64)
        elif isinstance(op, LIF):
            reach = _reach(op, upstream, model.timesteps)
            fires = reach >= op.threshold if op.fire == "ge" else reach > op.threshold
            most[op.name] = fires.astype(np.int64)
            if not fires.any():
                n = int(np.argmax(reach - op.threshold))
                quiet = not upstream.any()
                cause = (f"; no input current can reach it (every input it reads is silent "
                         f"or its weights are not positive)" if quiet else "")
                warnings.append(
                    f"layer {op.name!r} can never spike within T = {model.timesteps} steps: "
                    f"with every input spiking at every step through its positive weights "
                    f"only and the leak's best case, its largest possible membrane is "
                    f"{int(reach[n])} against threshold {int(op.threshold[n])} (neuron {n}, "
                    f"the closest to firing; fire {'>=' if op.fire == 'ge' else '>'})"
                    f"{cause}")
        elif isinstance(op, (LI, Readout)):
            continue
    return warnings
