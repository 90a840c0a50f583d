// Tests of the .pxs assembler (compiler/assembler.cpp, docs/ASSEMBLY.md): the pixels every
// mnemonic and directive writes, error messages with file and line, static-fault warnings, and the
// seed asset assets/dot_test.pxs against assets/dot_test.pxi.
#include "pxvm/assembler.hpp"
#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/program_writer.hpp"
#include "pxvm/reference_interpreter.hpp"

#include "command_runner.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

// An AddressSanitizer build (GCC defines __SANITIZE_ADDRESS__, clang has the feature).
#if defined(__SANITIZE_ADDRESS__)
#define PXVM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PXVM_TEST_ASAN 1
#endif
#endif

namespace {

using px::Image;
using px::Pixel;

// Assembles `source` (named "prog.pxs") and requires success.
px::AssembledProgram assemble_ok(const std::string& source) {
    auto result = px::assemble(source, "prog.pxs");
    INFO(source);
    if (!result) FAIL(result.error().message);
    return std::move(result).value();
}

// Assembles `source` and requires failure; returns the message.
std::string assemble_error(const std::string& source) {
    auto result = px::assemble(source, "prog.pxs");
    INFO(source);
    REQUIRE_FALSE(result.ok());
    return result.error().message;
}

std::vector<Pixel> row0(const Image& image, std::uint32_t count) {
    std::vector<Pixel> pixels;
    for (std::uint32_t x = 0; x < count; ++x)
        pixels.push_back(image.pixel(x, 0));
    return pixels;
}

} // namespace

TEST_CASE("every mnemonic encodes to the pixels of docs/PROTOCOL.md section 4", "[assembler]") {
    struct Case {
        std::string statement;
        std::vector<Pixel> pixels;
    };
    const std::vector<Case> cases = {
        {"halt", {{0, 0, 0, 0}}},
        {"dot_rgb 1, 2, 3", {{1, 1, 2, 3}}},
        {"dot_rgb 255, 0, 7", {{1, 255, 0, 7}}},
        {"tensor t1, u8, 0, 1, 4, 16", {{84, 1, 1, 0}, {0, 0, 1, 0}, {4, 0, 16, 0}}},
        {"tensor t255, i8, 300, 2, 1, 65535", {{84, 255, 2, 0}, {44, 1, 2, 0}, {1, 0, 255, 255}}},
        {"tensor t0, u16, 1, 513, 2, 3", {{84, 0, 3, 0}, {1, 0, 1, 2}, {2, 0, 3, 0}}},
        {"tensor t7, i32, 65535, 1, 258, 1", {{84, 7, 4, 0}, {255, 255, 1, 0}, {2, 1, 1, 0}}},
        {"dot t3, t1, t2", {{68, 3, 1, 2}}},
        {"matmul t10, t11, t12", {{77, 10, 11, 12}}},
        {"add_bias t4, t5", {{66, 4, 5, 0}}},
        {"requant t2, t3, 1073741824, 31, -3", {{81, 2, 3, 0}, {0, 0, 0, 64}, {31, 253, 0, 0}}},
        {"requant t2, t3, -1, 0, 127", {{81, 2, 3, 0}, {255, 255, 255, 255}, {0, 127, 0, 0}}},
        {"requant t9, t8, -2147483648, 62, -128", {{81, 9, 8, 0}, {0, 0, 0, 128}, {62, 128, 0, 0}}},
        {"requant t1, t1, 0x01020304, 7, 0", {{81, 1, 1, 0}, {4, 3, 2, 1}, {7, 0, 0, 0}}},
        {"relu t6, t7", {{82, 6, 7, 0}}},
        {"argmax t8, t9", {{65, 8, 9, 0}}},
        {"gather_mean t1, t2, t3", {{71, 1, 2, 3}}},
    };
    for (const Case& c : cases) {
        const auto program = assemble_ok(".image 8 4\n" + c.statement + "\n");
        INFO(c.statement);
        CHECK(row0(program.image, std::uint32_t(c.pixels.size())) == c.pixels);
        // Nothing else is written.
        for (std::uint32_t y = 0; y < 4; ++y)
            for (std::uint32_t x = y == 0 ? std::uint32_t(c.pixels.size()) : 0; x < 8; ++x)
                CHECK(program.image.pixel(x, y) == Pixel{});
        REQUIRE(program.instructions.size() == 1);
        CHECK(program.instructions[0].pc == 0);
        CHECK(program.instructions[0].length == c.pixels.size());
        CHECK(program.instructions[0].line == 2);
    }
}

