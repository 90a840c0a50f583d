// An 8-bit RGBA image held in memory exactly as the PNG's pixels (row-major, R G B A), plus PNG
// reading and atomic PNG writing. This byte layout is what the GPU storage buffer holds too.
#pragma once

#include "pxvm/result.hpp"

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace px {

/// One RGBA pixel.
struct Pixel {
    std::uint8_t r = 0, g = 0, b = 0, a = 0;
    bool operator==(const Pixel&) const = default;
};

/// An RGBA8 image whose dimensions satisfy the protocol limits.
class Image {
public:
    Image() = default;
    /// A zero-filled image. Precondition: check_dimensions(width, height) succeeds.
    Image(std::uint32_t width, std::uint32_t height);

    std::uint32_t width() const { return width_; }
    std::uint32_t height() const { return height_; }
    std::size_t size_bytes() const { return bytes_.size(); }
    std::uint8_t* data() { return bytes_.data(); }
    const std::uint8_t* data() const { return bytes_.data(); }
    std::span<std::uint8_t> bytes() { return bytes_; }
    std::span<const std::uint8_t> bytes() const { return bytes_; }

    Pixel pixel(std::uint32_t x, std::uint32_t y) const;
    void set_pixel(std::uint32_t x, std::uint32_t y, Pixel p);

    bool operator==(const Image&) const = default;

private:
    std::uint32_t width_ = 0, height_ = 0;
    std::vector<std::uint8_t> bytes_;
};

/// Checks width and height against the protocol limits (docs/PROTOCOL.md section 1).
Result<void> check_dimensions(std::uint64_t width, std::uint64_t height);

/// Decodes a PNG held in memory; `name` prefixes error messages.
Result<Image> decode_png(std::span<const std::uint8_t> file, const std::string& name);
/// Reads a whole regular file of at most `max_bytes` (a directory, a FIFO or a device such as
/// /dev/zero is refused, never read); errors name the file.
Result<std::vector<std::uint8_t>> read_file(const std::string& path, std::uint64_t max_bytes);
/// Reads and decodes a PNG file; refuses anything but 8-bit RGBA with the reason.
Result<Image> load_png(const std::string& path);
/// Encodes an image as PNG bytes (deterministic for equal images); empty when encoding failed
/// (out of memory).
std::vector<std::uint8_t> encode_png(const Image& image);
/// The same, with a zlib-compressed iTXt chunk `keyword` holding `text` (none for an empty
/// keyword); the error says why encoding failed.
Result<std::vector<std::uint8_t>> encode_png_with_itxt(const Image& image, std::string_view keyword,
                                                       std::string_view text);
/// A file written atomically, in pieces (a long listing): a temporary file beside `path` that
/// commit() renames over it, and that is removed when the AtomicFile goes away uncommitted. A
/// symlink at `path` is written through, an existing file keeps its permission bits, and
/// something that is not a regular file is never replaced.
class AtomicFile {
public:
    static Result<AtomicFile> create(const std::string& path);
    AtomicFile(AtomicFile&&) noexcept;
    AtomicFile& operator=(AtomicFile&&) noexcept;
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile();

    /// Where the contents go; a failed write is reported by commit().
    std::ostream& stream();
    /// Flushes, syncs and renames; on failure `path` is left as it was.
    Result<void> commit();

private:
    struct State;
    explicit AtomicFile(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

/// Whether `a` and `b` name one existing file (the same device and inode: a link, a second hard
/// link or "./" does not hide it); false when either does not exist. Tools refuse an output that
/// is one of their inputs, which is never modified.
bool same_file(const std::string& a, const std::string& b);

/// Writes bytes to `path` atomically: a temporary file beside it, then a rename.
Result<void> write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes);
/// Writes text to `path` atomically (reports, charts, listings).
Result<void> write_file_atomic(const std::string& path, std::string_view text);
/// Encodes and writes a PNG atomically.
Result<void> save_png(const Image& image, const std::string& path);

/// First differing pixel between two images of equal size and the number of differing pixels.
struct ImageDifference {
    std::uint32_t x = 0, y = 0;
    Pixel expected, actual;
    std::uint64_t count = 0;
};
/// Compares pixel by pixel; `count` is 0 when the images are identical.
ImageDifference compare_images(const Image& expected, const Image& actual);
/// "first difference at (x, y): expected (r,g,b,a), actual (r,g,b,a); N pixels differ".
std::string describe(const ImageDifference& difference);
std::string to_string(Pixel p);

} // namespace px
