// Random program generation: a bump allocator places tensors below the seed-style vector rows
// (1-7), instructions are chosen with fitting shapes, the data is random, and an optional mutation
// breaks one rule of the protocol so that the program faults.
#include "program_generator.hpp"

#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <random>
#include <vector>

namespace pxtest {
namespace {

using namespace px; // the library's types and protocol constants

constexpr std::uint32_t first_tensor_row = 8; // rows 1-7 hold dot_rgb vectors

struct Declared {
    std::uint8_t id;
    Tensor tensor;
};

class Generator {
public:
    explicit Generator(std::uint64_t seed) : rng_(seed) {}

    std::uint32_t uniform(std::uint32_t lo, std::uint32_t hi) {
        return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng_);
    }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
    std::uint32_t pick(std::initializer_list<std::uint32_t> values) {
        return *(values.begin() + uniform(0, std::uint32_t(values.size()) - 1));
    }

    void emit(std::uint32_t op, std::uint32_t g = 0, std::uint32_t b = 0, std::uint32_t a = 0) {
        program_.push_back({std::uint8_t(op), std::uint8_t(g), std::uint8_t(b), std::uint8_t(a)});
        ++instructions_;
    }
    void extension(Pixel p) { program_.push_back(p); }

    Tensor allocate(std::uint32_t dtype, std::uint32_t rows, std::uint32_t cols) {
        Tensor t{uniform(0, 3), cursor_, rows, cols, dtype};
        cursor_ += rows + uniform(0, 1);
        width_ = std::max(width_, t.x + t.pixel_width());
        return t;
    }

    // Declares t under a fresh id (ids 0-199, reused cyclically), or under `id` when given.
    std::uint8_t declare(const Tensor& t, std::optional<std::uint8_t> reuse = std::nullopt) {
        const std::uint8_t id = reuse ? *reuse : std::uint8_t(next_id_++ % 200);
        emit(OP_TENSOR, id, t.dtype, 0);
        extension(
            {std::uint8_t(t.x), std::uint8_t(t.x >> 8), std::uint8_t(t.y), std::uint8_t(t.y >> 8)});
        extension({std::uint8_t(t.rows), std::uint8_t(t.rows >> 8), std::uint8_t(t.cols),
                   std::uint8_t(t.cols >> 8)});
        std::erase_if(declared_, [&](const Declared& d) { return d.id == id; });
        declared_.push_back({id, t});
        return id;
    }

    std::uint8_t fresh(std::uint32_t dtype, std::uint32_t rows, std::uint32_t cols) {
        return declare(allocate(dtype, rows, cols));
    }

    const Declared* any_declared() {
        return declared_.empty() ? nullptr
                                 : &declared_[uniform(0, std::uint32_t(declared_.size()) - 1)];
    }
    const Declared* declared_i32() {
        std::vector<const Declared*> candidates;
        for (const auto& d : declared_)
            if (d.tensor.dtype == DTYPE_I32) candidates.push_back(&d);
        return candidates.empty() ? nullptr
                                  : candidates[uniform(0, std::uint32_t(candidates.size()) - 1)];
    }

    // The instructions the table describes completely (one pixel, SHAPE_SAME, LOWER_WORDS):
    // generated from their row alone, as kinds 10 and up.
    static std::vector<const InstructionInfo*> table_generated() {
        std::vector<const InstructionInfo*> list;
        for (const InstructionInfo& info : instruction_table())
            if (info.length == 1 && info.shape == SHAPE_SAME && info.lowering == LOWER_WORDS)
                list.push_back(&info);
        return list;
    }

    // One instance of a table-generated instruction: dtypes from its masks and shared-dtype
    // group, one shape for every operand, an output in place where the row allows it.
    void from_table(const InstructionInfo& info) {
        const std::uint32_t rows = uniform(1, 4), cols = uniform(1, 12);
        std::array<std::uint32_t, 3> dtypes{};
        std::optional<std::uint32_t> shared;
        for (std::uint32_t i = 0; i < info.arity; ++i) {
            std::vector<std::uint32_t> allowed;
            for (std::uint32_t d = DTYPE_U8; d <= DTYPE_I32; ++d)
                if (info.dtypes[i] == 0 || (info.dtypes[i] >> d & 1u)) allowed.push_back(d);
            dtypes[i] = allowed[uniform(0, std::uint32_t(allowed.size()) - 1)];
            if (info.same_dtype >> i & 1u) {
                if (shared) dtypes[i] = *shared;
                shared = dtypes[i];
            }
        }
        std::array<std::uint8_t, 3> ids{};
        for (std::uint32_t i = 0; i < info.arity; ++i)
            if (!info.writes_operand(i)) ids[i] = fresh(dtypes[i], rows, cols);
        for (std::uint32_t i = 0; i < info.arity; ++i) {
            if (!info.writes_operand(i)) continue;
            ids[i] = fresh(dtypes[i], rows, cols);
            for (std::uint32_t j = 0; j < info.arity; ++j)
                if ((info.in_place >> j & 1u) && dtypes[j] == dtypes[i] && chance(0.3))
                    ids[i] = ids[j];
        }
        emit(info.opcode, ids[0], ids[1], ids[2]);
    }

