// libFuzzer target: the safetensors reader (px::parse_safetensors): header length, JSON, offsets,
// byte counts, tensors tiling the data.
#include "pxvm/safetensors.hpp"

#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)px::parse_safetensors(std::span(data, size), "fuzz.safetensors");
    return 0;
}
