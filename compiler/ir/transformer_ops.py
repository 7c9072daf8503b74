"""The IR's spiking-transformer ops (docs/semantics.md, section 4d).

Token values are channels first, ``(features, positions...)``, numbered in C order, as a
convolution's; a head h of H owns the ``d = C / H`` contiguous features ``h d .. h d + d - 1``.
Token-wise linear layers are ``conv1d`` / ``conv2d`` ops with a kernel of 1 (ops.py), so the
ops here are only what a block computes between spikes and spikes: Hadamard masks, column
sums over tokens, spike x spike products and products with a per-step integer operand.
None of them has a tensor; every width is derived from the input types so that nothing can
overflow.
"""

from hwgen.errors import ModelError
from .ops import Op, _require_int, op_type
from .values import Current, Spikes
from .widths import MAX_IR_ACC_BITS


def _positions(shape):
    count = 1
    for d in shape[1:]:
        count *= d
    return count


def _count_bits(largest):
    """The narrowest signed width (at least 2) holding 0 .. ``largest``."""
    return max(2, int(largest).bit_length() + 1)


def _token_spikes(op, value, what):
    """``value`` must be spikes of (features, positions...)."""
    if not isinstance(value, Spikes):
        raise ModelError(f"{op.where}: its {what} must be spikes, got {value}")
    if len(value.shape) < 2:
        raise ModelError(f"{op.where}: its {what} must be tokens (features, positions...), "
                         f"got {value}")
    return value


def _check_inputs(op, inputs, count):
    if len(inputs) != count:
        raise ModelError(f"{op.where}: takes {count} input(s), got {len(inputs)}")


@op_type
class SpikeAnd(Op):
    """A Hadamard mask: the AND of two spike inputs, per element and step.

    The first input has shape S; the second S, or ``(S[0],)``: one spike per feature that
    masks that feature at every position (Spike-driven Transformer's ``Q AND mask``).
    """

    type_name = "spike_and"
    arity = 2

    def infer(self, inputs, timesteps):
        _check_inputs(self, inputs, 2)
        first, second = inputs
        for what, value in (("first input", first), ("second input", second)):
            if not isinstance(value, Spikes):
                raise ModelError(f"{self.where}: its {what} must be spikes, got {value}")
        if second.shape != first.shape and second.shape != first.shape[:1]:
            raise ModelError(f"{self.where}: its second input {second} must have the first's "
                             f"shape {list(first.shape)} or be one spike per feature "
                             f"[{first.shape[0]}]")
        return Spikes(first.shape)

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name)


@op_type
class TokenSum(Op):
    """Per feature and step, the number of positions (tokens) that spike: spikes
    (C, positions...) -> a current (C,) in 0 .. P, P the number of positions."""

    type_name = "token_sum"

    def infer(self, inputs, timesteps):
        _check_inputs(self, inputs, 1)
        source = _token_spikes(self, inputs[0], "input")
        return Current(source.shape[:1], _count_bits(_positions(source.shape)))

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name)


@op_type
class SpikeMatmul(Op):
    """Per head and step, ``K_h^T V_h``: M[h, i, j, t] = sum over positions p of
    K[h d + i, p, t] AND V[h d + j, p, t], for spikes K and V of one shape
    (C, positions...) and C = ``heads`` * d. Output: a current (heads, d, d) in 0 .. P."""

    type_name = "spike_matmul"
    arity = 2

    def __init__(self, name, heads=1):
        super().__init__(name)
        self.heads = _require_int(self.where, "heads", heads, 1)

    def attributes(self):
        return {"heads": self.heads}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name, attributes.get("heads"))

    def infer(self, inputs, timesteps):
        _check_inputs(self, inputs, 2)
        keys = _token_spikes(self, inputs[0], "first input (K)")
        values = _token_spikes(self, inputs[1], "second input (V)")
        if keys.shape != values.shape:
            raise ModelError(f"{self.where}: K {keys} and V {values} must have one shape")
        features = keys.shape[0]
        if features % self.heads:
            raise ModelError(f"{self.where}: {features} features do not split into "
                             f"heads={self.heads}")
        d = features // self.heads
        return Current((self.heads, d, d), _count_bits(_positions(keys.shape)))


@op_type
class CurrentMatmul(Op):
    """Spikes times per-step integer matrices, per head: O[h d + j, p, t] = sum over i of
    Q[h d + i, p, t] * M[h, i, j, t], for spikes Q (C, positions...) and a current M
    (H, d, d) with C = H d (a :class:`SpikeMatmul`'s output: Spikformer's Q (K^T V)).
    Output: a current of Q's shape, wide enough for d * the largest |M|."""

    type_name = "current_matmul"
    arity = 2

    def infer(self, inputs, timesteps):
        _check_inputs(self, inputs, 2)
        queries = _token_spikes(self, inputs[0], "first input (Q)")
        matrices = inputs[1]
        if not isinstance(matrices, Current) or len(matrices.shape) != 3 \
                or matrices.shape[1] != matrices.shape[2]:
            raise ModelError(f"{self.where}: its second input must be a current of per-head "
                             f"square matrices (heads, d, d), got {matrices}")
        heads, d = matrices.shape[:2]
        if queries.shape[0] != heads * d:
            raise ModelError(f"{self.where}: Q has {queries.shape[0]} features, but "
                             f"{heads} head(s) of {d} x {d} need {heads * d}")
        bound = d << (matrices.bits - 1)
        bits = _count_bits(bound)
        if bits > MAX_IR_ACC_BITS:
            raise ModelError(f"{self.where}: sums need {bits} bits, more than "
                             f"{MAX_IR_ACC_BITS}")
        return Current(queries.shape, bits)

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name)
