// Running a program the way pxrun does: on the CPU reference interpreter, or on a Vulkan device
// through the scheduled kernels (one dispatch per instruction, the default) or the GPU
// interpreter, and, for a device, checking the result against the reference pixel for pixel and
// status for status.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/inspect.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/result.hpp"
#include "pxvm/verification.hpp"
#include "pxvm/vulkan/runtime.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace px {

/// How a device runs a program.
enum class ExecutionPath {
    kernels,     ///< one specialised kernel dispatch per instruction (Path B), the fast default
    interpreter, ///< the GPU interpreter in one workgroup (Path A)
};
std::string_view to_string(ExecutionPath path); ///< "kernels", "interpreter"
std::optional<ExecutionPath> execution_path_from_name(std::string_view name);

/// Whether a --device value names the reference interpreter: "cpu", in any case.
bool selects_reference(std::string_view device);

/// Where and how to run.
struct RunOptions {
    /// "cpu" in any case (the reference interpreter), "auto" or "" (the first GPU, else
    /// lavapipe), a device index, or a case-insensitive substring of a device name.
    std::string device = "auto";
    bool verify = true;    ///< check a device's result against the reference interpreter
    bool validate = false; ///< Khronos validation layer on
    std::optional<std::chrono::milliseconds> timeout; ///< fence wait limit of a device run
    ExecutionPath path = ExecutionPath::kernels;
    /// The kernels path's variant; empty: the fastest the device and this build both support.
    std::optional<vk::KernelVariant> variant;
    VerifyOptions verify_options;
    /// The reference's budget, for --device cpu and for the check of a device's result (which is
    /// refused before the device runs when the check would pass max_work).
    ReferenceLimits reference_limits;
};

/// What a run produced.
struct ProgramRun {
    Image result;       ///< the executor's image after the run
    RunOutcome outcome; ///< how the run ended, as the executor reported it
    /// "cpu (reference interpreter)" or "[0] NVIDIA H100 ... (Vulkan, scheduled kernels int-dot)"
    std::string device;
    std::optional<vk::GpuRun> gpu; ///< timings and pipeline information of a device run
    std::string pipeline_cache;    ///< a device's pipeline-cache file and whether it was loaded
    std::vector<vk::ScheduledStep> schedule; ///< the kernels path's dispatches per instruction

    std::optional<Verification> verification; ///< set when a device run was verified
    vk::ValidationMessages validation;
};

/// Runs `program` as `options` say. Errors (with their codes): no such device, no Vulkan, the
/// image does not fit the device, a forced variant the device cannot run (unsupported), device
/// lost, timeout, a run the device stopped (incomplete). A program fault is not an error: it is in
/// `outcome`.
Result<ProgramRun> run_program(const Image& program, const RunOptions& options);

/// pxrun's exit status for a run: mismatch when the verification failed or the validation layer
/// reported, else faulted for a fault, else ran.
ExitStatus exit_status(const ProgramRun& run);

/// Runs programs one after another as run_program does, on one Vulkan runtime and device opened
/// at the first device run and kept (its pipelines reused): `pxrun a.pxi b.pxi ...`. Each run's
/// validation messages are its own.
class ProgramRunner {
public:
    explicit ProgramRunner(RunOptions options);
    ~ProgramRunner();
    ProgramRunner(ProgramRunner&&) noexcept;
    ProgramRunner& operator=(ProgramRunner&&) noexcept;

    Result<ProgramRun> run(const Image& program);

private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace px
