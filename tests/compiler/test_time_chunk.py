"""The 'auto' T_c of a model with recurrent layers (compiler/scheduler/time_chunk.py):
chosen on calibration activity, 1 without it."""

import numpy as np
import pytest

from hwgen.compiler import hardware_config
from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout, reference
from hwgen.compiler.passes.legalise import legalise
from hwgen.compiler.scheduler.program import compile_program
from hwgen.compiler.scheduler.time_chunk import candidates, choose_time_chunk


def model_of(sizes, T=16, inputs=4, seed=0):
    """dense -> lif layers of (size, recurrent); thresholds low enough that all spike."""
    rng = np.random.default_rng(seed)
    model = Model("m", T)
    model.add(Input("input", (inputs,)))
    previous, fan_in = "input", inputs
    for index, (n, recurrent) in enumerate(sizes, 1):
        weight = rng.integers(-2, 4, (n, fan_in + (n if recurrent else 0)))
        model.add(Dense(f"fc{index}", weight, weight_bits=4, acc_bits=12,
                        recurrent=recurrent), previous)
        model.add(LIF(f"lif{index}", np.full(n, 6), leak=Leak.by_shift(2), v_bits=12),
                  f"fc{index}")
        previous, fan_in = f"lif{index}", n
    model.add(Readout("readout"), previous)
    return model.validate()


def calibration(model, density=0.1, samples=6):
    rng = np.random.default_rng(1)
    x = (rng.random((samples, model.timesteps, model["input"].shape[0])) < density)
    return reference.run(model, x.astype(np.uint8)).spikes


def test_without_calibration_a_recurrent_model_runs_one_step_per_pass():
    model = model_of([(64, False), (4, True), (2, False)], inputs=96)
    program = compile_program(model, hardware_config.load(None, []))
    assert program.lanes == 1
    # or as few steps as an explicit lif_steps allows
    program = compile_program(model, hardware_config.load(None, ["lif_steps=2"]))
    assert program.lanes == 2


def test_a_wide_front_takes_a_large_t_c_and_a_recurrent_bulk_t_c_1():
    config = hardware_config.load(None, ["tppes=2"])
    front = model_of([(64, False), (4, True), (2, False)], inputs=96)
    chosen, estimates = choose_time_chunk(legalise(front), config, 16, calibration(front))
    assert chosen > 1 and estimates[chosen] < estimates[1]
    bulk = model_of([(48, True), (2, False)], inputs=4)
    chosen, estimates = choose_time_chunk(legalise(bulk), config, 16, calibration(bulk))
    assert chosen == 1 and estimates[1] < min(estimates[d] for d in estimates if d > 1)
    # compile_program takes the same choice from the same calibration, and keeps the
    # estimates for `hwgen compile` to show
    program = compile_program(front, config, calibration(front))
    chosen, estimates = choose_time_chunk(legalise(front), config, 16, calibration(front))
    assert program.lanes == chosen and program.time_chunk_estimates == estimates
    assert compile_program(front, config).time_chunk_estimates == {}


@pytest.mark.parametrize("settings, early_exit, expected", [
    ([], False, [1, 2, 3, 4, 6, 12]),
    (["lif_steps=2"], False, [2, 4, 6, 12]),
    ([], True, [1, 2, 3, 4, 6]),
])
def test_candidates_divide_t_and_respect_lif_steps_and_an_early_exit(settings, early_exit,
                                                                    expected):
    assert candidates(hardware_config.load(None, settings), 12, early_exit) == expected
    assert candidates(hardware_config.load(None, []), 64, False) == [1, 2, 4, 8, 16]
