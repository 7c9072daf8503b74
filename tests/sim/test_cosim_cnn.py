"""Convolutional SNNs through the whole flow to the RTL (their layers unrolled,
compiler/passes/unroll.py), against the frameworks' own arithmetic.

- A CNN exported from snnTorch with hwgen's helper (Conv2d -> Leaky, strided Conv2d ->
  Leaky, Flatten -> Linear -> Leaky), and one with max pooling (Conv2d -> MaxPool2d ->
  Leaky), co-simulated on Verilator: every layer's RTL spikes equal snnTorch's own
  simulation of the integer-valued network.
- A NIR CNN in the Sinabs style (conv, IAF with SingleSpike, sum pooling, conv, IAF,
  flatten, affine, IAF), read with the sinabs preset: the RTL equals the integer reference,
  and both equal Sinabs's IAF arithmetic (float64, subtract reset, one spike per step) run here with torch's
  convolution and pooling.
- A CNN whose pixels are called blocks of the fiber program (address generation), at
  fetch widths 1 and 4, in time chunks, with two write lanes.
- A CNN whose second convolution runs in step from one block all TPPEs share
  (mapping=tiles), with silent calls; and the same with its input, region 1 of the spike
  buffers, held once for all TPPEs in P banks (activation_memory=shared).
"""

import nir
import numpy as np
import pytest
import torch

from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.frontends import snntorch_export
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import cosimulate
from conv_models import cnn
from snntorch_oracle import integer_conv, leaky, linear, max_pooling_cnn, run_snntorch

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def cosimulate_model(model, x, settings, tmp_path):
    program = compile_program(model, hardware_config.load(None, settings))
    build = build_directory.write(program, model, tmp_path / "build")
    result = cosimulate(build, x)
    assert result.verdict.bit_exact, result.verdict.first_mismatch
    return result


def test_a_snntorch_cnn_spikes_on_the_rtl_exactly_as_in_snntorch(tmp_path):
    generator = torch.Generator().manual_seed(21)
    # 5 and 6 channels: a layer's C x H x W neurons are not a multiple of the chunk
    net = torch.nn.Sequential(
        integer_conv(2, 5, generator, bias=(-1, 2)), leaky(0.5, 2.0),
        integer_conv(5, 6, generator, stride=2, bias=(-1, 2)),
        leaky(0.75, 3.0, reset_mechanism="zero"),
        torch.nn.Flatten(), linear(6 * 3 * 3, 7, generator), leaky(0.5, 2.0))
    x = (np.random.default_rng(21).random((10, 6, 2, 6, 6)) < 0.4).astype(np.uint8)
    theirs = run_snntorch(net, x)
    snntorch_export.export(net, tmp_path / "cnn.nir", (2, 6, 6), timesteps=6)
    model = frontend.load(tmp_path / "cnn.nir", source_framework="snntorch")
    assert [op.type_name for op in model.ops][:3] == ["input", "conv2d", "lif"]
    result = cosimulate_model(model, x, ["tppes=3", "chunk=8"], tmp_path)
    for name, spikes in theirs.items():
        assert spikes.any(), f"layer {name} never spiked: a weak test"
        assert np.array_equal(result.verdict.rtl_spikes[name], spikes.reshape(10, 6, -1)), name


def test_a_snntorch_cnn_with_max_pooling_spikes_on_the_rtl_exactly_as_in_snntorch(tmp_path):
    """snnTorch's tutorial form, Conv2d -> MaxPool2d -> Leaky: the maximum of the
    convolution's currents (negative ones too, and a padded window) taken on the
    accelerator before the neurons (WindowMax), with the laggy join."""
    net = max_pooling_cnn(7, bias=(-1, 2))
    x = (np.random.default_rng(7).random((12, 8, 1, 8, 8)) < 0.4).astype(np.uint8)
    theirs = run_snntorch(net, x)
    snntorch_export.export(net, tmp_path / "maxpool.nir", (1, 8, 8), timesteps=8)
    model = frontend.load(tmp_path / "maxpool.nir", source_framework="snntorch")
    assert [op.type_name for op in model.ops][:4] == ["input", "conv2d", "max_pool2d", "lif"]
    result = cosimulate_model(model, x, ["tppes=3", "chunk=8", "join=laggy"], tmp_path)
    assert result.trace.currents["1"].min() < 0       # negative maxima were taken
    for name, spikes in theirs.items():
        assert spikes.any(), f"layer {name} never spiked: a weak test"
        assert np.array_equal(result.verdict.rtl_spikes[name], spikes.reshape(12, 8, -1)), name


