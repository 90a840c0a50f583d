// Private to the Vulkan runtime: the state behind a Device, a ResidentImage and a Recording, and
// the helpers that the files implementing them share.
#pragma once

#include "runtime_state.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace px::vk::detail {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

constexpr VkDeviceSize STATUS_BYTES = STATUS_BUFFER_BYTES;
constexpr std::uint32_t PUSH_CONSTANT_BYTES = 128; // the minimum maxPushConstantsSize

/// Scores a memory type for one use; types lacking `required` are never chosen.
struct MemoryPreference {
    VkMemoryPropertyFlags required = 0;
    std::function<int(VkMemoryPropertyFlags)> score;
};

/// One pipeline of the registry: a kernel's module with its specialisation and subgroup size.
struct PipelineEntry {
    ShaderModule module;
    Pipeline pipeline;
    PipelineInfo info;
};

constexpr const char* INJECTED = " (injected: PXVM_INJECT_FAULT)";

// A descriptor pool of one set in the shared layout, and that set with storage buffers bound:
// (binding, buffer, range) each. A resident image binds its image and status buffers; a
// recording with input and output regions binds those too.
struct BufferBinding {
    std::uint32_t binding;
    VkBuffer buffer;
    VkDeviceSize range;
};

// Defined in the files named, used across them (the states below are declared in runtime.hpp).

// memory.cpp
std::optional<std::uint32_t> choose_memory_type(const DeviceInfo& info, std::uint32_t type_bits,
                                                const MemoryPreference& preference,
                                                VkDeviceSize size);
MemoryPreference device_local();
MemoryPreference device_local_host_visible();
MemoryPreference upload_staging();
MemoryPreference readback_memory();
Result<Buffer> create_buffer(DeviceState& s, VkDeviceSize size, VkBufferUsageFlags usage,
                             const MemoryPreference& preference, std::string_view what);
Result<void> flush(const DeviceState& s, const Buffer& b);
Result<void> invalidate(const DeviceState& s, const Buffer& b);
void leak(Buffer& b);
std::string memory_type_text(const Buffer& b);

// submission.cpp
bool inject_now(DeviceState& s, bool allocation);
Result<QueryPool> create_query_pool(DeviceState& s, std::uint32_t count);
Error fail_device(DeviceState& s, Error e);
Result<std::vector<double>> read_timestamps(DeviceState& s, VkQueryPool pool, std::uint32_t count);
Error failed_device_error(const DeviceState& s);
Result<double> submit_and_wait(DeviceState& s, VkCommandBuffer cmd);
void record_barrier(VkCommandBuffer cmd, VkPipelineStageFlags src_stage, VkAccessFlags src_access,
                    VkPipelineStageFlags dst_stage, VkAccessFlags dst_access);

// pipeline_registry.cpp
Result<void> create_pipeline_cache(DeviceState& s);
Result<PipelineEntry*> kernel_pipeline(DeviceState& s, const Dispatch& d, bool& created);

// resident_image.cpp
VkDeviceSize image_buffer_bytes(const DeviceState& s, VkDeviceSize bytes);
Result<void> check_region_inside(const ResidentState& r, const Region& region,
                                 std::string_view what);
Result<void> make_descriptor_set(DeviceState& s, std::span<const BufferBinding> bindings,
                                 DescriptorPool& pool_out, VkDescriptorSet& set);

/// Every object created from the logical device; held through a unique_ptr so that a device
/// whose work never finished can be leaked as a whole instead of destroyed under the GPU's feet.
struct DeviceObjects {
    PipelineCache cache;
    DescriptorSetLayout set_layout;
    PipelineLayout pipeline_layout;
    CommandPool command_pool;
    VkCommandBuffer transfer_commands = VK_NULL_HANDLE; // freed with the pool
    Fence fence; // every submit waits on it: one run at a time per device
    QueryPool transfer_queries;
    std::map<std::string, std::vector<std::uint32_t>, std::less<>> added_kernels;
    std::map<std::string, PipelineEntry, std::less<>> pipelines; // by pipeline key
};

struct DeviceState {
    RuntimeState* runtime = nullptr;
    DeviceInfo info;
    VkPhysicalDevice physical = VK_NULL_HANDLE;
    LogicalDevice device; // declared before `objects`: destroyed after them
    std::unique_ptr<DeviceObjects> objects = std::make_unique<DeviceObjects>();
    VkQueue queue = VK_NULL_HANDLE;
    std::uint32_t timestamp_bits = 0;
    std::string memory_strategy; // of the last resident image
    PipelineCacheStatus cache_status;
    std::string failure; // non-empty after a timeout or device loss
    ErrorCode failure_code = ErrorCode::device_error;
    std::uint32_t allocations = 0, submits = 0; // counted for FaultInjection::nth
    bool pending = false;                       // a submit that never signalled its fence
    bool abandoned = false; // it still had not after one more wait: leak, never destroy
    int open_children = 0;  // resident images and recordings alive

