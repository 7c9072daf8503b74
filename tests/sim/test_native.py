"""The native co-simulation engine (hwgen.sim.native): the same recording as the cocotb
testbench, cycle for cycle, and its refusals."""

import numpy as np
import pytest

from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import ToolchainError
from hwgen.gateware.core_interface import trace_fields
from hwgen.compiler.ir import reference
from hwgen.sim.compare import ideal_bounds
from hwgen.sim.cosim import _timeout_cycles, cosimulate
from hwgen.sim.native import NativeBuild, read_observed, write_job
from hwgen.sim.workloads import ALL_MODES, random_workload


def _small(folder, *overrides):
    w = random_workload(5, [40, 23, 7], 4, samples=6, spike_density=0.35, weight_density=0.4,
                        silent_fraction=0.3, modes=(ALL_MODES[3], ALL_MODES[28]))
    config = hardware_config.load(None, ["tppes=3", "chunk=8", *overrides])
    program = compile_program(w.model, config)
    return build_directory.write(program, w.model, folder / "build"), w


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return _small(tmp_path_factory.mktemp("native"))


@pytest.mark.verilator
@pytest.mark.parametrize("write_lanes", [1, 2])
def test_native_and_cocotb_record_the_same(write_lanes, tmp_path):
    # with two lanes a cycle may trace two writes: both drivers record both, lane order
    build, w = _small(tmp_path, f"write_lanes={write_lanes}")
    native = cosimulate(build, w.spikes, parallel=2, work_dir=tmp_path / "native")
    cocotb = cosimulate(build, w.spikes, parallel=1, engine="cocotb",
                        work_dir=tmp_path / "cocotb")
    assert native.verdict.bit_exact and cocotb.verdict.bit_exact
    # Two independent drivers of the same interface: every recorded number must agree.
    np.testing.assert_array_equal(native.cycles, cocotb.cycles)
    np.testing.assert_array_equal(native.load_cycles, cocotb.load_cycles)
    np.testing.assert_array_equal(native.layer_cycles, cocotb.layer_cycles)
    for layer, spikes in cocotb.verdict.rtl_spikes.items():
        np.testing.assert_array_equal(native.verdict.rtl_spikes[layer], spikes)
    np.testing.assert_array_equal(native.verdict.rtl_membranes, cocotb.verdict.rtl_membranes)
    events = [read_observed(tmp_path / f"native/shard{i}/observed.bin")["events"]
              for i in range(2)]
    events[1][:, 0] += 3                                    # shard 1 holds samples 3..5
    with np.load(tmp_path / "cocotb/shard0/observed.npz") as recorded:
        np.testing.assert_array_equal(np.concatenate(events), recorded["events"])
        assert native.simulated_cycles == int(recorded["edges"]) + 4   # the second reset
    assert (native.layer_cycles > 0).all() and native.simulation_seconds > 0


def real_timeout(build, spikes):
    """The hang limit cosimulate gives ``spikes`` on ``build``."""
    model, program = build.model(), build.program()
    return _timeout_cycles(program, ideal_bounds(program, model, reference.run(model, spikes)))


def job_of(build, spikes, timeout):
    """A native simulation job for ``spikes`` on ``build``, as cosimulate writes it."""
    program = build.program()
    fields = trace_fields(build.trace_layout)
    return {"words": spikes_to_words(spikes), "outputs": program["outputs"],
            "layers": len(program["layers"]), "timeout": timeout, "fields": fields}


@pytest.mark.verilator
def test_a_core_that_never_finishes_is_reported(small, tmp_path):
    build, w = small
    program = build.program()
    job = job_of(build, w.spikes[:1], 5)
    simulator = NativeBuild([build.verilog], build.top_module)
    with pytest.raises(ToolchainError, match="sample 0: no done after 5 cycles"):
        simulator.run_many([(tmp_path / "shard0", job)])
    # With the real timeout the same job finishes, so the error came from the limit.
    job["timeout"] = real_timeout(build, w.spikes[:1])
    (observed,) = simulator.run_many([(tmp_path / "shard1", job)])
    assert observed["results"].shape == (1, program["outputs"])


def test_a_truncated_recording_is_refused(tmp_path):
    path = tmp_path / "observed.bin"
    path.write_bytes(b"\0" * 10)
    with pytest.raises(ToolchainError, match="not a recording"):
        read_observed(path)


def test_the_job_refuses_a_trace_field_wider_than_the_recording(tmp_path):
    fields = ({"layer_pass": (0, 2, False), "valid": (2, 1, False), "slot": (3, 5, False),
               "word": (8, 64, False)}, (1, 70))
    with pytest.raises(ToolchainError, match="'word' is 64 bits"):
        write_job(tmp_path / "job.bin", words=np.zeros((1, 3)), outputs=1, layers=1,
                  timeout=10, fields=fields)


def test_an_unknown_engine_is_refused(small):
    build, w = small
    with pytest.raises(ValueError, match="engine must be one of"):
        cosimulate(build, w.spikes, engine="icarus")


@pytest.mark.verilator
def test_the_tppe_verilated_once_records_the_same(small, tmp_path):
    # The hierarchical build (the TPPE module as one block) must be the same simulator.
    build, w = small
    job = job_of(build, w.spikes, real_timeout(build, w.spikes))
    flat = NativeBuild([build.verilog], build.top_module)
    blocked = NativeBuild([build.verilog], build.top_module, blocks=[build.tppe_module])
    assert build.tppe_module == "hwgen_tppe" and flat.key != blocked.key
    (one,) = flat.run_many([(tmp_path / "flat", job)])
    (two,) = blocked.run_many([(tmp_path / "blocked", job)])
    assert set(one) == set(two)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_the_cosimulation_verilates_the_tppe_once_only_for_short_runs_of_many(tmp_path):
    from hwgen.sim import cosim
    w = random_workload(2, [6, 3], 4, samples=1, spike_density=0.5, weight_density=0.5,
                        silent_fraction=0.0, modes=(ALL_MODES[3],))
    chosen = {}
    for tppes in (2, 4):
        program = compile_program(w.model, hardware_config.load(None, [f"tppes={tppes}"]))
        build = build_directory.write(program, w.model, tmp_path / str(tppes))
        for cycles in (10, cosim.BLOCK_MAX_CYCLES + 1):
            chosen[tppes, cycles > 10] = cosim._native_build(
                build, build.program(), False, np.array([[cycles]])).blocks
        assert cosim._native_build(build, build.program(), True,
                                   np.array([[10]])).blocks == ()
    assert chosen == {(2, False): (), (2, True): (), (4, False): ("hwgen_tppe",),
                      (4, True): ()}


def test_no_simulator_outlives_a_stopped_run():
    # run_many stops its simulators when interrupted or when a shard fails: one already
    # running is killed, and one started after the stop is killed at once.
    import signal
    import threading
    import time
    from hwgen.sim.native import _Children
    children, results = _Children(), []
    worker = threading.Thread(target=lambda: results.append(children.run(["sleep", "30"])))
    began = time.monotonic()
    worker.start()
    while not children.running and time.monotonic() - began < 10:
        time.sleep(0.01)
    children.stop()
    worker.join(10)
    assert results and results[0][0] == -signal.SIGKILL
    assert children.run(["sleep", "30"])[0] == -signal.SIGKILL
    assert time.monotonic() - began < 10 and not children.running
