"""The accelerator's Verilog stays compact: uniform memory initialisations become loops,
and a carry-save sum builds each vector once (Amaranth copies an expression at every use;
before this, one LIF unit of a generated design was 53,844 lines of Verilog)."""

import json
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed
from amaranth.lib.memory import Memory

from hwgen import toolchain
from hwgen.gateware.lif import carry_save_sum
from hwgen.gateware.verilog_output import fold_memory_inits, rom_images

UNIFORM = """\
  reg [3:0] mem [2:0];
  initial begin
    mem[0] = 4'h0;
    mem[1] = 4'h0;
    mem[2] = 4'h0;
  end
"""


def test_a_uniform_initialisation_becomes_a_loop():
    assert fold_memory_inits(UNIFORM) == """\
  reg [3:0] mem [2:0];
  initial begin : init_mem_loop
    integer init_mem;
    for (init_mem = 0; init_mem < 3; init_mem = init_mem + 1)
      mem[init_mem] = 4'h0;
  end
"""


def test_other_initialisations_stay():
    contents = UNIFORM.replace("mem[1] = 4'h0", "mem[1] = 4'h5")
    assert fold_memory_inits(contents) == contents
    shuffled = UNIFORM.replace("mem[1]", "mem[9]")
    assert fold_memory_inits(shuffled) == shuffled
    two = UNIFORM + UNIFORM.replace("mem", "other").replace("4'h0", "2'h3")
    assert fold_memory_inits(two).count("for (") == 2


def test_a_carry_save_sum_builds_each_vector_once():
    m = Module()
    a, b = Signal(signed(6)), Signal(signed(20))
    out = Signal(signed(48))
    terms = [(a << k, 1) for k in range(6)] + [(b << k, -1) for k in range(6)]
    m.d.comb += out.eq(carry_save_sum(m, terms, "sum"))
    text = verilog.convert(m, ports=[a, b, out], emit_src=False)
    # 12 terms: 12 term and vector signals, 10 levels of 3:2 compressors, one adder
    # (77,364 lines when every use of a vector rebuilt its expression)
    assert len(text.splitlines()) < 400


def word_init(name, values, width=12):
    return ("  initial begin\n"
            + "".join(f"    {name}[{k}] = {width}'h{v:03x};\n" for k, v in enumerate(values))
            + "  end\n")


def test_rom_images_move_word_initialisations_into_readmemh_files():
    values = list(range(100, 200))
    text = ("  reg [11:0] \\program  [99:0];\n" + word_init("\\program ", values)
            + "  reg [11:0] small [2:0];\n" + word_init("small", [1, 2, 3])
            + word_init("gap", [5] * 70).replace("gap[3] ", "gap[30] "))
    moved, images = rom_images(text, prefix="core_rom", least=64)
    assert images == {"core_rom0.hex": "".join(f"{v:03x}\n" for v in values)}
    assert '  initial $readmemh("core_rom0.hex", \\program );\n' in moved
    # small memories and words out of order stay as they were
    assert word_init("small", [1, 2, 3]) in moved and "gap[30] " in moved
    assert rom_images(moved) == (moved, {})


def memory_inits(tool, folder, text, images):
    """{memory: its initial words as Yosys elaborates ``text`` (and ``images``)}."""
    folder.mkdir()
    (folder / "core.v").write_text(text)
    for name, contents in images.items():
        (folder / name).write_text(contents)
    subprocess.run([tool, "-q", "-p", "read_verilog core.v; proc; opt_clean; "
                    "memory_collect; write_json out.json"], cwd=folder, check=True)
    module = next(iter(json.loads((folder / "out.json").read_text())["modules"].values()))
    return {cell["parameters"]["MEMID"]: cell["parameters"]["INIT"]
            for cell in module["cells"].values() if cell["type"].startswith("$mem")}


def test_yosys_reads_the_same_rom_contents_from_the_files(tmp_path):
    try:
        tool = toolchain.fpga_tool("yosys")
    except Exception as error:                          # pragma: no cover
        pytest.skip(f"no Yosys: {error}")
    rng = np.random.default_rng(3)
    m = Module()
    addr, data = Signal(7), Signal(20)
    m.submodules.rom = rom = Memory(shape=20, depth=100,
                                    init=rng.integers(0, 1 << 20, 100).tolist())
    read = rom.read_port(domain="comb")
    m.d.comb += [read.addr.eq(addr), data.eq(read.data)]
    text = verilog.convert(m, ports=[addr, data], emit_src=False)
    moved, images = rom_images(text)
    assert len(images) == 1
    inline = memory_inits(tool, tmp_path / "inline", text, {})
    assert memory_inits(tool, tmp_path / "files", moved, images) == inline
    assert len(inline) == 1 and set(next(iter(inline.values()))) != {"0"}
