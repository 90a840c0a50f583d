// PNG decoding and encoding with libspng (the header and every chunk's CRC checked first; the zlib
// Adler-32, unknown critical chunks and the inflated size checked by libspng), atomic
// file writes, and pixel-by-pixel image comparison.
#include "pxvm/image.hpp"

#include "pxvm/protocol.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

#include <spng.h>
#include <zlib.h>

namespace px {

Image::Image(std::uint32_t width, std::uint32_t height)
    : width_(width), height_(height), bytes_(std::size_t(width) * height * 4, 0) {}

Pixel Image::pixel(std::uint32_t x, std::uint32_t y) const {
    const std::uint8_t* p = &bytes_[(std::size_t(y) * width_ + x) * 4];
    return {p[0], p[1], p[2], p[3]};
}

void Image::set_pixel(std::uint32_t x, std::uint32_t y, Pixel v) {
    std::uint8_t* p = &bytes_[(std::size_t(y) * width_ + x) * 4];
    p[0] = v.r, p[1] = v.g, p[2] = v.b, p[3] = v.a;
}

Result<void> check_dimensions(std::uint64_t width, std::uint64_t height) {
    if (width == 0 || height == 0)
        return Error{ErrorCode::invalid_input, "image is " + std::to_string(width) + "x" +
                                                   std::to_string(height) +
                                                   ": both dimensions must be at least 1"};
    if (width > MAX_WIDTH || height > MAX_HEIGHT)
        return Error{ErrorCode::invalid_input,
                     "image is " + std::to_string(width) + "x" + std::to_string(height) +
                         ": the largest width and height are " + std::to_string(MAX_WIDTH) +
                         " and " + std::to_string(MAX_HEIGHT)};
    if (width * height > MAX_PIXELS)
        return Error{ErrorCode::invalid_input,
                     "image is " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                         std::to_string(width * height) + " pixels: the limit is " +
                         std::to_string(MAX_PIXELS) + " pixels (1 GiB)"};
    return {};
}

namespace {

std::uint32_t read_be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

const char* colour_type_name(int type) {
    switch (type) {
    case 0:
        return "greyscale";
    case 2:
        return "RGB";
    case 3:
        return "palette";
    case 4:
        return "greyscale+alpha";
    case 6:
        return "RGBA";
    default:
        return "an invalid colour type";
    }
}

std::uint32_t crc32(const std::uint8_t* data, std::size_t size) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t n = 0; n < 256; ++n) {
            std::uint32_t c = n;
            for (int k = 0; k < 8; ++k)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }();
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < size; ++i)
        c = table[(c ^ data[i]) & 255] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

using Bytes = std::span<const std::uint8_t>;

// Walks the chunks first and refuses any that is cut short or fails its CRC, naming it (libspng
// would check the CRCs too, with a less precise message). Returns the IDAT chunks' data.
Result<std::vector<Bytes>> check_chunks(Bytes file) {
    std::vector<Bytes> idat;
    std::size_t at = 8;
    while (true) {
        if (file.size() - at < 12)
            return Error{ErrorCode::invalid_input,
                         "truncated PNG (the file ends before the IEND chunk)"};
        const std::uint32_t length = read_be32(&file[at]);
        const std::string type(reinterpret_cast<const char*>(&file[at + 4]), 4);
        if (length > file.size() - at - 12)
            return Error{ErrorCode::invalid_input, "truncated PNG (chunk " + type + " at byte " +
                                                       std::to_string(at) +
                                                       " runs past the end of the file)"};
        if (crc32(&file[at + 4], length + 4) != read_be32(&file[at + 8 + length]))
            return Error{ErrorCode::invalid_input, "corrupt PNG (chunk " + type + " at byte " +
                                                       std::to_string(at) +
                                                       " fails its CRC check)"};
        if (type == "IDAT") idat.push_back(file.subspan(at + 8, length));
        at += 12 + std::size_t(length);
        if (type == "IEND") return idat;
    }
}

