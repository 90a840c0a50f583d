// The device report printed by pxinfo: every device with identity, driver, queues, memory,
// features (cooperative-matrix shapes included), limits and the execution paths pxVM would use,
// as text or as JSON with the same content.
#pragma once

#include "pxvm/vulkan/device_info.hpp"

#include <optional>
#include <string>
#include <vector>

namespace px::vk {

/// The report as JSON text, indented: {"devices": [...], "preferred_device": N or null, "order":
/// "..."}, each device with field names in snake_case, sizes in bytes, versions as strings.
std::string device_report_json(const std::vector<DeviceInfo>& devices,
                               std::optional<std::uint32_t> preferred);

/// The human-readable report of every device; `preferred` is marked as the default.
std::string device_report_text(const std::vector<DeviceInfo>& devices,
                               std::optional<std::uint32_t> preferred);

} // namespace px::vk
