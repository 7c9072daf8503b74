"""``hwgen synth``: Yosys + nextpnr on a build directory, for a board or a bare device.

For a board the top is :class:`hwgen.fpga.board.BoardTop` (PLL, reset, UART protocol engine,
LEDs, the core) and the result includes a bitstream; for a bare device it is the
out-of-context :class:`hwgen.fpga.board.CoreHarness` and the result is a report only.

Amaranth (with the amaranth-boards platform for boards) writes the design and its
constraints; the flow then runs the tools itself, one step at a time, each with its full
log on disk (``yosys.log``, ``nextpnr.log``, ``pack.log``) so that a failure can be shown
with the tail of the right log. nextpnr always runs with ``--timing-allow-fail`` and
``--report``: whether timing is met is decided here, from the report, so a timing failure
comes with the achieved and requested Fmax and the critical path instead of a bare exit
status. ``--frequency auto`` (the default) searches for the fastest clock the design meets
with two or three such runs (:func:`synthesize`). Several placer seeds (``--seed 1-4``)
place the one netlist in turn until one meets the clock, and keep the fastest placement if
none does (:func:`parse_seeds`).

Everything lands in ``DIR/fpga/<target>/`` atomically: ``report.json`` (for programs),
``report.md`` (for people), the logs, the design files, ``commands.sh`` (the exact tool
commands) and, for a board that passed, ``bitstream.bin`` / ``bitstream.bit``. A failed run
leaves its logs and a report that says why, and no bitstream.
"""

import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from hwgen.atomic import atomic_directory
from hwgen.errors import ConfigError, FitError, TimingError, ToolchainError
from hwgen.gateware.verilog_output import rom_images
from hwgen import toolchain

from . import report as parse
from .board import BoardTop, CoreHarness
from .core import CoreSpec
from .targets import get_target

DEFAULT_BAUD = 115200
MAX_MHZ = 500.0
TOP = "top"
STAT_FILE = "yosys_stat.json"
NEXTPNR_REPORT = "nextpnr_report.json"


