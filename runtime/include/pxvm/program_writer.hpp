// The one instruction encoder of pxVM, beside the one decoder (pxvm/program.hpp): writes
// instruction pixels into row 0 of an image as docs/PROTOCOL.md section 4 encodes them, and tensor
// data through store_element. Tests, benchmarks and tools build programs in memory with it.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace px {

/// The one instruction encoder (docs/PROTOCOL.md section 4): the pixels of an instruction.
/// ProgramWriter and the assembler both write instructions through these.
inline std::vector<Pixel> encode_op(std::uint32_t opcode, std::uint8_t g = 0, std::uint8_t b = 0,
                                    std::uint8_t a = 0) {
    return {Pixel{std::uint8_t(opcode), g, b, a}};
}
/// TENSOR id, dtype at (x0, y0), rows x cols; `reserved` is the A channel (0 when valid).
inline std::vector<Pixel> encode_tensor(std::uint8_t id, std::uint32_t dtype, std::uint32_t x0,
                                        std::uint32_t y0, std::uint32_t rows, std::uint32_t cols,
                                        std::uint8_t reserved = 0) {
    const auto lo = [](std::uint32_t v) { return std::uint8_t(v & 255); };
    const auto hi = [](std::uint32_t v) { return std::uint8_t(v >> 8 & 255); };
    return {Pixel{std::uint8_t(OP_TENSOR), id, std::uint8_t(dtype), reserved},
            Pixel{lo(x0), hi(x0), lo(y0), hi(y0)}, Pixel{lo(rows), hi(rows), lo(cols), hi(cols)}};
}
/// REQUANT with its two extension pixels; `reserved` fills B and A of the second one.
inline std::vector<Pixel> encode_requant(std::uint8_t out, std::uint8_t in, std::int32_t multiplier,
                                         std::uint8_t shift, std::int8_t zero_point,
                                         std::uint8_t reserved = 0) {
    const auto m = std::uint32_t(multiplier);
    return {
        Pixel{std::uint8_t(OP_REQUANT), out, in, 0},
        Pixel{std::uint8_t(m), std::uint8_t(m >> 8), std::uint8_t(m >> 16), std::uint8_t(m >> 24)},
        Pixel{shift, std::uint8_t(zero_point), reserved, reserved}};
}

/// RMSNORM with its extension pixel (shift); `reserved` fills its G, B and A.
inline std::vector<Pixel> encode_rmsnorm(std::uint8_t out, std::uint8_t in, std::uint8_t gain,
                                         std::uint8_t shift, std::uint8_t reserved = 0) {
    return {Pixel{std::uint8_t(OP_RMSNORM), out, in, gain},
            Pixel{shift, reserved, reserved, reserved}};
}
/// ATTEND out, q, cache, where with heads, the score multiplier and shift; `reserved` fills A of
/// the first extension pixel.
inline std::vector<Pixel> encode_attend(std::uint8_t out, std::uint8_t q, std::uint8_t cache,
                                        std::uint8_t where, std::uint8_t heads,
                                        std::uint32_t multiplier, std::uint8_t shift,
                                        std::uint8_t reserved = 0) {
    const std::uint32_t m = multiplier;
    return {
        Pixel{std::uint8_t(OP_ATTEND), out, q, cache}, Pixel{where, heads, shift, reserved},
        Pixel{std::uint8_t(m), std::uint8_t(m >> 8), std::uint8_t(m >> 16), std::uint8_t(m >> 24)}};
}

/// Builds a program pixel by pixel: misuse (a program longer than row 0, an unknown tensor
/// id, a wrong element count) throws std::logic_error, since it is a bug of the caller. Instruction
/// methods append at `pc` and advance it; `tensor` also remembers the declaration so tests can fill
/// and read the tensor by id.
class ProgramWriter {
public:
    ProgramWriter(std::uint32_t width, std::uint32_t height) : image(width, height) {}

