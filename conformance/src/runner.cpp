// Running a conformance suite: choosing the executors (the reference, and each device's
// interpreter and kernel variants), running every case on each, comparing with the golden, and
// writing actual.png and diff.png for every failure.
#include "pxvm/conformance.hpp"
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/run_program.hpp"
#include "pxvm/vulkan/runtime.hpp"
#include "pxvm/vulkan/scheduler.hpp"
#include "suite_internal.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

namespace px::conformance {
namespace {

namespace fs = std::filesystem;

struct Need {
    const char* name;
    bool (*present)(const vk::DeviceInfo&);
};
constexpr Need needs[] = {
    {"int8", [](const vk::DeviceInfo& d) { return d.features.shader_int8; }},
    {"int16", [](const vk::DeviceInfo& d) { return d.features.shader_int16; }},
    {"int64", [](const vk::DeviceInfo& d) { return d.features.shader_int64; }},
    {"storage_8bit", [](const vk::DeviceInfo& d) { return d.features.storage_buffer_8bit; }},
    {"int_dot", [](const vk::DeviceInfo& d) { return d.features.integer_dot_product.supported; }},
    {"subgroup_size_control",
     [](const vk::DeviceInfo& d) { return d.features.subgroups.size_control; }},
    {"cooperative_matrix_nv",
     [](const vk::DeviceInfo& d) { return d.features.cooperative_matrix_nv; }},
};

/// What one executor left: the image and how the run ended.
struct Ran {
    Image image;
    std::uint32_t fault_code = 0, fault_pc = 0, executed = 0, halted = 0;
};

std::uint64_t result_hash(const Ran& r) {
    const std::uint32_t status[4] = {r.fault_code, r.fault_pc, r.executed, r.halted};
    return hash_bytes(r.image.data(), r.image.size_bytes(), hash_bytes(status, sizeof status));
}

/// Differing pixels bright magenta over a dimmed copy of the golden.
Image diff_image(const Image& golden, const Image& actual) {
    Image diff(golden.width(), golden.height());
    for (std::uint32_t y = 0; y < golden.height(); ++y)
        for (std::uint32_t x = 0; x < golden.width(); ++x) {
            const Pixel g = golden.pixel(x, y);
            diff.set_pixel(x, y,
                           g == actual.pixel(x, y)
                               ? Pixel{std::uint8_t(g.r / 4), std::uint8_t(g.g / 4),
                                       std::uint8_t(g.b / 4), 255}
                               : Pixel{255, 0, 255, 255});
        }
    return diff;
}

// A case or executor name as one folder name below the artifacts folder: letters, digits, '-' and
// '.' only, and no leading '.', so that no name (a case called "..", from the file ...pxi, or ".")
// becomes a path outside that folder or onto it.
std::string slug(std::string text) {
    for (char& ch : text)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.') ch = '_';
    if (text.empty() || text.front() == '.') text.insert(text.begin(), '_');
    return text;
}

const KnownFailure* known_failure(const Suite& suite, const Case& c, const Executor& e,
                                  const vk::DeviceInfo* device) {
    if (!device) return nullptr;
    const std::string driver = vk::format_driver_version(*device);
    for (const KnownFailure& k : suite.known)
        if (k.case_name == c.name && k.vendor_id == device->vendor_id &&
            (!k.device_id || *k.device_id == device->device_id) &&
            driver.starts_with(k.driver_prefix) && (k.path.empty() || k.path == e.path) &&
            (k.variant.empty() || k.variant == e.variant))
            return &k;
    return nullptr;
}

/// Runs one case on one executor, or says why it could not (skip: the device cannot take it).
struct Attempt {
    std::optional<Ran> ran;
    std::string skip_reason, error;
};

Attempt run_on(const Executor& e, vk::Device* device, const Image& program) {
    Attempt a;
    Ran r{program};
    if (!device) {
        const RunOutcome outcome = run_reference(r.image);
        r.fault_code = outcome.fault.code;
        r.fault_pc = outcome.fault ? outcome.fault.pc : 0;
        r.executed = outcome.executed;
        r.halted = outcome.halted;
        a.ran = std::move(r);
        return a;
    }
    Result<vk::GpuRun> gpu = Error{ErrorCode::invalid_input, "not run"};
    if (e.path == "interpreter") {
        gpu = device->run_interpreter(r.image);
    } else {
        auto schedule =
            vk::schedule_program(plan_program(program), program.width(), program.height(),
                                 device->info(), {vk::variant_from_name(e.variant)});
        if (!schedule) {
            a.error = schedule.error().message;
            return a;
        }
        gpu = device->run(schedule->dispatches, r.image);
    }
    if (!gpu) {
        const ErrorCode code = gpu.error().code;
        // What the device cannot take is no failure of the device: too large an image, a
        // missing feature, a shader the device stopped (lavapipe's loop budget). Anything else,
        // a bad dispatch the scheduler made included, is a failure.
        if (code == ErrorCode::unsupported || code == ErrorCode::incomplete)
            a.skip_reason = gpu.error().message;
        else
            a.error = gpu.error().message;
        return a;
    }
    r.fault_code = gpu->status.fault_code;
    r.fault_pc = gpu->status.fault_pc;
    r.executed = gpu->status.executed;
    r.halted = gpu->status.halted;
    a.ran = std::move(r);
    return a;
}

} // namespace

bool known_need(const std::string& need) {
    return std::any_of(std::begin(needs), std::end(needs),
                       [&](const Need& n) { return need == n.name; });
}

std::string known_needs_text() {
    std::string text;
    for (const Need& n : needs)
        text += (text.empty() ? "" : ", ") + std::string(n.name);
    return text;
}

bool has_need(const vk::DeviceInfo& device, const std::string& need) {
    for (const Need& n : needs)
        if (need == n.name) return n.present(device);
    return false;
}

const char* to_string(Outcome outcome) {
    switch (outcome) {
    case Outcome::pass:
        return "pass";
    case Outcome::fail:
        return "fail";
    case Outcome::skipped:
        return "skipped";
    case Outcome::expected_failure:
        return "expected failure";
    }
    return "unknown";
}

Result<SuiteRun> run_suite(const Suite& suite, const RunOptions& options) {
    SuiteRun run;
    if (options.path != "all" && options.path != "interpreter" && options.path != "kernels")
        return Error{ErrorCode::invalid_input,
                     "--path is '" + options.path + "'; it is interpreter, kernels or all"};
    if (options.variant != "all" && !vk::variant_from_name(options.variant))
        return Error{ErrorCode::invalid_input,
                     "--variant is '" + options.variant + "'; it is portable, int-dot or all"};

    // The executors: the reference, and for each selected device its paths and variants.
    const bool all = options.device == "all";
    const bool reference_only = selects_reference(options.device);
    if (all || reference_only) run.executors.push_back({"reference", "cpu", {}, "reference", ""});
    std::optional<vk::Runtime> runtime;
    std::vector<vk::Device> devices;
    std::vector<std::size_t> device_of_executor(run.executors.size(), SIZE_MAX);
    if (!reference_only) {
        vk::RuntimeOptions runtime_options;
        runtime_options.validate = options.validate;
        auto created = vk::Runtime::create(runtime_options);
        if (!created)
            return Error{created.error().code,
                         created.error().message +
                             "; or check the reference alone with --device cpu"};
        runtime.emplace(std::move(created.value()));
        std::vector<std::uint32_t> indices;
        if (all) {
            for (const vk::DeviceInfo& d : runtime->devices())
                if (d.usable()) indices.push_back(d.index);
        } else {
            auto index = runtime->select(vk::DeviceSelector::parse(options.device));
            if (!index) return index.error();
            indices.push_back(*index);
        }
        for (std::uint32_t index : indices) {
            auto device = runtime->open(vk::DeviceSelector::by_index(index));
            if (!device) return device.error();
            const vk::DeviceInfo& info = device->info();
            run.devices.push_back(
                {info.index, info.name, info.vendor_id, info.device_id,
                 vk::format_driver_version(info), vk::format_api_version(info.api_version),
                 vk::format_uuid(info.pipeline_cache_uuid), info.driver_name, info.driver_info});
            const std::string prefix = "[" + std::to_string(info.index) + "] " + info.name;
            if (options.path != "kernels") {
                run.executors.push_back(
                    {prefix + " interpreter", info.name, info.index, "interpreter", ""});
                device_of_executor.push_back(devices.size());
            }
            if (options.path != "interpreter")
                for (const vk::VariantSupport& v : vk::variant_support(info)) {
                    const std::string name(vk::to_string(v.variant));
                    if (options.variant != "all" && options.variant != name) continue;
                    if (!v.available) {
                        if (options.variant != "all")
                            return Error{ErrorCode::unsupported, "variant " + name +
                                                                     " cannot run on " + info.name +
                                                                     ": " + v.reason};
                        continue;
                    }
                    run.executors.push_back(
                        {prefix + " kernels " + name, info.name, info.index, "kernels", name});
                    device_of_executor.push_back(devices.size());
                }
            devices.push_back(std::move(device.value()));
        }
    }

    const std::size_t total = suite.cases.size() * run.executors.size();
    std::size_t done = 0;
    for (std::size_t ci = 0; ci < suite.cases.size(); ++ci) {
        const Case& c = suite.cases[ci];
        auto program = load_case_program(c);
        std::optional<Image> golden;
        std::string case_error;
        if (!program) {
            case_error = program.error().message;
        } else if (std::error_code ec; !fs::exists(c.golden, ec) && !ec) {
            case_error = c.golden + " is missing: goldens come only from the reference, written by "
                                    "pxconform --update-golden";
        } else if (auto loaded = load_png(c.golden); !loaded) {
            case_error = loaded.error().message;
        } else {
            golden = std::move(loaded.value());
        }
        for (std::size_t ei = 0; ei < run.executors.size(); ++ei) {
            const Executor& e = run.executors[ei];
            if (options.progress) options.progress(done++, total, c.name, e.name);
            CaseResult result;
            result.case_index = ci;
            result.executor_index = ei;
            const auto start = std::chrono::steady_clock::now();
            vk::Device* device =
                device_of_executor[ei] == SIZE_MAX ? nullptr : &devices[device_of_executor[ei]];
            const vk::DeviceInfo* info = device ? &device->info() : nullptr;
            std::string missing;
            if (info)
                for (const std::string& need : c.needs)
                    if (!has_need(*info, need)) missing += (missing.empty() ? "" : ", ") + need;
            if (!case_error.empty()) {
                result.outcome = Outcome::fail;
                result.detail = case_error;
            } else if (!missing.empty()) {
                result.outcome = Outcome::skipped;
                result.detail = "not supported: the device lacks " + missing;
            } else if (device && device->failed()) {
                result.outcome = Outcome::fail;
                result.detail = "the device failed on an earlier case";
            } else {
                const Attempt attempt = run_on(e, device, program->image);
                if (!attempt.ran) {
                    result.outcome = attempt.skip_reason.empty() ? Outcome::fail : Outcome::skipped;
                    result.detail = attempt.skip_reason.empty()
                                        ? attempt.error
                                        : "not supported: " + attempt.skip_reason;
                } else {
                    const Ran& ran = *attempt.ran;
                    result.result_hash = result_hash(ran);
                    std::string mismatch;
                    ImageDifference difference;
                    if (ran.image.width() != golden->width() ||
                        ran.image.height() != golden->height()) {
                        mismatch = "the golden is " + std::to_string(golden->width()) + "x" +
                                   std::to_string(golden->height()) + ", the result " +
                                   std::to_string(ran.image.width()) + "x" +
                                   std::to_string(ran.image.height());
                    } else {
                        difference = compare_images(*golden, ran.image);
                        if (difference.count) mismatch = describe(difference);
                    }
                    // The hand-written expectations first: they hold whatever the golden says.
                    if (const std::string wrong =
                            check_expectations(program->expectations, c.program, ran.image,
                                               ran.fault_code, ran.fault_pc);
                        !wrong.empty())
                        mismatch = wrong + (mismatch.empty() ? "" : "; golden: " + mismatch);
                    if (c.fault && ran.fault_code != *c.fault)
                        mismatch += std::string(mismatch.empty() ? "" : "; ") + "ended with " +
                                    std::string(fault_name(ran.fault_code)) + ", expected " +
                                    std::string(fault_name(*c.fault));
                    const KnownFailure* known = known_failure(suite, c, e, info);
                    if (c.expect_mismatch) {
                        result.outcome =
                            mismatch.empty() ? Outcome::fail : Outcome::expected_failure;
                        result.detail = mismatch.empty()
                                            ? "a negative case matched its deliberately wrong "
                                              "golden: the checker missed a wrong pixel"
                                            : "negative case: " + mismatch;
                    } else if (known) {
                        result.outcome =
                            mismatch.empty() ? Outcome::pass : Outcome::expected_failure;
                        result.stale_expectation = mismatch.empty();
                        result.detail = mismatch.empty()
                                            ? "passes, although expectations.json lists it as a "
                                              "known failure (" +
                                                  known->reason + ")"
                                            : "known failure: " + known->reason + ": " + mismatch;
                    } else {
                        result.outcome = mismatch.empty() ? Outcome::pass : Outcome::fail;
                        result.detail = mismatch;
                    }
                    if (result.outcome == Outcome::fail && !options.artifacts.empty() &&
                        ran.image.width() == golden->width() &&
                        ran.image.height() == golden->height()) {
                        const fs::path dir =
                            fs::path(options.artifacts) / slug(c.name) / slug(e.name);
                        std::error_code ec;
                        fs::create_directories(dir, ec);
                        if (!ec && save_png(ran.image, (dir / "actual.png").string()) &&
                            save_png(diff_image(*golden, ran.image), (dir / "diff.png").string()))
                            result.artifacts = dir.string();
                    }
                }
            }
            result.ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
            switch (result.outcome) {
            case Outcome::pass:
                ++run.passed;
                break;
            case Outcome::fail:
                ++run.failed;
                break;
            case Outcome::skipped:
                ++run.skipped;
                break;
            case Outcome::expected_failure:
                ++run.expected_failures;
                break;
            }
            run.results.push_back(std::move(result));
        }
    }
    if (runtime && runtime->validation_enabled()) {
        const vk::ValidationMessages messages = runtime->validation_messages();
        if (messages.total()) {
            run.validation = std::to_string(messages.errors) + " validation errors and " +
                             std::to_string(messages.warnings) + " warnings";
            for (const std::string& text : messages.texts)
                run.validation += "\n  " + text;
        }
    }
    devices.clear(); // before the runtime
    return run;
}

} // namespace px::conformance
