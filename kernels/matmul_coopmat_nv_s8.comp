#version 450
// Scheduled kernel `matmul_coopmat_nv_s8`: matmul_coopmat_nv.glsl for i8 x i8 -> i32 (tensor
// cores); needs VK_NV_cooperative_matrix with an s8 x s8 -> s32 shape and shaderInt8.
#extension GL_GOOGLE_include_directive : require

#define PX_SIGNED
#include "matmul_coopmat_nv.glsl"