// The bytes of filtered scanlines an 8-bit RGBA image holds (Adam7's seven passes if interlaced).
std::uint64_t raw_size(std::uint32_t width, std::uint32_t height, bool interlaced) {
    const auto lines = [](std::uint64_t w, std::uint64_t h) {
        return w && h ? h * (1 + 4 * w) : 0;
    };
    if (!interlaced) return lines(width, height);
    const std::uint32_t passes[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                        {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
    std::uint64_t total = 0;
    for (const auto& [x0, y0, dx, dy] : passes)
        total += lines(width > x0 ? (width - x0 + dx - 1) / dx : 0,
                       height > y0 ? (height - y0 + dy - 1) / dy : 0);
    return total;
}

// The IDAT stream inflates to exactly the image's scanlines, and ends with a valid Adler-32: no
// data after the image (a 1x1 image whose stream inflates to gigabytes is refused after the first
// bytes past it), no damage a recomputed chunk CRC hides.
Result<void> check_idat_size(const std::vector<Bytes>& idat, std::uint32_t width,
                             std::uint32_t height, bool interlaced) {
    const std::uint64_t expected = raw_size(width, height, interlaced);
    z_stream z{};
    if (inflateInit(&z) != Z_OK)
        return Error{ErrorCode::invalid_input, "out of memory checking the PNG's pixel data"};
    std::array<std::uint8_t, 1 << 16> scratch;
    std::uint64_t inflated = 0;
    int status = Z_OK;
    for (const Bytes chunk : idat) {
        if (status == Z_STREAM_END || inflated > expected) break;
        z.next_in = const_cast<std::uint8_t*>(chunk.data());
        z.avail_in = uInt(chunk.size()); // a chunk is at most 2^31 - 1 bytes
        while (z.avail_in > 0 && status == Z_OK && inflated <= expected) {
            z.next_out = scratch.data();
            z.avail_out = scratch.size();
            status = inflate(&z, Z_NO_FLUSH);
            inflated += scratch.size() - z.avail_out;
            if (status == Z_BUF_ERROR) status = Z_OK; // needs the next chunk
        }
    }
    const std::string why = z.msg ? z.msg : "the stream ends early";
    inflateEnd(&z);
    if (inflated > expected)
        return Error{ErrorCode::invalid_input,
                     "corrupt PNG: its pixel data continues past the " + std::to_string(width) +
                         "x" + std::to_string(height) + " image (more than " +
                         std::to_string(expected) + " bytes of scanlines)"};
    // The whole stream, its Adler-32 included: libspng may stop once it has every scanline and
    // never read the checksum, so damage under a recomputed chunk CRC could load changed pixels.
    if (status != Z_STREAM_END)
        return Error{ErrorCode::invalid_input,
                     "corrupt PNG: its compressed pixel data is damaged (zlib: " + why + ")"};
    return {};
}

} // namespace

Result<Image> decode_png(std::span<const std::uint8_t> file, const std::string& name) {
    static const std::uint8_t signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (file.size() < 8 || std::memcmp(file.data(), signature, 8) != 0)
        return Error{ErrorCode::invalid_input,
                     name + ": not a PNG file (the PNG signature is missing)"};
    // IHDR must be the first chunk: length 13, type "IHDR", then width, height, depth, colour.
    if (file.size() < 8 + 8 + 13 || read_be32(&file[8]) != 13 ||
        std::memcmp(&file[12], "IHDR", 4) != 0)
        return Error{ErrorCode::invalid_input,
                     name + ": truncated or corrupt PNG (no valid IHDR header chunk)"};
    const std::uint32_t width = read_be32(&file[16]), height = read_be32(&file[20]);
    const int depth = file[24], colour = file[25];
    if (auto dims = check_dimensions(width, height); !dims)
        return Error{ErrorCode::invalid_input, name + ": " + dims.error().message};
    if (depth != 8 || colour != 6)
        return Error{ErrorCode::invalid_input,
                     name + ": PNG is " + std::to_string(depth) + "-bit " +
                         colour_type_name(colour) + " (colour type " + std::to_string(colour) +
                         "); pxVM needs 8-bit RGBA (colour type 6), converted without loss"};
    const auto idat = check_chunks(file);
    if (!idat) return Error{ErrorCode::invalid_input, name + ": " + idat.error().message};
    // No allocation the compressed data cannot fill: deflate inflates at most 1032:1, so a PNG of
    // a few hundred bytes claiming 16384x16384 pixels is refused before 1 GiB is allocated.
    std::uint64_t compressed = 0;
    for (const Bytes chunk : *idat)
        compressed += chunk.size();
    const std::uint64_t scanlines = raw_size(width, height, file[28] != 0);
    if (scanlines > compressed * 1032 + 1024)
        return Error{ErrorCode::invalid_input,
                     name + ": corrupt PNG: its " + std::to_string(width) + "x" +
                         std::to_string(height) + " pixels cannot come from " +
                         std::to_string(compressed) +
                         " bytes of compressed data (deflate inflates at most 1032 to 1)"};
    // libspng inflates into the image's own buffer, so no more than the header implies is ever
    // inflated; it checks the zlib Adler-32 and refuses unknown critical chunks (such as CgBI).
    struct Free {
        void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
    };
    const std::unique_ptr<spng_ctx, Free> ctx(spng_ctx_new(0));
    if (!ctx) return Error{ErrorCode::invalid_input, name + ": out of memory decoding the PNG"};
    const auto corrupt = [&](int code) {
        return Error{ErrorCode::invalid_input, name +
                                                   ": corrupt PNG: cannot decode its pixel data (" +
                                                   std::string(spng_strerror(code)) + ")"};
    };
    spng_set_image_limits(ctx.get(), MAX_WIDTH, MAX_HEIGHT);
    spng_set_chunk_limits(ctx.get(), std::size_t(64) << 20, std::size_t(64) << 20);
    if (int e = spng_set_png_buffer(ctx.get(), file.data(), file.size())) return corrupt(e);
    Image image{width, height};
    std::size_t bytes = 0;
    if (int e = spng_decoded_image_size(ctx.get(), SPNG_FMT_RGBA8, &bytes)) return corrupt(e);
    if (bytes != image.size_bytes()) return corrupt(SPNG_EBUFSIZ);
    if (int e = spng_decode_image(ctx.get(), image.data(), bytes, SPNG_FMT_RGBA8, 0)) {
        if (e == SPNG_EMEM)
            return Error{ErrorCode::invalid_input, name + ": out of memory decoding the PNG"};
        return corrupt(e);
    }
    // Whatever follows the image (IEND) must be well-formed too, and the pixel data must end
    // with the image: libspng stops inflating there, so the rest of the stream is counted here.
    if (int e = spng_decode_chunks(ctx.get())) return corrupt(e);
    if (auto exact = check_idat_size(*idat, width, height, file[28] != 0); !exact)
        return Error{ErrorCode::invalid_input, name + ": " + exact.error().message};
    return image;
}

Result<std::vector<std::uint8_t>> read_file(const std::string& path, std::uint64_t max_bytes) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status))
        return Error{ErrorCode::invalid_input,
                     path + ": cannot open (" + (ec ? ec.message() : "no such file") + ")"};
    if (std::filesystem::is_directory(status))
        return Error{ErrorCode::invalid_input,
                     path + ": cannot read (" + std::strerror(EISDIR) + ")"};
    if (!std::filesystem::is_regular_file(status))
        return Error{ErrorCode::invalid_input, path + ": cannot read (not a regular file)"};
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Error{ErrorCode::invalid_input,
                     path + ": cannot open (" + std::strerror(errno) + ")"};
    // Read in blocks rather than trusting the size: /proc files say 0 and grow while read.
    std::vector<std::uint8_t> bytes;
    std::vector<char> block(1 << 20);
    while (in) {
        in.read(block.data(), std::streamsize(block.size()));
        const auto got = std::size_t(in.gcount());
        if (bytes.size() + got > max_bytes)
            return Error{ErrorCode::invalid_input,
                         path + ": larger than " + std::to_string(max_bytes) + " bytes"};
        bytes.insert(bytes.end(), block.begin(), block.begin() + std::ptrdiff_t(got));
    }
    if (in.bad()) return Error{ErrorCode::invalid_input, path + ": read error"};
    return bytes;
}

