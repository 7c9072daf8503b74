"""The IR's operations.

An op knows its attributes (JSON-serialisable), its integer tensors, how to check itself
and how to type its output from its inputs' types. It does not know how it is computed
(that is :mod:`hwgen.compiler.ir.reference`) or mapped onto hardware (that is :mod:`hwgen.compiler.scheduler`).

To add an op: subclass :class:`Op`, give it a unique ``type_name``, implement
``attributes``/``tensors``/``from_parts``/``infer``, and register it with :func:`op_type`.
The native format and the graph pick it up from the registry.
"""

import numpy as np

from hwgen.errors import ModelError
from .neuron import FIRE_MODES, ORDERS, RESET_MODES, SYNAPSE_ROUNDINGS, Leak, signed_range
from .values import Current, Membrane, Prediction, Spikes
from .widths import MAX_IR_ACC_BITS, MAX_V_BITS, MAX_WEIGHT_BITS, MIN_BITS

OP_TYPES = {}


def op_type(cls):
    """Register an :class:`Op` subclass under its ``type_name``."""
    if cls.type_name in OP_TYPES:
        raise ValueError(f"op type {cls.type_name!r} registered twice")
    OP_TYPES[cls.type_name] = cls
    return cls


def _require_int(where, name, value, lo=None, hi=None):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ModelError(f"{where}: {name} must be an integer, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise ModelError(f"{where}: {name} = {value} must be {bounds}")
    return int(value)


def _require_choice(where, name, value, choices):
    if value not in choices:
        raise ModelError(f"{where}: {name} {value!r} is not one of {', '.join(choices)}")
    return value


_TENSOR_LIMIT = 1 << (MAX_IR_ACC_BITS - 1)


def _integer_tensor(where, name, array, shape):
    array = np.asarray(array)
    if array.dtype.kind in "iuf" and array.size and np.all(np.isfinite(array)):
        # No IR value is wider than the widest sum; checking here, before the int64 cast
        # (which wraps uint64) and before any np.abs (which overflows at INT64_MIN), keeps
        # every later bound computation exact.
        low, high = array.min(), array.max()
        if int(low) < -_TENSOR_LIMIT or int(high) > _TENSOR_LIMIT:
            bad = int(low) if int(low) < -_TENSOR_LIMIT else int(high)
            raise ModelError(f"{where}: {name} value {bad} is beyond +-2**{MAX_IR_ACC_BITS - 1}, "
                             f"more than any IR value can hold")
    if array.dtype.kind not in "iu":
        if array.dtype.kind == "f" and array.size and np.all(np.isfinite(array)) \
                and np.array_equal(array, np.round(array)):
            array = array.astype(np.int64)
        elif array.size == 0:
            array = array.astype(np.int64)
        else:
            raise ModelError(f"{where}: {name} must hold integers (dtype {array.dtype}); "
                             f"quantize the model first")
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise ModelError(f"{where}: {name} has shape {tuple(array.shape)}, expected {tuple(shape)}")
    return array.astype(np.int64)


def _check_fits(where, name, array, bits):
    lo, hi = signed_range(bits)
    if array.size and (array.min() < lo or array.max() > hi):
        bad = array.min() if array.min() < lo else array.max()
        raise ModelError(f"{where}: {name} value {int(bad)} does not fit in {bits} signed bits "
                         f"[{lo}, {hi}]")


class Op:
    """Base class of IR operations. ``name`` is unique within a model."""

    type_name = None
    arity = 1
    required_tensors = ()
    optional_tensors = ()

    def __init__(self, name):
        if not isinstance(name, str) or not name:
            raise ModelError(f"op name must be a non-empty string, got {name!r}")
        self.name = name

    @property
    def where(self):
        return f"{self.type_name} {self.name!r}"

    def attributes(self):
        """JSON-serialisable attributes (no tensors)."""
        return {}

    def tensors(self):
        """Integer tensors by name."""
        return {}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        raise NotImplementedError

    def infer(self, inputs, timesteps):
        """Check this op against its input value types and return its output type."""
        raise NotImplementedError

    def _expect_inputs(self, inputs, kind):
        if len(inputs) != self.arity:
            raise ModelError(f"{self.where}: takes {self.arity} input(s), got {len(inputs)}")
        kinds = kind if isinstance(kind, tuple) else (kind,)
        for value in inputs:
            if not isinstance(value, kinds):
                wanted = " or ".join(k.__name__.lower() for k in kinds)
                raise ModelError(f"{self.where}: expects {wanted} input, got {value}")

    def __eq__(self, other):
        if type(other) is not type(self) or other.name != self.name:
            return False
        if other.attributes() != self.attributes():
            return False
        mine, theirs = self.tensors(), other.tensors()
        return mine.keys() == theirs.keys() and all(
            mine[k].dtype == theirs[k].dtype and np.array_equal(mine[k], theirs[k]) for k in mine)

    def __hash__(self):
        return hash((self.type_name, self.name))

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


@op_type
class Input(Op):
    """The network input.

    ``encoding`` is ``"spikes"`` (the user supplies T-step binary spike trains) or ``"if"``
    (the user supplies unsigned integers 0..``threshold`` and the integrate-and-fire encoder
    of docs/semantics.md turns each into a spike train).
    """

    type_name = "input"
    arity = 0
    ENCODINGS = ("spikes", "if")

    def __init__(self, name, shape, encoding="spikes", threshold=None):
        super().__init__(name)
        if isinstance(shape, int):
            shape = (shape,)
        self.shape = tuple(_require_int(self.where, "shape", d, 1) for d in shape)
        if not self.shape:
            raise ModelError(f"{self.where}: shape must have at least one dimension")
        self.encoding = _require_choice(self.where, "encoding", encoding, self.ENCODINGS)
        if encoding == "if":
            self.threshold = _require_int(self.where, "encoder threshold", threshold, 1, 1 << 16)
        elif threshold is not None:
            raise ModelError(f"{self.where}: a threshold only applies to the 'if' encoding")
        else:
            self.threshold = None

    def attributes(self):
        attributes = {"shape": list(self.shape), "encoding": self.encoding}
        if self.encoding == "if":
            attributes["threshold"] = self.threshold
        return attributes

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name, attributes.get("shape"), attributes.get("encoding"),
                   attributes.get("threshold"))

    def infer(self, inputs, timesteps):
        self._expect_inputs(inputs, object)
        return Spikes(self.shape)


