// Load test: many runs in one process must not grow its memory. Three ways a long-lived user runs
// work, each N times on one device:
//   program    px::ProgramRunner::run on a program (assets/tensor_demo.pxi): per run, a resident
//   image, a
//              recording, a submit, the read-back and the verification; pipelines kept;
//   recording  one resident image and one recording, run() and read back N times (buffers,
//              descriptor pool, command buffer and pipelines all reused);
//   cartridge  N generation steps of a cartridge (assets/kjv.pxa) through one CartridgeSession.
// For each it prints the resident set size after a warm-up and after the N runs, and exits 1
// when any grew by more than --max-growth-kib.
// Usage: pxbench_load PROGRAM.pxi CARTRIDGE.pxa [--runs N] [--device D]
#include "pxvm/cartridge.hpp"
#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/run_program.hpp"
#include "pxvm/vulkan/cartridge_session.hpp"
#include "pxvm/vulkan/runtime.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include "cli_support.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <unistd.h>

// AddressSanitizer keeps freed memory in quarantine (256 MB by default), so the resident set grows
// under it whatever the program does: the runs are still checked, their memory only reported.
#if defined(__SANITIZE_ADDRESS__)
#define PXVM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PXVM_ASAN 1
#endif
#endif
#ifdef PXVM_ASAN
constexpr bool memory_measurable = false;
#else
constexpr bool memory_measurable = true;
#endif

