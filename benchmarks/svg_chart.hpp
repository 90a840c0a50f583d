// `pxbench compare --svg`: a standalone SVG 1.1 bar chart of the compared runs' throughput, one bar
// group per workload and one bar per run, in a TOPS panel (matmul) and a GB/s panel (the rest).
#pragma once

#include "compare.hpp"

#include <string>
#include <vector>

namespace px::bench {

/// The SVG chart of a comparison (its runs' best results, as in format_table).
std::string render_svg(const Comparison& comparison);
/// The SVG chart text for the same files as compare_files, or an error naming the file.
Result<std::string> svg_chart(const std::vector<std::string>& paths);

} // namespace px::bench
