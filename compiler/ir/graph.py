"""The model graph: ops as nodes, data flow as edges, over a fixed number of time steps."""

import networkx as nx

from hwgen.errors import ModelError
from .ops import LIF, Input, Op

# Packed words outside the core are Python-side arrays of chunks (spike_words.py), so T is
# bounded by memory and patience, not by a machine word.
MAX_TIMESTEPS = 1024


class Model:
    """A spiking network in the IR.

    Nodes are :class:`~hwgen.compiler.ir.ops.Op` objects keyed by name; an edge (a, b) with
    attribute ``port`` i says the output of a is input i of b. ``timesteps`` is T, the
    number of discrete steps every sample runs for. ``metadata`` records provenance:
    where the model came from and every assumption a frontend or pass made.

    Ops are kept in insertion order so that everything derived from a model (schedules,
    Verilog, memory images) is deterministic.
    """

    def __init__(self, name, timesteps, metadata=None):
        if not isinstance(name, str) or not name:
            raise ModelError(f"model name must be a non-empty string, got {name!r}")
        if not isinstance(timesteps, int) or isinstance(timesteps, bool) \
                or not 1 <= timesteps <= MAX_TIMESTEPS:
            raise ModelError(f"model {name!r}: timesteps must be an integer between 1 and "
                             f"{MAX_TIMESTEPS}, got {timesteps!r}")
        self.name = name
        self.timesteps = timesteps
        self.metadata = dict(metadata or {})
        self._graph = nx.DiGraph()
        self._order = {}

    def add(self, op, inputs=()):
        """Add ``op`` fed by the ops named in ``inputs`` (in port order); return ``op``."""
        if not isinstance(op, Op):
            raise TypeError(f"expected an Op, got {op!r}")
        if op.name in self._graph:
            raise ModelError(f"model {self.name!r}: op name {op.name!r} is used twice")
        if isinstance(inputs, str):
            inputs = (inputs,)
        for source in inputs:
            if source not in self._graph:
                raise ModelError(f"{op.where}: input {source!r} is not an op of this model")
        repeated = sorted({s for s in inputs if list(inputs).count(s) > 1})
        if repeated:
            # one edge per pair of ops: a second edge would silently replace the first
            raise ModelError(f"{op.where}: takes {repeated[0]!r} more than once; an op reads "
                             f"each producer once (relabel a copy with a flatten)")
        self._graph.add_node(op.name, op=op)
        self._order[op.name] = len(self._order)
        for port, source in enumerate(inputs):
            self._graph.add_edge(source, op.name, port=port)
        return op

    def __contains__(self, name):
        return name in self._graph

    def __getitem__(self, name):
        try:
            return self._graph.nodes[name]["op"]
        except KeyError:
            raise KeyError(f"model {self.name!r} has no op {name!r}") from None

    def __len__(self):
        return len(self._graph)

    def inputs_of(self, name):
        """Names of the ops feeding ``name``, in port order."""
        edges = sorted(self._graph.in_edges(name, data="port"), key=lambda e: e[2])
        return [source for source, _, _ in edges]

    def consumers_of(self, name):
        return sorted(self._graph.successors(name), key=self._order.__getitem__)

    @property
    def ops(self):
        """All ops in a deterministic topological order (insertion order breaks ties)."""
        if not nx.is_directed_acyclic_graph(self._graph):
            cycle = nx.find_cycle(self._graph)
            raise ModelError(f"model {self.name!r}: cycle through "
                             f"{' -> '.join(a for a, _ in cycle)}; a recurrent connection is "
                             f"a dense op with recurrent weights, not an edge")
        names = nx.lexicographical_topological_sort(self._graph, key=self._order.__getitem__)
        return [self[name] for name in names]

    @property
    def input(self):
        """The model's single Input op."""
        inputs = [op for op in self.ops if isinstance(op, Input)]
        if len(inputs) != 1:
            raise ModelError(f"model {self.name!r}: needs exactly one input op, has {len(inputs)}")
        return inputs[0]

    @property
    def outputs(self):
        """Ops whose output nobody consumes, in order."""
        return [op for op in self.ops if not self.consumers_of(op.name)]

    def infer(self):
        """Check every op and return {op name: output value type}. Raises ModelError."""
        types = {}
        for op in self.ops:
            types[op.name] = op.infer([types[s] for s in self.inputs_of(op.name)],
                                      self.timesteps)
            if getattr(op, "recurrent", False):
                self._check_recurrent(op)
        return types

    def _check_recurrent(self, op):
        """A recurrent synapse feeds exactly the neurons whose spikes it takes back."""
        consumers = [self[name] for name in self.consumers_of(op.name)]
        if len(consumers) != 1 or not isinstance(consumers[0], LIF) \
                or consumers[0].size != op.outputs:
            found = ", ".join(repr(c.name) for c in consumers) or "nothing"
            raise ModelError(f"{op.where}: a recurrent synapse must feed exactly one lif op "
                             f"of {op.outputs} neurons (its spikes come back one step "
                             f"late), but it feeds {found}")

    def recurrent_synapse(self, name):
        """The recurrent dense op feeding the lif op ``name``, or None."""
        sources = self.inputs_of(name)
        if len(sources) == 1 and getattr(self[sources[0]], "recurrent", False):
            return self[sources[0]]
        return None

    def validate(self):
        """Check the whole model; return it so calls can chain."""
        self.input
        self.infer()
        return self

    def __eq__(self, other):
        return (isinstance(other, Model) and self.name == other.name
                and self.timesteps == other.timesteps and self.metadata == other.metadata
                and [op.name for op in self.ops] == [op.name for op in other.ops]
                and all(self[n.name] == other[n.name]
                        and self.inputs_of(n.name) == other.inputs_of(n.name) for n in self.ops))

    def __repr__(self):
        return f"<Model {self.name!r} T={self.timesteps} ops={[op.name for op in self.ops]}>"
