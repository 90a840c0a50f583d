// The CPU reference interpreter: the oracle every GPU result is checked against. Simple and
// obviously correct first, fast enough to check GPU results second.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"

#include <cstdint>
#include <functional>

namespace px {

/// How a run ended.
struct RunOutcome {
    Fault fault;                ///< code NONE when the program halted or ran off row 0
    bool halted = false;        ///< stopped at HALT
    std::uint32_t executed = 0; ///< instructions executed (TENSOR declarations included)
};

/// Runs the program in row 0 of `image`, changing the image in place as docs/PROTOCOL.md says:
/// instructions one after another, a fault stops the run and writes the fault pixel.
RunOutcome run_reference(Image& image);

/// run_reference, calling `after_step(step, image)` after each step that executed (a fault's
/// step is not called; the fault pixel is written after the last call): pxrun --trace.
RunOutcome run_reference(Image& image,
                         const std::function<void(const Step&, const Image&)>& after_step);

/// Executes one checked step (its dynamic checks included); returns the fault, if any, and
/// leaves the image unchanged in that case.
Fault execute_step(Image& image, const Step& step);

} // namespace px
