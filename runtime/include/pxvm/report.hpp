// Human-readable results of a run: what each instruction wrote, read back from the result image.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/result.hpp"

#include <string>
#include <vector>

namespace px {

/// What a step wrote, e.g. "pixel (0, 3) = 300 (R=44 G=1)" for dot_rgb or
/// "t3 i32 1x4 at (0, 5) = [12, -7, 0, 3]" for tensor outputs; empty for steps that write nothing.
/// At most `max_values` values are listed.
std::string describe_step_output(const Step& step, const Image& result, std::size_t max_values = 8);

/// One line per output of the first `executed` steps of a plan, "pc 4 matmul: t3 i32 ...", in
/// program order. An output written again by a later step is listed only at its last writer, so
/// every value shown is what that instruction wrote.
std::vector<std::string> describe_outputs(const Plan& plan, std::uint32_t executed,
                                          const Image& result, std::size_t max_values = 8);

/// The whole of tensor `id` as the first `executed` steps of a plan last declared it, read from
/// `image`: a heading "t3 i32 4x4 at (10, 6)" and one line per row, "  row 0: 12 -7 0 3" (pxrun
/// --print). An error when those steps never declare it.
Result<std::vector<std::string>> describe_tensor(const Plan& plan, std::uint32_t executed,
                                                 const Image& image, std::uint32_t id);

/// A picture of where two images of one size differ: differing pixels red, the others a dim grey
/// of `expected` (pxrun --save-reference).
Image difference_image(const Image& expected, const Image& actual);

} // namespace px
