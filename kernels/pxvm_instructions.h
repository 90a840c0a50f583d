// The instruction table of Pixel Protocol v1: one row per instruction, included by C++ and GLSL,
// so the bookkeeping every executor and tool needs (names, lengths, operand roles, accepted dtypes,
// overlap rules, work formulas, kernel families) is written once. docs/PROTOCOL.md specifies each
// instruction; shape rules and semantics stay hand-written, once per language.
//
// PX_INSTRUCTIONS(X) calls X once per instruction with, in order:
//   name      the mnemonic, an identifier (C++ stringifies it)
//   op, value the opcode's constant (defined here from the table) and its value (R channel)
//   length    pixels, extension pixels included
//   used      argument channels in use (G, B, A from the left); the others must be 0 (HALT: 3,
//             its arguments are ignored)
//   arity     tensor operands: channels G, B, A name operands 0-2, and the R channel of the first
//             extension pixel names operand 3 (attend's where); 0 for halt, dot_rgb, tensor
//   r0..r3    operand role names for messages and the assembler (identifiers; `_` when unused)
//   writes    bit i: operand i is written (an output)
//   reads     bit i: operand i is read (an input); an operand may be both (add_bias acc)
//   dt0..dt3  accepted dtypes of each operand, DT_ bits (0: any)
//   same      bit i: operand i must have the same dtype as the lowest operand in the mask
//   in_place  bit i: an output may be exactly the same region as input i (else no overlap at all)
//   data      1 when a check reads data (token ids): TOKEN_RANGE
//   shape     SHAPE_ rule checked from the table (SHAPE_CUSTOM: hand-written in each language)
//   lowering  LOWER_ rule of the scheduler (LOWER_CUSTOM: hand-written in scheduler.cpp)
//   work      WORK_ formula of the reference budget (docs/SECURITY.md)
//
// Check order (docs/PROTOCOL.md section 2): the table's dtypes (operands in order, then `same`),
// the instruction's own checks (hand-written: requant's shift, custom shapes), the table's shape
// rule, then the table's overlaps (each output against each other operand, in channel order), then
// the data check. docs/INSTRUCTIONS.md is the checklist for adding an instruction.
#ifndef PXVM_INSTRUCTIONS_H
#define PXVM_INSTRUCTIONS_H

#include "pxvm_const.h"

PX_NAMESPACE_BEGIN

// Accepted-dtype bits: 1 << dtype code.
PX_CONST(DT_U8, 2u);
PX_CONST(DT_I8, 4u);
PX_CONST(DT_U16, 8u);
PX_CONST(DT_I32, 16u);

// Work formulas: reference operations of one step (docs/SECURITY.md).
PX_CONST(WORK_ONE, 0u);     // 1 (halt, tensor)
PX_CONST(WORK_ROWS, 1u);    // 2·W + 1: dot_rgb reads at most two image rows
PX_CONST(WORK_PRODUCT, 2u); // out.elements · a.cols + 1: a matrix product
PX_CONST(WORK_INPUT, 3u);   // in.elements + 1: operand 1 read once
PX_CONST(WORK_OUTPUT, 4u);  // out.elements + 1: operand 0 updated once
PX_CONST(WORK_GATHER, 5u);  // tokens.elements · (table.cols + 1) + 1: a row per token slot
PX_CONST(WORK_ATTEND, 6u);  // 2 · q.rows · cache.rows · q.cols + q.rows + 1: every position read

// Shape rules the table checks (SHAPE_MISMATCH).
PX_CONST(SHAPE_CUSTOM, 0u); // the instruction's own rules only
PX_CONST(SHAPE_SAME, 1u);   // every operand has operand 0's rows and cols

// Scheduler lowerings the table gives.
PX_CONST(LOWER_CUSTOM, 0u); // written in scheduler.cpp
PX_CONST(LOWER_WORDS, 1u);  // the kernel named after the instruction, one invocation per word of
                            // operand 0 over a 2D grid, the operands in the push constants

PX_NAMESPACE_END

