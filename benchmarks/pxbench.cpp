// pxbench: times pixel programs on a Vulkan device through every execution path and kernel variant
// it can run (the GPU interpreter; the scheduled kernels, portable and int-dot), with GPU
// timestamps per labelled dispatch, then verifies the result against the reference interpreter
// (timed too). Images are uploaded once and the recorded program is resubmitted for every sample.
// The seed of the full benchmark tool (pxbench issue); `--preset smoke` runs in seconds on
// lavapipe and is run by a test, `--preset full` is what benchmarks/RESULTS.md reports.
#include "pxvm/program.hpp"
#include "pxvm/program_writer.hpp"
#include "pxvm/verification.hpp"
#include "pxvm/vulkan/runtime.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using px::Image;
using px::ProgramWriter;

/// One program to time, with what one run computes (for TOPS or GB/s).
struct Workload {
    std::string name;  ///< "matmul i8 1024x1024x1024"
    std::string label; ///< the instruction whose dispatch time is the figure ("matmul")
    Image image;
    double ops = 0;          ///< integer operations of one run (2 per multiply-add)
    double bytes = 0;        ///< bytes one run must read and write at least
    bool interpreter = true; ///< also time the GPU interpreter (too slow for the largest)
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

/// C (M x N i32) = A (M x K) . B (N x K)^T, A and B side by side from row 1, C below them.
Workload matmul(std::uint32_t m, std::uint32_t n, std::uint32_t k, std::uint32_t dtype,
                bool interpreter) {
    const std::uint32_t kp = (k + 3) / 4;
    const std::uint32_t width = std::max({2 * kp, n, 64u});
    ProgramWriter w(width, 1 + std::max(m, n) + m);
    fill_random(w.image, 1, m * 7 + n * 3 + k + dtype);
    w.tensor(1, dtype, 0, 1, m, k)
        .tensor(2, dtype, kp, 1, n, k)
        .tensor(3, px::DTYPE_I32, 0, 1 + std::max(m, n), m, n)
        .matmul(3, 1, 2)
        .halt();
    const std::string type = dtype == px::DTYPE_I8 ? "i8" : "u8";
    return {"matmul " + type + " " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                std::to_string(k),
            "matmul",
            std::move(w.image),
            2.0 * m * n * k,
            double(m) * k + double(n) * k + 4.0 * m * n,
            interpreter};
}

/// relu over `mib` MiB of i8 into another `mib` MiB.
Workload relu(std::uint32_t mib, bool interpreter) {
    const std::uint32_t width = 8192, cols = 4 * width;
    const std::uint32_t rows = std::uint32_t((std::uint64_t(mib) << 20) / cols);
    ProgramWriter w(width, 1 + 2 * rows);
    fill_random(w.image, 1, mib);
    w.tensor(1, px::DTYPE_I8, 0, 1, rows, cols)
        .tensor(2, px::DTYPE_I8, 0, 1 + rows, rows, cols)
        .relu(2, 1)
        .halt();
    const double bytes = 2.0 * rows * cols;
    return {"relu i8 " + std::to_string(mib) + " MiB in + out",
            "relu",
            std::move(w.image),
            double(rows) * cols,
            bytes,
            interpreter};
}

/// `count` seed dot_rgb instructions over two full rows of `width` pixels.
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
    if (w.pc < w.image.width()) w.halt();
    return {std::to_string(count) + " dot_rgb of " + std::to_string(w.image.width()) + " pixels",
            "dot_rgb",
            std::move(w.image),
            2.0 * count * w.image.width(),
            0,
            true};
}

std::vector<Workload> workloads(const std::string& preset) {
    std::vector<Workload> list;
    if (preset == "smoke") {
        list.push_back(matmul(128, 128, 128, px::DTYPE_I8, true));
        list.push_back(matmul(61, 67, 131, px::DTYPE_U8, true));
        list.push_back(relu(1, true));
        list.push_back(small_dots(100, 256));
        return list;
    }
    list.push_back(matmul(1024, 1024, 1024, px::DTYPE_I8, true));
    list.push_back(matmul(1024, 1024, 1024, px::DTYPE_U8, false));
    list.push_back(matmul(2048, 2048, 2048, px::DTYPE_I8, false));
    list.push_back(matmul(4096, 4096, 4096, px::DTYPE_I8, false));
    list.push_back(matmul(4096, 4096, 4096, px::DTYPE_U8, false));
    list.push_back(matmul(4095, 4097, 4093, px::DTYPE_I8, false));
    list.push_back(relu(64, false));
    list.push_back(relu(128, true));
    list.push_back(small_dots(1000, 1024));
    return list;
}