TEST_CASE("instructions fill row 0 in order and map back to their lines", "[assembler]") {
    const auto program = assemble_ok("; a comment line\n"
                                     ".image 12 4   ; size\n"
                                     "\n"
                                     "tensor t1, i32, 0, 1, 1, 1\n"
                                     "tensor t2, i32, 1, 1, 1, 1\n"
                                     "relu t2, t1\n"
                                     "halt\n");
    CHECK(program.image.width() == 12);
    CHECK(program.image.height() == 4);
    REQUIRE(program.instructions.size() == 4);
    CHECK(program.instructions[2].pc == 6);
    CHECK(program.instructions[3].pc == 7);
    CHECK(program.image.pixel(6, 0) == Pixel{82, 2, 1, 0});
    CHECK(program.line_of_pc(0) == 4);
    CHECK(program.line_of_pc(2) == 4);
    CHECK(program.line_of_pc(3) == 5);
    CHECK(program.line_of_pc(6) == 6);
    CHECK(program.line_of_pc(7) == 7);
    CHECK(program.line_of_pc(8) == 0);
    CHECK(program.warnings.empty());
}

TEST_CASE("data directives write pixels and tensor elements", "[assembler]") {
    SECTION(".red and .rgba write from (X, Y) rightwards") {
        const auto program = assemble_ok(".image 8 4\n"
                                         ".red 1 1  1 2 0x10\n"
                                         ".rgba 5 2  1 2 3 4  255 0 0 255\n");
        const Image& image = program.image;
        CHECK(image.pixel(0, 1) == Pixel{});
        CHECK(image.pixel(1, 1) == Pixel{1, 0, 0, 0});
        CHECK(image.pixel(2, 1) == Pixel{2, 0, 0, 0});
        CHECK(image.pixel(3, 1) == Pixel{16, 0, 0, 0});
        CHECK(image.pixel(5, 2) == Pixel{1, 2, 3, 4});
        CHECK(image.pixel(6, 2) == Pixel{255, 0, 0, 255});
        CHECK(image.pixel(7, 2) == Pixel{});
    }
    SECTION("later writes overwrite earlier ones, instructions included") {
        const auto program = assemble_ok(".image 4 2\n"
                                         ".rgba 0 0  9 9 9 9  8 8 8 8\n"
                                         "dot_rgb 1, 1, 1\n"
                                         ".red 0 1  5\n"
                                         ".rgba 0 1  6 7 8 9\n"
                                         ".rgba 2 0  1 1 1 1\n");
        CHECK(program.image.pixel(0, 0) == Pixel{1, 1, 1, 1});
        CHECK(program.image.pixel(1, 0) == Pixel{8, 8, 8, 8});
        CHECK(program.image.pixel(2, 0) == Pixel{1, 1, 1, 1});
        CHECK(program.image.pixel(0, 1) == Pixel{6, 7, 8, 9});
    }
    SECTION(".data fills tensors row-major in their dtype's encoding") {
        const auto program = assemble_ok(".image 16 6\n"
                                         "tensor t1, i8, 0, 1, 2, 3\n"
                                         "tensor t2, u16, 1, 1, 1, 3\n"
                                         "tensor t3, i32, 0, 3, 2, 2\n"
                                         "tensor t4, u8, 3, 1, 1, 8\n"
                                         ".data t1  1 -2 3  -128 127 0\n"
                                         ".data t2  65535 258 7\n"
                                         ".data t3  -1 2147483647 -2147483648\n"
                                         ".data t4  1 2 3 4 5\n");
        const Image& image = program.image;
        CHECK(image.pixel(0, 1) == Pixel{1, 254, 3, 0});
        CHECK(image.pixel(0, 2) == Pixel{128, 127, 0, 0});
        CHECK(image.pixel(1, 1) == Pixel{255, 255, 2, 1});
        CHECK(image.pixel(2, 1) == Pixel{7, 0, 0, 0});
        CHECK(image.pixel(0, 3) == Pixel{255, 255, 255, 255});
        CHECK(image.pixel(1, 3) == Pixel{255, 255, 255, 127});
        CHECK(image.pixel(0, 4) == Pixel{0, 0, 0, 128});
        CHECK(image.pixel(1, 4) == Pixel{}); // fewer values than elements: the rest is untouched
        CHECK(image.pixel(3, 1) == Pixel{1, 2, 3, 4});
        CHECK(image.pixel(4, 1) == Pixel{5, 0, 0, 0});
        const px::Tensor t3{0, 3, 2, 2, px::DTYPE_I32};
        CHECK(px::load_element(image, t3, 0, 0) == -1);
        CHECK(px::load_element(image, t3, 1, 0) == -2147483648LL);
    }
    SECTION(".data uses the most recent declaration above it") {
        const auto program = assemble_ok(".image 8 4\n"
                                         "tensor t1, u8, 0, 1, 1, 1\n"
                                         ".data t1 5\n"
                                         "tensor t1, u8, 0, 2, 1, 1\n"
                                         ".data t1 6\n");
        CHECK(program.image.pixel(0, 1) == Pixel{5, 0, 0, 0});
        CHECK(program.image.pixel(0, 2) == Pixel{6, 0, 0, 0});
    }
    SECTION("CRLF line endings, tabs and hexadecimal numbers") {
        const auto program = assemble_ok(".image\t4 2\r\ndot_rgb\t0x1,\t2 , 3\r\nhalt\r\n");
        CHECK(program.image.pixel(0, 0) == Pixel{1, 1, 2, 3});
    }
}

