// Programs for the tests, built in memory with the library's encoder (px::ProgramWriter), so tests
// do not depend on the assembler; and the hand-computed tiny network several tests share.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/program_writer.hpp"
#include "pxvm/protocol.hpp"

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pxtest {

using px::Pixel;

/// The library's instruction encoder: tests build programs with it like every tool does.
using px::ProgramWriter;

/// A small integer network, values worked out by hand: gather_mean (t3 = (8, 11)) -> requant to i8
/// (t4 = (12, 17)) -> matmul -> add_bias -> relu (t6 = (0, 7, 139)) -> argmax (t8 = 2).
inline ProgramWriter tiny_network() {
    constexpr std::uint32_t U8 = px::DTYPE_U8, I8 = px::DTYPE_I8, U16 = px::DTYPE_U16,
                            I32 = px::DTYPE_I32;
    ProgramWriter b(64, 8);
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