struct Stats {
    double median = 0, min = 0, max = 0;
    std::vector<double> samples;
};

Stats stats(std::vector<double> samples) {
    Stats s;
    s.samples = samples;
    if (samples.empty()) return s;
    std::sort(samples.begin(), samples.end());
    s.median = samples[samples.size() / 2];
    if (samples.size() % 2 == 0) s.median = (s.median + samples[samples.size() / 2 - 1]) / 2;
    s.min = samples.front();
    s.max = samples.back();
    return s;
}

nlohmann::json to_json(const Stats& s) {
    return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"samples", s.samples}};
}

struct Measured {
    std::string path, variant;
    Stats gpu_ms;     ///< the workload's instruction, from timestamps
    Stats program_ms; ///< every dispatch of the program
    Stats host_ms;    ///< submit until the fence signalled, host clock
    std::map<std::string, Stats> dispatches;
    bool verified = false, matches = false;
    std::string check;
    double verify_s = 0;
    std::string error;
};

Measured measure(px::vk::Device& device, const Workload& w, const std::string& path,
                 std::optional<px::vk::KernelVariant> variant, int runs, int warmup_ms,
                 bool verify) {
    Measured m;
    m.path = path;
    m.variant = variant ? std::string(px::vk::to_string(*variant)) : "";
    std::vector<px::vk::Dispatch> dispatches;
    if (path == "interpreter") {
        px::vk::Dispatch d = px::vk::Dispatch::with_push(
            "interpreter", px::InterpreterPush{w.image.width(), w.image.height()});
        d.label = "interpreter";
        dispatches.push_back(d);
    } else {
        const px::Plan plan = px::plan_program(w.image);
        auto schedule = px::vk::schedule_program(plan, w.image.width(), w.image.height(),
                                                 device.info(), {variant});
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
    auto recording = device.record(*resident, dispatches);
    if (!recording) {
        m.error = recording.error().message;
        return m;
    }
    std::vector<double> gpu, program, host;
    std::map<std::string, std::vector<double>> by_label;
    px::RunStatus status{};
    // Warm-up: at least two runs and warmup_ms, so that the GPU's clocks have risen (an idle
    // H200 starts at a fraction of its clock and does not reach it within a few short runs).
    const auto warm_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(warmup_ms);
    int warmups = 0;
    for (int i = 0; i < runs;) {
        auto run = recording->run();
        if (!run) {
            m.error = run.error().message;
            return m;
        }
        status = run->status;
        if (warmups < 2 || std::chrono::steady_clock::now() < warm_until) {
            ++warmups;
            continue;
        }
        ++i;
        host.push_back(run->timings.host_submit_wait_ms);
        if (run->timings.gpu_execute_ms) program.push_back(*run->timings.gpu_execute_ms);
        double instruction = 0;
        for (const px::vk::LabelledTime& t : run->timings.gpu_dispatch) {
            by_label[t.label].push_back(t.ms);
            if (path == "interpreter" || t.label.find(" " + w.label) != std::string::npos)
                instruction += t.ms;
        }
        if (!run->timings.gpu_dispatch.empty()) gpu.push_back(instruction);
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

std::string now_utc() {
    const std::time_t t = std::time(nullptr);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return text;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pxbench: time pixel programs on a Vulkan device through the GPU interpreter and "
                 "every scheduled-kernel variant, with GPU timestamps per dispatch; every result "
                 "is verified against the reference interpreter.\n"
                 "Exit status: 0 all ran and verified; 1 a device error; 3 a result differed."};
    std::string device_name = "auto", json_path, preset = "full", only, upload = "automatic";
    int runs = 0, warmup_ms = -1;
    bool no_verify = false;
    app.add_option("--device,-d", device_name, "'auto', a device index or a part of its name")
        ->capture_default_str();
    app.add_option("--preset", preset, "smoke (seconds, for CI and lavapipe) or full")
        ->check(CLI::IsMember({"smoke", "full"}))
        ->capture_default_str();
    app.add_option("--runs", runs, "timed runs per workload (default: 3 smoke, 10 full)");
    app.add_option("--warmup-ms", warmup_ms,
                   "warm up each workload for at least this long (default: 0 smoke, 500 full)");
    app.add_option("--json", json_path, "write every figure and sample to this file");
    app.add_flag("--no-verify", no_verify, "skip the reference check");
    app.add_option("--only", only, "run only the workloads whose name contains this text");
    app.add_option("--upload", upload,
                   "how images reach the device: automatic (direct where the device has "
                   "device-local host-visible memory), staging or direct")
        ->check(CLI::IsMember({"automatic", "staging", "direct"}))
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    if (runs <= 0) runs = preset == "smoke" ? 3 : 10;
    if (warmup_ms < 0) warmup_ms = preset == "smoke" ? 0 : 500;

    px::vk::RuntimeOptions options;
    options.upload = upload == "staging"  ? px::vk::UploadMode::staging
                     : upload == "direct" ? px::vk::UploadMode::direct
                                          : px::vk::UploadMode::automatic;
    auto runtime = px::vk::Runtime::create(options);
    if (!runtime) {
        std::cerr << "pxbench: " << runtime.error().message << "\n";
        return 1;
    }
    auto device = runtime->open(px::vk::DeviceSelector::parse(device_name));
    if (!device) {
        std::cerr << "pxbench: " << device.error().message << "\n";
        return 1;
    }
    const px::vk::DeviceInfo& info = device->info();
    std::cout << "pxbench on [" << info.index << "] " << info.name << " (driver "
              << px::vk::format_driver_version(info) << "), preset " << preset << ", " << runs
              << " runs after a warm-up of at least 2 runs and " << warmup_ms << " ms\n";

    std::vector<std::optional<px::vk::KernelVariant>> variants;
    for (const px::vk::VariantSupport& v : px::vk::variant_support(info))
        if (v.available) variants.push_back(v.variant);

    nlohmann::json results = nlohmann::json::array();
    int status = 0;
    for (const Workload& w : workloads(preset)) {
        if (w.name.find(only) == std::string::npos) continue;
        std::vector<Measured> measured;
        if (w.interpreter)
            measured.push_back(
                measure(*device, w, "interpreter", std::nullopt, runs, warmup_ms, !no_verify));
        for (const auto& v : variants)
            measured.push_back(measure(*device, w, "kernels", v, runs, warmup_ms, !no_verify));
        for (const Measured& m : measured) {
            const std::string what = m.path + (m.variant.empty() ? "" : " " + m.variant);
            char line[256];
            const double ms = m.gpu_ms.median;
            std::snprintf(line, sizeof line, "%-40s %-20s %10.4f ms", w.name.c_str(), what.c_str(),
                          ms);
            std::cout << line;
            if (ms > 0 && w.bytes > 0 && w.label == "relu")
                std::snprintf(line, sizeof line, " %9.1f GB/s", w.bytes / ms / 1e6);
            else if (ms > 0 && w.ops / ms / 1e9 >= 1)
                std::snprintf(line, sizeof line, " %9.2f TOPS", w.ops / ms / 1e9);
            else
                std::snprintf(line, sizeof line, " %9.2f GOPS", w.ops / ms / 1e6);
            std::cout << line;
            if (m.verified) {
                std::snprintf(line, sizeof line, "%.3f", m.verify_s * 1e3);
                std::cout << (m.matches ? "  verified in " : "  FAILED in ") << line << " ms ("
                          << m.check << ")";
            }
            if (!m.error.empty()) std::cout << "  " << m.error;
            std::cout << "\n";
            if (!m.error.empty()) status = std::max(status, m.matches || !m.verified ? 1 : 3);
            nlohmann::json dispatches = nlohmann::json::object();
            for (const auto& [label, s] : m.dispatches)
                dispatches[label] = to_json(s);
            results.push_back({{"workload", w.name},
                               {"path", m.path},
                               {"variant", m.variant},
                               {"ops", w.ops},
                               {"bytes", w.bytes},
                               {"instruction_gpu_ms", to_json(m.gpu_ms)},
                               {"program_gpu_ms", to_json(m.program_ms)},
                               {"host_submit_wait_ms", to_json(m.host_ms)},
                               {"dispatch_gpu_ms", dispatches},
                               {"verified", m.verified},
                               {"matches", m.matches},
                               {"check", m.check},
                               {"verify_seconds", m.verify_s},
                               {"error", m.error}});
        }
    }
    if (!json_path.empty()) {
        nlohmann::json doc = {{"schema", 1},
                              {"tool", "pxbench"},
                              {"date", now_utc()},
                              {"preset", preset},
                              {"upload", upload},
                              {"runs", runs},
                              {"warmup_ms", warmup_ms},
                              {"device",
                               {{"name", info.name},
                                {"vendor_id", info.vendor_id},
                                {"device_id", info.device_id},
                                {"driver", px::vk::format_driver_version(info)},
                                {"api", px::vk::format_api_version(info.api_version)}}},
                              {"results", results}};
        std::ofstream(json_path) << doc.dump(2) << "\n";
        std::cout << "wrote " << json_path << "\n";
    }
    return status;
}
