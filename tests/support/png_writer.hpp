// A minimal PNG writer independent of the runtime's (stored deflate blocks, CRC-32, Adler-32), so
// tests can build PNGs the runtime's encoder never makes: interlaced, with ancillary chunks, with
// only a header, or with chunk data changed under a recomputed CRC.
#pragma once

#include "pxvm/image.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pxtest {

using Bytes = std::vector<std::uint8_t>;

inline std::uint32_t crc32(const std::uint8_t* p, std::size_t n, std::uint32_t crc = 0) {
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

inline void put32(Bytes& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(std::uint8_t(v >> shift));
}

inline void chunk(Bytes& out, const char* type, const Bytes& data) {
    put32(out, std::uint32_t(data.size()));
    const std::size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    put32(out, crc32(&out[start], out.size() - start));
}

inline Bytes zlib_stored(const Bytes& raw) {
    Bytes z = {0x78, 0x01};
    std::size_t pos = 0;
    do {
        const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
        z.push_back(pos + n == raw.size() ? 1 : 0);
        z.push_back(std::uint8_t(n));
        z.push_back(std::uint8_t(n >> 8));
        z.push_back(std::uint8_t(~n));
        z.push_back(std::uint8_t(~n >> 8));
        z.insert(z.end(), raw.begin() + std::ptrdiff_t(pos), raw.begin() + std::ptrdiff_t(pos + n));
        pos += n;
    } while (pos < raw.size());
    std::uint32_t a = 1, b = 0;
    for (std::uint8_t byte : raw)
        a = (a + byte) % 65521, b = (b + a) % 65521;
    put32(z, b << 16 | a);
    return z;
}

// Filter-type-0 scanlines of the pixels of `image` in the sub-image of one Adam7 pass (or the
// whole image for the pass (0, 0, 1, 1)).
inline void scanlines(Bytes& raw, const px::Image& image, std::uint32_t x0, std::uint32_t y0,
                      std::uint32_t dx, std::uint32_t dy) {
    if (x0 >= image.width() || y0 >= image.height()) return; // empty pass: no bytes at all
    for (std::uint32_t y = y0; y < image.height(); y += dy) {
        raw.push_back(0);
        for (std::uint32_t x = x0; x < image.width(); x += dx) {
            const px::Pixel p = image.pixel(x, y);
            raw.insert(raw.end(), {p.r, p.g, p.b, p.a});
        }
    }
}

// An 8-bit RGBA PNG of `image`, optionally Adam7-interlaced, with optional ancillary chunks.
inline Bytes write_png(const px::Image& image, bool interlaced, bool ancillary) {
    Bytes png = {137, 80, 78, 71, 13, 10, 26, 10};
    Bytes ihdr;
    put32(ihdr, image.width());
    put32(ihdr, image.height());
    ihdr.insert(ihdr.end(), {8, 6, 0, 0, std::uint8_t(interlaced ? 1 : 0)});
    chunk(png, "IHDR", ihdr);
    if (ancillary) {
        chunk(png, "gAMA", {0, 0, 0x27, 0x10}); // gamma 0.1: would change pixels if applied
        chunk(png, "tEXt", {'C', 'o', 'm', 'm', 'e', 'n', 't', 0, 'h', 'i'});
        chunk(png, "sRGB", {0});
    }
    Bytes raw;
    if (interlaced) {
        const std::uint32_t passes[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                            {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
        for (const auto& p : passes)
            scanlines(raw, image, p[0], p[1], p[2], p[3]);
    } else {
        scanlines(raw, image, 0, 0, 1, 1);
    }
    chunk(png, "IDAT", zlib_stored(raw));
    chunk(png, "IEND", {});
    return png;
}

// An 8-bit RGBA PNG whose IHDR says width x height and whose one IDAT holds `raw` (filtered
// scanlines, stored), whatever their size: for data that does not match the header.
inline Bytes png_with_raw(std::uint32_t width, std::uint32_t height, const Bytes& raw) {
    Bytes png = {137, 80, 78, 71, 13, 10, 26, 10};
    Bytes ihdr;
    put32(ihdr, width);
    put32(ihdr, height);
    ihdr.insert(ihdr.end(), {8, 6, 0, 0, 0});
    chunk(png, "IHDR", ihdr);
    chunk(png, "IDAT", zlib_stored(raw));
    chunk(png, "IEND", {});
    return png;
}

// A PNG signature and IHDR chunk only: enough for the header checks.
inline Bytes header_only(std::uint32_t w, std::uint32_t h, std::uint8_t depth,
                         std::uint8_t colour) {
    Bytes png = {137, 80, 78, 71, 13, 10, 26, 10};
    Bytes ihdr;
    put32(ihdr, w);
    put32(ihdr, h);
    ihdr.insert(ihdr.end(), {depth, colour, 0, 0, 0});
    chunk(png, "IHDR", ihdr);
    chunk(png, "IEND", {});
    return png;
}

} // namespace pxtest
