// A Device: the logical device and queue, the image/status/staging/readback buffers, the kernel
// pipeline registry with its on-disk cache, and one run = upload, dispatches, readback in one
// command buffer and one submit, timed with timestamps.
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

constexpr VkDeviceSize STATUS_BYTES = sizeof(RunStatus);
constexpr std::uint32_t PUSH_CONSTANT_BYTES = 128; // the minimum maxPushConstantsSize

/// Scores a memory type for one use; types lacking `required` are never chosen.
struct MemoryPreference {
    VkMemoryPropertyFlags required = 0;
    std::function<int(VkMemoryPropertyFlags)> score;
};

std::string size_text(std::uint64_t bytes) {
    return format_bytes(bytes) + " (" + std::to_string(bytes) + " bytes)";
}

/// One kernel in the registry: its SPIR-V (owned when added by a caller) and, once created, its
/// shader module and pipeline.
struct KernelEntry {
    std::vector<std::uint32_t> owned_spirv;
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
    DescriptorPool descriptor_pool;
    VkDescriptorSet descriptor_set = VK_NULL_HANDLE; // freed with the pool
    CommandPool command_pool;
    VkCommandBuffer command_buffer = VK_NULL_HANDLE; // freed with the pool
    Fence fence;
    QueryPool queries;
    std::uint32_t query_capacity = 0;
    std::map<std::string, KernelEntry, std::less<>> kernels;
    Buffer status;   // device-local RunStatus
    Buffer image;    // device-local image (host-visible too with direct upload)
    Buffer staging;  // host-visible upload buffer (staging upload only)
    Buffer readback; // host-visible: image bytes, then RunStatus at status_offset
};

struct DeviceState {
    RuntimeState* runtime = nullptr;
    DeviceInfo info;
    VkPhysicalDevice physical = VK_NULL_HANDLE;
    LogicalDevice device; // declared before `objects`: destroyed after them
    std::unique_ptr<DeviceObjects> objects = std::make_unique<DeviceObjects>();
    VkQueue queue = VK_NULL_HANDLE;
    std::uint32_t timestamp_bits = 0;
    bool direct_upload = false; // how the current image buffer is filled
    PipelineCacheStatus cache_status;
    std::string failure;  // non-empty after a timeout or device loss
    bool pending = false; // a submit that never signalled its fence

