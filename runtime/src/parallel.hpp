// Private to the core library: the one way the reference interpreter and the verification split
// a loop across the CPU's cores.
#pragma once

#include <algorithm>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

namespace px {

/// Below this many operations starting threads costs more than it saves.
inline constexpr std::uint64_t PARALLEL_WORK = std::uint64_t(1) << 22;

/// Runs fn(begin, end) on contiguous parts of [0, count), one part per hardware thread when
/// `work` (operations in all) reaches PARALLEL_WORK, else fn(0, count) here. Parts no thread
/// could be started for run on the calling thread.
template <class Fn> void parallel_for(std::uint32_t count, std::uint64_t work, Fn&& fn) {
    if (count == 0) return;
    const std::uint32_t workers =
        work < PARALLEL_WORK ? 1u
                             : std::min(std::max(1u, std::thread::hardware_concurrency()), count);
    const auto bound = [&](std::uint32_t i) {
        return std::uint32_t(std::uint64_t(count) * i / workers);
    };
    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    std::uint32_t rest = count;
    for (std::uint32_t i = 1; i < workers; ++i) {
        try {
            threads.emplace_back([&fn, begin = bound(i), end = bound(i + 1)] { fn(begin, end); });
        } catch (const std::system_error&) {
            rest = bound(i);
            break;
        }
    }
    fn(0, bound(1));
    if (rest < count) fn(rest, count);
    for (std::thread& t : threads)
        t.join();
}

} // namespace px
