// The differential test: hundreds of generated programs (fixed seeds, plus one fresh seed per run,
// printed so a failure can be replayed) run through the GPU interpreter and the reference
// interpreter; every pixel and the run status must agree, and the corpus must reach every opcode
// and every fault code. PXVM_DIFF_PROGRAMS sets the number of fixed seeds (default 300);
// PXVM_DIFF_SEED replays one seed instead of a fresh one.
#include "gpu_support.hpp"

#include "command_runner.hpp"
#include "program_generator.hpp"

#include "pxvm/program.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/run_program.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>

namespace {

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* text = std::getenv(name);
    return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}

} // namespace

TEST_CASE("differential: generated programs give the reference's pixels and status",
          "[gpu][differential]") {
    px::vk::Runtime runtime = pxtest::gpu::make_runtime();
    px::vk::Device device = pxtest::gpu::open_device(runtime);

    const std::uint64_t fixed = env_number("PXVM_DIFF_PROGRAMS", 300);
    const std::uint64_t fresh = env_number("PXVM_DIFF_SEED", std::random_device{}() | 1ull << 32);
    std::cout << "differential test on " << device.info().name << ": seeds 1.." << fixed
              << " and fresh seed " << fresh << " (replay with PXVM_DIFF_SEED=" << fresh << ")\n";
    std::vector<std::uint64_t> seeds;
    for (std::uint64_t seed = 1; seed <= fixed; ++seed)
        seeds.push_back(seed);
    seeds.push_back(fresh);

    pxtest::gpu::ProtocolCoverage coverage;
    std::uint64_t mismatches = 0;
    for (const std::uint64_t seed : seeds) {
        const pxtest::GeneratedProgram program = pxtest::generate_program(seed);
        px::Image actual = program.image;
        auto run = device.run_interpreter(actual);
        if (!run) FAIL(program.summary << ": " << run.error().message);
        const px::Verification v = px::verify_against_reference(program.image, actual, run->status);
        if (!v.matches()) {
            ++mismatches;
            UNSCOPED_INFO(program.summary << ": " << px::describe(v.difference) << "; "
                                          << v.status_mismatch);
        }
        coverage.add(program.image, v);
    }
    CHECK(mismatches == 0);
    if (fixed >= 300) coverage.check(); // the corpus reaches the whole protocol
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("pxrun on the default device verifies against the reference", "[gpu][cli]") {
    pxtest::gpu::require_validation_layer();
    const pxtest::CommandRunner pxrun(pxtest::tool_path("pxrun"), "pxrun_gpu_test");
    REQUIRE(pxrun.tool_exists());
    const std::string env = "PXVM_CACHE_DIR=" + pxrun.dir().string();
    for (const char* asset : {"dot_test.pxi", "tensor_demo.pxi"})
        for (const char* path : {"", "--path kernels ", "--path interpreter "}) {
            const auto result = pxrun.run(std::string("--validate ") + path +
                                              PXVM_SOURCE_DIR "/assets/" + std::string(asset),
                                          env);
            INFO(path << asset << ": " << result.out << result.err);
            CHECK(result.exit_code == 0);
            CHECK_THAT(result.out, Catch::Contains(std::string(path) == "--path interpreter "
                                                       ? "(Vulkan, GPU interpreter)"
                                                       : "(Vulkan, scheduled kernels"));
            CHECK_THAT(result.out,
                       Catch::Contains("verified: identical to the reference interpreter"));
            CHECK(result.err.empty()); // no validation message, no mismatch
        }
    for (const char* variant : {"portable", "int-dot", "coopmat-nv"}) {
        const auto result = pxrun.run(std::string("--variant ") + variant +
                                          " " PXVM_SOURCE_DIR "/assets/tensor_demo.pxi",
                                      env);
        INFO(result.out << result.err);
        if (result.exit_code == 1) { // a variant this device or build cannot run is refused
            CHECK_THAT(result.err, Catch::Contains(variant));
            continue;
        }
        CHECK(result.exit_code == 0);
        CHECK_THAT(result.out, Catch::Contains(std::string(" ") + variant));
        CHECK_THAT(result.out, Catch::Contains("verified: identical to the reference interpreter"));
    }
    // Several programs on one device (opened once), each verified, the validation layer silent.
    const auto several =
        pxrun.run("--validate " PXVM_SOURCE_DIR "/assets/dot_test.pxi " PXVM_SOURCE_DIR
                  "/assets/tensor_demo.pxi " PXVM_SOURCE_DIR "/assets/dot_test.pxs",
                  env);
    INFO(several.out << several.err);
    CHECK(several.exit_code == 0);
    std::size_t verified = 0;
    for (std::size_t at = several.out.find("verified: identical"); at != std::string::npos;
         at = several.out.find("verified: identical", at + 1))
        ++verified;
    CHECK(verified == 3);
    CHECK(several.err.empty());
    const auto missing = pxrun.run("--device 99 " PXVM_SOURCE_DIR "/assets/dot_test.pxi", env);
    CHECK(missing.exit_code == 1);
    CHECK_THAT(missing.err, Catch::Contains("99"));
    // A check the reference cannot afford is refused before the device runs; --no-verify runs.
    const auto unaffordable =
        pxrun.run("--validate --max-work 10 " PXVM_SOURCE_DIR "/assets/tensor_demo.pxi", env);
    CHECK(unaffordable.exit_code == 1);
    CHECK_THAT(unaffordable.err, Catch::Contains("tensor_demo.pxi: cannot check the result: the "
                                                 "program needs "));
    CHECK(unaffordable.out.empty());
    CHECK(pxrun.run("--no-verify --max-work 10 " PXVM_SOURCE_DIR "/assets/tensor_demo.pxi", env)
              .exit_code == 0);
    // After an unverified device run, --trace's and --save-reference's reference runs keep to it.
    const std::string trace = (pxrun.dir() / "trace").string(),
                      saved = (pxrun.dir() / "reference.pxi").string();
    const auto traced = pxrun.run("--no-verify --max-work 10 --trace " + trace +
                                      " " PXVM_SOURCE_DIR "/assets/tensor_demo.pxi",
                                  env);
    CHECK(traced.exit_code == 1);
    CHECK_THAT(traced.err, Catch::Contains("tensor_demo.pxi: --trace: the program needs "));
    const auto kept = pxrun.run("--no-verify --max-work 10 --save-reference " + saved +
                                    " " PXVM_SOURCE_DIR "/assets/tensor_demo.pxi",
                                env);
    CHECK(kept.exit_code == 1);
    CHECK_THAT(kept.err, Catch::Contains("tensor_demo.pxi: --save-reference: the program needs "));
    CHECK_FALSE(std::filesystem::exists(saved));
}

TEST_CASE("pxrun --json on a device: path, variant, verification and timings", "[gpu][cli]") {
    pxtest::gpu::require_validation_layer();
    const pxtest::CommandRunner pxrun(pxtest::tool_path("pxrun"), "pxrun_json_test");
    const std::string env = "PXVM_CACHE_DIR=" + pxrun.dir().string();
    const auto r = pxrun.run("--validate --json " PXVM_SOURCE_DIR "/assets/tensor_demo.pxi", env);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["path"] == "kernels");
    CHECK(
        (j["variant"] == "portable" || j["variant"] == "int-dot" || j["variant"] == "coopmat-nv"));
    CHECK(j["verification"]["matches"] == true);
    CHECK_THAT(j["verification"]["method"].get<std::string>(), Catch::Contains("exact"));
    CHECK(j["timings_ms"]["gpu_dispatches"].size() >= 2);
    CHECK(j["validation"]["errors"] == 0);
}

