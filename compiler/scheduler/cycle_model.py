"""The accelerator's cycle model: what a layer costs beyond its ideal bound (the
per-neuron terms are :func:`~hwgen.compiler.scheduler.assign.neuron_costs`).

Measured on the generated hardware (tests/gateware/test_performance.py checks it, and
benchmarks/fc_cycles.py reports it on larger workloads):

- A layer takes at least its **ideal bound**: the matched pairs of its busiest TPPE,
  one per cycle.
- Plus a **fixed overhead** of ``22 + T_c / lif_steps`` cycles per layer and time chunk
  (``FILL_AND_DRAIN``; T_c = T unless the design runs in time chunks): the barrier
  (registered) and descriptor fetch (4); the pipeline filling (14: program read and its
  register, spike-mask read and its register, hold-back, the pushed-match register, the
  buffered match FIFO (2), two inner-join stages,
  weight and spike-word read and their register, the accumulators' hand-over to the LIF
  stage); the last neuron's LIF evaluation
  (T_c / lif_steps); its output, compression and the write bus draining (4). Every block
  RAM's output is registered before logic uses it, for clock speed.
- A recurrent layer under T_c > 1 runs T_c sub-passes per chunk: each pays the fixed
  overhead, less one cycle of barrier (the sequencer replays the layer without reading its
  descriptor again), and walks the chunk's active inputs again.
- With a wide fetch (``fetch_width`` K > 1) the fill is ``WIDE_FETCH_SAVING`` (1) cycle
  shorter: the first neuron's header and first weight chunk are read in the same group,
  and its hold-back register feeds the match FIFO directly (no pushed-match register), but
  its group queue's head is a register (a buffered FIFO, for clock speed), a cycle more.
- Plus, per neuron and chunk, ``max(0, T_c / lif_steps - pairs)`` when a neuron has fewer matched
  pairs than its LIF evaluation takes (the LIF stage, overlapped with the next neuron's
  accumulation, becomes the bottleneck; with ``lif_buffer`` an upper bound, as a short
  neuron may use the LIF cycles a long neighbour leaves), and likewise when a neuron's fetch cycles
  outnumber its pairs: ceil(entries / K) groups for its entries (1 + its nonzero weight
  chunks; K = 1: one per entry), plus one per extra weight chunk with a matched pair in a
  group (a group emits one chunk match per cycle). The scheduler balances
  TPPEs on exactly this per-neuron cost (:func:`hwgen.compiler.scheduler.assign.neuron_costs`).
- A called block (address generation, :mod:`.blocks`) is walked as its entries inline,
  plus about ``blocks.CALL_CYCLES`` (6) fetch cycles per call for the CALL and the RETURN;
  these matter only where the fetch is the bound, and ``call_groups`` keeps them under
  1/8 of the called run's fetch cycles. The scheduler's per-neuron costs leave them out.
- With the laggy join (``join = "laggy"``) the spike side lags: its walker visits one active
  input per cycle, up to a chunk's highest matched one, so a neuron's term is its walk
  (:func:`hwgen.compiler.scheduler.assign.walk_steps`, at least its pairs) instead of its
  pairs, and the fixed overhead is ``LAGGY_FILL`` cycles longer: the walk FIFO between the
  fast side and the walker (buffered, one cycle more than a register), and the layer's last
  word waiting for its neuron's pseudo-sum in the buffered pending FIFO; that second cycle
  is hidden when the last neuron's walk is longer than its pairs (the walker lags anyway).
"""

FILL_AND_DRAIN = 22
LAGGY_FILL = 2
# the wide fetch: the first header and chunk come in one group (-1), and its hold-back
# register feeds the match FIFO directly (-1; FiberFetch's match waits a cycle in a
# register, for timing), through a group queue whose head is registered (+1, for timing)
WIDE_FETCH_SAVING = 1


def pass_overhead(join, fetch_width, lanes, lif_steps):
    """The fixed overhead of one pass over a layer (one time chunk), in cycles."""
    fill = FILL_AND_DRAIN + (LAGGY_FILL if join == "laggy" else 0)
    if fetch_width > 1:
        fill -= WIDE_FETCH_SAVING
    return fill + lanes // lif_steps


def layer_overhead(config, timesteps):
    """The fixed per-layer overhead in cycles: once per time chunk."""
    chunks = timesteps // config.time_chunk
    return chunks * pass_overhead(config.join, config.fetch_width, config.time_chunk,
                                  config.lif_steps)
