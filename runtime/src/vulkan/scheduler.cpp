// The scheduled GPU path: turns a checked Plan into dispatches of the per-instruction kernels
// (kernels/*.comp, interface in kernels/pxvm_kernel.glsl), choosing the kernel variant, the grid
// and the specialization constants (matmul tiles, argmax lanes, gather words) from the device and
// the shapes. Static checks are all in the Plan; the kernels only see valid operands.
#include "pxvm/vulkan/scheduler.hpp"

#include "pxvm/embedded_kernels.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm_layout.h"

#include <algorithm>
#include <array>

namespace px::vk {

namespace {

// Kernels every variant uses.
constexpr std::array<std::string_view, 15> common_kernels = {
    "dot_rgb", "dot_store",    "add_bias",    "requant",     "relu",
    "argmax",  "gather_check", "gather_mean", "embed_check", "embed",
    "rmsnorm", "where_check",  "kvstore",     "attend",      "finish"};

// dot_rgb batches: one workgroup per instruction, at most this many per dispatch.
constexpr std::size_t MAX_DOT_RGB_BATCH = 65535;

constexpr std::array<KernelVariant, 3> all_variants = {
    KernelVariant::portable, KernelVariant::int_dot, KernelVariant::coopmat_nv};

bool int_dot_accelerated(const DeviceInfo& device) {
    const IntegerDotProduct& dot = device.features.integer_dot_product;
    return dot.supported &&
           (dot.packed_4x8_signed_accelerated || dot.packed_4x8_unsigned_accelerated);
}

VariantSupport support_of(KernelVariant variant, const DeviceInfo& device);

// The variant of the instructions a tensor-core variant leaves to the scalar kernels (dot, and
// matmuls of at most 16 rows): int-dot where it is available and accelerated, else portable.
KernelVariant scalar_variant(const DeviceInfo& device) {
    return support_of(KernelVariant::int_dot, device).available && int_dot_accelerated(device)
               ? KernelVariant::int_dot
               : KernelVariant::portable;
}

// The kernels that differ between variants: those of the scalar ones.
std::string_view scalar_matmul_kernel(KernelVariant v) {
    return v == KernelVariant::int_dot ? "matmul_intdot" : "matmul_portable";
}
std::string_view scalar_dot_kernel(KernelVariant v) {
    return v == KernelVariant::int_dot ? "dot_intdot" : "dot_portable";
}

// Matmuls of at most this many rows stay on the scalar kernels under coopmat-nv: a 16-row matrix
// tile would be mostly padding, and such matmuls are bound by reading B.
constexpr std::uint32_t COOPMAT_MIN_ROWS = 17;

// The shared memory a tensor-core tile stages: TILE_M + TILE_N padded rows, and the stop flag.
std::uint32_t coopmat_shared_bytes(const CoopmatTile& t) {
    return t.stages * (t.m + t.n) * (t.k / 16 + 1) * 16 + 4;
}

// The device's int8 shapes the tensor-core kernels can use (16 rows, K of 32 bytes, subgroup
// scope, both s8 x s8 -> s32 and u8 x u8 -> u32), widest first.
std::vector<std::uint32_t> coopmat_shape_widths(const DeviceInfo& device) {
    const auto& shapes = device.features.cooperative_matrix_nv_shapes;
    const auto has = [&](std::uint32_t n, const char* in, const char* out) {
        return std::any_of(shapes.begin(), shapes.end(), [&](const CooperativeMatrixShape& s) {
            return s.m == 16 && s.n == n && s.k == 32 && s.scope == "subgroup" && s.a_type == in &&
                   s.b_type == in && s.c_type == out && s.result_type == out;
        });
    };
    std::vector<std::uint32_t> widths;
    for (std::uint32_t n : {16u, 8u})
        if (has(n, "s8", "s32") && has(n, "u8", "u32")) widths.push_back(n);
    return widths;
}

VariantSupport support_of(KernelVariant variant, const DeviceInfo& device) {
    VariantSupport s{variant, false, {}};
    std::vector<std::string_view> needed(common_kernels.begin(), common_kernels.end());
    for (const InstructionInfo& info : instruction_table())
        if (info.lowering == LOWER_WORDS) needed.push_back(info.name);
    if (variant == KernelVariant::coopmat_nv) {
        needed.push_back("matmul_coopmat_nv_s8");
        needed.push_back("matmul_coopmat_nv_u8");
    } else {
        needed.push_back(scalar_matmul_kernel(variant));
        needed.push_back(scalar_dot_kernel(variant));
    }
    std::string missing;
    for (std::string_view kernel : needed)
        if (!find_kernel(kernel)) missing += (missing.empty() ? "" : ", ") + std::string(kernel);
    if (!missing.empty()) {
        s.reason = "this pxVM build has no kernel " + missing +
                   (variant == KernelVariant::int_dot
                        ? " (its glslangValidator cannot compile SPV_KHR_integer_dot_product)"
                    : variant == KernelVariant::coopmat_nv
                        ? " (its glslangValidator cannot compile GL_NV_integer_cooperative_matrix)"
                        : "");
        return s;
    }
    if (variant == KernelVariant::int_dot && !device.features.integer_dot_product.supported) {
        s.reason =
            device.name + " has no shaderIntegerDotProduct (VK_KHR_shader_integer_dot_product)";
        return s;
    }
    if (variant == KernelVariant::coopmat_nv) {
        const DeviceFeatures& f = device.features;
        if (!f.cooperative_matrix_nv)
            s.reason = device.name + " has no VK_NV_cooperative_matrix";
        else if (coopmat_shape_widths(device).empty())
            s.reason = device.name + " offers no 16xNx32 s8 and u8 cooperative matrices";
        else if (!f.shader_int8)
            s.reason = device.name + " has no shaderInt8";
        else if (f.subgroups.size != 32)
            s.reason = "the tensor-core kernels need subgroups of 32; " + device.name + " has " +
                       std::to_string(f.subgroups.size);
        else if (device.limits.max_compute_shared_memory_size <
                 coopmat_shared_bytes({128, 128, 128, 2}))
            s.reason = device.name + " has too little shared memory for the tensor-core tiles";
        if (!s.reason.empty()) return s;
    }
    s.available = true;
    return s;
}

// The variant a schedule uses: the forced one when available, else the fastest available.
Result<KernelVariant> choose_variant(const DeviceInfo& device, const ScheduleOptions& options) {
    if (options.variant) {
        const VariantSupport s = support_of(*options.variant, device);
        if (!s.available)
            return Error{ErrorCode::unsupported, "kernel variant " +
                                                     std::string(to_string(*options.variant)) +
                                                     " is not available: " + s.reason};
        return *options.variant;
    }
    if (support_of(KernelVariant::coopmat_nv, device).available) return KernelVariant::coopmat_nv;
    // Packed dot products only pay where the driver says they are faster than the multiply-adds
    // they replace (lavapipe has them, unaccelerated: there both variants run at one speed).
    return scalar_variant(device);
}

std::uint32_t ceil_div(std::uint64_t a, std::uint64_t b) {
    return std::uint32_t((a + b - 1) / b);
}

// The smallest power of two >= v, at most `limit` (a power of two).
std::uint32_t pow2_at_least(std::uint64_t v, std::uint32_t limit) {
    std::uint32_t p = 1;
    while (p < v && p < limit)
        p *= 2;
    return p;
}

// A grid of `groups` workgroups (kernels flatten it with flat_group()): one row of up to 65535
// (the smallest maxComputeWorkGroupCount Vulkan allows), else as many rows as needed.
std::array<std::uint32_t, 3> grid(std::uint64_t groups) {
    constexpr std::uint64_t max_x = 65535;
    if (groups <= max_x) return {std::uint32_t(std::max<std::uint64_t>(groups, 1)), 1, 1};
    const std::uint32_t y = ceil_div(groups, max_x);
    return {ceil_div(groups, y), y, 1};
}

KernelTensor kernel_tensor(const Tensor& t) {
    return KernelTensor{t.x, t.y, t.rows, t.cols, t.dtype};
}

KernelPush make_push(std::uint32_t width, std::uint32_t height, std::uint32_t pc,
                     std::uint32_t step, const std::array<Tensor, 4>& operands) {
    KernelPush p{};
    p.width = width;
    p.height = height;
    p.pc = pc;
    p.step = step;
    for (std::size_t i = 0; i < operands.size(); ++i)
        p.t[i] = kernel_tensor(operands[i]);
    return p;
}

Dispatch make_dispatch(std::string_view kernel, const KernelPush& push,
                       std::array<std::uint32_t, 3> groups, std::string label,
                       std::vector<std::uint32_t> specialization = {}) {
    Dispatch d = Dispatch::with_push(std::string(kernel), push, groups);
    d.specialization = std::move(specialization);
    d.label = std::move(label);
    return d;
}

} // namespace

std::string_view to_string(KernelVariant variant) {
    switch (variant) {
    case KernelVariant::portable:
        return "portable";
    case KernelVariant::int_dot:
        return "int-dot";
    case KernelVariant::coopmat_nv:
        return "coopmat-nv";
    }
    return "unknown";
}

std::optional<KernelVariant> variant_from_name(std::string_view name) {
    for (KernelVariant v : all_variants)
        if (to_string(v) == name) return v;
    return std::nullopt;
}

std::vector<std::string> variant_names() {
    std::vector<std::string> names;
    for (KernelVariant v : all_variants)
        names.emplace_back(to_string(v));
    return names;
}

std::vector<VariantSupport> variant_support(const DeviceInfo& device) {
    std::vector<VariantSupport> out;
    for (KernelVariant v : all_variants)
        out.push_back(support_of(v, device));
    return out;
}

std::string CoopmatTile::name() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + " " +
           std::to_string(subgroups_m) + "x" + std::to_string(8 / subgroups_m) + "sg" +
           (stages == 2 ? " 2-stage " : " ") + std::to_string(shape_m) + "x" +
           std::to_string(shape_n) + "x" + std::to_string(shape_k);
}

