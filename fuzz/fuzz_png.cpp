// libFuzzer target: the .pxi loader (px::decode_png, libspng with pxVM's limits) on arbitrary
// bytes. It must return an image within the protocol's limits or an error, never crash or leak.
#include "pxvm/image.hpp"

#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto image = px::decode_png(std::span(data, size), "fuzz.pxi");
    if (image && !px::check_dimensions(image->width(), image->height())) std::abort();
    return 0;
}
