// Tests of the scheduler of the per-instruction kernels (runtime/src/vulkan/scheduler.cpp) without
// a GPU: which variants a device can run, the dispatches a plan becomes (kernels, grids,
// specialization constants, labels, push constants) and how a plan's end reaches `finish`. The
// kernels themselves are tested on devices in tests/gpu/kernel_tests.cpp.
#include "program_builder.hpp"

#include "pxvm/embedded_kernels.hpp"
#include "pxvm/program.hpp"
#include "pxvm/program_writer.hpp"
#include "pxvm/vulkan/scheduler.hpp"
#include "pxvm_layout.h"

#include <catch2/catch.hpp>

#include <array>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

using px::vk::KernelVariant;
using pxtest::ProgramWriter;

constexpr std::uint32_t U8 = px::DTYPE_U8, I8 = px::DTYPE_I8, U16 = px::DTYPE_U16,
                        I32 = px::DTYPE_I32;

/// A discrete GPU as the scheduler sees it, with or without (accelerated) integer dot products.
px::vk::DeviceInfo fake_gpu(bool dot_product, bool accelerated = true) {
    px::vk::DeviceInfo info;
    info.name = "Fake GPU";
    info.type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    info.features.integer_dot_product.supported = dot_product;
    info.features.integer_dot_product.packed_4x8_signed_accelerated = accelerated;
    info.features.integer_dot_product.packed_4x8_unsigned_accelerated = accelerated;
    info.limits.max_compute_shared_memory_size = 48 << 10;
    return info;
}

px::KernelPush push_of(const px::vk::Dispatch& d) {
    px::KernelPush push{};
    REQUIRE(d.push_constants.size() == sizeof push);
    std::memcpy(&push, d.push_constants.data(), sizeof push);
    return push;
}

px::vk::Schedule schedule(const px::Image& image, const px::vk::DeviceInfo& device,
                          const px::vk::ScheduleOptions& options = {}) {
    auto s = px::vk::schedule_program(px::plan_program(image), image.width(), image.height(),
                                      device, options);
    if (!s) FAIL(s.error().message);
    return std::move(s.value());
}

const bool int_dot_built = px::find_kernel("matmul_intdot") && px::find_kernel("dot_intdot");
const bool coopmat_built =
    px::find_kernel("matmul_coopmat_nv_s8") && px::find_kernel("matmul_coopmat_nv_u8");

/// A Hopper-like GPU as the scheduler sees it: subgroups of 32, shaderInt8, and the int8 NV
/// cooperative-matrix shapes an H200 reports (16x16x32 and 16x8x32, s8 and u8), with f16 ones.
px::vk::DeviceInfo fake_tensor_gpu() {
    px::vk::DeviceInfo info = fake_gpu(true);
    info.features.cooperative_matrix_nv = true;
    info.features.shader_int8 = true;
    info.features.subgroups.size = 32;
    auto& shapes = info.features.cooperative_matrix_nv_shapes;
    shapes.push_back({16, 16, 16, "f16", "f16", "f32", "f32", "subgroup", false});
    for (std::uint32_t n : {16u, 8u}) {
        shapes.push_back({16, n, 32, "u8", "u8", "u32", "u32", "subgroup", false});
        shapes.push_back({16, n, 32, "s8", "s8", "s32", "s32", "subgroup", false});
    }
    return info;
}

} // namespace

