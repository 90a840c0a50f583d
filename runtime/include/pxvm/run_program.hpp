// Running a program the way pxrun does: on the CPU reference interpreter or on a Vulkan device
// through the GPU interpreter, and, for a device, checking the result against the reference
// pixel for pixel and status for status.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/result.hpp"
#include "pxvm/verification.hpp"
#include "pxvm/vulkan/runtime.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace px {

/// Where and how to run.
struct RunOptions {
    /// "cpu" (the reference interpreter), "auto" or "" (the first GPU, else lavapipe), a device
    /// index, or a case-insensitive substring of a device name.
    std::string device = "auto";
    bool verify = true;    ///< check a device's result against the reference interpreter
    bool validate = false; ///< Khronos validation layer on
    std::optional<std::chrono::milliseconds> timeout; ///< fence wait limit of a device run
};

/// What a run produced.
struct ProgramRun {
    Image result;       ///< the executor's image after the run
    RunOutcome outcome; ///< how the run ended, as the executor reported it
    std::string device; ///< "cpu (reference interpreter)" or "[0] NVIDIA H100 ... (Vulkan)"
    std::optional<vk::GpuRun> gpu; ///< timings and pipeline information of a device run
    std::string pipeline_cache;    ///< a device's pipeline-cache file and whether it was loaded

    std::optional<Verification> verification; ///< set when a device run was verified
    vk::ValidationMessages validation;
};

/// Runs `program` as `options` say. Errors: no such device, no Vulkan, the image does not fit the
/// device, device lost, timeout. A program fault is not an error: it is in `outcome`.
Result<ProgramRun> run_program(const Image& program, const RunOptions& options);

} // namespace px
