// verify_against_reference, the check behind pxrun's default verification: it must notice a
// single wrong byte and a wrong status, and report the first differing pixel and the count.
#include "program_builder.hpp"

#include "pxvm/image.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/run_program.hpp"
#include "pxvm/verification.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

namespace {

px::Image seed_program() {
    auto image = px::load_png(PXVM_SOURCE_DIR "/assets/dot_test.pxi");
    REQUIRE(image.ok());
    return *image;
}

} // namespace

TEST_CASE("a device result equal to the reference verifies", "[verification]") {
    const px::Image program = seed_program();
    px::Image result = program;
    const px::RunOutcome outcome = px::run_reference(result);
    const px::RunStatus status{outcome.fault.code, outcome.fault.pc, outcome.executed, 1};
    const px::Verification v = px::verify_against_reference(program, result, status);
    CHECK(v.matches());
    CHECK(v.reference.halted);
}

TEST_CASE("one wrong byte and a wrong status are both reported", "[verification]") {
    const px::Image program = seed_program();
    px::Image result = program;
    (void)px::run_reference(result);
    result.set_pixel(0, 3, {45, 1, 0, 0}); // 301 instead of 300
    result.set_pixel(5, 9, {0, 0, 0, 1});
    const px::Verification v =
        px::verify_against_reference(program, result, px::RunStatus{0, 0, 1, 1});
    CHECK_FALSE(v.matches());
    CHECK(v.difference.count == 2);
    CHECK(px::describe(v.difference) ==
          "first difference at pixel (0, 3): expected (44,1,0,0), actual (45,1,0,0); 2 pixels "
          "differ");
    CHECK(v.status_mismatch.empty());

    px::Image correct = program;
    (void)px::run_reference(correct);
    const px::Verification wrong_status = px::verify_against_reference(
        program, correct, px::RunStatus{px::FAULT_BAD_OPCODE, 1, 1, 0});
    CHECK(wrong_status.difference.count == 0);
    CHECK_THAT(wrong_status.status_mismatch,
               Catch::Contains("the reference ended with fault NONE, 1 instructions executed, "
                               "halted; the device with fault BAD_OPCODE at pc 1"));
}

TEST_CASE("a result of the wrong size never verifies", "[verification]") {
    const px::Image program = seed_program();
    const px::Verification v =
        px::verify_against_reference(program, px::Image(16, 15), px::RunStatus{0, 0, 1, 1});
    CHECK_FALSE(v.matches());
    CHECK_THAT(v.status_mismatch, Catch::Contains("16x15 image for a 16x16 program"));
}

