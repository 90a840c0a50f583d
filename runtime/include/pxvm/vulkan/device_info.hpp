// What pxVM knows about one Vulkan physical device: identity, driver, queues, memory, the features
// its kernels may use (8/16/64-bit integers, integer dot product, subgroups, cooperative matrices),
// the limits that bound an image, and the stable order in which devices are numbered.
#pragma once

#include <vulkan/vulkan.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace px::vk {

/// The lowest device API version pxVM runs on.
inline constexpr std::uint32_t MIN_DEVICE_API_VERSION = VK_API_VERSION_1_2;

/// One cooperative-matrix multiply-add the driver supports: Result(M×N) = A(M×K)·B(K×N) + C(M×N).
/// Types are short names: "u8", "s8", "f16", "f32", "s32", "u32", ... (see component_type_name).
struct CooperativeMatrixShape {
    std::uint32_t m = 0, n = 0, k = 0;
    std::string a_type, b_type, c_type, result_type;
    std::string scope;                    ///< "subgroup", "workgroup", ...
    bool saturating_accumulation = false; ///< KHR only (NV shapes never saturate)
};

/// VK_KHR_shader_integer_dot_product (core in 1.3): whether the shader instructions exist, and
/// which forms the driver says are faster than the equivalent multiply-adds.
struct IntegerDotProduct {
    bool supported = false; ///< shaderIntegerDotProduct
    bool packed_4x8_unsigned_accelerated = false;
    bool packed_4x8_signed_accelerated = false;
    bool packed_4x8_mixed_accelerated = false;
    bool vector_8bit_unsigned_accelerated = false;
    bool vector_8bit_signed_accelerated = false;
    bool accumulating_saturating_packed_4x8_unsigned_accelerated = false;
    bool accumulating_saturating_packed_4x8_signed_accelerated = false;
};

/// Subgroups (Vulkan 1.1) and subgroup size control (VK_EXT_subgroup_size_control, core in 1.3).
struct Subgroups {
    std::uint32_t size = 0;                ///< the default subgroup size
    VkShaderStageFlags stages = 0;         ///< stages with subgroup operations
    VkSubgroupFeatureFlags operations = 0; ///< basic, vote, arithmetic, ballot, shuffle, ...
    bool size_control = false;             ///< subgroupSizeControl
    bool compute_full_subgroups = false;
    std::uint32_t min_size = 0, max_size = 0; ///< 0 without size control
    bool compute_required_size = false;       ///< compute is in requiredSubgroupSizeStages
};

/// The optional features pxVM kernels may use. A feature is enabled on the logical device exactly
/// when it is true here; kernels needing a false one are refused (spirv_requirements.hpp).
struct DeviceFeatures {
    bool storage_buffer_8bit = false;             ///< storageBuffer8BitAccess
    bool uniform_and_storage_buffer_8bit = false; ///< uniformAndStorageBuffer8BitAccess
    bool storage_push_constant_8 = false;
    bool storage_buffer_16bit = false;
    bool uniform_and_storage_buffer_16bit = false;
    bool storage_push_constant_16 = false;
    bool shader_int8 = false;
    bool shader_int16 = false;
    bool shader_int64 = false;
    bool shader_float16 = false;
    bool shader_float64 = false;
    bool shader_buffer_int64_atomics = false;
    bool vulkan_memory_model = false;
    bool vulkan_memory_model_device_scope = false;
    IntegerDotProduct integer_dot_product;
    Subgroups subgroups;
    bool cooperative_matrix_nv = false; ///< VK_NV_cooperative_matrix advertised and its feature on
    std::vector<CooperativeMatrixShape> cooperative_matrix_nv_shapes;
    bool cooperative_matrix_khr =
        false; ///< VK_KHR_cooperative_matrix advertised and its feature on
    std::vector<CooperativeMatrixShape> cooperative_matrix_khr_shapes;
    bool pipeline_creation_feedback = false; ///< core 1.3 or VK_EXT_pipeline_creation_feedback
};

/// The limits that decide what fits and how it is timed.
struct DeviceLimits {
    std::uint64_t max_storage_buffer_range = 0;
    std::uint64_t max_memory_allocation_size = 0; ///< maintenance3 (core 1.1)
    std::optional<std::uint64_t> max_buffer_size; ///< maintenance4 (core 1.3), when known
    std::uint32_t max_compute_shared_memory_size = 0;
    std::array<std::uint32_t, 3> max_compute_work_group_size{};
    std::uint32_t max_compute_work_group_invocations = 0;
    std::array<std::uint32_t, 3> max_compute_work_group_count{};
    std::uint32_t max_push_constants_size = 0;
    std::uint64_t min_storage_buffer_offset_alignment = 0;
    std::uint64_t non_coherent_atom_size = 0;
    float timestamp_period_ns = 0; ///< nanoseconds per timestamp tick
    bool timestamp_compute_and_graphics = false;
};

