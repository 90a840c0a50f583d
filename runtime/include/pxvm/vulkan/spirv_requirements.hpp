// What a SPIR-V compute module asks of a device (capabilities, workgroup size), checked against a
// DeviceInfo before a pipeline is created, so a missing feature is a clear error, not a crash.
#pragma once

#include "pxvm/result.hpp"
#include "pxvm/vulkan/device_info.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace px::vk {

/// The parts of a SPIR-V module's header and preamble the runtime checks.
struct SpirvModuleInfo {
    std::vector<std::uint32_t> capabilities; ///< OpCapability operands, in module order
    /// LocalSize (or LocalSizeId resolved through constants) of the first compute entry point.
    std::optional<std::array<std::uint32_t, 3>> local_size;
};

/// Reads capabilities and the local size; fails on a module that is not SPIR-V.
Result<SpirvModuleInfo> inspect_spirv(std::span<const std::uint32_t> words);

/// Succeeds when `device` has every feature the module's capabilities need and its workgroup
/// fits the device's limits; otherwise says which feature or limit is missing, e.g.
/// "kernel 'interpreter' needs shaderInt64 (SPIR-V capability Int64), which llvmpipe lacks".
Result<void> check_kernel_support(std::string_view kernel, std::span<const std::uint32_t> spirv,
                                  const DeviceInfo& device);

} // namespace px::vk
