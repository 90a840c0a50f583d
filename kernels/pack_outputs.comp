#version 450
// `pack_outputs`, recorded after a program's last dispatch when the host asked for output
// regions: copies one region of the image, row after row, into the recording's host-visible
// output buffer (binding BINDING_OUTPUTS), one word per invocation over a 2D grid. One copy of
// many short rows on the GPU's copy path costs a few microseconds per row; this costs one
// dispatch.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_layout.h"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

layout(set = 0, binding = BINDING_IMAGE_IN) readonly restrict buffer ImageIn {
    uint words[];
}
image_in;

layout(set = 0, binding = BINDING_OUTPUTS) writeonly restrict buffer Outputs {
    uint words[];
}
outputs;

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
    outputs.words[push.first_word + e] =
        image_in.words[(push.y + r) * push.image_width + push.x + c];
}