class _Synapse(Op):
    """What the weighted ops share: a ``weight`` tensor and an optional ``bias``."""

    def tensors(self):
        tensors = {"weight": self.weight}
        if self.bias is not None:
            tensors["bias"] = self.bias
        return tensors


@op_type
class Dense(_Synapse):
    """A fully-connected synapse: current[t, n] = sum_k weight[n, k] * spikes[t, k] + bias[n].

    ``weight`` has shape (outputs, inputs) as in PyTorch and NIR. ``weight_bits`` is the
    signed width of the weights; ``acc_bits`` the signed width of the accumulator, which
    must hold sum_k |weight[n, k]| + |bias[n]| for every n, so the sum can never overflow.

    ``recurrent``: the synapse also takes the spikes of the neurons it feeds, one step
    late (docs/semantics.md, section 4c). ``weight`` is then (outputs, inputs + outputs):
    its last ``outputs`` columns weigh the feeding op's own spikes of step t-1, and its
    input is only the first ``inputs - outputs`` positions. Its one consumer must be a
    ``lif`` op of ``outputs`` neurons (:meth:`~hwgen.compiler.ir.graph.Model.infer`).
    """

    type_name = "dense"
    required_tensors = ("weight",)
    optional_tensors = ("bias",)

    def __init__(self, name, weight, bias=None, *, weight_bits, acc_bits, recurrent=False):
        super().__init__(name)
        if not isinstance(recurrent, (bool, np.bool_)):
            raise ModelError(f"{self.where}: recurrent must be true or false, got {recurrent!r}")
        self.recurrent = bool(recurrent)
        self.weight_bits = _require_int(self.where, "weight_bits", weight_bits, MIN_BITS,
                                        MAX_WEIGHT_BITS)
        self.acc_bits = _require_int(self.where, "acc_bits", acc_bits, MIN_BITS,
                                     MAX_IR_ACC_BITS)
        weight = np.asarray(weight)
        if weight.ndim != 2:
            raise ModelError(f"{self.where}: weight must be a 2-D (outputs, inputs) matrix, "
                             f"got shape {weight.shape}")
        self.weight = _integer_tensor(self.where, "weight", weight, None)
        _check_fits(self.where, "weight", self.weight, self.weight_bits)
        if self.recurrent and self.weight.shape[1] < self.weight.shape[0]:
            raise ModelError(f"{self.where}: a recurrent weight is (outputs, inputs + "
                             f"outputs); {self.weight.shape} has fewer columns than rows")
        if bias is not None:
            self.bias = _integer_tensor(self.where, "bias", bias, (self.weight.shape[0],))
        else:
            self.bias = None
        bound = self.accumulator_bound()
        lo, hi = signed_range(self.acc_bits)
        if bound > hi:
            need = int(bound).bit_length() + 1
            raise ModelError(f"{self.where}: sums can reach {bound} in magnitude, which overflows "
                             f"acc_bits={self.acc_bits}; it needs {need} bits")

    @property
    def outputs(self):
        return self.weight.shape[0]

    @property
    def inputs(self):
        """Columns of the weight: the input positions the accelerator walks (with a
        recurrent synapse, the fed neurons' own spikes of the previous step included)."""
        return self.weight.shape[1]

    @property
    def feedforward_inputs(self):
        """Neurons of the op feeding this synapse (``inputs`` less the recurrent ones)."""
        return self.inputs - self.outputs if self.recurrent else self.inputs

    @property
    def feedforward_weight(self):
        return self.weight[:, :self.feedforward_inputs]

    @property
    def recurrent_weight(self):
        """(outputs, outputs): weight[n, j] of neuron j's spike at step t-1 into neuron n;
        None for a feed-forward synapse."""
        return self.weight[:, self.feedforward_inputs:] if self.recurrent else None

    def row_bounds(self):
        """Per output, sum |w| + |bias|: the largest magnitude its sum can reach (the
        weight dense or, unrolled, scipy.sparse)."""
        bound = np.asarray(abs(self.weight).sum(axis=1)).reshape(-1)
        if self.bias is not None:
            bound = bound + np.abs(self.bias)
        return bound

    def accumulator_bound(self):
        """max over outputs of :meth:`row_bounds`."""
        bound = self.row_bounds()
        return int(bound.max()) if bound.size else 0

    def attributes(self):
        # "recurrent" only when set: a feed-forward op's JSON is what it was before.
        return {"weight_bits": self.weight_bits, "acc_bits": self.acc_bits,
                **({"recurrent": True} if self.recurrent else {})}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name, tensors["weight"], tensors.get("bias"),
                   weight_bits=attributes.get("weight_bits"), acc_bits=attributes.get("acc_bits"),
                   recurrent=attributes.get("recurrent", False))

    def infer(self, inputs, timesteps):
        # An integer current (a spike add's or a sum pool's output) is weighted like a spike
        # count (docs/semantics.md 3b); the recurrent columns weigh spikes, so a recurrent
        # synapse reads spikes only.
        self._expect_inputs(inputs, Spikes if self.recurrent else (Spikes, Current))
        (source,) = inputs
        if len(source.shape) != 1:
            raise ModelError(f"{self.where}: input must be 1-D, got {source}; "
                             f"flatten it first")
        if source.shape[0] != self.feedforward_inputs:
            recurrent = (f" (and {self.outputs} recurrent)" if self.recurrent else "")
            raise ModelError(f"{self.where}: weight expects {self.feedforward_inputs} "
                             f"inputs{recurrent}, but its input has {source.shape[0]}")
        if isinstance(source, Current):
            column = np.abs(self.weight).sum(axis=1) * _magnitude(source)
            if self.bias is not None:
                column = column + np.abs(self.bias)
            bound = int(column.max()) if column.size else 0
            if bound > signed_range(self.acc_bits)[1]:
                raise ModelError(f"{self.where}: sums of its {source} input can reach {bound} "
                                 f"in magnitude, which overflows acc_bits={self.acc_bits}; it "
                                 f"needs {bound.bit_length() + 1} bits")
        return Current((self.outputs,), self.acc_bits)


