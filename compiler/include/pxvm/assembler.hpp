// The pxVM assembler: turns the .pxs text form of a pixel program (docs/ASSEMBLY.md) into the
// program image, with source line numbers for every instruction and the static checker's warnings.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace px {

/// Where an instruction of row 0 came from in the source.
struct SourceInstruction {
    std::uint32_t pc = 0;     ///< x of the instruction pixel in row 0
    std::uint32_t length = 1; ///< pixels, extension pixels included
    std::uint32_t line = 0;   ///< 1-based source line
};

/// A tensor declared by name (`.tensor NAME DTYPE ROWS COLS`), its id and where it was placed.
struct NamedTensor {
    std::string name;
    std::uint8_t id = 0;
    Tensor tensor;
    std::uint32_t line = 0;
};

/// An assembled program: the image, the source line of every instruction, and warnings.
struct AssembledProgram {
    Image image;
    /// The instructions in row 0, in source (= pc) order.
    std::vector<SourceInstruction> instructions;
    /// Messages such as "prog.pxs:5: warning: fault OUT_OF_BOUNDS (6) at pc 3 (tensor): ...":
    /// the program assembled, but the static checker (px::plan_program) says it will fault.
    std::vector<std::string> warnings;
    /// The named tensors, in source order (the listing `pxc asm` prints).
    std::vector<NamedTensor> named;

    /// The source line of the instruction that covers pixel (pc, 0), or 0 when no instruction
    /// statement covers it.
    std::uint32_t line_of_pc(std::uint32_t pc) const;
};

/// Assembles .pxs source text. `name` (usually the file's path) starts every message:
/// "prog.pxs:7: unknown mnemonic 'matmull' (did you mean 'matmul'?)". The first error stops
/// assembly; a static fault of the finished program is only a warning.
Result<AssembledProgram> assemble(std::string_view source, const std::string& name);

/// Reads the file at `path` and assembles it, naming it `path` in messages.
Result<AssembledProgram> assemble_file(const std::string& path);

} // namespace px
