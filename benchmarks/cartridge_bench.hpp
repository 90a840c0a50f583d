// pxbench cartridge: tokens per second of a window-MLP cartridge on a device, per batch size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace px::bench {

struct CartridgeBenchOptions {
    std::string weights;     ///< .safetensors (model/train.py)
    std::string calibration; ///< text for pxc pack's calibration and for the prompts
    std::vector<std::string> batches = {"1", "64", "4096", "max"};
    std::string device = "auto";
    std::string json_path;
    double seconds = 1.0;             ///< timed steps per batch: at least this long
    std::uint32_t verified_steps = 2; ///< steps checked against the reference per batch
};

/// Packs a cartridge per batch size, runs it and prints (and writes as JSON) the step latency,
/// tokens per second and the cost of the reference check. Returns the exit status.
int run_cartridge_bench(const CartridgeBenchOptions& options);

} // namespace px::bench