std::vector<CoopmatTile> coopmat_tiles(const DeviceInfo& device) {
    // Workgroup tiles (rows, columns, K bytes a step, subgroups along M, stages): large ones for
    // large matrices, small ones for grids that would not fill the GPU otherwise.
    constexpr std::array<std::array<std::uint32_t, 5>, 11> tiles = {{{128, 256, 64, 2, 1},
                                                                     {256, 128, 64, 4, 1},
                                                                     {128, 256, 32, 2, 2},
                                                                     {256, 128, 32, 4, 2},
                                                                     {128, 128, 128, 2, 1},
                                                                     {128, 128, 64, 2, 2},
                                                                     {128, 128, 128, 4, 1},
                                                                     {64, 128, 128, 2, 1},
                                                                     {64, 128, 64, 2, 2},
                                                                     {64, 64, 128, 2, 1},
                                                                     {64, 64, 128, 2, 2}}};
    std::vector<CoopmatTile> out;
    for (std::uint32_t width : coopmat_shape_widths(device))
        for (const auto& [m, n, k, sub_m, stages] : tiles) {
            const CoopmatTile t{m, n, k, sub_m, stages, 16, width, 32};
            const std::uint32_t sub_n = 8 / sub_m;
            const bool fits =
                m % (sub_m * t.shape_m) == 0 && n % (sub_n * width) == 0 && k % t.shape_k == 0 &&
                (m * k / 16) % KERNEL_LOCAL_SIZE == 0 && (n * k / 16) % KERNEL_LOCAL_SIZE == 0 &&
                coopmat_shared_bytes(t) <= device.limits.max_compute_shared_memory_size;
            if (fits) out.push_back(t);
        }
    return out;
}

