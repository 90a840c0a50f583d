#version 450
// Scheduled kernel `dot_intdot`: dot.glsl with packed 4x8-bit dot products (pxvm_intdot.glsl).
#extension GL_GOOGLE_include_directive : require

#define PX_INT_DOT
#include "dot.glsl"
