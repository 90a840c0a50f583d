// pxrun: runs a pixel program on a Vulkan device (scheduled kernels or the GPU interpreter,
// verified against the CPU reference interpreter) or on the reference itself, prints what the
// program wrote, optionally saves the image. Given a model cartridge (.pxa), it generates text.
#include "pxvm/assembler.hpp"
#include "pxvm/cartridge.hpp"
#include "pxvm/image.hpp"
#include "pxvm/inspect.hpp"
#include "pxvm/program.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/report.hpp"
#include "pxvm/run_program.hpp"
#include "pxvm/vulkan/cartridge_session.hpp"

#include "cli_support.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace {

std::string milliseconds(const std::optional<double>& ms) {
    if (!ms) return "n/a";
    std::ostringstream s;
    s << std::fixed << std::setprecision(3) << *ms << " ms";
    return s.str();
}

void print_gpu_details(const px::ProgramRun& run) {
    const px::vk::StageTimings& t = run.gpu->timings;
    std::cout << "  GPU time: upload "
              << (t.direct_upload ? std::string("none") : milliseconds(t.gpu_upload_ms))
              << ", execute " << milliseconds(t.gpu_execute_ms) << ", readback "
              << milliseconds(t.gpu_readback_ms)
              << (t.direct_upload ? " (image written directly into device memory)" : "") << "\n";
    // Every dispatch's GPU time by label; the slowest ones when there are many.
    std::vector<px::vk::LabelledTime> dispatches = t.gpu_dispatch;
    constexpr std::size_t shown = 16;
    if (dispatches.size() > shown) {
        std::stable_sort(dispatches.begin(), dispatches.end(),
                         [](const auto& a, const auto& b) { return a.ms > b.ms; });
        std::cout << "  the " << shown << " slowest of " << dispatches.size() << " dispatches:\n";
        dispatches.resize(shown);
    }
    for (const px::vk::LabelledTime& d : dispatches)
        std::cout << "    " << d.label << ": " << milliseconds(d.ms) << "\n";
    for (const px::vk::PipelineInfo& p : run.gpu->pipelines) {
        std::cout << "  pipeline " << p.key << ": "
                  << (p.created_in_this_call ? "created in " + milliseconds(p.create_ms)
                                             : std::string("reused"));
        if (p.cache_hit) std::cout << ", driver reports cache " << (*p.cache_hit ? "hit" : "miss");
        std::cout << "\n";
    }
    std::cout << "  pipeline cache: " << run.pipeline_cache << "\n";
}

nlohmann::json pixel_json(px::Pixel p) {
    return {p.r, p.g, p.b, p.a};
}

