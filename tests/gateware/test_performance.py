"""The cycle model of hwgen/performance.py, checked on the generated hardware.

One layer, every input spiking at every step, so each neuron's matched pairs are exactly
its nonzero weights; the Amaranth simulator counts cycles from ``start`` to ``done``.
"""

import numpy as np
import pytest

from hwgen.compiler.hardware_config import FETCH_WIDTHS, load
from hwgen.errors import ConfigError
from hwgen.compiler.ir import LIF, Dense, Input, Model, Readout
from hwgen.compiler.scheduler.assign import walk_steps
from hwgen.compiler.scheduler.program import compile_program
from hwgen.compiler.scheduler.cycle_model import layer_overhead
from hwgen.gateware.top import Accelerator
import amaranth_streams
from hwgen.compiler.ir.spike_words import spikes_to_chunk_words

INPUTS = 64


def measured_cycles(pairs_per_neuron, timesteps, lif_steps, neurons=1, join="dual",
                    positions=None, time_chunk=None, fetch_width=1, active=None, fifo_depth=4,
                    lif_buffer=0):
    """Cycles of one inference of a layer of ``neurons`` whose neuron n has
    ``pairs_per_neuron`` matched pairs (a sequence: its n-th entry, cyclically) or weights
    at ``positions``, every input spiking at every step (or only those in ``active``)."""
    model = Model("m", timesteps)
    model.add(Input("x", (INPUTS,)))
    weights = np.zeros((neurons, INPUTS), dtype=int)
    if positions is not None:
        weights[:, positions] = 1
    else:
        pairs = np.resize(np.atleast_1d(pairs_per_neuron), neurons)
        for n, count in enumerate(pairs):
            weights[n, :count] = 1
    model.add(Dense("fc", weights, weight_bits=2, acc_bits=9), "x")
    model.add(LIF("lif", np.full(neurons, 3), v_bits=10), "fc")
    model.add(Readout("r"), "lif")
    config = load(overrides=["tppes=1", "chunk=16", f"lif_steps={lif_steps}", f"join={join}",
                             f"fetch_width={fetch_width}", f"fifo_depth={fifo_depth}",
                             f"lif_buffer={lif_buffer}"]
                  + ([f"time_chunk={time_chunk}"] if time_chunk else []))
    program = compile_program(model, config)
    spikes = np.ones((1, timesteps, INPUTS), dtype=np.uint8)
    if active is not None:
        spikes[:, :, ~np.isin(np.arange(INPUTS), active)] = 0
    words = spikes_to_chunk_words(spikes, program.lanes)[0]
    dut = Accelerator(program)
    result = {}

    async def bench(ctx):
        for word in words:
            await amaranth_streams.put(ctx, dut.inputs, int(word))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.tick().until(dut.done)
        result["cycles"] = ctx.get(dut.cycles)

    amaranth_streams.run(dut, bench)
    return result["cycles"], program.config


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
@pytest.mark.parametrize("join", ["dual", "laggy"])
@pytest.mark.parametrize("timesteps, lif_steps", [(4, 1), (8, 1), (8, 2)])
@pytest.mark.parametrize("pairs", [16, 48])
def test_one_neuron_costs_its_pairs_plus_the_fixed_overhead(timesteps, lif_steps, pairs, join,
                                                            fetch_width):
    cycles, config = measured_cycles(pairs, timesteps, lif_steps, join=join,
                                     fetch_width=fetch_width)
    assert cycles == pairs + layer_overhead(config, timesteps)


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
@pytest.mark.parametrize("join", ["dual", "laggy"])
def test_neurons_shorter_than_their_lif_evaluation_cost_the_difference(join, fetch_width):
    # 8 neurons of 4 pairs, T = 8: after the first, each waits 8 - 4 cycles for the LIF.
    cycles, config = measured_cycles(4, 8, 1, neurons=8, join=join, fetch_width=fetch_width)
    assert cycles == 8 * 4 + layer_overhead(config, 8) + 7 * (8 - 4)


