// Names and sizes of the protocol's opcodes, dtypes and faults.
#include "pxvm/protocol.hpp"

#include <array>
#include <utility>

namespace px {
namespace {

struct OpcodeInfo {
    std::uint32_t opcode;
    std::string_view name;
    std::uint32_t length;
};

constexpr std::array<OpcodeInfo, 11> opcodes = {{
    {OP_HALT, "halt", 1},
    {OP_DOT_RGB, "dot_rgb", 1},
    {OP_TENSOR, "tensor", 3},
    {OP_DOT, "dot", 1},
    {OP_MATMUL, "matmul", 1},
    {OP_ADD_BIAS, "add_bias", 1},
    {OP_REQUANT, "requant", 3},
    {OP_RELU, "relu", 1},
    {OP_ARGMAX, "argmax", 1},
    {OP_GATHER_MEAN, "gather_mean", 1},
    {OP_EMBED, "embed", 1},
}};

constexpr std::array<std::string_view, 5> dtype_names = {"", "u8", "i8", "u16", "i32"};

constexpr std::array<std::string_view, FAULT_COUNT> fault_names = {
    "NONE",           "BAD_OPCODE",       "TRUNCATED",     "BAD_OPERAND",
    "BAD_DTYPE",      "UNDEFINED_TENSOR", "OUT_OF_BOUNDS", "PROGRAM_ROW",
    "SHAPE_MISMATCH", "OVERLAP",          "TOKEN_RANGE"};

} // namespace

std::string_view opcode_name(std::uint32_t opcode) {
    for (const auto& info : opcodes)
        if (info.opcode == opcode) return info.name;
    return {};
}

std::optional<std::uint32_t> opcode_from_name(std::string_view name) {
    for (const auto& info : opcodes)
        if (info.name == name) return info.opcode;
    return std::nullopt;
}

std::uint32_t instruction_length(std::uint32_t opcode) {
    for (const auto& info : opcodes)
        if (info.opcode == opcode) return info.length;
    return 0;
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
