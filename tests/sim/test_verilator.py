"""The Verilator runner, end to end: Amaranth -> Verilog -> Verilator -> cocotb, from pytest."""

from pathlib import Path

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.errors import ToolchainError
from hwgen.sim.verilator import VerilatorBuild

pytestmark = pytest.mark.verilator
HERE = Path(__file__).parent


class SaturatingCounter(wiring.Component):
    en: In(1)
    count: Out(3)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en & (self.count != 7)):
            m.d.sync += self.count.eq(self.count + 1)
        return m


@pytest.fixture(scope="module")
def counter_build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("counter")
    source = folder / "saturating_counter.v"
    source.write_text(verilog.convert(SaturatingCounter(), name="saturating_counter",
                                      emit_src=False))
    return VerilatorBuild([source], "saturating_counter", cache_dir=folder / "cache")


def test_passing_testbench(counter_build, tmp_path):
    result = counter_build.run("cocotb_saturating_counter", test_dir=tmp_path, module_dir=HERE,
                               testcase="counts_and_saturates")
    assert result.ok, result.log.read_text()
    assert result.passed == ["counts_and_saturates"]


def test_failing_testbench_is_reported(counter_build, tmp_path):
    result = counter_build.run("cocotb_saturating_counter", test_dir=tmp_path, module_dir=HERE,
                               testcase="wrong_expectation")
    assert not result.ok
    assert result.failed == ["wrong_expectation"]


def test_build_is_cached(counter_build):
    first = counter_build.build()
    marker = first / "hwgen-build.json"
    stamp = marker.stat().st_mtime_ns
    assert counter_build.build() == first
    assert marker.stat().st_mtime_ns == stamp


def test_broken_verilog_is_a_clear_error_and_leaves_no_cache(tmp_path):
    source = tmp_path / "broken.v"
    source.write_text("module broken(input clk); this is not verilog endmodule\n")
    build = VerilatorBuild([source], "broken", cache_dir=tmp_path / "cache")
    with pytest.raises(ToolchainError, match="Verilator build of broken failed"):
        build.build()
    assert not build.directory.exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
