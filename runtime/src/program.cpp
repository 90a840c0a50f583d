// The instruction decoder and static checker (docs/PROTOCOL.md sections 2-5). Check order is part
// of the protocol: every executor must report the same fault code for the same image.
#include "pxvm/program.hpp"

#include <optional>

namespace px {

std::uint32_t Tensor::pixel_width() const {
    return (dtype_size(dtype) * cols + 3) / 4;
}

bool Tensor::overlaps(const Tensor& o) const {
    return x < o.x + o.pixel_width() && o.x < x + pixel_width() && y < o.y + o.rows &&
           o.y < y + rows;
}

bool Tensor::same_region(const Tensor& o) const {
    return *this == o;
}

std::size_t Tensor::byte_offset(std::uint32_t width, std::uint32_t r, std::uint32_t c) const {
    return (std::size_t(y + r) * width + x) * 4 + std::size_t(dtype_size(dtype)) * c;
}

Tensor Instruction::declared() const {
    const auto u16 = [](std::uint8_t lo, std::uint8_t hi) { return std::uint32_t(lo | hi << 8); };
    return Tensor{u16(extension[0].r, extension[0].g), u16(extension[0].b, extension[0].a),
                  u16(extension[1].r, extension[1].g), u16(extension[1].b, extension[1].a),
                  args[1]};
}

std::int32_t Instruction::multiplier() const {
    const Pixel p = extension[0];
    return std::int32_t(std::uint32_t(p.r) | std::uint32_t(p.g) << 8 | std::uint32_t(p.b) << 16 |
                        std::uint32_t(p.a) << 24);
}

std::uint32_t Instruction::shift() const {
    return extension[1].r;
}

std::int32_t Instruction::zero_point() const {
    return std::int8_t(extension[1].g);
}

std::uint32_t Instruction::score_multiplier() const {
    const Pixel p = extension[1];
    return std::uint32_t(p.r) | std::uint32_t(p.g) << 8 | std::uint32_t(p.b) << 16 |
           std::uint32_t(p.a) << 24;
}

std::string describe(const Fault& fault, const Image& image) {
    std::string op = "?";
    if (fault.pc < image.width()) {
        const auto name = opcode_name(image.pixel(fault.pc, 0).r);
        op = name.empty() ? "opcode " + std::to_string(image.pixel(fault.pc, 0).r)
                          : std::string(name);
    }
    return "fault " + std::string(fault_name(fault.code)) + " (" + std::to_string(fault.code) +
           ") at pc " + std::to_string(fault.pc) + " (" + op + "): " + fault.reason;
}

Decoded decode_instruction(const Image& image, std::uint32_t pc) {
    Decoded d;
    Instruction& ins = d.instruction;
    const Pixel p = image.pixel(pc, 0);
    ins.pc = pc;
    ins.opcode = p.r;
    ins.args = {p.g, p.b, p.a};
    ins.length = instruction_length(p.r);
    auto fail = [&](std::uint32_t code, std::string reason) {
        d.fault = Fault{code, pc, std::move(reason)};
        return d;
    };
    if (ins.length == 0) return fail(FAULT_BAD_OPCODE, std::to_string(p.r) + " is not an opcode");
    if (pc + ins.length > image.width())
        return fail(FAULT_TRUNCATED,
                    "the instruction needs " + std::to_string(ins.length) +
                        " pixels but row 0 ends at x = " + std::to_string(image.width() - 1));
    for (std::uint32_t i = 1; i < ins.length; ++i)
        ins.extension[i - 1] = image.pixel(pc + i, 0);

    // Reserved channels: the argument channels an instruction does not use must be 0.
    const std::uint32_t used_args = instruction_info(ins.opcode)->used_args;
    for (std::uint32_t i = used_args; i < 3; ++i)
        if (ins.args[i] != 0)
            return fail(FAULT_BAD_OPERAND, std::string("channel ") + "GBA"[i] +
                                               " is reserved and must be 0, not " +
                                               std::to_string(ins.args[i]));
    if (ins.opcode == OP_REQUANT && (ins.extension[1].b != 0 || ins.extension[1].a != 0))
        return fail(FAULT_BAD_OPERAND, "channels B and A of the second extension pixel are "
                                       "reserved and must be 0");
    if (ins.opcode == OP_RMSNORM &&
        (ins.extension[0].g != 0 || ins.extension[0].b != 0 || ins.extension[0].a != 0))
        return fail(FAULT_BAD_OPERAND, "channels G, B and A of the extension pixel are reserved "
                                       "and must be 0");
    if (ins.opcode == OP_ATTEND && ins.extension[0].a != 0)
        return fail(FAULT_BAD_OPERAND,
                    "channel A of the first extension pixel is reserved and must be 0");
    return d;
}

namespace {

std::string tensor_text(std::uint32_t id, const Tensor& t) {
    return "tensor " + std::to_string(id) + " (" + std::string(dtype_name(t.dtype)) + " " +
           std::to_string(t.rows) + "x" + std::to_string(t.cols) + " at (" + std::to_string(t.x) +
           ", " + std::to_string(t.y) + "))";
}

std::string shape_text(const Tensor& t) {
    return std::to_string(t.rows) + "x" + std::to_string(t.cols);
}

// The validity rules of a declared tensor (section 3), in protocol order.
Fault check_declaration(const Image& image, const Instruction& ins) {
    const Tensor t = ins.declared();
    auto fail = [&](std::uint32_t code, std::string reason) {
        return Fault{code, ins.pc, "tensor " + std::to_string(ins.args[0]) + ": " + reason};
    };
    if (dtype_size(t.dtype) == 0)
        return fail(FAULT_BAD_DTYPE, std::to_string(t.dtype) + " is not a dtype code (1-4)");
    if (t.rows == 0 || t.cols == 0)
        return fail(FAULT_SHAPE_MISMATCH, "shape " + shape_text(t) + " is empty");
    if (t.y == 0) return fail(FAULT_PROGRAM_ROW, "starts in row 0, the program row");
    if (std::uint64_t(t.x) + t.pixel_width() > image.width())
        return fail(FAULT_OUT_OF_BOUNDS, "its " + std::to_string(t.pixel_width()) +
                                             " pixel columns from x = " + std::to_string(t.x) +
                                             " end past the image width " +
                                             std::to_string(image.width()));
    if (std::uint64_t(t.y) + t.rows > image.height())
        return fail(FAULT_OUT_OF_BOUNDS,
                    "its rows end at row " + std::to_string(std::uint64_t(t.y) + t.rows - 1) +
                        " of a " + std::to_string(image.height()) + "-row image");
    return {};
}

class Checker {
public:
    Checker(const Instruction& ins, const std::array<std::optional<Tensor>, MAX_TENSORS>& table)
        : ins_(ins), info_(*instruction_info(ins.opcode)) {
        for (std::size_t i = 0; i < info_.arity && !fault; ++i) {
            const std::uint32_t id = ins.operand_id(i);
            if (!table[id])
                fault = Fault{FAULT_UNDEFINED_TENSOR, ins.pc,
                              "operand " + std::string(info_.roles[i]) + " names tensor " +
                                  std::to_string(id) + ", which is not declared"};
            else
                step.operands[i] = *table[id];
        }
    }

