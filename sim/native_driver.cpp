// Native co-simulation driver for the generated core (module hwgen_core, Verilated with
// --prefix Vcore). hwgen.sim.native builds it with the user's Verilog unchanged and runs it.
//
// It drives the core through the interface of docs/architecture.md cycle for cycle as the
// cocotb testbench (hwgen.sim.testbench) does, and records the same things: every trace
// event (sample, layer, slot, word, cycle), the cycle each layer began, the core's cycle
// counter, the load cycles and the result words. The clock loop runs here, in C++, so the
// simulation runs at the Verilated model's own speed; Python reads the recording once,
// at the end. Judging stays in Python (hwgen.sim.compare).
//
// Usage: hwgen_sim JOB OBSERVED [PROGRESS|-] [VCD|-]
//        hwgen_sim --bare JOB OBSERVED  (the same run, trace not read: the model's own speed
//                                        on the workload, for benchmarks/cosim_speed.py)
//        hwgen_sim --clock N            (reset, then N clock cycles of an idle core)
// File formats (little-endian int64 throughout) are written and read by hwgen.sim.native.

#include "Vcore.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

// Verilator escapes the "__" of Amaranth's flattened port names (inputs__valid) as
// "___05F" in C++ member names.

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr uint64_t JOB_MAGIC = 0x32424f4a4e475748ULL;       // "HWGNJOB2"
constexpr uint64_t OBSERVED_MAGIC = 0x3253424f4e475748ULL;  // "HWGNOBS2"
constexpr int MAX_CHUNKS = 64;                              // ports up to 2048 bits

// Ports of up to 64 bits are integers in the Verilated class, wider ones VlWide arrays of
// 32-bit words; overloads pick the right access at compile time.
template <typename T>
inline void load_port(const T& port, uint32_t* out) {
    const uint64_t value = port;
    out[0] = static_cast<uint32_t>(value);
    out[1] = static_cast<uint32_t>(value >> 32);
}
template <std::size_t N>
inline void load_port(const VlWide<N>& port, uint32_t* out) {
    static_assert(N <= MAX_CHUNKS, "port wider than the driver's buffer");
    for (std::size_t i = 0; i < N; ++i) out[i] = port[i];
}
template <typename T>
inline uint64_t read_port(const T& port) {
    return static_cast<uint64_t>(port);
}
template <std::size_t N>
inline uint64_t read_port(const VlWide<N>& port) {
    // Callers check (from the job) that the value fits in 64 bits.
    return static_cast<uint64_t>(port[0]) | (static_cast<uint64_t>(port[1]) << 32);
}
template <typename T>
inline void store_port(T& port, uint64_t value) {
    port = static_cast<T>(value);
}
template <std::size_t N>
inline void store_port(VlWide<N>& port, uint64_t value) {
    for (std::size_t i = 0; i < N; ++i) port[i] = 0;
    port[0] = static_cast<uint32_t>(value);
    if (N > 1) port[1] = static_cast<uint32_t>(value >> 32);
}

uint64_t bits(const uint32_t* chunks, int offset, int width) {
    uint64_t value = 0;
    for (int i = 0; i < width; ++i) {
        const int bit = offset + i;
        value |= static_cast<uint64_t>((chunks[bit >> 5] >> (bit & 31)) & 1u) << i;
    }
    return value;
}

[[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "hwgen_sim: %s\n", message.c_str());
    std::fflush(stderr);
    std::exit(2);
}

struct Job {
    int64_t samples, words_per_sample, outputs, timeout, layers;
    // lane 0's trace fields; lane k's are k * lane_stride bits further
    int layer_offset, layer_width, slot_offset, slot_width, word_offset, word_width;
    int valid_offset, valid_width, lanes, lane_stride;
    std::vector<int64_t> words;
};

Job read_job(const char* path) {
    FILE* file = std::fopen(path, "rb");
    if (!file) fail(std::string(path) + ": cannot open the job file");
    int64_t header[16];
    if (std::fread(header, sizeof(int64_t), 16, file) != 16 ||
        static_cast<uint64_t>(header[0]) != JOB_MAGIC)
        fail(std::string(path) + ": not a job file of this driver");
    Job job;
    job.samples = header[1];
    job.words_per_sample = header[2];
    job.outputs = header[3];
    job.timeout = header[4];
    job.layers = header[5];
    job.layer_offset = static_cast<int>(header[6]);
    job.layer_width = static_cast<int>(header[7]);
    job.slot_offset = static_cast<int>(header[8]);
    job.slot_width = static_cast<int>(header[9]);
    job.word_offset = static_cast<int>(header[10]);
    job.word_width = static_cast<int>(header[11]);
    job.valid_offset = static_cast<int>(header[12]);
    job.valid_width = static_cast<int>(header[13]);
    job.lanes = static_cast<int>(header[14]);
    job.lane_stride = static_cast<int>(header[15]);
    const std::size_t count = static_cast<std::size_t>(job.samples * job.words_per_sample);
    job.words.resize(count);
    if (std::fread(job.words.data(), sizeof(int64_t), count, file) != count)
        fail(std::string(path) + ": the job file is truncated");
    std::fclose(file);
    return job;
}

