"""Reading NIR graphs -- ``.nir`` (HDF5) files or ``nir.NIRGraph`` objects -- into plain records.

hwgen does not hand files to ``nir.read``: that builds every node through NIR's own
constructors and type inference, which refuse every graph snnTorch 1.0 exports (scalar
parameters, empty shapes) and fail with assertion errors that name no node. Instead the
file is walked with h5py in the layout ``nir.write`` produces, and each node becomes a
:class:`NirNode` of plain numpy values that the frontend checks itself, naming the node in
every error. In-memory graphs are read the same way from their nodes' fields. Nested
graphs are flattened: node ``b`` of subgraph ``a`` becomes ``a.b``, and the subgraph's Input
and Output nodes are spliced out.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwgen.errors import FormatError

PASS_THROUGH = "hwgen:pass-through"
"""Type given to a flattened subgraph's Input/Output nodes before they are spliced out."""


@dataclass
class NirNode:
    """One NIR node: its ``type`` (the NIR class name) and parameters as plain values."""

    name: str
    type: str
    params: dict
    metadata: dict = field(default_factory=dict)

    @property
    def where(self):
        return f"node {self.name!r} ({self.type})"


@dataclass
class NirDocument:
    """A whole NIR graph: nodes in file order, edges, graph metadata, the file's NIR version."""

    nodes: dict
    edges: list
    metadata: dict
    version: str = None


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.ndim == 0:
        return _text(value[()])
    return value


def _plain(value):
    """numpy scalars and bytes from h5py or a NIRGraph as plain Python / numpy values."""
    value = _text(value)
    if isinstance(value, np.generic):
        return value.item() if value.dtype.kind in "biuf" else _text(value.item())
    if hasattr(value, "detach"):                     # a torch tensor in an in-memory graph
        value = value.detach().cpu().numpy()
    return value


# --- files ------------------------------------------------------------------------------

# What a NIR file's datasets may hold in all, checked against each dataset's declared size
# before it is read (HDF5 datasets are compressed; a small file can declare gigabytes).
MAX_NIR_BYTES = 1 << 30


def _group_to_dict(group, budget, path):
    import h5py
    result = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            result[key] = _group_to_dict(item, budget, path)
        else:
            budget[0] -= item.size * item.dtype.itemsize
            if budget[0] < 0:
                raise FormatError(f"{path}: dataset {item.name} takes the "
                                  f"datasets past {MAX_NIR_BYTES} bytes; not a model hwgen "
                                  f"can hold")
            result[key] = _plain(item[()])
    return result


def read_file(path):
    """Read a ``.nir`` file into a :class:`NirDocument`; FormatError if it is not one."""
    import h5py
    path = Path(path)
    if not path.is_file():
        reason = "No such file or directory" if not path.exists() else "not a file"
        raise FormatError(f"{path}: cannot read ({reason})")
    try:
        with h5py.File(path, "r") as f:
            version = _plain(f["version"][()]) if "version" in f else None
            if "node" not in f or not isinstance(f["node"], h5py.Group):
                raise FormatError(f"{path}: HDF5 file has no 'node' group; not a NIR graph")
            data = _group_to_dict(f["node"], [MAX_NIR_BYTES], path)
    except FormatError:
        raise
    except RecursionError:
        raise FormatError(f"{path}: groups nested too deeply to be a NIR graph") from None
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FormatError(f"{path}: not a readable NIR (HDF5) file ({reason})") from None
    try:
        return _document(data, str(path), version if isinstance(version, str) else None)
    except RecursionError:
        raise FormatError(f"{path}: subgraphs nested too deeply to be a NIR graph") from None


def _edges(raw, where):
    """Edges as a list of (source, destination) strings, from h5py or Python values."""
    if raw is None:
        return []
    array = np.asarray(raw, dtype=object)
    if array.size == 0:
        return []
    if array.ndim != 2 or array.shape[1] != 2:
        raise FormatError(f"{where}: 'edges' must be a list of (source, destination) pairs, "
                          f"got shape {array.shape}")
    return [(str(_text(a)), str(_text(b))) for a, b in array]