    explicit DeviceState(RuntimeState* owner) : runtime(owner) { ++runtime->open_devices; }

    /// After a timeout, gives the abandoned submit one more timeout period (at least 5 s) to
    /// end. True when no submit is pending any more, so objects it used may be destroyed.
    bool settle() {
        if (!pending) return true;
        if (abandoned) return false; // waited once already: everything is leaked alike
        const auto ns = std::uint64_t(std::max<std::int64_t>(
            std::chrono::nanoseconds(*runtime->options.timeout).count(), 5'000'000'000));
        VkFence fence = objects->fence.get();
        if (vkWaitForFences(device.get(), 1, &fence, VK_TRUE, ns) == VK_SUCCESS)
            pending = false;
        else
            abandoned = true;
        return !pending;
    }
    DeviceState(const DeviceState&) = delete;
    DeviceState& operator=(const DeviceState&) = delete;
    ~DeviceState() {
        if (open_children != 0) {
            // Their buffers and command buffers belong to this device; destroying it first is a
            // programming error in the caller.
            std::fprintf(stderr,
                         "pxvm: internal error: px::vk::Device destroyed while %d ResidentImage(s) "
                         "or Recording(s) made on it are alive; destroy those first\n",
                         open_children);
            std::abort();
        }
        if (device && !settle()) {
            std::fprintf(stderr,
                         "pxvm: %s never finished its last run; its Vulkan objects "
                         "are leaked instead of destroyed\n",
                         info.name.c_str());
            (void)objects.release();
            (void)device.release();
        }
        if (device) {
            vkDeviceWaitIdle(device.get()); // may report VK_ERROR_DEVICE_LOST: destroying is fine
            objects.reset();
            device.reset();
        }
        --runtime->open_devices;
    }
};

/// A resident image's buffers and descriptor set. The staging and readback buffers are made on
/// first use.
struct ResidentState {
    DeviceState* device = nullptr; // set by attach(), which counts this among its children
    std::uint32_t width = 0, height = 0;
    VkDeviceSize bytes = 0;
    bool direct = false; // the image buffer is host-visible and written through its mapping
    Buffer image, status, staging, readback;
    DescriptorPool pool;
    VkDescriptorSet set = VK_NULL_HANDLE; // freed with the pool
    StageTimings transfers;
    int recordings = 0; // alive on this image

    ResidentState() = default;
    ResidentState(const ResidentState&) = delete;
    ResidentState& operator=(const ResidentState&) = delete;
    void attach(DeviceState* owner) {
        device = owner;
        ++device->open_children;
    }
    ~ResidentState() {
        if (!device) return;
        if (recordings != 0) {
            std::fprintf(stderr,
                         "pxvm: internal error: px::vk::ResidentImage destroyed while %d "
                         "Recording(s) on it are alive; destroy those first\n",
                         recordings);
            std::abort();
        }
        if (!device->settle()) { // the GPU may still use them: never free them
            for (Buffer* b : {&image, &status, &staging, &readback})
                leak(*b);
            (void)pool.release();
        }
        --device->open_children;
    }
};

/// A recorded command buffer over one resident image, with its timestamp queries and the
/// host-visible copy of the status buffer it fills at the end.
struct RecordingState {
    DeviceState* device = nullptr; // set by attach(), which counts this on both owners
    ResidentState* image = nullptr;
    VkCommandBuffer commands = VK_NULL_HANDLE;
    QueryPool queries;
    std::uint32_t query_count = 0;
    Buffer status_copy;
    std::vector<std::string> labels;
    std::vector<PipelineInfo> pipelines;
    // Output regions packed at the end of each run (Recording::read_outputs): the host-visible
    // buffer, the descriptor set that binds it beside the image, and each region's first word.
    Buffer outputs, inputs;
    DescriptorPool pool;
    VkDescriptorSet set = VK_NULL_HANDLE;
    std::vector<std::pair<Region, std::uint64_t>> regions, input_regions;
    std::uint64_t output_words = 0, input_words = 0; // the regions' pixels, packed

    RecordingState() = default;
    RecordingState(const RecordingState&) = delete;
    RecordingState& operator=(const RecordingState&) = delete;
    void attach(DeviceState* owner, ResidentState* on) {
        device = owner;
        image = on;
        ++device->open_children;
        ++image->recordings;
    }
    ~RecordingState() {
        if (!device) return;
        --device->open_children;
        --image->recordings;
        if (!device->settle()) {
            leak(status_copy);
            leak(outputs);
            leak(inputs);
            (void)queries.release();
            (void)pool.release();
            return;
        }
        if (commands != VK_NULL_HANDLE)
            vkFreeCommandBuffers(device->device.get(), device->objects->command_pool.get(), 1,
                                 &commands);
    }
};

} // namespace px::vk::detail
