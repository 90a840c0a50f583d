#version 450
// Probe: packed 4x8-bit integer dot products (SPV_KHR_integer_dot_product) in exactly the form the
// int-dot kernels declare them (kernels/pxvm_intdot.glsl): OpSDot and OpUDot through
// GL_EXT_spirv_intrinsics, which glslang versions without GL_EXT_integer_dot_product compile.
#extension GL_EXT_spirv_intrinsics : require
layout(local_size_x = 1) in;
layout(set = 0, binding = 0) buffer Words {
    uint words[];
};
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [ 6019, 6018 ],
                  id = 4450) int sdot_packed(uint a, uint b, spirv_literal int format);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [ 6019, 6018 ],
                  id = 4451) uint udot_packed(uint a, uint b, spirv_literal int format);
void main() {
    words[0] = uint(sdot_packed(words[1], words[2], 0));
    words[3] = udot_packed(words[4], words[5], 0);
}
