// The .pxs assembler (docs/ASSEMBLY.md): parses one statement a line, encodes instructions into
// row 0 through the protocol tables of pxvm/protocol.hpp, writes data directives into the image,
// then runs the static checker to turn a predictable fault into a warning.
#include "pxvm/assembler.hpp"

#include "pxvm/program.hpp"
#include "pxvm/program_writer.hpp"
#include "pxvm/protocol.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>

namespace px {

std::uint32_t AssembledProgram::line_of_pc(std::uint32_t pc) const {
    for (const SourceInstruction& ins : instructions)
        if (pc >= ins.pc && pc - ins.pc < ins.length) return ins.line;
    return 0;
}

namespace {

constexpr std::string_view whitespace = " \t\r\f\v";

std::string_view trim(std::string_view s) {
    const auto begin = s.find_first_not_of(whitespace);
    if (begin == std::string_view::npos) return {};
    const auto end = s.find_last_not_of(whitespace);
    return s.substr(begin, end - begin + 1);
}

std::string in_quotes(std::string_view s) {
    return "'" + std::string(s) + "'";
}

// Splits on whitespace and commas (data directives, where commas are optional).
std::vector<std::string_view> split_words(std::string_view s) {
    std::vector<std::string_view> words;
    constexpr std::string_view separators = " \t\r\f\v,";
    std::size_t i = 0;
    while (true) {
        i = s.find_first_not_of(separators, i);
        if (i == std::string_view::npos) break;
        std::size_t end = s.find_first_of(separators, i);
        if (end == std::string_view::npos) end = s.size();
        words.push_back(s.substr(i, end - i));
        i = end;
    }
    return words;
}

// Levenshtein distance, for "did you mean" hints.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string to_lower(std::string_view s) {
    std::string lower(s);
    for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return lower;
}

// " (did you mean 'x'?)" for the closest candidate, or "" when none is close.
std::string suggestion(std::string_view word, const std::vector<std::string>& candidates) {
    const std::string lower = to_lower(word);
    std::string best;
    std::size_t best_distance = 3; // suggest only within 2 edits
    for (const std::string& c : candidates) {
        const std::size_t d = c == lower ? 0 : edit_distance(lower, c);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    if (best.empty()) return {};
    if (best == lower) return " (mnemonics and names are lowercase: " + in_quotes(best) + ")";
    return " (did you mean " + in_quotes(best) + "?)";
}

std::vector<std::string> mnemonics() {
    std::vector<std::string> names;
    for (std::uint32_t op = 0; op < 256; ++op)
        if (const auto name = opcode_name(op); !name.empty()) names.emplace_back(name);
    return names;
}

std::vector<std::string> dtype_names() {
    std::vector<std::string> names;
    for (std::uint32_t d = 0; d < 256; ++d)
        if (const auto name = dtype_name(d); !name.empty()) names.emplace_back(name);
    return names;
}

std::string all_of(const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& n : names)
        text += (text.empty() ? "" : ", ") + n;
    return text;
}

// Parses a decimal (or 0x hexadecimal) integer, optionally signed, in [lo, hi]. `what` names the
// operand in messages.
Result<std::int64_t> parse_number(std::string_view word, std::int64_t lo, std::int64_t hi,
                                  const std::string& what) {
    std::string_view digits = word;
    bool negative = false;
    if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
        negative = digits[0] == '-';
        digits.remove_prefix(1);
    }
    int base = 10;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
        base = 16;
        digits.remove_prefix(2);
    }
    const auto not_a_number = [&] {
        return Error{ErrorCode::invalid_input, what + ": " + in_quotes(word) + " is not a number"};
    };
    if (digits.empty()) return not_a_number();
    std::int64_t magnitude = 0;
    bool huge = false;
    for (char c : digits) {
        int digit = -1;
        if (c >= '0' && c <= '9') digit = c - '0';
        if (base == 16 && c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        if (base == 16 && c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        if (digit < 0) return not_a_number();
        if (magnitude > (std::int64_t(1) << 40))
            huge = true;
        else
            magnitude = magnitude * base + digit;
    }
    const std::int64_t value = negative ? -magnitude : magnitude;
    if (huge || value < lo || value > hi)
        return Error{ErrorCode::invalid_input, what + ": " + std::string(word) +
                                                   " is out of range (" + std::to_string(lo) +
                                                   " ... " + std::to_string(hi) + ")"};
    return value;
}

// "t0" ... "t255".
Result<std::uint8_t> parse_tensor_id(std::string_view word, const std::string& what) {
    if (word.size() < 2 || word[0] != 't' || word[1] < '0' || word[1] > '9')
        return Error{ErrorCode::invalid_input,
                     what + ": expected a tensor like t3, got " + in_quotes(word)};
    const std::string_view digits = word.substr(1);
    if (digits.find_first_not_of("0123456789") != std::string_view::npos)
        return Error{ErrorCode::invalid_input,
                     what + ": expected a tensor like t3, got " + in_quotes(word)};
    if (digits.size() > 3 || std::stoi(std::string(digits)) > 255)
        return Error{ErrorCode::invalid_input, what + ": tensor " + std::string(word) +
                                                   " is out of range (tensor ids are t0 ... t255)"};
    return std::uint8_t(std::stoi(std::string(digits)));
}

// The kinds of instruction operands.
enum class Operand { Row, Tensor, Dtype, U16, I32, U32, Shift, I8, Heads };

struct Signature {
    std::vector<std::pair<Operand, std::string_view>> operands;
};

// Operand lists of every mnemonic (docs/ASSEMBLY.md): the instruction table's tensor operands,
// then the immediates of the instructions that have them; encoding follows docs/PROTOCOL.md
// section 4 (program_writer.hpp).
Signature signature(std::uint32_t opcode) {
    using enum Operand;
    const InstructionInfo& info = *instruction_info(opcode);
    Signature sig;
    for (std::uint32_t i = 0; i < info.arity; ++i)
        sig.operands.push_back({Tensor, info.roles[i]});
    switch (opcode) {
    case OP_DOT_RGB:
        sig.operands = {{Row, "rowA"}, {Row, "rowB"}, {Row, "rowOut"}};
        break;
    case OP_TENSOR:
        sig.operands = {{Tensor, "id"}, {Dtype, "dtype"}, {U16, "x0"},
                        {U16, "y0"},    {U16, "rows"},    {U16, "cols"}};
        break;
    case OP_REQUANT:
        sig.operands.insert(sig.operands.end(),
                            {{I32, "multiplier"}, {Shift, "shift"}, {I8, "zero_point"}});
        break;
    case OP_RMSNORM:
        sig.operands.push_back({Shift, "shift"});
        break;
    case OP_ATTEND:
        sig.operands.insert(sig.operands.end(),
                            {{Heads, "heads"}, {U32, "multiplier"}, {Shift, "shift"}});
        break;
    default:
        break;
    }
    return sig;
}

std::string usage(std::string_view mnemonic, const Signature& sig) {
    std::string text(mnemonic);
    for (std::size_t i = 0; i < sig.operands.size(); ++i)
        text += std::string(i ? ", " : " ") + std::string(sig.operands[i].second);
    return text;
}

class Assembler {
public:
    explicit Assembler(std::string name) : name_(std::move(name)) {}

    Result<AssembledProgram> run(std::string_view source) {
        if (source.size() >= 4 && source.substr(0, 4) == "\x89PNG")
            return Error{ErrorCode::invalid_input,
                         name_ + ": this is a PNG image, not .pxs text (to read a program image "
                                 "as text, use 'pxc disasm')"};
        std::size_t start = 0;
        while (start <= source.size()) {
            std::size_t end = source.find('\n', start);
            if (end == std::string_view::npos) end = source.size();
            ++line_;
            if (auto done = statement(source.substr(start, end - start)); !done)
                return Error{ErrorCode::invalid_input,
                             name_ + ":" + std::to_string(line_) + ": " + done.error().message};
            start = end + 1;
        }
        if (!have_image_)
            return Error{ErrorCode::invalid_input,
                         name_ + ": no '.image W H' statement; a program starts with one"};
        warn_static_fault();
        return std::move(program_);
    }

private:
    Result<void> statement(std::string_view text) {
        if (const auto comment = text.find(';'); comment != std::string_view::npos)
            text = text.substr(0, comment);
        text = trim(text);
        if (text.empty()) return {};
        const auto space = text.find_first_of(whitespace);
        const std::string_view head = text.substr(0, space);
        const std::string_view rest =
            space == std::string_view::npos ? std::string_view{} : trim(text.substr(space));

        if (head == ".image") return image_directive(split_words(rest));
        if (!have_image_)
            return Error{ErrorCode::invalid_input,
                         "the program must start with '.image W H' (the image's width and "
                         "height), before " +
                             in_quotes(head)};
        if (head == ".rgba") return pixels_directive(split_words(rest), false);
        if (head == ".red") return pixels_directive(split_words(rest), true);
        if (head == ".data") return data_directive(split_words(rest));
        if (head == ".tensor") return tensor_directive(split_words(rest));
        if (head == ".expect") return expect_directive(split_words(rest));
        if (head[0] == '.')
            return Error{
                ErrorCode::invalid_input,
                "unknown directive " + in_quotes(head) +
                    suggestion(head, {".image", ".rgba", ".red", ".data", ".tensor", ".expect"}) +
                    "; directives are .image, .rgba, .red, .data, .tensor, .expect"};
        return instruction(head, rest);
    }

    Result<void> image_directive(const std::vector<std::string_view>& words) {
        if (have_image_)
            return Error{ErrorCode::invalid_input, "'.image' appears twice (first at line " +
                                                       std::to_string(image_line_) +
                                                       "); a program has one image size"};
        if (words.size() != 2)
            return Error{ErrorCode::invalid_input,
                         "'.image' takes 2 numbers, width and height (e.g. '.image 16 16'), got " +
                             std::to_string(words.size())};
        auto width = parse_number(words[0], 1, MAX_WIDTH, ".image width");
        if (!width) return width.error();
        auto height = parse_number(words[1], 1, MAX_HEIGHT, ".image height");
        if (!height) return height.error();
        if (auto dims = check_dimensions(std::uint64_t(*width), std::uint64_t(*height)); !dims)
            return dims.error();
        program_.image = Image(std::uint32_t(*width), std::uint32_t(*height));
        row0_lines_.assign(program_.image.width(), 0);
        have_image_ = true;
        image_line_ = line_;
        return {};
    }

    Result<void> check_point(std::int64_t x, std::int64_t y) const {
        const Image& image = program_.image;
        if (x >= image.width() || y >= image.height())
            return Error{ErrorCode::invalid_input, "pixel (" + std::to_string(x) + ", " +
                                                       std::to_string(y) + ") is outside the " +
                                                       std::to_string(image.width()) + "x" +
                                                       std::to_string(image.height()) + " image"};
        return {};
    }

    // .rgba X Y r g b a ...   or   .red X Y v ...
    Result<void> pixels_directive(const std::vector<std::string_view>& words, bool red_only) {
        const std::string directive = red_only ? ".red" : ".rgba";
        const std::size_t per_pixel = red_only ? 1 : 4;
        if (words.size() < 3)
            return Error{ErrorCode::invalid_input,
                         in_quotes(directive) + " needs X Y and then " +
                             (red_only ? "at least one value" : "r g b a values") + " (e.g. '" +
                             directive + (red_only ? " 0 1  1 2 3 4'" : " 0 1  255 0 0 255'") +
                             ")"};
        auto x = parse_number(words[0], 0, MAX_WIDTH, directive + " x");
        if (!x) return x.error();
        auto y = parse_number(words[1], 0, MAX_HEIGHT, directive + " y");
        if (!y) return y.error();
        if (auto inside = check_point(*x, *y); !inside) return inside.error();
        const std::size_t values = words.size() - 2;
        if (values % per_pixel != 0)
            return Error{ErrorCode::invalid_input,
                         "'.rgba' takes 4 values (r g b a) for each pixel, but " +
                             std::to_string(values) + " values were given"};
        const std::size_t count = values / per_pixel;
        if (std::uint64_t(*x) + count > program_.image.width())
            return Error{ErrorCode::invalid_input,
                         std::to_string(count) + " pixels from (" + std::to_string(*x) + ", " +
                             std::to_string(*y) + ") run past the right edge of the " +
                             std::to_string(program_.image.width()) +
                             "-pixel-wide image (writes do not wrap to the next row)"};
        std::vector<Pixel> pixels(count);
        for (std::size_t i = 0; i < count; ++i) {
            std::array<std::uint8_t, 4> channels{};
            for (std::size_t c = 0; c < per_pixel; ++c) {
                auto v =
                    parse_number(words[2 + i * per_pixel + c], 0, 255,
                                 directive + " value " + std::to_string(i * per_pixel + c + 1));
                if (!v) return v.error();
                channels[c] = std::uint8_t(*v);
            }
            pixels[i] = Pixel{channels[0], channels[1], channels[2], channels[3]};
        }
        for (std::size_t i = 0; i < count; ++i)
            write(std::uint32_t(*x + std::int64_t(i)), std::uint32_t(*y), pixels[i]);
        return {};
    }

    // .data tID v v v ...
    Result<void> data_directive(const std::vector<std::string_view>& words) {
        if (words.empty())
            return Error{ErrorCode::invalid_input,
                         "'.data' needs a tensor and values (e.g. '.data t1 1 2 3')"};
        auto id = tensor_operand(words[0], "'.data'");
        if (!id) return id.error();
        const auto found = tensors_.find(*id);
        if (found == tensors_.end())
            return Error{ErrorCode::invalid_input,
                         "'.data' for t" + std::to_string(*id) +
                             ", which no 'tensor' statement above this line declares"};
        const Tensor t = found->second.first;
        const std::string declared =
            "t" + std::to_string(*id) + " (declared at line " +
            std::to_string(found->second.second) + " as " + std::string(dtype_name(t.dtype)) + " " +
            std::to_string(t.rows) + "x" + std::to_string(t.cols) + " at (" + std::to_string(t.x) +
            ", " + std::to_string(t.y) + "))";
        const Image& image = program_.image;
        if (t.rows == 0 || t.cols == 0)
            return Error{ErrorCode::invalid_input,
                         "'.data' cannot fill " + declared + ": it has no elements"};
        if (t.y == 0)
            return Error{ErrorCode::invalid_input,
                         "'.data' cannot fill " + declared + ": it lies in row 0, the program row"};
        if (std::uint64_t(t.x) + t.pixel_width() > image.width() ||
            std::uint64_t(t.y) + t.rows > image.height())
            return Error{ErrorCode::invalid_input,
                         "'.data' cannot fill " + declared + ": its pixels (x " +
                             std::to_string(t.x) + " ... " +
                             std::to_string(std::uint64_t(t.x) + t.pixel_width() - 1) + ", y " +
                             std::to_string(t.y) + " ... " +
                             std::to_string(std::uint64_t(t.y) + t.rows - 1) + ") leave the " +
                             std::to_string(image.width()) + "x" + std::to_string(image.height()) +
                             " image"};
        const std::uint64_t elements = std::uint64_t(t.rows) * t.cols;
        const std::size_t values = words.size() - 1;
        if (values > elements)
            return Error{ErrorCode::invalid_input, std::to_string(values) + " values for " +
                                                       declared + ", which has " +
                                                       std::to_string(elements) + " elements"};
        std::vector<std::int64_t> parsed(values);
        for (std::size_t i = 0; i < values; ++i) {
            auto v = parse_number(words[1 + i], dtype_min(t.dtype), dtype_max(t.dtype),
                                  "'.data' value " + std::to_string(i + 1) + " (" +
                                      std::string(dtype_name(t.dtype)) + ")");
            if (!v) return v.error();
            parsed[i] = *v;
        }
        for (std::size_t i = 0; i < values; ++i)
            store_element(program_.image, t, std::uint32_t(i / t.cols), std::uint32_t(i % t.cols),
                          parsed[i]);
        return {};
    }

    // .expect TENSOR v v v ... | .expect pixel X Y R G B A | .expect fault NAME pc N | .expect
    // fault none
    Result<void> expect_directive(const std::vector<std::string_view>& words) {
        const std::string usage = "'.expect' takes a tensor and all its values ('.expect t3 1 -2 "
                                  "3'), 'pixel X Y R G B A', 'fault NAME pc N' or 'fault none'";
        if (words.empty()) return Error{ErrorCode::invalid_input, usage};
        Expectation e;
        e.line = line_;
        e.what = std::string(words[0]);
        if (words[0] == "pixel") {
            e.kind = Expectation::Kind::pixel;
            if (words.size() != 7) return Error{ErrorCode::invalid_input, usage};
            auto x = parse_number(words[1], 0, program_.image.width() - 1, "'.expect pixel' x");
            if (!x) return x.error();
            auto y = parse_number(words[2], 0, program_.image.height() - 1, "'.expect pixel' y");
            if (!y) return y.error();
            std::array<std::uint8_t, 4> c{};
            for (int i = 0; i < 4; ++i) {
                auto v =
                    parse_number(words[3 + i], 0, 255, std::string("'.expect pixel' ") + "RGBA"[i]);
                if (!v) return v.error();
                c[i] = std::uint8_t(*v);
            }
            e.x = std::uint32_t(*x);
            e.y = std::uint32_t(*y);
            e.pixel = Pixel{c[0], c[1], c[2], c[3]};
        } else if (words[0] == "fault") {
            e.kind = Expectation::Kind::fault;
            if (words.size() == 2 && words[1] == "none") {
                e.fault = FAULT_NONE;
            } else {
                if (words.size() != 4 || words[2] != "pc")
                    return Error{ErrorCode::invalid_input, usage};
                std::optional<std::uint32_t> code;
                for (std::uint32_t f = 1; f < FAULT_COUNT; ++f)
                    if (fault_name(f) == words[1]) code = f;
                if (!code)
                    return Error{ErrorCode::invalid_input,
                                 "'.expect fault': unknown fault " + in_quotes(words[1])};
                auto pc =
                    parse_number(words[3], 0, program_.image.width() - 1, "'.expect fault' pc");
                if (!pc) return pc.error();
                e.fault = *code;
                e.pc = std::uint32_t(*pc);
            }
        } else {
            auto id = tensor_operand(words[0], "'.expect'");
            if (!id) return id.error();
            const auto found = tensors_.find(*id);
            if (found == tensors_.end())
                return Error{ErrorCode::invalid_input,
                             "'.expect' for " + e.what +
                                 ", which no 'tensor' statement above this line declares"};
            e.tensor = found->second.first;
            const std::uint64_t elements = std::uint64_t(e.tensor.rows) * e.tensor.cols;
            if (words.size() - 1 != elements)
                return Error{ErrorCode::invalid_input,
                             "'.expect " + e.what + "' gives " + std::to_string(words.size() - 1) +
                                 " values; the tensor has " + std::to_string(elements) +
                                 " elements, and every one is expected"};
            for (std::size_t i = 1; i < words.size(); ++i) {
                auto v =
                    parse_number(words[i], dtype_min(e.tensor.dtype), dtype_max(e.tensor.dtype),
                                 "'.expect' value " + std::to_string(i) + " (" +
                                     std::string(dtype_name(e.tensor.dtype)) + ")");
                if (!v) return v.error();
                e.values.push_back(*v);
            }
        }
        program_.expectations.push_back(std::move(e));
        return {};
    }

    Result<void> instruction(std::string_view mnemonic, std::string_view rest) {
        const auto opcode = opcode_from_name(mnemonic);
        if (!opcode)
            return Error{ErrorCode::invalid_input, "unknown mnemonic " + in_quotes(mnemonic) +
                                                       suggestion(mnemonic, mnemonics())};
        const Signature sig = signature(*opcode);

        std::vector<std::string_view> operands;
        if (!rest.empty()) {
            std::size_t start = 0;
            while (true) {
                const std::size_t comma = rest.find(',', start);
                operands.push_back(trim(rest.substr(start, comma - start)));
                if (comma == std::string_view::npos) break;
                start = comma + 1;
            }
        }
        const std::string form = "'" + usage(mnemonic, sig) + "'";
        for (std::size_t i = 0; i < operands.size(); ++i) {
            if (operands[i].empty())
                return Error{ErrorCode::invalid_input,
                             "missing operand " + std::to_string(i + 1) + " of " + form};
            if (operands[i].find_first_of(whitespace) != std::string_view::npos)
                return Error{ErrorCode::invalid_input,
                             "operand " + in_quotes(operands[i]) + " of " + form +
                                 " is not one value; separate operands with commas"};
        }
        if (operands.size() < sig.operands.size())
            return Error{ErrorCode::invalid_input, "missing operand: " + form + " takes " +
                                                       std::to_string(sig.operands.size()) +
                                                       " operands, got " +
                                                       std::to_string(operands.size())};
        if (operands.size() > sig.operands.size())
            return Error{ErrorCode::invalid_input, "too many operands: " + form + " takes " +
                                                       std::to_string(sig.operands.size()) +
                                                       ", got " + std::to_string(operands.size())};

        std::array<std::int64_t, 7> v{};
        for (std::size_t i = 0; i < operands.size(); ++i) {
            const std::string what =
                std::string(mnemonic) + " " + std::string(sig.operands[i].second);
            Result<std::int64_t> value = std::int64_t(0);
            switch (sig.operands[i].first) {
            case Operand::Row:
                value = parse_number(operands[i], 0, 255, what);
                break;
            case Operand::Tensor: {
                // A named tensor's name, except as the id a 'tensor' statement declares.
                auto id = *opcode == OP_TENSOR ? explicit_id(operands[i], what)
                                               : tensor_operand(operands[i], what);
                if (!id) return id.error();
                value = std::int64_t(*id);
                break;
            }
            case Operand::Dtype: {
                const auto dtype = dtype_from_name(operands[i]);
                if (!dtype)
                    return Error{ErrorCode::invalid_input,
                                 what + ": unknown dtype " + in_quotes(operands[i]) +
                                     suggestion(operands[i], dtype_names()) + "; dtypes are " +
                                     all_of(dtype_names())};
                value = std::int64_t(*dtype);
                break;
            }
            case Operand::U16:
                value = parse_number(operands[i], 0, 65535, what);
                break;
            case Operand::I32:
                value = parse_number(operands[i], INT32_MIN, INT32_MAX, what);
                break;
            case Operand::U32:
                value = parse_number(operands[i], 0, UINT32_MAX, what);
                break;
            case Operand::Heads:
                value = parse_number(operands[i], 1, 255, what);
                break;
            case Operand::Shift:
                value = parse_number(operands[i], 0, MAX_REQUANT_SHIFT, what);
                break;
            case Operand::I8:
                value = parse_number(operands[i], -128, 127, what);
                break;
            }
            if (!value) return value.error();
            v[i] = *value;
        }

        const auto u8 = [](std::int64_t x) { return std::uint8_t(std::uint64_t(x) & 255); };
        std::vector<Pixel> pixels;
        switch (*opcode) {
        case OP_TENSOR:
            pixels = encode_tensor(u8(v[0]), std::uint32_t(v[1]), std::uint32_t(v[2]),
                                   std::uint32_t(v[3]), std::uint32_t(v[4]), std::uint32_t(v[5]));
            break;
        case OP_REQUANT:
            pixels =
                encode_requant(u8(v[0]), u8(v[1]), std::int32_t(v[2]), u8(v[3]), std::int8_t(v[4]));
            break;
        case OP_RMSNORM:
            pixels = encode_rmsnorm(u8(v[0]), u8(v[1]), u8(v[2]), u8(v[3]));
            break;
        case OP_ATTEND:
            pixels = encode_attend(u8(v[0]), u8(v[1]), u8(v[2]), u8(v[3]), u8(v[4]),
                                   std::uint32_t(v[5]), u8(v[6]));
            break;
        default:
            pixels = encode_op(*opcode, u8(v[0]), u8(v[1]), u8(v[2]));
            break;
        }
        if (pixels.size() != instruction_length(*opcode))
            return Error{ErrorCode::invalid_input, "internal error: " + std::string(mnemonic) +
                                                       " encodes to " +
                                                       std::to_string(pixels.size()) + " pixels"};

        const Image& image = program_.image;
        if (std::uint64_t(pc_) + pixels.size() > image.width()) {
            const std::string where = pixels.size() == 1
                                          ? "pc " + std::to_string(pc_)
                                          : "pcs " + std::to_string(pc_) + " ... " +
                                                std::to_string(pc_ + pixels.size() - 1);
            return Error{ErrorCode::invalid_input,
                         in_quotes(mnemonic) + " needs " + where + " but row 0 of the " +
                             std::to_string(image.width()) + "-pixel-wide image ends at pc " +
                             std::to_string(image.width() - 1) +
                             "; make the image wider or the program shorter"};
        }
        for (std::size_t i = 0; i < pixels.size(); ++i)
            write(pc_ + std::uint32_t(i), 0, pixels[i]);
        program_.instructions.push_back(
            SourceInstruction{pc_, std::uint32_t(pixels.size()), line_});
        if (*opcode == OP_TENSOR) {
            const Tensor t{std::uint32_t(v[2]), std::uint32_t(v[3]), std::uint32_t(v[4]),
                           std::uint32_t(v[5]), std::uint32_t(v[1])};
            tensors_[std::uint8_t(v[0])] = {t, line_};
            if (t.rows > 0 && t.cols > 0) all_tensors_.emplace_back(std::uint8_t(v[0]), t);
        }
        pc_ += std::uint32_t(pixels.size());
        return {};
    }

    // A tensor operand: tN, or the name of a tensor declared with .tensor above.
    Result<std::uint8_t> tensor_operand(std::string_view word, const std::string& what) {
        if (const auto named = names_.find(std::string(word)); named != names_.end())
            return named->second;
        if (!word.empty() && (word[0] < '0' || word[0] > '9') &&
            !(word.size() > 1 && word[0] == 't' && word[1] >= '0' && word[1] <= '9')) {
            std::vector<std::string> known;
            for (const auto& [name, id] : names_)
                known.push_back(name);
            return Error{
                ErrorCode::invalid_input,
                what + ": expected a tensor like t3 or a name declared by '.tensor' above, got " +
                    in_quotes(word) + suggestion(word, known)};
        }
        return explicit_id(word, what);
    }

    // tN, which must not be the id given to a named tensor.
    Result<std::uint8_t> explicit_id(std::string_view word, const std::string& what) {
        auto id = parse_tensor_id(word, what);
        if (!id) return id;
        for (const NamedTensor& n : program_.named)
            if (n.id == *id)
                return Error{ErrorCode::invalid_input,
                             what + ": t" + std::to_string(*id) +
                                 " is the id of the named tensor " + in_quotes(n.name) + " (line " +
                                 std::to_string(n.line) + "); use its name"};
        used_ids_[*id] = true;
        return id;
    }

    // .tensor NAME DTYPE ROWS COLS: declares a tensor by name at the lowest free place of rows 1
    // and after (no overlap with any tensor declared before), with the highest unused id.
    Result<void> tensor_directive(const std::vector<std::string_view>& words) {
        if (words.size() != 4)
            return Error{ErrorCode::invalid_input,
                         "'.tensor' takes NAME DTYPE ROWS COLS (e.g. '.tensor weights i8 16 64'), "
                         "got " +
                             std::to_string(words.size()) + " values"};
        const std::string name(words[0]);
        const bool valid_name =
            !name.empty() &&
            (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
            name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
        if (!valid_name || parse_tensor_id(name, "").ok() || opcode_from_name(name))
            return Error{ErrorCode::invalid_input,
                         "'.tensor' name " + in_quotes(name) +
                             " must be lowercase letters, digits and _, start with a letter or _, "
                             "and be neither tN nor a mnemonic"};
        if (const auto seen = names_.find(name); seen != names_.end())
            return Error{ErrorCode::invalid_input,
                         "tensor " + in_quotes(name) + " is declared twice"};
        const auto dtype = dtype_from_name(words[1]);
        if (!dtype)
            return Error{ErrorCode::invalid_input, "'.tensor' " + name + ": unknown dtype " +
                                                       in_quotes(words[1]) +
                                                       suggestion(words[1], dtype_names()) +
                                                       "; dtypes are " + all_of(dtype_names())};
        auto rows = parse_number(words[2], 1, 65535, "'.tensor' " + name + " rows");
        if (!rows) return rows.error();
        auto cols = parse_number(words[3], 1, 65535, "'.tensor' " + name + " cols");
        if (!cols) return cols.error();
        Tensor t{0, 0, std::uint32_t(*rows), std::uint32_t(*cols), *dtype};
        const auto place = free_place(t.pixel_width(), t.rows);
        if (!place)
            return Error{ErrorCode::invalid_input,
                         "tensor " + in_quotes(name) + " (" + std::string(dtype_name(t.dtype)) +
                             " " + std::to_string(t.rows) + "x" + std::to_string(t.cols) + ", " +
                             std::to_string(t.pixel_width()) + "x" + std::to_string(t.rows) +
                             " pixels) does not fit the " + std::to_string(program_.image.width()) +
                             "x" + std::to_string(program_.image.height()) +
                             " image beside the tensors declared before it; make '.image' larger"};
        t.x = place->first;
        t.y = place->second;
        int id = 255;
        while (id >= 0 && used_ids_[std::size_t(id)])
            --id;
        if (id < 0)
            return Error{ErrorCode::invalid_input, "no tensor id is left for " + in_quotes(name)};
        used_ids_[std::size_t(id)] = true;
        const std::string text = "t" + std::to_string(id) + ", " +
                                 std::string(dtype_name(t.dtype)) + ", " + std::to_string(t.x) +
                                 ", " + std::to_string(t.y) + ", " + std::to_string(t.rows) + ", " +
                                 std::to_string(t.cols);
        if (auto declared = instruction("tensor", text); !declared) return declared;
        names_[name] = std::uint8_t(id);
        program_.named.push_back(NamedTensor{name, std::uint8_t(id), t, line_});
        return {};
    }

    // The lowest, then leftmost, origin in rows 1 and after where a w x h pixel rectangle lies
    // inside the image and overlaps no tensor declared so far: candidates are (0, 1) and the
    // corners right of and below every declared rectangle.
    std::optional<std::pair<std::uint32_t, std::uint32_t>> free_place(std::uint32_t w,
                                                                      std::uint32_t h) const {
        const Image& image = program_.image;
        std::vector<std::pair<std::uint64_t, std::uint64_t>> candidates = {{0, 1}};
        for (const auto& [id, declared] : all_tensors_) {
            const Tensor& r = declared;
            candidates.push_back({std::uint64_t(r.x) + r.pixel_width(), std::max(r.y, 1u)});
            candidates.push_back({0, std::uint64_t(r.y) + r.rows});
            candidates.push_back({r.x, std::uint64_t(r.y) + r.rows});
        }
        std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
            return std::pair(a.second, a.first) < std::pair(b.second, b.first);
        });
        for (const auto& [x, y] : candidates) {
            if (y < 1 || x + w > image.width() || y + h > image.height()) continue;
            const Tensor probe{std::uint32_t(x), std::uint32_t(y), h, 4 * w, DTYPE_U8};
            const bool clear =
                std::none_of(all_tensors_.begin(), all_tensors_.end(),
                             [&](const auto& r) { return r.second.overlaps(probe); });
            if (clear) return std::pair(std::uint32_t(x), std::uint32_t(y));
        }
        return std::nullopt;
    }

    void write(std::uint32_t x, std::uint32_t y, Pixel p) {
        program_.image.set_pixel(x, y, p);
        if (y == 0) row0_lines_[x] = line_;
    }

    // A static fault becomes a warning at the line that wrote the faulting pixel.
    void warn_static_fault() {
        const Plan plan = plan_program(program_.image);
        if (!plan.fault) return;
        const std::uint32_t pc = plan.fault.pc;
        std::uint32_t line = pc < row0_lines_.size() ? row0_lines_[pc] : 0;
        if (line == 0) line = program_.line_of_pc(pc);
        program_.warnings.push_back(name_ + (line ? ":" + std::to_string(line) : std::string()) +
                                    ": warning: " + describe(plan.fault, program_.image));
    }

    std::string name_;
    AssembledProgram program_;
    std::uint32_t line_ = 0;
    bool have_image_ = false;
    std::uint32_t image_line_ = 0;
    std::uint32_t pc_ = 0;
    std::vector<std::uint32_t> row0_lines_;                            // last writer of each pc
    std::map<std::uint8_t, std::pair<Tensor, std::uint32_t>> tensors_; // id -> (tensor, line)
    std::vector<std::pair<std::uint8_t, Tensor>> all_tensors_; // every declaration, for placing
    std::map<std::string, std::uint8_t> names_;                // .tensor name -> id
    std::array<bool, 256> used_ids_{};                         // ids taken so far
};

} // namespace

