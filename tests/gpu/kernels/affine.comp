#version 450
// Test kernel for the runtime's dispatch path: R = R * mul + add (mod 256) for the first `count`
// pixels, G, B, A kept; invocation 0 counts the dispatch in status.executed. Two dispatches in one
// run only give (R * m1 + a1) * m2 + a2 when the barrier between them works.
#extension GL_GOOGLE_include_directive : require
#include "pxvm_layout.h"

layout(local_size_x = 64) in;
layout(set = 0, binding = BINDING_IMAGE) buffer ImageBuffer {
    uint pixels[];
};
layout(set = 0, binding = BINDING_STATUS) buffer Status {
    uint fault_code;
    uint fault_pc;
    uint executed;
    uint halted;
}
status;
layout(push_constant) uniform Push {
    uint count;
    uint mul;
    uint add;
}
push;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i == 0u) status.executed += 1u;
    if (i >= push.count) return;
    const uint word = pixels[i];
    pixels[i] = (word & 0xFFFFFF00u) | (((word & 0xFFu) * push.mul + push.add) & 0xFFu);
}
