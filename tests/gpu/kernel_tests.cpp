// The scheduled kernels (Path B: one kernel per instruction, scheduled by
// runtime/src/vulkan/scheduler.cpp) against the reference interpreter, for every kernel variant
// this build and device can run: every opcode and dtype, edge values, misaligned shapes and
// origins, every matmul tile and its sizes +-1, in-place operations, faults, lavapipe's loop
// budget, the 512x512x1024 matmul the GPU interpreter cannot finish, and the generated programs
// of the differential test. Padding bytes hold random values, so a kernel that reads or writes
// them differs from the reference.
#include "gpu_support.hpp"

#include "program_builder.hpp"
#include "program_generator.hpp"

#include "pxvm/embedded_kernels.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/run_program.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

using px::Image;
using px::vk::KernelVariant;
using pxtest::ProgramWriter;

namespace {

constexpr std::uint32_t U8 = px::DTYPE_U8, I8 = px::DTYPE_I8, U16 = px::DTYPE_U16,
                        I32 = px::DTYPE_I32;
constexpr std::int64_t INT_MIN32 = -2147483648LL, INT_MAX32 = 2147483647LL;

using Tile = std::pair<std::uint32_t, std::uint32_t>;

/// A validated runtime, its preferred device and the variants available there.
struct Gpu {
    px::vk::Runtime runtime;
    px::vk::Device device;
    std::vector<KernelVariant> variants;
};

Gpu open_gpu() {
    px::vk::Runtime runtime = pxtest::gpu::make_runtime();
    px::vk::Device device = pxtest::gpu::open_device(runtime);
    std::vector<KernelVariant> variants;
    for (const px::vk::VariantSupport& s : px::vk::variant_support(device.info()))
        if (s.available) variants.push_back(s.variant);
    // The portable variant needs nothing beyond Vulkan 1.2: it must run everywhere.
    REQUIRE(std::find(variants.begin(), variants.end(), KernelVariant::portable) != variants.end());
    return Gpu{std::move(runtime), std::move(device), std::move(variants)};
}

/// The result of one scheduled run.
struct ScheduledRun {
    Image image;
    px::RunStatus status{};
    px::vk::Schedule schedule;
};

/// Runs `program` through the kernels of `variant` (and a forced matmul tile, if any).
ScheduledRun run_scheduled(px::vk::Device& device, const Image& program, KernelVariant variant,
                           std::optional<Tile> tile = std::nullopt,
                           std::optional<std::uint32_t> k_words = std::nullopt) {
    px::vk::ScheduleOptions options{variant};
    options.matmul_tile = tile;
    options.matmul_k_words = k_words;
    auto schedule = px::vk::schedule_program(px::plan_program(program), program.width(),
                                             program.height(), device.info(), options);
    if (!schedule) FAIL(schedule.error().message);
    ScheduledRun run{program, {}, std::move(schedule.value())};
    auto gpu = device.run(run.schedule.dispatches, run.image);
    if (!gpu) FAIL(gpu.error().message);
    run.status = gpu->status;
    return run;
}

/// Whether a scheduled run equals the reference interpreter, pixel for pixel and status for status.
bool matches_reference(const Image& program, const ScheduledRun& run) {
    const px::Verification v = px::verify_against_reference(program, run.image, run.status);
    if (!v.matches())
        UNSCOPED_INFO(px::describe(v.difference) << "; " << v.status_mismatch << " " << v.note);
    return v.matches();
}

/// Runs `program` through every available variant; each must equal the reference.
void check_kernels(Gpu& gpu, const Image& program, const std::string& what,
                   std::optional<Tile> tile = std::nullopt,
                   std::optional<std::uint32_t> k_words = std::nullopt) {
    for (KernelVariant variant : gpu.variants) {
        INFO(what << " (" << program.width() << "x" << program.height() << "), "
                  << px::vk::to_string(variant)
                  << (tile ? " tile " + std::to_string(tile->first) + "x" +
                                 std::to_string(tile->second)
                           : std::string())
                  << (k_words ? " step " + std::to_string(*k_words) + " words" : std::string()));
        const ScheduledRun run = run_scheduled(gpu.device, program, variant, tile, k_words);
        CHECK(matches_reference(program, run));
    }
}

/// Random bytes in every pixel of rows 1.. (tensor data, padding, the bytes around tensors).
void randomize(Image& image, std::uint32_t seed) {
    std::mt19937 rng(seed);
    for (std::uint32_t y = 1; y < image.height(); ++y)
        for (std::uint32_t x = 0; x < image.width(); ++x) {
            const std::uint32_t v = rng();
            image.set_pixel(x, y,
                            {std::uint8_t(v), std::uint8_t(v >> 8), std::uint8_t(v >> 16),
                             std::uint8_t(v >> 24)});
        }
}

/// `count` values drawn from `pool`.
std::vector<std::int64_t> values_from(std::mt19937& rng, const std::vector<std::int64_t>& pool,
                                      std::size_t count) {
    std::vector<std::int64_t> v(count);
    for (auto& x : v)
        x = pool[rng() % pool.size()];
    return v;
}

std::vector<std::int64_t> uniform_values(std::mt19937& rng, std::uint32_t dtype,
                                         std::size_t count) {
    const std::int64_t lo = px::dtype_min(dtype), hi = px::dtype_max(dtype);
    std::uniform_int_distribution<std::int64_t> d(lo, hi);
    std::vector<std::int64_t> v(count);
    for (auto& x : v)
        x = d(rng);
    return v;
}

/// A matmul program: a (M x K) at (ax, 1), b (N x K) below it at (bx, ..), c (M x N) below that.
ProgramWriter matmul_program(std::uint32_t m, std::uint32_t n, std::uint32_t k, std::uint32_t dtype,
                             std::uint32_t ax, std::uint32_t bx, std::uint32_t cx,
                             std::uint32_t seed) {
    const std::uint32_t kw = (k + 3) / 4;
    const std::uint32_t width = std::max({16u, ax + kw, bx + kw, cx + n});
    ProgramWriter b(width, 1 + m + n + m);
    randomize(b.image, seed);
    b.tensor(1, dtype, ax, 1, m, k)
        .tensor(2, dtype, bx, 1 + m, n, k)
        .tensor(3, I32, cx, 1 + m + n, m, n)
        .matmul(3, 1, 2)
        .halt();
    return b;
}

} // namespace

