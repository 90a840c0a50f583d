#version 450
// Scheduled kernel `finish`, one invocation, the last dispatch of every scheduled program: when no
// kernel stopped the run it records how the plan ends (push.arg: the static fault code or 0, its
// pc, the number of steps, halted), then writes the fault pixel of a protocol fault, so the status
// and image equal the interpreters'.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = 1) in;

void main() {
    if (status.run.fault_code == FAULT_NONE) {
        status.run.fault_code = push.arg[0];
        status.run.fault_pc = push.arg[1];
        status.run.executed = push.arg[2];
        status.run.halted = push.arg[3];
    }
    const uint code = status.run.fault_code;
    if (code != FAULT_NONE && code != STATUS_INCOMPLETE) { // INCOMPLETE: the image is unreliable
        const uint pc = status.run.fault_pc;
        image_out.words[push.width - 1u] =
            code | (pc & 255u) << 8 | (pc >> 8) << 16 | FAULT_PIXEL_ALPHA << 24;
    }
}
