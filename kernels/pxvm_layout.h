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
// The run status: struct RunStatus below.
PX_CONST(BINDING_STATUS, 1u);

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
} // namespace px
#endif

#endif
