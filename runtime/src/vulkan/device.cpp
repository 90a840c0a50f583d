// A Device: the logical device and queue, the pipeline registry (keyed by kernel, specialisation
// and subgroup size) with its on-disk cache, resident images (image, status, staging and readback
// buffers with region transfers) and recordings (dispatches recorded once, resubmitted per run,
// timed per labelled dispatch).
#include "pxvm/embedded_kernels.hpp"
#include "pxvm/spirv_module.hpp"
#include "pxvm/vulkan/pipeline_cache.hpp"
#include "pxvm/vulkan/spirv_requirements.hpp"
#include "runtime_state.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>

namespace px::vk {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

constexpr VkDeviceSize STATUS_BYTES = STATUS_BUFFER_BYTES;
// How long a fence wait spins on vkGetFenceStatus before blocking: a spin answers a short run
// about 20 us sooner than a blocking wait (docs/RUNTIME.md).
constexpr auto FENCE_SPIN = std::chrono::microseconds(200);
// Buffers from this size up get a dedicated allocation.
constexpr VkDeviceSize DEDICATED_BYTES = VkDeviceSize(16) << 20;
constexpr std::uint32_t PUSH_CONSTANT_BYTES = 128; // the minimum maxPushConstantsSize

/// Scores a memory type for one use; types lacking `required` are never chosen.
struct MemoryPreference {
    VkMemoryPropertyFlags required = 0;
    std::function<int(VkMemoryPropertyFlags)> score;
};

// Sizes in error messages: rounded, and exact (an error must say which limit was hit).
std::string size_text(std::uint64_t bytes) {
    const std::string exact = std::to_string(bytes) + " bytes";
    const std::string rounded = format_bytes(bytes);
    return rounded == exact ? exact : rounded + " (" + exact + ")";
}

/// One pipeline of the registry: a kernel's module with its specialisation and subgroup size.
struct PipelineEntry {
    ShaderModule module;
    Pipeline pipeline;
    PipelineInfo info;
};

} // namespace

namespace detail {

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

} // namespace detail

namespace {

using detail::DeviceObjects;
using detail::DeviceState;

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

/// Whether this allocation or submit (counted here) is the one RuntimeOptions::inject fails.
bool inject_now(DeviceState& s, bool allocation) {
    using Kind = FaultInjection::Kind;
    const FaultInjection& inject = s.runtime->options.inject;
    const std::uint32_t count = allocation ? ++s.allocations : ++s.submits;
    const bool kind_matches =
        allocation ? inject.kind == Kind::allocation
                   : inject.kind == Kind::timeout || inject.kind == Kind::device_lost;
    return kind_matches && count == inject.nth;
}

constexpr const char* INJECTED = " (injected: PXVM_INJECT_FAULT)";

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

Result<QueryPool> create_query_pool(DeviceState& s, std::uint32_t count) {
    auto info = make_struct<VkQueryPoolCreateInfo>(VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO);
    info.queryType = VK_QUERY_TYPE_TIMESTAMP;
    info.queryCount = count;
    VkQueryPool pool = VK_NULL_HANDLE;
    if (VkResult r = vkCreateQueryPool(s.device.get(), &info, nullptr, &pool); r != VK_SUCCESS)
        return vulkan_error("cannot create a timestamp query pool on " + s.info.name, r);
    return QueryPool(s.device.get(), pool);
}

/// Marks the device failed by `e` (a timeout or a lost device: it runs nothing again) and
/// returns `e`.
Error fail_device(DeviceState& s, Error e) {
    s.failure = e.message;
    s.failure_code = e.code;
    return e;
}

/// Milliseconds between timestamps a and b of the first `count` queries of `pool`, or nothing
/// when the queue has no timestamps. A lost device marks the device failed.
Result<std::vector<double>> read_timestamps(DeviceState& s, VkQueryPool pool, std::uint32_t count) {
    std::vector<double> ms;
    if (s.timestamp_bits == 0 || count == 0) return ms;
    std::vector<std::uint64_t> ticks(count);
    const VkResult r = vkGetQueryPoolResults(
        s.device.get(), pool, 0, count, ticks.size() * sizeof(std::uint64_t), ticks.data(),
        sizeof(std::uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r == VK_ERROR_DEVICE_LOST)
        return fail_device(s, vulkan_error(s.info.name + ": reading timestamps", r));
    if (r != VK_SUCCESS) return ms;
    const std::uint64_t mask =
        s.timestamp_bits >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << s.timestamp_bits) - 1;
    for (std::uint32_t i = 0; i + 1 < count; ++i)
        ms.push_back(double((ticks[i + 1] - ticks[i]) & mask) * s.info.limits.timestamp_period_ns /
                     1e6);
    return ms;
}

/// The error of a device that failed earlier (timeout, device lost).
Error failed_device_error(const DeviceState& s) {
    return Error{s.failure_code, s.failure};
}

/// Submits `cmd` and waits for it: spins on the fence briefly, then blocks until the timeout.
/// A timeout or a lost device marks the device failed. Returns the host milliseconds.
Result<double> submit_and_wait(DeviceState& s, VkCommandBuffer cmd) {
    const auto start = Clock::now();
    VkFence fence = s.objects->fence.get();
    if (VkResult r = vkResetFences(s.device.get(), 1, &fence); r != VK_SUCCESS)
        return vulkan_error("cannot reset a fence on " + s.info.name, r);
    auto submit = make_struct<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &cmd;
    if (VkResult r = vkQueueSubmit(s.queue, 1, &submit, fence); r != VK_SUCCESS) {
        Error e = vulkan_error("cannot submit work to " + s.info.name, r);
        return r == VK_ERROR_DEVICE_LOST ? fail_device(s, std::move(e)) : e;
    }
    const auto timeout = *s.runtime->options.timeout;
    const std::string timed_out = s.info.name + " did not finish a run within " +
                                  std::to_string(timeout.count()) +
                                  " ms; the run was abandoned and this device cannot run again "
                                  "(raise the limit with --timeout-ms, PXVM_TIMEOUT_MS or "
                                  "RuntimeOptions::timeout)";
    VkResult waited = VK_NOT_READY;
    const bool injected = inject_now(s, false);
    if (injected) {
        // The work really ends first, so that nothing is destroyed under the GPU; then it is
        // reported as the injection says, and the device is failed as after the real thing.
        vkWaitForFences(s.device.get(), 1, &fence, VK_TRUE, UINT64_MAX);
        if (s.runtime->options.inject.kind == FaultInjection::Kind::timeout)
            return fail_device(s, Error{ErrorCode::timeout, timed_out + INJECTED});
        waited = VK_ERROR_DEVICE_LOST;
    }
    while (!injected && Clock::now() - start < FENCE_SPIN &&
           (waited = vkGetFenceStatus(s.device.get(), fence)) == VK_NOT_READY) {
    }
    if (waited == VK_NOT_READY) {
        waited = vkWaitForFences(s.device.get(), 1, &fence, VK_TRUE,
                                 std::uint64_t(std::chrono::nanoseconds(timeout).count()));
        if (waited == VK_TIMEOUT) {
            s.pending = true;
            return fail_device(s, Error{ErrorCode::timeout, timed_out});
        }
    }
    if (waited != VK_SUCCESS) {
        Error e =
            vulkan_error("the run on " + s.info.name + " failed while waiting for it", waited);
        if (injected) e.message += INJECTED;
        return fail_device(s, std::move(e));
    }
    return ms_since(start);
}

/// Gives up a buffer's handles without destroying them (work that may still use it never ended).
void leak(Buffer& b) {
    (void)b.buffer.release();
    (void)b.memory.release();
}

void save_pipeline_cache(DeviceState& s) {
    if (!s.cache_status.enabled) return;
    const VkDevice device = s.device.get();
    std::size_t size = 0;
    if (vkGetPipelineCacheData(device, s.objects->cache.get(), &size, nullptr) != VK_SUCCESS)
        return;
    std::vector<std::uint8_t> data(size);
    if (vkGetPipelineCacheData(device, s.objects->cache.get(), &size, data.data()) < VK_SUCCESS)
        return;
    data.resize(size);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(s.cache_status.path).parent_path(),
                                        ec);
    if (ec) {
        s.cache_status.note = "cannot create the cache directory: " + ec.message();
        return;
    }
    if (auto written = write_file_atomic(s.cache_status.path, data); !written)
        s.cache_status.note = "cannot save the pipeline cache: " + written.error().message;
}

