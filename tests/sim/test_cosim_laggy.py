"""The laggy join (``--set join=laggy``) on Verilator: the bundled digits MLP through the
command line, and random chains at T = 1, 4, 8 with narrow and wide chunks, bit-exact
against the reference; measured cycles between the laggy ideal bound (pairs or walk,
whichever is longer) and, on digits, that bound plus the cycle model's overhead and 10 %."""

import numpy as np
import pytest
from click.testing import CliRunner

from hwgen import build_directory, bundled
from hwgen.cli.main import cli
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen.compiler.scheduler.cycle_model import layer_overhead
from hwgen.sim.cosim import cosimulate
from hwgen.sim.workloads import ALL_MODES, LayerSpec, random_chain, random_spikes

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def check(result):
    first = next((m for m in result.verdict.first_mismatch if m), None)
    assert result.verdict.bit_exact, first.describe()
    assert (result.rtl_predictions == result.trace.predictions).all()
    assert (result.layer_cycles >= result.ideal).all()


def test_digits_with_the_laggy_join_is_bit_exact(tmp_path):
    inputs, labels = bundled.digits_test_set()
    runner = CliRunner()
    result = runner.invoke(cli, ["compile", "@digits", "--set", "join=laggy", "-o",
                                 str(tmp_path / "build")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    build = build_directory.BuildDirectory(tmp_path / "build")
    assert build.manifest["config"]["join"] == "laggy"
    outcome = cosimulate(build, inputs[:40], labels=labels[:40], parallel=1)
    check(outcome)
    # Its layers have hundreds of pairs and the walk is their bottleneck, which the bound
    # counts: the RTL stays within the cycle model's overhead and 10 % of it.
    config = hardware_config.HardwareConfig(**build.manifest["config"])    # resolved
    limit = 1.1 * outcome.ideal.mean(axis=0) + layer_overhead(config, build.model().timesteps)
    assert (outcome.layer_cycles.mean(axis=0) <= limit).all()


DESIGNS = [(1, 1, 8), (4, 3, 32), (8, 4, 16)]        # (T, TPPEs, chunk)


@pytest.mark.parametrize("index", range(len(DESIGNS)),
                         ids=[f"T{t}-P{p}-W{w}" for t, p, w in DESIGNS])
def test_random_chains_with_the_laggy_join_are_bit_exact(index, tmp_path):
    T, tppes, chunk = DESIGNS[index]
    modes = ALL_MODES[7 * index:7 * index + 3]
    layers = [LayerSpec(size, mode, density, v_bits, scale, bias=True)
              for size, mode, density, v_bits, scale in
              zip((23, 9, 6), modes, (0.9, 0.3, 0.05), (10, 7, 9), (1.0, 0.6, 2.0))]
    model = random_chain(300 + index, 37, layers, T, name=f"laggy_{index}")
    config = hardware_config.load(None, [f"tppes={tppes}", f"chunk={chunk}", "join=laggy",
                                         f"fifo_depth={2 + index}"])
    program = compile_program(model, config)
    build = build_directory.write(program, model, tmp_path / "build")
    spikes = np.concatenate([random_spikes(50 * index + j, 1, T, 37, spike_density=d,
                                           silent_fraction=s)
                             for j, (d, s) in enumerate([(0.0, 0.0), (1.0, 0.0), (0.3, 0.5),
                                                         (0.7, 0.1)])])
    check(cosimulate(build, spikes, parallel=1))