std::optional<CoopmatTile> coopmat_tile(std::uint32_t m, std::uint32_t n,
                                        const DeviceInfo& device) {
    const std::vector<CoopmatTile> tiles = coopmat_tiles(device);
    if (tiles.empty()) return std::nullopt;
    const auto find = [&](std::uint32_t tm, std::uint32_t tn, std::uint32_t tk,
                          std::uint32_t stages) -> std::optional<CoopmatTile> {
        for (const CoopmatTile& t : tiles) // the widest shape comes first
            if (t.m == tm && t.n == tn && t.k == tk && t.stages == stages) return t;
        return std::nullopt;
    };
    const auto groups = [&](std::uint32_t tm, std::uint32_t tn) {
        return std::uint64_t(ceil_div(m, tm)) * ceil_div(n, tn);
    };
    // On an H200 64x128 tiles of 128-byte steps were the fastest from 2048^2 up (365 TOPS at
    // 8192^3, against 303 for 128x256), 64x64 below.
    if (groups(64, 128) >= 512)
        if (auto t = find(64, 128, 128, 1)) return t;
    if (auto t = find(64, 64, 128, 1)) return t;
    return tiles.front();
}

std::pair<std::uint32_t, std::uint32_t> matmul_tile(std::uint32_t m, std::uint32_t n) {
    if (m <= 16) { // a few rows (a batch of vectors): no rows computed in vain, and narrower
        // tiles while there are fewer than 256 workgroups (an H200 ran 1x4096x4096 in 16x16
        // tiles 1.5 times faster than in 16x64 ones)
        for (std::uint32_t tn : {64u, 32u})
            if (ceil_div(n, tn) >= 256) return {16, tn};
        return {16, 16};
    }
    // Too few 64x64 tiles would leave most compute units of a large GPU idle.
    const std::uint64_t tiles64 = std::uint64_t(ceil_div(m, 64)) * ceil_div(n, 64);
    if (tiles64 < 128) return {32, 32};
    return {64, 64};
}