// Large matmuls: Freivalds' test instead of an exact recomputation, its soundness rule, its
// failure report; and the threaded reference matmul against a plain triple loop.
namespace {

using pxtest::ProgramWriter;
constexpr std::uint32_t U8 = px::DTYPE_U8, I8 = px::DTYPE_I8, I32 = px::DTYPE_I32;
const std::string freivalds_32 = "Freivalds, 32 rounds, miss probability <= 2^-32";

// Random bytes in every pixel of tensor `id`'s rectangle (padding included: it must be ignored).
void randomise(ProgramWriter& b, std::uint8_t id, std::mt19937& rng) {
    const px::Tensor& t = b.t(id);
    for (std::uint32_t r = 0; r < t.rows; ++r) {
        std::uint8_t* p = b.image.data() + t.byte_offset(b.image.width(), r, 0);
        for (std::uint32_t i = 0; i < 4 * t.pixel_width(); ++i)
            p[i] = std::uint8_t(rng());
    }
}

// tensor 1 = A (M x K), 2 = B (N x K), 3 = C (M x N, i32, at x = 3), 4 = D (M x N, i32) below C;
// then matmul 3, 1, 2 and whatever `more` appends, then halt. A and B hold random values.
template <class More>
ProgramWriter matmul_program(std::uint32_t M, std::uint32_t N, std::uint32_t K, std::uint32_t dtype,
                             std::uint32_t seed, More more) {
    const std::uint32_t width = std::max({N + 3, (K + 3) / 4, 64u});
    ProgramWriter b(width, 1 + M + N + 2 * M);
    b.tensor(1, dtype, 0, 1, M, K)
        .tensor(2, dtype, 0, 1 + M, N, K)
        .tensor(3, I32, 3, 1 + M + N, M, N)
        .tensor(4, I32, 0, 1 + M + N + M, M, N)
        .matmul(3, 1, 2);
    more(b);
    b.halt();
    std::mt19937 rng(seed);
    randomise(b, 1, rng);
    randomise(b, 2, rng);
    return b;
}
ProgramWriter matmul_program(std::uint32_t M, std::uint32_t N, std::uint32_t K,
                             std::uint32_t dtype = I8, std::uint32_t seed = 1) {
    return matmul_program(M, N, K, dtype, seed, [](ProgramWriter&) {});
}

px::RunStatus status_of(const px::RunOutcome& o) {
    return px::RunStatus{o.fault.code, o.fault.pc, o.executed, o.halted ? 1u : 0u};
}

// The correct result of `program` and its status.
struct Reference {
    px::Image image;
    px::RunStatus status;
};
Reference reference_of(const px::Image& program) {
    Reference r{program, {}};
    r.status = status_of(px::run_reference(r.image));
    return r;
}

px::VerifyOptions randomised(std::uint64_t seed = 7) {
    px::VerifyOptions options;
    options.exact_matmul_limit = 0; // every matmul that may be checked with Freivalds is
    options.seed = seed;
    return options;
}

// Adds `delta` (mod 2^32) to element (m, n) of i32 tensor `t` in `image`.
void corrupt(px::Image& image, const px::Tensor& t, std::uint32_t m, std::uint32_t n,
             std::uint32_t delta) {
    const auto v = std::uint32_t(px::load_element(image, t, m, n));
    px::store_element(image, t, m, n, std::int32_t(v + delta));
}

px::Pixel pixel_of(const px::Image& image, const px::Tensor& t, std::uint32_t m, std::uint32_t n) {
    return image.pixel(t.x + n, t.y + m);
}

} // namespace

TEST_CASE("a large matmul is checked with Freivalds' test and a correct result verifies",
          "[verification][freivalds]") {
    const ProgramWriter b = matmul_program(37, 41, 53);
    const Reference ref = reference_of(b.image);
    const px::Verification v =
        px::verify_against_reference(b.image, ref.image, ref.status, randomised());
    CHECK(v.matches());
    CHECK(v.note.empty());
    CHECK(v.seed == 7);
    CHECK(v.seconds >= 0);
    REQUIRE(v.checks.size() == 1);
    CHECK(v.checks[0].pc == 12);
    CHECK(v.checks[0].opcode == "matmul");
    CHECK(v.checks[0].method == freivalds_32);
    CHECK(v.summary() == "Freivalds for 1 matmul (32 rounds, miss probability <= 2^-32)");
    CHECK(v.reference.halted);
    CHECK(v.reference.executed == 5);

    px::VerifyOptions five = randomised(0); // seed 0: a random one, reported
    five.freivalds_rounds = 5;
    const px::Verification w = px::verify_against_reference(b.image, ref.image, ref.status, five);
    CHECK(w.matches());
    CHECK(w.seed != 0);
    REQUIRE(w.checks.size() == 1);
    CHECK(w.checks[0].method == "Freivalds, 5 rounds, miss probability <= 2^-5");

    // At the limit a matmul is still recomputed exactly.
    px::VerifyOptions at_limit;
    at_limit.exact_matmul_limit = 37 * 41 * 53;
    const px::Verification exact =
        px::verify_against_reference(b.image, ref.image, ref.status, at_limit);
    CHECK(exact.matches());
    REQUIRE(exact.checks.size() == 1);
    CHECK(exact.checks[0].method == "exact");
    CHECK(exact.summary() == "exact for 1 step");
}