TEST_CASE("errors name the file and the line", "[assembler]") {
    struct Case {
        std::string source;
        std::string prefix; // "prog.pxs:N: "
        std::string contains;
    };
    const std::string image = ".image 8 4\n";
    const std::vector<Case> cases = {
        // unknown mnemonic, with a hint
        {image + "halt\nmatmull t1, t2, t3\n", "prog.pxs:3: ", "unknown mnemonic 'matmull'"},
        {image + "matmull t1, t2, t3\n", "prog.pxs:2: ", "did you mean 'matmul'?"},
        {image + "MATMUL t1, t2, t3\n", "prog.pxs:2: ", "lowercase"},
        // unknown directive
        {image + ".imgae 8 8\n", "prog.pxs:2: ", "unknown directive '.imgae'"},
        // .image must come first, once, with a valid size
        {"halt\n.image 8 4\n", "prog.pxs:1: ", "must start with '.image W H'"},
        {image + ".image 8 4\n", "prog.pxs:2: ", "appears twice (first at line 1)"},
        {".image 0 4\n", "prog.pxs:1: ", "out of range"},
        {".image 32769 1\n", "prog.pxs:1: ", "out of range"},
        {".image 32768 32768\n", "prog.pxs:1: ", "pixels"},
        {".image 8\n", "prog.pxs:1: ", "takes 2 numbers"},
        // operands: missing, too many, not separated, empty
        {image + "dot_rgb 1, 2\n", "prog.pxs:2: ", "missing operand"},
        {image + "tensor t1, u8, 0, 1, 1\n", "prog.pxs:2: ", "missing operand"},
        {image + "halt 1\n", "prog.pxs:2: ", "too many operands"},
        {image + "dot_rgb 1, 2, 3, 4\n", "prog.pxs:2: ", "too many operands"},
        {image + "dot_rgb 1 2 3\n", "prog.pxs:2: ", "separate operands with commas"},
        {image + "dot_rgb 1,, 3\n", "prog.pxs:2: ", "missing operand 2"},
        // out-of-range numbers and bad words
        {image + "dot_rgb 1, 256, 3\n", "prog.pxs:2: ", "256 is out of range (0 ... 255)"},
        {image + "dot_rgb 1, -1, 3\n", "prog.pxs:2: ", "out of range"},
        {image + "dot_rgb one, 2, 3\n", "prog.pxs:2: ", "'one' is not a number"},
        {image + "tensor t1, u8, 65536, 1, 1, 1\n", "prog.pxs:2: ", "out of range (0 ... 65535)"},
        {image + "requant t1, t2, 2147483648, 0, 0\n", "prog.pxs:2: ", "out of range"},
        {image + "requant t1, t2, 5, 63, 0\n", "prog.pxs:2: ", "shift: 63 is out of range"},
        {image + "requant t1, t2, 5, 1, 128\n", "prog.pxs:2: ", "zero_point: 128"},
        {image + "dot_rgb 1, 2, 99999999999999999999\n", "prog.pxs:2: ", "out of range"},
        // tensor operands and dtypes
        {image + "matmul t1, 2, t3\n", "prog.pxs:2: ", "expected a tensor like t3, got '2'"},
        {image + "relu t256, t1\n", "prog.pxs:2: ", "t0 ... t255"},
        {image + "tensor t1, f32, 0, 1, 1, 1\n", "prog.pxs:2: ", "unknown dtype 'f32'"},
        // row 0 overflow
        {image + "halt\nhalt\nhalt\nhalt\nhalt\nhalt\ntensor t1, u8, 0, 1, 1, 1\n",
         "prog.pxs:8: ", "row 0"},
        {".image 2 2\nhalt\nhalt\nhalt\n", "prog.pxs:4: ", "ends at pc 1"},
        // writing outside the image
        {image + ".rgba 6 1  1 2 3 4  5 6 7 8  9 10 11 12\n", "prog.pxs:2: ", "right edge"},
        {image + ".red 8 1  1\n", "prog.pxs:2: ", "outside the 8x4 image"},
        {image + ".red 0 4  1\n", "prog.pxs:2: ", "outside the 8x4 image"},
        {image + ".red 0 1  256\n", "prog.pxs:2: ", "out of range"},
        {image + ".rgba 0 1  1 2 3\n", "prog.pxs:2: ", "4 values (r g b a) for each pixel"},
        {image + ".rgba 0 1\n", "prog.pxs:2: ", "needs X Y"},
        // .data mistakes
        {image + ".data t3 1\n", "prog.pxs:2: ", "no 'tensor' statement above"},
        {image + ".data t1 1\ntensor t1, u8, 0, 1, 1, 1\n", "prog.pxs:2: ", "above"},
        {image + "tensor t1, u8, 0, 1, 1, 2\n.data t1 1 2 3\n", "prog.pxs:3: ", "3 values for t1"},
        {image + "tensor t1, i8, 0, 1, 1, 4\n.data t1 1 2 200\n",
         "prog.pxs:3: ", "200 is out of range (-128 ... 127)"},
        {image + "tensor t1, u8, 0, 1, 1, 4\n.data t1 -1\n", "prog.pxs:3: ", "out of range"},
        {image + "tensor t1, i32, 6, 1, 1, 4\n.data t1 1\n", "prog.pxs:3: ", "leave the 8x4"},
        {image + "tensor t1, u8, 0, 0, 1, 4\n.data t1 1\n", "prog.pxs:3: ", "row 0"},
        {image + "tensor t1, u8, 0, 1, 0, 4\n.data t1 1\n", "prog.pxs:3: ", "no elements"},
        {image + ".data x1 1\n", "prog.pxs:2: ", "expected a tensor"},
    };
    for (const Case& c : cases) {
        const std::string message = assemble_error(c.source);
        INFO(c.source);
        CHECK_THAT(message, Catch::StartsWith(c.prefix));
        CHECK_THAT(message, Catch::Contains(c.contains));
    }
}

