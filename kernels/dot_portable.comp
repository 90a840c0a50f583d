#version 450
// Scheduled kernel `dot_portable`: dot.glsl with dot products from 32-bit integer arithmetic.
#extension GL_GOOGLE_include_directive : require

#include "dot.glsl"