Result<Image> load_png(const std::string& path) {
    // The largest image is 1 GiB of pixels; its PNG is at most slightly larger.
    auto file = read_file(path, std::uint64_t(2) << 30);
    if (!file) return file.error();
    return decode_png(*file, path);
}

Result<std::vector<std::uint8_t>> encode_png_with_itxt(const Image& image, std::string_view keyword,
                                                       std::string_view text) {
    struct Free {
        void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
    };
    const std::unique_ptr<spng_ctx, Free> ctx(spng_ctx_new(SPNG_CTX_ENCODER));
    auto failed = [](int code) {
        return Error{code == SPNG_EMEM ? ErrorCode::out_of_memory : ErrorCode::invalid_input,
                     std::string("PNG encoding failed: ") + spng_strerror(code)};
    };
    if (!ctx) return Error{ErrorCode::out_of_memory, "PNG encoding failed: out of memory"};
    spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1);
    spng_ihdr ihdr{};
    ihdr.width = image.width();
    ihdr.height = image.height();
    ihdr.bit_depth = 8;
    ihdr.color_type = SPNG_COLOR_TYPE_TRUECOLOR_ALPHA;
    if (int e = spng_set_ihdr(ctx.get(), &ihdr)) return failed(e);
    std::string body(text);
    spng_text chunk{};
    if (!keyword.empty()) {
        if (keyword.size() >= sizeof chunk.keyword)
            return Error{ErrorCode::invalid_input, "PNG text keyword longer than 79 bytes"};
        std::copy(keyword.begin(), keyword.end(), chunk.keyword);
        chunk.type = SPNG_ITXT;
        chunk.length = body.size();
        chunk.text = body.data();
        chunk.compression_flag = 1; // zlib
        chunk.language_tag = const_cast<char*>("");
        chunk.translated_keyword = const_cast<char*>("");
        if (int e = spng_set_text(ctx.get(), &chunk, 1)) return failed(e);
    }
    if (int e = spng_encode_image(ctx.get(), image.data(), image.size_bytes(), SPNG_FMT_PNG,
                                  SPNG_ENCODE_FINALIZE))
        return failed(e);
    std::size_t length = 0;
    int error = 0;
    void* buffer = spng_get_png_buffer(ctx.get(), &length, &error);
    if (!buffer) return failed(error);
    std::vector<std::uint8_t> out(static_cast<std::uint8_t*>(buffer),
                                  static_cast<std::uint8_t*>(buffer) + length);
    std::free(buffer);
    return out;
}

