// The pipeline registry of a Device: kernels added to it, one pipeline per kernel, specialisation
// and subgroup size, and the on-disk pipeline cache they are created through.
#include "device_state.hpp"
#include "pxvm/embedded_kernels.hpp"
#include "pxvm/spirv_module.hpp"
#include "pxvm/vulkan/pipeline_cache.hpp"
#include "pxvm/vulkan/spirv_requirements.hpp"
#include <filesystem>
#include <fstream>
#include <iterator>

namespace px::vk {

using namespace detail;

namespace {

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

} // namespace

namespace detail {

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

} // namespace detail

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

} // namespace px::vk