// A pipeline cache file larger than this is ignored (drivers' caches are a few MiB).
constexpr std::uintmax_t MAX_PIPELINE_CACHE_BYTES = std::uintmax_t(256) << 20;

Result<void> create_pipeline_cache(DeviceState& s) {
    const RuntimeOptions& options = s.runtime->options;
    std::vector<std::uint8_t> data;
    if (options.pipeline_cache) {
        const std::string dir = pipeline_cache_directory(options.cache_dir);
        if (dir.empty()) {
            s.cache_status.note = "no cache directory (set PXVM_CACHE_DIR, XDG_CACHE_HOME or HOME)";
        } else {
            s.cache_status.enabled = true;
            s.cache_status.path = dir + "/" + pipeline_cache_file_name(s.info);
            // Only a regular file of a sane size is read: a directory, a device such as
            // /dev/zero or a FIFO at that path would throw, exhaust memory or block.
            std::error_code ec;
            const auto status = std::filesystem::status(s.cache_status.path, ec);
            const bool exists = !ec && std::filesystem::exists(status);
            const bool regular = exists && std::filesystem::is_regular_file(status);
            const std::uintmax_t size =
                regular ? std::filesystem::file_size(s.cache_status.path, ec) : 0;
            std::ifstream file;
            if (exists && !regular) {
                s.cache_status.enabled = false; // never replace what is there
                s.cache_status.note = "the cache path is not a regular file; the cache is off";
            } else if (regular && (ec || size > MAX_PIPELINE_CACHE_BYTES)) {
                s.cache_status.note = "cache file ignored: larger than 256 MiB or unreadable";
            } else if (regular) {
                file.open(s.cache_status.path, std::ios::binary);
            }
            if (!s.cache_status.note.empty()) {
                // decided above
            } else if (!file) {
                s.cache_status.note = "no cache file yet";
            } else {
                data.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
                if (data.empty()) {
                    s.cache_status.note = "the cache file is empty";
                } else if (auto header = check_pipeline_cache_header(data, s.info); !header) {
                    s.cache_status.note = "cache file ignored: " + header.error().message;
                    data.clear();
                } else {
                    s.cache_status.loaded = true;
                    s.cache_status.loaded_bytes = data.size();
                }
            }
        }
    } else {
        s.cache_status.note = "pipeline cache disabled";
    }
    auto info =
        make_struct<VkPipelineCacheCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO);
    info.initialDataSize = data.size();
    info.pInitialData = data.empty() ? nullptr : data.data();
    VkPipelineCache cache = VK_NULL_HANDLE;
    VkResult r = vkCreatePipelineCache(s.device.get(), &info, nullptr, &cache);
    if (r != VK_SUCCESS && !data.empty()) {
        // A driver may still refuse data whose header matched; start empty instead.
        s.cache_status.loaded = false;
        s.cache_status.loaded_bytes = 0;
        s.cache_status.note =
            "the driver refused the cache file (" + std::string(result_name(r)) + ")";
        info.initialDataSize = 0;
        info.pInitialData = nullptr;
        r = vkCreatePipelineCache(s.device.get(), &info, nullptr, &cache);
    }
    if (r != VK_SUCCESS) return vulkan_error("cannot create a pipeline cache on " + s.info.name, r);
    s.objects->cache = PipelineCache(s.device.get(), cache);
    return {};
}

/// "matmul_portable", "matmul_portable [4, 4, 16]", "... subgroup 32".
std::string pipeline_key(const Dispatch& d) {
    std::string key = d.kernel;
    if (!d.specialization.empty()) {
        key += " [";
        for (std::size_t i = 0; i < d.specialization.size(); ++i)
            key += (i ? ", " : "") + std::to_string(d.specialization[i]);
        key += "]";
    }
    if (d.required_subgroup_size) key += " subgroup " + std::to_string(d.required_subgroup_size);
    return key;
}