std::vector<std::uint8_t> encode_png(const Image& image) {
    auto png = encode_png_with_itxt(image, {}, {});
    return png ? std::move(*png) : std::vector<std::uint8_t>{};
}

bool same_file(const std::string& a, const std::string& b) {
    std::error_code ec;
    return std::filesystem::equivalent(a, b, ec) && !ec;
}

Result<void> write_file_atomic(const std::string& path, std::string_view text) {
    return write_file_atomic(
        path, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

namespace {

// The process's umask, read without changing it (umask(2) would, for every thread): Linux shows
// it in /proc/self/status; 022 where it cannot be read.
mode_t current_umask() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("Umask:")) return mode_t(std::stoul(line.substr(6), nullptr, 8));
    return 022;
}

// An output stream buffer over a file descriptor, which keeps the first write error's errno.
class DescriptorBuffer : public std::streambuf {
public:
    explicit DescriptorBuffer(int fd) : fd_(fd) {
        setp(buffer_.data(), buffer_.data() + buffer_.size());
    }
    int error() const { return error_; }

protected:
    int overflow(int c) override {
        if (!drain()) return traits_type::eof();
        if (c != traits_type::eof()) *pptr() = char(c), pbump(1);
        return traits_type::not_eof(c);
    }
    int sync() override { return drain() ? 0 : -1; }

private:
    bool drain() {
        for (const char* p = pbase(); p < pptr();) {
            const ssize_t n = ::write(fd_, p, std::size_t(pptr() - p));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                if (!error_) error_ = n < 0 ? errno : EIO;
                return false;
            }
            p += n;
        }
        setp(buffer_.data(), buffer_.data() + buffer_.size());
        return error_ == 0;
    }
    int fd_;
    int error_ = 0;
    std::array<char, 1 << 16> buffer_;
};

} // namespace

struct AtomicFile::State {
    std::string path, target, temporary;
    int fd = -1;
    std::unique_ptr<DescriptorBuffer> buffer;
    std::unique_ptr<std::ostream> out;
    bool committed = false;
    ~State() {
        if (fd >= 0) ::close(fd);
        if (!committed && !temporary.empty()) ::unlink(temporary.c_str());
    }
};

AtomicFile::AtomicFile(std::unique_ptr<State> state) : state_(std::move(state)) {}
AtomicFile::AtomicFile(AtomicFile&&) noexcept = default;
AtomicFile& AtomicFile::operator=(AtomicFile&&) noexcept = default;
AtomicFile::~AtomicFile() = default;

