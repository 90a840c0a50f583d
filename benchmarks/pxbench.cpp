// pxbench: times pixel programs on Vulkan devices through every execution path and kernel variant
// they can run (the GPU interpreter; the scheduled kernels, portable and int-dot), with GPU
// timestamps per labelled dispatch, then verifies every result against the reference interpreter
// (timed too). Images are uploaded once and the recorded program is resubmitted for every sample;
// samples are taken until their spread is under a target or a time limit passes, warm or with the
// caches flushed before each. `pxbench compare a.json b.json ...` sets runs side by side
// (benchmarks/compare.hpp). docs/BENCHMARKS.md describes the workloads, the statistics and the
// JSON; benchmarks/RESULTS.md holds measured figures.
#include "compare.hpp"
#include "svg_chart.hpp"

#include "cartridge_bench.hpp"
#include "pxvm/program.hpp"
#include "pxvm/program_writer.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/verification.hpp"
#include "pxvm/version.hpp"
#include "pxvm/vulkan/runtime.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include "cli_support.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using px::Image;
using px::ProgramWriter;
using Clock = std::chrono::steady_clock;

constexpr int SCHEMA = 2;

/// One program to time, with what one run computes (for TOPS or GB/s).
struct Workload {
    std::string name;  ///< "matmul i8 1024x1024x1024"
    std::string label; ///< the instruction whose dispatch times are the figure ("matmul")
    Image image;
    double ops = 0;          ///< integer operations of one run (2 per multiply-add)
    double bytes = 0;        ///< bytes one run must read and write at least
    bool interpreter = true; ///< also time the GPU interpreter (too slow for the largest)
    bool copy = false;       ///< the bandwidth ceiling of this device (a u8 relu is a copy)
    double instructions = 1; ///< instructions timed (for the per-instruction figure)
    /// Rows an in-place instruction changes: rewritten from `image` before every run, so that
    /// every run computes the same result (the rewrite is not timed).
    std::optional<px::vk::Region> restore = std::nullopt;
    bool reference = false; ///< one of the seeds' table: --reference times the CPU reference too
};

void fill_random(Image& image, std::uint32_t first_row, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uint8_t* p = image.data() + std::size_t(first_row) * image.width() * 4;
    std::uint8_t* end = image.data() + image.size_bytes();
    for (; p + 4 <= end; p += 4) {
        const std::uint32_t v = rng();
        std::memcpy(p, &v, 4);
    }
}

std::string shape(std::uint32_t m, std::uint32_t n, std::uint32_t k) {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
}

std::string dtype(std::uint32_t d) {
    return std::string(px::dtype_name(d));
}

/// C (M x N i32) = A (M x K) . B (N x K)^T, A and B side by side from row 1, C below them.
Workload matmul(std::uint32_t m, std::uint32_t n, std::uint32_t k, std::uint32_t type,
                bool interpreter = false) {
    const std::uint32_t kp = (k + 3) / 4;
    const std::uint32_t width = std::max({2 * kp, n, 64u});
    ProgramWriter w(width, 1 + std::max(m, n) + m);
    fill_random(w.image, 1, m * 7 + n * 3 + k + type);
    w.tensor(1, type, 0, 1, m, k)
        .tensor(2, type, kp, 1, n, k)
        .tensor(3, px::DTYPE_I32, 0, 1 + std::max(m, n), m, n)
        .matmul(3, 1, 2)
        .halt();
    return {"matmul " + dtype(type) + " " + shape(m, n, k),
            "matmul",
            std::move(w.image),
            2.0 * m * n * k,
            double(m) * k + double(n) * k + 4.0 * m * n,
            interpreter,
            false};
}

/// out = max(in, 0) over `mib` MiB of `type` into another `mib` MiB; for u8 a plain copy.
Workload relu(std::uint32_t mib, std::uint32_t type, bool interpreter = false) {
    const std::uint32_t width = 8192, cols = 4 * width / px::dtype_size(type);
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / (4ull * width));
    ProgramWriter w(width, 1 + 2 * rows);
    fill_random(w.image, 1, mib + type);
    w.tensor(1, type, 0, 1, rows, cols).tensor(2, type, 0, 1 + rows, rows, cols).relu(2, 1).halt();
    const bool copy = type == px::DTYPE_U8;
    return {(copy ? "copy (relu u8) " : "relu " + dtype(type) + " ") + std::to_string(mib) +
                " MiB in + out",
            "relu",
            std::move(w.image),
            double(rows) * cols,
            2.0 * rows * width * 4,
            interpreter,
            copy};
}

/// argmax of each row of `mib` MiB of i8 (rows of 32768) into i32.
Workload argmax(std::uint32_t mib) {
    const std::uint32_t width = 8192, cols = 4 * width;
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / cols);
    ProgramWriter w(width, 1 + 2 * rows); // the output takes a row of the image per row
    fill_random(w.image, 1, mib * 3);
    w.tensor(1, px::DTYPE_I8, 0, 1, rows, cols)
        .tensor(2, px::DTYPE_I32, 0, 1 + rows, rows, 1)
        .argmax(2, 1)
        .halt();
    return {"argmax i8 " + std::to_string(mib) + " MiB",
            "argmax",
            std::move(w.image),
            double(rows) * cols,
            double(rows) * cols,
            false,
            false};
}

/// dot of two i8 tensors of `mib` MiB each.
Workload dot(std::uint32_t mib) {
    const std::uint32_t width = 8192, cols = 4 * width;
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / cols);
    ProgramWriter w(width, 2 + 2 * rows);
    fill_random(w.image, 1, mib * 5);
    w.tensor(1, px::DTYPE_I8, 0, 1, rows, cols)
        .tensor(2, px::DTYPE_I8, 0, 1 + rows, rows, cols)
        .tensor(3, px::DTYPE_I32, 0, 1 + 2 * rows, 1, 1)
        .dot(3, 1, 2)
        .halt();
    return {"dot i8 2 x " + std::to_string(mib) + " MiB",
            "dot",
            std::move(w.image),
            2.0 * rows * cols,
            2.0 * rows * cols,
            false,
            false};
}

