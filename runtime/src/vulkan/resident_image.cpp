// Resident images: an image kept on a device in its image and status buffers, uploaded, written
// and read back by region through staging and readback buffers.
#include "device_state.hpp"
#include <cstring>

namespace px::vk {

using namespace detail;

namespace {

std::string image_name(const Image& image) {
    return "image " + std::to_string(image.width()) + "x" + std::to_string(image.height());
}

/// Byte ranges of a region's rows, at the same offsets in both buffers.
std::vector<VkBufferCopy> region_copies(const ResidentState& r, const Region& region) {
    std::vector<VkBufferCopy> copies;
    for (std::uint32_t y = region.y; y < region.y + region.height; ++y) {
        const VkDeviceSize offset = (VkDeviceSize(y) * r.width + region.x) * 4;
        copies.push_back({offset, offset, VkDeviceSize(region.width) * 4});
    }
    // Whole rows side by side are one range.
    if (region.x == 0 && region.width == r.width && !copies.empty())
        copies = {{copies.front().srcOffset, copies.front().srcOffset,
                   VkDeviceSize(region.height) * r.width * 4}};
    return copies;
}

// check_region_inside, and `image` has the resident image's size.
Result<void> check_region(const ResidentState& r, const Image& image, const Region& region,
                          std::string_view what) {
    if (image.width() != r.width || image.height() != r.height)
        return Error{ErrorCode::invalid_input,
                     std::string(what) + ": the image is " + std::to_string(image.width()) + "x" +
                         std::to_string(image.height()) + ", the resident image " +
                         std::to_string(r.width) + "x" + std::to_string(r.height)};
    return check_region_inside(r, region, what);
}

/// Records a one-off transfer (copies between buffers, timed) on the device's transfer command
/// buffer, submits it and waits. Returns the GPU milliseconds, if timed.
Result<std::optional<double>> run_copy(DeviceState& s, VkBuffer from, VkBuffer to,
                                       std::span<const VkBufferCopy> copies,
                                       VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
    DeviceObjects& o = *s.objects;
    VkCommandBuffer cmd = o.transfer_commands;
    if (VkResult r = vkResetCommandBuffer(cmd, 0); r != VK_SUCCESS)
        return vulkan_error("cannot reset a command buffer on " + s.info.name, r);
    auto begin = make_struct<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    if (VkResult r = vkBeginCommandBuffer(cmd, &begin); r != VK_SUCCESS)
        return vulkan_error("cannot record a command buffer on " + s.info.name, r);
    const bool timed = bool(o.transfer_queries);
    if (timed) {
        vkCmdResetQueryPool(cmd, o.transfer_queries.get(), 0, 2);
        vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, o.transfer_queries.get(), 0);
    }
    // Earlier runs' shader writes and reads come before the copy.
    record_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                   VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
    vkCmdCopyBuffer(cmd, from, to, std::uint32_t(copies.size()), copies.data());
    record_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, dst_stage,
                   dst_access);
    if (timed)
        vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, o.transfer_queries.get(), 1);
    if (VkResult r = vkEndCommandBuffer(cmd); r != VK_SUCCESS)
        return vulkan_error("cannot record a command buffer on " + s.info.name, r);
    if (auto waited = submit_and_wait(s, cmd); !waited) return waited.error();
    std::optional<double> gpu_ms;
    if (timed) {
        auto ms = read_timestamps(s, o.transfer_queries.get(), 2);
        if (!ms) return ms.error();
        if (!ms->empty()) gpu_ms = ms->front();
    }
    return gpu_ms;
}

} // namespace

