"""Legalise a model for the accelerator: find the chain of layers it can run.

The accelerator runs a chain ``input -> layer -> layer ... -> readout``, each layer a
synapse fused with the LIF neurons it feeds, reading the spikes of the layer before it
and, for a residual connection, of one earlier layer too. A layer's synapse is what lies
between its spike sources and its ``lif`` op: a single ``dense`` op (possibly recurrent,
possibly behind a ``flatten``, which is a relabelling: values keep their C-order
numbering, docs/semantics.md 3a), or any graph of linear ops -- convolutions, sum pooling,
flatten, dense layers and adds -- which :mod:`.unroll` composes into the one matrix the
accelerator walks. Anything else is refused here, at compile time, with a message naming
the op, so that frontends can import ops (max pooling, ...) the hardware does not run yet.
"""

from dataclasses import dataclass

from hwgen.errors import UnsupportedError
from ..ir import LIF, Dense, Flatten, Input, MaxPool2d, Readout
from .unroll import LINEAR_OPS, pool_windows, unroll


@dataclass(frozen=True)
class SpikingDense:
    """A layer: its synapse, as one matrix, fused with its neurons; what one accelerator
    pass computes. ``source``: the op whose spikes it reads (the input or a LIF), past any
    flatten. ``aux``: with a residual connection, the earlier LIF whose spikes it also
    reads; ``dense``'s columns are then ``source``'s neurons followed by ``aux``'s."""

    dense: Dense
    lif: LIF
    source: str = None
    unrolled: tuple = ()
    """The ops :mod:`.unroll` composed into ``dense``, as ``op.where`` (empty: ``dense``
    is the model's own op)."""
    aux: str = None
    pool: tuple = None
    """With a max pooling of currents before the neurons (``max_pool2d``): per neuron, the
    rows of ``dense`` (the pooled currents, C order) whose maximum it integrates."""

    @property
    def name(self):
        return self.lif.name

    @property
    def inputs(self):
        return self.dense.inputs

    @property
    def where(self):
        """The synapse, as messages name it: ``dense 'fc1'``, or for an unrolled layer
        ``sum_pool2d 'p1', conv2d 'c2' (unrolled)``."""
        if not self.unrolled:
            return self.dense.where
        return f"{', '.join(self.unrolled)} (unrolled)"

    @property
    def outputs(self):
        """The layer's neurons (with a max pooling, fewer than ``dense``'s rows)."""
        return len(self.pool) if self.pool is not None else self.dense.outputs


@dataclass(frozen=True)
class LayerChain:
    input: Input
    layers: tuple
    readout: Readout = None


def legalise(model):
    """Return the model's :class:`LayerChain` or raise :class:`UnsupportedError`."""
    model.validate()
    types = model.infer()
    ops = model.ops
    lifs = [op for op in ops if isinstance(op, LIF)]
    # A synapse op may serve several layers (a current read by two neuron ops, directly
    # or through adds): each layer's matrix then includes it, computing the same values.
    regions = {lif.name: _synapse_of(model, lif) for lif in lifs}
    owner = {op.name for synapse, _ in regions.values() for op in synapse}
    pools = {pool.name for pool in (_pooling_of(model, lif) for lif in lifs) if pool}
    owner |= pools
    for op in ops:
        if not isinstance(op, (Input, LIF, Readout, *LINEAR_OPS)) and op.name not in pools:
            _refuse_type(model, op)
    readout = None
    for op in ops:
        if isinstance(op, (Input, LIF)) or op.name in owner:
            continue
        if isinstance(op, Readout) and lifs and model.inputs_of(op.name) == [lifs[-1].name]:
            if op.mode != "spike_count":
                raise UnsupportedError(f"{op.where}: readout mode {op.mode!r} is not "
                                       f"supported by the accelerator yet (it reads spike "
                                       f"counts)")
            readout = op
        elif isinstance(op, Readout):
            _refuse_type(model, op)
        else:
            raise UnsupportedError(f"{op.where}: its output feeds no neuron; the accelerator "
                                   f"runs a single chain of layers")
    if not lifs:
        raise UnsupportedError(f"model {model.name!r}: has no dense -> lif layer to run")
    layers, previous = [], model.input
    for lif in lifs:
        synapse, sources = regions[lif.name]
        layers.append(_layer(model, lif, synapse, sources, previous, types))
        previous = lif
    residual = next((layer for layer in layers if layer.aux), None)
    recurrent = next((layer for layer in layers if layer.dense.recurrent), None)
    if residual and recurrent:
        raise UnsupportedError(f"{residual.lif.where}: a residual connection (from "
                               f"{residual.aux!r}) in a model with a recurrent layer "
                               f"({recurrent.name!r}) is not supported by the accelerator yet")
    return LayerChain(model.input, tuple(layers), readout)


