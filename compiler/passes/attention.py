"""Spikformer's and Spike-driven Transformer v2's attention, ``Q (K^T V)`` into a LIF, as
three layers of the one accelerator (docs/architecture.md, "Spiking transformers").

Per head h of d features, step t and position (token) p, the LIF reads

    O[h d + j, p] = sum_i Q[h d + i, p] M[h, i, j],   M[h, i, j] = sum_q K[h d + i, q] V[h d + j, q]

(``current_matmul(Q, spike_matmul(K, V))``, docs/semantics.md 4d). Both products have
their two operands at run time; the accelerator computes them with what it has:

1. **AND gates** (:mod:`.spike_gates`): a layer of H d d P gates, gate (h, i, j, q) =
   ``K[h d + i, q] AND V[h d + j, q]``.
2. **The matrices M**: a layer of H d d neurons that never fire, neuron (h, i, j) summing
   its P gates with weights of 1. Its input currents, M for the time chunk's steps, are
   what it is for: each TPPE keeps them in its kept-current memory.
3. **The product**: the LIF's layer, whose synapse reads Q with one "weight" per pair
   (i, j) that is not a value but an operand: M[h, i, j], read per step from the kept
   currents (``operands``), so that acc[t] += Q[t] * M[t] exactly. The scheduler puts
   every neuron of column (h, j) of the product, and the d neurons (h, *, j) of M, on one
   TPPE, so that the operands a TPPE reads are those it kept.

The product layer's matrix holds 1 where a pair exists and its :class:`Operands` the M
neuron each pair multiplies by.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from hwgen.errors import UnsupportedError
from ..ir import LIF, CurrentMatmul, Flatten, SpikeMatmul
from ..ir.neuron import signed_range
from .spike_gates import FORGET, gate_dense, gate_lif
from .unroll import UnrolledDense, signed_bits

GATES_SUFFIX = ".and_gates"
"""The gate layer of a ``spike_matmul`` op is named as the op with this suffix; the layer
of its matrices is named as the op."""


@dataclass(frozen=True)
class Operands:
    """A layer's weights taken at run time from kept currents: ``source`` the layer whose
    input currents, kept by each TPPE for its own neurons, are the per-step operands;
    ``index`` (scipy.sparse CSR, the layer's matrix's nonzero pattern, sorted) per pair 1 +
    the ``source`` neuron whose current it multiplies by (1 +, so that no entry is a
    stored zero)."""

    source: str
    index: object
    groups: object
    """Per row, its column group: the feature h d + j of Q (K^T V) it computes. A TPPE
    computing any row of a group computes all of them, and ``source``'s neurons of the
    group (``source_groups``), whose currents the group's pairs read."""
    source_groups: object


@dataclass(frozen=True)
class Product:
    """One ``Q (K^T V)`` the accelerator runs: the lif op reading it, the current_matmul
    and spike_matmul ops, and Q, K, V (spiking ops)."""

    lif: LIF
    product: CurrentMatmul
    matrices: SpikeMatmul
    q: str
    k: str
    v: str
    relabels: tuple = ()
    """The flatten ops between Q, K, V and the products."""


def find_products(model, spiking_ops):
    """{lif op name: :class:`Product`} for every ``current_matmul`` of the model; refuses
    any use of ``spike_matmul`` / ``current_matmul`` the accelerator does not run, naming
    the op."""
    products = {}
    for op in model.ops:
        if isinstance(op, SpikeMatmul):
            users = model.consumers_of(op.name)
            if len(users) != 1 or not isinstance(model[users[0]], CurrentMatmul) \
                    or model.inputs_of(users[0])[1] != op.name:
                raise UnsupportedError(
                    f"{op.where}: the accelerator runs spike_matmul only as the second input "
                    f"of one current_matmul (Q (K^T V)); it feeds "
                    f"{', '.join(repr(u) for u in users) or 'nothing'}")
        if not isinstance(op, CurrentMatmul):
            continue
        users = model.consumers_of(op.name)
        if len(users) != 1 or not isinstance(model[users[0]], LIF) \
                or model.recurrent_synapse(users[0]) is not None:
            raise UnsupportedError(
                f"{op.where}: the accelerator runs current_matmul only as the whole input of "
                f"one lif op (Spikformer's attn_lif); it feeds "
                f"{', '.join(repr(u) for u in users) or 'nothing'}")
        q, matrices = model.inputs_of(op.name)
        k, v = model.inputs_of(matrices)
        relabels = []
        q, k, v = (_spiking_source(model, op, role, name, spiking_ops, relabels)
                   for role, name in (("Q", q), ("K", k), ("V", v)))
        products[users[0]] = Product(model[users[0]], op, model[matrices], q, k, v,
                                     tuple(relabels))
    return products


