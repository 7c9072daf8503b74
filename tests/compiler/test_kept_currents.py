"""Membrane shortcuts kept instead of recomputed (``keep_currents``): which layers add
which earlier layer's currents, what their matrices leave out, their widths, and the
kept-current buffers the scheduler allocates."""

import numpy as np
import pytest

from attention_models import AttentionDraw, sdsa_model
from hwgen import bundled
from hwgen.compiler import hardware_config
from hwgen.compiler.ir import LIF, Add, Dense, Flatten, Input, Model
from hwgen.compiler.passes.legalise import LayerChain, SpikingDense, legalise, legalise_for
from hwgen.compiler.scheduler.program import _current_buffers, compile_program
from hwgen.errors import ConfigError


def _model(name, size, seed, inputs=None):
    """A model of T = 4 on an input ``x`` of ``inputs`` (default ``size``) neurons, and a
    function adding to it a random 3-bit dense op of ``size`` outputs."""
    rng = np.random.default_rng(seed)
    model = Model(name, 4)
    model.add(Input("x", (inputs or size,)))

    def dense(op, source, fan_in=size):
        model.add(Dense(op, rng.integers(-3, 4, (size, fan_in)), weight_bits=3, acc_bits=7),
                  source)
    return model, dense


def _stream_model():
    """x -> a = lif(A x) -> b = lif(B a + A x) -> c = lif(C b + B a + A x)."""
    model, dense = _model("stream", 10, 1, inputs=12)
    dense("A", "x", fan_in=12)
    model.add(LIF("a", np.full(10, 3), v_bits=8), "A")
    dense("B", "a")
    model.add(Add("AB"), ["B", "A"])
    model.add(LIF("b", np.full(10, 3), v_bits=9), "AB")
    dense("C", "b")
    model.add(Add("ABC"), ["C", "AB"])
    model.add(LIF("c", np.full(10, 3), v_bits=9), "ABC")
    return model.validate()


def test_a_stream_of_currents_is_added_not_recomputed():
    model = _stream_model()
    kept = {layer.name: layer for layer in legalise(model).layers}
    recomputed = {layer.name: layer for layer in legalise(model, keep_currents=False).layers}
    assert [kept[n].adds_current for n in "abc"] == [None, "a", "b"]
    assert [recomputed[n].adds_current for n in "abc"] == [None, None, None]
    # b's matrix is B alone (it reads only a); recomputed, it reads the input as well
    assert kept["b"].sources == ("a",) and kept["b"].dense.weight.shape == (10, 10)
    assert set(recomputed["b"].sources) == {"a", "x"}
    weight = model["B"].weight
    assert np.array_equal(kept["b"].dense.weight.toarray(), weight)
    # the width covers the whole sum the neurons receive, not only their own matrix's
    assert kept["c"].dense.acc_bits == recomputed["c"].dense.acc_bits


def test_the_chain_follows_the_programs_configuration():
    model = _stream_model()
    for keep in (0, 1):
        program = compile_program(model, hardware_config.load(None, [f"keep_currents={keep}"]))
        chain = legalise_for(model, program.summary()["config"])
        adds = {layer.name: layer.adds_current for layer in chain.layers}
        assert [adds[n] is not None for n in "abc"] == [False, bool(keep), bool(keep)]
        # recomputed, b reads the input again: a copy of it is kept (a layer of its own)
        assert len(chain.layers) == 4 - keep
        assert [layer.adds_current for layer in chain.layers] == \
            [layer.adds_current for layer in legalise_for(model, program.config).layers]


def test_an_add_that_reaches_the_current_twice_is_recomputed():
    model, dense = _model("twice", 6, 2)
    dense("A", "x")
    model.add(LIF("a", np.full(6, 2), v_bits=8), "A")
    model.add(Flatten("A_again"), "A")
    model.add(Add("AA"), ["A", "A_again"])            # 2 A x: not one kept A
    model.add(LIF("b", np.full(6, 2), v_bits=9), "AA")
    chain = legalise(model.validate())
    assert [layer.adds_current for layer in chain.layers] == [None] * len(chain.layers)
    # 2 A x recomputed from the input, which b then reads again
    assert "x" in chain.layers[-1].sources


