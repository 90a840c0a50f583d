// The CPU reference interpreter: the oracle every GPU result is checked against. Simple and
// obviously correct first, fast enough to check GPU results second.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace px {

/// How a run ended.
struct RunOutcome {
    Fault fault;                ///< code NONE when the program halted or ran off row 0
    bool halted = false;        ///< stopped at HALT
    std::uint32_t executed = 0; ///< instructions executed (TENSOR declarations included)
};

/// What the reference interpreter may spend on one program (docs/SECURITY.md): a program's
/// files are untrusted, and a 1 MB image can ask for 10^13 multiply-adds.
struct ReferenceLimits {
    /// Operations in all (step_work summed over the steps), checked before anything runs.
    std::uint64_t max_work = 1'000'000'000'000;
    /// Wall-clock limit, checked between steps and inside matmul and gather_mean; none: no limit.
    std::optional<std::chrono::milliseconds> timeout;
    /// How check_work's message names max_work: the flag or the rule that set it.
    std::string limit_name = "--max-work";

    /// No limit at all: for programs the caller trusts.
    static ReferenceLimits none() {
        ReferenceLimits limits;
        limits.max_work = UINT64_MAX;
        return limits;
    }
};

/// The reference's cost of a step, an upper bound in operations: M*N*K multiply-adds for a
/// matmul, the elements of the input for the elementwise instructions and dot, every token slot
/// times the table's width for gather_mean and embed, two rows of the image for dot_rgb, 1 for a
/// declaration.
std::uint64_t step_work(const Step& step, std::uint32_t image_width);
/// step_work of each step of `plan`, in an image of the plan's width.
std::vector<std::uint64_t> reference_work(const Plan& plan);
/// An error (invalid input) when the steps' `work` sums past limits.max_work: "the program needs
/// 1.8·10^13 operations on the reference interpreter ..., more than its limit of 1.0·10^12
/// (--max-work); pc 3 (matmul) alone needs 4.4·10^12".
Result<void> check_work(const Plan& plan, const std::vector<std::uint64_t>& work,
                        const ReferenceLimits& limits);

/// Runs the program in row 0 of `image`, changing the image in place as docs/PROTOCOL.md says:
/// instructions one after another, a fault stops the run and writes the fault pixel. No limits:
/// for programs the caller trusts (tests, the conformance suite's own cases, benchmarks).
RunOutcome run_reference(Image& image);

/// run_reference, calling `after_step(step, image)` after each step that executed (a fault's
/// step is not called; the fault pixel is written after the last call): pxrun --trace.
RunOutcome run_reference(Image& image,
                         const std::function<void(const Step&, const Image&)>& after_step);

/// run_reference within `limits`: a program past max_work is refused before it runs; one that
/// runs past the timeout is an error with code `timeout` naming the instruction, and `image` is
/// then partly executed (callers write nothing).
Result<RunOutcome>
run_reference(Image& image, const ReferenceLimits& limits,
              const std::function<void(const Step&, const Image&)>& after_step = nullptr);

/// Executes one checked step (its dynamic checks included); returns the fault, if any, and
/// leaves the image unchanged in that case.
Fault execute_step(Image& image, const Step& step);

} // namespace px
