"""The NIR frontend: a ``.nir`` file or an in-memory ``nir.NIRGraph`` -> a quantized IR Model.

NIR (the Neuromorphic Intermediate Representation) describes a network as continuous-time
node equations and stores no time step, no spike comparison detail beyond its own
definition, and -- from snnTorch -- not even the reset. This frontend

1. reads the graph node by node (:mod:`.nir_file`; nir's own reader refuses what real
   exporters write),
2. checks its structure (one Input, supported node types, no cycles but a neuron's
   recurrent synapse ``neuron -> Affine -> neuron``, which it merges with the neuron's
   feed-forward Affine into one recurrent layer; a node with several incoming edges reads
   their sum, an ``add`` op) and infers every shape along the edges, broadcasting scalar
   parameters,
3. translates each node into hwgen's terms (:mod:`hwgen.compiler.ir.floating`) using the source
   framework's conventions (:mod:`.conventions`) unless an option or the node's own
   ``hwgen.*`` metadata says otherwise, folding resistances, Scale nodes, average-pooling
   divisors and resting potentials into weights, biases and thresholds,
4. quantizes the result (:mod:`hwgen.compiler.passes.quantize`; integer-valued graphs are kept
   exactly).

Every assumption it made goes into ``model.metadata["frontend"]``, the quantization into
``model.metadata["quantization"]``; docs/frontends.md describes both. Errors are one line,
naming the file, the node and the problem.
"""

from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from hwgen.errors import ConfigError, FormatError, HwgenError, ModelError, UnsupportedError
from ..ir import FIRE_MODES, MAX_TIMESTEPS, ORDERS, RESET_MODES, SYNAPSE_ROUNDINGS
from ..ir.widths import MAX_IR_ACC_BITS
from ..ir.floating import (ROUNDINGS, FloatAdd, FloatConv, FloatDense, FloatFlatten,
                           FloatInput, FloatIntegrator, FloatMaxPool, FloatNetwork, FloatNeuron,
                           FloatReadout, FloatSumPool)
from ..passes.quantize import QuantizeOptions, quantize
from . import nir_file
from .conventions import SPIKE_FNS, framework

SUFFIX = ".nir"

SUPPORTED = {
    "Input": "input", "Output": "readout (spike count or final membrane)",
    "Affine": "dense", "Linear": "dense", "Scale": "folded into a neighbour",
    "Conv1d": "conv1d", "Conv2d": "conv2d",
    "SumPool2d": "sum_pool2d (max_pool2d with metadata hwgen.pool = 'max')",
    "AvgPool2d": "sum_pool2d, 1/(kh*kw) folded into the next layer", "Flatten": "flatten",
    "LIF": "lif", "IF": "lif (no leak)", "Threshold": "lif (beta 0, no reset)",
    "LI": "li (readout)", "I": "li (no leak, readout)",
    "CubaLIF": "lif with a synapse (current-based)",
    "CubaLI": "li with a synapse (current-based readout)",
}
"""NIR node types hwgen imports and what each becomes (docs/frontends.md has the table)."""

RECURRENT_NEURONS = ("LIF", "IF", "CubaLIF")
"""Spiking NIR neuron nodes whose output may come back to them through an Affine/Linear."""

REJECTED = {
    "Delay": "synaptic delays are not supported",
}

_MISSING = object()
METADATA_KEYS = ("hwgen.fire", "hwgen.reset", "hwgen.order", "hwgen.membrane_rounding",
                 "hwgen.synapse_rounding", "hwgen.encoding", "hwgen.encoder_threshold",
                 "hwgen.timesteps", "hwgen.pool")
"""Node / graph metadata the frontend honours (written by :mod:`.snntorch_export`)."""


SNAP_TOLERANCE = 1e-6


def _dyadic(x):
    """The nearest a / 2**16: every beta hwgen represents exactly is one."""
    return round(x * 65536) / 65536


@dataclass
class _Value:
    """What a NIR node outputs: carried by float layer ``layer``, of ``shape``, multiplied by
    ``gain`` (an array of ``shape``, or None for 1) that a consumer still has to absorb."""

    layer: str
    shape: tuple
    gain: np.ndarray = None
    node: str = None


def read(source):
    """(document, label, default model name) for a ``.nir`` path or a ``nir.NIRGraph``."""
    if isinstance(source, (str, Path)):
        return nir_file.read_file(source), str(source), Path(source).stem
    return nir_file.from_graph(source, "NIR graph"), "NIR graph", "nir_model"


def to_float(source, *, dt=None, source_framework="generic", timesteps=None, fire=None,
             reset=None, order=None, spike_fn=None, calibration=None, name=None):
    """The float network ``source`` stands for, and the frontend's report (what it assumed).

    Options as for :func:`load`. Errors name ``source``.
    """
    document, label, default_name = read(source)
    try:
        importer = _Importer(document, framework=framework(source_framework), dt=dt,
                             timesteps=timesteps, fire=fire, reset=reset, order=order,
                             spike_fn=spike_fn,
                             calibration=calibration)
        graph_name = document.metadata.get("name")
        network = importer.translate(name or (graph_name if isinstance(graph_name, str)
                                              and graph_name else default_name))
    except HwgenError as error:
        raise type(error)(f"{label}: {error}") from None
    network.metadata = {"source": {"format": "NIR",
                                   "file": Path(label).name if isinstance(source, (str, Path))
                                   else None,
                                   "nir_version": document.version,
                                   "graph_metadata": _json_safe(document.metadata)},
                        "frontend": importer.report()}
    return network


def load(source, *, dt=None, source_framework="generic", timesteps=None, fire=None,
         reset=None, order=None, spike_fn=None, weight_bits=None, v_bits=None, leak_form="multiply",
         leak_frac_bits=8, calibration=None, name=None):
    """Import ``source`` (a ``.nir`` path or a ``nir.NIRGraph``) as a quantized IR Model.

    ``dt``: the simulation step the graph's time constants assume (default: the source
    framework's). ``timesteps``: T (default: the graph's ``hwgen.timesteps`` metadata, else
    the calibration spike trains' length). ``fire``/``reset``/``order``: override what a
    NIR neuron means. ``spike_fn``: ``single`` or ``multi`` (Sinabs's MultiSpike, its
    default: layers that could emit several spikes in one step are refused).
    ``weight_bits``/``v_bits``/``leak_form``/``leak_frac_bits``: see
    :class:`~hwgen.compiler.passes.quantize.QuantizeOptions`. ``calibration``: inputs to choose
    scales on and measure float-vs-integer agreement with.
    """
    label = str(source) if isinstance(source, (str, Path)) else "NIR graph"
    try:
        options = QuantizeOptions(weight_bits, v_bits, leak_form, leak_frac_bits).check()
    except HwgenError as error:
        raise type(error)(f"{label}: {error}") from None
    network = to_float(source, dt=dt, source_framework=source_framework, timesteps=timesteps,
                       fire=fire, reset=reset, order=order, spike_fn=spike_fn,
                       calibration=calibration, name=name)
    try:
        return quantize(network, options, calibration)
    except HwgenError as error:
        raise type(error)(f"{label}: {error}") from None


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