TEST_CASE("a source without .image is an error naming the file", "[assembler]") {
    CHECK_THAT(assemble_error(""), Catch::StartsWith("prog.pxs: no '.image W H'"));
    CHECK_THAT(assemble_error("; only a comment\n\n"), Catch::Contains("no '.image W H'"));
}

TEST_CASE("a PNG given as source is recognised", "[assembler]") {
    CHECK_THAT(assemble_error(std::string("\x89PNG\r\n\x1a\n", 8)), Catch::Contains("pxc disasm"));
}

TEST_CASE("assemble_file reports unreadable files", "[assembler]") {
    auto missing = px::assemble_file("/nonexistent/prog.pxs");
    REQUIRE_FALSE(missing.ok());
    CHECK_THAT(missing.error().message, Catch::StartsWith("/nonexistent/prog.pxs: cannot read"));
    auto directory = px::assemble_file(PXVM_SOURCE_DIR);
    REQUIRE_FALSE(directory.ok());
    CHECK_THAT(directory.error().message, Catch::Contains("directory"));
}

TEST_CASE("static faults are warnings at the faulting instruction's line", "[assembler]") {
    SECTION("a tensor outside the image") {
        const auto program = assemble_ok(".image 8 8\n"
                                         "tensor t1, u8, 0, 1, 1, 4\n"
                                         "\n"
                                         "tensor t2, i8, 0, 5, 4, 3\n"
                                         "halt\n");
        REQUIRE(program.warnings.size() == 1);
        CHECK_THAT(program.warnings[0],
                   Catch::StartsWith("prog.pxs:4: warning: fault OUT_OF_BOUNDS (6) at pc 3"));
    }
    SECTION("an undeclared operand") {
        const auto program = assemble_ok(".image 8 8\nrelu t1, t2\n");
        REQUIRE(program.warnings.size() == 1);
        CHECK_THAT(program.warnings[0], Catch::StartsWith("prog.pxs:2: warning: fault "
                                                          "UNDEFINED_TENSOR"));
    }
    SECTION("a fault in raw row-0 pixels names the line that wrote them") {
        const auto program = assemble_ok(".image 8 8\nhalt\n.rgba 0 0  200 0 0 0\n");
        REQUIRE(program.warnings.size() == 1);
        CHECK_THAT(program.warnings[0], Catch::StartsWith("prog.pxs:3: warning: fault BAD_OPCODE"));
    }
    SECTION("a valid program has no warnings") {
        CHECK(assemble_ok(".image 4 4\ndot_rgb 1, 2, 3\nhalt\n").warnings.empty());
    }
}

