#version 450
// Benchmark kernel `coopmat_peak_nv` (not an instruction; pxbench's tensor-core ceiling): every
// subgroup loads one LM x LK and one LK x LN i8 matrix from the image once, then runs push.arg[0]
// rounds of CHAINS independent multiply-adds in registers, so nothing but the tensor cores limits
// it. The sums are stored (into row 1 on) only when push.arg[1] is not 0, which the compiler
// cannot know, so the loop is never removed. Operations: 2 LM LN LK CHAINS arg[0] a subgroup.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_NV_cooperative_matrix : require
#extension GL_NV_integer_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int32 : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;
layout(constant_id = 0) const uint LM = 16u;
layout(constant_id = 1) const uint LN = 16u;
layout(constant_id = 2) const uint LK = 32u;

const uint CHAINS = 8u;

void main() {
    if (run_stopped_uniform()) return;
    icoopmatNV<8, gl_ScopeSubgroup, LM, LK> a;
    icoopmatNV<8, gl_ScopeSubgroup, LK, LN> b;
    coopMatLoadNV(a, image_in.words, push.width, LK / 4u, false);
    coopMatLoadNV(b, image_in.words, push.width, LK / 4u, true);
    icoopmatNV<32, gl_ScopeSubgroup, LM, LN> acc[CHAINS];
    [[unroll]] for (uint q = 0u; q < CHAINS; ++q) acc[q] =
        icoopmatNV<32, gl_ScopeSubgroup, LM, LN>(0);
    for (uint round = 0u; round < push.arg[0]; ++round)
        [[unroll]] for (uint q = 0u; q < CHAINS; ++q) acc[q] = coopMatMulAddNV(a, b, acc[q]);
    if (push.arg[1] != 0u) [[unroll]]
        for (uint q = 0u; q < CHAINS; ++q)
            coopMatStoreNV(acc[q], image_out.words, push.width * (1u + q * LM), push.width, false);
}
