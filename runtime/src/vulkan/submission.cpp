// Submission: submitting work and waiting for its fence within the timeout, failing the device
// after a timeout or a loss, fault injection, barriers and timestamp queries.
#include "device_state.hpp"

namespace px::vk {

using namespace detail;

namespace {

// How long a fence wait spins on vkGetFenceStatus before blocking: a spin answers a short run
// about 20 us sooner than a blocking wait (docs/RUNTIME.md).
constexpr auto FENCE_SPIN = std::chrono::microseconds(200);

} // namespace

namespace detail {

/// Whether this allocation or submit (counted here) is the one RuntimeOptions::inject fails.
bool inject_now(DeviceState& s, bool allocation) {
    using Kind = FaultInjection::Kind;
    const FaultInjection& inject = s.runtime->options.inject;
    const std::uint32_t count = allocation ? ++s.allocations : ++s.submits;
    const bool kind_matches =
        allocation ? inject.kind == Kind::allocation
                   : inject.kind == Kind::timeout || inject.kind == Kind::device_lost;
    return kind_matches && count == inject.nth;
}

Result<QueryPool> create_query_pool(DeviceState& s, std::uint32_t count) {
    auto info = make_struct<VkQueryPoolCreateInfo>(VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO);
    info.queryType = VK_QUERY_TYPE_TIMESTAMP;
    info.queryCount = count;
    VkQueryPool pool = VK_NULL_HANDLE;
    if (VkResult r = vkCreateQueryPool(s.device.get(), &info, nullptr, &pool); r != VK_SUCCESS)
        return vulkan_error("cannot create a timestamp query pool on " + s.info.name, r);
    return QueryPool(s.device.get(), pool);
}

/// Marks the device failed by `e` (a timeout or a lost device: it runs nothing again) and
/// returns `e`.
Error fail_device(DeviceState& s, Error e) {
    s.failure = e.message;
    s.failure_code = e.code;
    return e;
}

/// Milliseconds between timestamps a and b of the first `count` queries of `pool`, or nothing
/// when the queue has no timestamps. A lost device marks the device failed.
Result<std::vector<double>> read_timestamps(DeviceState& s, VkQueryPool pool, std::uint32_t count) {
    std::vector<double> ms;
    if (s.timestamp_bits == 0 || count == 0) return ms;
    std::vector<std::uint64_t> ticks(count);
    const VkResult r = vkGetQueryPoolResults(
        s.device.get(), pool, 0, count, ticks.size() * sizeof(std::uint64_t), ticks.data(),
        sizeof(std::uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r == VK_ERROR_DEVICE_LOST)
        return fail_device(s, vulkan_error(s.info.name + ": reading timestamps", r));
    if (r != VK_SUCCESS) return ms;
    const std::uint64_t mask =
        s.timestamp_bits >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << s.timestamp_bits) - 1;
    for (std::uint32_t i = 0; i + 1 < count; ++i)
        ms.push_back(double((ticks[i + 1] - ticks[i]) & mask) * s.info.limits.timestamp_period_ns /
                     1e6);
    return ms;
}

/// The error of a device that failed earlier (timeout, device lost).
Error failed_device_error(const DeviceState& s) {
    return Error{s.failure_code, s.failure};
}

/// Submits `cmd` and waits for it: spins on the fence briefly, then blocks until the timeout.
/// A timeout or a lost device marks the device failed. Returns the host milliseconds.
Result<double> submit_and_wait(DeviceState& s, VkCommandBuffer cmd) {
    const auto start = Clock::now();
    VkFence fence = s.objects->fence.get();
    if (VkResult r = vkResetFences(s.device.get(), 1, &fence); r != VK_SUCCESS)
        return vulkan_error("cannot reset a fence on " + s.info.name, r);
    auto submit = make_struct<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &cmd;
    if (VkResult r = vkQueueSubmit(s.queue, 1, &submit, fence); r != VK_SUCCESS) {
        Error e = vulkan_error("cannot submit work to " + s.info.name, r);
        return r == VK_ERROR_DEVICE_LOST ? fail_device(s, std::move(e)) : e;
    }
    const auto timeout = *s.runtime->options.timeout;
    const std::string timed_out = s.info.name + " did not finish a run within " +
                                  std::to_string(timeout.count()) +
                                  " ms; the run was abandoned and this device cannot run again "
                                  "(raise the limit with --timeout-ms, PXVM_TIMEOUT_MS or "
                                  "RuntimeOptions::timeout)";
    VkResult waited = VK_NOT_READY;
    const bool injected = inject_now(s, false);
    if (injected) {
        // The work really ends first, so that nothing is destroyed under the GPU; then it is
        // reported as the injection says, and the device is failed as after the real thing.
        vkWaitForFences(s.device.get(), 1, &fence, VK_TRUE, UINT64_MAX);
        if (s.runtime->options.inject.kind == FaultInjection::Kind::timeout)
            return fail_device(s, Error{ErrorCode::timeout, timed_out + INJECTED});
        waited = VK_ERROR_DEVICE_LOST;
    }
    while (!injected && Clock::now() - start < FENCE_SPIN &&
           (waited = vkGetFenceStatus(s.device.get(), fence)) == VK_NOT_READY) {
    }
    if (waited == VK_NOT_READY) {
        waited = vkWaitForFences(s.device.get(), 1, &fence, VK_TRUE,
                                 std::uint64_t(std::chrono::nanoseconds(timeout).count()));
        if (waited == VK_TIMEOUT) {
            s.pending = true;
            return fail_device(s, Error{ErrorCode::timeout, timed_out});
        }
    }
    if (waited != VK_SUCCESS) {
        Error e =
            vulkan_error("the run on " + s.info.name + " failed while waiting for it", waited);
        if (injected) e.message += INJECTED;
        return fail_device(s, std::move(e));
    }
    return ms_since(start);
}

void record_barrier(VkCommandBuffer cmd, VkPipelineStageFlags src_stage, VkAccessFlags src_access,
                    VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
    auto barrier = make_struct<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
    barrier.srcAccessMask = src_access;
    barrier.dstAccessMask = dst_access;
    vkCmdPipelineBarrier(cmd, src_stage, dst_stage, 0, 1, &barrier, 0, nullptr, 0, nullptr);
}

} // namespace detail

} // namespace px::vk
