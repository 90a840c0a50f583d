// pxrun's run: pick the executor (reference, scheduled kernels, GPU interpreter), run, and verify
// a device's image and status against the reference interpreter.
#include "pxvm/run_program.hpp"

#include "pxvm/program.hpp"

#include <algorithm>
#include <cctype>

namespace px {
namespace {

// The reason a fault happened, taken from the reference's checks where they agree on the code.
Fault fault_from_status(const RunStatus& status, const Image& program,
                        const std::optional<Verification>& verification) {
    Fault fault{status.fault_code, status.fault_pc, "reported by the device"};
    const Fault reference = verification ? verification->reference.fault
                                         : plan_program(program).fault; // static faults only
    if (reference.code == fault.code && reference.pc == fault.pc) fault.reason = reference.reason;
    return fault;
}

} // namespace

bool selects_reference(std::string_view device) {
    return device.size() == 3 && std::tolower(static_cast<unsigned char>(device[0])) == 'c' &&
           std::tolower(static_cast<unsigned char>(device[1])) == 'p' &&
           std::tolower(static_cast<unsigned char>(device[2])) == 'u';
}

std::string_view to_string(ExecutionPath path) {
    return path == ExecutionPath::kernels ? "kernels" : "interpreter";
}

std::optional<ExecutionPath> execution_path_from_name(std::string_view name) {
    if (name == "kernels") return ExecutionPath::kernels;
    if (name == "interpreter") return ExecutionPath::interpreter;
    return std::nullopt;
}

struct ProgramRunner::State {
    RunOptions options;
    std::optional<vk::Runtime> runtime;
    std::optional<vk::Device> device;
};

ProgramRunner::ProgramRunner(RunOptions options) : state_(std::make_unique<State>()) {
    state_->options = std::move(options);
}
ProgramRunner::~ProgramRunner() = default;
ProgramRunner::ProgramRunner(ProgramRunner&&) noexcept = default;
ProgramRunner& ProgramRunner::operator=(ProgramRunner&&) noexcept = default;

Result<ProgramRun> ProgramRunner::run(const Image& program) {
    const RunOptions& options = state_->options;
    ProgramRun run;
    run.result = program;
    if (selects_reference(options.device)) {
        auto outcome = run_reference(run.result, options.reference_limits);
        if (!outcome) return outcome.error();
        run.outcome = *outcome;
        run.device = "cpu (reference interpreter)";
        return run;
    }

    const Plan plan = plan_program(program);
    if (options.verify) // refused now rather than after the device ran
        if (auto fits = check_work(plan, verification_work(plan, options.verify_options),
                                   options.reference_limits);
            !fits)
            return Error{fits.error().code, "cannot check the result: " + fits.error().message};

    if (!state_->device) { // the first device run opens the runtime and the device
        vk::RuntimeOptions runtime_options;
        runtime_options.validate = options.validate;
        runtime_options.timeout = options.timeout;
        auto runtime = vk::Runtime::create(runtime_options);
        if (!runtime)
            return Error{ErrorCode::invalid_input,
                         runtime.error().message +
                             "; or run the reference interpreter alone with --device cpu"};
        state_->runtime.emplace(std::move(runtime.value()));
        auto device = state_->runtime->open(vk::DeviceSelector::parse(options.device));
        if (!device) return device.error();
        state_->device.emplace(std::move(device.value()));
    }
    vk::Runtime& runtime = *state_->runtime;
    vk::Device& device = *state_->device;
    const vk::ValidationMessages before = runtime.validation_messages();
    const vk::DeviceInfo& info = device.info();
    run.device = "[" + std::to_string(info.index) + "] " + info.name + " (Vulkan, ";

    Result<vk::GpuRun> gpu = Error{ErrorCode::invalid_input, "not run"};
    if (options.path == ExecutionPath::interpreter) {
        run.device += "GPU interpreter)";
        gpu = device.run_interpreter(run.result);
    } else {
        auto schedule = vk::schedule_program(plan, program.width(), program.height(), info,
                                             vk::ScheduleOptions{options.variant});
        if (!schedule) return schedule.error();
        run.device +=
            "scheduled kernels, " + std::string(vk::to_string(schedule->variant)) + " variant)";
        run.schedule = schedule->steps;
        gpu = device.run(schedule->dispatches, run.result);
    }
    // This run's messages: those since the run began.
    run.validation = runtime.validation_messages();
    run.validation.errors -= before.errors;
    run.validation.warnings -= before.warnings;
    run.validation.texts.erase(
        run.validation.texts.begin(),
        run.validation.texts.begin() +
            std::ptrdiff_t(std::min(before.texts.size(), run.validation.texts.size())));
    if (!gpu) return gpu.error();
    const vk::PipelineCacheStatus& cache = device.pipeline_cache();
    run.pipeline_cache =
        !cache.enabled ? "disabled"
        : cache.loaded ? cache.path + " (loaded " + std::to_string(cache.loaded_bytes) + " bytes)"
                       : cache.path + " (not loaded: " + cache.note + ")";

    const RunStatus& status = gpu->status;
    if (options.verify) {
        auto verification = verify_against_reference(
            program, run.result, status, options.verify_options, options.reference_limits);
        if (!verification)
            return Error{verification.error().code,
                         "cannot check the result: " + verification.error().message};
        run.verification = std::move(verification.value());
    }
    run.outcome.fault = fault_from_status(status, program, run.verification);
    run.outcome.halted = status.halted != 0;
    run.outcome.executed = status.executed;
    run.gpu = std::move(gpu.value());
    return run;
}

Result<ProgramRun> run_program(const Image& program, const RunOptions& options) {
    return ProgramRunner(options).run(program);
}

ExitStatus exit_status(const ProgramRun& run) {
    return exit_status(run.outcome, run.verification && !run.verification->matches(),
                       run.validation.total());
}

} // namespace px
