"""The whole accelerator in the Amaranth simulator through its interface contract, and
the determinism of what `hwgen compile` writes."""

import hashlib
import re
from dataclasses import replace

import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwgen.compiler import hardware_config
from hwgen.compiler.hardware_config import FETCH_WIDTHS
from hwgen.compiler.scheduler.program import compile_program
from hwgen import build_directory, bundled
from hwgen.gateware.top import Accelerator, to_verilog
from hwgen.gateware.tppe import TPPE
from hwgen.compiler.ir import reference
import amaranth_streams
from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.sim.workloads import ALL_MODES, random_workload


def run_inferences(program, input_words, *, start_early=False):
    """Drive the core like a host: words, start, wait done, read results. Returns per
    sample (result words, membranes, cycles, observed busy cycles)."""
    dut = Accelerator(program)
    T = program.timesteps
    out = []

    async def host(ctx):
        for words in input_words:
            if start_early:                 # start may come before the inputs
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                assert not ctx.get(dut.done) and not ctx.get(dut.busy)
            for word in words:
                await amaranth_streams.put(ctx, dut.inputs, int(word))
            if not start_early:
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
            busy_cycles = 0
            while not ctx.get(dut.done):
                busy_cycles += ctx.get(dut.busy)
                assert not ctx.get(dut.inputs.ready) or not ctx.get(dut.busy)
                await ctx.tick()
            results = [await amaranth_streams.get(ctx, dut.results)
                       for _ in range(program.output_size)]
            out.append(([r.word for r in results], [r.v for r in results],
                        ctx.get(dut.cycles), busy_cycles))

    amaranth_streams.run(dut, host)
    return out


@pytest.mark.parametrize("fetch_width, write_lanes", [(1, 1), (2, 1), (4, 1), (1, 2), (4, 4)])
@pytest.mark.parametrize("join", ["dual", "laggy"])
@pytest.mark.parametrize("start_early", [False, True])
def test_back_to_back_inferences_match_the_reference(start_early, join, fetch_width,
                                                     write_lanes):
    w = random_workload(11, [19, 13, 6], 4, samples=3, spike_density=0.4, weight_density=0.5,
                        modes=(ALL_MODES[5], ALL_MODES[30]))
    program = compile_program(w.model, hardware_config.load(
        None, ["tppes=3", "chunk=8", f"join={join}", f"fetch_width={fetch_width}",
               f"write_lanes={write_lanes}"]))
    trace = reference.run(w.model, w.spikes)
    out = run_inferences(program, spikes_to_words(w.spikes), start_early=start_early)
    expected_words = spikes_to_words(trace.spikes["lif2"])
    for sample, (words, membranes, cycles, busy) in enumerate(out):
        assert words == expected_words[sample].tolist()
        assert membranes == trace.membranes["lif2"][sample].tolist()
        assert cycles == busy


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
@pytest.mark.parametrize("join", ["dual", "laggy"])
def test_all_silent_and_all_active_inputs(join, fetch_width):
    w = random_workload(3, [10, 7, 4], 2, samples=1, weight_density=0.7)
    program = compile_program(w.model, hardware_config.load(
        None, ["tppes=2", "chunk=4", f"join={join}", f"fetch_width={fetch_width}"]))
    for value in (0, 1):
        spikes = np.full((1, 2, 10), value, dtype=np.uint8)
        trace = reference.run(w.model, spikes)
        ((words, membranes, _, _),) = run_inferences(program, spikes_to_words(spikes))
        assert words == spikes_to_words(trace.spikes["lif2"])[0].tolist()
        assert membranes == trace.membranes["lif2"][0].tolist()


@pytest.mark.parametrize("settings", [["tppes=3", "chunk=8"],
                                      ["tppes=2", "chunk=4", "fetch_width=2", "write_lanes=2"]])
