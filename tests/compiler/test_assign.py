"""Assigning neurons to TPPEs: every neuron once, balanced, deterministic."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwgen.compiler.scheduler.assign import (expected_walk, neuron_costs, schedule_layer,
                                             walk_steps)


@given(costs=st.lists(st.floats(0, 100), max_size=60), tppes=st.integers(1, 32))
def test_every_neuron_exactly_once_in_ascending_order(costs, tppes):
    assignment = schedule_layer(costs, tppes)
    assert len(assignment.neurons) == tppes
    flat = [n for neurons in assignment.neurons for n in neurons]
    assert sorted(flat) == list(range(len(costs)))
    assert all(list(ns) == sorted(ns) for ns in assignment.neurons)


@given(costs=st.lists(st.integers(1, 50), min_size=1, max_size=7), tppes=st.integers(1, 3))
def test_longest_first_is_within_grahams_bound_of_the_optimum(costs, tppes):
    # Graham (1969): longest-processing-time-first is within 4/3 - 1/(3P) of the optimal
    # makespan, found here by trying every assignment of these few neurons.
    assignment = schedule_layer(costs, tppes)
    optimum = min(max(sum(c for c, p in zip(costs, owner) if p == q) for q in range(tppes))
                  for owner in itertools.product(range(tppes), repeat=len(costs)))
    assert max(assignment.estimated_cycles) <= (4 / 3 - 1 / (3 * tppes)) * optimum + 1e-9


def test_deterministic_ties():
    assert schedule_layer([1, 1, 1, 1], 2).neurons == ((0, 2), (1, 3))
    assert schedule_layer([1, 1, 1, 1], 2) == schedule_layer([1, 1, 1, 1], 2)


def test_costs_count_pairs_entries_and_lif():
    weight = np.zeros((3, 32), dtype=int)
    weight[0, :20] = 1                  # 20 pairs, 2 chunks of 16
    weight[1, [0, 16]] = 1              # 2 pairs but 1 + 2 entries
    costs = neuron_costs(weight, 16, lif_cycles=4)
    assert costs.tolist() == [20, 4, 4]          # neuron 2 (no weights): the LIF's 4 cycles
    activity = np.zeros(32)
    activity[:10] = 1
    assert neuron_costs(weight, 16, 1, activity).tolist() == [10, 3, 1]


def _walk_by_chunks(active, nonzero, chunk, positions):
    """walk_steps from the gateware's per-chunk-match count, on fibers built by hand."""
    from hwgen.gateware.laggy_join import walk_cycles
    width = -(-len(positions) // chunk) * chunk
    slots = list(positions) + [-1] * (width - len(positions))
    out = np.zeros((active.shape[0], nonzero.shape[0]), dtype=np.int64)
    for s, a in enumerate(active):
        for n, w in enumerate(nonzero):
            total, matches = 0, 0
            for c in range(width // chunk):
                ks = slots[c * chunk:(c + 1) * chunk]
                smask = sum(1 << b for b, k in enumerate(ks) if k >= 0 and a[k])
                wmask = sum(1 << b for b, k in enumerate(ks) if k >= 0 and w[k])
                if smask & wmask:           # the fetch drops the others
                    total += walk_cycles(smask, wmask)
                    matches += 1
            out[s, n] = total if matches else walk_cycles(0, 0)
    return out


@given(seed=st.integers(0, 2**32 - 1), chunk=st.sampled_from([4, 8, 16]),
       inputs=st.integers(1, 40), permute=st.booleans(),
       density=st.sampled_from([0.0, 0.2, 0.7, 1.0]))
def test_walk_steps_is_the_walkers_count(seed, chunk, inputs, permute, density):
    rng = np.random.default_rng(seed)
    active = rng.random((3, inputs)) < density
    nonzero = rng.random((5, inputs)) < 0.4
    positions = list(range(inputs))
    if permute:                     # a permuted fiber with padding, as later layers have
        positions = list(rng.permutation(inputs)) + [-1] * 3
        rng.shuffle(positions)
    assert (walk_steps(active, nonzero, chunk, positions)
            == _walk_by_chunks(active, nonzero, chunk, positions)).all()


@given(seed=st.integers(0, 2**32 - 1))
def test_expected_walk_is_the_mean_over_every_input_pattern(seed):
    rng = np.random.default_rng(seed)
    inputs, chunk = 8, 4
    nonzero = rng.random((3, inputs)) < 0.5
    activity = rng.choice([0.0, 0.25, 0.5, 1.0], size=inputs)
    patterns = np.array(list(itertools.product([0, 1], repeat=inputs)), dtype=bool)
    weights = np.prod(np.where(patterns, activity, 1 - activity), axis=1)
    exact = weights @ walk_steps(patterns, nonzero, chunk)
    assert np.allclose(expected_walk(nonzero, activity, chunk), exact)


def test_laggy_costs_add_the_walk():
    weight = np.zeros((2, 16), dtype=int)
    weight[0, 15] = 1                   # one pair, but the walker visits 16 active inputs
    weight[1, 0] = 1
    assert neuron_costs(weight, 16, 1).tolist() == [2, 2]               # header + chunk
    assert neuron_costs(weight, 16, 1, join="laggy").tolist() == [16, 2]
    # Reversed fiber order: the same neuron now finds its pair first.
    reverse = list(range(15, -1, -1))
    assert neuron_costs(weight, 16, 1, join="laggy", positions=reverse).tolist() == [2, 16]


def test_unknown_join_is_refused():
    with pytest.raises(ValueError, match="neuron_costs: join 'lazy' must be one of dual, laggy"):
        neuron_costs(np.ones((1, 4)), 4, 1, join="lazy")


def test_a_wide_fetch_reads_a_neurons_entries_in_groups():
    # 1 pair in 5 entries (header + 4 chunks): fetch-bound at 5, 3 and 2 cycles.
    weight = np.zeros((1, 64))
    weight[0, [0, 16, 32, 48]] = 1
    activity = np.zeros(64)
    activity[0] = 1
    assert [neuron_costs(weight, 16, 1, activity, fetch_width=k)[0] for k in (1, 2, 4)] \
        == [5, 3, 2]
