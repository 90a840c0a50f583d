// libFuzzer target: the cartridge manifest's JSON reader (px::manifest_from_json); whatever it
// accepts must survive writing and reading again.
#include "pxvm/cartridge.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view json(reinterpret_cast<const char*>(data), size);
    auto manifest = px::manifest_from_json(json, "fuzz.pxa");
    if (!manifest) return 0;
    if (!px::manifest_from_json(px::manifest_to_json(*manifest), "again.pxa")) std::abort();
    return 0;
}
