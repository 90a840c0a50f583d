// The GPU interpreter against the reference interpreter on programs built in code (no assets):
// every pixel of the result image and the run status must agree.
#include "gpu_support.hpp"

#include "program_builder.hpp"
#include "program_generator.hpp"

#include "pxvm/embedded_kernels.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/run_program.hpp"

#include <random>

using px::Image;
using pxtest::ProgramWriter;

namespace {

constexpr std::uint32_t U8 = px::DTYPE_U8, I8 = px::DTYPE_I8, I32 = px::DTYPE_I32;

/// Runs `program` on the reference and on the GPU interpreter and checks that both agree.
void check_against_reference(px::vk::Device& device, const Image& program,
                             const std::string& what) {
    INFO(what << " (" << program.width() << "x" << program.height() << ")");
    Image actual = program;
    auto run = device.run_interpreter(actual);
    if (!run) FAIL(run.error().message);
    const px::Verification v = px::verify_against_reference(program, actual, run->status);
    INFO(px::describe(v.difference));
    CHECK(v.difference.count == 0);
    INFO(v.status_mismatch);
    CHECK(v.status_mismatch.empty()); // fault code and pc, executed count, HALT
}

px::vk::Device open_interpreter_device(px::vk::Runtime& runtime) {
    px::vk::Device device = pxtest::gpu::open_device(runtime);
    if (!px::find_kernel("interpreter")) FAIL("the interpreter kernel is not built");
    return device;
}

} // namespace

