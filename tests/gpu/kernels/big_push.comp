#version 450
// Test kernel for the validation test: its push constants (33 words = 132 bytes) exceed the
// runtime's 128-byte push-constant range, which the validation layer must report.
#extension GL_GOOGLE_include_directive : require
#include "pxvm_layout.h"

layout(local_size_x = 1) in;
layout(set = 0, binding = BINDING_IMAGE) buffer ImageBuffer {
    uint pixels[];
};
layout(push_constant) uniform Push {
    uint words[33];
}
push;

void main() {
    pixels[0] = push.words[32];
}
