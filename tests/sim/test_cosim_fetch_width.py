"""The wide fiber fetch (``--set fetch_width=2``, ``4`` or ``8``) on Verilator, bit-exact.

The bundled digits MLP, random chains at LoAS-like weight
sparsity (most weight chunks match nothing), with the laggy join and time chunks, and
recurrent layers (chunk entries with a ``state`` bit, the state before the first step
read as silent).
"""

import numpy as np
import pytest

from hwgen import build_directory, bundled
from hwgen.compiler import hardware_config
from hwgen.compiler.ir import reference
from hwgen.compiler.scheduler.program import compile_program
from hwgen.compiler.scheduler.cycle_model import layer_overhead
from hwgen.sim.cosim import cosimulate
from hwgen.sim.workloads import ALL_MODES, LayerSpec, random_chain, random_spikes

from tests.sim.test_cosim_recurrent import recurrent_model, stimulus
from tests.support.cosim_designs import cosimulate_design

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def check(result):
    first = next((m for m in result.verdict.first_mismatch if m), None)
    assert result.verdict.bit_exact, first.describe()
    assert (result.rtl_predictions == result.trace.predictions).all()
    assert (result.layer_cycles >= result.ideal).all()


@pytest.mark.parametrize("fetch_width", [2, 4])
def test_digits_with_a_wide_fetch(tmp_path, fetch_width):
    inputs, labels = bundled.digits_test_set()
    model = bundled.digits_model()
    program = compile_program(model, hardware_config.load(
        None, [f"fetch_width={fetch_width}"]))
    build = build_directory.write(program, model, tmp_path / "build")
    assert build.manifest["config"]["fetch_width"] == fetch_width
    outcome = cosimulate(build, inputs[:30], labels=labels[:30], parallel=1)
    check(outcome)
    # Not fetch-bound: about 8 pairs per neuron against an 8-cycle LIF evaluation (T = 8,
    # lif_steps 1), which no fetch width changes; the wide fetch only saves its fill cycle.
    assert (outcome.layer_cycles.mean(axis=0) <= 1.2 * outcome.ideal.mean(axis=0)
            + layer_overhead(program.config, model.timesteps)).all()


DESIGNS = [(4, 2, 8, "dual", 4, None), (8, 3, 4, "laggy", 2, None), (8, 2, 16, "dual", 4, 2),
           (4, 1, 4, "laggy", 8, None)]     # (T, TPPEs, chunk, join, fetch_width, time_chunk)


@pytest.mark.parametrize("index", range(len(DESIGNS)),
                         ids=[f"T{t}-P{p}-W{w}-{j}-K{k}-Tc{c}" for t, p, w, j, k, c in DESIGNS])
def test_sparse_random_chains_with_a_wide_fetch(index, tmp_path):
    T, tppes, chunk, join, fetch_width, time_chunk = DESIGNS[index]
    modes = ALL_MODES[5 * index:5 * index + 3]
    # Sparse first layers: most of a neuron's weight chunks match nothing; the last layer
    # has neurons without any weight (a header alone).
    layers = [LayerSpec(size, mode, density, v_bits, scale, bias=True)
              for size, mode, density, v_bits, scale in
              zip((29, 11, 6), modes, (0.08, 0.25, 0.03), (10, 8, 9), (0.5, 0.6, 1.0))]
    model = random_chain(700 + index, 61, layers, T, name=f"wide_{index}")
    config = hardware_config.load(
        None, [f"tppes={tppes}", f"chunk={chunk}", f"join={join}",
               f"fetch_width={fetch_width}", f"fifo_depth={2 + index % 2}"]
        + ([f"time_chunk={time_chunk}"] if time_chunk else []))
    program = compile_program(model, config)
    build = build_directory.write(program, model, tmp_path / "build")
    spikes = np.concatenate([random_spikes(60 * index + j, 1, T, 61, spike_density=d,
                                           silent_fraction=s)
                             for j, (d, s) in enumerate([(0.0, 0.0), (1.0, 0.0), (0.3, 0.6),
                                                         (0.7, 0.1), (0.25, 0.7)])])
    check(cosimulate(build, spikes, parallel=1))


# K = 4 with recurrent layers: tests/sim/test_cosim_recurrent.py.
@pytest.mark.parametrize("fetch_width", [2, 8])
def test_recurrent_layers_with_a_wide_fetch(tmp_path, fetch_width):
    pattern = (True, True, False)
    model = recurrent_model(pattern)
    x = stimulus(model.timesteps, 10)
    program, result = cosimulate_design(model, ["chunk=4", "tppes=2",
                                                f"fetch_width={fetch_width}"], tmp_path, x)
    assert program.recurrent_layers == 2
    ours = reference.run(model, x).spikes
    for name in ("lif1", "lif2", "lif3"):
        assert np.array_equal(result.verdict.rtl_spikes[name], ours[name])