/// The registry entry of a dispatch's pipeline, created when missing; `created` says whether it
/// was created by this call.
Result<PipelineEntry*> kernel_pipeline(DeviceState& s, const Dispatch& d, bool& created) {
    created = false;
    DeviceObjects& o = *s.objects;
    const std::string key = pipeline_key(d);
    if (auto it = o.pipelines.find(key); it != o.pipelines.end()) return &it->second;

    const std::string& name = d.kernel;
    std::span<const std::uint32_t> spirv;
    if (auto added = o.added_kernels.find(name); added != o.added_kernels.end()) {
        spirv = added->second;
    } else if (const EmbeddedKernel* embedded = find_kernel(name)) {
        spirv = embedded->spirv;
    } else {
        return Error{ErrorCode::unsupported,
                     "kernel '" + name +
                         "' is not built into this pxVM library (px::find_kernel has no such "
                         "kernel; the build leaves out kernels its toolchain cannot compile)"};
    }
    if (auto supported = check_kernel_support(name, spirv, s.info); !supported)
        return supported.error();
    const Subgroups& sg = s.info.features.subgroups;
    if (d.required_subgroup_size &&
        !(sg.size_control && sg.compute_required_size && d.required_subgroup_size >= sg.min_size &&
          d.required_subgroup_size <= sg.max_size))
        return Error{ErrorCode::unsupported,
                     "kernel '" + name + "' needs subgroup size " +
                         std::to_string(d.required_subgroup_size) + ", which " + s.info.name +
                         " cannot be asked for (subgroup size control " +
                         (sg.size_control ? "sizes " + std::to_string(sg.min_size) + " to " +
                                                std::to_string(sg.max_size)
                                          : std::string("absent")) +
                         ")"};

    const VkDevice device = s.device.get();
    auto module_info =
        make_struct<VkShaderModuleCreateInfo>(VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
    module_info.codeSize = spirv.size_bytes();
    module_info.pCode = spirv.data();
    VkShaderModule module = VK_NULL_HANDLE;
    if (VkResult r = vkCreateShaderModule(device, &module_info, nullptr, &module); r != VK_SUCCESS)
        return vulkan_error("cannot create the shader module of kernel '" + name + "'", r);
    ShaderModule owned_module(device, module);

    std::vector<VkSpecializationMapEntry> entries;
    for (std::uint32_t i = 0; i < d.specialization.size(); ++i)
        entries.push_back({i, i * 4, 4});
    VkSpecializationInfo specialization{std::uint32_t(entries.size()), entries.data(),
                                        d.specialization.size() * 4, d.specialization.data()};
    auto info =
        make_struct<VkComputePipelineCreateInfo>(VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
    info.stage = make_struct<VkPipelineShaderStageCreateInfo>(
        VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO);
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = module;
    info.stage.pName = "main";
    if (!entries.empty()) info.stage.pSpecializationInfo = &specialization;
    auto subgroup_size = make_struct<VkPipelineShaderStageRequiredSubgroupSizeCreateInfo>(
        VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO);
    subgroup_size.requiredSubgroupSize = d.required_subgroup_size;
    if (d.required_subgroup_size) {
        info.stage.pNext = &subgroup_size;
        if (sg.compute_full_subgroups)
            info.stage.flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
    }
    info.layout = o.pipeline_layout.get();
    VkPipelineCreationFeedback feedback{};
    auto feedback_info = make_struct<VkPipelineCreationFeedbackCreateInfo>(
        VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO);
    feedback_info.pPipelineCreationFeedback = &feedback;
    if (s.info.features.pipeline_creation_feedback) info.pNext = &feedback_info;

    const auto start = Clock::now();
    VkPipeline pipeline = VK_NULL_HANDLE;
    VkResult r = vkCreateComputePipelines(device, o.cache.get(), 1, &info, nullptr, &pipeline);
    const double create_ms = ms_since(start);
    if (r != VK_SUCCESS)
        return vulkan_error("cannot create the pipeline " + key + " on " + s.info.name, r);

    PipelineEntry& entry = o.pipelines[key];
    entry.module = std::move(owned_module);
    entry.pipeline = Pipeline(device, pipeline);
    entry.info.kernel = name;
    entry.info.key = key;
    entry.info.create_ms = create_ms;
    if (s.info.features.pipeline_creation_feedback &&
        (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT))
        entry.info.cache_hit =
            (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT) !=
            0;
    created = true;
    if (entry.info.cache_hit != true) save_pipeline_cache(s);
    return &entry;
}

// The bytes of an image's buffer: whole 16-byte vectors, so that the kernels' 128-bit views of
// the image end inside it.
VkDeviceSize image_buffer_bytes(const DeviceState& s, VkDeviceSize bytes) {
    return std::min<VkDeviceSize>((bytes + 15) / 16 * 16, s.info.limits.max_storage_buffer_range);
}

Result<std::unique_ptr<DeviceState>> open_device(detail::RuntimeState& runtime,
                                                 std::uint32_t index) {
    auto state = std::make_unique<DeviceState>(&runtime);
    DeviceState& s = *state;
    s.info = runtime.devices[index];
    s.physical = runtime.physical_devices[index];
    const DeviceInfo& info = s.info;
    const DeviceFeatures& f = info.features;
    const std::uint32_t family = *info.compute_queue_family;
    s.timestamp_bits = info.timestamp_valid_bits();

    const bool core13 = info.api_version >= VK_API_VERSION_1_3;
    std::vector<const char*> extensions;
    const auto enable_extension = [&](const char* name) {
        if (info.has_extension(name)) extensions.push_back(name);
    };
    enable_extension("VK_KHR_portability_subset"); // required when advertised
    if (!core13) {
        if (f.subgroups.size_control) enable_extension(VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
        if (f.integer_dot_product.supported)
            enable_extension(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
        if (f.pipeline_creation_feedback)
            enable_extension(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME);
    }
    if (f.cooperative_matrix_nv) enable_extension(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);

    // Enable exactly the features DeviceInfo reports as present (and nothing else).
    auto features =
        make_struct<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
    features.features.shaderInt16 = f.shader_int16;
    features.features.shaderInt64 = f.shader_int64;
    features.features.shaderFloat64 = f.shader_float64;
    auto f11 = make_struct<VkPhysicalDeviceVulkan11Features>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
    f11.storageBuffer16BitAccess = f.storage_buffer_16bit;
    f11.uniformAndStorageBuffer16BitAccess = f.uniform_and_storage_buffer_16bit;
    f11.storagePushConstant16 = f.storage_push_constant_16;
    auto f12 = make_struct<VkPhysicalDeviceVulkan12Features>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
    f12.storageBuffer8BitAccess = f.storage_buffer_8bit;
    f12.uniformAndStorageBuffer8BitAccess = f.uniform_and_storage_buffer_8bit;
    f12.storagePushConstant8 = f.storage_push_constant_8;
    f12.shaderInt8 = f.shader_int8;
    f12.shaderFloat16 = f.shader_float16;
    f12.shaderBufferInt64Atomics = f.shader_buffer_int64_atomics;
    f12.vulkanMemoryModel = f.vulkan_memory_model;
    f12.vulkanMemoryModelDeviceScope = f.vulkan_memory_model_device_scope;
    auto size_control = make_struct<VkPhysicalDeviceSubgroupSizeControlFeatures>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES);
    size_control.subgroupSizeControl = f.subgroups.size_control;
    size_control.computeFullSubgroups = f.subgroups.compute_full_subgroups;
    auto dot_product = make_struct<VkPhysicalDeviceShaderIntegerDotProductFeatures>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES);
    dot_product.shaderIntegerDotProduct = VK_TRUE;
    auto coopmat_nv = make_struct<VkPhysicalDeviceCooperativeMatrixFeaturesNV>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV);
    coopmat_nv.cooperativeMatrix = VK_TRUE;
    features.pNext = &f11;
    f11.pNext = &f12;
    void** tail = &f12.pNext;
    const auto link = [&tail](auto& next) {
        *tail = &next;
        tail = &next.pNext;
    };
    if (f.subgroups.size_control) link(size_control);
    if (f.integer_dot_product.supported) link(dot_product);
    if (f.cooperative_matrix_nv) link(coopmat_nv);

    const float priority = 1.0f;
    auto queue_info =
        make_struct<VkDeviceQueueCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO);
    queue_info.queueFamilyIndex = family;
    queue_info.queueCount = 1;
    queue_info.pQueuePriorities = &priority;
    auto device_info = make_struct<VkDeviceCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO);
    device_info.pNext = &features;
    device_info.queueCreateInfoCount = 1;
    device_info.pQueueCreateInfos = &queue_info;
    device_info.enabledExtensionCount = std::uint32_t(extensions.size());
    device_info.ppEnabledExtensionNames = extensions.data();
    VkDevice device = VK_NULL_HANDLE;
    if (VkResult r = vkCreateDevice(s.physical, &device_info, nullptr, &device); r != VK_SUCCESS)
        return vulkan_error("cannot open device " + std::to_string(index) + " (" + info.name +
                                ") with vkCreateDevice",
                            r);
    s.device = LogicalDevice(device);
    vkGetDeviceQueue(device, family, 0, &s.queue);
    DeviceObjects& o = *s.objects;

    const VkDescriptorSetLayoutBinding bindings[] = {
        {BINDING_IMAGE, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr},
        {BINDING_STATUS, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT,
         nullptr},
        {BINDING_IMAGE_IN, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT,
         nullptr},
        {BINDING_OUTPUTS, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT,
         nullptr},
        {BINDING_INPUTS, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT,
         nullptr},
    };
    auto set_layout_info = make_struct<VkDescriptorSetLayoutCreateInfo>(
        VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO);
    set_layout_info.bindingCount = 5;
    set_layout_info.pBindings = bindings;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    if (VkResult r = vkCreateDescriptorSetLayout(device, &set_layout_info, nullptr, &set_layout);
        r != VK_SUCCESS)
        return vulkan_error("cannot create the descriptor set layout on " + info.name, r);
    o.set_layout = DescriptorSetLayout(device, set_layout);

    // Every kernel shares one interface (kernels/pxvm_layout.h): set 0 holds the image, the
    // status buffer and the image's read-only view, and push constants fit the 128 bytes every
    // device offers.
    const VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, PUSH_CONSTANT_BYTES};
    auto layout_info =
        make_struct<VkPipelineLayoutCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO);
    layout_info.setLayoutCount = 1;
    layout_info.pSetLayouts = &set_layout;
    layout_info.pushConstantRangeCount = 1;
    layout_info.pPushConstantRanges = &push;
    VkPipelineLayout pipeline_layout = VK_NULL_HANDLE;
    if (VkResult r = vkCreatePipelineLayout(device, &layout_info, nullptr, &pipeline_layout);
        r != VK_SUCCESS)
        return vulkan_error("cannot create the pipeline layout on " + info.name, r);
    o.pipeline_layout = PipelineLayout(device, pipeline_layout);

    auto command_pool_info =
        make_struct<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
    command_pool_info.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    command_pool_info.queueFamilyIndex = family;
    VkCommandPool command_pool = VK_NULL_HANDLE;
    if (VkResult r = vkCreateCommandPool(device, &command_pool_info, nullptr, &command_pool);
        r != VK_SUCCESS)
        return vulkan_error("cannot create the command pool on " + info.name, r);
    o.command_pool = CommandPool(device, command_pool);
    auto command_info =
        make_struct<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
    command_info.commandPool = command_pool;
    command_info.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    command_info.commandBufferCount = 1;
    if (VkResult r = vkAllocateCommandBuffers(device, &command_info, &o.transfer_commands);
        r != VK_SUCCESS)
        return vulkan_error("cannot allocate a command buffer on " + info.name, r);

    auto fence_info = make_struct<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
    VkFence fence = VK_NULL_HANDLE;
    if (VkResult r = vkCreateFence(device, &fence_info, nullptr, &fence); r != VK_SUCCESS)
        return vulkan_error("cannot create a fence on " + info.name, r);
    o.fence = Fence(device, fence);

    if (s.timestamp_bits) {
        auto queries = create_query_pool(s, 2);
        if (!queries) return queries.error();
        o.transfer_queries = std::move(queries.value());
    }

    if (auto cache = create_pipeline_cache(s); !cache) return cache.error();
    return state;
}