std::string check_expectations(const std::vector<Expectation>& expectations,
                               const std::string& name, const Image& result,
                               std::uint32_t fault_code, std::uint32_t fault_pc) {
    const auto pixel_text = [](Pixel p) {
        return "(" + std::to_string(p.r) + ", " + std::to_string(p.g) + ", " + std::to_string(p.b) +
               ", " + std::to_string(p.a) + ")";
    };
    for (const Expectation& e : expectations) {
        const std::string where = name + ":" + std::to_string(e.line) + ": .expect " + e.what;
        switch (e.kind) {
        case Expectation::Kind::fault:
            if (fault_code != e.fault || (e.fault != FAULT_NONE && fault_pc != e.pc))
                return where + ": the run ended with " +
                       (fault_code ? std::string(fault_name(fault_code)) + " at pc " +
                                         std::to_string(fault_pc)
                                   : std::string("no fault")) +
                       ", expected " +
                       (e.fault
                            ? std::string(fault_name(e.fault)) + " at pc " + std::to_string(e.pc)
                            : std::string("no fault"));
            break;
        case Expectation::Kind::pixel:
            if (e.x >= result.width() || e.y >= result.height())
                return where + ": pixel (" + std::to_string(e.x) + ", " + std::to_string(e.y) +
                       ") is outside the result";
            if (result.pixel(e.x, e.y) != e.pixel)
                return where + ": pixel (" + std::to_string(e.x) + ", " + std::to_string(e.y) +
                       ") is " + pixel_text(result.pixel(e.x, e.y)) + ", expected " +
                       pixel_text(e.pixel);
            break;
        case Expectation::Kind::tensor: {
            const Tensor& t = e.tensor;
            if (std::uint64_t(t.x) + t.pixel_width() > result.width() ||
                std::uint64_t(t.y) + t.rows > result.height())
                return where + ": the tensor lies outside the result";
            std::string first;
            std::uint64_t differ = 0;
            for (std::uint32_t i = 0; i < e.values.size(); ++i) {
                const std::uint32_t r = i / t.cols, c = i % t.cols;
                const std::int64_t actual = load_element(result, t, r, c);
                if (actual == e.values[i]) continue;
                if (differ++ == 0) {
                    const std::size_t byte = t.byte_offset(result.width(), r, c) / 4;
                    first = "element [" + std::to_string(r) + "][" + std::to_string(c) +
                            "] (pixel (" + std::to_string(byte % result.width()) + ", " +
                            std::to_string(byte / result.width()) + ")) is " +
                            std::to_string(actual) + ", expected " + std::to_string(e.values[i]);
                }
            }
            if (differ)
                return where + ": " + first +
                       (differ > 1 ? "; " + std::to_string(differ - 1) + " more elements differ"
                                   : std::string());
            break;
        }
        }
    }
    return {};
}

Result<AssembledProgram> assemble(std::string_view source, const std::string& name) {
    return Assembler(name).run(source);
}

Result<AssembledProgram> assemble_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        return Error{ErrorCode::invalid_input, path + ": is a directory, not a .pxs file"};
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f)
        return Error{ErrorCode::invalid_input,
                     path + ": cannot read (" + std::strerror(errno) + ")"};
    std::string text;
    std::array<char, 65536> buffer;
    std::size_t got = 0;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), f)) > 0)
        text.append(buffer.data(), got);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return Error{ErrorCode::invalid_input, path + ": read error"};
    return assemble(text, path);
}

} // namespace px
