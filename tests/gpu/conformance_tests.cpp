// The conformance runner on this machine's devices (lavapipe in CI), validation layer on: every
// path and variant runs a case, --device all adds the reference and ends with one agreement
// group, and per-device expectations turn a failure into an expected one and report a stale one.
#include "gpu_support.hpp"

#include "program_builder.hpp"

#include "pxvm/conformance.hpp"
#include "pxvm/reference_interpreter.hpp"

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace px::conformance;

namespace {

px::Image program() {
    pxtest::ProgramWriter b = pxtest::tiny_network();
    return b.image;
}

px::Image reference_result(px::Image image) {
    px::run_reference(image);
    return image;
}

} // namespace

TEST_CASE("pxconform runs every path and variant and lists known failures", "[gpu][conformance]") {
    pxtest::gpu::require_validation_layer();
    const fs::path dir = pxtest::gpu::temp_dir("conformance-suite");
    REQUIRE(px::save_png(program(), (dir / "net.pxi").string()));
    REQUIRE(px::save_png(reference_result(program()), (dir / "net.golden.png").string()));
    px::Image wrong = reference_result(program());
    wrong.set_pixel(0, 7, {1, 2, 3, 4});
    REQUIRE(px::save_png(program(), (dir / "known.pxi").string()));
    REQUIRE(px::save_png(wrong, (dir / "known.golden.png").string()));

    RunOptions options;
    options.device = "all";
    options.validate = true;
    options.artifacts = (dir / "failures").string();
    auto suite = load_suite(dir.string());
    REQUIRE(suite);
    auto run = run_suite(*suite, options);
    if (!run) FAIL(run.error().message);
    REQUIRE(run->executors.size() >= 3); // the reference, a device's interpreter and kernels
    CHECK(run->executors[0].name == "reference");
    CHECK(run->validation.empty());
    // "known" fails everywhere until expectations.json says why on this device.
    CHECK(run->failed == run->executors.size());
    CHECK(run->passed == run->executors.size());
    CHECK_THAT(agreement_text(*suite, *run), Catch::Contains("every executor agrees"));

    REQUIRE_FALSE(run->devices.empty());
    const std::uint32_t vendor = run->devices[0].vendor_id;
    std::ofstream(dir / "expectations.json")
        << R"({"known_failures": [)"
        << R"({"vendor_id": )" << vendor << R"(, "case": "known", "reason": "golden off by one"},)"
        << R"({"vendor_id": )" << vendor
        << R"(, "case": "net", "path": "kernels", "reason": "x"}]})";
    suite = load_suite(dir.string());
    REQUIRE(suite);
    REQUIRE(suite->known.size() == 2);
    run = run_suite(*suite, options);
    REQUIRE(run);
    std::size_t stale = 0, expected = 0, failed_reference = 0;
    for (const CaseResult& r : run->results) {
        stale += r.stale_expectation;
        expected += r.outcome == Outcome::expected_failure;
        failed_reference += r.outcome == Outcome::fail && r.executor_index == 0;
    }
    CHECK(failed_reference == 1); // the reference has no device: no expectation applies
    CHECK(expected == run->executors.size() - 1);
    CHECK(stale >= 1); // net passes on the kernels path although listed
    CHECK_THAT(summary_text(*suite, *run), Catch::Contains("STALE net"));
    CHECK(run->validation.empty()); // the runner's own validation layer reported nothing
}