def test_q_ktv_runs_in_the_amaranth_simulator(settings):
    """Spikformer's attention (V kept, the matrices and the product reading kept currents
    as operands, 2 heads), read out by the final membranes of a dense head."""
    from attention_models import AttentionDraw, sdsa_model
    draw = AttentionDraw(seed=4, weight_bits=4, thresholds=("one",) * 4 + ("typical",),
                         leak_shift=1, fire="ge", reset="subtract", order="same_step",
                         v_bits=10, mask="ktv", heads=2)
    model = sdsa_model(draw, (4,), 4, 4)
    x = (np.random.default_rng(1).random((2, 4, 4, 4)) < 0.5).astype(np.uint8)
    program = compile_program(model, hardware_config.load(None, settings))
    trace = reference.run(model, x)
    assert trace.spikes["attn.attn_lif"].any()
    out = run_inferences(program, spikes_to_words(x.reshape(2, 4, -1)))
    for sample, (_, membranes, _, _) in enumerate(out):
        assert membranes == trace.membranes["logits"][sample].tolist()


@pytest.mark.parametrize("settings", [["tppes=3"], ["tppes=2", "fetch_width=4"]])
def test_a_layer_run_in_step_runs_in_the_amaranth_simulator(settings):
    """mapping=tiles: the second convolution runs in step from the shared program memory,
    every TPPE's walk held by the registered OR of their ``stalling`` (16 positions on 3
    TPPEs: silent calls)."""
    from conv_models import cnn
    model, spikes = cnn(8, channels=3, side=4)
    program = compile_program(model, hardware_config.load(None, ["mapping=tiles",
                                                                 *settings]))
    assert program.layers[1].in_step
    trace = reference.run(model, spikes)
    out = run_inferences(program, spikes_to_words(spikes))
    for sample, (words, membranes, _, _) in enumerate(out):
        assert words == spikes_to_words(trace.spikes["out"])[sample].tolist()
        assert membranes == trace.membranes["out"][sample].tolist()


def test_the_lockstep_logic_exists_only_with_layers_in_step():
    """The hold, the may-fill tests, the silent calls and the shared program memory are
    generated only for a program with layers run in step: other designs' Verilog is what
    it was without them."""
    from conv_models import cnn
    model, _ = cnn(8, channels=3, side=4)
    names = ("stalling", "header_inner_level", "silent_call", "shared_program",
             "reads_shared")
    for mapping, present in (("positions", False), ("tiles", True)):
        text = to_verilog(compile_program(model, hardware_config.load(
            None, ["tppes=2", f"mapping={mapping}"])))
        assert [name in text for name in names] == [present] * len(names), mapping


def test_unresolved_program_is_refused(refuses):
    program = compile_program(bundled.digits_model(), hardware_config.load())
    program.config = hardware_config.load()
    refuses(lambda: Accelerator(program), ValueError,
            "the program's configuration is not resolved")


def tree_digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_directory_is_deterministic(tmp_path):
    model = bundled.digits_model()
    config = hardware_config.load(None, ["tppes=3"])
    build_directory.write(compile_program(model, config), model, tmp_path / "a")
    build_directory.write(compile_program(model, config), model, tmp_path / "b")
    a, b = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert a == b
    assert {"manifest.json", "config.json", "program.json", "report.json", "model.hwgen",
            "rtl/hwgen_core.v", "memories/tppe0_program.hex", "memories/layers.hex"} <= set(a)
    verilog = (tmp_path / "a/rtl/hwgen_core.v").read_text()
    assert str(tmp_path) not in verilog and "src =" not in verilog


def test_verilog_differs_only_when_the_design_does():
    model = bundled.digits_model()
    one = to_verilog(compile_program(model, hardware_config.load(None, ["tppes=2"])))
    two = to_verilog(compile_program(model, hardware_config.load(None, ["tppes=2"])))
    other = to_verilog(compile_program(model, hardware_config.load(None, ["tppes=3"])))
    assert one == two and one != other


def test_the_join_is_part_of_the_design_and_its_record(tmp_path):
    # The Verilator build cache is keyed by the Verilog's hash, sweeps by the configuration:
    # both must tell the joins apart, and the build must record which one it holds.
    model = bundled.digits_model()
    builds = {}
    for join in ("dual", "laggy"):
        program = compile_program(model, hardware_config.load(None, [f"join={join}"]))
        builds[join] = build_directory.write(program, model, tmp_path / join)
        assert builds[join].manifest["config"]["join"] == join
    verilog = {join: (tmp_path / join / "rtl/hwgen_core.v").read_bytes() for join in builds}
    assert verilog["dual"] != verilog["laggy"]
    from hwgen.sim.verilator import VerilatorBuild
    keys = {join: VerilatorBuild([tmp_path / join / "rtl/hwgen_core.v"], "hwgen_core").key
            for join in builds}
    assert keys["dual"] != keys["laggy"]


