// pxc pack: a window-MLP cartridge from float weights in safetensors (docs/CARTRIDGE.md). The
// weights are quantised to i8 with one scale per tensor; the hidden activations to 8 bits with
// scales calibrated on real text (the float model run over windows of it); biases to i32.
#pragma once

#include "pxvm/cartridge.hpp"
#include "pxvm/safetensors.hpp"

#include <cstdint>
#include <functional>
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

/// Quantises and lays out the model; the self-test's expected text comes from the reference. An
/// integer transformer (metadata format "pxvm-transformer-int") goes to pack_transformer.
Result<PackedCartridge> pack_cartridge(const Safetensors& weights, std::string_view calibration,
                                       const PackOptions& options);
/// Lays out an integer transformer (model/quantize_transformer.py already quantised and
/// calibrated it) with its program: docs/CARTRIDGE.md, "The transformer".
Result<PackedCartridge> pack_transformer(const Safetensors& weights, const PackOptions& options);

/// The float model of a safetensors file: one window of `context` ids to its logits. It refers to
/// the tensors of `weights`, which must outlive it.
using FloatForward = std::function<std::vector<float>(const std::vector<std::uint32_t>& window)>;
Result<FloatForward> float_model(const Safetensors& weights);

} // namespace px
