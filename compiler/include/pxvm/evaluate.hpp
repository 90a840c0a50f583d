// pxc eval: next-token accuracy and cross-entropy of a cartridge (run by the reference
// interpreter) and, for comparison, of its float twin, over every position of a text.
#pragma once

#include "pxvm/cartridge.hpp"
#include "pxvm/safetensors.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace px {

struct EvalScore {
    std::uint64_t windows = 0;
    double accuracy = 0;      ///< argmax == the next character
    double cross_entropy = 0; ///< mean -ln p(next), nats
};

struct EvalResult {
    EvalScore cartridge;
    std::optional<EvalScore> float_model; ///< when the float weights were given
    std::uint64_t agree = 0;              ///< windows where both predict the same token
};

/// Scores the windows of `text` (each position, its context the `context` characters before it,
/// padded before the start), at most `limit` of them (0: all), `cartridge` on the reference in
/// batches of its batch size. Characters outside the vocabulary are an error.
Result<EvalResult> evaluate(const Cartridge& cartridge, std::string_view text, std::uint64_t limit,
                            const Safetensors* float_weights);

} // namespace px
