// Tests of the disassembler and picture renderer (compiler/disassembler.cpp): disassembling then
// assembling gives the identical image for the seed asset, hand-written programs using every
// opcode, generated programs and hundreds of random images; comments and pictures look as
// documented.
#include "program_generator.hpp"

#include "pxvm/assembler.hpp"
#include "pxvm/disassembler.hpp"
#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

// Render options with only the scale set.
px::RenderOptions scaled(std::uint32_t scale) {
    px::RenderOptions options;
    options.scale = scale;
    return options;
}

using px::Image;
using px::Pixel;

// Disassembles, assembles the text and requires the identical image; returns the text.
std::string round_trip(const Image& image, const std::string& label) {
    const std::string text = px::disassemble(image, label);
    auto assembled = px::assemble(text, label + ".pxs");
    INFO(label << "\n" << text);
    if (!assembled) FAIL(assembled.error().message);
    INFO(px::describe(px::compare_images(image, assembled->image)));
    REQUIRE(assembled->image.width() == image.width());
    REQUIRE(assembled->image.height() == image.height());
    REQUIRE(assembled->image == image);
    return text;
}

Image assemble_ok(const std::string& source) {
    auto result = px::assemble(source, "prog.pxs");
    INFO(source);
    if (!result) FAIL(result.error().message);
    return std::move(result).value().image;
}

// The statement lines of .pxs text (comments and blank lines removed, trailing spaces trimmed).
std::vector<std::string> statements(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        line = line.substr(0, line.find(';'));
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        if (!line.empty()) lines.push_back(line);
    }
    return lines;
}

// The first word of every statement line that is not a directive.
std::vector<std::string> mnemonics_in(const std::string& text) {
    std::vector<std::string> words;
    for (const std::string& line : statements(text))
        if (line[0] != '.') words.push_back(line.substr(0, line.find(' ')));
    return words;
}

// Deterministic random numbers from std::mt19937, whose sequence the standard fixes.
class Random {
public:
    explicit Random(std::uint32_t seed) : engine_(seed) {}
    std::uint32_t below(std::uint32_t n) { return std::uint32_t(engine_() % n); }
    std::uint8_t byte() { return std::uint8_t(engine_() & 255); }
    bool chance(std::uint32_t percent) { return below(100) < percent; }
    Pixel pixel() { return Pixel{byte(), byte(), byte(), byte()}; }

private:
    std::mt19937 engine_;
};

// Every opcode, from the instruction table.
const std::vector<std::uint8_t> opcodes = [] {
    std::vector<std::uint8_t> list;
    for (const px::InstructionInfo& info : px::instruction_table())
        list.push_back(std::uint8_t(info.opcode));
    return list;
}();

// A random image; `mode` 0: random bytes everywhere; 1: sparse random pixels with row 0 biased
// toward opcodes; 2: row 0 mostly a sequence of plausible instructions, sparse data.
Image random_image(Random& random, int mode) {
    const std::uint32_t w = 1 + random.below(40), h = 1 + random.below(40);
    Image image(w, h);
    for (std::uint32_t y = 0; y < h; ++y)
        for (std::uint32_t x = 0; x < w; ++x)
            if (mode == 0 || random.chance(40)) image.set_pixel(x, y, random.pixel());
    if (mode == 0) return image;

    std::uint32_t x = 0;
    while (x < w) {
        if (mode == 1 || random.chance(8)) { // a raw pixel, biased toward an opcode in R
            Pixel p = random.pixel();
            if (random.chance(70)) p.r = opcodes[random.below(opcodes.size())];
            if (random.chance(30)) p.a = 0;
            image.set_pixel(x++, 0, p);
            continue;
        }
        const std::uint8_t op = opcodes[random.below(opcodes.size())];
        const auto small = [&] { return std::uint8_t(random.below(8)); };
        Pixel p{op, small(), small(), small()};
        const std::uint32_t length = px::instruction_length(op);
        if (op == px::OP_HALT && random.chance(80)) p = Pixel{};
        if (px::instruction_info(op)->used_args < 3 && op != px::OP_HALT)
            if (random.chance(90)) p.a = 0;
        if (op == px::OP_TENSOR)
            p.b = std::uint8_t(random.chance(85) ? 1 + random.below(4) : random.byte());
        image.set_pixel(x++, 0, p);
        for (std::uint32_t i = 1; i < length && x < w; ++i) {
            Pixel e = random.pixel();
            if (op == px::OP_TENSOR && random.chance(70)) e = Pixel{small(), 0, small(), 0};
            if (op == px::OP_REQUANT && i == 2) {
                e.r = std::uint8_t(random.chance(80) ? random.below(63) : random.byte());
                if (random.chance(85)) e.b = e.a = 0;
            }
            if (op == px::OP_RMSNORM && random.chance(85))
                e = Pixel{std::uint8_t(random.below(63)), 0, 0, 0};
            if (op == px::OP_ATTEND && i == 1 && random.chance(85))
                e = Pixel{small(), std::uint8_t(1 + random.below(8)),
                          std::uint8_t(random.below(63)), 0};
            image.set_pixel(x++, 0, e);
        }
    }
    return image;
}

} // namespace

