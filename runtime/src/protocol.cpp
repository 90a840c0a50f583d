// Names and sizes of the protocol's opcodes, dtypes and faults.
#include "pxvm/protocol.hpp"

#include <array>
#include <utility>

namespace px {
namespace {

#define PX_TABLE_ROW(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0,     \
                     dt1, dt2, dt3, same, in_place, data, shape, lowering, work)                   \
    InstructionInfo{op,     #name,    length,                                                      \
                    used,   arity,    {role(#r0), role(#r1), role(#r2), role(#r3)},                \
                    writes, reads,    {dt0, dt1, dt2, dt3},                                        \
                    same,   in_place, data != 0u,                                                  \
                    shape,  lowering, work},

// "_" marks an unused operand slot in the table.
constexpr std::string_view role(std::string_view name) {
    return name == "_" ? std::string_view{} : name;
}

constexpr InstructionInfo table[] = {PX_INSTRUCTIONS(PX_TABLE_ROW)};
#undef PX_TABLE_ROW

constexpr std::array<std::string_view, 5> dtype_names = {"", "u8", "i8", "u16", "i32"};

constexpr std::array<std::string_view, FAULT_COUNT> fault_names = {
    "NONE",           "BAD_OPCODE",       "TRUNCATED",     "BAD_OPERAND",
    "BAD_DTYPE",      "UNDEFINED_TENSOR", "OUT_OF_BOUNDS", "PROGRAM_ROW",
    "SHAPE_MISMATCH", "OVERLAP",          "TOKEN_RANGE"};

} // namespace

std::span<const InstructionInfo> instruction_table() {
    return table;
}

const InstructionInfo* instruction_info(std::uint32_t opcode) {
    for (const auto& info : table)
        if (info.opcode == opcode) return &info;
    return nullptr;
}

std::string_view opcode_name(std::uint32_t opcode) {
    const InstructionInfo* info = instruction_info(opcode);
    return info ? info->name : std::string_view{};
}

std::optional<std::uint32_t> opcode_from_name(std::string_view name) {
    for (const auto& info : table)
        if (info.name == name) return info.opcode;
    return std::nullopt;
}

std::uint32_t instruction_length(std::uint32_t opcode) {
    const InstructionInfo* info = instruction_info(opcode);
    return info ? info->length : 0;
}

std::string_view dtype_name(std::uint32_t dtype) {
    return dtype < dtype_names.size() ? dtype_names[dtype] : std::string_view{};
}

std::optional<std::uint32_t> dtype_from_name(std::string_view name) {
    for (std::uint32_t i = 1; i < dtype_names.size(); ++i)
        if (dtype_names[i] == name) return i;
    return std::nullopt;
}

std::uint32_t dtype_size(std::uint32_t dtype) {
    switch (dtype) {
    case DTYPE_U8:
    case DTYPE_I8:
        return 1;
    case DTYPE_U16:
        return 2;
    case DTYPE_I32:
        return 4;
    default:
        return 0;
    }
}

std::int64_t dtype_min(std::uint32_t dtype) {
    switch (dtype) {
    case DTYPE_I8:
        return -128;
    case DTYPE_I32:
        return INT32_MIN;
    default:
        return 0;
    }
}

std::int64_t dtype_max(std::uint32_t dtype) {
    switch (dtype) {
    case DTYPE_U8:
        return 255;
    case DTYPE_I8:
        return 127;
    case DTYPE_U16:
        return 65535;
    case DTYPE_I32:
        return INT32_MAX;
    default:
        return 0;
    }
}

std::string_view fault_name(std::uint32_t code) {
    return code < fault_names.size() ? fault_names[code] : std::string_view{"UNKNOWN"};
}

} // namespace px