def test_write_lanes_are_part_of_the_design():
    model = bundled.digits_model()
    verilog = {b: to_verilog(compile_program(model, hardware_config.load(
        None, ["tppes=2", f"write_lanes={b}"]))) for b in (1, 2, 4)}
    assert len(set(verilog.values())) == 3


def test_fetch_width_is_part_of_the_design():
    model = bundled.digits_model()
    verilog = {k: to_verilog(compile_program(model, hardware_config.load(
        None, ["tppes=2", f"fetch_width={k}"]))) for k in FETCH_WIDTHS}
    assert len(set(verilog.values())) == len(FETCH_WIDTHS)


def test_every_tppe_is_one_module_instantiated_p_times():
    # The ROMs are the top's, so the TPPEs are the same logic: one module, whatever P.
    model = bundled.digits_model()
    text = {p: to_verilog(compile_program(model, hardware_config.load(None, [f"tppes={p}"])))
            for p in (2, 5)}
    for p, verilog in text.items():
        assert verilog.count("\nmodule hwgen_tppe(") == 1
        assert len(re.findall(r"^  hwgen_tppe tppe\d+ \(", verilog, re.M)) == p
    # Three more TPPEs add their instances and ROMs, not three more copies of the logic.
    assert len(text[5].splitlines()) - len(text[2].splitlines()) < 800


def test_the_tppe_is_refused_bad_parameters(refuses):
    program = compile_program(bundled.digits_model(), hardware_config.load(None, ["tppes=2"]))
    # Built for its ROM constructors only; Instance mode keeps it (to_verilog converts it).
    tppe = Accelerator(program, tppe_module="hwgen_tppe").tppe
    refuses(lambda: tppe.program_rom([0] * (program.config.program_depth + 1)), ValueError,
            f"TPPE: {program.config.program_depth + 1} program entries exceed program_depth "
            f"{program.config.program_depth}")
    refuses(lambda: tppe.weight_rom([0] * (program.config.weight_depth + 1)), ValueError,
            f"TPPE: {program.config.weight_depth + 1} weights exceed weight_depth "
            f"{program.config.weight_depth}")
    g, config = tppe.geometry, program.config
    refuses(lambda: TPPE(g, program.layouts, program.modes, program_depth=8, weight_depth=8,
                         membrane_depth=0), ValueError,
            "TPPE: membrane_depth 0 must be at least 1")
    refuses(lambda: TPPE(g, program.layouts, program.modes, program_depth=8, weight_depth=8,
                         join="lazy"), ValueError,
            "TPPE: join 'lazy' must be one of dual, laggy")
    refuses(lambda: replace(g, operands=True, current_buffers=0), ValueError,
            re.escape("Geometry: operands (kept currents read as weights) need "
                      "current_buffers"))
    refuses(lambda: TPPE(replace(g, operands=True, current_buffers=1), program.layouts,
                         program.modes, program_depth=8, weight_depth=8, join="laggy"),
            ValueError, re.escape("TPPE: the laggy join cannot multiply by kept currents "
                                  "(geometry.operands); use the dual join"))
    refuses(lambda: TPPE(g, program.layouts, program.modes, program_depth=8, weight_depth=8,
                         lif_buffer=2), ValueError, "TPPE: lif_buffer 2 must be 0 or 1")
    shared = replace(g, lockstep=True, shared_banks=2)
    for join, width in (("laggy", 1), ("dual", 2)):
        refuses(lambda: TPPE(shared, program.layouts, program.modes, program_depth=8,
                             weight_depth=8, join=join, fetch_width=width), ValueError,
                "TPPE: a shared activation memory needs the dual join and fetch_width 1")
    Fragment.get(tppe, None)            # used, so that it draws no warning when collected