    // Emits instruction kind 0-9, or a table-generated one (random when kind < 0); token_range
    // puts an id out of range into the token list of a gather (kind 7) or an embed (kind 8).
    void random_instruction(int kind = -1, bool token_range = false) {
        static const std::vector<const InstructionInfo*> generated = table_generated();
        const std::uint32_t chosen =
            kind < 0 ? uniform(0, 9 + std::uint32_t(generated.size())) : std::uint32_t(kind);
        if (chosen >= 10) return from_table(*generated[chosen - 10]);
        switch (chosen) {
        case 0:
            emit(OP_DOT_RGB, uniform(1, 7), uniform(1, 7), uniform(1, 7));
            break;
        case 1: {
            const std::uint32_t dt = pick({DTYPE_U8, DTYPE_I8}), r = uniform(1, 3),
                                c = uniform(1, 24);
            const auto a = fresh(dt, r, c), b = fresh(dt, r, c), out = fresh(DTYPE_I32, 1, 1);
            emit(OP_DOT, out, a, b);
            break;
        }
        case 2: {
            const std::uint32_t dt = pick({DTYPE_U8, DTYPE_I8}), m = uniform(1, 9),
                                n = uniform(1, 9), k = uniform(1, 40);
            const auto a = fresh(dt, m, k), b = fresh(dt, n, k), c = fresh(DTYPE_I32, m, n);
            emit(OP_MATMUL, c, a, b);
            break;
        }
        case 3: {
            const Declared* acc = declared_i32();
            const Tensor t = acc ? acc->tensor : allocate(DTYPE_I32, uniform(1, 4), uniform(1, 8));
            const std::uint8_t acc_id = acc ? acc->id : declare(t);
            emit(OP_ADD_BIAS, acc_id, fresh(DTYPE_I32, 1, t.cols));
            break;
        }
        case 4: {
            const Declared* in = declared_i32();
            const Tensor t = in ? in->tensor : allocate(DTYPE_I32, uniform(1, 4), uniform(1, 8));
            const std::uint8_t in_id = in ? in->id : declare(t);
            const std::uint8_t out_id =
                chance(0.3) ? in_id : fresh(pick({DTYPE_U8, DTYPE_I8, DTYPE_I32}), t.rows, t.cols);
            const std::uint32_t multiplier =
                chance(0.5) ? std::uint32_t(rng_()) : uniform(0, 1u << 16) - (1u << 15);
            const std::uint32_t shift = chance(0.2) ? uniform(0, 62) : uniform(4, 24);
            emit(OP_REQUANT, out_id, in_id, 0);
            extension({std::uint8_t(multiplier), std::uint8_t(multiplier >> 8),
                       std::uint8_t(multiplier >> 16), std::uint8_t(multiplier >> 24)});
            extension({std::uint8_t(shift), std::uint8_t(uniform(0, 255)), 0, 0});
            break;
        }
        case 5: {
            const Declared* in = any_declared();
            if (!in) return;
            const Declared copy = *in;
            const std::uint8_t out_id =
                chance(0.5) ? copy.id
                            : fresh(copy.tensor.dtype, copy.tensor.rows, copy.tensor.cols);
            emit(OP_RELU, out_id, copy.id);
            break;
        }
        case 6: {
            const Declared* in = any_declared();
            if (!in) return;
            const Declared copy = *in;
            emit(OP_ARGMAX, fresh(pick({DTYPE_U16, DTYPE_I32}), copy.tensor.rows, 1), copy.id);
            break;
        }
        case 7: {
            const std::uint32_t rows = uniform(1, 20), dims = uniform(1, 16);
            const auto table = allocate(pick({DTYPE_U8, DTYPE_I8}), rows, dims);
            const std::uint32_t dt = pick({DTYPE_U8, DTYPE_U16, DTYPE_I32});
            const std::uint32_t token_rows = uniform(1, 2), token_cols = uniform(1, 8);
            const Tensor tokens = allocate(dt, token_rows, token_cols);
            std::vector<std::int64_t> ids(std::size_t(token_rows) * token_cols);
            for (auto& id : ids)
                id = rows > 1 ? uniform(1, rows - 1) : 0;
            if (chance(0.4)) ids[uniform(0, std::uint32_t(ids.size()) - 1)] = 0;
            if (token_range) {
                ids[uniform(0, std::uint32_t(ids.size()) - 1)] =
                    dt == DTYPE_I32 && chance(0.5) ? -1 : std::int64_t(rows + uniform(0, 3));
                std::replace(ids.begin(), ids.end(), std::int64_t(0), std::int64_t(rows > 1));
            }
            data_.push_back({tokens, ids});
            const auto table_id = declare(table), tokens_id = declare(tokens);
            emit(OP_GATHER_MEAN, fresh(DTYPE_I32, 1, dims), table_id, tokens_id);
            break;
        }
        case 8: {
            const std::uint32_t rows = uniform(1, 20), dims = uniform(1, 9);
            const std::uint32_t dt = pick({DTYPE_U8, DTYPE_I8});
            const auto table = allocate(dt, rows, dims);
            const std::uint32_t token_dt = pick({DTYPE_U8, DTYPE_U16, DTYPE_I32});
            const std::uint32_t batch = uniform(1, 4), window = uniform(1, 5);
            const Tensor tokens = allocate(token_dt, batch, window);
            std::vector<std::int64_t> ids(std::size_t(batch) * window);
            for (auto& id : ids)
                id = uniform(0, rows - 1);
            if (token_range)
                ids[uniform(0, std::uint32_t(ids.size()) - 1)] =
                    token_dt == DTYPE_I32 && chance(0.5) ? -1 : std::int64_t(rows + uniform(0, 3));
            data_.push_back({tokens, ids});
            const auto table_id = declare(table), tokens_id = declare(tokens);
            emit(OP_EMBED, fresh(dt, batch, window * dims), table_id, tokens_id);
            break;
        }
        default: // A redeclaration of an existing tensor (no effect on the image).
            if (const Declared* d = any_declared()) {
                const Declared copy = *d;
                declare(copy.tensor, copy.id);
            }
            break;
        }
    }

