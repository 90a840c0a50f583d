// libFuzzer target: the decoder, the static checks, the reference interpreter and the verifier on
// arbitrary images. Input: width (1 + byte 0 % 64), height (1 + byte 1 % 32), then the pixels
// (missing ones are 0). Programs past a small work budget are refused by the reference before they
// run (a fuzzer finds nothing in a million multiply-adds that it would not find in a thousand).
// Row 0 must not change but for the fault pixel, and the reference's run and the verifier's
// step-by-step replay must agree.
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/verification.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint32_t width = 1 + data[0] % 64, height = 1 + data[1] % 32;
    px::Image image(width, height);
    std::memcpy(image.data(), data + 2, std::min<std::size_t>(size - 2, image.size_bytes()));
    // The work budget keeps large programs to planning (and checks it refuses them cleanly).
    px::ReferenceLimits limits;
    limits.max_work = 200000;
    px::Image result = image;
    const auto ran = px::run_reference(result, limits);
    if (!ran) {
        if (!(result == image)) std::abort(); // refused before it ran: nothing changed
        return 0;
    }
    const px::RunOutcome outcome = *ran;
    // Row 0 never changes but for the fault pixel (a fault there replaces an instruction that
    // never runs, or the faulting one).
    for (std::uint32_t x = 0; x + 1 < width; ++x)
        if (!(result.pixel(x, 0) == image.pixel(x, 0))) std::abort();
    const px::RunStatus status{outcome.fault.code, outcome.fault.pc, outcome.executed,
                               outcome.halted ? 1u : 0u};
    const px::Verification v = px::verify_against_reference(image, result, status);
    if (!v.matches()) std::abort();
    return 0;
}