/// requant of `mib` MiB of i32 into i8.
Workload requant(std::uint32_t mib) {
    const std::uint32_t width = 8192;
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / (4ull * width));
    ProgramWriter w(width, 1 + 2 * rows);
    fill_random(w.image, 1, mib * 7);
    w.tensor(1, px::DTYPE_I32, 0, 1, rows, width)
        .tensor(2, px::DTYPE_I8, 0, 1 + rows, rows, width)
        .requant(2, 1, 1518500250, 40, -3)
        .halt();
    return {"requant i32 -> i8 " + std::to_string(mib) + " MiB",
            "requant",
            std::move(w.image),
            double(rows) * width,
            double(rows) * width * 5,
            false,
            false};
}

/// add_bias in place over `mib` MiB of i32.
Workload add_bias(std::uint32_t mib) {
    const std::uint32_t width = 8192;
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / (4ull * width));
    ProgramWriter w(width, 2 + rows);
    fill_random(w.image, 1, mib * 11);
    w.tensor(1, px::DTYPE_I32, 0, 1, rows, width)
        .tensor(2, px::DTYPE_I32, 0, 1 + rows, 1, width)
        .add_bias(1, 2)
        .halt();
    return {"add_bias i32 " + std::to_string(mib) + " MiB",
            "add_bias",
            std::move(w.image),
            double(rows) * width,
            8.0 * rows * width,
            false,
            false,
            1,
            px::vk::Region{0, 1, width, rows}};
}

/// rmsnorm of `mib` MiB of i32 rows of `d` into i8 (the transformer's normalisation).
Workload rmsnorm(std::uint32_t mib, std::uint32_t d) {
    const std::uint32_t width = std::max(d, 64u);
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / (4ull * d));
    ProgramWriter w(width, 2 + 2 * rows);
    fill_random(w.image, 1, mib * 13 + d);
    w.tensor(1, px::DTYPE_I32, 0, 1, rows, d)
        .tensor(2, px::DTYPE_I32, 0, 1 + rows, 1, d)
        .tensor(3, px::DTYPE_I8, 0, 2 + rows, rows, d)
        .rmsnorm(3, 1, 2, 20)
        .halt();
    return {"rmsnorm i32 -> i8 " + std::to_string(mib) + " MiB, rows of " + std::to_string(d),
            "rmsnorm",
            std::move(w.image),
            3.0 * rows * d,
            5.0 * rows * d,
            false,
            false};
}

/// add (the saturating residual add) of `mib` MiB of i32 into as much.
Workload add(std::uint32_t mib) {
    const std::uint32_t width = 8192;
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / (4ull * width));
    ProgramWriter w(width, 1 + 2 * rows);
    fill_random(w.image, 1, mib * 17);
    w.tensor(1, px::DTYPE_I32, 0, 1, rows, width)
        .tensor(2, px::DTYPE_I32, 0, 1 + rows, rows, width)
        .add(1, 2)
        .halt();
    return {"add i32 " + std::to_string(mib) + " MiB",
            "add",
            std::move(w.image),
            double(rows) * width,
            12.0 * rows * width,
            false,
            false,
            1,
            px::vk::Region{0, 1, width, rows}};
}

/// lut (a 256-entry table, GELU in the transformer) over `mib` MiB of i8 into as much.
Workload lut(std::uint32_t mib) {
    const std::uint32_t width = 8192, cols = 4 * width;
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / cols);
    ProgramWriter w(width, 2 + 2 * rows);
    fill_random(w.image, 1, mib * 19);
    w.tensor(1, px::DTYPE_I8, 0, 1, rows, cols)
        .tensor(2, px::DTYPE_I8, 0, 1 + rows, 1, 256)
        .tensor(3, px::DTYPE_I8, 0, 2 + rows, rows, cols)
        .lut(3, 1, 2)
        .halt();
    return {"lut i8 " + std::to_string(mib) + " MiB in + out",
            "lut",
            std::move(w.image),
            double(rows) * cols,
            2.0 * rows * cols,
            false,
            false};
}

/// One attention step of `batch` sequences, each at the last of `positions` positions, width d
/// in `heads` heads (the transformer cartridge's shape is d 384, 6 heads, 256 positions): the
/// keys and values of every position are read once per row.
Workload attend(std::uint32_t batch, std::uint32_t d, std::uint32_t heads,
                std::uint32_t positions) {
    const std::uint32_t cache_words = batch * 2 * d / 4;
    ProgramWriter w(std::max(cache_words, 64u), 1 + positions + 3 * batch);
    fill_random(w.image, 1, batch + d + positions);
    w.tensor(1, px::DTYPE_I8, 0, 1, positions, batch * 2 * d)
        .tensor(2, px::DTYPE_I8, 0, 1 + positions, batch, d)
        .tensor(3, px::DTYPE_I32, 0, 1 + positions + batch, batch, 2)
        .tensor(4, px::DTYPE_I8, 0, 1 + positions + 2 * batch, batch, d)
        .attend(4, 2, 1, 3, std::uint8_t(heads), 3000, 20)
        .halt();
    std::vector<std::int64_t> where;
    for (std::uint32_t b = 0; b < batch; ++b) {
        where.push_back(b);
        where.push_back(positions - 1);
    }
    w.fill(3, where);
    return {"attend batch " + std::to_string(batch) + ", d " + std::to_string(d) + ", " +
                std::to_string(heads) + " heads, position " + std::to_string(positions - 1),
            "attend",
            std::move(w.image),
            4.0 * batch * positions * d,
            2.0 * batch * positions * d + 2.0 * batch * d,
            false,
            false};
}

