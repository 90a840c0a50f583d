// Random program generation: a bump allocator places tensors below the seed-style vector rows
// (1-7), instructions are chosen with fitting shapes, the data is random (or shaped where the
// result would otherwise be trivial: where rows, attention values, rmsnorm gains), and an optional
// mutation breaks one rule of the protocol so that the program faults.
#include "program_generator.hpp"

#include "pxvm/program.hpp"
#include "pxvm/program_writer.hpp"
#include "pxvm/protocol.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
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

    std::int64_t signed_uniform(std::int64_t lo, std::int64_t hi) {
        return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_);
    }
    // 1, 2, ... count, each value's bit: one or (sometimes) two rules of an instruction to break.
    std::uint32_t breaks(std::uint32_t count) {
        std::uint32_t mask = 1u << uniform(0, count - 1);
        if (chance(0.3)) mask |= 1u << uniform(0, count - 1);
        return mask;
    }

    void emit(std::uint32_t op, std::uint32_t g = 0, std::uint32_t b = 0, std::uint32_t a = 0) {
        program_.push_back({std::uint8_t(op), std::uint8_t(g), std::uint8_t(b), std::uint8_t(a)});
        ++instructions_;
    }
    void extension(Pixel p) { program_.push_back(p); }
    // An instruction of several pixels from the library's encoder (pxvm/program_writer.hpp).
    void emit(const std::vector<Pixel>& encoded) {
        emit(encoded[0].r, encoded[0].g, encoded[0].b, encoded[0].a);
        for (std::size_t i = 1; i < encoded.size(); ++i)
            extension(encoded[i]);
    }

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
    // A declared tensor that `fits` (a copy: declarations move the list), if any.
    template <class Fits> std::optional<Declared> declared_if(Fits fits) {
        std::vector<const Declared*> candidates;
        for (const auto& d : declared_)
            if (fits(d.tensor)) candidates.push_back(&d);
        if (candidates.empty()) return std::nullopt;
        return *candidates[uniform(0, std::uint32_t(candidates.size()) - 1)];
    }
    const Declared* declared_i32() {
        std::vector<const Declared*> candidates;
        for (const auto& d : declared_)
            if (d.tensor.dtype == DTYPE_I32) candidates.push_back(&d);
        return candidates.empty() ? nullptr
                                  : candidates[uniform(0, std::uint32_t(candidates.size()) - 1)];
    }

    // Values stored over the random bytes of t once the image is made (row-major).
    void fill(const Tensor& t, std::vector<std::int64_t> values) {
        data_.push_back({t, std::move(values)});
    }
    // Fills t with values in [-amplitude, amplitude], or leaves its random bytes when amplitude is
    // 0 (u8 and i8: every value of the dtype).
    void fill_within(const Tensor& t, std::int64_t amplitude) {
        if (amplitude == 0) return;
        std::vector<std::int64_t> values(std::size_t(t.rows) * t.cols);
        for (auto& v : values)
            v = std::clamp(signed_uniform(-amplitude, amplitude), dtype_min(t.dtype),
                           dtype_max(t.dtype));
        fill(t, std::move(values));
    }
    // A region of `dtype` rows x cols that overlaps t without being the same region: from t's
    // first pixel, or one pixel to its right; the rows and columns it needs are reserved.
    Tensor overlapping(const Tensor& t, std::uint32_t dtype, std::uint32_t rows,
                       std::uint32_t cols) {
        Tensor o{t.x, t.y, rows, cols, dtype};
        if (o == t) o.x += t.pixel_width() >= 2 ? 1 : 0;
        if (o == t) o.y += 1; // a one-pixel-wide t of several rows (callers avoid 1x1 pixel)
        cursor_ = std::max(cursor_, o.y + o.rows);
        width_ = std::max(width_, o.x + o.pixel_width());
        return o;
    }
    // An id no declaration of the generator uses (ids 0-199 are).
    std::uint8_t undeclared_id() { return std::uint8_t(uniform(200, 249)); }

    // n distinct (slot, position) pairs below slots x positions, flattened, in increasing order
    // (kvstore's rule): often consecutive positions of one slot, as a prompt fills a cache.
    std::vector<std::int64_t> sorted_where(std::uint32_t n, std::uint32_t slots,
                                           std::uint32_t positions) {
        std::vector<std::uint32_t> cells;
        if (n <= positions && chance(0.4)) {
            const std::uint32_t b = uniform(0, slots - 1), p0 = uniform(0, positions - n);
            for (std::uint32_t i = 0; i < n; ++i)
                cells.push_back(b * positions + p0 + i);
        } else {
            while (cells.size() < n) {
                const std::uint32_t cell = uniform(0, slots * positions - 1);
                if (std::find(cells.begin(), cells.end(), cell) == cells.end())
                    cells.push_back(cell);
            }
            std::sort(cells.begin(), cells.end());
        }
        std::vector<std::int64_t> where;
        for (const std::uint32_t cell : cells) {
            where.push_back(cell / positions);
            where.push_back(cell % positions);
        }
        return where;
    }
    // Any n (slot, position) pairs below slots x positions: attend's rows come in any order.
    std::vector<std::int64_t> any_where(std::uint32_t n, std::uint32_t slots,
                                        std::uint32_t positions) {
        std::vector<std::int64_t> where;
        for (std::uint32_t i = 0; i < n; ++i) {
            where.push_back(uniform(0, slots - 1));
            where.push_back(uniform(0, positions - 1));
        }
        return where;
    }
    // Breaks one row of `where` so that check_where refuses it (TOKEN_RANGE): a slot or position
    // past the cache, a negative one (i32), or, for kvstore (`ordered`), a row out of order or
    // repeated.
    void break_where(std::vector<std::int64_t>& where, std::uint32_t dtype, std::uint32_t slots,
                     std::uint32_t positions, bool ordered) {
        const std::uint32_t n = std::uint32_t(where.size() / 2), r = uniform(0, n - 1);
        const std::uint32_t how = uniform(0, ordered && n >= 2 ? 3 : 1);
        if (how >= 2) { // rows r and r + 1 (or r - 1 and r) swapped, or the first repeated
            const std::uint32_t a = r + 1 < n ? r : r - 1;
            if (how == 2)
                for (std::uint32_t c = 0; c < 2; ++c)
                    std::swap(where[2 * a + c], where[2 * (a + 1) + c]);
            else
                for (std::uint32_t c = 0; c < 2; ++c)
                    where[2 * (a + 1) + c] = where[2 * a + c];
            return;
        }
        where[2 * r + how] = dtype == DTYPE_I32 && chance(0.3)
                                 ? -std::int64_t(uniform(1, 3))
                                 : std::int64_t((how == 0 ? slots : positions) + uniform(0, 2));
    }

    // The instructions the table describes completely (one pixel, SHAPE_SAME, LOWER_WORDS):
    // generated from their row alone, as kinds 16 and up.
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

    // ---- The transformer instructions. Each builds a valid instance with fitting shapes and
    // data, or, given `broken` bits, one with those rules broken (a fault of the checks, in their
    // order when two are broken); token_range breaks a row of `where` instead (TOKEN_RANGE).

    // add acc, in (i32, saturating): a residual onto a declared i32 tensor, in place (in is acc)
    // or from fresh values, of which some sit near the i32 limits. Breaks: 1 in of another shape,
    // 2 an operand not i32, 4 in partly over acc.
    void add(std::uint32_t broken = 0) {
        const auto acc = broken == 0 && chance(0.5)
                             ? declared_if([](const Tensor& t) { return t.dtype == DTYPE_I32; })
                             : std::nullopt;
        const std::uint32_t acc_dtype =
            broken & 2 && chance(0.5) ? pick({DTYPE_I8, DTYPE_U16}) : DTYPE_I32;
        const Tensor a =
            acc ? acc->tensor : allocate(acc_dtype, uniform(broken & 4 ? 2 : 1, 4), uniform(1, 12));
        const std::uint8_t acc_id = acc ? acc->id : declare(a);
        const auto values = [&](const Tensor& t) {
            if (t.dtype != DTYPE_I32 || chance(0.3)) return; // random bytes: any i32
            std::vector<std::int64_t> v(std::size_t(t.rows) * t.cols);
            for (auto& x : v)
                x = chance(0.3) ? (chance(0.5) ? INT32_MAX : INT32_MIN) - signed_uniform(-9, 9)
                                : signed_uniform(-100000, 100000);
            for (auto& x : v)
                x = std::clamp<std::int64_t>(x, INT32_MIN, INT32_MAX);
            fill(t, std::move(v));
        };
        if (!acc) values(a);
        std::uint8_t in_id;
        if (broken & 4) {
            in_id = declare(overlapping(a, DTYPE_I32, a.rows, a.cols));
        } else if (broken == 0 && chance(0.25)) {
            in_id = acc_id; // in place: acc doubles
        } else {
            const std::uint32_t in_dtype =
                broken & 2 && acc_dtype == DTYPE_I32 ? pick({DTYPE_I8, DTYPE_U8}) : DTYPE_I32;
            const Tensor in = allocate(in_dtype, a.rows + (broken & 1 ? uniform(0, 1) : 0),
                                       a.cols + (broken & 1 ? uniform(1, 2) : 0));
            values(in);
            in_id = declare(in);
        }
        emit(OP_ADD, acc_id, in_id);
    }

    // lut out, in, table: u8 or i8 throughout; in declared (a requant's output, say) or fresh,
    // out in place (exactly in) or fresh. Breaks: 1 a table of the other dtype, 2 in of i32,
    // 4 a table not 1x256, 8 out of another shape, 16 out partly over in, 32 out over the table.
    void lut(std::uint32_t broken = 0) {
        const std::uint32_t dt = pick({DTYPE_U8, DTYPE_I8});
        const auto declared = broken == 0 && chance(0.4) ? declared_if([&](const Tensor& t) {
            return t.dtype == dt && t.rows <= 9 && t.cols <= 48;
        })
                                                         : std::nullopt;
        const Tensor in = declared ? declared->tensor
                                   : allocate(broken & 2 ? DTYPE_I32 : dt,
                                              uniform(broken & 16 ? 2 : 1, 4), uniform(1, 16));
        const std::uint8_t in_id = declared ? declared->id : declare(in);
        std::uint32_t table_rows = 1, table_cols = 256;
        if (broken & 4) (chance(0.5) ? table_rows : table_cols) += chance(0.5) ? 1 : -1;
        if (table_rows == 0) table_rows = 2;
        const Tensor table = allocate(broken & 1 ? (dt == DTYPE_U8 ? DTYPE_I8 : DTYPE_U8) : dt,
                                      table_rows, table_cols);
        const std::uint8_t table_id = declare(table); // random bytes: any function of a byte
        std::uint8_t out_id;
        if (broken & 32)
            out_id = declare(overlapping(table, dt, in.rows, in.cols));
        else if (broken & 16)
            out_id = declare(overlapping(in, dt, in.rows, in.cols));
        else if (broken & 8)
            out_id = fresh(dt, in.rows + uniform(0, 1), in.cols + uniform(1, 3));
        else
            out_id = chance(0.3) && in.dtype == dt ? in_id : fresh(dt, in.rows, in.cols);
        emit(OP_LUT, out_id, in_id, table_id);
    }

    // rmsnorm out, in, gain, shift: rows of i32 activations (declared, so often clamped at the
    // 2^24 - 1 limit, or fresh values of every magnitude, sometimes a zero row) and a gain whose
    // magnitude the shift mostly matches, so that outputs use the i8 range. Breaks: 1 a shift
    // above 62, 2 a reserved channel set, 4 out not i8, 8 in not i32, 16 gain not 1 x in.cols,
    // 32 out of another shape, 64 out over in, 128 out over gain.
    void rmsnorm(std::uint32_t broken = 0) {
        const auto declared = broken == 0 && chance(0.3) ? declared_if([](const Tensor& t) {
            return t.dtype == DTYPE_I32 && t.rows <= 9 && t.cols <= 40;
        })
                                                         : std::nullopt;
        Tensor in;
        std::uint8_t in_id;
        if (declared) {
            in = declared->tensor;
            in_id = declared->id;
        } else {
            in = allocate(broken & 8 ? pick({DTYPE_I8, DTYPE_U16}) : DTYPE_I32,
                          uniform(broken & 64 ? 2 : 1, 4), uniform(1, 16));
            if (in.dtype == DTYPE_I32) {
                std::vector<std::int64_t> v(std::size_t(in.rows) * in.cols);
                for (std::uint32_t r = 0; r < in.rows; ++r) {
                    const std::int64_t amplitude = (std::int64_t(1) << uniform(0, 27)) - 1;
                    const bool zero = chance(0.1);
                    for (std::uint32_t c = 0; c < in.cols; ++c)
                        v[std::size_t(r) * in.cols + c] =
                            zero ? 0 : signed_uniform(-amplitude, amplitude);
                }
                fill(in, std::move(v));
            }
            in_id = declare(in);
        }
        const Tensor gain = allocate(DTYPE_I32, broken & 16 && chance(0.5) ? 2 : 1,
                                     in.cols + (broken & 16 ? uniform(1, 2) : 0));
        const std::uint32_t gain_bits = chance(0.85) ? uniform(8, 31) : uniform(0, 7);
        std::vector<std::int64_t> g(std::size_t(gain.rows) * gain.cols);
        for (auto& x : g)
            x = gain_bits == 31
                    ? signed_uniform(INT32_MIN, INT32_MAX)
                    : signed_uniform(-(std::int64_t(1) << gain_bits), std::int64_t(1) << gain_bits);
        fill(gain, std::move(g));
        const std::uint8_t gain_id = declare(gain);
        const std::uint32_t out_dtype = broken & 4 ? pick({DTYPE_U8, DTYPE_I32}) : DTYPE_I8;
        std::uint8_t out_id;
        if (broken & 64)
            out_id = declare(overlapping(in, out_dtype, in.rows, in.cols));
        else if (broken & 128)
            out_id = declare(overlapping(gain, out_dtype, in.rows, in.cols));
        else
            out_id = fresh(out_dtype, in.rows + (broken & 32 ? uniform(0, 1) : 0),
                           in.cols + (broken & 32 ? uniform(1, 2) : 0));
        // |x| / root is about 1 / sqrt(cols), so gain / 2^shift of 2^4 ... 2^9 spreads the outputs
        std::uint32_t shift = chance(0.1)
                                  ? uniform(0, 62)
                                  : std::uint32_t(std::max(0, int(gain_bits) - int(uniform(4, 9))));
        if (broken & 1) shift = uniform(63, 255);
        std::vector<Pixel> pixels = encode_rmsnorm(out_id, in_id, gain_id, std::uint8_t(shift));
        if (broken & 2) (&pixels[1].g)[uniform(0, 2)] = std::uint8_t(uniform(1, 255));
        emit(pixels);
    }

    // kvstore cache, rows, where: distinct (slot, position) rows in increasing order into a cache
    // of u8 or i8 blocks of C = 4, 8 or 12 columns per slot (fresh, or a declared tensor cut into
    // such blocks). Breaks: 1 C not filling whole pixels, 2 cache.cols not a multiple of C,
    // 4 where not rows.rows x 2, 8 cache and rows of different dtypes, 16 where not u16 or i32,
    // 32 cache over rows, 64 cache over where.
    void kvstore(std::uint32_t broken = 0, bool token_range = false) {
        std::uint32_t dt = pick({DTYPE_U8, DTYPE_I8});
        std::optional<Declared> cache;
        std::uint32_t block = 4 * uniform(1, 3);
        if (broken == 0 && chance(0.3))
            cache = declared_if([&](const Tensor& t) {
                return (t.dtype == DTYPE_U8 || t.dtype == DTYPE_I8) && t.cols % 4 == 0;
            });
        if (cache) { // blocks of a multiple of 4 columns that divides the cache's
            dt = cache->tensor.dtype;
            do
                block = 4 * uniform(1, cache->tensor.cols / 4);
            while (cache->tensor.cols % block != 0);
        }
        if (broken & 1) block += uniform(1, 3);
        const std::uint32_t slots = cache ? cache->tensor.cols / block : uniform(1, 4);
        const std::uint32_t positions = cache ? cache->tensor.rows : uniform(1, 10);
        const std::uint32_t n = uniform(1, std::min(6u, slots * positions));
        const Tensor rows = allocate(broken & 8 ? (dt == DTYPE_U8 ? DTYPE_I8 : DTYPE_U8) : dt, n,
                                     block); // random bytes
        const std::uint32_t where_dtype =
            broken & 16 ? pick({DTYPE_U8, DTYPE_I8}) : pick({DTYPE_U16, DTYPE_I32});
        std::uint32_t where_rows = n, where_cols = 2;
        if (broken & 4) (chance(0.5) ? where_rows : where_cols) += 1;
        const Tensor where = allocate(where_dtype, where_rows, where_cols);
        std::vector<std::int64_t> w = sorted_where(n, slots, positions);
        if (token_range) break_where(w, where_dtype, slots, positions, true);
        w.resize(std::size_t(where_rows) * where_cols, 0);
        fill(where, std::move(w));
        const std::uint32_t cache_cols = slots * block + (broken & 2 ? uniform(1, 3) : 0);
        std::uint8_t cache_id;
        if (cache)
            cache_id = cache->id;
        else if (broken & 32)
            cache_id = declare(overlapping(rows, dt, positions, cache_cols));
        else if (broken & 64)
            cache_id = declare(overlapping(where, dt, positions, cache_cols));
        else
            cache_id = fresh(dt, positions, cache_cols);
        const std::uint8_t rows_id = declare(rows), where_id = declare(where);
        emit(OP_KVSTORE, cache_id, rows_id, where_id);
    }

    // attend's score multiplier and shift: mostly a temperature that spreads the score distances
    // of `hd` products of values within ±amplitude over the table's indices, else anything
    // (an all-255 index saturates to the best positions only), or nearly 0 (a plain mean).
    std::pair<std::uint32_t, std::uint32_t> attend_scale(std::uint32_t hd,
                                                         std::uint32_t amplitude) {
        const std::uint32_t mode = uniform(0, 9);
        if (mode < 6) {
            const std::uint32_t shift = uniform(8, 30);
            const std::uint64_t typical =
                std::max<std::uint64_t>(1, std::uint64_t(hd) * amplitude * amplitude / 2);
            const std::uint64_t m = (std::uint64_t(uniform(2, 96)) << shift) / typical;
            return {std::uint32_t(std::min<std::uint64_t>(m, UINT32_MAX)), shift};
        }
        if (mode < 8) return {std::uint32_t(rng_()), uniform(0, 62)};
        return {uniform(0, 3), uniform(0, 2)};
    }

    // attend out, q, cache, where: q.rows queries of heads x hd columns (hd 1-8, or a multiple of
    // 4: the kernels' whole-word path) against a cache of 1-3 slots of 1-12 positions, each row
    // reading positions 0 ... p of its slot. q is declared (an rmsnorm's output, say) or fresh;
    // the values are random bytes or small (ties). Breaks: 1 heads 0, 2 a score shift above 62,
    // 4 reserved channel A set, 8 heads not dividing q.cols, 16 cache.cols not a multiple of
    // 2 q.cols, 32 a cache of 1025 positions, 64 where not q.rows x 2, 128 out of another shape,
    // 256 an operand of another dtype, 512 out over an input, 1024 where undeclared.
    void attend(std::uint32_t broken = 0, bool token_range = false) {
        const auto declared = broken == 0 && chance(0.3) ? declared_if([](const Tensor& t) {
            return t.dtype == DTYPE_I8 && t.cols <= 32 && t.rows <= 6;
        })
                                                         : std::nullopt;
        std::uint32_t heads = uniform(1, 4), hd = chance(0.25) ? 4 * uniform(1, 4) : uniform(1, 8);
        if (declared) { // a divisor of its columns
            hd = declared->tensor.cols;
            do
                heads = uniform(1, hd);
            while (hd % heads != 0);
            hd /= heads;
        }
        const std::uint32_t d = heads * hd, n = declared ? declared->tensor.rows : uniform(1, 4);
        const std::uint32_t slots = uniform(1, 3), positions = broken & 32 ? 1025 : uniform(1, 12);
        const std::int64_t amplitude = pick({0, 0, 1, 4, 16});        // 0: random bytes
        const std::uint32_t wrong = broken & 256 ? uniform(0, 3) : 4; // the operand of a bad dtype
        const auto i8_unless = [&](std::uint32_t operand) {
            return wrong == operand ? pick({DTYPE_U8, DTYPE_I32}) : DTYPE_I8;
        };
        const Tensor cache =
            allocate(i8_unless(2), positions, slots * 2 * d + (broken & 16 ? uniform(1, 3) : 0));
        if (!(broken & 32)) fill_within(cache, amplitude);
        Tensor q;
        std::uint8_t q_id;
        if (declared) {
            q = declared->tensor;
            q_id = declared->id;
        } else {
            q = allocate(i8_unless(1), n, d);
            fill_within(q, amplitude);
            q_id = declare(q);
        }
        const std::uint32_t where_dtype =
            wrong == 3 ? pick({DTYPE_U8, DTYPE_I8}) : pick({DTYPE_U16, DTYPE_I32});
        std::uint32_t where_rows = n, where_cols = 2;
        if (broken & 64) (chance(0.5) ? where_rows : where_cols) += 1;
        const Tensor where = allocate(where_dtype, where_rows, where_cols);
        std::vector<std::int64_t> w = any_where(n, slots, positions);
        if (token_range) break_where(w, where_dtype, slots, positions, false);
        w.resize(std::size_t(where_rows) * where_cols, 0);
        fill(where, std::move(w));
        const std::uint8_t cache_id = declare(cache);
        const std::uint8_t where_id = broken & 1024 ? undeclared_id() : declare(where);
        std::uint8_t out_id;
        if (broken & 512) {
            const std::uint32_t which = uniform(0, 2);
            const Tensor over = which == 0 ? q : which == 1 ? cache : where;
            out_id = declare(overlapping(over, i8_unless(0), n, d));
        } else {
            out_id = fresh(i8_unless(0), n + (broken & 128 ? uniform(0, 1) : 0),
                           d + (broken & 128 ? uniform(1, 2) : 0));
        }
        if (broken & 1) heads = 0;
        if (broken & 8) // a count that does not divide d (up to 255)
            do
                heads = uniform(2, std::min(255u, d + 8));
            while (d % heads == 0);
        auto [multiplier, shift] = attend_scale(hd, amplitude ? std::uint32_t(amplitude) : 128);
        if (broken & 2) shift = uniform(63, 255);
        emit(encode_attend(out_id, q_id, cache_id, where_id, std::uint8_t(heads), multiplier,
                           std::uint8_t(shift), broken & 4 ? std::uint8_t(uniform(1, 255)) : 0));
    }

    // A step of an attention layer: kvstore writes the keys and values (2 d columns a row) of n
    // new tokens into a cache of several slots and positions, then attend reads them back for the
    // same tokens' queries, through the same where; sometimes a one-token step follows, as
    // decoding does.
    void attention_block() {
        const std::uint32_t heads = uniform(1, 4), hd = uniform(1, 6) * (heads % 2 ? 2 : 1);
        const std::uint32_t d = heads * hd; // even: 2 d i8 columns fill whole pixels
        const std::uint32_t slots = uniform(1, 3), positions = uniform(2, 12);
        const std::int64_t amplitude = pick({0, 1, 4, 16});
        const Tensor cache = allocate(DTYPE_I8, positions, slots * 2 * d);
        fill_within(cache, amplitude);
        const std::uint8_t cache_id = declare(cache);
        const auto [multiplier, shift] =
            attend_scale(hd, amplitude ? std::uint32_t(amplitude) : 128);
        const std::uint32_t steps = chance(0.4) ? 2 : 1;
        for (std::uint32_t step = 0; step < steps; ++step) {
            const std::uint32_t n = step ? 1 : uniform(1, std::min(4u, slots * positions));
            const Tensor rows = allocate(DTYPE_I8, n, 2 * d), q = allocate(DTYPE_I8, n, d);
            fill_within(rows, amplitude);
            fill_within(q, amplitude);
            const Tensor where = allocate(pick({DTYPE_U16, DTYPE_I32}), n, 2);
            fill(where, sorted_where(n, slots, positions));
            const std::uint8_t rows_id = declare(rows), where_id = declare(where);
            emit(OP_KVSTORE, cache_id, rows_id, where_id);
            const std::uint8_t q_id = declare(q);
            emit(encode_attend(fresh(DTYPE_I8, n, d), q_id, cache_id, where_id, std::uint8_t(heads),
                               multiplier, std::uint8_t(shift)));
        }
    }

    static constexpr int KIND_GATHER = 7, KIND_EMBED = 8, KIND_KVSTORE = 13, KIND_ATTEND = 14,
                         KIND_TABLE = 16;

    // Emits instruction kind 0-15, or a table-generated one (random when kind < 0); token_range
    // puts an id out of range into the token list of a gather (kind 7) or an embed (kind 8), or a
    // bad row into the where of a kvstore (13) or an attend (14).
    void random_instruction(int kind = -1, bool token_range = false) {
        static const std::vector<const InstructionInfo*> generated = table_generated();
        const std::uint32_t chosen =
            kind < 0 ? uniform(0, KIND_TABLE - 1 + std::uint32_t(generated.size()))
                     : std::uint32_t(kind);
        if (chosen >= KIND_TABLE) return from_table(*generated[chosen - KIND_TABLE]);
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
            // Mostly 8-bit tables; embed copies elements of any dtype.
            const std::uint32_t dt =
                chance(0.6) ? pick({DTYPE_U8, DTYPE_I8}) : pick({DTYPE_U16, DTYPE_I32});
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
        case 10:
            add();
            break;
        case 11:
            lut();
            break;
        case 12:
            rmsnorm();
            break;
        case KIND_KVSTORE:
            kvstore(0, token_range);
            break;
        case KIND_ATTEND:
            attend(0, token_range);
            break;
        case 15:
            attention_block();
            break;
        default: // 9: a redeclaration of an existing tensor (no effect on the image).
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
    // Mutations: 0 = none (two thirds of programs), else one fault-provoking change (11, a broken
    // transformer instruction, three times as often as the others).
    const std::uint32_t mutation = gen.chance(0.66) ? 0 : std::min(gen.uniform(1, 13), 11u);
    const std::uint32_t count = gen.uniform(1, 12);
    const std::uint32_t range_at = mutation == 7 ? gen.uniform(0, count) : count + 1;
    for (std::uint32_t i = 0; i <= count; ++i) {
        if (i == range_at) // a gather or an embed with a bad token id, or a bad where row
            gen.random_instruction(int(gen.pick({Generator::KIND_GATHER, Generator::KIND_EMBED,
                                                 Generator::KIND_KVSTORE, Generator::KIND_ATTEND})),
                                   true);
        if (i < count) gen.random_instruction();
    }

    std::string what = "none";
    std::uint32_t truncated_by = 1; // pixels of the truncated instruction past row 0's end
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
    case 10: { // An instruction of 2-3 pixels cut by the end of row 0 (by `truncated_by`
               // pixels), after padding to fit the tensors.
        what = "truncated";
        while (gen.program_.size() < gen.width_ + 2)
            gen.emit(OP_DOT_RGB, 1, 2, 7);
        switch (gen.uniform(0, 2)) {
        case 0:
            gen.declare(Tensor{0, first_tensor_row, 1, 1, DTYPE_U8});
            break;
        case 1:
            gen.emit(encode_rmsnorm(0, 1, 2, 8));
            break;
        default:
            gen.emit(encode_attend(0, 1, 2, 3, 1, 1000, 16));
            truncated_by = gen.uniform(1, 2);
            break;
        }
        break;
    }
    case 11: { // One of the transformer instructions with one or two of its rules broken.
        const std::uint32_t which = gen.uniform(0, 4);
        std::uint32_t broken = gen.breaks(std::array{3u, 6u, 8u, 7u, 11u}[which]);
        if (which == 4 && broken & 32 && gen.chance(0.7)) // a cache of 1025 positions: rarely
            broken = (broken & ~32u) | 1u;
        what = std::string("broken ") +
               std::array{"add", "lut", "rmsnorm", "kvstore", "attend"}[which] + " (rules " +
               std::to_string(broken) + ")";
        switch (which) {
        case 0:
            gen.add(broken);
            break;
        case 1:
            gen.lut(broken);
            break;
        case 2:
            gen.rmsnorm(broken);
            break;
        case 3:
            gen.kvstore(broken);
            break;
        default:
            gen.attend(broken);
            break;
        }
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
    if (mutation == 10) width = std::uint32_t(gen.program_.size()) - truncated_by;
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