TEST_CASE("scheduler: variant names and support", "[scheduler]") {
    CHECK(px::vk::variant_from_name("portable") == KernelVariant::portable);
    CHECK(px::vk::variant_from_name("int-dot") == KernelVariant::int_dot);
    CHECK_FALSE(px::vk::variant_from_name("coopmat").has_value());
    for (const KernelVariant v : {KernelVariant::portable, KernelVariant::int_dot})
        CHECK(px::vk::variant_from_name(px::vk::to_string(v)) == v);

    const auto with = px::vk::variant_support(fake_gpu(true));
    REQUIRE(with.size() == 3);
    CHECK_FALSE(with[2].available); // no cooperative matrices
    CHECK_THAT(with[2].reason, Catch::Contains(coopmat_built ? "VK_NV_cooperative_matrix"
                                                             : "matmul_coopmat_nv_s8"));
    CHECK(with[0].available);
    CHECK(with[0].reason.empty());
    CHECK(with[1].available == int_dot_built);
    const auto without = px::vk::variant_support(fake_gpu(false));
    CHECK(without[0].available);
    CHECK_FALSE(without[1].available);
    CHECK_THAT(without[1].reason, Catch::Contains(int_dot_built ? "Fake GPU" : "matmul_intdot"));

    // Forced and unavailable: an error with code unsupported; not forced: the fastest available.
    const ProgramWriter tiny = pxtest::tiny_network();
    const px::Plan plan = px::plan_program(tiny.image);
    auto forced = px::vk::schedule_program(plan, 64, 8, fake_gpu(false), {KernelVariant::int_dot});
    REQUIRE_FALSE(forced.ok());
    CHECK(forced.error().code == px::ErrorCode::unsupported);
    CHECK(schedule(tiny.image, fake_gpu(false)).variant == KernelVariant::portable);
    CHECK(schedule(tiny.image, fake_gpu(true, false)).variant == KernelVariant::portable);
    CHECK(schedule(tiny.image, fake_gpu(true)).variant ==
          (int_dot_built ? KernelVariant::int_dot : KernelVariant::portable));
    CHECK(schedule(tiny.image, fake_gpu(true), {KernelVariant::portable}).variant ==
          KernelVariant::portable);

    std::map<std::string, std::string> kinds;
    for (const auto& [op, variant] : px::vk::instruction_variants(fake_gpu(true)))
        kinds[op] = variant;
    const std::string fastest = int_dot_built ? "int-dot" : "portable";
    CHECK(kinds == std::map<std::string, std::string>{{"dot_rgb", "portable"},
                                                      {"dot", fastest},
                                                      {"matmul", fastest},
                                                      {"add_bias", "portable"},
                                                      {"requant", "portable"},
                                                      {"relu", "portable"},
                                                      {"argmax", "portable"},
                                                      {"gather_mean", "portable"},
                                                      {"embed", "portable"},
                                                      {"add", "portable"},
                                                      {"lut", "portable"},
                                                      {"rmsnorm", "portable"},
                                                      {"kvstore", "portable"},
                                                      {"attend", "portable"}});
}

