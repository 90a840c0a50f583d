// Looking inside a run of a program, as pxrun does: --stop-at (a HALT in place of the instruction
// at a pc, put back in every result image), --trace (the reference's image after each
// instruction) and --save-reference (the reference's image and where a result differs from it);
// the exit statuses pxrun reports and how several runs combine; and when a cartridge's self-test
// runs. No Vulkan: run_program.hpp gives a device run's status.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/result.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace px {

/// pxrun's exit statuses, from best to worst; several runs report the worst of theirs.
enum class ExitStatus : int {
    ran = 0,       ///< ran to HALT or the end of row 0
    bad_input = 1, ///< bad input, a device error, or an output that could not be written
    faulted = 2,   ///< the program faulted (the fault pixel is written)
    mismatch = 3,  ///< a result differs from the reference, or the validation layer reported
};
/// The status of a run that failed with `error`: mismatch for ErrorCode::mismatch, else
/// bad_input.
ExitStatus exit_status(const Error& error);
/// The status of a run that ended with `outcome`, its result differing from the reference
/// (`mismatch`) or not, and with `validation_messages` from the validation layer.
ExitStatus exit_status(const RunOutcome& outcome, bool mismatch, std::uint64_t validation_messages);
/// The status of several runs: the worst of `a` and `b`.
ExitStatus worst(ExitStatus a, ExitStatus b);

/// A program run as if it halted at pc (pxrun --stop-at): the instruction there and the ones after
/// it do not run, on any device and in the reference.
struct StopAt {
    std::uint32_t pc = 0;
    Pixel instruction; ///< the program's pixel that the HALT replaced

    /// Puts the replaced instruction back into a result image (where the HALT still is; a fault
    /// pixel written there stays).
    void restore(Image& result) const;
    /// Whether a run that ended with `outcome` stopped at the HALT put in: it ran every step of
    /// `executed` (the plan of the program as run) and the instruction replaced was no HALT.
    bool stopped_here(const RunOutcome& outcome, const Plan& executed) const;
};

/// Puts a HALT into `program` at `pc`, which must be the pc of an instruction that runs (any
/// other pixel of row 0 may be part of one). Errors (invalid_input) name `name`: a pc past row 0,
/// or one that is not an instruction's (the message lists the pcs that are).
Result<StopAt> stop_at(Image& program, std::uint32_t pc, const std::string& name);

/// Puts back the instruction `stop` replaced, if any (see StopAt::restore).
void restore(const std::optional<StopAt>& stop, Image& result);

/// Writes the reference interpreter's image after each instruction that changes pixels (every one
/// but TENSOR) into `dir` (created if need be), as step-0003-pc-12-matmul.pxi, ..., then the final
/// image as final.pxi, each with `stop`'s instruction put back (pxrun --trace). `executed` is the
/// program as run. Returns the number of step images. Errors name `name`: the directory cannot be
/// created, the reference's limits, an image that cannot be written.
Result<std::size_t> write_trace(const Image& executed, const std::string& dir,
                                const ReferenceLimits& limits, const std::optional<StopAt>& stop,
                                const std::string& name);

/// The reference interpreter's result of `executed` (the program as run), with `stop`'s
/// instruction put back: what a device's result must equal (pxrun --save-reference). Errors name
/// `name` (the reference's limits).
Result<Image> reference_image(const Image& executed, const ReferenceLimits& limits,
                              const std::optional<StopAt>& stop, const std::string& name);

/// The path of the picture of differences beside a saved reference image: FILE.diff.png.
std::string difference_path(const std::string& reference_path);

/// When `actual` differs from `expected`, writes difference_image(expected, actual) to
/// difference_path(reference_path) and returns that path; returns nothing when they are equal.
Result<std::optional<std::string>> save_difference(const Image& expected, const Image& actual,
                                                   const std::string& reference_path);

/// What a cartridge run was asked for on pxrun's command line.
struct GenerationFlags {
    bool self_test = false;    ///< --self-test
    bool prompt_given = false; ///< --prompt (perhaps empty)
    bool batch_given = false;  ///< --batch
    bool tokens_given = false; ///< --tokens
    double temperature = 0;    ///< --temperature
};

/// Whether the cartridge's self-test runs (greedily, the manifest's prompt and token count, its
/// continuation checked): when asked for, or when nothing else is. An error (invalid_input) when
/// --self-test comes with --prompt, --batch, --temperature or --tokens.
Result<bool> runs_self_test(const GenerationFlags& flags);

} // namespace px
