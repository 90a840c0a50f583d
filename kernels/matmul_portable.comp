#version 450
// Scheduled kernel `matmul_portable`: matmul.glsl with products from 32-bit integer arithmetic,
// for every Vulkan 1.2 device.
#extension GL_GOOGLE_include_directive : require

#include "matmul.glsl"
