"""activation_memory = shared (compiler/scheduler/shared_activations.py): which models may
hold region 1 once for all TPPEs, the bank shift found on their programs' reads, the
memories they then hold, and every refusal, named."""

import numpy as np
import pytest

from hwgen import bundled
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler import shared_activations
from hwgen.compiler.ir import LIF, Dense, Input, Model, Readout
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import ConfigError, FitError, UnsupportedError
from hwgen.gateware.geometry import Geometry
from conv_models import cnn

SHARED = ["mapping=tiles", "activation_memory=shared"]


def compiled(model, *settings):
    return compile_program(model, hardware_config.load(None, [*SHARED, *settings]))


@pytest.mark.parametrize("settings, need", [
    (["mapping=ranges"], "mapping = 'tiles' (not 'ranges')"),
    (["join=laggy"], "join = 'dual' (not 'laggy')"),
    (["fetch_width=2"], "fetch_width = 1 (not 2)"),
    (["write_lanes=2"], "write_lanes = 1 (not 2)"),
    (["tppes=3"], "tppes a power of two >= 2 (not 3)"),
    (["tppes=1"], "tppes a power of two >= 2 (not 1)"),
    (["dataflow=sequential"], "dataflow = 'temporal_parallel'"),
])
def test_the_configurations_it_needs_are_named(settings, need):
    with pytest.raises(ConfigError, match=r"activation_memory = 'shared' needs .*"
                                          + need.replace("(", r"\(").replace(")", r"\)")):
        hardware_config.load(None, [*SHARED, *settings])


def test_an_unknown_activation_memory_is_refused():
    with pytest.raises(ConfigError, match="activation_memory = 'copy' must be one of "
                                          "copies, shared"):
        hardware_config.load(None, ["activation_memory=copy"])


def test_the_bundled_cnn_shares_its_second_layers_input():
    program = compiled(bundled.digits_cnn_model())
    assert [plan.in_step for plan in program.layers] == [False, True, False]
    # conv2 has stride 2: its TPPEs' windows are two positions apart, so the bank is the
    # chunk index's bit 1 (one chunk per position)
    assert program.shared_shift == 1
    memories = program.memory_bits()
    copies = compile_program(bundled.digits_cnn_model(), hardware_config.load(
        None, ["mapping=tiles"])).memory_bits()
    depth = program.config.spike_depth
    assert memories["tppe1_spike_words"] == (depth, 8)
    assert copies["tppe1_spike_words"] == (2 * depth, 8)
    assert memories["shared_words0"] == (depth // 16 // 2, 16 * 8)
    assert memories["shared_masks1"] == (depth // 16 // 2, 16)
    assert sum(w * d for d, w in memories.values()) < sum(w * d for d, w in copies.values())
    assert program.summary()["shared_shift"] == 1


def test_a_layer_reading_region_1_must_run_in_step():
    with pytest.raises(UnsupportedError, match=r"^lif2: reads region 1, which "
                                               r"activation_memory = 'shared' holds once "
                                               r"for all TPPEs, but does not run in step: "
                                               r"it is not tiled"):
        compiled(bundled.digits_model())


def test_several_time_chunks_are_refused():
    model, _ = cnn(7, channels=3, side=5)
    with pytest.raises(UnsupportedError, match=r"activation_memory = 'shared' needs one "
                                               r"time chunk \(time_chunk = T = 4, not 2\)"):
        compiled(model, "time_chunk=2")


def test_a_model_of_one_layer_has_nothing_to_share():
    model = Model("one", 4)
    model.add(Input("x", (8,)))
    model.add(Dense("d", np.ones((3, 8), dtype=int), weight_bits=2, acc_bits=6), "x")
    model.add(LIF("l", np.full(3, 2), v_bits=6), "d")
    model.add(Readout("r"), "l")
    with pytest.raises(UnsupportedError, match="the model has one layer, so no layer "
                                               "reads region 1"):
        compiled(model.validate())


def test_reads_that_meet_in_a_bank_at_every_shift_are_refused(monkeypatch):
    # two TPPEs, 3 chunk bits, bank = (c >> shift) mod 2: chunks 0 and 1 meet at shifts 1
    # and 2, chunks 0 and 2 at shifts 0 and 2 (the first meeting, at shift 0, is named)
    walks = {0: [[None], [0, 0]], 1: [[None], [1, 2]]}
    monkeypatch.setattr(shared_activations, "shared_reads",
                        lambda layouts, words, layers: walks[words])

    class Plan:
        def __init__(self, name):
            self.name = name

    with pytest.raises(UnsupportedError, match=r"^conv2: TPPEs 0 and 1 read chunks 0 and 2 "
                                               r"of region 1 in the same cycle \(entry 1 of "
                                               r"the layer's walk\), which meet in one of "
                                               r"the 2 banks at every bank shift"):
        shared_activations.bank_shift(None, [0, 1], [Plan("conv1"), Plan("conv2")], 3)


def test_the_smallest_shift_that_separates_every_cycles_reads_is_taken(monkeypatch):
    # chunks 0 and 1 meet at shift 1 (banks 0, 0), not at shift 0 (banks 0, 1)
    walks = {0: [[], [0, None, 2]], 1: [[], [1, 3, None]]}
    monkeypatch.setattr(shared_activations, "shared_reads",
                        lambda layouts, words, layers: walks[words])

    class Plan:
        name = "layer"

    assert shared_activations.bank_shift(None, [0, 1], [Plan(), Plan()], 3) == 0
    walks[1] = [[], [2, 3, None]]         # 0 and 2 meet at shift 0, not at shift 1
    assert shared_activations.bank_shift(None, [0, 1], [Plan(), Plan()], 3) == 1


def test_every_bank_holds_a_chunk_of_a_small_region():
    """32 TPPEs, 16-neuron chunks and a 3 x 3 map: the widest input is 9 chunks, but each
    of the 32 banks needs a row, so region 1 holds 32 chunks (a bank chunk index needs 5
    bits; with 4 the compiler found no bank shift at all)."""
    model, _ = cnn(3, channels=1, side=3)
    program = compiled(model, "tppes=32", "chunk=16")
    assert program.config.spike_depth == 32 * 16 and program.shared_shift == 0
    assert program.memory_bits()["shared_masks31"] == (1, 16)
    Geometry.of(program)        # the gateware's geometry takes it


def test_a_spike_depth_below_a_chunk_per_bank_is_refused():
    model, _ = cnn(3, channels=1, side=3)
    with pytest.raises(FitError, match=r"config spike_depth = 256, but the widest layer "
                                       r"input needs 144 activation words \(padded to "
                                       r"16-neuron chunks\) and 32 banks of the shared "
                                       r"activation memory one chunk each; raise it"):
        compiled(model, "tppes=32", "chunk=16", "spike_depth=256")
