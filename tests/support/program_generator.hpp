// Random pixel programs for differential testing: mostly valid programs that exercise every opcode
// with fitting shapes, plus mutations that raise every fault code. Deterministic for a seed.
#pragma once

#include "pxvm/image.hpp"

#include <cstdint>
#include <string>

namespace pxtest {

/// A generated program and a one-line description for failure messages.
struct GeneratedProgram {
    px::Image image;
    std::string summary; ///< e.g. "seed 17: 23x41, 9 instructions, mutation: shrink height"
};

/// Builds a random program from `seed`. About one program in three is mutated so that it faults
/// (a corrupted instruction pixel, a shrunken image, an out-of-range token id or where row, a
/// transformer instruction with a broken rule, ...).
GeneratedProgram generate_program(std::uint64_t seed);

} // namespace pxtest