def sinabs_iaf(shape, threshold):
    """What ``sinabs.to_nir`` writes for an IAF layer: r = 1, v_threshold, no v_reset."""
    node = nir.IF(r=np.ones(shape), v_threshold=np.full(shape, float(threshold)))
    node.v_reset = None
    return node


def sinabs_cnn(rng):
    c1 = rng.integers(-2, 3, (4, 2, 3, 3)).astype(float)
    c2 = rng.integers(-2, 3, (3, 4, 3, 3)).astype(float)
    fc = rng.integers(-3, 4, (5, 3 * 2 * 2)).astype(float)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(np.array([2, 8, 8])),
        "conv1": nir.Conv2d(input_shape=(8, 8), weight=c1, stride=1, padding=1, dilation=1,
                            groups=1, bias=np.zeros(4)),
        "iaf1": sinabs_iaf((4, 8, 8), 2.0),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(4, 4), weight=c2, stride=2, padding=1, dilation=1,
                            groups=1, bias=np.zeros(3)),
        "iaf2": sinabs_iaf((3, 2, 2), 3.0),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([3, 2, 2])}),
        "fc": nir.Affine(weight=fc, bias=np.zeros(5)),
        "iaf3": sinabs_iaf((5,), 2.0),
        "output": nir.Output(np.array([5])),
    }, edges=[("input", "conv1"), ("conv1", "iaf1"), ("iaf1", "pool1"), ("pool1", "conv2"),
              ("conv2", "iaf2"), ("iaf2", "flat"), ("flat", "fc"), ("fc", "iaf3"),
              ("iaf3", "output")], metadata={}, type_check=False)
    return g, (c1, c2, fc)


def sinabs_spikes(weights, x):
    """Sinabs's IAF (MembraneSubtract, one spike per step, v >= threshold fires) in
    float64, layer after layer, with torch's convolution and sum pooling."""
    import torch.nn.functional as F
    c1, c2, fc = (torch.tensor(w, dtype=torch.float64) for w in weights)

    def iaf(currents, theta):
        v, out = torch.zeros_like(currents[:, 0]), []
        for t in range(currents.shape[1]):
            v = v + currents[:, t]
            s = (v >= theta).to(torch.float64)
            v = v - s * theta
            out.append(s)
        return torch.stack(out, 1)

    def per_step(function, values):
        n, steps = values.shape[:2]
        result = function(values.reshape(n * steps, *values.shape[2:]))
        return result.reshape(n, steps, *result.shape[1:])

    x = torch.tensor(x, dtype=torch.float64)
    s1 = iaf(per_step(lambda v: F.conv2d(v, c1, padding=1), x), 2.0)
    pooled = per_step(lambda v: F.avg_pool2d(v, 2) * 4, s1)
    s2 = iaf(per_step(lambda v: F.conv2d(v, c2, stride=2, padding=1), pooled), 3.0)
    s3 = iaf(s2.flatten(2) @ fc.T, 2.0)
    return {name: s.flatten(2).numpy().astype(np.uint8)
            for name, s in (("iaf1", s1), ("iaf2", s2), ("iaf3", s3))}


def test_a_sinabs_style_nir_cnn_spikes_on_the_rtl_as_sinabs_computes(tmp_path):
    rng = np.random.default_rng(22)
    g, weights = sinabs_cnn(rng)
    x = (rng.random((10, 5, 2, 8, 8)) < 0.35).astype(np.uint8)
    theirs = sinabs_spikes(weights, x)
    # (an IF without v_reset, as Sinabs writes it, does not round-trip through nir.write)
    model = frontend.load(g, source_framework="sinabs", timesteps=5, spike_fn="single")
    assert [op.type_name for op in model.ops] == [
        "input", "conv2d", "lif", "sum_pool2d", "conv2d", "lif", "flatten", "dense", "lif",
        "readout"]
    result = cosimulate_model(model, x, ["tppes=2", "chunk=16"], tmp_path)
    for name, spikes in theirs.items():
        assert spikes.any(), f"layer {name} never spiked: a weak test"
        assert np.array_equal(result.verdict.rtl_spikes[name], spikes), name


