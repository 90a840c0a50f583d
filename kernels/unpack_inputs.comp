#version 450
// `unpack_inputs`, recorded before a program's first dispatch when the host gave input regions:
// copies the recording's host-visible input buffer (binding BINDING_INPUTS), row after row, into
// one region of the image, one word per invocation over a 2D grid (pack_outputs in reverse).
#extension GL_GOOGLE_include_directive : require

#include "pxvm_layout.h"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

layout(set = 0, binding = BINDING_IMAGE) writeonly buffer ImageOut {
    uint words[];
}
image_out;

layout(set = 0, binding = BINDING_INPUTS) readonly restrict buffer Inputs {
    uint words[];
}
inputs;

layout(push_constant) uniform PackPush {
    uint image_width;
    uint x, y, width, height;
    uint first_word;
}
push;

void main() {
    const uint e = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * KERNEL_LOCAL_SIZE +
                   gl_LocalInvocationIndex;
    if (e >= push.width * push.height) return;
    const uint r = e / push.width, c = e % push.width;
    image_out.words[(push.y + r) * push.image_width + push.x + c] =
        inputs.words[push.first_word + e];
}
