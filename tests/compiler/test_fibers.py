"""Spike and weight fibers: exact round trips and the inner join's matched pairs."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hwgen.compiler.scheduler.fibers import (SpikeFiber, WeightFiber, WeightMemory,
                                             matched_pairs, prefix_popcount)

chunks = st.sampled_from([4, 8, 16])


@given(words=st.lists(st.integers(0, 255), max_size=70), chunk=chunks)
def test_spike_fiber_round_trip(words, chunk):
    fiber = SpikeFiber.encode(words, chunk)
    decoded = fiber.decode()
    assert decoded[:len(words)] == words and not any(decoded[len(words):])
    # silent neurons take no word; each chunk's words are packed from its first slot
    assert len(fiber.words) == sum(1 for w in words if w)
    for c, mask in enumerate(fiber.masks):
        assert sorted(a - c * chunk for a in fiber.words if a // chunk == c) == \
            list(range(bin(mask).count("1")))


@given(column=st.lists(st.integers(-8, 7), max_size=70), chunk=chunks)
def test_weight_fiber_round_trip(column, chunk):
    fiber = WeightFiber.encode(np.array(column, dtype=int), chunk)
    assert fiber.decode(len(column)) == column
    assert all(mask for _, mask in fiber.entries)          # empty chunks are skipped
    assert len(fiber.values) == sum(1 for w in column if w)


def test_empty_and_full_masks():
    assert SpikeFiber.encode([0] * 8, 8).masks == [0]
    assert SpikeFiber.encode([1] * 8, 8).masks == [0xFF]
    assert WeightFiber.encode(np.zeros(8), 8).entries == []
    assert WeightFiber.encode(np.ones(8), 8).entries == [(0, 0xFF)]


@given(data=st.data(), chunk=chunks)
def test_matched_pairs_find_exactly_the_products(data, chunk):
    size = data.draw(st.integers(1, 50))
    words = data.draw(st.lists(st.integers(0, 15), min_size=size, max_size=size))
    column = data.draw(st.lists(st.integers(-3, 3), min_size=size, max_size=size))
    spikes, weights = SpikeFiber.encode(words, chunk), WeightFiber.encode(np.array(column), chunk)
    pairs = matched_pairs(spikes, weights)
    expected = [k for k in range(size) if words[k] and column[k]]
    assert [c * chunk + bit for c, bit, _, _ in pairs] == expected
    for c, bit, word_address, weight_index in pairs:
        assert spikes.words[word_address] == words[c * chunk + bit]
        assert weights.values[weight_index] == column[c * chunk + bit]


def test_prefix_popcount():
    assert [prefix_popcount(0b1011, bit) for bit in range(5)] == [0, 1, 2, 2, 3]


@given(st.lists(st.lists(st.integers(-3, 3).filter(bool), min_size=1, max_size=6),
                max_size=30))
def test_weight_memory_stores_each_run_once_and_every_run_reads_back(runs):
    memory = WeightMemory()
    bases = [memory.place(run) for run in runs]
    for run, base in zip(runs, bases):
        assert memory.values[base:base + len(run)] == run
    # nothing stored twice: a run already readable somewhere was not appended
    assert len(memory.values) <= sum(len(run) for run in runs)
    again = WeightMemory()
    assert [again.place(run) for run in runs] == bases          # deterministic


def test_weight_memory_points_a_shorter_run_into_a_longer_one():
    memory = WeightMemory()
    assert memory.place([1, 2, 3]) == 0
    assert memory.place([2, 3]) == 1 and memory.place([3]) == 2
    assert memory.place([3, 1]) == 3 and memory.values == [1, 2, 3, 3, 1]
