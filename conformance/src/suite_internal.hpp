// Private to the conformance library: hashing, and the device features a case may need.
#pragma once

#include "pxvm/vulkan/device_info.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace px::conformance {

/// 16 hex digits.
std::string hex64(std::uint64_t value);
/// XXH3-64 of the bytes.
std::uint64_t hash_bytes(const void* data, std::size_t size, std::uint64_t seed = 0);

/// Whether `need` names a device feature a case may list in "needs".
bool known_need(const std::string& need);
/// "int8, int16, int64, storage_8bit, int_dot, subgroup_size_control, cooperative_matrix_nv".
std::string known_needs_text();
/// Whether the device has the feature.
bool has_need(const vk::DeviceInfo& device, const std::string& need);

} // namespace px::conformance