@op_type
class LIF(Op):
    """Leaky integrate-and-fire neurons with integer state (docs/semantics.md, section 3).

    ``threshold`` is per neuron, in [0, 2**(v_bits-1) - 1]; ``leak`` a :class:`Leak`;
    ``fire``, ``reset`` and ``order`` are one of :data:`FIRE_MODES`, :data:`RESET_MODES`,
    :data:`ORDERS`; the membrane is a ``v_bits`` signed integer that saturates.
    """

    type_name = "lif"
    required_tensors = ("threshold",)

    def __init__(self, name, threshold, *, leak=Leak(), fire="ge", reset="subtract",
                 order="same_step", v_bits, synapse=None, i_bits=None,
                 synapse_rounding=None):
        super().__init__(name)
        self.v_bits = _require_int(self.where, "v_bits", v_bits, MIN_BITS, MAX_V_BITS)
        if not isinstance(leak, Leak):
            raise ModelError(f"{self.where}: leak must be a Leak, got {leak!r}")
        leak.check(self.where, self.v_bits)
        self.leak = leak
        self.synapse, self.i_bits, self.synapse_rounding = _synapse(
            self.where, synapse, i_bits, synapse_rounding)
        self.fire = _require_choice(self.where, "fire", fire, FIRE_MODES)
        self.reset = _require_choice(self.where, "reset", reset, RESET_MODES)
        self.order = _require_choice(self.where, "order", order, ORDERS)
        threshold = np.asarray(threshold)
        if threshold.ndim != 1:
            raise ModelError(f"{self.where}: threshold must be a 1-D per-neuron array, "
                             f"got shape {threshold.shape}")
        self.threshold = _integer_tensor(self.where, "threshold", threshold, None)
        lo, hi = signed_range(self.v_bits)
        if self.threshold.size and (self.threshold.min() < 0 or self.threshold.max() > hi):
            bad = int(self.threshold.min() if self.threshold.min() < 0 else self.threshold.max())
            raise ModelError(f"{self.where}: threshold {bad} must be between 0 and {hi} "
                             f"(v_bits={self.v_bits})")
        leak.check_neurons(self.where, self.size)

    @property
    def size(self):
        return self.threshold.shape[0]

    @property
    def current_based(self):
        """True if a synaptic current state filters the input (docs/semantics.md 4b)."""
        return self.synapse is not None

    def attributes(self):
        return {"leak": self.leak.to_json(), "fire": self.fire, "reset": self.reset,
                "order": self.order, "v_bits": self.v_bits, **_synapse_attributes(self)}

    def tensors(self):
        return {"threshold": self.threshold}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        where = f"{cls.type_name} {name!r}"
        return cls(name, tensors["threshold"],
                   leak=Leak.from_json(attributes.get("leak"), where),
                   fire=attributes.get("fire"), reset=attributes.get("reset"),
                   order=attributes.get("order"), v_bits=attributes.get("v_bits"),
                   **_synapse_parts(where, attributes))

    def infer(self, inputs, timesteps):
        self._expect_inputs(inputs, Current)
        (source,) = inputs
        if source.size != self.size:
            raise ModelError(f"{self.where}: has {self.size} neurons but its input is {source}")
        # Neurons of a multi-dimensional current (a convolution's channels x positions) are
        # numbered in C order, as the threshold tensor lists them.
        return Spikes(source.shape)