    // The table's dtype rules: each operand's accepted dtypes, then the operands that share one.
    void table_dtypes() {
        for (std::size_t i = 0; i < info_.arity; ++i) {
            if (info_.dtypes[i] == 0) continue;
            std::vector<std::uint32_t> allowed;
            for (std::uint32_t d = DTYPE_U8; d <= DTYPE_I32; ++d)
                if (info_.dtypes[i] >> d & 1u) allowed.push_back(d);
            dtype(i, allowed);
        }
        std::optional<std::size_t> first;
        for (std::size_t i = 0; i < info_.arity; ++i)
            if (info_.same_dtype >> i & 1u) {
                if (first)
                    same_dtype(*first, i);
                else
                    first = i;
            }
    }
    // The table's shape rule.
    void table_shape() {
        if (info_.shape != SHAPE_SAME) return;
        bool same = true;
        for (std::size_t i = 1; i < info_.arity; ++i)
            same = same && t(i).rows == t(0).rows && t(i).cols == t(0).cols;
        std::string names;
        for (std::size_t i = 0; i < info_.arity; ++i)
            names += (i == 0                 ? ""
                      : i + 1 == info_.arity ? " and "
                                             : ", ") +
                     std::string(info_.roles[i]);
        shape(same, names + " must have the same shape");
    }
    // The table's overlap rules: each output against every other operand, in channel order.
    void table_overlaps() {
        for (std::size_t i = 0; i < info_.arity; ++i) {
            if (!info_.writes_operand(std::uint32_t(i))) continue;
            for (std::size_t j = 0; j < info_.arity; ++j)
                if (j != i) disjoint(i, j, (info_.in_place >> j & 1u) != 0);
        }
    }

