// pxbench on this machine's first device (lavapipe in CI): the smoke preset runs every path and
// variant, verifies every result and writes a complete JSON report (never a timing check).
#include "gpu_support.hpp"

#include "command_runner.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

TEST_CASE("pxbench --device 0 --preset smoke --json writes every figure", "[gpu][pxbench]") {
    pxtest::gpu::require_validation_layer();
    const pxtest::CommandRunner pxbench(pxtest::tool_path("pxbench"), "pxbench_test");
    REQUIRE(pxbench.tool_exists());
    const std::string json = (pxbench.dir() / "out.json").string();
    const auto run = pxbench.run("--device 0 --preset smoke --min-samples 3 --json " + json,
                                 "PXVM_CACHE_DIR=" + pxbench.dir().string());
    INFO(run.out << run.err);
    REQUIRE(run.exit_code == 0); // every result verified
    std::ifstream file(json);
    const nlohmann::json doc = nlohmann::json::parse(file);
    CHECK(doc["schema"] == 2);
    CHECK(doc["tool"] == "pxbench");
    for (const char* key : {"pxvm", "git", "git_dirty", "host", "date", "preset", "mode",
                            "sampling", "devices", "results"})
        CHECK(doc.contains(key));
    REQUIRE(doc["devices"].size() == 1);
    const nlohmann::json& device = doc["devices"][0];
    for (const char* key :
         {"name", "vendor_id", "device_id", "driver", "api", "pipeline_cache_uuid", "subgroup_size",
          "cooperative_matrix_nv_shapes", "variants"})
        CHECK(device.contains(key));
    std::set<std::string> paths, workloads;
    for (const nlohmann::json& r : doc["results"]) {
        INFO(r.dump());
        CHECK(r["error"] == "");
        CHECK(r["verified"] == true);
        CHECK(r["matches"] == true);
        CHECK(r["gpu_ms"]["samples"].size() >= 3);
        CHECK(r["gpu_ms"]["median"].get<double>() > 0);
        CHECK(r["gpu_ms"]["min"].get<double>() <= r["gpu_ms"]["median"].get<double>());
        for (const char* key : {"mean", "stddev", "relative_stddev"})
            CHECK(r["gpu_ms"].contains(key));
        CHECK_FALSE(r["check"].get<std::string>().empty());
        for (const char* stage : {"png_decode", "upload_host", "upload_gpu", "program_gpu_median",
                                  "readback_host", "readback_gpu", "verify"})
            CHECK(r["stages_ms"].contains(stage));
        CHECK(r["stages_ms"]["png_decode"].get<double>() >= 0);
        paths.insert(r["path"].get<std::string>() + " " + r["variant"].get<std::string>());
        workloads.insert(r["workload"].get<std::string>());
    }
    CHECK(paths.count("interpreter "));
    CHECK(paths.count("kernels portable"));
    CHECK(workloads.size() >= 10);
    CHECK_THAT(run.out, Catch::Contains("% of copy")); // memory-bound figures against the copy
}

TEST_CASE("pxbench --device all benchmarks every device in turn", "[gpu][pxbench]") {
    pxtest::gpu::require_validation_layer();
    const pxtest::CommandRunner pxbench(pxtest::tool_path("pxbench"), "pxbench_all");
    REQUIRE(pxbench.tool_exists());
    const std::string json = (pxbench.dir() / "all.json").string();
    const auto run = pxbench.run("--device all --preset smoke --only dot_rgb --json " + json,
                                 "PXVM_CACHE_DIR=" + pxbench.dir().string());
    INFO(run.out << run.err);
    REQUIRE(run.exit_code == 0);
    std::ifstream file(json);
    const nlohmann::json doc = nlohmann::json::parse(file);
    px::vk::Runtime runtime = pxtest::gpu::make_runtime();
    std::size_t usable = 0;
    for (const px::vk::DeviceInfo& d : runtime.devices())
        usable += d.usable();
    CHECK(doc["devices"].size() == usable);
    std::set<std::string> devices;
    for (const nlohmann::json& r : doc["results"])
        devices.insert(r["device"].get<std::string>());
    CHECK(devices.size() == usable);
}