namespace detail {

// The bytes of an image's buffer: whole 16-byte vectors, so that the kernels' 128-bit views of
// the image end inside it.
VkDeviceSize image_buffer_bytes(const DeviceState& s, VkDeviceSize bytes) {
    return std::min<VkDeviceSize>((bytes + 15) / 16 * 16, s.info.limits.max_storage_buffer_range);
}

// A region that is empty or not inside the resident image is an error naming `what`.
Result<void> check_region_inside(const ResidentState& r, const Region& region,
                                 std::string_view what) {
    if (region.width == 0 || region.height == 0 || region.x >= r.width ||
        region.width > r.width - region.x || region.y >= r.height ||
        region.height > r.height - region.y)
        return Error{ErrorCode::invalid_input,
                     std::string(what) + ": region " + std::to_string(region.width) + "x" +
                         std::to_string(region.height) + " at (" + std::to_string(region.x) + ", " +
                         std::to_string(region.y) + ") is empty or outside the " +
                         std::to_string(r.width) + "x" + std::to_string(r.height) + " image"};
    return {};
}

Result<void> make_descriptor_set(DeviceState& s, std::span<const BufferBinding> bindings,
                                 DescriptorPool& pool_out, VkDescriptorSet& set) {
    const VkDevice device = s.device.get();
    const VkDescriptorPoolSize pool_size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                         std::uint32_t(bindings.size())};
    auto pool_info =
        make_struct<VkDescriptorPoolCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO);
    pool_info.maxSets = 1;
    pool_info.poolSizeCount = 1;
    pool_info.pPoolSizes = &pool_size;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    if (VkResult res = vkCreateDescriptorPool(device, &pool_info, nullptr, &pool);
        res != VK_SUCCESS)
        return vulkan_error("cannot create a descriptor pool on " + s.info.name, res);
    pool_out = DescriptorPool(device, pool);
    VkDescriptorSetLayout set_layout = s.objects->set_layout.get();
    auto set_info =
        make_struct<VkDescriptorSetAllocateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO);
    set_info.descriptorPool = pool;
    set_info.descriptorSetCount = 1;
    set_info.pSetLayouts = &set_layout;
    if (VkResult res = vkAllocateDescriptorSets(device, &set_info, &set); res != VK_SUCCESS)
        return vulkan_error("cannot allocate a descriptor set on " + s.info.name, res);
    std::vector<VkDescriptorBufferInfo> infos;
    for (const BufferBinding& b : bindings)
        infos.push_back({b.buffer, 0, b.range});
    std::vector<VkWriteDescriptorSet> writes(bindings.size());
    for (std::size_t i = 0; i < bindings.size(); ++i) {
        writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        writes[i].dstSet = set;
        writes[i].dstBinding = bindings[i].binding;
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
    }
    vkUpdateDescriptorSets(device, std::uint32_t(writes.size()), writes.data(), 0, nullptr);
    return {};
}

} // namespace detail

// ---- ResidentImage ---------------------------------------------------------------------------

ResidentImage::ResidentImage(std::unique_ptr<detail::ResidentState> state)
    : state_(std::move(state)) {}
ResidentImage::~ResidentImage() = default;
ResidentImage::ResidentImage(ResidentImage&&) noexcept = default;
ResidentImage& ResidentImage::operator=(ResidentImage&&) noexcept = default;

std::uint32_t ResidentImage::width() const {
    return state_->width;
}
std::uint32_t ResidentImage::height() const {
    return state_->height;
}
std::uint64_t ResidentImage::size_bytes() const {
    return state_->bytes;
}
bool ResidentImage::direct_upload() const {
    return state_->direct;
}
const StageTimings& ResidentImage::transfer_timings() const {
    return state_->transfers;
}

Result<void> ResidentImage::write(const Image& source) {
    return write(source, Region{0, 0, source.width(), source.height()});
}