class Simulation {
public:
    explicit Simulation(const char* vcd_path) : context(new VerilatedContext), top(nullptr) {
#if VM_TRACE
        if (vcd_path) context->traceEverOn(true);
#endif
        top.reset(new Vcore(context.get(), "hwgen_core"));
#if VM_TRACE
        if (vcd_path) {
            vcd.reset(new VerilatedVcdC);
            top->trace(vcd.get(), 99);
            vcd->open(vcd_path);
        }
#else
        if (vcd_path) fail("waves asked for, but this simulator was built without --trace");
#endif
        top->clk = 0;
        top->rst = 0;
        top->start = 0;
        top->inputs___05Fvalid = 0;
        top->results___05Fready = 0;
        store_port(top->inputs___05Fpayload, 0);
        top->eval();
    }

    ~Simulation() {
        top->final();
#if VM_TRACE
        if (vcd) vcd->close();
#endif
    }

    // The testbench's writes of this cycle are made; let the combinational logic settle
    // (cocotb's ReadOnly phase).
    void settle() {
        top->clk = 0;
        top->eval();
    }

    // One rising clock edge (cocotb's RisingEdge). The low phase is dumped just before it,
    // so a waveform shows the inputs the edge sampled.
    void edge() {
        settle();
#if VM_TRACE
        if (vcd) vcd->dump(context->time());
#endif
        context->timeInc(5);
        top->clk = 1;
        top->eval();
#if VM_TRACE
        if (vcd) vcd->dump(context->time());
#endif
        context->timeInc(5);
        ++edges;
    }

    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vcore> top;
#if VM_TRACE
    std::unique_ptr<VerilatedVcdC> vcd;
#endif
    int64_t edges = 0;
};

void reset(Simulation& sim) {
    sim.top->rst = 1;
    for (int i = 0; i < 3; ++i) sim.edge();
    sim.top->rst = 0;
    sim.edge();
}

struct Recording {
    std::vector<int64_t> events;        // rows of (sample, layer, slot, word, cycle)
    std::vector<int64_t> cycles, steps, load_cycles, layer_bounds, results;
};

void run_sample(Simulation& sim, const Job& job, int64_t sample, Recording& out, bool trace) {
    Vcore& top = *sim.top;
    const int64_t* words = job.words.data() + sample * job.words_per_sample;
    for (int64_t i = 0; i < job.words_per_sample; ++i) {
        store_port(top.inputs___05Fpayload, static_cast<uint64_t>(words[i]));
        top.inputs___05Fvalid = 1;
        sim.settle();
        for (int64_t waited = 0; !top.inputs___05Fready; ++waited) {
            if (waited > job.timeout)
                fail("sample " + std::to_string(sample) + ": input word " + std::to_string(i) +
                     " not accepted after " + std::to_string(job.timeout) + " cycles");
            sim.edge();
            sim.settle();
        }
        sim.edge();
        top.inputs___05Fvalid = 0;
    }
    out.load_cycles.push_back(job.words_per_sample);

    top.start = 1;
    sim.edge();
    top.start = 0;

    uint32_t payload[MAX_CHUNKS] = {0};
    std::vector<int64_t> starts;
    int64_t layer = -1;
    for (int64_t cycle = 0;; ++cycle) {
        sim.settle();
        if (top.busy) {
            if (trace) {
                load_port(top.trace___05Fpayload, payload);
                const int64_t current =
                    static_cast<int64_t>(bits(payload, job.layer_offset, job.layer_width));
                if (current != layer) {
                    layer = current;
                    starts.push_back(cycle);
                }
                if (top.trace___05Fvalid) {
                    for (int lane = 0; lane < job.lanes; ++lane) {
                        const int shift = lane * job.lane_stride;
                        if (!bits(payload, job.valid_offset + shift, job.valid_width)) continue;
                        const int64_t event[5] = {
                            sample, layer,
                            static_cast<int64_t>(
                                bits(payload, job.slot_offset + shift, job.slot_width)),
                            static_cast<int64_t>(
                                bits(payload, job.word_offset + shift, job.word_width)),
                            cycle};
                        out.events.insert(out.events.end(), event, event + 5);
                    }
                }
            }
        } else if (top.done) {
            starts.push_back(cycle);    // the last layer's end
            break;
        }
        if (cycle + 1 > job.timeout)
            fail("sample " + std::to_string(sample) + ": no done after " +
                 std::to_string(job.timeout) + " cycles: the core hangs");
        sim.edge();
    }
    out.cycles.push_back(static_cast<int64_t>(read_port(top.cycles)));
    out.steps.push_back(static_cast<int64_t>(read_port(top.steps)));
    starts.resize(job.layers + 1, -1);
    out.layer_bounds.insert(out.layer_bounds.end(), starts.begin(), starts.end());

    sim.edge();
    top.results___05Fready = 1;
    int64_t received = 0;
    for (int64_t waited = 0; received < job.outputs; ++waited) {
        if (waited > job.timeout + job.outputs)
            fail("sample " + std::to_string(sample) + ": only " + std::to_string(received) +
                 " of " + std::to_string(job.outputs) + " result words arrived");
        sim.settle();
        if (top.results___05Fvalid) {
            out.results.push_back(static_cast<int64_t>(read_port(top.results___05Fpayload)));
            ++received;
        }
        sim.edge();
    }
    top.results___05Fready = 0;
}

