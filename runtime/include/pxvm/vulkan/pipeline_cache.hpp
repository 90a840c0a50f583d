// The on-disk pipeline cache: where its files live, what they are called, and the header check
// that keeps a file written by another device or driver out of vkCreatePipelineCache.
#pragma once

#include "pxvm/result.hpp"
#include "pxvm/vulkan/device_info.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace px::vk {

/// The cache directory: `configured` if non-empty, else $PXVM_CACHE_DIR, else
/// $XDG_CACHE_HOME/pxvm, else $HOME/.cache/pxvm; empty when none of these is set.
std::string pipeline_cache_directory(const std::string& configured);

/// "<vendorID>-<deviceID>-<driverVersion>-<pipelineCacheUUID>.vkpc", all lower-case hex.
std::string pipeline_cache_file_name(const DeviceInfo& device);

/// Checks a cache blob's VkPipelineCacheHeaderVersionOne against the device: header size and
/// version, vendor and device id, pipeline cache UUID. The error says which field differs.
Result<void> check_pipeline_cache_header(std::span<const std::uint8_t> data,
                                         const DeviceInfo& device);

} // namespace px::vk
