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
constexpr std::array<std::string_view, 11> common_kernels = {
    "dot_rgb",      "dot_store",   "add_bias",    "requant", "relu",  "argmax",
    "gather_check", "gather_mean", "embed_check", "embed",   "finish"};

// The kernels that differ between variants.
std::string_view matmul_kernel(KernelVariant v) {
    return v == KernelVariant::int_dot ? "matmul_intdot" : "matmul_portable";
}
std::string_view dot_kernel(KernelVariant v) {
    return v == KernelVariant::int_dot ? "dot_intdot" : "dot_portable";
}

// dot_rgb batches: one workgroup per instruction, at most this many per dispatch.
constexpr std::size_t MAX_DOT_RGB_BATCH = 65535;

constexpr std::array<KernelVariant, 2> all_variants = {KernelVariant::portable,
                                                       KernelVariant::int_dot};

VariantSupport support_of(KernelVariant variant, const DeviceInfo& device) {
    VariantSupport s{variant, false, {}};
    std::vector<std::string_view> needed(common_kernels.begin(), common_kernels.end());
    needed.push_back(matmul_kernel(variant));
    needed.push_back(dot_kernel(variant));
    std::string missing;
    for (std::string_view kernel : needed)
        if (!find_kernel(kernel)) missing += (missing.empty() ? "" : ", ") + std::string(kernel);
    if (!missing.empty()) {
        s.reason = "this pxVM build has no kernel " + missing +
                   (variant == KernelVariant::int_dot
                        ? " (its glslangValidator cannot compile SPV_KHR_integer_dot_product)"
                        : "");
        return s;
    }
    if (variant == KernelVariant::int_dot && !device.features.integer_dot_product.supported) {
        s.reason =
            device.name + " has no shaderIntegerDotProduct (VK_KHR_shader_integer_dot_product)";
        return s;
    }
    s.available = true;
    return s;
}

// The variant a schedule uses: the forced one when available, else the fastest available.
Result<KernelVariant> choose_variant(const DeviceInfo& device, const ScheduleOptions& options) {
    if (options.variant) {
        const VariantSupport s = support_of(*options.variant, device);
        if (!s.available)
            return Error{"kernel variant " + std::string(to_string(*options.variant)) +
                             " is not available: " + s.reason,
                         ErrorCode::unsupported};
        return *options.variant;
    }
    // Packed dot products only pay where the driver says they are faster than the multiply-adds
    // they replace (lavapipe has them, unaccelerated: there both variants run at one speed).
    const IntegerDotProduct& dot = device.features.integer_dot_product;
    if (support_of(KernelVariant::int_dot, device).available &&
        (dot.packed_4x8_signed_accelerated || dot.packed_4x8_unsigned_accelerated))
        return KernelVariant::int_dot;
    return KernelVariant::portable;
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
                     std::uint32_t step, const std::array<Tensor, 3>& operands) {
    KernelPush p{};
    p.width = width;
    p.height = height;
    p.pc = pc;
    p.step = step;
    for (std::size_t i = 0; i < 3; ++i)
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
    }
    return "unknown";
}

std::optional<KernelVariant> variant_from_name(std::string_view name) {
    for (KernelVariant v : all_variants)
        if (to_string(v) == name) return v;
    return std::nullopt;
}

std::vector<VariantSupport> variant_support(const DeviceInfo& device) {
    std::vector<VariantSupport> out;
    for (KernelVariant v : all_variants)
        out.push_back(support_of(v, device));
    return out;
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
    if (options.matmul_tile) {
        const auto [tm, tn] = *options.matmul_tile;
        const auto valid = [](std::uint32_t t) { return t == 16 || t == 32 || t == 64; };
        if (!valid(tm) || !valid(tn))
            return Error{"matmul tile " + std::to_string(tm) + "x" + std::to_string(tn) +
                         " is not one of 16, 32, 64 by 16, 32, 64"};
    }
    const std::uint32_t k_words = options.matmul_k_words.value_or(matmul_k_words(device));
    if (k_words != 16 && k_words != 32)
        return Error{"matmul step of " + std::to_string(k_words) + " words is not 16 or 32"};

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
            const std::uint64_t words = std::uint64_t(t[1].rows) * t[1].pixel_width();
            scheduled.kernel = dot_kernel(variant);
            scheduled.variant = to_string(variant);
            add(scheduled.kernel, grid(ceil_div(words, DOT_ITEMS * KERNEL_LOCAL_SIZE)),
                "dot " + scheduled.variant);
            add("dot_store", {1, 1, 1}, "dot store");
            break;
        }
        case OP_MATMUL: {
            const std::uint32_t m = t[0].rows, n = t[0].cols;
            const auto [tm, tn] = options.matmul_tile.value_or(matmul_tile(m, n));
            scheduled.kernel = matmul_kernel(variant);
            scheduled.variant = to_string(variant);
            add(scheduled.kernel, {ceil_div(n, tn), ceil_div(m, tm), 1},
                "matmul " + scheduled.variant + " " + std::to_string(tm) + "x" + std::to_string(tn),
                {tm, tn, t[1].dtype == DTYPE_I8 ? 1u : 0u, k_words});
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
            scheduled.kernel = "relu";
            add("relu",
                grid(ceil_div(std::uint64_t(t[0].rows) * t[0].pixel_width(), KERNEL_LOCAL_SIZE)),
                "relu");
            break;
        case OP_ARGMAX: {
            // Enough lanes per row that each reads at most 8 words (128 at the widest rows).
            const std::uint32_t lanes =
                pow2_at_least(ceil_div(t[1].pixel_width(), 8), KERNEL_LOCAL_SIZE);
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
        default: // plan_program only passes the opcodes above
            return Error{"schedule_program: no kernel for opcode " + std::to_string(ins.opcode) +
                         " at pc " + std::to_string(ins.pc)};
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
    std::string chosen;
    if (auto v = choose_variant(device, options))
        chosen = to_string(*v);
    else
        chosen = "unavailable (" + v.error().message + ")";
    std::vector<std::pair<std::string, std::string>> out;
    for (std::uint32_t op : {OP_DOT_RGB, OP_DOT, OP_MATMUL, OP_ADD_BIAS, OP_REQUANT, OP_RELU,
                             OP_ARGMAX, OP_GATHER_MEAN, OP_EMBED}) {
        const bool varies = op == OP_DOT || op == OP_MATMUL;
        out.emplace_back(std::string(opcode_name(op)),
                         varies || chosen.starts_with("unavailable") ? chosen : "portable");
    }
    return out;
}

} // namespace px::vk
