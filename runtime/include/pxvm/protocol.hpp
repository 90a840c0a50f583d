// Pixel Protocol v1 for C++: the shared constants (kernels/pxvm_protocol.h) plus names for
// opcodes, dtypes and faults. docs/PROTOCOL.md is the specification.
#pragma once

#include "pxvm_instructions.h"
#include "pxvm_protocol.h"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace px {

/// One row of the instruction table (kernels/pxvm_instructions.h, which documents each field).
struct InstructionInfo {
    std::uint32_t opcode = 0;
    std::string_view name;
    std::uint32_t length = 1;    ///< pixels, extension pixels included
    std::uint32_t used_args = 0; ///< argument channels in use; the others must be 0
    std::uint32_t arity = 0;     ///< tensor operands (G, B, A, then extension pixel 1's R)
    std::array<std::string_view, 4> roles;
    std::uint32_t writes = 0, reads = 0;   ///< bit i: operand i is written / read
    std::array<std::uint32_t, 4> dtypes{}; ///< accepted DT_ bits per operand (0: any)
    std::uint32_t same_dtype = 0;          ///< these operands share the dtype of the lowest one
    std::uint32_t in_place = 0;            ///< an output may be exactly these inputs' region
    bool data_check = false;               ///< a check reads data (TOKEN_RANGE)
    std::uint32_t shape = SHAPE_CUSTOM;
    std::uint32_t lowering = LOWER_CUSTOM;
    std::uint32_t work = WORK_ONE;

    bool writes_operand(std::uint32_t i) const { return (writes >> i & 1u) != 0; }
};

/// Every instruction, in table order.
std::span<const InstructionInfo> instruction_table();
/// The row of an opcode, or nullptr for an unknown opcode.
const InstructionInfo* instruction_info(std::uint32_t opcode);

/// Mnemonic of an opcode ("matmul"), or empty for an unknown opcode.
std::string_view opcode_name(std::uint32_t opcode);
/// Opcode for a mnemonic, if it is one.
std::optional<std::uint32_t> opcode_from_name(std::string_view name);
/// Number of pixels an instruction with this opcode occupies (1 to 3); 0 for unknown opcodes.
std::uint32_t instruction_length(std::uint32_t opcode);

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