TEST_CASE("assets/dot_test.pxs assembles to assets/dot_test.pxi and computes 300",
          "[assembler][assets]") {
    const std::string dir = PXVM_SOURCE_DIR "/assets/";
    auto program = px::assemble_file(dir + "dot_test.pxs");
    REQUIRE(program.ok());
    CHECK(program->warnings.empty());
    auto committed = px::load_png(dir + "dot_test.pxi");
    REQUIRE(committed.ok());
    INFO(px::describe(px::compare_images(*committed, program->image)));
    REQUIRE(program->image == *committed);

    const Image& image = program->image;
    CHECK(image.width() == 16);
    CHECK(image.height() == 16);
    CHECK(image.pixel(0, 0) == Pixel{1, 1, 2, 3});
    CHECK(image.pixel(1, 0) == Pixel{0, 0, 0, 0});
    for (std::uint32_t x = 0; x < 4; ++x) {
        CHECK(image.pixel(x, 1) == Pixel{std::uint8_t(x + 1), 0, 0, 0});
        CHECK(image.pixel(x, 2) == Pixel{std::uint8_t(10 * (x + 1)), 0, 0, 0});
    }
    CHECK(image.pixel(0, 3) == Pixel{});

    Image run = *committed;
    const px::RunOutcome outcome = px::run_reference(run);
    CHECK_FALSE(outcome.fault);
    CHECK(outcome.halted);
    CHECK(run.pixel(0, 3) == Pixel{44, 1, 0, 0});
}

