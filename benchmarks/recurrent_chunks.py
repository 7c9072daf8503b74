"""Recurrent layers under time chunks: RTL cycles per inference at several T_c.

A recurrent layer runs T_c sub-passes per chunk (docs/architecture.md, "Recurrent
layers"), so a larger T_c costs it about T_c passes over its chunk's active inputs while
the layers around it run once per chunk. This prints, per workload and T_c, the measured
cycles (co-simulated on Verilator, bit-exact or it stops), the ideal bound (sum over
layers of the busiest TPPE's matched pairs, sub-passes included) and the recurrent
layers' share of the cycles:

- the braille RNN shape (NIR: 12 -> recurrent CubaLIF 38 -> CubaLIF 7, T = 256), where
  the recurrent layer is nearly all the work;
- a model whose feed-forward front dominates (256 -> 128 -> recurrent 16 -> 8, T = 64).

    python benchmarks/recurrent_chunks.py [--tppes 2] [--samples 4] [--chunks 1 4 16]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from hwgen import build_directory  # noqa: E402
from hwgen.compiler import hardware_config  # noqa: E402
from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout  # noqa: E402
from hwgen.compiler.scheduler.program import compile_program  # noqa: E402
from hwgen.sim.cosim import cosimulate  # noqa: E402


def braille(samples):
    from braille import braille_graph, braille_inputs
    from hwgen.compiler.frontends import nir as nir_frontend
    return (nir_frontend.load(braille_graph(seed=0, timesteps=256)),
            braille_inputs(samples=samples, seed=2))


def wide_front(samples, T=64):
    rng = np.random.default_rng(0)
    model = Model("front_rnn", T)
    model.add(Input("input", (256,), encoding="spikes"))
    sizes = [(128, False), (16, True), (8, False)]
    previous, fan_in = "input", 256
    for index, (n, recurrent) in enumerate(sizes, 1):
        weight = rng.integers(-3, 4, (n, fan_in + (n if recurrent else 0)))
        weight[rng.random(weight.shape) < 0.5] = 0
        model.add(Dense(f"fc{index}", weight, rng.integers(-2, 1, n), weight_bits=4,
                        acc_bits=14, recurrent=recurrent), previous)
        model.add(LIF(f"lif{index}", np.full(n, 12), leak=Leak.by_shift(3), v_bits=14),
                  f"fc{index}")
        previous, fan_in = f"lif{index}", n
    model.add(Readout("readout"), previous)
    x = (rng.random((samples, T, 256)) < 0.15).astype(np.uint8)
    return model.validate(), x


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tppes", type=int, default=2)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    print(f"{'workload':<34} {'T':>4} {'T_c':>4} {'cycles':>9} {'ideal':>9} {'ratio':>6} "
          f"{'recurrent share':>15} {'seconds':>8}")
    for name, make in (("braille RNN 12-38r-7", braille),
                       ("front 256-128-16r-8", wide_front)):
        model, x = make(args.samples)
        for lanes in args.chunks:
            program = compile_program(model, hardware_config.load(
                None, [f"tppes={args.tppes}", f"time_chunk={lanes}"]))
            with tempfile.TemporaryDirectory() as folder:
                build = build_directory.write(program, model, Path(folder) / "build")
                start = time.monotonic()
                result = cosimulate(build, x, parallel=2)
                seconds = time.monotonic() - start
            if not result.verdict.bit_exact:
                sys.exit(f"{name} at T_c = {lanes}: not bit-exact: "
                         f"{next(m for m in result.verdict.first_mismatch if m).describe()}")
            recurrent = [i for i, plan in enumerate(program.layers) if plan.recurrent]
            layer_cycles = result.layer_cycles.mean(axis=0)
            share = layer_cycles[recurrent].sum() / layer_cycles.sum()
            cycles = result.cycles.mean()
            ideal = result.ideal.sum(axis=1).mean()
            print(f"{name:<34} {model.timesteps:>4} {lanes:>4} {cycles:>9,.0f} "
                  f"{ideal:>9,.0f} {cycles / ideal:>6.2f} {share:>15.0%} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