def _synapse(where, synapse, i_bits, rounding):
    """(synapse, i_bits, synapse_rounding) checked: a current-based neuron has a synapse
    and i_bits (its rounding defaults to ``separate``), a voltage-based one none of them."""
    if synapse is None:
        for name, value in (("i_bits", i_bits), ("synapse_rounding", rounding)):
            if value is not None:
                raise ModelError(f"{where}: {name} {value!r} is given without a synapse "
                                 f"leak; only a current-based neuron has a synaptic current")
        return None, None, None
    if not isinstance(synapse, Leak):
        raise ModelError(f"{where}: synapse must be a Leak, got {synapse!r}")
    if i_bits is None:
        raise ModelError(f"{where}: a current-based neuron (synapse given) needs i_bits, the "
                         f"width of its synaptic current")
    i_bits = _require_int(where, "i_bits", i_bits, MIN_BITS, MAX_V_BITS)
    synapse.check(f"{where}: synapse", i_bits, state="synaptic current")
    rounding = _require_choice(where, "synapse_rounding", rounding or "separate",
                               SYNAPSE_ROUNDINGS)
    return synapse, i_bits, rounding


def _synapse_attributes(op):
    """The synapse attributes, present only for a current-based neuron (so a voltage-based
    op's JSON is what it was before current-based neurons existed)."""
    if op.synapse is None:
        return {}
    return {"synapse": op.synapse.to_json(), "i_bits": op.i_bits,
            "synapse_rounding": op.synapse_rounding}