void record_barrier(VkCommandBuffer cmd, VkPipelineStageFlags src_stage, VkAccessFlags src_access,
                    VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
    auto barrier = make_struct<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
    barrier.srcAccessMask = src_access;
    barrier.dstAccessMask = dst_access;
    vkCmdPipelineBarrier(cmd, src_stage, dst_stage, 0, 1, &barrier, 0, nullptr, 0, nullptr);
}

std::string image_name(const Image& image) {
    return "image " + std::to_string(image.width()) + "x" + std::to_string(image.height());
}

} // namespace

namespace detail {

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

} // namespace detail

namespace {

using detail::RecordingState;
using detail::ResidentState;

/// Byte ranges of a region's rows, at the same offsets in both buffers.
std::vector<VkBufferCopy> region_copies(const ResidentState& r, const Region& region) {
    std::vector<VkBufferCopy> copies;
    for (std::uint32_t y = region.y; y < region.y + region.height; ++y) {
        const VkDeviceSize offset = (VkDeviceSize(y) * r.width + region.x) * 4;
        copies.push_back({offset, offset, VkDeviceSize(region.width) * 4});
    }
    // Whole rows side by side are one range.
    if (region.x == 0 && region.width == r.width && !copies.empty())
        copies = {{copies.front().srcOffset, copies.front().srcOffset,
                   VkDeviceSize(region.height) * r.width * 4}};
    return copies;
}

// A region that is empty or not inside the resident image is an error naming `what`.
Result<void> check_region_inside(const ResidentState& r, const Region& region,
                                 std::string_view what) {
    if (region.width == 0 || region.height == 0 || region.x >= r.width ||
        region.width > r.width - region.x || region.y >= r.height ||
        region.height > r.height - region.y)
        return Error{ErrorCode::invalid_input,
                     std::string(what) + ": region " + std::to_string(region.width) + "x" +
                         std::to_string(region.height) + " at (" + std::to_string(region.x) + ", " +
                         std::to_string(region.y) + ") is empty or outside the " +
                         std::to_string(r.width) + "x" + std::to_string(r.height) + " image"};
    return {};
}

// check_region_inside, and `image` has the resident image's size.
Result<void> check_region(const ResidentState& r, const Image& image, const Region& region,
                          std::string_view what) {
    if (image.width() != r.width || image.height() != r.height)
        return Error{ErrorCode::invalid_input,
                     std::string(what) + ": the image is " + std::to_string(image.width()) + "x" +
                         std::to_string(image.height()) + ", the resident image " +
                         std::to_string(r.width) + "x" + std::to_string(r.height)};
    return check_region_inside(r, region, what);
}

// A descriptor pool of one set in the shared layout, and that set with storage buffers bound:
// (binding, buffer, range) each. A resident image binds its image and status buffers; a
// recording with input and output regions binds those too.
struct BufferBinding {
    std::uint32_t binding;
    VkBuffer buffer;
    VkDeviceSize range;
};
Result<void> make_descriptor_set(DeviceState& s, std::span<const BufferBinding> bindings,
                                 DescriptorPool& pool_out, VkDescriptorSet& set) {
    const VkDevice device = s.device.get();
    const VkDescriptorPoolSize pool_size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                         std::uint32_t(bindings.size())};
    auto pool_info =
        make_struct<VkDescriptorPoolCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO);
    pool_info.maxSets = 1;
    pool_info.poolSizeCount = 1;
    pool_info.pPoolSizes = &pool_size;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    if (VkResult res = vkCreateDescriptorPool(device, &pool_info, nullptr, &pool);
        res != VK_SUCCESS)
        return vulkan_error("cannot create a descriptor pool on " + s.info.name, res);
    pool_out = DescriptorPool(device, pool);
    VkDescriptorSetLayout set_layout = s.objects->set_layout.get();
    auto set_info =
        make_struct<VkDescriptorSetAllocateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO);
    set_info.descriptorPool = pool;
    set_info.descriptorSetCount = 1;
    set_info.pSetLayouts = &set_layout;
    if (VkResult res = vkAllocateDescriptorSets(device, &set_info, &set); res != VK_SUCCESS)
        return vulkan_error("cannot allocate a descriptor set on " + s.info.name, res);
    std::vector<VkDescriptorBufferInfo> infos;
    for (const BufferBinding& b : bindings)
        infos.push_back({b.buffer, 0, b.range});
    std::vector<VkWriteDescriptorSet> writes(bindings.size());
    for (std::size_t i = 0; i < bindings.size(); ++i) {
        writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        writes[i].dstSet = set;
        writes[i].dstBinding = bindings[i].binding;
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
    }
    vkUpdateDescriptorSets(device, std::uint32_t(writes.size()), writes.data(), 0, nullptr);
    return {};
}