// clang-format off
#define PX_INSTRUCTIONS(X)                                                                         \
    X(halt,        OP_HALT,         0u, 1, 3, 0, _,     _,     _,      _,     0u, 0u,  0u,     0u,            0u,                    0u,             0u, 0u, 0u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_ONE)     \
    X(dot_rgb,     OP_DOT_RGB,      1u, 1, 3, 0, _,     _,     _,      _,     0u, 0u,  0u,     0u,            0u,                    0u,             0u, 0u, 0u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_ROWS)    \
    X(tensor,      OP_TENSOR,      84u, 3, 2, 0, _,     _,     _,      _,     0u, 0u,  0u,     0u,            0u,                    0u,             0u, 0u, 0u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_ONE)     \
    X(dot,         OP_DOT,         68u, 1, 3, 3, out,   a,     b,      _,     1u, 6u,  DT_I32, DT_U8 | DT_I8, 0u,                    0u,             6u, 0u, 0u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_INPUT)   \
    X(matmul,      OP_MATMUL,      77u, 1, 3, 3, c,     a,     b,      _,     1u, 6u,  DT_I32, DT_U8 | DT_I8, 0u,                    0u,             6u, 0u, 0u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_PRODUCT) \
    X(add_bias,    OP_ADD_BIAS,    66u, 1, 2, 2, acc,   bias,  _,      _,     1u, 3u,  DT_I32, DT_I32,        0u,                    0u,             0u, 0u, 0u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_OUTPUT)  \
    X(requant,     OP_REQUANT,     81u, 3, 2, 2, out,   in,    _,      _,     1u, 2u,  DT_U8 | DT_I8 | DT_I32, DT_I32, 0u,           0u,             0u, 2u, 0u, SHAPE_SAME,   LOWER_CUSTOM, WORK_INPUT)   \
    X(relu,        OP_RELU,        82u, 1, 2, 2, out,   in,    _,      _,     1u, 2u,  0u,     0u,            0u,                    0u,             3u, 2u, 0u, SHAPE_SAME,   LOWER_CUSTOM, WORK_INPUT)   \
    X(argmax,      OP_ARGMAX,      65u, 1, 2, 2, out,   in,    _,      _,     1u, 2u,  DT_U16 | DT_I32, 0u,   0u,                    0u,             0u, 0u, 0u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_INPUT)   \
    X(gather_mean, OP_GATHER_MEAN, 71u, 1, 3, 3, out,   table, tokens, _,     1u, 6u,  DT_I32, DT_U8 | DT_I8, DT_U8 | DT_U16 | DT_I32, 0u,   0u, 0u, 1u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_GATHER) \
    X(embed,       OP_EMBED,       69u, 1, 3, 3, out,   table, tokens, _,     1u, 6u,  0u,     0u,            DT_U8 | DT_U16 | DT_I32, 0u,    3u, 0u, 1u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_GATHER) \
    X(add,         OP_ADD,         83u, 1, 2, 2, acc,   in,    _,      _,     1u, 3u,  DT_I32, DT_I32,        0u,                    0u,             0u, 2u, 0u, SHAPE_SAME,   LOWER_WORDS,  WORK_OUTPUT)  \
    X(lut,         OP_LUT,         76u, 1, 3, 3, out,   in,    table,  _,     1u, 6u,  DT_U8 | DT_I8, DT_U8 | DT_I8, DT_U8 | DT_I8, 0u,      7u, 2u, 0u, SHAPE_CUSTOM, LOWER_WORDS,  WORK_INPUT)   \
    X(rmsnorm,     OP_RMSNORM,     78u, 2, 3, 3, out,   in,    gain,   _,     1u, 6u,  DT_I8,  DT_I32,        DT_I32,                0u,             0u, 0u, 0u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_INPUT)   \
    X(kvstore,     OP_KVSTORE,     75u, 1, 3, 3, cache, rows,  where,  _,     1u, 7u,  DT_U8 | DT_I8, DT_U8 | DT_I8, DT_U16 | DT_I32, 0u,     3u, 0u, 1u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_INPUT)   \
    X(attend,      OP_ATTEND,      72u, 3, 3, 4, out,   q,     cache,  where, 1u, 14u, DT_I8,  DT_I8,         DT_I8,                 DT_U16 | DT_I32, 0u, 0u, 1u, SHAPE_CUSTOM, LOWER_CUSTOM, WORK_ATTEND)
// clang-format on

// The opcode constants, from the table.
#define PX_OPCODE_CONST(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0,  \
                        dt1, dt2, dt3, same, in_place, data, shape, lowering, work)                \
    PX_CONST(op, value);
PX_NAMESPACE_BEGIN
PX_INSTRUCTIONS(PX_OPCODE_CONST)
PX_NAMESPACE_END
#undef PX_OPCODE_CONST

#endif
