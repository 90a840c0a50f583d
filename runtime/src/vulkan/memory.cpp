// Device memory: choosing a memory type for each use, creating, mapping, flushing and leaking
// buffers, and the limits an image must fit.
#include "device_state.hpp"

namespace px::vk {

using namespace detail;

namespace {

// Buffers from this size up get a dedicated allocation.
constexpr VkDeviceSize DEDICATED_BYTES = VkDeviceSize(16) << 20;

// Sizes in error messages: rounded, and exact (an error must say which limit was hit).
std::string size_text(std::uint64_t bytes) {
    const std::string exact = std::to_string(bytes) + " bytes";
    const std::string rounded = format_bytes(bytes);
    return rounded == exact ? exact : rounded + " (" + exact + ")";
}

} // namespace

namespace detail {

std::optional<std::uint32_t> choose_memory_type(const DeviceInfo& info, std::uint32_t type_bits,
                                                const MemoryPreference& preference,
                                                VkDeviceSize size) {
    std::optional<std::uint32_t> best;
    int best_score = 0;
    for (std::uint32_t i = 0; i < info.memory_types.size(); ++i) {
        const MemoryType& type = info.memory_types[i];
        if (!(type_bits & (1u << i))) continue;
        if ((type.flags & preference.required) != preference.required) continue;
        if (info.memory_heaps[type.heap].size < size) continue;
        const int score = preference.score ? preference.score(type.flags) : 0;
        if (!best || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

MemoryPreference device_local() {
    return {VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, [](VkMemoryPropertyFlags f) {
                // Plain device memory when there is a choice: keep host-visible memory for
                // buffers the host touches.
                return (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) ? 0 : 1;
            }};
}
MemoryPreference device_local_host_visible() {
    return {
        VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
        [](VkMemoryPropertyFlags f) { return (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) ? 1 : 0; }};
}
MemoryPreference upload_staging() {
    return {VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, [](VkMemoryPropertyFlags f) {
                return ((f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) ? 2 : 0) +
                       ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) ? 0 : 1);
            }};
}
MemoryPreference readback_memory() {
    // Host reads of uncached memory run at a few percent of memory speed (about 0.03 GB/s from an
    // H100's device-local host-visible heap), so cached memory wins above all.
    return {VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, [](VkMemoryPropertyFlags f) {
                return ((f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) ? 4 : 0) +
                       ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) ? 0 : 2) +
                       ((f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) ? 1 : 0);
            }};
}

Result<Buffer> create_buffer(DeviceState& s, VkDeviceSize size, VkBufferUsageFlags usage,
                             const MemoryPreference& preference, std::string_view what) {
    const VkDevice device = s.device.get();
    const std::string on = " on " + s.info.name;
    auto info = make_struct<VkBufferCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO);
    info.size = size;
    info.usage = usage;
    info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkBuffer handle = VK_NULL_HANDLE;
    if (VkResult r = vkCreateBuffer(device, &info, nullptr, &handle); r != VK_SUCCESS)
        return vulkan_error(
            "cannot create the " + std::string(what) + " (" + size_text(size) + ")" + on, r);
    Buffer buffer;
    buffer.buffer = BufferHandle(device, handle);
    buffer.size = size;

