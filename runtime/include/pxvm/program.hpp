// The one instruction decoder of pxVM and the static checker built on it. The reference
// interpreter, the GPU scheduler and the disassembler all read programs through this file; the GPU
// interpreter (kernels/interpreter.comp) mirrors it and the differential tests prove they agree.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/protocol.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace px {

/// A tensor: a rectangle of the image holding rows x cols elements of one dtype
/// (docs/PROTOCOL.md section 3).
struct Tensor {
    std::uint32_t x = 0, y = 0, rows = 0, cols = 0, dtype = 0;

    /// Width of the tensor's pixel rectangle: ceil(dtype_size * cols / 4).
    std::uint32_t pixel_width() const;
    /// Whether the pixel rectangles share a pixel.
    bool overlaps(const Tensor& other) const;
    /// Same origin, shape and dtype.
    bool same_region(const Tensor& other) const;
    /// Byte offset of element (r, c) in the image.
    std::size_t byte_offset(std::uint32_t image_width, std::uint32_t r, std::uint32_t c) const;
    bool operator==(const Tensor&) const = default;
};

/// One decoded instruction of row 0.
struct Instruction {
    std::uint32_t pc = 0;               ///< x of the instruction pixel in row 0
    std::uint32_t opcode = 0;           ///< R channel
    std::uint32_t length = 1;           ///< pixels, extension pixels included
    std::array<std::uint8_t, 3> args{}; ///< G, B, A channels
    std::array<Pixel, 2> extension{};   ///< extension pixels (TENSOR, REQUANT, RMSNORM, ATTEND)

    /// The tensor id naming operand i: channels G, B, A for 0-2, the first extension pixel's R
    /// for 3.
    std::uint32_t operand_id(std::size_t i) const { return i < 3 ? args[i] : extension[0].r; }
    /// TENSOR: the declared tensor (id in args[0]).
    Tensor declared() const;
    /// REQUANT fields from the extension pixels.
    std::int32_t multiplier() const;
    std::uint32_t shift() const;
    std::int32_t zero_point() const;
    /// RMSNORM: the shift of its extension pixel.
    std::uint32_t norm_shift() const { return extension[0].r; }
    /// ATTEND fields from the extension pixels: heads, the score shift and multiplier.
    std::uint32_t heads() const { return extension[0].g; }
    std::uint32_t score_shift() const { return extension[0].b; }
    std::uint32_t score_multiplier() const;
};

/// A fault: protocol code, the pc of the faulting instruction and a sentence saying why.
struct Fault {
    std::uint32_t code = FAULT_NONE;
    std::uint32_t pc = 0;
    std::string reason;

    explicit operator bool() const { return code != FAULT_NONE; }
};

/// "fault BAD_DTYPE (4) at pc 5 (matmul): operand b is u8, ...".
std::string describe(const Fault& fault, const Image& image);

/// The instruction at pc (< image width), or a decoding fault (BAD_OPCODE, TRUNCATED, reserved
/// channels not 0).
struct Decoded {
    Instruction instruction;
    Fault fault;
};
Decoded decode_instruction(const Image& image, std::uint32_t pc);

/// An instruction whose operands passed every static check, with its tensors resolved
/// (operands[i] is the tensor named by Instruction::operand_id(i)).
struct Step {
    Instruction instruction;
    std::array<Tensor, 4> operands{};
};

/// The pixel regions a step writes: the operands the instruction table marks as written (a
/// dot_rgb: its one output pixel (0, rowOut), as a 1x1 i32 region); none for TENSOR and HALT.
std::vector<Tensor> written_regions(const Step& step);

/// A whole program checked statically: the steps that run, then how it ends.
struct Plan {
    std::vector<Step> steps;
    Fault fault;             ///< static fault at the instruction after the last step, if any
    bool halted = false;     ///< ended at HALT (else at the end of row 0, or at the fault)
    std::uint32_t width = 0; ///< the image's width, which bounds what a dot_rgb reads
};

/// Decodes and checks row 0 from pc 0 to HALT, the end of the row or the first static fault.
/// Every check except the token ids of GATHER_MEAN and EMBED and the (slot, position) pairs of
/// KVSTORE and ATTEND is static; see check_tokens and check_where.
Plan plan_program(const Image& image);

/// The dynamic check of GATHER_MEAN and EMBED: the number of tokens checked (for GATHER_MEAN,
/// those before the first id 0; for EMBED, all), or a TOKEN_RANGE fault naming the first id out
/// of range.
struct TokenCount {
    std::uint32_t count = 0;
    Fault fault;
};
TokenCount check_tokens(const Image& image, const Step& gather);

/// The dynamic check of KVSTORE and ATTEND: every row's (slot, position) of `where` names a
/// slot and position of the cache, and for KVSTORE the pairs strictly increase row by row. A
/// TOKEN_RANGE fault names the first row that fails.
Fault check_where(const Image& image, const Step& step);
/// Slots and positions of a KVSTORE or ATTEND step's cache.
struct CacheShape {
    std::uint32_t slots = 0, positions = 0, slot_cols = 0;
};
CacheShape cache_shape(const Step& step);

/// Reads element (r, c) of a tensor, sign- or zero-extended per its dtype.
std::int64_t load_element(const Image& image, const Tensor& t, std::uint32_t r, std::uint32_t c);
/// Writes element (r, c); the value must already be in the dtype's range (or wrap for i32).
void store_element(Image& image, const Tensor& t, std::uint32_t r, std::uint32_t c,
                   std::int64_t value);

/// Writes the fault pixel (W-1, 0) = (code, pc & 255, pc >> 8, 255).
void write_fault_pixel(Image& image, const Fault& fault);

} // namespace px
