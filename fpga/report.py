"""Reading what Yosys and nextpnr say about a design: utilisation, Fmax, critical paths,
and why a run failed.

The sources are nextpnr's ``--report`` JSON (``fmax``, ``utilization``,
``critical_paths``), nextpnr's log (its "Device utilisation" table, which is written even
when placement fails, and its ``ERROR:`` lines), and Yosys's ``stat -json`` (cells by
type). Each parser raises :class:`FormatError` naming the file if the text is not what the
tools write.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import FormatError

_UTILISATION_ROW = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)\s+(\d+)%\s*$")


@dataclass(frozen=True)
class ClockTiming:
    name: str
    achieved_mhz: float
    constraint_mhz: float

    @property
    def met(self):
        return self.achieved_mhz >= self.constraint_mhz

    def to_json(self):
        return {"clock": self.name, "achieved_mhz": round(self.achieved_mhz, 2),
                "constraint_mhz": round(self.constraint_mhz, 2), "met": self.met}


@dataclass(frozen=True)
class NextpnrReport:
    clocks: list            # [ClockTiming]
    utilization: dict       # cell type -> (used, available)
    critical_paths: list    # raw entries of the report


def _load_json(path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FormatError(f"{path}: missing (the tool did not write it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"{path}: not valid JSON ({error})") from None


def parse_nextpnr_report(path):
    """nextpnr ``--report`` JSON -> :class:`NextpnrReport`."""
    data = _load_json(path)
    if not isinstance(data, dict) or "utilization" not in data or "fmax" not in data:
        raise FormatError(f"{path}: not a nextpnr report (no 'utilization' / 'fmax')")
    try:
        clocks = [ClockTiming(_clock_name(name), float(entry["achieved"]),
                              float(entry["constraint"]))
                  for name, entry in sorted(data["fmax"].items())
                  if not _constant_net(name)]
        utilization = {cell: (int(entry["used"]), int(entry["available"]))
                       for cell, entry in data["utilization"].items()}
    except (KeyError, TypeError, ValueError) as error:
        raise FormatError(f"{path}: unexpected nextpnr report layout ({error!r})") from None
    paths = [path for path in data.get("critical_paths", [])
             if not _constant_net(path.get("from", "")) and not _constant_net(path.get("to", ""))]
    return NextpnrReport(clocks, utilization, paths)


def _clock_name(net):
    # nextpnr-ecp5 names a promoted clock '$glbnet$<net>'.
    return net.removeprefix("$glbnet$")


def _constant_net(name):
    # The clock input of a DSP used without registers is tied to ground; nextpnr then
    # times '$PACKER_GND_NET' as a clock of its own (with a default 12 MHz constraint).
    return "$PACKER_GND_NET" in name or "$PACKER_VCC_NET" in name


def path_of_clock(paths, clock):
    """The reported critical path from ``clock`` to ``clock`` (summaries or raw entries),
    else the first one; None if there are none."""
    for path in paths:
        ends = (path.get("from_clock", path.get("from", "")),
                path.get("to_clock", path.get("to", "")))
        if all(end.split(" ", 1)[-1] in (clock, f"$glbnet${clock}") for end in ends):
            return path
    return paths[0] if paths else None


def parse_utilisation_log(text):
    """The "Device utilisation" table of a nextpnr log -> {cell type: (used, available)}.

    nextpnr prints it after packing, before placement, so it is there also when the design
    does not fit. Returns {} if the log has no table.
    """
    table = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "Info: Device utilisation:":
            for row in lines[index + 1:]:
                match = _UTILISATION_ROW.match(row)
                if not match:
                    break
                table[match[1]] = (int(match[2]), int(match[3]))
    return table


def nextpnr_errors(text):
    """The ``ERROR:`` lines of a nextpnr (or Yosys) log."""
    return [line.strip() for line in text.splitlines() if line.startswith("ERROR:")]


def parse_yosys_stat(path):
    """Yosys ``stat -json`` -> {cell type: count} of the top module (after flattening)."""
    data = _load_json(path)
    try:
        if "design" in data and "num_cells_by_type" in data["design"]:
            cells = data["design"]["num_cells_by_type"]
        else:
            (module,) = data["modules"].values()
            cells = module["num_cells_by_type"]
    except (KeyError, TypeError, ValueError) as error:
        raise FormatError(f"{path}: not a Yosys 'stat -json' report ({error!r})") from None
    return {cell: int(count) for cell, count in cells.items() if not cell.startswith("$scope")}


def critical_path_summary(entry):
    """One ``critical_paths`` entry -> its clocks, total / logic / routing delay (ns), the
    first and last cell, and the source locations (file:line) its nets come from."""
    segments = entry.get("path", [])
    logic = sum(s["delay"] for s in segments if s.get("type") != "routing")
    routing = sum(s["delay"] for s in segments if s.get("type") == "routing")
    sources = []
    for segment in segments:
        for source in segment.get("sources", []):
            location = _short_source(source)
            if location and location not in sources:
                sources.append(location)
    cells = [s["from"]["cell"] for s in segments if s.get("type") == "logic"]
    return {
        "from_clock": entry.get("from", ""), "to_clock": entry.get("to", ""),
        "delay_ns": round(logic + routing, 3), "logic_ns": round(logic, 3),
        "routing_ns": round(routing, 3), "logic_levels": len(cells),
        "start": segments[0]["from"]["cell"] if segments else "",
        "end": segments[-1]["to"]["cell"] if segments else "",
        "sources": sources,
    }


def _short_source(source):
    # '/abs/path/hwgen_core.v:123.4-125.6' -> 'hwgen_core.v:123'; drop the tools' own techmap
    # files (/share/...), which say nothing about the design.
    if source.startswith("/share/"):
        return None
    match = re.match(r"(?:.*/)?([^/:]+):(\d+)", source)
    return f"{match[1]}:{match[2]}" if match else None


def tail(path, lines=25):
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])
