// Hostile input never crashes: thousands of mutated PNG files (raw byte damage, and damaged pixel
// data under recomputed CRCs so it reaches the decoder) and random assembly text. Each either
// loads or fails with a message naming its file; whatever loads also runs on the reference.
#include "png_writer.hpp"
#include "program_generator.hpp"

#include "pxvm/assembler.hpp"
#include "pxvm/image.hpp"
#include "pxvm/reference_interpreter.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>

namespace {

using pxtest::Bytes;

// Loads `file`; a failure must name the file, a success must be a runnable image.
// A damaged file that still loads must give the original pixels: the damage hit bits that carry
// no information (a zlib header's FLEVEL with a still-valid FCHECK, the padding after the last
// deflate block), which no checksum covers.
void load_damaged(const Bytes& file, const px::Image& original, int& changed) {
    auto image = px::decode_png(file, "fuzz.pxi");
    if (!image) {
        REQUIRE_THAT(image.error().message, Catch::StartsWith("fuzz.pxi: "));
        return;
    }
    if (!(*image == original)) ++changed;
    (void)px::run_reference(*image);
}

} // namespace

TEST_CASE("damaged PNG files load or fail cleanly", "[robustness]") {
    std::mt19937 rng(2026);
    int changed = 0;
    for (int i = 0; i < 1500; ++i) {
        const px::Image program = pxtest::generate_program(std::uint64_t(i)).image;
        Bytes file =
            i % 2 ? px::encode_png(program) : pxtest::write_png(program, i % 4 == 0, false);
        switch (rng() % 3) {
        case 0: // flip a few bytes anywhere
            for (int k = 0, n = 1 + int(rng() % 4); k < n; ++k)
                file[rng() % file.size()] ^= std::uint8_t(1 + rng() % 255);
            break;
        case 1: // cut the file short
            file.resize(rng() % file.size());
            break;
        default: { // damage the compressed pixel data, then fix the CRC so the decoder sees it
            const Bytes idat = {'I', 'D', 'A', 'T'};
            const auto at = std::search(file.begin(), file.end(), idat.begin(), idat.end());
            REQUIRE(at != file.end());
            const std::size_t type = std::size_t(at - file.begin());
            const std::size_t length = std::size_t(file[type - 4]) << 24 |
                                       std::size_t(file[type - 3]) << 16 |
                                       std::size_t(file[type - 2]) << 8 | file[type - 1];
            file[type + 4 + rng() % length] ^= std::uint8_t(1 + rng() % 255);
            const std::uint32_t crc = pxtest::crc32(&file[type], length + 4);
            for (int b = 0; b < 4; ++b)
                file[type + 4 + length + std::size_t(b)] = std::uint8_t(crc >> (24 - 8 * b));
            break;
        }
        }
        load_damaged(file, program, changed);
    }
    // Every damage that changes a pixel is caught: the chunk CRCs, the truncation, and (for pixel
    // data changed under a recomputed CRC) the zlib stream's Adler-32.
    CHECK(changed == 0);
}

TEST_CASE("random assembly text assembles or fails with a line number", "[robustness]") {
    const std::vector<std::string> words = {".image",
                                            ".rgba",
                                            ".red",
                                            ".data",
                                            "tensor",
                                            "matmul",
                                            "dot",
                                            "dot_rgb",
                                            "requant",
                                            "relu",
                                            "argmax",
                                            "gather_mean",
                                            "add_bias",
                                            "halt",
                                            "t1",
                                            "t2",
                                            "t255",
                                            "t256",
                                            "u8",
                                            "i8",
                                            "u16",
                                            "i32",
                                            "0",
                                            "1",
                                            "-1",
                                            "255",
                                            "256",
                                            "65535",
                                            "65536",
                                            "0x54",
                                            "2147483648",
                                            "-2147483649",
                                            ",",
                                            ",,",
                                            ";",
                                            "x",
                                            "",
                                            "  ",
                                            "\t",
                                            "\"",
                                            "9999999999999999999999"};
    std::mt19937 rng(7);
    int assembled = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string source = i % 3 ? ".image " + std::to_string(1 + rng() % 40) + " " +
                                         std::to_string(1 + rng() % 40) + "\n"
                                   : "";
        for (int line = 0, lines = int(rng() % 8); line < lines; ++line) {
            for (int w = 0, n = int(rng() % 8); w < n; ++w)
                source += words[rng() % words.size()] + (rng() % 3 ? " " : ", ");
            source += "\n";
        }
        auto result = px::assemble(source, "fuzz.pxs");
        if (result) {
            ++assembled;
            px::Image image = result->image;
            (void)px::run_reference(image);
        } else {
            INFO(source);
            REQUIRE_THAT(result.error().message, Catch::StartsWith("fuzz.pxs:"));
        }
    }
    CHECK(assembled > 0);
}