TEST_CASE("u8 matmuls are checked with Freivalds' test too", "[verification][freivalds]") {
    const ProgramWriter b = matmul_program(19, 23, 77, U8, 3);
    Reference ref = reference_of(b.image);
    CHECK(px::verify_against_reference(b.image, ref.image, ref.status, randomised()).matches());
    corrupt(ref.image, b.t(3), 18, 22, 1u << 16);
    const px::Verification v =
        px::verify_against_reference(b.image, ref.image, ref.status, randomised());
    CHECK_FALSE(v.matches());
    CHECK(v.difference.count == 1);
    CHECK(v.difference.x == 3 + 22);
    CHECK(v.difference.y == b.t(3).y + 18);
}

TEST_CASE("Freivalds' test finds one wrong element and reports it exactly",
          "[verification][freivalds]") {
    const ProgramWriter b = matmul_program(37, 41, 53);
    const px::Tensor& c = b.t(3);
    const Reference ref = reference_of(b.image);

    struct Case {
        std::uint32_t m, n, delta;
    };
    const auto [m, n, delta] =
        GENERATE(Case{0, 0, 1}, Case{36, 40, 1}, Case{36, 40, 1u << 31}, Case{5, 17, 1u << 31},
                 Case{20, 3, 0xFFFFFFFFu}, Case{11, 40, 1u << 30});
    CAPTURE(m, n, delta);
    px::Image wrong = ref.image;
    corrupt(wrong, c, m, n, delta);
    REQUIRE(wrong != ref.image);
    // A difference of 2^31 is missed with probability 1/2 a round: 32 rounds, many seeds.
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
        const px::Verification v =
            px::verify_against_reference(b.image, wrong, ref.status, randomised(seed));
        CHECK_FALSE(v.matches());
        CHECK(v.status_mismatch.empty());
        CHECK(v.difference.count == 1);
        CHECK(v.difference.x == c.x + n);
        CHECK(v.difference.y == c.y + m);
        CHECK(v.difference.expected == pixel_of(ref.image, c, m, n));
        CHECK(v.difference.actual == pixel_of(wrong, c, m, n));
        CHECK_THAT(v.note, Catch::Contains("Freivalds' test failed for the matmul at pc 12: 1 of "
                                           "its 37 output rows are wrong; row " +
                                           std::to_string(m) +
                                           " was recomputed exactly: 1 of "
                                           "its 41 pixels differs"));
        CHECK_THAT(v.note, Catch::Contains("lower bound found by a randomised check"));
        CHECK_THAT(v.summary(), Catch::StartsWith("Freivalds for 1 matmul (32 rounds, miss "
                                                  "probability <= 2^-32); Freivalds' test failed"));
    }
}

TEST_CASE("a failed Freivalds test counts the wrong pixels of the rows it recomputes",
          "[verification][freivalds]") {
    const ProgramWriter b = matmul_program(37, 41, 53);
    const px::Tensor& c = b.t(3);
    const Reference ref = reference_of(b.image);
    px::Image wrong = ref.image;
    corrupt(wrong, c, 2, 9, 5);
    corrupt(wrong, c, 2, 7, 1u << 31);
    corrupt(wrong, c, 30, 1, 77);

    // Limit 0: one row recomputed, so the count (2) is a lower bound of the 3 wrong pixels.
    const px::Verification one =
        px::verify_against_reference(b.image, wrong, ref.status, randomised());
    CHECK_FALSE(one.matches());
    CHECK(one.difference.count == 2);
    CHECK(one.difference.x == c.x + 7);
    CHECK(one.difference.y == c.y + 2);
    CHECK(one.difference.expected == pixel_of(ref.image, c, 2, 7));
    CHECK_THAT(one.note, Catch::Contains("2 of its 37 output rows are wrong; row 2 was recomputed "
                                         "exactly: 2 of its 41 pixels differ"));

    // A limit that allows recomputing every failing row (but not the whole matmul) counts all.
    px::VerifyOptions options = randomised();
    options.exact_matmul_limit = 37 * 41 * 53 - 1;
    const px::Verification all = px::verify_against_reference(b.image, wrong, ref.status, options);
    CHECK(all.difference.count == 3);
    CHECK(all.difference.x == c.x + 7);
    CHECK(all.difference.y == c.y + 2);
    CHECK_THAT(all.note, Catch::Contains("the first 2 of them were recomputed exactly: 3 of their "
                                         "82 pixels differ"));
    REQUIRE(all.checks.size() == 1);
    CHECK(all.checks[0].method == freivalds_32);

    // The exact check finds the same three.
    const px::Verification exact = px::verify_against_reference(b.image, wrong, ref.status);
    CHECK(exact.difference.count == 3);
    CHECK(exact.note.empty());
}