    const Tensor& t(std::size_t i) const { return step.operands[i]; }

    // Operand i must have one of the dtypes in `allowed`.
    void dtype(std::size_t i, const std::vector<std::uint32_t>& allowed) {
        if (fault) return;
        for (auto d : allowed)
            if (t(i).dtype == d) return;
        std::string names;
        for (auto d : allowed)
            names += (names.empty() ? "" : " or ") + std::string(dtype_name(d));
        fail(FAULT_BAD_DTYPE,
             role(i) + " is " + std::string(dtype_name(t(i).dtype)) + "; it must be " + names);
    }
    void same_dtype(std::size_t i, std::size_t j) {
        if (fault || t(i).dtype == t(j).dtype) return;
        fail(FAULT_BAD_DTYPE, role(i) + " and " + role(j) + " must have the same dtype");
    }
    void shape(bool ok, const std::string& expectation) {
        if (fault || ok) return;
        std::string shapes;
        for (std::size_t i = 0; i < info_.arity; ++i)
            shapes +=
                std::string(i ? ", " : "") + std::string(info_.roles[i]) + " " + shape_text(t(i));
        fail(FAULT_SHAPE_MISMATCH, expectation + " (" + shapes + ")");
    }
    // Output i must not overlap input j (unless in_place_ok and they are the same region).
    void disjoint(std::size_t i, std::size_t j, bool in_place_ok = false) {
        if (fault || !t(i).overlaps(t(j))) return;
        if (in_place_ok && t(i).same_region(t(j))) return;
        fail(FAULT_OVERLAP, role(i) + " overlaps " + role(j) +
                                (in_place_ok ? " without being the same region" : ""));
    }
    void fail(std::uint32_t code, std::string reason) {
        if (!fault) fault = Fault{code, ins_.pc, std::move(reason)};
    }