    explicit DeviceState(RuntimeState* owner) : runtime(owner) { ++runtime->open_devices; }
    DeviceState(const DeviceState&) = delete;
    DeviceState& operator=(const DeviceState&) = delete;
    ~DeviceState() {
        if (device && pending) {
            // A timed-out submit may still be running: give it one more timeout period, then
            // leak the device rather than destroy memory the GPU may still write.
            const auto ns = std::uint64_t(std::max<std::int64_t>(
                std::chrono::nanoseconds(runtime->options.timeout).count(), 5'000'000'000));
            VkFence fence = objects->fence.get();
            if (vkWaitForFences(device.get(), 1, &fence, VK_TRUE, ns) != VK_SUCCESS) {
                std::fprintf(stderr,
                             "pxvm: %s never finished its last run; its Vulkan objects "
                             "are leaked instead of destroyed\n",
                             info.name.c_str());
                (void)objects.release();
                (void)device.release();
            }
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

    VkMemoryRequirements requirements{};
    vkGetBufferMemoryRequirements(device, handle, &requirements);
    const auto type =
        choose_memory_type(s.info, requirements.memoryTypeBits, preference, requirements.size);
    if (!type)
        return Error{"no memory type of " + s.info.name + " can hold the " + std::string(what) +
                     " (" + size_text(requirements.size) + ", needs " +
                     memory_property_names(preference.required) + " memory)"};
    auto allocate = make_struct<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
    allocate.allocationSize = requirements.size;
    allocate.memoryTypeIndex = *type;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    if (VkResult r = vkAllocateMemory(device, &allocate, nullptr, &memory); r != VK_SUCCESS)
        return vulkan_error("cannot allocate " + size_text(requirements.size) + " for the " +
                                std::string(what) + on,
                            r);
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

void flush(const DeviceState& s, const Buffer& b) {
    if (b.host_coherent()) return;
    auto range = make_struct<VkMappedMemoryRange>(VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE);
    range.memory = b.memory.get();
    range.size = VK_WHOLE_SIZE;
    PX_VK_CHECK(vkFlushMappedMemoryRanges(s.device.get(), 1, &range));
}

void invalidate(const DeviceState& s, const Buffer& b) {
    if (b.host_coherent()) return;
    auto range = make_struct<VkMappedMemoryRange>(VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE);
    range.memory = b.memory.get();
    range.size = VK_WHOLE_SIZE;
    PX_VK_CHECK(vkInvalidateMappedMemoryRanges(s.device.get(), 1, &range));
}

VkDeviceSize status_offset(VkDeviceSize image_bytes) {
    return (image_bytes + 15) & ~VkDeviceSize(15);
}

/// Makes sure the image, staging and readback buffers hold `bytes`, reusing them when they do.
Result<void> ensure_buffers(DeviceState& s, VkDeviceSize bytes) {
    DeviceObjects& o = *s.objects;
    const UploadMode mode = s.runtime->options.upload;
    const bool image_ok = o.image.buffer && o.image.size >= bytes;
    if (!image_ok) {
        o.image = Buffer{};
        o.staging = Buffer{};
        const VkBufferUsageFlags usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                         VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                         VK_BUFFER_USAGE_TRANSFER_DST_BIT;
        s.direct_upload = false;
        if (mode != UploadMode::staging) {
            auto direct =
                create_buffer(s, bytes, usage, device_local_host_visible(), "image buffer");
            if (direct) {
                o.image = std::move(direct.value());
                s.direct_upload = true;
            } else if (mode == UploadMode::direct) {
                return Error{"direct upload needs a DEVICE_LOCAL|HOST_VISIBLE memory type that "
                             "holds the image: " +
                             direct.error().message};
            }
        }
        if (!s.direct_upload) {
            auto image = create_buffer(s, bytes, usage, device_local(), "image buffer");
            if (!image) return image.error();
            o.image = std::move(image.value());
        }
    }
    if (!s.direct_upload && !(o.staging.buffer && o.staging.size >= bytes)) {
        o.staging = Buffer{};
        auto staging = create_buffer(s, bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, upload_staging(),
                                     "upload staging buffer");
        if (!staging) return staging.error();
        o.staging = std::move(staging.value());
    }
    const VkDeviceSize readback_bytes = status_offset(bytes) + STATUS_BYTES;
    if (!(o.readback.buffer && o.readback.size >= readback_bytes)) {
        o.readback = Buffer{};
        auto readback = create_buffer(s, readback_bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                      readback_memory(), "readback buffer");
        if (!readback) return readback.error();
        o.readback = std::move(readback.value());
    }
    return {};
}

Result<void> ensure_queries(DeviceState& s, std::uint32_t count) {
    DeviceObjects& o = *s.objects;
    if (o.queries && o.query_capacity >= count) return {};
    o.queries = QueryPool{};
    auto info = make_struct<VkQueryPoolCreateInfo>(VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO);
    info.queryType = VK_QUERY_TYPE_TIMESTAMP;
    info.queryCount = std::max(count, 16u);
    VkQueryPool pool = VK_NULL_HANDLE;
    if (VkResult r = vkCreateQueryPool(s.device.get(), &info, nullptr, &pool); r != VK_SUCCESS)
        return vulkan_error("cannot create a timestamp query pool on " + s.info.name, r);
    o.queries = QueryPool(s.device.get(), pool);
    o.query_capacity = info.queryCount;
    return {};
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
            std::ifstream file(s.cache_status.path, std::ios::binary);
            if (!file) {
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

/// The registry entry of `name` with its pipeline created; `created` says whether it was created
/// by this call.
Result<KernelEntry*> kernel_pipeline(DeviceState& s, std::string_view name, bool& created) {
    created = false;
    DeviceObjects& o = *s.objects;
    auto it = o.kernels.find(name);
    if (it != o.kernels.end() && it->second.pipeline) return &it->second;

    std::span<const std::uint32_t> spirv;
    if (it != o.kernels.end()) {
        spirv = it->second.owned_spirv;
    } else if (const EmbeddedKernel* embedded = find_kernel(name)) {
        spirv = embedded->spirv;
    } else {
        return Error{"kernel '" + std::string(name) +
                     "' is not built into this pxVM library (px::find_kernel has no such kernel; "
                     "the build leaves out kernels its toolchain cannot compile)"};
    }
    if (auto supported = check_kernel_support(name, spirv, s.info); !supported)
        return supported.error();

    const VkDevice device = s.device.get();
    auto module_info =
        make_struct<VkShaderModuleCreateInfo>(VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
    module_info.codeSize = spirv.size_bytes();
    module_info.pCode = spirv.data();
    VkShaderModule module = VK_NULL_HANDLE;
    if (VkResult r = vkCreateShaderModule(device, &module_info, nullptr, &module); r != VK_SUCCESS)
        return vulkan_error("cannot create the shader module of kernel '" + std::string(name) + "'",
                            r);
    ShaderModule owned_module(device, module);

    auto info =
        make_struct<VkComputePipelineCreateInfo>(VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
    info.stage = make_struct<VkPipelineShaderStageCreateInfo>(
        VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO);
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = module;
    info.stage.pName = "main";
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
        return vulkan_error("cannot create the pipeline of kernel '" + std::string(name) + "' on " +
                                s.info.name,
                            r);

    KernelEntry& entry = o.kernels[std::string(name)];
    entry.module = std::move(owned_module);
    entry.pipeline = Pipeline(device, pipeline);
    entry.info.kernel = std::string(name);
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
    };
    auto set_layout_info = make_struct<VkDescriptorSetLayoutCreateInfo>(
        VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO);
    set_layout_info.bindingCount = 2;
    set_layout_info.pBindings = bindings;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    if (VkResult r = vkCreateDescriptorSetLayout(device, &set_layout_info, nullptr, &set_layout);
        r != VK_SUCCESS)
        return vulkan_error("cannot create the descriptor set layout on " + info.name, r);
    o.set_layout = DescriptorSetLayout(device, set_layout);

    // Every kernel shares one interface (kernels/pxvm_layout.h): set 0 holds the image and the
    // status buffer, and push constants fit the 128 bytes every device offers.
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

    const VkDescriptorPoolSize pool_size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 2};
    auto pool_info =
        make_struct<VkDescriptorPoolCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO);
    pool_info.maxSets = 1;
    pool_info.poolSizeCount = 1;
    pool_info.pPoolSizes = &pool_size;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    if (VkResult r = vkCreateDescriptorPool(device, &pool_info, nullptr, &pool); r != VK_SUCCESS)
        return vulkan_error("cannot create the descriptor pool on " + info.name, r);
    o.descriptor_pool = DescriptorPool(device, pool);
    auto set_info =
        make_struct<VkDescriptorSetAllocateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO);
    set_info.descriptorPool = pool;
    set_info.descriptorSetCount = 1;
    set_info.pSetLayouts = &set_layout;
    if (VkResult r = vkAllocateDescriptorSets(device, &set_info, &o.descriptor_set);
        r != VK_SUCCESS)
        return vulkan_error("cannot allocate the descriptor set on " + info.name, r);

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
    if (VkResult r = vkAllocateCommandBuffers(device, &command_info, &o.command_buffer);
        r != VK_SUCCESS)
        return vulkan_error("cannot allocate a command buffer on " + info.name, r);

    auto fence_info = make_struct<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
    VkFence fence = VK_NULL_HANDLE;
    if (VkResult r = vkCreateFence(device, &fence_info, nullptr, &fence); r != VK_SUCCESS)
        return vulkan_error("cannot create a fence on " + info.name, r);
    o.fence = Fence(device, fence);

    auto status =
        create_buffer(s, STATUS_BYTES,
                      VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                          VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                      device_local(), "status buffer");
    if (!status) return status.error();
    o.status = std::move(status.value());

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

void Device::release_buffers() {
    DeviceObjects& o = *state_->objects;
    o.image = Buffer{};
    o.staging = Buffer{};
    o.readback = Buffer{};
}

std::string Device::memory_strategy() const {
    const DeviceState& s = *state_;
    const DeviceObjects& o = *s.objects;
    const auto type = [&](const Buffer& b) {
        return "memory type " + std::to_string(b.memory_type) + " (" +
               memory_property_names(b.memory_flags) + ")";
    };
    if (!o.image.buffer) return "no buffers yet (they are made by the first run)";
    std::string text = s.direct_upload
                           ? "upload: host writes the image buffer directly, " + type(o.image)
                           : "upload: host writes a staging buffer in " + type(o.staging) +
                                 ", the GPU copies it into the image buffer in " + type(o.image);
    text += "; readback: the GPU copies into " + type(o.readback) + ", the host reads that";
    return text;
}

Result<void> Device::check_image_fits(std::uint64_t bytes, std::string_view what) const {
    const DeviceInfo& d = state_->info;
    const std::string subject = std::string(what) + " is " + size_text(bytes) + ", larger than ";
    const std::string advice = "; use a smaller image or a device with a larger limit";
    if (bytes > d.limits.max_storage_buffer_range)
        return Error{subject + "the largest storage buffer of " + d.name +
                     " (maxStorageBufferRange " + size_text(d.limits.max_storage_buffer_range) +
                     ")" + advice};
    if (bytes > d.limits.max_memory_allocation_size)
        return Error{subject + "the largest allocation of " + d.name +
                     " (maxMemoryAllocationSize " + size_text(d.limits.max_memory_allocation_size) +
                     ")" + advice};
    if (d.limits.max_buffer_size && bytes > *d.limits.max_buffer_size)
        return Error{subject + "the largest buffer of " + d.name + " (maxBufferSize " +
                     size_text(*d.limits.max_buffer_size) + ")" + advice};
    if (bytes > d.largest_device_local_heap())
        return Error{subject + "the device-local memory heap of " + d.name + " (" +
                     size_text(d.largest_device_local_heap()) + ")" + advice};
    return {};
}

Result<void> Device::add_kernel(std::string name, std::vector<std::uint32_t> spirv) {
    DeviceObjects& o = *state_->objects;
    if (o.kernels.count(name))
        return Error{"kernel '" + name + "' is already registered on this device"};
    if (auto module = read_spirv_module(spirv); !module)
        return Error{"kernel '" + name + "': " + module.error().message};
    o.kernels[name].owned_spirv = std::move(spirv);
    return {};
}

Result<PipelineInfo> Device::prepare_kernel(std::string_view name) {
    if (failed()) return Error{state_->failure};
    bool created = false;
    auto entry = kernel_pipeline(*state_, name, created);
    if (!entry) return entry.error();
    PipelineInfo info = (*entry)->info;
    info.created_in_this_call = created;
    return info;
}

Result<GpuRun> Device::run_interpreter(Image& image) {
    const Dispatch dispatch =
        Dispatch::with_push("interpreter", InterpreterPush{image.width(), image.height()});
    return run(std::span(&dispatch, 1), image);
}

Result<GpuRun> Device::run(std::span<const Dispatch> dispatches, Image& image) {
    const auto start = Clock::now();
    DeviceState& s = *state_;
    DeviceObjects& o = *s.objects;
    const DeviceInfo& d = s.info;
    if (failed()) return Error{s.failure};
    if (dispatches.empty()) return Error{"nothing to run: the dispatch list is empty"};
    const VkDeviceSize bytes = image.size_bytes();
    if (bytes == 0) return Error{"the image is empty"};
    if (auto fits = check_image_fits(bytes, image_name(image)); !fits) return fits.error();

    GpuRun result;
    std::vector<VkPipeline> pipelines;
    for (const Dispatch& dispatch : dispatches) {
        const std::string what = "dispatch of kernel '" + dispatch.kernel + "'";
        if (dispatch.push_constants.size() > PUSH_CONSTANT_BYTES ||
            dispatch.push_constants.size() % 4 != 0)
            return Error{what + " has " + std::to_string(dispatch.push_constants.size()) +
                         " bytes of push constants; at most " +
                         std::to_string(PUSH_CONSTANT_BYTES) + ", a multiple of 4"};
        for (int i = 0; i < 3; ++i)
            if (dispatch.groups[i] == 0 ||
                dispatch.groups[i] > d.limits.max_compute_work_group_count[i])
                return Error{what + " asks for " + std::to_string(dispatch.groups[i]) +
                             " workgroups in dimension " + std::to_string(i) + "; " + d.name +
                             " allows 1 to " +
                             std::to_string(d.limits.max_compute_work_group_count[i])};
        bool created = false;
        auto entry = kernel_pipeline(s, dispatch.kernel, created);
        if (!entry) return entry.error();
        pipelines.push_back((*entry)->pipeline.get());
        auto seen =
            std::find_if(result.pipelines.begin(), result.pipelines.end(),
                         [&](const PipelineInfo& p) { return p.kernel == dispatch.kernel; });
        if (seen == result.pipelines.end()) {
            result.pipelines.push_back((*entry)->info);
            result.pipelines.back().created_in_this_call = created;
        }
    }

    if (auto buffers = ensure_buffers(s, bytes); !buffers) return buffers.error();
    const bool timestamps = s.timestamp_bits > 0;
    const std::uint32_t query_count = 3 + std::uint32_t(dispatches.size());
    if (timestamps)
        if (auto queries = ensure_queries(s, query_count); !queries) return queries.error();

    const VkDescriptorBufferInfo image_info{o.image.buffer.get(), 0, bytes};
    const VkDescriptorBufferInfo status_info{o.status.buffer.get(), 0, STATUS_BYTES};
    VkWriteDescriptorSet writes[2]{};
    for (int i = 0; i < 2; ++i) {
        writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        writes[i].dstSet = o.descriptor_set;
        writes[i].dstBinding = i == 0 ? BINDING_IMAGE : BINDING_STATUS;
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = i == 0 ? &image_info : &status_info;
    }
    vkUpdateDescriptorSets(s.device.get(), 2, writes, 0, nullptr);
    result.timings.host_prepare_ms = ms_since(start);

    // Upload: straight into the device-local buffer, or into the staging buffer.
    const auto upload_start = Clock::now();
    const Buffer& upload = s.direct_upload ? o.image : o.staging;
    std::memcpy(upload.mapped, image.data(), bytes);
    flush(s, upload);
    result.timings.host_upload_ms = ms_since(upload_start);
    result.timings.direct_upload = s.direct_upload;

    // Record: [timestamp] upload copy, zero status [timestamp] dispatches with barriers between
    // them [timestamp after each] readback copies [timestamp].
    VkCommandBuffer cmd = o.command_buffer;
    PX_VK_CHECK(vkResetCommandBuffer(cmd, 0));
    auto begin = make_struct<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    if (VkResult r = vkBeginCommandBuffer(cmd, &begin); r != VK_SUCCESS)
        return vulkan_error("cannot record a command buffer on " + d.name, r);
    std::uint32_t query = 0;
    const auto stamp = [&](VkPipelineStageFlagBits stage) {
        if (timestamps) vkCmdWriteTimestamp(cmd, stage, o.queries.get(), query++);
    };
    if (timestamps) vkCmdResetQueryPool(cmd, o.queries.get(), 0, query_count);
    stamp(VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT);
    if (!s.direct_upload) {
        const VkBufferCopy region{0, 0, bytes};
        vkCmdCopyBuffer(cmd, o.staging.buffer.get(), o.image.buffer.get(), 1, &region);
    }
    vkCmdFillBuffer(cmd, o.status.buffer.get(), 0, STATUS_BYTES, 0);
    stamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT);
    record_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                   VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                   VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, o.pipeline_layout.get(), 0, 1,
                            &o.descriptor_set, 0, nullptr);
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
        stamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT);
    }
    record_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                   VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT);
    const VkBufferCopy image_back{0, 0, bytes};
    vkCmdCopyBuffer(cmd, o.image.buffer.get(), o.readback.buffer.get(), 1, &image_back);
    const VkBufferCopy status_back{0, status_offset(bytes), STATUS_BYTES};
    vkCmdCopyBuffer(cmd, o.status.buffer.get(), o.readback.buffer.get(), 1, &status_back);
    record_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                   VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    stamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT);
    if (VkResult r = vkEndCommandBuffer(cmd); r != VK_SUCCESS)
        return vulkan_error("cannot record a command buffer on " + d.name, r);

