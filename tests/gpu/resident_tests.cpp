// Resident images and recordings on the machine's devices (lavapipe in CI), validation layer on:
// upload once and run a recording many times, region writes and reads, labelled dispatch times,
// pipelines keyed by specialisation constants, and the errors of bad regions.
#include "gpu_support.hpp"

#include "affine.spv.h"
#include "spec_add.spv.h"

#include "pxvm/program_writer.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include <vector>

using px::Image;
using px::vk::Device;
using px::vk::Dispatch;
using px::vk::Region;
using px::vk::Runtime;

namespace {

template <std::size_t N> std::vector<std::uint32_t> words(const std::uint32_t (&spv)[N]) {
    return {spv, spv + N};
}

struct AffinePush {
    std::uint32_t count, mul, add;
};

Image pattern(std::uint32_t width, std::uint32_t height, std::uint8_t seed) {
    Image image(width, height);
    for (std::uint32_t y = 0; y < height; ++y)
        for (std::uint32_t x = 0; x < width; ++x)
            image.set_pixel(x, y,
                            {std::uint8_t(x * 7 + y + seed), std::uint8_t(y ^ seed),
                             std::uint8_t(x), std::uint8_t(255 - y)});
    return image;
}

/// R = R * mul + add over the first `count` pixels, as the affine test kernel computes it.
void affine(Image& image, std::uint32_t count, std::uint32_t mul, std::uint32_t add) {
    for (std::uint32_t i = 0; i < count; ++i) {
        px::Pixel p = image.pixel(i % image.width(), i / image.width());
        p.r = std::uint8_t(p.r * mul + add);
        image.set_pixel(i % image.width(), i / image.width(), p);
    }
}

/// `target` with `region` copied from `source`.
Image with_region(Image target, const Image& source, const Region& r) {
    for (std::uint32_t y = r.y; y < r.y + r.height; ++y)
        for (std::uint32_t x = r.x; x < r.x + r.width; ++x)
            target.set_pixel(x, y, source.pixel(x, y));
    return target;
}

} // namespace