/// `count` seed dot_rgb instructions over two full rows of `width` pixels (one dispatch on the
/// kernels path: they are independent).
Workload small_dots(std::uint32_t count, std::uint32_t width) {
    ProgramWriter w(std::max(width, count + 1), 4);
    fill_random(w.image, 1, count);
    for (std::uint32_t x = 0; x < w.image.width(); ++x)
        for (std::uint32_t y : {1u, 2u}) {
            px::Pixel p = w.image.pixel(x, y);
            p.r |= 1; // never 0: every dot runs over the whole row
            w.image.set_pixel(x, y, p);
        }
    for (std::uint32_t i = 0; i < count; ++i)
        w.dot_rgb(1, 2, 3);
    if (w.pc < w.image.width()) w.halt(); // else it ends at the end of row 0
    const double ops = 2.0 * count * w.image.width();
    return {std::to_string(count) + " dot_rgb of " + std::to_string(w.image.width()) + " pixels",
            "dot_rgb",
            std::move(w.image),
            ops,
            0,
            true,
            false,
            double(count)};
}

/// `count` relus of 16 i8 elements in a chain: one dispatch each, so the figure is the cost of a
/// dispatch and its barrier.
Workload small_relus(std::uint32_t count) {
    ProgramWriter w(std::max(3 * 2 + count + 2, 16u), 3); // + halt + the fault pixel
    fill_random(w.image, 1, count);
    w.tensor(1, px::DTYPE_I8, 0, 1, 1, 16).tensor(2, px::DTYPE_I8, 0, 2, 1, 16);
    for (std::uint32_t i = 0; i < count; ++i)
        i % 2 ? w.relu(1, 2) : w.relu(2, 1);
    w.halt();
    return {std::to_string(count) + " chained relus of 16 i8",
            "relu",
            std::move(w.image),
            16.0 * count,
            0,
            true,
            false,
            double(count)};
}

/// The preset's workloads, made one at a time (the largest images are half a gigabyte).
std::vector<std::function<Workload()>> workloads(const std::string& preset) {
    std::vector<std::function<Workload()>> list;
    if (preset == "smoke") {
        list.push_back([] { return relu(1, px::DTYPE_U8, true); });
        list.push_back([] { return matmul(128, 128, 128, px::DTYPE_I8, true); });
        list.push_back([] { return matmul(61, 67, 131, px::DTYPE_U8, true); });
        list.push_back([] { return relu(1, px::DTYPE_I8, true); });
        list.push_back([] { return argmax(1); });
        list.push_back([] { return dot(1); });
        list.push_back([] { return requant(1); });
        list.push_back([] { return add_bias(1); });
        list.push_back([] { return rmsnorm(1, 384); });
        list.push_back([] { return add(1); });
        list.push_back([] { return lut(1); });
        list.push_back([] { return attend(1, 64, 2, 32); });
        list.push_back([] { return small_dots(100, 256); });
        list.push_back([] { return small_relus(50); });
        return list;
    }
    // The copy first: the memory-bound figures are percentages of it.
    list.push_back([] { return relu(508, px::DTYPE_U8); });
    // The seeds' table (matmul 128^3, 1024^3, 4096^3, CPU against GPU) is marked for --reference.
    const auto seed_table = [](Workload w) {
        w.reference = true;
        return w;
    };
    list.push_back([=] { return seed_table(matmul(128, 128, 128, px::DTYPE_I8, true)); });
    list.push_back([=] { return seed_table(matmul(1024, 1024, 1024, px::DTYPE_I8, true)); });
    list.push_back([] { return matmul(1024, 1024, 1024, px::DTYPE_U8); });
    list.push_back([] { return matmul(2048, 2048, 2048, px::DTYPE_I8); });
    list.push_back([=] { return seed_table(matmul(4096, 4096, 4096, px::DTYPE_I8)); });
    list.push_back([] { return matmul(4096, 4096, 4096, px::DTYPE_U8); });
    list.push_back([] { return matmul(4096, 4096, 1024, px::DTYPE_I8); });
    list.push_back([] { return matmul(4095, 4097, 4093, px::DTYPE_I8); });
    list.push_back([] { return matmul(8192, 8192, 8192, px::DTYPE_I8); });
    list.push_back([] { return relu(128, px::DTYPE_I8, true); });
    list.push_back([] { return relu(508, px::DTYPE_I8); });
    list.push_back([] { return argmax(512); }); // 512 MiB: an image of 1 GiB
    list.push_back([] { return dot(512); });    // 2 x 512 MiB
    list.push_back([] { return requant(256); });
    list.push_back([] { return add_bias(256); });
    list.push_back([] { return rmsnorm(256, 384); });
    list.push_back([] { return rmsnorm(256, 4096); });
    list.push_back([] { return add(256); });
    list.push_back([] { return lut(256); });
    list.push_back([] { return attend(1, 384, 6, 256); });
    list.push_back([] { return attend(64, 384, 6, 256); });
    list.push_back([] { return attend(64, 384, 6, 1024); });
    list.push_back([] { return small_dots(1000, 1024); });
    list.push_back([] { return small_relus(1000); });
    return list;
}

// ---- Statistics -------------------------------------------------------------------------------

struct Stats {
    double median = 0, min = 0, max = 0, mean = 0, stddev = 0;
    double spread = 0; ///< (max - min) / median of the samples kept for the figure
    std::vector<double> samples;
};

Stats stats(std::vector<double> samples) {
    Stats s;
    s.samples = samples;
    if (samples.empty()) return s;
    std::sort(samples.begin(), samples.end());
    const std::size_t n = samples.size();
    s.median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    s.min = samples.front();
    s.max = samples.back();
    for (double v : samples)
        s.mean += v / double(n);
    for (double v : samples)
        s.stddev += (v - s.mean) * (v - s.mean);
    s.stddev = n > 1 ? std::sqrt(s.stddev / double(n - 1)) : 0;
    s.spread = s.median > 0 ? s.stddev / s.median : 0;
    return s;
}

nlohmann::json to_json(const Stats& s) {
    return {{"median", s.median},  {"min", s.min},       {"max", s.max},
            {"mean", s.mean},      {"stddev", s.stddev}, {"relative_stddev", s.spread},
            {"samples", s.samples}};
}

struct Sampling {
    int warmup_ms = 500;         ///< warm up at least this long (and 2 runs)
    int min_samples = 10;        ///< then at least this many samples
    int max_samples = 200;       ///< and at most this many
    double target_spread = 0.02; ///< stop once the relative standard deviation is under this
    double time_limit_s = 2;     ///< or once this long has passed
    bool cold = false;           ///< flush the caches before every sample
};