def _synapse_parts(where, attributes):
    synapse = attributes.get("synapse")
    return {"synapse": None if synapse is None else Leak.from_json(synapse, f"{where}: synapse"),
            "i_bits": attributes.get("i_bits"),
            "synapse_rounding": attributes.get("synapse_rounding")}


@op_type
class Readout(Op):
    """Turns the output layer into a class per sample.

    ``spike_count``: the class whose neuron spiked most often over the T steps (input:
    spikes). ``final_membrane``: the class whose membrane is largest after the last step
    (input: a leaky integrator's membrane). Ties go to the lowest index.
    """

    type_name = "readout"
    MODES = ("spike_count", "final_membrane")
    _INPUT = {"spike_count": Spikes, "final_membrane": Membrane}

    def __init__(self, name, mode="spike_count"):
        super().__init__(name)
        self.mode = _require_choice(self.where, "mode", mode, self.MODES)

    def attributes(self):
        return {"mode": self.mode}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name, attributes.get("mode"))

    def infer(self, inputs, timesteps):
        self._expect_inputs(inputs, self._INPUT[self.mode])
        (source,) = inputs
        if len(source.shape) != 1:
            raise ModelError(f"{self.where}: input must be 1-D, got {source}")
        return Prediction(source.shape[0])


def _int_tuple(where, name, value, dims, lo):
    """An int or a sequence of ``dims`` ints, each at least ``lo``, as a tuple."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,) * dims
    if not isinstance(value, (list, tuple)) or len(value) != dims:
        raise ModelError(f"{where}: {name} must be an integer or a list of {dims}, got {value!r}")
    return tuple(_require_int(where, name, v, lo) for v in value)


def _accepts_spikes_or_current(op, inputs):
    if len(inputs) != 1:
        raise ModelError(f"{op.where}: takes 1 input(s), got {len(inputs)}")
    (source,) = inputs
    if not isinstance(source, (Spikes, Current)):
        raise ModelError(f"{op.where}: expects spikes or current input, got {source}")
    return source


def _magnitude(source):
    """The largest magnitude one element of ``source`` can have: 1 for a spike."""
    return 1 if isinstance(source, Spikes) else 1 << (source.bits - 1)


class _Conv(_Synapse):
    """Shared by :class:`Conv1d` and :class:`Conv2d`: an integer convolution, PyTorch/NIR style.

    ``weight`` is (out_channels, in_channels / groups, *kernel); ``bias`` (out_channels,)
    is added at every position and step. Zero padding of ``padding`` elements on both sides
    of each spatial dimension; ``stride`` and ``dilation`` as in PyTorch. Like Dense, the
    accumulator must hold every sum: max over output channels of
    sum |weight[c]| * (largest input magnitude) + |bias[c]|, checked against the input it
    gets (a spike is 1; a current of b bits up to 2**(b-1)).
    """

    dims = None
    required_tensors = ("weight",)
    optional_tensors = ("bias",)

    def __init__(self, name, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
                 weight_bits, acc_bits):
        super().__init__(name)
        self.weight_bits = _require_int(self.where, "weight_bits", weight_bits, MIN_BITS,
                                        MAX_WEIGHT_BITS)
        self.acc_bits = _require_int(self.where, "acc_bits", acc_bits, MIN_BITS,
                                     MAX_IR_ACC_BITS)
        weight = np.asarray(weight)
        if weight.ndim != self.dims + 2:
            raise ModelError(f"{self.where}: weight must be {self.dims + 2}-D (out_channels, "
                             f"in_channels/groups, kernel...), got shape {weight.shape}")
        self.weight = _integer_tensor(self.where, "weight", weight, None)
        _check_fits(self.where, "weight", self.weight, self.weight_bits)
        self.groups = _require_int(self.where, "groups", groups, 1)
        if self.out_channels % self.groups:
            raise ModelError(f"{self.where}: {self.out_channels} output channels are not "
                             f"divisible by groups={self.groups}")
        self.stride = _int_tuple(self.where, "stride", stride, self.dims, 1)
        self.padding = _int_tuple(self.where, "padding", padding, self.dims, 0)
        self.dilation = _int_tuple(self.where, "dilation", dilation, self.dims, 1)
        if bias is not None:
            self.bias = _integer_tensor(self.where, "bias", bias, (self.out_channels,))
        else:
            self.bias = None

    @property
    def out_channels(self):
        return self.weight.shape[0]

    @property
    def in_channels(self):
        return self.weight.shape[1] * self.groups

    @property
    def kernel(self):
        return tuple(self.weight.shape[2:])

    def output_spatial(self, spatial):
        return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in zip(
            spatial, self.padding, self.dilation, self.kernel, self.stride))

    def accumulator_bound(self, input_magnitude=1):
        """max over output channels of sum |w| * input_magnitude + |bias|."""
        per_channel = np.abs(self.weight).reshape(self.out_channels, -1).sum(axis=1)
        per_channel = per_channel * input_magnitude
        if self.bias is not None:
            per_channel = per_channel + np.abs(self.bias)
        return int(per_channel.max()) if per_channel.size else 0

    def attributes(self):
        return {"weight_bits": self.weight_bits, "acc_bits": self.acc_bits,
                "stride": list(self.stride), "padding": list(self.padding),
                "dilation": list(self.dilation), "groups": self.groups}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name, tensors["weight"], tensors.get("bias"),
                   stride=attributes.get("stride"), padding=attributes.get("padding"),
                   dilation=attributes.get("dilation"), groups=attributes.get("groups"),
                   weight_bits=attributes.get("weight_bits"), acc_bits=attributes.get("acc_bits"))

    def infer(self, inputs, timesteps):
        source = _accepts_spikes_or_current(self, inputs)
        if len(source.shape) != self.dims + 1:
            raise ModelError(f"{self.where}: input must be (channels, {self.dims} spatial "
                             f"dimension(s)), got {source}")
        if source.shape[0] != self.in_channels:
            raise ModelError(f"{self.where}: weight expects {self.in_channels} input channels, "
                             f"but its input has {source.shape[0]}")
        spatial = self.output_spatial(source.shape[1:])
        if min(spatial) < 1:
            raise ModelError(f"{self.where}: kernel {list(self.kernel)} does not fit the "
                             f"input {source}")
        bound = self.accumulator_bound(_magnitude(source))
        if bound > signed_range(self.acc_bits)[1]:
            raise ModelError(f"{self.where}: sums can reach {bound} in magnitude, which overflows "
                             f"acc_bits={self.acc_bits}; it needs {bound.bit_length() + 1} bits")
        return Current((self.out_channels, *spatial), self.acc_bits)


@op_type
class Conv1d(_Conv):
    """A 1-D convolution over (channels, length) inputs. See :class:`_Conv`."""

    type_name = "conv1d"
    dims = 1


@op_type
class Conv2d(_Conv):
    """A 2-D convolution over (channels, height, width) inputs. See :class:`_Conv`."""

    type_name = "conv2d"
    dims = 2


class _Pool2d(Op):
    """What the 2-d window pools share: ``kernel``, ``stride`` (default: the kernel) and
    ``padding``, PyTorch's output size, and the (channels, height, width) input check."""

    def __init__(self, name, kernel, stride=None, padding=0):
        super().__init__(name)
        self.kernel = _int_tuple(self.where, "kernel", kernel, 2, 1)
        self.stride = _int_tuple(self.where, "stride", self.kernel if stride is None else stride,
                                 2, 1)
        self.padding = _int_tuple(self.where, "padding", padding, 2, 0)

    def output_spatial(self, spatial):
        return tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip(
            spatial, self.padding, self.kernel, self.stride))

    def attributes(self):
        return {"kernel": list(self.kernel), "stride": list(self.stride),
                "padding": list(self.padding)}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name, attributes.get("kernel"), attributes.get("stride"),
                   attributes.get("padding"))

    def _pooled(self, inputs):
        """(the input's value type, the output's (channels, height, width))."""
        source = _accepts_spikes_or_current(self, inputs)
        if len(source.shape) != 3:
            raise ModelError(f"{self.where}: input must be (channels, height, width), "
                             f"got {source}")
        spatial = self.output_spatial(source.shape[1:])
        if min(spatial) < 1:
            raise ModelError(f"{self.where}: kernel {list(self.kernel)} does not fit the "
                             f"input {source}")
        return source, (source.shape[0], *spatial)


