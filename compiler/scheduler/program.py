"""Scheduling: a model onto a hardware configuration, as a :class:`~hwgen.compiler.program.Program`.

:func:`compile_program` legalises a model into a chain of fused dense + LIF layers,
resolves the hardware configuration against it (:mod:`.widths`), assigns every layer's
output neurons to TPPEs (:mod:`.assign`), places their outputs in the next layer's spike
fiber, encodes every neuron's weight fiber (:mod:`.fibers`), storing each run of weight
values once per TPPE, and writes each TPPE's fiber program in the instruction format
(:mod:`hwgen.compiler.instruction_format`): repeated runs called as blocks (:mod:`.blocks`),
and with ``mapping = "tiles"`` a layer whose positions all call one block run in step from
a program memory the TPPEs share (:mod:`.lockstep`).
"""

import dataclasses

import numpy as np
import scipy.sparse

from hwgen.errors import UnsupportedError
from ..instruction_format import pack_entry, pad_groups, program_layouts
from ..passes.legalise import legalise
from ..program import LayerPlan, LIFMode, Program
from .assign import Assignment, neuron_costs, schedule_layer, schedule_runs, window_costs
from .blocks import SharedCalls, share_blocks
from .fibers import WeightFiber, WeightMemory
from .lockstep import in_step_cycles, position_slots, shared_block, tile_assignment
from .shared_activations import bank_shift, check_sharable
from .widths import check_capacity, resolve_depths, resolve_widths
from .windows import InputMap


def _activity(trace_spikes, source_name, size):
    """Fraction of samples in which each neuron of ``source_name`` spiked at least once."""
    if trace_spikes is None:
        return None
    return trace_spikes[source_name].any(axis=1).mean(axis=0)[:size]


def _in_slot_order(weight, slots):
    """``weight`` (dense or scipy.sparse, outputs x inputs) with column ``slots[s]`` moved
    to column s (-1: an empty column), as CSR with sorted indices and no stored zeros."""
    # a copy: eliminate_zeros compacts the arrays in place, and a CSR argument of this
    # dtype would share them (the layer's own weight would be left inconsistent)
    weight = scipy.sparse.csr_array(weight, dtype=np.int64, copy=True)
    weight.eliminate_zeros()
    slots = np.asarray(slots, dtype=np.int64)
    slot_of = np.full(weight.shape[1], -1, dtype=np.int64)
    used = np.flatnonzero(slots >= 0)
    slot_of[slots[used]] = used
    columns = slot_of[weight.indices]
    if (columns < 0).any():
        raise ValueError("_in_slot_order: a nonzero weight's input has no slot")
    permuted = scipy.sparse.csr_array((weight.data, columns, weight.indptr),
                                      shape=(weight.shape[0], len(slots)))
    permuted.sort_indices()
    return permuted


POSITION_SLACK = 0.02
"""A layer with output positions (pixels, tokens) has whole positions per TPPE
(:func:`~.assign.schedule_runs` in position-major order) unless that gives its busiest TPPE
more than this fraction more estimated cycles, or more neurons (and one chunk), than
neuron-by-neuron balancing: whole positions let the next layer read a position's channels
in consecutive slots, and let a TPPE share one block of its program among its positions
(:mod:`.blocks`). The neuron count is compared too because it sets the LIF stage's time,
which bounds a layer whose inputs spike more sparsely than the estimate assumes (without
calibration every input counts as active)."""