// ---- Measuring ----------------------------------------------------------------------------------

struct Measured {
    std::string path, variant;
    Stats gpu_ms, program_ms, host_ms;
    std::map<std::string, Stats> dispatches;
    bool converged = false;
    bool verified = false, matches = false;
    std::string check;
    double verify_s = 0;
    /// Stages around the runs (one each): host and GPU time of the upload and of the readback.
    double upload_host_ms = 0, readback_host_ms = 0;
    std::optional<double> upload_gpu_ms, readback_gpu_ms;
    std::string error;
};

/// A program that evicts the GPU's caches between cold samples: a copy over 128 MiB (or the
/// device's largest storage buffer), four times an H200's 50 MiB L2.
struct CacheFlush {
    std::optional<px::vk::ResidentImage> image;
    std::optional<px::vk::Recording> recording;
};

px::Result<void> make_flush(px::vk::Device& device, CacheFlush& flush) {
    const std::uint64_t limit = device.info().limits.max_storage_buffer_range;
    const std::uint32_t mib = std::uint32_t(std::min<std::uint64_t>(128, (limit >> 20) / 2 - 1));
    Workload w = relu(mib, px::DTYPE_U8);
    auto schedule = px::vk::schedule_program(px::plan_program(w.image), w.image.width(),
                                             w.image.height(), device.info());
    if (!schedule) return schedule.error();
    auto resident = device.upload(w.image);
    if (!resident) return resident.error();
    flush.image.emplace(std::move(resident.value()));
    auto recording = device.record(*flush.image, schedule->dispatches);
    if (!recording) return recording.error();
    flush.recording.emplace(std::move(recording.value()));
    return {};
}

Measured measure(px::vk::Device& device, const Workload& w, const std::string& path,
                 std::optional<px::vk::KernelVariant> variant, const Sampling& sampling,
                 CacheFlush* flush, bool verify,
                 std::optional<px::vk::CoopmatTile> tile = std::nullopt) {
    Measured m;
    m.path = path;
    m.variant = variant ? std::string(px::vk::to_string(*variant)) : "";
    if (tile) m.variant += " " + tile->name();
    std::vector<px::vk::Dispatch> dispatches;
    if (path == "interpreter") {
        px::vk::Dispatch d = px::vk::Dispatch::with_push(
            "interpreter", px::InterpreterPush{w.image.width(), w.image.height()});
        d.label = "interpreter";
        dispatches.push_back(d);
    } else {
        px::vk::ScheduleOptions options{variant};
        options.coopmat_tile = tile;
        auto schedule = px::vk::schedule_program(px::plan_program(w.image), w.image.width(),
                                                 w.image.height(), device.info(), options);
        if (!schedule) {
            m.error = schedule.error().message;
            return m;
        }
        dispatches = schedule->dispatches;
    }
    auto resident = device.upload(w.image);
    if (!resident) {
        m.error = resident.error().message;
        return m;
    }
    m.upload_host_ms = resident->transfer_timings().host_upload_ms;
    m.upload_gpu_ms = resident->transfer_timings().gpu_upload_ms;
    // Programs of many small instructions are timed as a whole, without a timestamp after every
    // dispatch (which would add its own cost to each).
    const bool whole_program = w.instructions > 1;
    auto recording = device.record(*resident, dispatches, {}, {},
                                   whole_program ? px::vk::Timestamps::program
                                                 : px::vk::Timestamps::per_dispatch);
    if (!recording) {
        m.error = recording.error().message;
        return m;
    }
    std::vector<double> gpu, program, host;
    std::map<std::string, std::vector<double>> by_label;
    px::RunStatus status{};
    // Warm-up: at least two runs and warmup_ms, so that the GPU's clocks have risen (an idle
    // H200 starts at a fraction of its clock and does not reach it within a few short runs).
    const auto start = Clock::now();
    const auto warm_until = start + std::chrono::milliseconds(sampling.warmup_ms);
    int warmups = 0;
    Clock::time_point sampling_from{};
    for (;;) {
        const bool warming = warmups < 2 || Clock::now() < warm_until;
        if (!warming) {
            if (sampling_from == Clock::time_point{}) sampling_from = Clock::now();
            const int n = int(gpu.size());
            const double elapsed =
                std::chrono::duration<double>(Clock::now() - sampling_from).count();
            if (n >= sampling.min_samples) {
                if (stats(gpu).spread <= sampling.target_spread) {
                    m.converged = true;
                    break;
                }
                if (elapsed >= sampling.time_limit_s || n >= sampling.max_samples) break;
            }
        }
        if (w.restore)
            if (auto restored = resident->write(w.image, *w.restore); !restored) {
                m.error = "restoring the inputs: " + restored.error().message;
                return m;
            }
        if (flush && flush->recording)
            if (auto flushed = flush->recording->run(); !flushed) {
                m.error = "cache flush: " + flushed.error().message;
                return m;
            }
        auto run = recording->run();
        if (!run) {
            m.error = run.error().message;
            return m;
        }
        status = run->status;
        if (warming) {
            ++warmups;
            continue;
        }
        host.push_back(run->timings.host_submit_wait_ms);
        if (run->timings.gpu_execute_ms) program.push_back(*run->timings.gpu_execute_ms);
        double instruction = 0;
        for (const px::vk::LabelledTime& t : run->timings.gpu_dispatch) {
            by_label[t.label].push_back(t.ms);
            if (path == "interpreter" || t.label.find(" " + w.label) != std::string::npos)
                instruction += t.ms;
        }
        // Without timestamps the figure is the host's submit-to-fence time.
        if (whole_program)
            gpu.push_back(run->timings.gpu_execute_ms.value_or(run->timings.host_submit_wait_ms));
        else
            gpu.push_back(run->timings.gpu_dispatch.empty() ? run->timings.host_submit_wait_ms
                                                            : instruction);
    }
    m.gpu_ms = stats(gpu);
    m.program_ms = stats(program);
    m.host_ms = stats(host);
    for (auto& [label, samples] : by_label)
        m.dispatches[label] = stats(samples);
    if (verify) {
        Image result = w.image;
        if (auto read = resident->read(result); !read) {
            m.error = read.error().message;
            return m;
        }
        m.readback_host_ms = resident->transfer_timings().host_readback_ms;
        m.readback_gpu_ms = resident->transfer_timings().gpu_readback_ms;
        const px::Verification v = px::verify_against_reference(w.image, result, status);
        m.verified = true;
        m.matches = v.matches();
        m.check = v.summary();
        m.verify_s = v.seconds;
        if (!m.matches)
            m.error = "MISMATCH: " + px::describe(v.difference) + " " + v.status_mismatch;
    }
    return m;
}

