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

/// A result a source promises by hand (`.expect`, docs/ASSEMBLY.md): a tensor's values, one
/// pixel, or how the run ends. Conformance cases carry them so that a case cannot inherit a bug
/// of the reference interpreter that made its golden.
struct Expectation {
    enum class Kind { tensor, pixel, fault };
    Kind kind = Kind::tensor;
    std::uint32_t line = 0;
    std::string what;                 ///< the tensor as written ("t3", "logits") or "pixel"/"fault"
    Tensor tensor;                    ///< Kind::tensor: the declaration in force at that line
    std::vector<std::int64_t> values; ///< Kind::tensor: every element, row-major
    std::uint32_t x = 0, y = 0;       ///< Kind::pixel
    Pixel pixel;                      ///< Kind::pixel
    std::uint32_t fault = FAULT_NONE; ///< Kind::fault: the code (FAULT_NONE: no fault)
    std::uint32_t pc = 0;             ///< Kind::fault: the faulting pc
};

/// Checks a run's result against the expectations: empty when every one holds, else the first
/// that does not, with its source line, the first differing element or pixel (expected, actual)
/// and the count of the others ("prog.pxs:9: .expect t3: element [0][2] (pixel (2, 4)) is 7,
/// expected 5; 2 more elements differ").
std::string check_expectations(const std::vector<Expectation>& expectations,
                               const std::string& name, const Image& result,
                               std::uint32_t fault_code, std::uint32_t fault_pc);

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
    /// The `.expect` lines, in source order (not part of the image).
    std::vector<Expectation> expectations;

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
