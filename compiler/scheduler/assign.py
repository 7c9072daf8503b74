"""Assigning a layer's output neurons to TPPEs.

With one sample, a fully-connected layer has a single row of spikes (M = 1), so the
accelerator broadcasts the spike fiber and spreads the N output neurons over the TPPEs.
A TPPE's time on a layer is roughly the sum over its neurons of the larger of the
neuron's matched pairs (one per cycle), its fiber entries (``fetch_width`` per cycle in
the fetch stage) and its LIF time (T / lif_steps cycles, overlapped); balancing that sum balances
the layer. Matched pairs depend on the input, so they are estimated from each input
neuron's probability of being active (measured on calibration data, else assumed 1:
then the balance is over nonzero weights).

With the laggy join (``join = "laggy"``) a neuron also costs its spike-side walk: the
walker visits, per chunk with a matched pair, every active input of the chunk up to the
highest matched one, one per cycle (:func:`walk_steps`), so that walk, at least the
neuron's matched pairs, replaces them as its term.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from ..hardware_config import JOIN_VARIANTS

DENSE_PAIRS_LIMIT = 1 << 26
"""Up to this many entries, a sparse weight's expected pairs are summed as a dense
product, so that every layer the compiler held densely before it unrolled sparse
(compiler/passes/unroll.py) is scheduled exactly as before."""

ROW_BLOCK = 1024
"""Rows of a sparse weight made dense at a time where a computation needs dense rows
(the laggy walk): bounds its memory to ROW_BLOCK x inputs."""


@dataclass(frozen=True)
class Assignment:
    """``neurons[p]``: the output neurons TPPE p computes, in the order it computes them
    and places their outputs (:func:`schedule_layer`: ascending)."""

    neurons: tuple
    estimated_cycles: tuple


def neuron_costs(weight, chunk, lif_cycles, activity=None, join="dual", positions=None,
                 fetch_width=1):
    """Estimated cycles per output neuron of a (outputs, inputs) weight matrix.

    ``fetch_width``: program entries the fetch reads per cycle; a neuron's entries (its
    header and nonzero weight chunks) start a group of that many, so they take
    ceil(entries / fetch_width) cycles.

    ``positions`` (laggy only): the input neuron at each position of the layer's spike
    fiber (-1 for padding), which decides the walker's order; default: input order.
    """
    if join not in JOIN_VARIANTS:
        raise ValueError(f"neuron_costs: join {join!r} must be one of "
                         f"{', '.join(JOIN_VARIANTS)}")
    if scipy.sparse.issparse(weight):
        return _sparse_costs(weight, chunk, lif_cycles, activity, join, positions,
                             fetch_width)
    nonzero = weight != 0
    if activity is None:
        activity = np.ones(weight.shape[1])
    activity = np.asarray(activity, dtype=float)
    pairs = nonzero @ activity
    padded = -(-weight.shape[1] // chunk) * chunk
    blocks = np.zeros((weight.shape[0], padded), dtype=bool)
    blocks[:, :weight.shape[1]] = nonzero
    entries = 1 + blocks.reshape(weight.shape[0], -1, chunk).any(axis=2).sum(axis=1)
    entries = -(-entries // fetch_width)
    costs = np.maximum(np.maximum(pairs, entries), lif_cycles)
    if join == "laggy":
        placed_nonzero, placed_activity = _in_fiber_order(nonzero, activity[None, :],
                                                          positions, chunk)
        costs = np.maximum(costs, expected_walk(placed_nonzero, placed_activity[0], chunk))
    return costs


def _sparse_costs(weight, chunk, lif_cycles, activity, join, positions, fetch_width):
    """:func:`neuron_costs` of a scipy.sparse weight, in time and memory proportional to
    its nonzeros (the laggy walk excepted: it takes dense rows, ROW_BLOCK at a time)."""
    weight = scipy.sparse.csr_array(weight)
    weight.eliminate_zeros()
    weight.sort_indices()
    if activity is None:
        activity = np.ones(weight.shape[1])
    activity = np.asarray(activity, dtype=float)
    if weight.shape[0] * weight.shape[1] <= DENSE_PAIRS_LIMIT:
        # the dense product's float sums, bit for bit: a sparse sum in another order can
        # differ in the last place and flip the scheduler's ties between equal neurons
        pairs = (weight.toarray() != 0) @ activity
    else:
        pairs = weight.astype(bool).astype(np.float64) @ activity
    costs = np.maximum(np.maximum(pairs, fiber_entries(weight, chunk, fetch_width)),
                       lif_cycles)
    if join == "laggy":
        for start in range(0, weight.shape[0], ROW_BLOCK):
            rows = slice(start, start + ROW_BLOCK)
            placed_nonzero, placed_activity = _in_fiber_order(
                weight[rows].toarray() != 0, activity[None, :], positions, chunk)
            costs[rows] = np.maximum(costs[rows], expected_walk(placed_nonzero,
                                                                placed_activity[0], chunk))
    return costs


def window_costs(costs, pool):
    """Per-row costs -> per-neuron costs: with a max pooling of currents (``pool``: each
    neuron's rows) a neuron is the rows of its window, walked one after another."""
    if pool is None:
        return costs
    return np.array([sum(costs[r] for r in rows) for rows in pool])


def fiber_entries(weight, chunk, fetch_width=1):
    """Fetch cycles of each row's program entries: its header and one entry per chunk of
    ``chunk`` inputs holding a nonzero weight, ``fetch_width`` entries per cycle.
    ``weight``: scipy.sparse CSR with sorted indices and no stored zeros."""
    blocks = weight.indices // chunk
    rows = np.repeat(np.arange(weight.shape[0]), np.diff(weight.indptr))
    # a new chunk starts at a row's first nonzero or where the chunk index changes
    starts = np.ones(len(blocks), dtype=bool)
    starts[1:] = (blocks[1:] != blocks[:-1]) | (rows[1:] != rows[:-1])
    entries = 1 + np.bincount(rows[starts], minlength=weight.shape[0])
    return -(-entries // fetch_width)


def _in_fiber_order(nonzero, active, positions, chunk):
    """``nonzero`` (N, K) and ``active`` (S, K), columns moved to their fiber positions
    (padding: zero weight, never active), padded to whole chunks."""
    if positions is None:
        positions = range(nonzero.shape[1])
    positions = np.asarray(list(positions), dtype=np.int64)
    width = -(-len(positions) // chunk) * chunk
    placed_nonzero = np.zeros((nonzero.shape[0], width), dtype=bool)
    placed_active = np.zeros((active.shape[0], width), dtype=active.dtype)
    used = np.flatnonzero(positions >= 0)
    placed_nonzero[:, used] = nonzero[:, positions[used]]
    placed_active[:, used] = active[:, positions[used]]
    return placed_nonzero, placed_active


def walk_steps(active, nonzero, chunk, positions=None):
    """Exact cycles of the laggy join's spike-side walker, per sample and output neuron.

    ``active`` (samples, K) bool: input neurons that spike at least once; ``nonzero``
    (N, K) bool: nonzero weights; ``positions``: as for :func:`neuron_costs`. Per chunk
    where the neuron has a matched pair, the walker visits the chunk's active inputs up to
    and including the highest matched one; a neuron with no matched pair at all costs one
    cycle (its empty match). Returns (samples, N) integers.
    """
    nonzero, active = _in_fiber_order(np.asarray(nonzero, dtype=bool),
                                      np.asarray(active, dtype=bool), positions, chunk)
    samples, N = active.shape[0], nonzero.shape[0]
    steps = np.zeros((samples, N), dtype=np.int64)
    any_match = np.zeros((samples, N), dtype=bool)
    for start in range(0, nonzero.shape[1], chunk):
        a = active[:, start:start + chunk]                          # (S, W)
        w = nonzero[:, start:start + chunk]                         # (N, W)
        matched = a[:, None, :] & w[None, :, :]                     # (S, N, W)
        has = matched.any(axis=2)
        highest = chunk - 1 - np.argmax(matched[:, :, ::-1], axis=2)
        visited = np.cumsum(a, axis=1)                               # active bits <= j
        steps += np.where(has, np.take_along_axis(visited, highest, axis=1), 0)
        any_match |= has
    return steps + ~any_match


def expected_walk(nonzero, activity, chunk):
    """:func:`walk_steps`' expectation when input k is active with probability
    ``activity[k]``, independently (exact when every activity is 0 or 1). ``nonzero`` and
    ``activity`` are in fiber order, padded to whole chunks. Returns (N,) floats.

    Position j is visited iff it is active and a matched pair sits at j or above it in the
    chunk: with probability a_j if w_j is nonzero, else a_j (1 - prod over nonzero i > j
    of (1 - a_i)).
    """
    N, K = nonzero.shape
    a = np.broadcast_to(np.asarray(activity, dtype=float), (N, K)).reshape(N, -1, chunk)
    w = nonzero.reshape(N, -1, chunk)
    miss = np.where(w, 1 - a, 1.0)                          # no match at position i
    # prod over i > j: reverse cumulative product, shifted by one
    above = np.cumprod(miss[:, :, ::-1], axis=2)[:, :, ::-1]
    above = np.concatenate([above[:, :, 1:], np.ones((N, above.shape[1], 1))], axis=2)
    visit = a * np.where(w, 1.0, 1 - above)
    no_match = np.prod(miss.reshape(N, -1), axis=1)
    return visit.sum(axis=(1, 2)) + no_match


def schedule_layer(costs, tppes):
    """Longest-processing-time-first: the costliest neuron goes to the least-loaded TPPE.

    Deterministic: ties go to the lower neuron index and the lower TPPE.
    """
    costs = np.asarray(costs, dtype=float)
    order = sorted(range(len(costs)), key=lambda n: (-costs[n], n))
    loads = [0.0] * tppes
    owned = [[] for _ in range(tppes)]
    for n in order:
        p = min(range(tppes), key=lambda q: (loads[q], len(owned[q]), q))
        owned[p].append(n)
        loads[p] += costs[n]
    return Assignment(tuple(tuple(sorted(ns)) for ns in owned), tuple(loads))


def _contiguous_cuts(blocks, tppes):
    """``blocks`` (costs, in order) cut into at most ``tppes`` contiguous runs, the
    busiest run's cost as small as a greedy cut makes it (a binary search on that cost):
    the runs as lists of block indices, ``tppes`` of them (some may be empty)."""
    def cuts(capacity):
        groups, load = [[]], 0.0
        for index, cost in enumerate(blocks):
            if groups[-1] and load + cost > capacity:
                groups.append([])
                load = 0.0
            groups[-1].append(index)
            load += cost
        return groups

    low, high = max(blocks, default=0.0), float(sum(blocks))
    for _ in range(60):
        middle = (low + high) / 2
        if len(cuts(middle)) <= tppes:
            high = middle
        else:
            low = middle
    return (cuts(high) + [[]] * tppes)[:tppes]


def schedule_runs(costs, tppes, chunk, order=None):
    """Contiguous runs of whole chunks of ``chunk`` neurons, taken in ``order`` (default:
    by index), one run per TPPE (some may be empty), with the busiest TPPE's cost as small
    as a greedy cut makes it. A TPPE's outputs fill whole chunks of the next layer's fiber,
    so no slot is left as padding between TPPEs. By index: for a layer whose output slots
    must be its neuron indices, a recurrent output layer (its results go to the result
    buffer by index and its spikes come back as its own input fiber). Position-major
    (:func:`hwgen.compiler.scheduler.program.by_positions`): a TPPE computes a range of
    output positions (pixels, tokens) with all their channels, except where a range
    starts or ends."""
    costs = np.asarray(costs, dtype=float)
    order = np.arange(len(costs)) if order is None else np.asarray(order, dtype=np.int64)
    blocks = [float(costs[order[start:start + chunk]].sum())
              for start in range(0, len(order), chunk)]
    neurons = tuple(tuple(int(order[i]) for b in group
                          for i in range(b * chunk, min((b + 1) * chunk, len(order))))
                    for group in _contiguous_cuts(blocks, tppes))
    return Assignment(neurons, tuple(float(costs[list(ns)].sum()) if ns else 0.0
                                     for ns in neurons))
