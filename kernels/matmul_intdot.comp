#version 450
// Scheduled kernel `matmul_intdot`: matmul.glsl with packed 4x8-bit dot products
// (pxvm_intdot.glsl); needs shaderIntegerDotProduct.
#extension GL_GOOGLE_include_directive : require

#define PX_INT_DOT
#include "matmul.glsl"