// The run as one JSON object (pxrun --json): what the text output says, for scripts.
nlohmann::json run_json(const std::string& program, const px::Image& image,
                        const px::ProgramRun& run, const px::RunOptions& options, int status) {
    const px::RunOutcome& outcome = run.outcome;
    nlohmann::json j = {{"program", program},
                        {"width", image.width()},
                        {"height", image.height()},
                        {"device", run.device},
                        {"path", run.gpu ? std::string(px::to_string(options.path)) : "reference"},
                        {"executed", outcome.executed},
                        {"halted", outcome.halted},
                        {"exit_status", status}};
    j["fault"] = nullptr;
    if (outcome.fault)
        j["fault"] = {{"code", outcome.fault.code},
                      {"name", std::string(px::fault_name(outcome.fault.code))},
                      {"pc", outcome.fault.pc},
                      {"reason", outcome.fault.reason}};
    std::string variant;
    for (const px::vk::ScheduledStep& s : run.schedule)
        if (s.variant != "portable" || variant.empty()) variant = s.variant;
    j["variant"] = variant.empty() ? nlohmann::json(nullptr) : nlohmann::json(variant);
    j["verification"] = nullptr;
    if (const auto& v = run.verification) {
        nlohmann::json d = {{"matches", v->matches()},
                            {"method", v->summary()},
                            {"ms", v->seconds * 1e3},
                            {"differing_pixels", v->difference.count}};
        if (v->difference.count)
            d["first_difference"] = {{"x", v->difference.x},
                                     {"y", v->difference.y},
                                     {"expected", pixel_json(v->difference.expected)},
                                     {"actual", pixel_json(v->difference.actual)}};
        if (!v->status_mismatch.empty()) d["status_mismatch"] = v->status_mismatch;
        j["verification"] = d;
    }
    j["timings_ms"] = nullptr;
    if (run.gpu) {
        const px::vk::StageTimings& t = run.gpu->timings;
        auto opt = [](const std::optional<double>& v) {
            return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
        };
        nlohmann::json dispatches = nlohmann::json::array();
        for (const px::vk::LabelledTime& d : t.gpu_dispatch)
            dispatches.push_back({{"label", d.label}, {"ms", d.ms}});
        j["timings_ms"] = {{"host_prepare", t.host_prepare_ms},
                           {"host_upload", t.host_upload_ms},
                           {"host_submit_wait", t.host_submit_wait_ms},
                           {"host_readback", t.host_readback_ms},
                           {"host_total", t.host_total_ms},
                           {"gpu_upload", opt(t.gpu_upload_ms)},
                           {"gpu_execute", opt(t.gpu_execute_ms)},
                           {"gpu_readback", opt(t.gpu_readback_ms)},
                           {"gpu_dispatches", dispatches}};
        j["pipeline_cache"] = run.pipeline_cache;
        j["validation"] = {{"errors", run.validation.errors},
                           {"warnings", run.validation.warnings}};
    }
    return j;
}

struct CartridgeArgs {
    std::string prompt, batch_file;
    std::uint32_t tokens = 200;
    double temperature = 0;
    std::uint64_t seed = 0;
    bool self_test = false;
    bool prompt_given = false; ///< --prompt was on the command line (perhaps empty)
    bool tokens_given = false; ///< --tokens was on the command line
};

int cartridge_error(const std::string& path, const px::Error& e) {
    std::cerr << "pxrun: " << path << ": " << e.message << "\n";
    return int(px::exit_status(e));
}