def _refuse_type(model, op):
    feeds = model.inputs_of(op.name)
    what = "after a dense layer " if feeds and isinstance(model[feeds[0]], Dense) else ""
    raise UnsupportedError(f"{op.where}: op type {op.type_name!r} {what}is not supported by "
                           f"the accelerator yet (it runs layers of linear synapse ops -> lif)")


def _pooling_of(model, lif):
    """The ``max_pool2d`` of currents feeding ``lif`` directly, or None. A max pool of
    spikes (its input a spiking op) is refused: it is not a synapse."""
    (feed,) = model.inputs_of(lif.name)
    if not isinstance(model[feed], MaxPool2d):
        return None
    (source,) = model.inputs_of(feed)
    if isinstance(model[source], (Input, LIF)):
        _refuse_type(model, model[feed])
    return model[feed]


def _synapse_of(model, lif):
    """(synapse ops in topological order, spike sources) of ``lif``'s layer: every op
    reached walking back from its input (past a max pooling of currents right before it)
    through linear ops, up to spiking ops."""
    pool = _pooling_of(model, lif)
    start = pool.name if pool is not None else lif.name
    synapse, sources, frontier = {}, [], list(model.inputs_of(start))
    while frontier:
        name = frontier.pop(0)
        op = model[name]
        if isinstance(op, (Input, LIF)):
            if name not in sources:
                sources.append(name)
        elif name not in synapse:
            if not isinstance(op, LINEAR_OPS):
                _refuse_type(model, op)
            synapse[name] = op
            frontier += model.inputs_of(name)
    order = {op.name: i for i, op in enumerate(model.ops)}
    return (sorted(synapse.values(), key=lambda op: order[op.name]),
            sorted(sources, key=order.__getitem__))


def _layer(model, lif, synapse, sources, previous, types):
    """The :class:`SpikingDense` of ``lif``, whose synapse ops ``synapse`` read the spiking
    ops ``sources``; ``previous``: the layer before it (or the input)."""
    if not synapse:
        raise UnsupportedError(f"{lif.where}: reads spikes directly; the accelerator runs a "
                               f"synapse before every lif op")
    if previous.name not in sources:
        raise UnsupportedError(f"{lif.where}: reads {', '.join(map(repr, sources))}, not the "
                               f"layer before it ({previous.name!r}); the accelerator runs a "
                               f"chain of layers")
    aux = [s for s in sources if s != previous.name]
    where = next((op for op in reversed(synapse) if len(model.inputs_of(op.name)) > 1),
                 synapse[-1]).where
    if len(aux) > 1:
        raise UnsupportedError(f"{where}: adds inputs from {', '.join(map(repr, sources))}; "
                               f"the accelerator reads at most two spike sources per layer")
    if aux and isinstance(model[aux[0]], Input):
        raise UnsupportedError(f"{where}: adds inputs from {previous.name!r} and "
                               f"{aux[0]!r}; a residual connection from the model's input is "
                               f"not supported by the accelerator yet (its spikes are not "
                               f"kept after the first layer)")
    pool = _pooling_of(model, lif)
    output = model.inputs_of(pool.name if pool is not None else lif.name)[0]
    dense = model[output]
    if pool is not None:
        groups = pool_windows(pool, types[output].shape)
        unrolled = unroll(model, [previous] + [model[a] for a in aux], synapse, output, types)
        return SpikingDense(unrolled, lif, previous.name,
                            tuple(op.where for op in synapse) + (pool.where,),
                            aux[0] if aux else None, groups)
    if not aux and isinstance(dense, Dense) and all(
            isinstance(op, Flatten) for op in synapse if op is not dense):
        return SpikingDense(dense, lif, previous.name)
    recurrent = next((op for op in synapse if isinstance(op, Dense) and op.recurrent), None)
    if recurrent is not None:
        raise UnsupportedError(f"{recurrent.where}: a recurrent dense op must feed its lif op "
                               f"directly from its one spike source")
    return SpikingDense(unroll(model, [previous] + [model[a] for a in aux], synapse, output,
                               types),
                        lif, previous.name, tuple(op.where for op in synapse),
                        aux[0] if aux else None)
