// Tests of the CPU reference interpreter against docs/PROTOCOL.md: every opcode with hand-computed
// values and edge cases, every fault code with its fault pixel, the check order, and the rule that
// a faulting instruction changes nothing while earlier instructions' effects remain.
#include "program_builder.hpp"

#include "pxvm/reference_interpreter.hpp"
#include "pxvm/report.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using px::Image;
using px::Pixel;
using pxtest::fault_pixel;
using pxtest::ProgramWriter;
using pxtest::with_fault_pixel;
using Values = std::vector<std::int64_t>;

constexpr std::uint32_t U8 = px::DTYPE_U8, I8 = px::DTYPE_I8, U16 = px::DTYPE_U16,
                        I32 = px::DTYPE_I32;
constexpr std::int64_t I32_MIN = INT32_MIN, I32_MAX = INT32_MAX;

// Runs the reference on `image` in place and requires that it did not fault.
px::RunOutcome run_ok(Image& image) {
    const Image before = image;
    const px::RunOutcome outcome = px::run_reference(image);
    INFO(px::describe(outcome.fault, before));
    REQUIRE_FALSE(outcome.fault);
    return outcome;
}

// Runs the program and requires fault `code` at `pc`, leaving `expected` (the effects of the
// instructions before the fault) plus the fault pixel and nothing else. The static plan must agree
// for every code but TOKEN_RANGE, the one dynamic check.
void require_fault(const Image& program, std::uint32_t code, std::uint32_t pc,
                   const Image& expected) {
    Image image = program;
    const px::RunOutcome outcome = px::run_reference(image);
    INFO(px::describe(outcome.fault, program));
    REQUIRE(outcome.fault.code == code);
    REQUIRE(outcome.fault.pc == pc);
    REQUIRE_FALSE(outcome.fault.reason.empty());
    REQUIRE_FALSE(outcome.halted);
    REQUIRE(image.pixel(image.width() - 1, 0) == fault_pixel(code, pc));
    const Image want = with_fault_pixel(expected, code, pc);
    INFO(px::describe(px::compare_images(want, image)));
    REQUIRE(image == want);
    const px::Plan plan = px::plan_program(program);
    if (code == px::FAULT_TOKEN_RANGE) {
        REQUIRE((!plan.fault || plan.fault.pc > pc)); // no static fault up to the gather
    } else {
        REQUIRE(plan.fault.code == code);
        REQUIRE(plan.fault.pc == pc);
    }
}

// The last instruction the builder emitted faults with `code`; nothing before it changes the image.
void require_fault_only(const ProgramWriter& b, std::uint32_t code, std::uint32_t pc) {
    require_fault(b.image, code, pc, b.image);
}

// Sets the R channel of row y to `reds` from x = 0, with noise in G, B, A (which dot_rgb ignores).
void set_reds(Image& image, std::uint32_t y, const std::vector<int>& reds) {
    for (std::size_t x = 0; x < reds.size(); ++x)
        image.set_pixel(std::uint32_t(x), y, Pixel{std::uint8_t(reds[x]), 0xA5, 0x5A, 0xFF});
}

// Runs dot_rgb(1, 2, 3) on rows 1 and 2 holding `a` and `b` (width = their length) and returns
// pixel (0, 3); also requires that nothing else changed.
Pixel dot_rgb_of(const std::vector<int>& a, const std::vector<int>& b) {
    const auto w = std::uint32_t(std::max<std::size_t>(2, a.size()));
    ProgramWriter p(w, 4);
    p.dot_rgb(1, 2, 3).halt();
    set_reds(p.image, 1, a);
    set_reds(p.image, 2, b);
    p.image.set_pixel(0, 3, Pixel{9, 9, 9, 9});
    p.image.set_pixel(1 % w, 3, Pixel{8, 8, 8, 8});
    Image image = p.image;
    run_ok(image);
    Image expected = p.image;
    expected.set_pixel(0, 3, image.pixel(0, 3));
    REQUIRE(image == expected);
    return image.pixel(0, 3);
}

// Fills every byte of rows 1.. with deterministic noise.
void fill_noise(Image& image, std::uint32_t seed) {
    std::mt19937 rng(seed);
    for (std::size_t i = std::size_t(image.width()) * 4; i < image.size_bytes(); ++i)
        image.data()[i] = std::uint8_t(rng());
}