TEST_CASE("scheduler: dispatches, grids and push constants", "[scheduler]") {
    ProgramWriter b(1100, 300);
    b.tensor(1, I8, 3, 1, 100, 1000)     // a: pixel width 250
        .tensor(2, I8, 260, 1, 70, 1000) // b
        .tensor(3, I32, 0, 101, 100, 70) // c
        .tensor(4, I32, 100, 101, 1, 70) // bias
        .tensor(5, U8, 200, 101, 100, 70)
        .tensor(6, U16, 300, 101, 100, 1)
        .tensor(7, I32, 310, 101, 1, 1)
        .matmul(3, 1, 2)
        .add_bias(3, 4)
        .requant(5, 3, -7, 9, -3)
        .relu(5, 5)
        .argmax(6, 5)
        .dot(7, 1, 1)
        .dot_rgb(1, 2, 3)
        .halt();
    const px::vk::Schedule s = schedule(b.image, fake_gpu(true), {KernelVariant::portable});
    std::vector<std::string> kernels, labels;
    for (const px::vk::Dispatch& d : s.dispatches) {
        kernels.push_back(d.kernel);
        labels.push_back(d.label);
        const px::KernelPush push = push_of(d);
        CHECK(push.width == 1100);
        CHECK(push.height == 300);
        for (std::uint32_t g : d.groups) {
            CHECK(g >= 1);
            CHECK(g <= 65535);
        }
    }
    CHECK(kernels == std::vector<std::string>{"matmul_portable", "add_bias", "requant", "relu",
                                              "argmax", "dot_portable", "dot_store", "dot_rgb",
                                              "finish"});
    CHECK(labels == std::vector<std::string>{"pc 21 matmul portable 32x32", "pc 22 add_bias",
                                             "pc 23 requant", "pc 26 relu", "pc 27 argmax 1 lanes",
                                             "pc 28 dot portable", "pc 28 dot store",
                                             "pc 29 dot_rgb", "finish"});
    REQUIRE(s.steps.size() == 7);
    CHECK(s.steps[0].kernel == "matmul_portable");
    CHECK(s.steps[5].opcode == px::OP_DOT);
    CHECK(s.steps[5].first == 5);
    CHECK(s.steps[5].count == 2);

    // matmul: N = 70, M = 100 in 32x32 tiles; A is i8; K steps of 32 words on a GPU.
    const px::vk::Dispatch& mm = s.dispatches[0];
    CHECK(mm.groups == std::array<std::uint32_t, 3>{3, 4, 1});
    CHECK(mm.specialization == std::vector<std::uint32_t>{32, 32, 1, 32});
    const px::KernelPush mp = push_of(mm);
    CHECK(mp.pc == 21);
    CHECK(mp.step == 7); // seven declarations before it
    CHECK(mp.t[0].x == 0);
    CHECK(mp.t[0].y == 101);
    CHECK(mp.t[1].x == 3);
    CHECK(mp.t[1].cols == 1000);
    CHECK(mp.t[2].rows == 70);
    CHECK(mp.t[2].dtype == I8);
    // requant: multiplier, shift, zero point (sign-extended).
    const px::KernelPush rq = push_of(s.dispatches[2]);
    CHECK(rq.arg[0] == std::uint32_t(-7));
    CHECK(rq.arg[1] == 9);
    CHECK(rq.arg[2] == std::uint32_t(-3));
    CHECK(s.dispatches[2].groups == std::array<std::uint32_t, 3>{8, 1, 1}); // 100 x 18 words
    // argmax over 70 u8 = 18 words a row, 5 chunks: 1 lane a row reads at most 8 chunks; 256
    // rows a group.
    CHECK(s.dispatches[4].specialization == std::vector<std::uint32_t>{1});
    CHECK(s.dispatches[4].groups == std::array<std::uint32_t, 3>{1, 1, 1});
    // dot over 100 x 250 words: 100 x 63 chunks of four, 2048 a workgroup.
    CHECK(s.dispatches[5].groups == std::array<std::uint32_t, 3>{4, 1, 1});
    // dot_rgb: a batch of one, the instruction read from row 0 at its pc.
    const px::KernelPush rgb = push_of(s.dispatches[7]);
    CHECK(rgb.arg[0] == s.steps[6].pc);
    CHECK(rgb.arg[1] == 1);
    CHECK(s.dispatches[7].groups == std::array<std::uint32_t, 3>{1, 1, 1});
    // finish: no fault, 14 steps, halted.
    const px::KernelPush fin = push_of(s.dispatches.back());
    CHECK(fin.arg[0] == 0);
    CHECK(fin.arg[2] == 14);
    CHECK(fin.arg[3] == 1);

    // On a CPU device the matmul steps take 16 words.
    px::vk::DeviceInfo cpu = fake_gpu(false);
    cpu.type = VK_PHYSICAL_DEVICE_TYPE_CPU;
    CHECK(schedule(b.image, cpu).dispatches[0].specialization ==
          std::vector<std::uint32_t>{32, 32, 1, 16});
}

TEST_CASE("scheduler: matmul steps fit the device's shared memory", "[scheduler]") {
    px::vk::DeviceInfo gpu = fake_gpu(true);
    CHECK(px::vk::matmul_k_words(gpu) == 32);
    gpu.limits.max_compute_shared_memory_size = 16384; // the minimum Vulkan guarantees
    CHECK(px::vk::matmul_k_words(gpu) == 16);
}

