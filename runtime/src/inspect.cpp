// pxrun's ways of looking inside a run (--stop-at, --trace, --save-reference), its exit statuses
// and the cartridge self-test rule; see pxvm/inspect.hpp.
#include "pxvm/inspect.hpp"

#include "pxvm/report.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

namespace px {

ExitStatus exit_status(const Error& error) {
    return error.code == ErrorCode::mismatch ? ExitStatus::mismatch : ExitStatus::bad_input;
}

ExitStatus exit_status(const RunOutcome& outcome, bool mismatch,
                       std::uint64_t validation_messages) {
    if (mismatch || validation_messages) return ExitStatus::mismatch;
    return outcome.fault ? ExitStatus::faulted : ExitStatus::ran;
}

ExitStatus worst(ExitStatus a, ExitStatus b) {
    return std::max(a, b);
}

void StopAt::restore(Image& result) const {
    if (result.pixel(pc, 0) == Pixel{OP_HALT, 0, 0, 0}) result.set_pixel(pc, 0, instruction);
}

bool StopAt::stopped_here(const RunOutcome& outcome, const Plan& executed) const {
    return outcome.halted && outcome.executed == executed.steps.size() && executed.halted &&
           instruction.r != OP_HALT;
}

Result<StopAt> stop_at(Image& program, std::uint32_t pc, const std::string& name) {
    if (pc >= program.width())
        return Error{ErrorCode::invalid_input, name + ": --stop-at " + std::to_string(pc) +
                                                   " is past row 0, which ends at x = " +
                                                   std::to_string(program.width() - 1)};
    // Only at an instruction that would run: any other pixel may be part of one.
    const Plan whole = plan_program(program);
    const bool at_step = std::any_of(whole.steps.begin(), whole.steps.end(),
                                     [&](const Step& s) { return s.instruction.pc == pc; });
    if (!at_step) {
        std::string pcs;
        for (const Step& s : whole.steps)
            pcs += (pcs.empty() ? "" : ", ") + std::to_string(s.instruction.pc);
        return Error{ErrorCode::invalid_input,
                     name + ": --stop-at " + std::to_string(pc) +
                         " is not the pc of an instruction that runs (they are at " +
                         (pcs.empty() ? "none" : pcs) + ")"};
    }
    const StopAt stop{pc, program.pixel(pc, 0)};
    program.set_pixel(pc, 0, Pixel{OP_HALT, 0, 0, 0});
    return stop;
}

void restore(const std::optional<StopAt>& stop, Image& result) {
    if (stop) stop->restore(result);
}

Result<std::size_t> write_trace(const Image& executed, const std::string& dir,
                                const ReferenceLimits& limits, const std::optional<StopAt>& stop,
                                const std::string& name) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return Error{ErrorCode::invalid_input,
                     "--trace: cannot create " + dir + ": " + ec.message()};
    const auto save = [&](Image image, const std::string& file) {
        restore(stop, image);
        return save_png(image, (std::filesystem::path(dir) / file).string());
    };
    Image image = executed;
    std::size_t index = 0, written = 0;
    Result<void> saved;
    auto traced = run_reference(image, limits, [&](const Step& step, const Image& now) {
        ++index;
        if (!saved || step.instruction.opcode == OP_TENSOR) return; // changes no pixel
        char file[96];
        std::snprintf(file, sizeof file, "step-%04zu-pc-%u-%s.pxi", index, step.instruction.pc,
                      std::string(opcode_name(step.instruction.opcode)).c_str());
        saved = save(now, file);
        written += bool(saved);
    });
    if (!traced) return Error{traced.error().code, name + ": --trace: " + traced.error().message};
    if (!saved) return saved.error();
    if (auto final_saved = save(image, "final.pxi"); !final_saved) return final_saved.error();
    return written;
}

Result<Image> reference_image(const Image& executed, const ReferenceLimits& limits,
                              const std::optional<StopAt>& stop, const std::string& name) {
    Image reference = executed;
    if (auto ran = run_reference(reference, limits); !ran)
        return Error{ran.error().code, name + ": --save-reference: " + ran.error().message};
    restore(stop, reference);
    return reference;
}

std::string difference_path(const std::string& reference_path) {
    return reference_path + ".diff.png";
}

Result<std::optional<std::string>> save_difference(const Image& expected, const Image& actual,
                                                   const std::string& reference_path) {
    if (expected == actual) return std::optional<std::string>();
    const std::string diff = difference_path(reference_path);
    if (auto saved = save_png(difference_image(expected, actual), diff); !saved)
        return saved.error();
    return std::optional<std::string>(diff);
}

Result<bool> runs_self_test(const GenerationFlags& flags) {
    const bool other =
        flags.prompt_given || flags.batch_given || flags.temperature > 0 || flags.tokens_given;
    if (flags.self_test && other)
        return Error{ErrorCode::invalid_input,
                     "--self-test runs the manifest's prompt, greedily, for its own token count: "
                     "drop --prompt, --batch, --temperature and --tokens"};
    return flags.self_test || !other;
}

} // namespace px