std::int64_t wrap32(std::int64_t v) {
    return std::int32_t(std::uint32_t(std::uint64_t(v)));
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Execution model

TEST_CASE("an empty program halts at pc 0 and changes nothing", "[reference]") {
    ProgramWriter b(3, 2);
    fill_noise(b.image, 1);
    Image image = b.image;
    const auto outcome = run_ok(image);
    REQUIRE(outcome.halted);
    REQUIRE(outcome.executed == 0);
    REQUIRE(image == b.image);
}

TEST_CASE("halt ignores its arguments and whatever follows it", "[reference]") {
    ProgramWriter b(4, 2);
    b.op(px::OP_HALT, 7, 8, 9).op(2).op(255, 1, 2, 3); // unknown opcodes after HALT never decode
    Image image = b.image;
    const auto outcome = run_ok(image);
    REQUIRE(outcome.halted);
    REQUIRE(image == b.image);
}

TEST_CASE("a program that runs off the end of row 0 ends without a fault", "[reference]") {
    ProgramWriter b(4, 2);
    b.tensor(1, I32, 0, 1, 1, 2).relu(1, 1); // exactly fills row 0, no HALT
    REQUIRE(b.pc == 4);
    b.fill(1, {-7, 7});
    Image image = b.image;
    const auto outcome = run_ok(image);
    REQUIRE_FALSE(outcome.halted);
    REQUIRE(outcome.executed == 2);
    REQUIRE(b.read(1, image) == Values{0, 7});
    // The last pixel of row 0 is the relu instruction: no fault pixel was written over it.
    REQUIRE(image.pixel(3, 0) == Pixel{px::OP_RELU, 1, 1, 0});
}

TEST_CASE("instructions see every write of the instructions before them", "[reference]") {
    // dot_rgb writes 300 = (44, 1) at (0, 3); the second dot_rgb squares row 3: 44 * 44 = 1936.
    ProgramWriter b(4, 5);
    b.dot_rgb(1, 2, 3).dot_rgb(3, 3, 4).halt();
    set_reds(b.image, 1, {1, 2, 3, 4});
    set_reds(b.image, 2, {10, 20, 30, 40});
    Image image = b.image;
    const auto outcome = run_ok(image);
    REQUIRE(outcome.executed == 2);
    REQUIRE(image.pixel(0, 3) == Pixel{44, 1, 0, 0});
    REQUIRE(image.pixel(0, 4) == Pixel{1936 & 255, 1936 >> 8, 0, 0});
}

TEST_CASE("a small integer network runs end to end", "[reference]") {
    // gather_mean -> requant to i8 -> matmul -> add_bias -> relu -> argmax, values by hand.
    ProgramWriter b = pxtest::tiny_network();
    Image image = b.image;
    const auto outcome = run_ok(image);
    REQUIRE(outcome.halted);
    REQUIRE(outcome.executed == 14);
    REQUIRE(b.read(3, image) == Values{8, 11});
    REQUIRE(b.read(4, image) == Values{12, 17});
    REQUIRE(b.read(6, image) == Values{0, 7, 139});
    REQUIRE(b.read(8, image) == Values{2});
}

TEST_CASE("a fault at pc >= 256 stores the pc in G and B of the fault pixel",
          "[reference][fault]") {
    ProgramWriter b(400, 3);
    for (int i = 0; i < 300; ++i)
        b.dot_rgb(1, 1, 2); // row 1 is zero: each writes (0,0,0,0)
    b.op(2);                // not an opcode
    b.image.set_pixel(0, 2, Pixel{5, 6, 7, 8});
    Image expected = b.image;
    expected.set_pixel(0, 2, Pixel{0, 0, 0, 0});
    require_fault(b.image, px::FAULT_BAD_OPCODE, 300, expected);
    Image image = b.image;
    const auto outcome = px::run_reference(image);
    REQUIRE(outcome.executed == 300);
    REQUIRE(image.pixel(399, 0) == Pixel{1, 44, 1, 255});
}

TEST_CASE("a fault in the last pixel of row 0 overwrites that instruction", "[reference][fault]") {
    ProgramWriter b(4, 2);
    b.dot_rgb(1, 1, 1).dot_rgb(1, 1, 1).dot_rgb(1, 1, 1).op(200);
    require_fault_only(b, px::FAULT_BAD_OPCODE, 3);
}

TEST_CASE("every R value that is not an opcode is BAD_OPCODE", "[reference][fault]") {
    for (std::uint32_t r = 0; r < 256; ++r) {
        if (px::instruction_info(r)) continue;
        ProgramWriter b(3, 2);
        b.op(r, 1, 1, 1);
        INFO("opcode " << r);
        require_fault_only(b, px::FAULT_BAD_OPCODE, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// dot_rgb

TEST_CASE("dot_rgb: the seed example gives 300 = (44, 1, 0, 0) at (0, 3)", "[reference][dot_rgb]") {
    ProgramWriter b(4, 4);
    b.dot_rgb(1, 2, 3).halt();
    set_reds(b.image, 1, {1, 2, 3, 4});
    set_reds(b.image, 2, {10, 20, 30, 40});
    Image image = b.image;
    const auto outcome = run_ok(image);
    REQUIRE(outcome.halted);
    REQUIRE(outcome.executed == 1);
    Image expected = b.image;
    expected.set_pixel(0, 3, Pixel{44, 1, 0, 0});
    REQUIRE(image == expected);
}

TEST_CASE("dot_rgb: the seed asset assets/dot_test.pxi", "[reference][dot_rgb]") {
    const px::Result<Image> loaded = px::load_png(PXVM_SOURCE_DIR "/assets/dot_test.pxi");
    REQUIRE(loaded.ok());
    Image image = *loaded;
    const auto outcome = run_ok(image);
    REQUIRE(outcome.halted);
    Image expected = *loaded;
    expected.set_pixel(0, 3, Pixel{44, 1, 0, 0});
    INFO(px::describe(px::compare_images(expected, image)));
    REQUIRE(image == expected);
}

TEST_CASE("dot_rgb: edge cases", "[reference][dot_rgb]") {
    SECTION("the sum wraps modulo 2^16") {
        // 8 * 255 * 255 = 520200 = 7 * 65536 + 61448; 61448 = 240 * 256 + 8.
        const std::vector<int> full(8, 255);
        REQUIRE(dot_rgb_of(full, full) == Pixel{8, 240, 0, 0});
    }
    SECTION("a product exactly 2^16 wraps to 0") {
        // 255 * 255 + 255 * 2 + 1 * 1 = 65536.
        REQUIRE(dot_rgb_of({255, 255, 1}, {255, 2, 1}) == Pixel{0, 0, 0, 0});
    }
    SECTION("zero length: both rows are 0 at x = 0") {
        REQUIRE(dot_rgb_of({0, 5, 5}, {0, 5, 5}) == Pixel{0, 0, 0, 0});
    }
    SECTION("the vectors end where both rows hold 0") {
        REQUIRE(dot_rgb_of({1, 0, 3, 4}, {10, 0, 30, 40}) == Pixel{10, 0, 0, 0});
    }
    SECTION("a 0 in one row only does not end the vectors") {
        REQUIRE(dot_rgb_of({1, 0, 3}, {10, 20, 30}) == Pixel{100, 0, 0, 0});
        // (1,0) (2,20) (0,30) (4,40), then both 0 at x = 4: the 5 * 5 after it is not summed.
        REQUIRE(dot_rgb_of({1, 2, 0, 4, 0, 5}, {0, 20, 30, 40, 0, 5}) == Pixel{200, 0, 0, 0});
    }
    SECTION("full-width vectors with no zero use every column") {
        REQUIRE(dot_rgb_of({1, 1, 1, 1, 200}, {1, 1, 1, 1, 2}) == Pixel{148, 1, 0, 0}); // 404
    }
    SECTION("a one-pixel-wide image") {
        ProgramWriter b(1, 3);
        b.dot_rgb(1, 1, 2);
        set_reds(b.image, 1, {16});
        Image image = b.image;
        const auto outcome = run_ok(image);
        REQUIRE_FALSE(outcome.halted);                   // ran off the end of row 0
        REQUIRE(image.pixel(0, 2) == Pixel{0, 1, 0, 0}); // 256
    }
}

TEST_CASE("dot_rgb: rowOut may be an input row", "[reference][dot_rgb]") {
    SECTION("rowOut == rowA") {
        ProgramWriter b(3, 3);
        b.dot_rgb(1, 2, 1).halt();
        set_reds(b.image, 1, {2, 3, 0});
        set_reds(b.image, 2, {4, 5, 0});
        Image image = b.image;
        run_ok(image);
        Image expected = b.image;
        expected.set_pixel(0, 1, Pixel{23, 0, 0, 0});
        REQUIRE(image == expected);
    }
    SECTION("rowA == rowB == rowOut") {
        ProgramWriter b(3, 2);
        b.dot_rgb(1, 1, 1).halt();
        set_reds(b.image, 1, {3, 4, 0});
        Image image = b.image;
        run_ok(image);
        REQUIRE(image.pixel(0, 1) == Pixel{25, 0, 0, 0});
        REQUIRE(image.pixel(1, 1) == b.image.pixel(1, 1));
    }
    SECTION("rowA may be the program row") {
        // Row 0 reds are (1, 0, 0, 0) (dot_rgb, halt, zero); row 1 is (7, 2, 0, 9).
        // x = 0: 1 * 7; x = 1: 0 * 2; x = 2: both 0, the end.
        ProgramWriter b(4, 3);
        b.dot_rgb(0, 1, 2).halt();
        set_reds(b.image, 1, {7, 2, 0, 9});
        Image image = b.image;
        run_ok(image);
        REQUIRE(image.pixel(0, 2) == Pixel{7, 0, 0, 0});
    }
}

TEST_CASE("dot_rgb: faults", "[reference][dot_rgb][fault]") {
    // A first dot_rgb writes (0, 3); its effect must remain when the second one faults.
    auto program = [](std::uint8_t a, std::uint8_t b, std::uint8_t out) {
        ProgramWriter p(4, 4);
        set_reds(p.image, 1, {1, 2, 3, 4});
        set_reds(p.image, 2, {10, 20, 30, 40});
        p.dot_rgb(1, 2, 3).dot_rgb(a, b, out).halt();
        return p;
    };
    auto after_first = [](const ProgramWriter& p) {
        Image e = p.image;
        e.set_pixel(0, 3, Pixel{44, 1, 0, 0});
        return e;
    };
    SECTION("row A outside the image") {
        auto p = program(4, 1, 2);
        require_fault(p.image, px::FAULT_OUT_OF_BOUNDS, 1, after_first(p));
    }
    SECTION("row B outside the image") {
        auto p = program(1, 200, 2);
        require_fault(p.image, px::FAULT_OUT_OF_BOUNDS, 1, after_first(p));
    }
    SECTION("row out outside the image") {
        auto p = program(1, 2, 4);
        require_fault(p.image, px::FAULT_OUT_OF_BOUNDS, 1, after_first(p));
    }
    SECTION("row out is the program row") {
        auto p = program(1, 2, 0);
        require_fault(p.image, px::FAULT_PROGRAM_ROW, 1, after_first(p));
    }
    SECTION("OUT_OF_BOUNDS is checked before PROGRAM_ROW") {
        auto p = program(255, 2, 0);
        require_fault(p.image, px::FAULT_OUT_OF_BOUNDS, 1, after_first(p));
    }
}

// ---------------------------------------------------------------------------------------------
// tensor

TEST_CASE("tensor: declarations never change the image", "[reference][tensor]") {
    ProgramWriter b(16, 4);
    fill_noise(b.image, 2);
    b.tensor(0, U8, 0, 1, 3, 64).tensor(255, I32, 15, 3, 1, 1).tensor(7, U16, 2, 1, 2, 3).halt();
    Image image = b.image;
    const auto outcome = run_ok(image);
    REQUIRE(outcome.executed == 3);
    REQUIRE(image == b.image);
}

TEST_CASE("tensor: checks and their order", "[reference][tensor][fault]") {
    const std::uint32_t pc = 0;
    auto decl = [](std::uint32_t dtype, std::uint32_t x0, std::uint32_t y0, std::uint32_t rows,
                   std::uint32_t cols, std::uint8_t reserved = 0) {
        ProgramWriter b(8, 4); // rows 1..3 are data, 8 pixels wide
        b.tensor(1, dtype, x0, y0, rows, cols, reserved).halt();
        return b;
    };
    SECTION("the pixel rectangle may touch the right and bottom edges") {
        for (auto b : {decl(U8, 6, 1, 3, 8), decl(U8, 7, 3, 1, 1), decl(U16, 6, 1, 1, 4),
                       decl(I32, 0, 1, 3, 8), decl(I8, 0, 1, 1, 32), decl(U16, 0, 3, 1, 16)}) {
            Image image = b.image;
            run_ok(image);
        }
    }
    SECTION("A must be 0") {
        require_fault_only(decl(U8, 0, 1, 1, 1, 1), px::FAULT_BAD_OPERAND, pc);
    }
    SECTION("A != 0 is reported before a bad dtype") {
        require_fault_only(decl(9, 0, 1, 1, 1, 5), px::FAULT_BAD_OPERAND, pc);
    }
    SECTION("unknown dtypes") {
        for (std::uint32_t dtype : {0u, 5u, 255u})
            require_fault_only(decl(dtype, 0, 1, 1, 1), px::FAULT_BAD_DTYPE, pc);
    }
    SECTION("a bad dtype is reported before an empty shape") {
        require_fault_only(decl(0, 0, 1, 0, 0), px::FAULT_BAD_DTYPE, pc);
    }
    SECTION("0 rows or 0 columns") {
        require_fault_only(decl(U8, 0, 1, 0, 1), px::FAULT_SHAPE_MISMATCH, pc);
        require_fault_only(decl(I32, 0, 1, 1, 0), px::FAULT_SHAPE_MISMATCH, pc);
    }
    SECTION("an empty shape is reported before row 0") {
        require_fault_only(decl(U8, 0, 0, 0, 1), px::FAULT_SHAPE_MISMATCH, pc);
    }
    SECTION("a tensor in row 0") {
        require_fault_only(decl(U8, 0, 0, 1, 1), px::FAULT_PROGRAM_ROW, pc);
    }
    SECTION("row 0 is reported before out of bounds") {
        require_fault_only(decl(U8, 100, 0, 100, 100), px::FAULT_PROGRAM_ROW, pc);
    }
    SECTION("out of bounds to the right, by pixel width") {
        require_fault_only(decl(U8, 7, 1, 1, 5), px::FAULT_OUT_OF_BOUNDS, pc);  // 2 pixels at x 7
        require_fault_only(decl(U16, 6, 1, 1, 5), px::FAULT_OUT_OF_BOUNDS, pc); // 3 pixels
        require_fault_only(decl(I32, 0, 1, 1, 9), px::FAULT_OUT_OF_BOUNDS, pc);
        require_fault_only(decl(U8, 8, 1, 1, 1), px::FAULT_OUT_OF_BOUNDS, pc);
        require_fault_only(decl(U8, 65535, 1, 1, 1), px::FAULT_OUT_OF_BOUNDS, pc);
        require_fault_only(decl(I32, 65535, 1, 1, 65535), px::FAULT_OUT_OF_BOUNDS, pc);
    }
    SECTION("out of bounds at the bottom") {
        require_fault_only(decl(U8, 0, 1, 4, 1), px::FAULT_OUT_OF_BOUNDS, pc);
        require_fault_only(decl(U8, 0, 4, 1, 1), px::FAULT_OUT_OF_BOUNDS, pc);
        require_fault_only(decl(U8, 0, 65535, 65535, 1), px::FAULT_OUT_OF_BOUNDS, pc);
    }
    SECTION("a faulting declaration after a valid one") {
        ProgramWriter b(16, 4);
        b.tensor(1, I32, 0, 1, 1, 1).tensor(1, I32, 0, 9, 1, 1).halt();
        require_fault_only(b, px::FAULT_OUT_OF_BOUNDS, 3);
    }
}

TEST_CASE("tensor: a tensor exists from its declaration onwards", "[reference][tensor][fault]") {
    ProgramWriter b(16, 4);
    b.relu(1, 1).tensor(1, I32, 0, 1, 1, 1).halt();
    require_fault_only(b, px::FAULT_UNDEFINED_TENSOR, 0);
}

TEST_CASE("tensor: re-declaration replaces the old one", "[reference][tensor]") {
    ProgramWriter b(32, 4);
    b.tensor(1, I8, 0, 1, 1, 4).tensor(2, I8, 0, 2, 1, 4).relu(2, 1); // row 2 = relu(row 1)
    b.tensor(1, I32, 0, 3, 1, 2).relu(1, 1).halt();                   // in place on row 3
    b.fill(2, {9, 9, 9, 9});
    b.image.set_pixel(0, 1, Pixel{0x80, 0x05, 0xFF, 0x7F}); // i8 -128, 5, -1, 127
    b.fill(1, {-3, 3});                                     // the i32 tensor in row 3
    Image image = b.image;
    const auto outcome = run_ok(image);
    REQUIRE(outcome.executed == 5);
    REQUIRE(b.read(2, image) == Values{0, 5, 0, 127});
    REQUIRE(b.read(1, image) == Values{0, 3});
    REQUIRE(image.pixel(0, 1) == Pixel{0x80, 0x05, 0xFF, 0x7F}); // the first tensor is unchanged

    SECTION("a re-declaration with another dtype changes what checks accept") {
        ProgramWriter p(32, 4);
        p.tensor(1, U8, 0, 1, 1, 4).tensor(2, I32, 0, 2, 1, 1).add_bias(2, 1);
        require_fault_only(p, px::FAULT_BAD_DTYPE, 6);
        ProgramWriter q(32, 4);
        q.tensor(1, U8, 0, 1, 1, 4).tensor(2, I32, 0, 2, 1, 1).tensor(1, I32, 0, 1, 1, 1);
        q.add_bias(2, 1).halt();
        q.fill(1, {40});
        q.fill(2, {2});
        Image img = q.image;
        run_ok(img);
        REQUIRE(q.read(2, img) == Values{42});
    }
}

// ---------------------------------------------------------------------------------------------
// dot

TEST_CASE("dot: u8 and i8 by hand", "[reference][dot]") {
    SECTION("u8 2x3") {
        ProgramWriter b(16, 4);
        b.tensor(1, I32, 0, 3, 1, 1).tensor(2, U8, 0, 1, 2, 3).tensor(3, U8, 4, 1, 2, 3);
        b.dot(1, 2, 3).halt();
        fill_noise(b.image, 3);
        b.fill(2, {1, 2, 3, 4, 5, 6}).fill(3, {7, 8, 9, 10, 11, 12});
        Image image = b.image;
        run_ok(image);
        Image expected = b.image;
        px::store_element(expected, b.t(1), 0, 0, 217);
        REQUIRE(image == expected); // the padding bytes of a and b are untouched
    }
    SECTION("i8 extremes") {
        ProgramWriter b(16, 4);
        b.tensor(1, I32, 0, 3, 1, 1).tensor(2, I8, 0, 1, 1, 3).tensor(3, I8, 0, 2, 1, 3);
        b.dot(1, 2, 3).halt();
        b.fill(2, {-1, 127, -128}).fill(3, {-128, 127, -128});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{128 + 16129 + 16384});
    }
    SECTION("1x1 operands and a == b") {
        ProgramWriter b(16, 4);
        b.tensor(1, I32, 0, 3, 1, 1).tensor(2, I8, 0, 1, 1, 1).dot(1, 2, 2).halt();
        b.fill(2, {-128});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{16384});
    }
}

TEST_CASE("dot: the sum wraps modulo 2^32", "[reference][dot]") {
    SECTION("u8: 80000 * 255 * 255 = 5202000000 = 2^32 + 907032704") {
        ProgramWriter b(10000, 6);
        b.tensor(1, I32, 0, 5, 1, 1).tensor(2, U8, 0, 1, 2, 40000).tensor(3, U8, 0, 3, 2, 40000);
        b.dot(1, 2, 3).halt();
        std::fill(b.image.data() + b.image.width() * 4, b.image.data() + b.image.size_bytes(),
                  std::uint8_t(255));
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{907032704});
    }
    SECTION("i8: 131072 * (-128) * (-128) = 2^31 wraps to INT32_MIN") {
        ProgramWriter b(8192, 10);
        b.tensor(1, I32, 0, 9, 1, 1).tensor(2, I8, 0, 1, 4, 32768).tensor(3, I8, 0, 5, 4, 32768);
        b.dot(1, 2, 3).halt();
        std::fill(b.image.data() + b.image.width() * 4, b.image.data() + b.image.size_bytes(),
                  std::uint8_t(0x80));
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{I32_MIN});
    }
}