@pytest.mark.parametrize("settings", [
    ["tppes=2", "call_groups=1", "border_calls=0"],
    ["tppes=2", "call_groups=1"],
    ["tppes=2", "call_groups=1", "fetch_width=4", "time_chunk=2", "write_lanes=2"],
    ["tppes=3", "call_groups=1", "mapping=positions"],
])
def test_a_cnn_whose_pixels_are_called_blocks_runs_bit_exact(settings, tmp_path):
    """Address generation (compiler/scheduler/blocks.py): the second convolution's
    interior pixels are one block per TPPE, called with each pixel's chunk and slot
    offsets, which the fetch adds in hardware; with ``border_calls`` (the default) its
    border pixels call it too, the window positions outside the map masked
    (compiler/scheduler/windows.py); with ``mapping=positions`` every TPPE computes whole
    pixels only."""
    model, _ = cnn(5, channels=1, side=6)
    x = (np.random.default_rng(5).random((6, 4, 1, 6, 6)) < 0.4).astype(np.uint8)
    program = compile_program(model, hardware_config.load(None, settings))
    assert program.calls()[0] >= 10
    assert ("rows" in program.layouts["call_entry"].offsets) == (
        "border_calls=0" not in settings)
    result = cosimulate_model(model, x, settings, tmp_path)
    assert all(result.verdict.rtl_spikes[name].any() for name in ("lif1", "lif2"))


@pytest.mark.parametrize("settings", [
    ["tppes=3", "mapping=tiles", "fifo_depth=2"],
    ["tppes=4", "mapping=tiles", "fetch_width=4", "write_lanes=2", "time_chunk=2"],
    ["tppes=16", "mapping=tiles", "fetch_width=2"],
])
def test_a_layer_run_in_step_from_a_shared_block_runs_bit_exact(settings, tmp_path):
    """mapping=tiles (compiler/scheduler/lockstep.py): conv2 runs in step, every TPPE
    reading the one block from the shared program memory at TPPE 0's address and a stall
    of any TPPE holding all; 25 positions are not whole tiles of 3, 4 or 16, so some TPPEs
    walk silent calls. Any TPPE out of step would read another's entries. At fifo_depth
    2 a header waiting in stage 1 once kept ``hold`` high for ever (a soak's hang)."""
    model, _ = cnn(7, channels=3, side=5)
    x = (np.random.default_rng(7).random((6, 4, 3, 5, 5)) < 0.4).astype(np.uint8)
    program = compile_program(model, hardware_config.load(None, settings))
    assert [plan.in_step for plan in program.layers] == [False, True, False]
    assert program.shared_base is not None
    result = cosimulate_model(model, x, settings, tmp_path)
    assert all(result.verdict.rtl_spikes[name].any() for name in ("lif1", "lif2"))


@pytest.mark.parametrize("tppes", [2, 4, 16])
def test_a_layer_reading_the_shared_activation_memory_runs_bit_exact(tppes, tmp_path):
    """activation_memory=shared (hwgen/gateware/shared_activations.py): conv2 reads its
    input, conv1's spikes, from one copy in P banks, every TPPE its own bank in each
    cycle, the chunk's words travelling with its mask; the TPPEs hold only region 0.
    25 positions are not whole tiles, so some TPPEs walk silent calls (no reads)."""
    settings = [f"tppes={tppes}", "mapping=tiles", "activation_memory=shared"]
    model, _ = cnn(7, channels=3, side=5)
    x = (np.random.default_rng(7).random((6, 4, 3, 5, 5)) < 0.4).astype(np.uint8)
    program = compile_program(model, hardware_config.load(None, settings))
    assert [plan.in_step for plan in program.layers] == [False, True, False]
    memories = program.memory_bits()
    assert len([name for name in memories if name.startswith("shared_words")]) == tppes
    copies = compile_program(model, hardware_config.load(None, settings[:2])).memory_bits()
    # each TPPE holds one region of two
    assert 2 * memories["tppe0_spike_words"][0] == copies["tppe0_spike_words"][0]
    result = cosimulate_model(model, x, settings, tmp_path)
    assert all(result.verdict.rtl_spikes[name].any() for name in ("lif1", "lif2"))
