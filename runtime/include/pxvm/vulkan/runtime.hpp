// The Vulkan runtime: one instance with its devices in a stable order, device selection, and a
// Device that uploads an image into one storage buffer, runs kernels on it (the GPU interpreter,
// or a list of dispatches of named kernels with barriers between them) and reads it back.
// docs/RUNTIME.md describes device order, memory, the pipeline cache, timing and validation.
//
//     auto runtime = px::vk::Runtime::create({.validate = true});
//     auto device = runtime->open(px::vk::DeviceSelector::parse("llvmpipe"));
//     auto run = device->run_interpreter(image);   // image now holds the GPU's result
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/result.hpp"
#include "pxvm/vulkan/device_info.hpp"
#include "pxvm_layout.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace px::vk {

/// How the image reaches the device-local image buffer.
enum class UploadMode {
    automatic, ///< direct when a DEVICE_LOCAL|HOST_VISIBLE memory type exists, else staging
    staging,   ///< host writes a host-visible staging buffer; the GPU copies it (timed)
    direct,    ///< host writes the device-local buffer through a mapping (error if impossible)
};
std::string_view to_string(UploadMode mode);

struct RuntimeOptions {
    /// Enable VK_LAYER_KHRONOS_validation (with synchronization validation where the layer has
    /// it) and count its warnings and errors. PXVM_VALIDATE=1 in the environment enables it too.
    bool validate = false;
    /// Print each validation message to stderr as it arrives (they are counted either way).
    bool print_validation_messages = true;
    /// How long one submit may run before the run fails with a timeout.
    /// PXVM_TIMEOUT_MS in the environment replaces it.
    std::chrono::milliseconds timeout{10'000};
    /// Load and save pipeline caches on disk.
    bool pipeline_cache = true;
    /// Where pipeline caches live; empty: $PXVM_CACHE_DIR, else $XDG_CACHE_HOME/pxvm, else
    /// ~/.cache/pxvm.
    std::string cache_dir;
    UploadMode upload = UploadMode::automatic;
};

/// Which device to open.
struct DeviceSelector {
    enum class Kind { preferred, index, name };
    Kind kind = Kind::preferred;
    std::uint32_t index = 0; ///< Kind::index
    std::string name;        ///< Kind::name: a case-insensitive substring of the device name

    /// The first usable device in the stable order (discrete, integrated, virtual, CPU).
    static DeviceSelector preferred() { return {}; }
    static DeviceSelector by_index(std::uint32_t index) { return {Kind::index, index, {}}; }
    static DeviceSelector by_name(std::string substring) {
        return {Kind::name, 0, std::move(substring)};
    }
    /// "" or "auto": preferred; decimal digits: index; anything else: name substring.
    static DeviceSelector parse(std::string_view text);
};
std::string to_string(const DeviceSelector& selector);

/// Warnings and errors reported through the debug-utils messenger (validation on only).
struct ValidationMessages {
    std::uint32_t warnings = 0, errors = 0;
    std::vector<std::string> texts; ///< the first 64 messages, "error: VUID-...: ..."
    std::uint32_t total() const { return warnings + errors; }
};

/// Stage times of one run, in milliseconds.
struct StageTimings {
    // Host wall-clock times.
    double host_prepare_ms = 0;     ///< checks, buffer (re)allocation, pipeline lookup or creation
    double host_upload_ms = 0;      ///< writing the image into mapped memory
    double host_submit_wait_ms = 0; ///< vkQueueSubmit until the fence signalled
    double host_readback_ms = 0;    ///< copying the result out of mapped memory
    double host_total_ms = 0;       ///< the whole run call

    /// GPU times from timestamp queries; empty when the queue family has no timestamps.
    std::optional<double> gpu_upload_ms;   ///< staging copy (if any) and zeroing the status buffer
    std::optional<double> gpu_execute_ms;  ///< all dispatches
    std::optional<double> gpu_readback_ms; ///< copy into the readback buffer
    std::vector<double> gpu_dispatch_ms;   ///< each dispatch (with the barrier before it)

    bool direct_upload = false; ///< the image was written straight into device-local memory
};

/// How a kernel's pipeline was obtained.
struct PipelineInfo {
    std::string kernel;
    bool created_in_this_call = false; ///< false: reused from this Device's registry
    double create_ms = 0;              ///< host time of vkCreateComputePipelines when created
    /// VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT, when the device supports
    /// creation feedback and the driver marked the feedback valid.
    std::optional<bool> cache_hit;
};

/// The on-disk pipeline cache of a Device.
struct PipelineCacheStatus {
    bool enabled = false;
    std::string path;    ///< the cache file (empty when disabled)
    bool loaded = false; ///< the file existed, was non-empty and its header matched
    std::uint64_t loaded_bytes = 0;
    std::string note; ///< why nothing was loaded, or the last save error
};

/// One dispatch of a named kernel over the image (binding 0) and status (binding 1) buffers.
struct Dispatch {
    std::string kernel;
    std::array<std::uint32_t, 3> groups{1, 1, 1};
    std::vector<std::uint8_t> push_constants; ///< at most 128 bytes, a multiple of 4

