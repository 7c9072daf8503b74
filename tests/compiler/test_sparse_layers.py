"""Unrolled layers held sparse end to end (compiler/passes/unroll.py, the scheduler): the
sparse paths give what the dense ones give on the same matrix, and a convolution far
beyond what a dense matrix could hold compiles."""

import numpy as np
import pytest
import scipy.sparse

from hwgen.compiler import hardware_config
from hwgen.compiler.ir import LIF, Conv2d, Input, Model
from hwgen.compiler.passes.legalise import legalise
from hwgen.compiler.scheduler import assign
from hwgen.compiler.scheduler.assign import neuron_costs
from hwgen.compiler.scheduler.fibers import WeightFiber
from hwgen.compiler.scheduler.program import _in_slot_order, compile_program


def random_sparse(rng, rows, cols, density):
    weight = rng.integers(-7, 8, (rows, cols)) * (rng.random((rows, cols)) < density)
    return weight, scipy.sparse.csr_array(weight)


@pytest.mark.parametrize("chunk", [4, 16, 64])
def test_a_fiber_from_the_nonzeros_is_the_fiber_of_the_dense_row(chunk):
    rng = np.random.default_rng(chunk)
    dense, sparse = random_sparse(rng, 30, 200, 0.1)
    dense[3] = 0                                  # an empty row
    dense[4, :chunk] = 5                          # a full chunk (mask bit W - 1 set)
    sparse = scipy.sparse.csr_array(dense)
    for n in range(len(dense)):
        row = slice(sparse.indptr[n], sparse.indptr[n + 1])
        got = WeightFiber.from_sparse(sparse.indices[row], sparse.data[row], chunk)
        assert got == WeightFiber.encode(dense[n], chunk)


@pytest.mark.parametrize("join", ["dual", "laggy"])
@pytest.mark.parametrize("fetch_width", [1, 4])
def test_sparse_costs_are_the_dense_costs(join, fetch_width, monkeypatch):
    rng = np.random.default_rng(3)
    dense, sparse = random_sparse(rng, 40, 100, 0.2)
    activity = rng.random(100)
    positions = rng.permutation(np.concatenate([np.arange(100), [-1] * 12]))
    for act in (None, activity):
        expected = neuron_costs(dense, 8, 2, act, join, positions, fetch_width)
        # below the limit: bit for bit (the schedule of every layer that compiled before)
        assert np.array_equal(neuron_costs(sparse, 8, 2, act, join, positions, fetch_width),
                              expected)
        monkeypatch.setattr(assign, "DENSE_PAIRS_LIMIT", 0)
        monkeypatch.setattr(assign, "ROW_BLOCK", 7)
        assert np.allclose(neuron_costs(sparse, 8, 2, act, join, positions, fetch_width),
                           expected, rtol=0, atol=1e-9)
        monkeypatch.undo()


def test_columns_move_to_their_slots():
    rng = np.random.default_rng(5)
    dense, sparse = random_sparse(rng, 9, 20, 0.3)
    slots = list(rng.permutation(20)) + [-1] * 4
    expected = np.zeros((9, 24), dtype=np.int64)
    for s, k in enumerate(slots):
        if k >= 0:
            expected[:, s] = dense[:, k]
    permuted = _in_slot_order(sparse, slots)
    assert np.array_equal(permuted.toarray(), expected) and permuted.has_sorted_indices
    assert np.array_equal(_in_slot_order(dense, slots).toarray(), expected)


def test_a_convolution_beyond_a_dense_matrix_compiles():
    """32 x 32 x 32 -> 32 x 32 x 32, 3 x 3: a 32,768 x 32,768 matrix (1.07 G entries, more
    than 16 times what the compiler held densely) with 20 % of its kernel weights nonzero."""
    rng = np.random.default_rng(9)
    weight = rng.integers(-7, 8, (32, 32, 3, 3)) * (rng.random((32, 32, 3, 3)) < 0.2)
    model = Model("big", 4)
    model.add(Input("x", (32, 32, 32)))
    model.add(Conv2d("c", weight, padding=1, weight_bits=4, acc_bits=12), "x")
    model.add(LIF("l", np.full(32 * 32 * 32, 9), v_bits=12), "c")
    (layer,) = legalise(model).layers
    matrix = layer.dense.weight
    assert scipy.sparse.issparse(matrix) and matrix.shape == (32768, 32768)
    # every output pixel away from the border sees its channel's whole kernel
    assert matrix.nnz == pytest.approx(np.count_nonzero(weight) * 1024, rel=0.07)
    program = compile_program(model, hardware_config.load(None, ["tppes=16"]))
    plan = program.layers[0]
    assert sorted(n for ns in plan.tppe_neurons for n in ns) == list(range(32768))
    chunk_entries = sum(sum(1 for e in entries) for entries in program.entries)
    assert chunk_entries >= 32768 + matrix.nnz // program.config.chunk