def _positions(shape):
    """Output positions of a layer of ``shape`` (channels, positions...); 1 if flat."""
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def by_positions(costs, tppes, shape, chunk, mapping="ranges", in_step=True):
    """The assignment of a layer of ``shape`` whose neurons have no placement constraint,
    each TPPE's neurons position-major (:func:`token_major`), by the configuration's
    ``mapping``:

    - "ranges": contiguous ranges of output positions per TPPE, all channels of a position
      together (cut at whole chunks of ``chunk`` neurons, so that no output slot is
      padding), if that balances cycles and neurons within :data:`POSITION_SLACK` of
      neuron-by-neuron balancing, which is used otherwise;
    - "neurons": neuron-by-neuron balancing;
    - "positions": contiguous ranges of whole positions, never cut inside one: every run
      of a TPPE's program is a whole position, so its positions share one block
      (:mod:`.blocks`, border positions with forced-zero masks, :mod:`.windows`). The
      least program memory, at the balance whole positions allow.
    - "tiles": position p of every tile of ``tppes`` positions on TPPE p
      (:func:`~.lockstep.tile_assignment`), for layers run in step (:mod:`.lockstep`);
      positions of like cost in a tile where the layer may run ``in_step``, else in
      row-major order (its runs then share more blocks within a TPPE).
    """
    positions = _positions(shape)
    if mapping == "tiles" and positions > 1:
        return tile_assignment(costs, tppes, positions, by_cost=in_step)
    balanced = token_major(schedule_layer(costs, tppes), shape)
    if positions == 1 or tppes == 1 or mapping == "neurons":
        return balanced
    order = sorted(range(len(costs)), key=lambda n: (n % positions, n))
    if mapping == "positions":
        return schedule_runs(costs, tppes, len(costs) // positions, order)
    ranges = schedule_runs(costs, tppes, chunk, order)
    within = 1 + POSITION_SLACK
    if (max(ranges.estimated_cycles) <= max(balanced.estimated_cycles) * within
            # (the cut is at whole chunks: one chunk more is its granularity)
            and max(map(len, ranges.neurons)) <= max(map(len, balanced.neurons)) * within
            + chunk):
        return ranges
    return balanced


def token_major(assignment, shape):
    """``assignment`` with each TPPE's neurons of a layer of ``shape`` (channels,
    positions...) in position-major order: the channels of one position (a pixel, a token)
    take consecutive output slots, so a consumer reading every channel at a few positions
    (a 1x1 or 3x3 convolution, a token-wise linear layer) finds them in a few chunks of
    its spike fiber instead of one chunk per channel, and its fiber has as many fewer
    program entries. A flat layer keeps ascending order."""
    positions = _positions(shape)
    if positions == 1:
        return assignment
    return Assignment(tuple(tuple(sorted(neurons, key=lambda n: (n % positions, n)))
                            for neurons in assignment.neurons), assignment.estimated_cycles)


def _kept_source(layer):
    """The earlier layer whose kept currents ``layer`` reads (adds, or multiplies by as
    operands), or None."""
    return layer.operands.source if layer.operands is not None else layer.adds_current


def _current_buffers(chain):
    """Per layer, (the kept-current buffer it writes its currents into, the one it reads
    kept currents from), 1-based, 0 for none. A layer whose currents a later one adds or
    multiplies by writes a buffer; the last layer to add a buffer's currents writes its
    own back into it (neuron k's are read before they are overwritten; operands are read
    in any order, so their reader never does), others take a free one."""
    readers = {}
    for layer in chain.layers:
        if _kept_source(layer) is not None:
            readers.setdefault(_kept_source(layer), []).append(layer.name)
    written, free, count, result = {}, [], 0, []
    for layer in chain.layers:
        read = written.get(_kept_source(layer), 0)
        last_reader = read and readers[_kept_source(layer)][-1] == layer.name
        write = 0
        if layer.name in readers:
            if last_reader and layer.operands is None:
                write = read
            elif free:
                write = free.pop()
            else:
                count += 1
                write = count
            written[layer.name] = write
        if last_reader and write != read:
            free.append(read)
        result.append((write, read))
    return result


def _group_tppes(groups, costs, tppes):
    """The TPPE of each group (``groups``: per neuron) when whole groups are balanced over
    the TPPEs on their neurons' summed ``costs``."""
    count = int(groups.max(initial=-1)) + 1
    placed = schedule_layer(np.bincount(groups, weights=costs, minlength=count), tppes)
    tppe_of = np.zeros(count, dtype=np.int64)
    for p, members in enumerate(placed.neurons):
        tppe_of[list(members)] = p
    return tppe_of


def _in_groups(groups, tppe_of, tppes, costs, key=None):
    """The assignment putting every neuron on the TPPE of its group (``tppe_of``: per
    group), each TPPE's neurons ordered by (group, ``key``, index)."""
    key = np.zeros(len(groups), dtype=np.int64) if key is None else key
    neurons = tuple(tuple(int(n) for n in sorted(np.flatnonzero(tppe_of[groups] == p),
                                                 key=lambda n: (groups[n], key[n], n)))
                    for p in range(tppes))
    return Assignment(neurons, tuple(float(costs[list(ns)].sum()) for ns in neurons))


def _read_order(reader, source_size, position_of):
    """Per neuron of ``reader``'s operand source, where the first row of its group in
    ``reader`` finds the spike it multiplies by: its position in the spike fiber of
    ``reader.operands.reads`` (``position_of``: neuron -> position). The source's neurons
    of a group are placed in that order, so that a chunk entry's pairs, whose operands are
    read at the entry's base + their rank, find them at consecutive addresses."""
    operands = reader.operands
    index = operands.index
    groups = np.asarray(operands.groups)
    offset = index.shape[1] - len(position_of)      # the columns before ``reads``'s
    key = np.full(source_size, np.iinfo(np.int64).max, dtype=np.int64)
    for row in np.unique(groups, return_index=True)[1]:      # each group's first row
        pairs = slice(index.indptr[row], index.indptr[row + 1])
        for column, source in zip(index.indices[pairs], index.data[pairs]):
            key[source - 1] = position_of[column - offset]
    return key


def _operand_entries(fiber, index_values, address_of):
    """A product layer's chunk entries for one neuron (:mod:`..passes.attention`): its
    fiber's, each cut where the operands its pairs read (``index_values``: 1 + the source
    neuron, per pair in order) stop lying at consecutive addresses of the TPPE's kept
    currents (``address_of``: neuron -> address), as a pair's operand is read at the
    entry's base + its rank. Returns [(chunk, mask, base)]."""
    entries, offset = [], 0
    for c, mask in fiber.entries:
        bits = [bit for bit in range(fiber.chunk) if mask >> bit & 1]
        addresses = [address_of[int(v) - 1] for v in index_values[offset:offset + len(bits)]]
        offset += len(bits)
        start = 0
        for k in range(1, len(bits) + 1):
            if k == len(bits) or addresses[k] != addresses[k - 1] + 1:
                entries.append((c, sum(1 << bit for bit in bits[start:k]), addresses[start]))
                start = k
    return entries


def _call_fields(layouts, window, kind, values):
    """A CALL's fields as packed: its chunk offset modulo the field's width (a masked call's
    may be negative, .windows) and, in a program with masked calls, a plain call's window
    all inside the map."""
    if kind != "call":
        return values
    width = layouts["call_entry"]["chunk"].width
    values = {**values, "chunk": values["chunk"] % (1 << width)}
    if window != (0, 0) and "rows" not in values:
        values.update(rows=(1 << window[0]) - 1, cols=(1 << window[1]) - 1)
    return values


def compile_program(model, config, calibration_spikes=None):
    """Schedule ``model`` onto ``config`` (a :class:`~hwgen.compiler.hardware_config.HardwareConfig`).

    ``calibration_spikes`` ({op name: (samples, T, neurons)} from a reference run) lets the
    scheduler balance expected matched pairs instead of nonzero weights. Returns a
    :class:`Program`; raises :class:`FitError` if the model does not fit the configuration
    and :class:`UnsupportedError` if it uses ops the accelerator cannot run.
    """
    chain = legalise(model, keep_currents=bool(config.check().keep_currents))
    if calibration_spikes is not None:
        calibration_spikes = chain.spikes_of(calibration_spikes)
    # Operands (compiler/passes/attention.py): {source layer: the layer reading its kept
    # currents}; the spikes those readers' pairs read, and {layer: TPPE of each group}
    readers = {layer.operands.source: layer for layer in chain.layers if layer.operands}
    spikes_read = {layer.operands.reads: layer for layer in chain.layers if layer.operands}
    if readers and config.join == "laggy":
        product = next(layer for layer in readers.values() if layer.name not in readers)
        raise UnsupportedError(f"{product.lif.where}: reads Q (K^T V), whose products by "
                               f"per-step currents kept in the TPPEs the laggy join does not "
                               f"compute (config join = laggy); use join=dual")
    group_tppes = {}
    shapes = {name: getattr(value, "shape", ()) for name, value in model.infer().items()}
    config, time_chunk_estimates = resolve_widths(config.check(), model, chain,
                                                  calibration_spikes)
    check_capacity(config, model, chain)
    W, P, T = config.chunk, config.tppes, model.timesteps
    lif_cycles = config.time_chunk // config.lif_steps
    shared_memory = config.activation_memory == "shared"

    modes, plans = [], []
    # per TPPE and layer, its runs: the (kind, fields) entries of the neurons of one
    # output position each (blocks.py shares the runs that repeat)
    per_tppe = [[] for _ in range(P)]
    # per layer, where its input's pixels lie (forced-zero masks at the border, .windows)
    input_maps = []
    weights = [WeightMemory() for _ in range(P)]
    # layers run in step (mapping "tiles", .lockstep): their blocks, stored once for all
    # TPPEs, and the blocks' weights, which every TPPE holds at the same addresses
    shared_blocks, shared_weights = [], WeightMemory()
    input_size = int(np.prod(chain.input.shape))        # a shaped input is streamed in C order
    slots = list(range(input_size)) + [-1] * (-input_size % W)
    source = chain.input.name
    # Region pairs: one for each recurrent layer and each layer a later one reads besides
    # the layer before it (its spikes are kept there), numbered from 1 in layer order.
    kept = {name for layer in chain.layers for name in layer.aux}
    max_pool = any(layer.pool is not None for layer in chain.layers)
    pairs = 0
    pair_of = {}
    reads_state = 0             # the pair the current layer reads its input from
    descriptor_fields = []
    buffers = _current_buffers(chain)
    for index, layer in enumerate(chain.layers):
        last = index == len(chain.layers) - 1
        mode = LIFMode.of(layer.lif)
        if mode not in modes:
            modes.append(mode)
        if layer.dense.recurrent or layer.name in kept:
            pairs += 1
            pair_of[layer.name] = pairs
        main_inputs = layer.dense.feedforward_inputs
        kept_plans = [next(plan for plan in plans if plan.name == name) for name in layer.aux]
        main_inputs -= sum(plan.outputs for plan in kept_plans)
        activity = _activity(calibration_spikes, source, main_inputs)
        # Where the fiber's chunks come from: (first slot, region pair) per part after the
        # input's, each from a chunk boundary (pair 0: the input's own region).
        parts = []
        if layer.aux:
            # Each kept layer's spikes follow the input, laid out as that layer wrote them
            # (its output slots) in its region pair.
            provisional = list(slots)
            offset = main_inputs
            for plan in kept_plans:
                parts.append((len(provisional), pair_of[plan.name]))
                provisional += [-1 if n < 0 else offset + n for n in plan.output_slots]
                if activity is not None:
                    activity = np.concatenate([activity, _activity(
                        calibration_spikes, plan.name, plan.outputs)])
                offset += plan.outputs
            slots = provisional
        elif layer.dense.recurrent:
            # Its own spikes follow its input, from a chunk boundary; estimated here in
            # neuron order, placed below in output-slot order once the TPPEs are known.
            parts.append((len(slots), pair_of[layer.name]))
            own = _activity(calibration_spikes, layer.name, layer.outputs)
            activity = None if activity is None else np.concatenate([activity, own])
            provisional = slots + [layer.dense.feedforward_inputs + j
                                   for j in range(layer.outputs)]
        else:
            provisional = slots
        costs = neuron_costs(layer.dense.weight, W, lif_cycles, activity, config.join,
                             provisional, config.fetch_width)
        # With a max pooling, a neuron is the rows of its window, walked one after another
        # (all but the last "partial": their currents go into the running maximum).
        rows_of = layer.pool or tuple((n,) for n in range(layer.outputs))
        costs = window_costs(costs, layer.pool)
        if layer.dense.recurrent:
            # walked once per sub-pass, T_c times a chunk (docs/architecture.md)
            costs = costs * config.time_chunk
        positions = _positions(shapes.get(layer.name, ()))
        tiled = False
        # whether the layer may run in step if tiled (.lockstep): its input one map, not
        # the network's own (streamed in C order: one column over is one slot, not a
        # chunk, so its windows are never one block moved)
        plain_input = not (parts or layer.dense.recurrent or layer.operands is not None)
        may_step = plain_input and source != chain.input.name
        if layer.operands is not None or layer.name in readers:
            # a group's neurons, and the operands they read, on one TPPE
            groups = np.asarray(layer.operands.groups if layer.operands is not None
                                else readers[layer.name].operands.source_groups)
            tppe_of = group_tppes.get(layer.operands.source) if layer.operands else None
            if tppe_of is None:             # the first of the family: balance its groups
                tppe_of = _group_tppes(groups, costs, P)
            group_tppes[layer.name] = tppe_of
            key = None
            if layer.name in readers:
                reader = readers[layer.name]
                reads = reader.operands.reads
                plan = next((plan for plan in plans if plan.name == reads), None)
                order = plan.output_slots if plan is not None else range(input_size)
                position_of = np.zeros(max(order, default=-1) + 1, dtype=np.int64)
                for position, n in enumerate(order):
                    if n >= 0:
                        position_of[n] = position
                key = _read_order(reader, layer.outputs, position_of)
            assignment = _in_groups(groups, tppe_of, P, costs, key)
            if layer.name not in readers:
                assignment = token_major(assignment, shapes.get(layer.name, ()))
        elif layer.adds_current is not None:
            # neuron k of a TPPE adds the current its k-th neuron kept in that layer
            keeper = next(plan for plan in plans if plan.name == layer.adds_current)
            assignment = Assignment(
                tuple(tuple(neurons) for neurons in keeper.tppe_neurons),
                tuple(float(sum(costs[n] for n in neurons))
                      for neurons in keeper.tppe_neurons))
        elif layer.name in spikes_read and not last:
            # spikes whose pairs read operands: whole features on a TPPE, so that every
            # position's features come in one order (Q: the product reads a position's
            # features, position-major) and a feature's positions in consecutive slots
            # (K: the matrices read a feature's positions, feature-major)
            features = np.arange(layer.outputs) // (layer.outputs // shapes[layer.name][0])
            assignment = _in_groups(features, _group_tppes(features, costs, P), P, costs)
            is_k = spikes_read[layer.name].name in readers     # the matrices read it
            if not is_k:
                assignment = token_major(assignment, shapes[layer.name])
        elif last and layer.dense.recurrent:
            # its results go to the result buffer by neuron index and its spikes back
            # into its own input fiber: each TPPE's neurons whole chunks of indices
            assignment = schedule_runs(costs, P, W)
        else:
            # (reading a shared region 1, an odd layer takes consecutive positions per
            # tile, so that its reads fall in different banks: .shared_activations)
            assignment = by_positions(costs, P, shapes.get(layer.name, ()), W,
                                      config.mapping,
                                      in_step=may_step and not (shared_memory and index % 2))
            tiled = config.mapping == "tiles" and positions > 1
        if last:
            output_slots = list(range(layer.outputs))
            slot_of = {n: n for n in range(layer.outputs)}
        elif tiled:
            # each position's channels in whole chunks, positions in row-major order: the
            # next layer's windows are then the same chunks moved (.lockstep)
            output_slots, slot_of = position_slots(layer.outputs, positions, W)
        else:
            output_slots, slot_of = [], {}
            for neurons in assignment.neurons:
                for n in neurons:
                    slot_of[n] = len(output_slots)
                    output_slots.append(n)
                output_slots += [-1] * (-len(output_slots) % W)
        if layer.dense.recurrent:
            slots = slots + [-1 if n < 0 else layer.dense.feedforward_inputs + n
                             for n in output_slots]
        own_pair = pair_of.get(layer.name, 0)
        current_write, current_read = buffers[index]
        descriptor_fields.append({"state": own_pair, "reads_state": reads_state,
                                  "current_write": current_write,
                                  "current_read": current_read,
                                  "operands": int(layer.operands is not None)})
        reads_state = own_pair
        rows = layer.dense.outputs
        permuted = _in_slot_order(layer.dense.weight, slots)
        if layer.operands is not None:
            # the pairs' values are the operands they read: 1 + a source neuron
            index = _in_slot_order(layer.operands.index, slots)
            source_plan = next(plan for plan in plans if plan.name == layer.operands.source)
        bias = layer.dense.bias if layer.dense.bias is not None else np.zeros(rows,
                                                                             dtype=np.int64)
        input_map = InputMap.of(slots, shapes.get(source, ()), W) if plain_input else None
        input_maps.append(input_map if config.border_calls else None)
        # A tiled layer may run in step: its runs' weights go to one memory for all TPPEs
        # until that is decided, so that equal runs have equal weight bases.
        in_step = tiled and may_step
        layer_weights = WeightMemory() if in_step else None
        for p, neurons in enumerate(assignment.neurons):
            if layer.operands is not None:      # where this TPPE kept each operand
                address_of = {n: k for k, n in enumerate(source_plan.tppe_neurons[p])}
            runs = []
            for j, n in enumerate(neurons):
                if j == 0 or n % positions != neurons[j - 1] % positions:
                    runs.append([])
                for position, row in enumerate(rows_of[n]):
                    final = position == len(rows_of[n]) - 1
                    nonzero = slice(permuted.indptr[row], permuted.indptr[row + 1])
                    fiber = WeightFiber.from_sparse(permuted.indices[nonzero],
                                                    permuted.data[nonzero], W)
                    # the neuron ends its chunk of the next layer's fiber: the TPPE's
                    # next neuron's slot is in another chunk (or there is none)
                    chunk_last = final and (not last or layer.dense.recurrent) and (
                        j == len(neurons) - 1
                        or slot_of[neurons[j + 1]] // W != slot_of[n] // W)
                    header = {"theta": int(layer.lif.threshold[n]), "bias": int(bias[row]),
                              "slot": slot_of[n], "empty": int(not fiber.entries),
                              "chunk_last": int(chunk_last)}
                    if max_pool:
                        header["partial"] = int(not final)
                    if layer.lif.leak.kind == "per_neuron":
                        header["leak"] = layer.lif.leak.multipliers[n]
                    runs[-1].append(("neuron", header))
                    if layer.operands is not None:
                        entries = _operand_entries(fiber, index.data[nonzero], address_of)
                    else:
                        entries, offset = [], 0
                        for c, mask in fiber.entries:
                            run = fiber.values[offset:offset + bin(mask).count("1")]
                            offset += len(run)
                            memory = layer_weights if in_step else weights[p]
                            entries.append((c, mask, memory.place(run)))
                    for i, (c, mask, wbase) in enumerate(entries):
                        chunk = {"chunk": c, "mask": mask, "wbase": wbase,
                                 "last": int(i == len(entries) - 1)}
                        for base, pair in reversed(parts):
                            if c >= base // W:
                                # the chunk's place in the pair's region; in a recurrent
                                # layer's own pair, ``state`` 1 (its last step's spikes)
                                chunk.update(chunk=c - base // W,
                                             state=1 if layer.dense.recurrent else pair)
                                break
                        runs[-1].append(("chunk", chunk))
            per_tppe[p].append(runs)
        not_in_step = None
        if in_step:
            shared, not_in_step = _in_step(
                [tppe[-1] for tppe in per_tppe], input_map, layer_weights, weights,
                shared_weights, [list(dict.fromkeys(n % positions for n in neurons))
                                 for neurons in assignment.neurons])
            if shared is not None:
                shared_blocks.append(shared)
                for p in range(P):
                    per_tppe[p][-1] = SharedCalls(len(shared_blocks) - 1, shared.calls[p])
                assignment = Assignment(assignment.neurons,
                                        in_step_cycles(costs, P, positions))
        elif tiled:
            not_in_step = ("it reads the network's input, streamed in C order"
                           if source == chain.input.name and plain_input
                           else "its input is not one map alone")
        plans.append(LayerPlan(layer.name, layer.dense.name, layer.inputs, layer.outputs,
                               modes.index(mode), last, slots, output_slots,
                               [list(ns) for ns in assignment.neurons],
                               [round(float(c), 1) for c in assignment.estimated_cycles],
                               parts[0][0] if parts else None, tuple(layer.aux),
                               tuple(base for base, _ in parts) if layer.aux else (),
                               layer.adds_current, current_write, current_read,
                               layer.operands.source if layer.operands else None,
                               in_step and not_in_step is None,
                               not_in_step))
        slots, source = output_slots, layer.name

    output_size = chain.layers[-1].outputs
    per_tppe, calls, windows = zip(*(share_blocks(layers, config.fetch_width,
                                                  config.call_groups, input_maps)
                                     for layers in per_tppe))
    window = tuple(max([w[i] for w in windows] + [b.window[i] for b in shared_blocks])
                   for i in range(2))
    per_tppe, weights, shared_base = _with_shared(list(per_tppe), weights, shared_blocks,
                                                  shared_weights, config.fetch_width)
    config = resolve_depths(config, model, plans, per_tppe, weights)
    layouts = program_layouts(config, len(modes), output_size,
                              max((mode.leak_bits for mode in modes), default=0), pairs,
                              residual=bool(kept), max_pool=max_pool,
                              current_buffers=max(w for w, _ in buffers),
                              operands=bool(readers), calls=any(calls), window=window,
                              lockstep=bool(shared_blocks))
    for plan, fields in zip(plans, descriptor_fields):
        fields["lockstep"] = int(plan.in_step)
    entries = [[pack_entry(layouts, kind, _call_fields(layouts, window, kind, values))
                for kind, values in tppe]
               for tppe in per_tppe]
    descriptors = [layouts["layer"].pack(mode=plan.mode, last=int(plan.last), **{
        name: value for name, value in fields.items() if name in layouts["layer"].offsets})
                   for plan, fields in zip(plans, descriptor_fields)]
    shift = None
    if shared_memory:
        check_sharable(plans, config, T, pairs)
        shift = bank_shift(layouts, entries, plans, layouts["chunk_entry"]["chunk"].width)
    return Program(config, model.name, T, input_size, output_size,
                   plans, modes, entries, weights, descriptors, layouts,
                   time_chunk_estimates, shared_base, shift)


def _in_step(runs, input_map, layer_weights, weights, shared_weights, positions):
    """Decide whether a tiled layer runs in step (:func:`~.lockstep.shared_block` on its
    TPPEs' ``runs``, whose weight bases are in ``layer_weights``): if it does, its block
    with its weights placed in ``shared_weights``, and None; if not, None and why, each
    TPPE's runs' weights placed in its own memory (``weights``) as any layer's.
    ``positions``: per TPPE, the output position of each of its runs."""
    shared, why = shared_block(runs, input_map, positions)

    def placed(entries, memory):
        for kind, fields in entries:
            if kind == "chunk":
                start = fields["wbase"]
                values = layer_weights.values[start:start + bin(fields["mask"]).count("1")]
                fields = {**fields, "wbase": memory.place(values)}
            yield kind, fields

    if shared is None:
        for p, tppe in enumerate(runs):
            tppe[:] = [list(placed(run, weights[p])) for run in tppe]
        return None, why
    return dataclasses.replace(shared, block=list(placed(shared.block, shared_weights))), None


def _with_shared(programs, weights, shared_blocks, shared_weights, fetch_width):
    """Every TPPE's program and weights with the layers run in step added: the shared
    blocks after the longest TPPE's own program, at the same address in every TPPE's
    (the shared program memory, its first entry ``shared_base``), each CALL of them given
    its target; their weights after the most any TPPE holds of its own, at the same
    address in every TPPE's weight memory. Returns (programs, weight lists, shared_base;
    None without layers run in step)."""
    if not shared_blocks:
        return programs, [memory.values for memory in weights], None
    weight_base = max(len(memory.values) for memory in weights)
    shared_base = max(len(program) for program in programs)
    section, targets = [], []
    for shared in shared_blocks:
        targets.append((shared_base + len(section)) // fetch_width)
        block = [(kind, {**fields, "wbase": fields["wbase"] + weight_base}
                  if kind == "chunk" else fields) for kind, fields in shared.block]
        section += pad_groups(block + [("return", {})], fetch_width)
    programs = [[(kind, {**{k: v for k, v in fields.items() if k != "shared"},
                         "target": targets[fields["shared"]]} if "shared" in fields
                  else fields) for kind, fields in program]
                + [("pad", {})] * (shared_base - len(program)) + section
                for program in programs]
    weights = [memory.values + [0] * (weight_base - len(memory.values))
               + shared_weights.values for memory in weights]
    return programs, weights, shared_base