    template <class Push>
    static Dispatch with_push(std::string kernel, const Push& push,
                              std::array<std::uint32_t, 3> groups = {1, 1, 1}) {
        static_assert(std::is_trivially_copyable_v<Push>);
        Dispatch d{std::move(kernel), groups, std::vector<std::uint8_t>(sizeof(Push))};
        std::memcpy(d.push_constants.data(), &push, sizeof(Push));
        return d;
    }
};

/// The result of a run on the GPU. The image itself is updated in place.
struct GpuRun {
    RunStatus status{}; ///< what the kernels left in the status buffer (kernels/pxvm_layout.h)
    StageTimings timings;
    std::vector<PipelineInfo> pipelines; ///< one per distinct kernel, in order of first dispatch
};

class Runtime;
namespace detail {
struct RuntimeState;
struct DeviceState;
} // namespace detail

/// A logical device with its queue, buffers, pipeline registry and pipeline cache.
/// A Device must be destroyed before the Runtime that opened it.
class Device {
public:
    ~Device();
    Device(Device&&) noexcept;
    Device& operator=(Device&&) noexcept;
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    const DeviceInfo& info() const;

    /// Runs the GPU interpreter (kernel "interpreter", one workgroup, push constants
    /// {width, height}) on `image` and replaces the image with the GPU's result. On any error the
    /// image is left unchanged.
    Result<GpuRun> run_interpreter(Image& image);

    /// Uploads `image`, runs the dispatches in order in one command buffer (a full compute
    /// barrier between consecutive dispatches), reads the image back into `image`. The status
    /// buffer is zeroed first. On any error the image is left unchanged; a kernel reporting
    /// STATUS_INCOMPLETE (kernels/pxvm_layout.h) is such an error.
    Result<GpuRun> run(std::span<const Dispatch> dispatches, Image& image);

    /// Registers SPIR-V under `name` (tests, experiments). Embedded kernels (px::find_kernel)
    /// need no registration: they are loaded on first use.
    Result<void> add_kernel(std::string name, std::vector<std::uint32_t> spirv);

    /// Creates the pipeline of a kernel now (it is otherwise created on first dispatch).
    Result<PipelineInfo> prepare_kernel(std::string_view name);

    /// Whether an image of `bytes` fits one storage buffer, one allocation and the device-local
    /// heap; the error names both sizes. `what` names the image ("image 8192x4097").
    Result<void> check_image_fits(std::uint64_t bytes, std::string_view what = "image") const;

    const PipelineCacheStatus& pipeline_cache() const;

    /// "direct: memory type 0 (device-local host-visible ...)" and the readback type.
    std::string memory_strategy() const;

    /// Frees the image, staging and readback buffers kept between runs.
    void release_buffers();

    /// True after a timeout or device loss: every later run fails at once.
    bool failed() const;

private:
    friend class Runtime;
    explicit Device(std::unique_ptr<detail::DeviceState> state);
    std::unique_ptr<detail::DeviceState> state_;
};

/// The Vulkan instance (with the validation layer when asked) and the devices it sees.
class Runtime {
public:
    /// Creates the instance and reads every device. Fails with a clear message when there is no
    /// Vulkan driver, no device, or validation was asked for and the layer is not installed.
    static Result<Runtime> create(const RuntimeOptions& options = {});

    ~Runtime();
    Runtime(Runtime&&) noexcept;
    Runtime& operator=(Runtime&&) noexcept;
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    /// Every device, in the stable order (DeviceInfo::index is the position).
    const std::vector<DeviceInfo>& devices() const;
    /// The index `selector` picks, or an error listing the devices.
    Result<std::uint32_t> select(const DeviceSelector& selector) const;
    /// Opens the device `selector` picks.
    Result<Device> open(const DeviceSelector& selector = DeviceSelector::preferred());

    /// The options in effect (environment overrides applied).
    const RuntimeOptions& options() const;
    bool validation_enabled() const;
    /// Validation messages received so far.
    ValidationMessages validation_messages() const;
    /// The instance API version pxVM asked for ("1.3.0").
    std::uint32_t instance_api_version() const;

private:
    explicit Runtime(std::unique_ptr<detail::RuntimeState> state);
    std::unique_ptr<detail::RuntimeState> state_;
};

} // namespace px::vk
