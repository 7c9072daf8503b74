"""The exact Verilog `hwgen compile` writes, on Verilator, against the integer reference.

Nine designs cover T in {1, 4, 8} x TPPEs in {1, 4, 16}, three chunk widths, 1, 2 and 4
write lanes, with and without the LIF buffer, and every
one of the 54 neuron modes once (six layers per design, each in its own mode). Layers
have widths that are no multiple of the chunk or the TPPE count (some narrower than the
TPPE count), weight densities from 2% to 100%, 6-bit membranes that saturate, and
thresholds from easy to unreachable. Every design runs samples from all-silent (0%) to
all-active (100%) inputs. Zero mismatching bits is the only pass; cycles may approach the
ideal bound but never beat it.
"""

import pytest

from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen import build_directory
from hwgen.sim.cosim import cosimulate
from hwgen.sim.workloads import ALL_MODES, LayerSpec, random_chain, random_spikes

pytestmark = [pytest.mark.verilator, pytest.mark.slow]

DESIGNS = [  # (T, TPPEs, chunk, write lanes, LIF buffer)
    (1, 1, 8, 1, 0), (1, 4, 16, 1, 0), (1, 16, 32, 4, 1),
    (4, 1, 16, 1, 0), (4, 4, 32, 2, 1), (4, 16, 8, 2, 0),
    (8, 1, 32, 1, 1), (8, 4, 8, 1, 0), (8, 16, 16, 4, 1),
]
LAYERS = 6
SIZES = (29, 17, 5, 11, 13, 7)
DENSITIES = (1.0, 0.3, 0.02, 0.6, 0.5, 0.8)
V_BITS = (10, 6, 8, 12, 5, 9)
THRESHOLD_SCALES = (1.0, 0.5, 3.0, 1.0, 0.7, 1.5)
INPUTS = 45
# (spike density, silent fraction) per sample
STIMULI = [(0.0, 0.0), (1.0, 0.0), (0.05, 0.0), (0.3, 0.5), (0.6, 0.2), (0.3, 0.0)]


def design(index):
    T, tppes, chunk, write_lanes, lif_buffer = DESIGNS[index]
    modes = ALL_MODES[LAYERS * index:LAYERS * index + LAYERS]
    layers = [LayerSpec(size, mode, density, v_bits, scale, bias=index % 2 == 0)
              for size, mode, density, v_bits, scale in
              zip(SIZES, modes, DENSITIES, V_BITS, THRESHOLD_SCALES)]
    model = random_chain(100 + index, INPUTS, layers, T, name=f"grid_{index}")
    config = hardware_config.load(None, [f"tppes={tppes}", f"chunk={chunk}",
                                         f"write_lanes={write_lanes}",
                                         f"lif_buffer={lif_buffer}"])
    return model, config


def stimulus(index):
    import numpy as np
    T = DESIGNS[index][0]
    return np.concatenate([random_spikes(1000 * index + j, 1, T, INPUTS, spike_density=d,
                                         silent_fraction=s) for j, (d, s) in enumerate(STIMULI)])


def test_the_grid_covers_every_mode_once():
    covered = [mode for index in range(len(DESIGNS))
               for mode in ALL_MODES[LAYERS * index:LAYERS * index + LAYERS]]
    assert sorted(map(repr, covered)) == sorted(map(repr, ALL_MODES))


@pytest.mark.parametrize("index", range(len(DESIGNS)),
                         ids=[f"T{t}-P{p}-W{w}-B{b}" + ("-buffer" if buffer else "")
                              for t, p, w, b, buffer in DESIGNS])
def test_rtl_is_bit_exact(index, tmp_path):
    model, config = design(index)
    program = compile_program(model, config)
    build = build_directory.write(program, model, tmp_path / "build")
    result = cosimulate(build, stimulus(index), parallel=1)
    first = next((m for m in result.verdict.first_mismatch if m), None)
    assert result.verdict.bit_exact, first.describe()
    assert (result.layer_cycles >= result.ideal).all()
    assert (result.rtl_predictions == result.trace.predictions).all()
