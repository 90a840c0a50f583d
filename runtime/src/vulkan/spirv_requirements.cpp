// Checks the capabilities and workgroup size of a SPIR-V module (read by pxvm/spirv_module.hpp)
// against a device's features and limits.
#include "pxvm/vulkan/spirv_requirements.hpp"

#include "pxvm/spirv_module.hpp"

#include <string>

namespace px::vk {

namespace {

/// A device feature a capability needs: its Vulkan name and whether the device has it.
struct Need {
    const char* capability;
    const char* feature;
    bool present;
};

std::optional<Need> need_for(std::uint32_t capability, const DeviceInfo& d) {
    const DeviceFeatures& f = d.features;
    const auto subgroup = [&](const char* cap, VkSubgroupFeatureFlags op) {
        return Need{cap, "compute subgroup operations",
                    (f.subgroups.stages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (f.subgroups.operations & op)};
    };
    switch (capability) {
    case 9:
        return Need{"Float16", "shaderFloat16", f.shader_float16};
    case 10:
        return Need{"Float64", "shaderFloat64", f.shader_float64};
    case 11:
        return Need{"Int64", "shaderInt64", f.shader_int64};
    case 12:
        return Need{"Int64Atomics", "shaderBufferInt64Atomics", f.shader_buffer_int64_atomics};
    case 22:
        return Need{"Int16", "shaderInt16", f.shader_int16};
    case 39:
        return Need{"Int8", "shaderInt8", f.shader_int8};
    case 61:
        return subgroup("GroupNonUniform", VK_SUBGROUP_FEATURE_BASIC_BIT);
    case 62:
        return subgroup("GroupNonUniformVote", VK_SUBGROUP_FEATURE_VOTE_BIT);
    case 63:
        return subgroup("GroupNonUniformArithmetic", VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    case 64:
        return subgroup("GroupNonUniformBallot", VK_SUBGROUP_FEATURE_BALLOT_BIT);
    case 65:
        return subgroup("GroupNonUniformShuffle", VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    case 66:
        return subgroup("GroupNonUniformShuffleRelative", VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT);
    case 67:
        return subgroup("GroupNonUniformClustered", VK_SUBGROUP_FEATURE_CLUSTERED_BIT);
    case 68:
        return subgroup("GroupNonUniformQuad", VK_SUBGROUP_FEATURE_QUAD_BIT);
    case 4433:
        return Need{"StorageBuffer16BitAccess", "storageBuffer16BitAccess", f.storage_buffer_16bit};
    case 4434:
        return Need{"UniformAndStorageBuffer16BitAccess", "uniformAndStorageBuffer16BitAccess",
                    f.uniform_and_storage_buffer_16bit};
    case 4435:
        return Need{"StoragePushConstant16", "storagePushConstant16", f.storage_push_constant_16};
    case 4448:
        return Need{"StorageBuffer8BitAccess", "storageBuffer8BitAccess", f.storage_buffer_8bit};
    case 4449:
        return Need{"UniformAndStorageBuffer8BitAccess", "uniformAndStorageBuffer8BitAccess",
                    f.uniform_and_storage_buffer_8bit};
    case 4450:
        return Need{"StoragePushConstant8", "storagePushConstant8", f.storage_push_constant_8};
    case 5345:
        return Need{"VulkanMemoryModel", "vulkanMemoryModel", f.vulkan_memory_model};
    case 5346:
        return Need{"VulkanMemoryModelDeviceScope", "vulkanMemoryModelDeviceScope",
                    f.vulkan_memory_model_device_scope};
    case 5357:
        return Need{"CooperativeMatrixNV", "VK_NV_cooperative_matrix", f.cooperative_matrix_nv};
    case 6022:
        // Not enabled on the logical device yet: no kernel of this build uses it.
        return Need{"CooperativeMatrixKHR", "VK_KHR_cooperative_matrix (not enabled by pxVM yet)",
                    false};
    case 6016:
    case 6017:
    case 6018:
    case 6019:
        return Need{"DotProduct", "shaderIntegerDotProduct", f.integer_dot_product.supported};
    default:
        return std::nullopt; // core capabilities (Shader, ...) or ones the driver checks itself
    }
}

} // namespace

Result<void> check_kernel_support(std::string_view kernel, std::span<const std::uint32_t> spirv,
                                  const DeviceInfo& device) {
    const std::string name = "kernel '" + std::string(kernel) + "'";
    auto module = read_spirv_module(spirv);
    if (!module) return Error{ErrorCode::invalid_input, name + ": " + module.error().message};

    std::string missing;
    for (std::uint32_t capability : module->capabilities) {
        const std::optional<Need> need = need_for(capability, device);
        if (!need || need->present) continue;
        if (!missing.empty()) missing += ", ";
        missing += std::string(need->feature) + " (SPIR-V capability " + need->capability + ")";
    }
    if (!missing.empty())
        return Error{ErrorCode::unsupported,
                     name + " needs " + missing + ", which " + device.name + " lacks"};

    if (module->local_size) {
        const auto& s = *module->local_size;
        const auto& max = device.limits.max_compute_work_group_size;
        const std::uint64_t invocations = std::uint64_t(s[0]) * s[1] * s[2];
        const std::string size =
            std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]);
        if (s[0] > max[0] || s[1] > max[1] || s[2] > max[2])
            return Error{ErrorCode::unsupported,
                         name + " has workgroup size " + size + ", larger than " + device.name +
                             "'s maxComputeWorkGroupSize " + std::to_string(max[0]) + "x" +
                             std::to_string(max[1]) + "x" + std::to_string(max[2])};
        if (invocations > device.limits.max_compute_work_group_invocations)
            return Error{ErrorCode::unsupported,
                         name + " has workgroup size " + size + " (" + std::to_string(invocations) +
                             " invocations), more than " + device.name +
                             "'s maxComputeWorkGroupInvocations " +
                             std::to_string(device.limits.max_compute_work_group_invocations)};
    }
    return {};
}

} // namespace px::vk
