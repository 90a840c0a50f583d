// pxrun's run: pick the executor, run, and verify a device's image and status against the
// reference interpreter.
#include "pxvm/run_program.hpp"

#include "pxvm/program.hpp"

namespace px {
namespace {

// The reason a fault happened, taken from the reference's checks where they agree on the code.
Fault fault_from_status(const RunStatus& status, const Image& program,
                        const std::optional<RunOutcome>& reference) {
    Fault fault{status.fault_code, status.fault_pc, "reported by the GPU interpreter"};
    if (reference && reference->fault.code == fault.code && reference->fault.pc == fault.pc)
        fault.reason = reference->fault.reason;
    else if (const Plan plan = plan_program(program);
             plan.fault.code == fault.code && plan.fault.pc == fault.pc)
        fault.reason = plan.fault.reason;
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
    if (!runtime) return runtime.error();
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

    std::optional<RunOutcome> reference;
    if (options.verify) {
        Image expected = program;
        reference = run_reference(expected);
        run.verified = true;
        run.difference = compare_images(expected, run.result);
    }
    const RunStatus& status = gpu->status;
    run.outcome.fault = fault_from_status(status, program, reference);
    run.outcome.halted = status.halted != 0;
    run.outcome.executed = status.executed;
    if (reference) {
        const RunOutcome& r = *reference;
        if (r.fault.code != status.fault_code || (r.fault && r.fault.pc != status.fault_pc) ||
            r.halted != (status.halted != 0) || r.executed != status.executed)
            run.status_mismatch =
                "the reference ended with fault " + std::string(fault_name(r.fault.code)) +
                " at pc " + std::to_string(r.fault.pc) + ", " + std::to_string(r.executed) +
                " instructions executed, halted " + (r.halted ? "yes" : "no") +
                "; the device reported fault " + std::string(fault_name(status.fault_code)) +
                " at pc " + std::to_string(status.fault_pc) + ", " +
                std::to_string(status.executed) + " executed, halted " +
                (status.halted ? "yes" : "no");
    }
    run.gpu = std::move(gpu.value());
    return run;
}

} // namespace px