TEST_CASE("a matmul whose output a later step overwrites is recomputed exactly",
          "[verification][freivalds]") {
    SECTION("the tiny network: add_bias and relu work on the logits in place") {
        const ProgramWriter b = pxtest::tiny_network();
        Reference ref = reference_of(b.image);
        const px::Verification v =
            px::verify_against_reference(b.image, ref.image, ref.status, randomised());
        CHECK(v.matches());
        REQUIRE(v.checks.size() == 6); // tensor declarations write nothing
        for (const px::StepCheck& check : v.checks)
            CHECK(check.method == "exact");
        CHECK(v.checks[2].opcode == "matmul");
        CHECK(v.checks[2].pc == 28);
        CHECK(v.summary() == "exact for 6 steps");
        corrupt(ref.image, b.t(6), 0, 1, 1);
        CHECK(px::verify_against_reference(b.image, ref.image, ref.status, randomised())
                  .difference.count == 1);
    }
    SECTION("relu in place overwrites C") {
        const ProgramWriter b =
            matmul_program(37, 41, 53, I8, 2, [](ProgramWriter& p) { p.relu(3, 3); });
        const Reference ref = reference_of(b.image);
        const px::Verification v =
            px::verify_against_reference(b.image, ref.image, ref.status, randomised());
        CHECK(v.matches());
        REQUIRE(v.checks.size() == 2);
        CHECK(v.checks[0].method == "exact");
        CHECK(v.summary() == "exact for 2 steps");
    }
    SECTION("dot_rgb writes a pixel of C's rectangle") {
        const ProgramWriter b = matmul_program(37, 41, 53, I8, 2, [](ProgramWriter& p) {
            p.dot_rgb(1, 2, std::uint8_t(p.t(3).y + 4)); // writes pixel (0, C.y + 4)
        });
        // (0, y) is left of C (x = 3): it does not overlap, so Freivalds stays sound.
        const Reference ref = reference_of(b.image);
        CHECK(px::verify_against_reference(b.image, ref.image, ref.status, randomised())
                  .checks[0]
                  .method == freivalds_32);
    }
    SECTION("a later matmul writes D, next to C: C is still checked with Freivalds") {
        const ProgramWriter b =
            matmul_program(37, 41, 53, I8, 2, [](ProgramWriter& p) { p.relu(4, 3); });
        Reference ref = reference_of(b.image);
        const px::Verification v =
            px::verify_against_reference(b.image, ref.image, ref.status, randomised());
        CHECK(v.matches());
        REQUIRE(v.checks.size() == 2);
        CHECK(v.checks[0].method == freivalds_32);
        CHECK(v.checks[1].method == "exact");
        CHECK(v.summary() ==
              "exact for 1 step; Freivalds for 1 matmul (32 rounds, miss probability <= 2^-32)");
        // A wrong relu output after a correct matmul is found by the exact replay of relu.
        corrupt(ref.image, b.t(4), 36, 40, 1);
        const px::Verification w =
            px::verify_against_reference(b.image, ref.image, ref.status, randomised());
        CHECK(w.difference.count == 1);
        CHECK(w.note.empty());
    }
}