namespace {

/// The process's resident set size in KiB, from /proc/self/statm.
long resident_kib() {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

struct Load {
    std::string name;
    long warm_kib = 0, end_kib = 0;
    double seconds = 0;
};

/// Prints the error as pxbench_load's; the exit status 1.
int fail(const px::Error& error) {
    std::cerr << "pxbench_load: " << error.message << "\n";
    return 1;
}

/// Runs `once` `warmup` times, then `runs` times, measuring memory after each part; the first
/// error stops it.
px::Result<Load> measure(const std::string& name, std::uint32_t warmup, std::uint32_t runs,
                         const std::function<px::Result<void>()>& once) {
    Load load{name};
    for (std::uint32_t i = 0; i < warmup; ++i)
        if (auto r = once(); !r) return r.error();
    load.warm_kib = resident_kib();
    const auto start = std::chrono::steady_clock::now();
    for (std::uint32_t i = 0; i < runs; ++i)
        if (auto r = once(); !r)
            return px::Error{r.error().code,
                             name + " run " + std::to_string(i + 1) + ": " + r.error().message};
    load.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    load.end_kib = resident_kib();
    return load;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pxbench_load: many runs in one process, and the memory they take: a program "
                 "through ProgramRunner, a recording run again and again, and cartridge steps. "
                 "Exits 1 when the resident set grew by more than --max-growth-kib in any."};
    std::uint32_t runs = 10000, warmup = 100;
    long max_growth_kib = 4096;
    std::string device = "auto", demo_path, cartridge_path;
    app.add_option("program", demo_path, "the program to run (e.g. assets/tensor_demo.pxi)")
        ->required();
    app.add_option("cartridge", cartridge_path, "the cartridge to step (e.g. assets/kjv.pxa)")
        ->required();
    app.add_option("--runs", runs, "runs of each kind after the warm-up")
        ->capture_default_str()
        ->check(CLI::Range(1u, 10'000'000u));
    app.add_option("--warmup", warmup, "runs before the first measurement")
        ->capture_default_str()
        ->check(CLI::Range(1u, 100'000u));
    app.add_option("--device,-d", device, "the device: 'auto', an index or a part of a name")
        ->capture_default_str();
    app.add_option("--max-growth-kib", max_growth_kib,
                   "the most the resident set may grow over the runs of one kind")
        ->capture_default_str();
    pxcli::add_version(app, "pxbench_load");
    PXCLI_PARSE(app, argc, argv);

    auto demo = px::load_png(demo_path);
    if (!demo) return fail(demo.error());
    auto cartridge = px::load_cartridge(cartridge_path);
    if (!cartridge) return fail(cartridge.error());

    std::vector<Load> loads;
    const auto record = [&](px::Result<Load> load) {
        if (!load) {
            fail(load.error());
            return false;
        }
        loads.push_back(*load);
        return true;
    };

    // A program through ProgramRunner, verified each time.
    px::RunOptions options;
    options.device = device;
    px::ProgramRunner runner(options);
    std::string device_name;
    if (!record(measure("program", warmup, runs, [&]() -> px::Result<void> {
            auto run = runner.run(*demo);
            if (!run) return run.error();
            if (!run->verification || !run->verification->matches())
                return px::Error{px::ErrorCode::mismatch, "the result differs from the reference"};
            device_name = run->device;
            return {};
        })))
        return 1;

    // One recording, run again and again.
    {
        auto runtime = px::vk::Runtime::create({});
        if (!runtime) return fail(runtime.error());
        auto opened = runtime->open(px::vk::DeviceSelector::parse(device));
        if (!opened) return fail(opened.error());
        px::vk::Device& gpu = *opened;
        auto schedule = px::vk::schedule_program(px::plan_program(*demo), demo->width(),
                                                 demo->height(), gpu.info());
        if (!schedule) return fail(schedule.error());
        auto resident = gpu.upload(*demo);
        if (!resident) return fail(resident.error());
        auto recording = gpu.record(*resident, schedule->dispatches);
        if (!recording) return fail(recording.error());
        px::Image result = *demo;
        if (!record(measure("recording", warmup, runs, [&]() -> px::Result<void> {
                auto run = recording->run();
                if (!run) return run.error();
                return resident->read(result);
            })))
            return 1;
        // Each run starts from the image the last one left; this program computes its outputs
        // anew from inputs it never writes, so after any number of runs it is the reference's.
        px::Image expected = *demo;
        px::run_reference(expected);
        if (!(result == expected)) {
            std::cerr << "pxbench_load: the recording's image after " << warmup + runs
                      << " runs differs from the reference's: "
                      << px::describe(px::compare_images(expected, result)) << "\n";
            return 1;
        }
    }

    // Cartridge steps, one window each, through one session.
    {
        px::vk::CartridgeSessionOptions so;
        so.device = device;
        so.verify = false;
        so.read_logits = false;
        auto session = px::vk::CartridgeSession::open(*cartridge, so);
        if (!session) return fail(session.error());
        auto prompt = px::tokenize(cartridge->manifest, "In the");
        if (!prompt) return fail(prompt.error());
        px::GenerateOptions g;
        g.tokens = 1;
        if (!record(measure("cartridge", warmup, runs, [&]() -> px::Result<void> {
                auto generated = session->generate({*prompt}, g);
                if (!generated) return generated.error();
                return {};
            })))
            return 1;
    }

    std::printf("pxbench_load: %u runs of each kind after %u warm-up runs, on %s\n", runs, warmup,
                device_name.c_str());
    bool grew = false;
    for (const Load& l : loads) {
        const long growth = l.end_kib - l.warm_kib;
        grew = grew || growth > max_growth_kib;
        std::printf("  %-10s %8.3f s (%7.1f us a run)  resident %7.1f MiB after the warm-up, "
                    "%7.1f MiB after the runs: %+ld KiB (%+.3f KiB a run)%s\n",
                    l.name.c_str(), l.seconds, 1e6 * l.seconds / runs, l.warm_kib / 1024.0,
                    l.end_kib / 1024.0, growth, double(growth) / runs,
                    growth > max_growth_kib ? "  GREW" : "");
    }
    if (!memory_measurable) {
        std::printf("pxbench_load: built with AddressSanitizer, whose quarantine of freed memory "
                    "grows the resident set: growth reported, not checked\n");
        return 0;
    }
    if (grew)
        std::printf("pxbench_load: memory grew by more than %ld KiB over the runs of one kind\n",
                    max_growth_kib);
    return grew ? 1 : 0;
}
