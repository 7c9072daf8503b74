"""The accelerator's Verilog stays compact: uniform memory initialisations become loops,
and a carry-save sum builds each vector once (Amaranth copies an expression at every use;
before this, one LIF unit of a generated design was 53,844 lines of Verilog)."""

from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed

from hwgen.gateware.lif import carry_save_sum
from hwgen.gateware.verilog_output import fold_memory_inits

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
