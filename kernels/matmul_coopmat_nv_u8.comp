#version 450
// Scheduled kernel `matmul_coopmat_nv_u8`: matmul_coopmat_nv.glsl for u8 x u8 -> u32 (tensor
// cores, the same bits as the protocol's wrapping i32); needs VK_NV_cooperative_matrix with a
// u8 x u8 -> u32 shape and shaderInt8.
#extension GL_GOOGLE_include_directive : require

#include "matmul_coopmat_nv.glsl"