Result<void> ResidentImage::write(const Image& source, const Region& region) {
    ResidentState& r = *state_;
    DeviceState& s = *r.device;
    if (!s.failure.empty()) return failed_device_error(s);
    if (auto ok = check_region(r, source, region, "writing a resident image"); !ok)
        return ok.error();
    const auto start = Clock::now();
    const std::vector<VkBufferCopy> copies = region_copies(r, region);
    if (!r.direct && !r.staging.buffer) {
        auto staging = create_buffer(s, r.bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, upload_staging(),
                                     "upload staging buffer");
        if (!staging) return staging.error();
        r.staging = std::move(staging.value());
    }
    Buffer& target = r.direct ? r.image : r.staging;
    for (const VkBufferCopy& c : copies)
        std::memcpy(static_cast<std::uint8_t*>(target.mapped) + c.srcOffset,
                    source.data() + c.srcOffset, c.size);
    if (auto flushed = flush(s, target); !flushed) return flushed.error();
    r.transfers.host_upload_ms = ms_since(start);
    r.transfers.direct_upload = r.direct;
    r.transfers.gpu_upload_ms.reset();
    if (r.direct) return {};
    auto copied = run_copy(s, r.staging.buffer.get(), r.image.buffer.get(), copies,
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                           VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    if (!copied) return copied.error();
    r.transfers.gpu_upload_ms = *copied;
    r.transfers.host_upload_ms = ms_since(start);
    return {};
}

Result<void> ResidentImage::read(Image& target) {
    return read(target, Region{0, 0, target.width(), target.height()});
}

Result<void> ResidentImage::read(Image& target, const Region& region) {
    ResidentState& r = *state_;
    DeviceState& s = *r.device;
    if (!s.failure.empty()) return failed_device_error(s);
    if (auto ok = check_region(r, target, region, "reading a resident image"); !ok)
        return ok.error();
    const auto start = Clock::now();
    if (!r.readback.buffer) {
        auto readback = create_buffer(s, r.bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                      readback_memory(), "readback buffer");
        if (!readback) return readback.error();
        r.readback = std::move(readback.value());
    }
    const std::vector<VkBufferCopy> copies = region_copies(r, region);
    auto copied = run_copy(s, r.image.buffer.get(), r.readback.buffer.get(), copies,
                           VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    if (!copied) return copied.error();
    r.transfers.gpu_readback_ms = *copied;
    if (auto seen = invalidate(s, r.readback); !seen) return seen.error();
    for (const VkBufferCopy& c : copies)
        std::memcpy(target.data() + c.dstOffset,
                    static_cast<const std::uint8_t*>(r.readback.mapped) + c.dstOffset, c.size);
    r.transfers.host_readback_ms = ms_since(start);
    return {};
}

Result<ResidentImage> Device::upload(const Image& image) {
    DeviceState& s = *state_;
    if (failed()) return failed_device_error(s);
    const VkDeviceSize bytes = image.size_bytes();
    if (bytes == 0) return Error{ErrorCode::invalid_input, "the image is empty"};
    if (auto fits = check_image_fits(bytes, image_name(image)); !fits) return fits.error();

    auto r = std::make_unique<ResidentState>();
    r->attach(&s);
    r->width = image.width();
    r->height = image.height();
    r->bytes = bytes;
    const VkBufferUsageFlags usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    const UploadMode mode = s.runtime->options.upload;
    const VkDeviceSize allocated = image_buffer_bytes(s, bytes);
    if (mode != UploadMode::staging) {
        auto direct =
            create_buffer(s, allocated, usage, device_local_host_visible(), "image buffer");
        if (direct) {
            r->image = std::move(direct.value());
            r->direct = true;
        } else if (mode == UploadMode::direct) {
            return Error{direct.error().code,
                         "direct upload needs a DEVICE_LOCAL|HOST_VISIBLE memory type that "
                         "holds the image: " +
                             direct.error().message,
                         direct.error().vk_result};
        }
    }
    if (!r->direct) {
        auto buffer = create_buffer(s, allocated, usage, device_local(), "image buffer");
        if (!buffer) return buffer.error();
        r->image = std::move(buffer.value());
    }
    auto status =
        create_buffer(s, STATUS_BYTES,
                      VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                          VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                      device_local(), "status buffer");
    if (!status) return status.error();
    r->status = std::move(status.value());

    const BufferBinding bindings[] = {{BINDING_IMAGE, r->image.buffer.get(), allocated},
                                      {BINDING_STATUS, r->status.buffer.get(), STATUS_BYTES},
                                      {BINDING_IMAGE_IN, r->image.buffer.get(), allocated}};
    if (auto made = make_descriptor_set(s, bindings, r->pool, r->set); !made) return made.error();

    ResidentImage resident(std::move(r));
    if (auto written = resident.write(image); !written) return written.error();
    const ResidentState& state = *resident.state_;
    s.memory_strategy =
        state.direct
            ? "upload: host writes the image buffer directly, " + memory_type_text(state.image)
            : "upload: host writes a staging buffer in " + memory_type_text(state.staging) +
                  ", the GPU copies it into the image buffer in " + memory_type_text(state.image);
    s.memory_strategy +=
        "; readback: the GPU copies into " +
        memory_property_names(
            s.info.memory_types[*choose_memory_type(s.info, ~0u, readback_memory(), 0)].flags) +
        " memory, the host reads that";
    return resident;
}

} // namespace px::vk
