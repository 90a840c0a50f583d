// Recordings: dispatch lists recorded once over a resident image, with their input and output
// regions, resubmitted per run and timed per labelled dispatch.
#include "device_state.hpp"
#include <algorithm>
#include <cstring>

namespace px::vk {

using namespace detail;

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

} // namespace px::vk
