"""The compiled program: what the accelerator computes for one model, as data.

A :class:`Program` is the contract between the compiler (which writes it:
:func:`hwgen.compiler.scheduler.program.compile_program`), the gateware (which is generated
for it: :meth:`hwgen.gateware.geometry.Geometry.of`) and the build directory (which stores its
memory images and its :meth:`~Program.summary` as ``program.json``; docs/architecture.md,
"Build directory", defines that file). The words inside the memory images follow
:mod:`hwgen.compiler.instruction_format`.

Output placement (why a layer's input order is permuted): TPPE p writes its neurons'
outputs to the contiguous slots ``[base_p, base_p + n_p)`` of the next layer's input, with
``base_p`` a multiple of W, so each TPPE compresses its outputs into whole chunks of the
next fiber on its own. The next layer's weights are laid out in that same slot order (a
permutation of a dot product changes nothing). The last layer writes its outputs by natural
index into the result buffer instead.
"""

from dataclasses import dataclass, field

from .instruction_format import TAG_CALL, unpack_entry
from .ir import Leak


@dataclass(frozen=True)
class LIFMode:
    """The static neuron attributes of one or more layers (docs/semantics.md section 4);
    the LIF stage is generated for exactly the modes a program uses, and each layer
    descriptor selects one. (Not :class:`hwgen.sim.workloads.NeuronMode`, which describes
    a random layer to generate.)"""

    leak: dict
    fire: str
    reset: str
    order: str
    v_bits: int
    synapse: dict = None        # a current-based neuron's synaptic leak (section 4b),
    i_bits: int = None          # the width of its synaptic current
    synapse_rounding: str = None                # and how it rounds (separate / joint)

    @classmethod
    def of(cls, lif):
        leak = lif.leak.to_json()
        if lif.leak.kind == "per_neuron":
            # the mode keeps the layer's F; each neuron's multiplier is in its NEURON entry
            leak = {"kind": "per_neuron", "frac_bits": lif.leak.frac_bits}
        if lif.synapse is None:
            return cls(leak, lif.fire, lif.reset, lif.order, lif.v_bits)
        return cls(leak, lif.fire, lif.reset, lif.order, lif.v_bits,
                   lif.synapse.to_json(), lif.i_bits, lif.synapse_rounding)

    @property
    def leak_bits(self):
        """Width of the NEURON entry's ``leak`` field this mode reads: F + 1 bits (a
        multiplier 0..2**F) for a per-neuron leak, else 0 (the field is not needed)."""
        return self.leak["frac_bits"] + 1 if self.leak["kind"] == "per_neuron" else 0

    def neuron_leak(self, multiplier=None):
        """The :class:`~hwgen.compiler.ir.Leak` one neuron of this mode computes; a
        per-neuron leak needs that neuron's ``multiplier`` (else it has none, which only
        :meth:`Leak.check` of the layer's form accepts)."""
        if self.leak["kind"] == "per_neuron":
            multipliers = [] if multiplier is None else [multiplier]
            return Leak.per_neuron(multipliers, self.leak["frac_bits"])
        return Leak.from_json(self.leak, "LIF mode")

    def to_json(self):
        result = {"leak": self.leak, "fire": self.fire, "reset": self.reset,
                  "order": self.order, "v_bits": self.v_bits}
        if self.synapse is not None:
            result.update(synapse=self.synapse, i_bits=self.i_bits,
                          synapse_rounding=self.synapse_rounding)
        return result