std::uint32_t matmul_k_words(const DeviceInfo& device) {
    // 64x64 tiles of 32-word steps keep 18436 bytes in shared memory (two tiles of padded rows of
    // 9 uvec4, and a flag), more than the 16384 Vulkan guarantees; 16-word steps keep 10244.
    constexpr std::uint32_t shared_bytes_32 = (64 + 64) * 9 * 16 + 4;
    if (device.limits.max_compute_shared_memory_size < shared_bytes_32) return 16;
    return device.type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 16 : 32;
}

std::size_t dot_rgb_batch(const Plan& plan, std::size_t first) {
    // Rows (8-bit ids) read and written by the batch so far.
    std::array<bool, 256> read{}, written{};
    std::size_t count = 0;
    for (std::size_t i = first; i < plan.steps.size() && count < MAX_DOT_RGB_BATCH; ++i) {
        const Instruction& ins = plan.steps[i].instruction;
        if (ins.opcode != OP_DOT_RGB) break;
        if (count > 0 && ins.pc != plan.steps[i - 1].instruction.pc + 1) break;
        const std::uint8_t a = ins.args[0], b = ins.args[1], out = ins.args[2];
        // Reading a row another member writes, or writing a row another member reads, would
        // race; writing the same row twice is fine (the kernel keeps the last write only).
        if (count > 0 && (written[a] || written[b] || read[out])) break;
        read[a] = read[b] = true;
        written[out] = true;
        ++count;
    }
    return count;
}

