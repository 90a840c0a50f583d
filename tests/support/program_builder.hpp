// A tiny in-memory builder of pixel programs for the unit tests: writes instruction pixels into
// row 0 and tensor data through px::store_element, so tests do not depend on the assembler.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pxtest {

using px::Pixel;

/// Builds a program pixel by pixel. Instruction methods append at `pc` and advance it; `tensor`
/// also remembers the declaration so tests can fill and read the tensor by id.
class ProgramBuilder {
public:
    ProgramBuilder(std::uint32_t width, std::uint32_t height) : image(width, height) {}

    /// Appends one raw pixel to row 0.
    ProgramBuilder& pixel(Pixel p) {
        if (pc >= image.width()) throw std::logic_error("program does not fit row 0");
        image.set_pixel(pc++, 0, p);
        return *this;
    }
    /// Appends a one-pixel instruction (opcode, G, B, A).
    ProgramBuilder& op(std::uint32_t opcode, std::uint8_t g = 0, std::uint8_t b = 0,
                       std::uint8_t a = 0) {
        return pixel(Pixel{std::uint8_t(opcode), g, b, a});
    }
    ProgramBuilder& halt() { return op(px::OP_HALT); }
    ProgramBuilder& dot_rgb(std::uint8_t row_a, std::uint8_t row_b, std::uint8_t row_out) {
        return op(px::OP_DOT_RGB, row_a, row_b, row_out);
    }
    /// TENSOR id, dtype at (x0, y0), rows x cols. `reserved` is the A channel (0 when valid).
    ProgramBuilder& tensor(std::uint8_t id, std::uint32_t dtype, std::uint32_t x0, std::uint32_t y0,
                           std::uint32_t rows, std::uint32_t cols, std::uint8_t reserved = 0) {
        op(px::OP_TENSOR, id, std::uint8_t(dtype), reserved);
        pixel(Pixel{lo(x0), hi(x0), lo(y0), hi(y0)});
        pixel(Pixel{lo(rows), hi(rows), lo(cols), hi(cols)});
        tensors[id] = px::Tensor{x0, y0, rows, cols, dtype};
        return *this;
    }
    ProgramBuilder& dot(std::uint8_t out, std::uint8_t a, std::uint8_t b) {
        return op(px::OP_DOT, out, a, b);
    }
    ProgramBuilder& matmul(std::uint8_t c, std::uint8_t a, std::uint8_t b) {
        return op(px::OP_MATMUL, c, a, b);
    }
    ProgramBuilder& add_bias(std::uint8_t acc, std::uint8_t bias) {
        return op(px::OP_ADD_BIAS, acc, bias);
    }
    /// REQUANT with its two extension pixels; `reserved` fills B and A of the second one.
    ProgramBuilder& requant(std::uint8_t out, std::uint8_t in, std::int32_t multiplier,
                            std::uint8_t shift, std::int8_t zero_point, std::uint8_t reserved = 0) {
        const auto m = std::uint32_t(multiplier);
        op(px::OP_REQUANT, out, in);
        pixel(Pixel{std::uint8_t(m), std::uint8_t(m >> 8), std::uint8_t(m >> 16),
                    std::uint8_t(m >> 24)});
        return pixel(Pixel{shift, std::uint8_t(zero_point), reserved, reserved});
    }
    ProgramBuilder& relu(std::uint8_t out, std::uint8_t in) { return op(px::OP_RELU, out, in); }
    ProgramBuilder& argmax(std::uint8_t out, std::uint8_t in) { return op(px::OP_ARGMAX, out, in); }
    ProgramBuilder& gather_mean(std::uint8_t out, std::uint8_t table, std::uint8_t tokens) {
        return op(px::OP_GATHER_MEAN, out, table, tokens);
    }

