// libFuzzer target: the assembler on arbitrary text; whatever assembles must disassemble to text
// that assembles to the identical image (the round trip the disassembler promises).
#include "pxvm/assembler.hpp"
#include "pxvm/disassembler.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto program = px::assemble(text, "fuzz.pxs");
    if (!program) return 0;
    // Large images make the round trip slow without finding more: keep it to small ones.
    if (std::uint64_t(program->image.width()) * program->image.height() > (1u << 16)) return 0;
    const std::string again = px::disassemble(program->image, "fuzz");
    auto reassembled = px::assemble(again, "fuzz-again.pxs");
    if (!reassembled || !(reassembled->image == program->image)) std::abort();
    return 0;
}