def _spiking_source(model, product, role, name, spiking_ops, relabels):
    """The spiking op whose spikes ``name`` (the ``role`` input of ``product``) are, past
    flatten ops (relabellings: C-order numbering is unchanged, docs/semantics.md 3a, so
    every index computed here is the same in either shape), which go into
    ``relabels``."""
    while isinstance(model[name], Flatten):
        relabels.append(name)
        (name,) = model.inputs_of(name)
    if not isinstance(model[name], spiking_ops):
        raise UnsupportedError(
            f"{product.where}: its {role}, {model[name].where}, is not the output of a "
            f"spiking op; the accelerator reads the spikes a layer wrote")
    return name


def _tokens(types, product):
    """(heads, d, positions) of a product."""
    heads, d = types[product.matrices.name].shape[:2]
    return heads, d, types[product.q].size // (heads * d)


def _offsets(columns, sizes):
    offsets, total = {}, 0
    for name in columns:
        offsets[name] = total
        total += sizes[name]
    return offsets, total


def gate_layer(product, columns, types):
    """The AND gates of ``product`` (:class:`UnrolledDense`, gate LIF): gate ((h d + i) d
    + j) P + q = K[h d + i, q] AND V[h d + j, q]. ``columns``: the layer's spike sources in
    its matrix's column order."""
    heads, d, P = _tokens(types, product)
    offsets, total = _offsets(columns, {name: types[name].size for name in columns})
    h, i, j, q = (a.reshape(-1) for a in np.indices((heads, d, d, P)))
    rows = np.arange(h.size, dtype=np.int64)
    keys = offsets[product.k] + (h * d + i) * P + q
    values = offsets[product.v] + (h * d + j) * P + q
    name = product.matrices.name + GATES_SUFFIX
    dense = gate_dense(name, np.concatenate([rows, rows]), np.concatenate([keys, values]),
                       (rows.size, total))
    return dense, gate_lif(name, np.full(rows.size, 2))


def matrix_layer(product, types):
    """The layer of M (:class:`UnrolledDense`, LIF): neuron (h d + i) d + j sums the P
    gates (h, i, j, *) of :func:`gate_layer`, its only source, and never fires; named as
    the spike_matmul op, whose value its input currents are."""
    heads, d, P = _tokens(types, product)
    size = heads * d * d
    gates = np.arange(size * P, dtype=np.int64)
    weight = scipy.sparse.csr_array((np.ones(gates.size, dtype=np.int64),
                                     (gates // P, gates)), shape=(size, gates.size))
    name = product.matrices.name
    bits = types[name].bits
    dense = UnrolledDense(name, weight, None, weight_bits=2, acc_bits=signed_bits(0, P))
    silent = LIF(name, np.full(size, signed_range(bits)[1]), leak=FORGET, fire="gt",
                 reset="none", order="same_step", v_bits=bits)
    return dense, silent


def product_matrix(product, columns, types):
    """The product layer's matrix (:class:`UnrolledDense`, ones where a pair exists) and
    its :class:`Operands`: row (h d + j) P + p reads Q[h d + i, p] for every i, times
    M[h, i, j]. ``columns``: its spike sources in column order, the matrix layer (whose
    columns it leaves empty) first."""
    heads, d, P = _tokens(types, product)
    sizes = {name: types[name].size for name in columns if name != product.matrices.name}
    sizes[product.matrices.name] = heads * d * d
    offsets, total = _offsets(columns, sizes)
    h, j, p, i = (a.reshape(-1) for a in np.indices((heads, d, P, d)))
    rows = ((h * d + j) * P + p).astype(np.int64)
    cols = offsets[product.q] + (h * d + i) * P + p
    shape = (heads * d * P, total)
    ones = scipy.sparse.csr_array((np.ones(rows.size, dtype=np.int64), (rows, cols)),
                                  shape=shape)
    index = scipy.sparse.csr_array(((h * d + i) * d + j + 1, (rows, cols)), shape=shape)
    for matrix in (ones, index):
        matrix.sort_indices()
    dense = UnrolledDense(product.product.name, ones, None, weight_bits=2,
                          acc_bits=types[product.product.name].bits)
    m = np.arange(heads * d * d, dtype=np.int64)
    return dense, Operands(product.matrices.name, index, np.arange(shape[0]) // P,
                           m // (d * d) * d + m % d)


def check_names(model, products):
    """Refuse a model in which a gate layer's name is already an op's."""
    for product in products.values():
        name = product.matrices.name + GATES_SUFFIX
        if name in model:
            raise UnsupportedError(f"{model[name].where}: its name is the one hwgen gives "
                                   f"the AND gates of {product.matrices.where}; rename it")
