// libFuzzer target: pxVM's SPIR-V module reader (px::read_spirv_module) on arbitrary words.
#include "pxvm/spirv_module.hpp"

#include <cstdint>
#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint32_t> words(size / 4);
    if (!words.empty()) std::memcpy(words.data(), data, words.size() * 4);
    (void)px::read_spirv_module(words);
    return 0;
}
