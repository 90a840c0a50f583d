// pxc pack: a window-MLP cartridge from float weights in safetensors (docs/CARTRIDGE.md). The
// weights are quantised to i8 with one scale per tensor; the hidden activations to 8 bits with
// scales calibrated on real text (the float model run over windows of it); biases to i32.
#pragma once

#include "pxvm/cartridge.hpp"
#include "pxvm/safetensors.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace px {

struct PackOptions {
    std::uint32_t batch = 1;                  ///< windows per run (rows of the input slot)
    std::uint32_t calibration_windows = 8192; ///< windows of the calibration text used
    std::string name, licence, description;
    std::string self_test_prompt; ///< empty: no self-test
    std::uint32_t self_test_tokens = 0;
};

struct PackedCartridge {
    Image image;
    CartridgeManifest manifest;
    std::string report; ///< scales, layout and sizes, one line each
};

/// Quantises and lays out the model; the self-test's expected text comes from the reference.
Result<PackedCartridge> pack_cartridge(const Safetensors& weights, std::string_view calibration,
                                       const PackOptions& options);

/// The float model of the safetensors file run over `windows` (batch x context ids): the logits.
Result<std::vector<std::vector<float>>>
float_logits(const Safetensors& weights, const std::vector<std::vector<std::uint32_t>>& windows);

} // namespace px