    std::mt19937_64 rng_;
    std::vector<Pixel> program_;
    std::uint32_t instructions_ = 0;
    std::uint32_t cursor_ = first_tensor_row, width_ = 8, next_id_ = 0;
    std::vector<Declared> declared_;
    std::vector<std::pair<Tensor, std::vector<std::int64_t>>> data_;
};

} // namespace

GeneratedProgram generate_program(std::uint64_t seed) {
    Generator gen(seed * 0x9E3779B97F4A7C15ull + 1);
    // Mutations: 0 = none (two thirds of programs), else one fault-provoking change.
    const std::uint32_t mutation = gen.chance(0.66) ? 0 : gen.uniform(1, 10);
    const std::uint32_t count = gen.uniform(1, 12);
    const std::uint32_t range_at = mutation == 7 ? gen.uniform(0, count) : count + 1;
    for (std::uint32_t i = 0; i <= count; ++i) {
        if (i == range_at) // a gather or an embed with a bad token id
            gen.random_instruction(gen.chance(0.5) ? 7 : 8, true);
        if (i < count) gen.random_instruction();
    }

    std::string what = "none";
    switch (mutation) {
    case 1:
        what = "undefined tensor";
        gen.emit(OP_RELU, 250, 251);
        break;
    case 2:
        what = "reserved channel";
        gen.emit(OP_ARGMAX, 0, 0, 9);
        break;
    case 3:
        what = "bad opcode";
        gen.emit(gen.pick({2, 3, 64, 90, 200, 255}));
        break;
    case 4: { // A tensor in row 0, or dot_rgb writing row 0.
        what = "program row";
        if (gen.chance(0.5))
            gen.emit(OP_DOT_RGB, 1, 2, 0);
        else
            gen.declare(Tensor{0, 0, 1, 1, DTYPE_U8});
        break;
    }
    case 5: { // relu into a region that overlaps its input without being the same region.
        what = "overlap";
        const Tensor in = gen.allocate(DTYPE_I32, 3, 4);
        Tensor out = in;
        out.y += 1; // same shape, one row lower: the rows below `in` are reserved here
        gen.cursor_ += 1;
        const auto in_id = gen.declare(in);
        gen.emit(OP_RELU, gen.declare(out), in_id);
        break;
    }
    case 6: { // Shapes that do not fit.
        what = "shape mismatch";
        const auto a = gen.fresh(DTYPE_I8, 2, 8), b = gen.fresh(DTYPE_I8, 3, 9);
        gen.emit(OP_MATMUL, gen.fresh(DTYPE_I32, 2, 3), a, b);
        break;
    }
    case 7:
        what = "token range";
        break;
    case 8: { // Mixed signedness.
        what = "bad dtype";
        const auto a = gen.fresh(DTYPE_U8, 1, 4), b = gen.fresh(DTYPE_I8, 1, 4);
        gen.emit(OP_DOT, gen.fresh(DTYPE_I32, 1, 1), a, b);
        break;
    }
    case 10: { // A 3-pixel instruction cut by the end of row 0, after padding to fit the tensors.
        what = "truncated";
        while (gen.program_.size() < gen.width_ + 2)
            gen.emit(OP_DOT_RGB, 1, 2, 7);
        gen.declare(Tensor{0, first_tensor_row, 1, 1, DTYPE_U8});
        break;
    }
    default:
        break;
    }
    const bool halt = mutation != 10 && gen.chance(0.8);
    if (halt) gen.emit(OP_HALT);

    // Often exactly as wide as the program (its last instruction in pixel (W-1, 0), which runs:
    // the seed's rule), else wider.
    std::uint32_t width = std::max<std::uint32_t>(gen.width_, std::uint32_t(gen.program_.size())) +
                          (gen.chance(0.3) ? 0 : gen.uniform(1, 6));
    std::uint32_t height = gen.cursor_ + gen.uniform(0, 3);
    if (mutation == 10) width = std::uint32_t(gen.program_.size()) - 1;
    if (mutation == 9) { // Shrink the image under the tensors (OUT_OF_BOUNDS) or cut row 0.
        if (gen.chance(0.5) && height > first_tensor_row + 1) {
            what = "shrunken height";
            height = gen.uniform(first_tensor_row, height - 1);
        } else {
            what = "shrunken width";
            const std::uint32_t cut = gen.uniform(1, 2), size = std::uint32_t(gen.program_.size());
            width = size > cut ? size - cut : 1; // unsigned: never wrap below 1
        }
    }

    Image image(width, height);
    for (std::uint32_t y = 1; y < height; ++y)
        for (std::uint32_t x = 0; x < width; ++x) {
            Pixel p{std::uint8_t(gen.rng_()), std::uint8_t(gen.rng_()), std::uint8_t(gen.rng_()),
                    std::uint8_t(gen.rng_())};
            if (y < first_tensor_row && gen.chance(0.15)) p.r = 0; // zero-delimited vectors
            image.set_pixel(x, y, p);
        }
    for (const auto& [tensor, values] : gen.data_) {
        if (tensor.y + tensor.rows > height) continue;
        for (std::size_t i = 0; i < values.size(); ++i)
            store_element(image, tensor, std::uint32_t(i / tensor.cols),
                          std::uint32_t(i % tensor.cols), values[i]);
    }
    for (std::uint32_t x = 0; x < width && x < gen.program_.size(); ++x)
        image.set_pixel(x, 0, gen.program_[x]);
    if (mutation == 3 && gen.chance(0.5)) { // corrupt a random byte of row 0 as well
        const std::uint32_t x =
            gen.uniform(0, std::min<std::uint32_t>(width, std::uint32_t(gen.program_.size())) - 1);
        Pixel p = image.pixel(x, 0);
        (&p.r)[gen.uniform(0, 3)] = std::uint8_t(gen.rng_());
        image.set_pixel(x, 0, p);
        what = "corrupted byte";
    }

    GeneratedProgram result{std::move(image), {}};
    result.summary = "seed " + std::to_string(seed) + ": " + std::to_string(width) + "x" +
                     std::to_string(height) + ", " + std::to_string(gen.instructions_) +
                     " instructions, mutation: " + what;
    return result;
}

} // namespace pxtest
