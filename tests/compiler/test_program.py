"""The program compiler: the Python program model must reproduce the reference, and
every model that does not fit is refused with a message naming the parameter."""

import re

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler import hardware_config
from hwgen.compiler.hardware_config import FETCH_WIDTHS
from hwgen.errors import ConfigError, FitError, UnsupportedError
from hwgen.compiler.ir import LIF, Dense, Flatten, Input, Leak, Model, Readout
from hwgen.compiler.scheduler.program import _in_slot_order, compile_program
from hwgen import bundled
from hwgen.compiler.ir import reference
import program_model
from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.sim.workloads import ALL_MODES, NeuronMode, random_workload


def config(*overrides):
    return hardware_config.load(None, overrides)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), tppes=st.sampled_from([1, 3, 4, 16]),
       chunk=st.sampled_from([4, 8, 16]), T=st.sampled_from([1, 4, 8]),
       mode=st.sampled_from(ALL_MODES), density=st.sampled_from([0.0, 0.3, 1.0]),
       weight_density=st.sampled_from([0.05, 0.5, 1.0]),
       fetch_width=st.sampled_from(FETCH_WIDTHS))
def test_program_model_matches_reference(seed, tppes, chunk, T, mode, density, weight_density,
                                         fetch_width):
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 40, size=3)]
    w = random_workload(seed, sizes, T, samples=2, spike_density=density,
                        weight_density=weight_density, modes=(mode,))
    program = compile_program(w.model, config(f"tppes={tppes}", f"chunk={chunk}",
                                              f"fetch_width={fetch_width}"))
    trace = reference.run(w.model, w.spikes)
    layers, membranes = program_model.run(program, w.spikes)
    for plan in program.layers:
        assert np.array_equal(layers[plan.name], spikes_to_words(trace.spikes[plan.name]))
    assert np.array_equal(membranes, trace.membranes[program.layers[-1].name])


def test_bundled_model_program():
    model = bundled.digits_model()
    inputs, _ = bundled.digits_test_set()
    program = compile_program(model, config())
    trace = reference.run(model, inputs[:3])
    layers, _ = program_model.run(program, trace.spikes["pixels"])
    assert np.array_equal(layers["lif2"], spikes_to_words(trace.spikes["lif2"]))


def test_bundled_cnn_program_computes_the_reference_and_shares_its_kernels():
    """The unrolled convolutions of @digits_cnn, walked entry by entry, spike as the
    reference does; each TPPE stores a run of kernel values once however many output
    pixels point at it."""
    model = bundled.digits_cnn_model()
    inputs, _ = bundled.digits_test_set()
    # two TPPEs: every channel of an output pixel on one (LPT deals 16 positions of equal
    # cost alternately), so that a pixel's chunks, placed position-major, repeat per pixel
    program = compile_program(model, config("tppes=2"))
    trace = reference.run(model, inputs[:3])
    layers, membranes = program_model.run(program, trace.spikes["pixels"])
    for plan in program.layers:
        assert np.array_equal(layers[plan.name], spikes_to_words(trace.spikes[plan.name]))
    assert np.array_equal(membranes, trace.membranes["lif3"])
    pointed = sum(int(np.count_nonzero(model[name].weight)) * n for name, n in
                  (("conv1", 4 * 4), ("conv2", 2 * 2))) + np.count_nonzero(model["fc3"].weight)
    stored = sum(len(w) for w in program.weights)
    assert stored < pointed / 2


def test_auto_values_are_sized_to_the_model():
    program = compile_program(bundled.digits_model(), config())
    c = program.config
    assert (c.timesteps, c.weight_bits, c.acc_bits, c.v_bits, c.lif_steps) == (8, 4, 9, 10, 1)
    assert compile_program(bundled.digits_model(),
                           config("lif_steps=auto")).config.lif_steps == 2
    assert c.spike_depth == 128                  # 128 hidden neurons, padded to chunks
    # a region holds a chunk for each of the write bus's lanes (banks)
    assert compile_program(bundled.digits_model(), config(
        "chunk=32", "write_lanes=8")).config.spike_depth == 256
    assert c.program_depth == max(len(e) for e in program.entries)
    assert c.weight_depth == max(len(w) for w in program.weights)


