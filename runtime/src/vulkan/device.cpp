// Opening a Device: the logical device and queue with exactly the features DeviceInfo reports,
// the shared descriptor set and pipeline layouts, the command pool and the fence.
#include "device_state.hpp"

namespace px::vk {

using namespace detail;

namespace {

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

} // namespace

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

Result<Device> Runtime::open(const DeviceSelector& selector) {
    auto index = select(selector);
    if (!index) return index.error();
    auto state = open_device(*state_, *index);
    if (!state) return state.error();
    return Device(std::move(state.value()));
}

} // namespace px::vk