@op_type
class SumPool2d(_Pool2d):
    """Sum of each ``kernel`` window (zero padding), per channel: exact, no division.

    Input: spikes or a current (channels, height, width); output: a current whose width
    is derived from the input's so the sum can never overflow. An average pool is a sum
    pool whose 1 / (kh * kw) the frontend folds into the next layer's scale.
    """

    type_name = "sum_pool2d"

    def output_bits(self, source):
        window = self.kernel[0] * self.kernel[1]
        if isinstance(source, Spikes):
            return window.bit_length() + 1
        return source.bits + window.bit_length()

    def infer(self, inputs, timesteps):
        source, shape = self._pooled(inputs)
        bits = self.output_bits(source)
        if bits > MAX_IR_ACC_BITS:
            raise ModelError(f"{self.where}: sums need {bits} bits, more than "
                             f"{MAX_IR_ACC_BITS}")
        return Current(shape, bits)


@op_type
class MaxPool2d(_Pool2d):
    """Maximum of each ``kernel`` window, per channel and step (docs/semantics.md 3a).

    Input: a current (the convolution's, before the neurons, as snnTorch's tutorials pool)
    or spikes (channels, height, width); output: the same kind, a current keeping its
    width (a max never overflows). Padded positions do not take part in a max (PyTorch
    pads with minus infinity); ``padding`` is at most half the kernel, so every window
    holds an input position.
    """

    type_name = "max_pool2d"

    def __init__(self, name, kernel, stride=None, padding=0):
        super().__init__(name, kernel, stride, padding)
        for p, k in zip(self.padding, self.kernel):
            if p > k // 2:
                raise ModelError(f"{self.where}: padding {list(self.padding)} must be at most "
                                 f"half the kernel {list(self.kernel)}, so that every window "
                                 f"holds an input position")

    def infer(self, inputs, timesteps):
        source, shape = self._pooled(inputs)
        return Spikes(shape) if isinstance(source, Spikes) else Current(shape, source.bits)


