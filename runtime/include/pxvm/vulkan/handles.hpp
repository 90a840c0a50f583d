// Move-only owners of Vulkan objects (one per object kind, each destroys what it owns exactly
// once), the names of VkResult codes, and the abort-on-cannot-happen check.
#pragma once

#include "pxvm/result.hpp"

#include <vulkan/vulkan.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace px::vk {

/// "VK_ERROR_DEVICE_LOST".
std::string_view result_name(VkResult result);

/// The ErrorCode of a failed Vulkan call (out of memory, device lost, unsupported, ...).
ErrorCode error_code(VkResult result);

/// An Error for a failed Vulkan call: "<what>: VK_ERROR_OUT_OF_DEVICE_MEMORY (the GPU is out of
/// memory ...)", with a hint at what to do for the codes a user can act on.
Error vulkan_error(std::string_view what, VkResult result);

/// Aborts with the call, file and line when a Vulkan call that cannot fail in a correct program
/// fails anyway (a pxVM bug, not a user error).
[[noreturn]] void fail_check(const char* call, VkResult result, const char* file, int line);

#define PX_VK_CHECK(call)                                                                          \
    do {                                                                                           \
        const VkResult px_vk_check_result = (call);                                                \
        if (px_vk_check_result != VK_SUCCESS)                                                      \
            ::px::vk::fail_check(#call, px_vk_check_result, __FILE__, __LINE__);                   \
    } while (false)

/// A zero-initialised Vulkan structure with its sType set.
template <class T> T make_struct(VkStructureType type) {
    T s{};
    s.sType = type;
    return s;
}

/// Owns a VkInstance.
class Instance {
public:
    Instance() = default;
    explicit Instance(VkInstance instance) : handle_(instance) {}
    ~Instance() { reset(); }
    Instance(Instance&& other) noexcept : handle_(std::exchange(other.handle_, VK_NULL_HANDLE)) {}
    Instance& operator=(Instance&& other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, VK_NULL_HANDLE);
        }
        return *this;
    }
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    VkInstance get() const { return handle_; }
    explicit operator bool() const { return handle_ != VK_NULL_HANDLE; }
    void reset() {
        if (handle_ != VK_NULL_HANDLE)
            vkDestroyInstance(std::exchange(handle_, VK_NULL_HANDLE), nullptr);
    }

private:
    VkInstance handle_ = VK_NULL_HANDLE;
};

/// Owns a VkDebugUtilsMessengerEXT (destroyed through the instance's extension function).
class DebugMessenger {
public:
    DebugMessenger() = default;
    DebugMessenger(VkInstance instance, VkDebugUtilsMessengerEXT messenger,
                   PFN_vkDestroyDebugUtilsMessengerEXT destroy)
        : instance_(instance), handle_(messenger), destroy_(destroy) {}
    ~DebugMessenger() { reset(); }
    DebugMessenger(DebugMessenger&& other) noexcept
        : instance_(other.instance_), handle_(std::exchange(other.handle_, VK_NULL_HANDLE)),
          destroy_(other.destroy_) {}
    DebugMessenger& operator=(DebugMessenger&& other) noexcept {
        if (this != &other) {
            reset();
            instance_ = other.instance_;
            handle_ = std::exchange(other.handle_, VK_NULL_HANDLE);
            destroy_ = other.destroy_;
        }
        return *this;
    }
    DebugMessenger(const DebugMessenger&) = delete;
    DebugMessenger& operator=(const DebugMessenger&) = delete;

    explicit operator bool() const { return handle_ != VK_NULL_HANDLE; }
    void reset() {
        if (handle_ != VK_NULL_HANDLE)
            destroy_(instance_, std::exchange(handle_, VK_NULL_HANDLE), nullptr);
    }

private:
    VkInstance instance_ = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT handle_ = VK_NULL_HANDLE;
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_ = nullptr;
};

