// Tensors of Pixel Protocol v1 (docs/PROTOCOL.md section 3) for every GLSL kernel: the Tensor
// struct (px::KernelTensor in pxvm_layout.h), pixel rectangles, overlap, and element addressing.
// The includer says how an image word is read by defining PX_IMAGE_WORD(index) before including
// this file (the interpreter reads its one coherent view, the scheduled kernels their readonly
// input binding); widths are passed explicitly because push-constant blocks declare Tensor
// members and so come after this file.
#ifndef PXVM_TENSOR_GLSL
#define PXVM_TENSOR_GLSL

#include "pxvm_arith.glsl"

#ifndef PX_IMAGE_WORD
#error "define PX_IMAGE_WORD(index) before including pxvm_tensor.glsl"
#endif

// Origin pixel, shape and dtype code, as px::KernelTensor (20 bytes, std430 in push constants).
struct Tensor {
    uint x, y, rows, cols, dtype;
};

// Width of the tensor's pixel rectangle: ceil(dtype_size * cols / 4).
uint pixel_width(Tensor t) {
    return (dtype_size(t.dtype) * t.cols + 3u) / 4u;
}

// Elements of the tensor's dtype in one word (4, 2 or 1).
uint per_word(Tensor t) {
    return 4u / dtype_size(t.dtype);
}

bool overlaps(Tensor a, Tensor b) {
    return a.x < b.x + pixel_width(b) && b.x < a.x + pixel_width(a) && a.y < b.y + b.rows &&
           b.y < a.y + a.rows;
}

bool same_region(Tensor a, Tensor b) {
    return a.x == b.x && a.y == b.y && a.rows == b.rows && a.cols == b.cols && a.dtype == b.dtype;
}

// Word index of the first pixel of tensor row r in an image `width` pixels wide; tensor rows
// always start on a pixel, at any x (no alignment beyond one word).
uint row_word(Tensor t, uint width, uint r) {
    return (t.y + r) * width + t.x;
}

// Word index of element (r, c).
uint element_word(Tensor t, uint width, uint r, uint c) {
    return row_word(t, width, r) + dtype_size(t.dtype) * c / 4u;
}

// Element (r, c), sign- or zero-extended per its dtype (load_element in program.cpp).
int load_element(Tensor t, uint width, uint r, uint c) {
    return extract_element(PX_IMAGE_WORD(element_word(t, width, r, c)), t.dtype, c % per_word(t));
}

#endif
