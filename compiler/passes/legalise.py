"""Legalise a model for the accelerator: find the chain of layers it can run.

The accelerator runs a chain ``input -> (dense -> lif)+ -> readout``: each fully-connected
synapse fused with the LIF neurons it feeds. Anything else is refused here, at compile
time, with a message naming the op, so that frontends can import ops (convolutions,
pooling, ...) the hardware does not run yet.
"""

from dataclasses import dataclass

from hwgen.errors import UnsupportedError
from ..ir import LIF, Dense, Input, Readout


@dataclass(frozen=True)
class SpikingDense:
    """A fully-connected layer fused with its neurons: what one accelerator pass computes."""

    dense: Dense
    lif: LIF

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
    if len(source.shape) != 1:
        raise UnsupportedError(f"{source.where}: the accelerator takes 1-D inputs, got shape "
                               f"{source.shape}")
    layers, readout, current = [], None, source
    while True:
        consumers = model.consumers_of(current.name)
        if not consumers:
            break
        if len(consumers) > 1:
            raise UnsupportedError(f"{current.where}: feeds {len(consumers)} ops "
                                   f"({', '.join(consumers)}); the accelerator runs a single "
                                   f"chain of layers")
        op = model[consumers[0]]
        if isinstance(op, Dense) and not isinstance(current, Dense):
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
            layers.append(SpikingDense(op, lif))
            current = lif
        elif isinstance(op, Readout) and layers:
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
