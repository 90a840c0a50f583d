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

/// The longest run timeout (RuntimeOptions::timeout, PXVM_TIMEOUT_MS, --timeout-ms): 24 hours.
inline constexpr std::chrono::milliseconds MAX_TIMEOUT{86'400'000};
/// The timeout when neither the caller nor the environment gives one.
inline constexpr std::chrono::milliseconds DEFAULT_TIMEOUT{10'000};

/// How the image reaches the device-local image buffer.
enum class UploadMode {
    automatic, ///< direct when a DEVICE_LOCAL|HOST_VISIBLE memory type exists, else staging
    staging,   ///< host writes a host-visible staging buffer; the GPU copies it (timed)
    direct,    ///< host writes the device-local buffer through a mapping (error if impossible)
};
std::string_view to_string(UploadMode mode);

/// A failure the runtime makes happen on purpose, to test that every caller handles it: the
/// error, no output, no leaked Vulkan object (docs/SECURITY.md). PXVM_INJECT_FAULT in the
/// environment sets it: "allocation", "timeout" or "device-lost", optionally ":N".
struct FaultInjection {
    enum class Kind {
        none,
        allocation,  ///< the Nth vkAllocateMemory of a device returns VK_ERROR_OUT_OF_DEVICE_MEMORY
        timeout,     ///< the Nth submit of a device is reported as outlasting the timeout
        device_lost, ///< the Nth submit of a device ends in VK_ERROR_DEVICE_LOST
    };
    Kind kind = Kind::none;
    std::uint32_t nth = 1; ///< counted from 1, per device, from when it was opened
};

struct RuntimeOptions {
    /// Enable VK_LAYER_KHRONOS_validation (with synchronization validation where the layer has
    /// it) and count its warnings and errors. PXVM_VALIDATE=1 in the environment enables it too.
    bool validate = false;
    /// With validation: GPU-assisted validation instead of synchronization validation, which
    /// instruments every shader so that an access outside a buffer is reported (slow: for
    /// tests). PXVM_VALIDATE=gpu enables both.
    bool gpu_assisted_validation = false;
    /// Print each validation message to stderr as it arrives (they are counted either way).
    bool print_validation_messages = true;
    /// How long one submit may run before the run fails with a timeout, 1 ms to 24 h. Left
    /// empty, PXVM_TIMEOUT_MS in the environment sets it, else 10 s; a value given here (a
    /// command-line flag) beats the environment. Runtime::options() always has it set.
    std::optional<std::chrono::milliseconds> timeout;
    /// Load and save pipeline caches on disk.
    bool pipeline_cache = true;
    /// Where pipeline caches live; empty: $PXVM_CACHE_DIR, else $XDG_CACHE_HOME/pxvm, else
    /// ~/.cache/pxvm.
    std::string cache_dir;
    UploadMode upload = UploadMode::automatic;
    /// A test hook; left at none, PXVM_INJECT_FAULT sets it.
    FaultInjection inject;
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

/// Which GPU timestamps a recording writes (Device::record).
enum class Timestamps {
    per_dispatch, ///< after every dispatch: each label's GPU time
    program,      ///< only around the program: its GPU time, one timestamp write in all
};

/// The GPU time of one labelled dispatch (its barrier before it included).
struct LabelledTime {
    std::string label; ///< Dispatch::label, or the kernel name when it has none
    double ms = 0;
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
    std::optional<double> gpu_upload_ms;    ///< the staging copy; none with a direct upload
    std::optional<double> gpu_execute_ms;   ///< every dispatch (after the status is zeroed)
    std::optional<double> gpu_readback_ms;  ///< copy into the readback buffer
    std::vector<LabelledTime> gpu_dispatch; ///< each dispatch, in order

    bool direct_upload = false; ///< the image was written straight into device-local memory
};

/// How a kernel's pipeline was obtained.
struct PipelineInfo {
    std::string kernel;
    std::string key;                   ///< kernel, specialisation values, subgroup size
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

/// One dispatch of a kernel over the image (bindings 0 and 2) and status (binding 1) buffers.
/// Its pipeline is keyed by kernel, specialisation values and required subgroup size.
struct Dispatch {
    std::string kernel;
    std::array<std::uint32_t, 3> groups{1, 1, 1};
    std::vector<std::uint8_t> push_constants; ///< at most 128 bytes, a multiple of 4
    /// Values of the kernel's specialisation constants constant_id 0, 1, 2, ... (32-bit each).
    std::vector<std::uint32_t> specialization;
    /// A subgroup size the pipeline must use (VK_EXT_subgroup_size_control); 0: the driver's.
    std::uint32_t required_subgroup_size = 0;
    /// Names the dispatch in StageTimings::gpu_dispatch, e.g. "pc 12 matmul portable 64x64".
    std::string label;

    template <class Push>
    static Dispatch with_push(std::string kernel, const Push& push,
                              std::array<std::uint32_t, 3> groups = {1, 1, 1}) {
        static_assert(std::is_trivially_copyable_v<Push>);
        Dispatch d;
        d.kernel = std::move(kernel);
        d.groups = groups;
        d.push_constants.resize(sizeof(Push));
        std::memcpy(d.push_constants.data(), &push, sizeof(Push));
        return d;
    }
};

/// The result of a run on the GPU.
struct GpuRun {
    RunStatus status{}; ///< what the kernels left in the status buffer (kernels/pxvm_layout.h)
    StageTimings timings;
    std::vector<PipelineInfo> pipelines; ///< one per distinct pipeline, in order of first dispatch
};

/// A pixel rectangle: columns x .. x + width - 1 of rows y .. y + height - 1.
struct Region {
    std::uint32_t x = 0, y = 0, width = 0, height = 0;
};

class Runtime;
class Device;
namespace detail {
struct RuntimeState;
struct DeviceState;
struct ResidentState;
struct RecordingState;
} // namespace detail

/// An image kept in device memory between runs: upload once, run many recorded programs on it,
/// write and read back only the regions that change (a cartridge's input and output tensors).
/// It must be destroyed before the Device that made it, and after every Recording on it.
class ResidentImage {
public:
    ~ResidentImage();
    ResidentImage(ResidentImage&&) noexcept;
    ResidentImage& operator=(ResidentImage&&) noexcept;
    ResidentImage(const ResidentImage&) = delete;
    ResidentImage& operator=(const ResidentImage&) = delete;

    std::uint32_t width() const;
    std::uint32_t height() const;
    std::uint64_t size_bytes() const;
    /// The image was written straight into device-local host-visible memory (else by staging).
    bool direct_upload() const;

    /// Copies `region` of `source` (an image of the same size) into the device's copy.
    Result<void> write(const Image& source, const Region& region);
    /// Copies the whole of `source` (an image of the same size).
    Result<void> write(const Image& source);
    /// Copies `region` of the device's copy into `target` (an image of the same size); on any
    /// error `target` is unchanged.
    Result<void> read(Image& target, const Region& region);
    Result<void> read(Image& target);

    /// Host and GPU time of the last write and read, in the StageTimings upload/readback fields.
    const StageTimings& transfer_timings() const;

private:
    friend class Device;
    explicit ResidentImage(std::unique_ptr<detail::ResidentState> state);
    std::unique_ptr<detail::ResidentState> state_;
};

/// Dispatches recorded once into a command buffer over one ResidentImage, with a barrier between
/// consecutive dispatches and a timestamp after each. run() resubmits it: one submit per run.
/// It must be destroyed before its ResidentImage.
class Recording {
public:
    ~Recording();
    Recording(Recording&&) noexcept;
    Recording& operator=(Recording&&) noexcept;
    Recording(const Recording&) = delete;
    Recording& operator=(const Recording&) = delete;

    /// Zeroes the status buffer, runs every dispatch, waits (spinning briefly, then blocking) and
    /// reads the status and the timestamps. A kernel reporting STATUS_INCOMPLETE is an error
    /// (code incomplete): the image is unreliable.
    Result<GpuRun> run();
    /// Copies the output regions given to Device::record from the last run() into `target` (an
    /// image of the resident image's size); the GPU packed them into host memory at the end of
    /// the run, so this is a host copy only.
    Result<void> read_outputs(Image& target) const;
    /// Copies the input regions given to Device::record from `source` into the recording's input
    /// buffer; the next run() copies them into the image first.
    Result<void> write_inputs(const Image& source);
    /// The input buffer itself (the input regions' pixels, each region's rows one after another,
    /// regions in order), to fill without a host image; make it visible with flush_inputs().
    std::span<std::uint8_t> input_buffer();
    Result<void> flush_inputs();
    /// The output buffer of the last run (the output regions' pixels, packed the same way).
    Result<std::span<const std::uint8_t>> output_buffer() const;
    /// The labels of the dispatches, in order.
    const std::vector<std::string>& labels() const;
    /// The pipelines the dispatches use, in order of first use.
    const std::vector<PipelineInfo>& pipelines() const;

private:
    friend class Device;
    explicit Recording(std::unique_ptr<detail::RecordingState> state);
    std::unique_ptr<detail::RecordingState> state_;
};

/// A logical device with its queue, pipeline registry and pipeline cache.
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

    /// Uploads `image`, records the dispatches, runs them once and reads the image back into
    /// `image`: upload(), record() and Recording::run() in one call. On any error the image is
    /// left unchanged; a kernel reporting STATUS_INCOMPLETE (kernels/pxvm_layout.h) is such an
    /// error.
    Result<GpuRun> run(std::span<const Dispatch> dispatches, Image& image);

    /// Copies `image` into device memory that stays there until the ResidentImage is destroyed.
    Result<ResidentImage> upload(const Image& image);

    /// Records `dispatches` over `image` once (pipelines created or looked up now), for any
    /// number of runs.
    /// With `outputs`, the recording ends by packing those regions into host-visible memory
    /// (one dispatch each) for Recording::read_outputs; with `inputs`, it starts by copying
    /// Recording::write_inputs' host-visible buffer into them: a step's input, run and results in
    /// one submit, with no per-row copies on the GPU's queue.
    /// `timestamps`: a GPU timestamp after every dispatch (StageTimings::gpu_dispatch, one per
    /// label), or only around the whole program (gpu_execute_ms alone), which saves a
    /// timestamp write per dispatch.
    Result<Recording> record(ResidentImage& image, std::span<const Dispatch> dispatches,
                             std::span<const Region> outputs = {},
                             std::span<const Region> inputs = {},
                             Timestamps timestamps = Timestamps::per_dispatch);

    /// Registers SPIR-V under `name` (tests, experiments). Embedded kernels (px::find_kernel)
    /// need no registration: they are loaded on first use.
    Result<void> add_kernel(std::string name, std::vector<std::uint32_t> spirv);

    /// Creates the pipeline of a kernel now (it is otherwise created on first dispatch).
    Result<PipelineInfo> prepare_kernel(std::string_view name);
    /// Creates the pipeline a dispatch needs now (kernel, specialisation, subgroup size).
    Result<PipelineInfo> prepare(const Dispatch& dispatch);

    /// Whether an image of `bytes` fits one storage buffer, one allocation and the device-local
    /// heap; the error names both sizes. `what` names the image ("image 8192x4097").
    Result<void> check_image_fits(std::uint64_t bytes, std::string_view what = "image") const;

    const PipelineCacheStatus& pipeline_cache() const;

    /// "direct: memory type 0 (device-local host-visible ...)" and the readback type.
    std::string memory_strategy() const;

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