    // Submit and wait.
    const auto submit_start = Clock::now();
    VkFence fence = o.fence.get();
    PX_VK_CHECK(vkResetFences(s.device.get(), 1, &fence));
    auto submit = make_struct<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &cmd;
    if (VkResult r = vkQueueSubmit(s.queue, 1, &submit, fence); r != VK_SUCCESS) {
        if (r == VK_ERROR_DEVICE_LOST) s.failure = vulkan_error(d.name + ": submit", r).message;
        return vulkan_error("cannot submit the run to " + d.name, r);
    }
    const auto timeout = s.runtime->options.timeout;
    const VkResult waited =
        vkWaitForFences(s.device.get(), 1, &fence, VK_TRUE,
                        std::uint64_t(std::chrono::nanoseconds(timeout).count()));
    if (waited == VK_TIMEOUT) {
        s.pending = true;
        s.failure = d.name + " did not finish a run within " + std::to_string(timeout.count()) +
                    " ms; the run was abandoned and this device cannot run again (raise the limit "
                    "with PXVM_TIMEOUT_MS or RuntimeOptions::timeout)";
        return Error{s.failure};
    }
    if (waited != VK_SUCCESS) {
        s.failure =
            vulkan_error("the run on " + d.name + " failed while waiting for it", waited).message;
        return Error{s.failure};
    }
    result.timings.host_submit_wait_ms = ms_since(submit_start);

