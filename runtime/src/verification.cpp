// verify_against_reference: a step-by-step replay of the reference semantics in which large
// matmuls are checked with Freivalds' test (see verification.hpp) instead of being recomputed.
#include "pxvm/verification.hpp"

#include "deadline.hpp"
#include "parallel.hpp"
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>

namespace px {
namespace {

// A pixel rectangle [x0, x1) x [y0, y1).
struct Rect {
    std::uint32_t x0, y0, x1, y1;
    bool overlaps(const Rect& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

Rect pixels_of(const Tensor& t) {
    return Rect{t.x, t.y, t.x + t.pixel_width(), t.y + t.rows};
}

// The pixels a step writes (written_regions), as rectangles.
std::vector<Rect> written(const Step& step) {
    std::vector<Rect> rects;
    for (const Tensor& t : written_regions(step))
        rects.push_back(pixels_of(t));
    return rects;
}

bool meets(const std::vector<Rect>& a, const std::vector<Rect>& b) {
    for (const Rect& x : a)
        for (const Rect& y : b)
            if (x.overlaps(y)) return true;
    return false;
}

// acc[j] += s * v[j] modulo 2^32 for j < n.
inline void axpy(std::uint32_t* acc, const std::uint32_t* v, std::uint32_t s, std::uint32_t n) {
    for (std::uint32_t j = 0; j < n; ++j)
        acc[j] += s * v[j];
}

// A u8 or i8 element as a value modulo 2^32.
inline std::uint32_t element(std::uint8_t byte, bool is_signed) {
    return is_signed ? std::uint32_t(std::int32_t(std::int8_t(byte))) : byte;
}

inline std::uint32_t read_u32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
           std::uint32_t(p[3]) << 24;
}

// Freivalds' test of a matmul step: the rows m of C (read from `result`) for which
// C*R != A*(B^T*R) modulo 2^32, where A and B are read from `replay` and R is N x rounds, drawn
// from `rng`. All rounds run together (R's rows are the inner, contiguous dimension).
std::vector<std::uint32_t> freivalds_failures(const Image& replay, const Image& result,
                                              const Step& step, std::uint32_t rounds,
                                              std::mt19937_64& rng) {
    const Tensor &c = step.operands[0], &a = step.operands[1], &b = step.operands[2];
    const std::uint32_t M = c.rows, N = c.cols, K = a.cols, W = replay.width();
    const bool is_signed = a.dtype == DTYPE_I8;

    std::vector<std::uint32_t> r(std::size_t(N) * rounds);
    for (std::size_t i = 0; i < r.size(); i += 2) {
        const std::uint64_t bits = rng();
        r[i] = std::uint32_t(bits);
        if (i + 1 < r.size()) r[i + 1] = std::uint32_t(bits >> 32);
    }

    // bt_r = B^T * R (K x rounds); each thread owns a range of k.
    std::vector<std::uint32_t> bt_r(std::size_t(K) * rounds, 0);
    parallel_for(K, std::uint64_t(N) * K * rounds, [&](std::uint32_t k0, std::uint32_t k1) {
        for (std::uint32_t n = 0; n < N; ++n) {
            const std::uint8_t* row = replay.data() + b.byte_offset(W, n, 0);
            const std::uint32_t* rn = &r[std::size_t(n) * rounds];
            for (std::uint32_t k = k0; k < k1; ++k)
                axpy(&bt_r[std::size_t(k) * rounds], rn, element(row[k], is_signed), rounds);
        }
    });

    // Per group of rows of C: C*R and A*(B^T*R), reading each row of R and of B^T*R once a group.
    constexpr std::uint32_t group = 8;
    const std::uint32_t groups = (M + group - 1) / group;
    std::vector<std::uint8_t> failed(M, 0);
    parallel_for(
        groups, std::uint64_t(M) * (N + K) * rounds, [&](std::uint32_t g0, std::uint32_t g1) {
            std::vector<std::uint32_t> c_r(std::size_t(group) * rounds),
                a_bt_r(std::size_t(group) * rounds);
            std::array<const std::uint8_t*, group> a_rows{}, c_rows{};
            for (std::uint32_t g = g0; g < g1; ++g) {
                const std::uint32_t m0 = g * group, count = std::min(group, M - m0);
                std::fill(c_r.begin(), c_r.end(), 0u);
                std::fill(a_bt_r.begin(), a_bt_r.end(), 0u);
                for (std::uint32_t i = 0; i < count; ++i) {
                    a_rows[i] = replay.data() + a.byte_offset(W, m0 + i, 0);
                    c_rows[i] = result.data() + c.byte_offset(W, m0 + i, 0);
                }
                for (std::uint32_t k = 0; k < K; ++k)
                    for (std::uint32_t i = 0; i < count; ++i)
                        axpy(&a_bt_r[std::size_t(i) * rounds], &bt_r[std::size_t(k) * rounds],
                             element(a_rows[i][k], is_signed), rounds);
                for (std::uint32_t n = 0; n < N; ++n)
                    for (std::uint32_t i = 0; i < count; ++i)
                        axpy(&c_r[std::size_t(i) * rounds], &r[std::size_t(n) * rounds],
                             read_u32(c_rows[i] + 4 * std::size_t(n)), rounds);
                for (std::uint32_t i = 0; i < count; ++i)
                    if (!std::equal(&c_r[std::size_t(i) * rounds],
                                    &c_r[std::size_t(i + 1) * rounds],
                                    &a_bt_r[std::size_t(i) * rounds]))
                        failed[m0 + i] = 1;
            }
        });

    std::vector<std::uint32_t> rows;
    for (std::uint32_t m = 0; m < M; ++m)
        if (failed[m]) rows.push_back(m);
    return rows;
}

// Copies the pixels of tensor `t` (rows [r0, r1)) from `from` into `to` (images of equal size).
void copy_rows(const Image& from, Image& to, const Tensor& t, std::uint32_t r0, std::uint32_t r1) {
    const std::size_t bytes = 4 * std::size_t(t.pixel_width());
    for (std::uint32_t row = r0; row < r1; ++row) {
        const std::size_t offset = t.byte_offset(from.width(), row, 0);
        std::memcpy(to.data() + offset, from.data() + offset, bytes);
    }
}

// Pixels of rows [r0, r1) of tensor `t` that differ between two images of equal size.
std::uint64_t count_differences(const Image& x, const Image& y, const Tensor& t, std::uint32_t r0,
                                std::uint32_t r1) {
    std::uint64_t count = 0;
    for (std::uint32_t row = r0; row < r1; ++row) {
        const std::size_t offset = t.byte_offset(x.width(), row, 0);
        for (std::uint32_t p = 0; p < t.pixel_width(); ++p)
            count += std::memcmp(x.data() + offset + 4 * p, y.data() + offset + 4 * p, 4) != 0;
    }
    return count;
}

// Checks a large matmul step with Freivalds' test and writes the device's C into the replay.
// When the test fails, the first failing rows (as many as `exact_limit` multiply-adds allow, at
// least one) are recomputed exactly into the replay, so the final comparison reports their
// differing pixels; the returned note says what was found. Returns "" when the test passes.
std::string check_matmul(Image& replay, const Image& result, const Step& step,
                         const VerifyOptions& options, std::uint32_t rounds, std::mt19937_64& rng) {
    const Tensor &c = step.operands[0], &a = step.operands[1];
    const std::vector<std::uint32_t> failures =
        freivalds_failures(replay, result, step, rounds, rng);
    copy_rows(result, replay, c, 0, c.rows);
    if (failures.empty()) return "";

    const std::uint64_t row_work = std::uint64_t(c.cols) * a.cols;
    const std::size_t recompute = std::size_t(
        std::clamp<std::uint64_t>(options.exact_matmul_limit / row_work, 1, failures.size()));
    std::uint64_t differing = 0;
    for (std::size_t i = 0; i < recompute;) {
        std::size_t j = i + 1; // failures[i, j): consecutive rows, one exact sub-matmul
        while (j < recompute && failures[j] == failures[j - 1] + 1)
            ++j;
        const std::uint32_t m0 = failures[i], m1 = failures[j - 1] + 1;
        Step rows = step;
        rows.operands[0] = Tensor{c.x, c.y + m0, m1 - m0, c.cols, c.dtype};
        rows.operands[1] = Tensor{a.x, a.y + m0, m1 - m0, a.cols, a.dtype};
        (void)execute_step(replay, rows); // matmul has no dynamic checks
        differing += count_differences(replay, result, c, m0, m1);
        i = j;
    }

    const std::string pc = std::to_string(step.instruction.pc);
    std::string note = "Freivalds' test failed for the matmul at pc " + pc + ": " +
                       std::to_string(failures.size()) + " of its " + std::to_string(c.rows) +
                       " output rows are wrong; ";
    note += recompute == 1
                ? "row " + std::to_string(failures[0]) +
                      " was recomputed exactly: " + std::to_string(differing) + " of its "
                : "the first " + std::to_string(recompute) +
                      " of them were recomputed exactly: " + std::to_string(differing) +
                      " of their ";
    note += std::to_string(std::uint64_t(recompute) * c.cols) +
            (differing == 1 ? " pixels differs" : " pixels differ") +
            ". The difference count is a lower bound found by a randomised check: rows not "
            "recomputed are not counted";
    return note;
}

// compare_images, with rows that are equal skipped by memcmp.
ImageDifference compare(const Image& expected, const Image& actual) {
    ImageDifference d;
    const std::size_t row_bytes = 4 * std::size_t(expected.width());
    for (std::uint32_t y = 0; y < expected.height(); ++y) {
        const std::uint8_t* e = expected.data() + y * row_bytes;
        const std::uint8_t* a = actual.data() + y * row_bytes;
        if (std::memcmp(e, a, row_bytes) == 0) continue;
        for (std::uint32_t x = 0; x < expected.width(); ++x) {
            if (std::memcmp(e + 4 * std::size_t(x), a + 4 * std::size_t(x), 4) == 0) continue;
            if (d.count++ == 0) {
                d.x = x;
                d.y = y;
                d.expected = expected.pixel(x, y);
                d.actual = actual.pixel(x, y);
            }
        }
    }
    return d;
}

std::string describe_end(std::uint32_t code, std::uint32_t pc, std::uint32_t executed,
                         bool halted) {
    return "fault " + std::string(fault_name(code)) + (code ? " at pc " + std::to_string(pc) : "") +
           ", " + std::to_string(executed) + " instructions executed, " +
           (halted ? "halted" : "not halted");
}

std::string plural(std::uint64_t n, const std::string& word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

const std::string exact_method = "exact";
const std::string freivalds_prefix = "Freivalds, ";

} // namespace

std::string Verification::summary() const {
    std::uint64_t exact = 0, freivalds = 0;
    std::string detail;
    for (const StepCheck& check : checks) {
        if (check.method == exact_method) {
            ++exact;
        } else {
            ++freivalds;
            detail = check.method.substr(std::min(check.method.size(), freivalds_prefix.size()));
        }
    }
    std::string s;
    if (exact) s = "exact for " + plural(exact, "step");
    if (freivalds) {
        if (!s.empty()) s += "; ";
        s += "Freivalds for " + plural(freivalds, "matmul") + " (" + detail + ")";
    }
    if (s.empty()) s = "no step wrote pixels";
    if (!note.empty()) s += "; " + note;
    return s;
}

namespace {

// Which steps of `plan` the verification checks by Freivalds' test instead of recomputing: large
// matmuls whose output no later step (of the plan, a superset of the executed ones) writes, so
// that the device's image still holds what they wrote.
std::vector<bool> randomised_steps(const Plan& plan, const VerifyOptions& options) {
    std::vector<bool> randomised(plan.steps.size(), false);
    for (std::size_t i = 0; i < plan.steps.size(); ++i) {
        const Step& step = plan.steps[i];
        // Every matrix product of the table (c = a·bᵀ in operands 0, 1, 2).
        if (instruction_info(step.instruction.opcode)->work != WORK_PRODUCT) continue;
        const std::vector<Rect> writes = written(step);
        const Tensor &c = step.operands[0], &a = step.operands[1];
        randomised[i] =
            std::uint64_t(c.rows) * c.cols * a.cols > options.exact_matmul_limit &&
            std::none_of(plan.steps.begin() + std::ptrdiff_t(i) + 1, plan.steps.end(),
                         [&](const Step& later) { return meets(written(later), writes); });
    }
    return randomised;
}

// verification_work, given randomised_steps.
std::vector<std::uint64_t> work_of(const Plan& plan, const std::vector<bool>& randomised,
                                   const VerifyOptions& options) {
    std::vector<std::uint64_t> work = reference_work(plan);
    const std::uint64_t rounds = std::max(1u, options.freivalds_rounds);
    for (std::size_t i = 0; i < work.size(); ++i)
        if (randomised[i]) {
            const Tensor &c = plan.steps[i].operands[0], &a = plan.steps[i].operands[1];
            const std::uint64_t M = c.rows, N = c.cols, K = a.cols;
            work[i] = (M * N + N * K + M * K) * rounds + 1;
        }
    return work;
}

} // namespace

std::vector<std::uint64_t> verification_work(const Plan& plan, const VerifyOptions& options) {
    return work_of(plan, randomised_steps(plan, options), options);
}

Verification verify_against_reference(const Image& program, const Image& result,
                                      const RunStatus& status, const VerifyOptions& options) {
    return verify_against_reference(program, result, status, options, ReferenceLimits::none())
        .value();
}

Result<Verification> verify_against_reference(const Image& program, const Image& result,
                                              const RunStatus& status, const VerifyOptions& options,
                                              const ReferenceLimits& limits) {
    const auto start = std::chrono::steady_clock::now();
    Verification v;
    const std::uint32_t rounds = std::max(1u, options.freivalds_rounds);
    v.seed = options.seed;
    if (v.seed == 0) {
        std::random_device device;
        while (v.seed == 0)
            v.seed = std::uint64_t(device()) << 32 | device();
    }
    std::mt19937_64 rng(v.seed);
    const std::string freivalds_method = freivalds_prefix + std::to_string(rounds) +
                                         " rounds, miss probability <= 2^-" +
                                         std::to_string(rounds);
    const auto finish = [&] {
        v.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return v;
    };
    // An image of another size differs whatever the replay gives: no replay.
    if (program.width() != result.width() || program.height() != result.height()) {
        v.difference.count = std::uint64_t(program.width()) * program.height();
        v.status_mismatch = "the device returned a " + std::to_string(result.width()) + "x" +
                            std::to_string(result.height()) + " image for a " +
                            std::to_string(program.width()) + "x" +
                            std::to_string(program.height()) + " program";
        return finish();
    }

    // The replay: run_reference's loop, one step at a time.
    Image expected = program;
    const Plan plan = plan_program(expected);
    const std::vector<bool> randomised = randomised_steps(plan, options);
    if (auto fits = check_work(plan, work_of(plan, randomised, options), limits); !fits)
        return fits.error();
    const Deadline deadline(limits.timeout);
    RunOutcome& outcome = v.reference;
    bool faulted = false;
    for (std::size_t i = 0; i < plan.steps.size(); ++i) {
        const Step& step = plan.steps[i];
        const Instruction& ins = step.instruction;
        const bool writes = !written(step).empty();
        if (randomised[i]) {
            std::string note = check_matmul(expected, result, step, options, rounds, rng);
            if (!note.empty()) v.note += (v.note.empty() ? "" : "; ") + note;
            v.checks.push_back({ins.pc, std::string(opcode_name(ins.opcode)), freivalds_method});
        } else {
            const Fault fault = execute_step(expected, step, deadline);
            if (deadline.passed()) return timeout_error(limits, step, outcome.executed);
            if (fault) {
                outcome.fault = fault;
                write_fault_pixel(expected, fault);
                faulted = true;
                break;
            }
            if (writes)
                v.checks.push_back({ins.pc, std::string(opcode_name(ins.opcode)), exact_method});
        }
        ++outcome.executed;
    }
    if (!faulted) {
        outcome.fault = plan.fault;
        outcome.halted = plan.halted;
        if (outcome.fault) write_fault_pixel(expected, outcome.fault);
    }

    v.difference = compare(expected, result);
    const RunOutcome& r = v.reference;
    if (r.fault.code != status.fault_code || (r.fault && r.fault.pc != status.fault_pc) ||
        r.halted != (status.halted != 0) || r.executed != status.executed)
        v.status_mismatch =
            "the reference ended with " +
            describe_end(r.fault.code, r.fault.pc, r.executed, r.halted) + "; the device with " +
            describe_end(status.fault_code, status.fault_pc, status.executed, status.halted != 0);
    return finish();
}

Verification verify_against_reference(const Image& program, const Image& result,
                                      const RunStatus& status) {
    return verify_against_reference(program, result, status, VerifyOptions{});
}

} // namespace px
