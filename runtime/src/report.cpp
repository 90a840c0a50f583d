// Formats the outputs of executed steps for pxrun and the tests' failure messages.
#include "pxvm/report.hpp"

#include <optional>

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

std::vector<std::string> describe_outputs(const Plan& plan, std::uint32_t executed,
                                          const Image& result, std::size_t max_values) {
    const auto meets = [](const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
        for (const Tensor& x : a)
            for (const Tensor& y : b)
                if (x.overlaps(y)) return true;
        return false;
    };
    std::vector<std::string> lines;
    for (std::uint32_t i = 0; i < executed && i < plan.steps.size(); ++i) {
        const std::vector<Tensor> regions = written_regions(plan.steps[i]);
        if (regions.empty()) continue;
        bool overwritten = false;
        for (std::uint32_t j = i + 1; j < executed && j < plan.steps.size() && !overwritten; ++j)
            overwritten = meets(written_regions(plan.steps[j]), regions);
        if (overwritten) continue;
        const Instruction& ins = plan.steps[i].instruction;
        lines.push_back("pc " + std::to_string(ins.pc) + " " +
                        std::string(opcode_name(ins.opcode)) + ": " +
                        describe_step_output(plan.steps[i], result, max_values));
    }
    return lines;
}

Result<std::vector<std::string>> describe_tensor(const Plan& plan, std::uint32_t executed,
                                                 const Image& image, std::uint32_t id) {
    std::optional<Tensor> tensor;
    for (std::uint32_t i = 0; i < executed && i < plan.steps.size(); ++i)
        if (const Instruction& ins = plan.steps[i].instruction;
            ins.opcode == OP_TENSOR && ins.args[0] == id)
            tensor = ins.declared();
    if (!tensor)
        return Error{ErrorCode::invalid_input,
                     "tensor " + std::to_string(id) + " is not declared by the " +
                         std::to_string(executed) + " instructions that ran"};
    const Tensor& t = *tensor;
    std::vector<std::string> lines = {
        "t" + std::to_string(id) + " " + std::string(dtype_name(t.dtype)) + " " +
        std::to_string(t.rows) + "x" + std::to_string(t.cols) + " at (" + std::to_string(t.x) +
        ", " + std::to_string(t.y) + ")"};
    for (std::uint32_t r = 0; r < t.rows; ++r) {
        std::string line = "  row " + std::to_string(r) + ":";
        for (std::uint32_t c = 0; c < t.cols; ++c)
            line += " " + std::to_string(load_element(image, t, r, c));
        lines.push_back(std::move(line));
    }
    return lines;
}

Image difference_image(const Image& expected, const Image& actual) {
    Image out(expected.width(), expected.height());
    for (std::uint32_t y = 0; y < expected.height(); ++y)
        for (std::uint32_t x = 0; x < expected.width(); ++x) {
            const Pixel e = expected.pixel(x, y);
            const bool same = x < actual.width() && y < actual.height() && actual.pixel(x, y) == e;
            const auto grey = std::uint8_t((e.r + e.g + e.b) / 12 + 16);
            out.set_pixel(x, y, same ? Pixel{grey, grey, grey, 255} : Pixel{255, 0, 0, 255});
        }
    return out;
}

} // namespace px
