// The golden-image conformance suite (docs/CONFORMANCE.md): a suite is a directory in which every
// NAME.pxi or NAME.pxs with a NAME.golden.png beside it is a case (an optional NAME.json says what
// it covers and expects). A run takes every case through every selected executor (the reference
// interpreter, and each Vulkan device's interpreter and kernel variants), compares the result
// with the golden pixel for pixel, and reports pass, fail, skipped or expected failure, with an
// agreement matrix of the executors.
//
//     auto suite = px::conformance::load_suite("tests/conformance");
//     px::conformance::RunOptions options;
//     options.device = "all";
//     auto run = px::conformance::run_suite(*suite, options);
//     std::cout << px::conformance::summary_text(*suite, *run);
#pragma once

#include "pxvm/assembler.hpp"
#include "pxvm/image.hpp"
#include "pxvm/result.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace px::conformance {

/// One case of a suite.
struct Case {
    std::string name;    ///< path below the suite root without extension: "opcodes/matmul_i8"
    std::string program; ///< the .pxi or .pxs file
    std::string golden;  ///< NAME.golden.png (may not exist yet: a failure, never created here)
    std::string covers;  ///< what the case proves (NAME.json), or empty
    bool expect_mismatch = false;       ///< a negative case: the golden is wrong on purpose
    std::optional<std::uint32_t> fault; ///< the fault code the run must end with (NAME.json)
    std::vector<std::string> needs;     ///< device features the case needs (NAME.json)
};

/// A failure known on some devices (the suite's expectations.json): a device whose vendor id,
/// and device id and driver version prefix where given, match, on the case (and executor path
/// and variant where given), is expected to fail for `reason`.
struct KnownFailure {
    std::uint32_t vendor_id = 0;
    std::optional<std::uint32_t> device_id;
    std::string driver_prefix; ///< empty: every driver
    std::string case_name;
    std::string path, variant; ///< empty: every path, every variant
    std::string reason;
};

struct Suite {
    std::string root;
    std::vector<Case> cases;         ///< sorted by name
    std::vector<KnownFailure> known; ///< from root/expectations.json, if present
    std::string hash;                ///< XXH3-64 of every file's path and bytes, hex
};

/// Reads a suite directory: every case, its NAME.json, the expectations. Errors name the file
/// and the problem (malformed JSON, an unknown "expect" or fault name, a need pxVM does not know).
/// `programs_without_goldens` (for update_goldens) takes every program as a case, golden or not.
Result<Suite> load_suite(const std::string& root, bool programs_without_goldens = false);

/// A case's program: the image, and the results its source promises by hand (`.expect`).
struct CaseProgram {
    Image image;
    std::vector<Expectation> expectations;
};

/// The program of a case (a .pxs is assembled; a .pxi has no expectations).
Result<CaseProgram> load_case_program(const Case& c);
/// The program image of a case.
Result<Image> load_program(const Case& c);

/// Writes every case's golden from the reference interpreter. Negative cases keep theirs (they
/// are wrong on purpose); a negative case without a golden is an error. Returns one line per
/// golden written or kept.
Result<std::vector<std::string>> update_goldens(const Suite& suite);

/// Which executors a run uses.
struct RunOptions {
    /// "cpu" (the reference interpreter alone), "auto" (the preferred device), a device index,
    /// a part of a device name, or "all" (the reference and every device).
    std::string device = "auto";
    std::string path = "all"; ///< "interpreter", "kernels" or "all"
    std::string variant =
        "all";             ///< a kernel variant ("portable", "int-dot", "coopmat-nv") or "all"
    bool validate = false; ///< Khronos validation layer on (any message fails the run)
    /// Where a failure writes actual.png and diff.png (one folder per failure); empty: nowhere.
    std::string artifacts;
    /// Called before each case runs: (index, count, case, executor name).
    std::function<void(std::size_t, std::size_t, const std::string&, const std::string&)> progress;
};

/// One executor: the reference, or a device's interpreter or kernel variant.
struct Executor {
    std::string name;   ///< "reference", "[0] NVIDIA H200 interpreter", "[0] ... kernels int-dot"
    std::string device; ///< "cpu" or the device name
    std::optional<std::uint32_t> device_index;
    std::string path;    ///< "reference", "interpreter" or "kernels"
    std::string variant; ///< the kernel variant, or empty
};

/// A device's fingerprint, for reports and bundles.
struct DeviceFingerprint {
    std::uint32_t index = 0;
    std::string name;
    std::uint32_t vendor_id = 0, device_id = 0;
    std::string driver, api, pipeline_cache_uuid, driver_name, driver_info;
};

enum class Outcome { pass, fail, skipped, expected_failure };
const char* to_string(Outcome outcome); ///< "pass", "fail", "skipped", "expected failure"

struct CaseResult {
    std::size_t case_index = 0, executor_index = 0;
    Outcome outcome = Outcome::fail;
    /// Why it failed, was skipped or was expected to fail; for a mismatch the first differing
    /// pixel and the count ("first difference at (3, 7): expected ..., actual ...; 5 pixels
    /// differ").
    std::string detail;
    /// A known failure that passed: the expectation is stale (reported, not a failure).
    bool stale_expectation = false;
    std::optional<std::uint64_t> result_hash; ///< XXH3-64 of the image and status, when run
    std::string artifacts;                    ///< the folder with actual.png and diff.png
    double ms = 0;
};

struct SuiteRun {
    std::vector<Executor> executors;
    std::vector<DeviceFingerprint> devices;
    std::vector<CaseResult> results;
    std::size_t passed = 0, failed = 0, skipped = 0, expected_failures = 0;
    std::string validation; ///< validation-layer messages, when any (a failure)
};

/// Runs every case on every selected executor. Errors are about the run itself (no such device,
/// no Vulkan for a device run, a bad path or variant); case failures are results.
Result<SuiteRun> run_suite(const Suite& suite, const RunOptions& options);

/// One line per failure, the stale expectations, the agreement matrix (with more than one
/// executor), then the final line "N passed, N failed, N skipped".
std::string summary_text(const Suite& suite, const SuiteRun& run);

/// The agreement matrix: for each pair of executors, on how many cases both ran they produced
/// identical pixels and status; a line per group of executors that agree on every case.
std::string agreement_text(const Suite& suite, const SuiteRun& run);

/// JUnit XML (one testsuite per executor, one testcase per case).
std::string junit_xml(const Suite& suite, const SuiteRun& run);
/// Every result, the executors, the devices' fingerprints, pxVM's version and the suite's hash.
std::string json_report(const Suite& suite, const SuiteRun& run);
/// Writes the bundle a vendor submits: pxconform.json, pxconform.junit.xml, fingerprint.json and
/// the failures' images, into `dir` (created).
Result<void> write_bundle(const Suite& suite, const SuiteRun& run, const std::string& dir);

/// pxVM's version, "0.1.0 (git 4a33d2c, dirty)", as configured.
std::string version_text();

} // namespace px::conformance