TEST_CASE("a recording runs many times over a resident image", "[gpu][resident]") {
    const auto mode = GENERATE(px::vk::UploadMode::automatic, px::vk::UploadMode::staging);
    INFO("upload mode " << px::vk::to_string(mode));
    Runtime runtime = pxtest::gpu::make_runtime(pxtest::gpu::test_options("cache", mode));
    Device device = pxtest::gpu::open_device(runtime);
    REQUIRE(device.add_kernel("test_affine", words(affine_spv)));

    const Image original = pattern(19, 13, 5);
    const std::uint32_t count = 19 * 13;
    auto resident = device.upload(original);
    if (!resident) FAIL(resident.error().message);
    CHECK(resident->width() == 19);
    CHECK(resident->height() == 13);
    if (mode == px::vk::UploadMode::staging) CHECK_FALSE(resident->direct_upload());

    Dispatch step = Dispatch::with_push("test_affine", AffinePush{count, 3, 1}, {4, 1, 1});
    step.label = "affine x3+1";
    Dispatch again = Dispatch::with_push("test_affine", AffinePush{count, 1, 10}, {4, 1, 1});
    again.label = "affine +10";
    const std::vector<Dispatch> dispatches = {step, again};
    {
        auto recording = device.record(*resident, dispatches);
        if (!recording) FAIL(recording.error().message);
        CHECK(recording->labels() == std::vector<std::string>{"affine x3+1", "affine +10"});
        REQUIRE(recording->pipelines().size() == 1);

        Image expected = original;
        for (int run_index = 0; run_index < 3; ++run_index) {
            auto run = recording->run();
            if (!run) FAIL(run.error().message);
            CHECK(run->status.executed == 2); // the status is zeroed at the start of every run
            affine(expected, count, 3, 1);
            affine(expected, count, 1, 10);
            if (device.info().timestamp_valid_bits() > 0) {
                REQUIRE(run->timings.gpu_dispatch.size() == 2);
                CHECK(run->timings.gpu_dispatch[0].label == "affine x3+1");
                CHECK(run->timings.gpu_dispatch[1].label == "affine +10");
            }
        }
        Image actual(19, 13);
        REQUIRE(resident->read(actual));
        INFO(px::describe(px::compare_images(expected, actual)));
        CHECK(actual == expected); // three runs over the same device memory

        // Timestamps around the program only: its GPU time, no label's, the same pixels.
        auto whole = device.record(*resident, dispatches, {}, {}, px::vk::Timestamps::program);
        if (!whole) FAIL(whole.error().message);
        CHECK(whole->labels().empty());
        auto run = whole->run();
        if (!run) FAIL(run.error().message);
        CHECK(run->timings.gpu_dispatch.empty());
        if (device.info().timestamp_valid_bits() > 0) CHECK(run->timings.gpu_execute_ms > 0.0);
        affine(expected, count, 3, 1);
        affine(expected, count, 1, 10);
        REQUIRE(resident->read(actual));
        CHECK(actual == expected);
    }
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("regions of a resident image are written and read alone", "[gpu][resident]") {
    const auto mode = GENERATE(px::vk::UploadMode::automatic, px::vk::UploadMode::staging);
    INFO("upload mode " << px::vk::to_string(mode));
    Runtime runtime = pxtest::gpu::make_runtime(pxtest::gpu::test_options("cache", mode));
    Device device = pxtest::gpu::open_device(runtime);

    const Image first = pattern(23, 17, 1), second = pattern(23, 17, 99);
    auto resident = device.upload(first);
    if (!resident) FAIL(resident.error().message);

    const Region inner{3, 4, 9, 5}, rows{0, 10, 23, 3}, pixel{22, 16, 1, 1};
    for (const Region& r : {inner, rows, pixel})
        REQUIRE(resident->write(second, r));
    Image expected =
        with_region(with_region(with_region(first, second, inner), second, rows), second, pixel);
    Image whole(23, 17);
    REQUIRE(resident->read(whole));
    INFO(px::describe(px::compare_images(expected, whole)));
    CHECK(whole == expected);

    // Reading a region changes only that region of the target.
    const Image blank(23, 17);
    Image partial = blank;
    REQUIRE(resident->read(partial, inner));
    CHECK(partial == with_region(blank, expected, inner));

    // Bad regions and sizes are errors that change nothing.
    Image untouched = blank;
    for (const Region& bad :
         {Region{20, 0, 4, 1}, Region{0, 17, 1, 1}, Region{0, 0, 0, 3}, Region{0, 16, 23, 2}}) {
        INFO("region " << bad.x << "," << bad.y << " " << bad.width << "x" << bad.height);
        auto read = resident->read(untouched, bad);
        REQUIRE_FALSE(read);
        CHECK_THAT(read.error().message, Catch::Contains("outside"));
        CHECK(read.error().code == px::ErrorCode::invalid_input);
        REQUIRE_FALSE(resident->write(second, bad));
    }
    CHECK(untouched == blank);
    Image wrong_size(22, 17);
    auto mismatch = resident->read(wrong_size);
    REQUIRE_FALSE(mismatch);
    CHECK_THAT(mismatch.error().message, Catch::Contains("22x17"));
    REQUIRE(resident->read(whole));
    CHECK(whole == expected); // the failed writes wrote nothing
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("pipelines are keyed by specialisation constants", "[gpu][resident]") {
    Runtime runtime = pxtest::gpu::make_runtime();
    Device device = pxtest::gpu::open_device(runtime);
    REQUIRE(device.add_kernel("test_spec_add", words(spec_add_spv)));
    const Image original = pattern(16, 4, 0);
    const std::uint32_t count = 16 * 4;

    std::vector<Dispatch> dispatches;
    for (std::uint32_t add : {5u, 40u, 5u}) {
        Dispatch d = Dispatch::with_push("test_spec_add", count, {count / 32, 1, 1});
        d.specialization = {add, 32}; // ADD, workgroup size
        dispatches.push_back(d);
    }
    Image image = original;
    auto run = device.run(dispatches, image);
    if (!run) FAIL(run.error().message);
    Image expected = original;
    affine(expected, count, 1, 50);
    CHECK(image == expected);
    REQUIRE(run->pipelines.size() == 2); // [5, 32] and [40, 32]
    CHECK(run->pipelines[0].key == "test_spec_add [5, 32]");
    CHECK(run->pipelines[1].key == "test_spec_add [40, 32]");
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("a recording runs again after a fault, and only the regions it rewrites change",
          "[gpu][resident]") {
    Runtime runtime = pxtest::gpu::make_runtime();
    Device device = pxtest::gpu::open_device(runtime);
    // gather_mean faults on token 2 of a 2-row table; the dot_rgb at pc W - 1 = 15 is the pixel
    // the fault overwrites, with (TOKEN_RANGE, 9, 0, 255): read as dot_rgb 9, 0, 255 it would
    // write pixel (0, 255), which this image has.
    px::ProgramWriter w(16, 256);
    w.tensor(1, px::DTYPE_I8, 0, 1, 2, 4)
        .tensor(2, px::DTYPE_U8, 0, 3, 1, 4)
        .tensor(3, px::DTYPE_I32, 0, 4, 1, 4)
        .gather_mean(3, 1, 2);
    while (w.pc < 15)
        w.dot_rgb(5, 6, 7);
    w.image.set_pixel(15, 0, {px::OP_DOT_RGB, 5, 6, 7}); // in the fault pixel: never decoded
    w.fill(1, {1, -2, 3, -4, 5, 6, -7, 8}).fill(2, {1, 2, 0, 0});
    for (std::uint32_t x = 0; x < 16; ++x) {
        w.image.set_pixel(x, 5, {std::uint8_t(x + 1), 0, 0, 0});
        w.image.set_pixel(x, 6, {std::uint8_t(3 * x + 1), 0, 0, 0});
        w.image.set_pixel(x, 9, {std::uint8_t(x + 2), 0, 0, 0});
    }
    w.image.set_pixel(0, 255, {7, 7, 7, 7});
    const px::Plan plan = px::plan_program(w.image);
    auto schedule = px::vk::schedule_program(plan, 16, 256, device.info());
    REQUIRE(schedule);
    auto resident = device.upload(w.image);
    REQUIRE(resident);
    auto recording = device.record(*resident, schedule->dispatches);
    REQUIRE(recording);

    auto faulted = recording->run();
    REQUIRE(faulted);
    CHECK(faulted->status.fault_code == px::FAULT_TOKEN_RANGE);
    Image after_fault(16, 256);
    REQUIRE(resident->read(after_fault));
    Image expected_fault = w.image;
    px::run_reference(expected_fault);
    CHECK(after_fault == expected_fault);

    // New tokens, written alone; the fault pixel stays as the last run left it.
    Image fixed = w.image;
    fixed.set_pixel(0, 3, {1, 1, 0, 0});
    REQUIRE(resident->write(fixed, Region{0, 3, 1, 1}));
    auto again = recording->run();
    REQUIRE(again);
    CHECK(again->status.fault_code == 0);
    Image actual(16, 256);
    REQUIRE(resident->read(actual));
    Image expected = fixed;
    px::run_reference(expected);
    expected.set_pixel(15, 0, after_fault.pixel(15, 0)); // the stale fault pixel
    INFO(px::describe(px::compare_images(expected, actual)));
    CHECK(actual == expected);
    pxtest::gpu::check_no_validation_messages(runtime);
}
