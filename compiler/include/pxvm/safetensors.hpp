// A bounded, checked reader of safetensors files (the format PyTorch users export weights in):
// an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte
// range, then the raw data. F32 tensors (float weights) and I8 and I32 tensors (an integer model,
// model/quantize_transformer.py) are read; every size is checked before it is used.
#pragma once

#include "pxvm/result.hpp"

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace px {

struct FloatTensor {
    std::vector<std::uint64_t> shape;
    std::vector<float> values;          ///< row-major (F32)
    std::string dtype = "F32";          ///< "F32", "I8" or "I32"
    std::vector<std::int64_t> integers; ///< row-major (I8, I32)
};

struct Safetensors {
    std::map<std::string, FloatTensor> tensors;
    std::map<std::string, std::string> metadata; ///< the header's "__metadata__"
};

/// The largest header read (the format's own reference implementation stops at 100 MB).
inline constexpr std::uint64_t MAX_SAFETENSORS_HEADER = 100'000'000;

/// Parses safetensors bytes; `name` is used in messages.
Result<Safetensors> parse_safetensors(std::span<const std::uint8_t> bytes, const std::string& name);
/// Reads and parses a file (at most 4 GiB).
Result<Safetensors> load_safetensors(const std::string& path);

} // namespace px
