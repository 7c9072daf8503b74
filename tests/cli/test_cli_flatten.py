"""A model that starts with a flatten (snnTorch's exporter docstring: Flatten -> Linear ->
Leaky ...) compiles and runs on the accelerator: the flatten relabels C x H x W positions
in C order, which is the order the accelerator streams its inputs in."""

import json

import nir
import numpy as np
import pytest
from click.testing import CliRunner

from hwgen.compiler.frontends import nir as frontend
from hwgen.cli.main import cli
from hwgen.compiler.ir import reference

C, H, W = 2, 3, 3
T = 4


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


def flatten_mlp(path, *, encoding=None):
    """Input (C, H, W) -> Flatten -> Affine -> LIF -> Affine -> LIF, integer-valued."""
    rng = np.random.default_rng(11)
    n = C * H * W

    def lif(k):
        return nir.LIF(tau=np.full(k, 2e-4), r=np.full(k, 2.0), v_leak=np.zeros(k),
                       v_threshold=np.full(k, 2.0), v_reset=np.zeros(k))
    metadata = {"hwgen.encoding": "if", "hwgen.encoder_threshold": 4} if encoding else {}
    nodes = {"in": nir.Input(np.array([C, H, W]), metadata=metadata),
             "flat": nir.Flatten(input_type={"input": np.array([C, H, W])}, start_dim=0,
                                 end_dim=-1),
             "fc1": nir.Affine(rng.integers(-2, 4, (7, n)).astype(float), np.zeros(7)),
             "lif1": lif(7),
             "fc2": nir.Affine(rng.integers(-2, 4, (3, 7)).astype(float), np.zeros(3)),
             "lif2": lif(3), "out": nir.Output(np.array([3]))}
    names = list(nodes)
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])),
                                 type_check=False))
    return path


def shaped_spikes(samples, seed=0):
    return (np.random.default_rng(seed).random((samples, T, C, H, W)) < 0.5).astype(np.uint8)


def test_shaped_inputs_run_flattened_in_c_order(tmp_path):
    model = frontend.load(flatten_mlp(tmp_path / "m.nir"), timesteps=T)
    assert [op.type_name for op in model.ops] == ["input", "flatten", "dense", "lif", "dense",
                                                  "lif", "readout"]
    x = shaped_spikes(12)
    trace = reference.run(model, x)
    flat = reference.run(model, x.reshape(12, T, -1))       # what the accelerator streams
    for name in ("lif1", "lif2"):
        assert np.array_equal(trace.spikes[name], flat.spikes[name])
        assert trace.spikes[name].any() and not trace.spikes[name].all()
    # By hand: position (c, y, x) is input c*H*W + y*W + x of the dense layer.
    current = np.einsum("stchw,nchw->stn", x.astype(np.int64),
                        model["fc1"].weight.reshape(7, C, H, W))
    assert np.array_equal(trace.currents["fc1"], current)
    encoded = frontend.load(flatten_mlp(tmp_path / "e.nir", encoding="if"), timesteps=T)
    values = np.random.default_rng(2).integers(0, 5, (6, C, H, W))
    shaped = reference.run(encoded, values)
    assert np.array_equal(shaped.spikes["lif2"],
                          reference.run(encoded, values.reshape(6, -1)).spikes["lif2"])
    assert np.array_equal(shaped.spikes["in"],
                          reference.if_encode(values.reshape(6, -1), 4, T))


@pytest.mark.verilator
def test_compile_and_simulate_a_flatten_first_model_bit_exact(tmp_path):
    path = flatten_mlp(tmp_path / "flat.nir")
    build = tmp_path / "build"
    result = invoke("compile", path, "-o", build, "--timesteps", T, "--set", "tppes=2")
    assert result.exit_code == 0, result.output
    assert "lif1  │ 18 -> 7" in result.output
    np.savez(tmp_path / "x.npz", inputs=shaped_spikes(5, seed=1))
    result = invoke("simulate", build, "--inputs", tmp_path / "x.npz", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes, all 5 samples" in result.output
    results = json.loads((build / "sim" / "results.json").read_text())
    assert results["bit_exact"] and results["samples"] == 5
    outputs = np.load(build / "sim" / "outputs.npz")["spikes"]
    assert outputs.any()                       # the comparison was not between silences


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_snntorch_flatten_first_graph_compiles_with_its_batch_dimension_dropped():
    """The graph snnTorch's exporter builds for Flatten -> Linear -> Leaky -> Linear ->
    Leaky (its tracing leaves a batch dimension of 1 on the Input)."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    nirtorch = pytest.importorskip("nirtorch")
    from snntorch.export_nir import _extract_snntorch_module

    from hwgen.compiler import hardware_config
    from hwgen.compiler.scheduler.program import compile_program
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(C * H * W, 6),
                              snn.Leaky(beta=0.5, init_hidden=True), torch.nn.Linear(6, 3),
                              snn.Leaky(beta=0.5, init_hidden=True, output=True))
    graph = nirtorch.extract_nir_graph(net, _extract_snntorch_module, torch.zeros(1, C, H, W),
                                       model_name="snntorch")
    model = frontend.load(graph, timesteps=T, source_framework="snntorch")
    assert model.input.shape == (C, H, W)
    assert [op.type_name for op in model.ops][:3] == ["input", "flatten", "dense"]
    program = compile_program(model, hardware_config.load(None, ["tppes=2"]))
    assert program.input_size == C * H * W