TEST_CASE("scheduler: consecutive independent dot_rgb share one dispatch", "[scheduler]") {
    ProgramWriter b(64, 16);
    b.dot_rgb(1, 2, 3)    // batch 1
        .dot_rgb(1, 2, 3) // the same output again: fine, the last write wins
        .dot_rgb(4, 4, 5)
        .dot_rgb(5, 1, 6) // reads row 5, which the batch writes: a new batch
        .dot_rgb(7, 8, 7) // reads its own output row: fine
        .dot_rgb(9, 9, 1) // writes row 1, which the batch reads (dot_rgb 5, 1, 6): new batch
        .tensor(1, I8, 0, 10, 1, 4)
        .dot_rgb(1, 2, 9) // not adjacent to the previous dot_rgb: new batch
        .halt();
    const px::Plan plan = px::plan_program(b.image);
    REQUIRE_FALSE(plan.fault);
    CHECK(px::vk::dot_rgb_batch(plan, 0) == 3);
    CHECK(px::vk::dot_rgb_batch(plan, 1) == 2); // from dot_rgb 1, 2, 3: then 5, 1, 6 reads 5
    CHECK(px::vk::dot_rgb_batch(plan, 3) == 2);
    CHECK(px::vk::dot_rgb_batch(plan, 5) == 1);
    CHECK(px::vk::dot_rgb_batch(plan, 7) == 1);
    const px::vk::Schedule s = schedule(b.image, fake_gpu(true), {KernelVariant::portable});
    std::vector<std::string> labels;
    for (const px::vk::Dispatch& d : s.dispatches)
        labels.push_back(d.label);
    CHECK(labels == std::vector<std::string>{"pc 0-2 dot_rgb x3", "pc 3-4 dot_rgb x2",
                                             "pc 5 dot_rgb", "pc 9 dot_rgb", "finish"});
    CHECK(s.dispatches[0].groups == std::array<std::uint32_t, 3>{3, 1, 1});
    REQUIRE(s.steps.size() == 7);
    CHECK(s.steps[2].first == 0); // the third dot_rgb runs in the first dispatch
    CHECK(s.steps[3].first == 1);
}

TEST_CASE("scheduler: large grids and how plans end", "[scheduler]") {
    // 32767 x 8192 words of relu, four words an invocation: 2^18 workgroups, more than one grid
    // row holds. The plan is made by hand: the image would take 1 GiB.
    px::Plan plan;
    px::Step relu;
    relu.instruction.opcode = px::OP_RELU;
    relu.instruction.pc = 5;
    relu.operands[0] = relu.operands[1] = px::Tensor{0, 1, 32767, 8192, I32};
    plan.steps.push_back(relu);
    auto s = px::vk::schedule_program(plan, 8192, 32768, fake_gpu(false));
    REQUIRE(s.ok());
    const auto g = s->dispatches[0].groups;
    CHECK(std::uint64_t(g[0]) * g[1] >= (32767ull * 2048 + 255) / 256);
    CHECK(std::uint64_t(g[0]) * (g[1] - 1) < (32767ull * 2048 + 255) / 256);
    CHECK(g[0] <= 65535);
    CHECK(g[1] > 1);
    CHECK(push_of(s->dispatches.back()).arg[2] == 1); // finish: one step, not halted
    CHECK(push_of(s->dispatches.back()).arg[3] == 0);

    // A static fault after two steps: finish carries its code and pc.
    ProgramWriter bad(16, 8);
    bad.tensor(1, U8, 0, 1, 2, 4).relu(1, 1).op(99);
    const px::vk::Schedule f = schedule(bad.image, fake_gpu(false));
    REQUIRE(f.dispatches.size() == 2);
    const px::KernelPush fin = push_of(f.dispatches[1]);
    CHECK(fin.arg[0] == px::FAULT_BAD_OPCODE);
    CHECK(fin.arg[1] == 4);
    CHECK(fin.arg[2] == 2);
    CHECK(fin.arg[3] == 0);

    // The first instruction faults: only finish.
    ProgramWriter first(16, 8);
    first.tensor(1, 9, 0, 1, 2, 4); // BAD_DTYPE
    const px::vk::Schedule only = schedule(first.image, fake_gpu(false));
    REQUIRE(only.dispatches.size() == 1);
    CHECK(only.dispatches[0].kernel == "finish");
    CHECK(push_of(only.dispatches[0]).arg[0] == px::FAULT_BAD_DTYPE);
    CHECK(only.steps.empty());

    // gather_mean: the check (one workgroup), then the mean.
    ProgramWriter wide(256, 40);
    wide.tensor(1, I8, 0, 1, 30, 200)
        .tensor(2, U8, 0, 31, 1, 5)
        .tensor(3, I32, 0, 32, 1, 200)
        .gather_mean(3, 1, 2)
        .halt();
    const px::vk::Schedule gs = schedule(wide.image, fake_gpu(false));
    REQUIRE(gs.dispatches.size() == 3);
    CHECK(gs.dispatches[0].kernel == "gather_check");
    CHECK(gs.dispatches[0].groups == std::array<std::uint32_t, 3>{1, 1, 1});
    CHECK(gs.dispatches[1].kernel == "gather_mean");
    CHECK(gs.dispatches[1].specialization == std::vector<std::uint32_t>{32}); // 50 words
    CHECK(gs.dispatches[1].groups == std::array<std::uint32_t, 3>{2, 1, 1});
    CHECK(push_of(gs.dispatches[1]).step == 3);
}

