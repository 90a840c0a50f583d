// Private to the core library: the time limit of a reference run, checked between steps and
// inside the long loops (matmul rows, gather_mean tokens) from any thread.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/result.hpp"

#include <atomic>
#include <chrono>
#include <optional>

namespace px {

class Deadline {
public:
    /// No timeout: never passes.
    Deadline() = default;
    explicit Deadline(std::optional<std::chrono::milliseconds> timeout)
        : set_(timeout.has_value()),
          at_(std::chrono::steady_clock::now() + timeout.value_or(std::chrono::milliseconds(0))) {}
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;

    /// Whether the time is up; once it is, stays so (the loops that saw it stopped early).
    bool passed() const {
        if (!set_) return false;
        if (passed_.load(std::memory_order_relaxed)) return true;
        if (std::chrono::steady_clock::now() < at_) return false;
        passed_.store(true, std::memory_order_relaxed);
        return true;
    }

private:
    bool set_ = false;
    std::chrono::steady_clock::time_point at_{};
    mutable std::atomic<bool> passed_{false};
};

/// The timeout error of a reference run stopped in `step` after `executed` instructions.
Error timeout_error(const ReferenceLimits& limits, const Step& step, std::uint32_t executed);

/// execute_step, stopping early (the image then partly written) once `deadline` passed: the
/// caller checks deadline.passed() after each step.
Fault execute_step(Image& image, const Step& step, const Deadline& deadline);

} // namespace px