/// Owns a VkDevice.
class LogicalDevice {
public:
    LogicalDevice() = default;
    explicit LogicalDevice(VkDevice device) : handle_(device) {}
    ~LogicalDevice() { reset(); }
    LogicalDevice(LogicalDevice&& other) noexcept
        : handle_(std::exchange(other.handle_, VK_NULL_HANDLE)) {}
    LogicalDevice& operator=(LogicalDevice&& other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, VK_NULL_HANDLE);
        }
        return *this;
    }
    LogicalDevice(const LogicalDevice&) = delete;
    LogicalDevice& operator=(const LogicalDevice&) = delete;

    VkDevice get() const { return handle_; }
    explicit operator bool() const { return handle_ != VK_NULL_HANDLE; }
    void reset() {
        if (handle_ != VK_NULL_HANDLE)
            vkDestroyDevice(std::exchange(handle_, VK_NULL_HANDLE), nullptr);
    }
    /// Gives up ownership without destroying (used only to leak a device whose work never ended).
    VkDevice release() { return std::exchange(handle_, VK_NULL_HANDLE); }

private:
    VkDevice handle_ = VK_NULL_HANDLE;
};

/// Owns one object created from a VkDevice and destroyed by `Destroy(device, handle, nullptr)`.
template <class Handle, auto Destroy> class DeviceObject {
public:
    DeviceObject() = default;
    DeviceObject(VkDevice device, Handle handle) : device_(device), handle_(handle) {}
    ~DeviceObject() { reset(); }
    DeviceObject(DeviceObject&& other) noexcept
        : device_(other.device_), handle_(std::exchange(other.handle_, VK_NULL_HANDLE)) {}
    DeviceObject& operator=(DeviceObject&& other) noexcept {
        if (this != &other) {
            reset();
            device_ = other.device_;
            handle_ = std::exchange(other.handle_, VK_NULL_HANDLE);
        }
        return *this;
    }
    DeviceObject(const DeviceObject&) = delete;
    DeviceObject& operator=(const DeviceObject&) = delete;

    Handle get() const { return handle_; }
    explicit operator bool() const { return handle_ != VK_NULL_HANDLE; }
    void reset() {
        if (handle_ != VK_NULL_HANDLE)
            Destroy(device_, std::exchange(handle_, VK_NULL_HANDLE), nullptr);
    }
    /// Gives up ownership without destroying.
    Handle release() { return std::exchange(handle_, VK_NULL_HANDLE); }

private:
    VkDevice device_ = VK_NULL_HANDLE;
    Handle handle_ = VK_NULL_HANDLE;
};

using BufferHandle = DeviceObject<VkBuffer, vkDestroyBuffer>;
using MemoryHandle = DeviceObject<VkDeviceMemory, vkFreeMemory>;
using ShaderModule = DeviceObject<VkShaderModule, vkDestroyShaderModule>;
using PipelineLayout = DeviceObject<VkPipelineLayout, vkDestroyPipelineLayout>;
using DescriptorSetLayout = DeviceObject<VkDescriptorSetLayout, vkDestroyDescriptorSetLayout>;
using DescriptorPool = DeviceObject<VkDescriptorPool, vkDestroyDescriptorPool>;
using Pipeline = DeviceObject<VkPipeline, vkDestroyPipeline>;
using PipelineCache = DeviceObject<VkPipelineCache, vkDestroyPipelineCache>;
using CommandPool = DeviceObject<VkCommandPool, vkDestroyCommandPool>;
using Fence = DeviceObject<VkFence, vkDestroyFence>;
using QueryPool = DeviceObject<VkQueryPool, vkDestroyQueryPool>;

/// A buffer with its own memory, persistently mapped when the memory is host-visible.
/// The buffer is destroyed before its memory (members are destroyed in reverse order).
struct Buffer {
    MemoryHandle memory;
    BufferHandle buffer;
    VkDeviceSize size = 0;
    std::uint32_t memory_type = 0;
    VkMemoryPropertyFlags memory_flags = 0;
    void* mapped = nullptr; ///< host address of byte 0, or nullptr when not host-visible

    bool host_coherent() const {
        return (memory_flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) != 0;
    }
};

} // namespace px::vk
