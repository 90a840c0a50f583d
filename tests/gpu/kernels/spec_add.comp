#version 450
// Test kernel for specialisation constants: R = R + ADD (mod 256) for the first `count` pixels,
// with ADD (constant_id 0) and the workgroup size (constant_id 1) set when the pipeline is made.
#extension GL_GOOGLE_include_directive : require
#include "pxvm_layout.h"

layout(local_size_x_id = 1) in;
layout(constant_id = 0) const uint ADD = 1u;
layout(set = 0, binding = BINDING_IMAGE) buffer ImageBuffer {
    uint pixels[];
};
layout(push_constant) uniform Push {
    uint count;
}
push;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= push.count) return;
    const uint word = pixels[i];
    pixels[i] = (word & 0xFFFFFF00u) | ((word + ADD) & 0xFFu);
}