TEST_CASE("dot: faults and check order", "[reference][dot][fault]") {
    // out at (0, 3), a in row 1, b in row 2, 32 x 4 image; the three declarations take pc 0..8.
    auto program = [](std::uint32_t out_dtype, std::uint32_t a_dtype, std::uint32_t b_dtype) {
        ProgramWriter p(32, 4);
        p.tensor(1, out_dtype, 0, 3, 1, 1)
            .tensor(2, a_dtype, 0, 1, 1, 4)
            .tensor(3, b_dtype, 0, 2, 1, 4);
        return p;
    };
    SECTION("out must be i32") {
        require_fault_only(program(U8, U8, U8).dot(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
        require_fault_only(program(U16, I8, I8).dot(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    }
    SECTION("a and b must both be u8 or both i8") {
        require_fault_only(program(I32, U8, I8).dot(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
        require_fault_only(program(I32, I8, U8).dot(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
        require_fault_only(program(I32, U16, U16).dot(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
        require_fault_only(program(I32, I32, I32).dot(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    }
    SECTION("undefined operands are reported before dtypes, in channel order") {
        require_fault_only(program(U8, U8, U8).dot(1, 2, 9), px::FAULT_UNDEFINED_TENSOR, 9);
        require_fault_only(program(I32, U8, U8).dot(9, 2, 3), px::FAULT_UNDEFINED_TENSOR, 9);
    }
    SECTION("shapes") {
        auto p = program(I32, U8, U8);
        p.tensor(4, U8, 4, 1, 2, 2).dot(1, 2, 4); // 1x4 vs 2x2: same count, other shape
        require_fault_only(p, px::FAULT_SHAPE_MISMATCH, 12);
        auto q = program(I32, U8, U8);
        q.tensor(4, I32, 0, 3, 1, 2).dot(4, 2, 3); // out 1x2
        require_fault_only(q, px::FAULT_SHAPE_MISMATCH, 12);
    }
    SECTION("a dtype fault is reported before a shape fault") {
        auto p = program(I32, U8, I8);
        p.tensor(4, I8, 4, 1, 2, 2).dot(1, 2, 4);
        require_fault_only(p, px::FAULT_BAD_DTYPE, 12);
    }
    SECTION("overlaps, partial pixels included") {
        auto p = program(I32, U8, U8);
        p.tensor(4, I32, 0, 1, 1, 1).dot(4, 2, 3); // out is a's pixel
        require_fault_only(p, px::FAULT_OVERLAP, 12);
        auto q = program(I32, U8, U8);
        q.tensor(5, U8, 0, 2, 1, 5).tensor(6, U8, 4, 1, 1, 5).tensor(4, I32, 1, 2, 1, 1);
        q.dot(4, 6, 5); // out (1, 2) is in the padding pixel of b
        require_fault_only(q, px::FAULT_OVERLAP, 18);
    }
    SECTION("a shape fault is reported before an overlap") {
        auto p = program(I32, U8, U8);
        p.tensor(4, I32, 0, 1, 1, 2).dot(4, 2, 3);
        require_fault_only(p, px::FAULT_SHAPE_MISMATCH, 12);
    }
    SECTION("adjacent tensors do not overlap") {
        auto p = program(I32, U8, U8);
        p.tensor(4, I32, 1, 1, 1, 1).dot(4, 2, 3).halt(); // a is exactly pixel (0, 1)
        p.fill(2, {1, 2, 3, 4}).fill(3, {1, 1, 1, 1});
        Image image = p.image;
        run_ok(image);
        REQUIRE(p.read(4, image) == Values{10});
    }
}

// ---------------------------------------------------------------------------------------------
// matmul

TEST_CASE("matmul: u8 and i8 by hand", "[reference][matmul]") {
    SECTION("u8 2x3 times (2x3)^T") {
        ProgramWriter b(16, 6);
        b.tensor(1, I32, 0, 3, 2, 2).tensor(2, U8, 0, 1, 2, 3).tensor(3, U8, 1, 1, 2, 3);
        b.matmul(1, 2, 3).halt();
        fill_noise(b.image, 4);
        b.fill(2, {1, 2, 3, 4, 5, 6}).fill(3, {7, 8, 9, 10, 11, 12});
        Image image = b.image;
        run_ok(image);
        Image expected = b.image;
        px::store_element(expected, b.t(1), 0, 0, 50);
        px::store_element(expected, b.t(1), 0, 1, 68);
        px::store_element(expected, b.t(1), 1, 0, 122);
        px::store_element(expected, b.t(1), 1, 1, 167);
        REQUIRE(image == expected);
    }
    SECTION("i8 1x2 times (3x2)^T") {
        ProgramWriter b(16, 6);
        b.tensor(1, I32, 0, 4, 1, 3).tensor(2, I8, 0, 1, 1, 2).tensor(3, I8, 1, 1, 3, 2);
        b.matmul(1, 2, 3).halt();
        b.fill(2, {-128, 127}).fill(3, {-128, -128, 127, 127, 1, -1});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{128, -127, -255});
    }
    SECTION("1x1 with K = 1") {
        for (auto [dtype, x, y, want] :
             {std::tuple{U8, 255, 255, 65025}, std::tuple{I8, -128, -128, 16384},
              std::tuple{I8, -128, 127, -16256}, std::tuple{U8, 0, 255, 0}}) {
            ProgramWriter b(16, 4);
            b.tensor(1, I32, 0, 3, 1, 1).tensor(2, dtype, 0, 1, 1, 1).tensor(3, dtype, 0, 2, 1, 1);
            b.matmul(1, 2, 3).halt();
            b.fill(2, {x}).fill(3, {y});
            Image image = b.image;
            run_ok(image);
            REQUIRE(b.read(1, image) == Values{want});
        }
    }
    SECTION("K = 1 is an outer product") {
        ProgramWriter b(16, 6);
        b.tensor(1, I32, 0, 4, 2, 3).tensor(2, I8, 0, 1, 2, 1).tensor(3, I8, 1, 1, 3, 1);
        b.matmul(1, 2, 3).halt();
        b.fill(2, {2, -3}).fill(3, {5, -7, 11});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{10, -14, 22, -15, 21, -33});
    }
    SECTION("a and b may be the same tensor (A times A^T)") {
        ProgramWriter b(16, 6);
        b.tensor(1, I32, 0, 3, 2, 2).tensor(2, U8, 0, 1, 2, 2).matmul(1, 2, 2).halt();
        b.fill(2, {1, 2, 3, 4});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{5, 11, 11, 25});
    }
}

TEST_CASE("matmul: the largest K wraps modulo 2^32 and reaches the i8 extremes",
          "[reference][matmul]") {
    // K = 65535 is the largest column count; a is row 1, b row 2, c pixel (0, 3).
    auto run_k = [](std::uint32_t dtype, std::uint8_t a_byte, std::uint8_t b_byte) {
        ProgramWriter b(16384, 4);
        b.tensor(1, I32, 0, 3, 1, 1).tensor(2, dtype, 0, 1, 1, 65535);
        b.tensor(3, dtype, 0, 2, 1, 65535).matmul(1, 2, 3).halt();
        std::fill_n(b.image.data() + 4 * 16384, 4 * 16384, a_byte);
        std::fill_n(b.image.data() + 8 * 16384, 4 * 16384, b_byte);
        Image image = b.image;
        run_ok(image);
        return b.read(1, image)[0];
    };
    // 65535 * 65025 = 4261413375 = 2^32 - 33553921.
    REQUIRE(run_k(U8, 255, 255) == -33553921);
    REQUIRE(run_k(I8, 0x80, 0x80) == 65535 * 16384);
    REQUIRE(run_k(I8, 0x80, 0x7F) == 65535 * -16256);
    REQUIRE(run_k(I8, 0xFF, 0xFF) == 65535);
}

TEST_CASE("matmul: random small matrices match a naive computation", "[reference][matmul]") {
    std::mt19937 rng(20240611);
    auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    for (int trial = 0; trial < 300; ++trial) {
        const std::uint32_t dtype = trial % 2 ? I8 : U8;
        const auto M = std::uint32_t(uniform(1, 9)), N = std::uint32_t(uniform(1, 9)),
                   K = std::uint32_t(uniform(1, 37));
        const std::uint32_t kw = (K + 3) / 4;
        const auto ax = std::uint32_t(uniform(0, 3));
        const std::uint32_t bx = ax + kw + std::uint32_t(uniform(0, 2));
        const auto cx = std::uint32_t(uniform(0, 3)), cy = 1 + std::max(M, N);
        const std::uint32_t width = std::max({bx + kw, cx + N, 16u});
        ProgramWriter b(width, cy + M);
        fill_noise(b.image, std::uint32_t(trial));
        b.tensor(10, I32, cx, cy, M, N).tensor(20, dtype, ax, 1, M, K);
        b.tensor(30, dtype, bx, 1, N, K).matmul(10, 20, 30).halt();

        const int lo = dtype == I8 ? -128 : 0, hi = dtype == I8 ? 127 : 255;
        Values a(std::size_t(M) * K), w(std::size_t(N) * K);
        for (auto& v : a)
            v = uniform(lo, hi);
        for (auto& v : w)
            v = uniform(lo, hi);
        b.fill(20, a).fill(30, w);

        Image expected = b.image;
        for (std::uint32_t m = 0; m < M; ++m)
            for (std::uint32_t n = 0; n < N; ++n) {
                std::int64_t sum = 0;
                for (std::uint32_t k = 0; k < K; ++k)
                    sum += a[m * K + k] * w[n * K + k];
                px::store_element(expected, b.t(10), m, n, wrap32(sum));
            }
        Image image = b.image;
        run_ok(image);
        INFO("trial " << trial << ": " << M << "x" << N << "x" << K);
        INFO(px::describe(px::compare_images(expected, image)));
        REQUIRE(image == expected);
    }
}

TEST_CASE("matmul: faults and check order", "[reference][matmul][fault]") {
    // c 2x3 at (0, 4), a 2x4 at (0, 1), b 3x4 at (1, 1); declarations take pc 0..8.
    auto program = [](std::uint32_t c_dtype, std::uint32_t a_dtype, std::uint32_t b_dtype) {
        ProgramWriter p(16, 6);
        p.tensor(1, c_dtype, 0, 4, 2, 3)
            .tensor(2, a_dtype, 0, 1, 2, 4)
            .tensor(3, b_dtype, 1, 1, 3, 4);
        return p;
    };
    SECTION("dtypes") {
        require_fault_only(program(U8, U8, U8).matmul(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
        require_fault_only(program(I32, U8, I8).matmul(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
        require_fault_only(program(I32, U16, U16).matmul(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
        require_fault_only(program(I32, I32, I32).matmul(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    }
    SECTION("an undefined operand and a bad dtype: UNDEFINED_TENSOR") {
        require_fault_only(program(U8, U8, U8).matmul(1, 2, 77), px::FAULT_UNDEFINED_TENSOR, 9);
        require_fault_only(program(I32, I8, U8).matmul(1, 77, 3), px::FAULT_UNDEFINED_TENSOR, 9);
    }
    SECTION("shapes") {
        auto p = program(I32, U8, U8);
        p.tensor(4, U8, 2, 1, 3, 5).matmul(1, 2, 4); // K 4 vs 5
        require_fault_only(p, px::FAULT_SHAPE_MISMATCH, 12);
        auto q = program(I32, U8, U8);
        q.tensor(4, I32, 0, 4, 1, 3).matmul(4, 2, 3); // c.rows 1 != a.rows 2
        require_fault_only(q, px::FAULT_SHAPE_MISMATCH, 12);
        auto r = program(I32, U8, U8);
        r.tensor(4, I32, 0, 4, 2, 2).matmul(4, 2, 3); // c.cols 2 != b.rows 3
        require_fault_only(r, px::FAULT_SHAPE_MISMATCH, 12);
        auto s = program(I32, U8, U8);
        s.matmul(1, 3, 2); // swapped: c would have to be 3x2
        require_fault_only(s, px::FAULT_SHAPE_MISMATCH, 9);
    }
    SECTION("overlaps") {
        auto p = program(I32, U8, U8);
        p.tensor(4, I32, 0, 2, 2, 3).matmul(4, 2, 3); // rows 2-3 cover a's row 2 and b
        require_fault_only(p, px::FAULT_OVERLAP, 12);
        auto q = program(I32, U8, U8);
        q.tensor(4, I32, 0, 3, 2, 3).matmul(4, 2, 3); // rows 3-4 cover b's last row only
        require_fault_only(q, px::FAULT_OVERLAP, 12);
    }
}

// ---------------------------------------------------------------------------------------------
// add_bias

TEST_CASE("add_bias: wraps modulo 2^32", "[reference][add_bias]") {
    ProgramWriter b(16, 4);
    b.tensor(1, I32, 0, 1, 2, 3).tensor(2, I32, 0, 3, 1, 3).add_bias(1, 2).halt();
    b.fill(1, {I32_MAX, -5, 0, 1, 2, 3}).fill(2, {1, -10, I32_MIN});
    Image image = b.image;
    run_ok(image);
    REQUIRE(b.read(1, image) == Values{I32_MIN, -15, I32_MIN, 2, -8, I32_MIN + 3});
    REQUIRE(b.read(2, image) == Values{1, -10, I32_MIN});
}

TEST_CASE("add_bias: faults", "[reference][add_bias][fault]") {
    auto program = [](std::uint32_t acc_dtype, std::uint32_t bias_dtype) {
        ProgramWriter p(16, 4);
        p.tensor(1, acc_dtype, 0, 1, 2, 3).tensor(2, bias_dtype, 4, 1, 1, 3);
        return p;
    };
    require_fault_only(program(U8, I32).add_bias(1, 2), px::FAULT_BAD_DTYPE, 6);
    require_fault_only(program(I32, I8).add_bias(1, 2), px::FAULT_BAD_DTYPE, 6);
    require_fault_only(program(I32, I32).add_bias(1, 3), px::FAULT_UNDEFINED_TENSOR, 6);
    require_fault_only(program(I32, I32).op(px::OP_ADD_BIAS, 1, 2, 1), px::FAULT_BAD_OPERAND, 6);
    auto p = program(I32, I32);
    p.tensor(3, I32, 4, 1, 2, 3).add_bias(1, 3); // bias 2 rows
    require_fault_only(p, px::FAULT_SHAPE_MISMATCH, 9);
    auto q = program(I32, I32);
    q.tensor(3, I32, 4, 1, 1, 4).add_bias(1, 3); // bias 1 x 4 for 3 columns
    require_fault_only(q, px::FAULT_SHAPE_MISMATCH, 9);
    auto r = program(I32, I32);
    r.tensor(3, I32, 0, 2, 1, 3).add_bias(1, 3); // bias is acc's second row
    require_fault_only(r, px::FAULT_OVERLAP, 9);
    auto s = program(I32, I32);
    s.tensor(3, I32, 0, 1, 1, 3).tensor(4, I32, 0, 1, 1, 3).add_bias(3, 4); // same region
    require_fault_only(s, px::FAULT_OVERLAP, 12);
}

// ---------------------------------------------------------------------------------------------
// requant

namespace {

// Requantises `in` (i32) into a new tensor of `out_dtype` and returns the output.
Values requant_values(const Values& in, std::int32_t multiplier, std::uint8_t shift,
                      std::int8_t zero_point, std::uint32_t out_dtype) {
    const auto n = std::uint32_t(in.size());
    ProgramWriter b(std::max(16u, n), 3);
    b.tensor(1, I32, 0, 1, 1, n).tensor(2, out_dtype, 0, 2, 1, n);
    b.requant(2, 1, multiplier, shift, zero_point).halt();
    fill_noise(b.image, 5);
    b.fill(1, in);
    Image image = b.image;
    run_ok(image);
    REQUIRE(b.read(1, image) == in);
    return b.read(2, image);
}

} // namespace

TEST_CASE("requant: rounds to nearest, ties toward +infinity", "[reference][requant]") {
    // shift 1: x / 2
    REQUIRE(requant_values({5, -5, 7, -7, 6, -6, 1, -1, 3, -3}, 1, 1, 0, I32) ==
            Values{3, -2, 4, -3, 3, -3, 1, 0, 2, -1});
    // shift 2: x / 4
    REQUIRE(requant_values({7, -7, 6, -6, 2, -2, 10, -10}, 1, 2, 0, I32) ==
            Values{2, -2, 2, -1, 1, 0, 3, -2});
    // 3 * 1000 / 16 = 187.5
    REQUIRE(requant_values({1000, -1000}, 3, 4, 0, I32) == Values{188, -187});
    // a negative multiplier: -5 * -1 / 2 = 2.5 -> 3, 5 * -1 / 2 = -2.5 -> -2
    REQUIRE(requant_values({-5, 5}, -1, 1, 0, I32) == Values{3, -2});
}

TEST_CASE("requant: shift 0 adds nothing", "[reference][requant]") {
    REQUIRE(requant_values({3, -3, I32_MAX, 0}, -7, 0, 0, I32) == Values{-21, 21, I32_MIN, 0});
    REQUIRE(requant_values({1, 3}, 0x12345678, 0, 0, I32) == Values{0x12345678, 0x369D0368});
}

TEST_CASE("requant: shift 62 and the extreme multiplier", "[reference][requant]") {
    // INT32_MIN * INT32_MIN = 2^62 -> 1; INT32_MAX * INT32_MIN = -2^62 + 2^31 -> -1;
    // 1 * INT32_MIN = -2^31 -> 0 (|p| < 2^61).
    REQUIRE(requant_values({I32_MIN, I32_MAX, 0, 1, -1}, INT32_MIN, 62, 0, I32) ==
            Values{1, -1, 0, 0, 0});
    // 2^62 >> 31 = 2^31 saturates an i32 output, unless the zero point brings it back in range.
    REQUIRE(requant_values({I32_MIN}, INT32_MIN, 31, 0, I32) == Values{I32_MAX});
    REQUIRE(requant_values({I32_MIN}, INT32_MIN, 31, -128, I32) == Values{I32_MAX - 127});
    REQUIRE(requant_values({I32_MIN}, INT32_MIN, 62, 127, I8) == Values{127});
    REQUIRE(requant_values({I32_MIN}, INT32_MIN, 0, 0, U8) == Values{255});
    REQUIRE(requant_values({I32_MAX}, INT32_MIN, 0, 0, I32) == Values{I32_MIN});
}

TEST_CASE("requant: zero point and saturation", "[reference][requant]") {
    REQUIRE(requant_values({10, -100, 200}, 1, 0, -128, I8) == Values{-118, -128, 72});
    REQUIRE(requant_values({10, -100, 200}, 1, 0, -128, U8) == Values{0, 0, 72});
    REQUIRE(requant_values({10, -100, 200}, 1, 0, 127, U8) == Values{137, 27, 255});
    REQUIRE(requant_values({10, -100, 200}, 1, 0, 127, I8) == Values{127, 27, 127});
    REQUIRE(requant_values({-1, 0, 255, 256, I32_MAX, I32_MIN}, 1, 0, 0, U8) ==
            Values{0, 0, 255, 255, 255, 0});
    REQUIRE(requant_values({-129, -128, 127, 128, I32_MAX, I32_MIN}, 1, 0, 0, I8) ==
            Values{-128, -128, 127, 127, 127, -128});
    REQUIRE(requant_values({I32_MAX, I32_MIN}, 1, 0, 1, I32) == Values{I32_MAX, I32_MIN + 1});
    REQUIRE(requant_values({I32_MIN}, 1, 0, -1, I32) == Values{I32_MIN});
}

TEST_CASE("requant: u8 and i8 outputs leave their padding bytes alone", "[reference][requant]") {
    ProgramWriter b(16, 3);
    b.tensor(1, I32, 0, 1, 1, 3).tensor(2, U8, 0, 2, 1, 3).requant(2, 1, 1, 0, 0).halt();
    b.image.set_pixel(0, 2, Pixel{9, 9, 9, 0xEE});
    b.fill(1, {1, 2, 3});
    Image image = b.image;
    run_ok(image);
    REQUIRE(image.pixel(0, 2) == Pixel{1, 2, 3, 0xEE});
}

TEST_CASE("requant: in place on i32", "[reference][requant]") {
    ProgramWriter b(16, 3);
    b.tensor(1, I32, 0, 1, 2, 3).requant(1, 1, 3, 1, 5).halt();
    // (3x + 1) >> 1, + 5
    b.fill(1, {1, -1, 4, 0, -4, I32_MAX});
    Image image = b.image;
    run_ok(image);
    REQUIRE(b.read(1, image) == Values{7, 4, 11, 5, -1, I32_MAX});
}

TEST_CASE("requant: faults and check order", "[reference][requant][fault]") {
    auto program = [](std::uint32_t out_dtype, std::uint32_t in_dtype) {
        ProgramWriter p(32, 4);
        p.tensor(1, out_dtype, 0, 2, 1, 3).tensor(2, in_dtype, 0, 1, 1, 3);
        return p;
    };
    SECTION("dtypes") {
        require_fault_only(program(U16, I32).requant(1, 2, 1, 0, 0), px::FAULT_BAD_DTYPE, 6);
        require_fault_only(program(I32, I8).requant(1, 2, 1, 0, 0), px::FAULT_BAD_DTYPE, 6);
        require_fault_only(program(I32, U8).requant(1, 2, 1, 0, 0), px::FAULT_BAD_DTYPE, 6);
    }
    SECTION("shift 63 and more") {
        require_fault_only(program(I8, I32).requant(1, 2, 1, 63, 0), px::FAULT_BAD_OPERAND, 6);
        require_fault_only(program(I8, I32).requant(1, 2, 1, 255, 0), px::FAULT_BAD_OPERAND, 6);
    }
    SECTION("reserved channels") {
        require_fault_only(program(I8, I32).requant(1, 2, 1, 0, 0, 1), px::FAULT_BAD_OPERAND, 6);
        auto p = program(I8, I32);
        p.op(px::OP_REQUANT, 1, 2, 3).pixel({1, 0, 0, 0}).pixel({0, 0, 0, 0});
        require_fault_only(p, px::FAULT_BAD_OPERAND, 6);
        auto q = program(I8, I32);
        q.requant(1, 2, 1, 0, 0).pixel({px::OP_REQUANT, 1, 2, 0});
        q.pixel({1, 0, 0, 0}).pixel({0, 0, 0, 7});       // only A of the second pixel set
        require_fault_only(q, px::FAULT_BAD_OPERAND, 9); // the first requant wrote zeros on zeros
    }
    SECTION("reserved channels are checked before operands") {
        require_fault_only(program(I8, I32).requant(9, 2, 1, 0, 0, 1), px::FAULT_BAD_OPERAND, 6);
    }
    SECTION("dtype before shift, shift before shape") {
        require_fault_only(program(U16, I32).requant(1, 2, 1, 63, 0), px::FAULT_BAD_DTYPE, 6);
        auto p = program(I8, I32);
        p.tensor(3, I8, 0, 3, 1, 4).requant(3, 2, 1, 63, 0);
        require_fault_only(p, px::FAULT_BAD_OPERAND, 9);
    }
    SECTION("shapes") {
        auto p = program(I8, I32);
        p.tensor(3, I8, 4, 2, 2, 1).requant(3, 2, 1, 0, 0);
        require_fault_only(p, px::FAULT_SHAPE_MISMATCH, 9);
    }
    SECTION("in place is only allowed for an i32 output") {
        auto p = program(I8, I32);
        p.tensor(3, U8, 0, 1, 1, 3).requant(3, 2, 1, 0, 0); // same origin and shape, u8
        require_fault_only(p, px::FAULT_OVERLAP, 9);
        auto q = program(I8, I32);
        q.tensor(3, I32, 1, 1, 1, 3).requant(3, 2, 1, 0, 0); // shifted by one pixel
        require_fault_only(q, px::FAULT_OVERLAP, 9);
    }
}

// ---------------------------------------------------------------------------------------------
// relu

TEST_CASE("relu: every dtype, copy and in place", "[reference][relu]") {
    SECTION("i8") {
        ProgramWriter b(16, 3);
        b.tensor(1, I8, 0, 1, 1, 5).tensor(2, I8, 0, 2, 1, 5).relu(2, 1).halt();
        b.fill(1, {-128, -1, 0, 1, 127});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(2, image) == Values{0, 0, 0, 1, 127});
        REQUIRE(b.read(1, image) == Values{-128, -1, 0, 1, 127});
    }
    SECTION("i8 in place") {
        ProgramWriter b(16, 3);
        b.tensor(1, I8, 0, 1, 1, 5).relu(1, 1).halt();
        b.fill(1, {-128, -1, 0, 1, 127});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{0, 0, 0, 1, 127});
    }
    SECTION("i32 in place") {
        ProgramWriter b(16, 3);
        b.tensor(1, I32, 0, 1, 2, 3).relu(1, 1).halt();
        b.fill(1, {I32_MIN, -1, 0, 5, I32_MAX, -256});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(1, image) == Values{0, 0, 0, 5, I32_MAX, 0});
    }
    SECTION("u8 and u16 are unchanged") {
        ProgramWriter b(16, 3);
        b.tensor(1, U8, 0, 1, 1, 3).tensor(2, U8, 4, 1, 1, 3).relu(2, 1);
        b.tensor(3, U16, 0, 2, 1, 2).tensor(4, U16, 4, 2, 1, 2).relu(4, 3).halt();
        b.fill(1, {0, 128, 255}).fill(3, {65535, 32768});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(2, image) == Values{0, 128, 255});
        REQUIRE(b.read(4, image) == Values{65535, 32768});
    }
}

TEST_CASE("relu: faults", "[reference][relu][fault]") {
    ProgramWriter a(16, 3);
    a.tensor(1, I8, 0, 1, 1, 4).tensor(2, U8, 0, 2, 1, 4).relu(2, 1);
    require_fault_only(a, px::FAULT_BAD_DTYPE, 6);
    ProgramWriter b(16, 3);
    b.tensor(1, I8, 0, 1, 1, 4).tensor(2, I8, 0, 2, 1, 3).relu(2, 1);
    require_fault_only(b, px::FAULT_SHAPE_MISMATCH, 6);
    ProgramWriter c(16, 3);
    c.tensor(1, I8, 0, 1, 1, 8).tensor(2, I8, 1, 1, 1, 8).relu(2, 1); // share pixel (1, 1)
    require_fault_only(c, px::FAULT_OVERLAP, 6);
    ProgramWriter d(16, 3);
    d.tensor(1, I8, 0, 1, 1, 4).tensor(2, I8, 0, 1, 1, 3).relu(2, 1); // same pixels, other shape
    require_fault_only(d, px::FAULT_SHAPE_MISMATCH, 6);
    ProgramWriter e(16, 3);
    e.tensor(1, I8, 0, 1, 2, 4).tensor(2, I8, 0, 1, 1, 4).relu(2, 2).relu(1, 2);
    require_fault_only(e, px::FAULT_SHAPE_MISMATCH, 7);
    ProgramWriter f(16, 3);
    f.tensor(1, I8, 0, 1, 1, 4).op(px::OP_RELU, 1, 1, 1);
    require_fault_only(f, px::FAULT_BAD_OPERAND, 3);
}

// ---------------------------------------------------------------------------------------------
// argmax

TEST_CASE("argmax: lowest index wins ties", "[reference][argmax]") {
    ProgramWriter b(32, 8);
    b.tensor(1, U8, 0, 1, 3, 4).tensor(2, I32, 1, 1, 3, 1).argmax(2, 1);
    b.tensor(3, I8, 0, 4, 3, 4).tensor(4, U16, 1, 4, 3, 1).argmax(4, 3);
    b.tensor(5, I32, 0, 7, 1, 3).tensor(6, U16, 3, 7, 1, 1).argmax(6, 5);
    b.tensor(7, U16, 4, 7, 1, 3).tensor(8, I32, 6, 7, 1, 1).argmax(8, 7).halt();
    b.fill(1, {3, 7, 7, 1, 0, 0, 0, 0, 1, 2, 3, 255});
    b.fill(3, {-5, -3, -3, -128, -128, -128, -128, -128, 127, -1, 127, 0});
    b.fill(5, {I32_MIN, I32_MIN, I32_MIN + 1});
    b.fill(7, {65535, 0, 65535});
    Image image = b.image;
    run_ok(image);
    REQUIRE(b.read(2, image) == Values{1, 0, 3});
    REQUIRE(b.read(4, image) == Values{1, 0, 0});
    REQUIRE(b.read(6, image) == Values{2});
    REQUIRE(b.read(8, image) == Values{0});
}

TEST_CASE("argmax: indices above 255 and single columns", "[reference][argmax]") {
    ProgramWriter b(128, 4);
    b.tensor(1, U8, 0, 1, 2, 300).tensor(2, U16, 100, 1, 2, 1).argmax(2, 1);
    b.tensor(3, I32, 0, 3, 1, 1).tensor(4, U16, 1, 3, 1, 1).argmax(4, 3).halt();
    Values in(600, 5);
    in[299] = 6;       // row 0: the last column
    in[300 + 258] = 9; // row 1: column 258
    in[300 + 259] = 9;
    b.fill(1, in).fill(3, {-7});
    b.image.set_pixel(1, 3, Pixel{0xAA, 0xBB, 0xCC, 0xDD});
    Image image = b.image;
    run_ok(image);
    REQUIRE(b.read(2, image) == Values{299, 258});
    REQUIRE(image.pixel(1, 3) == Pixel{0, 0, 0xCC, 0xDD}); // u16 0, padding untouched
}

TEST_CASE("argmax: faults", "[reference][argmax][fault]") {
    auto program = [](std::uint32_t out_dtype, std::uint32_t out_rows, std::uint32_t out_cols) {
        ProgramWriter p(16, 4);
        p.tensor(1, I8, 0, 1, 2, 4).tensor(2, out_dtype, 2, 1, out_rows, out_cols);
        return p;
    };
    require_fault_only(program(U8, 2, 1).argmax(2, 1), px::FAULT_BAD_DTYPE, 6);
    require_fault_only(program(I8, 2, 1).argmax(2, 1), px::FAULT_BAD_DTYPE, 6);
    require_fault_only(program(U16, 1, 1).argmax(2, 1), px::FAULT_SHAPE_MISMATCH, 6);
    require_fault_only(program(U16, 3, 1).argmax(2, 1), px::FAULT_SHAPE_MISMATCH, 6);
    require_fault_only(program(I32, 2, 2).argmax(2, 1), px::FAULT_SHAPE_MISMATCH, 6);
    require_fault_only(program(U8, 3, 1).argmax(2, 1), px::FAULT_BAD_DTYPE, 6);
    auto p = program(I32, 2, 1);
    p.tensor(3, I32, 0, 2, 2, 1).argmax(3, 1);
    require_fault_only(p, px::FAULT_OVERLAP, 9);
}

// ---------------------------------------------------------------------------------------------
// gather_mean

TEST_CASE("gather_mean: mean of the rows named by the ids before the first 0",
          "[reference][gather_mean]") {
    ProgramWriter b(16, 8);
    b.tensor(1, U8, 0, 1, 4, 3).tensor(2, U8, 0, 5, 1, 4).tensor(3, I32, 0, 6, 1, 3);
    b.gather_mean(3, 1, 2).halt();
    fill_noise(b.image, 6);
    b.fill(1, {9, 9, 9, 1, 2, 3, 4, 6, 250, 0, 255, 7});
    b.fill(2, {1, 2, 0, 3}); // T = 2: sums (5, 8, 253) -> 2.5, 4, 126.5
    Image image = b.image;
    run_ok(image);
    Image expected = b.image;
    px::store_element(expected, b.t(3), 0, 0, 3);
    px::store_element(expected, b.t(3), 0, 1, 4);
    px::store_element(expected, b.t(3), 0, 2, 127);
    REQUIRE(image == expected);
}

TEST_CASE("gather_mean: T = 0 gives 0", "[reference][gather_mean]") {
    ProgramWriter b(16, 8);
    b.tensor(1, U8, 0, 1, 4, 3).tensor(2, U8, 0, 5, 1, 3).tensor(3, I32, 0, 6, 1, 3);
    b.gather_mean(3, 1, 2).halt();
    fill_noise(b.image, 7);
    b.fill(2, {0, 1, 200}); // ids after the first 0 are neither used nor range-checked
    Image image = b.image;
    run_ok(image);
    REQUIRE(b.read(3, image) == Values{0, 0, 0});
}

TEST_CASE("gather_mean: negative sums round ties toward +infinity", "[reference][gather_mean]") {
    auto run_mean = [](const Values& table, const Values& tokens) {
        const auto rows = std::uint32_t(table.size() / 3), n = std::uint32_t(tokens.size());
        ProgramWriter b(16, rows + 3);
        b.tensor(1, I8, 0, 1, rows, 3).tensor(2, U8, 0, rows + 1, 1, n);
        b.tensor(3, I32, 0, rows + 2, 1, 3).gather_mean(3, 1, 2).halt();
        b.fill(1, table).fill(2, tokens);
        Image image = b.image;
        run_ok(image);
        return b.read(3, image);
    };
    const Values table = {0, 0, 0, -3, -1, 5, -2, -2, -128, 1, 0, -127};
    // T = 2: sums (-5, -3, -123) -> -2.5, -1.5, -61.5
    REQUIRE(run_mean(table, {1, 2}) == Values{-2, -1, -61});
    // T = 3: sums (-4, -3, -250) -> -1.33, -1, -83.33
    REQUIRE(run_mean(table, {1, 2, 3}) == Values{-1, -1, -83});
    // T = 3: (1, 1, 2): sums (-8, -4, -118) -> -2.67, -1.33, -39.33
    REQUIRE(run_mean(table, {1, 1, 2, 0, 3}) == Values{-3, -1, -39});
    // T = 4: (2, 2, 2, 3): sums (-5, -6, -511) -> -1.25, -1.5, -127.75
    REQUIRE(run_mean(table, {2, 2, 2, 3}) == Values{-1, -1, -128});
    // one token: the row itself
    REQUIRE(run_mean(table, {3}) == Values{1, 0, -127});
}

TEST_CASE("gather_mean: u16 and i32 tokens, row-major order", "[reference][gather_mean]") {
    SECTION("u16 ids above 255") {
        ProgramWriter b(16, 264);
        b.tensor(1, U8, 0, 1, 260, 1).tensor(2, U16, 1, 1, 1, 3).tensor(3, I32, 3, 1, 1, 1);
        b.gather_mean(3, 1, 2).halt();
        b.image.set_pixel(0, 1 + 256, Pixel{10, 0, 0, 0});
        b.image.set_pixel(0, 1 + 259, Pixel{21, 0, 0, 0});
        b.fill(2, {259, 256, 0});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(3, image) == Values{16}); // 31 / 2 = 15.5
    }
    SECTION("i32 ids with no terminating 0 use every element") {
        ProgramWriter b(16, 8);
        b.tensor(1, U8, 0, 1, 3, 2).tensor(2, I32, 0, 4, 1, 3).tensor(3, I32, 0, 5, 1, 2);
        b.gather_mean(3, 1, 2).halt();
        b.fill(1, {0, 0, 1, 100, 2, 201}).fill(2, {2, 1, 1});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(3, image) == Values{1, 134}); // (4/3, 401/3)
    }
    SECTION("2-D tokens are read row-major and stop at the first 0") {
        ProgramWriter b(32, 8);
        b.tensor(1, U8, 0, 1, 4, 1).tensor(2, U8, 1, 1, 2, 2).tensor(3, I32, 2, 1, 1, 1);
        b.tensor(4, U8, 3, 1, 2, 2).tensor(5, I32, 4, 1, 1, 1);
        b.gather_mean(3, 1, 2).gather_mean(5, 1, 4).halt();
        b.fill(1, {0, 10, 20, 40}).fill(2, {1, 2, 3, 0}).fill(4, {1, 0, 2, 3});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(3, image) == Values{23}); // 70 / 3
        REQUIRE(b.read(5, image) == Values{10});
    }
    SECTION("the largest token tensor: 65536 ids") {
        ProgramWriter b(8192, 8);
        b.tensor(1, U8, 0, 1, 2, 1).tensor(2, U8, 0, 3, 2, 32768).tensor(3, I32, 0, 5, 1, 1);
        b.gather_mean(3, 1, 2).halt();
        b.fill(1, {0, 255});
        std::fill_n(b.image.data() + 3 * 8192 * 4, 2 * 8192 * 4, std::uint8_t(1));
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(3, image) == Values{255});
    }
}

TEST_CASE("gather_mean: TOKEN_RANGE", "[reference][gather_mean][fault]") {
    // An earlier relu changes tensor 9; the faulting gather must keep that and change nothing else.
    auto program = [](std::uint32_t token_dtype, const Values& tokens) {
        ProgramWriter p(32, 8);
        p.tensor(9, I32, 8, 1, 1, 2).relu(9, 9);
        p.tensor(1, U8, 0, 1, 3, 2)
            .tensor(2, token_dtype, 0, 4, 1, std::uint32_t(tokens.size()))
            .tensor(3, I32, 0, 5, 1, 2)
            .gather_mean(3, 1, 2)
            .halt();
        fill_noise(p.image, 8);
        p.fill(9, {-5, 5}).fill(2, tokens);
        return p;
    };
    auto check = [](const ProgramWriter& p) {
        Image expected = p.image;
        px::store_element(expected, p.t(9), 0, 0, 0);
        require_fault(p.image, px::FAULT_TOKEN_RANGE, 13, expected);
    };
    check(program(U8, {1, 3})); // 3 == table rows
    check(program(U8, {255}));
    check(program(U16, {2, 1, 65535}));
    check(program(I32, {1, -1})); // negative id
    check(program(I32, {I32_MIN}));
    check(program(I32, {2, 3, 0}));
    SECTION("ids after the first 0 are not checked") {
        auto p = program(I32, {2, 0, -1, 99});
        Image image = p.image;
        run_ok(image);
        REQUIRE(p.read(3, image) == Values{p.read(1)[4], p.read(1)[5]});
    }
    SECTION("the ids are checked when the instruction runs, after earlier writes") {
        // argmax writes index 3 into the tokens tensor; the static plan cannot know that.
        ProgramWriter p(32, 8);
        p.tensor(1, U8, 0, 1, 3, 2)
            .tensor(2, I32, 0, 4, 1, 1)
            .tensor(3, I32, 0, 5, 1, 2)
            .tensor(4, U8, 1, 4, 1, 4)
            .argmax(2, 4)
            .gather_mean(3, 1, 2)
            .halt();
        p.fill(4, {0, 0, 0, 9}).fill(2, {1});
        Image expected = p.image;
        px::store_element(expected, p.t(2), 0, 0, 3);
        require_fault(p.image, px::FAULT_TOKEN_RANGE, 13, expected);
        REQUIRE(px::plan_program(p.image).steps.size() == 6);
    }
}

TEST_CASE("gather_mean: static faults", "[reference][gather_mean][fault]") {
    auto program = [](std::uint32_t out_dtype, std::uint32_t table_dtype,
                      std::uint32_t token_dtype) {
        ProgramWriter p(32, 8);
        p.tensor(1, out_dtype, 0, 5, 1, 2)
            .tensor(2, table_dtype, 0, 1, 3, 2)
            .tensor(3, token_dtype, 0, 4, 1, 2);
        return p;
    };
    require_fault_only(program(U8, U8, U8).gather_mean(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    require_fault_only(program(I32, I32, U8).gather_mean(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    require_fault_only(program(I32, U16, U8).gather_mean(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    require_fault_only(program(I32, I8, I8).gather_mean(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    require_fault_only(program(I32, I8, I8).gather_mean(1, 2, 4), px::FAULT_UNDEFINED_TENSOR, 9);
    auto a = program(I32, U8, U8);
    a.tensor(4, I32, 0, 5, 1, 3).gather_mean(4, 2, 3);
    require_fault_only(a, px::FAULT_SHAPE_MISMATCH, 12);
    auto b = program(I32, U8, U8);
    b.tensor(4, I32, 0, 5, 2, 2).gather_mean(4, 2, 3);
    require_fault_only(b, px::FAULT_SHAPE_MISMATCH, 12);
    ProgramWriter c(8193, 8); // 2 x 32769 u8 tokens = 65538 elements
    c.tensor(1, I32, 0, 5, 1, 2).tensor(2, U8, 0, 1, 3, 2).tensor(3, U8, 0, 6, 2, 32769);
    c.gather_mean(1, 2, 3);
    require_fault_only(c, px::FAULT_SHAPE_MISMATCH, 9);
    auto d = program(I32, U8, U8);
    d.tensor(4, I32, 0, 2, 1, 2).gather_mean(4, 2, 3); // out inside the table
    require_fault_only(d, px::FAULT_OVERLAP, 12);
    auto e = program(I32, U8, U8);
    e.tensor(4, I32, 0, 4, 1, 2).gather_mean(4, 2, 3); // out on the tokens
    require_fault_only(e, px::FAULT_OVERLAP, 12);
    SECTION("an overlap is reported before out-of-range ids") {
        auto f = program(I32, U8, U8);
        f.tensor(4, I32, 0, 4, 1, 2).gather_mean(4, 2, 3);
        f.fill(3, {200, 200});
        require_fault_only(f, px::FAULT_OVERLAP, 12);
    }
}

// ---------------------------------------------------------------------------------------------
// embed

TEST_CASE("embed: each row concatenates the table rows its ids name", "[reference][embed]") {
    ProgramWriter b(16, 12);
    b.tensor(1, I8, 0, 1, 4, 3).tensor(2, U8, 0, 5, 2, 2).tensor(3, I8, 0, 7, 2, 6);
    b.embed(3, 1, 2).halt();
    fill_noise(b.image, 9);
    b.fill(1, {0, 1, 2, -3, -4, -5, 60, 70, 80, -128, 127, 9});
    b.fill(2, {3, 0, 1, 1}); // id 0 is an ordinary row: no end token
    Image image = b.image;
    run_ok(image);
    Image expected = b.image;
    const Values want = {-128, 127, 9, 0, 1, 2, -3, -4, -5, -3, -4, -5};
    for (std::uint32_t i = 0; i < 12; ++i)
        px::store_element(expected, b.t(3), i / 6, i % 6, want[i]);
    REQUIRE(image == expected); // padding bytes of out's partial last pixel keep their noise
}

TEST_CASE("embed: u16 and i32 ids, u8 tables, a window wider than one pixel",
          "[reference][embed]") {
    SECTION("u16 ids above 255") {
        ProgramWriter b(16, 264);
        b.tensor(1, U8, 0, 1, 260, 1).tensor(2, U16, 1, 1, 1, 3).tensor(3, U8, 3, 1, 1, 3);
        b.embed(3, 1, 2).halt();
        b.image.set_pixel(0, 1 + 256, Pixel{10, 0, 0, 0});
        b.image.set_pixel(0, 1 + 259, Pixel{21, 0, 0, 0});
        b.fill(2, {259, 256, 259});
        Image image = b.image;
        run_ok(image);
        REQUIRE(b.read(3, image) == Values{21, 10, 21});
    }
    SECTION("i32 ids, 5 ids of 7 columns") {
        ProgramWriter b(32, 8);
        b.tensor(1, U8, 0, 1, 3, 7).tensor(2, I32, 0, 4, 1, 5).tensor(3, U8, 0, 5, 1, 35);
        b.embed(3, 1, 2).halt();
        Values table(21);
        for (std::size_t i = 0; i < table.size(); ++i)
            table[i] = std::int64_t(200 + i);
        b.fill(1, table).fill(2, {2, 1, 0, 2, 1});
        Image image = b.image;
        run_ok(image);
        Values want;
        for (std::int64_t id : {2, 1, 0, 2, 1})
            for (std::int64_t d = 0; d < 7; ++d)
                want.push_back(table[std::size_t(id * 7 + d)]);
        REQUIRE(b.read(3, image) == want);
    }
}

TEST_CASE("embed: TOKEN_RANGE checks every id, the first one out of range",
          "[reference][embed][fault]") {
    auto program = [](std::uint32_t token_dtype, const Values& tokens) {
        ProgramWriter p(32, 8);
        p.tensor(9, I32, 8, 1, 1, 2).relu(9, 9);
        p.tensor(1, U8, 0, 1, 3, 2)
            .tensor(2, token_dtype, 0, 4, 1, std::uint32_t(tokens.size()))
            .tensor(3, U8, 0, 5, 1, 2 * std::uint32_t(tokens.size()))
            .embed(3, 1, 2)
            .halt();
        fill_noise(p.image, 8);
        p.fill(9, {-5, 5}).fill(2, tokens);
        return p;
    };
    auto check = [](const ProgramWriter& p) {
        Image expected = p.image;
        px::store_element(expected, p.t(9), 0, 0, 0);
        require_fault(p.image, px::FAULT_TOKEN_RANGE, 13, expected);
    };
    check(program(U8, {1, 3})); // 3 == table rows
    check(program(U8, {0, 0, 255}));
    check(program(U16, {2, 1, 65535}));
    check(program(I32, {1, -1}));    // negative id
    check(program(I32, {2, 0, 99})); // an id after a 0 is checked too
    Image image = program(U8, {0, 5, 7}).image;
    const auto outcome = px::run_reference(image);
    CHECK(outcome.fault.reason.find("token 1 is id 5") != std::string::npos);
}

TEST_CASE("embed: static faults", "[reference][embed][fault]") {
    auto program = [](std::uint32_t out_dtype, std::uint32_t table_dtype,
                      std::uint32_t token_dtype) {
        ProgramWriter p(32, 8);
        p.tensor(1, out_dtype, 0, 5, 1, 4)
            .tensor(2, table_dtype, 0, 1, 3, 2)
            .tensor(3, token_dtype, 0, 4, 1, 2);
        return p;
    };
    require_fault_only(program(I32, I8, U8).embed(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    require_fault_only(program(U8, I8, U8).embed(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    require_fault_only(program(I8, U16, U8).embed(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    require_fault_only(program(U8, U8, I8).embed(1, 2, 3), px::FAULT_BAD_DTYPE, 9);
    require_fault_only(program(U8, U8, U8).embed(1, 2, 4), px::FAULT_UNDEFINED_TENSOR, 9);
    auto a = program(U8, U8, U8);
    a.tensor(4, U8, 0, 5, 1, 3).embed(4, 2, 3); // cols must be 2 x 2
    require_fault_only(a, px::FAULT_SHAPE_MISMATCH, 12);
    auto b = program(U8, U8, U8);
    b.tensor(4, U8, 0, 5, 2, 4).embed(4, 2, 3); // rows must be tokens.rows
    require_fault_only(b, px::FAULT_SHAPE_MISMATCH, 12);
    auto c = program(U8, U8, U8);
    c.tensor(4, U8, 0, 3, 1, 4).embed(4, 2, 3); // out on the table's last row
    require_fault_only(c, px::FAULT_OVERLAP, 12);
    auto d = program(U8, U8, U8);
    d.tensor(4, U8, 0, 4, 1, 4).embed(4, 2, 3); // out on the tokens
    d.fill(3, {200, 200});                      // the overlap is reported before the ids
    require_fault_only(d, px::FAULT_OVERLAP, 12);
    auto e = program(U8, U8, U8); // a valid embed, for contrast
    e.embed(1, 2, 3).halt();
    Image image = e.image;
    run_ok(image);
}

// ---------------------------------------------------------------------------------------------
// Decoding faults through the interpreter

TEST_CASE("decoding faults stop the run with earlier effects kept", "[reference][fault]") {
    auto program = [] {
        ProgramWriter p(8, 3);
        p.tensor(1, I32, 0, 1, 1, 2).relu(1, 1);
        p.fill(1, {-1, 1});
        return p;
    };
    auto after_relu = [](const ProgramWriter& p) {
        Image e = p.image;
        px::store_element(e, p.t(1), 0, 0, 0);
        return e;
    };
    SECTION("TRUNCATED: a tensor whose extension pixels run past row 0") {
        auto p = program();
        p.tensor(2, I32, 0, 2, 1, 1); // pc 4..6 fits; the next one at pc 7 does not
        p.op(px::OP_TENSOR, 3, I32, 0);
        require_fault(p.image, px::FAULT_TRUNCATED, 7, after_relu(p));
    }
    SECTION("TRUNCATED: a requant with one extension pixel in the row") {
        auto p = program();
        p.op(px::OP_RELU, 1, 1).op(px::OP_RELU, 1, 1);
        p.op(px::OP_REQUANT, 1, 1, 0).pixel({1, 0, 0, 0});
        require_fault(p.image, px::FAULT_TRUNCATED, 6, after_relu(p));
    }
    SECTION("TRUNCATED is reported before reserved channels") {
        auto p = program();
        p.op(px::OP_RELU, 1, 1).op(px::OP_RELU, 1, 1).op(px::OP_RELU, 1, 1);
        p.op(px::OP_REQUANT, 1, 1, 9);
        require_fault(p.image, px::FAULT_TRUNCATED, 7, after_relu(p));
    }
    SECTION("BAD_OPERAND: a reserved channel") {
        auto p = program();
        p.op(px::OP_ARGMAX, 1, 1, 1);
        require_fault(p.image, px::FAULT_BAD_OPERAND, 4, after_relu(p));
    }
    SECTION("BAD_OPERAND is reported before undefined operands") {
        auto p = program();
        p.op(px::OP_ADD_BIAS, 50, 60, 70);
        require_fault(p.image, px::FAULT_BAD_OPERAND, 4, after_relu(p));
    }
    SECTION("a static fault after a dynamic one: the dynamic one is reported") {
        ProgramWriter p(32, 8);
        p.tensor(1, U8, 0, 1, 2, 1).tensor(2, U8, 0, 3, 1, 1).tensor(3, I32, 0, 4, 1, 1);
        p.gather_mean(3, 1, 2).op(3);
        p.fill(2, {7});
        require_fault(p.image, px::FAULT_TOKEN_RANGE, 9, p.image);
    }
}

TEST_CASE("reference: a traced run, a whole tensor and a difference picture", "[reference]") {
    pxtest::ProgramWriter b(16, 6);
    b.tensor(1, px::DTYPE_I8, 0, 1, 2, 3).tensor(2, px::DTYPE_I8, 0, 3, 2, 3);
    b.fill(1, {-1, 2, -3, 4, -5, 6});
    b.relu(2, 1).halt();
    px::Image traced = b.image, plain = b.image;
    std::vector<std::uint32_t> pcs;
    const px::RunOutcome outcome = px::run_reference(
        traced, [&](const px::Step& s, const px::Image&) { pcs.push_back(s.instruction.pc); });
    CHECK(outcome.executed == 3);
    CHECK(pcs.size() == 3); // two declarations and the relu
    px::run_reference(plain);
    CHECK(traced == plain);

    const px::Plan plan = px::plan_program(b.image);
    auto lines = px::describe_tensor(plan, outcome.executed, traced, 2);
    REQUIRE(lines.ok());
    CHECK(*lines ==
          std::vector<std::string>{"t2 i8 2x3 at (0, 3)", "  row 0: 0 2 0", "  row 1: 4 0 6"});
    CHECK_FALSE(px::describe_tensor(plan, 1, traced, 2).ok()); // declared by the second step
    CHECK_FALSE(px::describe_tensor(plan, outcome.executed, traced, 5).ok());

    px::Image other = traced;
    other.set_pixel(1, 4, {9, 9, 9, 9});
    const px::Image diff = px::difference_image(traced, other);
    CHECK(diff.pixel(1, 4) == px::Pixel{255, 0, 0, 255});
    CHECK(diff.pixel(0, 4).r == diff.pixel(0, 4).g); // a grey elsewhere
    CHECK(diff.pixel(0, 4).r != 255);
}

TEST_CASE("the reference's work budget refuses a program before it runs", "[reference][limits]") {
    // Four 8191 x 8191 x 65535 matmuls: what a 1 MB hostile image can ask for (the steps are
    // built directly; the image they would need is 1 GiB).
    px::Plan plan;
    for (std::uint32_t pc = 0; pc < 4; ++pc) {
        px::Step step;
        step.instruction.pc = pc;
        step.instruction.opcode = px::OP_MATMUL;
        step.operands = {px::Tensor{0, 1, 8191, 8191, I32}, px::Tensor{0, 1, 8191, 65535, I8},
                         px::Tensor{0, 1, 8191, 65535, I8}};
        plan.steps.push_back(step);
    }
    const std::vector<std::uint64_t> work = px::reference_work(plan);
    CHECK(work[0] == 8191ull * 8191 * 65535 + 1);
    const auto refused = px::check_work(plan, work, px::ReferenceLimits{});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == px::ErrorCode::invalid_input);
    CHECK(refused.error().message ==
          "the program needs 1.8·10^13 operations on the reference interpreter (multiply-adds "
          "and element steps), more than its limit of 1.0·10^12 (--max-work); pc 0 (matmul) "
          "alone needs 4.4·10^12");

    // A real program over a small limit: refused, and the image is untouched.
    ProgramWriter b = pxtest::tiny_network();
    Image image = b.image;
    px::ReferenceLimits small;
    small.max_work = 20;
    const auto over = px::run_reference(image, small);
    REQUIRE_FALSE(over);
    CHECK_THAT(over.error().message, Catch::StartsWith("the program needs "));
    CHECK(image == b.image);
    // Within it, the limited run is the plain run.
    small.max_work = 1000;
    Image limited = b.image, plain = b.image;
    const auto ran = px::run_reference(limited, small);
    REQUIRE(ran);
    CHECK(ran->executed == px::run_reference(plain).executed);
    CHECK(limited == plain);
}

TEST_CASE("the reference's timeout stops a long matmul and names it", "[reference][limits]") {
    // 512 x 512 x 4096: 10^9 multiply-adds, far more than a millisecond on any CPU.
    ProgramWriter b(1032, 1 + 3 * 512);
    b.tensor(1, I32, 0, 1, 512, 512)
        .tensor(2, I8, 0, 513, 512, 4096)
        .tensor(3, I8, 0, 1025, 512, 4096)
        .dot_rgb(1, 1, 1)
        .matmul(1, 2, 3)
        .halt();
    Image image = b.image;
    px::ReferenceLimits limits;
    limits.timeout = std::chrono::milliseconds(1);
    const auto stopped = px::run_reference(image, limits);
    REQUIRE_FALSE(stopped);
    CHECK(stopped.error().code == px::ErrorCode::timeout);
    CHECK_THAT(stopped.error().message,
               Catch::Contains("ran past its 1 ms limit (--timeout-ms) in the instruction at pc "));
}