@dataclass
class LayerPlan:
    """One layer as scheduled.

    ``input_slots[s]`` is the input neuron (index in the previous layer or the model
    input) whose word sits in slot s of this layer's spike fiber, -1 for padding;
    ``output_slots`` likewise for this layer's outputs. ``tppe_neurons[p]`` lists the
    neurons TPPE p computes, in order; ``mode`` indexes :attr:`Program.modes`.

    A layer that reads earlier layers (``aux``, in layer order: residual connections,
    attention branches) reads their spikes as well: ``input_slots`` then runs on, from
    ``aux_bases[k]`` (multiples of W; ``state_base`` is the first), with the output slots
    of ``aux[k]`` (input indices counted on after the input's and the earlier ones'), read
    from that layer's region pair.
    A recurrent layer (docs/semantics.md 4c) reads its own spikes of the previous step as
    well: ``input_slots`` then runs on from ``state_base`` (a multiple of W) with those,
    as input indices ``inputs - outputs + j``, laid out as the layer's ``output_slots``.
    They sit in the layer's own pair of spike-buffer regions (:attr:`Program.spike_regions`),
    the chunk of position ``state_base + s`` being chunk ``s // W`` there; None for a
    feed-forward layer.
    """

    name: str
    dense: str
    inputs: int
    outputs: int
    mode: int
    last: bool
    input_slots: list
    output_slots: list
    tppe_neurons: list
    estimated_cycles: list
    state_base: int = None
    aux: tuple = ()
    aux_bases: tuple = ()
    # A kept membrane shortcut (docs/architecture.md, "Spiking transformers"): the earlier
    # layer whose currents this one adds, and the kept-current buffers (1-based; 0: none)
    # this layer writes its own currents into and reads the added ones from. A layer that
    # adds currents computes the same neurons on the same TPPEs, in the same order, as the
    # layer that kept them.
    adds_current: str = None
    current_write: int = 0
    current_read: int = 0
    # Q (K^T V) (compiler/passes/attention.py): the earlier layer whose kept currents
    # (buffer ``current_read``) this layer's pairs multiply by, per step, instead of
    # weights; its chunk entries' weight bases address them.
    operands: str = None
    # mapping "tiles" (compiler/scheduler/lockstep.py): whether the layer is run in step
    # from a block all TPPEs share, and if it is tiled but not, why not
    in_step: bool = False
    not_in_step: str = None

    @property
    def recurrent(self):
        return self.state_base is not None and not self.aux

    def region_widths(self):
        """Input positions the layer needs in one spike-buffer region: its input's, and
        with recurrence its state's or with earlier layers' spikes theirs (each in
        regions of its own)."""
        if self.state_base is None:
            return (len(self.input_slots),)
        bases = (*(self.aux_bases or (self.state_base,)), len(self.input_slots))
        return (bases[0], *(end - start for start, end in zip(bases, bases[1:])))

    def to_json(self):
        result = {"name": self.name, "dense": self.dense, "inputs": self.inputs,
                  "outputs": self.outputs, "mode": self.mode, "last": self.last,
                  "input_slots": self.input_slots, "output_slots": self.output_slots,
                  "tppe_neurons": self.tppe_neurons, "estimated_cycles": self.estimated_cycles}
        if self.state_base is not None:
            result["state_base"] = self.state_base
        if self.aux:
            result["aux"] = list(self.aux)
            result["aux_bases"] = list(self.aux_bases)
        if self.adds_current is not None:
            result["adds_current"] = self.adds_current
        if self.current_write or self.current_read:
            result.update(current_write=self.current_write, current_read=self.current_read)
        if self.operands is not None:
            result["operands"] = self.operands
        if self.in_step:
            result["in_step"] = True
        if self.not_in_step is not None:
            result["not_in_step"] = self.not_in_step
        return result