TEST_CASE("pxc asm, disasm and render: exit codes and output files", "[assembler][cli]") {
    namespace fs = std::filesystem;
    using pxtest::read_text;
    using pxtest::write_text;
    const pxtest::CommandRunner pxc(pxtest::tool_path("pxc"), "pxc_test");
    REQUIRE(pxc.tool_exists());
    const fs::path dir = pxc.dir();
    const auto run = [&](const std::string& arguments) { return pxc.run(arguments).exit_code; };

    write_text(dir / "bad.pxs", ".image 8 8\nhalt\nmatmull t1, t2, t3\n");
    CHECK(run("asm " + (dir / "bad.pxs").string() + " -o " + (dir / "bad.pxi").string()) == 1);
    CHECK_FALSE(fs::exists(dir / "bad.pxi"));
    CHECK_THAT(read_text(dir / "stderr"), Catch::Contains("bad.pxs:3: unknown mnemonic 'matmull'"));

    write_text(dir / "warn.pxs", ".image 8 8\nrelu t1, t2\n");
    CHECK(run("asm " + (dir / "warn.pxs").string() + " -o " + (dir / "warn.pxi").string()) == 0);
    CHECK(fs::exists(dir / "warn.pxi"));
    CHECK_THAT(read_text(dir / "stderr"), Catch::Contains("warn.pxs:2: warning: fault"));

    const std::string asset = PXVM_SOURCE_DIR "/assets/dot_test.pxi";
    CHECK(run("disasm " + asset) == 0);
    const std::string text = read_text(dir / "stdout");
    CHECK_THAT(text, Catch::Contains("dot_rgb 1, 2, 3"));
    CHECK(run("disasm " + asset + " -o " + (dir / "copy.pxs").string()) == 0);
    CHECK(read_text(dir / "copy.pxs") == text);
    CHECK(run("asm " + (dir / "copy.pxs").string() + " -o " + (dir / "copy.pxi").string()) == 0);
    auto copy = px::load_png((dir / "copy.pxi").string());
    auto original = px::load_png(asset);
    REQUIRE(copy.ok());
    REQUIRE(original.ok());
    CHECK(*copy == *original);

    CHECK(run("render " + asset + " -o " + (dir / "pic.png").string() + " --scale 4") == 0);
    auto picture = px::load_png((dir / "pic.png").string());
    REQUIRE(picture.ok());
    CHECK(picture->width() == 16 * 5 + 1);
    CHECK(run("render " + asset + " -o " + (dir / "pic2.png").string() + " --scale 0") == 1);
    CHECK_FALSE(fs::exists(dir / "pic2.png"));
    CHECK(run("disasm " + (dir / "missing.pxi").string()) == 1);
    CHECK(run("") == 1);
    CHECK(run("--help") == 0);
}

TEST_CASE("pxc disasm streams its text: a listing larger than memory allows still comes out",
          "[assembler][cli]") {
#ifdef PXVM_TEST_ASAN
    WARN("not run: AddressSanitizer reserves terabytes of address space, so ulimit -v cannot "
         "apply");
    return;
#endif
    namespace fs = std::filesystem;
    const pxtest::CommandRunner pxc(pxtest::tool_path("pxc"), "pxc_stream_test");
    REQUIRE(pxc.tool_exists());
    // A 2048 x 2048 image (16 MiB) whose one tensor covers every data byte with 255: 67 MB of
    // text. Under a 100 MB address-space limit the text cannot be held in memory, only streamed.
    px::ProgramWriter writer(2048, 2048);
    writer.tensor(1, px::DTYPE_U8, 0, 1, 2047, 8192).halt();
    px::Image image = writer.image;
    std::fill(image.data() + 4 * 2048, image.data() + image.size_bytes(), std::uint8_t(255));
    const fs::path in = pxc.dir() / "wide.pxi", out = pxc.dir() / "wide.pxs";
    REQUIRE(px::save_png(image, in.string()).ok());
    const auto listed =
        pxc.run("disasm " + in.string() + " -o " + out.string(), "ulimit -v 100000;");
    INFO(listed.err);
    REQUIRE(listed.exit_code == 0);
    CHECK(fs::file_size(out) > 67'000'000);
    // The text is right: its .data line holds every value.
    std::ifstream text(out);
    std::string line;
    while (std::getline(text, line) && !line.starts_with(".data t1 ")) {
    }
    CHECK(line.size() == std::string(".data t1").size() + 4 * std::size_t(2047) * 8192);
}