    if (timestamps) {
        std::vector<std::uint64_t> ticks(query_count);
        const VkResult r = vkGetQueryPoolResults(
            s.device.get(), o.queries.get(), 0, query_count, ticks.size() * sizeof(std::uint64_t),
            ticks.data(), sizeof(std::uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
        if (r == VK_SUCCESS) {
            const std::uint64_t mask = s.timestamp_bits >= 64
                                           ? ~std::uint64_t(0)
                                           : (std::uint64_t(1) << s.timestamp_bits) - 1;
            const double period = d.limits.timestamp_period_ns;
            const auto elapsed = [&](std::uint32_t a, std::uint32_t b) {
                return double((ticks[b] - ticks[a]) & mask) * period / 1e6;
            };
            const std::uint32_t last_dispatch = 1 + std::uint32_t(dispatches.size());
            result.timings.gpu_upload_ms = elapsed(0, 1);
            result.timings.gpu_execute_ms = elapsed(1, last_dispatch);
            result.timings.gpu_readback_ms = elapsed(last_dispatch, last_dispatch + 1);
            for (std::uint32_t i = 1; i < last_dispatch; ++i)
                result.timings.gpu_dispatch_ms.push_back(elapsed(i, i + 1));
        } else if (r == VK_ERROR_DEVICE_LOST) {
            s.failure = vulkan_error(d.name + ": reading timestamps", r).message;
            return Error{s.failure};
        }
    }

    // Read back: only now, after everything succeeded, is the caller's image changed.
    const auto readback_start = Clock::now();
    invalidate(s, o.readback);
    const auto* mapped = static_cast<const std::uint8_t*>(o.readback.mapped);
    std::memcpy(&result.status, mapped + status_offset(bytes), STATUS_BYTES);
    if (result.status.fault_code == STATUS_INCOMPLETE) // the image is unreliable: keep the caller's
        return Error{"the GPU stopped at pc " + std::to_string(result.status.fault_pc) + " after " +
                     std::to_string(result.status.executed) +
                     " instructions, before the program ended: " + d.name +
                     " limits how long one shader invocation may loop (lavapipe: 65535 loop "
                     "iterations in all); run the program on a GPU, or with --device cpu"};
    std::memcpy(image.data(), mapped, bytes);
    result.timings.host_readback_ms = ms_since(readback_start);
    result.timings.host_total_ms = ms_since(start);
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
