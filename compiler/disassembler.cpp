// The disassembler (image -> .pxs text that assembles back to the identical image) and the
// zoomed-in picture renderer behind `pxc render`. Row 0 is read only through
// px::decode_instruction, so the text shows exactly what every executor sees.
#include "pxvm/disassembler.hpp"

#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

namespace px {
namespace {

constexpr std::size_t comment_column = 40;
constexpr std::uint32_t rgba_pixels_per_line = 8;
constexpr std::uint32_t red_pixels_per_line = 32;
constexpr std::uint32_t min_values_scale = 24;

std::string t(std::uint8_t id) {
    return "t" + std::to_string(id);
}

bool is_zero(Pixel p) {
    return p == Pixel{};
}

bool red_only(Pixel p) {
    return p.g == 0 && p.b == 0 && p.a == 0;
}

// The text of a cleanly decoded instruction, or nothing when the assembler could not reproduce its
// pixels from a mnemonic line (HALT with arguments, an unknown dtype code, a shift above 62).
std::optional<std::string> instruction_text(const Instruction& ins) {
    const auto n = [](auto v) { return std::to_string(v); };
    const auto& a = ins.args;
    switch (ins.opcode) {
    case OP_HALT:
        if (a[0] || a[1] || a[2]) return std::nullopt;
        return "halt";
    case OP_DOT_RGB:
        return "dot_rgb " + n(a[0]) + ", " + n(a[1]) + ", " + n(a[2]);
    case OP_TENSOR: {
        const Tensor d = ins.declared();
        const auto dtype = dtype_name(d.dtype);
        if (dtype.empty()) return std::nullopt;
        return "tensor " + t(a[0]) + ", " + std::string(dtype) + ", " + n(d.x) + ", " + n(d.y) +
               ", " + n(d.rows) + ", " + n(d.cols);
    }
    case OP_REQUANT:
        if (ins.shift() > MAX_REQUANT_SHIFT) return std::nullopt;
        return "requant " + t(a[0]) + ", " + t(a[1]) + ", " + n(ins.multiplier()) + ", " +
               n(ins.shift()) + ", " + n(ins.zero_point());
    default: { // a tensor instruction of the table: its operands, then its immediates
        const InstructionInfo* info = instruction_info(ins.opcode);
        if (!info) return std::nullopt;
        std::string text(info->name);
        for (std::uint32_t i = 0; i < info->arity; ++i)
            text += (i ? ", " : " ") + t(std::uint8_t(ins.operand_id(i)));
        if (ins.opcode == OP_RMSNORM) {
            if (ins.norm_shift() > MAX_REQUANT_SHIFT) return std::nullopt;
            text += ", " + n(ins.norm_shift());
        }
        if (ins.opcode == OP_ATTEND) {
            if (ins.heads() == 0 || ins.score_shift() > MAX_REQUANT_SHIFT) return std::nullopt;
            text += ", " + n(ins.heads()) + ", " + n(ins.score_multiplier()) + ", " +
                    n(ins.score_shift());
        }
        return text;
    }
    }
}

std::string range(std::uint64_t first, std::uint64_t last) {
    return first == last ? std::to_string(first)
                         : std::to_string(first) + "-" + std::to_string(last);
}

// "; pc 3-5: i8 4x16 at pixels x 0-3, y 1-4".
std::string instruction_comment(const Instruction& ins) {
    std::string text = "; pc " + range(ins.pc, ins.pc + ins.length - 1);
    if (ins.opcode == OP_TENSOR) {
        const Tensor d = ins.declared();
        text += ": " + std::string(dtype_name(d.dtype)) + " " + std::to_string(d.rows) + "x" +
                std::to_string(d.cols);
        if (d.rows == 0 || d.cols == 0)
            text += ", empty";
        else
            text += " at pixels x " + range(d.x, std::uint64_t(d.x) + d.pixel_width() - 1) +
                    ", y " + range(d.y, std::uint64_t(d.y) + d.rows - 1);
    }
    return text;
}

void emit_commented(std::ostream& out, const std::string& code, const std::string& comment) {
    out << code;
    if (code.size() < comment_column)
        out << std::string(comment_column - code.size(), ' ');
    else
        out << "  ";
    out << comment << "\n";
}

// The pixels of row y from x = first on that differ from `written` (what the text so far
// writes: zeros, or typed .data), as .red / .rgba lines of consecutive pixels.
void emit_runs(std::ostream& out, const Image& image, std::uint32_t y, std::uint32_t first,
               const Image& written) {
    std::uint32_t x = first;
    const std::uint32_t w = image.width();
    const auto listed = [&](std::uint32_t i) { return image.pixel(i, y) != written.pixel(i, y); };
    while (x < w) {
        if (!listed(x)) {
            ++x;
            continue;
        }
        // A run of listed pixels that are all red-only (or none of them), cut to a line's length.
        const bool red = red_only(image.pixel(x, y));
        const std::uint32_t limit = red ? red_pixels_per_line : rgba_pixels_per_line;
        std::uint32_t end = x;
        while (end < w && end - x < limit && listed(end) && red_only(image.pixel(end, y)) == red)
            ++end;
        out << (red ? ".red " : ".rgba ") << x << " " << y << (red ? " " : "");
        for (std::uint32_t i = x; i < end; ++i) {
            const Pixel p = image.pixel(i, y);
            if (red)
                out << " " << int(p.r);
            else
                out << "  " << int(p.r) << " " << int(p.g) << " " << int(p.b) << " " << int(p.a);
        }
        out << "\n";
        x = end;
    }
}

bool row_matches(const Image& image, std::uint32_t y, std::uint32_t first, const Image& written) {
    for (std::uint32_t x = first; x < image.width(); ++x)
        if (image.pixel(x, y) != written.pixel(x, y)) return false;
    return true;
}

// A 3x5 pixel font for the digits 0-9, one 3-bit row pattern per line (bit 2 = left column).
constexpr std::uint8_t digit_font[10][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

// Writes R, G, B and A as four right-aligned lines of digits into the block whose top-left pixel
// is (bx, by), light on dark pixels and dark on light ones.
void label_block(Image& picture, Pixel p, std::uint32_t bx, std::uint32_t by, std::uint32_t scale) {
    const std::uint32_t luma = (299 * p.r + 587 * p.g + 114 * p.b) / 1000;
    const Pixel ink = luma < 128 ? Pixel{230, 230, 230, 255} : Pixel{16, 16, 16, 255};
    const std::uint32_t text_width = 11, text_height = 23; // 3 digits, 4 lines, 1-pixel gaps
    const std::uint32_t x0 = bx + (scale - text_width) / 2, y0 = by + (scale - text_height) / 2;
    const std::uint8_t values[4] = {p.r, p.g, p.b, p.a};
    for (std::uint32_t line = 0; line < 4; ++line) {
        std::uint32_t v = values[line];
        for (std::uint32_t position = 3; position-- > 0;) {
            const std::uint32_t digit = v % 10;
            for (std::uint32_t row = 0; row < 5; ++row)
                for (std::uint32_t col = 0; col < 3; ++col)
                    if (digit_font[digit][row] >> (2 - col) & 1)
                        picture.set_pixel(x0 + 4 * position + col, y0 + 6 * line + row, ink);
            v /= 10;
            if (v == 0) break;
        }
    }
}

// Draws `text` (digits) in the 3x5 font magnified `zoom` times at (x0, y0) on a dark box, clipped
// to the picture.
void draw_number(Image& picture, std::uint32_t value, std::uint32_t x0, std::uint32_t y0,
                 std::uint32_t zoom, Pixel ink) {
    const std::string text = std::to_string(value);
    const std::uint32_t w = (4 * std::uint32_t(text.size()) + 1) * zoom, h = 7 * zoom;
    auto put = [&](std::uint64_t x, std::uint64_t y, Pixel p) {
        if (x < picture.width() && y < picture.height())
            picture.set_pixel(std::uint32_t(x), std::uint32_t(y), p);
    };
    for (std::uint32_t y = 0; y < h; ++y)
        for (std::uint32_t x = 0; x < w; ++x)
            put(std::uint64_t(x0) + x, std::uint64_t(y0) + y, Pixel{0, 0, 0, 255});
    for (std::size_t i = 0; i < text.size(); ++i)
        for (std::uint32_t row = 0; row < 5; ++row)
            for (std::uint32_t col = 0; col < 3; ++col)
                if (digit_font[text[i] - '0'][row] >> (2 - col) & 1)
                    for (std::uint32_t dy = 0; dy < zoom; ++dy)
                        for (std::uint32_t dx = 0; dx < zoom; ++dx)
                            put(std::uint64_t(x0) + (1 + 4 * i + col) * zoom + dx,
                                std::uint64_t(y0) + (1 + row) * zoom + dy, ink);
}

} // namespace

std::string disassemble(const Image& image, std::string_view name) {
    std::ostringstream out;
    disassemble(image, name, out);
    return out.str();
}

void disassemble(const Image& image, std::string_view name, std::ostream& out) {
    const std::uint32_t w = image.width(), h = image.height();
    out << "; " << (name.empty() ? std::string("pixel program") : std::string(name)) << ": " << w
        << "x" << h << " pixels, disassembled by pxc\n"
        << "; assembling this text ('pxc asm') gives the identical image, byte for byte\n";
    out << ".image " << w << " " << h << "\n";
    if (w == 0 || h == 0) return;

    const Plan plan = plan_program(image);
    const auto fault_comment = [&](std::uint32_t pc) {
        if (plan.fault && plan.fault.pc == pc) out << "; " << describe(plan.fault, image) << "\n";
    };

    out << "\n; row 0: instructions\n";
    std::uint32_t pc = 0;
    bool halted = false;
    std::map<std::uint8_t, Tensor> declared; // each id's last declaration, as .data sees it
    while (pc < w && !halted) {
        const Decoded d = decode_instruction(image, pc);
        if (d.fault) break;
        const auto text = instruction_text(d.instruction);
        if (!text) break;
        fault_comment(pc);
        emit_commented(out, *text, instruction_comment(d.instruction));
        if (d.instruction.opcode == OP_TENSOR)
            declared[d.instruction.args[0]] = d.instruction.declared();
        pc += d.instruction.length;
        halted = d.instruction.opcode == OP_HALT;
    }
    Image written(w, h); // what the text writes so far, besides row 0's instructions
    if (!row_matches(image, 0, pc, written)) {
        fault_comment(pc);
        out << "; row 0 from pc " << pc << " as raw pixels: "
            << (halted ? "after halt, never executed"
                       : "not an instruction the assembler writes as a mnemonic")
            << "\n";
        // The fault pixel: a fault of a run writes (code, pc & 255, pc >> 8, 255) there.
        const Pixel last = image.pixel(w - 1, 0);
        if (pc < w && !is_zero(last)) {
            const std::string code = std::string(fault_name(last.r));
            out << "; pixel (" << w - 1 << ", 0) is the fault pixel"
                << (last.a == 255 && !code.empty()
                        ? ": it records fault " + code + " at pc " +
                              std::to_string(last.g | last.b << 8) + " of an earlier run"
                        : "")
                << "\n";
        }
        emit_runs(out, image, 0, pc, written);
    }

    // Every declared tensor inside rows 1 and below, as typed values; then whatever else differs
    // (padding bytes, pixels no tensor covers) as raw pixels, so the image is reproduced exactly.
    bool typed_header = false;
    for (const auto& [id, tensor] : declared) {
        if (tensor.rows == 0 || tensor.cols == 0 || tensor.y == 0 ||
            std::uint64_t(tensor.x) + tensor.pixel_width() > w ||
            std::uint64_t(tensor.y) + tensor.rows > h)
            continue;
        // The values stream out as they are read: a listing can be far larger than the image.
        bool any = false;
        for (std::uint32_t r = 0; r < tensor.rows && !any; ++r)
            for (std::uint32_t c = 0; c < tensor.cols && !any; ++c)
                any = load_element(image, tensor, r, c) != 0;
        if (any) {
            if (!typed_header) out << "\n; tensors as typed values (row-major)\n";
            typed_header = true;
            out << "; " << t(id) << " " << dtype_name(tensor.dtype) << " " << tensor.rows << "x"
                << tensor.cols << " at (" << tensor.x << ", " << tensor.y << ")\n";
            out << ".data " << t(id);
        }
        for (std::uint32_t r = 0; r < tensor.rows; ++r)
            for (std::uint32_t c = 0; c < tensor.cols; ++c) {
                const std::int64_t v = load_element(image, tensor, r, c);
                if (any) out << " " << v;
                store_element(written, tensor, r, c, v);
            }
        if (any) out << "\n";
    }
    bool data_header = false;
    for (std::uint32_t y = 1; y < h; ++y) {
        if (row_matches(image, y, 0, written)) continue;
        if (!data_header)
            out << "\n; " << (typed_header ? "other " : "") << "data pixels (pixels not listed are "
                << (typed_header ? "as above, else " : "") << "0 0 0 0)\n";
        data_header = true;
        emit_runs(out, image, y, 0, written);
    }
}

Result<Image> render_picture(const Image& image, const RenderOptions& options) {
    if (options.scale < 1 || options.scale > 256)
        return Error{ErrorCode::invalid_input,
                     "scale " + std::to_string(options.scale) + " is out of range (1 ... 256)"};
    if (options.values && options.scale < min_values_scale)
        return Error{ErrorCode::invalid_input,
                     "printing the channel values needs scale " + std::to_string(min_values_scale) +
                         " or more, not " + std::to_string(options.scale)};
    const std::uint64_t cell = options.scale + 1;
    const std::uint64_t width = image.width() * cell + 1, height = image.height() * cell + 1;
    if (auto dims = check_dimensions(width, height); !dims)
        return Error{ErrorCode::invalid_input,
                     "a " + std::to_string(image.width()) + "x" + std::to_string(image.height()) +
                         " image at scale " + std::to_string(options.scale) +
                         " would need a picture larger than the PNG limits (" +
                         dims.error().message + "); use a smaller scale"};
    Image picture{std::uint32_t(width), std::uint32_t(height)};
    for (std::uint32_t cy = 0; cy < picture.height(); ++cy)
        for (std::uint32_t cx = 0; cx < picture.width(); ++cx) {
            Pixel p = options.grid;
            if (cx % cell != 0 && cy % cell != 0) {
                p = image.pixel(std::uint32_t(cx / cell), std::uint32_t(cy / cell));
                p.a = 255;
            }
            picture.set_pixel(cx, cy, p);
        }
    if (options.values)
        for (std::uint32_t y = 0; y < image.height(); ++y)
            for (std::uint32_t x = 0; x < image.width(); ++x)
                if (!is_zero(image.pixel(x, y)))
                    label_block(picture, image.pixel(x, y), std::uint32_t(x * cell + 1),
                                std::uint32_t(y * cell + 1), options.scale);
    // Region outlines: two picture pixels wide on the grid lines around the region's blocks.
    const std::uint32_t zoom = std::max<std::uint32_t>(2, options.scale / 4);
    for (const RenderRegion& r : options.regions) {
        const std::uint64_t x0 = r.x * cell, y0 = r.y * cell;
        const std::uint64_t x1 =
            std::min<std::uint64_t>(picture.width() - 1, (r.x + r.width) * cell);
        const std::uint64_t y1 =
            std::min<std::uint64_t>(picture.height() - 1, (r.y + r.height) * cell);
        for (std::uint64_t x = x0; x <= x1; ++x)
            for (std::uint64_t t = 0; t < 2; ++t) {
                picture.set_pixel(std::uint32_t(x), std::uint32_t(std::min(y0 + t, y1)), r.colour);
                picture.set_pixel(std::uint32_t(x), std::uint32_t(y1 - std::min(t, y1 - y0)),
                                  r.colour);
            }
        for (std::uint64_t y = y0; y <= y1; ++y)
            for (std::uint64_t t = 0; t < 2; ++t) {
                picture.set_pixel(std::uint32_t(std::min(x0 + t, x1)), std::uint32_t(y), r.colour);
                picture.set_pixel(std::uint32_t(x1 - std::min(t, x1 - x0)), std::uint32_t(y),
                                  r.colour);
            }
        draw_number(picture, r.label, std::uint32_t(x0 + 3), std::uint32_t(y0 + 3), zoom, r.colour);
    }
    return picture;
}

} // namespace px