def test_output_slots_are_chunk_aligned_per_tppe():
    program = compile_program(bundled.digits_model(), config("tppes=3", "chunk=16"))
    first = program.layers[0]
    for neurons in first.tppe_neurons:
        slots = [first.output_slots.index(n) for n in neurons]
        assert slots == list(range(slots[0], slots[0] + len(slots)))
        assert slots[0] % 16 == 0
    assert program.layers[1].input_slots == first.output_slots


def test_compilation_is_deterministic():
    a = compile_program(bundled.digits_model(), config("tppes=5"))
    b = compile_program(bundled.digits_model(), config("tppes=5"))
    assert a.entries == b.entries and a.weights == b.weights and a.summary() == b.summary()


@pytest.mark.parametrize("overrides, message", [
    (["timesteps=4"], "config timesteps = 4, but model 'digits_mlp' runs 8 time steps"),
    (["weight_bits=3"], "config weight_bits = 3 is too small: dense 'fc1' has 4-bit weights"),
    (["acc_bits=8"], "config acc_bits = 8 is too small: dense 'fc2' needs a 9-bit accumulator"),
    (["v_bits=8"], "config v_bits = 8 is too small: lif 'lif1' has a 10-bit membrane"),
    (["spike_depth=64"], "model 'digits_mlp' does not fit: config spike_depth = 64, but the "
                         "widest layer input needs 128 activation words (padded to 16-neuron "
                         "chunks); raise it"),
    (["chunk=32", "write_lanes=8", "spike_depth=128"], "model 'digits_mlp' does not fit: "
     "config spike_depth = 128, but the widest layer input needs 128 activation words "
     "(padded to 32-neuron chunks) and 8 write lanes one chunk each; raise it"),
    (["tppes=4", "program_depth=100"], "model 'digits_mlp' does not fit: config program_depth "
     "= 100, but TPPE 1 needs 187 fiber-program entries; raise it or use more TPPEs"),
    (["tppes=4", "weight_depth=500"], "model 'digits_mlp' does not fit: config weight_depth = "
     "500, but TPPE 0 holds 618 weight words (its nonzero weights, each run stored once); "
     "raise it or use more TPPEs"),
    (["lif_steps=3"], "config lif_steps = 3 must divide the 8 time steps processed together "
                      "(time_chunk)"),
    (["time_chunk=3"], "config time_chunk = 3 must divide the model's 8 time steps"),
    (["spike_depth=192"], "config spike_depth = 192 must be a power of two and at least the "
                          "chunk width 16"),
])
def test_models_that_do_not_fit_are_refused(overrides, message):
    with pytest.raises(FitError, match=re.escape(message)):
        compile_program(bundled.digits_model(), config(*overrides))


@pytest.mark.parametrize("overrides, message", [
    (["tppes=0"], "--set tppes=0: tppes = 0 must be an integer between 1 and 32"),
    (["tppes=33"], "--set tppes=33: tppes = 33 must be an integer between 1 and 32"),
    (["chunk=12"], "--set chunk=12: chunk = 12 must be a power of two (4, 8, 16, 32 or 64)"),
    (["timesteps=1025"], "--set timesteps=1025: timesteps = 1025 must be an integer between 1 and 1024 or 'auto'"),
    (["time_chunk=17"], "--set time_chunk=17: time_chunk = 17 must be an integer between 1 and 16 or 'auto'"),
    (["dataflow=diagonal"], "--set dataflow=diagonal: dataflow = 'diagonal' must be one of temporal_parallel, sequential"),
    (["dataflow=sequential", "time_chunk=2"], "--set time_chunk=2: dataflow = 'sequential' runs one step at a time; time_chunk = 2 contradicts it"),
    (["timesteps=8", "time_chunk=3"], "--set time_chunk=3: time_chunk = 3 must divide timesteps = 8"),
    (["join=lazy"], "--set join=lazy: join = 'lazy' must be one of dual, laggy"),
    (["join=3"], "--set join=3: join = 3 must be one of dual, laggy"),
    (["fetch_width=3"], "--set fetch_width=3: fetch_width = 3 must be one of 1, 2, 4, 8"),
    (["fetch_width=wide"], "--set fetch_width=wide: fetch_width = 'wide' must be one of 1, 2, 4, 8"),
    (["write_lanes=3"], "--set write_lanes=3: write_lanes = 3 must be one of 1, 2, 4, 8"),
    (["write_lanes=16"], "--set write_lanes=16: write_lanes = 16 must be one of 1, 2, 4, 8"),
    (["fifo_depth=1"], "--set fifo_depth=1: fifo_depth = 1 must be an integer between 2 and 64"),
    (["banana=1"], "--set banana=1: unknown parameter 'banana'"),
    (["tppes"], "--set 'tppes': expected key=value"),
    (["time_chunk=4", "lif_steps=3"], "--set lif_steps=3: lif_steps = 3 must divide time_chunk = 4"),
])
def test_bad_configurations_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config(*overrides)


