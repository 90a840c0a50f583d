// The one error model of pxVM: functions that can fail on user input return Result<T>, which holds
// either a value or an Error whose message a user can act on ("prog.pxi: PNG is 16-bit ...").
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace px {

/// What kind of failure an Error is, so callers (test runners, pxconform) can tell a skip
/// from a failure without parsing messages.
enum class ErrorCode {
    invalid_input, ///< a malformed file, a bad argument, a program or image a device cannot take
    unsupported,   ///< the device or this build lacks a feature or kernel variant
    incomplete,    ///< the device stopped a shader before it finished (lavapipe's loop budget)
    timeout,       ///< a submit outlasted the timeout; the device is unusable afterwards
    device_lost,   ///< VK_ERROR_DEVICE_LOST; the device is unusable afterwards
    out_of_memory, ///< host or device memory ran out
    device_error,  ///< any other failed Vulkan call, or no Vulkan at all
    mismatch,      ///< a device's result differs from the reference interpreter's
};

/// "invalid input", "unsupported", ...
constexpr const char* error_code_name(ErrorCode code) {
    switch (code) {
    case ErrorCode::invalid_input:
        return "invalid input";
    case ErrorCode::unsupported:
        return "unsupported";
    case ErrorCode::incomplete:
        return "incomplete";
    case ErrorCode::timeout:
        return "timeout";
    case ErrorCode::device_lost:
        return "device lost";
    case ErrorCode::out_of_memory:
        return "out of memory";
    case ErrorCode::device_error:
        return "device error";
    case ErrorCode::mismatch:
        return "mismatch";
    }
    return "unknown";
}

/// A failure a user can act on: what kind it is (always given: Error{ErrorCode::unsupported,
/// "..."}), and a message that names the file or object and the problem.
struct Error {
    Error(ErrorCode code_, std::string message_, int vk_result_ = 0)
        : message(std::move(message_)), code(code_), vk_result(vk_result_) {}

    std::string message;
    ErrorCode code;
    int vk_result = 0; ///< the VkResult of a failed Vulkan call (VK_SUCCESS = 0 otherwise)
};

/// A value or an Error. Access the value only after checking ok().
template <class T> class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::move(value)) {}
    Result(Error error) : state_(std::move(error)) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(state_); }

private:
    std::variant<T, Error> state_;
};

/// Result of an operation that returns nothing on success.
template <> class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), failed_(true) {}

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return error_; }

private:
    Error error_{ErrorCode::invalid_input, {}}; // unused unless failed_
    bool failed_ = false;
};

} // namespace px