TEST_CASE("disassembling the seed asset gives readable text that reassembles identically",
          "[disassembler][assets]") {
    auto image = px::load_png(PXVM_SOURCE_DIR "/assets/dot_test.pxi");
    REQUIRE(image.ok());
    const std::string text = round_trip(*image, "dot_test.pxi");
    CHECK(statements(text) == std::vector<std::string>{".image 16 16", "dot_rgb 1, 2, 3", "halt",
                                                       ".red 0 1  1 2 3 4",
                                                       ".red 0 2  10 20 30 40"});
    CHECK_THAT(text, Catch::StartsWith("; dot_test.pxi: 16x16 pixels"));
}

TEST_CASE("hand-written programs using every opcode round-trip", "[disassembler]") {
    const std::string program = ".image 64 14\n"
                                "dot_rgb 11, 12, 13\n"
                                "tensor t1, i8, 0, 1, 2, 3\n"
                                "tensor t2, i8, 1, 1, 2, 3\n"
                                "tensor t3, i32, 0, 3, 2, 2\n"
                                "tensor t4, i32, 0, 5, 1, 2\n"
                                "tensor t5, i8, 2, 1, 2, 2\n"
                                "tensor t6, u16, 3, 1, 2, 1\n"
                                "tensor t7, i32, 4, 1, 1, 1\n"
                                "tensor t8, u8, 5, 1, 1, 3\n"
                                "tensor t9, u8, 6, 1, 1, 3\n"
                                "tensor t10, u8, 0, 6, 4, 2\n"
                                "tensor t11, u8, 7, 1, 1, 4\n"
                                "tensor t12, i32, 2, 3, 1, 2\n"
                                "matmul t3, t1, t2\n"
                                "add_bias t3, t4\n"
                                "requant t5, t3, 1073741824, 31, -3\n"
                                "relu t5, t5\n"
                                "argmax t6, t5\n"
                                "dot t7, t8, t9\n"
                                "gather_mean t12, t10, t11\n"
                                "requant t3, t3, -7, 0, 127\n"
                                "halt\n"
                                ".data t1  1 -2 3  4 5 -6\n"
                                ".data t2  7 8 9  -1 0 1\n"
                                ".data t4  100 -100\n"
                                ".data t8  1 2 3\n"
                                ".data t9  4 5 6\n"
                                ".data t10  1 2  3 4  5 6  7 8\n"
                                ".data t11  1 3 2\n"
                                ".red 0 11  1 2 3\n"
                                ".red 0 12  4 5 6\n";
    const Image image = assemble_ok(program);
    REQUIRE_FALSE(px::plan_program(image).fault);
    const std::string text = round_trip(image, "every_opcode");
    const std::vector<std::string> expected = {
        "dot_rgb", "tensor", "tensor", "tensor",      "tensor",  "tensor", "tensor",   "tensor",
        "tensor",  "tensor", "tensor", "tensor",      "tensor",  "matmul", "add_bias", "requant",
        "relu",    "argmax", "dot",    "gather_mean", "requant", "halt"};
    CHECK(mnemonics_in(text) == expected);
    // The instruction lines are the source's, operand for operand.
    const std::vector<std::string> source = statements(program);
    const std::vector<std::string> disassembled = statements(text);
    for (std::size_t i = 1; i <= expected.size(); ++i)
        CHECK(disassembled[i] == source[i]);
    // Each tensor line carries its pixel rectangle; every instruction its pc.
    CHECK_THAT(text, Catch::Contains("tensor t3, i32, 0, 3, 2, 2") &&
                         Catch::Contains("; pc 7-9: i32 2x2 at pixels x 0-1, y 3-4"));
    CHECK_THAT(text, Catch::Contains("; pc 37"));
}