def test_configuration_files(tmp_path):
    (tmp_path / "hw.toml").write_text("[hardware]\ntppes = 8\nchunk = 8\n")
    assert hardware_config.load(tmp_path / "hw.toml", ["tppes=2"]).to_json()["tppes"] == 2
    (tmp_path / "hw.json").write_text('{"tppes": 3}')
    assert hardware_config.load(tmp_path / "hw.json").tppes == 3
    (tmp_path / "laggy.toml").write_text('join = "laggy"\n')
    assert hardware_config.load(tmp_path / "laggy.toml").join == "laggy"
    (tmp_path / "join.json").write_text('{"join": ["laggy"]}')
    with pytest.raises(ConfigError, match=re.escape(
            "join.json: join = ['laggy'] must be one of dual, laggy")):
        hardware_config.load(tmp_path / "join.json")
    (tmp_path / "bad.toml").write_text("tppes = = 3")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        hardware_config.load(tmp_path / "bad.toml")
    (tmp_path / "unknown.toml").write_text("speed = 3")
    with pytest.raises(ConfigError, match="unknown.toml: unknown parameter 'speed'"):
        hardware_config.load(tmp_path / "unknown.toml")
    with pytest.raises(ConfigError, match="missing.toml: cannot read"):
        hardware_config.load(tmp_path / "missing.toml")


def test_ops_the_accelerator_cannot_run_are_refused_by_name():
    from hwgen.compiler.ir import LI, Conv2d, MaxPool2d
    model = Model("m", 2)
    model.add(Input("x", (2, 4, 4)))
    model.add(Conv2d("conv", np.ones((3, 2, 2, 2), dtype=int), weight_bits=2, acc_bits=5), "x")
    model.add(LIF("lif", np.ones(27, dtype=int), v_bits=6), "conv")
    model.add(MaxPool2d("pool", 2), "lif")       # a max pool of spikes: not a synapse
    model.add(Flatten("flat"), "pool")
    model.add(Dense("fc", np.ones((2, 3)), weight_bits=2, acc_bits=4), "flat")
    model.add(LIF("out", np.ones(2, dtype=int), v_bits=6), "fc")
    with pytest.raises(UnsupportedError, match="max_pool2d 'pool': op type 'max_pool2d' is "
                                               "not supported by the accelerator yet"):
        compile_program(model, config())
    # a non-spiking integrator runs as the last layer only, read out by its membranes
    model = _chain((Dense("fc", np.ones((2, 4)), weight_bits=2, acc_bits=4), "x"),
                   (LI("li", v_bits=6), "fc"), (Readout("r", "final_membrane"), "li"))
    assert compile_program(model, config()).output_size == 2
    model = _chain((Dense("fc", np.ones((2, 4)), weight_bits=2, acc_bits=4), "x"),
                   (LI("li", v_bits=6), "fc"))
    with pytest.raises(UnsupportedError, match="li 'li': a non-spiking integrator runs on "
                                               "the accelerator only as the last layer"):
        compile_program(model, config())
    model = _chain((Dense("fc", np.ones((2, 4)), weight_bits=2, acc_bits=4), "x"),
                   (LIF("lif", np.array([1, 1]), v_bits=4), "fc"))
    model.add(Readout("r", "spike_count"), "lif")
    assert compile_program(model, config()).output_size == 2


