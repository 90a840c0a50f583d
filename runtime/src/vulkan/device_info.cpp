// Reads a physical device's identity, queues, memory, features and limits through
// VkPhysicalDeviceFeatures2/Properties2 chains, chaining only what the device advertises.
#include "pxvm/vulkan/device_info.hpp"

#include "pxvm/embedded_kernels.hpp"
#include "pxvm/vulkan/handles.hpp"
#include "pxvm/vulkan/scheduler.hpp"
#include "pxvm/vulkan/spirv_requirements.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <tuple>

namespace px::vk {

namespace {

// VK_KHR_cooperative_matrix is newer than Debian 12's Vulkan headers (1.3.239), so its types are
// declared here, with the registry's values, under names that cannot clash with newer headers.
constexpr auto STRUCTURE_TYPE_COOPERATIVE_MATRIX_FEATURES_KHR = VkStructureType(1000506000);
constexpr auto STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR = VkStructureType(1000506001);
struct CooperativeMatrixFeaturesKhr {
    VkStructureType sType;
    void* pNext;
    VkBool32 cooperativeMatrix;
    VkBool32 cooperativeMatrixRobustBufferAccess;
};
struct CooperativeMatrixPropertiesKhr {
    VkStructureType sType;
    void* pNext;
    std::uint32_t MSize, NSize, KSize;
    std::uint32_t AType, BType, CType, ResultType; // VkComponentTypeKHR
    VkBool32 saturatingAccumulation;
    std::uint32_t scope; // VkScopeKHR
};
using GetCooperativeMatrixPropertiesKhr = VkResult(VKAPI_PTR*)(VkPhysicalDevice, std::uint32_t*,
                                                               CooperativeMatrixPropertiesKhr*);

/// Appends Vulkan structures to a pNext chain.
class Chain {
public:
    explicit Chain(void* head) : tail_(static_cast<VkBaseOutStructure*>(head)) {}
    void add(void* next) {
        auto* s = static_cast<VkBaseOutStructure*>(next);
        tail_->pNext = s;
        tail_ = s;
    }

private:
    VkBaseOutStructure* tail_;
};

std::string_view scope_name(std::uint32_t scope) {
    switch (scope) {
    case 1:
        return "device";
    case 2:
        return "workgroup";
    case 3:
        return "subgroup";
    case 5:
        return "queue family";
    default:
        return "unknown scope";
    }
}

int type_rank(VkPhysicalDeviceType type) {
    switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 3;
    default:
        return 4;
    }
}

std::string join_flag_names(std::uint32_t flags,
                            std::initializer_list<std::pair<std::uint32_t, const char*>> names) {
    std::string out;
    for (const auto& [bit, name] : names) {
        if (!(flags & bit)) continue;
        if (!out.empty()) out += ' ';
        out += name;
        flags &= ~bit;
    }
    if (flags) {
        char rest[32];
        std::snprintf(rest, sizeof rest, "%s0x%x", out.empty() ? "" : " ", flags);
        out += rest;
    }
    return out;
}

std::optional<std::uint32_t> choose_compute_family(const std::vector<QueueFamily>& families) {
    std::optional<std::uint32_t> best;
    int best_score = -1;
    for (const QueueFamily& f : families) {
        if (!(f.flags & VK_QUEUE_COMPUTE_BIT) || f.count == 0) continue;
        // A dedicated compute family first (it does not share the graphics queue's work), then
        // one whose timestamps let runs be timed on the GPU.
        const int score =
            (f.flags & VK_QUEUE_GRAPHICS_BIT ? 0 : 2) + (f.timestamp_valid_bits ? 1 : 0);
        if (score > best_score) {
            best_score = score;
            best = f.index;
        }
    }
    return best;
}

} // namespace

bool DeviceInfo::has_extension(std::string_view extension) const {
    return std::binary_search(extensions.begin(), extensions.end(), extension,
                              [](std::string_view a, std::string_view b) { return a < b; });
}

