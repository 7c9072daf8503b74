"""Legalise a model for the accelerator: find the chain of layers it can run.

The accelerator runs a sequence of layers ``input -> layer -> layer ... -> readout``, in
the model's topological order, each layer a synapse fused with the neurons it feeds. A
layer reads the spikes of the layer before it and of any earlier layers (residual
connections, the Q, K and V branches of an attention block): those are kept in region
pairs of their own (:mod:`hwgen.compiler.scheduler.program`). A layer's synapse is what
lies between its spike sources and its ``lif`` op: a single ``dense`` op (possibly
recurrent, possibly behind a ``flatten``, which is a relabelling: values keep their
C-order numbering, docs/semantics.md 3a), or any graph of linear ops -- convolutions, sum
pooling, flatten, dense layers, adds and column sums over tokens -- which :mod:`.unroll`
composes into the one matrix the accelerator walks.

Three ops become layers of their own kind (docs/architecture.md, "Spiking
transformers"): a Hadamard mask (``spike_and``) is a layer of AND gates and, when a later
layer reads the model's input besides the first, the input is copied into a layer of
identity gates so that its spikes are kept (:mod:`.spike_gates`); a non-spiking readout
integrator (``li``) as the last op is a layer of neurons that never fire, read out by their
final membranes; Q (K^T V) into a ``lif`` op (``current_matmul`` of ``spike_matmul``) is
three layers whose pairs multiply by kept currents (:mod:`.attention`). Anything else is
refused here, at compile time, with a message naming the op, so that frontends can import
ops the hardware does not run yet.
"""

from dataclasses import dataclass

import numpy as np

from hwgen.errors import UnsupportedError
from ..ir import reference
from ..ir import LI, LIF, Add, Dense, Flatten, Input, MaxPool2d, Readout, SpikeAnd
from . import attention
from .spike_gates import and_gates, input_copy, silent_lif
from .unroll import LINEAR_OPS, pool_windows, unroll

SPIKING_OPS = (Input, LIF, SpikeAnd)
"""The ops whose values are spikes a layer can read (a layer's sources)."""


@dataclass(frozen=True)
class SpikingDense:
    """A layer: its synapse, as one matrix, fused with its neurons; what one accelerator
    pass computes. ``source``: the layer before it (or the input), whose spikes it reads
    from the alternating regions; ``aux``: the earlier layers whose spikes it also reads
    (kept in their region pairs), in layer order; ``dense``'s columns are ``source``'s
    neurons followed by each of ``aux``'s. A layer that reads only earlier layers has no
    weight in ``source``'s columns."""

    dense: Dense
    lif: LIF
    source: str = None
    unrolled: tuple = ()
    """The ops :mod:`.unroll` composed into ``dense``, as ``op.where`` (empty: ``dense``
    is the model's own op)."""
    aux: tuple = ()
    pool: tuple = None
    """With a max pooling of currents before the neurons (``max_pool2d``): per neuron, the
    rows of ``dense`` (the pooled currents, C order) whose maximum it integrates."""
    adds_current: str = None
    """A membrane shortcut kept instead of recomputed: the earlier layer whose input
    currents, neuron by neuron, this layer adds to its own (its ``dense`` then leaves that
    current's synapse out; docs/architecture.md, "Spiking transformers")."""
    operands: attention.Operands = None
    """Weights taken per step from the currents an earlier layer kept (Q (K^T V),
    :mod:`.attention`): ``dense`` then holds 1 where a pair exists."""

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
        kept = (f" + the currents kept by {self.adds_current!r}"
                if self.adds_current is not None else "")
        if self.operands is not None:
            return (f"{', '.join(self.unrolled)} (times the currents kept by "
                    f"{self.operands.source!r})")
        if not self.unrolled:
            return self.dense.where + kept
        return f"{', '.join(self.unrolled)} (unrolled){kept}"

    @property
    def outputs(self):
        """The layer's neurons (with a max pooling, fewer than ``dense``'s rows)."""
        return len(self.pool) if self.pool is not None else self.dense.outputs

    @property
    def sources(self):
        """Every op whose spikes it reads, in ``dense``'s column order."""
        return (self.source, *self.aux)

    def input_spikes(self, spikes):
        """The spikes it reads, (samples, T, ``dense``'s columns), from ``spikes`` ({op name:
        (samples, T, neurons)}, a reference trace's or calibration spikes)."""
        return np.concatenate([spikes[name] for name in self.sources], axis=2)