TEST_CASE("interpreter: the seed program writes 300 = (44, 1, 0, 0) at (0, 3)",
          "[gpu][interpreter]") {
    px::vk::Runtime runtime = pxtest::gpu::make_runtime();
    px::vk::Device device = open_interpreter_device(runtime);
    ProgramWriter b(16, 16);
    b.dot_rgb(1, 2, 3).halt();
    for (std::uint8_t x = 0; x < 4; ++x) {
        b.image.set_pixel(x, 1, {std::uint8_t(x + 1), 0, 0, 255});
        b.image.set_pixel(x, 2, {std::uint8_t(10 * (x + 1)), 0, 0, 255});
    }
    Image image = b.image;
    auto run = device.run_interpreter(image);
    if (!run) FAIL(run.error().message);
    CHECK(image.pixel(0, 3) == px::Pixel{44, 1, 0, 0});
    CHECK(run->status.halted == 1);
    CHECK(run->status.executed == 1);
    REQUIRE(run->pipelines.size() == 1);
    CHECK(run->pipelines[0].kernel == "interpreter");
    check_against_reference(device, b.image, "seed dot_rgb");
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("interpreter: a small integer network", "[gpu][interpreter]") {
    px::vk::Runtime runtime = pxtest::gpu::make_runtime();
    px::vk::Device device = open_interpreter_device(runtime);
    ProgramWriter b = pxtest::tiny_network();
    Image image = b.image;
    auto run = device.run_interpreter(image);
    if (!run) FAIL(run.error().message);
    CHECK(b.read(6, image) == std::vector<std::int64_t>{0, 7, 139});
    CHECK(b.read(8, image) == std::vector<std::int64_t>{2});
    check_against_reference(device, b.image, "small network");
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("interpreter: random matmul, requant and argmax", "[gpu][interpreter]") {
    px::vk::Runtime runtime = pxtest::gpu::make_runtime();
    px::vk::Device device = open_interpreter_device(runtime);
    std::mt19937 rng(7);
    for (const std::uint32_t dtype : {U8, I8}) {
        const std::uint32_t m = 5, n = 9, k = 37;
        ProgramWriter b(64, 40);
        b.tensor(1, dtype, 0, 1, m, k)    // a: rows 1-5
            .tensor(2, dtype, 0, 6, n, k) // b: rows 6-14
            .tensor(3, I32, 0, 15, m, n)  // c: rows 15-19
            .tensor(4, I8, 0, 20, m, n)   // requantized: rows 20-24
            .tensor(5, I32, 16, 20, m, 1) // argmax
            .matmul(3, 1, 2)
            .requant(4, 3, 1 << 20, 28, -3)
            .argmax(5, 4)
            .halt();
        std::uniform_int_distribution<int> value(dtype == U8 ? 0 : -128, dtype == U8 ? 255 : 127);
        std::vector<std::int64_t> a(m * k), bt(n * k);
        for (auto& v : a)
            v = value(rng);
        for (auto& v : bt)
            v = value(rng);
        b.fill(1, a).fill(2, bt);
        check_against_reference(device, b.image, dtype == U8 ? "u8 matmul" : "i8 matmul");
    }
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("interpreter: faults stop the run and write the fault pixel", "[gpu][interpreter]") {
    px::vk::Runtime runtime = pxtest::gpu::make_runtime();
    px::vk::Device device = open_interpreter_device(runtime);
    {
        ProgramWriter b(16, 4);
        b.dot_rgb(1, 2, 3).op(200).halt(); // 200 is no opcode
        check_against_reference(device, b.image, "bad opcode");
    }
    {
        ProgramWriter b(16, 4);
        b.tensor(1, I32, 0, 1, 1, 1).relu(1, 9).halt(); // tensor 9 was never declared
        check_against_reference(device, b.image, "undefined tensor");
    }
    {
        ProgramWriter b(16, 4);
        b.tensor(1, I32, 14, 1, 1, 4).halt(); // runs past the right edge
        check_against_reference(device, b.image, "out of bounds");
    }
    {
        ProgramWriter b(300, 4); // a fault at pc >= 256
        for (int i = 0; i < 260; ++i)
            b.dot_rgb(1, 1, 2);
        b.op(px::OP_TENSOR, 1, 9, 0).pixel({}).pixel({}); // dtype 9 is no dtype
        check_against_reference(device, b.image, "fault at pc 260");
    }
    {
        ProgramWriter b(32, 8);
        b.tensor(1, U8, 0, 1, 4, 4)
            .tensor(2, U8, 0, 5, 1, 3)
            .tensor(3, I32, 0, 6, 1, 4)
            .gather_mean(3, 1, 2)
            .halt();
        b.fill(2, {1, 7, 2}); // 7 >= 4 rows: TOKEN_RANGE, the only check that reads data
        check_against_reference(device, b.image, "token range");
    }
    pxtest::gpu::check_no_validation_messages(runtime);
}

TEST_CASE("interpreter: a program too long for one shader invocation is an error on lavapipe, "
          "the reference's pixels elsewhere",
          "[gpu][interpreter]") {
    px::vk::Runtime runtime = pxtest::gpu::make_runtime();
    px::vk::Device device = open_interpreter_device(runtime);
    // C (512x512 i32) = A (512x1024 u8) . B (512x1024 u8)^T: 2^18 outputs of 1024 products each.
    constexpr std::uint32_t M = 512, K = 1024;
    ProgramWriter b(M, 1 + 3 * M);
    b.tensor(1, U8, 0, 1, M, K)
        .tensor(2, U8, 0, 1 + M, M, K)
        .tensor(3, I32, 0, 1 + 2 * M, M, M)
        .matmul(3, 1, 2)
        .halt();
    std::mt19937 rng(7);
    for (std::uint32_t y = 1; y < 1 + 2 * M; ++y)
        for (std::uint32_t x = 0; x < K / 4; ++x)
            b.image.set_pixel(x, y,
                              {std::uint8_t(rng()), std::uint8_t(rng()), std::uint8_t(rng()),
                               std::uint8_t(rng())});
    const Image before = b.image;
    Image image = b.image;
    auto run = device.run_interpreter(image);
    if (device.info().type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        REQUIRE_FALSE(run);
        CHECK_THAT(run.error().message, Catch::Contains("limits how long one shader invocation"));
        // The matmul (pc 9, after three declarations) is the one cut short, and not counted.
        CHECK_THAT(run.error().message,
                   Catch::Contains("could not finish the instruction at pc 9 (3 instructions had "
                                   "run before it)"));
        CHECK(run.error().code == px::ErrorCode::incomplete);
        CHECK(image == before); // nothing of the incomplete run reaches the caller
    } else {
        check_against_reference(device, b.image, "512x512x1024 matmul");
    }
    pxtest::gpu::check_no_validation_messages(runtime);
}