def parse_seeds(text):
    """nextpnr placer seeds from ``"3"``, ``"1-4"`` or ``"1,5,9"`` (or an int): a tuple of
    distinct non-negative integers, in the order given. Raises :class:`ConfigError`."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    seeds = []
    try:
        for part in str(text).split(","):
            first, dash, last = part.strip().partition("-")
            low = int(first)
            high = int(last) if dash else low
            if low < 0 or high < low:
                raise ValueError
            seeds.extend(range(low, high + 1))
    except ValueError:
        raise ConfigError(f"--seed {text!r}: expected a seed (3), a range (1-4) or a list "
                          f"(1,5,9) of non-negative integers") from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seed {text!r} names a seed twice")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seed {text!r} names {len(seeds)} seeds; at most {MAX_SEEDS} "
                          f"(each is a place-and-route run)")
    return tuple(seeds)


MAX_SEEDS = 32


@dataclass
class Step:
    """A progress event: ``name`` started (``done`` False) or finished (with ``seconds``)."""

    name: str
    done: bool = False
    seconds: float = 0.0


def output_directory(build_dir, target_name):
    return Path(build_dir) / "fpga" / target_name


def bitstream_path(build_dir, target):
    return output_directory(build_dir, target.name) / f"bitstream{target.device.bitstream_suffix}"


AUTO = "auto"
AUTO_ATTEMPTS = 3


# nextpnr's analytic placer gives up with this when every cell type is within the device's
# count but the cells cannot all be legalised (packing, carry chains, global buffers): in
# practice a design at the utilisation limit, so it is a does-not-fit, not a tool failure.
UNPLACEABLE = "Unable to find legal placement for all cells"
PROBE_MHZ = 25.0      # the first clock `auto` tries on a bare device (a board: its oscillator)


def synthesize(build_dir, target_name, *, frequency_mhz=AUTO, baud=DEFAULT_BAUD,
               allow_timing_failure=False, seed=1, progress=None):
    """Synthesise, place and route ``build_dir`` for ``target_name``; return the report.

    ``seed`` is nextpnr's placer seed, or several (a sequence, or text for
    :func:`parse_seeds`): each build then places the netlist with one seed after another
    until a placement meets the clock, or keeps the fastest; the report's ``placements``
    lists every one tried.

    ``frequency_mhz`` is the requested clock in MHz, or ``"auto"`` (also None): the fastest
    clock up to the target's goal (:attr:`Target.default_mhz`) that the design meets. It
    first builds at an easy clock (a board's oscillator, or 25 MHz), which is quick and
    measures the design's Fmax, then rebuilds just below that Fmax (or at the goal), and
    keeps the first build if the faster one fails; if it is met with room to spare, once
    more just below its own Fmax: two or three runs in all.

    Raises :class:`FitError` if the design does not fit the device, :class:`TimingError` if
    it misses the requested frequency (unless ``allow_timing_failure``),
    :class:`ToolchainError` if a tool is missing or fails; in each case the output folder
    holds the logs and a report saying why.
    """
    progress = progress or (lambda step: None)
    target = get_target(target_name)
    seed = parse_seeds(seed if isinstance(seed, (int, str))
                       else ",".join(str(one) for one in seed))
    if frequency_mhz not in (None, AUTO):
        return _synthesize_once(build_dir, target, frequency_mhz, baud, allow_timing_failure,
                                seed, progress)
    out = output_directory(build_dir, target.name)
    probe = target.oscillator_hz / 1e6 if target.is_board else PROBE_MHZ
    probe = min(probe, target.default_mhz)
    try:
        report = _synthesize_once(build_dir, target, probe, baud, allow_timing_failure,
                                  seed, progress, auto=True)
    except TimingError:
        # Slower than the probe: a bare device can go lower; a board cannot go below its
        # oscillator (and its PLL cannot divide it down).
        fmax = json.loads((out / "report.json").read_text())["timing"]["fmax_mhz"]
        slower = None if target.is_board else suggest_frequency(target, fmax)
        if slower is None:
            raise
        progress(Step(f"timing not met at {probe:g} MHz (Fmax {fmax:.2f} MHz); "
                      f"rebuilding at {slower:g} MHz", True))
        return _synthesize_once(build_dir, target, slower, baud, allow_timing_failure, seed,
                                progress, auto=True,
                                notes=[f"--frequency auto: {probe:g} MHz missed (Fmax "
                                       f"{fmax:.2f} MHz)"])
    history = [f"--frequency auto: {probe:g} MHz met (Fmax "
               f"{report['timing']['fmax_mhz']:.2f} MHz)"]
    fmax = report["timing"]["fmax_mhz"]
    for _ in range(AUTO_ATTEMPTS - 1):
        faster = suggest_frequency(target, fmax)
        if faster is None:
            break
        faster = min(faster, target.default_mhz)
        if faster <= report["clock"]["mhz"] * 1.02:        # not worth another run
            break
        progress(Step(f"Fmax {fmax:.2f} MHz: rebuilding at {faster:g} MHz", True))
        kept = out.with_name(f".{out.name}.kept")
        shutil.rmtree(kept, ignore_errors=True)
        os.replace(out, kept)
        try:
            report = _synthesize_once(build_dir, target, faster, baud, allow_timing_failure,
                                      seed, progress, notes=history, auto=True)
        except TimingError:
            fmax = json.loads((out / "report.json").read_text())["timing"]["fmax_mhz"]
            history.append(f"--frequency auto: {faster:g} MHz missed (Fmax {fmax:.2f} MHz)")
            shutil.rmtree(out, ignore_errors=True)
            os.replace(kept, out)
            continue
        except (ToolchainError, FitError) as error:
            # Only the faster build failed (nextpnr can fail to legalise a placement that
            # the PLL's fixed site or a tighter clock makes harder): the build before it,
            # the same netlist, fits and stands.
            reason = str(error).split(";")[0].split(". ")[0]       # its first sentence
            if isinstance(error, FitError):      # not "does not fit": the probe's build did
                reason = reason.split(": ", 1)[-1]
            history.append(f"--frequency auto: the {faster:g} MHz build failed ({reason}); "
                           f"kept the {report['clock']['mhz']:g} MHz build")
            progress(Step(history[-1], True))
            failed = out.with_name(f".{out.name}.failed")
            shutil.rmtree(failed, ignore_errors=True)
            if out.exists():
                os.replace(out, failed)        # its logs stay on disk beside the kept build
            os.replace(kept, out)
            break
        except BaseException:
            if out.exists():
                shutil.rmtree(kept, ignore_errors=True)       # show the failed run
            else:
                os.replace(kept, out)
            raise
        shutil.rmtree(kept, ignore_errors=True)
        # Met. Placed at the tighter clock the design often comes out faster than the
        # probe measured (nextpnr optimises for the clock it is given), so the next
        # attempt, if any is left, tries just below the new Fmax, this build kept.
        fmax = report["timing"]["fmax_mhz"]
        history.append(f"--frequency auto: {faster:g} MHz met (Fmax {fmax:.2f} MHz)")
    report["notes"] = [*history, *(n for n in report["notes"] if n not in history)]
    _write_reports(out, report)
    return report


def _synthesize_once(build_dir, target, frequency_mhz, baud, allow_timing_failure, seed,
                     progress, notes=(), auto=False):
    spec = CoreSpec.load(build_dir)
    device = target.device
    if not isinstance(frequency_mhz, (int, float)) or not 0 < frequency_mhz <= MAX_MHZ:
        raise ConfigError(f"--frequency must be 'auto' or in (0, {MAX_MHZ:g}] MHz, got "
                          f"{frequency_mhz:g}" if isinstance(frequency_mhz, (int, float))
                          else f"--frequency must be 'auto' or a number of MHz, got "
                               f"{frequency_mhz!r}")
    tools = {"yosys": toolchain.fpga_tool("yosys"),
             "nextpnr": toolchain.fpga_tool(device.nextpnr)}
    if target.is_board:
        tools["pack"] = toolchain.fpga_tool(device.packer)

    progress(Step("elaborate"))
    started = time.monotonic()
    notes = list(notes)
    if target.is_board:
        top = BoardTop(spec, target, frequency_hz=frequency_mhz * 1e6, baud=baud)
        clock_hz = top.frequency_hz
        via = " via PLL" if top.pll else " (no PLL)"
        clock = {"requested_mhz": frequency_mhz, "mhz": round(clock_hz / 1e6, 4),
                 "source": f"{target.oscillator_hz / 1e6:g} MHz oscillator{via}"}
        link = {"baud": baud, "divisor": top.divisor,
                "actual_baud": round(clock_hz / top.divisor)}
    else:
        top = CoreHarness(spec)
        clock_hz = frequency_mhz * 1e6
        clock = {"requested_mhz": frequency_mhz, "mhz": frequency_mhz,
                 "source": "clock pin (out of context)"}
        link = None
        notes.append(f"out-of-context: the core with a registered I/O harness of "
                     f"{top.flip_flops} flip-flops and an XOR tree; no UART, no PLL")
    clock["auto"] = auto
    platform = target.platform(clock_hz)
    # The core's Verilog as the user has it, but with its program and weight words read
    # from $readmemh files: the same contents, which Yosys reads in seconds instead of
    # parsing an initial block of one statement a word (hwgen/gateware/verilog_output.py).
    verilog, images = rom_images(spec.verilog_text(), prefix=f"{spec.verilog.stem}_rom")
    platform.add_file(spec.verilog.name, verilog)
    for name, contents in images.items():
        platform.add_file(name, contents)
    plan = platform.build(top, name=TOP, do_build=False, synth_opts=list(device.synth_opts),
                          script_after_synth=f"tee -q -o {STAT_FILE} stat -json")
    progress(Step("elaborate", True, time.monotonic() - started))

    out = output_directory(build_dir, target.name)
    failure = None
    with atomic_directory(out) as work:
        plan.extract(str(work))
        for leftover in ("build_top.sh", "build_top.bat", "build_top.json"):
            (work / leftover).unlink(missing_ok=True)
        result = {
            "target": target.name, "description": target.description,
            "kind": "board" if target.is_board else "device",
            "family": device.family, "device": device.part, "package": device.package,
            "design": {"name": spec.name, "design_id": f"0x{spec.design_id:08x}",
                       "verilog": str(spec.verilog.relative_to(spec.directory)),
                       "timesteps": spec.timesteps, "time_chunk": spec.time_chunk,
                       "inputs": spec.inputs,
                       "outputs": spec.outputs, "v_bits": spec.v_bits},
            "clock": clock, "uart": link, "seed": seed[0], "placements": [],
            "notes": notes,
            "tools": {name: str(path) for name, path in tools.items()},
            "logs": {}, "commands": [], "bitstream": None,
        }
        try:
            _run_flow(work, target, tools, seed, result, allow_timing_failure, progress)
        except (FitError, TimingError, ToolchainError) as error:
            # Name the logs where they will be, not in the staging folder.
            failure = type(error)(str(error).replace(str(work), str(out)))
            result.setdefault("status", "error")
            result["error"] = str(failure)
        _write_reports(work, result)
    if failure is not None:
        raise failure
    return result


def _run_flow(work, target, tools, seeds, result, allow_timing_failure, progress):
    device = target.device
    _run(work, result, progress, "yosys", "synthesis (Yosys)",
         [tools["yosys"], f"{TOP}.ys"])
    cells = parse.parse_yosys_stat(work / STAT_FILE)
    result["cells"] = dict(sorted(cells.items(), key=lambda item: -item[1]))

    placed = _place(work, target, tools, seeds, result, cells, progress)
    result["resources"] = _resource_rows(device, placed.utilization, cells)
    failing = [clock for clock in placed.clocks if not clock.met]
    result["timing"] = {
        "clocks": [clock.to_json() for clock in placed.clocks],
        "met": not failing,
        "fmax_mhz": round(min((c.achieved_mhz for c in placed.clocks), default=0.0), 2),
        "critical_paths": [parse.critical_path_summary(p) for p in placed.critical_paths],
    }
    slowest = min(placed.clocks, key=lambda clock: clock.achieved_mhz, default=None)
    result["timing"]["critical_path"] = (
        parse.path_of_clock(result["timing"]["critical_paths"], slowest.name)
        if slowest else None)
    if failing and not allow_timing_failure:
        result["status"] = "timing_failure"
        raise TimingError(_timing_failure(target, failing, result["timing"]))
    result["status"] = "timing_failure_accepted" if failing else "pass"

    if target.is_board:
        bitstream = f"bitstream{device.bitstream_suffix}"
        if device.family == "ice40":
            command = [tools["pack"], f"{TOP}.asc", bitstream]
        else:
            command = [tools["pack"], "--compress", "--input", f"{TOP}.config",
                       "--bit", bitstream]
        _run(work, result, progress, "pack", f"bitstream ({Path(tools['pack']).name})",
             command)
        result["bitstream"] = bitstream


def _place(work, target, tools, seeds, result, cells, progress):
    """nextpnr on the netlist with each of ``seeds`` in turn, until a placement meets every
    clock; the one kept (the first that met, else the fastest) has the usual file names,
    each other's log stays as ``nextpnr.seed<N>.log``. Records ``result["seed"]`` and
    ``result["placements"]``; returns the kept placement's parsed report."""
    device = target.device
    layout = f"{TOP}.asc" if device.family == "ice40" else f"{TOP}.config"
    outputs = ("nextpnr.log", layout, NEXTPNR_REPORT)
    if device.family == "ice40":
        files = ["--pcf", f"{TOP}.pcf", "--asc", layout]
    else:
        files = ["--lpf", f"{TOP}.lpf", "--textcfg", layout]
    kept = None                                   # (Fmax, seed, parsed report, command)
    seconds = 0.0
    for index, seed in enumerate(seeds):
        command = [tools["nextpnr"], *device.nextpnr_device, "--json", f"{TOP}.json",
                   *files, "--report", NEXTPNR_REPORT, "--timing-allow-fail",
                   "--seed", str(seed)]
        title = ("place and route (nextpnr)" if len(seeds) == 1 else
                 f"place and route (nextpnr, seed {seed}, {index + 1} of {len(seeds)})")
        code = _run(work, result, progress, "nextpnr", title, command, check=False)
        result["commands"].pop()          # commands.sh names the kept placement's only
        seconds += result["seconds"]["nextpnr"]
        result["seconds"]["nextpnr"] = round(seconds, 1)
        log_text = (work / "nextpnr.log").read_text(errors="replace")
        if code != 0:
            table = parse.parse_utilisation_log(log_text)
            over = [(cell, used, available) for cell, (used, available) in table.items()
                    if used > available]
            errors = parse.nextpnr_errors(log_text)
            unplaceable = any(UNPLACEABLE in line for line in errors)
            if unplaceable and not over and (index + 1 < len(seeds) or kept):
                # another seed may place it, or one already has
                result["placements"].append({"seed": seed, "error": UNPLACEABLE})
                _set_aside(work, outputs, seed, drop=(layout,))
                continue
            result["resources"] = _resource_rows(device, table, cells)
            if over:
                result["status"] = "does_not_fit"
                raise FitError(_does_not_fit(target, over, cells))
            if unplaceable:
                result["status"] = "does_not_fit"
                raise FitError(_cannot_place(target, table, cells, seeds))
            raise ToolchainError(f"nextpnr failed (exit status {code}): "
                                 f"{errors[0] if errors else 'no ERROR line'}; last lines "
                                 f"of {work / 'nextpnr.log'}:\n"
                                 f"{parse.tail(work / 'nextpnr.log')}")
        placed = parse.parse_nextpnr_report(work / NEXTPNR_REPORT)
        fmax = min((clock.achieved_mhz for clock in placed.clocks), default=0.0)
        met = all(clock.met for clock in placed.clocks)
        result["placements"].append({"seed": seed, "fmax_mhz": round(fmax, 2), "met": met})
        if kept is None or fmax > kept[0]:
            if kept is not None:              # the placement it beats is only bulk now
                (work / f"{TOP}.seed{kept[1]}{Path(layout).suffix}").unlink()
            kept = (fmax, seed, placed, command)
            _set_aside(work, outputs, seed)
        else:
            _set_aside(work, outputs, seed, drop=(layout,))
        if met:
            break
    _restore(work, outputs, kept[1])
    result["seed"] = kept[1]
    result["commands"].append(shlex.join(str(c) for c in kept[3]))
    if len(result["placements"]) > 1:
        tried = ", ".join(f"{p['seed']} ({p['fmax_mhz']:.2f} MHz)" if "fmax_mhz" in p
                          else f"{p['seed']} (not placed)" for p in result["placements"])
        result["notes"].append(f"placer seeds tried: {tried}; kept seed {kept[1]}")
    return kept[2]


def _set_aside(work, outputs, seed, drop=()):
    """Rename a placement's files to ``<stem>.seed<N><suffix>`` (deleting those in ``drop``:
    a layout that will not be kept is only bulk)."""
    for name in outputs:
        path = work / name
        if not path.exists():
            continue
        if name in drop:
            path.unlink()
        else:
            path.rename(work / f"{path.stem}.seed{seed}{path.suffix}")


def _restore(work, outputs, seed):
    """Give the placement set aside for ``seed`` its usual file names back."""
    for name in outputs:
        path = work / name
        aside = work / f"{path.stem}.seed{seed}{path.suffix}"
        if aside.exists():
            aside.replace(path)


def _run(work, result, progress, name, title, command, check=True):
    """Run one tool in ``work`` with its output in ``<name>.log``; return its exit status,
    or raise :class:`ToolchainError` with the log's tail if ``check`` and it failed."""
    log = work / f"{name}.log"
    result["logs"][name] = log.name
    result["commands"].append(shlex.join(str(c) for c in command))
    progress(Step(title))
    started = time.monotonic()
    with open(log, "w") as output:
        try:
            completed = subprocess.run([str(c) for c in command], cwd=work, stdout=output,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as error:
            raise ToolchainError(f"{command[0]}: cannot run it ({error})") from None
    seconds = time.monotonic() - started
    result.setdefault("seconds", {})[name] = round(seconds, 1)
    progress(Step(title, True, seconds))
    if check and completed.returncode != 0:
        errors = parse.nextpnr_errors(log.read_text(errors="replace"))
        raise ToolchainError(f"{Path(str(command[0])).name} failed (exit status "
                             f"{completed.returncode}): "
                             f"{errors[0] if errors else 'see the log'}; last lines of "
                             f"{log}:\n{parse.tail(log)}")
    return completed.returncode


def _flip_flops(cells):
    return sum(count for cell, count in cells.items()
               if cell.startswith(("SB_DFF", "TRELLIS_FF")))


def _resource_rows(device, utilization, cells):
    rows = []
    for label, cell, meaning in device.resources:
        if cell in utilization:
            used, available = utilization[cell]
            rows.append(_row(label, cell, used, available, meaning))
    if device.family == "ice40" and "ICESTORM_LC" in utilization:
        # nextpnr counts logic cells; Yosys tells how many hold a LUT and a flip-flop.
        available = utilization["ICESTORM_LC"][1]
        rows.insert(1, _row("LUTs", "SB_LUT4", cells.get("SB_LUT4", 0), available,
                            "LUT4s (Yosys, before packing)"))
        rows.insert(2, _row("FFs", "SB_DFF*", _flip_flops(cells), available,
                            "flip-flops (Yosys, before packing)"))
    return rows


def _row(label, cell, used, available, meaning):
    percent = 100.0 * used / available if available else 0.0
    return {"resource": label, "cell": cell, "used": used, "available": available,
            "percent": round(percent, 1), "meaning": meaning}


def _top_cells(cells, count=5):
    ranked = sorted(cells.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{cell} {number}" for cell, number in ranked)


def _does_not_fit(target, over, cells):
    labels = {cell: f"{label} ({cell}: {meaning})"
              for label, cell, meaning in target.device.resources}
    parts = [f"{used} {labels.get(cell, cell)} needed, {available} available "
             f"({100 * used / available:.0f}%)" for cell, used, available in over]
    advice = "Choose a smaller hardware configuration or a larger device"
    if target.fitting_config:
        settings = " ".join(f"--set {setting}" for setting in target.fitting_config)
        advice = (f"Choose a smaller hardware configuration (the bundled digits model fits "
                  f"{target.name} with `hwgen compile ... {settings}`) or a larger device")
    return (f"the design does not fit {target.device.part} ({target.name}): "
            f"{'; '.join(parts)}. Largest cell types after synthesis: {_top_cells(cells)}. "
            f"{advice}")


def _cannot_place(target, table, cells, seeds):
    labels = {cell: label for label, cell, _meaning in target.device.resources}
    fullest = sorted(((used / available, cell, used, available)
                      for cell, (used, available) in table.items() if available),
                     reverse=True)[:2]
    parts = [f"{used} of {available} {labels.get(cell, cell)} ({cell}, {100 * ratio:.0f}%)"
             for ratio, cell, used, available in fullest]
    seeds = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {_seed_list(seeds)}"
    return (f"the design does not fit {target.device.part} ({target.name}): nextpnr "
            f"({seeds}) found no legal placement at {', '.join(parts) or 'its utilisation'}, "
            f"the device's utilisation limit. Largest cell types after synthesis: "
            f"{_top_cells(cells)}. Choose a smaller hardware configuration or a larger "
            f"device (another --seed may place it, with no margin left)")


def _seed_list(seeds):
    return ", ".join(str(seed) for seed in seeds)


def _timing_failure(target, failing, timing):
    parts = []
    for clock in failing:
        parts.append(f"clock '{clock.name}' reaches {clock.achieved_mhz:.2f} MHz, "
                     f"constraint {clock.constraint_mhz:.2f} MHz")
    path = parse.path_of_clock(timing["critical_paths"], failing[0].name)
    where = ""
    if path:
        where = (f"; critical path {path['delay_ns']:.1f} ns ({path['logic_ns']:.1f} ns logic "
                 f"in {path['logic_levels']} levels, {path['routing_ns']:.1f} ns routing) "
                 f"from {path['start']} to {path['end']}")
        if path["sources"]:
            where += f" (sources: {', '.join(path['sources'][:4])})"
    suggestion = suggest_frequency(target, min(clock.achieved_mhz for clock in failing))
    lower = f"Rerun with --frequency {suggestion:g}" if suggestion else "Lower --frequency"
    return (f"timing failure on {target.device.part} ({target.name}): {'; '.join(parts)}"
            f"{where}. {lower}, or pass --allow-timing-failure to keep the result")


def suggest_frequency(target, achieved_mhz, margin=0.97):
    """A frequency (MHz, in 0.25 MHz steps) below ``achieved_mhz`` with a small margin that
    the target can make (a board's PLL within 1 %, not above the achieved Fmax, or the
    board's oscillator without the PLL); None if there is none."""
    from .pll import ecp5_pll, ice40_pll
    candidate = int(achieved_mhz * margin * 4) / 4
    if not target.is_board:
        return candidate if candidate >= 1 else None
    make = ice40_pll if target.device.family == "ice40" else ecp5_pll
    while candidate >= 1:
        if candidate * 1e6 == target.oscillator_hz:
            return candidate                              # the oscillator itself, no PLL
        try:
            if make(target.oscillator_hz, candidate * 1e6).f_out <= achieved_mhz * 1e6:
                return candidate
        except ConfigError:
            pass
        candidate -= 0.25
    # Below the PLL's range: the oscillator without a PLL, if the design is fast enough.
    oscillator = target.oscillator_hz / 1e6
    return oscillator if oscillator <= achieved_mhz * margin else None


def _write_reports(work, result):
    (work / "report.json").write_text(json.dumps(result, indent=1) + "\n")
    (work / "commands.sh").write_text(
        "#!/bin/sh\n# The tool commands `hwgen synth` ran, in this folder.\nset -e\n"
        + "".join(f"{command}\n" for command in result["commands"]))
    template = jinja2.Template(
        resources.files("hwgen.templates").joinpath("fpga_report.md.j2").read_text(),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    (work / "report.md").write_text(template.render(r=result))
    if result.get("resources"):
        from hwgen import charts
        charts.save(charts.utilisation_chart(result), work / "utilisation.png")
