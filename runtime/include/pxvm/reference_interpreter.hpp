// The CPU reference interpreter: the oracle every GPU result is checked against. Simple and
// obviously correct first, fast enough to check GPU results second.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"

#include <cstdint>

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

/// Executes one checked step (its dynamic checks included); returns the fault, if any, and
/// leaves the image unchanged in that case.
Fault execute_step(Image& image, const Step& step);

} // namespace px
