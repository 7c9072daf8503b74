"""Spikformer's and Spike-driven Transformer v2's attention, ``Q (K^T V)`` into a LIF, as
three layers of the one accelerator (docs/architecture.md, "Spiking transformers").

Per head h of d features, step t and position (token) p, the LIF reads

    O[h d + j, p] = sum_i Q[h d + i, p] M[h, i, j],   M[h, i, j] = sum_q K[h d + i, q] V[h d + j, q]

(``current_matmul(Q, spike_matmul(K, V))``, docs/semantics.md 4d). Both products have
their two operands at run time. The accelerator computes them with one mechanism besides
what it has: a layer whose pairs multiply by **operands**, currents an earlier layer's
TPPEs kept (docs/architecture.md), per step, instead of by weights: acc[t] += s[t] x[t].

1. **V, kept**: a layer of identity gates (:mod:`.spike_gates`) copying V, neuron (c, q)
   firing exactly when V[c, q] does. Its input currents, V's spikes as 0 / 1, are what it
   is for: each TPPE keeps them.
2. **The matrices M**: a layer of H d d neurons that never fire, neuron (h, i, j) reading
   K[h d + i, *] with operands the kept V[h d + j, *]: its input current is M[h, i, j],
   kept in turn.
3. **The product**: the LIF's layer, reading Q[h d + *, p] with operands the kept
   M[h, *, j].

Every neuron of all three belongs to a feature ``group`` c = h d + j (:class:`Operands`);
the scheduler puts a group's neurons of all three layers on one TPPE, so that the operands
a TPPE reads are those it kept. Each layer's matrix holds 1 where a pair exists and its
:class:`Operands` the source neuron each pair multiplies by.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from hwgen.errors import UnsupportedError
from ..ir import LIF, CurrentMatmul, Flatten, SpikeMatmul
from ..ir.neuron import signed_range
from .spike_gates import FORGET, gate_dense, gate_lif
from .unroll import UnrolledDense, signed_bits

COPY_SUFFIX = ".values"
"""The layer keeping V for a ``spike_matmul`` op is named as the op with this suffix; the
layer of its matrices is named as the op."""


@dataclass(frozen=True)
class Operands:
    """A layer's weights taken at run time from kept currents: ``source`` the layer whose
    input currents, kept by each TPPE for its own neurons, are the per-step operands;
    ``index`` (scipy.sparse CSR, the layer's matrix's nonzero pattern, sorted) per pair 1 +
    the ``source`` neuron whose current it multiplies by (1 +, so that no entry is a
    stored zero). ``groups``: per row, its group (the feature h d + j of Q (K^T V) it
    serves); ``source_groups`` the same for ``source``'s neurons. A TPPE computing any row
    of a group computes all of them and ``source``'s neurons of the group, whose currents
    the group's pairs read."""

    source: str
    index: object
    groups: object
    source_groups: object
    reads: str = None
    """The spiking op whose spikes the pairs read (K for M, Q for the product)."""


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
        if len(users) != 1 or not isinstance(model[users[0]], LIF):
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


def _tokens(types, product, of):
    """(heads, d, positions of the spiking op ``of``: Q's may differ from K's and V's) of a
    product."""
    heads, d = types[product.matrices.name].shape[:2]
    return heads, d, types[of].size // (heads * d)


def _offsets(columns, sizes):
    offsets, total = {}, 0
    for name in columns:
        offsets[name] = total
        total += sizes[name]
    return offsets, total


def _feature_groups(heads, d, positions):
    """The group of each neuron of a token layer (features x positions, C order): its
    feature h d + j."""
    return np.arange(heads * d * positions) // positions


def _matrix_groups(heads, d):
    """The group of each neuron (h d + i) d + j of the matrices M: the feature h d + j of
    the product column it serves."""
    m = np.arange(heads * d * d, dtype=np.int64)
    return m // (d * d) * d + m % d