// Generation from a cartridge: the prompts, then each step one run (on the reference, or one
// submit on a device with only the slots transferred, checked against the reference).
int run_cartridge(const std::string& path, const CartridgeArgs& args,
                  const px::RunOptions& options) {
    auto cart = px::load_cartridge(path);
    if (!cart) return cartridge_error(path, cart.error());
    const px::CartridgeManifest& m = cart->manifest;
    const auto runs_self_test = px::runs_self_test({.self_test = args.self_test,
                                                    .prompt_given = args.prompt_given,
                                                    .batch_given = !args.batch_file.empty(),
                                                    .tokens_given = args.tokens_given,
                                                    .temperature = args.temperature});
    if (!runs_self_test) return cartridge_error(path, runs_self_test.error());
    const bool self_test = *runs_self_test;
    std::vector<std::string> texts;
    if (!args.batch_file.empty()) {
        std::ifstream in(args.batch_file);
        if (!in)
            return cartridge_error(
                path, {px::ErrorCode::invalid_input, args.batch_file + ": cannot open"});
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) texts.push_back(line);
        if (texts.empty())
            return cartridge_error(
                path, {px::ErrorCode::invalid_input, args.batch_file + ": no prompts"});
    } else if (!args.prompt_given) { // the self-test's prompt
        if (m.self_test_prompt.empty())
            return cartridge_error(path, {px::ErrorCode::invalid_input,
                                          "the cartridge has no self-test; give --prompt TEXT"});
        texts.push_back(m.self_test_prompt);
    } else {
        texts.push_back(args.prompt);
    }
    std::vector<std::vector<std::uint32_t>> prompts;
    for (std::size_t i = 0; i < texts.size(); ++i) {
        auto ids = px::tokenize(m, texts[i]);
        if (!ids)
            return cartridge_error(path, {px::ErrorCode::invalid_input,
                                          (texts.size() > 1 ? "prompt " + std::to_string(i + 1) +
                                                                  " of " + args.batch_file + ": "
                                                            : std::string()) +
                                              ids.error().message});
        prompts.push_back(std::move(*ids));
    }
    px::GenerateOptions g;
    g.tokens = self_test ? m.self_test_tokens : args.tokens;
    g.temperature = args.temperature;
    g.seed = args.seed;

    std::optional<px::vk::CartridgeSession> session;
    std::string device = "cpu (reference interpreter)";
    if (!px::selects_reference(options.device)) {
        px::vk::CartridgeSessionOptions so;
        so.device = options.device;
        so.validate = options.validate;
        so.verify = options.verify;
        so.timeout = options.timeout;
        so.variant = options.variant;
        so.read_logits = args.temperature > 0;
        auto opened = px::vk::CartridgeSession::open(*cart, so);
        if (!opened) return cartridge_error(path, opened.error());
        session.emplace(std::move(*opened));
        device = session->device_name();
    }
    px::Image image = cart->image;
    const auto start = std::chrono::steady_clock::now();
    // Verified runs go through the host image (the reference needs it); unverified ones write
    // the windows and read the answers straight from the device's buffers.
    auto generated = session && !options.verify
                         ? session->generate(prompts, g)
                         : px::generate(image, m, prompts, g,
                                        session ? session->as_step() : px::reference_step());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!generated) return cartridge_error(path, generated.error());
    for (std::size_t i = 0; i < texts.size(); ++i)
        std::cout << texts[i] << px::detokenize(m, (*generated)[i]) << "\n";
    std::cout.flush();

    const std::uint64_t total = std::uint64_t(g.tokens) * texts.size();
    std::cerr << std::fixed << std::setprecision(1) << total << " tokens (" << texts.size()
              << " prompt" << (texts.size() == 1 ? "" : "s") << " x " << g.tokens << ") in "
              << std::setprecision(3) << seconds << " s: " << std::setprecision(1)
              << double(total) / seconds << " tokens/s on " << device << "\n";
    if (session) {
        // Per-step figures only when there were steps (0 would print "-nan us").
        if (const px::vk::CartridgeSessionStats& st = session->stats(); st.steps > 0) {
            std::cerr << std::setprecision(1) << "  per step: GPU "
                      << 1e3 * st.gpu_execute_ms / double(st.steps) << " us, host step "
                      << 1e3 * st.host_step_ms / double(st.steps) << " us";
            if (options.verify)
                std::cerr << ", reference check " << 1e3 * st.verify_ms / double(st.steps)
                          << " us (every step matched the reference interpreter)";
            else
                std::cerr << " (not verified: --no-verify)";
            std::cerr << "\n";
        }
        if (const px::vk::ValidationMessages v = session->validation_messages(); v.total()) {
            std::cerr << "pxrun: the validation layer reported " << v.errors << " errors and "
                      << v.warnings << " warnings\n";
            return int(px::ExitStatus::mismatch);
        }
    }
    if (self_test) {
        const std::string got = px::detokenize(m, generated->front());
        if (got != m.self_test_expect) {
            std::cerr << "pxrun: " << path << ": SELF-TEST FAILED: expected \""
                      << m.self_test_expect << "\", got \"" << got << "\"\n";
            return int(px::ExitStatus::mismatch);
        }
        std::cerr << "self-test passed: the continuation is the one the manifest records\n";
    }
    return 0;
}

/// pxrun's ways of looking inside a run of a .pxi program.
struct InspectArgs {
    std::vector<std::string> print_args; ///< --print: ids, or names from a .pxs's .tensor
    std::vector<std::uint32_t> print;    ///< the ids they name in the program being run
    std::optional<std::uint32_t> stop_at;
    std::string trace_dir, save_reference;
    bool any() const {
        return !print_args.empty() || stop_at || !trace_dir.empty() || !save_reference.empty();
    }
};