/// The CPU reference interpreter on the workload (all hardware threads), host clock: at least one
/// run, then until 3 runs or 2 s.
Measured measure_reference(const Workload& w) {
    Measured m;
    m.path = "reference";
    m.variant = "CPU, " + std::to_string(std::thread::hardware_concurrency()) + " threads";
    std::vector<double> ms;
    const auto start = Clock::now();
    while (ms.empty() ||
           (ms.size() < 3 && std::chrono::duration<double>(Clock::now() - start).count() < 2)) {
        Image image = w.image;
        const auto t0 = Clock::now();
        const px::RunOutcome outcome = px::run_reference(image);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (outcome.fault) m.error = "the reference faulted";
    }
    m.gpu_ms = stats(ms);
    m.host_ms = m.gpu_ms;
    m.converged = true;
    return m;
}

std::string now_utc() {
    const std::time_t t = std::time(nullptr);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return text;
}

std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

nlohmann::json shapes_json(const std::vector<px::vk::CooperativeMatrixShape>& shapes) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : shapes)
        list.push_back(std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
                       " " + s.a_type + "x" + s.b_type + "->" + s.result_type);
    return list;
}

nlohmann::json fingerprint(const px::vk::DeviceInfo& info) {
    nlohmann::json variants = nlohmann::json::array();
    for (const px::vk::VariantSupport& v : px::vk::variant_support(info))
        variants.push_back({{"name", std::string(px::vk::to_string(v.variant))},
                            {"available", v.available},
                            {"reason", v.reason}});
    return {
        {"index", info.index},
        {"name", info.name},
        {"vendor_id", info.vendor_id},
        {"device_id", info.device_id},
        {"driver", px::vk::format_driver_version(info)},
        {"driver_name", info.driver_name},
        {"api", px::vk::format_api_version(info.api_version)},
        {"pipeline_cache_uuid", px::vk::format_uuid(info.pipeline_cache_uuid)},
        {"subgroup_size", info.features.subgroups.size},
        {"cooperative_matrix_nv_shapes", shapes_json(info.features.cooperative_matrix_nv_shapes)},
        {"cooperative_matrix_khr_shapes", shapes_json(info.features.cooperative_matrix_khr_shapes)},
        {"variants", variants}};
}

/// A ceiling: one benchmark kernel (not an instruction) timed like a workload, the median of its
/// dispatch's GPU time: kernels/coopmat_peak_nv.comp (int8 multiply-adds in registers only) and
/// kernels/copy_peak.comp (16-byte vectors copied).
struct Ceiling {
    std::string name;
    double ops = 0, bytes = 0;
    Stats gpu_ms;
    std::string error;
};

void time_ceiling(px::vk::Device& device, const Image& image, const px::vk::Dispatch& d,
                  const Sampling& sampling, Ceiling& c) {
    auto resident = device.upload(image);
    if (!resident) {
        c.error = resident.error().message;
        return;
    }
    const std::vector<px::vk::Dispatch> dispatches = {d};
    auto recording = device.record(*resident, dispatches);
    if (!recording) {
        c.error = recording.error().message;
        return;
    }
    std::vector<double> gpu;
    const auto start = Clock::now();
    for (int i = 0;; ++i) {
        auto run = recording->run();
        if (!run) {
            c.error = run.error().message;
            return;
        }
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        if (elapsed * 1e3 < sampling.warmup_ms || i < 2) continue;
        gpu.push_back(run->timings.gpu_dispatch.empty() ? run->timings.host_submit_wait_ms
                                                        : run->timings.gpu_dispatch.front().ms);
        if (int(gpu.size()) >= sampling.min_samples &&
            (stats(gpu).spread <= sampling.target_spread ||
             elapsed >= sampling.time_limit_s + sampling.warmup_ms / 1e3))
            break;
    }
    c.gpu_ms = stats(gpu);
}

Ceiling coopmat_ceiling(px::vk::Device& device, std::uint32_t shape_n, const Sampling& sampling) {
    constexpr std::uint32_t groups = 4096, rounds = 2048, chains = 8, subgroups = 8;
    Ceiling c;
    c.name = "tensor-core ceiling i8 16x" + std::to_string(shape_n) + "x32 (registers only)";
    c.ops = 2.0 * 16 * shape_n * 32 * chains * rounds * subgroups * groups;
    Image image(64, 32);
    px::KernelPush push{};
    push.width = image.width();
    push.height = image.height();
    push.arg[0] = rounds;
    px::vk::Dispatch d = px::vk::Dispatch::with_push("coopmat_peak_nv", push, {groups, 1, 1});
    d.specialization = {16, shape_n, 32};
    d.label = "coopmat peak";
    time_ceiling(device, image, d, sampling, c);
    return c;
}

/// The copy the memory-bound figures are percentages of: as much as relu(508, u8) moves.
Ceiling copy_ceiling(px::vk::Device& device, std::uint32_t vecs, const Sampling& sampling) {
    const Workload w = relu(508, px::DTYPE_U8);
    const std::uint32_t width = w.image.width(), rows = (w.image.height() - 1) / 2;
    const std::uint32_t count = rows * width / 4;
    Ceiling c;
    c.name = "copy ceiling 508 MiB in + out (" + std::to_string(16 * vecs) + " B an invocation)";
    c.bytes = 2.0 * count * 16;
    px::KernelPush push{};
    push.width = width;
    push.height = w.image.height();
    push.arg[0] = width;
    push.arg[1] = width * (1 + rows);
    push.arg[2] = count;
    const std::uint32_t groups = (count + vecs * 256 - 1) / (vecs * 256);
    const std::uint32_t y = (groups + 65534) / 65535;
    px::vk::Dispatch d =
        px::vk::Dispatch::with_push("copy_peak", push, {(groups + y - 1) / y, y, 1});
    d.specialization = {vecs};
    d.label = "copy peak";
    time_ceiling(device, w.image, d, sampling, c);
    return c;
}

