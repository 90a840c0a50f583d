// The interface of every scheduled kernel (Path B, one kernel per instruction, dispatched by
// runtime/src/vulkan/scheduler.cpp): the image buffer as an output view (binding 0) and a
// readonly restrict input view (binding 2), the status buffer (px::KernelStatus), the push
// constants (px::KernelPush), and the helpers every kernel starts with. The includer must enable
// GL_GOOGLE_include_directive and declare its workgroup size.
#ifndef PXVM_KERNEL_GLSL
#define PXVM_KERNEL_GLSL

#extension GL_EXT_control_flow_attributes : require

#include "pxvm_layout.h"
#include "pxvm_protocol.h"

// Outputs, and the output words a kernel reads back to keep their padding bytes. Each word is
// written by one invocation of a dispatch, and no invocation reads a word another one writes in
// the same dispatch: the barriers between dispatches order everything else.
// Kernels that store 128 bits at a time define PX_IMAGE_OUT_VEC4 and see the words in fours
// (PX_OUT_WORD(index) is one word either way).
#ifdef PX_IMAGE_OUT_VEC4
layout(set = 0, binding = BINDING_IMAGE) buffer ImageOut {
    uvec4 vecs[];
}
image_out;
#define PX_OUT_WORD(index) image_out.vecs[(index) >> 2][(index)&3u]
#else
layout(set = 0, binding = BINDING_IMAGE) buffer ImageOut {
    uint words[];
}
image_out;
#define PX_OUT_WORD(index) image_out.words[index]
#endif

// Inputs. The protocol keeps an instruction's inputs and outputs apart (or in place element for
// element, which kernels read through image_out), so this view never sees a write of its dispatch.
// Kernels that load 128 bits at a time define PX_IMAGE_IN_VEC4 and see the words in fours.
#ifdef PX_IMAGE_IN_VEC4
layout(set = 0, binding = BINDING_IMAGE_IN) readonly restrict buffer ImageIn {
    uvec4 vecs[];
}
image_in;
#define PX_IMAGE_WORD(index) image_in.vecs[(index) >> 2][(index)&3u]
#else
layout(set = 0, binding = BINDING_IMAGE_IN) readonly restrict buffer ImageIn {
    uint words[];
}
image_in;
#define PX_IMAGE_WORD(index) image_in.words[index]
#endif

struct RunStatus {
    uint fault_code, fault_pc, executed, halted;
};

layout(set = 0, binding = BINDING_STATUS) buffer KernelStatus {
    RunStatus run;
    uint scratch[SCRATCH_WORDS];
}
status;

#include "pxvm_tensor.glsl"

layout(push_constant) uniform KernelPush {
    uint width, height; // the image, in pixels
    uint pc, step;      // the instruction's x in row 0 and its index in the plan
    Tensor t[4];        // operands: channels G, B, A, then extension pixel 1's R
    uint arg[4];        // instruction-specific words
}
push;

const uint NONE = 0xFFFFFFFFu;

// Whether an earlier dispatch stopped the run (a data-dependent fault, or STATUS_INCOMPLETE):
// nothing after a fault changes the image. Only for kernels without barriers; the others use
// run_stopped_uniform.
bool run_stopped() {
    return status.run.fault_code != FAULT_NONE;
}

shared uint s_stopped;

// run_stopped for kernels with barriers: one invocation reads the status and the workgroup shares
// its answer, so that all of them return or none (another workgroup may report
// STATUS_INCOMPLETE while this one starts). A barrier of every invocation.
bool run_stopped_uniform() {
    if (gl_LocalInvocationIndex == 0u) s_stopped = status.run.fault_code;
    barrier();
    return s_stopped != FAULT_NONE;
}

// The index of this workgroup in a 2D grid that covers a 1D range (groups.x * groups.y >= the
// groups needed; a single dimension allows only 65535).
uint flat_group() {
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

// Ends the run: the device stopped a loop of this invocation early (lavapipe's loop budget), so
// the image is unreliable. The host turns this into an error.
void report_incomplete() {
    atomicExchange(status.run.fault_code, STATUS_INCOMPLETE);
    status.run.fault_pc = push.pc;
    status.run.executed = push.step;
}

#endif