@dataclass(frozen=True)
class LayerChain:
    input: Input
    layers: tuple
    readout: Readout = None

    def spikes_of(self, spikes):
        """``spikes`` ({op name: (samples, T, neurons)}, a reference trace's) with those of
        the layers no model op names (Q (K^T V)'s copy of V, :mod:`.attention`; its
        matrices, named as its spike_matmul op, have currents but no spikes in a trace)
        added, computed from their sources as the layers compute them."""
        spikes = dict(spikes)
        for layer in self.layers:
            if layer.name not in spikes:
                sources = layer.input_spikes(spikes)
                samples, steps, columns = sources.shape
                current = reference.dense(layer.dense, sources.reshape(-1, columns))
                current = current.reshape(samples, steps, -1)
                spikes[layer.name] = reference.lif(layer.lif, current)[0]
        return spikes


def legalise(model, keep_currents=True):
    """Return the model's :class:`LayerChain` or raise :class:`UnsupportedError`.

    ``keep_currents``: a layer whose neurons read ``add(X, ...)``, where X is the whole
    input current of an earlier layer (a membrane shortcut: the residual stream of
    currents), adds that layer's currents (``adds_current``) instead of recomputing X from
    its spike sources; False recomputes it."""
    model.validate()
    types = model.infer()
    ops = model.ops
    lifs = [op for op in ops if isinstance(op, (LIF, SpikeAnd))]
    integrators = [op for op in ops if isinstance(op, LI)]
    synapsed = [op for op in ops if isinstance(op, (LIF, LI))]     # behind a synapse op
    readout = next((op for op in ops if isinstance(op, Readout)), None)
    # A synapse op may serve several layers (a current read by two neuron ops, directly
    # or through adds): each layer's matrix then includes it, computing the same values.
    # Q (K^T V) into a lif op: three layers of their own kind (:mod:`.attention`)
    products = attention.find_products(model, SPIKING_OPS)
    attention.check_names(model, products)
    order = {op.name: i for i, op in enumerate(ops)}
    regions = {op.name: ((), sorted({products[op.name].q, products[op.name].k,
                                      products[op.name].v}, key=order.__getitem__))
               if op.name in products else _synapse_of(model, op) for op in synapsed}
    owner = {op.name for synapse, _ in regions.values() for op in synapse}
    owner |= {name for p in products.values()
              for name in (p.product.name, p.matrices.name, *p.relabels)}
    pools = {pool.name for pool in (_pooling_of(model, op) for op in synapsed) if pool}
    owner |= pools
    for op in ops:
        if not isinstance(op, (Input, LIF, LI, SpikeAnd, Readout, *LINEAR_OPS)) \
                and op.name not in pools and op.name not in owner:
            _refuse_type(model, op)
    for op in lifs:
        if isinstance(op, SpikeAnd):
            regions[op.name] = ((), _and_sources(model, op))
    if integrators:
        _check_integrator(model, integrators, lifs, readout)
    neurons = lifs + integrators
    for op in ops:
        if isinstance(op, (Input, LIF, SpikeAnd)) or op.name in owner or op in integrators:
            continue
        if isinstance(op, Readout) and neurons \
                and model.inputs_of(op.name) == [neurons[-1].name]:
            continue
        if isinstance(op, Readout):
            _refuse_type(model, op)
        raise UnsupportedError(f"{op.where}: its output feeds no neuron; the accelerator "
                               f"runs a single sequence of layers")
    if not neurons:
        raise UnsupportedError(f"model {model.name!r}: has no dense -> lif layer to run")
    # Membrane shortcuts kept: {layer: (the current op it adds, the earlier layer whose
    # whole input current that is)}; such a layer's synapse and sources leave that
    # current's out (and so may no longer read the input).
    kept, owners = {}, {}
    if keep_currents and not any(isinstance(op, Dense) and op.recurrent for op in ops):
        for op in neurons:
            if isinstance(op, SpikeAnd):
                continue
            current = _kept_current(model, op, owners)
            if current is not None:
                kept[op.name] = (current, owners[current])
                regions[op.name] = _synapse_of(model, op, stop=current)
            if isinstance(op, LIF) and _pooling_of(model, op) is None:
                owners[model.inputs_of(op.name)[0]] = op.name
    layers, previous = [], model.input
    # (a product is never the first layer: its gates and matrices come first)
    if any(model.input.name in regions[op.name][1] for op in neurons
           if op is not neurons[0] or op.name in products):
        # a later layer reads the input: copy it into a layer of its own, kept for them
        dense, gates = input_copy(model, types)
        layers.append(SpikingDense(dense, gates, model.input.name,
                                   (f"{model.input.where} (copied, kept)",)))
    # {layer whose current a later one adds: that current's bound per neuron}
    keepers, bounds = {owner for _, owner in kept.values()}, {}
    for op in neurons:
        synapse, sources = regions[op.name]
        if isinstance(op, SpikeAnd):
            aux = tuple(s for s in sources if s != previous.name)
            dense, gates = and_gates(op, model.inputs_of(op.name), (previous.name, *aux),
                                     types)
            layers.append(SpikingDense(dense, gates, previous.name, (op.where,), aux))
        elif op.name in products:
            layers += _product_layers(products[op.name], previous.name, types)
        else:
            lif = silent_lif(op, types[op.name].size) if isinstance(op, LI) else op
            current, owner = kept.get(op.name, (None, None))
            layer = _layer(model, lif, synapse, sources, previous, types,
                           current and (current, owner, bounds[owner]))
            layers.append(layer)
            if op.name in keepers:
                bounds[op.name] = layer.dense.row_bounds() + (
                    bounds[owner] if owner is not None else 0)
        previous = op
    residual = next((layer for layer in layers if layer.aux), None)
    recurrent = next((layer for layer in layers if layer.dense.recurrent), None)
    if residual and recurrent:
        raise UnsupportedError(f"{residual.lif.where}: a residual connection (from "
                               f"{residual.aux[0]!r}) in a model with a recurrent layer "
                               f"({recurrent.name!r}) is not supported by the accelerator yet")
    if readout is not None and readout.mode == "final_membrane" \
            and isinstance(neurons[-1], SpikeAnd):
        raise UnsupportedError(f"{readout.where}: reads final membranes of "
                               f"{neurons[-1].where}, whose gates have none")
    if readout is not None and readout.mode == "spike_count" and integrators:
        raise UnsupportedError(f"{readout.where}: counts the spikes of "
                               f"{integrators[0].where}, which never spikes")
    return LayerChain(model.input, tuple(layers), readout)