TEST_CASE("asm: named tensors are placed without overlap and used by name", "[asm]") {
    const std::string named = R"(.image 32 8
.tensor a i8 2 3
.tensor b i8 2 3
.tensor c i32 2 2
.tensor bias i32 1 2
.tensor out i8 2 2
.tensor best u16 2 1
matmul c, a, b
add_bias c, bias
requant out, c, 1073741824, 31, -3
relu out, out
argmax best, out
halt
.data a  1 -2 3  4 5 -6
.data b  7 8 9  -1 0 1
.data bias  100 -100
)";
    const px::AssembledProgram program = assemble_ok(named);
    REQUIRE(program.named.size() == 6);
    CHECK(program.named[0].name == "a");
    CHECK(program.named[0].id == 255); // ids from the top, away from hand-written ones
    CHECK(program.named[0].tensor == px::Tensor{0, 1, 2, 3, px::DTYPE_I8});
    CHECK(program.named[2].tensor == px::Tensor{2, 1, 2, 2, px::DTYPE_I32}); // beside a and b
    CHECK(program.named[5].line == 7);
    for (std::size_t i = 0; i < program.named.size(); ++i)
        for (std::size_t j = i + 1; j < program.named.size(); ++j)
            CHECK_FALSE(program.named[i].tensor.overlaps(program.named[j].tensor));
    Image image = program.image;
    const px::RunOutcome outcome = px::run_reference(image);
    CHECK(outcome.halted);
    CHECK_FALSE(outcome.fault);
    // The same results as docs/ASSEMBLY.md's hand-placed example.
    const px::Tensor& c = program.named[2].tensor;
    CHECK(px::load_element(image, c, 0, 0) == 118);
    CHECK(px::load_element(image, c, 1, 1) == -110);

    // A full row moves the next tensor below it; a tensor that fits nowhere is an error.
    const auto below = assemble_ok(".image 8 8\n.tensor wide u8 2 32\n.tensor next u8 1 4\nhalt\n");
    CHECK(below.named[1].tensor.y == 3);
    const auto big = px::assemble(".image 8 4\n.tensor huge i32 4 8\n", "big.pxs");
    REQUIRE_FALSE(big.ok());
    CHECK_THAT(big.error().message, Catch::Contains("big.pxs:2: tensor 'huge'"));
    CHECK_THAT(big.error().message, Catch::Contains("does not fit the 8x4 image"));
    // Hand-placed tensors are avoided too.
    const auto around =
        assemble_ok(".image 16 8\ntensor t1, u8, 0, 1, 2, 8\n.tensor n u8 1 4\nhalt\n");
    CHECK(around.named[0].tensor == px::Tensor{2, 1, 1, 4, px::DTYPE_U8});

    const auto error = [](const std::string& source) {
        auto r = px::assemble(source, "p.pxs");
        REQUIRE_FALSE(r.ok());
        return r.error().message;
    };
    CHECK_THAT(error(".image 8 8\n.tensor a i8 1 1\n.tensor a i8 1 1\n"),
               Catch::Contains("p.pxs:3: tensor 'a' is declared twice"));
    CHECK_THAT(error(".image 8 8\n.tensor t3 i8 1 1\n"), Catch::Contains("must be lowercase"));
    CHECK_THAT(error(".image 8 8\n.tensor relu i8 1 1\n"), Catch::Contains("nor a mnemonic"));
    CHECK_THAT(error(".image 8 8\n.tensor a i9 1 1\n"), Catch::Contains("unknown dtype 'i9'"));
    CHECK_THAT(error(".image 8 8\n.tensor a i8 0 1\n"), Catch::Contains("rows: 0 is out of range"));
    CHECK_THAT(error(".image 8 8\n.tensor a i8 1 1\nrelu t255, a\n"),
               Catch::Contains("t255 is the id of the named tensor 'a'"));
    CHECK_THAT(error(".image 8 8\n.tensor abc i8 1 1\nrelu abd, abc\n"),
               Catch::Contains("or a name declared by '.tensor' above, got 'abd'"));
    CHECK_THAT(error(".image 8 8\n.tensor abc i8 1 1\nrelu abd, abc\n"),
               Catch::Contains("did you mean 'abc'?"));
    CHECK_THAT(error(".image 8 8\n.tensor a i8 1 2\n.data a 1 2 3\n"),
               Catch::Contains("3 values for t255"));
}