struct QueueFamily {
    std::uint32_t index = 0;
    VkQueueFlags flags = 0;
    std::uint32_t count = 0;
    std::uint32_t timestamp_valid_bits = 0; ///< 0: no timestamps on this family
};

struct MemoryHeap {
    std::uint64_t size = 0;
    VkMemoryHeapFlags flags = 0;
};

struct MemoryType {
    std::uint32_t heap = 0;
    VkMemoryPropertyFlags flags = 0;
};

struct PciAddress {
    std::uint32_t domain = 0, bus = 0, device = 0, function = 0;
};

/// Everything pxVM reads about one physical device.
struct DeviceInfo {
    std::uint32_t index = 0; ///< position in the stable device order (device_order_less)
    std::string name;
    VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
    std::uint32_t vendor_id = 0, device_id = 0;
    std::uint32_t api_version = 0;
    std::uint32_t driver_version = 0; ///< raw; see format_driver_version
    VkDriverId driver_id = VkDriverId(0);
    std::string driver_name, driver_info; ///< VkPhysicalDeviceDriverProperties
    std::array<std::uint8_t, VK_UUID_SIZE> pipeline_cache_uuid{};
    std::array<std::uint8_t, VK_UUID_SIZE> device_uuid{};
    std::optional<PciAddress> pci;       ///< VK_EXT_pci_bus_info, when advertised
    std::vector<std::string> extensions; ///< every device extension, sorted
    std::vector<QueueFamily> queue_families;
    /// The family pxVM submits to: a compute family without graphics when there is one
    /// (preferring one with timestamps), else any compute family.
    std::optional<std::uint32_t> compute_queue_family;
    std::vector<MemoryHeap> memory_heaps;
    std::vector<MemoryType> memory_types;
    DeviceFeatures features;
    DeviceLimits limits;
    /// Why pxVM cannot run on this device ("Vulkan 1.1 device; pxVM needs 1.2"), or empty.
    std::string unsupported_reason;

    bool usable() const { return unsupported_reason.empty(); }
    bool has_extension(std::string_view name) const;
    /// Timestamp bits of the compute queue family (0 when it has none).
    std::uint32_t timestamp_valid_bits() const;
    /// The size of the largest DEVICE_LOCAL heap.
    std::uint64_t largest_device_local_heap() const;
};

/// Reads everything above for one device. `index` is filled in later by the runtime.
/// Extension structures are chained only when the device advertises the extension (or its API
/// version makes it core); extension functions are loaded with vkGetInstanceProcAddr.
DeviceInfo query_device_info(VkInstance instance, VkPhysicalDevice device);

/// The stable device order: type (discrete GPU, integrated GPU, virtual GPU, CPU, other), then
/// name, then PCI address (devices without one last), then device UUID. Identical GPUs therefore
/// appear in PCI bus order, as nvidia-smi lists them, and index 0 is the preferred device.
bool device_order_less(const DeviceInfo& a, const DeviceInfo& b);

/// The pxVM execution paths and kernel variants a device would use, from what both the device
/// and this build support.
struct ExecutionPaths {
    bool interpreter = false;
    std::string interpreter_note; ///< why not
    /// A kernel variant of the scheduled-kernels path: "portable", "int-dot", "coopmat-nv".
    struct Variant {
        std::string name;
        bool available = false; ///< the device has the features and this build the kernels
        std::string reason;     ///< why not
    };
    std::vector<Variant> kernel_variants;
    /// The variant each instruction uses by default: {"matmul", "int-dot"}, {"relu", "portable"}.
    std::vector<std::pair<std::string, std::string>> instruction_variants;
};
ExecutionPaths execution_paths(const DeviceInfo& device);

// Names for reports.
std::string_view device_type_name(VkPhysicalDeviceType type); ///< "discrete GPU", "CPU", ...
std::string_view vendor_name(std::uint32_t vendor_id);        ///< "NVIDIA", ... or "" if unknown
std::string format_api_version(std::uint32_t version);        ///< "1.3.230"
/// The driver version in the vendor's own encoding ("580.65.06" for NVIDIA, "0.0.1" for Mesa).
std::string format_driver_version(const DeviceInfo& device);
std::string format_uuid(const std::array<std::uint8_t, VK_UUID_SIZE>& uuid); ///< 32 hex digits
std::string format_pci(const PciAddress& pci);                               ///< "0000:3b:00.0"
std::string memory_property_names(VkMemoryPropertyFlags flags);     ///< "device-local host-visible"
std::string memory_heap_names(VkMemoryHeapFlags flags);             ///< "device-local" or ""
std::string queue_flag_names(VkQueueFlags flags);                   ///< "graphics compute transfer"
std::string subgroup_operation_names(VkSubgroupFeatureFlags flags); ///< "basic vote ..."
std::string_view component_type_name(std::uint32_t type); ///< VkComponentTypeKHR/NV: "s8", ...
/// "1.50 GiB", "128 MiB", "48 KiB", "12 bytes".
std::string format_bytes(std::uint64_t bytes);

} // namespace px::vk