/// Records a one-off transfer (copies between buffers, timed) on the device's transfer command
/// buffer, submits it and waits. Returns the GPU milliseconds, if timed.
Result<std::optional<double>> run_copy(DeviceState& s, VkBuffer from, VkBuffer to,
                                       std::span<const VkBufferCopy> copies,
                                       VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
    DeviceObjects& o = *s.objects;
    VkCommandBuffer cmd = o.transfer_commands;
    if (VkResult r = vkResetCommandBuffer(cmd, 0); r != VK_SUCCESS)
        return vulkan_error("cannot reset a command buffer on " + s.info.name, r);
    auto begin = make_struct<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    if (VkResult r = vkBeginCommandBuffer(cmd, &begin); r != VK_SUCCESS)
        return vulkan_error("cannot record a command buffer on " + s.info.name, r);
    const bool timed = bool(o.transfer_queries);
    if (timed) {
        vkCmdResetQueryPool(cmd, o.transfer_queries.get(), 0, 2);
        vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, o.transfer_queries.get(), 0);
    }
    // Earlier runs' shader writes and reads come before the copy.
    record_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                   VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
    vkCmdCopyBuffer(cmd, from, to, std::uint32_t(copies.size()), copies.data());
    record_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, dst_stage,
                   dst_access);
    if (timed)
        vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, o.transfer_queries.get(), 1);
    if (VkResult r = vkEndCommandBuffer(cmd); r != VK_SUCCESS)
        return vulkan_error("cannot record a command buffer on " + s.info.name, r);
    if (auto waited = submit_and_wait(s, cmd); !waited) return waited.error();
    std::optional<double> gpu_ms;
    if (timed) {
        auto ms = read_timestamps(s, o.transfer_queries.get(), 2);
        if (!ms) return ms.error();
        if (!ms->empty()) gpu_ms = ms->front();
    }
    return gpu_ms;
}

std::string memory_type_text(const Buffer& b) {
    return "memory type " + std::to_string(b.memory_type) + " (" +
           memory_property_names(b.memory_flags) + ")";
}

} // namespace

// ---- ResidentImage ---------------------------------------------------------------------------

ResidentImage::ResidentImage(std::unique_ptr<detail::ResidentState> state)
    : state_(std::move(state)) {}
ResidentImage::~ResidentImage() = default;
ResidentImage::ResidentImage(ResidentImage&&) noexcept = default;
ResidentImage& ResidentImage::operator=(ResidentImage&&) noexcept = default;

std::uint32_t ResidentImage::width() const {
    return state_->width;
}
std::uint32_t ResidentImage::height() const {
    return state_->height;
}
std::uint64_t ResidentImage::size_bytes() const {
    return state_->bytes;
}
bool ResidentImage::direct_upload() const {
    return state_->direct;
}
const StageTimings& ResidentImage::transfer_timings() const {
    return state_->transfers;
}

Result<void> ResidentImage::write(const Image& source) {
    return write(source, Region{0, 0, source.width(), source.height()});
}

