// Shared by the GPU tests: a Runtime with the validation layer on (the test exits with the skip
// code when the layer is not installed), a private pipeline-cache directory, and the check that
// the layer reported nothing.
#pragma once

#include "pxvm/program.hpp"
#include "pxvm/verification.hpp"
#include "pxvm/vulkan/runtime.hpp"

#include <catch2/catch.hpp>
#include <vulkan/vulkan.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

namespace pxtest::gpu {

/// The exit code of a skipped GPU test binary. CTest recognises the skip by the SKIPPED message
/// (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), not by this code.
inline constexpr int SKIP_EXIT_CODE = 4;

/// Exits with SKIP_EXIT_CODE and the reason when VK_LAYER_KHRONOS_validation is not installed:
/// every GPU test runs with validation on and fails on any message, so without the layer none of
/// them can be trusted.
inline void require_validation_layer() {
    std::uint32_t count = 0;
    vkEnumerateInstanceLayerProperties(&count, nullptr);
    std::vector<VkLayerProperties> layers(count);
    vkEnumerateInstanceLayerProperties(&count, layers.data());
    for (std::uint32_t i = 0; i < count; ++i)
        if (std::strcmp(layers[i].layerName, "VK_LAYER_KHRONOS_validation") == 0) return;
    std::fprintf(stderr,
                 "SKIPPED: VK_LAYER_KHRONOS_validation is not installed (Debian: apt install "
                 "vulkan-validationlayers); the GPU tests need it\n");
    std::exit(SKIP_EXIT_CODE);
}

/// A fresh directory under the system temp directory, removed again when the process exits.
inline std::string temp_dir(const std::string& name) {
    struct Cleanup {
        std::vector<std::filesystem::path> dirs;
        ~Cleanup() {
            std::error_code ignored;
            for (const auto& dir : dirs)
                std::filesystem::remove_all(dir, ignored);
        }
    };
    static Cleanup cleanup;
    const auto dir = std::filesystem::temp_directory_path() /
                     ("pxvm-gpu-tests-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    cleanup.dirs.push_back(dir);
    return dir.string();
}

/// Validation on, pipeline caches in a private directory, the given upload mode.
inline px::vk::RuntimeOptions
test_options(const std::string& name = "cache",
             px::vk::UploadMode upload = px::vk::UploadMode::automatic) {
    px::vk::RuntimeOptions options;
    options.validate = true;
    options.cache_dir = temp_dir(name);
    options.upload = upload;
    return options;
}

inline px::vk::Runtime make_runtime(const px::vk::RuntimeOptions& options = test_options()) {
    require_validation_layer();
    auto runtime = px::vk::Runtime::create(options);
    if (!runtime) FAIL(runtime.error().message);
    REQUIRE(runtime->validation_enabled());
    return std::move(runtime.value());
}

inline px::vk::Device
open_device(px::vk::Runtime& runtime,
            const px::vk::DeviceSelector& selector = px::vk::DeviceSelector::preferred()) {
    auto device = runtime.open(selector);
    if (!device) FAIL(device.error().message);
    return std::move(device.value());
}

/// Sets (or with nullptr unsets) an environment variable for one scope, then restores it.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) previous_ = old;
        had_ = std::getenv(name) != nullptr;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~ScopedEnv() {
        if (had_)
            ::setenv(name_.c_str(), previous_.c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_, previous_;
    bool had_ = false;
};

/// Fails the test when the validation layer reported any warning or error.
inline void check_no_validation_messages(const px::vk::Runtime& runtime) {
    const px::vk::ValidationMessages messages = runtime.validation_messages();
    for (const std::string& text : messages.texts)
        UNSCOPED_INFO(text);
    CHECK(messages.errors == 0);
    CHECK(messages.warnings == 0);
}

/// What a differential corpus reached: the fault codes the reference ended with and the opcodes
/// it executed; check() fails unless every fault code and opcode was reached.
struct ProtocolCoverage {
    std::map<std::uint32_t, int> faults, opcodes;

    void add(const px::Image& program, const px::Verification& v) {
        ++faults[v.reference.fault.code];
        const px::Plan plan = px::plan_program(program);
        for (std::uint32_t i = 0; i < v.reference.executed; ++i)
            ++opcodes[plan.steps[i].instruction.opcode];
    }
    void check() {
        for (std::uint32_t code = 1; code < px::FAULT_COUNT; ++code) {
            INFO("fault " << px::fault_name(code));
            CHECK(faults[code] > 0);
        }
        for (const px::InstructionInfo& info : px::instruction_table()) {
            if (info.opcode == px::OP_HALT) continue; // a halt ends a run: never counted
            INFO("opcode " << info.name);
            CHECK(opcodes[info.opcode] > 0);
        }
    }
};

} // namespace pxtest::gpu