/// --print's tensors exist, --trace and --save-reference write their images; 0, or 1 with a
/// message. `executed` is the program as run (with --stop-at's HALT).
int inspect_run(const std::string& program, const px::Image& executed, const px::Plan& plan,
                const px::ProgramRun& run, const InspectArgs& inspect,
                const px::ReferenceLimits& limits, const std::optional<px::StopAt>& stop) {
    for (const std::uint32_t id : inspect.print)
        if (auto lines = px::describe_tensor(plan, run.outcome.executed, run.result, id); !lines) {
            std::cerr << "pxrun: " << program << ": --print " << id << ": " << lines.error().message
                      << "\n";
            return 1;
        }
    const auto failed = [](const px::Error& e) {
        std::cerr << "pxrun: " << e.message << "\n";
        return int(px::ExitStatus::bad_input);
    };
    if (!inspect.trace_dir.empty()) {
        auto written = px::write_trace(executed, inspect.trace_dir, limits, stop, program);
        if (!written) return failed(written.error());
        std::cerr << "trace: " << *written << " step images and final.pxi in " << inspect.trace_dir
                  << "\n";
    }
    if (!inspect.save_reference.empty()) {
        auto reference = px::reference_image(executed, limits, stop, program);
        if (!reference) return failed(reference.error());
        if (auto saved = px::save_png(*reference, inspect.save_reference); !saved)
            return failed(saved.error());
        std::cerr << "wrote the reference's image to " << inspect.save_reference << "\n";
        auto diff = px::save_difference(*reference, run.result, inspect.save_reference);
        if (!diff) return failed(diff.error());
        if (*diff) std::cerr << "wrote the differing pixels (red) to " << **diff << "\n";
    }
    return 0;
}

} // namespace