def _document(data, source, version):
    if not isinstance(data, dict) or _text(data.get("type")) != "NIRGraph":
        raise FormatError(f"{source}: the top node is not a NIRGraph")
    nodes, edges = {}, []
    _flatten_graph(data, "", nodes, edges, source)
    edges = _splice(nodes, edges)
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return NirDocument(nodes, edges, {k: _plain(v) for k, v in metadata.items()}, version)


def _flatten_graph(data, prefix, nodes, edges, source):
    if "nodes" not in data or not isinstance(data["nodes"], dict):
        raise FormatError(f"{source}: graph {prefix.rstrip('.') or '(top)'} has no 'nodes'")
    local = {}
    for name, node in data["nodes"].items():
        full = prefix + name
        if not isinstance(node, dict) or "type" not in node:
            raise FormatError(f"{source}: node {full!r} has no 'type'")
        kind = _text(node["type"])
        if kind == "NIRGraph":
            inner_nodes, inner_edges = {}, []
            inner = _flatten_graph(node, full + ".", inner_nodes, inner_edges, source)
            direct = [inner_nodes[a] for a, b in inner.values() if a == b]
            ins = [n for n in direct if n.type == "Input"]
            outs = [n for n in direct if n.type == "Output"]
            if len(ins) != 1 or len(outs) != 1:
                raise FormatError(f"{source}: subgraph {full!r} must have one Input and one "
                                  f"Output node, has {len(ins)} and {len(outs)}")
            for n in (ins[0], outs[0]):
                n.type = PASS_THROUGH
            nodes.update(inner_nodes)
            edges.extend(inner_edges)
            local[name] = (ins[0].name, outs[0].name)
        else:
            params = {k: v for k, v in node.items() if k not in ("type", "metadata")}
            metadata = node.get("metadata") if isinstance(node.get("metadata"), dict) else {}
            nodes[full] = NirNode(full, kind, params, {k: _plain(v) for k, v in metadata.items()})
            local[name] = (full, full)
    for a, b in _edges(data.get("edges"), f"{source}: graph {prefix.rstrip('.') or '(top)'}"):
        for end in (a, b):
            if end not in local:
                graph = f"graph {prefix.rstrip('.')!r}" if prefix else "the graph"
                raise FormatError(f"{source}: edge ({a!r}, {b!r}) names {end!r}, which is not a "
                                  f"node of {graph}")
        edges.append((local[a][1], local[b][0]))
    return local


def _splice(nodes, edges):
    """Remove pass-through nodes, connecting each predecessor to each successor."""
    for name in [n for n, node in nodes.items() if node.type == PASS_THROUGH]:
        before = [a for a, b in edges if b == name]
        after = [b for a, b in edges if a == name]
        edges = [e for e in edges if name not in e] + [(a, b) for a in before for b in after]
        del nodes[name]
    return edges


# --- in-memory graphs -------------------------------------------------------------------

def _node_dict(node):
    """A NIR node object as the dict ``nir.write`` would store for it."""
    import nir
    kind = type(node).__name__
    if isinstance(node, nir.NIRGraph):
        return {"type": "NIRGraph", "nodes": {k: _node_dict(v) for k, v in node.nodes.items()},
                "edges": list(node.edges), "metadata": dict(node.metadata or {})}
    result = {"type": kind, "metadata": dict(getattr(node, "metadata", None) or {})}
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            if f.name not in ("input_type", "output_type", "metadata"):
                result[f.name] = _plain(getattr(node, f.name))
    if kind == "Input":
        result["shape"] = _plain(node.input_type.get("input"))
    elif kind == "Output":
        result["shape"] = _plain(node.output_type.get("output"))
    elif kind == "Flatten":
        declared = node.input_type.get("input") if isinstance(node.input_type, dict) else None
        if declared is not None:
            result["input_type"] = _plain(declared)
    return result


def from_graph(graph, source="NIR graph"):
    """Read an in-memory ``nir.NIRGraph`` into a :class:`NirDocument`."""
    import nir
    if not isinstance(graph, nir.NIRGraph):
        raise FormatError(f"{source}: expected a nir.NIRGraph, got {type(graph).__name__}")
    return _document(_node_dict(graph), source, None)
