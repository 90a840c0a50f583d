#version 450
// Test kernel for run timeouts: every workgroup (one invocation) iterates an FNV-style hash
// `iterations` times and adds it to status.fault_pc, so the loop cannot be optimised away.
// llvmpipe ends any loop after 65535 iterations, so long runs there take many workgroups.
#extension GL_GOOGLE_include_directive : require
#include "pxvm_layout.h"

layout(local_size_x = 1) in;
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
    uint iterations;
}
push;

void main() {
    uint h = pixels[0] ^ gl_WorkGroupID.x ^ 2166136261u;
    for (uint i = 0u; i < push.iterations; ++i)
        h = (h ^ i) * 16777619u;
    atomicAdd(status.fault_pc, h);
}
