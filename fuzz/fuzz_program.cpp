// libFuzzer target: the decoder, the static checks, the reference interpreter and the verifier on
// arbitrary images. Input: width (1 + byte 0 % 64), height (1 + byte 1 % 32), then the pixels
// (missing ones are 0). Programs whose work the plan says is large are only planned, not run (a
// fuzzer finds nothing in a million multiply-adds that it would not find in a thousand). The
// reference's run and the verifier's step-by-step replay must agree.
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/verification.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

// Multiply-adds (or elements) a plan's steps touch, roughly.
std::uint64_t work(const px::Plan& plan) {
    std::uint64_t total = 0;
    for (const px::Step& s : plan.steps) {
        const auto& t = s.operands;
        std::uint64_t w = 0;
        for (const px::Tensor& x : t)
            w = std::max<std::uint64_t>(w, std::uint64_t(x.rows) * x.cols);
        if (s.instruction.opcode == px::OP_MATMUL)
            w = std::uint64_t(t[0].rows) * t[0].cols * t[1].cols;
        total += w + 1;
    }
    return total;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint32_t width = 1 + data[0] % 64, height = 1 + data[1] % 32;
    px::Image image(width, height);
    std::memcpy(image.data(), data + 2, std::min<std::size_t>(size - 2, image.size_bytes()));
    const px::Plan plan = px::plan_program(image);
    if (work(plan) > 200000) return 0;
    px::Image result = image;
    const px::RunOutcome outcome = px::run_reference(result);
    const px::RunStatus status{outcome.fault.code, outcome.fault.pc, outcome.executed,
                               outcome.halted ? 1u : 0u};
    const px::Verification v = px::verify_against_reference(image, result, status);
    if (!v.matches()) std::abort();
    return 0;
}