Result<Schedule> schedule_program(const Plan& plan, std::uint32_t width, std::uint32_t height,
                                  const DeviceInfo& device, const ScheduleOptions& options) {
    auto chosen = choose_variant(device, options);
    if (!chosen) return chosen.error();
    const KernelVariant variant = *chosen;
    // The variant of the scalar kernels (dot, matmul): coopmat-nv leaves them to the best scalar
    // one.
    const KernelVariant scalar =
        variant == KernelVariant::coopmat_nv ? scalar_variant(device) : variant;
    if (options.coopmat_tile) {
        const std::vector<CoopmatTile> tiles = coopmat_tiles(device);
        if (variant != KernelVariant::coopmat_nv ||
            std::find(tiles.begin(), tiles.end(), *options.coopmat_tile) == tiles.end())
            return Error{ErrorCode::unsupported, "tensor-core tile " +
                                                     options.coopmat_tile->name() +
                                                     " is not one this device and variant can run"};
    }
    if (options.matmul_tile) {
        const auto [tm, tn] = *options.matmul_tile;
        const auto valid = [](std::uint32_t t) { return t == 16 || t == 32 || t == 64; };
        if (!valid(tm) || !valid(tn))
            return Error{ErrorCode::invalid_input, "matmul tile " + std::to_string(tm) + "x" +
                                                       std::to_string(tn) +
                                                       " is not one of 16, 32, 64 by 16, 32, 64"};
    }
    const std::uint32_t k_words = options.matmul_k_words.value_or(matmul_k_words(device));
    if (k_words != 16 && k_words != 32)
        return Error{ErrorCode::invalid_input,
                     "matmul step of " + std::to_string(k_words) + " words is not 16 or 32"};

    Schedule schedule;
    schedule.variant = variant;
    for (std::size_t index = 0; index < plan.steps.size(); ++index) {
        const Step& step = plan.steps[index];
        const Instruction& ins = step.instruction;
        const auto& t = step.operands;
        if (ins.opcode == OP_TENSOR) continue; // declarations only change the plan's table

        if (ins.opcode == OP_DOT_RGB) { // one dispatch for a batch of independent dot_rgb
            const std::size_t count = dot_rgb_batch(plan, index);
            KernelPush push = make_push(width, height, ins.pc, std::uint32_t(index), t);
            push.arg[0] = ins.pc;
            push.arg[1] = std::uint32_t(count);
            // Row 0 holds the batch's instructions, except pixel (W-1, 0), which a fault of an
            // earlier run of the same recording may have overwritten: that one's rows come from
            // here (1 << 24 marks them present).
            if (const Instruction& last = plan.steps[index + count - 1].instruction;
                last.pc == width - 1)
                push.arg[2] = 1u << 24 | std::uint32_t(last.args[0]) |
                              std::uint32_t(last.args[1]) << 8 | std::uint32_t(last.args[2]) << 16;
            const std::size_t dispatch = schedule.dispatches.size();
            const std::uint32_t last = plan.steps[index + count - 1].instruction.pc;
            schedule.dispatches.push_back(make_dispatch(
                "dot_rgb", push, {std::uint32_t(count), 1, 1},
                count == 1 ? "pc " + std::to_string(ins.pc) + " dot_rgb"
                           : "pc " + std::to_string(ins.pc) + "-" + std::to_string(last) +
                                 " dot_rgb x" + std::to_string(count),
                {}));
            for (std::size_t i = 0; i < count; ++i)
                schedule.steps.push_back({plan.steps[index + i].instruction.pc, OP_DOT_RGB,
                                          "dot_rgb", "portable", dispatch, 1});
            index += count - 1;
            continue;
        }

        const std::uint32_t step_index = std::uint32_t(index);
        KernelPush push = make_push(width, height, ins.pc, step_index, t);
        const std::string at = "pc " + std::to_string(ins.pc) + " ";
        ScheduledStep scheduled{ins.pc, ins.opcode, {}, "portable", schedule.dispatches.size(), 0};
        auto add = [&](std::string_view kernel, std::array<std::uint32_t, 3> groups,
                       std::string label, std::vector<std::uint32_t> specialization = {}) {
            schedule.dispatches.push_back(
                make_dispatch(kernel, push, groups, at + label, std::move(specialization)));
        };
        switch (ins.opcode) {
        case OP_DOT: {
            // Chunks of four words, DOT_ITEMS of them an invocation.
            const std::uint64_t words = std::uint64_t(t[1].rows) * ceil_div(t[1].pixel_width(), 4);
            scheduled.kernel = scalar_dot_kernel(scalar);
            scheduled.variant = to_string(scalar);
            add(scheduled.kernel, grid(ceil_div(words, DOT_ITEMS * KERNEL_LOCAL_SIZE)),
                "dot " + scheduled.variant);
            add("dot_store", {1, 1, 1}, "dot store");
            break;
        }
        case OP_MATMUL: {
            const std::uint32_t m = t[0].rows, n = t[0].cols;
            const bool is_signed = t[1].dtype == DTYPE_I8;
            if (variant == KernelVariant::coopmat_nv &&
                (m >= COOPMAT_MIN_ROWS || options.coopmat_tile)) {
                const std::optional<CoopmatTile> tile =
                    options.coopmat_tile ? options.coopmat_tile : coopmat_tile(m, n, device);
                if (!tile)
                    return Error{ErrorCode::unsupported, "no tensor-core tile fits " + device.name};
                scheduled.kernel = is_signed ? "matmul_coopmat_nv_s8" : "matmul_coopmat_nv_u8";
                scheduled.variant = to_string(variant);
                add(scheduled.kernel, {ceil_div(n, tile->n), ceil_div(m, tile->m), 1},
                    "matmul coopmat-nv " + tile->name(),
                    {tile->shape_m, tile->shape_n, tile->shape_k, tile->m, tile->n, tile->k,
                     tile->subgroups_m, tile->stages});
                break;
            }
            const auto [tm, tn] = options.matmul_tile.value_or(matmul_tile(m, n));
            scheduled.kernel = scalar_matmul_kernel(scalar);
            scheduled.variant = to_string(scalar);
            add(scheduled.kernel, {ceil_div(n, tn), ceil_div(m, tm), 1},
                "matmul " + scheduled.variant + " " + std::to_string(tm) + "x" + std::to_string(tn),
                {tm, tn, is_signed ? 1u : 0u, k_words});
            break;
        }
        case OP_ADD_BIAS:
            scheduled.kernel = "add_bias";
            add("add_bias", grid(ceil_div(std::uint64_t(t[0].rows) * t[0].cols, KERNEL_LOCAL_SIZE)),
                "add_bias");
            break;
        case OP_REQUANT:
            push.arg[0] = std::uint32_t(ins.multiplier());
            push.arg[1] = ins.shift();
            push.arg[2] = std::uint32_t(ins.zero_point());
            scheduled.kernel = "requant";
            add("requant",
                grid(ceil_div(std::uint64_t(t[0].rows) * t[0].pixel_width(), KERNEL_LOCAL_SIZE)),
                "requant");
            break;
        case OP_RELU:
            scheduled.kernel = "relu"; // four words an invocation
            add("relu",
                grid(ceil_div(std::uint64_t(t[0].rows) * ceil_div(t[0].pixel_width(), 4),
                              KERNEL_LOCAL_SIZE)),
                "relu");
            break;
        case OP_ARGMAX: {
            // Enough lanes per row that each reads at most 8 chunks of 4 words (a lane's best
            // then rarely improves after its first chunks).
            const std::uint32_t lanes =
                pow2_at_least(ceil_div(ceil_div(t[1].pixel_width(), 4), 8), KERNEL_LOCAL_SIZE);
            scheduled.kernel = "argmax";
            add("argmax", {ceil_div(t[1].rows, KERNEL_LOCAL_SIZE / lanes), 1, 1},
                "argmax " + std::to_string(lanes) + " lanes", {lanes});
            break;
        }
        case OP_GATHER_MEAN: {
            // Up to 32 table words per workgroup; the other invocations split the tokens.
            const std::uint32_t words = t[1].pixel_width();
            const std::uint32_t per_group = pow2_at_least(words, 32);
            scheduled.kernel = "gather_mean";
            add("gather_check", {1, 1, 1}, "gather_mean check");
            add("gather_mean", {ceil_div(words, per_group), 1, 1},
                "gather_mean " + std::to_string(per_group) + " words", {per_group});
            break;
        }
        case OP_EMBED: {
            scheduled.kernel = "embed";
            add("embed_check",
                grid(ceil_div(std::uint64_t(t[2].rows) * t[2].cols, KERNEL_LOCAL_SIZE)),
                "embed check");
            add("embed",
                grid(ceil_div(std::uint64_t(t[0].rows) * t[0].pixel_width(), KERNEL_LOCAL_SIZE)),
                "embed");
            break;
        }
        case OP_RMSNORM:
            push.arg[0] = ins.norm_shift();
            scheduled.kernel = "rmsnorm";
            add("rmsnorm",
                grid(ceil_div(std::uint64_t(t[0].rows) * t[0].pixel_width(), KERNEL_LOCAL_SIZE)),
                "rmsnorm");
            break;
        case OP_KVSTORE:
            push.arg[3] = 1; // where_check: kvstore's operands, rows in order
            scheduled.kernel = "kvstore";
            add("where_check", grid(ceil_div(t[2].rows, KERNEL_LOCAL_SIZE)), "kvstore check");
            add("kvstore",
                grid(ceil_div(std::uint64_t(t[1].rows) * t[1].pixel_width(), KERNEL_LOCAL_SIZE)),
                "kvstore");
            break;
        case OP_ATTEND:
            push.arg[0] = ins.heads();
            push.arg[1] = ins.score_multiplier();
            push.arg[2] = ins.score_shift();
            scheduled.kernel = "attend";
            add("where_check", grid(ceil_div(t[3].rows, KERNEL_LOCAL_SIZE)), "attend check");
            add("attend",
                grid(ceil_div(std::uint64_t(t[0].rows) * t[0].pixel_width(), KERNEL_LOCAL_SIZE)),
                "attend");
            break;
        default: // plan_program only passes the opcodes above and those the table lowers
            if (const InstructionInfo* info = instruction_info(ins.opcode);
                info && info->lowering == LOWER_WORDS) {
                // The table's lowering: one invocation per word of operand 0.
                scheduled.kernel = std::string(info->name);
                add(info->name,
                    grid(
                        ceil_div(std::uint64_t(t[0].rows) * t[0].pixel_width(), KERNEL_LOCAL_SIZE)),
                    std::string(info->name));
                break;
            }
            return Error{ErrorCode::unsupported, "schedule_program: no kernel for opcode " +
                                                     std::to_string(ins.opcode) + " at pc " +
                                                     std::to_string(ins.pc)};
        }
        scheduled.count = schedule.dispatches.size() - scheduled.first;
        schedule.steps.push_back(std::move(scheduled));
    }

    KernelPush finish =
        make_push(width, height, plan.fault.pc, std::uint32_t(plan.steps.size()), {});
    finish.arg[0] = plan.fault.code;
    finish.arg[1] = plan.fault ? plan.fault.pc : 0;
    finish.arg[2] = std::uint32_t(plan.steps.size());
    finish.arg[3] = plan.halted ? 1 : 0;
    schedule.dispatches.push_back(make_dispatch("finish", finish, {1, 1, 1}, "finish"));
    return schedule;
}

std::vector<std::pair<std::string, std::string>>
instruction_variants(const DeviceInfo& device, const ScheduleOptions& options) {
    std::string matmul, dot;
    if (auto v = choose_variant(device, options)) {
        const KernelVariant scalar = *v == KernelVariant::coopmat_nv ? scalar_variant(device) : *v;
        dot = to_string(scalar);
        matmul = *v == KernelVariant::coopmat_nv ? "coopmat-nv (" + dot + " up to 16 rows)" : dot;
    } else {
        matmul = dot = "unavailable (" + v.error().message + ")";
    }
    const bool unavailable = dot.starts_with("unavailable");
    std::vector<std::pair<std::string, std::string>> out;
    for (const InstructionInfo& info : instruction_table()) {
        const std::uint32_t op = info.opcode;
        if (op == OP_HALT || op == OP_TENSOR) continue; // no kernel: nothing to dispatch
        out.emplace_back(std::string(info.name), op == OP_MATMUL               ? matmul
                                                 : op == OP_DOT || unavailable ? dot
                                                                               : "portable");
    }
    return out;
}

} // namespace px::vk