Result<AtomicFile> AtomicFile::create(const std::string& path) {
    // A symlink stays a symlink: its final target is the file replaced. An existing file keeps its
    // permission bits; something that is not a regular file is never replaced.
    auto state = std::make_unique<State>();
    state->path = state->target = path;
    std::error_code ec;
    if (std::filesystem::is_symlink(std::filesystem::symlink_status(path, ec))) {
        const auto resolved = std::filesystem::weakly_canonical(path, ec);
        if (ec)
            return Error{ErrorCode::invalid_input,
                         path + ": cannot resolve the symlink (" + ec.message() + ")"};
        state->target = resolved.string();
    }
    const auto status = std::filesystem::status(state->target, ec);
    const bool exists = !ec && std::filesystem::exists(status);
    if (exists && !std::filesystem::is_regular_file(status))
        return Error{ErrorCode::invalid_input, path + ": is not a regular file; left unchanged"};
    // A fresh name beside the target (mkstemp: created exclusively, never through a symlink).
    std::string name = state->target + ".tmp-XXXXXX";
    const int fd = ::mkstemp(name.data());
    if (fd < 0)
        return Error{ErrorCode::invalid_input,
                     path + ": cannot write (" + std::strerror(errno) + ")"};
    state->fd = fd;
    state->temporary = name;
    // mkstemp makes 0600: a new file gets what open() would give it, 0666 less the umask.
    ::fchmod(fd, exists ? static_cast<mode_t>(status.permissions()) & 07777
                        : mode_t(0666 & ~current_umask()));
    state->buffer = std::make_unique<DescriptorBuffer>(fd);
    state->out = std::make_unique<std::ostream>(state->buffer.get());
    return AtomicFile(std::move(state));
}

std::ostream& AtomicFile::stream() {
    return *state_->out;
}

Result<void> AtomicFile::commit() {
    State& s = *state_;
    const auto failed = [&](int error) {
        return Error{ErrorCode::invalid_input,
                     s.path + ": write failed (" + std::strerror(error) + "); file left unchanged"};
    };
    s.out->flush();
    if (s.buffer->error()) return failed(s.buffer->error());
    if (!*s.out) return failed(EIO);
    // The data reaches the disk before the rename makes it the file.
    if (::fsync(s.fd) != 0) return failed(errno);
    const int closed = ::close(s.fd);
    s.fd = -1;
    if (closed != 0) return failed(errno);
    if (std::rename(s.temporary.c_str(), s.target.c_str()) != 0) {
        const int error = errno;
        return Error{ErrorCode::invalid_input, s.path + ": cannot replace (" +
                                                   std::strerror(error) + "); file left unchanged"};
    }
    s.committed = true;
    return {};
}

Result<void> write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes) {
    auto file = AtomicFile::create(path);
    if (!file) return file.error();
    if (!bytes.empty()) // an empty span's data() may be null
        file->stream().write(reinterpret_cast<const char*>(bytes.data()),
                             std::streamsize(bytes.size()));
    return file->commit();
}

Result<void> save_png(const Image& image, const std::string& path) {
    auto png = encode_png_with_itxt(image, {}, {});
    if (!png) return Error{png.error().code, path + ": " + png.error().message};
    return write_file_atomic(path, *png);
}

ImageDifference compare_images(const Image& expected, const Image& actual) {
    ImageDifference d;
    const std::size_t n = std::min(expected.size_bytes(), actual.size_bytes()) / 4;
    for (std::size_t i = 0; i < n; ++i) {
        if (std::memcmp(expected.data() + 4 * i, actual.data() + 4 * i, 4) == 0) continue;
        if (d.count++ == 0) {
            d.x = std::uint32_t(i % expected.width());
            d.y = std::uint32_t(i / expected.width());
            d.expected = expected.pixel(d.x, d.y);
            d.actual = actual.pixel(d.x, d.y);
        }
    }
    return d;
}

std::string to_string(Pixel p) {
    return "(" + std::to_string(p.r) + "," + std::to_string(p.g) + "," + std::to_string(p.b) + "," +
           std::to_string(p.a) + ")";
}

std::string describe(const ImageDifference& d) {
    if (d.count == 0) return "images are identical";
    return "first difference at pixel (" + std::to_string(d.x) + ", " + std::to_string(d.y) +
           "): expected " + to_string(d.expected) + ", actual " + to_string(d.actual) + "; " +
           std::to_string(d.count) + (d.count == 1 ? " pixel differs" : " pixels differ");
}

} // namespace px
