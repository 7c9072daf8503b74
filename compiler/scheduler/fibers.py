"""The accelerator's compressed fiber formats (docs/architecture.md, "Fibers").

Both operands of a layer's product are cut into chunks of W consecutive input positions:

- A **spike fiber** holds, per chunk, a W-bit mask of the neurons that spike at least once
  in the T steps and the packed T-bit words of those neurons only. Chunk c's words sit at
  ``c*W + rank`` (rank = number of set mask bits below the neuron's), so producers can
  write chunks independently; silent neurons occupy no word and are never read.
- A **weight fiber** (one per output neuron) lists only the chunks holding a nonzero
  weight, each as (chunk index, W-bit mask of nonzero weights), followed by the nonzero
  values, packed in order.

The inner join ANDs a spike mask with a weight mask; for each set bit, the word's offset
is the prefix popcount of the spike mask below the bit and the weight's offset the prefix
popcount of the weight mask below it. The hardware writes spike fibers (input loader,
output compressors); these classes are their Python models and the compiler's writer of
weight fibers.
"""

from dataclasses import dataclass

import numpy as np


def prefix_popcount(mask, bit):
    """Number of set bits of ``mask`` below position ``bit``."""
    return bin(mask & ((1 << bit) - 1)).count("1")


@dataclass
class SpikeFiber:
    chunk: int
    masks: list
    words: dict

    @classmethod
    def encode(cls, words, chunk):
        """From packed words per input position (0 = silent) to the fiber."""
        words = [int(w) for w in words]
        chunks = -(-len(words) // chunk) if words else 0
        masks, placed = [], {}
        for c in range(chunks):
            mask, rank = 0, 0
            for bit in range(chunk):
                position = c * chunk + bit
                if position < len(words) and words[position]:
                    mask |= 1 << bit
                    placed[c * chunk + rank] = words[position]
                    rank += 1
            masks.append(mask)
        return cls(chunk, masks, placed)

    def decode(self):
        """Back to one packed word per position (length = chunks * W)."""
        words = [0] * (len(self.masks) * self.chunk)
        for c, mask in enumerate(self.masks):
            for bit in range(self.chunk):
                if mask >> bit & 1:
                    words[c * self.chunk + bit] = self.words[c * self.chunk +
                                                             prefix_popcount(mask, bit)]
        return words


@dataclass
class WeightFiber:
    chunk: int
    entries: list      # [(chunk index, mask)], nonzero chunks only, ascending
    values: list       # nonzero weights in position order

    @classmethod
    def encode(cls, column, chunk):
        """From one output neuron's weights over the (padded) input positions."""
        column = np.asarray(column)
        entries, values = [], []
        for c in range(-(-len(column) // chunk)):
            segment = column[c * chunk:(c + 1) * chunk]
            mask = sum(1 << bit for bit, w in enumerate(segment) if w)
            if mask:
                entries.append((c, mask))
                values.extend(int(w) for w in segment if w)
        return cls(chunk, entries, values)

    @classmethod
    def from_sparse(cls, positions, weights, chunk):
        """The fiber of a row given by its nonzero weights only: ``positions`` (ascending
        input positions) and ``weights`` (their nonzero values); the same fiber
        :meth:`encode` makes of the dense row, in time proportional to the nonzeros."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) == 0:
            return cls(chunk, [], [])
        blocks = positions // chunk
        bits = np.left_shift(np.uint64(1), (positions % chunk).astype(np.uint64))  # W <= 64
        starts = np.flatnonzero(np.diff(blocks, prepend=-1))
        masks = np.bitwise_or.reduceat(bits, starts)
        return cls(chunk, [(int(c), int(m)) for c, m in zip(blocks[starts], masks)],
                   [int(w) for w in weights])

    def decode(self, length):
        column = [0] * length
        index = 0
        for c, mask in self.entries:
            for bit in range(self.chunk):
                if mask >> bit & 1:
                    column[c * self.chunk + bit] = self.values[index]
                    index += 1
        return column


class WeightMemory:
    """One TPPE's weight memory, filled chunk entry by chunk entry.

    A chunk entry points at its run of nonzero values by a base address (``wbase``), so a
    run already stored -- whole, or as a contiguous part of a longer run -- is pointed at
    rather than stored again. An unrolled convolution (compiler/passes/unroll.py) repeats
    its kernel once per output pixel; this keeps a TPPE's memory near one copy of the
    kernels it uses. Deterministic: the same entries in the same order give the same
    memory.
    """

    def __init__(self):
        self.values = []
        self._base = {}             # run (tuple) -> address of a stored copy

    def place(self, run):
        """Store ``run`` (a list of weights) unless a copy is stored; return its address."""
        key = tuple(run)
        if key not in self._base:
            start = len(self.values)
            self.values.extend(key)
            # every contiguous part of the new run can serve a later, shorter run
            for i in range(len(key)):
                for j in range(i + 1, len(key) + 1):
                    self._base.setdefault(key[i:j], start + i)
        return self._base[key]


def matched_pairs(spikes, weights):
    """The inner join of a spike fiber and a weight fiber, as the hardware walks it:
    [(chunk, bit, word address, weight index)] in order."""
    pairs, base = [], 0
    for c, wmask in weights.entries:
        smask = spikes.masks[c] if c < len(spikes.masks) else 0
        matched = smask & wmask
        for bit in range(weights.chunk):
            if matched >> bit & 1:
                pairs.append((c, bit, c * spikes.chunk + prefix_popcount(smask, bit),
                              base + prefix_popcount(wmask, bit)))
        base += bin(wmask).count("1")
    return pairs