/// What pxrun does with one .pxi or .pxs program; its exit status. With `json`, the run's object
/// is appended there instead of the text.
int run_pxi(const std::string& program, px::ProgramRunner& runner, const px::RunOptions& options,
            const std::string& out, const InspectArgs& given, nlohmann::json* json) {
    InspectArgs inspect = given;
    std::vector<px::NamedTensor> names; // a .pxs source's named tensors
    // A .pxs source is assembled first (pxc asm), so a program can be run as it is written.
    px::Result<px::Image> image = px::Error{px::ErrorCode::invalid_input, "not loaded"};
    if (program.ends_with(".pxs")) {
        auto assembled = px::assemble_file(program);
        if (!assembled) {
            std::cerr << "pxrun: " << assembled.error().message << "\n";
            return 1;
        }
        for (const std::string& warning : assembled->warnings)
            std::cerr << warning << "\n";
        names = assembled->named;
        image = std::move(assembled->image);
    } else {
        image = px::load_png(program);
    }
    if (!image) {
        std::cerr << "pxrun: " << image.error().message << "\n";
        return 1;
    }
    // --print's ids: numbers, or the names of the source's .tensor directives.
    for (const std::string& arg : inspect.print_args) {
        const bool number =
            !arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos;
        if (number && arg.size() <= 3 && std::stoi(arg) <= 255) {
            inspect.print.push_back(std::uint32_t(std::stoi(arg)));
            continue;
        }
        const auto named = std::find_if(names.begin(), names.end(),
                                        [&](const px::NamedTensor& n) { return n.name == arg; });
        if (number || named == names.end()) {
            std::cerr << "pxrun: " << program << ": --print " << arg << ": "
                      << (number ? "tensor ids are 0 ... 255"
                                 : "no tensor of that name (names come from '.tensor' in a .pxs "
                                   "source)")
                      << "\n";
            return 1;
        }
        inspect.print.push_back(named->id);
    }
    // --stop-at: a HALT in place of the instruction at that pc, put back in every result image.
    px::Image executed = *image;
    std::optional<px::StopAt> stop;
    if (inspect.stop_at) {
        auto placed = px::stop_at(executed, *inspect.stop_at, program);
        if (!placed) {
            std::cerr << "pxrun: " << placed.error().message << "\n";
            return 1;
        }
        stop = *placed;
    }
    auto run = runner.run(executed);
    if (!run) {
        std::cerr << "pxrun: " << program << ": " << run.error().message << "\n";
        return 1;
    }
    px::restore(stop, run->result);
    const px::Plan plan = px::plan_program(executed);
    if (int failed =
            inspect_run(program, executed, plan, *run, inspect, options.reference_limits, stop))
        return failed;
    const int status = int(px::exit_status(*run));

    if (json) {
        if (!out.empty())
            if (auto saved = px::save_png(run->result, out); !saved) {
                std::cerr << "pxrun: " << saved.error().message << "\n";
                return 1;
            }
        nlohmann::json j = run_json(program, *image, *run, options, status);
        for (const std::uint32_t id : inspect.print) {
            const auto lines = px::describe_tensor(plan, run->outcome.executed, run->result, id);
            j["printed"].push_back(lines.value());
        }
        json->push_back(std::move(j));
        return status;
    }
    std::cout << program << ": " << image->width() << "x" << image->height() << ", device "
              << run->device << "\n";
    for (const std::string& line : px::describe_outputs(plan, run->outcome.executed, run->result))
        std::cout << "  " << line << "\n";
    for (const std::uint32_t id : inspect.print) {
        const auto lines = px::describe_tensor(plan, run->outcome.executed, run->result, id);
        for (const std::string& line : lines.value())
            std::cout << "  " << line << "\n";
    }
    const px::RunOutcome& outcome = run->outcome;
    if (outcome.fault)
        std::cout << "stopped: " << px::describe(outcome.fault, *image) << "\n";
    else if (stop && stop->stopped_here(outcome, plan))
        std::cout << "stopped at pc " << *inspect.stop_at << " (--stop-at) after "
                  << outcome.executed << " instruction" << (outcome.executed == 1 ? "" : "s")
                  << "\n";
    else
        std::cout << (outcome.halted ? "halted" : "ran to the end of row 0") << " after "
                  << outcome.executed << " instruction" << (outcome.executed == 1 ? "" : "s")
                  << "\n";
    if (run->gpu) print_gpu_details(*run);

    if (const auto& v = run->verification) {
        if (v->matches()) {
            std::cout << "verified: identical to the reference interpreter ("
                      << std::uint64_t(image->width()) * image->height() << " pixels; "
                      << v->summary() << "; " << std::fixed << std::setprecision(3)
                      << v->seconds * 1e3 << " ms)\n";
        } else {
            if (v->difference.count)
                std::cerr << "pxrun: MISMATCH: " << px::describe(v->difference) << "\n";
            if (!v->status_mismatch.empty())
                std::cerr << "pxrun: MISMATCH: " << v->status_mismatch << "\n";
            std::cerr << "pxrun: checked by: " << v->summary() << "\n";
        }
    } else if (run->gpu) {
        std::cout << "not verified (--no-verify)\n";
    }
    if (run->validation.total()) {
        std::cerr << "pxrun: the validation layer reported " << run->validation.errors
                  << " errors and " << run->validation.warnings << " warnings\n";
    }
    if (!out.empty()) {
        if (auto saved = px::save_png(run->result, out); !saved) {
            std::cerr << "pxrun: " << saved.error().message << "\n";
            return 1;
        }
        std::cout << "wrote " << out << "\n";
    }
    return status;
}

