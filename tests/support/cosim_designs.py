"""Co-simulating one hand-built design in a test: the exact flow of `hwgen compile` and
`hwgen simulate`, with all-silent, all-spiking and random inputs."""

import numpy as np

from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import cosimulate


def edge_stimulus(seed, T, inputs, samples=4, density=0.5):
    """One all-silent sample, one all-spiking, then ``samples`` random ones."""
    rng = np.random.default_rng(seed)
    random = (rng.random((samples, T, inputs)) < density).astype(np.uint8)
    return np.concatenate([np.zeros((1, T, inputs), np.uint8),
                           np.ones((1, T, inputs), np.uint8), random])


def cosimulate_design(model, settings, tmp_path, inputs):
    """Compile ``model`` with ``--set`` ``settings`` into tmp_path/build, co-simulate
    ``inputs`` and require bit-exactness; returns (program, CosimResult)."""
    program = compile_program(model, hardware_config.load(None, settings))
    build = build_directory.write(program, model, tmp_path / "build")
    result = cosimulate(build, inputs, parallel=1)
    first = next((m for m in result.verdict.first_mismatch if m), None)
    assert result.verdict.bit_exact, first.describe()
    return program, result
