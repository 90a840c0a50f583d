// Reference semantics of every opcode, written for clarity. The matmul loop is the only one
// shaped for speed (row-by-row dot products over contiguous i16 K, blocked for the cache, its rows
// split across every core), because it checks the largest GPU results.
#include "pxvm/reference_interpreter.hpp"
#include "deadline.hpp"
#include "parallel.hpp"
#include "pxvm_attend_exp.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

namespace px {
namespace {

// Wrap a 64-bit value to i32 (two's complement, modulo 2^32).
std::int32_t wrap32(std::int64_t v) {
    return std::int32_t(std::uint32_t(std::uint64_t(v)));
}

void dot_rgb(Image& image, const Instruction& ins) {
    const std::uint32_t row_a = ins.args[0], row_b = ins.args[1], row_out = ins.args[2];
    std::uint32_t dot = 0;
    for (std::uint32_t x = 0; x < image.width(); ++x) {
        const std::uint32_t a = image.pixel(x, row_a).r, b = image.pixel(x, row_b).r;
        if (a == 0 && b == 0) break;
        dot += a * b;
    }
    dot &= 0xFFFF;
    image.set_pixel(0, row_out, Pixel{std::uint8_t(dot & 255), std::uint8_t(dot >> 8), 0, 0});
}

void dot(Image& image, const Tensor& out, const Tensor& a, const Tensor& b) {
    std::uint32_t sum = 0;
    for (std::uint32_t r = 0; r < a.rows; ++r)
        for (std::uint32_t c = 0; c < a.cols; ++c)
            sum += std::uint32_t(load_element(image, a, r, c) * load_element(image, b, r, c));
    store_element(image, out, 0, 0, std::int32_t(sum));
}

// Copies a u8/i8 tensor into contiguous i16 rows so the inner loop is a plain dot product that
// compilers vectorise (pmaddwd and its successors).
std::vector<std::int16_t> widen(const Image& image, const Tensor& t) {
    std::vector<std::int16_t> v(std::size_t(t.rows) * t.cols);
    for (std::uint32_t r = 0; r < t.rows; ++r) {
        const std::uint8_t* p = image.data() + t.byte_offset(image.width(), r, 0);
        std::int16_t* row = &v[std::size_t(r) * t.cols];
        if (t.dtype == DTYPE_I8)
            for (std::uint32_t c = 0; c < t.cols; ++c)
                row[c] = std::int8_t(p[c]);
        else
            for (std::uint32_t c = 0; c < t.cols; ++c)
                row[c] = p[c];
    }
    return v;
}

// Σ a[k] × b[k] modulo 2^32. Each product of two 8-bit values fits an i32; the sum is unsigned so
// it wraps as the protocol says (and in any order: addition modulo 2^32 is associative).
std::uint32_t dot_row(const std::int16_t* a, const std::int16_t* b, std::uint32_t K) {
    std::uint32_t sum = 0;
    for (std::uint32_t k = 0; k < K; ++k)
        sum += std::uint32_t(std::int32_t(a[k]) * std::int32_t(b[k]));
    return sum;
}

void matmul(Image& image, const Tensor& c, const Tensor& a, const Tensor& b,
            const Deadline& deadline) {
    const std::uint32_t M = c.rows, N = c.cols, K = a.cols;
    const std::vector<std::int16_t> wa = widen(image, a), wb = widen(image, b);
    // c[m][n] for m in [m0, m1), n in [n0, n1). B is walked in blocks of rows that stay in cache
    // while every row of A in the range meets them. Different calls write different pixels.
    const std::uint32_t block = std::max(1u, (256u << 10) / (2 * K));
    const auto tile = [&](std::uint32_t m0, std::uint32_t m1, std::uint32_t n0, std::uint32_t n1) {
        for (std::uint32_t nb = n0; nb < n1; nb += block) {
            const std::uint32_t ne = std::min(n1, nb + block);
            for (std::uint32_t m = m0; m < m1; ++m) {
                if (deadline.passed()) return;
                const std::int16_t* ra = &wa[std::size_t(m) * K];
                std::uint8_t* out = image.data() + c.byte_offset(image.width(), m, 0);
                for (std::uint32_t n = nb; n < ne; ++n) {
                    const std::uint32_t v = dot_row(ra, &wb[std::size_t(n) * K], K);
                    for (std::uint32_t i = 0; i < 4; ++i)
                        out[4 * std::size_t(n) + i] = std::uint8_t(v >> (8 * i));
                }
            }
        }
    };
    const std::uint64_t work = std::uint64_t(M) * N * K;
    if (M >= std::thread::hardware_concurrency()) // the M rows split across the cores
        parallel_for(M, work, [&](std::uint32_t m0, std::uint32_t m1) { tile(m0, m1, 0, N); });
    else // too few rows: split the columns instead
        parallel_for(N, work, [&](std::uint32_t n0, std::uint32_t n1) { tile(0, M, n0, n1); });
}

void add_bias(Image& image, const Tensor& acc, const Tensor& bias) {
    for (std::uint32_t r = 0; r < acc.rows; ++r)
        for (std::uint32_t c = 0; c < acc.cols; ++c)
            store_element(image, acc, r, c,
                          wrap32(load_element(image, acc, r, c) + load_element(image, bias, 0, c)));
}

void requant(Image& image, const Tensor& out, const Tensor& in, const Instruction& ins) {
    const std::int64_t multiplier = ins.multiplier(), zero_point = ins.zero_point();
    const std::uint32_t shift = ins.shift();
    const std::int64_t lo = dtype_min(out.dtype), hi = dtype_max(out.dtype);
    for (std::uint32_t r = 0; r < in.rows; ++r)
        for (std::uint32_t c = 0; c < in.cols; ++c) {
            const std::int64_t p = load_element(image, in, r, c) * multiplier; // |p| <= 2^62
            const std::int64_t q = shift == 0 ? p : (p + (std::int64_t(1) << (shift - 1))) >> shift;
            store_element(image, out, r, c, std::clamp(q + zero_point, lo, hi));
        }
}

void relu(Image& image, const Tensor& out, const Tensor& in) {
    for (std::uint32_t r = 0; r < in.rows; ++r)
        for (std::uint32_t c = 0; c < in.cols; ++c)
            store_element(image, out, r, c,
                          std::max<std::int64_t>(load_element(image, in, r, c), 0));
}

void argmax(Image& image, const Tensor& out, const Tensor& in) {
    for (std::uint32_t r = 0; r < in.rows; ++r) {
        std::uint32_t best = 0;
        std::int64_t best_value = load_element(image, in, r, 0);
        for (std::uint32_t c = 1; c < in.cols; ++c) {
            const std::int64_t v = load_element(image, in, r, c);
            if (v > best_value) best = c, best_value = v; // strict: the lowest index wins ties
        }
        store_element(image, out, r, 0, best);
    }
}

// Floor division for a positive divisor.
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

void gather_mean(Image& image, const Step& step, std::uint32_t count, const Deadline& deadline) {
    const Tensor &out = step.operands[0], &table = step.operands[1], &tokens = step.operands[2];
    std::vector<std::int64_t> sum(table.cols, 0);
    for (std::uint32_t t = 0; t < count; ++t) {
        if (t % 4096 == 0 && deadline.passed()) return;
        const auto id =
            std::uint32_t(load_element(image, tokens, t / tokens.cols, t % tokens.cols));
        for (std::uint32_t d = 0; d < table.cols; ++d)
            sum[d] += load_element(image, table, id, d);
    }
    for (std::uint32_t d = 0; d < table.cols; ++d)
        store_element(image, out, 0, d,
                      count == 0 ? 0 : floor_div(2 * sum[d] + count, 2 * std::int64_t(count)));
}

// out[b][j * E + d] = table[tokens[b][j]][d]: whole rows of the table, so byte copies.
void embed(Image& image, const Step& step) {
    const Tensor &out = step.operands[0], &table = step.operands[1], &tokens = step.operands[2];
    const std::uint32_t w = image.width(), e = table.cols;
    for (std::uint32_t b = 0; b < tokens.rows; ++b)
        for (std::uint32_t j = 0; j < tokens.cols; ++j) {
            const auto id = std::uint32_t(load_element(image, tokens, b, j));
            std::memcpy(image.data() + out.byte_offset(w, b, j * e),
                        image.data() + table.byte_offset(w, id, 0), e * dtype_size(table.dtype));
        }
}

// acc = clamp(acc + in): the residual add saturates instead of wrapping.
void add(Image& image, const Tensor& acc, const Tensor& in) {
    for (std::uint32_t r = 0; r < acc.rows; ++r)
        for (std::uint32_t c = 0; c < acc.cols; ++c)
            store_element(image, acc, r, c,
                          std::clamp<std::int64_t>(load_element(image, acc, r, c) +
                                                       load_element(image, in, r, c),
                                                   INT32_MIN, INT32_MAX));
}

// out = table[0][in + 128] (i8) or table[0][in] (u8).
void lut(Image& image, const Tensor& out, const Tensor& in, const Tensor& table) {
    const std::int64_t offset = in.dtype == DTYPE_I8 ? 128 : 0;
    std::vector<std::int64_t> values(256);
    for (std::uint32_t i = 0; i < 256; ++i)
        values[i] = load_element(image, table, 0, i);
    for (std::uint32_t r = 0; r < in.rows; ++r)
        for (std::uint32_t c = 0; c < in.cols; ++c)
            store_element(image, out, r, c,
                          values[std::size_t(load_element(image, in, r, c) + offset)]);
}

// The largest r with r * r <= n (bit by bit, exact).
std::uint64_t isqrt(std::uint64_t n) {
    std::uint64_t r = 0;
    for (int bit = 31; bit >= 0; --bit) {
        const std::uint64_t candidate = r | std::uint64_t(1) << bit;
        if (candidate * candidate <= n) r = candidate;
    }
    return r;
}

// Per row: x = clamp(in, ±RMSNORM_LIMIT), r = max(isqrt(Σ x²), 1), and
// out = clamp(floor(x·gain / (r·2^shift) + 1/2), −128, 127), computed as floor((A + r) / (2r))
// with A = floor(2·x·gain / 2^shift).
void rmsnorm(Image& image, const Tensor& out, const Tensor& in, const Tensor& gain,
             std::uint32_t shift) {
    const std::int64_t limit = RMSNORM_LIMIT;
    std::vector<std::int64_t> x(in.cols);
    for (std::uint32_t row = 0; row < in.rows; ++row) {
        std::uint64_t squares = 0; // < 32768 · 2^48 = 2^63
        for (std::uint32_t c = 0; c < in.cols; ++c) {
            x[c] = std::clamp(load_element(image, in, row, c), -limit, limit);
            squares += std::uint64_t(x[c] * x[c]);
        }
        const auto r = std::int64_t(std::max<std::uint64_t>(isqrt(squares), 1));
        for (std::uint32_t c = 0; c < in.cols; ++c) {
            const std::int64_t a = (2 * x[c] * load_element(image, gain, 0, c)) >> shift; // < 2^56
            store_element(image, out, row, c,
                          std::clamp<std::int64_t>(floor_div(a + r, 2 * r), -128, 127));
        }
    }
}

// cache[p][b·C + j] = rows[r][j] for each row r with (b, p) = where[r], C = rows.cols.
void kvstore(Image& image, const Step& step) {
    const Tensor &cache = step.operands[0], &rows = step.operands[1], &where = step.operands[2];
    const std::uint32_t w = image.width(), bytes = rows.cols * dtype_size(rows.dtype);
    for (std::uint32_t r = 0; r < rows.rows; ++r) {
        const auto b = std::uint32_t(load_element(image, where, r, 0));
        const auto p = std::uint32_t(load_element(image, where, r, 1));
        std::memcpy(image.data() + cache.byte_offset(w, p, b * rows.cols),
                    image.data() + rows.byte_offset(w, r, 0), bytes);
    }
}

// Per row r with (b, p) = where[r] and per head: scores against keys 0 … p of slot b, table
// exponentials of their distance from the largest, and the exponential-weighted mean of the values,
// rounded once (docs/PROTOCOL.md section 5). The i8 rows are read in place (q, keys and values are
// all i8), so the inner loops are plain dot products and multiply-adds that compilers vectorise.
void attend(Image& image, const Step& step) {
    const Instruction& ins = step.instruction;
    const Tensor &out = step.operands[0], &q = step.operands[1], &cache = step.operands[2],
                 &where = step.operands[3];
    const std::uint32_t d = q.cols, heads = ins.heads(), hd = d / heads, w = image.width();
    const std::uint64_t multiplier = ins.score_multiplier();
    const std::uint32_t shift = ins.score_shift();
    const auto row_at = [&](const Tensor& t, std::uint32_t r, std::uint32_t c) {
        return reinterpret_cast<const std::int8_t*>(image.data() + t.byte_offset(w, r, c));
    };
    std::vector<std::int32_t> scores(cache.rows), e(cache.rows), acc(hd);
    std::vector<std::int64_t> result(d);
    for (std::uint32_t r = 0; r < q.rows; ++r) {
        const auto b = std::uint32_t(load_element(image, where, r, 0));
        const auto p = std::uint32_t(load_element(image, where, r, 1));
        const std::uint32_t keys = b * 2 * d, values = keys + d;
        for (std::uint32_t h = 0; h < heads; ++h) {
            const std::uint32_t c0 = h * hd;
            const std::int8_t* qr = row_at(q, r, c0);
            std::int32_t best = 0;
            for (std::uint32_t t = 0; t <= p; ++t) {
                const std::int8_t* k = row_at(cache, t, keys + c0);
                std::int32_t s = 0; // |s| <= 2^14 · 2^15
                for (std::uint32_t c = 0; c < hd; ++c)
                    s += std::int32_t(qr[c]) * std::int32_t(k[c]);
                scores[t] = s;
                best = t == 0 ? s : std::max(best, s);
            }
            std::int32_t total = 0; // <= 1024 · 2^14
            for (std::uint32_t t = 0; t <= p; ++t) {
                const auto distance = std::uint64_t(std::int64_t(best) - scores[t]); // < 2^30
                e[t] = std::int32_t(
                    ATTEND_EXP[std::min<std::uint64_t>((distance * multiplier) >> shift, 255)]);
                total += e[t];
            }
            std::fill(acc.begin(), acc.end(), 0);
            for (std::uint32_t t = 0; t <= p; ++t) {
                if (e[t] == 0) continue; // adds nothing
                const std::int8_t* v = row_at(cache, t, values + c0);
                // |acc| <= 2^31, reached only at -2^31: the sum fits i32, but a partial sum of
                // mixed signs may not, so accumulate in unsigned arithmetic (wraps back exactly).
                for (std::uint32_t c = 0; c < hd; ++c)
                    acc[c] = std::int32_t(std::uint32_t(acc[c]) +
                                          std::uint32_t(e[t] * std::int32_t(v[c])));
            }
            for (std::uint32_t c = 0; c < hd; ++c) // total >= ATTEND_EXP[0] > 0
                result[c0 + c] =
                    floor_div(2 * std::int64_t(acc[c]) + total, 2 * std::int64_t(total));
        }
        for (std::uint32_t c = 0; c < d; ++c)
            store_element(image, out, r, c, result[c]);
    }
}

// 1.8·10^13 for large counts, the digits otherwise.
std::string format_count(std::uint64_t n) {
    if (n < 1000000) return std::to_string(n);
    int exponent = int(std::floor(std::log10(double(n))));
    double mantissa = std::round(double(n) / std::pow(10.0, exponent) * 10) / 10;
    if (mantissa >= 10) mantissa /= 10, ++exponent; // 9.96 rounds to 10.0: 1.0 and one more
    char text[32];
    std::snprintf(text, sizeof text, "%.1f·10^%d", mantissa, exponent);
    return text;
}

} // namespace

Error timeout_error(const ReferenceLimits& limits, const Step& step, std::uint32_t executed) {
    return Error{ErrorCode::timeout,
                 "the reference interpreter ran past its " +
                     std::to_string(limits.timeout.value_or(std::chrono::milliseconds(0)).count()) +
                     " ms limit (--timeout-ms) in the instruction at pc " +
                     std::to_string(step.instruction.pc) + " (" +
                     std::string(opcode_name(step.instruction.opcode)) + "), after " +
                     std::to_string(executed) + " instructions"};
}

std::uint64_t step_work(const Step& step, std::uint32_t image_width) {
    const auto elements = [](const Tensor& t) { return std::uint64_t(t.rows) * t.cols; };
    const auto& t = step.operands;
    switch (instruction_info(step.instruction.opcode)->work) {
    case WORK_PRODUCT:
        return elements(t[0]) * t[1].cols + 1;
    case WORK_INPUT:
        return elements(t[1]) + 1;
    case WORK_OUTPUT:
        return elements(t[0]) + 1;
    case WORK_GATHER: // every token slot, each reading a row of the table
        return elements(t[2]) * (t[1].cols + 1) + 1;
    case WORK_ROWS: // at most two rows of the image
        return 2 * std::uint64_t(image_width) + 1;
    case WORK_ATTEND: // the worst case: every row reads every position
        return 2 * std::uint64_t(t[1].rows) * t[2].rows * t[1].cols + t[1].rows + 1;
    default:
        return 1;
    }
}

std::vector<std::uint64_t> reference_work(const Plan& plan) {
    std::vector<std::uint64_t> work;
    work.reserve(plan.steps.size());
    for (const Step& step : plan.steps)
        work.push_back(step_work(step, plan.width));
    return work;
}

Result<void> check_work(const Plan& plan, const std::vector<std::uint64_t>& work,
                        const ReferenceLimits& limits) {
    // At most 32768 steps of at most 2^48 operations each: the sum fits 64 bits.
    std::uint64_t total = 0;
    std::size_t largest = 0;
    for (std::size_t i = 0; i < work.size(); ++i) {
        total += work[i];
        if (work[i] > work[largest]) largest = i;
    }
    if (total <= limits.max_work) return {};
    const Step& step = plan.steps[largest];
    std::string message = "the program needs " + format_count(total) +
                          " operations on the reference interpreter (multiply-adds and element "
                          "steps), more than its limit of " +
                          format_count(limits.max_work) + " (" + limits.limit_name + ")";
    if (plan.steps.size() > 1)
        message += "; pc " + std::to_string(step.instruction.pc) + " (" +
                   std::string(opcode_name(step.instruction.opcode)) + ") alone needs " +
                   format_count(work[largest]);
    return Error{ErrorCode::invalid_input, message};
}

Fault execute_step(Image& image, const Step& step) {
    static const Deadline none;
    return execute_step(image, step, none);
}

Fault execute_step(Image& image, const Step& step, const Deadline& deadline) {
    const Instruction& ins = step.instruction;
    const auto& t = step.operands;
    switch (ins.opcode) {
    case OP_DOT_RGB:
        dot_rgb(image, ins);
        break;
    case OP_TENSOR:
        break; // declarations only change the checker's tensor table
    case OP_DOT:
        dot(image, t[0], t[1], t[2]);
        break;
    case OP_MATMUL:
        matmul(image, t[0], t[1], t[2], deadline);
        break;
    case OP_ADD_BIAS:
        add_bias(image, t[0], t[1]);
        break;
    case OP_REQUANT:
        requant(image, t[0], t[1], ins);
        break;
    case OP_RELU:
        relu(image, t[0], t[1]);
        break;
    case OP_ARGMAX:
        argmax(image, t[0], t[1]);
        break;
    case OP_GATHER_MEAN: {
        const TokenCount tokens = check_tokens(image, step);
        if (tokens.fault) return tokens.fault;
        gather_mean(image, step, tokens.count, deadline);
        break;
    }
    case OP_EMBED: {
        const TokenCount tokens = check_tokens(image, step);
        if (tokens.fault) return tokens.fault;
        embed(image, step);
        break;
    }
    case OP_ADD:
        add(image, t[0], t[1]);
        break;
    case OP_LUT:
        lut(image, t[0], t[1], t[2]);
        break;
    case OP_RMSNORM:
        rmsnorm(image, t[0], t[1], t[2], ins.norm_shift());
        break;
    case OP_KVSTORE:
        if (Fault fault = check_where(image, step)) return fault;
        kvstore(image, step);
        break;
    case OP_ATTEND:
        if (Fault fault = check_where(image, step)) return fault;
        attend(image, step);
        break;
    }
    return {};
}

RunOutcome run_reference(Image& image) {
    return run_reference(image, nullptr);
}

RunOutcome run_reference(Image& image,
                         const std::function<void(const Step&, const Image&)>& after_step) {
    return run_reference(image, ReferenceLimits::none(), after_step).value(); // never an error
}

Result<RunOutcome> run_reference(Image& image, const ReferenceLimits& limits,
                                 const std::function<void(const Step&, const Image&)>& after_step) {
    const Plan plan = plan_program(image);
    if (auto fits = check_work(plan, reference_work(plan), limits); !fits) return fits.error();
    const Deadline deadline(limits.timeout);
    RunOutcome outcome;
    for (const Step& step : plan.steps) {
        const Fault fault = execute_step(image, step, deadline);
        if (deadline.passed()) return timeout_error(limits, step, outcome.executed);
        if (fault) {
            outcome.fault = fault;
            write_fault_pixel(image, fault);
            return outcome;
        }
        ++outcome.executed;
        if (after_step) after_step(step, image);
    }
    outcome.fault = plan.fault;
    outcome.halted = plan.halted;
    if (outcome.fault) write_fault_pixel(image, outcome.fault);
    return outcome;
}

} // namespace px
