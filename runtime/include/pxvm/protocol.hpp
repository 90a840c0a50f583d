// Pixel Protocol v1 for C++: the shared constants (kernels/pxvm_protocol.h) plus names for
// opcodes, dtypes and faults. docs/PROTOCOL.md is the specification.
#pragma once

#include "pxvm_protocol.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace px {

/// Mnemonic of an opcode ("matmul"), or empty for an unknown opcode.
std::string_view opcode_name(std::uint32_t opcode);
/// Opcode for a mnemonic, if it is one.
std::optional<std::uint32_t> opcode_from_name(std::string_view name);
/// Number of pixels an instruction with this opcode occupies (1 or 3); 0 for unknown opcodes.
std::uint32_t instruction_length(std::uint32_t opcode);

/// The x just past the last pixel instructions may occupy in a row 0 `width` pixels wide: the last
/// pixel, (W-1, 0), is the fault pixel and never an instruction (docs/PROTOCOL.md section 2).
constexpr std::uint32_t instruction_end(std::uint32_t width) {
    return width == 0 ? 0 : width - 1;
}

/// "u8", "i8", "u16", "i32", or empty for an unknown code.
std::string_view dtype_name(std::uint32_t dtype);
std::optional<std::uint32_t> dtype_from_name(std::string_view name);
/// Bytes per element (1, 2 or 4); 0 for an unknown code.
std::uint32_t dtype_size(std::uint32_t dtype);
/// Smallest and largest value of a dtype.
std::int64_t dtype_min(std::uint32_t dtype);
std::int64_t dtype_max(std::uint32_t dtype);

/// "BAD_OPCODE", ...; "NONE" for 0 and "UNKNOWN" past the last code.
std::string_view fault_name(std::uint32_t code);

} // namespace px
