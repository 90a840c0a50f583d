// Views of a program image for people: the disassembler (image -> .pxs text that assembles back to
// the identical image) and a zoomed-in picture of the pixels.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/result.hpp"

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace px {

/// Disassembles any image, valid program or not, into .pxs text. Assembling the text gives the
/// identical image, byte for byte. Row 0 is read with px::decode_instruction from pc 0: clean
/// instructions up to HALT become mnemonic lines, everything else (the rest of row 0 and every
/// non-zero data pixel) becomes .red / .rgba lines. Comments give each instruction's pc, each
/// tensor's pixel rectangle and the static checker's fault, if any. `name` (e.g. the .pxi path)
/// appears in the header comment when not empty.
std::string disassemble(const Image& image, std::string_view name = {});
/// The same, written to `out` as it is made (pxc disasm): the text of a large image can be many
/// times its size.
void disassemble(const Image& image, std::string_view name, std::ostream& out);

/// How render_picture draws an image.
/// A rectangle of the image (pixels) to outline in the picture, with a number drawn in its
/// top-left corner (a cartridge's regions: the tensor id).
struct RenderRegion {
    std::uint32_t x = 0, y = 0, width = 0, height = 0;
    std::uint32_t label = 0;
    Pixel colour{255, 255, 255, 255};
};

struct RenderOptions {
    std::uint32_t scale = 16;    ///< each pixel becomes a scale x scale block (1 ... 256)
    Pixel grid{48, 48, 48, 255}; ///< colour of the 1-pixel lines between (and around) the blocks
    /// Also print each non-zero pixel's R, G, B, A values as four lines of small digits in its
    /// block (needs scale >= 24). Useful where the colours are too dark to read, e.g. data 1
    /// ... 40.
    bool values = false;
    /// Outlined and numbered on top of the blocks, in order.
    std::vector<RenderRegion> regions;
};

/// A zoomed-in, fully opaque picture of `image`: pixel (x, y) becomes a scale x scale block of
/// its R, G, B with alpha forced to 255 (so data pixels whose A is 0 stay visible), blocks are
/// separated and framed by 1-pixel grid lines; with options.values, non-zero pixels also show their
/// channel values. The picture is (W·(scale+1)+1) x (H·(scale+1)+1);
/// an error says so when that exceeds the PNG limits of px::check_dimensions.
Result<Image> render_picture(const Image& image, const RenderOptions& options = {});

} // namespace px