Result<void> ResidentImage::write(const Image& source, const Region& region) {
    ResidentState& r = *state_;
    DeviceState& s = *r.device;
    if (!s.failure.empty()) return failed_device_error(s);
    if (auto ok = check_region(r, source, region, "writing a resident image"); !ok)
        return ok.error();
    const auto start = Clock::now();
    const std::vector<VkBufferCopy> copies = region_copies(r, region);
    if (!r.direct && !r.staging.buffer) {
        auto staging = create_buffer(s, r.bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, upload_staging(),
                                     "upload staging buffer");
        if (!staging) return staging.error();
        r.staging = std::move(staging.value());
    }
    Buffer& target = r.direct ? r.image : r.staging;
    for (const VkBufferCopy& c : copies)
        std::memcpy(static_cast<std::uint8_t*>(target.mapped) + c.srcOffset,
                    source.data() + c.srcOffset, c.size);
    if (auto flushed = flush(s, target); !flushed) return flushed.error();
    r.transfers.host_upload_ms = ms_since(start);
    r.transfers.direct_upload = r.direct;
    r.transfers.gpu_upload_ms.reset();
    if (r.direct) return {};
    auto copied = run_copy(s, r.staging.buffer.get(), r.image.buffer.get(), copies,
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                           VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    if (!copied) return copied.error();
    r.transfers.gpu_upload_ms = *copied;
    r.transfers.host_upload_ms = ms_since(start);
    return {};
}

Result<void> ResidentImage::read(Image& target) {
    return read(target, Region{0, 0, target.width(), target.height()});
}

Result<void> ResidentImage::read(Image& target, const Region& region) {
    ResidentState& r = *state_;
    DeviceState& s = *r.device;
    if (!s.failure.empty()) return failed_device_error(s);
    if (auto ok = check_region(r, target, region, "reading a resident image"); !ok)
        return ok.error();
    const auto start = Clock::now();
    if (!r.readback.buffer) {
        auto readback = create_buffer(s, r.bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                      readback_memory(), "readback buffer");
        if (!readback) return readback.error();
        r.readback = std::move(readback.value());
    }
    const std::vector<VkBufferCopy> copies = region_copies(r, region);
    auto copied = run_copy(s, r.image.buffer.get(), r.readback.buffer.get(), copies,
                           VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    if (!copied) return copied.error();
    r.transfers.gpu_readback_ms = *copied;
    if (auto seen = invalidate(s, r.readback); !seen) return seen.error();
    for (const VkBufferCopy& c : copies)
        std::memcpy(target.data() + c.dstOffset,
                    static_cast<const std::uint8_t*>(r.readback.mapped) + c.dstOffset, c.size);
    r.transfers.host_readback_ms = ms_since(start);
    return {};
}

// ---- Recording -------------------------------------------------------------------------------

Recording::Recording(std::unique_ptr<detail::RecordingState> state) : state_(std::move(state)) {}
Recording::~Recording() = default;
Recording::Recording(Recording&&) noexcept = default;
Recording& Recording::operator=(Recording&&) noexcept = default;

Result<void> Recording::read_outputs(Image& target) const {
    const RecordingState& rec = *state_;
    const ResidentState& r = *rec.image;
    if (target.width() != r.width || target.height() != r.height)
        return Error{ErrorCode::invalid_input,
                     "reading outputs: the image is " + std::to_string(target.width()) + "x" +
                         std::to_string(target.height()) + ", the resident image " +
                         std::to_string(r.width) + "x" + std::to_string(r.height)};
    if (rec.regions.empty())
        return Error{ErrorCode::invalid_input,
                     "reading outputs: the recording has no output regions"};
    if (auto seen = invalidate(*rec.device, rec.outputs); !seen) return seen.error();
    const auto* words = static_cast<const std::uint8_t*>(rec.outputs.mapped);
    for (const auto& [region, first] : rec.regions)
        for (std::uint32_t row = 0; row < region.height; ++row)
            std::memcpy(target.data() + (std::size_t(region.y + row) * r.width + region.x) * 4,
                        words + (first + std::uint64_t(row) * region.width) * 4,
                        std::size_t(region.width) * 4);
    return {};
}

Result<void> Recording::write_inputs(const Image& source) {
    RecordingState& rec = *state_;
    const ResidentState& r = *rec.image;
    if (source.width() != r.width || source.height() != r.height)
        return Error{ErrorCode::invalid_input,
                     "writing inputs: the image is " + std::to_string(source.width()) + "x" +
                         std::to_string(source.height()) + ", the resident image " +
                         std::to_string(r.width) + "x" + std::to_string(r.height)};
    if (rec.input_regions.empty())
        return Error{ErrorCode::invalid_input,
                     "writing inputs: the recording has no input regions"};
    auto* words = static_cast<std::uint8_t*>(rec.inputs.mapped);
    for (const auto& [region, first] : rec.input_regions)
        for (std::uint32_t row = 0; row < region.height; ++row)
            std::memcpy(words + (first + std::uint64_t(row) * region.width) * 4,
                        source.data() + (std::size_t(region.y + row) * r.width + region.x) * 4,
                        std::size_t(region.width) * 4);
    return flush(*rec.device, rec.inputs);
}

std::span<std::uint8_t> Recording::input_buffer() {
    const RecordingState& rec = *state_;
    return {static_cast<std::uint8_t*>(rec.inputs.mapped), std::size_t(rec.input_words * 4)};
}

Result<void> Recording::flush_inputs() {
    return flush(*state_->device, state_->inputs);
}

Result<std::span<const std::uint8_t>> Recording::output_buffer() const {
    const RecordingState& rec = *state_;
    if (rec.regions.empty())
        return Error{ErrorCode::invalid_input, "the recording has no output regions"};
    if (auto seen = invalidate(*rec.device, rec.outputs); !seen) return seen.error();
    return std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(rec.outputs.mapped),
                                         std::size_t(rec.output_words * 4));
}

const std::vector<std::string>& Recording::labels() const {
    return state_->labels;
}
const std::vector<PipelineInfo>& Recording::pipelines() const {
    return state_->pipelines;
}

Result<GpuRun> Recording::run() {
    const auto start = Clock::now();
    RecordingState& rec = *state_;
    DeviceState& s = *rec.device;
    if (!s.failure.empty()) return failed_device_error(s);
    GpuRun result;
    result.pipelines = rec.pipelines;
    auto waited = submit_and_wait(s, rec.commands);
    if (!waited) return waited.error();
    result.timings.host_submit_wait_ms = *waited;
    if (rec.queries) {
        auto ms = read_timestamps(s, rec.queries.get(), rec.query_count);
        if (!ms) return ms.error();
        if (!ms->empty()) {
            // Stamps: start, after the status reset, after each dispatch; execution counts the
            // dispatches.
            double execute = 0;
            for (std::size_t i = 1; i < ms->size(); ++i)
                execute += (*ms)[i];
            result.timings.gpu_execute_ms = execute;
            for (std::size_t i = 0; i < rec.labels.size(); ++i)
                result.timings.gpu_dispatch.push_back({rec.labels[i], (*ms)[i + 1]});
        }
    }
    if (auto seen = invalidate(s, rec.status_copy); !seen) return seen.error();
    std::memcpy(&result.status, rec.status_copy.mapped, sizeof(RunStatus));
    result.timings.host_total_ms = ms_since(start);
    if (result.status.fault_code == STATUS_INCOMPLETE) // the image is unreliable
        return Error{ErrorCode::incomplete,
                     "the GPU could not finish the instruction at pc " +
                         std::to_string(result.status.fault_pc) + " (" +
                         std::to_string(result.status.executed) +
                         " instructions had run before it): " + s.info.name +
                         " limits how long one shader invocation may loop (lavapipe: 65535 loop "
                         "iterations in all); run the program on a GPU, or with --device cpu"};
    return result;
}

// ---- Device ----------------------------------------------------------------------------------

Device::Device(std::unique_ptr<detail::DeviceState> state) : state_(std::move(state)) {}
Device::~Device() = default;
Device::Device(Device&&) noexcept = default;
Device& Device::operator=(Device&&) noexcept = default;

const DeviceInfo& Device::info() const {
    return state_->info;
}
const PipelineCacheStatus& Device::pipeline_cache() const {
    return state_->cache_status;
}
bool Device::failed() const {
    return !state_->failure.empty();
}

std::string Device::memory_strategy() const {
    if (state_->memory_strategy.empty()) return "no image uploaded yet";
    return state_->memory_strategy;
}

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

Result<void> Device::add_kernel(std::string name, std::vector<std::uint32_t> spirv) {
    DeviceObjects& o = *state_->objects;
    if (o.added_kernels.count(name) || find_kernel(name))
        return Error{ErrorCode::invalid_input,
                     "kernel '" + name + "' is already registered on this device"};
    if (auto module = read_spirv_module(spirv); !module)
        return Error{ErrorCode::invalid_input, "kernel '" + name + "': " + module.error().message};
    o.added_kernels[name] = std::move(spirv);
    return {};
}

Result<PipelineInfo> Device::prepare(const Dispatch& dispatch) {
    if (failed()) return failed_device_error(*state_);
    bool created = false;
    auto entry = kernel_pipeline(*state_, dispatch, created);
    if (!entry) return entry.error();
    PipelineInfo info = (*entry)->info;
    info.created_in_this_call = created;
    return info;
}

Result<PipelineInfo> Device::prepare_kernel(std::string_view name) {
    Dispatch dispatch;
    dispatch.kernel = std::string(name);
    return prepare(dispatch);
}

Result<ResidentImage> Device::upload(const Image& image) {
    DeviceState& s = *state_;
    if (failed()) return failed_device_error(s);
    const VkDeviceSize bytes = image.size_bytes();
    if (bytes == 0) return Error{ErrorCode::invalid_input, "the image is empty"};
    if (auto fits = check_image_fits(bytes, image_name(image)); !fits) return fits.error();

    auto r = std::make_unique<ResidentState>();
    r->attach(&s);
    r->width = image.width();
    r->height = image.height();
    r->bytes = bytes;
    const VkBufferUsageFlags usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    const UploadMode mode = s.runtime->options.upload;
    const VkDeviceSize allocated = image_buffer_bytes(s, bytes);
    if (mode != UploadMode::staging) {
        auto direct =
            create_buffer(s, allocated, usage, device_local_host_visible(), "image buffer");
        if (direct) {
            r->image = std::move(direct.value());
            r->direct = true;
        } else if (mode == UploadMode::direct) {
            return Error{direct.error().code,
                         "direct upload needs a DEVICE_LOCAL|HOST_VISIBLE memory type that "
                         "holds the image: " +
                             direct.error().message,
                         direct.error().vk_result};
        }
    }
    if (!r->direct) {
        auto buffer = create_buffer(s, allocated, usage, device_local(), "image buffer");
        if (!buffer) return buffer.error();
        r->image = std::move(buffer.value());
    }
    auto status =
        create_buffer(s, STATUS_BYTES,
                      VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                          VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                      device_local(), "status buffer");
    if (!status) return status.error();
    r->status = std::move(status.value());

    const BufferBinding bindings[] = {{BINDING_IMAGE, r->image.buffer.get(), allocated},
                                      {BINDING_STATUS, r->status.buffer.get(), STATUS_BYTES},
                                      {BINDING_IMAGE_IN, r->image.buffer.get(), allocated}};
    if (auto made = make_descriptor_set(s, bindings, r->pool, r->set); !made) return made.error();

    ResidentImage resident(std::move(r));
    if (auto written = resident.write(image); !written) return written.error();
    const ResidentState& state = *resident.state_;
    s.memory_strategy =
        state.direct
            ? "upload: host writes the image buffer directly, " + memory_type_text(state.image)
            : "upload: host writes a staging buffer in " + memory_type_text(state.staging) +
                  ", the GPU copies it into the image buffer in " + memory_type_text(state.image);
    s.memory_strategy +=
        "; readback: the GPU copies into " +
        memory_property_names(
            s.info.memory_types[*choose_memory_type(s.info, ~0u, readback_memory(), 0)].flags) +
        " memory, the host reads that";
    return resident;
}

Result<Recording> Device::record(ResidentImage& image, std::span<const Dispatch> dispatches,
                                 std::span<const Region> outputs, std::span<const Region> inputs,
                                 Timestamps timestamp_mode) {
    DeviceState& s = *state_;
    DeviceObjects& o = *s.objects;
    const DeviceInfo& d = s.info;
    if (failed()) return failed_device_error(s);
    if (dispatches.empty())
        return Error{ErrorCode::invalid_input, "nothing to run: the dispatch list is empty"};
    ResidentState& r = *image.state_;
    if (r.device != &s)
        return Error{ErrorCode::invalid_input, "the resident image belongs to another device"};

    auto rec = std::make_unique<RecordingState>();
    rec->attach(&s, &r);
    std::vector<VkPipeline> pipelines;
    for (const Dispatch& dispatch : dispatches) {
        const std::string what = "dispatch of kernel '" + dispatch.kernel + "'";
        if (dispatch.push_constants.size() > PUSH_CONSTANT_BYTES ||
            dispatch.push_constants.size() % 4 != 0)
            return Error{ErrorCode::invalid_input,
                         what + " has " + std::to_string(dispatch.push_constants.size()) +
                             " bytes of push constants; at most " +
                             std::to_string(PUSH_CONSTANT_BYTES) + ", a multiple of 4"};
        for (int i = 0; i < 3; ++i)
            if (dispatch.groups[i] == 0 ||
                dispatch.groups[i] > d.limits.max_compute_work_group_count[i])
                return Error{ErrorCode::invalid_input,
                             what + " asks for " + std::to_string(dispatch.groups[i]) +
                                 " workgroups in dimension " + std::to_string(i) + "; " + d.name +
                                 " allows 1 to " +
                                 std::to_string(d.limits.max_compute_work_group_count[i])};
        bool created = false;
        auto entry = kernel_pipeline(s, dispatch, created);
        if (!entry) return entry.error();
        pipelines.push_back((*entry)->pipeline.get());
        rec->labels.push_back(dispatch.label.empty() ? (*entry)->info.key : dispatch.label);
        auto seen =
            std::find_if(rec->pipelines.begin(), rec->pipelines.end(),
                         [&](const PipelineInfo& p) { return p.key == (*entry)->info.key; });
        if (seen == rec->pipelines.end()) {
            rec->pipelines.push_back((*entry)->info);
            rec->pipelines.back().created_in_this_call = created;
        }
    }

    auto status_copy = create_buffer(s, STATUS_BYTES, VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                     readback_memory(), "status readback buffer");
    if (!status_copy) return status_copy.error();
    rec->status_copy = std::move(status_copy.value());

    // Input and output regions: one unpack dispatch per input region at the start, one pack
    // dispatch per output region at the end, through host-visible buffers bound by this
    // recording's own descriptor set (the image's buffers, plus BINDING_INPUTS and
    // BINDING_OUTPUTS).
    struct Io {
        std::vector<Dispatch> dispatches;
        std::vector<VkPipeline> pipelines;
        std::uint64_t words = 0;
    };
    auto plan_io = [&](std::span<const Region> regions, const char* kernel, const char* what,
                       std::vector<std::pair<Region, std::uint64_t>>& placed) -> Result<Io> {
        Io io;
        for (const Region& region : regions) {
            if (auto ok = check_region_inside(r, region, what); !ok) return ok.error();
            const std::uint64_t n = std::uint64_t(region.width) * region.height;
            const PackPush push{r.width,      region.x,      region.y,
                                region.width, region.height, std::uint32_t(io.words)};
            const std::uint64_t groups = (n + KERNEL_LOCAL_SIZE - 1) / KERNEL_LOCAL_SIZE;
            const std::uint32_t gy = std::uint32_t((groups + 65534) / 65535);
            Dispatch io_dispatch =
                Dispatch::with_push(kernel, push, {std::uint32_t((groups + gy - 1) / gy), gy, 1});
            io_dispatch.label = std::string(what) + " " + std::to_string(region.width) + "x" +
                                std::to_string(region.height) + " at (" + std::to_string(region.x) +
                                ", " + std::to_string(region.y) + ")";
            bool created = false;
            auto entry = kernel_pipeline(s, io_dispatch, created);
            if (!entry) return entry.error();
            io.pipelines.push_back((*entry)->pipeline.get());
            placed.emplace_back(region, io.words);
            io.dispatches.push_back(std::move(io_dispatch));
            io.words += n;
        }
        return io;
    };
    auto in_io = plan_io(inputs, "unpack_inputs", "inputs", rec->input_regions);
    if (!in_io) return in_io.error();
    auto out_io = plan_io(outputs, "pack_outputs", "outputs", rec->regions);
    if (!out_io) return out_io.error();
    rec->input_words = in_io->words;
    rec->output_words = out_io->words;
    std::vector<std::string> io_labels;
    for (const Dispatch& io_dispatch : in_io->dispatches)
        io_labels.push_back(io_dispatch.label);
    rec->labels.insert(rec->labels.begin(), io_labels.begin(), io_labels.end());
    for (const Dispatch& io_dispatch : out_io->dispatches)
        rec->labels.push_back(io_dispatch.label);
    const bool has_io = !in_io->dispatches.empty() || !out_io->dispatches.empty();
    if (has_io) {
        // Both buffers exist (one word at least) so that every binding of the set is valid.
        auto out_buffer =
            create_buffer(s, std::max<std::uint64_t>(out_io->words, 1) * 4,
                          VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, readback_memory(), "output buffer");
        if (!out_buffer) return out_buffer.error();
        rec->outputs = std::move(out_buffer.value());
        auto in_buffer =
            create_buffer(s, std::max<std::uint64_t>(in_io->words, 1) * 4,
                          VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, upload_staging(), "input buffer");
        if (!in_buffer) return in_buffer.error();
        rec->inputs = std::move(in_buffer.value());
        const BufferBinding bindings[] = {
            {BINDING_IMAGE, r.image.buffer.get(), image_buffer_bytes(s, r.bytes)},
            {BINDING_STATUS, r.status.buffer.get(), STATUS_BYTES},
            {BINDING_IMAGE_IN, r.image.buffer.get(), image_buffer_bytes(s, r.bytes)},
            {BINDING_OUTPUTS, rec->outputs.buffer.get(), VK_WHOLE_SIZE},
            {BINDING_INPUTS, rec->inputs.buffer.get(), VK_WHOLE_SIZE}};
        if (auto made = make_descriptor_set(s, bindings, rec->pool, rec->set); !made)
            return made.error();
    }

    const bool timestamps = s.timestamp_bits > 0;
    const bool per_dispatch = timestamp_mode == Timestamps::per_dispatch;
    if (!per_dispatch) rec->labels.clear(); // one figure, the whole program's
    if (timestamps) {
        rec->query_count = per_dispatch
                               ? 2 + std::uint32_t(dispatches.size() + in_io->dispatches.size() +
                                                   out_io->dispatches.size())
                               : 3;
        auto queries = create_query_pool(s, rec->query_count);
        if (!queries) return queries.error();
        rec->queries = std::move(queries.value());
    }
    auto command_info =
        make_struct<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
    command_info.commandPool = o.command_pool.get();
    command_info.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    command_info.commandBufferCount = 1;
    if (VkResult res = vkAllocateCommandBuffers(s.device.get(), &command_info, &rec->commands);
        res != VK_SUCCESS)
        return vulkan_error("cannot allocate a command buffer on " + d.name, res);

    // Record: [stamp] zero status [stamp] dispatches with barriers between them [stamp after
    // each], then the status copy for the host. Reusable: no ONE_TIME_SUBMIT.
    VkCommandBuffer cmd = rec->commands;
    auto begin = make_struct<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
    if (VkResult res = vkBeginCommandBuffer(cmd, &begin); res != VK_SUCCESS)
        return vulkan_error("cannot record a command buffer on " + d.name, res);
    std::uint32_t query = 0;
    const auto stamp = [&](VkPipelineStageFlagBits stage) {
        if (timestamps) vkCmdWriteTimestamp(cmd, stage, rec->queries.get(), query++);
    };
    if (timestamps) vkCmdResetQueryPool(cmd, rec->queries.get(), 0, rec->query_count);
    stamp(VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT);
    // Earlier submits' copies and shaders come first (uploads, region writes, the last run).
    record_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                   VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                       VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_SHADER_READ_BIT,
                   VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT);
    vkCmdFillBuffer(cmd, r.status.buffer.get(), 0, STATUS_BYTES, 0);
    record_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                   VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                   VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    stamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT);
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, o.pipeline_layout.get(), 0, 1,
                            has_io ? &rec->set : &r.set, 0, nullptr);
    const auto record_io = [&](const Io& io) {
        for (std::size_t i = 0; i < io.dispatches.size(); ++i) {
            const Dispatch& dispatch = io.dispatches[i];
            vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, io.pipelines[i]);
            vkCmdPushConstants(cmd, o.pipeline_layout.get(), VK_SHADER_STAGE_COMPUTE_BIT, 0,
                               std::uint32_t(dispatch.push_constants.size()),
                               dispatch.push_constants.data());
            vkCmdDispatch(cmd, dispatch.groups[0], dispatch.groups[1], dispatch.groups[2]);
            if (per_dispatch) stamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT);
        }
    };
    if (!in_io->dispatches.empty()) {
        // The host's writes to the input buffer come before the unpack (submit orders them).
        record_io(*in_io);
        record_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                       VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    }
    for (std::size_t i = 0; i < dispatches.size(); ++i) {
        const Dispatch& dispatch = dispatches[i];
        if (i > 0)
            record_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                           VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipelines[i]);
        if (!dispatch.push_constants.empty())
            vkCmdPushConstants(cmd, o.pipeline_layout.get(), VK_SHADER_STAGE_COMPUTE_BIT, 0,
                               std::uint32_t(dispatch.push_constants.size()),
                               dispatch.push_constants.data());
        vkCmdDispatch(cmd, dispatch.groups[0], dispatch.groups[1], dispatch.groups[2]);
        if (per_dispatch) stamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT);
    }
    if (!out_io->dispatches.empty()) {
        record_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT);
        record_io(*out_io);
        record_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    }
    if (!per_dispatch) stamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT); // the whole program
    record_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                   VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT);
    const VkBufferCopy status_back{0, 0, STATUS_BYTES};
    vkCmdCopyBuffer(cmd, r.status.buffer.get(), rec->status_copy.buffer.get(), 1, &status_back);
    record_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                   VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    if (VkResult res = vkEndCommandBuffer(cmd); res != VK_SUCCESS)
        return vulkan_error("cannot record a command buffer on " + d.name, res);
    return Recording(std::move(rec));
}

