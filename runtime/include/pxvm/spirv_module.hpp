// pxVM's one SPIR-V module reader (library pxvm_spirv, no Vulkan): what a compute module asks of a
// device and what it expects the host to bind. The runtime checks kernels against devices with it;
// the build-time tool pxvm_spirv_check checks kernels against kernels/pxvm_layout.h with it.
#pragma once

#include "pxvm/result.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace px {

/// What a descriptor binding holds.
enum class DescriptorKind { storage_buffer, uniform_buffer, image, sampler, sampled_image, other };

/// "storage buffer", "uniform buffer", "image", "sampler", "sampled image" or "opaque resource".
std::string_view kind_name(DescriptorKind kind);

/// A descriptor: a variable in StorageBuffer, Uniform (a BufferBlock is a storage buffer) or
/// UniformConstant storage.
struct SpirvBinding {
    std::uint32_t set = 0, binding = 0;
    DescriptorKind kind = DescriptorKind::storage_buffer;
    bool arrayed = false; ///< an array of descriptors
    std::string name;     ///< the variable's OpName, empty when it has none
    /// Equal when the host binds both alike: the name is not compared.
    bool operator==(const SpirvBinding& o) const {
        return set == o.set && binding == o.binding && kind == o.kind && arrayed == o.arrayed;
    }
};

/// A module's capabilities, workgroup size and resource interface.
struct SpirvModule {
    std::vector<std::uint32_t> capabilities; ///< OpCapability operands, in module order
    std::uint32_t compute_entry_points = 0;  ///< how many GLCompute entry points it declares
    /// The first GLCompute entry point's workgroup size: the WorkgroupSize built-in, else the
    /// LocalSizeId or LocalSize execution mode, the first of these whose ids all resolve through
    /// OpConstant or OpSpecConstant (a specialization constant counts with its default value).
    std::optional<std::array<std::uint32_t, 3>> local_size;
    /// A component of local_size is a specialization constant: the pipeline may set it.
    bool local_size_specializable = false;
    std::vector<SpirvBinding> bindings;   ///< sorted by set, then binding
    std::uint32_t push_constant_size = 0; ///< bytes up to the end of the last member; 0: no block
    /// What the reader could not make sense of ("workgroup size component 7 is not a constant",
    /// a type it cannot size): the fields above may then be incomplete.
    std::vector<std::string> problems;
};

/// Reads a module's words; fails on words that are not SPIR-V or are cut short.
Result<SpirvModule> read_spirv_module(std::span<const std::uint32_t> words);

} // namespace px
