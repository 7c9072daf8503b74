"""Assigning neurons to TPPEs: every neuron once, balanced, deterministic."""

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hwgen.compiler.scheduler.assign import neuron_costs, schedule_layer


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
