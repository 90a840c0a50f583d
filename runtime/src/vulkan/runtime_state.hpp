// Private to the Vulkan runtime: the state a Runtime owns and a Device refers to.
#pragma once

#include "pxvm/vulkan/handles.hpp"
#include "pxvm/vulkan/runtime.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace px::vk::detail {

/// Validation messages, counted (and printed) by the debug-utils callback, which may run on
/// any thread.
struct MessageLog {
    mutable std::mutex mutex;
    ValidationMessages messages;
    bool print = true;
};

/// Owned by a Runtime through a unique_ptr, so its address (given to the debug callback and to
/// every Device) survives moves of the Runtime.
struct RuntimeState {
    RuntimeOptions options;
    std::uint32_t api_version = 0;
    bool validation = false;
    MessageLog log; // declared before the instance: outlives the messenger
    Instance instance;
    DebugMessenger messenger; // declared after the instance: destroyed before it
    std::vector<VkPhysicalDevice> physical_devices; // in the order of `devices`
    std::vector<DeviceInfo> devices;
    std::atomic<int> open_devices{0};
};

} // namespace px::vk::detail
