#version 450
// A kernel for the SPIR-V reader's tests, compiled for vulkan1.3 (SPIR-V 1.6), where glslang
// declares the workgroup size with LocalSizeId: x is specialization constant 0 (default 16), y the
// constant 4.
layout(local_size_x = 16, local_size_x_id = 0, local_size_y = 4) in;
layout(set = 1, binding = 3) buffer Values {
    uint values[];
};

void main() {
    values[gl_LocalInvocationIndex] = gl_LocalInvocationIndex;
}