TEST_CASE("the disassembly marks static faults and keeps undecodable pixels raw",
          "[disassembler]") {
    SECTION("a fault comment precedes the faulting instruction") {
        const Image image = assemble_ok(".image 12 4\ntensor t1, u8, 0, 1, 1, 4\n"
                                        "relu t2, t1\nhalt\n");
        const std::string text = round_trip(image, "fault");
        CHECK_THAT(text, Catch::Contains("; fault UNDEFINED_TENSOR (5) at pc 3 (relu)"));
        CHECK(mnemonics_in(text) == std::vector<std::string>{"tensor", "relu", "halt"});
    }
    SECTION("an unknown opcode stops the mnemonics") {
        const Image image = assemble_ok(".image 8 2\ndot_rgb 1, 1, 1\n.rgba 1 0  200 1 2 3\n"
                                        ".rgba 3 0  1 1 1 1\n");
        const std::string text = round_trip(image, "bad opcode");
        CHECK(mnemonics_in(text) == std::vector<std::string>{"dot_rgb"});
        CHECK_THAT(text, Catch::Contains("; fault BAD_OPCODE (1) at pc 1"));
        CHECK_THAT(text, Catch::Contains(".rgba 1 0  200 1 2 3"));
        CHECK_THAT(text, Catch::Contains(".rgba 3 0  1 1 1 1"));
    }
    SECTION("a HALT with arguments is written raw") {
        Image image(4, 2);
        image.set_pixel(0, 0, Pixel{0, 5, 0, 0});
        const std::string text = round_trip(image, "halt with args");
        CHECK(mnemonics_in(text).empty());
        CHECK(text.find(".red 0 0") == std::string::npos);
        CHECK_THAT(text, Catch::Contains(".rgba 0 0  0 5 0 0"));
    }
    SECTION("pixels after HALT are written raw") {
        const Image image = assemble_ok(".image 8 2\nhalt\nrelu t1, t2\n");
        const std::string text = round_trip(image, "after halt");
        CHECK(mnemonics_in(text) == std::vector<std::string>{"halt"});
        CHECK_THAT(text, Catch::Contains("after halt"));
    }
    SECTION("a requant shift above 62 and an unknown dtype code are written raw") {
        Image image(8, 2);
        image.set_pixel(0, 0, Pixel{px::OP_REQUANT, 1, 2, 0});
        image.set_pixel(1, 0, Pixel{1, 2, 3, 4});
        image.set_pixel(2, 0, Pixel{63, 0, 0, 0});
        CHECK(mnemonics_in(round_trip(image, "shift 63")).empty());
        image.set_pixel(0, 0, Pixel{px::OP_TENSOR, 1, 9, 0});
        CHECK(mnemonics_in(round_trip(image, "dtype 9")).empty());
    }
    SECTION("truncated instructions at the end of row 0 are written raw") {
        Image image(4, 2);
        image.set_pixel(0, 0, Pixel{1, 1, 1, 1});
        image.set_pixel(1, 0, Pixel{1, 0, 0, 1});
        image.set_pixel(2, 0, Pixel{px::OP_TENSOR, 1, 1, 0});
        const std::string text = round_trip(image, "truncated");
        CHECK(mnemonics_in(text) == std::vector<std::string>{"dot_rgb", "dot_rgb"});
        CHECK_THAT(text, Catch::Contains("; fault TRUNCATED (2) at pc 2"));
    }
    SECTION("an all-zero image is one halt") {
        const std::string text = round_trip(Image(3, 3), "zero");
        CHECK(statements(text) == std::vector<std::string>{".image 3 3", "halt"});
    }
}