def _chain(*ops_and_inputs):
    model = Model("m", 2)
    model.add(Input("x", (4,)))
    for op, source in ops_and_inputs:
        model.add(op, source)
    return model


def test_unsupported_structures_are_refused_at_compile_time():
    dense = Dense("fc", np.ones((2, 4)), weight_bits=2, acc_bits=4)
    lif = LIF("lif", np.array([1, 1]), v_bits=4)
    with pytest.raises(UnsupportedError, match="model 'm': has no dense -> lif layer to run"):
        compile_program(_chain(), config())
    with pytest.raises(UnsupportedError, match="readout 'r': op type 'readout' is not "
                                               "supported by the accelerator yet"):
        compile_program(_chain((Readout("r"), "x")), config())
    model = _chain((dense, "x"), (lif, "fc"),
                   (Dense("fc2", np.ones((2, 4)), weight_bits=2, acc_bits=4), "x"))
    with pytest.raises(UnsupportedError, match="dense 'fc2': its output feeds no neuron"):
        compile_program(model, config())
    from hwgen.compiler.ir import SpikeMatmul
    model = Model("m", 2)
    model.add(Input("t", (2, 4)))
    model.add(Flatten("t2", 0, 0), "t")           # a relabelled copy: K and V alike
    model.add(SpikeMatmul("kv"), ["t", "t2"])
    model.add(Flatten("f"), "kv")
    model.add(LIF("l", np.ones(4, dtype=int), v_bits=6), "f")
    with pytest.raises(UnsupportedError, match=re.escape(
            "spike_matmul 'kv': the accelerator runs spike_matmul only as the second input "
            "of one current_matmul (Q (K^T V)); it feeds 'f'")):
        compile_program(model, config())


def _product(k="t", v="t2", consumer=None):
    """Q (K^T V) of the input's spikes into a lif op (Spikformer's attention), with Q = the
    input and K, V as named; ``consumer``: a second reader of the product."""
    from hwgen.compiler.ir import CurrentMatmul, MaxPool2d, SpikeMatmul
    model = Model("m", 2)
    model.add(Input("t", (2, 4, 4)))
    model.add(Flatten("t2", 0, 0), "t")           # a relabelled copy of the input
    if k == "pool":
        model.add(MaxPool2d("pool", 2), "t")      # a max pool of spikes, and its copy
        model.add(Flatten("pool2", 0, 0), "pool")
    model.add(SpikeMatmul("ktv"), [k, v])
    model.add(CurrentMatmul("qktv"), ["t", "ktv"])
    model.add(LIF("attn", np.ones(32, dtype=int), v_bits=6), "qktv")
    if consumer is not None:
        model.add(consumer, "qktv")
    return model