void write_all(FILE* file, const std::vector<int64_t>& values) {
    if (!values.empty() &&
        std::fwrite(values.data(), sizeof(int64_t), values.size(), file) != values.size())
        fail("cannot write the recording");
}

void write_progress(const char* path, int64_t done) {
    // Written to a new name and renamed, so a reader never sees a half-written number.
    const std::string staging = std::string(path) + ".tmp";
    FILE* file = std::fopen(staging.c_str(), "w");
    if (!file) return;
    std::fprintf(file, "%lld", static_cast<long long>(done));
    std::fclose(file);
    std::rename(staging.c_str(), path);
}

int clock_only(int64_t cycles) {
    Simulation sim(nullptr);
    reset(sim);
    for (int64_t i = 0; i < cycles; ++i) sim.edge();
    std::printf("%lld\n", static_cast<long long>(sim.edges));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // hwgen starts this process with SIGINT and SIGTERM blocked (so that it is on record,
    // to be stopped, before an interruption can unwind hwgen: sim/native.py), and a
    // blocked mask is inherited: take the signals again.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (argc == 3 && std::strcmp(argv[1], "--clock") == 0)
        return clock_only(std::atoll(argv[2]));
    const bool trace = !(argc > 1 && std::strcmp(argv[1], "--bare") == 0);
    if (!trace) {
        --argc;
        ++argv;
    }
    if (argc < 3 || argc > 5) fail("usage: hwgen_sim [--bare] JOB OBSERVED [PROGRESS|-] [VCD|-]");
    const char* progress = argc > 3 && std::strcmp(argv[3], "-") != 0 ? argv[3] : nullptr;
    const char* vcd = argc > 4 && std::strcmp(argv[4], "-") != 0 ? argv[4] : nullptr;

    const Job job = read_job(argv[1]);
    Recording recording;
    {
        Simulation sim(vcd);
        reset(sim);
        for (int64_t sample = 0; sample < job.samples; ++sample) {
            run_sample(sim, job, sample, recording, trace);
            if (progress) write_progress(progress, sample + 1);
        }
        FILE* file = std::fopen(argv[2], "wb");
        if (!file) fail(std::string(argv[2]) + ": cannot write the recording");
        const int64_t header[8] = {static_cast<int64_t>(OBSERVED_MAGIC), job.samples,
                                   job.layers, job.outputs,
                                   static_cast<int64_t>(recording.events.size() / 5),
                                   sim.edges, 0, 0};
        if (std::fwrite(header, sizeof(int64_t), 8, file) != 8)
            fail("cannot write the recording");
        write_all(file, recording.cycles);
        write_all(file, recording.steps);
        write_all(file, recording.load_cycles);
        write_all(file, recording.layer_bounds);
        write_all(file, recording.results);
        write_all(file, recording.events);
        if (std::fclose(file) != 0) fail("cannot write the recording");
    }
    return 0;
}