@pytest.mark.parametrize("timesteps, time_chunk, lif_steps", [(8, 4, 1), (8, 1, 1), (32, 16, 4)])
def test_each_time_chunk_costs_its_pairs_plus_the_fixed_overhead(timesteps, time_chunk,
                                                                 lif_steps):
    """Every input spikes in every chunk, so each of the T / T_c passes walks all pairs."""
    cycles, config = measured_cycles(16, timesteps, lif_steps, time_chunk=time_chunk)
    assert cycles == timesteps // time_chunk * 16 + layer_overhead(config, timesteps)


@pytest.mark.parametrize("join, walk", [("dual", 4), ("laggy", 64)])
def test_the_laggy_walker_visits_every_active_input_below_a_match(join, walk):
    # One nonzero weight at the top of each of the 4 chunks, every input active: 4 pairs;
    # the walker visits all 16 inputs of each chunk.
    positions = [15, 31, 47, 63]
    cycles, config = measured_cycles(4, 4, 1, join=join, positions=positions)
    model_walk = walk_steps(np.ones((1, INPUTS), dtype=bool),
                            np.isin(np.arange(INPUTS), positions)[None, :], 16)[0, 0]
    assert model_walk == 64
    # The laggy fill's second cycle (the last word waiting for its neuron's pseudo-sum) is
    # hidden when the walker lags the fast side anyway.
    assert cycles == walk + layer_overhead(config, 4) - (join == "laggy")


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
def test_chunks_without_a_matched_pair_cost_one_cycle_per_group(fetch_width):
    # One weight in each of the 4 chunks, only the first chunk's input active: 1 pair and
    # 5 entries (header + 4 chunks). The fetch reads them in ceil(5 / K) groups; the
    # neuron's last chunk, unmatched, folds its end into an earlier match.
    positions = [0, 16, 32, 48]
    cycles, config = measured_cycles(1, 4, 1, positions=positions, active=[0],
                                     fetch_width=fetch_width)
    groups = -(-5 // fetch_width)
    # The fill counts the first header's own cycle at K = 1 (it precedes the first chunk;
    # with K > 1 both come in one group, hence the smaller fill), so a fetch-bound neuron
    # adds its groups beyond that one at K = 1, all of them at K > 1.
    assert cycles == groups - (fetch_width == 1) + layer_overhead(config, 4)


def test_the_shallowest_fifos_cost_no_cycles():
    """``fifo_depth`` 2 costs no cycles against 4 on neurons with a few pairs per chunk:
    the fetch's match FIFO (one shallower than the setting, for its push register) must
    still be 2 deep, since a 1-deep buffered FIFO takes a match only every other cycle
    (with it this layer is slower)."""
    positions = list(range(0, INPUTS, 4))          # 4 matched pairs in each chunk of 16
    deep, config = measured_cycles(len(positions), 4, 1, neurons=8, positions=positions)
    shallow, _ = measured_cycles(len(positions), 4, 1, neurons=8, positions=positions,
                                 fifo_depth=2)
    assert shallow == deep


@pytest.mark.parametrize("join", ["dual", "laggy"])
def test_the_lif_buffer_lets_short_neurons_borrow_from_long_ones(join):
    # T = 8, neurons of 2 and 14 pairs in turn: 16 pairs and 16 LIF cycles every two
    # neurons. Without the buffer each short neuron but the first waits 8 - 2 cycles for
    # the LIF stage; with it the accumulators go on and the layer costs its pairs.
    plain, config = measured_cycles([2, 14], 8, 1, neurons=8, join=join)
    assert plain == 64 + layer_overhead(config, 8) + 3 * (8 - 2)
    buffered, config = measured_cycles([2, 14], 8, 1, neurons=8, join=join, lif_buffer=1)
    assert buffered == 64 + layer_overhead(config, 8)
    # neurons all shorter than the LIF evaluation stay bound by it, buffer or not
    short, config = measured_cycles(4, 8, 1, neurons=8, join=join, lif_buffer=1)
    assert short == 8 * 4 + layer_overhead(config, 8) + 7 * (8 - 4)


@pytest.mark.parametrize("value", ["2", "-1", "on"])
def test_lif_buffer_is_a_flag(value):
    with pytest.raises(ConfigError, match=rf"--set lif_buffer={value}: lif_buffer = "
                                          r".* must be 0 or 1"):
        load(overrides=[f"lif_buffer={value}"])
