// Formats the outputs of executed steps for pxrun and the tests' failure messages.
#include "pxvm/report.hpp"

namespace px {

std::string describe_step_output(const Step& step, const Image& result, std::size_t max_values) {
    const Instruction& ins = step.instruction;
    if (ins.opcode == OP_DOT_RGB) {
        const Pixel p = result.pixel(0, ins.args[2]);
        return "pixel (0, " + std::to_string(ins.args[2]) +
               ") = " + std::to_string(p.r | p.g << 8) + " (R=" + std::to_string(p.r) +
               " G=" + std::to_string(p.g) + ")";
    }
    if (ins.opcode == OP_TENSOR || ins.opcode == OP_HALT) return {};
    // Every tensor instruction writes its first operand.
    const Tensor& out = step.operands[0];
    std::string text = "t" + std::to_string(ins.args[0]) + " " +
                       std::string(dtype_name(out.dtype)) + " " + std::to_string(out.rows) + "x" +
                       std::to_string(out.cols) + " at (" + std::to_string(out.x) + ", " +
                       std::to_string(out.y) + ") = [";
    const std::uint64_t total = std::uint64_t(out.rows) * out.cols;
    for (std::uint64_t i = 0; i < total && i < max_values; ++i)
        text +=
            (i ? ", " : "") + std::to_string(load_element(result, out, std::uint32_t(i / out.cols),
                                                          std::uint32_t(i % out.cols)));
    if (total > max_values) text += ", ... " + std::to_string(total - max_values) + " more";
    return text + "]";
}

} // namespace px
