// The scheduled GPU path (Path B): a checked Plan (pxvm/program.hpp) becomes a list of
// Dispatches, one or two specialised kernels per instruction (kernels/*.comp), then `finish`,
// which Device::run executes in order with a barrier between consecutive ones. The result image
// and RunStatus equal the reference interpreter's, bit for bit.
//
//     auto schedule = px::vk::schedule_program(px::plan_program(image), image.width(),
//                                              image.height(), device.info());
//     auto run = device.run(schedule->dispatches, image);
#pragma once

#include "pxvm/program.hpp"
#include "pxvm/result.hpp"
#include "pxvm/vulkan/device_info.hpp"
#include "pxvm/vulkan/runtime.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace px::vk {

/// Kernel variants, from the most portable to the fastest. Names: "portable", "int-dot",
/// "coopmat-nv" (matmul on tensor cores through VK_NV_cooperative_matrix; its other instructions
/// are int-dot's where the device has packed dot products, else portable's).
enum class KernelVariant { portable, int_dot, coopmat_nv };
std::string_view to_string(KernelVariant variant);
std::optional<KernelVariant> variant_from_name(std::string_view name);
/// Every variant's name, from the most portable to the fastest (for command-line checks).
std::vector<std::string> variant_names();

/// Whether both this build (px::find_kernel has the variant's kernels) and the device
/// (its features) can run a variant; the reason when not.
struct VariantSupport {
    KernelVariant variant;
    bool available = false;
    std::string reason;
};
std::vector<VariantSupport> variant_support(const DeviceInfo& device);

/// How a tensor-core matmul is cut: the workgroup's tile of C (rows, columns), the bytes of K a
/// step stages in shared memory, the subgroups along M (of 8), the shared-memory stages (1: the
/// next step is staged after the current one; 2: while it is computed), and the device's matrix
/// shape (shape_m x shape_n x shape_k, with shape_k bytes of K).
struct CoopmatTile {
    std::uint32_t m = 128, n = 128, k = 64, subgroups_m = 2, stages = 1;
    std::uint32_t shape_m = 16, shape_n = 16, shape_k = 32;
    /// "128x256x64 2x4sg 16x16x32", "128x128x64 2x4sg 2-stage 16x16x32" (sg: the subgroups' grid)
    std::string name() const;
    friend bool operator==(const CoopmatTile&, const CoopmatTile&) = default;
};

/// Every tile the tensor-core kernels are built and tested for, with the device's int8 matrix
/// shapes (K of 32 bytes, A and B of one type); empty when it has none.
std::vector<CoopmatTile> coopmat_tiles(const DeviceInfo& device);

/// The tile a matmul of this shape uses, in the device's widest shape (measured on an H200:
/// benchmarks/RESULTS.md).
std::optional<CoopmatTile> coopmat_tile(std::uint32_t m, std::uint32_t n, const DeviceInfo& device);

/// Without a forced variant: coopmat-nv when available, else int-dot when it is available and the
/// driver reports packed 4x8-bit dot products as accelerated, else portable.
struct ScheduleOptions {
    std::optional<KernelVariant> variant; ///< forced; else the fastest available
    /// Forces the matmul tile (rows, columns of C), each 16, 32 or 64 (tests); else matmul_tile.
    std::optional<std::pair<std::uint32_t, std::uint32_t>> matmul_tile = std::nullopt;
    /// Forces the words of K a matmul step takes, 16 or 32 (tests); else matmul_k_words.
    std::optional<std::uint32_t> matmul_k_words = std::nullopt;
    /// Forces the tensor-core tile (tests, pxbench --sweep); one of coopmat_tiles(device).
    std::optional<CoopmatTile> coopmat_tile = std::nullopt;
};

/// One instruction's dispatches: [first, first + count) in Schedule::dispatches. Consecutive
/// independent dot_rgb instructions share one dispatch (see dot_rgb_batch).
struct ScheduledStep {
    std::uint32_t pc = 0;
    std::uint32_t opcode = 0;
    std::string kernel;  ///< the main kernel, e.g. "matmul_intdot"
    std::string variant; ///< "portable", "int-dot" or "coopmat-nv": the variant of that kernel
    std::size_t first = 0, count = 0;
};

struct Schedule {
    std::vector<Dispatch> dispatches;
    std::vector<ScheduledStep> steps; ///< the plan's steps that dispatch something, in order
    KernelVariant variant = KernelVariant::portable; ///< the variant the schedule was made for
};

/// The dispatches that run `plan` on an image of this size: one or two per instruction (none for
/// TENSOR), then finish. Labels like "pc 12 matmul portable 64x64". An error (code unsupported)
/// when a forced variant is not available.
Result<Schedule> schedule_program(const Plan& plan, std::uint32_t width, std::uint32_t height,
                                  const DeviceInfo& device, const ScheduleOptions& options = {});

/// How many dot_rgb steps from plan.steps[first] (a dot_rgb) one dispatch runs: consecutive
/// pixels of row 0, none reading a row another one writes (writes of one row by several are
/// allowed: the last in program order wins). At least 1.
std::size_t dot_rgb_batch(const Plan& plan, std::size_t first);

/// The variant each instruction kind would use on this device: "matmul: int-dot",
/// "relu: portable"... (for pxinfo)
std::vector<std::pair<std::string, std::string>>
instruction_variants(const DeviceInfo& device, const ScheduleOptions& options = {});

/// The tile of C (rows x columns) a matmul of this shape uses: for at most 16 rows 16x64, 16x32 or
/// 16x16, the widest giving at least 256 workgroups; else 32x32 when 64x64 tiles would give fewer
/// than 128 workgroups, else 64x64.
std::pair<std::uint32_t, std::uint32_t> matmul_tile(std::uint32_t m, std::uint32_t n);

/// The words of K a matmul step takes on this device: 16 on CPU devices (lavapipe compiles the
/// unrolled step three times faster, at the same speed) and where shared memory is below the
/// 18436 bytes 32-word steps need (Vulkan guarantees 16384), else 32.
std::uint32_t matmul_k_words(const DeviceInfo& device);

} // namespace px::vk
