#include "pxvm/vulkan/cartridge_session.hpp"

#include "pxvm/reference_interpreter.hpp"

#include <chrono>
#include <cstring>

namespace px::vk {

struct CartridgeSession::State {
    // Destroyed in reverse order: the recording before its image, before the device, before the
    // runtime.
    Runtime runtime;
    Device device;
    std::optional<ResidentImage> resident;
    std::optional<Recording> recording;
    CartridgeManifest manifest;
    Image reference; ///< the reference's image, run in place each step
    bool verify = true;
    bool read_logits = true;
    CartridgeSessionStats stats;
    std::string name;
};

namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
}

Region region_of(const SlotRect& r) {
    return Region{r.x, r.y, r.width, r.height};
}

// First differing pixel of the output regions and how many others differ.
std::optional<std::string> compare_outputs(const Image& expected, const Image& actual,
                                           const CartridgeManifest& m) {
    std::uint64_t count = 0;
    std::string first;
    for (const SlotRect& r : output_rects(m))
        for (std::uint32_t y = r.y; y < r.y + r.height; ++y)
            for (std::uint32_t x = r.x; x < r.x + r.width; ++x)
                if (!(expected.pixel(x, y) == actual.pixel(x, y))) {
                    if (count++ == 0)
                        first = "(" + std::to_string(x) + ", " + std::to_string(y) +
                                "): expected " + to_string(expected.pixel(x, y)) + ", got " +
                                to_string(actual.pixel(x, y));
                }
    if (count == 0) return std::nullopt;
    return "first differing pixel " + first + "; " + std::to_string(count - 1) + " more";
}

} // namespace

Result<CartridgeSession> CartridgeSession::open(const Cartridge& cartridge,
                                                const CartridgeSessionOptions& options) {
    RuntimeOptions runtime_options;
    runtime_options.validate = options.validate;
    runtime_options.timeout = options.timeout;
    runtime_options.cache_dir = options.cache_dir;
    auto runtime = Runtime::create(runtime_options);
    if (!runtime)
        return Error{runtime.error().code,
                     runtime.error().message + "; or run the reference alone with --device cpu"};
    auto device = runtime->open(DeviceSelector::parse(options.device));
    if (!device) return device.error();
    const Image& image = cartridge.image;
    const Plan plan = plan_program(image);
    auto schedule =
        schedule_program(plan, image.width(), image.height(), device->info(), {options.variant});
    if (!schedule) return schedule.error();
    auto state = std::unique_ptr<State>(new State{std::move(*runtime),
                                                  std::move(*device),
                                                  std::nullopt,
                                                  std::nullopt,
                                                  cartridge.manifest,
                                                  image,
                                                  options.verify,
                                                  options.read_logits || options.verify,
                                                  {},
                                                  {}});
    const DeviceInfo& info = state->device.info();
    state->name = "[" + std::to_string(info.index) + "] " + info.name +
                  " (Vulkan, scheduled kernels, " + std::string(to_string(schedule->variant)) +
                  " variant)";
    auto resident = state->device.upload(image);
    if (!resident) return resident.error();
    state->resident = std::move(*resident);
    std::vector<Region> outputs;
    if (options.read_logits || options.verify) {
        for (const SlotRect& r : output_rects(cartridge.manifest))
            outputs.push_back(region_of(r));
    } else {
        const Tensor& next = cartridge.manifest.region("next")->tensor;
        outputs.push_back(Region{next.x, next.y, next.pixel_width(), next.rows});
    }
    const Region inputs[] = {region_of(input_rect(cartridge.manifest))};
    // Only the step's GPU time is kept: no timestamp after every dispatch.
    auto recording = state->device.record(*state->resident, schedule->dispatches, outputs, inputs,
                                          Timestamps::program);
    if (!recording) return recording.error();
    state->recording = std::move(*recording);
    return CartridgeSession(std::move(state));
}