TEST_CASE("kernels: variant names, support and forced variants", "[kernels]") {
    using px::vk::variant_from_name;
    CHECK(px::vk::to_string(KernelVariant::portable) == "portable");
    CHECK(px::vk::to_string(KernelVariant::int_dot) == "int-dot");
    CHECK(variant_from_name("portable") == KernelVariant::portable);
    CHECK(variant_from_name("int-dot") == KernelVariant::int_dot);
    CHECK_FALSE(variant_from_name("int_dot").has_value());
    CHECK_FALSE(variant_from_name("").has_value());

    Gpu gpu = open_gpu();
    const px::vk::DeviceInfo& info = gpu.device.info();
    std::cout << "scheduled kernels on " << info.name << ":";
    for (const px::vk::VariantSupport& s : px::vk::variant_support(info))
        std::cout << " " << px::vk::to_string(s.variant) << " "
                  << (s.available ? "yes" : "no (" + s.reason + ")");
    std::cout << "\n";
    const bool int_dot_built = px::find_kernel("matmul_intdot") && px::find_kernel("dot_intdot");
    const bool int_dot_here = int_dot_built && info.features.integer_dot_product.supported;
    CHECK((std::find(gpu.variants.begin(), gpu.variants.end(), KernelVariant::int_dot) !=
           gpu.variants.end()) == int_dot_here);

    // A device without integer dot products (nor tensor cores): int-dot is unavailable, and
    // forcing it is an error.
    px::vk::DeviceInfo without = info;
    without.features.integer_dot_product.supported = false;
    without.features.cooperative_matrix_nv = false;
    const auto support = px::vk::variant_support(without);
    REQUIRE(support.size() == 3);
    CHECK_FALSE(support[2].available);
    CHECK(support[0].variant == KernelVariant::portable);
    CHECK(support[0].available);
    CHECK(support[1].variant == KernelVariant::int_dot);
    CHECK_FALSE(support[1].available);
    CHECK_THAT(support[1].reason,
               Catch::Contains(int_dot_built ? "shaderIntegerDotProduct" : "matmul_intdot"));
    const ProgramWriter tiny = pxtest::tiny_network();
    const px::Plan plan = px::plan_program(tiny.image);
    const std::uint32_t w = tiny.image.width(), h = tiny.image.height();
    auto forced = px::vk::schedule_program(plan, w, h, without, {KernelVariant::int_dot});
    REQUIRE_FALSE(forced.ok());
    CHECK(forced.error().code == px::ErrorCode::unsupported);
    CHECK_THAT(forced.error().message, Catch::Contains("int-dot"));
    auto fallback = px::vk::schedule_program(plan, w, h, without);
    REQUIRE(fallback.ok());
    CHECK(fallback->variant == KernelVariant::portable);
    for (const auto& [op, variant] : px::vk::instruction_variants(without))
        CHECK(variant == "portable");
    for (const auto& [op, variant] :
         px::vk::instruction_variants(without, {KernelVariant::int_dot}))
        CHECK_THAT(variant, Catch::StartsWith("unavailable"));

    // On this device: the fastest available variant by default, for matmul and dot only.
    const auto& dot = info.features.integer_dot_product;
    const KernelVariant scalar =
        int_dot_here && (dot.packed_4x8_signed_accelerated || dot.packed_4x8_unsigned_accelerated)
            ? KernelVariant::int_dot
            : KernelVariant::portable;
    const bool coopmat_here = px::vk::variant_support(info)[2].available;
    const KernelVariant fastest = coopmat_here ? KernelVariant::coopmat_nv : scalar;
    auto best = px::vk::schedule_program(plan, w, h, info);
    REQUIRE(best.ok());
    CHECK(best->variant == fastest);
    std::map<std::string, std::string> kinds;
    for (const auto& [op, variant] : px::vk::instruction_variants(info))
        kinds[op] = variant;
    CHECK(kinds.size() == px::instruction_table().size() - 2); // all but halt and tensor
    const std::string scalar_name(px::vk::to_string(scalar));
    CHECK(kinds["matmul"] ==
          (coopmat_here ? "coopmat-nv (" + scalar_name + " up to 16 rows)" : scalar_name));
    CHECK(kinds["dot"] == scalar_name);
    CHECK(kinds["relu"] == "portable");
    CHECK(kinds["gather_mean"] == "portable");
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: the schedule of a program", "[kernels]") {
    Gpu gpu = open_gpu();
    const px::vk::DeviceInfo& info = gpu.device.info();
    const ProgramWriter tiny = pxtest::tiny_network();
    const px::Plan plan = px::plan_program(tiny.image);
    auto schedule = px::vk::schedule_program(plan, tiny.image.width(), tiny.image.height(), info,
                                             {KernelVariant::portable});
    REQUIRE(schedule.ok());
    // 8 declarations dispatch nothing; gather_mean is a check and the mean; finish comes last.
    std::vector<std::string> labels;
    for (const px::vk::Dispatch& d : schedule->dispatches)
        labels.push_back(d.label);
    const std::vector<std::string> expected = {
        "pc 24 gather_mean check", "pc 24 gather_mean 1 words",
        "pc 25 requant",           "pc 28 matmul portable 16x16",
        "pc 29 add_bias",          "pc 30 relu",
        "pc 31 argmax 1 lanes",    "finish"};
    CHECK(labels == expected);
    REQUIRE(schedule->steps.size() == 6);
    std::size_t next = 0;
    for (const px::vk::ScheduledStep& s : schedule->steps) {
        CHECK(s.first == next);
        CHECK(s.count >= 1);
        next = s.first + s.count;
    }
    CHECK(next + 1 == schedule->dispatches.size());
    CHECK(schedule->steps[0].opcode == px::OP_GATHER_MEAN);
    CHECK(schedule->steps[0].count == 2);
    CHECK(schedule->steps[2].kernel == "matmul_portable");
    CHECK(schedule->steps[2].variant == "portable");
    CHECK(schedule->steps[2].pc == 28);
    const std::uint32_t k_words = info.type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 16 : 32;
    CHECK(px::vk::matmul_k_words(info) == k_words);
    CHECK(schedule->dispatches[3].specialization == std::vector<std::uint32_t>{16, 16, 1, k_words});
    CHECK(schedule->dispatches.back().kernel == "finish");

    // A program whose first instruction faults statically is just finish.
    ProgramWriter bad(8, 4);
    bad.op(99);
    auto faulted = px::vk::schedule_program(px::plan_program(bad.image), 8, 4, info);
    REQUIRE(faulted.ok());
    REQUIRE(faulted->dispatches.size() == 1);
    CHECK(faulted->dispatches[0].kernel == "finish");
    CHECK(faulted->steps.empty());

    // Tiles by shape.
    CHECK(px::vk::matmul_tile(1, 4096) == Tile{16, 16});
    CHECK(px::vk::matmul_tile(1, 8192) == Tile{16, 32});
    CHECK(px::vk::matmul_tile(16, 16384) == Tile{16, 64});
    CHECK(px::vk::matmul_tile(16, 16) == Tile{16, 16});
    CHECK(px::vk::matmul_tile(17, 17) == Tile{32, 32});
    CHECK(px::vk::matmul_tile(512, 512) == Tile{32, 32});   // 64 tiles of 64x64: too few
    CHECK(px::vk::matmul_tile(1024, 512) == Tile{64, 64});  // 128 tiles
    CHECK(px::vk::matmul_tile(4096, 4096) == Tile{64, 64}); // 4096 tiles
    auto bad_tile = px::vk::schedule_program(plan, tiny.image.width(), tiny.image.height(), info,
                                             {KernelVariant::portable, Tile{8, 64}});
    CHECK_FALSE(bad_tile.ok());
    px::vk::ScheduleOptions bad_k{KernelVariant::portable};
    bad_k.matmul_k_words = 8;
    CHECK_FALSE(px::vk::schedule_program(plan, 64, 8, info, bad_k).ok());
}