TEST_CASE("long runs are split over several lines", "[disassembler]") {
    Image image(40, 2);
    for (std::uint32_t x = 0; x < 40; ++x) {
        image.set_pixel(x, 0, Pixel{200, std::uint8_t(x), 1, 2});
        image.set_pixel(x, 1, Pixel{std::uint8_t(x + 1), 0, 0, 0});
    }
    const std::string text = round_trip(image, "long runs");
    for (const std::string& line : statements(text))
        CHECK(line.size() <= 160);
}

TEST_CASE("generated programs round-trip", "[disassembler]") {
    std::map<std::string, int> seen;
    for (std::uint64_t seed = 0; seed < 150; ++seed) {
        const auto generated = pxtest::generate_program(seed);
        const std::string text = round_trip(generated.image, generated.summary);
        for (const std::string& m : mnemonics_in(text))
            ++seen[m];
    }
    CHECK(seen.size() >= 8); // the generator exercises nearly every opcode
}

TEST_CASE("random images round-trip byte for byte", "[disassembler]") {
    Random random(20240611);
    std::map<std::string, int> seen;
    int with_instructions = 0;
    for (int i = 0; i < 450; ++i) {
        const int mode = i % 3;
        const Image image = random_image(random, mode);
        const std::string label = "random image " + std::to_string(i) + " (mode " +
                                  std::to_string(mode) + ", " + std::to_string(image.width()) +
                                  "x" + std::to_string(image.height()) + ")";
        const std::string text = round_trip(image, label);
        const auto words = mnemonics_in(text);
        if (words.size() >= 2) ++with_instructions;
        for (const std::string& m : words)
            ++seen[m];
    }
    // The bias toward valid opcodes makes every mnemonic appear somewhere.
    CHECK(seen.size() == opcodes.size());
    CHECK(with_instructions >= 100);
}

TEST_CASE("render_picture zooms, draws a grid and forces alpha to 255", "[render]") {
    Image image(3, 2);
    image.set_pixel(0, 0, Pixel{1, 1, 2, 3});
    image.set_pixel(2, 1, Pixel{200, 100, 50, 0});
    auto picture = px::render_picture(image, scaled(4));
    REQUIRE(picture.ok());
    CHECK(picture->width() == 3 * 5 + 1);
    CHECK(picture->height() == 2 * 5 + 1);
    const Pixel grid = px::RenderOptions{}.grid;
    CHECK(picture->pixel(0, 0) == grid);
    CHECK(picture->pixel(5, 3) == grid);
    CHECK(picture->pixel(3, 10) == grid);
    CHECK(picture->pixel(1, 1) == Pixel{1, 1, 2, 255});
    CHECK(picture->pixel(4, 4) == Pixel{1, 1, 2, 255});
    CHECK(picture->pixel(6, 1) == Pixel{0, 0, 0, 255});
    CHECK(picture->pixel(11, 6) == Pixel{200, 100, 50, 255});
    CHECK(picture->pixel(14, 9) == Pixel{200, 100, 50, 255});
    for (std::uint32_t y = 0; y < picture->height(); ++y)
        for (std::uint32_t x = 0; x < picture->width(); ++x)
            REQUIRE(picture->pixel(x, y).a == 255);
}