std::uint32_t DeviceInfo::timestamp_valid_bits() const {
    if (!compute_queue_family) return 0;
    for (const QueueFamily& f : queue_families)
        if (f.index == *compute_queue_family) return f.timestamp_valid_bits;
    return 0;
}

std::uint64_t DeviceInfo::largest_device_local_heap() const {
    std::uint64_t largest = 0;
    for (const MemoryHeap& h : memory_heaps)
        if (h.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) largest = std::max(largest, h.size);
    return largest;
}

DeviceInfo query_device_info(VkInstance instance, VkPhysicalDevice device) {
    DeviceInfo info;

    VkPhysicalDeviceProperties props{};
    vkGetPhysicalDeviceProperties(device, &props);
    info.name = props.deviceName;
    info.type = props.deviceType;
    info.vendor_id = props.vendorID;
    info.device_id = props.deviceID;
    info.api_version = props.apiVersion;
    info.driver_version = props.driverVersion;
    std::copy(std::begin(props.pipelineCacheUUID), std::end(props.pipelineCacheUUID),
              info.pipeline_cache_uuid.begin());

    const VkPhysicalDeviceLimits& l = props.limits;
    info.limits.max_storage_buffer_range = l.maxStorageBufferRange;
    info.limits.max_compute_shared_memory_size = l.maxComputeSharedMemorySize;
    std::copy(std::begin(l.maxComputeWorkGroupSize), std::end(l.maxComputeWorkGroupSize),
              info.limits.max_compute_work_group_size.begin());
    info.limits.max_compute_work_group_invocations = l.maxComputeWorkGroupInvocations;
    std::copy(std::begin(l.maxComputeWorkGroupCount), std::end(l.maxComputeWorkGroupCount),
              info.limits.max_compute_work_group_count.begin());
    info.limits.max_push_constants_size = l.maxPushConstantsSize;
    info.limits.min_storage_buffer_offset_alignment = l.minStorageBufferOffsetAlignment;
    info.limits.non_coherent_atom_size = l.nonCoherentAtomSize;
    info.limits.timestamp_period_ns = l.timestampPeriod;
    info.limits.timestamp_compute_and_graphics = l.timestampComputeAndGraphics == VK_TRUE;

    std::uint32_t count = 0;
    vkEnumerateDeviceExtensionProperties(device, nullptr, &count, nullptr);
    std::vector<VkExtensionProperties> extensions(count);
    vkEnumerateDeviceExtensionProperties(device, nullptr, &count, extensions.data());
    extensions.resize(count);
    for (const VkExtensionProperties& e : extensions)
        info.extensions.emplace_back(e.extensionName);
    std::sort(info.extensions.begin(), info.extensions.end());

    count = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(device, &count, nullptr);
    std::vector<VkQueueFamilyProperties> families(count);
    vkGetPhysicalDeviceQueueFamilyProperties(device, &count, families.data());
    for (std::uint32_t i = 0; i < count; ++i)
        info.queue_families.push_back(QueueFamily{i, families[i].queueFlags, families[i].queueCount,
                                                  families[i].timestampValidBits});
    info.compute_queue_family = choose_compute_family(info.queue_families);

    VkPhysicalDeviceMemoryProperties memory{};
    vkGetPhysicalDeviceMemoryProperties(device, &memory);
    for (std::uint32_t i = 0; i < memory.memoryHeapCount; ++i)
        info.memory_heaps.push_back(
            MemoryHeap{memory.memoryHeaps[i].size, memory.memoryHeaps[i].flags});
    for (std::uint32_t i = 0; i < memory.memoryTypeCount; ++i)
        info.memory_types.push_back(
            MemoryType{memory.memoryTypes[i].heapIndex, memory.memoryTypes[i].propertyFlags});

    if (props.apiVersion < MIN_DEVICE_API_VERSION) {
        VkPhysicalDeviceFeatures basic{};
        vkGetPhysicalDeviceFeatures(device, &basic);
        info.features.shader_int16 = basic.shaderInt16;
        info.features.shader_int64 = basic.shaderInt64;
        info.features.shader_float64 = basic.shaderFloat64;
        info.unsupported_reason =
            "Vulkan " + format_api_version(props.apiVersion) + " device; pxVM needs Vulkan 1.2";
        return info;
    }

    const bool core13 = props.apiVersion >= VK_API_VERSION_1_3;
    const bool has_size_control = core13 || info.has_extension("VK_EXT_subgroup_size_control");
    const bool has_dot_product = core13 || info.has_extension("VK_KHR_shader_integer_dot_product");
    const bool has_maintenance4 = core13 || info.has_extension("VK_KHR_maintenance4");
    const bool has_coopmat_nv = info.has_extension("VK_NV_cooperative_matrix");
    const bool has_coopmat_khr = info.has_extension("VK_KHR_cooperative_matrix");
    const bool has_pci = info.has_extension(VK_EXT_PCI_BUS_INFO_EXTENSION_NAME);

    // Features.
    auto features =
        make_struct<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
    auto f11 = make_struct<VkPhysicalDeviceVulkan11Features>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
    auto f12 = make_struct<VkPhysicalDeviceVulkan12Features>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
    auto size_control = make_struct<VkPhysicalDeviceSubgroupSizeControlFeatures>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES);
    auto dot_product = make_struct<VkPhysicalDeviceShaderIntegerDotProductFeatures>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES);
    auto coopmat_nv = make_struct<VkPhysicalDeviceCooperativeMatrixFeaturesNV>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV);
    CooperativeMatrixFeaturesKhr coopmat_khr{STRUCTURE_TYPE_COOPERATIVE_MATRIX_FEATURES_KHR,
                                             nullptr, VK_FALSE, VK_FALSE};
    Chain feature_chain(&features);
    feature_chain.add(&f11);
    feature_chain.add(&f12);
    if (has_size_control) feature_chain.add(&size_control);
    if (has_dot_product) feature_chain.add(&dot_product);
    if (has_coopmat_nv) feature_chain.add(&coopmat_nv);
    if (has_coopmat_khr) feature_chain.add(&coopmat_khr);
    vkGetPhysicalDeviceFeatures2(device, &features);

    DeviceFeatures& f = info.features;
    f.storage_buffer_8bit = f12.storageBuffer8BitAccess;
    f.uniform_and_storage_buffer_8bit = f12.uniformAndStorageBuffer8BitAccess;
    f.storage_push_constant_8 = f12.storagePushConstant8;
    f.storage_buffer_16bit = f11.storageBuffer16BitAccess;
    f.uniform_and_storage_buffer_16bit = f11.uniformAndStorageBuffer16BitAccess;
    f.storage_push_constant_16 = f11.storagePushConstant16;
    f.shader_int8 = f12.shaderInt8;
    f.shader_int16 = features.features.shaderInt16;
    f.shader_int64 = features.features.shaderInt64;
    f.shader_float16 = f12.shaderFloat16;
    f.shader_float64 = features.features.shaderFloat64;
    f.shader_buffer_int64_atomics = f12.shaderBufferInt64Atomics;
    f.vulkan_memory_model = f12.vulkanMemoryModel;
    f.vulkan_memory_model_device_scope = f12.vulkanMemoryModelDeviceScope;
    f.integer_dot_product.supported = has_dot_product && dot_product.shaderIntegerDotProduct;
    f.subgroups.size_control = has_size_control && size_control.subgroupSizeControl;
    f.subgroups.compute_full_subgroups = has_size_control && size_control.computeFullSubgroups;
    f.cooperative_matrix_nv = has_coopmat_nv && coopmat_nv.cooperativeMatrix;
    f.cooperative_matrix_khr = has_coopmat_khr && coopmat_khr.cooperativeMatrix;
    f.pipeline_creation_feedback =
        core13 || info.has_extension(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME);

    // Properties.
    auto properties =
        make_struct<VkPhysicalDeviceProperties2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2);
    auto p11 = make_struct<VkPhysicalDeviceVulkan11Properties>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES);
    auto p12 = make_struct<VkPhysicalDeviceVulkan12Properties>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES);
    auto size_control_props = make_struct<VkPhysicalDeviceSubgroupSizeControlProperties>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES);
    auto dot_props = make_struct<VkPhysicalDeviceShaderIntegerDotProductProperties>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES);
    auto maintenance4 = make_struct<VkPhysicalDeviceMaintenance4Properties>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES);
    auto pci = make_struct<VkPhysicalDevicePCIBusInfoPropertiesEXT>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT);
    Chain property_chain(&properties);
    property_chain.add(&p11);
    property_chain.add(&p12);
    if (has_size_control) property_chain.add(&size_control_props);
    if (has_dot_product) property_chain.add(&dot_props);
    if (has_maintenance4) property_chain.add(&maintenance4);
    if (has_pci) property_chain.add(&pci);
    vkGetPhysicalDeviceProperties2(device, &properties);

    std::copy(std::begin(p11.deviceUUID), std::end(p11.deviceUUID), info.device_uuid.begin());
    info.limits.max_memory_allocation_size = p11.maxMemoryAllocationSize;
    if (has_maintenance4) info.limits.max_buffer_size = maintenance4.maxBufferSize;
    f.subgroups.size = p11.subgroupSize;
    f.subgroups.stages = p11.subgroupSupportedStages;
    f.subgroups.operations = p11.subgroupSupportedOperations;
    if (f.subgroups.size_control) {
        f.subgroups.min_size = size_control_props.minSubgroupSize;
        f.subgroups.max_size = size_control_props.maxSubgroupSize;
        f.subgroups.compute_required_size =
            (size_control_props.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
    }
    if (f.integer_dot_product.supported) {
        IntegerDotProduct& d = f.integer_dot_product;
        d.packed_4x8_unsigned_accelerated =
            dot_props.integerDotProduct4x8BitPackedUnsignedAccelerated;
        d.packed_4x8_signed_accelerated = dot_props.integerDotProduct4x8BitPackedSignedAccelerated;
        d.packed_4x8_mixed_accelerated =
            dot_props.integerDotProduct4x8BitPackedMixedSignednessAccelerated;
        d.vector_8bit_unsigned_accelerated = dot_props.integerDotProduct8BitUnsignedAccelerated;
        d.vector_8bit_signed_accelerated = dot_props.integerDotProduct8BitSignedAccelerated;
        d.accumulating_saturating_packed_4x8_unsigned_accelerated =
            dot_props.integerDotProductAccumulatingSaturating4x8BitPackedUnsignedAccelerated;
        d.accumulating_saturating_packed_4x8_signed_accelerated =
            dot_props.integerDotProductAccumulatingSaturating4x8BitPackedSignedAccelerated;
    }
    info.driver_id = p12.driverID;
    info.driver_name = p12.driverName;
    info.driver_info = p12.driverInfo;
    if (has_pci) info.pci = PciAddress{pci.pciDomain, pci.pciBus, pci.pciDevice, pci.pciFunction};

    if (f.cooperative_matrix_nv) {
        auto get = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
            vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
        std::uint32_t n = 0;
        if (get && get(device, &n, nullptr) == VK_SUCCESS) {
            std::vector<VkCooperativeMatrixPropertiesNV> shapes(
                n, make_struct<VkCooperativeMatrixPropertiesNV>(
                       VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV));
            if (get(device, &n, shapes.data()) >= VK_SUCCESS) {
                shapes.resize(n);
                for (const auto& s : shapes)
                    f.cooperative_matrix_nv_shapes.push_back(CooperativeMatrixShape{
                        s.MSize, s.NSize, s.KSize, std::string(component_type_name(s.AType)),
                        std::string(component_type_name(s.BType)),
                        std::string(component_type_name(s.CType)),
                        std::string(component_type_name(s.DType)), std::string(scope_name(s.scope)),
                        false});
            }
        }
    }
    if (f.cooperative_matrix_khr) {
        auto get = reinterpret_cast<GetCooperativeMatrixPropertiesKhr>(
            vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"));
        std::uint32_t n = 0;
        if (get && get(device, &n, nullptr) == VK_SUCCESS) {
            std::vector<CooperativeMatrixPropertiesKhr> shapes(
                n, CooperativeMatrixPropertiesKhr{STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR,
                                                  nullptr, 0, 0, 0, 0, 0, 0, 0, VK_FALSE, 0});
            if (get(device, &n, shapes.data()) >= VK_SUCCESS) {
                shapes.resize(n);
                for (const auto& s : shapes)
                    f.cooperative_matrix_khr_shapes.push_back(CooperativeMatrixShape{
                        s.MSize, s.NSize, s.KSize, std::string(component_type_name(s.AType)),
                        std::string(component_type_name(s.BType)),
                        std::string(component_type_name(s.CType)),
                        std::string(component_type_name(s.ResultType)),
                        std::string(scope_name(s.scope)), s.saturatingAccumulation == VK_TRUE});
            }
        }
    }

    if (!info.compute_queue_family) info.unsupported_reason = "no queue family supports compute";
    return info;
}

bool device_order_less(const DeviceInfo& a, const DeviceInfo& b) {
    const auto key = [](const DeviceInfo& d) {
        const PciAddress pci = d.pci.value_or(PciAddress{});
        return std::tuple(type_rank(d.type), d.name, !d.pci.has_value(), pci.domain, pci.bus,
                          pci.device, pci.function, d.device_uuid, d.vendor_id, d.device_id);
    };
    return key(a) < key(b);
}

ExecutionPaths execution_paths(const DeviceInfo& device) {
    ExecutionPaths paths;
    if (!device.usable()) {
        paths.interpreter_note = device.unsupported_reason;
        return paths;
    }
    if (const EmbeddedKernel* kernel = find_kernel("interpreter")) {
        if (auto supported = check_kernel_support(kernel->name, kernel->spirv, device); !supported)
            paths.interpreter_note = supported.error().message;
        else
            paths.interpreter = true;
    } else {
        paths.interpreter_note = "the interpreter kernel is not built into this binary";
    }
    for (const VariantSupport& v : variant_support(device))
        paths.kernel_variants.push_back({std::string(to_string(v.variant)), v.available, v.reason});
    paths.instruction_variants = instruction_variants(device);
    return paths;
}

std::string_view device_type_name(VkPhysicalDeviceType type) {
    switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "CPU";
    default:
        return "other";
    }
}

