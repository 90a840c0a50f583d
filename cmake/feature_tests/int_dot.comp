#version 450
// Probe: packed 4x8-bit integer dot products (SPV_KHR_integer_dot_product).
#extension GL_EXT_shader_explicit_arithmetic_types_int32 : require
#extension GL_EXT_integer_dot_product : require
layout(local_size_x = 1) in;
layout(set = 0, binding = 0) buffer Words {
    uint words[];
};
void main() {
    words[0] = uint(dotPacked4x8EXT(int(words[1]), int(words[2])));
    words[3] = dotPacked4x8EXT(words[4], words[5]);
}
