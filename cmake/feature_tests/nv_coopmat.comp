#version 450
// Probe: NV integer cooperative matrices (int8 A, B; int32 accumulator), as a coopmat matmul uses.
#extension GL_KHR_memory_scope_semantics : require
#extension GL_NV_cooperative_matrix : require
#extension GL_NV_integer_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int32 : require
layout(local_size_x = 32) in;
layout(set = 0, binding = 0) buffer Words {
    uint words[];
};
void main() {
    icoopmatNV<8, gl_ScopeSubgroup, 16, 32> a;
    icoopmatNV<8, gl_ScopeSubgroup, 32, 8> b;
    icoopmatNV<32, gl_ScopeSubgroup, 16, 8> c = icoopmatNV<32, gl_ScopeSubgroup, 16, 8>(0);
    coopMatLoadNV(a, words, 0, 8, false);
    coopMatLoadNV(b, words, 128, 8, true);
    c = coopMatMulAddNV(a, b, c);
    coopMatStoreNV(c, words, 256, 8, false);
}
