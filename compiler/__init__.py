"""The hwgen compiler: frontends, the IR, passes, the scheduler and the program writer.

Data flows one way: a model file is read by a frontend into the IR (:mod:`hwgen.compiler.ir`),
transformed by passes, scheduled onto a hardware configuration and written out as a
program (memory images) that the hardware generator in :mod:`hwgen` turns into Verilog.
"""
