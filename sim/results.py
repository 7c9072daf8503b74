"""A co-simulation's results in the build directory: DIR/sim/.

``hwgen simulate`` and the sweep run the same thing: :func:`cosimulate_into` co-simulates a
build on Verilator against the reference and writes, atomically, ``DIR/sim/results.json``
(the verdict and cycles, :meth:`~hwgen.sim.cosim.CosimResult.to_json`), ``outputs.npz``
(the RTL's output spikes and final membranes), ``cycles.png`` (per layer, measured cycles
against the ideal bound and the input and output spike densities) and, with waves, the VCDs.
"""

import json
import shutil

import numpy as np

from hwgen import charts
from hwgen.atomic import atomic_directory

from .cosim import cosimulate


def cosimulate_into(build, stimulus, *, waves=False, jobs=None, progress=None, log=None):
    """Co-simulate ``stimulus`` (a :class:`~hwgen.sim.stimulus.Stimulus`) on ``build`` and
    write DIR/sim/; return (:class:`~hwgen.sim.cosim.CosimResult`, its JSON report).

    DIR/sim's staging directory is made first, so a build directory that cannot be written
    (a read-only mount) is refused before the simulation runs rather than after it, and
    the simulator's scratch files live in it, so one cleanup (on success, error or signal)
    removes everything this made."""
    with atomic_directory(build.path / "sim") as staging:
        work = staging / "work"
        result = cosimulate(build, stimulus.inputs, labels=stimulus.labels, waves=waves,
                            parallel=jobs, work_dir=work, progress=progress, log=log)
        report = result.to_json()
        _write(staging, build, result, report, waves)
        shutil.rmtree(work)
    if waves:
        report["waves"] = [str(build.path / "sim" / f"waves{i}.vcd")
                           for i in range(len(result.waves))]
    return result, report


def _write(staging, build, result, report, waves):
    (staging / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    densities = charts.layer_densities(result.program, build.model(), result.trace)
    charts.save(charts.cycles_chart(
        report, densities, f"{build.name}: {report['samples']} samples, "
                           f"{report['cycles_mean']:.1f} cycles per inference"),
        staging / "cycles.png")
    np.savez_compressed(staging / "outputs.npz", spikes=result.rtl_output_spikes(),
                        membranes=result.verdict.rtl_membranes)
    if waves:
        for index, path in enumerate(result.waves):
            if path.exists():
                shutil.move(path, staging / f"waves{index}.vcd")