TEST_CASE("kernels: a small integer network", "[kernels]") {
    Gpu gpu = open_gpu();
    const ProgramWriter b = pxtest::tiny_network();
    for (KernelVariant variant : gpu.variants) {
        INFO(px::vk::to_string(variant));
        const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
        CHECK(b.read(6, run.image) == std::vector<std::int64_t>{0, 7, 139});
        CHECK(b.read(8, run.image) == std::vector<std::int64_t>{2});
        CHECK(run.status.fault_code == 0);
        CHECK(run.status.halted == 1);
        CHECK(run.status.executed == 14);
        CHECK(matches_reference(b.image, run));
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: dot_rgb, the seed's instruction", "[kernels]") {
    Gpu gpu = open_gpu();
    {
        ProgramWriter b(16, 16);
        b.dot_rgb(1, 2, 3).halt();
        for (std::uint8_t x = 0; x < 4; ++x) {
            b.image.set_pixel(x, 1, {std::uint8_t(x + 1), 0, 0, 255});
            b.image.set_pixel(x, 2, {std::uint8_t(10 * (x + 1)), 0, 0, 255});
        }
        for (KernelVariant variant : gpu.variants) {
            const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
            CHECK(run.image.pixel(0, 3) == px::Pixel{44, 1, 0, 0});
            CHECK(matches_reference(b.image, run));
        }
    }
    for (std::uint32_t width : {1u, 2u, 255u, 257u, 1000u, 32768u}) {
        // Rows without a common zero (n = W), sums past 2^16, and rows that end at a zero pair;
        // the output row is an input row.
        ProgramWriter b(width, 6);
        randomize(b.image, width);
        std::mt19937 rng(width);
        for (std::uint32_t x = 0; x < width; ++x) {
            b.image.set_pixel(x, 1, {std::uint8_t(1 + rng() % 255), 0, 0, 0});
            b.image.set_pixel(x, 3, {std::uint8_t(x == width * 2 / 3 ? 0 : 255), 9, 9, 9});
            b.image.set_pixel(x, 4, {std::uint8_t(x >= width * 2 / 3 && x % 2 ? 0 : 200), 0, 0, 0});
        }
        if (width >= 3) b.dot_rgb(1, 1, 2).dot_rgb(3, 4, 3);
        if (width >= 4) b.dot_rgb(4, 3, 5);
        check_kernels(gpu, b.image, "dot_rgb W=" + std::to_string(width));
    }
    // Long runs of dot_rgb over few rows, so batches meet every rule: rows written twice, rows
    // read after a write, outputs that are inputs.
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
        ProgramWriter b(300, 8);
        randomize(b.image, seed);
        std::mt19937 rng(seed);
        for (int i = 0; i < 200; ++i)
            b.dot_rgb(std::uint8_t(1 + rng() % 7), std::uint8_t(1 + rng() % 7),
                      std::uint8_t(1 + rng() % (seed % 2 ? 7 : 2)));
        check_kernels(gpu, b.image, "dot_rgb runs, seed " + std::to_string(seed));
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: dot of u8 and i8 tensors", "[kernels]") {
    Gpu gpu = open_gpu();
    struct Shape {
        std::uint32_t rows, cols, ax, bx;
    };
    // Single words, partial words, rows at odd origins, more words than one workgroup takes
    // (2048), and enough 255 * 255 products to wrap around 2^32 (258 x 258 > 66052).
    const std::vector<Shape> shapes = {{1, 1, 0, 5},        {1, 5, 1, 7},     {3, 7, 3, 0},
                                       {17, 33, 1, 13},     {64, 1001, 3, 0}, {258, 258, 1, 66},
                                       {300, 4001, 0, 1001}};
    for (std::uint32_t dtype : {U8, I8})
        for (const Shape& s : shapes) {
            const std::uint32_t pw = (s.cols + 3) / 4;
            ProgramWriter b(std::max({16u, s.ax + pw, s.bx + pw}), 2 + 2 * s.rows);
            randomize(b.image, s.rows * 31 + s.cols);
            b.tensor(1, dtype, s.ax, 1, s.rows, s.cols)
                .tensor(2, dtype, s.bx, 1 + s.rows, s.rows, s.cols)
                .tensor(3, I32, 1, 1 + 2 * s.rows, 1, 1)
                .tensor(4, I32, 3, 1 + 2 * s.rows, 1, 1)
                .dot(3, 1, 2)
                .dot(4, 2, 2) // a second dot: the partial sum starts from 0 again
                .halt();
            std::mt19937 rng(s.cols);
            const std::size_t n = std::size_t(s.rows) * s.cols;
            if (s.rows == 258) { // the extremes, so that the sum wraps
                const std::int64_t e = dtype == U8 ? 255 : -128;
                b.fill(1, std::vector<std::int64_t>(n, e)).fill(2, std::vector<std::int64_t>(n, e));
            } else {
                b.fill(1, uniform_values(rng, dtype, n)).fill(2, uniform_values(rng, dtype, n));
            }
            check_kernels(gpu, b.image,
                          "dot " + std::string(px::dtype_name(dtype)) + " " +
                              std::to_string(s.rows) + "x" + std::to_string(s.cols));
        }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: matmul shapes, origins and tiles", "[kernels]") {
    Gpu gpu = open_gpu();
    struct Shape {
        std::uint32_t m, n, k, ax, bx, cx;
    };
    // M, N, K not multiples of 4, 16 or 64; K of one partial word up to several steps of 64
    // bytes; tensors at odd x.
    const std::vector<Shape> shapes = {
        {1, 1, 1, 0, 0, 0},     {1, 1, 5, 1, 3, 2},     {3, 5, 7, 3, 1, 1},
        {2, 9, 64, 0, 1, 3},    {7, 3, 65, 1, 0, 2},    {17, 15, 63, 3, 5, 1},
        {20, 70, 300, 1, 2, 3}, {1, 100, 200, 0, 3, 1}, {100, 1, 129, 2, 1, 0},
    };
    std::uint32_t seed = 1;
    for (std::uint32_t dtype : {U8, I8})
        for (const Shape& s : shapes) {
            const ProgramWriter b = matmul_program(s.m, s.n, s.k, dtype, s.ax, s.bx, s.cx, seed++);
            check_kernels(gpu, b.image,
                          "matmul " + std::string(px::dtype_name(dtype)) + " " +
                              std::to_string(s.m) + "x" + std::to_string(s.n) + "x" +
                              std::to_string(s.k));
        }
    // Every tile configuration with M and N at its size and +-1, K around one step.
    for (std::uint32_t tm : {16u, 32u, 64u})
        for (std::uint32_t tn : {16u, 32u, 64u})
            for (int d : {-1, 0, 1}) {
                const std::uint32_t m = tm + d, n = tn - d, k = 64 + 3 * d;
                const std::uint32_t dtype = d == 0 ? I8 : U8;
                const ProgramWriter b = matmul_program(m, n, k, dtype, 1, 2, 3, seed++);
                check_kernels(gpu, b.image,
                              "matmul " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                                  std::to_string(k),
                              Tile{tm, tn});
            }
    // Several tiles in both directions with the default tile choice, and both K steps (16 and 32
    // words: K around one and two steps of either).
    for (std::uint32_t dtype : {U8, I8}) {
        const ProgramWriter b = matmul_program(65, 97, 131, dtype, 1, 0, 1, seed++);
        check_kernels(gpu, b.image, "matmul 65x97x131");
    }
    for (std::uint32_t k_words : {16u, 32u})
        for (std::uint32_t k : {127u, 128u, 129u, 255u, 256u, 257u}) {
            const std::uint32_t dtype = k % 2 ? U8 : I8;
            const ProgramWriter b = matmul_program(33, 18, k, dtype, 3, 1, 2, seed++);
            check_kernels(gpu, b.image, "matmul 33x18x" + std::to_string(k), Tile{32, 16}, k_words);
        }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: matmul edge values and wrap-around", "[kernels]") {
    Gpu gpu = open_gpu();
    // The largest products everywhere; then K = 66100 bytes of 255 * 255, whose sum wraps 2^32.
    for (std::uint32_t dtype : {U8, I8})
        for (std::uint32_t k : {67u, 66100u}) {
            // 20 rows: the tensor-core kernels take matmuls of more than 16.
            const std::uint32_t m = k > 1000 ? 20 : 33, n = k > 1000 ? 3 : 35;
            ProgramWriter b = matmul_program(m, n, k, dtype, 1, 2, 0, k);
            const std::int64_t lo = px::dtype_min(dtype), hi = px::dtype_max(dtype);
            std::mt19937 rng(k);
            b.fill(1, values_from(rng, {lo, hi}, std::size_t(m) * k));
            b.fill(2, values_from(rng, {lo, hi, lo}, std::size_t(n) * k));
            check_kernels(gpu, b.image, "matmul extremes K=" + std::to_string(k));
        }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: every tensor-core tile, at its size and +-1, with aligned and odd origins",
          "[kernels]") {
    Gpu gpu = open_gpu();
    const std::vector<px::vk::CoopmatTile> tiles = px::vk::coopmat_tiles(gpu.device.info());
    if (std::find(gpu.variants.begin(), gpu.variants.end(), KernelVariant::coopmat_nv) ==
        gpu.variants.end()) {
        WARN("no coopmat-nv on " << gpu.device.info().name << ": its matmuls are not tested here");
        return;
    }
    REQUIRE_FALSE(tiles.empty());
    std::uint32_t seed = 7;
    for (const px::vk::CoopmatTile& tile : tiles)
        for (int d : {-1, 0, 1}) {
            // C one tile +-1 in each direction (two by two tiles for +1), K two steps +-3 bytes;
            // with d = 0 every row 16-byte aligned (128-bit loads, C stored directly).
            const std::uint32_t m = tile.m + (d > 0 ? tile.m + 1 : d), n = tile.n - d;
            const std::uint32_t k = 2 * tile.k + 3 * d, kw = (k + 3) / 4;
            const bool aligned = d == 0;
            const std::uint32_t ax = aligned ? 0 : 1, bx = aligned ? (kw + 3) / 4 * 4 : kw + 3;
            const std::uint32_t cx = aligned ? 4 : 1;
            const std::uint32_t width =
                (std::max({bx + kw, cx + n}) + 3) / 4 * 4 + (aligned ? 0 : 1);
            const std::uint32_t dtype = d < 0 ? U8 : I8;
            ProgramWriter b(width, 1 + std::max(m, n) + m);
            randomize(b.image, seed++);
            b.tensor(1, dtype, ax, 1, m, k)
                .tensor(2, dtype, bx, 1, n, k)
                .tensor(3, I32, cx, 1 + std::max(m, n), m, n)
                .matmul(3, 1, 2)
                .halt();
            INFO("tile " << tile.name() << ", matmul " << px::dtype_name(dtype) << " " << m << "x"
                         << n << "x" << k << (aligned ? " aligned" : " at odd x"));
            px::vk::ScheduleOptions options{KernelVariant::coopmat_nv};
            options.coopmat_tile = tile;
            auto schedule = px::vk::schedule_program(px::plan_program(b.image), width,
                                                     b.image.height(), gpu.device.info(), options);
            REQUIRE(schedule.ok());
            ScheduledRun run{b.image, {}, std::move(schedule.value())};
            auto ran = gpu.device.run(run.schedule.dispatches, run.image);
            REQUIRE(ran.ok());
            run.status = ran->status;
            CHECK(matches_reference(b.image, run));
        }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: relu in 128-bit vectors and word by word", "[kernels]") {
    Gpu gpu = open_gpu();
    std::uint32_t seed = 40;
    // Aligned rows (x and width multiples of 4) move in vectors, except a last partial pixel or
    // vector; odd x or width go word by word; in place and into another region.
    for (std::uint32_t dtype : {U8, I8, U16, I32})
        for (std::uint32_t width : {64u, 67u})
            for (std::uint32_t x : {0u, 4u, 3u})
                for (int d : {-1, 0, 1})
                    for (bool in_place : {false, true}) {
                        const std::uint32_t per = 4 / px::dtype_size(dtype);
                        const std::uint32_t cols = std::uint32_t(int(per * 16) + d), rows = 5;
                        ProgramWriter b(width, 1 + 2 * rows);
                        randomize(b.image, seed++);
                        b.tensor(1, dtype, x, 1, rows, cols)
                            .tensor(2, dtype, x, 1 + rows, rows, cols)
                            .relu(in_place ? 1 : 2, 1)
                            .halt();
                        check_kernels(gpu, b.image,
                                      "relu " + std::string(px::dtype_name(dtype)) + " " +
                                          std::to_string(rows) + "x" + std::to_string(cols) +
                                          " at x " + std::to_string(x) + " of " +
                                          std::to_string(width) + (in_place ? " in place" : ""));
                    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: add_bias, requant and relu", "[kernels]") {
    Gpu gpu = open_gpu();
    std::mt19937 rng(7);
    const std::vector<std::int64_t> edges = {0,
                                             1,
                                             -1,
                                             2,
                                             -2,
                                             3,
                                             -3,
                                             5,
                                             -5,
                                             7,
                                             127,
                                             -128,
                                             255,
                                             256,
                                             -129,
                                             65535,
                                             1 << 20,
                                             INT_MAX32,
                                             INT_MIN32,
                                             INT_MAX32 - 1,
                                             INT_MIN32 + 1};
    SECTION("add_bias wraps") {
        for (std::uint32_t cols : {1u, 5u, 300u}) {
            ProgramWriter b(std::max(16u, 2 * cols + 2), 40);
            randomize(b.image, cols);
            b.tensor(1, I32, 1, 1, 37, cols).tensor(2, I32, cols + 1, 3, 1, cols).add_bias(1, 2);
            b.add_bias(1, 2).halt(); // twice: the second sees the first's writes
            b.fill(1, values_from(rng, edges, 37 * std::size_t(cols)));
            b.fill(2, values_from(rng, edges, cols));
            check_kernels(gpu, b.image, "add_bias cols " + std::to_string(cols));
        }
    }
    SECTION("requant: rounding ties, shifts, saturation, in place") {
        const std::vector<std::int32_t> multipliers = {1, -1, 3, 1 << 30, INT32_MAX, INT32_MIN};
        const std::vector<std::uint8_t> shifts = {0, 1, 2, 30, 31, 32, 33, 61, 62};
        const std::vector<std::int8_t> zero_points = {0, -128, 127, 5};
        for (std::uint32_t out_dtype : {U8, I8, I32})
            for (std::uint32_t cols : {1u, 3u, 6u, 9u}) {
                // One program per shape: the input, then every multiplier and shift into out.
                ProgramWriter b(1024, 12);
                randomize(b.image, out_dtype * 10 + cols);
                b.tensor(1, I32, 1, 1, 5, cols).tensor(2, out_dtype, 11, 6, 5, cols);
                b.fill(1, values_from(rng, edges, 5 * std::size_t(cols)));
                std::uint32_t i = 0;
                for (std::int32_t mul : multipliers)
                    for (std::uint8_t shift : shifts) {
                        const std::int8_t zp = zero_points[i++ % zero_points.size()];
                        if (b.pc + 6 >= b.image.width()) break;
                        b.requant(2, 1, mul, shift, zp);
                        if (i % 5 == 0) b.relu(2, 2); // keeps the values moving
                    }
                if (out_dtype == I32) b.requant(1, 1, -3, 1, -7); // in place, i32 only
                b.halt();
                check_kernels(gpu, b.image,
                              "requant to " + std::string(px::dtype_name(out_dtype)) + " cols " +
                                  std::to_string(cols));
            }
        // A single requant whose last result the test knows: ties toward +infinity.
        ProgramWriter b(32, 4);
        b.tensor(1, I32, 0, 1, 1, 6).tensor(2, I8, 8, 1, 1, 6).requant(2, 1, 1, 1, 0).halt();
        b.fill(1, {5, -5, 3, -3, 1000, -1000});
        for (KernelVariant variant : gpu.variants) {
            const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
            CHECK(b.read(2, run.image) == std::vector<std::int64_t>{3, -2, 2, -1, 127, -128});
            CHECK(matches_reference(b.image, run));
        }
    }
    SECTION("relu in every dtype, in place and not") {
        for (std::uint32_t dtype : {U8, I8, U16, I32})
            for (std::uint32_t cols : {1u, 2u, 3u, 5u, 7u, 9u, 1030u}) {
                const std::uint32_t pw = (px::dtype_size(dtype) * cols + 3) / 4;
                ProgramWriter b(std::max(16u, 2 * pw + 3), 12);
                randomize(b.image, dtype * 100 + cols);
                b.tensor(1, dtype, 1, 1, 4, cols)
                    .tensor(2, dtype, pw + 2, 1, 4, cols)
                    .tensor(3, dtype, 3, 6, 5, cols)
                    .relu(2, 1)  // out of place
                    .relu(3, 3)  // in place
                    .relu(1, 1); // in place after being read
                b.fill(1, uniform_values(rng, dtype, 4 * std::size_t(cols)));
                b.fill(3, values_from(rng, {px::dtype_min(dtype), -1, 0, 1, px::dtype_max(dtype)},
                                      5 * std::size_t(cols)));
                check_kernels(gpu, b.image,
                              "relu " + std::string(px::dtype_name(dtype)) + " cols " +
                                  std::to_string(cols));
            }
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: argmax", "[kernels]") {
    Gpu gpu = open_gpu();
    std::mt19937 rng(11);
    for (std::uint32_t in_dtype : {U8, I8, U16, I32})
        for (std::uint32_t out_dtype : {U16, I32})
            for (std::uint32_t cols : {1u, 4u, 5u, 40u, 1001u, 5000u})
                for (std::uint32_t x : {2u, 0u}) { // at x 0 of a width of 4k: aligned chunks
                    const std::uint32_t rows = cols > 1000 ? 3 : 300;
                    const std::uint32_t pw = (px::dtype_size(in_dtype) * cols + 3) / 4;
                    const std::uint32_t width =
                        x == 0 ? (std::max(16u, pw) + 3) / 4 * 4 : std::max(16u, pw + 2);
                    ProgramWriter b(width, 2 * rows + 1);
                    randomize(b.image, cols + in_dtype);
                    b.tensor(1, in_dtype, x, 1, rows, cols)
                        .tensor(2, out_dtype, 0, 1 + rows, rows, 1)
                        .argmax(2, 1)
                        .halt();
                    REQUIRE_FALSE(px::plan_program(b.image).fault); // runs, not a static fault
                    // Few distinct values, so that ties are everywhere; the extremes included.
                    const std::int64_t lo = px::dtype_min(in_dtype), hi = px::dtype_max(in_dtype);
                    b.fill(1, values_from(rng, {lo, lo + 1, 0, hi - 1, hi, hi},
                                          rows * std::size_t(cols)));
                    check_kernels(gpu, b.image,
                                  "argmax " + std::string(px::dtype_name(in_dtype)) + " -> " +
                                      std::string(px::dtype_name(out_dtype)) + " cols " +
                                      std::to_string(cols) + " at x " + std::to_string(x));
                }
    // Every row equal: index 0; the maximum only in the last column.
    ProgramWriter b(64, 8);
    b.tensor(1, I8, 0, 1, 2, 200).tensor(2, I32, 60, 1, 2, 1).argmax(2, 1).halt();
    std::vector<std::int64_t> values(400, -7);
    values[399] = -6;
    b.fill(1, values);
    for (KernelVariant variant : gpu.variants) {
        const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
        CHECK(b.read(2, run.image) == std::vector<std::int64_t>{0, 199});
        CHECK(matches_reference(b.image, run));
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: gather_mean", "[kernels]") {
    Gpu gpu = open_gpu();
    std::mt19937 rng(13);
    for (std::uint32_t table_dtype : {U8, I8})
        for (std::uint32_t token_dtype : {U8, U16, I32})
            for (std::uint32_t cols : {1u, 5u, 200u})
                for (int end : {0, 1, 2}) { // T = 0; an id 0 inside; no id 0 at all
                    const std::uint32_t table_rows = token_dtype == U8 ? 200 : 300;
                    const std::uint32_t token_rows = 3, token_cols = 37;
                    const std::uint32_t pw = (cols + 3) / 4;
                    ProgramWriter b(std::max({64u, pw + 1, cols + 1}), table_rows + 8);
                    randomize(b.image, cols * 7 + table_dtype + token_dtype + end);
                    b.tensor(1, table_dtype, 1, 1, table_rows, cols)
                        .tensor(2, token_dtype, 0, table_rows + 1, token_rows, token_cols)
                        .tensor(3, I32, 0, table_rows + 5, 1, cols)
                        .gather_mean(3, 1, 2)
                        .halt();
                    b.fill(1, uniform_values(rng, table_dtype, table_rows * std::size_t(cols)));
                    std::vector<std::int64_t> ids(token_rows * token_cols);
                    for (auto& id : ids)
                        id = 1 + rng() % (table_rows - 1);
                    ids[1] = table_rows - 1; // the largest valid id
                    if (end == 0) ids[0] = 0;
                    if (end == 1) {
                        ids[50] = 0;
                        ids[60] = table_rows; // out of range, but after the end
                    }
                    b.fill(2, ids);
                    check_kernels(gpu, b.image,
                                  "gather_mean " + std::string(px::dtype_name(table_dtype)) +
                                      " table, " + std::string(px::dtype_name(token_dtype)) +
                                      " tokens, cols " + std::to_string(cols) + ", end " +
                                      std::to_string(end));
                }
    // Means that are ties: (-2.5 -> -2, 2.5 -> 3), and 65536 tokens (the most allowed).
    ProgramWriter b(300, 270);
    b.tensor(1, I8, 0, 1, 3, 2)
        .tensor(2, U16, 0, 4, 256, 256)
        .tensor(3, I32, 200, 1, 1, 2)
        .tensor(4, U8, 0, 4, 2, 1)
        .tensor(5, I32, 210, 1, 1, 2)
        .gather_mean(3, 1, 2)
        .gather_mean(5, 1, 4)
        .halt();
    b.fill(1, {0, 0, -3, 3, -2, 2});
    std::vector<std::int64_t> ids(65536);
    for (std::size_t i = 0; i < ids.size(); ++i)
        ids[i] = 1 + i % 2; // every row twice, never 0: sums -5 * 32768, 5 * 32768
    b.fill(2, ids);
    for (KernelVariant variant : gpu.variants) {
        const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
        CHECK(b.read(3, run.image) == std::vector<std::int64_t>{-2, 3});
        CHECK(matches_reference(b.image, run));
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: embed", "[kernels]") {
    Gpu gpu = open_gpu();
    std::mt19937 rng(17);
    for (std::uint32_t table_dtype : {U8, I8})
        for (std::uint32_t token_dtype : {U8, U16, I32})
            for (std::uint32_t cols : {1u, 3u, 8u, 24u})
                for (std::uint32_t window : {1u, 5u, 16u}) {
                    // 300 rows of windows: more than one workgroup of output words
                    const std::uint32_t table_rows = 250, batch = 300;
                    const std::uint32_t out_words = (window * cols + 3) / 4;
                    ProgramWriter b(std::max(64u, 2 + out_words + window), table_rows + batch + 2);
                    randomize(b.image, cols * 131 + window * 7 + table_dtype + token_dtype);
                    b.tensor(1, table_dtype, 1, 1, table_rows, cols)
                        .tensor(2, token_dtype, 1, table_rows + 1, batch, window)
                        .tensor(3, table_dtype, 2 + window, table_rows + 1, batch, window * cols)
                        .embed(3, 1, 2)
                        .halt();
                    std::vector<std::int64_t> ids(std::size_t(batch) * window);
                    for (auto& id : ids)
                        id = rng() % table_rows;
                    ids[1] = table_rows - 1; // the largest valid id
                    b.fill(2, ids);
                    check_kernels(gpu, b.image,
                                  "embed " + std::string(px::dtype_name(table_dtype)) + " table, " +
                                      std::string(px::dtype_name(token_dtype)) + " tokens, cols " +
                                      std::to_string(cols) + ", window " + std::to_string(window));
                }
    // An id out of range anywhere (after a 0 too) is TOKEN_RANGE: nothing after it runs.
    for (std::int64_t bad : {std::int64_t(250), std::int64_t(-1), std::int64_t(70000)}) {
        ProgramWriter b(96, 300);
        randomize(b.image, std::uint32_t(bad & 255));
        b.tensor(1, I8, 0, 1, 250, 6)     // table
            .tensor(2, I32, 10, 1, 40, 8) // tokens
            .tensor(3, I8, 20, 1, 40, 48) // windows
            .tensor(4, I8, 40, 1, 4, 6)   // relu target
            .relu(4, 4)                   // runs
            .embed(3, 1, 2)               // faults
            .relu(1, 1)                   // may not change the image
            .halt();
        std::vector<std::int64_t> ids(320, 0);
        ids[300] = bad;
        b.fill(2, ids);
        for (KernelVariant variant : gpu.variants) {
            INFO("bad id " << bad << ", " << px::vk::to_string(variant));
            const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
            CHECK(run.status.fault_code == px::FAULT_TOKEN_RANGE);
            CHECK(run.status.fault_pc == 13);
            CHECK(run.status.executed == 5);
            CHECK(matches_reference(b.image, run));
        }
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

namespace {

/// An attention program: a random cache of `positions` x `slots` blocks of keys then values (d
/// each), `rows` query rows with where = the given (slot, position) pairs, and one attend.
ProgramWriter attend_program(std::uint32_t d, std::uint32_t heads, std::uint32_t slots,
                             std::uint32_t positions,
                             const std::vector<std::pair<std::int64_t, std::int64_t>>& where,
                             std::uint32_t multiplier, std::uint8_t shift, std::uint32_t seed) {
    const auto rows = std::uint32_t(where.size());
    const std::uint32_t cache_words = slots * 2 * d / 4;
    ProgramWriter b(std::max(32u, cache_words), 1 + positions + 3 * rows);
    randomize(b.image, seed); // caches, queries and padding: random bytes
    b.tensor(1, I8, 0, 1, positions, slots * 2 * d)
        .tensor(2, I8, 0, 1 + positions, rows, d)
        .tensor(3, I32, 0, 1 + positions + rows, rows, 2)
        .tensor(4, I8, 0, 1 + positions + 2 * rows, rows, d)
        .attend(4, 2, 1, 3, std::uint8_t(heads), multiplier, shift)
        .halt();
    std::vector<std::int64_t> pairs;
    for (const auto& [slot, position] : where) {
        pairs.push_back(slot);
        pairs.push_back(position);
    }
    b.fill(3, pairs);
    return b;
}

} // namespace

TEST_CASE("kernels: the transformer instructions add lut rmsnorm kvstore attend", "[kernels]") {
    Gpu gpu = open_gpu();
    std::mt19937 rng(29);
    // add: saturation at both ends, in place; lut: i8 and u8, in place.
    for (std::uint32_t cols : {1u, 7u, 300u}) {
        ProgramWriter b(std::max(32u, 2 * cols), 12);
        randomize(b.image, cols);
        b.tensor(1, I32, 0, 1, 3, cols)
            .tensor(2, I32, cols, 1, 3, cols)
            .add(1, 2)
            .add(2, 2)
            .tensor(3, I8, 0, 4, 2, cols)
            .tensor(4, I8, 0, 6, 1, 256)
            .tensor(5, I8, 0, 7, 2, cols)
            .lut(5, 3, 4)
            .lut(3, 3, 4)
            .tensor(6, U8, 0, 9, 2, cols)
            .tensor(7, U8, 0, 11, 1, 256)
            .lut(6, 6, 7)
            .halt();
        b.fill(1, values_from(rng, {INT_MIN32, INT_MAX32, -1, 0, 1, 1 << 30}, 3 * cols));
        b.fill(2, values_from(rng, {INT_MIN32, INT_MAX32, -1, 0, 1, 1 << 30}, 3 * cols));
        check_kernels(gpu, b.image, "add and lut, cols " + std::to_string(cols));
    }
    // rmsnorm: values past the clamp, zero rows, every shift class.
    for (std::uint32_t cols : {1u, 6u, 384u})
        for (std::uint8_t shift : {std::uint8_t(0), std::uint8_t(12), std::uint8_t(31),
                                   std::uint8_t(32), std::uint8_t(62)}) {
            ProgramWriter b(std::max(32u, cols), 24);
            randomize(b.image, cols + shift);
            b.tensor(1, I32, 0, 1, 9, cols)
                .tensor(2, I32, 0, 10, 1, cols)
                .tensor(3, I8, 0, 11, 9, cols)
                .rmsnorm(3, 1, 2, shift)
                .halt();
            auto x = uniform_values(rng, I32, 9 * std::size_t(cols));
            for (std::size_t i = 0; i < cols; ++i)
                x[i] = 0; // a zero row
            for (std::size_t i = cols; i < 2 * cols; ++i)
                x[i] = std::int64_t(rng() % 2001) - 1000; // small values
            b.fill(1, x);
            b.fill(2, values_from(rng, {INT_MIN32, INT_MAX32, -1, 0, 1, 1 << 20, 77}, cols));
            check_kernels(gpu, b.image,
                          "rmsnorm cols " + std::to_string(cols) + " shift " +
                              std::to_string(shift));
        }
    // attend: batch sizes 1, 7 and 300 (more than one workgroup), positions 0, 1 and the last,
    // heads of 4 (word-aligned) and 3 (element by element), multipliers that clamp the index.
    const std::uint32_t slots = 9, positions = 40;
    for (const auto& [d, heads] : {std::pair{64u, 2u}, std::pair{12u, 4u}, std::pair{16u, 16u}})
        for (std::uint32_t rows : {1u, 7u, 300u}) {
            std::vector<std::pair<std::int64_t, std::int64_t>> where;
            for (std::uint32_t r = 0; r < rows; ++r)
                where.emplace_back(rng() % slots, r < 3 ? std::int64_t(r == 2 ? positions - 1 : r)
                                                        : std::int64_t(rng() % positions));
            for (const auto& [multiplier, shift] :
                 {std::pair{1u, std::uint8_t(0)}, std::pair{3000u, std::uint8_t(20)},
                  std::pair{4294967295u, std::uint8_t(0)},
                  std::pair{4294967295u, std::uint8_t(62)}})
                check_kernels(
                    gpu,
                    attend_program(d, heads, slots, positions, where, multiplier, shift, rows + d)
                        .image,
                    "attend d " + std::to_string(d) + " heads " + std::to_string(heads) + " rows " +
                        std::to_string(rows) + " multiplier " + std::to_string(multiplier) +
                        " shift " + std::to_string(shift));
        }
    // kvstore then attend: a prompt of 7 positions in slot 2, then a decoding step of 3 slots.
    {
        const std::uint32_t d = 32;
        ProgramWriter b(64, 40);
        randomize(b.image, 5);
        b.tensor(1, I8, 0, 1, 16, 4 * 2 * d) // cache: 16 positions x 4 slots
            .tensor(2, I8, 0, 17, 7, 2 * d)  // keys and values of the prompt
            .tensor(3, I32, 16, 17, 7, 2)    // where of the prompt
            .tensor(4, I8, 0, 24, 7, d)      // queries
            .tensor(5, I8, 8, 24, 7, d)      // out
            .kvstore(1, 2, 3)
            .attend(5, 4, 1, 3, 2, 500, 10)
            .tensor(6, I8, 0, 31, 3, 2 * d) // a decoding step: slots 0, 2, 3
            .tensor(7, I32, 16, 31, 3, 2)
            .tensor(8, I8, 0, 34, 3, d)
            .tensor(9, I8, 8, 34, 3, d)
            .kvstore(1, 6, 7)
            .attend(9, 8, 1, 7, 2, 500, 10)
            .halt();
        b.fill(3, {2, 0, 2, 1, 2, 2, 2, 3, 2, 4, 2, 5, 2, 6});
        b.fill(7, {0, 0, 2, 7, 3, 15});
        check_kernels(gpu, b.image, "kvstore then attend");
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("attend is batch-invariant: a sequence gives the same pixels alone and in a batch",
          "[kernels]") {
    Gpu gpu = open_gpu();
    std::mt19937 rng(31);
    const std::uint32_t d = 64, heads = 4, slots = 6, positions = 24;
    // The batch: rows of other slots at other positions around row 3 = (slot 2, position 17).
    std::vector<std::pair<std::int64_t, std::int64_t>> batch;
    for (std::uint32_t r = 0; r < 9; ++r)
        batch.emplace_back(rng() % slots, rng() % positions);
    batch[3] = {2, 17};
    const ProgramWriter together = attend_program(d, heads, slots, positions, batch, 777, 14, 3);
    // Alone: the same cache and the same query row, one row.
    ProgramWriter alone = attend_program(d, heads, slots, positions, {{2, 17}}, 777, 14, 3);
    for (std::uint32_t t = 0; t < positions; ++t) // the cache: the batch program's bytes
        for (std::uint32_t w = 0; w < slots * 2 * d / 4; ++w)
            alone.image.set_pixel(w, 1 + t, together.image.pixel(w, 1 + t));
    for (std::uint32_t w = 0; w < d / 4; ++w) // the query: the batch's row 3
        alone.image.set_pixel(w, 1 + positions, together.image.pixel(w, 1 + positions + 3));

    Image reference_together = together.image, reference_alone = alone.image;
    px::run_reference(reference_together);
    px::run_reference(reference_alone);
    const std::vector<std::int64_t> row = alone.read(4, reference_alone);
    const std::vector<std::int64_t> all = together.read(4, reference_together);
    REQUIRE(row.size() == d);
    CHECK(row == std::vector<std::int64_t>(all.begin() + 3 * d, all.begin() + 4 * d));
    for (KernelVariant variant : gpu.variants) {
        INFO(px::vk::to_string(variant));
        const ScheduledRun a = run_scheduled(gpu.device, alone.image, variant);
        const ScheduledRun b = run_scheduled(gpu.device, together.image, variant);
        CHECK(alone.read(4, a.image) == row);
        const std::vector<std::int64_t> gpu_all = together.read(4, b.image);
        CHECK(std::vector<std::int64_t>(gpu_all.begin() + 3 * d, gpu_all.begin() + 4 * d) == row);
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

/// check_kernels, then the GPU interpreter too: each must equal the reference.
void check_both_paths(Gpu& gpu, const Image& program, const std::string& what) {
    check_kernels(gpu, program, what);
    INFO(what << " (" << program.width() << "x" << program.height() << "), GPU interpreter");
    Image image = program;
    auto run = gpu.device.run_interpreter(image);
    REQUIRE(run.ok());
    const px::Verification v = px::verify_against_reference(program, image, run->status);
    if (!v.matches())
        UNSCOPED_INFO(px::describe(v.difference) << "; " << v.status_mismatch << " " << v.note);
    CHECK(v.matches());
}

TEST_CASE("kernels: the transformer instructions at their extremes", "[kernels]") {
    Gpu gpu = open_gpu();
    std::mt19937 rng(20);
    SECTION("add saturates at both ends, in place too") {
        const std::vector<std::int64_t> edges = {
            0, 1, -1, INT_MAX32, INT_MIN32, INT_MAX32 - 1, INT_MIN32 + 1, 1 << 30, -(1 << 30)};
        for (std::uint32_t cols : {1u, 7u, 300u}) {
            ProgramWriter b(std::max(16u, 2 * cols + 2), 44);
            randomize(b.image, cols);
            b.tensor(1, I32, 1, 1, 37, cols).tensor(2, I32, cols + 1, 3, 37, cols);
            b.add(1, 2).add(1, 1).add(2, 1).halt(); // the in-place one doubles
            b.fill(1, values_from(rng, edges, 37 * std::size_t(cols)));
            b.fill(2, values_from(rng, edges, 37 * std::size_t(cols)));
            check_both_paths(gpu, b.image, "add cols " + std::to_string(cols));
        }
    }
    SECTION("lut maps every byte, in place and beside, with partial last pixels") {
        for (std::uint32_t dtype : {U8, I8})
            for (std::uint32_t cols : {1u, 6u, 256u}) {
                const std::uint32_t words = (cols + 3) / 4;
                ProgramWriter b(std::max(70u, 2 * words + 1), 12);
                randomize(b.image, dtype * 1000 + cols);
                b.tensor(1, dtype, 0, 1, 1, 256)         // table
                    .tensor(2, dtype, 0, 2, 3, cols)     // in, then in place
                    .tensor(3, dtype, words, 5, 3, cols) // out
                    .lut(3, 2, 1)
                    .lut(2, 2, 1)
                    .halt();
                std::vector<std::int64_t> in(3 * std::size_t(cols));
                for (std::size_t i = 0; i < in.size(); ++i) // every byte value, then random ones
                    in[i] = px::dtype_min(dtype) + std::int64_t(i < 256 ? i : rng() % 256);
                b.fill(2, in);
                check_both_paths(gpu, b.image,
                                 "lut " + std::string(px::dtype_name(dtype)) + " cols " +
                                     std::to_string(cols));
            }
    }
    SECTION("rmsnorm: clamped inputs, extreme gains, zero rows, every kind of shift") {
        const std::vector<std::int64_t> inputs = {
            0, 1, -1, (1 << 24) - 1, -(1 << 24), 1 << 24, INT_MAX32, INT_MIN32, 12345, -99999};
        const std::vector<std::int64_t> gains = {0,         1,       -1,         INT_MAX32,
                                                 INT_MIN32, 1 << 20, -(1 << 20), 77777};
        for (std::uint32_t cols : {1u, 5u, 2048u})
            for (std::uint32_t shift : {0u, 1u, 20u, 31u, 32u, 33u, 62u}) {
                const std::uint32_t rows = cols > 64 ? 2 : 9, words = (cols + 3) / 4;
                ProgramWriter b(std::max(16u, cols + words), 2 * rows + 3);
                randomize(b.image, cols * 64 + shift);
                b.tensor(1, I32, 0, 1, rows, cols)        // in
                    .tensor(2, I32, 0, rows + 1, 1, cols) // gain
                    .tensor(3, I8, cols, 1, rows, cols)   // out
                    .rmsnorm(3, 1, 2, std::uint8_t(shift))
                    .halt();
                std::vector<std::int64_t> in = values_from(rng, inputs, rows * std::size_t(cols));
                for (std::uint32_t c = 0; c < cols; ++c) {
                    in[c] = 0;                    // an all-zero row: root 1
                    in[cols + c] = (1 << 24) - 1; // the largest sum of squares of its width
                }
                b.fill(1, in);
                b.fill(2, values_from(rng, gains, cols));
                check_both_paths(gpu, b.image,
                                 "rmsnorm cols " + std::to_string(cols) + " shift " +
                                     std::to_string(shift));
            }
    }
    SECTION("kvstore: many rows, u16 and i32 where, every slot") {
        for (std::uint32_t where_dtype : {U16, I32})
            for (std::uint32_t dtype : {U8, I8}) {
                // 3 slots of 8 columns, 200 positions; 300 rows (two workgroups) in order
                const std::uint32_t slots = 3, block = 8, positions = 200, n = 300;
                ProgramWriter b(16, positions + n + n + 2);
                randomize(b.image, where_dtype * 10 + dtype);
                b.tensor(1, dtype, 0, 1, positions, slots * block)
                    .tensor(2, dtype, 0, positions + 1, n, block)
                    .tensor(3, where_dtype, 8, positions + 1, n, 2)
                    .kvstore(1, 2, 3)
                    .halt();
                std::vector<std::int64_t> where;
                for (std::uint32_t i = 0; i < n; ++i) { // slot i / 100, positions 2k (+1)
                    where.push_back(i / 100);
                    where.push_back(2 * (i % 100) + (rng() % 2));
                }
                b.fill(3, where);
                check_both_paths(gpu, b.image,
                                 "kvstore " + std::string(px::dtype_name(dtype)) + ", " +
                                     std::string(px::dtype_name(where_dtype)) + " where");
            }
    }
    SECTION("attend: 1024 positions of equal scores (the mean of -128s is -2^31 / 2^24)") {
        // 1 slot of d = 4 (2 heads of 2), keys 0 (every score 0: every exponential 2^14), values
        // -128, 127, alternating and random; rows at positions 1023, 0 and 511.
        for (std::uint32_t heads : {1u, 2u}) {
            const std::uint32_t positions = 1024;
            ProgramWriter b(16, positions + 8);
            randomize(b.image, heads);
            b.tensor(1, I8, 0, 1, positions, 8) // cache: keys 0-3, values 4-7
                .tensor(2, I8, 2, 1, 3, 4)      // q
                .tensor(3, I32, 3, 1, 3, 2)     // where
                .tensor(4, I8, 5, 1, 3, 4)      // out
                .attend(4, 2, 1, 3, std::uint8_t(heads), 0xFFFFFFFFu, 40)
                .halt();
            std::vector<std::int64_t> cache;
            for (std::uint32_t t = 0; t < positions; ++t) {
                const std::int64_t row[8] = {
                    0, 0, 0, 0, -128, 127, t % 2 ? 127 : -128, std::int64_t(rng() % 256) - 128};
                cache.insert(cache.end(), row, row + 8);
            }
            b.fill(1, cache);
            b.fill(3, {0, 1023, 0, 0, 0, 511});
            check_both_paths(gpu, b.image, "attend 1024 positions, heads " + std::to_string(heads));
            Image image = b.image;
            REQUIRE_FALSE(px::run_reference(image).fault);
            const auto out = b.read(4, image);
            CHECK(out[0] == -128); // acc = -2^31, total = 2^24
            CHECK(out[1] == 127);
        }
    }
    SECTION("attend: score multipliers and shifts of every range, several slots and heads") {
        for (std::uint32_t shift : {0u, 1u, 16u, 31u, 32u, 33u, 62u})
            for (std::uint32_t multiplier : {0u, 1u, 3u, 65537u, 0x7FFFFFFFu, 0xFFFFFFFFu}) {
                // 3 slots, 9 positions, d = 12 (heads of 3 or of 12), 5 rows
                const std::uint32_t d = 12, slots = 3, positions = 9, n = 5;
                ProgramWriter b(32, positions + n + 3);
                randomize(b.image, shift * 7 + multiplier);
                b.tensor(1, I8, 0, 1, positions, slots * 2 * d)
                    .tensor(2, I8, 0, positions + 1, n, d)
                    .tensor(3, U16, 3, positions + 1, n, 2)
                    .tensor(4, I8, 5, positions + 1, n, d)
                    .tensor(5, I8, 8, positions + 1, n, d)
                    .attend(4, 2, 1, 3, 4, multiplier, std::uint8_t(shift))
                    .attend(5, 2, 1, 3, 1, multiplier, std::uint8_t(shift))
                    .halt();
                b.fill(3, {2, 8, 0, 0, 1, 4, 2, 8, 0, 5}); // in any order, repeated
                check_both_paths(gpu, b.image,
                                 "attend multiplier " + std::to_string(multiplier) + " shift " +
                                     std::to_string(shift));
            }
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: a token-range fault mid-program stops the program", "[kernels]") {
    Gpu gpu = open_gpu();
    for (std::int64_t bad : {std::int64_t(4), std::int64_t(-1), std::int64_t(70000)}) {
        ProgramWriter b(96, 16);
        randomize(b.image, std::uint32_t(bad & 255));
        b.tensor(1, I8, 0, 1, 4, 6)      // table
            .tensor(2, I32, 0, 5, 1, 5)  // tokens
            .tensor(3, I32, 0, 6, 1, 6)  // pooled
            .tensor(4, I8, 10, 1, 4, 6)  // relu target
            .tensor(5, I32, 10, 6, 4, 4) // matmul target
            .tensor(6, I32, 20, 6, 1, 1) // dot target
            .relu(4, 1)                  // runs
            .gather_mean(3, 1, 2)        // faults
            .relu(1, 1)                  // none of these may change the image
            .matmul(5, 1, 1)
            .dot(6, 1, 4)
            .gather_mean(3, 1, 2)
            .halt();
        b.fill(2, {1, 2, bad, 0, 3});
        const std::uint32_t gather_pc = 18 + 1;
        for (KernelVariant variant : gpu.variants) {
            INFO("bad id " << bad << ", " << px::vk::to_string(variant));
            const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
            CHECK(run.status.fault_code == px::FAULT_TOKEN_RANGE);
            CHECK(run.status.fault_pc == gather_pc);
            CHECK(run.status.executed == 7);
            CHECK(run.status.halted == 0);
            CHECK(run.image.pixel(95, 0) == pxtest::fault_pixel(px::FAULT_TOKEN_RANGE, gather_pc));
            CHECK(b.read(5, run.image) == b.read(5, b.image)); // the matmul did not run
            CHECK(matches_reference(b.image, run));
        }
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: static faults and how programs end", "[kernels]") {
    Gpu gpu = open_gpu();
    std::vector<std::pair<std::string, ProgramWriter>> programs;
    {
        ProgramWriter b(8, 4);
        b.op(99); // BAD_OPCODE first: only finish runs
        programs.emplace_back("bad opcode first", b);
    }
    {
        ProgramWriter b(300, 8);
        randomize(b.image, 3);
        b.tensor(1, U8, 0, 1, 2, 9).tensor(2, U8, 0, 3, 2, 9).relu(2, 1).tensor(3, I32, 0, 1, 1, 1);
        b.dot(3, 1, 2); // OVERLAP after steps that changed the image
        programs.emplace_back("overlap after relu", b);
    }
    {
        ProgramWriter b(20, 6);
        randomize(b.image, 4);
        b.tensor(1, I8, 0, 1, 2, 5).relu(1, 1).dot_rgb(1, 2, 0); // PROGRAM_ROW
        programs.emplace_back("dot_rgb into row 0", b);
    }
    {
        ProgramWriter b(8, 6);
        randomize(b.image, 5);
        b.tensor(1, I8, 0, 1, 2, 5).relu(1, 1).relu(1, 1).relu(1, 1);
        b.op(px::OP_REQUANT, 1, 1); // TRUNCATED: its extension pixels reach the fault pixel
        b.image.set_pixel(7, 0, {3, 0, 0, 0});
        programs.emplace_back("truncated requant", b);
    }
    {
        ProgramWriter b(8, 6);
        randomize(b.image, 6);
        b.tensor(1, U16, 0, 1, 2, 5).relu(1, 1).relu(1, 1).relu(1, 1).relu(1, 1); // end of row 0
        programs.emplace_back("end of row 0", b);
    }
    {
        ProgramWriter b(16, 6);
        randomize(b.image, 7);
        b.tensor(1, U16, 0, 1, 2, 5).relu(1, 1).halt().op(99); // HALT before a bad opcode
        programs.emplace_back("halt", b);
    }
    for (const auto& [what, b] : programs) {
        Image replay = b.image;
        const px::RunOutcome reference = px::run_reference(replay);
        for (KernelVariant variant : gpu.variants) {
            INFO(what << ", " << px::vk::to_string(variant));
            const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
            CHECK(run.status.fault_code == reference.fault.code);
            CHECK(run.status.executed == reference.executed);
            CHECK(matches_reference(b.image, run));
        }
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: the widest rows stay within lavapipe's loop budget", "[kernels]") {
    Gpu gpu = open_gpu();
    // K = 4 * 32000 bytes (2000 steps of 64 bytes), argmax over 131072 u8 columns and
    // gather_mean over 65536 tokens of a 128-column table (8 invocations share each word's
    // tokens): every invocation loops a bounded amount.
    ProgramWriter b(32768, 28);
    randomize(b.image, 17);
    b.tensor(1, U8, 0, 1, 2, 128000)    // rows 1-2
        .tensor(2, U8, 0, 3, 3, 128000) // rows 3-5
        .tensor(3, I32, 0, 6, 2, 3)     // rows 6-7
        .matmul(3, 1, 2)
        .tensor(4, U8, 0, 8, 2, 131072) // rows 8-9, the whole width
        .tensor(5, I32, 10, 6, 2, 1)
        .argmax(5, 4)
        .tensor(6, U8, 0, 10, 1, 65536) // row 10
        .tensor(7, U8, 30, 11, 16, 128) // rows 11-26
        .tensor(8, I32, 100, 6, 1, 128)
        .gather_mean(8, 7, 6)
        .halt();
    std::vector<std::int64_t> ids(65536);
    std::mt19937 rng(3);
    for (auto& id : ids)
        id = 1 + rng() % 15;
    b.fill(6, ids);
    check_kernels(gpu, b.image, "widest rows");
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: a 512x512x1024 u8 matmul, which the interpreter cannot finish on lavapipe",
          "[kernels]") {
    Gpu gpu = open_gpu();
    const std::uint32_t M = 512, N = 512, K = 1024;
    ProgramWriter b = matmul_program(M, N, K, U8, 0, 0, 0, 512);
    for (KernelVariant variant : gpu.variants) {
        INFO(px::vk::to_string(variant));
        const ScheduledRun run = run_scheduled(gpu.device, b.image, variant);
        CHECK(run.status.fault_code == 0);
        CHECK(matches_reference(b.image, run));
        // Spot checks computed here, independently of the verification's method.
        std::mt19937 rng(1);
        for (int i = 0; i < 64; ++i) {
            const std::uint32_t m = rng() % M, n = rng() % N;
            std::uint32_t sum = 0;
            for (std::uint32_t k = 0; k < K; ++k)
                sum += std::uint32_t(px::load_element(b.image, b.t(1), m, k) *
                                     px::load_element(b.image, b.t(2), n, k));
            CHECK(std::uint32_t(px::load_element(run.image, b.t(3), m, n)) == sum);
        }
    }
    if (gpu.device.info().driver_id == VK_DRIVER_ID_MESA_LLVMPIPE) {
        Image image = b.image;
        auto run = gpu.device.run_interpreter(image);
        REQUIRE_FALSE(run.ok());
        CHECK(run.error().code == px::ErrorCode::incomplete);
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

TEST_CASE("kernels: generated programs give the reference's pixels and status",
          "[kernels][differential]") {
    Gpu gpu = open_gpu();
    const char* env = std::getenv("PXVM_DIFF_PROGRAMS");
    const std::uint64_t count = env && *env ? std::strtoull(env, nullptr, 10) : 300;
    // The fixed seeds, plus one fresh seed per run (printed, to replay with PXVM_DIFF_SEED).
    const char* fresh_env = std::getenv("PXVM_DIFF_SEED");
    const std::uint64_t fresh = fresh_env && *fresh_env ? std::strtoull(fresh_env, nullptr, 10)
                                                        : std::random_device{}() | 1ull << 32;
    std::cout << "kernels differential test: seeds 1.." << count << " and fresh seed " << fresh
              << " (replay with PXVM_DIFF_SEED=" << fresh << ")\n";
    std::vector<std::uint64_t> seeds;
    for (std::uint64_t seed = 1; seed <= count; ++seed)
        seeds.push_back(seed);
    seeds.push_back(fresh);
    for (KernelVariant variant : gpu.variants) {
        pxtest::gpu::ProtocolCoverage coverage;
        std::uint64_t mismatches = 0;
        for (const std::uint64_t seed : seeds) {
            const pxtest::GeneratedProgram program = pxtest::generate_program(seed);
            const ScheduledRun run = run_scheduled(gpu.device, program.image, variant);
            const px::Verification v =
                px::verify_against_reference(program.image, run.image, run.status);
            if (!v.matches()) {
                ++mismatches;
                UNSCOPED_INFO(px::vk::to_string(variant)
                              << " " << program.summary << ": " << px::describe(v.difference)
                              << "; " << v.status_mismatch);
            }
            coverage.add(program.image, v);
        }
        CHECK(mismatches == 0);
        if (count >= 300) coverage.check(); // the corpus reaches the whole protocol
    }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}

// Not part of the suite (hidden tag): GPU times of large shapes per variant, for a real GPU
// (the images exceed lavapipe's 128 MiB storage buffers). Results are verified too.
TEST_CASE("kernels: throughput on large shapes", "[.perf]") {
    Gpu gpu = open_gpu();
    struct Case {
        std::string what;
        ProgramWriter program;
        double ops; // multiply-adds or elements of the main dispatch
        std::optional<Tile> tile = std::nullopt;
    };
    std::vector<Case> cases;
    for (std::uint32_t dtype : {U8, I8}) {
        const std::uint32_t n = 4096;
        ProgramWriter b = matmul_program(n, n, n, dtype, 0, 0, 0, dtype);
        cases.push_back(
            {"matmul " + std::string(px::dtype_name(dtype)) + " 4096^3", b, double(n) * n * n});
    }
    {
        ProgramWriter b = matmul_program(1, 4096, 4096, I8, 0, 0, 0, 9);
        cases.push_back({"matmul i8 1x4096x4096", b, 4096.0 * 4096});
        cases.push_back({"matmul i8 1x4096x4096, tile 16x16", b, 4096.0 * 4096, Tile{16, 16}});
        cases.push_back({"matmul i8 1x4096x4096, tile 16x32", b, 4096.0 * 4096, Tile{16, 32}});
        ProgramWriter b64 = matmul_program(64, 4096, 4096, U8, 0, 0, 0, 10);
        cases.push_back({"matmul u8 64x4096x4096", b64, 64.0 * 4096 * 4096});
        cases.push_back(
            {"matmul u8 64x4096x4096, tile 16x64", b64, 64.0 * 4096 * 4096, Tile{16, 64}});
        ProgramWriter b512 = matmul_program(512, 512, 1024, U8, 0, 0, 0, 11);
        cases.push_back({"matmul u8 512x512x1024", b512, 512.0 * 512 * 1024});
    }
    {
        ProgramWriter b(8193, 4098);
        randomize(b.image, 1);
        b.tensor(1, I8, 0, 1, 4096, 16384).tensor(2, I8, 4096, 1, 4096, 16384);
        b.tensor(3, I32, 0, 4097, 1, 1).tensor(4, I32, 8192, 1, 4096, 1);
        b.relu(2, 1).dot(3, 1, 2).argmax(4, 1).halt();
        cases.push_back({"relu, dot, argmax over 4096x16384 i8", b, 4096.0 * 16384});
    }
    for (KernelVariant variant : gpu.variants)
        for (const Case& c : cases) {
            const ScheduledRun run = run_scheduled(gpu.device, c.program.image, variant, c.tile);
            CHECK(matches_reference(c.program.image, run));
            // Resubmitted on a resident image (every program here may run twice): warm-up runs
            // first, so that the clocks are up, then the median of 20.
            auto resident = gpu.device.upload(c.program.image);
            REQUIRE(resident.ok());
            auto recording = gpu.device.record(*resident, run.schedule.dispatches);
            REQUIRE(recording.ok());
            std::map<std::string, std::vector<double>> times;
            for (int i = 0; i < 30; ++i) {
                auto timed = recording->run();
                REQUIRE(timed.ok());
                if (i >= 10)
                    for (const px::vk::LabelledTime& t : timed->timings.gpu_dispatch)
                        times[t.label].push_back(t.ms);
            }
            std::cout << px::vk::to_string(variant) << ": " << c.what << "\n";
            for (auto& [label, ms] : times) {
                std::sort(ms.begin(), ms.end());
                const double median = ms[ms.size() / 2];
                std::cout << "    " << label << ": " << median << " ms, " << c.ops / (median * 1e6)
                          << " G/s\n";
            }
        }
    pxtest::gpu::check_no_validation_messages(gpu.runtime);
}
