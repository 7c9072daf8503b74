"""The hardware configuration: every parameter of a generated accelerator.

A configuration is read from a TOML or JSON file and ``--set key=value`` overrides, then
*resolved* against a model: parameters left at ``"auto"`` take the smallest value the
model needs, and explicit values are checked so that a model that does not fit is refused
with a message naming the parameter (see :func:`resolve`). docs/architecture.md explains
what each parameter means for the hardware.
"""

import json
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from hwgen.errors import ConfigError

from .ir.early_exit import check_rule
from .ir.graph import MAX_TIMESTEPS
from .ir.widths import MAX_ACC_BITS, MAX_V_BITS, MAX_WEIGHT_BITS, MIN_BITS

AUTO = "auto"
# The largest memories a configuration may ask for (words per TPPE or per buffer region).
MAX_SPIKE_DEPTH = 1 << 16
MAX_PROGRAM_DEPTH = 1 << 20
MAX_WEIGHT_DEPTH = 1 << 22
# A configuration is a dozen numbers; a larger file is not one.
MAX_CONFIG_BYTES = 1 << 16
# Steps processed together (accumulators per TPPE): the area grows with it, not with T.
MAX_TIME_CHUNK = 16
DATAFLOWS = ("temporal_parallel", "sequential")
# Inner-join variants (docs/architecture.md, "The laggy join"): "dual" computes both prefix sums fast;
# "laggy" is LoAS's join (fast weight-side prefix sum, slow spike-side walk, corrections).
JOIN_VARIANTS = ("dual", "laggy")
# Fiber-program entries a TPPE's fetch reads per cycle (docs/architecture.md, "Performance").
FETCH_WIDTHS = (1, 2, 4, 8)
# How a layer of output positions is cut over the TPPEs (docs/architecture.md, "The
# per-layer mapping").
MAPPINGS = ("ranges", "neurons", "positions", "tiles")
# Writes the write bus carries per cycle, one per bank of the spike buffers
# (docs/architecture.md, "One layer, step by step", item 7).
WRITE_LANES = (1, 2, 4, 8)
# Where the spike buffers live (docs/architecture.md, "A shared activation memory"): a copy
# per TPPE, or region 1 once for all TPPEs (layers run in step read it).
ACTIVATION_MEMORIES = ("copies", "shared")



