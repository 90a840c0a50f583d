// Tests of the RGBA image, PNG encoding and decoding (round trips, an independent PNG writer for
// interlaced and ancillary-chunk files), the dimension limits, image comparison text and atomic
// file writes (runtime/src/image.cpp).
#include "pxvm/image.hpp"
#include "pxvm/protocol.hpp"

#include "png_writer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

namespace {

using px::Image;
using px::Pixel;
using pxtest::Bytes;
using pxtest::header_only;
using pxtest::write_png;

Image random_image(std::uint32_t w, std::uint32_t h, std::uint32_t seed) {
    Image image(w, h);
    std::mt19937 rng(seed);
    for (auto& byte : image.bytes())
        byte = std::uint8_t(rng());
    return image;
}

// A fresh empty directory under the build tree for one test.
fs::path scratch_dir(const std::string& name) {
    const fs::path dir = fs::path(PXVM_BINARY_DIR) / "test-scratch" / "image_tests" / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

Bytes read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::size_t entries(const fs::path& dir) {
    return std::size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

} // namespace

TEST_CASE("Image: zero-filled, row-major RGBA bytes", "[image]") {
    Image image(3, 2);
    REQUIRE(image.width() == 3);
    REQUIRE(image.height() == 2);
    REQUIRE(image.size_bytes() == 24);
    for (std::uint8_t byte : image.bytes())
        REQUIRE(byte == 0);
    image.set_pixel(2, 1, Pixel{1, 2, 3, 4});
    const std::size_t at = 4 * (1 * 3 + 2);
    REQUIRE(image.data()[at] == 1);
    REQUIRE(image.data()[at + 1] == 2);
    REQUIRE(image.data()[at + 2] == 3);
    REQUIRE(image.data()[at + 3] == 4);
    REQUIRE(image.pixel(2, 1) == Pixel{1, 2, 3, 4});
    REQUIRE(image.pixel(1, 1) == Pixel{});
}

TEST_CASE("PNG: encode and decode round trip random images", "[image][png]") {
    const std::vector<std::pair<std::uint32_t, std::uint32_t>> sizes = {
        {1, 1}, {1, 7}, {7, 1}, {3, 5}, {64, 33}, {257, 3}, {2, 300}};
    std::uint32_t seed = 1;
    for (auto [w, h] : sizes) {
        INFO(w << "x" << h);
        const Image image = random_image(w, h, seed++);
        const Bytes png = px::encode_png(image);
        REQUIRE(png.size() > 33);
        REQUIRE(png[24] == 8);                 // bit depth
        REQUIRE(png[25] == 6);                 // colour type RGBA
        REQUIRE(px::encode_png(image) == png); // deterministic
        const px::Result<Image> decoded = px::decode_png(png, "round-trip");
        REQUIRE(decoded.ok());
        REQUIRE(*decoded == image);
    }
    SECTION("fully transparent pixels keep their colour") {
        Image image(2, 1);
        image.set_pixel(0, 0, Pixel{200, 100, 50, 0});
        image.set_pixel(1, 0, Pixel{255, 255, 255, 0});
        const px::Result<Image> decoded = px::decode_png(px::encode_png(image), "alpha");
        REQUIRE(decoded.ok());
        REQUIRE(*decoded == image);
    }
}

TEST_CASE("PNG: save_png and load_png through a file", "[image][png]") {
    const fs::path dir = scratch_dir("save_load");
    const Image image = random_image(33, 17, 99);
    const std::string path = (dir / "x.pxi").string();
    REQUIRE(px::save_png(image, path).ok());
    const px::Result<Image> loaded = px::load_png(path);
    REQUIRE(loaded.ok());
    REQUIRE(*loaded == image);
    REQUIRE(entries(dir) == 1); // no temporary file left behind
}

TEST_CASE("PNG: files from an independent writer, interlaced and with ancillary chunks",
          "[image][png]") {
    for (auto [w, h] : std::vector<std::pair<std::uint32_t, std::uint32_t>>{
             {1, 1}, {2, 2}, {5, 3}, {9, 9}, {17, 4}, {3, 20}}) {
        INFO(w << "x" << h);
        const Image image = random_image(w, h, w * 100 + h);
        for (bool interlaced : {false, true})
            for (bool ancillary : {false, true}) {
                INFO("interlaced " << interlaced << " ancillary " << ancillary);
                const px::Result<Image> decoded =
                    px::decode_png(write_png(image, interlaced, ancillary), "independent");
                REQUIRE(decoded.ok());
                REQUIRE(*decoded == image);
            }
    }
}

TEST_CASE("check_dimensions: the protocol limits", "[image]") {
    REQUIRE(px::check_dimensions(1, 1).ok());
    REQUIRE(px::check_dimensions(32768, 1).ok());
    REQUIRE(px::check_dimensions(1, 32768).ok());
    REQUIRE(px::check_dimensions(32768, 8192).ok()); // exactly 2^28 pixels
    REQUIRE(px::check_dimensions(16384, 16384).ok());
    REQUIRE(px::check_dimensions(8192, 32768).ok());

    auto message = [](std::uint64_t w, std::uint64_t h) {
        const px::Result<void> r = px::check_dimensions(w, h);
        REQUIRE_FALSE(r.ok());
        return r.error().message;
    };
    REQUIRE_THAT(message(0, 1), Catch::Contains("at least 1"));
    REQUIRE_THAT(message(1, 0), Catch::Contains("at least 1"));
    REQUIRE_THAT(message(0, 0), Catch::Contains("0x0"));
    REQUIRE_THAT(message(32769, 1), Catch::Contains("32768"));
    REQUIRE_THAT(message(1, 32769), Catch::Contains("32768"));
    REQUIRE_THAT(message(100000, 100000), Catch::Contains("100000x100000"));
    REQUIRE_THAT(message(32768, 8193), Catch::Contains("268468224 pixels"));
    REQUIRE_THAT(message(32768, 32768), Catch::Contains("limit is 268435456 pixels"));
    REQUIRE_THAT(message(std::uint64_t(1) << 40, std::uint64_t(1) << 40), Catch::Contains("32768"));
}

TEST_CASE("decode_png: the header is checked before anything is decoded", "[image][png]") {
    auto message = [](const Bytes& png) {
        const px::Result<Image> r = px::decode_png(png, "mem.pxi");
        REQUIRE_FALSE(r.ok());
        REQUIRE_THAT(r.error().message, Catch::StartsWith("mem.pxi: "));
        return r.error().message;
    };
    // No IDAT at all: only the header is there to refuse.
    REQUIRE_THAT(message(header_only(32768, 32768, 8, 6)), Catch::Contains("pixels"));
    REQUIRE_THAT(message(header_only(40000, 1, 8, 6)), Catch::Contains("32768"));
    REQUIRE_THAT(message(header_only(0, 5, 8, 6)), Catch::Contains("at least 1"));
    REQUIRE_THAT(message(header_only(4, 4, 8, 2)),
                 Catch::Contains("PNG is 8-bit RGB (colour type 2); pxVM needs 8-bit RGBA"));
    REQUIRE_THAT(message(header_only(4, 4, 8, 4)),
                 Catch::Contains("8-bit greyscale+alpha (colour type 4)"));
    REQUIRE_THAT(message(header_only(4, 4, 16, 6)), Catch::Contains("16-bit RGBA"));
    REQUIRE_THAT(message(header_only(4, 4, 4, 3)), Catch::Contains("4-bit palette"));
    REQUIRE_THAT(message(header_only(4, 4, 8, 6)), Catch::Contains("corrupt PNG"));
    REQUIRE_THAT(message(Bytes{137, 80, 78, 71, 13, 10, 26, 10}), Catch::Contains("IHDR"));
    REQUIRE_THAT(message(Bytes{}), Catch::Contains("not a PNG"));
}

TEST_CASE("compare_images and describe", "[image]") {
    const Image a = random_image(5, 4, 7);
    px::ImageDifference d = px::compare_images(a, a);
    REQUIRE(d.count == 0);
    REQUIRE(px::describe(d) == "images are identical");

    Image b = a;
    Pixel p = a.pixel(2, 1);
    p.a = std::uint8_t(p.a + 1);
    b.set_pixel(2, 1, p);
    b.set_pixel(4, 3, Pixel{1, 2, 3, 4});
    b.set_pixel(0, 3, Pixel{9, 9, 9, 9});
    if (a.pixel(4, 3) == Pixel{1, 2, 3, 4}) b.set_pixel(4, 3, Pixel{4, 3, 2, 1});
    if (a.pixel(0, 3) == Pixel{9, 9, 9, 9}) b.set_pixel(0, 3, Pixel{8, 8, 8, 8});
    d = px::compare_images(a, b);
    REQUIRE(d.count == 3);
    REQUIRE(d.x == 2);
    REQUIRE(d.y == 1);
    REQUIRE(d.expected == a.pixel(2, 1));
    REQUIRE(d.actual == p);
    REQUIRE(px::describe(d) == "first difference at pixel (2, 1): expected " +
                                   px::to_string(a.pixel(2, 1)) + ", actual " + px::to_string(p) +
                                   "; 3 pixels differ");
    REQUIRE(px::to_string(Pixel{1, 22, 255, 0}) == "(1,22,255,0)");

    Image c(2, 2);
    Image e = c;
    e.set_pixel(1, 1, Pixel{0, 0, 0, 1});
    d = px::compare_images(c, e);
    REQUIRE(d.count == 1);
    REQUIRE_THAT(px::describe(d), Catch::StartsWith("first difference at pixel (1, 1): expected "
                                                    "(0,0,0,0), actual (0,0,0,1); 1 pixel"));
}

TEST_CASE("write_file_atomic", "[image][io]") {
    const Bytes old_bytes = {1, 2, 3}, new_bytes = {4, 5, 6, 7};

    SECTION("creates and replaces files") {
        const fs::path dir = scratch_dir("replace");
        const fs::path file = dir / "f.bin";
        REQUIRE(px::write_file_atomic(file.string(), old_bytes).ok());
        REQUIRE(read_file(file) == old_bytes);
        REQUIRE(px::write_file_atomic(file.string(), new_bytes).ok());
        REQUIRE(read_file(file) == new_bytes);
        REQUIRE(px::write_file_atomic(file.string(), Bytes{}).ok());
        REQUIRE(read_file(file).empty());
        REQUIRE(entries(dir) == 1);
    }
    SECTION("a replaced file keeps its mode; a symlink stays a symlink") {
        const fs::path dir = scratch_dir("mode_link");
        const fs::path file = dir / "f.bin", link = dir / "link.bin";
        write_file(file, old_bytes);
        REQUIRE(::chmod(file.c_str(), 0600) == 0);
        REQUIRE(px::write_file_atomic(file.string(), new_bytes).ok());
        CHECK((fs::status(file).permissions() & fs::perms::all) ==
              (fs::perms::owner_read | fs::perms::owner_write));
        fs::create_symlink(file, link);
        REQUIRE(px::write_file_atomic(link.string(), old_bytes).ok());
        CHECK(fs::is_symlink(link));
        CHECK(read_file(file) == old_bytes);
        CHECK((fs::status(file).permissions() & fs::perms::all) ==
              (fs::perms::owner_read | fs::perms::owner_write));
        REQUIRE(entries(dir) == 2);
    }
    SECTION("an AtomicFile written in pieces replaces the file only when committed") {
        const fs::path dir = scratch_dir("pieces");
        const fs::path file = dir / "f.txt";
        write_file(file, old_bytes);
        {
            auto abandoned = px::AtomicFile::create(file.string());
            REQUIRE(abandoned.ok());
            abandoned->stream() << "half of it";
        } // never committed: the temporary file goes, the old one stays
        CHECK(read_file(file) == old_bytes);
        CHECK(entries(dir) == 1);
        auto whole = px::AtomicFile::create(file.string());
        REQUIRE(whole.ok());
        for (int i = 0; i < 3; ++i)
            whole->stream() << "piece " << i << "\n";
        REQUIRE(whole->commit().ok());
        const std::string expected = "piece 0\npiece 1\npiece 2\n";
        CHECK(read_file(file) == Bytes(expected.begin(), expected.end()));
        CHECK(entries(dir) == 1);
    }
    SECTION("the target path is a directory: it is left alone") {
        const fs::path dir = scratch_dir("is_directory");
        const fs::path target = dir / "target";
        fs::create_directory(target);
        write_file(target / "inside.bin", old_bytes);
        const px::Result<void> r = px::write_file_atomic(target.string(), new_bytes);
        REQUIRE_FALSE(r.ok());
        REQUIRE_THAT(r.error().message, Catch::StartsWith(target.string() + ": "));
        REQUIRE_THAT(r.error().message, Catch::Contains("unchanged"));
        REQUIRE(fs::is_directory(target));
        REQUIRE(read_file(target / "inside.bin") == old_bytes);
        REQUIRE(entries(dir) == 1); // no temporary file left beside it
        REQUIRE(entries(target) == 1);
    }
    SECTION("the directory does not exist") {
        const fs::path dir = scratch_dir("missing_dir");
        const fs::path file = dir / "no" / "f.bin";
        const px::Result<void> r = px::write_file_atomic(file.string(), new_bytes);
        REQUIRE_FALSE(r.ok());
        REQUIRE_THAT(r.error().message, Catch::StartsWith(file.string() + ": cannot write"));
        REQUIRE(entries(dir) == 0);
    }
    SECTION("the directory is not writable: the existing file is untouched") {
        const fs::path dir = scratch_dir("read_only");
        const fs::path file = dir / "f.bin";
        write_file(file, old_bytes);
        REQUIRE(::chmod(dir.c_str(), 0555) == 0);
        if (::access(dir.c_str(), W_OK) == 0) {
            // Root writes into a 0555 directory anyway. procfs lets nobody create files, so
            // /proc/sys/kernel is a directory that is not writable even for root.
            ::chmod(dir.c_str(), 0755);
            const fs::path proc_file = "/proc/sys/kernel/ostype";
            if (!fs::exists(proc_file)) {
                WARN("no directory is read-only to this user: check skipped");
                return;
            }
            const Bytes before = read_file(proc_file);
            const px::Result<void> r = px::write_file_atomic(proc_file.string(), new_bytes);
            REQUIRE_FALSE(r.ok());
            REQUIRE_THAT(r.error().message, Catch::StartsWith(proc_file.string() + ": cannot"));
            REQUIRE(read_file(proc_file) == before);
            return;
        }
        const px::Result<void> r = px::write_file_atomic(file.string(), new_bytes);
        ::chmod(dir.c_str(), 0755);
        REQUIRE_FALSE(r.ok());
        REQUIRE_THAT(r.error().message, Catch::StartsWith(file.string() + ": cannot write"));
        REQUIRE(read_file(file) == old_bytes);
        REQUIRE(entries(dir) == 1);
    }
}

TEST_CASE("read_file: regular files only, up to a limit", "[image][io]") {
    const fs::path dir = scratch_dir("read_file");
    const Bytes bytes = {1, 2, 3, 4, 5};
    write_file(dir / "f.bin", bytes);
    auto read = px::read_file((dir / "f.bin").string(), 5);
    REQUIRE(read.ok());
    CHECK(*read == bytes);
    auto refused = [](const std::string& path, std::uint64_t limit, const std::string& words) {
        auto r = px::read_file(path, limit);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.error().message, Catch::StartsWith(path + ": "));
        CHECK_THAT(r.error().message, Catch::Contains(words));
    };
    refused((dir / "f.bin").string(), 4, "larger than 4 bytes");
    refused(dir.string(), 100, "Is a directory");
    refused("/dev/zero", 100, "not a regular file"); // would never end
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    refused((dir / "fifo").string(), 100, "not a regular file"); // would block
    refused((dir / "missing").string(), 100, "cannot open");
    auto png = px::load_png("/dev/zero");
    REQUIRE_FALSE(png.ok());
    CHECK_THAT(png.error().message, Catch::Contains("not a regular file"));
}

TEST_CASE("the PNG decoder checks the zlib stream, unknown critical chunks and extra data",
          "[image]") {
    using pxtest::Bytes;
    px::Image image(3, 2);
    image.set_pixel(1, 1, {1, 2, 3, 4});
    const Bytes good = pxtest::write_png(image, false, false);
    REQUIRE(px::decode_png(good, "good.pxi").ok());
    const auto idat_at = [](const Bytes& png) {
        const Bytes idat = {'I', 'D', 'A', 'T'};
        return std::size_t(std::search(png.begin(), png.end(), idat.begin(), idat.end()) -
                           png.begin());
    };
    // A pixel byte changed under a recomputed chunk CRC: the Adler-32 of the zlib stream fails.
    Bytes flipped = good;
    const std::size_t type = idat_at(flipped);
    const std::size_t length = std::size_t(flipped[type - 1]) | std::size_t(flipped[type - 2]) << 8;
    flipped[type + 4 + 2 + 5 + 3] ^= 0x40; // zlib header, stored-block header, then the data
    const std::uint32_t crc = pxtest::crc32(&flipped[type], length + 4);
    for (int b = 0; b < 4; ++b)
        flipped[type + 4 + length + std::size_t(b)] = std::uint8_t(crc >> (24 - 8 * b));
    auto damaged = px::decode_png(flipped, "flipped.pxi");
    REQUIRE_FALSE(damaged.ok());
    CHECK_THAT(damaged.error().message, Catch::Contains("flipped.pxi: corrupt PNG"));

    // An unknown critical chunk (Apple's CgBI) after the header.
    Bytes cgbi(good.begin(), good.begin() + 8 + 25);
    pxtest::chunk(cgbi, "CgBI", {0x50, 0x00, 0x20, 0x06});
    cgbi.insert(cgbi.end(), good.begin() + 8 + 25, good.end());
    CHECK_FALSE(px::decode_png(cgbi, "cgbi.pxi").ok());

    // More data in IDAT than the image holds: a 1x1 image whose stream inflates to 4 MiB.
    Bytes raw = {0, 9, 8, 7, 6};
    raw.resize(raw.size() + (std::size_t(4) << 20), 0);
    const Bytes big = pxtest::png_with_raw(1, 1, raw);
    // A header claiming 16384x16384 over a few bytes of data: refused before allocating 1 GiB.
    const Bytes claim = pxtest::png_with_raw(16384, 16384, Bytes(100, 0));
    auto claimed = px::decode_png(claim, "claim.pxi");
    REQUIRE_FALSE(claimed.ok());
    CHECK_THAT(claimed.error().message,
               Catch::Contains("claim.pxi: corrupt PNG: its 16384x16384 pixels cannot come from"));
    auto extra = px::decode_png(big, "extra.pxi");
    REQUIRE_FALSE(extra.ok());
    CHECK_THAT(extra.error().message, Catch::Contains("extra.pxi: corrupt PNG"));
}