    auto dedicated_needs =
        make_struct<VkMemoryDedicatedRequirements>(VK_STRUCTURE_TYPE_MEMORY_DEDICATED_REQUIREMENTS);
    auto requirements2 =
        make_struct<VkMemoryRequirements2>(VK_STRUCTURE_TYPE_MEMORY_REQUIREMENTS_2);
    requirements2.pNext = &dedicated_needs;
    auto requirements_info = make_struct<VkBufferMemoryRequirementsInfo2>(
        VK_STRUCTURE_TYPE_BUFFER_MEMORY_REQUIREMENTS_INFO_2);
    requirements_info.buffer = handle;
    vkGetBufferMemoryRequirements2(device, &requirements_info, &requirements2);
    const VkMemoryRequirements& requirements = requirements2.memoryRequirements;
    const auto type =
        choose_memory_type(s.info, requirements.memoryTypeBits, preference, requirements.size);
    if (!type)
        return Error{ErrorCode::unsupported,
                     "no memory type of " + s.info.name + " can hold the " + std::string(what) +
                         " (" + size_text(requirements.size) + ", needs " +
                         memory_property_names(preference.required) + " memory)"};
    auto allocate = make_struct<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
    allocate.allocationSize = requirements.size;
    allocate.memoryTypeIndex = *type;
    // Large buffers get memory of their own, which lets drivers back them with large pages
    // (fewer TLB misses when a kernel streams the whole image).
    auto dedicated = make_struct<VkMemoryDedicatedAllocateInfo>(
        VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO);
    dedicated.buffer = handle;
    if (dedicated_needs.prefersDedicatedAllocation || dedicated_needs.requiresDedicatedAllocation ||
        size >= DEDICATED_BYTES)
        allocate.pNext = &dedicated;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    const bool injected = inject_now(s, true);
    if (VkResult r = injected ? VK_ERROR_OUT_OF_DEVICE_MEMORY
                              : vkAllocateMemory(device, &allocate, nullptr, &memory);
        r != VK_SUCCESS) {
        Error e = vulkan_error("cannot allocate " + size_text(requirements.size) + " for the " +
                                   std::string(what) + on,
                               r);
        if (injected) e.message += INJECTED;
        return e;
    }
    buffer.memory = MemoryHandle(device, memory);
    buffer.memory_type = *type;
    buffer.memory_flags = s.info.memory_types[*type].flags;
    if (VkResult r = vkBindBufferMemory(device, handle, memory, 0); r != VK_SUCCESS)
        return vulkan_error("cannot bind memory to the " + std::string(what) + on, r);
    if (buffer.memory_flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
        if (VkResult r = vkMapMemory(device, memory, 0, VK_WHOLE_SIZE, 0, &buffer.mapped);
            r != VK_SUCCESS)
            return vulkan_error("cannot map the " + std::string(what) + on, r);
    }
    return buffer;
}

Result<void> flush(const DeviceState& s, const Buffer& b) {
    if (b.host_coherent()) return {};
    auto range = make_struct<VkMappedMemoryRange>(VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE);
    range.memory = b.memory.get();
    range.size = VK_WHOLE_SIZE;
    if (VkResult r = vkFlushMappedMemoryRanges(s.device.get(), 1, &range); r != VK_SUCCESS)
        return vulkan_error("cannot flush host writes on " + s.info.name, r);
    return {};
}

Result<void> invalidate(const DeviceState& s, const Buffer& b) {
    if (b.host_coherent()) return {};
    auto range = make_struct<VkMappedMemoryRange>(VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE);
    range.memory = b.memory.get();
    range.size = VK_WHOLE_SIZE;
    if (VkResult r = vkInvalidateMappedMemoryRanges(s.device.get(), 1, &range); r != VK_SUCCESS)
        return vulkan_error("cannot read device writes on " + s.info.name, r);
    return {};
}

/// Gives up a buffer's handles without destroying them (work that may still use it never ended).
void leak(Buffer& b) {
    (void)b.buffer.release();
    (void)b.memory.release();
}

std::string memory_type_text(const Buffer& b) {
    return "memory type " + std::to_string(b.memory_type) + " (" +
           memory_property_names(b.memory_flags) + ")";
}

} // namespace detail

Result<void> Device::check_image_fits(std::uint64_t bytes, std::string_view what) const {
    const DeviceInfo& d = state_->info;
    const std::string subject = std::string(what) + " is " + size_text(bytes) + ", larger than ";
    const std::string advice = "; use a smaller image or a device with a larger limit";
    if (bytes > d.limits.max_storage_buffer_range)
        return Error{ErrorCode::unsupported, subject + "the largest storage buffer of " + d.name +
                                                 " (maxStorageBufferRange " +
                                                 size_text(d.limits.max_storage_buffer_range) +
                                                 ")" + advice};
    if (bytes > d.limits.max_memory_allocation_size)
        return Error{ErrorCode::unsupported, subject + "the largest allocation of " + d.name +
                                                 " (maxMemoryAllocationSize " +
                                                 size_text(d.limits.max_memory_allocation_size) +
                                                 ")" + advice};
    if (d.limits.max_buffer_size && bytes > *d.limits.max_buffer_size)
        return Error{ErrorCode::unsupported,
                     subject + "the largest buffer of " + d.name + " (maxBufferSize " +
                         size_text(*d.limits.max_buffer_size) + ")" + advice};
    if (bytes > d.largest_device_local_heap())
        return Error{ErrorCode::unsupported, subject + "the device-local memory heap of " + d.name +
                                                 " (" + size_text(d.largest_device_local_heap()) +
                                                 ")" + advice};
    return {};
}

} // namespace px::vk
