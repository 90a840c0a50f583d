// The Vulkan runtime on the machine's devices (lavapipe in CI), validation layer on: device order
// and selection, the feature report, size limits, dispatches with barriers, timestamps, the
// pipeline cache, the capability check, timeouts and the no-driver error.
#include "gpu_support.hpp"

#include <nlohmann/json.hpp>

#include "pxvm/assembler.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/spirv_module.hpp"
#include "pxvm/vulkan/device_report.hpp"
#include "pxvm/vulkan/pipeline_cache.hpp"
#include "pxvm/vulkan/scheduler.hpp"
#include "pxvm/vulkan/spirv_requirements.hpp"

#include "affine.spv.h"
#include "big_push.spv.h"
#include "int64.spv.h"
#include "spin.spv.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iterator>

using px::Image;
using px::vk::Device;
using px::vk::DeviceSelector;
using px::vk::Dispatch;
using px::vk::Runtime;

namespace {

std::vector<std::uint32_t> words(const std::uint32_t* begin, std::size_t count) {
    return {begin, begin + count};
}
template <std::size_t N> std::vector<std::uint32_t> words(const std::uint32_t (&spv)[N]) {
    return words(spv, N);
}

struct AffinePush {
    std::uint32_t count, mul, add;
};

Image gradient(std::uint32_t width, std::uint32_t height) {
    Image image(width, height);
    for (std::uint32_t y = 0; y < height; ++y)
        for (std::uint32_t x = 0; x < width; ++x)
            image.set_pixel(x, y,
                            {std::uint8_t(x + 3 * y), std::uint8_t(y), std::uint8_t(x ^ y), 200});
    return image;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("devices are listed in the stable order, the same on every run", "[gpu][devices]") {
    Runtime runtime = pxtest::gpu::make_runtime();
    const auto& devices = runtime.devices();
    REQUIRE(!devices.empty());
    for (std::uint32_t i = 0; i < devices.size(); ++i) {
        CHECK(devices[i].index == i);
        if (i > 0) CHECK_FALSE(px::vk::device_order_less(devices[i], devices[i - 1]));
    }
    Runtime again = pxtest::gpu::make_runtime();
    REQUIRE(again.devices().size() == devices.size());
    for (std::size_t i = 0; i < devices.size(); ++i) {
        CHECK(again.devices()[i].name == devices[i].name);
        CHECK(again.devices()[i].device_uuid == devices[i].device_uuid);
    }
    // The preferred device is the first usable one, which the order puts first by type.
    auto preferred = runtime.select(DeviceSelector::preferred());
    REQUIRE(preferred);
    for (std::uint32_t i = 0; i < *preferred; ++i)
        CHECK_FALSE(devices[i].usable());
    pxtest::gpu::check_no_validation_messages(runtime);
    pxtest::gpu::check_no_validation_messages(again);
}

TEST_CASE("devices are selected by index, by name substring, or by default", "[gpu][devices]") {
    Runtime runtime = pxtest::gpu::make_runtime();
    const auto& devices = runtime.devices();

    SECTION("the selector text") {
        CHECK(DeviceSelector::parse("").kind == DeviceSelector::Kind::preferred);
        CHECK(DeviceSelector::parse("auto").kind == DeviceSelector::Kind::preferred);
        CHECK(DeviceSelector::parse("2").kind == DeviceSelector::Kind::index);
        CHECK(DeviceSelector::parse("2").index == 2);
        CHECK(DeviceSelector::parse("H100").kind == DeviceSelector::Kind::name);
        CHECK(DeviceSelector::parse("H100").name == "H100");
    }
    SECTION("by index") {
        auto index = runtime.select(DeviceSelector::by_index(0));
        REQUIRE(index);
        CHECK(*index == 0);
        Device device = pxtest::gpu::open_device(runtime, DeviceSelector::by_index(0));
        CHECK(device.info().name == devices[0].name);
    }
    SECTION("by a case-insensitive name substring") {
        const bool has_lavapipe = std::any_of(devices.begin(), devices.end(), [](const auto& d) {
            return contains(d.name, "llvmpipe");
        });
        if (!has_lavapipe) {
            WARN("no lavapipe device here: name selection is checked with device 0's name");
        }
        const std::string wanted = has_lavapipe ? "LLVMpipe" : devices[0].name;
        auto index = runtime.select(DeviceSelector::parse(wanted));
        REQUIRE(index);
        if (has_lavapipe) {
            CHECK(contains(devices[*index].name, "llvmpipe"));
            Device device = pxtest::gpu::open_device(runtime, DeviceSelector::by_name("llvmpipe"));
            CHECK(contains(device.info().name, "llvmpipe"));
        }
    }
    SECTION("a bad index is an error that lists the devices") {
        auto index = runtime.select(DeviceSelector::by_index(std::uint32_t(devices.size()) + 5));
        REQUIRE_FALSE(index);
        CHECK(contains(index.error().message, "no device " + std::to_string(devices.size() + 5)));
        CHECK(contains(index.error().message, devices[0].name));
        auto opened = runtime.open(DeviceSelector::parse("99999999999999999999"));
        REQUIRE_FALSE(opened);
        CHECK(contains(opened.error().message, "no device"));
    }
    SECTION("an unknown name is an error that lists the devices") {
        auto index = runtime.select(DeviceSelector::by_name("no such gpu"));
        REQUIRE_FALSE(index);
        CHECK(contains(index.error().message, "no device name contains 'no such gpu'"));
        CHECK(contains(index.error().message, devices[0].name));
    }
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("the feature report is consistent", "[gpu][features]") {
    Runtime runtime = pxtest::gpu::make_runtime();
    for (const px::vk::DeviceInfo& d : runtime.devices()) {
        INFO(d.name);
        CHECK(!d.name.empty());
        CHECK(d.api_version >= VK_API_VERSION_1_0);
        CHECK(!d.queue_families.empty());
        CHECK(!d.memory_heaps.empty());
        CHECK(!d.memory_types.empty());
        CHECK(std::is_sorted(d.extensions.begin(), d.extensions.end()));
        for (const auto& type : d.memory_types)
            CHECK(type.heap < d.memory_heaps.size());
        if (!d.usable()) continue;
        REQUIRE(d.compute_queue_family);
        CHECK(*d.compute_queue_family < d.queue_families.size());
        CHECK((d.queue_families[*d.compute_queue_family].flags & VK_QUEUE_COMPUTE_BIT) != 0);
        CHECK(d.largest_device_local_heap() > 0);
        CHECK(d.limits.max_storage_buffer_range >= 128u << 20); // Vulkan 1.3 minimum
        CHECK(d.limits.max_compute_work_group_invocations >= 128);
        CHECK(d.limits.max_compute_shared_memory_size >= 16384);
        CHECK(d.limits.max_push_constants_size >= 128);
        CHECK(d.features.subgroups.size >= 1);
        if (d.features.subgroups.size_control)
            CHECK(d.features.subgroups.min_size <= d.features.subgroups.max_size);
        // Extension features are only reported when the extension is advertised.
        if (d.features.cooperative_matrix_nv) CHECK(d.has_extension("VK_NV_cooperative_matrix"));
        if (d.features.cooperative_matrix_khr) CHECK(d.has_extension("VK_KHR_cooperative_matrix"));
        if (!d.features.cooperative_matrix_nv)
            CHECK(d.features.cooperative_matrix_nv_shapes.empty());
        for (const auto& s : d.features.cooperative_matrix_nv_shapes) {
            CHECK(s.m > 0);
            CHECK(s.a_type != "unknown");
        }
        const px::vk::ExecutionPaths paths = px::vk::execution_paths(d);
        CHECK(paths.interpreter);
        REQUIRE(!paths.kernel_variants.empty());
        CHECK(paths.kernel_variants.front().name == "portable");
        CHECK(paths.kernel_variants.front().available);
        CHECK_FALSE(paths.instruction_variants.empty());

        if (contains(d.name, "llvmpipe")) { // what lavapipe is known to have
            CHECK(d.type == VK_PHYSICAL_DEVICE_TYPE_CPU);
            CHECK(d.driver_name == "llvmpipe");
            CHECK(d.features.shader_int8);
            CHECK(d.features.shader_int64);
            CHECK(d.features.storage_buffer_8bit);
            CHECK(d.features.integer_dot_product.supported);
            CHECK_FALSE(d.features.cooperative_matrix_nv);
            CHECK(d.timestamp_valid_bits() > 0);
            CHECK(d.limits.max_storage_buffer_range == 128u << 20);
            REQUIRE(paths.kernel_variants.size() == 3);
            CHECK(paths.kernel_variants[1].name == "int-dot");
            CHECK(paths.kernel_variants[1].available);
            CHECK(paths.kernel_variants[2].name == "coopmat-nv");
            CHECK_FALSE(paths.kernel_variants[2].available); // no cooperative matrices
        }
    }
    const std::string text = px::vk::device_report_text(runtime.devices(), 0);
    CHECK(contains(text, runtime.devices()[0].name));
    CHECK(contains(text, "maxStorageBufferRange"));
    CHECK(contains(text, "interpreter"));
    const nlohmann::json json =
        nlohmann::json::parse(px::vk::device_report_json(runtime.devices(), 0));
    REQUIRE(json["devices"].size() == runtime.devices().size());
    CHECK(json["devices"][0]["name"] == runtime.devices()[0].name);
    CHECK(json["devices"][0]["limits"]["max_storage_buffer_range"] ==
          runtime.devices()[0].limits.max_storage_buffer_range);
    CHECK(json["preferred_device"] == 0);
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("an image larger than the largest storage buffer is refused", "[gpu][memory]") {
    Runtime runtime = pxtest::gpu::make_runtime();
    Device device = pxtest::gpu::open_device(runtime);
    const std::uint64_t limit = device.info().limits.max_storage_buffer_range;

    const px::vk::DeviceLimits& limits = device.info().limits;
    const std::uint64_t largest =
        std::min({limit, limits.max_memory_allocation_size, limits.max_buffer_size.value_or(limit),
                  device.info().largest_device_local_heap()});
    CHECK(device.check_image_fits(largest));
    CHECK_FALSE(device.check_image_fits(largest + 1));
    auto refused = device.check_image_fits(limit + 4, "image 1x2");
    REQUIRE_FALSE(refused);
    const std::string& message = refused.error().message;
    CHECK(contains(message, "image 1x2"));
    CHECK(contains(message, "maxStorageBufferRange"));
    CHECK(contains(message, std::to_string(limit) + " bytes"));
    CHECK(contains(message, std::to_string(limit + 4) + " bytes"));
    CHECK(refused.error().code == px::ErrorCode::unsupported); // a limit of the device

    // A whole run is refused before anything is allocated, and the image is left alone.
    if (limit < px::MAX_PIXELS * 4ull) {
        const std::uint32_t width = 8192;
        const auto height = std::uint32_t(limit / 4 / width + 1);
        Image image(width, height);
        image.set_pixel(0, 1, {1, 2, 3, 4});
        auto run = device.run_interpreter(image);
        REQUIRE_FALSE(run);
        CHECK(contains(run.error().message, "image 8192x" + std::to_string(height)));
        CHECK(contains(run.error().message, "maxStorageBufferRange"));
        CHECK(image.pixel(0, 1) == px::Pixel{1, 2, 3, 4});
    }
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("dispatches run in order with barriers between them, timed per stage", "[gpu][run]") {
    const auto mode = GENERATE(px::vk::UploadMode::automatic, px::vk::UploadMode::staging);
    INFO("upload mode " << px::vk::to_string(mode));
    Runtime runtime = pxtest::gpu::make_runtime(pxtest::gpu::test_options("cache", mode));
    Device device = pxtest::gpu::open_device(runtime);
    REQUIRE(device.add_kernel("test_affine", words(affine_spv)));

    const Image original = gradient(37, 29);
    const std::uint32_t count = 37 * 29 - 5; // the last 5 pixels stay as they are
    const std::uint32_t groups = (count + 63) / 64;
    const std::vector<Dispatch> dispatches = {
        Dispatch::with_push("test_affine", AffinePush{count, 3, 7}, {groups, 1, 1}),
        Dispatch::with_push("test_affine", AffinePush{count, 5, 250}, {groups, 1, 1}),
    };
    for (int repeat = 0; repeat < 2; ++repeat) { // the second run reuses buffers and pipelines
        Image image = original;
        auto run = device.run(dispatches, image);
        if (!run) FAIL(run.error().message);
        Image expected = original;
        for (std::uint32_t i = 0; i < count; ++i) {
            px::Pixel p = original.pixel(i % 37, i / 37);
            p.r = std::uint8_t((p.r * 3 + 7) * 5 + 250);
            expected.set_pixel(i % 37, i / 37, p);
        }
        const px::ImageDifference difference = px::compare_images(expected, image);
        INFO(px::describe(difference));
        CHECK(difference.count == 0);
        CHECK(run->status.executed == 2); // zeroed before the run, counted once per dispatch
        CHECK(run->status.fault_code == 0);
        REQUIRE(run->pipelines.size() == 1);
        CHECK(run->pipelines[0].kernel == "test_affine");
        CHECK(run->pipelines[0].created_in_this_call == (repeat == 0));

        const px::vk::StageTimings& t = run->timings;
        CHECK(t.host_total_ms > 0);
        CHECK(t.host_total_ms >= t.host_submit_wait_ms);
        if (mode == px::vk::UploadMode::staging) CHECK_FALSE(t.direct_upload);
        if (device.info().timestamp_valid_bits() > 0) {
            REQUIRE(t.gpu_execute_ms);
            CHECK(bool(t.gpu_upload_ms) == !t.direct_upload); // a direct upload has no GPU copy
            REQUIRE(t.gpu_readback_ms);
            CHECK(*t.gpu_execute_ms >= 0);
            REQUIRE(t.gpu_dispatch.size() == 2);
            CHECK(t.gpu_dispatch[0].ms + t.gpu_dispatch[1].ms == Approx(*t.gpu_execute_ms));
        } else {
            CHECK_FALSE(t.gpu_execute_ms);
        }
    }
    CHECK(contains(device.memory_strategy(), "readback"));
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("bad dispatches and kernels are errors that leave the image alone", "[gpu][run]") {
    Runtime runtime = pxtest::gpu::make_runtime();
    Device device = pxtest::gpu::open_device(runtime);
    REQUIRE(device.add_kernel("test_affine", words(affine_spv)));
    const Image original = gradient(8, 8);
    Image image = original;
    const auto run_one = [&](const Dispatch& dispatch) {
        return device.run(std::span(&dispatch, 1), image);
    };

    Dispatch no_such_kernel;
    no_such_kernel.kernel = "no_such_kernel";
    auto missing = run_one(no_such_kernel);
    REQUIRE_FALSE(missing);
    CHECK(contains(missing.error().message, "kernel 'no_such_kernel' is not built"));
    CHECK(missing.error().code == px::ErrorCode::unsupported);

    Dispatch big_push;
    big_push.kernel = "test_affine";
    big_push.push_constants.resize(132);
    auto too_much = run_one(big_push);
    REQUIRE_FALSE(too_much);
    CHECK(contains(too_much.error().message, "132 bytes of push constants"));

    auto zero_groups = run_one(Dispatch::with_push("test_affine", AffinePush{1, 1, 1}, {0, 1, 1}));
    REQUIRE_FALSE(zero_groups);
    CHECK(contains(zero_groups.error().message, "workgroups"));

    auto empty = device.run({}, image);
    REQUIRE_FALSE(empty);
    CHECK(contains(empty.error().message, "empty"));

    auto garbage = device.add_kernel("garbage", {1, 2, 3, 4, 5, 6});
    REQUIRE_FALSE(garbage);
    CHECK(contains(garbage.error().message, "not a SPIR-V module"));
    auto twice = device.add_kernel("test_affine", words(affine_spv));
    REQUIRE_FALSE(twice);
    CHECK(contains(twice.error().message, "already registered"));

    CHECK(image == original);
    CHECK_FALSE(device.failed());
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("kernels needing a feature or workgroup the device lacks are refused", "[gpu][spirv]") {
    Runtime runtime = pxtest::gpu::make_runtime();
    px::vk::DeviceInfo device = runtime.devices()[0];
    auto affine = px::read_spirv_module(words(affine_spv));
    REQUIRE(affine);
    REQUIRE(affine->local_size);
    CHECK(*affine->local_size == std::array<std::uint32_t, 3>{64, 1, 1});
    auto int64 = px::read_spirv_module(words(int64_spv));
    REQUIRE(int64);
    CHECK(std::count(int64->capabilities.begin(), int64->capabilities.end(), 11u) == 1);

    device.features.shader_int64 = false;
    device.name = "a device without int64";
    auto refused = px::vk::check_kernel_support("int64", words(int64_spv), device);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message ==
          "kernel 'int64' needs shaderInt64 (SPIR-V capability Int64), which a device without "
          "int64 lacks");
    CHECK(px::vk::check_kernel_support("affine", words(affine_spv), device));

    device.limits.max_compute_work_group_invocations = 32;
    auto too_wide = px::vk::check_kernel_support("affine", words(affine_spv), device);
    REQUIRE_FALSE(too_wide);
    CHECK(contains(too_wide.error().message, "64x1x1"));
    CHECK(contains(too_wide.error().message, "maxComputeWorkGroupInvocations 32"));
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("the pipeline cache is saved per device and loaded by the next open", "[gpu][cache]") {
    const px::vk::RuntimeOptions options = pxtest::gpu::test_options("pipeline-cache");
    Runtime runtime = pxtest::gpu::make_runtime(options);
    std::string path;
    {
        Device device = pxtest::gpu::open_device(runtime);
        const px::vk::PipelineCacheStatus& cache = device.pipeline_cache();
        REQUIRE(cache.enabled);
        CHECK_FALSE(cache.loaded);
        CHECK(cache.path ==
              options.cache_dir + "/" + px::vk::pipeline_cache_file_name(device.info()));
        path = cache.path;
        REQUIRE(device.add_kernel("test_affine", words(affine_spv)));
        auto first = device.prepare_kernel("test_affine");
        REQUIRE(first);
        CHECK(first->created_in_this_call);
        CHECK(first->create_ms > 0);
        auto again = device.prepare_kernel("test_affine");
        REQUIRE(again);
        CHECK_FALSE(again->created_in_this_call);
        INFO(cache.note);
        REQUIRE(std::filesystem::exists(path));
    }
    std::ifstream file(path, std::ios::binary);
    const std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(file)),
                                         std::istreambuf_iterator<char>());
    CHECK(px::vk::check_pipeline_cache_header(data, runtime.devices()[0]));
    {
        Device device = pxtest::gpu::open_device(runtime);
        CHECK(device.pipeline_cache().loaded);
        CHECK(device.pipeline_cache().loaded_bytes == data.size());
        REQUIRE(device.add_kernel("test_affine", words(affine_spv)));
        auto created = device.prepare_kernel("test_affine");
        REQUIRE(created);
        CHECK(created->created_in_this_call);
        // Whether the driver reports a hit is its business (lavapipe 22.3 reports none).
        if (created->cache_hit)
            CHECK((*created->cache_hit == true || *created->cache_hit == false));
    }
    // A file written for another device is ignored, with the reason.
    std::vector<std::uint8_t> foreign = data;
    foreign[8] ^= 0xff; // vendorID
    REQUIRE(px::write_file_atomic(path, foreign));
    {
        Device device = pxtest::gpu::open_device(runtime);
        CHECK_FALSE(device.pipeline_cache().loaded);
        CHECK(contains(device.pipeline_cache().note, "not this device"));
    }
    CHECK_FALSE(
        px::vk::check_pipeline_cache_header(std::vector<std::uint8_t>(8), runtime.devices()[0]));
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("a run that outlasts the timeout fails and the device refuses later runs",
          "[gpu][timeout]") {
    const pxtest::gpu::ScopedEnv no_override("PXVM_TIMEOUT_MS", nullptr); // it would replace 1 ms
    px::vk::RuntimeOptions options = pxtest::gpu::test_options();
    options.timeout = std::chrono::milliseconds(1);
    Runtime runtime = pxtest::gpu::make_runtime(options);
    {
        Device device = pxtest::gpu::open_device(runtime);
        REQUIRE(device.add_kernel("test_spin", words(spin_spv)));
        REQUIRE(device.prepare_kernel("test_spin")); // pipeline creation is not timed out
        const Image original = gradient(4, 4);
        Image image = original;
        // About 0.2 s on lavapipe (whose loops stop at 65535 iterations, hence many
        // workgroups), tens of milliseconds on a GPU: far beyond the 1 ms timeout either way.
        const bool lavapipe = contains(device.info().name, "llvmpipe");
        const Dispatch spin =
            Dispatch::with_push("test_spin", std::uint32_t(lavapipe ? 60'000 : 20'000'000),
                                {lavapipe ? 2000u : 64u, 1, 1});
        auto run = device.run(std::span(&spin, 1), image);
        REQUIRE_FALSE(run);
        CHECK(contains(run.error().message, "did not finish a run within 1 ms"));
        CHECK(run.error().code == px::ErrorCode::timeout);
        CHECK(contains(run.error().message, "PXVM_TIMEOUT_MS"));
        CHECK(image == original);
        CHECK(device.failed());
        auto later = device.run(std::span(&spin, 1), image);
        REQUIRE_FALSE(later);
        CHECK(later.error().code == px::ErrorCode::timeout);
        CHECK(image == original);
    } // the destructor waits for the abandoned run before destroying anything
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("the environment overrides options, and bad values are errors", "[gpu][options]") {
    pxtest::gpu::require_validation_layer();
    {
        const pxtest::gpu::ScopedEnv timeout("PXVM_TIMEOUT_MS", "2500");
        auto runtime = Runtime::create(pxtest::gpu::test_options());
        REQUIRE(runtime);
        CHECK(runtime->options().timeout == std::chrono::milliseconds(2500));
        // A caller's value (pxrun --timeout-ms) beats the environment.
        px::vk::RuntimeOptions given = pxtest::gpu::test_options();
        given.timeout = std::chrono::milliseconds(7000);
        auto flagged = Runtime::create(given);
        REQUIRE(flagged);
        CHECK(flagged->options().timeout == std::chrono::milliseconds(7000));
    }
    for (const char* huge : {"18446744073710", "86400001", "0"}) {
        const pxtest::gpu::ScopedEnv timeout("PXVM_TIMEOUT_MS", huge);
        auto runtime = Runtime::create(pxtest::gpu::test_options());
        REQUIRE_FALSE(runtime);
        CHECK(contains(runtime.error().message, "from 1 to 86400000"));
    }
    {
        const pxtest::gpu::ScopedEnv timeout("PXVM_TIMEOUT_MS", "soon");
        auto runtime = Runtime::create(pxtest::gpu::test_options());
        REQUIRE_FALSE(runtime);
        CHECK(contains(runtime.error().message, "PXVM_TIMEOUT_MS='soon'"));
    }
    {
        const pxtest::gpu::ScopedEnv validate("PXVM_VALIDATE", "1");
        px::vk::RuntimeOptions options = pxtest::gpu::test_options();
        options.validate = false;
        auto runtime = Runtime::create(options);
        REQUIRE(runtime);
        CHECK(runtime->validation_enabled());
    }
}

TEST_CASE("without a Vulkan driver the runtime says so", "[gpu][driver]") {
    pxtest::gpu::require_validation_layer();
    const pxtest::gpu::ScopedEnv no_driver("VK_DRIVER_FILES", "/nonexistent/pxvm_no_such_icd.json");
    auto runtime = Runtime::create({});
    REQUIRE_FALSE(runtime);
    CHECK(contains(runtime.error().message, "no Vulkan driver"));
}

TEST_CASE("the validation layer's messages are counted (a deliberate error)", "[gpu][validation]") {
    // The negative case that proves check_no_validation_messages can fail: a kernel whose push
    // constant block (132 bytes) is larger than the pipeline layout's 128-byte range.
    px::vk::RuntimeOptions options = pxtest::gpu::test_options();
    options.print_validation_messages = false;
    Runtime runtime = pxtest::gpu::make_runtime(options);
    {
        Device device = pxtest::gpu::open_device(runtime);
        REQUIRE(device.add_kernel("test_big_push", words(big_push_spv)));
        (void)device.prepare_kernel("test_big_push"); // the driver may create it anyway
    }
    const px::vk::ValidationMessages messages = runtime.validation_messages();
    CHECK(messages.errors >= 1);
    REQUIRE(!messages.texts.empty());
    CHECK(contains(messages.texts[0], "error: "));
}

TEST_CASE("a pipeline-cache path that is a directory, a FIFO or /dev/zero turns the cache off",
          "[gpu][cache]") {
    const px::vk::RuntimeOptions options = pxtest::gpu::test_options("pipeline-cache-odd");
    Runtime runtime = pxtest::gpu::make_runtime(options);
    const std::string path =
        options.cache_dir + "/" + px::vk::pipeline_cache_file_name(runtime.devices()[0]);
    auto open_and_run = [&](const std::string& what) {
        INFO(what);
        Device device = pxtest::gpu::open_device(runtime);
        const px::vk::PipelineCacheStatus& cache = device.pipeline_cache();
        CHECK_FALSE(cache.enabled);
        CHECK_FALSE(cache.loaded);
        CHECK_THAT(cache.note, Catch::Contains("not a regular file"));
        REQUIRE(device.add_kernel("test_affine", words(affine_spv)));
        CHECK(device.prepare_kernel("test_affine"));
    }; // closing the device saves nothing over what is there
    std::filesystem::create_directories(path);
    open_and_run("a directory");
    CHECK(std::filesystem::is_directory(path));
    std::filesystem::remove(path);
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    open_and_run("a FIFO (opening it to read would block)");
    CHECK(std::filesystem::is_fifo(path));
    std::filesystem::remove(path);
    std::filesystem::create_symlink("/dev/zero", path);
    open_and_run("/dev/zero (reading it would never end)");
    CHECK(std::filesystem::is_symlink(path));
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("injected faults: a failed allocation, a fence timeout and a lost device are clean "
          "errors that leave the image alone and leak nothing",
          "[gpu][inject]") {
    using Kind = px::vk::FaultInjection::Kind;
    const pxtest::gpu::ScopedEnv no_override("PXVM_INJECT_FAULT", nullptr);
    auto program = px::load_png(PXVM_SOURCE_DIR "/assets/tensor_demo.pxi");
    REQUIRE(program);
    Image expected = *program;
    px::run_reference(expected);
    const px::Plan plan = px::plan_program(*program);
    for (const Kind kind : {Kind::allocation, Kind::timeout, Kind::device_lost}) {
        // The Nth allocation or submit fails, for N = 1 ... 10: the run needs fewer than ten, so
        // the last ones complete (an image buffer's failed allocation is taken back by the
        // fallback to a staged upload, so that run completes too).
        int failures = 0;
        bool completed = false;
        for (std::uint32_t nth = 1; nth <= 10; ++nth) {
            INFO("injection " << int(kind) << " at " << nth);
            px::vk::RuntimeOptions options = pxtest::gpu::test_options("inject");
            options.inject = {kind, nth};
            Runtime runtime = pxtest::gpu::make_runtime(options);
            {
                Device device = pxtest::gpu::open_device(runtime);
                auto schedule = px::vk::schedule_program(plan, program->width(), program->height(),
                                                         device.info());
                REQUIRE(schedule);
                Image image = *program;
                auto run = device.run(schedule->dispatches, image);
                completed = bool(run);
                if (run) {
                    CHECK(image == expected);
                } else {
                    ++failures;
                    const px::ErrorCode code = kind == Kind::allocation
                                                   ? px::ErrorCode::out_of_memory
                                               : kind == Kind::timeout ? px::ErrorCode::timeout
                                                                       : px::ErrorCode::device_lost;
                    CHECK(run.error().code == code);
                    CHECK(contains(run.error().message, "(injected: PXVM_INJECT_FAULT)"));
                    CHECK(contains(run.error().message, device.info().name));
                    CHECK(image == *program);       // nothing of a failed run reaches the image
                    if (kind != Kind::allocation) { // the device is failed, as after the real thing
                        CHECK(device.failed());
                        Image again = *program;
                        auto later = device.run(schedule->dispatches, again);
                        REQUIRE_FALSE(later);
                        CHECK(later.error().code == code);
                    }
                }
            } // the device and every object it made are destroyed here
            pxtest::gpu::check_no_validation_messages(runtime); // the layer sees no leaked object
        }
        CHECK(failures >= 1);
        CHECK(completed);
    }
}

TEST_CASE("GPU-assisted validation reports a kernel writing past the image, and nothing for the "
          "interpreter and the kernels on programs aimed outside it",
          "[gpu][robust]") {
    px::vk::RuntimeOptions options = pxtest::gpu::test_options("gpuav");
    options.gpu_assisted_validation = true;
    options.print_validation_messages = false;
    // The control: a test kernel told to write 64 words past the end of a 16x16 image.
    {
        Runtime runtime = pxtest::gpu::make_runtime(options);
        {
            Device device = pxtest::gpu::open_device(runtime);
            REQUIRE(device.add_kernel("test_affine", words(affine_spv)));
            Image image = gradient(16, 16);
            const Dispatch past_the_end =
                Dispatch::with_push("test_affine", AffinePush{16 * 16 + 64, 1, 1}, {5, 1, 1});
            (void)device.run(std::span(&past_the_end, 1), image);
        }
        const px::vk::ValidationMessages messages = runtime.validation_messages();
        const bool seen =
            std::any_of(messages.texts.begin(), messages.texts.end(), [](const std::string& text) {
                return contains(text, "access out of bounds");
            });
        if (!seen) {
            WARN("not run: this validation layer's GPU-assisted validation does not check "
                 "storage-buffer bounds (it reported nothing for a write past the end)");
            return;
        }
    }
    // Programs aimed outside the image (every static fault, hostile operands) and valid ones,
    // through the GPU interpreter, which decodes row 0 itself, and through the scheduled kernels.
    Runtime runtime = pxtest::gpu::make_runtime(options);
    {
        Device device = pxtest::gpu::open_device(runtime);
        int programs = 0;
        for (const auto& entry :
             std::filesystem::recursive_directory_iterator(PXVM_SOURCE_DIR "/tests/conformance")) {
            // Every hand-written case (faults, edges, opcodes, dtypes, programs); the generated
            // large ones take minutes under the instrumentation.
            if (entry.path().extension() != ".pxs") continue;
            auto assembled = px::assemble_file(entry.path().string());
            REQUIRE(assembled);
            const Image& program = assembled->image;
            Image expected = program;
            px::run_reference(expected);
            Image by_interpreter = program;
            auto interpreted = device.run_interpreter(by_interpreter);
            REQUIRE(interpreted);
            CHECK(by_interpreter == expected);
            for (const px::vk::VariantSupport& v : px::vk::variant_support(device.info())) {
                if (!v.available) continue;
                auto schedule = px::vk::schedule_program(px::plan_program(program), program.width(),
                                                         program.height(), device.info(),
                                                         px::vk::ScheduleOptions{v.variant});
                REQUIRE(schedule);
                Image by_kernels = program;
                REQUIRE(device.run(schedule->dispatches, by_kernels));
                CHECK(by_kernels == expected);
            }
            ++programs;
        }
        CHECK(programs > 200);
    }
    pxtest::gpu::check_no_validation_messages(runtime);
}