def test_the_scheduler_gives_adding_layers_the_keepers_tppes():
    program = compile_program(_stream_model(), hardware_config.load(None, ["tppes=3"]))
    a, b, c = program.layers
    assert a.tppe_neurons == b.tppe_neurons == c.tppe_neurons
    assert (a.current_write, a.current_read) == (1, 0)
    assert (b.current_write, b.current_read) == (1, 1)        # in place along the chain
    assert (c.current_write, c.current_read) == (0, 1)
    assert program.current_buffers == 1 and program.current_depth == 4
    assert program.memory_bits()["tppe0_kept_currents"] == (4, program.lanes
                                                            * program.config.acc_bits)


def _chain(*adds):
    """A chain of layers named 0, 1, ...; layer i adds the currents of ``adds[i]``."""
    dense = Dense("d", np.ones((1, 1), dtype=int), weight_bits=2, acc_bits=3)
    return LayerChain(Input("x", (1,)), tuple(
        SpikingDense(dense, LIF(str(i), np.ones(1), v_bits=4), adds_current=a)
        for i, a in enumerate(adds)))


@pytest.mark.parametrize("adds, buffers", [
    ((None, "0", "1"), [(1, 0), (1, 1), (0, 1)]),                   # one stream, in place
    ((None, "0", "0"), [(1, 0), (0, 1), (0, 1)]),                   # two readers of one
    ((None, "0", "0", "2"), [(1, 0), (0, 1), (1, 1), (0, 1)]),      # the last one reuses it
    ((None, None, "0", "1"), [(1, 0), (2, 0), (0, 1), (0, 2)]),     # two streams alive
    ((None, "0", None, "2"), [(1, 0), (0, 1), (1, 0), (0, 1)]),     # a freed buffer reused
    ((None, "0", "1", "0"), [(1, 0), (2, 1), (0, 2), (0, 1)]),      # 0 still read after 1
])
def test_kept_current_buffers(adds, buffers):
    assert _current_buffers(_chain(*adds)) == buffers


def test_keep_currents_is_validated():
    with pytest.raises(ConfigError, match="keep_currents = 2 must be 0 or 1"):
        hardware_config.load(None, ["keep_currents=2"])


def test_the_bundled_transformer_keeps_its_residual_stream():
    program = compile_program(bundled.digits_transformer_model(), hardware_config.load())
    adds = {plan.name: plan.adds_current for plan in program.layers if plan.adds_current}
    assert adds == {"blocks.0.attn.shortcut_lif": "patch_embed.final_lif",
                    "blocks.0.mlp.lif1": "blocks.0.attn.shortcut_lif",
                    "head_lif": "blocks.0.mlp.lif1"}
    # nothing reads the model's input again: no copy of it is kept
    assert program.layers[0].name == "patch_embed.final_lif"


def test_a_generated_block_keeps_its_stream():
    draw = AttentionDraw(seed=1, weight_bits=3, thresholds=("one",) * 5, leak_shift=0,
                         fire="ge", reset="zero", order="same_step", v_bits=8, stream=True)
    chain = legalise(sdsa_model(draw, (2, 2), 4, 2))
    adds = {layer.name: layer.adds_current for layer in chain.layers if layer.adds_current}
    assert adds == {"attn.out_lif": "embed_lif", "attn.tail_lif": "attn.out_lif"}


def test_the_current_is_taken_from_a_layer_before_the_one_adding_it():
    # a and a_again both integrate A; l, between them, adds A: a's kept currents
    model, dense = _model("before", 5, 3)
    dense("A", "x")
    model.add(LIF("a", np.full(5, 2), v_bits=8), "A")
    dense("B", "a")
    model.add(Add("AB"), ["B", "A"])
    model.add(LIF("l", np.full(5, 2), v_bits=9), "AB")
    model.add(LIF("a_again", np.full(5, 3), v_bits=8), "A")
    chain = legalise(model.validate())
    assert {layer.name: layer.adds_current for layer in chain.layers}["l"] == "a"
    program = compile_program(model, hardware_config.load(None, ["tppes=2"]))
    buffers = {plan.name: (plan.current_write, plan.current_read) for plan in program.layers}
    assert (buffers["a"], buffers["l"], buffers["a_again"]) == ((1, 0), (0, 1), (0, 0))