def value_range(value):
    """(lowest, highest) one element of spikes or a current can hold."""
    if isinstance(value, Spikes):
        return 0, 1
    return signed_range(value.bits)


@op_type
class Add(Op):
    """Element-wise sum of two or more spike or current inputs of one shape, every step
    (docs/semantics.md 3b): residual currents into one neuron op, or SEW-ResNet's spike
    add. The output is a current just wide enough for every sum (two spike inputs: 0..2
    in 3 bits), so it never overflows; a sum of spikes is a count, not a spike.
    """

    type_name = "add"
    arity = None

    def infer(self, inputs, timesteps):
        if len(inputs) < 2:
            raise ModelError(f"{self.where}: takes at least 2 inputs, got {len(inputs)}")
        for value in inputs:
            if not isinstance(value, (Spikes, Current)):
                raise ModelError(f"{self.where}: expects spikes or current inputs, got {value}")
        shapes = {tuple(value.shape) for value in inputs}
        if len(shapes) != 1:
            raise ModelError(f"{self.where}: its inputs have different shapes "
                             f"({', '.join(str(v) for v in inputs)}); an add sums elements "
                             f"of one shape")
        low = sum(value_range(value)[0] for value in inputs)
        high = sum(value_range(value)[1] for value in inputs)
        bits = max(MIN_BITS, max(high.bit_length(), (-low - 1).bit_length() if low < 0 else 0)
                   + 1)
        if bits > MAX_IR_ACC_BITS:
            raise ModelError(f"{self.where}: sums need {bits} bits, more than "
                             f"{MAX_IR_ACC_BITS}")
        return Current(inputs[0].shape, bits)

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name)


