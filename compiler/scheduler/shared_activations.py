"""A shared activation memory (``activation_memory = shared``): which layers may read it,
and the bank its chunks go to.

Region 1 of the spike buffers (the region the odd layers read, with one time chunk) is
held once, in P banks, instead of in every TPPE (:mod:`hwgen.gateware.shared_activations`).
The layers reading it run in step, so in every cycle each TPPE reads the same entry of
one block for its own output position; the reads of one cycle must fall in different
banks, since a bank answers one read a cycle and nothing arbitrates. Chunk c's bank is
``(c >> shift) mod P``: with each position's channels in whole chunks, positions laid
out row-major and tiles of P consecutive positions, a shift of log2(chunks per
position) banks by position, and P consecutive output positions read P consecutive
input positions at stride 1. That is the reason, not the check: :func:`bank_shift`
checks every read the TPPEs' programs make, as the hardware makes them, and takes the
smallest shift under which none meet, whatever the layers unrolled into.
"""

from hwgen.errors import UnsupportedError

from ..instruction_format import TAG_CHUNK, TAG_LAYER_END, walk


def shared_reads(layouts, words, layers):
    """Per layer, per program entry the fetch walks (a silent call's block too, as the
    hardware walks it in step), the chunk index it reads from the shared memory, or None
    (not a chunk entry, or its mask is zero: the fetch does not read then)."""
    per_layer, current = [], []
    for entry in walk(layouts, words, layers, silent=True):
        if entry["tag"] == TAG_LAYER_END:
            per_layer.append(current)
            current = []
        else:
            current.append(entry["chunk"] if entry["tag"] == TAG_CHUNK and entry["mask"]
                           else None)
    return per_layer


def _first_meeting(reads, shift, banks):
    """(cycle, TPPE, TPPE, chunk, chunk) of the first two reads in one bank, or None."""
    for cycle, chunks in enumerate(zip(*reads)):
        seen = {}
        for p, chunk in enumerate(chunks):
            if chunk is None:
                continue
            bank = (chunk >> shift) % banks
            if bank in seen:
                q = seen[bank]
                return cycle, q, p, chunks[q], chunk
            seen[bank] = p
    return None


def bank_shift(layouts, entries, plans, chunk_bits):
    """The smallest shift under which the layers reading region 1 (``plans`` of odd
    index; all run in step) never read one bank twice in a cycle, from every TPPE's
    program ``entries`` (packed words). Raises :class:`UnsupportedError` naming the first
    layer whose reads meet at every shift."""
    banks = len(entries)
    bank_bits = (banks - 1).bit_length()
    walks = [shared_reads(layouts, words, len(plans)) for words in entries]
    readers = range(1, len(plans), 2)
    for index in readers:
        lengths = {len(tppe[index]) for tppe in walks}
        if len(lengths) != 1:
            raise UnsupportedError(f"{plans[index].name}: its TPPEs walk {sorted(lengths)} "
                                   f"entries, not one number, so they do not read region 1 "
                                   f"in step (activation_memory = 'shared')")
    first = None
    for shift in range(chunk_bits - bank_bits + 1):
        meetings = [(index, _first_meeting([tppe[index] for tppe in walks], shift, banks))
                    for index in readers]
        meetings = [(index, meeting) for index, meeting in meetings if meeting is not None]
        if not meetings:
            return shift
        if first is None:
            first = meetings[0]
    index, (cycle, p, q, a, b) = first
    raise UnsupportedError(
        f"{plans[index].name}: TPPEs {p} and {q} read chunks {a} and {b} of region 1 in "
        f"the same cycle (entry {cycle} of the layer's walk), which meet in one of the "
        f"{banks} banks at every bank shift; activation_memory = 'shared' needs the "
        f"reads of a cycle in different banks: use "
        f"activation_memory = 'copies'")


def check_sharable(plans, config, timesteps, state_pairs):
    """Refuse, naming the layer or the reason, a model whose region 1 cannot be shared:
    several time chunks or region pairs (other regions), or a layer reading region 1 (an
    odd one) that does not run in step."""
    where = "activation_memory = 'shared'"
    if config.time_chunk != timesteps:
        raise UnsupportedError(f"{where} needs one time chunk (time_chunk = T = "
                               f"{timesteps}, not {config.time_chunk})")
    if state_pairs:
        raise UnsupportedError(f"{where} does not combine with recurrent layers or "
                               f"residual connections (their regions are per TPPE)")
    readers = plans[1::2]
    if not readers:
        raise UnsupportedError(f"{where}: the model has one layer, so no layer reads "
                               f"region 1 and nothing would be shared")
    for plan in readers:
        if not plan.in_step:
            why = plan.not_in_step or "it is not tiled (it has no output positions)"
            raise UnsupportedError(f"{plan.name}: reads region 1, which {where} holds "
                                   f"once for all TPPEs, but does not run in step: {why}")