CartridgeSession::CartridgeSession(std::unique_ptr<State> state) : state_(std::move(state)) {}
CartridgeSession::~CartridgeSession() {
    if (!state_) return;
    state_->recording.reset();
    state_->resident.reset();
}
CartridgeSession::CartridgeSession(CartridgeSession&&) noexcept = default;
CartridgeSession& CartridgeSession::operator=(CartridgeSession&&) noexcept = default;

Result<void> CartridgeSession::submit(const std::function<Result<void>()>& write,
                                      const std::function<Result<void>()>& read) {
    State& s = *state_;
    const auto start = std::chrono::steady_clock::now();
    if (auto w = write(); !w) return w.error();
    const auto written = std::chrono::steady_clock::now();
    auto run = s.recording->run();
    if (!run) return run.error();
    const auto ran = std::chrono::steady_clock::now();
    if (run->status.fault_code != FAULT_NONE)
        return Error{ErrorCode::invalid_input, "the cartridge's program faulted on the device: " +
                                                   std::string(fault_name(run->status.fault_code)) +
                                                   " at pc " +
                                                   std::to_string(run->status.fault_pc)};
    if (auto r = read(); !r) return r.error();
    s.stats.host_write_ms += std::chrono::duration<double, std::milli>(written - start).count();
    s.stats.host_run_ms += std::chrono::duration<double, std::milli>(ran - written).count();
    s.stats.host_read_ms += ms_since(ran);
    s.stats.host_step_ms += ms_since(start);
    s.stats.gpu_execute_ms += run->timings.gpu_execute_ms.value_or(0);
    ++s.stats.steps;
    return {};
}

Result<void> CartridgeSession::step(Image& image) {
    State& s = *state_;
    const bool whole = s.verify && s.stats.steps == 0; // the first check compares everything
    auto ran =
        submit([&] { return s.recording->write_inputs(image); },
               [&] { return whole ? s.resident->read(image) : s.recording->read_outputs(image); });
    if (!ran) return ran.error();
    if (!s.verify) return {};

    const auto check = std::chrono::steady_clock::now();
    const SlotRect in = input_rect(s.manifest);
    for (std::uint32_t y = in.y; y < in.y + in.height; ++y)
        for (std::uint32_t x = in.x; x < in.x + in.width; ++x)
            s.reference.set_pixel(x, y, image.pixel(x, y));
    const RunOutcome outcome = run_reference(s.reference);
    if (outcome.fault)
        return Error{ErrorCode::invalid_input,
                     "the cartridge's program faulted on the reference: " +
                         describe(outcome.fault, s.reference)};
    if (whole) {
        const ImageDifference d = compare_images(s.reference, image);
        if (d.count)
            return Error{ErrorCode::mismatch,
                         "MISMATCH with the reference on the first step: " + describe(d)};
    } else if (auto d = compare_outputs(s.reference, image, s.manifest)) {
        return Error{ErrorCode::mismatch, "MISMATCH with the reference at step " +
                                              std::to_string(s.stats.steps) + ": " + *d};
    }
    s.stats.verify_ms += ms_since(check);
    return {};
}

