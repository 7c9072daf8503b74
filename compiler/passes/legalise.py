"""Legalise a model for the accelerator: find the chain of layers it can run.

The accelerator runs a chain ``input -> (dense -> lif)+ -> readout``: each fully-connected
synapse fused with the LIF neurons it feeds. A ``flatten`` anywhere in the chain (typically
right after a C x H x W input) is a relabelling: values keep their C-order numbering
(docs/semantics.md 3a), which is the order the accelerator streams them in, so it costs
nothing and is skipped. Anything else is refused here, at compile time, with a message
naming the op, so that frontends can import ops (convolutions, pooling, ...) the hardware
does not run yet.
"""

from dataclasses import dataclass

from hwgen.errors import UnsupportedError
from ..ir import LIF, Dense, Flatten, Input, Readout


@dataclass(frozen=True)
class SpikingDense:
    """A fully-connected layer fused with its neurons: what one accelerator pass computes.
    ``source``: the op whose spikes it reads (the input or a LIF), past any flatten."""

    dense: Dense
    lif: LIF
    source: str = None

    @property
    def name(self):
        return self.lif.name

    @property
    def inputs(self):
        return self.dense.inputs

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
    source = model.input
    layers, readout, current, spikes = [], None, source, source.name
    while True:
        consumers = model.consumers_of(current.name)
        if not consumers:
            break
        if len(consumers) > 1:
            raise UnsupportedError(f"{current.where}: feeds {len(consumers)} ops "
                                   f"({', '.join(consumers)}); the accelerator runs a single "
                                   f"chain of layers")
        op = model[consumers[0]]
        if isinstance(op, Flatten) and not isinstance(current, Dense):
            current = op
        elif isinstance(op, Dense) and not isinstance(current, Dense):
            following = model.consumers_of(op.name)
            if len(following) != 1:
                raise UnsupportedError(f"{op.where}: the accelerator needs each dense layer "
                                       f"to feed exactly one lif op, it feeds "
                                       f"{len(following)}")
            lif = model[following[0]]
            if not isinstance(lif, LIF):
                raise UnsupportedError(f"{lif.where}: op type {lif.type_name!r} after a dense "
                                       f"layer is not supported by the accelerator yet (it "
                                       f"runs dense -> lif chains)")
            layers.append(SpikingDense(op, lif, spikes))
            current, spikes = lif, lif.name
        elif isinstance(op, Readout) and layers and current is layers[-1].lif:
            if op.mode != "spike_count":
                raise UnsupportedError(f"{op.where}: readout mode {op.mode!r} is not supported "
                                       f"by the accelerator yet (it reads spike counts)")
            readout = op
            current = op
        else:
            raise UnsupportedError(f"{op.where}: op type {op.type_name!r} is not supported by "
                                   f"the accelerator yet (it runs dense -> lif chains)")
    if not layers:
        raise UnsupportedError(f"model {model.name!r}: has no dense -> lif layer to run")
    return LayerChain(source, tuple(layers), readout)
