"""The accelerator's Verilog text, made compact where Amaranth's is needlessly long.

Amaranth (through Yosys's ``write_verilog``) initialises a memory with one statement per
word, even when every word starts at the same value: a spike buffer of 40,960 words became
40,960 lines per TPPE, most of the Verilog of some designs, and minutes of Verilator time
and gigabytes of its memory. :func:`fold_memory_inits` rewrites such a block as one
``for`` loop, which Verilator and Yosys (the FPGA flow reads this same file) both unroll to
the same initial contents. Memories with real contents (programs, weights) are left as
they are in the Verilog a user gets.

For synthesis, :func:`rom_images` moves those contents into ``$readmemh`` files: Yosys (in
WebAssembly) reads a word-by-word ``initial`` block slowly, and @digits_transformer's
140,000 lines of program and weight words did not get through its Verilog frontend in half
an hour, where reading the same words from files takes seconds.
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


# An ``initial`` block of one statement a word, in hex, as write_verilog prints it; each
# line is checked to be words 0, 1, ... of one memory (:func:`rom_images`).
_WORD_INIT = re.compile(
    r"^  initial begin\n"
    r"(?P<body>(?:    (?:\\\S+ |[A-Za-z_][\w$]*)\[\d+\] = \d+'h[0-9a-fA-F]+;\n)+)"
    r"  end\n", re.M)
_WORD = re.compile(r"    (?P<name>\\\S+ |[A-Za-z_][\w$]*)\[(?P<index>\d+)\] = "
                   r"\d+'h(?P<value>[0-9a-fA-F]+);")


def rom_images(text, prefix="rom", least=64):
    """(``text`` with every memory initialised word by word, words 0, 1, ... of at least
    ``least`` words, loaded by ``$readmemh`` instead, {file name: file contents}): the
    same initial contents, one hex word a line, in files named ``<prefix><n>.hex`` that
    the tool must find in its working directory."""
    images = {}

    def load(match):
        lines = match["body"].splitlines()
        words = [_WORD.fullmatch(line) for line in lines]
        name = words[0]["name"]
        if len(words) < least or any(
                word["name"] != name or int(word["index"]) != k for k, word in enumerate(words)):
            return match[0]
        file = f"{prefix}{len(images)}.hex"
        images[file] = "".join(word["value"] + "\n" for word in words)
        return f'  initial $readmemh("{file}", {name});\n'
    return _WORD_INIT.sub(load, text), images