std::string_view vendor_name(std::uint32_t vendor_id) {
    switch (vendor_id) {
    case 0x1002:
        return "AMD";
    case 0x1010:
        return "Imagination";
    case 0x106B:
        return "Apple";
    case 0x10DE:
        return "NVIDIA";
    case 0x13B5:
        return "ARM";
    case 0x1414:
        return "Microsoft";
    case 0x14E4:
        return "Broadcom";
    case 0x5143:
        return "Qualcomm";
    case 0x8086:
        return "Intel";
    case 0x10005:
        return "Mesa";
    default:
        return "";
    }
}

std::string format_api_version(std::uint32_t version) {
    return std::to_string(VK_API_VERSION_MAJOR(version)) + "." +
           std::to_string(VK_API_VERSION_MINOR(version)) + "." +
           std::to_string(VK_API_VERSION_PATCH(version));
}

std::string format_driver_version(const DeviceInfo& device) {
    const std::uint32_t v = device.driver_version;
    char text[48];
    if (device.vendor_id == 0x10DE) // NVIDIA: 10.8.8.6 bits
        std::snprintf(text, sizeof text, "%u.%u.%02u", v >> 22, (v >> 14) & 0xffu,
                      (v >> 6) & 0xffu);
    else if (device.vendor_id == 0x8086 &&
             device.driver_id == VK_DRIVER_ID_INTEL_PROPRIETARY_WINDOWS)
        std::snprintf(text, sizeof text, "%u.%u", v >> 14, v & 0x3fffu);
    else
        std::snprintf(text, sizeof text, "%u.%u.%u", VK_API_VERSION_MAJOR(v),
                      VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
    return text;
}

std::string format_uuid(const std::array<std::uint8_t, VK_UUID_SIZE>& uuid) {
    std::string out;
    char byte[3];
    for (std::uint8_t b : uuid) {
        std::snprintf(byte, sizeof byte, "%02x", b);
        out += byte;
    }
    return out;
}

std::string format_pci(const PciAddress& pci) {
    char text[32];
    std::snprintf(text, sizeof text, "%04x:%02x:%02x.%x", pci.domain, pci.bus, pci.device,
                  pci.function);
    return text;
}

std::string memory_property_names(VkMemoryPropertyFlags flags) {
    return join_flag_names(flags,
                           {{VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, "device-local"},
                            {VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, "host-visible"},
                            {VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, "host-coherent"},
                            {VK_MEMORY_PROPERTY_HOST_CACHED_BIT, "host-cached"},
                            {VK_MEMORY_PROPERTY_LAZILY_ALLOCATED_BIT, "lazily-allocated"},
                            {VK_MEMORY_PROPERTY_PROTECTED_BIT, "protected"},
                            {VK_MEMORY_PROPERTY_DEVICE_COHERENT_BIT_AMD, "device-coherent"},
                            {VK_MEMORY_PROPERTY_DEVICE_UNCACHED_BIT_AMD, "device-uncached"}});
}

std::string memory_heap_names(VkMemoryHeapFlags flags) {
    return join_flag_names(flags, {{VK_MEMORY_HEAP_DEVICE_LOCAL_BIT, "device-local"},
                                   {VK_MEMORY_HEAP_MULTI_INSTANCE_BIT, "multi-instance"}});
}

std::string queue_flag_names(VkQueueFlags flags) {
    return join_flag_names(flags, {{VK_QUEUE_GRAPHICS_BIT, "graphics"},
                                   {VK_QUEUE_COMPUTE_BIT, "compute"},
                                   {VK_QUEUE_TRANSFER_BIT, "transfer"},
                                   {VK_QUEUE_SPARSE_BINDING_BIT, "sparse-binding"},
                                   {VK_QUEUE_PROTECTED_BIT, "protected"},
                                   {VK_QUEUE_VIDEO_DECODE_BIT_KHR, "video-decode"},
                                   {VK_QUEUE_OPTICAL_FLOW_BIT_NV, "optical-flow"}});
}

std::string subgroup_operation_names(VkSubgroupFeatureFlags flags) {
    return join_flag_names(flags, {{VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},
                                   {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
                                   {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"},
                                   {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
                                   {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},
                                   {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle-relative"},
                                   {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"},
                                   {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"},
                                   {VK_SUBGROUP_FEATURE_PARTITIONED_BIT_NV, "partitioned-nv"},
                                   // VK_KHR_shader_subgroup_rotate, newer than Debian's headers
                                   {0x200u, "rotate"},
                                   {0x400u, "rotate-clustered"}});
}

std::string_view component_type_name(std::uint32_t type) {
    switch (type) {
    case 0:
        return "f16";
    case 1:
        return "f32";
    case 2:
        return "f64";
    case 3:
        return "s8";
    case 4:
        return "s16";
    case 5:
        return "s32";
    case 6:
        return "s64";
    case 7:
        return "u8";
    case 8:
        return "u16";
    case 9:
        return "u32";
    case 10:
        return "u64";
    case 1000141000:
        return "bf16";
    case 1000491000:
        return "s8-packed";
    case 1000491001:
        return "u8-packed";
    case 1000491002:
        return "e4m3";
    case 1000491003:
        return "e5m2";
    default:
        return "unknown";
    }
}

std::string format_bytes(std::uint64_t bytes) {
    static constexpr const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    std::uint64_t scale = 1;
    while (unit < 4 && bytes >= scale * 1024) {
        scale *= 1024;
        ++unit;
    }
    char text[48];
    if (bytes % scale == 0)
        std::snprintf(text, sizeof text, "%" PRIu64 " %s", bytes / scale, units[unit]);
    else
        std::snprintf(text, sizeof text, "%.2f %s", double(bytes) / double(scale), units[unit]);
    return text;
}

} // namespace px::vk
