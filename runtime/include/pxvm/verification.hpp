// Checking a device's result against the reference interpreter, pixel for pixel and status for
// status, in time that scales to the largest programs.
//
// The program is replayed with the reference semantics step by step. Every step is recomputed
// exactly, except a matmul of more than VerifyOptions::exact_matmul_limit multiply-adds whose
// output no later step overwrites: its result is taken from the device's image and checked with
// Freivalds' randomised test, which costs O((MN + NK + MK) * rounds) instead of O(MNK).
//
// Freivalds' test modulo 2^32 (the protocol's matmul wraps modulo 2^32): for a vector r of N
// values drawn uniformly from [0, 2^32), the device's C passes when C*r == A*(B^T*r) modulo 2^32.
// A correct C always passes. If C is wrong, some row d of C - A*B^T is not 0; let 2^t (t <= 31) be
// the largest power of two dividing one of its non-zero entries d_j. Whatever the other entries of
// r are, d_j * r_j modulo 2^32 is uniform over the 2^(32-t) multiples of 2^t, so d*r == 0 modulo
// 2^32 with probability at most 2^(t-32) <= 1/2. The bound 1/2 is reached: a difference of exactly
// 2^31 in one entry is missed whenever r_j is even. Rounds use independent vectors, so `rounds`
// rounds miss a wrong C with probability at most 2^-rounds (not 2^(-32 * rounds)).
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm_layout.h"

#include <cstdint>
#include <string>
#include <vector>

namespace px {

/// How verify_against_reference checks large matmuls.
struct VerifyOptions {
    /// Multiply-adds (M*N*K) up to which a matmul is recomputed exactly; larger ones are checked
    /// with Freivalds' test when that is sound (no later step overwrites the output).
    std::uint64_t exact_matmul_limit = 1ull << 27;
    /// Freivalds rounds: a wrong result passes with probability <= 2^-rounds. 0 counts as 1.
    std::uint32_t freivalds_rounds = 32;
    /// Seed of the random vectors (std::mt19937_64); 0: a fresh seed from std::random_device.
    std::uint64_t seed = 0;
};

/// How one executed step that writes pixels was checked.
struct StepCheck {
    std::uint32_t pc = 0; ///< x of the instruction in row 0
    std::string opcode;   ///< "matmul", "relu", ...
    /// "exact", or "Freivalds, 32 rounds, miss probability <= 2^-32" (with the real rounds).
    std::string method;
};

/// A device's result compared with the reference interpreter's.
struct Verification {
    RunOutcome reference;          ///< how the reference run ended
    ImageDifference difference;    ///< count 0: identical pixels (see `note` for a lower bound)
    std::string status_mismatch;   ///< non-empty when fault code, pc, executed count or HALT differ
    std::vector<StepCheck> checks; ///< one per executed step that writes pixels, in order
    /// Set when Freivalds' test found a wrong matmul result: which rows failed and that
    /// difference.count is then only a lower bound (only the recomputed rows are counted).
    std::string note;
    std::uint64_t seed = 0; ///< the seed the random vectors came from (to reproduce a run)
    double seconds = 0;     ///< how long the verification took

    bool matches() const {
        return difference.count == 0 && status_mismatch.empty() && note.empty();
    }
    /// "exact for 5 steps; Freivalds for 1 matmul (32 rounds, miss probability <= 2^-32)",
    /// followed by the note when there is one.
    std::string summary() const;
};

/// Replays `program` with the reference semantics and compares the image and outcome with a
/// device's `result` image and `status`. The replayed image and outcome are those of
/// run_reference, except that large matmuls are taken from `result` once Freivalds' test passed.
Verification verify_against_reference(const Image& program, const Image& result,
                                      const RunStatus& status, const VerifyOptions& options);
/// verify_against_reference within `limits`: refused (invalid input) before anything runs when
/// verification_work passes limits.max_work, a timeout error past limits.timeout.
Result<Verification> verify_against_reference(const Image& program, const Image& result,
                                              const RunStatus& status, const VerifyOptions& options,
                                              const ReferenceLimits& limits);
/// The reference's cost of verifying each step of `plan` (check_work's input): step_work, or for
/// a matmul checked by Freivalds' test (M*N + N*K + M*K) * rounds.
std::vector<std::uint64_t> verification_work(const Plan& plan, const VerifyOptions& options);
/// The same with the default options.
Verification verify_against_reference(const Image& program, const Image& result,
                                      const RunStatus& status);

} // namespace px