def test_q_ktv_runs_as_three_layers_and_its_misuses_are_refused():
    plans = [plan.name for plan in compile_program(_product(), config()).layers]
    assert plans == ["t", "ktv.values", "ktv", "attn"]      # the input kept for Q
    with pytest.raises(UnsupportedError, match=re.escape(
            "current_matmul 'qktv': the accelerator runs current_matmul only as the whole "
            "input of one lif op (Spikformer's attn_lif); it feeds 'attn', 'attn2'")):
        compile_program(_product(consumer=LIF("attn2", np.ones(32, dtype=int), v_bits=6)),
                        config())
    from hwgen.compiler.ir import LI
    model = _product(consumer=None)
    model.add(LI("li", v_bits=8), "qktv")        # an integrator reading it too
    with pytest.raises(UnsupportedError, match=re.escape(
            "current_matmul 'qktv': the accelerator runs current_matmul only as the whole "
            "input of one lif op (Spikformer's attn_lif); it feeds 'attn', 'li'")):
        compile_program(model, config())
    with pytest.raises(UnsupportedError, match=re.escape(
            "current_matmul 'qktv': its K, max_pool2d 'pool', is not the output of a "
            "spiking op")):
        compile_program(_product(k="pool", v="pool2"), config())
    with pytest.raises(UnsupportedError, match=re.escape(
            "lif 'attn': reads Q (K^T V), whose products by per-step currents kept in the "
            "TPPEs the laggy join does not compute (config join = laggy); use join=dual")):
        compile_program(_product(), config("join=laggy"))
    model = _product()
    model.add(Flatten("flat"), "attn")
    model.add(Dense("d", np.ones((2, 32)), weight_bits=2, acc_bits=8), "flat")
    model.add(LIF("ktv.values", np.ones(2, dtype=int), v_bits=6), "d")
    with pytest.raises(UnsupportedError, match=re.escape(
            "lif 'ktv.values': its name is the one hwgen gives the layer keeping V of "
            "spike_matmul 'ktv'; rename it")):
        compile_program(model, config())


PER_NEURON = [NeuronMode(Leak.per_neuron([], frac_bits), mode.fire, mode.reset, mode.order)
              for frac_bits, mode in zip((1, 3, 8, 16) * 6,
                                         [m for m in ALL_MODES if m.leak.kind == "none"])]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), tppes=st.sampled_from([1, 3, 4]),
       chunk=st.sampled_from([4, 8]), T=st.sampled_from([1, 4, 8]),
       modes=st.lists(st.sampled_from(PER_NEURON + ALL_MODES[:3]), min_size=1, max_size=3))
def test_per_neuron_leaks_reach_every_neuron_entry(seed, tppes, chunk, T, modes):
    """Each NEURON entry carries its neuron's own multiplier (placement permutes neurons
    over TPPEs and slots, so a multiplier read by position would land on the wrong one)."""
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 30, size=4)]
    w = random_workload(seed, sizes, T, samples=3, spike_density=0.5, modes=tuple(modes))
    program = compile_program(w.model, config(f"tppes={tppes}", f"chunk={chunk}"))
    per_neuron = [op.leak for op in w.model.ops if isinstance(op, LIF)
                  and op.leak.kind == "per_neuron"]
    fields = program.layouts["neuron_entry"].fields
    if per_neuron:
        assert fields[-1].name == "leak"
        assert fields[-1].width == max(leak.frac_bits for leak in per_neuron) + 1
        assert {m.leak["kind"] for m in program.modes} >= {"per_neuron"}
        assert all("multipliers" not in m.leak for m in program.modes)
    else:
        assert "leak" not in [f.name for f in fields]
    trace = reference.run(w.model, w.spikes)
    layers, membranes = program_model.run(program, w.spikes)
    for plan in program.layers:
        assert np.array_equal(layers[plan.name], spikes_to_words(trace.spikes[plan.name]))
    assert np.array_equal(membranes, trace.membranes[program.layers[-1].name])