int run_benchmarks(const std::string& device_name, const std::string& preset,
                   const std::string& json_path, const std::string& only, const std::string& upload,
                   const Sampling& sampling, bool verify, bool sweep, bool reference) {
    px::vk::RuntimeOptions options;
    options.upload = upload == "staging"  ? px::vk::UploadMode::staging
                     : upload == "direct" ? px::vk::UploadMode::direct
                                          : px::vk::UploadMode::automatic;
    auto runtime = px::vk::Runtime::create(options);
    if (!runtime) {
        std::cerr << "pxbench: " << runtime.error().message << "\n";
        return 1;
    }
    std::vector<std::uint32_t> indices;
    if (device_name == "all") {
        for (const px::vk::DeviceInfo& d : runtime->devices())
            if (d.usable()) indices.push_back(d.index);
    } else {
        auto index = runtime->select(px::vk::DeviceSelector::parse(device_name));
        if (!index) {
            std::cerr << "pxbench: " << index.error().message << "\n";
            return 1;
        }
        indices.push_back(*index);
    }

    const std::vector<std::function<Workload()>> list = workloads(preset);
    nlohmann::json devices = nlohmann::json::array(), results = nlohmann::json::array();
    int status = 0;
    for (std::uint32_t index : indices) {
        auto device = runtime->open(px::vk::DeviceSelector::by_index(index));
        if (!device) {
            std::cerr << "pxbench: " << device.error().message << "\n";
            return 1;
        }
        const px::vk::DeviceInfo& info = device->info();
        const std::string device_label = "[" + std::to_string(info.index) + "] " + info.name;
        devices.push_back(fingerprint(info));
        std::cout << "pxbench on " << device_label << " (driver "
                  << px::vk::format_driver_version(info) << "), preset " << preset << ", "
                  << (sampling.cold ? "cold (caches flushed before each sample)" : "warm")
                  << ": warm-up >= " << sampling.warmup_ms << " ms, then " << sampling.min_samples
                  << " to " << sampling.max_samples << " samples until the relative standard "
                  << "deviation is <= " << sampling.target_spread * 100 << "% or "
                  << sampling.time_limit_s << " s\n";
        CacheFlush flush;
        if (sampling.cold)
            if (auto made = make_flush(*device, flush); !made) {
                std::cerr << "pxbench: the cache flush program: " << made.error().message << "\n";
                return 1;
            }
        std::vector<std::optional<px::vk::KernelVariant>> variants;
        for (const px::vk::VariantSupport& v : px::vk::variant_support(info))
            if (v.available) variants.push_back(v.variant);

        // The ceilings: the tensor cores in each int8 shape the matmul kernels may use (with the
        // matmuls), and a copy in 16, 32 and 64 bytes an invocation (with the memory-bound ones).
        std::vector<std::function<Ceiling()>> ceilings;
        const bool matmuls =
            std::string("tensor-core ceiling matmul").find(only) != std::string::npos;
        const bool coopmat = std::find(variants.begin(), variants.end(),
                                       px::vk::KernelVariant::coopmat_nv) != variants.end();
        std::vector<std::uint32_t> widths;
        for (const px::vk::CoopmatTile& t : px::vk::coopmat_tiles(info))
            if (std::find(widths.begin(), widths.end(), t.shape_n) == widths.end())
                widths.push_back(t.shape_n);
        if (coopmat && matmuls)
            for (std::uint32_t width : widths)
                ceilings.push_back(
                    [&, width] { return coopmat_ceiling(*device, width, sampling); });
        const bool memory =
            only.empty() ||
            std::string("copy ceiling relu argmax dot").find(only) != std::string::npos;
        // A 1 GiB copy needs a device that holds a 1 GiB storage buffer (not lavapipe).
        if (memory && info.limits.max_storage_buffer_range >= (std::uint64_t(1) << 30) + (8 << 20))
            for (std::uint32_t vecs : {1u, 2u, 4u})
                ceilings.push_back([&, vecs] { return copy_ceiling(*device, vecs, sampling); });
        std::optional<double> copy_gbps; // this device's bandwidth ceiling, from the copy
        for (const auto& make : ceilings) {
            const Ceiling c = make();
            const double ms = c.gpu_ms.median;
            const double tops = ms > 0 && c.ops > 0 ? c.ops / ms / 1e9 : 0;
            const double gbps = ms > 0 && c.bytes > 0 ? c.bytes / ms / 1e6 : 0;
            if (gbps > 0 && c.error.empty()) copy_gbps = std::max(copy_gbps.value_or(0), gbps);
            char line[256];
            std::snprintf(line, sizeof line, "%-52s %10.4f ms", c.name.c_str(), ms);
            std::cout << line;
            if (tops > 0) std::snprintf(line, sizeof line, " %9.2f TOPS", tops);
            if (gbps > 0) std::snprintf(line, sizeof line, " %8.1f GB/s", gbps);
            std::cout << line << (c.error.empty() ? "" : "  " + c.error) << "\n" << std::flush;
            if (!c.error.empty()) status = std::max(status, 1);
            results.push_back({{"device", device_label},
                               {"device_index", info.index},
                               {"workload", c.name},
                               {"path", "kernels"},
                               {"variant", tops > 0 ? "coopmat_peak_nv" : "copy_peak"},
                               {"ops", c.ops},
                               {"bytes", c.bytes},
                               {"gpu_ms", to_json(c.gpu_ms)},
                               {"tops", tops > 0 ? nlohmann::json(tops) : nlohmann::json(nullptr)},
                               {"gbps", gbps > 0 ? nlohmann::json(gbps) : nlohmann::json(nullptr)},
                               {"ceiling", true},
                               {"error", c.error}});
        }

        for (const auto& make : list) {
            const Workload w = make();
            if (w.name.find(only) == std::string::npos) continue;
            // The first stage of a run from a file: decoding the program's PNG (encoded here).
            // Encoding takes far longer than decoding, so images above 64 MiB are not timed.
            constexpr std::size_t png_limit = std::size_t(64) << 20;
            std::vector<std::uint8_t> png;
            bool decoded = false;
            double decode_ms = 0;
            if (w.image.size_bytes() <= png_limit) {
                png = px::encode_png(w.image);
                const auto decode_start = Clock::now();
                decoded = bool(px::decode_png(png, w.name));
                decode_ms =
                    std::chrono::duration<double, std::milli>(Clock::now() - decode_start).count();
            }
            std::vector<Measured> measured;
            if (reference && w.reference) measured.push_back(measure_reference(w));
            if (w.interpreter)
                measured.push_back(measure(*device, w, "interpreter", std::nullopt, sampling,
                                           sampling.cold ? &flush : nullptr, verify));
            for (const auto& v : variants) {
                measured.push_back(measure(*device, w, "kernels", v, sampling,
                                           sampling.cold ? &flush : nullptr, verify));
                // --sweep: every tensor-core tile too, each verified.
                if (sweep && w.label == "matmul" && v == px::vk::KernelVariant::coopmat_nv) {
                    const std::vector<px::vk::CoopmatTile> tiles = px::vk::coopmat_tiles(info);
                    for (const px::vk::CoopmatTile& tile : tiles) // in the widest shape
                        if (tile.shape_n == tiles.front().shape_n)
                            measured.push_back(measure(*device, w, "kernels", v, sampling,
                                                       sampling.cold ? &flush : nullptr, verify,
                                                       tile));
                }
            }
            for (const Measured& m : measured) {
                const double ms = m.gpu_ms.median;
                const bool compute = w.label == "matmul";
                const double tops = ms > 0 ? w.ops / ms / 1e9 : 0;
                const double gbps = ms > 0 && w.bytes > 0 ? w.bytes / ms / 1e6 : 0;
                if (w.copy && m.path == "kernels" && m.error.empty())
                    copy_gbps = std::max(copy_gbps.value_or(0), gbps);
                std::optional<double> percent;
                if (!compute && gbps > 0 && copy_gbps && !w.copy) percent = 100 * gbps / *copy_gbps;
                const std::string what = m.path + (m.variant.empty() ? "" : " " + m.variant);
                char line[512];
                std::snprintf(line, sizeof line, "%-36s %-20s %10.4f ms", w.name.c_str(),
                              what.c_str(), ms);
                std::cout << line;
                if (compute)
                    std::snprintf(line, sizeof line, " %9.2f TOPS", tops);
                else if (gbps > 0)
                    std::snprintf(
                        line, sizeof line, " %8.1f GB/s%s", gbps,
                        percent
                            ? (" (" + std::to_string(int(*percent + 0.5)) + "% of copy)").c_str()
                            : "");
                else
                    std::snprintf(line, sizeof line, " %8.3f us an instruction",
                                  ms * 1e3 / w.instructions);
                std::cout << line;
                if (!m.converged && m.error.empty())
                    std::cout << " (spread " << int(m.gpu_ms.spread * 1000) / 10.0
                              << "% stayed above the target)";
                if (m.verified)
                    std::cout << (m.matches ? "  verified" : "  FAILED") << " ("
                              << int(m.verify_s * 1e4) / 10.0 << " ms, " << m.check << ")";
                if (!m.error.empty()) std::cout << "  " << m.error;
                std::cout << "\n" << std::flush;
                if (!m.error.empty()) status = std::max(status, m.verified && !m.matches ? 3 : 1);
                nlohmann::json dispatches = nlohmann::json::object();
                for (const auto& [label, s] : m.dispatches)
                    dispatches[label] = to_json(s);
                results.push_back(
                    {{"device", device_label},
                     {"device_index", info.index},
                     {"workload", w.name},
                     {"path", m.path},
                     {"variant", m.variant},
                     {"ops", w.ops},
                     {"instructions", w.instructions},
                     {"bytes", w.bytes},
                     {"gpu_ms", to_json(m.gpu_ms)},
                     {"program_gpu_ms", to_json(m.program_ms)},
                     {"host_submit_wait_ms", to_json(m.host_ms)},
                     {"stages_ms",
                      {{"png_decode",
                        decoded ? nlohmann::json(decode_ms) : nlohmann::json(nullptr)},
                       {"png_bytes", png.size()},
                       {"upload_host", m.upload_host_ms},
                       {"upload_gpu", m.upload_gpu_ms ? nlohmann::json(*m.upload_gpu_ms)
                                                      : nlohmann::json(nullptr)},
                       {"program_gpu_median", m.program_ms.median},
                       {"readback_host", m.readback_host_ms},
                       {"readback_gpu", m.readback_gpu_ms ? nlohmann::json(*m.readback_gpu_ms)
                                                          : nlohmann::json(nullptr)},
                       {"verify", m.verify_s * 1e3}}},
                     {"dispatch_gpu_ms", dispatches},
                     {"converged", m.converged},
                     {"tops", compute ? nlohmann::json(tops) : nlohmann::json(nullptr)},
                     {"gbps", gbps > 0 ? nlohmann::json(gbps) : nlohmann::json(nullptr)},
                     {"percent_of_copy",
                      percent ? nlohmann::json(*percent) : nlohmann::json(nullptr)},
                     {"verified", m.verified},
                     {"matches", m.matches},
                     {"check", m.check},
                     {"verify_seconds", m.verify_s},
                     {"error", m.error}});
            }
        }
    }
    if (!json_path.empty()) {
        const nlohmann::json doc = {
            {"schema", SCHEMA},
            {"tool", "pxbench"},
            {"pxvm", std::string(PXVM_VERSION) + " (git " + PXVM_GIT_DESCRIBE + ")"},
            {"git", PXVM_GIT_DESCRIBE},
            {"git_dirty", PXVM_GIT_DIRTY},
            {"host", host_name()},
            {"date", now_utc()},
            {"preset", preset},
            {"mode", sampling.cold ? "cold" : "warm"},
            {"sampling",
             {{"warmup_ms", sampling.warmup_ms},
              {"min_samples", sampling.min_samples},
              {"max_samples", sampling.max_samples},
              {"target_relative_stddev", sampling.target_spread},
              {"time_limit_s", sampling.time_limit_s}}},
            {"ceilings",
             "memory-bound figures as a percentage of the copy measured in the same run; "
             "tensor-core figures against the register-only cooperative-matrix loop measured in "
             "the same run (results with \"ceiling\": true)"},
            {"devices", devices},
            {"results", results}};
        std::ofstream(json_path) << doc.dump(2) << "\n";
        std::cout << "wrote " << json_path << "\n";
    }
    return status;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pxbench: time pixel programs on Vulkan devices through the GPU interpreter and "
                 "every scheduled-kernel variant, with GPU timestamps per dispatch; every result "
                 "is verified against the reference interpreter. `pxbench compare a.json b.json` "
                 "sets runs side by side.\n"
                 "Exit status: 0 all ran and verified; 1 bad input or a device error; 3 a "
                 "result differed from the reference."};
    app.require_subcommand(0, 1);
    std::string device_name = "auto", json_path, preset = "full", only, upload = "automatic";
    Sampling sampling;
    double time_limit = -1;
    int warmup_ms = -1;
    bool no_verify = false;
    app.add_option("--device,-d", device_name,
                   "'auto', a device index, a part of a device name, or 'all'")
        ->capture_default_str();
    app.add_option("--preset", preset, "smoke (seconds, for CI and lavapipe) or full")
        ->check(CLI::IsMember({"smoke", "full"}))
        ->capture_default_str();
    app.add_option("--json", json_path, "write every figure, sample and device fingerprint here");
    app.add_flag("--cold", sampling.cold, "flush the GPU's caches before every sample");
    app.add_option("--target-spread", sampling.target_spread,
                   "stop sampling once the relative standard deviation is at most this")
        ->capture_default_str();
    app.add_option("--time-limit-s", time_limit,
                   "or once sampling has taken this long (default: 0.2 smoke, 2 full)");
    app.add_option("--min-samples", sampling.min_samples)->capture_default_str();
    app.add_option("--max-samples", sampling.max_samples)->capture_default_str();
    app.add_option("--warmup-ms", warmup_ms,
                   "warm up each workload for at least this long (default: 0 smoke, 500 full)");
    app.add_flag("--no-verify", no_verify, "skip the reference check");
    bool sweep = false, reference = false;
    app.add_flag("--reference", reference,
                 "also time the CPU reference interpreter on the seeds' table (i8 matmul 128^3, "
                 "1024^3, 4096^3)");
    app.add_flag("--sweep", sweep,
                 "also time every matmul with every tensor-core tile (coopmat-nv) in the device's "
                 "widest matrix shape, each verified");
    app.add_option("--only", only, "run only the workloads whose name contains this text");
    app.add_option("--upload", upload,
                   "how images reach the device: automatic (direct where the device has "
                   "device-local host-visible memory), staging or direct")
        ->check(CLI::IsMember({"automatic", "staging", "direct"}))
        ->capture_default_str();

    CLI::App* compare = app.add_subcommand(
        "compare", "set pxbench (or peer) JSON files side by side: per workload faster, slower "
                   "or no clear difference, by a Mann-Whitney U test on the samples");
    std::vector<std::string> files;
    std::string svg;
    compare->add_option("files", files, "two or more JSON files")->required()->expected(2, -1);
    compare->add_option("--svg", svg, "also write a bar chart here");
    px::bench::CartridgeBenchOptions cart;
    CLI::App* cartridge = app.add_subcommand(
        "cartridge", "tokens per second of a window-MLP cartridge per batch size: packs the "
                     "weights for each batch, checks steps against the reference, then times "
                     "steps (input slot written, outputs read back) without the check");
    cartridge->add_option("weights", cart.weights, "the .safetensors weights")->required();
    cartridge->add_option("--text", cart.calibration, "text for calibration and prompts")
        ->required();
    cartridge
        ->add_option("--batches", cart.batches, "batch sizes, or max (the largest one image holds)")
        ->capture_default_str();
    cartridge->add_option("--seconds", cart.seconds, "timed steps per batch: at least this long")
        ->capture_default_str();
    cartridge->add_option("--device,-d", cart.device, "'auto', a device index or a part of a name")
        ->capture_default_str();
    cartridge->add_option("--json", cart.json_path, "write the figures here");
    cartridge
        ->add_option("--verified-steps", cart.verified_steps,
                     "steps per batch checked against the reference")
        ->capture_default_str();
    pxcli::add_version(app, "pxbench");
    PXCLI_PARSE(app, argc, argv);

    if (*cartridge) {
        if (cart.device == "auto" && device_name != "auto") cart.device = device_name;
        if (cart.json_path.empty()) cart.json_path = json_path;
        return px::bench::run_cartridge_bench(cart);
    }

    if (*compare) {
        auto table = px::bench::compare_files(files);
        if (!table) {
            std::cerr << "pxbench compare: " << table.error().message << "\n";
            return 1;
        }
        std::cout << *table;
        if (!svg.empty()) {
            auto chart = px::bench::svg_chart(files);
            if (!chart) {
                std::cerr << "pxbench compare: " << chart.error().message << "\n";
                return 1;
            }
            auto written = px::write_file_atomic(svg, std::string_view(*chart));
            if (!written) {
                std::cerr << "pxbench compare: " << written.error().message << "\n";
                return 1;
            }
            std::cout << "wrote " << svg << "\n";
        }
        return 0;
    }
    const bool smoke = preset == "smoke";
    sampling.warmup_ms = warmup_ms >= 0 ? warmup_ms : smoke ? 0 : 500;
    sampling.time_limit_s = time_limit >= 0 ? time_limit : smoke ? 0.2 : 2;
    if (smoke && sampling.min_samples == 10) sampling.min_samples = 3;
    return run_benchmarks(device_name, preset, json_path, only, upload, sampling, !no_verify, sweep,
                          reference);
}
