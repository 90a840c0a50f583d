// Kernel interfaces shared by the host (C++) and the GLSL kernels: binding numbers, push-constant
// blocks and workgroup sizes. The build reflects every compiled kernel with SPIRV-Cross and fails
// when the SPIR-V disagrees with this header (compiler/spirv_reflect_check.cpp).
#ifndef PXVM_LAYOUT_H
#define PXVM_LAYOUT_H

#include "pxvm_const.h"

PX_NAMESPACE_BEGIN

// Every kernel sees the image as one storage buffer of 32-bit words, one word per RGBA pixel
// (R in the low byte), exactly the PNG's bytes.
PX_CONST(BINDING_IMAGE, 0u);
// The run status: struct RunStatus below (the scheduled kernels use the whole KernelStatus).
PX_CONST(BINDING_STATUS, 1u);
// The scheduled kernels read their inputs through a second, readonly restrict view of the same
// image buffer (the protocol keeps inputs and outputs apart, or in place element for element), so
// drivers may cache the loads; the interpreter's coherent view would bypass L1 on NVIDIA.
PX_CONST(BINDING_IMAGE_IN, 2u);
// A recording's output buffer (host-visible): the `pack_outputs` kernel copies chosen regions of
// the image into it, row after row, so the host reads them with no copy on the GPU's queue.
PX_CONST(BINDING_OUTPUTS, 3u);
// A recording's input buffer (host-visible): `unpack_inputs` copies it into chosen regions of the
// image at the start of each run, so the host writes one contiguous block.
PX_CONST(BINDING_INPUTS, 4u);
// Bytes of the status buffer: RunStatus, then scratch words the scheduled kernels share between
// dispatches (KernelStatus).
PX_CONST(STATUS_BUFFER_BYTES, 64u);
// Scratch words of KernelStatus (zero at the start of every run): the token count of the last
// gather check, the partial sum of a multi-workgroup dot, ~t for the first token t out of range
// that an embed check found, and ~r for the first row r of a kvstore's or attend's `where` that a
// where check refused (0: none; a fault ends the run, so neither is ever cleared).
PX_CONST(SCRATCH_TOKEN_COUNT, 0u);
PX_CONST(SCRATCH_DOT_SUM, 1u);
PX_CONST(SCRATCH_EMBED_BAD, 2u);
PX_CONST(SCRATCH_WHERE_BAD, 3u);
PX_CONST(SCRATCH_WORDS, 12u);
// Workgroup size of the scheduled kernels unless a specialisation constant sets another.
PX_CONST(KERNEL_LOCAL_SIZE, 256u);
// Words of a and b each invocation of the dot kernels reduces (the scheduler's grid follows).
PX_CONST(DOT_ITEMS, 8u);

// The GPU interpreter (kernels/interpreter.comp): one workgroup of this many threads.
PX_CONST(INTERPRETER_LOCAL_SIZE, 256u);

// RunStatus.fault_code of a run the device stopped before the program ended (lavapipe ends every
// loop of a shader invocation after 65535 iterations in all). Not a protocol fault: the image is
// unreliable and the host must not use it.
PX_CONST(STATUS_INCOMPLETE, 0xFFFFFFFFu);

PX_NAMESPACE_END

// Push constants of the interpreter: the image size in pixels.
// GLSL declares the same members in a push_constant block.
#ifdef __cplusplus
namespace px {
struct InterpreterPush {
    std::uint32_t width;
    std::uint32_t height;
};
// What a run leaves in the status buffer: fault code (0 = none), fault pc, instructions executed,
// and 1 when it stopped at HALT.
struct RunStatus {
    std::uint32_t fault_code;
    std::uint32_t fault_pc;
    std::uint32_t executed;
    std::uint32_t halted;
};

/// A tensor operand of a scheduled kernel (docs/PROTOCOL.md section 3): origin pixel, shape,
/// dtype code. GLSL declares the same struct (kernels/pxvm_tensor.glsl).
struct KernelTensor {
    std::uint32_t x, y, rows, cols, dtype;
};
/// Push constants of every scheduled kernel: the image size, the instruction's pc and its index
/// in the plan (for fault reporting), its tensor operands (Step::operands) and four
/// instruction-specific words (requant: multiplier, shift, zero point; dot_rgb: the batch's first
/// pc, its count, the rows of an instruction at pc W - 1 (bit 24 set); finish: the plan's static
/// fault code, its pc, the number of steps, halted).
struct KernelPush {
    std::uint32_t width, height;
    std::uint32_t pc, step;
    KernelTensor t[4];
    std::uint32_t arg[4];
};
/// Push constants of `pack_outputs` and `unpack_inputs`: the image width, a region (x, y, width,
/// height in pixels) and the word of the output (input) buffer that holds its first pixel; rows
/// follow each other.
struct PackPush {
    std::uint32_t image_width;
    std::uint32_t x, y, width, height;
    std::uint32_t first_word;
};
/// The whole status buffer as the scheduled kernels see it.
struct KernelStatus {
    RunStatus run;
    std::uint32_t scratch[12];
};
static_assert(sizeof(KernelPush) == 112);
static_assert(sizeof(KernelStatus) == 64);
static_assert(sizeof(PackPush) == 24);
} // namespace px
#endif

#endif