@dataclass
class Program:
    """``entries[p]``: TPPE p's packed fiber-program entries; ``weights[p]``: its weight
    memory (signed), each chunk entry's run of nonzero values at its ``wbase``, runs stored
    once (:class:`~hwgen.compiler.scheduler.fibers.WeightMemory`); ``descriptors``: one packed layer descriptor per layer;
    ``layouts``: :func:`~hwgen.compiler.instruction_format.program_layouts`."""

    config: object
    model_name: str
    timesteps: int
    input_size: int
    output_size: int
    layers: list
    modes: list
    entries: list
    weights: list
    descriptors: list
    layouts: dict
    # How an 'auto' T_c was chosen, if on calibration spikes: {T_c: estimated cycles per
    # inference} (compiler/scheduler/time_chunk.py); not part of the build directory.
    time_chunk_estimates: dict = field(default_factory=dict)
    # With layers run in step (mapping "tiles", scheduler/lockstep.py): the first entry of
    # the shared blocks, the same in every TPPE's ``entries`` and stored once, in the
    # shared program memory; each TPPE's own memory holds its entries before it. None: no
    # such layer.
    shared_base: int = None
    # activation_memory "shared" (scheduler/shared_activations.py): region 1 of the spike
    # buffers is held once, in P banks, chunk c in bank (c >> shared_shift) mod P. None:
    # every TPPE holds every region.
    shared_shift: int = None

    @property
    def tppes(self):
        return len(self.entries)

    @property
    def lanes(self):
        """T_c: the steps processed together; the width of every spike word in the core."""
        return self.config.time_chunk

    @property
    def time_chunks(self):
        """T / T_c: the passes over the whole network one inference takes."""
        return self.timesteps // self.config.time_chunk

    def calls(self):
        """Address generation (scheduler/blocks.py): (CALL entries, blocks they call),
        summed over the TPPEs' programs; (0, 0) for a program without blocks."""
        calls, blocks = 0, 0
        for words in self.entries:
            targets = [entry["target"] for entry in self._call_entries(words)]
            calls, blocks = calls + len(targets), blocks + len(set(targets))
        return calls, blocks

    def masked_calls(self):
        """CALL entries that mask window rows or columns outside the map (padding as
        forced-zero masks, scheduler/windows.py), summed over the TPPEs' programs."""
        layout = self.layouts.get("call_entry")
        if layout is None or "rows" not in layout.offsets:
            return 0
        whole = ((1 << layout["rows"].width) - 1, (1 << layout["cols"].width) - 1)
        return sum(1 for words in self.entries for entry in self._call_entries(words)
                   if (entry["rows"], entry["cols"]) != whole)

    def _call_entries(self, words):
        """The CALL entries of one TPPE's program ``words``, unpacked (none in a program
        without blocks)."""
        if "call_entry" not in self.layouts:
            return
        for word in words:
            entry = unpack_entry(self.layouts, word)
            if entry["tag"] == TAG_CALL:
                yield entry

    @property
    def recurrent_layers(self):
        """How many layers are recurrent."""
        return sum(plan.recurrent for plan in self.layers)

    @property
    def residual(self):
        """Whether a layer reads an earlier layer's spikes besides its input's."""
        return any(plan.aux for plan in self.layers)

    @property
    def state_pairs(self):
        """Layers with a pair of spike-buffer regions of their own: the recurrent ones, and
        those whose spikes a later layer reads through a residual connection."""
        return len(self.pair_of())

    def pair_of(self):
        """{layer name: its region pair, numbered from 1 in layer order} for the layers
        that have one: the recurrent ones and those a later layer reads besides the layer
        before it (its ``aux``), whose spikes are kept there."""
        kept = {name for plan in self.layers for name in plan.aux}
        owners = [plan.name for plan in self.layers if plan.recurrent or plan.name in kept]
        return {name: k + 1 for k, name in enumerate(owners)}

    @property
    def spike_regions(self):
        """Regions of each spike buffer: two that alternate between layers, plus, when an
        inference takes several passes, one per time chunk for the input (all of it is
        loaded before the start), plus two per recurrent layer, which alternate between
        time steps: the layer writes its spikes into one while it reads those of the step
        before from the other (:class:`~hwgen.gateware.sequencer.LayerSequencer`), and two
        per layer a later one reads through a residual connection, kept there for it."""
        base = 2 if self.time_chunks == 1 else 2 + self.time_chunks
        return base + 2 * self.state_pairs

    @property
    def current_buffers(self):
        """Kept-current buffers in each TPPE (0: no layer keeps its currents for a later
        one)."""
        return max((plan.current_write for plan in self.layers), default=0)

    @property
    def current_depth(self):
        """Neurons each kept-current buffer holds: the most any TPPE computes in a layer
        that keeps its currents, to a power of two (a buffer is addressed as (buffer,
        position))."""
        most = max((len(neurons) for plan in self.layers if plan.current_write
                    for neurons in plan.tppe_neurons), default=0)
        return 1 << max(0, (most - 1).bit_length())

    @property
    def i_bits(self):
        """The synaptic current's width in the LIF stage: the widest current-based mode's
        i_bits, 0 when no layer is current-based (no current state is generated)."""
        return max((m.i_bits for m in self.modes if m.synapse is not None), default=0)

    def neurons_per_tppe(self):
        """Neurons each TPPE computes over all layers: its membrane memory's depth when the
        membranes are carried between time chunks."""
        return [sum(len(plan.tppe_neurons[p]) for plan in self.layers)
                for p in range(self.tppes)]

    def own_entries(self, p):
        """The entries TPPE p's own program memory holds: all of ``entries[p]``, or those
        before the shared blocks (:attr:`shared_base`)."""
        return self.entries[p][:self.shared_base]

    def shared_entries(self):
        """The shared program memory's entries (the blocks of the layers run in step, the
        same in every TPPE's address space); [] without such layers."""
        return [] if self.shared_base is None else self.entries[0][self.shared_base:]

    def memory_images(self):
        """{name: (width, [words])} for every initialised memory."""
        images = {"layers": (self.layouts["layer"].width, self.descriptors)}
        w_bits = self.config.weight_bits
        if self.shared_base is not None:
            images["shared_program"] = (self.layouts["entry"].width, self.shared_entries())
        for p in range(self.tppes):
            images[f"tppe{p}_program"] = (self.layouts["entry"].width, self.own_entries(p))
            images[f"tppe{p}_weights"] = (w_bits, [w & ((1 << w_bits) - 1)
                                                   for w in self.weights[p]])
        return images

    def memory_bits(self):
        """{name: (depth, width)} of every on-chip memory the generated design holds."""
        c = self.config
        memories = {
            "layers": (len(self.descriptors), self.layouts["layer"].width),
            "results": (self.time_chunks * self.output_size, self.lanes + c.v_bits),
        }
        regions = self.spike_regions
        if self.shared_shift is not None:
            # region 1 once, in P banks of its chunks' masks and words
            regions -= 1
            for b in range(self.tppes):
                memories[f"shared_masks{b}"] = (c.spike_depth // c.chunk // self.tppes,
                                                c.chunk)
                memories[f"shared_words{b}"] = (c.spike_depth // c.chunk // self.tppes,
                                                c.chunk * self.lanes)
        K = c.fetch_width           # a wide fetch: K entries per program word, K mask copies
        own_depth = c.program_depth if self.shared_base is None else self.shared_base
        if self.shared_base is not None:
            memories["shared_program"] = (len(self.shared_entries()) // K,
                                          K * self.layouts["entry"].width)
        for p, neurons in enumerate(self.neurons_per_tppe()):
            memories[f"tppe{p}_program"] = (-(-own_depth // K),
                                            K * self.layouts["entry"].width)
            memories[f"tppe{p}_weights"] = (c.weight_depth, c.weight_bits)
            # the spike buffers in write_lanes banks (chunk mod B), a memory each
            B = c.write_lanes
            banks = [""] if B == 1 else [f"_bank{b}" for b in range(B)]
            for bank in banks:
                memories[f"tppe{p}_spike_words{bank}"] = (regions * c.spike_depth // B,
                                                          self.lanes)
                for j in range(K):
                    memories[f"tppe{p}_spike_masks" + (f"_{j}" if j else "") + bank] = (
                        regions * c.spike_depth // c.chunk // B, c.chunk)
            if self.current_buffers:
                # per neuron the T_c input currents a later layer adds
                memories[f"tppe{p}_kept_currents"] = (
                    self.current_buffers * self.current_depth, self.lanes * c.acc_bits)
            if self.time_chunks > 1:
                # the membrane, the one bit of order state and, with current-based
                # neurons, the synaptic current of each neuron
                memories[f"tppe{p}_membranes"] = (max(1, neurons),
                                                  c.v_bits + 1 + self.i_bits)
        return memories

    def summary(self):
        """JSON-able description, no memory contents: the build directory's program.json."""
        return {"model": self.model_name,
                "timesteps": self.timesteps, "inputs": self.input_size,
                "outputs": self.output_size, "config": self.config.to_json(),
                "modes": [m.to_json() for m in self.modes],
                "layers": [layer.to_json() for layer in self.layers],
                "entries_per_tppe": [len(e) for e in self.entries],
                **({} if self.shared_base is None else {"shared_base": self.shared_base}),
                **({} if self.shared_shift is None else {"shared_shift": self.shared_shift}),
                "weights_per_tppe": [len(w) for w in self.weights],
                "layouts": {name: [[f.name, f.width, f.signed] for f in layout.fields]
                            for name, layout in self.layouts.items()}}
