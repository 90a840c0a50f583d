// Human-readable results of a run: what each instruction wrote, read back from the result image.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"

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

} // namespace px
