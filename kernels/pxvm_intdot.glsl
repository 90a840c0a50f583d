// Packed 4x8-bit integer dot products (SPV_KHR_integer_dot_product, OpSDot / OpUDot with
// PackedVectorFormat4x8Bit) for the int-dot kernel variants. Debian 12's glslang 12 has no
// GL_EXT_integer_dot_product, so the instructions are declared through GL_EXT_spirv_intrinsics
// (cmake/feature_tests/int_dot.comp probes exactly this form). Not the AccSat forms: those
// saturate, the protocol wraps. Capabilities 6019 (DotProductInput4x8BitPacked) and 6018
// (DotProduct) make the runtime refuse these kernels on devices without shaderIntegerDotProduct.
#ifndef PXVM_INTDOT_GLSL
#define PXVM_INTDOT_GLSL

#extension GL_EXT_spirv_intrinsics : require

spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [ 6019, 6018 ],
                  id = 4450) int sdot_packed(uint a, uint b, spirv_literal int format);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [ 6019, 6018 ],
                  id = 4451) uint udot_packed(uint a, uint b, spirv_literal int format);

const int PACKED_4X8 = 0; // PackedVectorFormat4x8Bit

// The exact sum of the four byte products of two words, as dot4 with all four bytes counting.
uint dot4_packed(uint a, uint b, bool is_signed) {
    return is_signed ? uint(sdot_packed(a, b, PACKED_4X8)) : udot_packed(a, b, PACKED_4X8);
}

#endif