Result<GpuRun> Device::run_interpreter(Image& image) {
    Dispatch dispatch =
        Dispatch::with_push("interpreter", InterpreterPush{image.width(), image.height()});
    dispatch.label = "interpreter";
    return run(std::span(&dispatch, 1), image);
}

Result<GpuRun> Device::run(std::span<const Dispatch> dispatches, Image& image) {
    const auto start = Clock::now();
    if (failed()) return failed_device_error(*state_);
    if (dispatches.empty())
        return Error{ErrorCode::invalid_input, "nothing to run: the dispatch list is empty"};
    // Pipelines first, so that a bad dispatch fails before anything is uploaded.
    std::vector<std::string> created_now;
    for (const Dispatch& dispatch : dispatches) {
        bool created = false;
        auto entry = kernel_pipeline(*state_, dispatch, created);
        if (!entry) return entry.error();
        if (created) created_now.push_back((*entry)->info.key);
    }
    auto resident = upload(image);
    if (!resident) return resident.error();
    const double prepare_ms = ms_since(start);
    auto recording = record(*resident, dispatches);
    if (!recording) return recording.error();
    auto result = recording->run();
    if (!result) return result.error();
    if (auto read = resident->read(image); !read) return read.error();
    for (PipelineInfo& p : result->pipelines)
        p.created_in_this_call =
            std::find(created_now.begin(), created_now.end(), p.key) != created_now.end();

    StageTimings& t = result->timings;
    const StageTimings& transfers = resident->transfer_timings();
    t.host_prepare_ms = prepare_ms - transfers.host_upload_ms;
    t.host_upload_ms = transfers.host_upload_ms;
    t.gpu_upload_ms = transfers.gpu_upload_ms;
    t.direct_upload = transfers.direct_upload;
    t.host_readback_ms = transfers.host_readback_ms;
    t.gpu_readback_ms = transfers.gpu_readback_ms;
    t.host_total_ms = ms_since(start);
    return result;
}

Result<Device> Runtime::open(const DeviceSelector& selector) {
    auto index = select(selector);
    if (!index) return index.error();
    auto state = open_device(*state_, *index);
    if (!state) return state.error();
    return Device(std::move(state.value()));
}

} // namespace px::vk
