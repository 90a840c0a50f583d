// The instruction table of Pixel Protocol v1: one row per instruction, included by C++ and GLSL,
// so the bookkeeping every executor and tool needs (names, lengths, operand roles, accepted dtypes,
// overlap rules, work formulas, kernel families) is written once. docs/PROTOCOL.md specifies each
// instruction; shape rules and semantics stay hand-written, once per language.
//
// PX_INSTRUCTIONS(X) calls X once per instruction with, in order:
//   name      the mnemonic, an identifier (C++ stringifies it)
//   opcode    the OP_ constant (R channel)
//   length    pixels, extension pixels included
//   used      argument channels in use (G, B, A from the left); the others must be 0 (HALT: 3,
//             its arguments are ignored)
//   arity     tensor operands (channels G, B, A name tensor ids); 0 for halt, dot_rgb, tensor
//   r0 r1 r2  operand role names for messages and the assembler (identifiers; `_` when unused)
//   writes    bit i: operand i is written (an output)
//   reads     bit i: operand i is read (an input); an operand may be both (add_bias acc)
//   dt0..dt2  accepted dtypes of each operand, DT_ bits (0: any)
//   same      bit i: operand i must have the same dtype as the lowest operand in the mask
//   in_place  bit i: an output may be exactly the same region as input i (else no overlap at all)
//   data      1 when a check reads data (token ids): TOKEN_RANGE
//   work      WORK_ formula of the reference budget (docs/SECURITY.md)
//
// Check order (docs/PROTOCOL.md section 2): the table's dtypes (operands in order, then `same`),
// the instruction's own checks (hand-written: requant's shift, shapes), then the table's overlaps
// (each output against each other operand, in channel order), then the data check.
#ifndef PXVM_INSTRUCTIONS_H
#define PXVM_INSTRUCTIONS_H

#include "pxvm_protocol.h"

PX_NAMESPACE_BEGIN

// Accepted-dtype bits: 1 << dtype code.
PX_CONST(DT_U8, 2u);
PX_CONST(DT_I8, 4u);
PX_CONST(DT_U16, 8u);
PX_CONST(DT_I32, 16u);

// Work formulas: reference operations of one step (docs/SECURITY.md).
PX_CONST(WORK_ONE, 0u);      // 1 (halt, tensor)
PX_CONST(WORK_ROWS, 1u);     // 2·W + 1: dot_rgb reads at most two image rows
PX_CONST(WORK_PRODUCT, 2u);  // out.elements · a.cols + 1: a matrix product
PX_CONST(WORK_INPUT, 3u);    // in.elements + 1: operand 1 read once
PX_CONST(WORK_OUTPUT, 4u);   // out.elements + 1: operand 0 updated once
PX_CONST(WORK_GATHER, 5u);   // tokens.elements · (table.cols + 1) + 1: a row per token slot

PX_NAMESPACE_END

// clang-format off
#define PX_INSTRUCTIONS(X)                                                                         \
    X(halt,        OP_HALT,        1, 3, 0, _,   _,     _,      0u, 0u, 0u,    0u,            0u,                    0u,    0u, 0u, WORK_ONE)     \
    X(dot_rgb,     OP_DOT_RGB,     1, 3, 0, _,   _,     _,      0u, 0u, 0u,    0u,            0u,                    0u,    0u, 0u, WORK_ROWS)    \
    X(tensor,      OP_TENSOR,      3, 2, 0, _,   _,     _,      0u, 0u, 0u,    0u,            0u,                    0u,    0u, 0u, WORK_ONE)     \
    X(dot,         OP_DOT,         1, 3, 3, out, a,     b,      1u, 6u, DT_I32, DT_U8 | DT_I8, 0u,                    6u,    0u, 0u, WORK_INPUT)   \
    X(matmul,      OP_MATMUL,      1, 3, 3, c,   a,     b,      1u, 6u, DT_I32, DT_U8 | DT_I8, 0u,                    6u,    0u, 0u, WORK_PRODUCT) \
    X(add_bias,    OP_ADD_BIAS,    1, 2, 2, acc, bias,  _,      1u, 3u, DT_I32, DT_I32,        0u,                    0u,    0u, 0u, WORK_OUTPUT)  \
    X(requant,     OP_REQUANT,     3, 2, 2, out, in,    _,      1u, 2u, DT_U8 | DT_I8 | DT_I32, DT_I32, 0u,           0u,    2u, 0u, WORK_INPUT)   \
    X(relu,        OP_RELU,        1, 2, 2, out, in,    _,      1u, 2u, 0u,     0u,            0u,                    3u,    2u, 0u, WORK_INPUT)   \
    X(argmax,      OP_ARGMAX,      1, 2, 2, out, in,    _,      1u, 2u, DT_U16 | DT_I32, 0u,   0u,                    0u,    0u, 0u, WORK_INPUT)   \
    X(gather_mean, OP_GATHER_MEAN, 1, 3, 3, out, table, tokens, 1u, 6u, DT_I32, DT_U8 | DT_I8, DT_U8 | DT_U16 | DT_I32, 0u, 0u, 1u, WORK_GATHER) \
    X(embed,       OP_EMBED,       1, 3, 3, out, table, tokens, 1u, 6u, DT_U8 | DT_I8, DT_U8 | DT_I8, DT_U8 | DT_U16 | DT_I32, 3u, 0u, 1u, WORK_GATHER)
// clang-format on

#endif