@op_type
class Flatten(Op):
    """Merges dimensions ``start_dim`` .. ``end_dim`` (inclusive; negative counts from the
    end) of its input into one. Data are unchanged: every value is numbered in C order
    before and after."""

    type_name = "flatten"

    def __init__(self, name, start_dim=0, end_dim=-1):
        super().__init__(name)
        self.start_dim = _require_int(self.where, "start_dim", start_dim)
        self.end_dim = _require_int(self.where, "end_dim", end_dim)

    def output_shape(self, shape):
        rank = len(shape)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < rank:
            raise ModelError(f"{self.where}: dimensions {self.start_dim}..{self.end_dim} do "
                             f"not fit an input of shape {tuple(shape)}")
        merged = 1
        for d in shape[start:end + 1]:
            merged *= d
        return (*shape[:start], merged, *shape[end + 1:])

    def attributes(self):
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        return cls(name, attributes.get("start_dim"), attributes.get("end_dim"))

    def infer(self, inputs, timesteps):
        source = _accepts_spikes_or_current(self, inputs)
        shape = self.output_shape(source.shape)
        if isinstance(source, Spikes):
            return Spikes(shape)
        return Current(shape, source.bits)


@op_type
class LI(Op):
    """A non-spiking leaky integrator, used as a readout: v = sat(L(v) + I[t]) every step.

    Its output is the membrane (docs/semantics.md, section 4); ``leak`` and ``v_bits`` are
    as for :class:`LIF`. It has no threshold and never resets.
    """

    type_name = "li"

    def __init__(self, name, *, leak=Leak(), v_bits, synapse=None, i_bits=None,
                 synapse_rounding=None):
        super().__init__(name)
        self.v_bits = _require_int(self.where, "v_bits", v_bits, MIN_BITS, MAX_V_BITS)
        if not isinstance(leak, Leak):
            raise ModelError(f"{self.where}: leak must be a Leak, got {leak!r}")
        leak.check(self.where, self.v_bits)
        self.leak = leak
        self.synapse, self.i_bits, self.synapse_rounding = _synapse(
            self.where, synapse, i_bits, synapse_rounding)

    @property
    def current_based(self):
        return self.synapse is not None

    def attributes(self):
        return {"leak": self.leak.to_json(), "v_bits": self.v_bits, **_synapse_attributes(self)}

    @classmethod
    def from_parts(cls, name, attributes, tensors):
        where = f"{cls.type_name} {name!r}"
        return cls(name, leak=Leak.from_json(attributes.get("leak"), where),
                   v_bits=attributes.get("v_bits"), **_synapse_parts(where, attributes))

    def infer(self, inputs, timesteps):
        self._expect_inputs(inputs, Current)
        (source,) = inputs
        self.leak.check_neurons(self.where, source.size)
        return Membrane(source.shape, self.v_bits)