def legalise_for(model, config):
    """The :class:`LayerChain` a program compiled with ``config`` (a
    :class:`~hwgen.compiler.hardware_config.HardwareConfig` or program.json's dict of it)
    runs: its layers, matrices and sources depend on ``keep_currents``."""
    keep = config.get("keep_currents", 1) if isinstance(config, dict) else \
        config.keep_currents
    return legalise(model, keep_currents=bool(keep))


def _product_layers(product, previous, types):
    """The three layers of a Q (K^T V) (:mod:`.attention`) after the layer ``previous``:
    V kept, its matrices, and the product into its lif op."""
    aux = (product.v,) if product.v != previous else ()
    dense, gates = attention.copy_layer(product, (previous, *aux), types)
    matrices = product.matrices
    layers = [SpikingDense(dense, gates, previous, (f"{matrices.where} (V kept)",), aux)]
    dense, silent, operands = attention.matrix_layer(product, (gates.name, product.k), types)
    layers.append(SpikingDense(dense, silent, gates.name, (matrices.where,), (product.k,),
                               operands=operands))
    dense, operands = attention.product_matrix(product, (matrices.name, product.q), types)
    layers.append(SpikingDense(dense, product.lif, matrices.name, (product.product.where,),
                               (product.q,), operands=operands))
    return layers


def _check_integrator(model, integrators, lifs, readout):
    """A non-spiking integrator runs as the last layer, read out by its final membranes."""
    li = integrators[0]
    order = {op.name: i for i, op in enumerate(model.ops)}
    last = len(integrators) == 1 and all(order[op.name] < order[li.name] for op in lifs)
    if not last or readout is None or model.inputs_of(readout.name) != [li.name]:
        raise UnsupportedError(f"{li.where}: a non-spiking integrator runs on the accelerator "
                               f"only as the last layer, read out by a readout op")


