#version 450
// Test kernel for the capability check: it declares the Int64 capability.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#include "pxvm_layout.h"

layout(local_size_x = 1) in;
layout(set = 0, binding = BINDING_IMAGE) buffer ImageBuffer {
    uint pixels[];
};
layout(push_constant) uniform Push {
    uint shift;
}
push;

void main() {
    const uint64_t wide = uint64_t(pixels[0]) << push.shift;
    pixels[0] = uint(wide >> 32);
}
