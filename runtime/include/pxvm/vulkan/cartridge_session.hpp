// A cartridge resident on a Vulkan device: uploaded once, its program recorded once, and each step
// one submit with only the input slot written and only the output regions read back. Every step is
// checked against the reference interpreter by default: the whole image on the first step, the
// output regions (logits and next token, value for value) on every step.
#pragma once

#include "pxvm/cartridge.hpp"
#include "pxvm/vulkan/runtime.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace px::vk {

struct CartridgeSessionOptions {
    std::string device = "auto"; ///< as pxrun --device
    bool validate = false;
    bool verify = true;
    /// Read the logits back after each step (sampling needs them, and so does verification);
    /// without, only the next tokens come back.
    bool read_logits = true;
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<KernelVariant> variant;
    std::string cache_dir; ///< the pipeline cache's directory (empty: RuntimeOptions' default)
};

/// Totals over the steps run so far.
struct CartridgeSessionStats {
    std::uint64_t steps = 0;
    double gpu_execute_ms = 0; ///< timestamps around the dispatches
    double host_step_ms = 0;   ///< write input, submit, wait, read outputs
    double host_write_ms = 0;  ///< of which: the windows into the input buffer
    double host_run_ms = 0;    ///< of which: submit, wait, status and timestamps
    double host_read_ms = 0;   ///< of which: the outputs into the image
    double verify_ms = 0;      ///< the reference runs and comparisons
};

class CartridgeSession {
public:
    /// Opens the device, uploads the cartridge's image and records its program.
    static Result<CartridgeSession> open(const Cartridge& cartridge,
                                         const CartridgeSessionOptions& options);
    ~CartridgeSession();
    CartridgeSession(CartridgeSession&&) noexcept;
    CartridgeSession& operator=(CartridgeSession&&) noexcept;

    /// One step: `image` holds the windows in its input slot; afterwards its output regions hold
    /// the device's answer. A mismatch with the reference is an error naming the first differing
    /// pixel and the count of the others.
    Result<void> step(Image& image);
    /// step() as a px::CartridgeStep for px::generate.
    CartridgeStep as_step();
    /// px::generate without the host image: each step writes the windows straight into the
    /// recording's input buffer and reads the next tokens (and the logits when sampling) straight
    /// from its output buffer. The same tokens as px::generate; for a session opened without
    /// verification (with it, this is px::generate over step()).
    Result<std::vector<std::vector<std::uint32_t>>>
    generate(const std::vector<std::vector<std::uint32_t>>& prompts,
             const GenerateOptions& options);

    std::string device_name() const; ///< "[0] NVIDIA H200 (scheduled kernels, int-dot variant)"
    const DeviceInfo& device_info() const;
    const CartridgeSessionStats& stats() const;
    /// Validation-layer messages so far (validation on only).
    ValidationMessages validation_messages() const;

private:
    struct State;
    explicit CartridgeSession(std::unique_ptr<State> state);
    /// One timed submit: `write` fills the inputs, the recording runs (a fault is an error),
    /// `read` takes the answers; the stats count it.
    Result<void> submit(const std::function<Result<void>()>& write,
                        const std::function<Result<void>()>& read);
    std::unique_ptr<State> state_;
};

} // namespace px::vk