def _and_sources(model, op):
    """The spike sources of a ``spike_and`` op's gates: its two inputs, which must be
    spiking ops (a layer reads spikes that a layer wrote)."""
    inputs = model.inputs_of(op.name)
    for name in inputs:
        if not isinstance(model[name], SPIKING_OPS):
            raise UnsupportedError(f"{op.where}: its input {model[name].where} is not the "
                                   f"output of a spiking op; the accelerator's AND gates "
                                   f"read the spikes a layer wrote")
    order = {o.name: i for i, o in enumerate(model.ops)}
    return sorted(set(inputs), key=order.__getitem__)


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
    if isinstance(model[source], SPIKING_OPS):
        _refuse_type(model, model[feed])
    return model[feed]


def _synapse_of(model, lif, stop=None):
    """(synapse ops in topological order, spike sources) of ``lif``'s layer: every op
    reached walking back from its input (past a max pooling of currents right before it)
    through linear ops, up to spiking ops; not past the op named ``stop`` (a kept
    current), which is not included."""
    pool = _pooling_of(model, lif)
    start = pool.name if pool is not None else lif.name
    synapse, sources, frontier = {}, [], list(model.inputs_of(start))
    while frontier:
        name = frontier.pop(0)
        op = model[name]
        if name == stop:
            continue
        if isinstance(op, SPIKING_OPS):
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


def _kept_current(model, op, currents):
    """The current op of an earlier layer (a key of ``currents``: {current op: layer})
    that ``op``'s input adds as a whole, or None: ``op`` (a ``lif`` or ``li``) reads an
    ``add`` directly, one of whose inputs, once and on no other path into the add, is that
    current. The latest such layer's, if several."""
    (feed,) = model.inputs_of(op.name)
    if not isinstance(model[feed], Add):
        return None
    feeds = model.inputs_of(feed)
    order = {o.name: i for i, o in enumerate(model.ops)}
    for name in sorted((f for f in feeds if f in currents), key=order.__getitem__,
                       reverse=True):
        others = [f for f in feeds if f != name]
        if feeds.count(name) == 1 and not _reaches(model, others, name):
            return name
    return None


def _reaches(model, names, target):
    """Whether walking back from ``names`` through linear ops meets ``target``."""
    seen, frontier = set(), list(names)
    while frontier:
        name = frontier.pop()
        if name == target:
            return True
        if name in seen or isinstance(model[name], SPIKING_OPS):
            continue
        seen.add(name)
        frontier += model.inputs_of(name)
    return False


def _layer(model, lif, synapse, sources, previous, types, kept=None):
    """The :class:`SpikingDense` of ``lif``, whose synapse ops ``synapse`` read the spiking
    ops ``sources``; ``previous``: the layer before it (or the input); ``kept``: (current
    op, layer, its per-neuron bound) of a kept current the layer adds, or None."""
    if kept:
        op, owner, bound = kept
        output = model.inputs_of(lif.name)[0]
        aux = tuple(s for s in sources if s != previous.name)
        columns = [previous] + [model[a] for a in aux]
        dense = unroll(model, columns, synapse, output, types, zero=op, extra_bound=bound)
        return SpikingDense(dense, lif, previous.name, tuple(o.where for o in synapse), aux,
                            adds_current=owner)
    if not synapse:
        raise UnsupportedError(f"{lif.where}: reads spikes directly; the accelerator runs a "
                               f"synapse before every lif op")
    aux = tuple(s for s in sources if s != previous.name)
    columns = [previous] + [model[a] for a in aux]
    pool = _pooling_of(model, lif)
    output = model.inputs_of(pool.name if pool is not None else lif.name)[0]
    dense = model[output]
    if pool is not None:
        groups = pool_windows(pool, types[output].shape)
        unrolled = unroll(model, columns, synapse, output, types)
        return SpikingDense(unrolled, lif, previous.name,
                            tuple(op.where for op in synapse) + (pool.where,), aux, groups)
    if not aux and sources == [previous.name] and isinstance(dense, Dense) and all(
            isinstance(op, Flatten) for op in synapse if op is not dense):
        return SpikingDense(dense, lif, previous.name)
    recurrent = next((op for op in synapse if isinstance(op, Dense) and op.recurrent), None)
    if recurrent is not None:
        raise UnsupportedError(f"{recurrent.where}: a recurrent dense op must feed its lif op "
                               f"directly from its one spike source, the layer before it")
    return SpikingDense(unroll(model, columns, synapse, output, types), lif, previous.name,
                        tuple(op.where for op in synapse), aux)
