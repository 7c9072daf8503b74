"""Bit-width limits, each defined once: the IR, the hardware configuration, the quantizer,
the CLI's options and the gateware all import them from here.

The IR allows wider accumulators than the accelerator has, so that the integer reference
can run (and report on) models the hardware cannot hold; ``hwgen compile`` refuses such a
model by naming the op and both numbers (scheduler/widths.py).
"""

MIN_BITS = 2
"""The narrowest signed weight, accumulator or membrane: a sign and one bit."""
MAX_WEIGHT_BITS = 16
"""Signed weights, in the IR and in the accelerator's weight memories."""
MAX_V_BITS = 32
"""Signed membranes, in the IR and in the accelerator's LIF units."""
MAX_ACC_BITS = 32
"""Signed accumulators of the accelerator's TPPEs."""
MAX_IR_ACC_BITS = 48
"""Signed sums in the IR: the reference computes them in float64, exact below 2**53."""