    /// The most recent declaration of tensor `id` made through this builder.
    const px::Tensor& t(std::uint8_t id) const {
        auto it = tensors.find(id);
        if (it == tensors.end()) throw std::logic_error("tensor " + std::to_string(id));
        return it->second;
    }
    /// Stores `values` row-major into tensor `id` (values must fit the dtype).
    ProgramBuilder& fill(std::uint8_t id, const std::vector<std::int64_t>& values) {
        const px::Tensor& d = t(id);
        if (values.size() != std::size_t(d.rows) * d.cols)
            throw std::logic_error("fill: wrong element count");
        for (std::uint32_t r = 0; r < d.rows; ++r)
            for (std::uint32_t c = 0; c < d.cols; ++c)
                px::store_element(image, d, r, c, values[std::size_t(r) * d.cols + c]);
        return *this;
    }
    /// Reads tensor `id` of `img` (default: this builder's image) row-major.
    std::vector<std::int64_t> read(std::uint8_t id) const { return read(id, image); }
    std::vector<std::int64_t> read(std::uint8_t id, const px::Image& img) const {
        const px::Tensor& d = t(id);
        std::vector<std::int64_t> v;
        for (std::uint32_t r = 0; r < d.rows; ++r)
            for (std::uint32_t c = 0; c < d.cols; ++c)
                v.push_back(px::load_element(img, d, r, c));
        return v;
    }

    px::Image image;
    std::uint32_t pc = 0; ///< x of the next instruction pixel
    std::map<std::uint8_t, px::Tensor> tensors;

private:
    static std::uint8_t lo(std::uint32_t v) { return std::uint8_t(v & 255); }
    static std::uint8_t hi(std::uint32_t v) { return std::uint8_t(v >> 8); }
};

/// A small integer network, values worked out by hand: gather_mean (t3 = (8, 11)) -> requant to i8
/// (t4 = (12, 17)) -> matmul -> add_bias -> relu (t6 = (0, 7, 139)) -> argmax (t8 = 2).
inline ProgramBuilder tiny_network() {
    constexpr std::uint32_t U8 = px::DTYPE_U8, I8 = px::DTYPE_I8, U16 = px::DTYPE_U16,
                            I32 = px::DTYPE_I32;
    ProgramBuilder b(64, 8);
    b.tensor(1, I8, 0, 1, 4, 2)      // embedding table, 4 x 2
        .tensor(2, U8, 0, 5, 1, 4)   // tokens
        .tensor(3, I32, 0, 6, 1, 2)  // pooled
        .tensor(4, I8, 4, 5, 1, 2)   // pooled as i8
        .tensor(5, I8, 8, 5, 3, 2)   // weights, 3 x 2
        .tensor(6, I32, 4, 6, 1, 3)  // logits
        .tensor(7, I32, 8, 1, 1, 3)  // bias
        .tensor(8, U16, 12, 1, 1, 1) // class
        .gather_mean(3, 1, 2)
        .requant(4, 3, 3, 1, 0) // x * 3 / 2, rounded
        .matmul(6, 4, 5)
        .add_bias(6, 7)
        .relu(6, 6)
        .argmax(8, 6)
        .halt();
    b.fill(1, {0, 0, 10, -4, 20, 8, -6, 30});
    b.fill(2, {1, 2, 3, 0});         // sum (24, 34), mean (8, 11.33) -> (8, 11)
    b.fill(5, {1, 1, 2, -1, -1, 3}); // pooled i8 = (12, 17) (8*3/2 = 12, 11*3/2 = 16.5->17)
    b.fill(7, {-30, 0, 100});        // logits (29, 7, 39) + bias = (-1, 7, 139)
    return b;
}

/// The fault pixel a fault with `code` at `pc` writes: (code, pc & 255, pc >> 8, 255).
inline Pixel fault_pixel(std::uint32_t code, std::uint32_t pc) {
    return Pixel{std::uint8_t(code), std::uint8_t(pc & 255), std::uint8_t(pc >> 8), 255};
}

/// `image` with the fault pixel of (code, pc) written: what a faulting run must leave when the
/// instructions before the fault changed nothing.
inline px::Image with_fault_pixel(px::Image image, std::uint32_t code, std::uint32_t pc) {
    image.set_pixel(image.width() - 1, 0, fault_pixel(code, pc));
    return image;
}

} // namespace pxtest