@dataclass(frozen=True)
class HardwareConfig:
    """Parameters of one accelerator; ``"auto"`` means "sized to the model"."""

    timesteps: object = AUTO
    """T: the model's time steps (1..1024); must equal the model's."""
    time_chunk: object = AUTO
    """T_c: time steps processed together, in parallel (1..16, divides T): the TPPE's
    accumulators, the LIF unit's currents and the width of every spike word in the core.
    T_c = T is the fully temporal-parallel dataflow; smaller values run T / T_c passes over
    the whole network, each a chunk of T_c steps, with every membrane kept in memory between
    passes; T_c = 1 is the temporal-sequential baseline. 'auto': T if T <= 16, else the
    largest divisor of T that is at most 16; 1 for a model with a recurrent layer, which
    needs each step's spikes before the next step (docs/semantics.md 4c)."""
    dataflow: str = "temporal_parallel"
    """'temporal_parallel' (T_c as set by time_chunk) or 'sequential': the
    temporal-sequential baseline, one step at a time (time_chunk = 1)."""
    early_exit: object = "off"
    """Stop an inference after a time chunk once its spike-count decision is taken:
    'certain' (the prediction can no longer change: exact) or a margin M (the leader is M
    spikes ahead: may change the prediction); 'off' runs every step. Needs several time
    chunks. The rule is docs/semantics.md section 8."""
    tppes: int = 2
    """Number of temporal-parallel processing elements (1..32). Two fit the bundled model
    into an iCE40UP5K; larger FPGAs take many more."""
    chunk: int = 16
    """W: fiber chunk width, neurons per bitmask (4, 8, 16, 32 or 64)."""
    weight_bits: object = AUTO
    """Signed weight width (2..16)."""
    acc_bits: object = AUTO
    """Signed accumulator width (2..32)."""
    v_bits: object = AUTO
    """Signed membrane width (2..32)."""
    lif_steps: object = 1
    """Time steps each LIF unit evaluates per cycle (divides T_c); a neuron takes T_c/lif_steps
    cycles in the LIF stage, overlapped with the next neuron's accumulation. Each extra step
    chains another membrane update into the same cycle (Fmax falls). 'auto': the smallest
    divisor of T_c that makes it at most 4 cycles, chaining at most 4 step circuits (see
    :meth:`auto_lif_steps`)."""
    lif_buffer: int = 0
    """1: a finished neuron's input currents move into a buffer of their own in front of
    the LIF stage (a skid buffer of one neuron), so the accumulators take the next neuron
    at once instead of holding the last one until the LIF stage is free: a neuron with
    fewer matched pairs than its LIF evaluation (T_c / lif_steps cycles) then costs less
    where its neighbours have more. Costs one neuron's currents in flip-flops per TPPE
    (T_c x (acc_bits + 1)) and a multiplexer as wide; 0: no buffer. The results are the
    same bit for bit."""
    spike_depth: object = AUTO
    """Words per activation buffer region: at least the widest layer, padded to chunks."""
    program_depth: object = AUTO
    """Fiber-program entries per TPPE (neuron headers, weight chunks, layer ends)."""
    weight_depth: object = AUTO
    """Nonzero weights stored per TPPE."""
    fifo_depth: int = 4
    """Depth of the join-token and output FIFOs in each TPPE."""
    join: str = "dual"
    """Inner-join variant: ``dual`` (both prefix popcounts fast, T accumulators gated by the
    spike word) or ``laggy`` (LoAS: fast weight-side prefix sum into one pseudo-accumulator,
    the spike side resolved later by a one-bit-per-cycle walk into T correction
    accumulators). Same sums bit for bit; different area and cycles."""
    fetch_width: int = 1
    """K: fiber-program entries each TPPE's fetch reads per cycle (1, 2, 4 or 8). With K > 1
    the program memory is K entries wide and the spike-mask memory has K copies (one read
    port each), so a neuron's weight chunks whose AND with the spikes is empty cost 1/K of
    a cycle instead of one; a neuron's header starts a K-entry group (the compiler pads).
    1 is the original one-entry fetch."""
    write_lanes: int = 1
    """B: writes of spike words and chunk masks the write bus carries per cycle (1, 2, 4 or
    8). Every TPPE's spike buffers are split into B banks by chunk index (chunk mod B), each
    with its own write port, and the bus grants one request per bank per cycle; a layer
    whose outputs spike densely over many TPPEs is otherwise bound by one write a cycle.
    Costs B - 1 more arbiters and, per TPPE, B smaller memories instead of one (block RAMs
    are not filled) and a B-way read multiplexer; the last layer's results still go one a
    cycle. 1 is the one shared bus."""
    keep_currents: int = 1
    """1: a layer whose neurons add the whole input current of an earlier layer (a
    membrane shortcut, the residual stream of a spiking transformer) adds the currents that
    layer computed, kept per neuron in a memory of each TPPE, instead of recomputing them
    from their spike sources; 0: recomputes them (no such memory). The results are the
    same bit for bit."""
    call_groups: int = 48
    """Address generation: a run of neurons (the channels of one output position) that a
    TPPE's program repeats with only its chunk indices and output slots moved, and that
    takes at least this many fetch groups, is stored once and called with the two offsets,
    which the fetch adds in hardware (docs/architecture.md, "Address generation"). A call
    costs about 6 fetch cycles, so the default 48 keeps that under 1/8 of the run's.
    0: no calls (every run stored where it is walked). The results are the same bit for
    bit."""
    mapping: str = "ranges"
    """How a layer of output positions (a convolution's pixels, a transformer's tokens)
    without other placement constraints is cut over the TPPEs: 'ranges' gives each TPPE a
    range of positions with all their channels (cut at whole chunks) when that balances
    the TPPEs within 2 %, else balances neuron by neuron; 'neurons' always balances
    neuron by neuron (the fewest cycles, the most program memory: a TPPE's positions
    repeat nothing); 'positions' always gives whole positions, never cut inside one, so
    that all a TPPE's positions call one stored block (the least program memory, at the
    balance whole positions allow); 'tiles' gives TPPE p position p of every tile of P
    positions (positions of like estimated cost together), with each position's channels
    in whole chunks of the next layer's fiber, and runs a layer whose positions all call
    one block in step:
    the block is stored once for all TPPEs, in a program memory they share, and read once
    per tile (the least memory; a tile costs its busiest TPPE's time; docs/architecture.md,
    "The per-layer mapping" and "Tiles in step")."""
    activation_memory: str = "copies"
    """Where the spike buffers live. 'copies': every TPPE holds every region (each reads
    at its own pace). 'shared': region 1, which the odd layers read (with one time chunk),
    is held once for all TPPEs, in P banks, written once per spike; every layer reading it
    must run in step (mapping 'tiles') and takes its tiles in row-major order, and the
    compiler checks that in every cycle the TPPEs' reads fall in different banks
    (docs/architecture.md, "A shared activation memory"). Needs join 'dual', fetch_width
    1, write_lanes 1, a power of two >= 2 TPPEs, one time chunk and no recurrent or
    residual layers. The results are the same bit for bit."""
    border_calls: int = 1
    """Padding as forced-zero masks: 1 lets a run that occurs once (an output pixel at the
    map's border, whose window loses the padded positions) call the block of a larger run
    of its layer (an interior pixel's), with the window rows and columns outside the map
    masked by the fetch (docs/architecture.md, "Address generation"): its entries are then
    not stored, but it walks the masked ones too. 0: such runs are stored inline. Needs
    calls (call_groups > 0). The results are the same bit for bit."""

    @classmethod
    def names(cls):
        return [f.name for f in fields(cls)]

    def to_json(self):
        return asdict(self)

    def with_values(self, values, source):
        """A copy with ``values`` ({name: value}) applied; ``source`` names them in errors."""
        known = set(self.names())
        for name in values:
            if name not in known:
                raise ConfigError(f"{source}: unknown parameter {name!r}; known: "
                                  f"{', '.join(sorted(known))}")
        return replace(self, **values)

    def check(self, source="config"):
        """Check every explicit value's range; return self. ``source`` (a file, --set)
        names where the values came from in errors."""
        def integer(name, lo, hi, *, auto=False):
            value = getattr(self, name)
            if auto and value == AUTO:
                return
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(f"{source}: {name} = {value!r} must be an integer between "
                                  f"{lo} and {hi}" + (" or 'auto'" if auto else ""))

        def flag(name):
            value = getattr(self, name)
            if value not in (0, 1) or isinstance(value, bool):
                raise ConfigError(f"{source}: {name} = {value!r} must be 0 or 1")

        def one_of(name, values):
            value = getattr(self, name)
            if value not in values:
                raise ConfigError(f"{source}: {name} = {value!r} must be one of "
                                  f"{', '.join(map(str, values))}")
        integer("timesteps", 1, MAX_TIMESTEPS, auto=True)
        integer("time_chunk", 1, MAX_TIME_CHUNK, auto=True)
        one_of("dataflow", DATAFLOWS)
        check_rule(self.early_exit, source)
        if self.dataflow == "sequential" and self.time_chunk not in (AUTO, 1):
            raise ConfigError(f"{source}: dataflow = 'sequential' runs one step at a time; "
                              f"time_chunk = {self.time_chunk!r} contradicts it (leave it "
                              f"'auto' or set 1)")
        integer("tppes", 1, 32)
        integer("chunk", 4, 64)
        if self.chunk & (self.chunk - 1):
            raise ConfigError(f"{source}: chunk = {self.chunk} must be a power of two "
                              f"(4, 8, 16, 32 or 64)")
        integer("weight_bits", MIN_BITS, MAX_WEIGHT_BITS, auto=True)
        integer("acc_bits", MIN_BITS, MAX_ACC_BITS, auto=True)
        integer("v_bits", MIN_BITS, MAX_V_BITS, auto=True)
        integer("lif_steps", 1, 16, auto=True)
        integer("spike_depth", 1, MAX_SPIKE_DEPTH, auto=True)
        integer("program_depth", 1, MAX_PROGRAM_DEPTH, auto=True)
        integer("weight_depth", 1, MAX_WEIGHT_DEPTH, auto=True)
        integer("fifo_depth", 2, 64)
        integer("call_groups", 0, MAX_PROGRAM_DEPTH)
        one_of("join", JOIN_VARIANTS)
        one_of("fetch_width", FETCH_WIDTHS)
        flag("keep_currents")
        flag("border_calls")
        flag("lif_buffer")
        one_of("mapping", MAPPINGS)
        one_of("write_lanes", WRITE_LANES)
        one_of("activation_memory", ACTIVATION_MEMORIES)
        if self.activation_memory == "shared":
            needs = [(self.mapping == "tiles", f"mapping = 'tiles' (not {self.mapping!r})"),
                     (self.join == "dual", f"join = 'dual' (not {self.join!r})"),
                     (self.fetch_width == 1, f"fetch_width = 1 (not {self.fetch_width})"),
                     (self.write_lanes == 1, f"write_lanes = 1 (not {self.write_lanes})"),
                     (self.tppes >= 2 and not self.tppes & (self.tppes - 1),
                      f"tppes a power of two >= 2 (not {self.tppes})"),
                     (self.dataflow != "sequential", "dataflow = 'temporal_parallel'")]
            missing = [need for ok, need in needs if not ok]
            if missing:
                raise ConfigError(f"{source}: activation_memory = 'shared' needs "
                                  f"{', '.join(missing)}")
        if AUTO not in (self.timesteps, self.time_chunk) and self.timesteps % self.time_chunk:
            raise ConfigError(f"{source}: time_chunk = {self.time_chunk} must divide "
                              f"timesteps = {self.timesteps}")
        lanes = self.time_chunk
        if lanes == AUTO and self.timesteps != AUTO:
            lanes = self.auto_time_chunk(self.timesteps)
        if AUTO not in (lanes, self.lif_steps) and lanes % self.lif_steps:
            auto = "" if self.time_chunk != AUTO else f" (auto for timesteps = {self.timesteps})"
            raise ConfigError(f"{source}: lif_steps = {self.lif_steps} must divide "
                              f"time_chunk = {lanes}{auto}")
        return self

    def auto_time_chunk(self, timesteps):
        """The 'auto' time_chunk for T: 1 for the sequential dataflow, else T itself if it
        fits the accumulators, else the largest divisor of T that does (a prime T above
        MAX_TIME_CHUNK leaves 1: correct, but temporal-sequential)."""
        if self.dataflow == "sequential":
            return 1
        return max(d for d in range(1, min(timesteps, MAX_TIME_CHUNK) + 1)
                   if timesteps % d == 0)

    @staticmethod
    def auto_lif_steps(timesteps):
        """The 'auto' lif_steps for T_c steps: the smallest divisor d of T_c with
        T_c / d <= 4 if it is at most 4 (more chained step circuits would lengthen the
        critical path), else the largest divisor of T_c that is at most 4."""
        divisors = [d for d in range(1, min(4, timesteps) + 1) if timesteps % d == 0]
        return next((d for d in divisors if timesteps // d <= 4), divisors[-1])

    @property
    def resolved(self):
        return AUTO not in (getattr(self, name) for name in self.names())


def _parse_value(text):
    """A --set value: an integer, 'auto', or a bare string."""
    text = text.strip()
    try:
        return int(text, 0)
    except ValueError:
        return text


def load(path=None, overrides=()):
    """Read a configuration file (TOML or JSON; optional) and apply ``key=value`` overrides."""
    config = HardwareConfig()
    if path is not None:
        path = Path(path)
        kind = "JSON" if path.suffix == ".json" else "TOML"
        try:
            if path.stat().st_size > MAX_CONFIG_BYTES:
                raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a "
                                  f"hardware configuration")
            text = path.read_bytes().decode("utf-8")
            values = json.loads(text) if kind == "JSON" else tomllib.loads(text)
        except OSError as error:
            raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not valid {kind} (not UTF-8 text: {error.reason} at "
                              f"byte {error.start})") from None
        except (ValueError, RecursionError) as error:
            raise ConfigError(f"{path}: not valid {kind} "
                              f"({error if str(error) else 'nested too deeply'})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: must hold a table of parameters")
        if "hardware" in values:
            if not isinstance(values["hardware"], dict):
                raise ConfigError(f"{path}: 'hardware' must be a table of parameters, got "
                                  f"{values['hardware']!r}")
            values = values["hardware"]
        config = config.with_values(values, str(path)).check(str(path))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        config = config.with_values({key.strip(): _parse_value(value)},
                                    f"--set {item}").check(f"--set {item}")
    return config.check()