int main(int argc, char** argv) {
    CLI::App app{"pxrun: run a pixel program (.pxi) and print what it wrote.\n"
                 "On a Vulkan device the result is checked against the CPU reference "
                 "interpreter, pixel for pixel.\n"
                 "Exit status: 0 ran to HALT or the end of row 0; 1 bad input or device error; "
                 "2 the program faulted (the fault pixel is written); 3 the device's result "
                 "differs from the reference, or the validation layer reported a problem. With "
                 "several programs, the largest of theirs."};
    std::string out;
    px::RunOptions options;
    bool no_verify = false;
    unsigned timeout_ms = 0;
    std::vector<std::string> program_args;
    app.add_option("programs", program_args,
                   "the .pxi program image (8-bit RGBA PNG), a .pxs source (assembled first), or "
                   "a .pxa model cartridge; several programs or directories of them run one "
                   "after another on one device")
        ->required();
    CartridgeArgs cart;
    app.add_option("--prompt", cart.prompt,
                   "cartridge: the text to continue (default: the self-test's prompt; with no "
                   "--prompt, --tokens, --temperature or --batch, the self-test runs and is "
                   "checked)");
    app.add_option("--tokens", cart.tokens, "cartridge: tokens to generate after each prompt")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    app.add_option("--temperature", cart.temperature,
                   "cartridge: sample from the logits at this temperature (0: the program's "
                   "argmax)")
        ->capture_default_str()
        ->check(pxcli::number_in_range(0.0, 100.0));
    app.add_option("--seed", cart.seed, "cartridge: the sampling stream's seed")
        ->capture_default_str();
    app.add_option("--batch", cart.batch_file,
                   "cartridge: a file of prompts, one per line, run as one batch");
    app.add_flag("--self-test", cart.self_test,
                 "cartridge: run the manifest's self-test prompt and check its continuation");
    std::string path = "kernels", variant;
    app.add_option("--device,-d", options.device,
                   "where to run: 'auto' (the first GPU, else lavapipe), a device index from "
                   "pxinfo, a part of a device name, or 'cpu' (the reference interpreter)")
        ->capture_default_str();
    app.add_option("--path", path,
                   "how a device runs the program: 'kernels' (one specialised kernel per "
                   "instruction) or 'interpreter' (the GPU interpreter)")
        ->check(CLI::IsMember({"kernels", "interpreter"}))
        ->capture_default_str();
    app.add_option("--variant", variant,
                   "force a kernel variant of the kernels path: 'portable', 'int-dot' or "
                   "'coopmat-nv' (default: the fastest the device and this build support; pxinfo "
                   "lists them)")
        ->check(CLI::IsMember(px::vk::variant_names()));
    app.add_option("--out,-o", out, "write the executed image here (atomically)");
    app.add_flag("--no-verify", no_verify, "do not check a device's result against the reference");
    app.add_flag("--validate", options.validate,
                 "enable the Khronos validation layer (PXVM_VALIDATE=1 does too)");
    app.add_option("--timeout-ms", timeout_ms,
                   "give up on a device run after this long, 1 to 86400000 ms (default: "
                   "PXVM_TIMEOUT_MS, else 10000; the flag beats the environment); the flag also "
                   "limits each run of the reference interpreter (--device cpu, the check of a "
                   "device's result, --trace), which otherwise has only --max-work")
        ->check(CLI::Range(1u, 86'400'000u));
    app.add_option("--max-work", options.reference_limits.max_work,
                   "the most operations (multiply-adds and element steps) the reference "
                   "interpreter may spend on one program; a program that needs more is refused "
                   "before it runs")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t(1), std::uint64_t(1) << 62));
    bool as_json = false;
    app.add_flag("--json", as_json,
                 "print the run as one JSON object instead of text: device, path, variant, "
                 "fault, instructions executed, the verification's method and result, stage and "
                 "dispatch timings (the exit status is the same)");
    InspectArgs inspect;
    app.add_option("--print", inspect.print_args,
                   "also print the whole of tensor ID (0-255, or a name a .pxs source gave it "
                   "with .tensor) after the run, with its shape, row by row; repeatable");
    app.add_option("--stop-at", inspect.stop_at,
                   "run as if the program halted at pc PC: the instruction there and the ones "
                   "after it do not run (on any device and in the reference)")
        ->check(CLI::Range(0u, 65535u));
    app.add_option("--trace", inspect.trace_dir,
                   "write the image after each instruction into this directory (from the "
                   "reference interpreter: step-0003-pc-12-matmul.pxi, ...) and the final image "
                   "(final.pxi)");
    app.add_option("--save-reference", inspect.save_reference,
                   "write the reference interpreter's result image here; when a device's result "
                   "differs, also FILE.diff.png, the differing pixels in red");
    pxcli::add_version(app, "pxrun");
    PXCLI_PARSE(app, argc, argv);
    options.verify = !no_verify;
    options.path = *px::execution_path_from_name(path);
    if (!variant.empty()) {
        if (options.path != px::ExecutionPath::kernels || px::selects_reference(options.device)) {
            std::cerr << "pxrun: --variant chooses a kernel variant of --path kernels on a "
                         "device; it does not apply to "
                      << (px::selects_reference(options.device) ? "--device cpu"
                                                                : "--path interpreter")
                      << "\n";
            return 1;
        }
        options.variant = px::vk::variant_from_name(variant);
    }
    if (timeout_ms)
        options.timeout = options.reference_limits.timeout = std::chrono::milliseconds(timeout_ms);

    cart.prompt_given = app.count("--prompt") > 0;
    cart.tokens_given = app.count("--tokens") > 0;
    const bool cartridge_flags = cart.prompt_given || !cart.batch_file.empty() || cart.self_test ||
                                 app.count("--tokens") || app.count("--temperature") ||
                                 app.count("--seed");
    const std::string& program = program_args.front();
    if (program.ends_with(".pxa") || cartridge_flags) {
        if (program_args.size() > 1) {
            std::cerr << "pxrun: a cartridge runs alone, not with other programs\n";
            return 1;
        }
        if (!out.empty() || options.path != px::ExecutionPath::kernels || inspect.any()) {
            std::cerr << "pxrun: --out, --path interpreter, --print, --stop-at, --trace and "
                         "--save-reference apply to .pxi programs, not to cartridges\n";
            return 1;
        }
        return run_cartridge(program, cart, options);
    }

    // Several programs (or directories of them) run one after another on one device.
    std::vector<std::string> programs;
    for (const std::string& given : program_args) {
        std::error_code ec;
        if (!std::filesystem::is_directory(given, ec)) {
            programs.push_back(given);
            continue;
        }
        std::vector<std::string> found;
        for (const auto& entry : std::filesystem::directory_iterator(given, ec))
            if (entry.path().extension() == ".pxi" || entry.path().extension() == ".pxs")
                found.push_back(entry.path().string());
        if (ec || found.empty()) {
            std::cerr << "pxrun: " << given << ": a directory with no .pxi or .pxs program"
                      << (ec ? " (" + ec.message() + ")" : "") << "\n";
            return 1;
        }
        std::sort(found.begin(), found.end());
        programs.insert(programs.end(), found.begin(), found.end());
    }
    if (programs.size() > 1 && (!out.empty() || inspect.stop_at || !inspect.trace_dir.empty() ||
                                !inspect.save_reference.empty())) {
        std::cerr << "pxrun: --out, --stop-at, --trace and --save-reference take one program, not "
                  << programs.size() << "\n";
        return 1;
    }
    // The input is never modified: no output may be the program, under any name.
    if (programs.size() == 1) {
        const std::string& input = programs.front();
        const std::string& reference = inspect.save_reference;
        if (pxcli::overwrites_input("pxrun", "--out", out, input) ||
            pxcli::overwrites_input("pxrun", "--save-reference", reference, input) ||
            (!reference.empty() && pxcli::overwrites_input("pxrun", "--save-reference",
                                                           reference + ".diff.png", input)) ||
            (!inspect.trace_dir.empty() &&
             pxcli::overwrites_input(
                 "pxrun", "--trace",
                 (std::filesystem::path(inspect.trace_dir) / "final.pxi").string(), input)))
            return 1;
    }
    px::ProgramRunner runner(options);
    nlohmann::json runs = nlohmann::json::array();
    px::ExitStatus status = px::ExitStatus::ran;
    for (const std::string& one : programs)
        status = px::worst(status, px::ExitStatus(run_pxi(one, runner, options, out, inspect,
                                                          as_json ? &runs : nullptr)));
    if (as_json && !runs.empty())
        std::cout << (programs.size() == 1 ? runs[0] : runs).dump(2) << "\n";
    return int(status);
}
