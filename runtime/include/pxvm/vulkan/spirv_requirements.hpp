// What a SPIR-V compute module asks of a device (capabilities, workgroup size; read by
// pxvm/spirv_module.hpp), checked against a DeviceInfo before a pipeline is created, so a missing
// feature is a clear error, not a crash.
#pragma once

#include "pxvm/result.hpp"
#include "pxvm/vulkan/device_info.hpp"

#include <cstdint>
#include <span>
#include <string_view>

namespace px::vk {

/// Succeeds when `device` has every feature the module's capabilities need and its workgroup
/// fits the device's limits; otherwise says which feature or limit is missing, e.g.
/// "kernel 'interpreter' needs shaderInt64 (SPIR-V capability Int64), which llvmpipe lacks".
Result<void> check_kernel_support(std::string_view kernel, std::span<const std::uint32_t> spirv,
                                  const DeviceInfo& device);

} // namespace px::vk