TEST_CASE(".expect: hand-written results, checked against a run", "[assembler][expect]") {
    const std::string source = ".image 5 3\n"
                               "tensor t1, i8, 0, 1, 1, 3\n"
                               "relu t1, t1\n"
                               ".data t1 -1 2 -3\n"
                               ".expect t1 0 2 0\n"
                               ".expect pixel 4 0 0 0 0 0\n"
                               ".expect fault none\n";
    const px::AssembledProgram program = assemble_ok(source);
    REQUIRE(program.expectations.size() == 3);
    CHECK(program.expectations[0].line == 5);
    // Expectations write nothing into the image.
    CHECK(program.image.pixel(4, 0) == Pixel{});

    Image ran = program.image;
    const px::RunOutcome outcome = px::run_reference(ran);
    CHECK(px::check_expectations(program.expectations, "prog.pxs", ran, outcome.fault.code,
                                 outcome.fault.pc)
              .empty());
    // Before the run, the relu has not happened: the first differing element and the count.
    CHECK(px::check_expectations(program.expectations, "prog.pxs", program.image, 0, 0) ==
          "prog.pxs:5: .expect t1: element [0][0] (pixel (0, 1)) is -1, expected 0; 1 more "
          "elements differ");
    CHECK(px::check_expectations(program.expectations, "prog.pxs", ran, px::FAULT_OVERLAP, 1) ==
          "prog.pxs:7: .expect fault: the run ended with OVERLAP at pc 1, expected no fault");

    const px::AssembledProgram faulting =
        assemble_ok(".image 3 2\ndot_rgb 1, 1, 9\n.expect fault OUT_OF_BOUNDS pc 0\n"
                    ".expect pixel 2 0 6 0 0 255\n");
    Image faulted = faulting.image;
    const px::RunOutcome fault = px::run_reference(faulted);
    CHECK(px::check_expectations(faulting.expectations, "f.pxs", faulted, fault.fault.code,
                                 fault.fault.pc)
              .empty());
    CHECK_THAT(px::check_expectations(faulting.expectations, "f.pxs", faulted, 0, 0),
               Catch::Contains("ended with no fault, expected OUT_OF_BOUNDS at pc 0"));

    for (const auto& [bad, message] : std::vector<std::pair<std::string, std::string>>{
             {".expect t1 0 2", "gives 2 values; the tensor has 3 elements"},
             {".expect t9 0", "which no 'tensor' statement above this line declares"},
             {".expect t1 0 2 200", "out of range (-128 ... 127)"},
             {".expect pixel 4 0 0 0 0 0", "out of range (0 ... 3)"},
             {".expect fault NOPE pc 0", "unknown fault 'NOPE'"},
             {".expect fault OVERLAP 3", "'.expect' takes"},
             {".expect", "'.expect' takes"}}) {
        auto result = px::assemble(".image 4 3\ntensor t1, i8, 0, 1, 1, 3\n" + bad, "prog.pxs");
        INFO(bad);
        REQUIRE_FALSE(result);
        CHECK_THAT(result.error().message,
                   Catch::Contains("prog.pxs:3: ") && Catch::Contains(message));
    }
}