def test_the_leak_field_exists_only_where_a_layer_needs_it():
    """A program without per-neuron leaks packs the same words as before the field existed
    (so its Verilog is unchanged); with one, each header holds a[n] in F + 1 bits."""
    plain = random_workload(5, [12, 9, 7], 4, modes=(ALL_MODES[2],))
    program = compile_program(plain.model, config("tppes=2"))
    assert [f.name for f in program.layouts["neuron_entry"].fields] == [
        "theta", "bias", "slot", "empty", "chunk_last"]
    leaky = random_workload(5, [12, 9, 7], 4, modes=(
        ALL_MODES[2], NeuronMode(Leak.per_neuron([], 5), "ge", "subtract", "same_step")))
    program = compile_program(leaky.model, config("tppes=2"))
    assert program.layouts["neuron_entry"]["leak"].width == 6
    lif2 = leaky.model["lif2"]
    for p in range(2):
        layers = program_model.decode_entries(program, p)
        for plan_index, entries in enumerate(layers):
            plan = program.layers[plan_index]
            neurons = iter(plan.tppe_neurons[p])
            for kind, fields in entries:
                if kind == "neuron":
                    n = next(neurons)
                    assert fields["leak"] == (lif2.leak.multipliers[n] if plan.name == "lif2"
                                              else 0)
    assert program.modes[1].leak == {"kind": "per_neuron", "frac_bits": 5}
    assert program.modes[1].leak_bits == 6 and program.modes[0].leak_bits == 0


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS[1:])
def test_a_wide_fetch_program_puts_headers_and_layer_ends_on_group_bounds(fetch_width):
    from hwgen.compiler.instruction_format import TAG_LAYER_END, TAG_NEURON, TAG_PAD
    # 16 TPPEs for 10 outputs: some TPPEs have no neuron in the last layer (two LAYER_ENDs
    # in a row, each ending its own group).
    model = bundled.digits_model()
    plain = compile_program(model, config("tppes=16"))
    wide = compile_program(model, config("tppes=16", f"fetch_width={fetch_width}"))
    for p, words in enumerate(wide.entries):
        tags = [wide.layouts["entry"].unpack(word)["tag"] for word in words]
        assert len(tags) % fetch_width == 0
        assert all(i % fetch_width == 0 for i, t in enumerate(tags) if t == TAG_NEURON)
        assert all(i % fetch_width == fetch_width - 1 or tags[i + 1] == TAG_PAD
                   for i, t in enumerate(tags) if t == TAG_LAYER_END)
        assert [w for w, t in zip(words, tags) if t != TAG_PAD] == plain.entries[p]
    assert wide.config.program_depth == max(len(e) for e in wide.entries)


@pytest.mark.parametrize("settings", [["tppes=2"], ["tppes=3", "chunk=4", "fetch_width=2"]])
def test_q_ktv_with_other_positions_for_k_and_v_than_for_q_computes_the_reference(settings):
    """The IR lets Q have more positions than K and V (K^T V sums over theirs): the three
    layers index each with its own, as the program model shows against the reference."""
    from hwgen.compiler.ir import Conv1d, CurrentMatmul, SpikeMatmul
    rng = np.random.default_rng(5)
    model = Model("m", 4)
    model.add(Input("x", (4, 8)))
    for name, stride in (("q", 1), ("k", 2), ("v", 2)):
        model.add(Conv1d(f"{name}_conv", rng.integers(-2, 3, (4, 4, 1)), stride=stride,
                         weight_bits=3, acc_bits=6), "x")
        positions = 8 // stride
        model.add(LIF(name, np.ones(4 * positions, dtype=int), v_bits=6), f"{name}_conv")
    model.add(SpikeMatmul("ktv", 2), ["k", "v"])
    model.add(CurrentMatmul("qktv"), ["q", "ktv"])
    model.add(LIF("attn", np.full(32, 2), v_bits=6), "qktv")
    program = compile_program(model, config(*settings))
    x = (rng.random((4, 4, 4, 8)) < 0.5).astype(np.uint8)
    trace = reference.run(model, x)
    assert trace.spikes["attn"].any() and not trace.spikes["attn"].all()
    layers, _ = program_model.run(program, x.reshape(4, 4, -1))
    for name in ("q", "k", "v", "attn"):
        assert np.array_equal(layers[name], spikes_to_words(trace.spikes[name])), name


def test_slot_order_leaves_the_layers_weight_as_it_was():
    """A CSR weight with stored zeros, of the dtype the slot order works in, once shared
    its arrays with the copy whose zeros were eliminated in place."""
    weight = scipy.sparse.csr_array((np.array([1, 0, 2], dtype=np.int64), np.array([0, 1, 2]),
                                     np.array([0, 2, 3])), shape=(2, 3))
    before = (weight.data.copy(), weight.indices.copy(), weight.indptr.copy())
    moved = _in_slot_order(weight, [2, 1, 0])
    assert moved.toarray().tolist() == [[0, 0, 1], [2, 0, 0]]
    for array, saved in zip((weight.data, weight.indices, weight.indptr), before):
        assert np.array_equal(array, saved)
