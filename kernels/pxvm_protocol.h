// Pixel Protocol v1 constants shared by the C++ runtime and the GLSL kernels.
// Included from both languages so opcode numbers, fault codes, dtypes and limits cannot drift.
// docs/PROTOCOL.md is the prose specification of every value here.
#ifndef PXVM_PROTOCOL_H
#define PXVM_PROTOCOL_H

#include "pxvm_const.h"

PX_NAMESPACE_BEGIN

PX_CONST(PROTOCOL_VERSION, 1u);

// Image limits: both dimensions fit 16 bits (tensor descriptors store them so) and the whole
// image fits 1 GiB, so every byte offset fits a 32-bit unsigned integer.
PX_CONST(MAX_WIDTH, 32768u);
PX_CONST(MAX_HEIGHT, 32768u);
PX_CONST(MAX_PIXELS, 268435456u); // 2^28 pixels = 1 GiB of RGBA

// Opcodes (R channel of an instruction pixel) are defined by the instruction table,
// pxvm_instructions.h: 0 and 1 are the seed's v0.0.1 ops; the others are ASCII capitals so a hex
// dump or a colour picker names them.

// Element types of tensors (the B channel of a TENSOR instruction).
PX_CONST(DTYPE_U8, 1u);
PX_CONST(DTYPE_I8, 2u);
PX_CONST(DTYPE_U16, 3u);
PX_CONST(DTYPE_I32, 4u);

PX_CONST(MAX_TENSORS, 256u);
PX_CONST(MAX_REQUANT_SHIFT, 62u);
// rmsnorm clamps its input to ±RMSNORM_LIMIT so the sum of squares of up to 32768 values fits
// 63 bits; attend reads at most MAX_ATTEND_POSITIONS positions of heads of at most MAX_HEAD_SIZE
// dimensions, so its sums fit 32 bits (docs/PROTOCOL.md section 5).
PX_CONST(RMSNORM_LIMIT, 16777215u); // 2^24 - 1
PX_CONST(MAX_ATTEND_POSITIONS, 1024u);
PX_CONST(MAX_HEAD_SIZE, 32768u);

// Fault codes, written to the fault pixel (W-1, 0) as (code, pc & 255, pc >> 8, 255).
PX_CONST(FAULT_NONE, 0u);
PX_CONST(FAULT_BAD_OPCODE, 1u);
PX_CONST(FAULT_TRUNCATED, 2u);
PX_CONST(FAULT_BAD_OPERAND, 3u);
PX_CONST(FAULT_BAD_DTYPE, 4u);
PX_CONST(FAULT_UNDEFINED_TENSOR, 5u);
PX_CONST(FAULT_OUT_OF_BOUNDS, 6u);
PX_CONST(FAULT_PROGRAM_ROW, 7u);
PX_CONST(FAULT_SHAPE_MISMATCH, 8u);
PX_CONST(FAULT_OVERLAP, 9u);
PX_CONST(FAULT_TOKEN_RANGE, 10u);
PX_CONST(FAULT_COUNT, 11u);

PX_CONST(FAULT_PIXEL_ALPHA, 255u);

PX_NAMESPACE_END
#include "pxvm_instructions.h" // the opcodes

#endif
