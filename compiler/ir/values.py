"""The kinds of value that flow along the IR's edges.

Type inference (:meth:`hwgen.compiler.ir.graph.Model.infer`) assigns one of these to every op's
output; each op checks the kinds of its inputs. New ops (convolution, pooling, residual
adds, attention) extend the graph by consuming and producing these same kinds.
"""

from dataclasses import dataclass


class _Tensor:
    """What the tensor kinds share: a ``shape`` and its element count."""

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Spikes(_Tensor):
    """A binary spike tensor over all T steps: bit t of neuron k is its spike at step t."""

    shape: tuple

    def __str__(self):
        return f"spikes{list(self.shape)}"


@dataclass(frozen=True)
class Current(_Tensor):
    """A signed integer tensor per time step (synaptic input), ``bits`` wide at most."""

    shape: tuple
    bits: int

    def __str__(self):
        return f"current{list(self.shape)}:i{self.bits}"


@dataclass(frozen=True)
class Membrane(_Tensor):
    """Signed membrane potentials per time step (a leaky integrator's state), ``bits`` wide."""

    shape: tuple
    bits: int

    def __str__(self):
        return f"membrane{list(self.shape)}:i{self.bits}"


@dataclass(frozen=True)
class Prediction:
    """A readout: one class index per sample, out of ``classes``."""

    classes: int

    def __str__(self):
        return f"prediction[{self.classes}]"
