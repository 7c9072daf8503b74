"""The accelerator's Verilog text, made compact where Amaranth's is needlessly long.

Amaranth (through Yosys's ``write_verilog``) initialises a memory with one statement per
word, even when every word starts at the same value: a spike buffer of 40,960 words became
40,960 lines per TPPE, most of the Verilog of some designs, and minutes of Verilator time
and gigabytes of its memory. :func:`fold_memory_inits` rewrites such a block as one
``for`` loop, which Verilator and Yosys (the FPGA flow reads this same file) both unroll to
the same initial contents. Memories with real contents (programs, weights) are left as
they are.
"""

import re

# An ``initial`` block that sets words 0, 1, ... of one memory to one constant, as
# write_verilog prints it.
_UNIFORM_INIT = re.compile(
    r"^  initial begin\n"
    r"(?P<body>    (?P<name>[\w$.\\]+)\[0\] = (?P<value>\d+'[bdh][0-9a-fA-F]+);\n"
    r"(?:    (?P=name)\[\d+\] = (?P=value);\n)*)"
    r"  end\n", re.M)


def fold_memory_inits(text):
    """``text`` with every uniform memory initialisation as a loop (see the module doc)."""
    def fold(match):
        name, value, body = match["name"], match["value"], match["body"]
        depth = body.count("\n")
        if body != "".join(f"    {name}[{k}] = {value};\n" for k in range(depth)):
            return match[0]                 # not words 0..depth-1 in order: leave it
        index = "init_" + re.sub(r"\W", "_", name).strip("_")
        return (f"  initial begin : {index}_loop\n"
                f"    integer {index};\n"
                f"    for ({index} = 0; {index} < {depth}; {index} = {index} + 1)\n"
                f"      {name}[{index}] = {value};\n"
                f"  end\n")
    return _UNIFORM_INIT.sub(fold, text)