TEST_CASE("a step overwriting C only partly also forces the exact matmul",
          "[verification][freivalds]") {
    // Tensor 5: one i32 pixel inside C's rectangle; relu of it in place.
    const ProgramWriter b = matmul_program(37, 41, 53, I8, 4, [](ProgramWriter& p) {
        p.tensor(5, I32, p.t(3).x + 40, p.t(3).y + 36, 1, 1).relu(5, 5);
    });
    const Reference ref = reference_of(b.image);
    const px::Verification v =
        px::verify_against_reference(b.image, ref.image, ref.status, randomised());
    CHECK(v.matches());
    REQUIRE(v.checks.size() == 2);
    CHECK(v.checks[0].method == "exact");
}

TEST_CASE("the replay ends as run_reference does, faults included", "[verification][freivalds]") {
    // A gather_mean after the matmul whose token ids (C's first pixel as u8 ids) are checked at
    // run time: the reference faults with TOKEN_RANGE unless they are in range.
    const ProgramWriter b = matmul_program(37, 41, 53, I8, 5, [](ProgramWriter& p) {
        p.tensor(6, U8, p.t(3).x, p.t(3).y, 1, 4)  // C's first pixel as four u8 token ids
            .tensor(7, I8, 0, 1, 2, 4)             // a 2-row table (rows of A)
            .tensor(8, I32, 0, p.t(4).y + 1, 1, 4) // out, in D
            .gather_mean(8, 7, 6);
    });
    const Reference ref = reference_of(b.image);
    REQUIRE(ref.status.fault_code == px::FAULT_TOKEN_RANGE);
    const px::Verification v =
        px::verify_against_reference(b.image, ref.image, ref.status, randomised());
    CHECK(v.matches());
    CHECK(v.reference.fault.code == px::FAULT_TOKEN_RANGE);
    CHECK(v.reference.executed == ref.status.executed);
    CHECK_FALSE(v.reference.halted);
    REQUIRE(v.checks.size() == 1); // the faulting gather_mean is not an executed step
    CHECK(v.checks[0].method == freivalds_32);

    px::RunStatus halted = ref.status;
    halted.fault_code = 0;
    halted.halted = 1;
    CHECK_THAT(
        px::verify_against_reference(b.image, ref.image, halted, randomised()).status_mismatch,
        Catch::Contains("the reference ended with fault TOKEN_RANGE at pc"));
}

TEST_CASE("the threaded reference matmul equals a plain triple loop", "[verification][reference]") {
    struct Shape {
        std::uint32_t M, N, K, dtype;
    };
    // Each shape has at least 2^22 multiply-adds, so the threaded path runs; M = 1 splits N.
    const Shape shape =
        GENERATE(Shape{257, 131, 127, I8}, Shape{257, 131, 127, U8}, Shape{1, 2049, 2053, I8},
                 Shape{3, 1021, 1399, U8}, Shape{33, 7, 18200, I8}, Shape{5, 3, 3, U8});
    CAPTURE(shape.M, shape.N, shape.K, shape.dtype);
    const ProgramWriter b = matmul_program(shape.M, shape.N, shape.K, shape.dtype, 11);
    const Reference ref = reference_of(b.image);
    const px::Tensor &a = b.t(1), &bt = b.t(2), &c = b.t(3);
    std::uint64_t wrong = 0;
    for (std::uint32_t m = 0; m < shape.M; ++m)
        for (std::uint32_t n = 0; n < shape.N; ++n) {
            std::uint32_t sum = 0;
            for (std::uint32_t k = 0; k < shape.K; ++k)
                sum += std::uint32_t(px::load_element(b.image, a, m, k) *
                                     px::load_element(b.image, bt, n, k));
            wrong += px::load_element(ref.image, c, m, n) != std::int32_t(sum);
        }
    CHECK(wrong == 0);
    // Nothing but C changed.
    px::Image only_c = b.image;
    for (std::uint32_t m = 0; m < shape.M; ++m)
        for (std::uint32_t n = 0; n < shape.N; ++n)
            px::store_element(only_c, c, m, n, px::load_element(ref.image, c, m, n));
    CHECK(only_c == ref.image);
}

