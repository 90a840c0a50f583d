// SPIR-V of every kernel, compiled, validated and reflection-checked at build time and embedded
// into the library from sources generated in the build directory (cmake/PxvmShaders.cmake).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace px {

/// One compiled kernel: its name (the .comp file's stem, e.g. "interpreter") and its SPIR-V.
struct EmbeddedKernel {
    std::string_view name;
    std::span<const std::uint32_t> spirv;
};

/// Every kernel built into this library.
std::span<const EmbeddedKernel> embedded_kernels();
/// The kernel called `name`, or nullptr when it was not built (e.g. a variant the toolchain
/// cannot compile).
const EmbeddedKernel* find_kernel(std::string_view name);

} // namespace px
