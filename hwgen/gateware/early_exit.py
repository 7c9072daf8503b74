"""The early-exit check: the output layer's spike counts, and the rule of docs/semantics.md
section 8 (:mod:`hwgen.compiler.ir.early_exit`) evaluated after a time chunk."""

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.compiler.ir.early_exit import check_rule


class ExitCheck(wiring.Component):
    """Counts each output neuron's spikes and decides whether the inference may stop.

    Ports: ``clear`` (an inference begins) zeroes the counts; ``add`` / ``slot`` / ``word``:
    a result word written for output ``slot`` (its set bits are added to that count);
    ``check`` (pulse) with ``remaining`` (steps still to run) starts a decision; ``busy``
    while deciding; ``exit`` (valid once ``busy`` falls) says whether to stop.

    Latency: ``busy`` is high for 2 x outputs + 2 cycles from ``check``: one pass finds the
    leader (most spikes, lowest index first), one compares every other class with it, one
    cycle registers the decision.
    Throughput: one result word per cycle is counted. Resources: one count register of
    bits_for(T + 1) per output neuron, a popcount of the word, two comparators and a
    scan counter.
    """

    def __init__(self, outputs, timesteps, lanes, rule):
        rule = check_rule(rule)
        if rule is None:
            raise ValueError("ExitCheck: the rule is 'off'; generate no exit check")
        if outputs < 1:
            raise ValueError(f"ExitCheck: {outputs} outputs; at least 1")
        if lanes < 1 or timesteps % lanes:
            raise ValueError(f"ExitCheck: lanes {lanes} must divide timesteps {timesteps}")
        self.outputs, self.timesteps, self.lanes, self.rule = outputs, timesteps, lanes, rule
        super().__init__({
            "clear": In(1),
            "add": In(1),
            "slot": In(range(outputs)),
            "word": In(lanes),
            "check": In(1),
            "remaining": In(range(timesteps + 1)),
            "busy": Out(1),
            "exit": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        N, T = self.outputs, self.timesteps
        counts = Array(Signal(range(T + 1), name=f"count_{k}") for k in range(N))
        spikes = sum(self.word[j] for j in range(self.lanes))
        with m.If(self.clear):
            m.d.sync += [count.eq(0) for count in counts]
        with m.Elif(self.add):
            m.d.sync += counts[self.slot].eq(counts[self.slot] + spikes)

        index = Signal(range(N + 1))
        leader = Signal(range(N))
        lead = Signal(range(T + 1))
        remaining = Signal(range(T + 1))
        safe = Signal()
        count = counts[index[:len(leader)] if N > 1 else 0]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.busy.eq(self.check)        # busy from the request on
                with m.If(self.check):
                    m.d.sync += [index.eq(0), leader.eq(0), lead.eq(0), safe.eq(1),
                                 remaining.eq(self.remaining)]
                    m.next = "LEAD"
            with m.State("LEAD"):
                m.d.comb += self.busy.eq(1)
                # strictly more: among equal counts the lowest index stays the leader
                with m.If(count > lead):
                    m.d.sync += [leader.eq(index), lead.eq(count)]
                m.d.sync += index.eq(index + 1)
                with m.If(index == N - 1):
                    m.d.sync += index.eq(0)
                    m.next = "COMPARE"
            with m.State("COMPARE"):
                m.d.comb += self.busy.eq(1)
                if self.rule == "certain":
                    # b < a must stay strictly behind (a tie would go to b), b > a may tie
                    bound = count + remaining + (index < leader)
                    ok = bound <= lead
                else:
                    ok = lead >= count + self.rule
                with m.If((index != leader) & ~ok):
                    m.d.sync += safe.eq(0)
                m.d.sync += index.eq(index + 1)
                with m.If(index == N - 1):
                    m.next = "DECIDED"
            with m.State("DECIDED"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += self.exit.eq(safe)
                m.next = "IDLE"
        return m
