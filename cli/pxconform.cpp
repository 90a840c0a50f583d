// pxconform: runs the golden-image conformance suite on the reference interpreter and on Vulkan
// devices, every path and kernel variant, and reports pass, fail, skipped or expected failure
// per case (docs/CONFORMANCE.md).
#include "pxvm/conformance.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include "cli_support.hpp"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <unistd.h>

namespace {

bool write_text(const std::string& path, const std::string& text) {
    const auto saved = px::write_file_atomic(path, std::string_view(text));
    if (!saved) std::cerr << "pxconform: " << saved.error().message << "\n";
    return bool(saved);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pxconform: the golden-image conformance suite. Every NAME.pxi or NAME.pxs with "
                 "a NAME.golden.png beside it, anywhere under the suite directory, is a case; "
                 "each runs on every selected device, path and variant and must give the golden's "
                 "pixels.\nExit status: 0 no failure; 1 a failure, or bad input or a device "
                 "error."};
    std::string suite_dir = PXVM_DEFAULT_SUITE, junit, json, bundle, artifacts;
    px::conformance::RunOptions options;
    bool update = false, quiet = false;
    app.add_option("--suite", suite_dir, "the suite directory")->capture_default_str();
    app.add_option("--device,-d", options.device,
                   "'auto' (the first GPU, else lavapipe), a device index, a part of a device "
                   "name, 'cpu' (the reference alone) or 'all' (the reference and every device)")
        ->capture_default_str();
    app.add_option("--path", options.path, "interpreter, kernels or all")
        ->check(CLI::IsMember({"interpreter", "kernels", "all"}))
        ->capture_default_str();
    std::vector<std::string> variants = px::vk::variant_names();
    variants.push_back("all");
    app.add_option("--variant", options.variant,
                   "a kernel variant (portable, int-dot, coopmat-nv) or all")
        ->check(CLI::IsMember(variants))
        ->capture_default_str();
    app.add_option("--junit", junit, "write a JUnit XML report here");
    app.add_option("--json", json, "write a JSON report here");
    app.add_option("--bundle", bundle,
                   "write what a vendor submits into this directory: JSON and JUnit reports, "
                   "device fingerprints, pxVM's version and git hash, the suite's hash, and the "
                   "failures' images");
    app.add_option("--artifacts", artifacts,
                   "write actual.png and diff.png of every failure under this directory "
                   "(default: the bundle, else pxconform-failures)");
    app.add_flag("--validate", options.validate,
                 "enable the Khronos validation layer (PXVM_VALIDATE=1 does too); any message is "
                 "a failure");
    app.add_flag("--update-golden", update,
                 "write every case's golden from the reference interpreter (the only way goldens "
                 "are made; negative cases keep theirs), then stop");
    app.add_flag("--quiet,-q", quiet, "no progress line");
    pxcli::add_version(app, "pxconform");
    PXCLI_PARSE(app, argc, argv);

    auto suite = px::conformance::load_suite(suite_dir, update);
    if (!suite) {
        std::cerr << "pxconform: " << suite.error().message << "\n";
        return 1;
    }
    if (update) {
        auto written = px::conformance::update_goldens(*suite);
        if (!written) {
            std::cerr << "pxconform: " << written.error().message << "\n";
            return 1;
        }
        for (const std::string& line : *written)
            std::cout << line << "\n";
        return 0;
    }

    options.artifacts = !artifacts.empty() ? artifacts
                        : !bundle.empty()  ? bundle + "/failures"
                                           : "pxconform-failures";
    const bool tty = ::isatty(STDERR_FILENO) && !quiet;
    if (tty)
        options.progress = [](std::size_t i, std::size_t n, const std::string& c,
                              const std::string& e) {
            std::cerr << "\r\033[K[" << i + 1 << "/" << n << "] " << c << " on " << e << std::flush;
        };
    std::cout << "pxconform " << px::conformance::version_text() << ": suite " << suite->root
              << " (" << suite->cases.size() << " cases, xxh3-64 " << suite->hash << ")\n";
    auto run = px::conformance::run_suite(*suite, options);
    if (tty) std::cerr << "\r\033[K";
    if (!run) {
        std::cerr << "pxconform: " << run.error().message << "\n";
        return 1;
    }
    for (const px::conformance::Executor& e : run->executors)
        std::cout << "  executor: " << e.name << "\n";
    std::cout << px::conformance::summary_text(*suite, *run);

    bool ok = true;
    if (!junit.empty()) ok &= write_text(junit, px::conformance::junit_xml(*suite, *run));
    if (!json.empty()) ok &= write_text(json, px::conformance::json_report(*suite, *run));
    if (!bundle.empty()) {
        if (auto written = px::conformance::write_bundle(*suite, *run, bundle); !written) {
            std::cerr << "pxconform: " << written.error().message << "\n";
            ok = false;
        } else {
            std::cout << "bundle written to " << bundle << "\n";
        }
    }
    return ok && run->failed == 0 && run->validation.empty() ? 0 : 1;
}
