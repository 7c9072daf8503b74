"""Legalise a model for the accelerator: find the chain of layers it can run.

The accelerator runs a chain ``input -> layer -> layer ... -> readout``, each layer a
synapse fused with the LIF neurons it feeds, reading the spikes of the layer before it.
A layer's synapse is what lies between its spike source and its ``lif`` op: a single
``dense`` op (possibly recurrent, possibly behind a ``flatten``, which is a relabelling:
values keep their C-order numbering, docs/semantics.md 3a), or any graph of linear ops --
convolutions, sum pooling, flatten, dense layers and adds -- fed by that one source, which
:mod:`.unroll` composes into the one matrix the accelerator walks. Anything else is
refused here, at compile time, with a message naming the op, so that frontends can import
ops (max pooling, residual connections across layers, ...) the hardware does not run yet.
"""

from dataclasses import dataclass

from hwgen.errors import UnsupportedError
from ..ir import LIF, Dense, Flatten, Input, Readout
from .unroll import LINEAR_OPS, unroll


@dataclass(frozen=True)
class SpikingDense:
    """A fully-connected layer fused with its neurons: what one accelerator pass computes.
    ``source``: the op whose spikes it reads (the input or a LIF), past any flatten."""

    dense: Dense
    lif: LIF
    source: str = None
    unrolled: tuple = ()
    """The ops :mod:`.unroll` composed into ``dense``, as ``op.where`` (empty: ``dense``
    is the model's own op)."""

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
        return self.dense.outputs


@dataclass(frozen=True)
class LayerChain:
    input: Input
    layers: tuple
    readout: Readout = None


def legalise(model):
    """Return the model's :class:`LayerChain` or raise :class:`UnsupportedError`."""
    model.validate()
    types = model.infer()
    source = model.input
    layers, readout = [], None
    while True:
        consumers = model.consumers_of(source.name)
        if not consumers:
            break
        if len(consumers) == 1 and isinstance(model[consumers[0]], Readout) and layers:
            readout = model[consumers[0]]
            if readout.mode != "spike_count":
                raise UnsupportedError(f"{readout.where}: readout mode {readout.mode!r} is not "
                                       f"supported by the accelerator yet (it reads spike "
                                       f"counts)")
            break
        layer = _layer_from(model, source, types)
        layers.append(layer)
        source = layer.lif
    if not layers:
        raise UnsupportedError(f"model {model.name!r}: has no dense -> lif layer to run")
    return LayerChain(model.input, tuple(layers), readout)


def _spike_source(model, name):
    """The spiking op (input or lif) whose spikes reach ``name`` through linear ops: the
    first one found walking back along first inputs."""
    while not isinstance(model[name], (Input, LIF)) and model.inputs_of(name):
        name = model.inputs_of(name)[0]
    return name


def _layer_from(model, source, types):
    """The :class:`SpikingDense` that ``source``'s spikes feed: its synapse ops, found by
    walking forward from ``source`` through linear ops to the one ``lif`` op they feed."""
    consumers = model.consumers_of(source.name)
    if len(consumers) > 1 and not all(isinstance(model[c], LINEAR_OPS) for c in consumers):
        raise UnsupportedError(f"{source.where}: feeds {len(consumers)} ops "
                               f"({', '.join(consumers)}); the accelerator runs a single "
                               f"chain of layers")
    synapse, lifs, frontier = [], [], list(consumers)
    while frontier:
        op = model[frontier.pop(0)]
        if op in synapse or op in lifs:
            continue
        if isinstance(op, LIF) and synapse:
            lifs.append(op)
            continue
        if not isinstance(op, LINEAR_OPS):
            what = "after a dense layer " if synapse and isinstance(synapse[-1], Dense) else ""
            raise UnsupportedError(f"{op.where}: op type {op.type_name!r} {what}is not "
                                   f"supported by the accelerator yet (it runs layers of "
                                   f"linear synapse ops -> lif)")
        synapse.append(op)
        if not model.consumers_of(op.name):
            raise UnsupportedError(f"{op.where}: its output feeds no neuron; the accelerator "
                                   f"runs a single chain of layers")
        frontier += model.consumers_of(op.name)
    for op in synapse:
        for feed in model.inputs_of(op.name):
            if feed != source.name and model[feed] not in synapse:
                other = _spike_source(model, feed)
                raise UnsupportedError(
                    f"{op.where}: adds inputs from {source.name!r} and {other!r}; the "
                    f"accelerator reads one spike source per layer (residual connections "
                    f"across layers are not supported yet)")
    if len(lifs) != 1:
        raise UnsupportedError(f"{source.where}: its spikes feed {len(lifs)} lif ops "
                               f"({', '.join(l.name for l in lifs)}); the accelerator needs "
                               f"each layer to feed exactly one")
    (lif,) = lifs          # every synapse op feeds only synapse ops or lif, by the walk
    order = {op.name: i for i, op in enumerate(model.ops)}
    synapse.sort(key=lambda op: order[op.name])
    output = model.inputs_of(lif.name)[0]
    dense = model[output]
    plain = (isinstance(dense, Dense)
             and all(isinstance(op, Flatten) for op in synapse if op is not dense))
    if plain:
        return SpikingDense(dense, lif, source.name)
    recurrent = next((op for op in synapse if isinstance(op, Dense) and op.recurrent), None)
    if recurrent is not None:
        raise UnsupportedError(f"{recurrent.where}: a recurrent dense op must feed its lif op "
                               f"directly from its spike source")
    return SpikingDense(unroll(model, source, synapse, output, types), lif, source.name,
                        tuple(op.where for op in synapse))