    /// Appends one raw pixel to row 0.
    ProgramWriter& pixel(Pixel p) {
        if (pc >= image.width()) throw std::logic_error("program does not fit row 0");
        image.set_pixel(pc++, 0, p);
        return *this;
    }
    /// Appends the pixels of an encoded instruction.
    ProgramWriter& pixels(const std::vector<Pixel>& encoded) {
        for (const Pixel& p : encoded)
            pixel(p);
        return *this;
    }
    /// Appends a one-pixel instruction (opcode, G, B, A).
    ProgramWriter& op(std::uint32_t opcode, std::uint8_t g = 0, std::uint8_t b = 0,
                      std::uint8_t a = 0) {
        return pixels(encode_op(opcode, g, b, a));
    }
    ProgramWriter& halt() { return op(OP_HALT); }
    ProgramWriter& dot_rgb(std::uint8_t row_a, std::uint8_t row_b, std::uint8_t row_out) {
        return op(OP_DOT_RGB, row_a, row_b, row_out);
    }
    /// TENSOR id, dtype at (x0, y0), rows x cols. `reserved` is the A channel (0 when valid).
    ProgramWriter& tensor(std::uint8_t id, std::uint32_t dtype, std::uint32_t x0, std::uint32_t y0,
                          std::uint32_t rows, std::uint32_t cols, std::uint8_t reserved = 0) {
        pixels(encode_tensor(id, dtype, x0, y0, rows, cols, reserved));
        tensors[id] = Tensor{x0, y0, rows, cols, dtype};
        return *this;
    }
    ProgramWriter& dot(std::uint8_t out, std::uint8_t a, std::uint8_t b) {
        return op(OP_DOT, out, a, b);
    }
    ProgramWriter& matmul(std::uint8_t c, std::uint8_t a, std::uint8_t b) {
        return op(OP_MATMUL, c, a, b);
    }
    ProgramWriter& add_bias(std::uint8_t acc, std::uint8_t bias) {
        return op(OP_ADD_BIAS, acc, bias);
    }
    /// REQUANT with its two extension pixels; `reserved` fills B and A of the second one.
    ProgramWriter& requant(std::uint8_t out, std::uint8_t in, std::int32_t multiplier,
                           std::uint8_t shift, std::int8_t zero_point, std::uint8_t reserved = 0) {
        return pixels(encode_requant(out, in, multiplier, shift, zero_point, reserved));
    }
    ProgramWriter& relu(std::uint8_t out, std::uint8_t in) { return op(OP_RELU, out, in); }
    ProgramWriter& argmax(std::uint8_t out, std::uint8_t in) { return op(OP_ARGMAX, out, in); }
    ProgramWriter& gather_mean(std::uint8_t out, std::uint8_t table, std::uint8_t tokens) {
        return op(OP_GATHER_MEAN, out, table, tokens);
    }
    ProgramWriter& embed(std::uint8_t out, std::uint8_t table, std::uint8_t tokens) {
        return op(OP_EMBED, out, table, tokens);
    }
    ProgramWriter& add(std::uint8_t acc, std::uint8_t in) { return op(OP_ADD, acc, in); }
    ProgramWriter& lut(std::uint8_t out, std::uint8_t in, std::uint8_t table) {
        return op(OP_LUT, out, in, table);
    }
    ProgramWriter& rmsnorm(std::uint8_t out, std::uint8_t in, std::uint8_t gain, std::uint8_t shift,
                           std::uint8_t reserved = 0) {
        return pixels(encode_rmsnorm(out, in, gain, shift, reserved));
    }
    ProgramWriter& kvstore(std::uint8_t cache, std::uint8_t rows, std::uint8_t where) {
        return op(OP_KVSTORE, cache, rows, where);
    }
    ProgramWriter& attend(std::uint8_t out, std::uint8_t q, std::uint8_t cache, std::uint8_t where,
                          std::uint8_t heads, std::uint32_t multiplier, std::uint8_t shift,
                          std::uint8_t reserved = 0) {
        return pixels(encode_attend(out, q, cache, where, heads, multiplier, shift, reserved));
    }

    /// The most recent declaration of tensor `id` made through this builder.
    const Tensor& t(std::uint8_t id) const {
        auto it = tensors.find(id);
        if (it == tensors.end()) throw std::logic_error("tensor " + std::to_string(id));
        return it->second;
    }
    /// Stores `values` row-major into tensor `id` (values must fit the dtype).
    ProgramWriter& fill(std::uint8_t id, const std::vector<std::int64_t>& values) {
        const Tensor& d = t(id);
        if (values.size() != std::size_t(d.rows) * d.cols)
            throw std::logic_error("fill: wrong element count");
        for (std::uint32_t r = 0; r < d.rows; ++r)
            for (std::uint32_t c = 0; c < d.cols; ++c)
                store_element(image, d, r, c, values[std::size_t(r) * d.cols + c]);
        return *this;
    }
    /// Reads tensor `id` of `img` (default: this builder's image) row-major.
    std::vector<std::int64_t> read(std::uint8_t id) const { return read(id, image); }
    std::vector<std::int64_t> read(std::uint8_t id, const Image& img) const {
        const Tensor& d = t(id);
        std::vector<std::int64_t> v;
        for (std::uint32_t r = 0; r < d.rows; ++r)
            for (std::uint32_t c = 0; c < d.cols; ++c)
                v.push_back(load_element(img, d, r, c));
        return v;
    }

    Image image;
    std::uint32_t pc = 0; ///< x of the next instruction pixel
    std::map<std::uint8_t, Tensor> tensors;
};

} // namespace px
