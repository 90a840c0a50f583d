// Pipeline cache files: directory, per-device file name, and the header check.
#include "pxvm/vulkan/pipeline_cache.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace px::vk {

namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

std::uint32_t read_u32(std::span<const std::uint8_t> data, std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, data.data() + at, 4);
    return v; // Vulkan writes the header in host byte order
}

std::string hex(std::uint32_t v) {
    char text[16];
    std::snprintf(text, sizeof text, "%x", v);
    return text;
}

} // namespace

std::string pipeline_cache_directory(const std::string& configured) {
    if (!configured.empty()) return configured;
    if (std::string dir = env("PXVM_CACHE_DIR"); !dir.empty()) return dir;
    if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty()) return xdg + "/pxvm";
    if (std::string home = env("HOME"); !home.empty()) return home + "/.cache/pxvm";
    return "";
}

std::string pipeline_cache_file_name(const DeviceInfo& device) {
    return hex(device.vendor_id) + "-" + hex(device.device_id) + "-" + hex(device.driver_version) +
           "-" + format_uuid(device.pipeline_cache_uuid) + ".vkpc";
}

Result<void> check_pipeline_cache_header(std::span<const std::uint8_t> data,
                                         const DeviceInfo& device) {
    // VkPipelineCacheHeaderVersionOne: headerSize, headerVersion, vendorID, deviceID (4 bytes
    // each), pipelineCacheUUID (16 bytes).
    constexpr std::size_t header_size = 16 + VK_UUID_SIZE;
    if (data.size() < header_size)
        return Error{ErrorCode::invalid_input,
                     "file is " + std::to_string(data.size()) + " bytes, shorter than a header"};
    const std::uint32_t size = read_u32(data, 0), version = read_u32(data, 4);
    if (size < header_size || size > data.size())
        return Error{ErrorCode::invalid_input,
                     "header size " + std::to_string(size) + " is invalid"};
    if (version != VK_PIPELINE_CACHE_HEADER_VERSION_ONE)
        return Error{ErrorCode::invalid_input,
                     "header version " + std::to_string(version) + " is not 1"};
    if (read_u32(data, 8) != device.vendor_id || read_u32(data, 12) != device.device_id)
        return Error{ErrorCode::invalid_input, "written for vendor 0x" + hex(read_u32(data, 8)) +
                                                   " device 0x" + hex(read_u32(data, 12)) +
                                                   ", not this device"};
    if (std::memcmp(data.data() + 16, device.pipeline_cache_uuid.data(), VK_UUID_SIZE) != 0)
        return Error{ErrorCode::invalid_input,
                     "written by another driver build (pipeline cache UUID differs)"};
    return {};
}

} // namespace px::vk
