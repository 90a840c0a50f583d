// Human-readable results of a run: what each instruction wrote, read back from the result image.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/program.hpp"

#include <string>

namespace px {

/// What a step wrote, e.g. "pixel (0, 3) = 300 (R=44 G=1)" for dot_rgb or
/// "t3 i32 1x4 at (0, 5) = [12, -7, 0, 3]" for tensor outputs; empty for steps that write nothing.
/// At most `max_values` values are listed.
std::string describe_step_output(const Step& step, const Image& result, std::size_t max_values = 8);

} // namespace px
