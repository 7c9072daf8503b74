"""Every width in the generated hardware, derived in one place, and the stream payloads.

A :class:`Geometry` is computed from a compiled program (:meth:`Geometry.of`) or given
directly (unit tests build small ones). Components take a geometry and derive their port
shapes from it, so a width is never computed twice.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Mux, signed, unsigned
from amaranth.lib import data

from hwgen.compiler.hardware_config import MAX_TIME_CHUNK, WRITE_LANES
from hwgen.compiler.instruction_format import bits_for, source_bits
from hwgen.compiler.ir.graph import MAX_TIMESTEPS
from hwgen.compiler.ir.neuron import MAX_FRAC_BITS
from hwgen.compiler.ir.widths import MAX_ACC_BITS, MAX_V_BITS, MAX_WEIGHT_BITS, MIN_BITS

from .core_interface import result_layout, trace_layout


def struct_of(bit_layout):
    """The Amaranth layout of a :class:`~hwgen.compiler.instruction_format.BitLayout`: the
    compiler packs words with the same field list, so fields are read by name, never by
    bit offset."""
    return data.StructLayout({f.name: (signed if f.signed else unsigned)(f.width)
                              for f in bit_layout.fields})


@dataclass(frozen=True)
class Geometry:
    timesteps: int          # T: the steps of an inference
    chunk: int              # W: bits of a fiber mask
    chunk_bits: int         # index of a chunk within a region of the spike buffer
    slot_bits: int          # output slot (next layer's input position, or output index)
    weight_addr_bits: int
    weight_bits: int
    acc_bits: int
    v_bits: int
    layer_bits: int = 1
    lanes: int = None       # T_c: bits of a packed spike word, accumulators per TPPE
    layers: int = 1
    leak_bits: int = 0      # a neuron's leak multiplier (per-neuron leaks); 0: no such field
    i_bits: int = 0         # synaptic current of current-based modes; 0: none generated
    state_pairs: int = 0    # layers with a pair of spike-buffer regions of their own:
                            # recurrent ones, and those read later through a residual
    recurrent: bool = None  # whether any pair is a recurrent layer's (default: any pair)
    residual: bool = False  # whether a layer reads kept layers' spikes (chunk entry state
                            # = their pair)
    max_pool: bool = False  # whether neuron headers carry ``partial`` (max pooling)
    write_lanes: int = 1    # B: writes per cycle on the write bus, one per spike-buffer bank
    current_buffers: int = 0    # kept-current buffers (membrane shortcuts kept); 0: none
    current_depth: int = 1      # neurons per kept-current buffer (a power of two)
    operands: bool = False      # whether a layer multiplies by kept currents (Q (K^T V))
    lockstep: bool = False      # whether layers run in step (mapping "tiles"): the fetch
                                # units then hold together and know silent calls
    shared_banks: int = 0       # activation_memory "shared": region 1 is held once, in
                                # this many banks (P) in the top, not in every TPPE; 0: none
    shared_shift: int = 0       # its bank: chunk index bits [shift, shift + log2 banks)

    def __post_init__(self):
        if self.lanes is None:
            object.__setattr__(self, "lanes", self.timesteps)
        if self.recurrent is None:
            object.__setattr__(self, "recurrent", self.state_pairs > 0 and not self.residual)
        checks = [
            (1 <= self.timesteps <= MAX_TIMESTEPS,
             f"timesteps {self.timesteps} must be 1..{MAX_TIMESTEPS}"),
            (1 <= self.lanes <= MAX_TIME_CHUNK and self.timesteps % self.lanes == 0,
             f"lanes {self.lanes} must be 1..{MAX_TIME_CHUNK} and divide timesteps "
             f"{self.timesteps}"),
            (self.layers >= 1 and self.layer_bits >= bits_for(self.layers),
             f"layer_bits {self.layer_bits} cannot count {self.layers} layers"),
            (self.chunk in (4, 8, 16, 32, 64), f"chunk {self.chunk} must be 4, 8, 16, 32 "
                                               f"or 64"),
            (self.chunk_bits >= 1, "chunk_bits must be >= 1"),
            (self.slot_bits >= 1, "slot_bits must be >= 1"),
            (self.weight_addr_bits >= 1, "weight_addr_bits must be >= 1"),
            (self.slot_bits >= self.offset_bits + self.chunk_bits,
             f"slot_bits {self.slot_bits} cannot hold a chunk index of {self.chunk_bits} "
             f"bits and an offset of {self.offset_bits} bits"),
            (MIN_BITS <= self.weight_bits <= MAX_WEIGHT_BITS,
             f"weight_bits {self.weight_bits} must be {MIN_BITS}..{MAX_WEIGHT_BITS}"),
            (MIN_BITS <= self.acc_bits <= MAX_ACC_BITS,
             f"acc_bits {self.acc_bits} must be {MIN_BITS}..{MAX_ACC_BITS}"),
            (MIN_BITS <= self.v_bits <= MAX_V_BITS,
             f"v_bits {self.v_bits} must be {MIN_BITS}..{MAX_V_BITS}"),
            (0 <= self.leak_bits <= MAX_FRAC_BITS + 1,
             f"leak_bits {self.leak_bits} must be 0..{MAX_FRAC_BITS + 1}"),
            (self.state_pairs >= 0, f"state_pairs {self.state_pairs} must be >= 0"),
            (not (self.recurrent and self.residual),
             "a program with both recurrent layers and residual connections is not "
             "supported"),
            (not (self.residual or self.recurrent) or self.state_pairs > 0,
             "recurrent layers and residual connections need state_pairs"),
            (self.write_lanes in WRITE_LANES,
             f"write_lanes {self.write_lanes} must be one of "
             f"{', '.join(map(str, WRITE_LANES))}"),
            (self.write_lanes <= 1 << self.chunk_bits,
             f"write_lanes {self.write_lanes} banks by chunk index, but a region has only "
             f"{1 << self.chunk_bits} chunks (chunk_bits {self.chunk_bits})"),
            (self.current_buffers >= 0 and self.current_depth >= 1
             and not self.current_depth & (self.current_depth - 1),
             f"current_buffers {self.current_buffers} must be >= 0 and current_depth "
             f"{self.current_depth} a power of two"),
            (not self.operands or self.current_buffers > 0,
             "operands (kept currents read as weights) need current_buffers"),
            (not self.shared_banks or (
                self.regions == 2 and self.lockstep and self.write_lanes == 1
                and self.shared_banks >= 2
                and not self.shared_banks & (self.shared_banks - 1)
                and 0 <= self.shared_shift
                and self.shared_shift + self.shared_bank_bits <= self.chunk_bits),
             f"shared_banks {self.shared_banks} (shift {self.shared_shift}) needs two "
             f"regions, layers in step, one write lane, a power of two >= 2 banks and "
             f"{self.chunk_bits} chunk bits for the bank"),
            (self.i_bits == 0 or MIN_BITS <= self.i_bits <= MAX_V_BITS,
             f"i_bits {self.i_bits} must be 0 (no current-based mode) or "
             f"{MIN_BITS}..{MAX_V_BITS}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Geometry: {message}")

    @classmethod
    def of(cls, program):
        c = program.config
        return cls(timesteps=program.timesteps, chunk=c.chunk,
                   chunk_bits=program.layouts["chunk_entry"]["chunk"].width,
                   slot_bits=program.layouts["neuron_entry"]["slot"].width,
                   weight_addr_bits=bits_for(c.weight_depth), weight_bits=c.weight_bits,
                   acc_bits=c.acc_bits, v_bits=c.v_bits,
                   layer_bits=bits_for(len(program.layers)), lanes=program.lanes,
                   layers=len(program.layers), i_bits=program.i_bits,
                   state_pairs=program.state_pairs,
                   recurrent=program.recurrent_layers > 0, residual=program.residual,
                   max_pool="partial" in program.layouts["neuron_entry"].offsets,
                   write_lanes=c.write_lanes, current_buffers=program.current_buffers,
                   current_depth=program.current_depth,
                   operands="operands" in program.layouts["layer"].offsets,
                   lockstep="lockstep" in program.layouts["layer"].offsets,
                   shared_banks=program.tppes if program.shared_shift is not None else 0,
                   shared_shift=program.shared_shift or 0,
                   leak_bits=max((mode.leak_bits for mode in program.modes), default=0))

    # --- derived widths ---------------------------------------------------------------

    @property
    def offset_bits(self):
        """Bits of an offset within a chunk (0..W-1)."""
        return bits_for(self.chunk)

    @property
    def time_chunks(self):
        """T / T_c: passes over the network per inference."""
        return self.timesteps // self.lanes

    @property
    def input_regions_end(self):
        """The regions of layers and inputs: two alternating between layers, and one per
        time chunk for the input when there are several chunks. The recurrent layers'
        region pairs follow (:meth:`Program.spike_regions`)."""
        return 2 if self.time_chunks == 1 else 2 + self.time_chunks

    @property
    def regions(self):
        return self.input_regions_end + 2 * self.state_pairs

    @property
    def source_bits(self):
        """Top bits of a fiber chunk saying where it is read: with recurrent layers, one
        (the layer's own spikes of the last step, in the sequencer's state region); with
        kept layers (``residual``), the pair holding them (0: the input region)."""
        return source_bits(self.state_pairs, self.residual) if self.state_pairs else 0

    @property
    def fiber_chunk_bits(self):
        """A chunk of a layer's input fiber: its index in a region and, with region pairs,
        where it is read (:attr:`source_bits`)."""
        return self.chunk_bits + self.source_bits

    @property
    def region_bits(self):
        return bits_for(self.regions)

    @property
    def pass_bits(self):
        """A pass: time chunk x layers + layer."""
        return bits_for(self.time_chunks * self.layers)

    @property
    def spike_addr_bits(self):
        """A spike-word address: region, chunk, offset."""
        return self.region_bits + self.chunk_bits + self.offset_bits

    def source_region(self, chunk, region, state_region):
        """The region a fiber chunk (``fiber_chunk_bits`` wide) is read from: the layer's
        input ``region``, or for a chunk of its own last-step spikes ``state_region``; with
        kept layers, ``state_region`` is the first pair's region of this time chunk
        (:class:`~.sequencer.LayerSequencer`) and pair k's is 2 (k - 1) after it."""
        if not self.state_pairs:
            return region
        source = chunk[self.chunk_bits:]
        if not self.residual:
            return Mux(source, state_region, region)
        kept = (state_region + Cat(Const(0, 1), source) - 2)[:self.region_bits]
        return Mux(source == 0, region, kept)

    def spike_word_addr(self, chunk, offset, region, state_region):
        """The spike-buffer address of word ``offset`` of a fiber chunk."""
        return Cat(offset, chunk[:self.chunk_bits],
                   self.source_region(chunk, region, state_region))

    @property
    def bank_bits(self):
        """Bits of a spike-buffer bank: the low bits of a chunk index (chunk mod B)."""
        return (self.write_lanes - 1).bit_length()

    def write_bank(self, request):
        """The bank a write request (:attr:`write_request`) goes to: its chunk's, from the
        mask address every spike-fiber write carries (0 for a result-only write)."""
        return request.mask_addr[:self.bank_bits] if self.bank_bits else 0

    @property
    def mask_addr_bits(self):
        return self.region_bits + self.chunk_bits

    @property
    def local_regions(self):
        """The regions each TPPE holds: all but the shared one (region 1, the last of
        two, so that a TPPE's addresses are the bus's without the region bit)."""
        return self.regions - (1 if self.shared_banks else 0)

    @property
    def local_mask_addr_bits(self):
        """A mask address in a TPPE's own spike buffers."""
        return self.mask_addr_bits - (self.region_bits if self.shared_banks else 0)

    def is_shared(self, region):
        """Whether ``region`` (a signal) is held in the shared activation memory."""
        return region == 1 if self.shared_banks else Const(0, 1)

    @property
    def shared_bank_bits(self):
        return (self.shared_banks - 1).bit_length()

    def shared_bank(self, chunk):
        """(bank, row) of a chunk index of the shared region."""
        lo, hi = self.shared_shift, self.shared_shift + self.shared_bank_bits
        return chunk[lo:hi], Cat(chunk[:lo], chunk[hi:self.chunk_bits])

    @property
    def shared_row(self):
        """A row of the shared activation memory: a chunk's mask and its W words."""
        return data.StructLayout({"mask": unsigned(self.chunk),
                                  "words": data.ArrayLayout(unsigned(self.lanes),
                                                            self.chunk)})

    @property
    def spike_words_depth(self):
        """Words of a TPPE's spike buffer: only the regions that exist there."""
        return self.local_regions << (self.chunk_bits + self.offset_bits)

    @property
    def spike_masks_depth(self):
        return self.local_regions << self.chunk_bits

    @property
    def theta_bits(self):
        return max(1, self.v_bits - 1)

    # --- stream payloads --------------------------------------------------------------

    @property
    def chunk_match(self):
        """A weight chunk joined with its spike chunk: the inner join's unit of work.
        The matched bits are ``smask & wmask``. ``end`` marks the neuron's last match; a
        match with no matched bit and ``end`` set stands for a neuron with no matched
        pair at all."""
        fields = {
            "smask": unsigned(self.chunk), "wmask": unsigned(self.chunk),
            "chunk": unsigned(self.fiber_chunk_bits),
            "wbase": unsigned(self.weight_addr_bits),
            "end": unsigned(1)}
        if self.shared_banks:
            # the chunk's words, read with its mask from the shared activation memory
            fields["words"] = data.ArrayLayout(unsigned(self.lanes), self.chunk)
        return data.StructLayout(fields)

    @property
    def matched_pair(self):
        """One (spike word, weight) pair to accumulate; ``empty`` pairs carry only ``end``."""
        fields = {
            "chunk": unsigned(self.fiber_chunk_bits), "offset": unsigned(self.offset_bits),
            "waddr": unsigned(self.weight_addr_bits), "end": unsigned(1),
            "empty": unsigned(1)}
        if self.shared_banks:
            # from a chunk match of the shared activation memory: its chunk's words (the
            # accumulate stage selects the pair's by ``offset``, from registers)
            fields["words"] = data.ArrayLayout(unsigned(self.lanes), self.chunk)
        return data.StructLayout(fields)

    @property
    def neuron_header(self):
        fields = {"theta": unsigned(self.theta_bits), "bias": signed(self.acc_bits),
                  "slot": unsigned(self.slot_bits), "chunk_last": unsigned(1)}
        if self.leak_bits:
            fields["leak"] = unsigned(self.leak_bits)
        if self.max_pool:
            fields["partial"] = unsigned(1)
        return data.StructLayout(fields)

    @property
    def neuron_currents(self):
        """A neuron's input currents, one per step of the chunk, and its header: what the
        accumulate stage hands on (to the LIF stage, or first to :class:`WindowMax`)."""
        return data.StructLayout({
            "sums": data.ArrayLayout(signed(self.acc_bits), self.lanes),
            "header": self.neuron_header})

    @property
    def neuron_state(self):
        """What a neuron carries from one time chunk to the next: its membrane, its one bit
        of order state and, if any mode is current-based, its synaptic current."""
        fields = {"v": signed(self.v_bits), "state": unsigned(1)}
        if self.i_bits:
            fields["i"] = signed(self.i_bits)
        return fields

    @property
    def lif_input(self):
        return data.StructLayout({
            "sums": data.ArrayLayout(signed(self.acc_bits), self.lanes),
            "header": self.neuron_header,
            # the state the neuron left at the end of the previous chunk
            **self.neuron_state})

    @property
    def lif_output(self):
        return data.StructLayout({
            "word": unsigned(self.lanes), **self.neuron_state,
            "slot": unsigned(self.slot_bits), "chunk_last": unsigned(1)})

    @property
    def write_request(self):
        """Writes into every TPPE's spike buffers (a packed word and/or a chunk mask) or
        into the result buffer. ``slot`` says which neuron a word belongs to (trace).
        ``mask_addr`` is set on every spike-fiber write, a word's too: it names the chunk,
        and so the bank (:meth:`write_bank`)."""
        return data.StructLayout({
            "word_en": unsigned(1), "word_addr": unsigned(self.spike_addr_bits),
            "word": unsigned(self.lanes),
            "mask_en": unsigned(1), "mask_addr": unsigned(self.mask_addr_bits),
            "mask": unsigned(self.chunk),
            "result_en": unsigned(1), "v": signed(self.v_bits),
            "slot": unsigned(self.slot_bits)})

    @property
    def result(self):
        return result_layout(self.lanes, self.v_bits)

    @property
    def trace(self):
        return trace_layout(self.lanes, self.pass_bits, self.slot_bits, self.write_lanes)