TEST_CASE("the threaded reference matmul sums u8 products past 2^31", "[verification][reference]") {
    // 255 * 255 * 65535 = 4261413375 > 2^31: the sums must be unsigned.
    constexpr std::uint32_t K = 65535;
    ProgramWriter b(16384, 1 + 1 + 65 + 1);
    b.tensor(1, U8, 0, 1, 1, K).tensor(2, U8, 0, 2, 65, K).tensor(3, I32, 0, 67, 1, 65);
    b.matmul(3, 1, 2).halt();
    for (std::uint32_t y = 1; y < 67; ++y)
        for (std::uint32_t x = 0; x < 16384; ++x)
            b.image.set_pixel(x, y, {255, 255, 255, 255});
    b.image.set_pixel(10, 2, {254, 255, 255, 255}); // row 0 of B: one element 254
    const Reference ref = reference_of(b.image);
    const std::uint32_t all = std::uint32_t(255u * 255u * std::uint64_t(K)); // mod 2^32
    CHECK(std::uint32_t(px::load_element(ref.image, b.t(3), 0, 0)) == all - 255u);
    CHECK(std::uint32_t(px::load_element(ref.image, b.t(3), 0, 64)) == all);
    CHECK(px::verify_against_reference(b.image, ref.image, ref.status, randomised()).matches());
}

TEST_CASE("the three-argument overload verifies exactly with the default options",
          "[verification]") {
    const ProgramWriter b = matmul_program(37, 41, 53);
    Reference ref = reference_of(b.image);
    const px::Verification v = px::verify_against_reference(b.image, ref.image, ref.status);
    CHECK(v.matches());
    REQUIRE(v.checks.size() == 1);
    CHECK(v.checks[0].method == "exact");
    CHECK(v.summary() == "exact for 1 step");

    corrupt(ref.image, b.t(3), 36, 40, 1u << 31);
    corrupt(ref.image, b.t(3), 0, 1, 1);
    const px::Verification w = px::verify_against_reference(b.image, ref.image, ref.status);
    CHECK_FALSE(w.matches());
    CHECK(w.difference.count == 2);
    CHECK(w.difference.x == b.t(3).x + 1);
    CHECK(w.difference.y == b.t(3).y);
    CHECK(w.note.empty());

    // The seed program: dot_rgb steps, exact.
    const px::Image seed = seed_program();
    const Reference seed_ref = reference_of(seed);
    const px::Verification s = px::verify_against_reference(seed, seed_ref.image, seed_ref.status);
    CHECK(s.matches());
    CHECK(s.checks.size() == seed_ref.status.executed);
    CHECK_THAT(s.summary(), Catch::StartsWith("exact for "));
}

TEST_CASE("the verification keeps to the reference's work budget", "[verification][limits]") {
    pxtest::ProgramWriter b = pxtest::tiny_network();
    px::Image result = b.image;
    const px::RunOutcome outcome = px::run_reference(result);
    px::RunStatus status{};
    status.executed = outcome.executed;
    status.halted = outcome.halted;
    px::ReferenceLimits limits;
    limits.max_work = 20;
    const auto refused = px::verify_against_reference(b.image, result, status, {}, limits);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message, Catch::StartsWith("the program needs "));
    limits.max_work = 1000;
    const auto checked = px::verify_against_reference(b.image, result, status, {}, limits);
    REQUIRE(checked);
    CHECK(checked->matches());
    // A matmul checked by Freivalds' test costs (MN + NK + MK) * rounds, not MNK.
    px::Plan plan;
    px::Step step;
    step.instruction.opcode = px::OP_MATMUL;
    step.operands = {px::Tensor{0, 1, 4096, 4096, px::DTYPE_I32},
                     px::Tensor{0, 1, 4096, 4096, px::DTYPE_I8},
                     px::Tensor{0, 1, 4096, 4096, px::DTYPE_I8}};
    plan.steps.push_back(step);
    px::VerifyOptions options;
    options.freivalds_rounds = 32;
    CHECK(px::verification_work(plan, options)[0] == 3ull * 4096 * 4096 * 32 + 1);
    options.exact_matmul_limit = ~0ull;
    CHECK(px::verification_work(plan, options)[0] == 4096ull * 4096 * 4096 + 1);
}