_MAY_BE_INFINITE = ("tau", "r", "tau_mem", "tau_syn", "w_in")
_MAX_PARAMETER = float(1 << (MAX_IR_ACC_BITS - 1))


def _shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


class _Importer:
    def __init__(self, document, *, framework, dt, timesteps, fire, reset, order, spike_fn,
                 calibration):
        self.doc = document
        self.fw = framework
        if dt is not None and not dt > 0:
            raise ConfigError(f"--dt must be positive, got {dt}")
        self.dt = float(dt) if dt is not None else framework.dt
        self.dt_reason = "given (--dt)" if dt is not None else framework.dt_reason
        self.overrides = {"fire": fire, "reset": reset, "order": order}
        for key, choices in (("fire", FIRE_MODES), ("reset", RESET_MODES), ("order", ORDERS)):
            if self.overrides[key] is not None and self.overrides[key] not in choices:
                raise ConfigError(f"--{key} {self.overrides[key]!r} is not one of "
                                  f"{', '.join(choices)}")
        if spike_fn is not None and spike_fn not in SPIKE_FNS:
            raise ConfigError(f"--spike-fn {spike_fn!r} is not one of {', '.join(SPIKE_FNS)}")
        self.spike_fn = spike_fn or framework.spike_fn
        self.spike_fn_reason = ("--spike-fn option" if spike_fn is not None else
                                "Sinabs's default spike_fn is MultiSpike, and its NIR export "
                                "does not record the spike function"
                                if framework.spike_fn == "multi" else
                                f"{framework.name} neurons emit at most one spike per step")
        self.timesteps_option = timesteps
        self.time_dim = None
        self.calibration = calibration
        self.notes = []
        self.neurons = {}
        self.values = {}
        self.network = None

    # --- report -------------------------------------------------------------------------

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def report(self):
        return {"source_framework": self.fw.name, "dt": self.dt, "dt_source": self.dt_reason,
                "spike_fn": self.spike_fn, "spike_fn_source": self.spike_fn_reason,
                "timesteps": self.network.timesteps, "timesteps_source": self.timesteps_reason,
                "neurons": self.neurons, "assumptions": list(self.notes)}

    # --- structure ----------------------------------------------------------------------

    def translate(self, name):
        doc = self.doc
        for node in doc.nodes.values():
            if node.type in REJECTED:
                raise UnsupportedError(f"{node.where}: {REJECTED[node.type]}")
            if node.type not in SUPPORTED:
                raise UnsupportedError(f"{node.where}: NIR node type {node.type!r} is not "
                                       f"supported (hwgen reads {', '.join(SUPPORTED)})")
        if len(set(doc.edges)) != len(doc.edges):
            self.note("duplicate edges were ignored")
        graph = nx.DiGraph()
        graph.add_nodes_from(doc.nodes)
        graph.add_edges_from(doc.edges)
        self.graph = graph
        self.recurrent = self.find_recurrent(graph)
        if not nx.is_directed_acyclic_graph(graph):
            cycle = nx.find_cycle(graph)
            path = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
            raise UnsupportedError(f"recurrent connection {cycle[-1][0]!r} -> {cycle[-1][1]!r} "
                                   f"(cycle {path}); hwgen runs a recurrent connection only as "
                                   f"a spiking neuron node -> an Affine or Linear node that "
                                   f"feeds nothing else -> the same neuron node")
        inputs = [n for n in doc.nodes.values() if n.type == "Input"]
        if len(inputs) != 1:
            raise UnsupportedError(f"the graph has {len(inputs)} Input nodes; hwgen models "
                                   f"have exactly one")
        for node in doc.nodes.values():
            if node.name not in graph:            # a recurrent synapse, read with its neuron
                continue
            sources = list(graph.predecessors(node.name))
            if node.type == "Input" and sources:
                raise FormatError(f"{node.where}: an Input node cannot have incoming edges")
            if node.type != "Input" and not sources:
                raise FormatError(f"{node.where}: has no incoming edge; it is not connected to "
                                  f"the Input")
        position = {n: i for i, n in enumerate(doc.nodes)}
        order = list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))

        input_node = inputs[0]
        shape = self.input_shape(input_node)
        self.network = FloatNetwork(name, self.resolve_timesteps(shape))
        for node_name in order:
            node = doc.nodes[node_name]
            sources = sorted(graph.predecessors(node_name), key=position.__getitem__)
            if len(sources) > 1:
                value = self.sum_edges(node, sources)
            else:
                value = self.values.get(sources[0]) if sources else None
            handler = getattr(self, "_" + node.type.lower())
            if node_name in self.recurrent:
                self.merge_recurrent(node, value)
            self.values[node_name] = handler(node, value, shape if node is input_node else None)
            if node_name in self.recurrent:
                self.neurons[node_name]["recurrent_synapse"] = self.recurrent[node_name]
        self.check_spikes_per_step()
        for node_name in order:
            node = doc.nodes[node_name]
            if node.type in ("LIF", "IF", "Threshold", "LI", "I", "CubaLIF", "CubaLI") \
                    and not list(graph.successors(node_name)):
                self.note(f"{node.where} feeds no Output node: it is an output of the model, "
                          f"without a readout")
        return self.network

    def find_recurrent(self, graph):
        """{neuron node: its recurrent synapse node} for every cycle ``neuron -> Affine or
        Linear -> neuron`` whose synapse reads and feeds only that neuron; each such synapse
        is taken out of ``graph`` (:meth:`merge_recurrent` reads it with its neuron), so any
        cycle left is of another form, and refused."""
        found = {}
        for name, node in self.doc.nodes.items():
            if node.type not in ("Affine", "Linear"):
                continue
            sources, targets = list(graph.predecessors(name)), list(graph.successors(name))
            loops = [s for s in sources if s in targets]
            if not loops:
                continue
            neuron = self.doc.nodes[loops[0]]
            if len(sources) != 1 or len(targets) != 1:
                others = sorted((set(sources) | set(targets)) - {neuron.name})
                raise UnsupportedError(
                    f"{node.where}: takes the spikes of {neuron.name!r} back to it and also "
                    f"connects to {', '.join(map(repr, others))}; a recurrent synapse may "
                    f"read and feed only its own neuron node")
            if neuron.type not in RECURRENT_NEURONS:
                raise UnsupportedError(
                    f"{node.where}: feeds the output of {neuron.where} back to it; hwgen runs "
                    f"recurrent connections of spiking neurons only "
                    f"({', '.join(RECURRENT_NEURONS)})")
            if neuron.name in found:
                raise UnsupportedError(
                    f"{neuron.where}: has two recurrent synapses ({found[neuron.name]!r}, "
                    f"{name!r}); hwgen reads one per neuron node")
            found[neuron.name] = name
            graph.remove_node(name)
        return found

    def merge_recurrent(self, node, value):
        """Fold the recurrent synapse of neuron ``node`` into the feed-forward Affine/Linear
        feeding it: one recurrent FloatDense whose weight is [feed-forward | recurrent] and
        whose bias is the sum of both (NIR sums a node's incoming edges). NIR's value on the
        back edge at step t is the neuron's output of step t-1 (docs/frontends.md)."""
        synapse = self.doc.nodes[self.recurrent[node.name]]
        source = self.doc.nodes[self.source_name(node)]
        producer = self.network[value.layer]
        if not isinstance(producer, FloatDense) or value.gain is not None \
                or producer.name != source.name:
            raise UnsupportedError(
                f"{node.where}: takes its own spikes back through {synapse.name!r}, so its "
                f"other input must come straight from an Affine or Linear node; "
                f"{source.where} is not one (hwgen merges both into one recurrent layer)")
        n = int(np.prod(value.shape))
        weight = self.array(synapse, "weight")
        if weight.shape != (n, n):
            raise ModelError(f"{synapse.where}: a recurrent weight of {node.name!r}'s {n} "
                             f"neurons must be ({n}, {n}), got {_shape_text(weight.shape)}")
        bias = None
        if synapse.type == "Affine":
            bias = self.array(synapse, "bias", None)
            if bias is None:
                raise FormatError(f"{synapse.where}: missing parameter 'bias'")
            if bias.size == 1 and n != 1:
                bias = np.full(n, float(bias.reshape(-1)[0]))
            elif bias.shape != (n,):
                raise ModelError(f"{synapse.where}: bias has shape {_shape_text(bias.shape)}, "
                                 f"expected ({n},)")
        producer.weight = np.hstack([producer.weight, weight])
        if bias is not None:
            producer.bias = bias if producer.bias is None else producer.bias + bias
        producer.recurrent = True
        self.note(f"{synapse.where}: the cycle {node.name!r} -> {synapse.name!r} -> "
                  f"{node.name!r} is a recurrent connection: at step t it carries "
                  f"{node.name!r}'s spikes of step t-1 (none at step 0), as in snnTorch's "
                  f"RLeaky / RSynaptic; merged with {producer.name!r} into one recurrent "
                  f"dense layer{' (bias: the sum of both)' if bias is not None else ''}")

    def sum_edges(self, node, sources):
        """The value of a node with several incoming edges: NIR sums them element-wise, so
        an ``add`` layer of the sources' values (docs/semantics.md 3b). A gain still to be
        absorbed (a Scale, an AvgPool2d's divisor) carries over when every edge has the
        same; otherwise each is folded into its own synapse's weights first."""
        values = [self.values[name] for name in sources]
        if len({tuple(v.shape) for v in values}) != 1:
            found = ", ".join(f"{name!r} {_shape_text(v.shape)}" for name, v in zip(sources,
                                                                                   values))
            raise ModelError(f"{node.where}: its incoming edges carry different shapes "
                             f"({found}); NIR sums them element-wise")
        name = f"{node.name}.sum"
        if name in self.doc.nodes or name in self.network.layers:
            raise FormatError(f"{node.where}: the sum of its edges would be named {name!r}, "
                              f"which another node already is")
        gains = [np.ones(v.shape) if v.gain is None else v.gain for v in values]
        gain = values[0].gain
        if any(not np.array_equal(g, gains[0]) for g in gains):
            for source, value, g in zip(sources, values, gains):
                if np.all(g == 1):
                    continue
                producer = self.network[value.layer]
                shared = any(len(list(self.graph.successors(n))) != 1
                             for n in {source, value.layer} if n in self.graph)
                if not isinstance(producer, (FloatDense, FloatConv)) or shared:
                    raise UnsupportedError(
                        f"{node.where}: its incoming edges are scaled differently, and the "
                        f"one from {source!r} has no synapse of its own to fold its factor "
                        f"into")
                self.fold_rows(node, producer, g.reshape(-1), value.shape)
            gain = None
        self.network.add(FloatAdd(name=name, inputs=[v.layer for v in values],
                                  shape=values[0].shape))
        self.note(f"{node.where}: its {len(sources)} incoming edges "
                  f"({', '.join(map(repr, sources))}) are summed, as NIR defines, by an add "
                  f"op {name!r}")
        return _Value(name, values[0].shape, gain, sources[0])

    def max_input(self, layer):
        """Per neuron of ``layer``, the largest current one step can bring (every input
        that raises it at its largest), or None if hwgen cannot bound it."""
        producer = self.network[layer.inputs[0]]

        def largest(name):       # the largest value one element of ``name`` carries
            source = self.network[name]
            while isinstance(source, FloatFlatten):
                source = self.network[source.inputs[0]]
            if isinstance(source, (FloatInput, FloatNeuron)):
                return 1.0
            if isinstance(source, FloatSumPool):
                inner = largest(source.inputs[0])
                return None if inner is None else inner * source.kernel[0] * source.kernel[1]
            return None

        scale = largest(producer.inputs[0]) if isinstance(
            producer, (FloatDense, FloatConv, FloatSumPool)) else None
        if scale is None:
            return None
        if isinstance(producer, FloatSumPool):
            return np.full(layer.size, scale)
        positive = np.maximum(producer.weight, 0).reshape(producer.weight.shape[0], -1)
        bias = np.zeros(producer.weight.shape[0]) if producer.bias is None else producer.bias
        per_output = scale * positive.sum(axis=1) + np.maximum(bias, 0)
        return np.repeat(per_output, layer.size // per_output.size)

    def check_spikes_per_step(self):
        """Refuse (or note) neurons for which Sinabs's MultiSpike would differ from one spike.

        MultiSpike emits floor(h/theta) spikes and subtracts that many thresholds. When no
        step can bring more than theta (input at most theta and, after a reset, v < theta),
        h stays below 2*theta, so it emits at most one spike, exactly as hwgen's neuron.
        """
        if self.spike_fn != "multi":
            return
        for layer in self.network:
            if not isinstance(layer, FloatNeuron) or layer.reset == "none":
                continue
            node = self.doc.nodes[layer.name]
            if layer.alpha is not None:
                raise UnsupportedError(f"{node.where}: with {self.spike_fn_reason}, a step may "
                                       f"emit several spikes, and a current-based neuron's "
                                       f"input per step is not bounded here; pass --spike-fn "
                                       f"single if the model emits one spike per step")
            reach = self.max_input(layer)
            theta = np.asarray(layer.threshold, dtype=np.float64)
            if reach is None:
                raise UnsupportedError(f"{node.where}: with {self.spike_fn_reason}, a step may "
                                       f"emit several spikes, and hwgen cannot bound its input "
                                       f"to rule it out; pass --spike-fn single if the model "
                                       f"emits one spike per step")
            over = (theta <= 0) | (reach > theta * (1 + 1e-9) + 1e-12)
            if np.any(over):
                n = int(np.argmax(over))
                raise UnsupportedError(
                    f"{node.where}: Sinabs's MultiSpike emits floor(v/threshold) spikes per "
                    f"step ({self.spike_fn_reason}); neuron {n} can receive {reach[n]:g} in "
                    f"one step against threshold {theta[n]:g}, so it could need several spikes "
                    f"in a step, which hwgen's neurons cannot emit; pass --spike-fn single if "
                    f"the model used SingleSpike")
            self.note(f"{node.where}: no step can bring more than its threshold, so at most "
                      f"one spike per step: MultiSpike and SingleSpike agree exactly")

    def resolve_timesteps(self, shape):
        meta = self.doc.metadata.get("hwgen.timesteps")
        calibration = None if self.calibration is None else np.asarray(self.calibration)
        if self.timesteps_option is not None:
            T, self.timesteps_reason = self.timesteps_option, "given (--timesteps)"
        elif meta is not None:
            T, self.timesteps_reason = meta, "the graph's hwgen.timesteps metadata"
        elif calibration is not None and calibration.ndim == len(shape) + 2:
            T, self.timesteps_reason = calibration.shape[1], "the calibration spike trains"
        elif self.time_dim is not None:
            T, self.timesteps_reason = self.time_dim, "the time dimension of the Input shape"
        else:
            raise ConfigError("NIR stores no number of time steps; pass --timesteps")
        if not isinstance(T, (int, np.integer)) or isinstance(T, bool) \
                or not 1 <= T <= MAX_TIMESTEPS:
            raise ConfigError(f"timesteps must be an integer between 1 and {MAX_TIMESTEPS}, "
                              f"got {T!r}")
        return int(T)

    # --- parameters ---------------------------------------------------------------------

    def array(self, node, key, default=_MISSING):
        if key not in node.params or node.params[key] is None:
            if default is _MISSING:
                raise FormatError(f"{node.where}: missing parameter {key!r}")
            return default
        try:
            array = np.asarray(node.params[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise FormatError(f"{node.where}: parameter {key!r} is not numeric") from None
        if np.any(np.isnan(array)):
            raise FormatError(f"{node.where}: parameter {key!r} holds NaN")
        # An infinite time constant (and snnTorch's matching infinite r) means "no leak";
        # any other parameter must be a number the IR can hold once quantized, so that no
        # width computation later meets inf or a 998-bit "integer".
        finite = array[np.isfinite(array)] if key in _MAY_BE_INFINITE else array
        if finite.size and not np.all(np.isfinite(finite)):
            raise FormatError(f"{node.where}: parameter {key!r} is infinite")
        if finite.size and np.abs(finite).max() > _MAX_PARAMETER:
            raise FormatError(f"{node.where}: parameter {key!r} holds "
                              f"{float(np.abs(finite).max()):g}, beyond the +-2**47 any "
                              f"quantized value can hold")
        return array

    def ints(self, node, key, dims, default=_MISSING, minimum=0):
        value = node.params.get(key)
        if value is None:
            if default is _MISSING:
                raise FormatError(f"{node.where}: missing parameter {key!r}")
            value = default
        array = np.asarray(value)
        if array.dtype.kind not in "iuf" or not np.all(np.isfinite(array)) \
                or not np.array_equal(array, np.round(array)):
            raise FormatError(f"{node.where}: {key} must be integers, got {value!r}")
        values = [int(v) for v in array.reshape(-1)]
        if len(values) == 1:
            values *= dims
        if len(values) != dims or min(values) < minimum:
            raise FormatError(f"{node.where}: {key} must be {dims} integer(s) of at least "
                              f"{minimum}, got {values}")
        return tuple(values)

    def per_neuron(self, node, key, array, shape, broadcast):
        """``array`` as one value per neuron of ``shape`` (flattened), broadcasting a scalar."""
        size = int(np.prod(shape))
        if array.size == 1 and size != 1:
            broadcast.append(key)
            return np.full(size, float(array.reshape(-1)[0]))
        if array.size == size:
            if tuple(array.shape) != tuple(shape):
                self.note(f"{node.where}: {key} of shape {_shape_text(array.shape)} read as "
                          f"its input's {_shape_text(shape)}")
            return array.reshape(-1).astype(np.float64)
        raise ModelError(f"{node.where}: {key} has shape {_shape_text(array.shape)} "
                         f"({array.size} values), but its input carries {size} neurons "
                         f"{_shape_text(shape)}")

    def source_name(self, node):
        return next(iter(self.graph.predecessors(node.name)))

    def semantic(self, node, key, default, reason, choices):
        if self.overrides.get(key) is not None:
            return self.overrides[key], f"--{key} option"
        meta = node.metadata.get(f"hwgen.{key}")
        if meta is not None:
            if meta not in choices:
                raise FormatError(f"{node.where}: metadata hwgen.{key} = {meta!r} is not one of "
                                  f"{', '.join(choices)}")
            return meta, "node metadata"
        return default, reason

    # --- nodes --------------------------------------------------------------------------

    def input_shape(self, node):
        raw = node.params.get("shape")
        size = np.asarray(raw).size if raw is not None else 0
        if not size:
            raise FormatError(f"{node.where}: has no shape")
        shape = self.ints(node, "shape", size, minimum=1)
        consumers = [self.doc.nodes[n] for n in self.graph.successors(node.name)]
        if len(shape) >= 2 and consumers:
            rest = shape[1:]
            first = consumers[0]
            weight = np.asarray(first.params.get("weight", np.zeros((0, 0))))
            fits = ((first.type in ("Affine", "Linear") and len(rest) == 1
                     and weight.ndim == 2 and weight.shape[1] == rest[0])
                    or (first.type in ("Conv1d", "Conv2d") and weight.ndim == len(shape)
                        and weight.shape[1] * int(np.asarray(first.params.get("groups", 1)))
                        == rest[0]))
            if first.type == "Flatten" and shape[0] == 1:
                # Flattening every dimension gives the same vector with or without the
                # batch dimension snnTorch's tracing leaves in front.
                start, end = (int(np.asarray(first.params.get(k, d)).reshape(-1)[0])
                              for k, d in (("start_dim", 1), ("end_dim", -1)))
                fits = start in (0, -len(shape)) and end in (-1, len(shape) - 1)
            if fits and shape[0] == 1:
                self.note(f"{node.where}: shape {_shape_text(shape)} has a leading batch "
                          f"dimension of 1; dropped")
                return rest
            if fits and self.fw.name == "sinabs":
                # Sinabs layers take (batch, time, ...) and its to_nir drops only the batch.
                self.time_dim = shape[0]
                self.note(f"{node.where}: shape {_shape_text(shape)} leads with the "
                          f"{shape[0]} time steps of the sample Sinabs's to_nir traced; "
                          f"dropped")
                return rest
        return shape

    def _input(self, node, value, shape):
        encoding = node.metadata.get("hwgen.encoding", "spikes")
        threshold = node.metadata.get("hwgen.encoder_threshold")
        if encoding not in ("spikes", "if"):
            raise FormatError(f"{node.where}: metadata hwgen.encoding = {encoding!r} is not "
                              f"'spikes' or 'if'")
        if encoding == "if":
            self.note(f"{node.where}: integer inputs through hwgen's IF encoder with threshold "
                      f"{threshold} (node metadata)")
        try:
            layer = FloatInput(name=node.name, inputs=[], shape=shape, encoding=encoding,
                               threshold=threshold if encoding == "if" else None)
        except TypeError as error:
            raise FormatError(f"{node.where}: {error}") from None
        self.network.add(layer)
        return _Value(node.name, shape, None, node.name)

    def _output(self, node, value, _):
        source = self.doc.nodes[value.node]
        declared = np.asarray(node.params.get("shape", []) if node.params.get("shape")
                              is not None else [])
        if declared.size:
            declared = tuple(int(v) for v in declared.reshape(-1))
            if self.time_dim is not None and declared[:1] == (self.time_dim,) \
                    and declared[1:] == tuple(value.shape):
                declared = declared[1:]           # Sinabs's time dimension, as on the Input
            if int(np.prod(declared)) != int(np.prod(value.shape)):
                raise ModelError(f"{node.where}: declares shape {_shape_text(declared)}, but "
                                 f"{source.name!r} produces {_shape_text(value.shape)}")
            if declared != tuple(value.shape):
                self.note(f"{node.where}: declared shape {_shape_text(declared)} read as "
                          f"{_shape_text(value.shape)}")
        if value.gain is not None and not np.all(value.gain == 1):
            raise UnsupportedError(f"{node.where}: its input is scaled (Scale or AvgPool2d) "
                                   f"with no layer after it to absorb the factor")
        base = self.network[value.layer]
        while isinstance(base, FloatFlatten):
            base = self.network[base.inputs[0]]
        if not isinstance(base, (FloatNeuron, FloatIntegrator)):
            raise UnsupportedError(f"{node.where}: is fed by {source.where}, which is not a "
                                   f"neuron; hwgen's outputs are spikes (LIF, IF, Threshold) or "
                                   f"membranes (LI, I)")
        if len(value.shape) != 1:
            self.note(f"{node.where}: its input {_shape_text(value.shape)} is not 1-D; no "
                      f"readout")
            return value
        mode = "spike_count" if isinstance(base, FloatNeuron) else "final_membrane"
        self.network.add(FloatReadout(name=node.name, inputs=[value.layer], shape=(), mode=mode))
        what = ("the neuron that spiked most often" if mode == "spike_count"
                else "the neuron with the largest final membrane")
        self.note(f"{node.where}: the predicted class is {what} (ties: the lowest index)")
        return value

    def _affine(self, node, value, _):
        weight = self.array(node, "weight")
        if weight.ndim != 2:
            raise UnsupportedError(f"{node.where}: weight must be 2-D (outputs, inputs), got "
                                   f"shape {_shape_text(weight.shape)}")
        outputs, inputs = weight.shape
        self.expect_vector(node, value, inputs)
        bias = self.array(node, "bias", None) if node.type == "Affine" else None
        if node.type == "Affine" and bias is None:
            raise FormatError(f"{node.where}: missing parameter 'bias'")
        if bias is not None:
            if bias.size == 1 and outputs != 1:
                self.note(f"{node.where}: scalar bias broadcast to its {outputs} outputs")
                bias = np.full(outputs, float(bias.reshape(-1)[0]))
            elif bias.shape != (outputs,):
                raise ModelError(f"{node.where}: bias has shape {_shape_text(bias.shape)}, "
                                 f"expected ({outputs},)")
        if value.gain is not None:
            weight = weight * value.gain.reshape(1, -1)
        source = value.layer
        pooled = self.pooled_spikes(node, value)
        if pooled is not None:
            flatten, pool = pooled
            weight = _unpool(weight, self.network[pool.inputs[0]].shape, pool)
            if flatten is not None:
                flatten.inputs = list(pool.inputs)
                flatten.shape = (weight.shape[1],)
                flatten.start_dim = 0
                flatten.end_dim = len(self.network[pool.inputs[0]].shape) - 1
            else:
                source = pool.inputs[0]
            self.network.remove(pool.name)
            self.note(f"{node.where}: the sum pooling {pool.name!r} before it is folded into "
                      f"its weights (each input position gets the sum of the weights of the "
                      f"windows covering it), so it reads spikes directly")
        self.network.add(FloatDense(name=node.name, inputs=[source], shape=(outputs,),
                                    weight=weight, bias=bias))
        return _Value(node.name, (outputs,), None, node.name)

    def pooled_spikes(self, node, value):
        """(flatten or None, pool) if ``value`` is pooled spikes that only this node reads.

        A fully-connected layer after a sum/average pool of spikes reads counts, not spikes;
        folding the pool into its weights (an exact linear composition) keeps it a plain
        dense layer on spikes."""
        layer = self.network[value.layer]
        flatten = None
        if isinstance(layer, FloatFlatten):
            flatten, layer = layer, self.network[layer.inputs[0]]
        if not isinstance(layer, FloatSumPool):
            return None
        source = self.network[layer.inputs[0]]
        while isinstance(source, FloatFlatten):
            source = self.network[source.inputs[0]]
        if not isinstance(source, (FloatNeuron, FloatInput)):
            return None
        private = (self.network.consumers_of(layer.name) == ([flatten.name] if flatten else [])
                   and len(list(self.graph.successors(value.node))) == 1)
        return (flatten, layer) if private else None

    _linear = _affine

    def expect_vector(self, node, value, inputs):
        source = self.source_name(node)
        if len(value.shape) != 1:
            if int(np.prod(value.shape)) == inputs:
                raise ModelError(f"{node.where}: takes a 1-D input, but {source!r} produces "
                                 f"shape {_shape_text(value.shape)}; add a Flatten")
            raise ModelError(f"{node.where}: weight expects {inputs} inputs, but {source!r} "
                             f"produces shape {_shape_text(value.shape)}")
        if value.shape[0] != inputs:
            raise ModelError(f"{node.where}: weight expects {inputs} inputs, but {source!r} "
                             f"produces {value.shape[0]}")

    def _scale(self, node, value, _):
        scale = self.array(node, "scale")
        broadcast = []
        scale = self.per_neuron(node, "scale", scale, value.shape, broadcast).reshape(value.shape)
        gain = scale if value.gain is None else value.gain * scale
        self.note(f"{node.where}: folded into the layer it feeds")
        return _Value(value.layer, value.shape, gain, value.node)

    def channel_gain(self, node, gain, shape):
        """A gain over (channels, *spatial) as one value per channel, if it is one."""
        if gain is None:
            return None
        per_channel = gain.reshape(shape[0], -1)
        if not np.all(per_channel == per_channel[:, :1]):
            raise UnsupportedError(f"{node.where}: its input is scaled differently across "
                                   f"positions of a channel; only per-channel scales fold "
                                   f"into it")
        return per_channel[:, 0]

    def _conv(self, node, value, dims):
        weight = self.array(node, "weight")
        if weight.ndim != dims + 2:
            raise FormatError(f"{node.where}: weight must be {dims + 2}-D (out_channels, "
                              f"in_channels/groups, kernel...), got shape "
                              f"{_shape_text(weight.shape)}")
        groups = self.ints(node, "groups", 1, 1, minimum=1)[0]
        out_channels, in_channels = weight.shape[0], weight.shape[1] * groups
        if out_channels % groups:
            raise FormatError(f"{node.where}: {out_channels} output channels are not divisible "
                              f"by groups={groups}")
        source = self.source_name(node)
        if len(value.shape) != dims + 1 or value.shape[0] != in_channels:
            raise ModelError(f"{node.where}: weight expects {in_channels} input channels and "
                             f"{dims} spatial dimension(s), but {source!r} produces shape "
                             f"{_shape_text(value.shape)}")
        spatial = value.shape[1:]
        declared = node.params.get("input_shape")
        if declared is not None and np.asarray(declared).size:
            declared = tuple(int(v) for v in np.asarray(declared).reshape(-1))
            if declared != tuple(spatial):
                raise ModelError(f"{node.where}: declares input_shape {_shape_text(declared)}, "
                                 f"but {source!r} produces {_shape_text(spatial)} positions")
        stride = self.ints(node, "stride", dims, 1, minimum=1)
        dilation = self.ints(node, "dilation", dims, 1, minimum=1)
        kernel = weight.shape[2:]
        padding = node.params.get("padding", 0)
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0,) * dims
            elif padding == "same":
                span = [d * (k - 1) for d, k in zip(dilation, kernel)]
                if any(s != 1 for s in stride) or any(x % 2 for x in span):
                    raise UnsupportedError(f"{node.where}: padding 'same' with stride "
                                           f"{list(stride)} and kernel {list(kernel)} pads "
                                           f"unevenly; hwgen pads symmetrically")
                padding = tuple(x // 2 for x in span)
            else:
                raise FormatError(f"{node.where}: padding {padding!r} is not 'same', 'valid' "
                                  f"or integers")
        else:
            padding = self.ints(node, "padding", dims, 0, minimum=0)
        out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in zip(
            spatial, padding, dilation, kernel, stride))
        if min(out) < 1:
            raise ModelError(f"{node.where}: kernel {list(kernel)} does not fit the input "
                             f"{_shape_text(value.shape)} from {source!r}")
        bias = self.array(node, "bias", None)
        if bias is None:
            bias = np.zeros(out_channels)
        elif bias.size == 1 and out_channels != 1:
            bias = np.full(out_channels, float(bias.reshape(-1)[0]))
        elif bias.shape != (out_channels,):
            raise ModelError(f"{node.where}: bias has shape {_shape_text(bias.shape)}, expected "
                             f"({out_channels},)")
        gain = self.channel_gain(node, value.gain, value.shape)
        if gain is not None:
            per_group = weight.shape[1]
            channel = (np.arange(out_channels)[:, None] // (out_channels // groups)) * per_group \
                + np.arange(per_group)[None, :]
            weight = weight * gain[channel].reshape(out_channels, per_group, *([1] * dims))
        shape = (out_channels, *out)
        self.network.add(FloatConv(name=node.name, inputs=[value.layer], shape=shape,
                                   weight=weight, bias=bias, stride=stride, padding=padding,
                                   dilation=dilation, groups=groups))
        return _Value(node.name, shape, None, node.name)

    def _conv1d(self, node, value, _):
        return self._conv(node, value, 1)

    def _conv2d(self, node, value, _):
        return self._conv(node, value, 2)

    def _sumpool2d(self, node, value, _):
        kernel = self.ints(node, "kernel_size", 2, minimum=1)
        stride = self.ints(node, "stride", 2, kernel, minimum=1)
        padding = self.ints(node, "padding", 2, 0, minimum=0)
        source = self.source_name(node)
        if len(value.shape) != 3:
            raise ModelError(f"{node.where}: takes (channels, height, width), but {source!r} "
                             f"produces shape {_shape_text(value.shape)}")
        out = tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip(
            value.shape[1:], padding, kernel, stride))
        if min(out) < 1:
            raise ModelError(f"{node.where}: kernel {list(kernel)} does not fit the input "
                             f"{_shape_text(value.shape)} from {source!r}")
        shape = (value.shape[0], *out)
        gain = self.channel_gain(node, value.gain, value.shape)
        gain = None if gain is None else np.repeat(gain, int(np.prod(out))).reshape(shape)
        pool = node.metadata.get("hwgen.pool", "sum")
        if pool not in ("sum", "max") or (pool == "max" and node.type != "SumPool2d"):
            raise FormatError(f"{node.where}: metadata hwgen.pool = {pool!r} is not 'sum' or "
                              f"'max' (on a SumPool2d node)")
        if pool == "max":
            return self.max_pool(node, value, kernel, stride, padding, shape, gain)
        if node.type == "AvgPool2d":
            divisor = 1.0 / (kernel[0] * kernel[1])
            gain = np.full(shape, divisor) if gain is None else gain * divisor
            self.note(f"{node.where}: summed; its 1/{kernel[0] * kernel[1]} goes into the next "
                      f"layer's weights or thresholds (zero padding counts in the average)")
        self.network.add(FloatSumPool(name=node.name, inputs=[value.layer], shape=shape,
                                      kernel=kernel, stride=stride, padding=padding))
        return _Value(node.name, shape, gain, node.name)

    _avgpool2d = _sumpool2d

    def max_pool(self, node, value, kernel, stride, padding, shape, gain):
        """A SumPool2d node that hwgen's snnTorch helper marked ``hwgen.pool = "max"``:
        NIR has no max pooling (docs/frontends.md)."""
        if any(p > k // 2 for p, k in zip(padding, kernel)):
            raise ModelError(f"{node.where}: max pooling padding {list(padding)} must be at "
                             f"most half the kernel {list(kernel)}")
        if gain is not None and np.any(gain <= 0):
            raise UnsupportedError(f"{node.where}: its input is scaled by a factor that is not "
                                   f"positive, which a max does not commute with")
        self.network.add(FloatMaxPool(name=node.name, inputs=[value.layer], shape=shape,
                                      kernel=kernel, stride=stride, padding=padding))
        self.note(f"{node.where}: a max pooling (metadata hwgen.pool = 'max'; NIR has no max "
                  f"pooling node): the maximum of each window, padding taking no part")
        return _Value(node.name, shape, gain, node.name)

    def _flatten(self, node, value, _):
        start = self.ints(node, "start_dim", 1, 1, minimum=-64)[0]
        end = self.ints(node, "end_dim", 1, -1, minimum=-64)[0]
        if "start_dim" not in node.params:
            self.note(f"{node.where}: no start_dim; NIR's default 1 assumed")
        rank = len(value.shape)
        first = start + rank if start < 0 else start
        last = end + rank if end < 0 else end
        if not 0 <= first <= last < rank:
            raise ModelError(f"{node.where}: dimensions {start}..{end} do not fit its input "
                             f"shape {_shape_text(value.shape)}")
        declared = node.params.get("input_type")
        if declared is not None and np.asarray(declared).size:
            declared = tuple(int(v) for v in np.asarray(declared).reshape(-1))
            if int(np.prod(declared)) != int(np.prod(value.shape)):
                raise ModelError(f"{node.where}: declares input shape {_shape_text(declared)}, "
                                 f"but {self.source_name(node)!r} produces "
                                 f"{_shape_text(value.shape)}")
            if declared != tuple(value.shape):
                self.note(f"{node.where}: declared input shape {_shape_text(declared)} read as "
                          f"{_shape_text(value.shape)}")
        merged = int(np.prod(value.shape[first:last + 1]))
        shape = (*value.shape[:first], merged, *value.shape[last + 1:])
        self.network.add(FloatFlatten(name=node.name, inputs=[value.layer], shape=shape,
                                      start_dim=first, end_dim=last))
        gain = None if value.gain is None else value.gain.reshape(shape)
        return _Value(node.name, shape, gain, node.name)

    # --- neurons ------------------------------------------------------------------------

    def _neuron(self, node, value, _):
        shape, dt = value.shape, self.dt
        broadcast = []

        def param(key, default=_MISSING):
            array = self.array(node, key, default)
            return None if array is None else self.per_neuron(node, key, array, shape, broadcast)

        cuba = node.type in ("CubaLIF", "CubaLI")
        # A current-based node is its voltage-based counterpart behind a synaptic filter.
        kind = {"CubaLIF": "LIF", "CubaLI": "LI"}.get(node.type, node.type)
        v_reset = v_leak = drive = v_threshold = None
        if kind in ("LIF", "IF"):
            v_threshold = param("v_threshold")
            v_reset = param("v_reset", None)
            if v_reset is None:
                v_reset = np.zeros(int(np.prod(shape)))
                self.note(f"{node.where}: no v_reset (a file from before NIR 1.0.x added it); "
                          f"0 assumed")
        if kind in ("LIF", "LI"):
            tau_key = "tau_mem" if cuba else "tau"
            tau, r, v_leak = param(tau_key), param("r"), param("v_leak")
            if np.any(tau <= 0):
                raise FormatError(f"{node.where}: {tau_key} must be positive, got "
                                  f"{float(tau.min()):g}")
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                beta, gain = self.fw.steps(tau, r, dt)
                rate = self.fw.steps(tau, np.ones_like(r), dt)[1]
            undefined = ~np.isfinite(gain)
            if np.any(undefined):
                # hwgen's helper writes snnTorch's r = tau/dt for each neuron, also where a
                # beta = 1 makes both infinite beside finite ones (it says so in the node)
                from_snntorch = self.fw.name == "snntorch" or \
                    node.metadata.get("snntorch.module") is not None
                if from_snntorch and np.all(np.isinf(tau[undefined])):
                    gain = np.where(undefined, 1.0, gain)
                    self.note(f"{node.where}: tau and r are infinite (snnTorch's export of "
                              f"beta = 1); input gain 1 assumed, as snnTorch sets r = tau/dt")
                else:
                    raise UnsupportedError(f"{node.where}: input gain r*dt/tau is undefined "
                                           f"(tau and r infinite)")
            drive = (v_leak - (v_reset if v_reset is not None else 0.0)) * np.where(
                np.isinf(tau), 0.0, np.nan_to_num(rate))
            if cuba and np.any(drive != 0):
                n = int(np.argmax(drive != 0))
                raise UnsupportedError(f"{node.where}: v_leak differs from v_reset (neuron "
                                       f"{n}): a current-based neuron's constant drive acts on "
                                       f"its membrane, and a bias would pass through its "
                                       f"synaptic filter instead")
        elif kind in ("IF", "I"):
            r = param("r")
            step = dt if self.fw.if_dt is None else self.fw.if_dt
            beta, gain = np.ones_like(r), r * step
        else:                                              # Threshold
            threshold = param("threshold")
            beta, gain = np.zeros_like(threshold), np.ones_like(threshold)
        alpha = None
        if cuba:
            alpha, synapse_gain = self.synapse(node, param)
            gain = gain * synapse_gain
        if self.fw.time_reason and kind in (("IF", "I") if self.fw.if_dt is not None else ()) \
                + (("LIF", "LI") if self.fw.decay != "euler" or self.fw.tau_per_dt else ()):
            self.note(f"{self.fw.name}: {self.fw.time_reason}")
        if broadcast:
            fields = ("tau", "tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold",
                      "v_reset", "threshold")
            broadcast = sorted(broadcast, key=fields.index)
            self.note(f"{node.where}: scalar {', '.join(broadcast)} broadcast to its "
                      f"{int(np.prod(shape))} neurons")

        if value.gain is not None:
            gain = gain * value.gain.reshape(-1)
        beta, gain = self.snap(node, "beta", beta, _dyadic), self.snap(node, "input gain", gain,
                                                                        lambda x: 1.0)
        spiking = kind in ("LIF", "IF", "Threshold")
        entry = {"nir_type": node.type, "neurons": int(np.prod(shape)),
                 "beta": _range(beta), "input_gain": _range(gain)}
        synapse_rounding = "separate"
        if cuba:
            alpha = self.snap(node, "alpha", alpha, _dyadic)
            synapse_rounding, synapse_rounding_source = self.semantic(
                node, "synapse_rounding", "joint" if self.fw.name == "snntorch" else "separate",
                "snnTorch's Synaptic adds alpha*syn + I to beta*mem before it floors the "
                "membrane (state_quant)" if self.fw.name == "snntorch" else
                "the membrane integrates this step's synaptic current", SYNAPSE_ROUNDINGS)
            entry.update(alpha=_range(alpha), synapse_rounding=synapse_rounding,
                         synapse_rounding_source=synapse_rounding_source)
        if spiking:
            if kind == "Threshold":
                threshold_v = threshold
                reset, reset_source = "none", "NIR Threshold is stateless"
                order, order_source = "same_step", "NIR Threshold is stateless"
            else:
                threshold_v = v_threshold - v_reset
                reset, reset_source = self.semantic(node, "reset", self.fw.reset,
                                                    self.fw.reset_reason, RESET_MODES)
                order, order_source = self.semantic(node, "order", self.fw.order,
                                                    self.fw.reset_reason, ORDERS)
                if order == "same_step" and self.fw.name == "snntorch":
                    # snnTorch's reset_delay=False is its own order, not NIR's same step.
                    order = "snntorch_same_step"
                    order_source += ("; snnTorch's same step (Leaky(reset_delay=False)) is "
                                     "hwgen's snntorch_same_step")
                entry["v_reset"] = _range(v_reset)
                if np.any(v_reset != 0):
                    self.note(f"{node.where}: membrane measured from v_reset, so it starts "
                              f"at v_reset and its threshold is v_threshold - v_reset")
            fire, fire_source = self.semantic(node, "fire", self.fw.fire, self.fw.fire_reason,
                                              FIRE_MODES)
            entry.update(fire=fire, fire_source=fire_source, reset=reset,
                         reset_source=reset_source, order=order, order_source=order_source)
        rounding, rounding_source = self.semantic(
            node, "membrane_rounding", "exact", "the source computes beta*v in float", ROUNDINGS)
        entry.update(rounding=rounding, rounding_source=rounding_source)
        if rounding == "exact" and np.any((beta > 0) & (beta < 1)):
            self.note(f"{node.where}: the source computes beta*v exactly; hwgen floors it every "
                      f"step (docs/semantics.md), so spikes can differ by rounding")
        if cuba and rounding == "exact" and np.any((alpha > 0) & (alpha < 1)):
            self.note(f"{node.where}: the source computes alpha*i exactly; hwgen floors it "
                      f"every step (docs/semantics.md 4b), so spikes can differ by rounding")

        producer = self.network[value.layer]
        if spiking and np.all(gain > 0):
            threshold_i = threshold_v / gain
            drive_i = None if drive is None else drive / gain
            folded = "the threshold (divided by the input gain)"
        elif not spiking and np.all(gain == gain[0]) and gain[0] > 0:
            threshold_i = None
            drive_i = None if drive is None else drive / gain
            folded = "the membrane's unit (a common positive factor; argmax unchanged)"
        else:
            if np.any(gain == 0):
                raise UnsupportedError(f"{node.where}: input gain r*dt/tau is 0 for some "
                                       f"neurons; they would ignore their input")
            self.fold_rows(node, producer, gain, shape)
            threshold_i = None if not spiking else threshold_v
            drive_i = drive
            folded = f"the weights and bias of {producer.name!r}"
        if not np.all(gain == 1):
            entry["input_gain_folded_into"] = folded
        if drive_i is not None and np.any(drive_i != 0):
            self.add_drive(node, producer, drive_i, shape)
            entry["v_leak_folded_into"] = f"the bias of {producer.name!r}"
        if spiking:
            entry["threshold"] = _range(threshold_i)
            layer = FloatNeuron(name=node.name, inputs=[value.layer], shape=shape, beta=beta,
                                threshold=threshold_i, fire=fire, reset=reset, order=order,
                                rounding=rounding, alpha=alpha,
                                synapse_rounding=synapse_rounding)
        else:
            layer = FloatIntegrator(name=node.name, inputs=[value.layer], shape=shape, beta=beta,
                                    rounding=rounding, alpha=alpha,
                                    synapse_rounding=synapse_rounding)
        self.network.add(layer)
        self.neurons[node.name] = entry
        return _Value(node.name, shape, None, node.name)

    _lif = _if = _li = _i = _threshold = _cubalif = _cubali = _neuron

    def synapse(self, node, param):
        """(alpha, input gain) of a CubaLIF / CubaLI node's synaptic filter, per neuron:
        tau_syn di/dt = -i + w_in*S stepped by the framework's convention (Euler:
        alpha = 1 - dt/tau_syn, gain w_in*dt/tau_syn; docs/semantics.md 4b)."""
        tau_syn = param("tau_syn")
        w_in = param("w_in", np.ones(1))
        if np.any(tau_syn <= 0):
            raise FormatError(f"{node.where}: tau_syn must be positive, got "
                              f"{float(tau_syn.min()):g}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            alpha, gain = self.fw.synapse_steps(tau_syn, w_in, self.dt)
        undefined = ~np.isfinite(gain)
        if np.any(undefined):
            if self.fw.name == "snntorch" and np.all(np.isinf(tau_syn[undefined])):
                gain = np.where(undefined, 1.0, gain)
                self.note(f"{node.where}: tau_syn and w_in are infinite (snnTorch's export of "
                          f"alpha = 1); synaptic input gain 1 assumed, as snnTorch sets "
                          f"w_in = tau_syn/dt")
            else:
                raise UnsupportedError(f"{node.where}: synaptic input gain w_in*dt/tau_syn is "
                                       f"undefined (tau_syn and w_in infinite)")
        if self.fw.synapse_reason:
            self.note(f"{self.fw.name}: {self.fw.synapse_reason}")
        return alpha, gain

    def snap(self, node, what, values, nearest):
        """Values within float32 precision (SNAP_TOLERANCE) of ``nearest(value)`` become it:
        exporters store tau in float32, so 1 - dt/tau and r*dt/tau only approximate the
        beta and gain the model was trained with."""
        target = np.array([nearest(v) for v in values.reshape(-1)]).reshape(values.shape)
        close = np.abs(values - target) <= SNAP_TOLERANCE
        changed = close & (values != target)
        if np.any(changed):
            first = int(np.argmax(changed))
            self.note(f"{node.where}: {what} {float(values.reshape(-1)[first]):.9g} read as "
                      f"{float(target.reshape(-1)[first]):g} (within float32 precision)")
        return np.where(close, target, values)

    def fold_rows(self, node, producer, gain, shape):
        """Multiply each neuron's input by ``gain`` in its producer's weights and bias (in
        every synapse summed by an add: the gain multiplies the sum)."""
        if isinstance(producer, FloatAdd):
            for name in producer.inputs:
                self.fold_rows(node, self.network[name], gain, shape)
            return
        if isinstance(producer, FloatMaxPool) and np.all(gain > 0):
            # a positive per-channel factor commutes with a max: fold it before the pool
            inner, per_channel = self.through_pool(node, producer, gain, shape)
            self.fold_rows(node, inner, per_channel, inner.shape)
            return
        if isinstance(producer, FloatDense):
            producer.weight = producer.weight * gain[:, None]
            if producer.bias is not None:
                producer.bias = producer.bias * gain
            return
        if isinstance(producer, FloatConv):
            per_channel = self.channel_gain(node, gain.reshape(shape), shape)
            shape = (-1,) + (1,) * (producer.dims + 1)
            producer.weight = producer.weight * per_channel.reshape(shape)
            producer.bias = producer.bias * per_channel
            return
        raise UnsupportedError(f"{node.where}: its input gain (r*dt/tau or a Scale) is not "
                               f"positive and uniform, and {producer.name!r} has no weights to "
                               f"fold it into")

    def through_pool(self, node, pool, values, shape):
        """(the layer a max pool reads, ``values`` -- one per channel of the pool's output
        -- spread over that layer's positions)."""
        per_channel = self.channel_gain(node, values.reshape(shape), shape)
        inner = self.network[pool.inputs[0]]
        return inner, _per_position(per_channel, inner.shape).reshape(-1)

    def add_drive(self, node, producer, drive, shape):
        """Add a constant per-step input (from v_leak) to the producer's bias (the first
        synapse's, for an add of several)."""
        if isinstance(producer, FloatAdd):
            synapses = [self.network[n] for n in producer.inputs
                        if isinstance(self.network[n], (FloatDense, FloatConv))]
            if synapses:
                producer = synapses[0]
        if isinstance(producer, FloatMaxPool):
            # a per-channel constant commutes with a max: add it before the pool
            inner, per_channel = self.through_pool(node, producer, drive, shape)
            self.add_drive(node, inner, per_channel, inner.shape)
            return
        if isinstance(producer, FloatDense):
            producer.bias = drive if producer.bias is None else producer.bias + drive
            return
        if isinstance(producer, FloatConv):
            per_channel = self.channel_gain(node, drive.reshape(shape), shape)
            producer.bias = producer.bias + per_channel
            return
        raise UnsupportedError(f"{node.where}: v_leak differs from v_reset, which needs a "
                               f"constant input, but {producer.name!r} has no bias to carry it")


def _per_position(per_channel, shape):
    return np.repeat(per_channel, int(np.prod(shape[1:]))).reshape(shape)


def _unpool(weight, shape, pool):
    """Dense weights on the sum pool's output -> weights on its input (channels, h, w)."""
    channels, height, width = shape
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel, pool.stride, pool.padding
    _, out_h, out_w = pool.shape
    w = weight.reshape(weight.shape[0], channels, out_h, out_w)
    result = np.zeros((weight.shape[0], channels, height + 2 * ph, width + 2 * pw))
    for dy in range(kh):
        for dx in range(kw):
            result[:, :, dy:dy + sh * (out_h - 1) + 1:sh, dx:dx + sw * (out_w - 1) + 1:sw] += w
    return result[:, :, ph:ph + height, pw:pw + width].reshape(weight.shape[0], -1)


def _range(array):
    """One number if all equal, else [min, max] -- for the report."""
    if array is None or not np.size(array):
        return None
    low, high = float(np.min(array)), float(np.max(array))
    return low if low == high else [low, high]