def _operand_matrix(name, rows, columns, sources, shape, bits):
    """An :class:`UnrolledDense` of 1s at (``rows``, ``columns``) whose pairs multiply by
    the source neurons ``sources``, and the :class:`Operands` index of them."""
    ones = scipy.sparse.csr_array((np.ones(rows.size, dtype=np.int64), (rows, columns)),
                                  shape=shape)
    index = scipy.sparse.csr_array((sources + 1, (rows, columns)), shape=shape)
    for matrix in (ones, index):
        matrix.sort_indices()
    return UnrolledDense(name, ones, None, weight_bits=2, acc_bits=bits), index


def copy_layer(product, columns, types):
    """The layer keeping V (:class:`UnrolledDense`, gate LIF): neuron n copies V's neuron
    n. ``columns``: its spike sources in its matrix's column order."""
    offsets, total = _offsets(columns, {name: types[name].size for name in columns})
    rows = np.arange(types[product.v].size, dtype=np.int64)
    name = product.matrices.name + COPY_SUFFIX
    dense = gate_dense(name, rows, offsets[product.v] + rows, (rows.size, total))
    return dense, gate_lif(name, np.ones(rows.size))


def matrix_layer(product, columns, types):
    """The layer of M (:class:`UnrolledDense`, LIF, :class:`Operands`): neuron (h d + i) d
    + j reads K[h d + i, q] times the kept V[h d + j, q] for every position q, and never
    fires; named as the spike_matmul op, whose value its input currents are.
    ``columns``: its spike sources in column order, the copy of V (no pair reads it) first."""
    heads, d, P = _tokens(types, product, product.k)
    copy = product.matrices.name + COPY_SUFFIX
    sizes = {name: types[name].size for name in columns if name != copy}
    sizes[copy] = heads * d * P
    offsets, total = _offsets(columns, sizes)
    h, i, j, q = (a.reshape(-1) for a in np.indices((heads, d, d, P)))
    name = product.matrices.name
    dense, index = _operand_matrix(name, (h * d + i) * d + j,
                                   offsets[product.k] + (h * d + i) * P + q,
                                   (h * d + j) * P + q, (heads * d * d, total),
                                   signed_bits(0, P))
    bits = types[name].bits
    silent = LIF(name, np.full(heads * d * d, signed_range(bits)[1]), leak=FORGET, fire="gt",
                 reset="none", order="same_step", v_bits=bits)
    return dense, silent, Operands(copy, index, _matrix_groups(heads, d),
                                   _feature_groups(heads, d, P), product.k)


def product_matrix(product, columns, types):
    """The product layer's matrix (:class:`UnrolledDense`) and :class:`Operands`: row
    (h d + j) P + p reads Q[h d + i, p] times the kept M[h, i, j] for every i.
    ``columns``: its spike sources in column order, the matrix layer first."""
    heads, d, P = _tokens(types, product, product.q)
    sizes = {name: types[name].size for name in columns if name != product.matrices.name}
    sizes[product.matrices.name] = heads * d * d
    offsets, total = _offsets(columns, sizes)
    h, j, p, i = (a.reshape(-1) for a in np.indices((heads, d, P, d)))
    dense, index = _operand_matrix(product.product.name, (h * d + j) * P + p,
                                   offsets[product.q] + (h * d + i) * P + p,
                                   (h * d + i) * d + j, (heads * d * P, total),
                                   types[product.product.name].bits)
    return dense, Operands(product.matrices.name, index, _feature_groups(heads, d, P),
                           _matrix_groups(heads, d), product.q)


def check_names(model, products):
    """Refuse a model in which the name of a layer keeping V is already an op's."""
    for product in products.values():
        name = product.matrices.name + COPY_SUFFIX
        if name in model:
            raise UnsupportedError(f"{model[name].where}: its name is the one hwgen gives "
                                   f"the layer keeping V of {product.matrices.where}; "
                                   f"rename it")