    Step step;
    Fault fault;

private:
    std::string role(std::size_t i) const {
        return std::string(info_.roles[i]) + " (" + tensor_text(ins_.operand_id(i), t(i)) + ")";
    }
    const Instruction& ins_;
    const InstructionInfo& info_;
};

constexpr std::uint32_t U16 = DTYPE_U16;

Fault check_dot_rgb(const Image& image, const Instruction& ins) {
    static const char* names[] = {"row A", "row B", "row out"};
    for (int i = 0; i < 3; ++i)
        if (ins.args[i] >= image.height())
            return Fault{FAULT_OUT_OF_BOUNDS, ins.pc,
                         std::string(names[i]) + " " + std::to_string(ins.args[i]) +
                             " is outside the " + std::to_string(image.height()) + "-row image"};
    if (ins.args[2] == 0) return Fault{FAULT_PROGRAM_ROW, ins.pc, "row out is 0, the program row"};
    return {};
}

} // namespace

Plan plan_program(const Image& image) {
    Plan plan;
    plan.width = image.width();
    std::array<std::optional<Tensor>, MAX_TENSORS> table;
    std::uint32_t pc = 0;
    while (pc < image.width()) {
        Decoded d = decode_instruction(image, pc);
        if (d.fault) {
            plan.fault = d.fault;
            return plan;
        }
        const Instruction& ins = d.instruction;
        if (ins.opcode == OP_HALT) {
            plan.halted = true;
            return plan;
        }
        Step step;
        step.instruction = ins;
        Fault fault;
        if (ins.opcode == OP_DOT_RGB) {
            fault = check_dot_rgb(image, ins);
        } else if (ins.opcode == OP_TENSOR) {
            fault = check_declaration(image, ins);
            if (!fault) table[ins.args[0]] = ins.declared();
        } else {
            Checker c(ins, table);
            const Tensor &t0 = c.t(0), &t1 = c.t(1), &t2 = c.t(2), &t3 = c.t(3);
            c.table_dtypes();
            // The instruction's own checks (docs/PROTOCOL.md section 5); the table has the rest.
            switch (ins.opcode) {
            case OP_DOT:
                c.shape(t1.rows == t2.rows && t1.cols == t2.cols,
                        "a and b must have the same shape");
                c.shape(t0.rows == 1 && t0.cols == 1, "out must be 1x1");
                break;
            case OP_MATMUL:
                c.shape(t1.cols == t2.cols, "a and b must have the same number of columns K");
                c.shape(t0.rows == t1.rows && t0.cols == t2.rows, "c must be a.rows x b.rows");
                break;
            case OP_ADD_BIAS:
                c.shape(t1.rows == 1 && t1.cols == t0.cols, "bias must be 1 x acc.cols");
                break;
            case OP_REQUANT:
                if (ins.shift() > MAX_REQUANT_SHIFT)
                    c.fail(FAULT_BAD_OPERAND,
                           "shift " + std::to_string(ins.shift()) + " is larger than 62");
                break;
            case OP_ARGMAX:
                c.shape(t0.rows == t1.rows && t0.cols == 1, "out must be in.rows x 1");
                c.shape(t0.dtype != U16 || t1.cols <= 65536,
                        "a u16 out holds indices of at most 65536 columns");
                break;
            case OP_GATHER_MEAN:
                c.shape(t0.rows == 1 && t0.cols == t1.cols, "out must be 1 x table.cols");
                c.shape(std::uint64_t(t2.rows) * t2.cols <= 65536,
                        "tokens must have at most 65536 elements");
                break;
            case OP_EMBED:
                c.shape(t0.rows == t2.rows && t0.cols == std::uint64_t(t2.cols) * t1.cols,
                        "out must be tokens.rows x (tokens.cols * table.cols)");
                break;
            case OP_LUT:
                c.shape(t0.rows == t1.rows && t0.cols == t1.cols, "out must have in's shape");
                c.shape(t2.rows == 1 && t2.cols == 256, "table must be 1x256");
                break;
            case OP_RMSNORM:
                if (ins.norm_shift() > MAX_REQUANT_SHIFT)
                    c.fail(FAULT_BAD_OPERAND,
                           "shift " + std::to_string(ins.norm_shift()) + " is larger than 62");
                c.shape(t0.rows == t1.rows && t0.cols == t1.cols, "out must have in's shape");
                c.shape(t2.rows == 1 && t2.cols == t1.cols, "gain must be 1 x in.cols");
                break;
            case OP_KVSTORE:
                c.shape(t2.rows == t1.rows && t2.cols == 2, "where must be rows.rows x 2");
                c.shape(t1.cols == 0 || t0.cols % t1.cols == 0, // (0: an undefined operand)
                        "cache.cols must be a multiple of rows.cols (one block per slot)");
                c.shape(dtype_size(t1.dtype) * t1.cols % 4 == 0,
                        "rows.cols must fill whole pixels (a multiple of 4), so that every slot's "
                        "block starts on a pixel");
                break;
            case OP_ATTEND:
                if (ins.heads() == 0) c.fail(FAULT_BAD_OPERAND, "heads is 0");
                if (ins.score_shift() > MAX_REQUANT_SHIFT)
                    c.fail(FAULT_BAD_OPERAND, "score shift " + std::to_string(ins.score_shift()) +
                                                  " is larger than 62");
                c.shape(t0.rows == t1.rows && t0.cols == t1.cols, "out must have q's shape");
                c.shape(t3.rows == t1.rows && t3.cols == 2, "where must be q.rows x 2");
                c.shape(t1.cols == 0 || t2.cols % (2 * std::uint64_t(t1.cols)) == 0,
                        "cache.cols must be a multiple of 2 x q.cols (keys then values per slot)");
                c.shape(t2.rows <= MAX_ATTEND_POSITIONS, "cache has more than 1024 positions");
                c.shape(ins.heads() == 0 || t1.cols % ins.heads() == 0,
                        "q.cols must be a multiple of heads (" + std::to_string(ins.heads()) + ")");
                c.shape(ins.heads() == 0 || t1.cols / ins.heads() <= MAX_HEAD_SIZE,
                        "a head has more than 32768 dimensions");
                break;
            }
            c.table_shape();
            c.table_overlaps();
            fault = c.fault;
            step.operands = c.step.operands;
        }
        if (fault) {
            plan.fault = fault;
            return plan;
        }
        plan.steps.push_back(step);
        pc += ins.length;
    }
    return plan;
}

std::vector<Tensor> written_regions(const Step& step) {
    const Instruction& ins = step.instruction;
    if (ins.opcode == OP_DOT_RGB) return {Tensor{0, ins.args[2], 1, 1, DTYPE_I32}};
    const InstructionInfo* info = instruction_info(ins.opcode);
    std::vector<Tensor> regions;
    for (std::uint32_t i = 0; info && i < info->arity; ++i)
        if (info->writes_operand(i)) regions.push_back(step.operands[i]);
    return regions;
}

std::int64_t load_element(const Image& image, const Tensor& t, std::uint32_t r, std::uint32_t c) {
    const std::uint8_t* p = image.data() + t.byte_offset(image.width(), r, c);
    switch (t.dtype) {
    case DTYPE_U8:
        return p[0];
    case DTYPE_I8:
        return std::int8_t(p[0]);
    case DTYPE_U16:
        return std::uint16_t(p[0] | p[1] << 8);
    default:
        return std::int32_t(std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 |
                            std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24);
    }
}

void store_element(Image& image, const Tensor& t, std::uint32_t r, std::uint32_t c,
                   std::int64_t value) {
    std::uint8_t* p = image.data() + t.byte_offset(image.width(), r, c);
    const auto v = std::uint32_t(std::uint64_t(value));
    for (std::uint32_t i = 0; i < dtype_size(t.dtype); ++i)
        p[i] = std::uint8_t(v >> (8 * i));
}

TokenCount check_tokens(const Image& image, const Step& gather) {
    const Tensor& table = gather.operands[1];
    const Tensor& tokens = gather.operands[2];
    TokenCount result;
    for (std::uint32_t r = 0; r < tokens.rows; ++r)
        for (std::uint32_t c = 0; c < tokens.cols; ++c) {
            const std::int64_t id = load_element(image, tokens, r, c);
            if (id == 0 && gather.instruction.opcode == OP_GATHER_MEAN) return result;
            if (id < 0 || id >= table.rows) {
                result.fault =
                    Fault{FAULT_TOKEN_RANGE, gather.instruction.pc,
                          "token " + std::to_string(result.count) + " is id " + std::to_string(id) +
                              " but the table has " + std::to_string(table.rows) + " rows"};
                return result;
            }
            ++result.count;
        }
    return result;
}

CacheShape cache_shape(const Step& step) {
    const Tensor& cache = step.operands[step.instruction.opcode == OP_KVSTORE ? 0 : 2];
    const std::uint32_t block = step.instruction.opcode == OP_KVSTORE
                                    ? step.operands[1].cols
                                    : 2 * step.operands[1].cols; // keys and values
    return CacheShape{cache.cols / block, cache.rows, block};
}

Fault check_where(const Image& image, const Step& step) {
    const Tensor& where = step.operands[step.instruction.opcode == OP_KVSTORE ? 2 : 3];
    const CacheShape shape = cache_shape(step);
    std::int64_t last_slot = -1, last_position = -1;
    for (std::uint32_t r = 0; r < where.rows; ++r) {
        const std::int64_t b = load_element(image, where, r, 0),
                           p = load_element(image, where, r, 1);
        const auto fail = [&](const std::string& why) {
            return Fault{FAULT_TOKEN_RANGE, step.instruction.pc,
                         "where row " + std::to_string(r) + " is (slot " + std::to_string(b) +
                             ", position " + std::to_string(p) + "): " + why};
        };
        if (b < 0 || b >= shape.slots)
            return fail("the cache has " + std::to_string(shape.slots) + " slots");
        if (p < 0 || p >= shape.positions)
            return fail("the cache has " + std::to_string(shape.positions) + " positions");
        if (step.instruction.opcode == OP_KVSTORE &&
            (b < last_slot || (b == last_slot && p <= last_position)))
            return fail("kvstore's rows must be in increasing (slot, position) order, without "
                        "repeats, and row " +
                        std::to_string(r - 1) + " is (slot " + std::to_string(last_slot) +
                        ", position " + std::to_string(last_position) + ")");
        last_slot = b;
        last_position = p;
    }
    return {};
}

void write_fault_pixel(Image& image, const Fault& fault) {
    image.set_pixel(image.width() - 1, 0,
                    Pixel{std::uint8_t(fault.code), std::uint8_t(fault.pc & 255),
                          std::uint8_t(fault.pc >> 8), std::uint8_t(FAULT_PIXEL_ALPHA)});
}

} // namespace px