TEST_CASE("render_picture prints channel values on request", "[render]") {
    Image image(2, 1);
    image.set_pixel(1, 0, Pixel{255, 0, 0, 0});
    px::RenderOptions options;
    options.scale = 24;
    options.values = true;
    auto picture = px::render_picture(image, options);
    REQUIRE(picture.ok());
    const auto ink_in_block = [&](std::uint32_t bx) {
        int count = 0;
        for (std::uint32_t y = 1; y <= 24; ++y)
            for (std::uint32_t x = bx * 25 + 1; x <= bx * 25 + 24; ++x)
                if (picture->pixel(x, y) != picture->pixel(bx * 25 + 1, 1)) ++count;
        return count;
    };
    CHECK(ink_in_block(0) == 0); // zero pixels carry no label
    CHECK(ink_in_block(1) > 20);

    options.scale = 16;
    auto too_small = px::render_picture(image, options);
    REQUIRE_FALSE(too_small.ok());
    CHECK_THAT(too_small.error().message, Catch::Contains("24"));
}

TEST_CASE("render_picture refuses scales and sizes it cannot draw", "[render]") {
    CHECK_FALSE(px::render_picture(Image(2, 2), scaled(0)).ok());
    CHECK_FALSE(px::render_picture(Image(2, 2), scaled(257)).ok());
    auto huge = px::render_picture(Image(4000, 1), scaled(16));
    REQUIRE_FALSE(huge.ok());
    CHECK_THAT(huge.error().message, Catch::Contains("smaller scale"));
}

TEST_CASE("the README's picture is what pxc render makes of the seed program", "[render]") {
    // docs/dot_test.png: pxc render assets/dot_test.pxi -o docs/dot_test.png --scale 24 --values
    auto program = px::load_png(PXVM_SOURCE_DIR "/assets/dot_test.pxi");
    auto committed = px::load_png(PXVM_SOURCE_DIR "/docs/dot_test.png");
    REQUIRE(program.ok());
    REQUIRE(committed.ok());
    px::RenderOptions options;
    options.scale = 24;
    options.values = true;
    auto rendered = px::render_picture(*program, options);
    REQUIRE(rendered.ok());
    INFO(px::describe(px::compare_images(*committed, *rendered)));
    CHECK(*rendered == *committed);
}

TEST_CASE("declared tensors come out as typed values, the fault pixel is named", "[disassembler]") {
    auto assembled = px::assemble(R"(.image 12 4
tensor t1, i8, 0, 1, 2, 3
tensor t2, i32, 2, 1, 1, 2
relu t1, t1
halt
.data t1  1 -2 3  -4 5 -6
.data t2  70000 -1
.rgba 0 3  1 2 3 4
)",
                                  "typed.pxs");
    REQUIRE(assembled.ok());
    Image image = assembled->image;
    image.set_pixel(0, 1, {1, 0xFE, 3, 9}); // a padding byte (t1 has 3 columns: 1 pixel a row)
    const std::string text = round_trip(image, "typed");
    CHECK_THAT(text, Catch::Contains("; t1 i8 2x3 at (0, 1)\n.data t1 1 -2 3 -4 5 -6\n"));
    CHECK_THAT(text, Catch::Contains(".data t2 70000 -1\n"));
    CHECK_THAT(text, Catch::Contains(".rgba 0 1  1 254 3 9")); // the padding, raw, after .data
    CHECK_THAT(text, Catch::Contains(".rgba 0 3  1 2 3 4"));   // not inside any tensor

    // A faulted image: its fault pixel is named with the fault it records.
    Image faulted = image;
    faulted.set_pixel(11, 0, {px::FAULT_OUT_OF_BOUNDS, 7, 0, 255});
    const std::string fault_text = round_trip(faulted, "faulted");
    CHECK_THAT(fault_text, Catch::Contains("; pixel (11, 0) is the fault pixel: it records fault "
                                           "OUT_OF_BOUNDS at pc 7 of an earlier run"));
}
