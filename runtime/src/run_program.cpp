// pxrun's run: pick the executor, run, and verify a device's image and status against the
// reference interpreter.
#include "pxvm/run_program.hpp"

#include "pxvm/program.hpp"

namespace px {
namespace {

// The reason a fault happened, taken from the reference's checks where they agree on the code.
Fault fault_from_status(const RunStatus& status, const Image& program,
                        const std::optional<Verification>& verification) {
    Fault fault{status.fault_code, status.fault_pc, "reported by the GPU interpreter"};
    const Fault reference = verification ? verification->reference.fault
                                         : plan_program(program).fault; // static faults only
    if (reference.code == fault.code && reference.pc == fault.pc) fault.reason = reference.reason;
    return fault;
}

} // namespace

Result<ProgramRun> run_program(const Image& program, const RunOptions& options) {
    ProgramRun run;
    run.result = program;
    if (options.device == "cpu") {
        run.outcome = run_reference(run.result);
        run.device = "cpu (reference interpreter)";
        return run;
    }

    vk::RuntimeOptions runtime_options;
    runtime_options.validate = options.validate;
    if (options.timeout) runtime_options.timeout = *options.timeout;
    auto runtime = vk::Runtime::create(runtime_options);
    if (!runtime)
        return Error{runtime.error().message +
                     "; or run the reference interpreter alone with --device cpu"};
    auto device = runtime->open(vk::DeviceSelector::parse(options.device));
    if (!device) return device.error();
    const vk::DeviceInfo& info = device->info();
    run.device = "[" + std::to_string(info.index) + "] " + info.name + " (Vulkan, GPU interpreter)";

    auto gpu = device->run_interpreter(run.result);
    run.validation = runtime->validation_messages();
    if (!gpu) return gpu.error();
    const vk::PipelineCacheStatus& cache = device->pipeline_cache();
    run.pipeline_cache =
        !cache.enabled ? "disabled"
        : cache.loaded ? cache.path + " (loaded " + std::to_string(cache.loaded_bytes) + " bytes)"
                       : cache.path + " (not loaded: " + cache.note + ")";

    const RunStatus& status = gpu->status;
    if (options.verify) run.verification = verify_against_reference(program, run.result, status);
    run.outcome.fault = fault_from_status(status, program, run.verification);
    run.outcome.halted = status.halted != 0;
    run.outcome.executed = status.executed;
    run.gpu = std::move(gpu.value());
    return run;
}

} // namespace px
