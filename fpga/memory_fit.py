"""Does a compiled program's on-chip memory fit a target's block RAM? Decided before any
synthesis, from the program's memories (:meth:`hwgen.compiler.program.Program.memory_bits`).

Every memory of the generated design -- each TPPE's fiber program, weights, spike words and
masks, the layer table, the result buffer -- is an Amaranth ``lib.memory.Memory`` that
Yosys maps to block RAM, one memory per block or group of blocks (it never packs two
memories into one block). A memory of depth D and width B needs, in the block aspect
(d x b) that suits it best, ``ceil(D / d) * ceil(B / b)`` blocks. Yosys may put a small
memory into logic instead, so that count can exceed what the design really takes; the
total number of bits cannot: a program whose bits exceed the device's block RAM bits
cannot fit, whatever the mapping, and is refused.
"""

from dataclasses import dataclass

from hwgen.errors import FitError

# (bits per block, aspects (depth, width) a block can take), per family: iCE40's 4 kbit
# EBR (SB_RAM40_4K), ECP5's 18 kbit DP16KD (the 36-bit aspect is pseudo-dual-port only,
# which is what the generated memories are: one write port, one read port).
BLOCKS = {
    "ice40": (4096, ((256, 16), (512, 8), (1024, 4), (2048, 2))),
    "ecp5": (18432, ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))),
}
BLOCK_COUNTS = {"iCE40UP5K": 30, "LFE5U-25F": 56, "LFE5U-85F": 208}


def blocks_for(family, depth, width):
    """Blocks one memory of ``depth`` x ``width`` takes in its best block aspect."""
    _, aspects = BLOCKS[family]
    return min(-(-depth // d) * -(-width // b) for d, b in aspects)


@dataclass(frozen=True)
class MemoryFit:
    """What a program's memories need on a device: ``bits`` in all, ``blocks`` if every
    memory goes to block RAM, against the device's ``capacity_blocks`` of
    ``block_bits`` each; ``largest``: the (name, depth, width, blocks) of the memories
    needing the most blocks, first."""

    device: str
    bits: int
    blocks: int
    capacity_blocks: int
    block_bits: int
    largest: tuple

    @property
    def capacity_bits(self):
        return self.capacity_blocks * self.block_bits

    @property
    def certain_misfit(self):
        return self.bits > self.capacity_bits

    @property
    def likely_misfit(self):
        return self.blocks > self.capacity_blocks

    def describe(self, count=3):
        shown = ", ".join(f"{name} {depth} x {width} ({blocks})"
                          for name, depth, width, blocks in self.largest[:count])
        return (f"{self.bits:,} bits of memory in {self.blocks} block RAMs, the device has "
                f"{self.capacity_blocks} of {self.block_bits // 1024} kbit "
                f"({self.capacity_bits:,} bits); largest: {shown}")


def memory_fit(memories, device):
    """A :class:`MemoryFit` of ``memories`` ({name: (depth, width)}) on ``device``
    (:class:`hwgen.fpga.targets.Device`)."""
    block_bits, _ = BLOCKS[device.family]
    per_memory = sorted(((name, depth, width, blocks_for(device.family, depth, width))
                         for name, (depth, width) in memories.items()),
                        key=lambda m: (-m[3], m[0]))
    return MemoryFit(device.part, sum(depth * width for depth, width in memories.values()),
                     sum(m[3] for m in per_memory), BLOCK_COUNTS[device.part], block_bits,
                     tuple(per_memory))


def check_memory_fit(program, target):
    """Raise :class:`FitError` if ``program``'s memories cannot fit ``target``'s block RAM;
    return its :class:`MemoryFit` otherwise (``likely_misfit`` says whether they probably
    do not)."""
    fit = memory_fit(program.memory_bits(), target.device)
    if fit.certain_misfit:
        hint = ("fewer TPPEs (each holds a copy of the spike buffers) or "
                if program.config.tppes > 1 else "")
        if program.config.tppes > 1 and program.config.mapping != "tiles" \
                and program.calls()[0]:
            # output positions that repeat a block: in step, one copy for all TPPEs
            hint = f"--set mapping=tiles (a layer's program once for all TPPEs), {hint}"
        raise FitError(f"model {program.model_name!r} does not fit {target.device.part} "
                       f"({target.name}): {fit.describe()}; use {hint}a larger device")
    return fit