TEST_CASE("scheduler: the tensor-core variant, its support, tiles and dispatches", "[scheduler]") {
    using px::vk::CoopmatTile;
    const px::vk::DeviceInfo gpu = fake_tensor_gpu();
    CHECK(px::vk::variant_from_name("coopmat-nv") == KernelVariant::coopmat_nv);
    CHECK(px::vk::variant_names() == std::vector<std::string>{"portable", "int-dot", "coopmat-nv"});
    const auto support = px::vk::variant_support(gpu);
    REQUIRE(support.size() == 3);
    CHECK(support[2].available == coopmat_built);

    // What the device lacks is named.
    const auto reason = [](px::vk::DeviceInfo d) { return px::vk::variant_support(d)[2].reason; };
    if (coopmat_built) {
        px::vk::DeviceInfo d = gpu;
        d.features.subgroups.size = 64;
        CHECK_THAT(reason(d), Catch::Contains("subgroups of 32"));
        d = gpu;
        d.features.shader_int8 = false;
        CHECK_THAT(reason(d), Catch::Contains("shaderInt8"));
        d = gpu;
        d.features.cooperative_matrix_nv_shapes.resize(1); // f16 only
        CHECK_THAT(reason(d), Catch::Contains("16xNx32 s8 and u8"));
        d = gpu;
        d.limits.max_compute_shared_memory_size = 16 << 10;
        CHECK_THAT(reason(d), Catch::Contains("shared memory"));
    }

    // Tiles: 11 workgroup tiles in each of the two int8 widths, the wider first; each fits.
    const std::vector<CoopmatTile> tiles = px::vk::coopmat_tiles(gpu);
    REQUIRE(tiles.size() == 22);
    CHECK(tiles[5].name() == "128x128x64 2x4sg 2-stage 16x16x32");
    CHECK(tiles.front().shape_n == 16);
    CHECK(tiles.back().shape_n == 8);
    CHECK(tiles.front().name() == "128x256x64 2x4sg 16x16x32");
    const auto tile = [&](std::uint32_t m, std::uint32_t n) {
        const auto t = px::vk::coopmat_tile(m, n, gpu);
        REQUIRE(t.has_value());
        return std::to_string(t->m) + "x" + std::to_string(t->n) + "x" + std::to_string(t->k);
    };
    CHECK(tile(8192, 8192) == "64x128x128");
    CHECK(tile(4096, 4096) == "64x128x128");
    CHECK(tile(2048, 2048) == "64x128x128"); // 512 workgroups
    CHECK(tile(1024, 1024) == "64x64x128");  // too few larger tiles to fill a GPU
    CHECK(tile(17, 5) == "64x64x128");
    CHECK_FALSE(px::vk::coopmat_tile(4096, 4096, fake_gpu(true)).has_value());
    if (!coopmat_built) return;

    // The dispatches: i8 and u8 kernels, the grid over C, the specialization constants; 16 rows
    // and fewer stay on the scalar kernels (int-dot here), and so does dot.
    const auto matmul = [](std::uint32_t m, std::uint32_t dtype) {
        ProgramWriter b(600, 400);
        b.tensor(1, dtype, 0, 1, m, 1000)
            .tensor(2, dtype, 250, 1, 70, 1000)
            .tensor(3, I32, 0, 200, m, 70)
            .tensor(4, I32, 0, 399, 1, 1)
            .matmul(3, 1, 2)
            .dot(4, 1, 1)
            .halt();
        return b;
    };
    const px::vk::Schedule s = schedule(matmul(100, I8).image, gpu);
    CHECK(s.variant == KernelVariant::coopmat_nv);
    REQUIRE(s.dispatches.size() == 4); // matmul, dot, dot store, finish
    CHECK(s.dispatches[0].kernel == "matmul_coopmat_nv_s8");
    CHECK(s.dispatches[0].label == "pc 12 matmul coopmat-nv 64x64x128 2x4sg 16x16x32");
    CHECK(s.dispatches[0].groups == std::array<std::uint32_t, 3>{2, 2, 1});
    CHECK(s.dispatches[0].specialization ==
          std::vector<std::uint32_t>{16, 16, 32, 64, 64, 128, 2, 1});
    CHECK(s.steps[0].variant == "coopmat-nv");
    CHECK(s.dispatches[1].kernel == (int_dot_built ? "dot_intdot" : "dot_portable"));
    CHECK(schedule(matmul(100, U8).image, gpu).dispatches[0].kernel == "matmul_coopmat_nv_u8");
    const px::vk::Schedule small = schedule(matmul(16, I8).image, gpu);
    CHECK(small.dispatches[0].kernel == (int_dot_built ? "matmul_intdot" : "matmul_portable"));
    CHECK(small.steps[0].variant == (int_dot_built ? "int-dot" : "portable"));

    // A forced tile: any of the device's; another one, or one under another variant, is refused.
    px::vk::ScheduleOptions forced;
    forced.coopmat_tile = tiles.back();
    const px::vk::Schedule narrow = schedule(matmul(16, I8).image, gpu, forced);
    CHECK(narrow.dispatches[0].label == "pc 12 matmul coopmat-nv 64x64x128 2x4sg 2-stage 16x8x32");
    forced.coopmat_tile = CoopmatTile{96, 96, 64, 2, 1, 16, 16, 32};
    CHECK_FALSE(
        px::vk::schedule_program(px::plan_program(matmul(100, I8).image), 600, 400, gpu, forced)
            .ok());
    forced.coopmat_tile = tiles.front();
    forced.variant = KernelVariant::portable;
    CHECK_FALSE(
        px::vk::schedule_program(px::plan_program(matmul(100, I8).image), 600, 400, gpu, forced)
            .ok());

    std::map<std::string, std::string> kinds;
    for (const auto& [op, variant] : px::vk::instruction_variants(gpu))
        kinds[op] = variant;
    const std::string scalar = int_dot_built ? "int-dot" : "portable";
    CHECK(kinds["matmul"] == "coopmat-nv (" + scalar + " up to 16 rows)");
    CHECK(kinds["dot"] == scalar);
    CHECK(kinds["relu"] == "portable");
}

TEST_CASE("scheduler: errors carry their code", "[scheduler][errors]") {
    // A device that reports the int8 tensor-core shapes but has too little shared memory for
    // any tile: "no tensor-core tile fits" is unsupported, not invalid input.
    px::vk::DeviceInfo small = fake_tensor_gpu();
    small.limits.max_compute_shared_memory_size = 1024;
    px::ProgramWriter w(48, 70);
    w.tensor(1, I8, 0, 1, 32, 32).tensor(2, I8, 0, 33, 32, 32).tensor(3, I32, 8, 1, 32, 32);
    w.matmul(3, 1, 2);
    px::vk::ScheduleOptions forced;
    forced.variant = KernelVariant::coopmat_nv;
    auto s = px::vk::schedule_program(px::plan_program(w.image), w.image.width(), w.image.height(),
                                      small, forced);
    if (coopmat_built) {
        REQUIRE_FALSE(s);
        CHECK(s.error().code == px::ErrorCode::unsupported);
    }
    // A forced variant the device lacks is unsupported too.
    auto missing = px::vk::schedule_program(px::plan_program(w.image), w.image.width(),
                                            w.image.height(), fake_gpu(false), forced);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == px::ErrorCode::unsupported);
}