TEST_CASE("pxrun under injected faults: the file and the failure named, exit 1, nothing written",
          "[gpu][cli][inject]") {
    pxtest::gpu::require_validation_layer();
    const pxtest::CommandRunner pxrun(pxtest::tool_path("pxrun"), "pxrun_inject_test");
    REQUIRE(pxrun.tool_exists());
    const std::string cache = "PXVM_CACHE_DIR=" + pxrun.dir().string();
    const std::string demo = PXVM_SOURCE_DIR "/assets/tensor_demo.pxi";
    const std::string out = (pxrun.dir() / "keep.pxi").string();
    pxtest::write_text(out, "precious");
    struct Case {
        const char* inject;
        const char* says;
    };
    for (const Case c :
         {Case{"allocation:3", "cannot allocate"}, Case{"timeout", "did not finish a run within"},
          Case{"device-lost", "VK_ERROR_DEVICE_LOST"}}) {
        INFO(c.inject);
        const std::string env = cache + " PXVM_INJECT_FAULT=" + c.inject;
        const auto program = pxrun.run("--validate " + demo + " -o " + out, env);
        INFO(program.err);
        CHECK(program.exit_code == 1);
        CHECK_THAT(program.err, Catch::StartsWith("pxrun: " + demo + ": "));
        CHECK_THAT(program.err, Catch::Contains(c.says));
        CHECK_THAT(program.err, Catch::Contains("(injected: PXVM_INJECT_FAULT)"));
        CHECK_THAT(program.err,
                   !Catch::Contains("pxvm: validation")); // no leaked object at teardown
        CHECK(pxtest::read_text(out) == "precious");
        // A cartridge's session meets the same failure and says so for its file.
        const auto cartridge =
            pxrun.run("--validate " PXVM_SOURCE_DIR "/assets/kjv.pxa --prompt \"In the\" "
                      "--tokens 4",
                      env);
        INFO(cartridge.err);
        CHECK(cartridge.exit_code == 1);
        CHECK_THAT(cartridge.err, Catch::Contains("kjv.pxa"));
        CHECK_THAT(cartridge.err, Catch::Contains("(injected: PXVM_INJECT_FAULT)"));
        CHECK_THAT(cartridge.err, !Catch::Contains("pxvm: validation"));
    }
    const auto bad = pxrun.run(demo, cache + " PXVM_INJECT_FAULT=sometimes");
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.err, Catch::Contains("PXVM_INJECT_FAULT='sometimes' is not"));
}