Result<std::vector<std::vector<std::uint32_t>>>
CartridgeSession::generate(const std::vector<std::vector<std::uint32_t>>& prompts,
                           const GenerateOptions& options) {
    State& s = *state_;
    const CartridgeManifest& m = s.manifest;
    if (s.verify || m.architecture == "transformer") { // through the host image and step()
        Image image = s.reference;
        return px::generate(image, m, prompts, options, as_step());
    }
    if (auto ok = check_generation(m, prompts.size(), options); !ok) return ok.error();
    const CartridgeRegion* logits = m.region("logits");
    if (options.temperature > 0 && !s.read_logits)
        return Error{ErrorCode::invalid_input,
                     "sampling needs the logits: open the session with read_logits"};
    // Where the regions lie in the packed buffers: the input slot alone; the outputs in the
    // order the session recorded them.
    const Tensor& tokens = m.region("tokens")->tensor;
    const std::size_t token_size = dtype_size(tokens.dtype), row_bytes = tokens.pixel_width() * 4;
    std::size_t next_at = 0, logits_at = 0, at = 0;
    for (const CartridgeRegion& r : m.regions) {
        if (r.role != "output" || (!s.read_logits && r.name != "next")) continue;
        if (r.name == "next") next_at = at;
        if (r.name == "logits") logits_at = at;
        at += std::size_t(r.tensor.pixel_width()) * r.tensor.rows * 4;
    }
    // The windows live in host memory, one row per batch slot; each step shifts every row left by
    // one token and appends its answer, then the whole block goes to the input buffer in one copy
    // (mapped device memory wants large sequential writes).
    std::vector<std::uint8_t> windows(std::size_t(m.batch) * row_bytes, 0);
    auto put = [&](std::uint8_t* p, std::uint32_t id) {
        for (std::size_t b = 0; b < token_size; ++b)
            p[b] = std::uint8_t(id >> (8 * b));
    };
    for (std::uint32_t row = 0; row < m.batch; ++row) {
        const std::vector<std::uint32_t> window =
            window_of(m, row < prompts.size() ? std::span<const std::uint32_t>(prompts[row])
                                              : std::span<const std::uint32_t>());
        for (std::uint32_t j = 0; j < m.context; ++j)
            put(windows.data() + row * row_bytes + j * token_size, window[j]);
    }
    std::vector<std::vector<std::uint32_t>> generated(prompts.size());
    std::vector<std::uint8_t> next_ids(std::size_t(m.batch) * 4);
    std::uint64_t state = options.seed;
    const std::span<std::uint8_t> input = s.recording->input_buffer();
    std::span<const std::uint8_t> out;
    for (std::uint32_t step = 0; step < options.tokens; ++step) {
        auto ran = submit(
            [&] {
                std::memcpy(input.data(), windows.data(), windows.size());
                return s.recording->flush_inputs();
            },
            [&]() -> Result<void> {
                auto buffer = s.recording->output_buffer();
                if (!buffer) return buffer.error();
                out = *buffer;
                std::memcpy(next_ids.data(), out.data() + next_at, next_ids.size()); // one read
                return {};
            });
        if (!ran) return ran.error();
        for (std::size_t row = 0; row < prompts.size(); ++row) {
            std::uint32_t id = 0;
            std::memcpy(&id, next_ids.data() + row * 4, 4);
            if (options.temperature > 0) {
                std::vector<std::int32_t> raw(logits->tensor.cols);
                std::memcpy(raw.data(), out.data() + logits_at + row * raw.size() * 4,
                            raw.size() * 4);
                const std::vector<std::int64_t> z(raw.begin(), raw.end());
                id = sample_logits(z, logits->scale, options.temperature, state);
            }
            if (id >= m.vocab.size())
                return Error{ErrorCode::invalid_input, "the program answered token id " +
                                                           std::to_string(id) +
                                                           ", outside the vocabulary"};
            std::uint8_t* w = windows.data() + row * row_bytes;
            std::memmove(w, w + token_size, (m.context - 1) * token_size);
            put(w + (m.context - 1) * token_size, id);
            generated[row].push_back(id);
        }
        if (options.after_step) options.after_step(step);
    }
    return generated;
}

CartridgeStep CartridgeSession::as_step() {
    return [this](Image& image) { return step(image); };
}

std::string CartridgeSession::device_name() const {
    return state_->name;
}
const DeviceInfo& CartridgeSession::device_info() const {
    return state_->device.info();
}
const CartridgeSessionStats& CartridgeSession::stats() const {
    return state_->stats;
}
ValidationMessages CartridgeSession::validation_messages() const {
    return state_->runtime.validation_messages();
}

} // namespace px::vk
