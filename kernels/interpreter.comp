#version 450
// The GPU interpreter (Path A): runs a whole pixel program in one workgroup, bit for bit as
// run_reference (runtime/src/reference_interpreter.cpp), with the checks and fault codes of
// plan_program (runtime/src/program.cpp) in the same order. Thread 0 decodes and checks each
// instruction; every thread then shares its work. Only core Vulkan 1.2 features are used (no
// 64-bit or 8-bit types), so it runs on any device. The integer semantics (dtypes, dot products,
// requantisation) come from pxvm_arith.glsl and pxvm_tensor.glsl, shared with the scheduled
// kernels.
//
// Loops whose trip count the compiler cannot know are kept few (the others are unrolled): Mesa's
// llvmpipe (lavapipe) silently ends every loop of an invocation once it has run 65535 loop
// iterations in all, so a run that needs more reports STATUS_INCOMPLETE instead of a wrong image
// (see loop_budget_exhausted).
#extension GL_GOOGLE_include_directive : require

#include "pxvm_instructions.h"
#include "pxvm_layout.h"
#include "pxvm_protocol.h"

layout(local_size_x = INTERPRETER_LOCAL_SIZE) in;

// The image: one word per RGBA pixel, R in the low byte. Coherent because threads read what
// other threads of the workgroup wrote for earlier instructions.
layout(set = 0, binding = BINDING_IMAGE) coherent buffer ImageBuffer {
    uint pixels[];
};

layout(set = 0, binding = BINDING_STATUS) buffer RunStatus {
    uint fault_code;
    uint fault_pc;
    uint executed;
    uint halted;
}
status;

layout(push_constant) uniform InterpreterPush {
    uint width;
    uint height;
}
push;

// The integer semantics and tensor addressing shared with the scheduled kernels.
#define PX_IMAGE_WORD(index) pixels[index]
#include "pxvm_tensor.glsl"
#include "pxvm_transformer.glsl"

const uint THREADS = INTERPRETER_LOCAL_SIZE;
// Levels of a reduction tree over THREADS threads: ceil(log2(THREADS)) as a constant expression.
const uint LEVELS = uint(THREADS > 1u) + uint(THREADS > 2u) + uint(THREADS > 4u) +
                    uint(THREADS > 8u) + uint(THREADS > 16u) + uint(THREADS > 32u) +
                    uint(THREADS > 64u) + uint(THREADS > 128u) + uint(THREADS > 256u) +
                    uint(THREADS > 512u);
const uint NONE = 0xFFFFFFFFu;

const uint STATE_RUN = 0u;
const uint STATE_HALTED = 1u; // at HALT
const uint STATE_ENDED = 2u;  // pc reached the end of row 0
const uint STATE_FAULTED = 3u;

// The tensor table (dtype 0: not declared), written only by thread 0.
shared uint table_x[MAX_TENSORS], table_y[MAX_TENSORS], table_rows[MAX_TENSORS],
    table_cols[MAX_TENSORS], table_dtype[MAX_TENSORS];

// Thread 0's decoding of the current instruction, read by every thread while it executes.
shared uint s_state, s_pc, s_executed, s_fault_code, s_fault_pc;
shared uint s_ins[3]; // the instruction pixel and its extension pixels
shared Tensor s_operands[4];

// Scratch of the parallel phases: first-index scans (atomicMin) and reductions.
shared uint s_first_a, s_first_b;
shared uint s_incomplete;
shared uint s_sum[THREADS];
shared int s_best_value[THREADS];
shared uint s_best_index[THREADS];

// ---- Helpers --------------------------------------------------------------------------------

// Makes every thread's image and shared-memory writes visible to the whole workgroup.
void sync_all() {
    memoryBarrierBuffer();
    memoryBarrierShared();
    barrier();
}

// The instruction table (pxvm_instructions.h): one switch per column this file needs.
#define PX_LENGTH(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,   \
                  dt2, dt3, same, in_place, data, shape, lowering, work)                           \
    case op:                                                                                       \
        return length;
#define PX_USED(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,     \
                dt2, dt3, same, in_place, data, shape, lowering, work)                             \
    case op:                                                                                       \
        return used;
#define PX_ARITY(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,    \
                 dt2, dt3, same, in_place, data, shape, lowering, work)                            \
    case op:                                                                                       \
        return arity;
#define PX_WRITES(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,   \
                  dt2, dt3, same, in_place, data, shape, lowering, work)                           \
    case op:                                                                                       \
        return writes;
#define PX_SAME(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,     \
                dt2, dt3, same, in_place, data, shape, lowering, work)                             \
    case op:                                                                                       \
        return same;
#define PX_IN_PLACE(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1, \
                    dt2, dt3, same, in_place, data, shape, lowering, work)                         \
    case op:                                                                                       \
        return in_place;
#define PX_SHAPE(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,    \
                 dt2, dt3, same, in_place, data, shape, lowering, work)                            \
    case op:                                                                                       \
        return shape;
#define PX_DTYPE0(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,   \
                  dt2, dt3, same, in_place, data, shape, lowering, work)                           \
    case op:                                                                                       \
        return dt0;
#define PX_DTYPE1(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,   \
                  dt2, dt3, same, in_place, data, shape, lowering, work)                           \
    case op:                                                                                       \
        return dt1;
#define PX_DTYPE3(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,   \
                  dt2, dt3, same, in_place, data, shape, lowering, work)                           \
    case op:                                                                                       \
        return dt3;
#define PX_DTYPE2(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0, dt1,   \
                  dt2, dt3, same, in_place, data, shape, lowering, work)                           \
    case op:                                                                                       \
        return dt2;
uint instruction_length(uint opcode) {
    switch (opcode) { PX_INSTRUCTIONS(PX_LENGTH) }
    return 0u;
}
uint used_args(uint opcode) {
    switch (opcode) { PX_INSTRUCTIONS(PX_USED) }
    return 0u;
}
uint operand_count(uint opcode) {
    switch (opcode) { PX_INSTRUCTIONS(PX_ARITY) }
    return 0u;
}
uint written_operands(uint opcode) {
    switch (opcode) { PX_INSTRUCTIONS(PX_WRITES) }
    return 0u;
}
uint same_dtype_operands(uint opcode) {
    switch (opcode) { PX_INSTRUCTIONS(PX_SAME) }
    return 0u;
}
uint in_place_operands(uint opcode) {
    switch (opcode) { PX_INSTRUCTIONS(PX_IN_PLACE) }
    return 0u;
}
uint shape_rule(uint opcode) {
    switch (opcode) { PX_INSTRUCTIONS(PX_SHAPE) }
    return 0u;
}
uint accepted_dtypes(uint opcode, uint i) {
    if (i == 0u) {
        switch (opcode) { PX_INSTRUCTIONS(PX_DTYPE0) }
    } else if (i == 1u) {
        switch (opcode) { PX_INSTRUCTIONS(PX_DTYPE1) }
    } else if (i == 2u) {
        switch (opcode) { PX_INSTRUCTIONS(PX_DTYPE2) }
    } else {
        switch (opcode) { PX_INSTRUCTIONS(PX_DTYPE3) }
    }
    return 0u;
}

// Word index of the first pixel of tensor row r (pxvm_tensor.glsl, in this image).
uint row_word(Tensor t, uint r) {
    return row_word(t, push.width, r);
}

int load_element(Tensor t, uint r, uint c) {
    return load_element(t, push.width, r, c);
}

// Writes one element; only for words no other thread writes in the same phase.
void store_element(Tensor t, uint r, uint c, int value) {
    const uint byte = row_word(t, r) * 4u + dtype_size(t.dtype) * c;
    const uint index = byte >> 2;
    const uint j = (byte & 3u) / dtype_size(t.dtype);
    pixels[index] = insert_element(pixels[index], t.dtype, j, value);
}

// Dot product of two tensor rows of k u8 or i8 elements starting at words ra and rb (rows always
// start on a pixel), four words per loop iteration.
uint dot_row(uint ra, uint rb, uint k, bool is_signed) {
    const uint full = k / 4u, words = (k + 3u) / 4u;
    uint sum = 0u; // wraps modulo 2^32 as the protocol says
    uint w = 0u;
    for (; w + 4u <= full; w += 4u)
        sum += dot4(pixels[ra + w], pixels[rb + w], 4u, is_signed) +
               dot4(pixels[ra + w + 1u], pixels[rb + w + 1u], 4u, is_signed) +
               dot4(pixels[ra + w + 2u], pixels[rb + w + 2u], 4u, is_signed) +
               dot4(pixels[ra + w + 3u], pixels[rb + w + 3u], 4u, is_signed);
    for (uint j = 0u; j < 4u; ++j) // the last 0-3 whole words and the partial one
        if (w + j < words)
            sum +=
                dot4(pixels[ra + w + j], pixels[rb + w + j], min(4u, k - 4u * (w + j)), is_signed);
    return sum;
}

// ---- Reductions: `lanes` consecutive threads (a power of two) per segment ---------------------

// Threads per segment when `segments` independent reductions share the workgroup: a power of two.
uint lanes_for(uint segments) {
    return segments >= THREADS ? 1u : 1u << uint(findMSB(THREADS / segments));
}

// Tree sum of s_sum within each group of `lanes` threads below `used`; lane 0 ends with the total.
// Every level runs (the loop has a constant trip count), with a barrier each.
void reduce_sum(uint tid, uint lanes, uint used) {
    const uint lane = tid % lanes;
    for (uint level = 0u; level < LEVELS; ++level) {
        const uint stride = 1u << (LEVELS - 1u - level);
        barrier();
        if (stride < lanes && lane < stride && tid < used) s_sum[tid] += s_sum[tid + stride];
    }
    barrier();
}

// Tree argmax of (s_best_value, s_best_index): the larger value wins, the lower index on a tie.
void reduce_argmax(uint tid, uint lanes, uint used) {
    const uint lane = tid % lanes;
    for (uint level = 0u; level < LEVELS; ++level) {
        const uint stride = 1u << (LEVELS - 1u - level);
        barrier();
        if (stride < lanes && lane < stride && tid < used) {
            const uint other = s_best_index[tid + stride];
            const int other_value = s_best_value[tid + stride];
            const uint mine = s_best_index[tid];
            if (other != NONE && (mine == NONE || other_value > s_best_value[tid] ||
                                  (other_value == s_best_value[tid] && other < mine))) {
                s_best_index[tid] = other;
                s_best_value[tid] = other_value;
            }
        }
    }
    barrier();
}

// ---- Decoding and static checks (thread 0), mirroring program.cpp -----------------------------

// The first failing check of a chain keeps its code (Checker in program.cpp).
uint check(uint fault, bool ok, uint code) {
    return fault != FAULT_NONE || ok ? fault : code;
}

uint dtype_bit(uint dtype) {
    return 1u << dtype;
}

uint check_dtype(uint fault, Tensor t, uint allowed) {
    return check(fault, (allowed & dtype_bit(t.dtype)) != 0u, FAULT_BAD_DTYPE);
}

// Output o must not overlap input i, unless in place is allowed and they are the same region.
uint check_disjoint(uint fault, Tensor o, Tensor i, bool in_place_ok) {
    return check(fault, !overlaps(o, i) || (in_place_ok && same_region(o, i)), FAULT_OVERLAP);
}

uint check_dot_rgb(uint ins) {
    for (uint i = 0u; i < 3u; ++i)
        if (channel(ins, i + 1u) >= push.height) return FAULT_OUT_OF_BOUNDS;
    return channel(ins, 3u) == 0u ? FAULT_PROGRAM_ROW : FAULT_NONE;
}

Tensor declared(uint ext0, uint ext1, uint dtype) {
    return Tensor(ext0 & 0xFFFFu, ext0 >> 16, ext1 & 0xFFFFu, ext1 >> 16, dtype);
}

uint check_declaration(Tensor t) {
    if (dtype_size(t.dtype) == 0u) return FAULT_BAD_DTYPE;
    if (t.rows == 0u || t.cols == 0u) return FAULT_SHAPE_MISMATCH;
    if (t.y == 0u) return FAULT_PROGRAM_ROW;
    if (t.x + pixel_width(t) > push.width) return FAULT_OUT_OF_BOUNDS;
    if (t.y + t.rows > push.height) return FAULT_OUT_OF_BOUNDS;
    return FAULT_NONE;
}

// The operand checks of a tensor instruction, in protocol order (after UNDEFINED_TENSOR): the
// table's dtypes, the instruction's own checks, the table's overlaps (Checker in program.cpp).
uint check_operands(uint opcode, uint ext0, uint ext1, Tensor t0, Tensor t1, Tensor t2, Tensor t3) {
    Tensor t[4] = Tensor[4](t0, t1, t2, t3);
    const uint arity = operand_count(opcode);
    uint f = FAULT_NONE;
    for (uint i = 0u; i < arity; ++i) {
        const uint allowed = accepted_dtypes(opcode, i);
        if (allowed != 0u) f = check_dtype(f, t[i], allowed);
    }
    const uint same = same_dtype_operands(opcode);
    const uint first = findLSB(same);
    for (uint i = 0u; i < arity; ++i)
        if (same != 0u && i > uint(first) && ((same >> i) & 1u) != 0u)
            f = check(f, t[i].dtype == t[first].dtype, FAULT_BAD_DTYPE);
    switch (opcode) {
    case OP_DOT:
        f = check(f, t1.rows == t2.rows && t1.cols == t2.cols, FAULT_SHAPE_MISMATCH);
        f = check(f, t0.rows == 1u && t0.cols == 1u, FAULT_SHAPE_MISMATCH);
        break;
    case OP_MATMUL:
        f = check(f, t1.cols == t2.cols, FAULT_SHAPE_MISMATCH);
        f = check(f, t0.rows == t1.rows && t0.cols == t2.rows, FAULT_SHAPE_MISMATCH);
        break;
    case OP_ADD_BIAS:
        f = check(f, t1.rows == 1u && t1.cols == t0.cols, FAULT_SHAPE_MISMATCH);
        break;
    case OP_REQUANT:
        f = check(f, channel(ext1, 0u) <= MAX_REQUANT_SHIFT, FAULT_BAD_OPERAND);
        break;
    case OP_ARGMAX:
        f = check(f, t0.rows == t1.rows && t0.cols == 1u, FAULT_SHAPE_MISMATCH);
        f = check(f, t0.dtype != DTYPE_U16 || t1.cols <= 65536u, FAULT_SHAPE_MISMATCH);
        break;
    case OP_GATHER_MEAN:
        f = check(f, t0.rows == 1u && t0.cols == t1.cols, FAULT_SHAPE_MISMATCH);
        // rows * cols <= 65536 without the 32-bit product overflowing
        f = check(f, t2.rows <= 65536u / t2.cols, FAULT_SHAPE_MISMATCH);
        break;
    case OP_EMBED:
        // cols < 2^16 each, so the product fits 32 bits
        f = check(f, t0.rows == t2.rows && t0.cols == t2.cols * t1.cols, FAULT_SHAPE_MISMATCH);
        break;
    case OP_LUT:
        f = check(f, t0.rows == t1.rows && t0.cols == t1.cols, FAULT_SHAPE_MISMATCH);
        f = check(f, t2.rows == 1u && t2.cols == 256u, FAULT_SHAPE_MISMATCH);
        break;
    case OP_RMSNORM:
        f = check(f, channel(ext0, 0u) <= MAX_REQUANT_SHIFT, FAULT_BAD_OPERAND);
        f = check(f, t0.rows == t1.rows && t0.cols == t1.cols, FAULT_SHAPE_MISMATCH);
        f = check(f, t2.rows == 1u && t2.cols == t1.cols, FAULT_SHAPE_MISMATCH);
        break;
    case OP_KVSTORE:
        f = check(f, t2.rows == t1.rows && t2.cols == 2u, FAULT_SHAPE_MISMATCH);
        f = check(f, t0.cols % t1.cols == 0u, FAULT_SHAPE_MISMATCH);
        f = check(f, (dtype_size(t1.dtype) * t1.cols) % 4u == 0u, FAULT_SHAPE_MISMATCH);
        break;
    case OP_ATTEND: {
        const uint heads = channel(ext0, 1u);
        f = check(f, heads != 0u, FAULT_BAD_OPERAND);
        f = check(f, channel(ext0, 2u) <= MAX_REQUANT_SHIFT, FAULT_BAD_OPERAND);
        f = check(f, t0.rows == t1.rows && t0.cols == t1.cols, FAULT_SHAPE_MISMATCH);
        f = check(f, t3.rows == t1.rows && t3.cols == 2u, FAULT_SHAPE_MISMATCH);
        // cols < 2^17, so 2 * q.cols fits
        f = check(f, t2.cols % (2u * t1.cols) == 0u, FAULT_SHAPE_MISMATCH);
        f = check(f, t2.rows <= MAX_ATTEND_POSITIONS, FAULT_SHAPE_MISMATCH);
        f = check(f, heads == 0u || t1.cols % heads == 0u, FAULT_SHAPE_MISMATCH);
        f = check(f, heads == 0u || t1.cols / heads <= MAX_HEAD_SIZE, FAULT_SHAPE_MISMATCH);
        break;
    }
    }
    if (shape_rule(opcode) == SHAPE_SAME)
        for (uint i = 1u; i < arity; ++i)
            f = check(f, t[i].rows == t0.rows && t[i].cols == t0.cols, FAULT_SHAPE_MISMATCH);
    const uint writes = written_operands(opcode), in_place = in_place_operands(opcode);
    for (uint o = 0u; o < arity; ++o)
        if (((writes >> o) & 1u) != 0u)
            for (uint i = 0u; i < arity; ++i)
                if (i != o) f = check_disjoint(f, t[o], t[i], ((in_place >> i) & 1u) != 0u);
    return f;
}

// Decodes and checks the instruction at s_pc (decode_instruction + plan_program): leaves it in
// s_ins/s_operands with s_state RUN, or ends the run.
uint decode_and_check() {
    const uint pc = s_pc;
    if (pc >= push.width) {
        s_state = STATE_ENDED;
        return FAULT_NONE;
    }
    const uint ins = pixels[pc];
    const uint opcode = channel(ins, 0u);
    const uint length = instruction_length(opcode);
    if (length == 0u) return FAULT_BAD_OPCODE;
    if (pc + length > push.width) return FAULT_TRUNCATED;
    const uint ext0 = length > 1u ? pixels[pc + 1u] : 0u;
    const uint ext1 = length > 2u ? pixels[pc + 2u] : 0u;
    s_ins[0] = ins;
    s_ins[1] = ext0;
    s_ins[2] = ext1;

    // Reserved channels: the argument channels an instruction does not use must be 0.
    const uint used = used_args(opcode);
    for (uint i = 0u; i < 3u; ++i)
        if (i >= used && channel(ins, i + 1u) != 0u) return FAULT_BAD_OPERAND;
    if (opcode == OP_REQUANT && (ext1 >> 16) != 0u) return FAULT_BAD_OPERAND;
    if (opcode == OP_RMSNORM && (ext0 >> 8) != 0u) return FAULT_BAD_OPERAND;
    if (opcode == OP_ATTEND && (ext0 >> 24) != 0u) return FAULT_BAD_OPERAND;

    if (opcode == OP_HALT) {
        s_state = STATE_HALTED;
        return FAULT_NONE;
    }
    s_first_a = NONE;
    s_first_b = NONE;
    if (opcode == OP_DOT_RGB) return check_dot_rgb(ins);
    if (opcode == OP_TENSOR) {
        const Tensor t = declared(ext0, ext1, channel(ins, 2u));
        const uint fault = check_declaration(t);
        if (fault == FAULT_NONE) {
            const uint id = channel(ins, 1u);
            table_x[id] = t.x;
            table_y[id] = t.y;
            table_rows[id] = t.rows;
            table_cols[id] = t.cols;
            table_dtype[id] = t.dtype;
        }
        return fault;
    }
    Tensor t[4];
    for (uint i = 0u; i < 4u; ++i) {
        const uint id = i < 3u ? channel(ins, i + 1u) : channel(ext0, 0u); // operand_id
        if (i >= operand_count(opcode)) {
            t[i] = Tensor(0u, 0u, 0u, 0u, 0u);
            s_operands[i] = t[i];
            continue;
        }
        t[i] = Tensor(table_x[id], table_y[id], table_rows[id], table_cols[id], table_dtype[id]);
        if (t[i].dtype == 0u) return FAULT_UNDEFINED_TENSOR;
        s_operands[i] = t[i];
    }
    return check_operands(opcode, ext0, ext1, t[0], t[1], t[2], t[3]);
}

// ---- Execution: every thread, one function per opcode (reference_interpreter.cpp) ------------

void dot_rgb(uint tid, uint row_a, uint row_b, uint row_out) {
    const uint w = push.width;
    // n: the first x where both rows hold R = 0.
    for (uint x = tid; x < w; x += THREADS)
        if (((pixels[row_a * w + x] | pixels[row_b * w + x]) & 255u) == 0u) atomicMin(s_first_a, x);
    barrier();
    const uint n = min(s_first_a, w);
    uint sum = 0u;
    for (uint x = tid; x < n; x += THREADS)
        sum += (pixels[row_a * w + x] & 255u) * (pixels[row_b * w + x] & 255u);
    s_sum[tid] = sum;
    const uint lanes = lanes_for(1u);
    reduce_sum(tid, lanes, lanes);
    // The sum is complete before the write, so row_out may be row_a or row_b.
    if (tid == 0u) pixels[row_out * w] = s_sum[0] & 0xFFFFu;
}

void dot_tensors(uint tid, Tensor o, Tensor a, Tensor b) {
    const uint words = pixel_width(a);
    const bool is_signed = a.dtype == DTYPE_I8;
    uint sum = 0u;
    for (uint i = tid; i < a.rows * words; i += THREADS) { // one word of a and b per thread
        const uint r = i / words, px = i % words;
        sum += dot4(pixels[row_word(a, r) + px], pixels[row_word(b, r) + px],
                    min(4u, a.cols - 4u * px), is_signed);
    }
    s_sum[tid] = sum;
    const uint lanes = lanes_for(1u);
    reduce_sum(tid, lanes, lanes);
    if (tid == 0u) pixels[row_word(o, 0u)] = s_sum[0];
}

// C = A * B^T: one output element per thread.
void matmul(uint tid, Tensor c, Tensor a, Tensor b) {
    const bool is_signed = a.dtype == DTYPE_I8;
    for (uint e = tid; e < c.rows * c.cols; e += THREADS) {
        const uint m = e / c.cols, n = e % c.cols;
        pixels[row_word(c, m) + n] = dot_row(row_word(a, m), row_word(b, n), a.cols, is_signed);
    }
}

void add_bias(uint tid, Tensor acc, Tensor bias) {
    for (uint e = tid; e < acc.rows * acc.cols; e += THREADS) {
        const uint r = e / acc.cols, c = e % acc.cols;
        const uint index = row_word(acc, r) + c;
        pixels[index] = pixels[index] + uint(load_element(bias, 0u, c));
    }
}

// Elementwise outputs are written a whole word per thread, so byte-sized elements never race and
// padding bytes that are not elements keep their values.
void requant(uint tid, Tensor dst, Tensor src, uint ext0, uint ext1) {
    const int multiplier = int(ext0);
    const uint shift = channel(ext1, 0u);
    const int zero_point = bitfieldExtract(int(ext1), 8, 8);
    const uint words = pixel_width(dst), per_word = 4u / dtype_size(dst.dtype);
    for (uint i = tid; i < dst.rows * words; i += THREADS) {
        const uint r = i / words, px = i % words, index = row_word(dst, r) + px;
        uint word = pixels[index];
        for (uint j = 0u; j < 4u; ++j)
            if (j < per_word && px * per_word + j < dst.cols) {
                const int v = load_element(src, r, px * per_word + j);
                word = insert_element(word, dst.dtype, j,
                                      requant_value(v, multiplier, shift, zero_point, dst.dtype));
            }
        pixels[index] = word;
    }
}

void relu(uint tid, Tensor dst, Tensor src) {
    const uint words = pixel_width(dst), per_word = 4u / dtype_size(dst.dtype);
    for (uint i = tid; i < dst.rows * words; i += THREADS) {
        const uint r = i / words, px = i % words, index = row_word(dst, r) + px;
        uint word = pixels[index];
        for (uint j = 0u; j < 4u; ++j)
            if (j < per_word && px * per_word + j < dst.cols)
                word = insert_element(word, dst.dtype, j,
                                      max(load_element(src, r, px * per_word + j), 0));
        pixels[index] = word;
    }
}

// One row per group of lanes; within a lane the strict > keeps the lowest index of equal values.
void argmax(uint tid, Tensor dst, Tensor src) {
    const uint lanes = lanes_for(src.rows), per_pass = THREADS / lanes, lane = tid % lanes;
    for (uint first = 0u; first < src.rows; first += per_pass) {
        const uint r = first + tid / lanes;
        const bool busy = tid < per_pass * lanes && r < src.rows;
        uint best = NONE;
        int best_value = 0;
        if (busy)
            for (uint c0 = lane; c0 < src.cols; c0 += 4u * lanes)
                for (uint j = 0u; j < 4u; ++j) {
                    const uint c = c0 + j * lanes; // ascending within the lane
                    if (c < src.cols) {
                        const int v = load_element(src, r, c);
                        if (best == NONE || v > best_value) {
                            best = c;
                            best_value = v;
                        }
                    }
                }
        s_best_index[tid] = best;
        s_best_value[tid] = best_value;
        reduce_argmax(tid, lanes, per_pass * lanes);
        if (busy && lane == 0u) store_element(dst, r, 0u, int(s_best_index[tid]));
    }
}

// check_tokens: T is the index of the first id 0 (or every element); a fault needs an id out of
// range before it. Returns the fault, uniform across the workgroup.
uint gather_mean(uint tid, Tensor dst, Tensor table, Tensor tokens) {
    const uint total = tokens.rows * tokens.cols;
    for (uint t = tid; t < total; t += THREADS) {
        const int id = load_element(tokens, t / tokens.cols, t % tokens.cols);
        if (id == 0)
            atomicMin(s_first_a, t);
        else if (id < 0 || uint(id) >= table.rows)
            atomicMin(s_first_b, t);
    }
    barrier();
    if (s_first_b < s_first_a) return FAULT_TOKEN_RANGE;
    const uint count = min(s_first_a, total);

    // out[0][d] = floor((2 * sum[d] + T) / (2 * T)): one column per group of lanes.
    const uint lanes = lanes_for(table.cols), per_pass = THREADS / lanes, lane = tid % lanes;
    for (uint first = 0u; first < table.cols; first += per_pass) {
        const uint d = first + tid / lanes;
        const bool busy = tid < per_pass * lanes && d < table.cols;
        uint sum = 0u;
        if (busy)
            for (uint t0 = lane; t0 < count; t0 += 4u * lanes)
                for (uint j = 0u; j < 4u; ++j) {
                    const uint t = t0 + j * lanes;
                    if (t < count) {
                        const int id = load_element(tokens, t / tokens.cols, t % tokens.cols);
                        sum += uint(load_element(table, uint(id), d));
                    }
                }
        s_sum[tid] = sum;
        reduce_sum(tid, lanes, per_pass * lanes);
        if (busy && lane == 0u) {
            const int n = int(count); // sums fit 32 bits: at most 65536 tokens of 8-bit values
            const int mean = n == 0 ? 0 : floor_div(2 * int(s_sum[tid]) + n, 2 * n);
            pixels[row_word(dst, 0u) + d] = uint(mean);
        }
    }
    return FAULT_NONE;
}

// out[b][j * E + d] = table[tokens[b][j]][d] after every id is checked. One output word per
// thread and pass; the bytes of a partial last word that are not elements keep their values.
uint embed(uint tid, Tensor dst, Tensor table, Tensor tokens) {
    const uint total = tokens.rows * tokens.cols;
    for (uint t = tid; t < total; t += THREADS) {
        const int id = load_element(tokens, t / tokens.cols, t % tokens.cols);
        if (id < 0 || uint(id) >= table.rows) atomicMin(s_first_b, t);
    }
    barrier();
    if (s_first_b != NONE) return FAULT_TOKEN_RANGE;
    const uint words = pixel_width(dst), n = per_word(dst);
    for (uint e = tid; e < dst.rows * words; e += THREADS) {
        const uint r = e / words, p = e % words, index = row_word(dst, r) + p;
        uint word = pixels[index];
        for (uint j = 0u; j < 4u; ++j) {
            const uint c = n * p + j;
            if (j < n && c < dst.cols) {
                const uint id = uint(load_element(tokens, r, c / table.cols));
                word = insert_element(word, dst.dtype, j, load_element(table, id, c % table.cols));
            }
        }
        pixels[index] = word;
    }
    return FAULT_NONE;
}

// acc = clamp(acc + in, i32): one element per thread (in may be acc itself).
void add(uint tid, Tensor acc, Tensor src) {
    for (uint e = tid; e < acc.rows * acc.cols; e += THREADS) {
        const uint r = e / acc.cols, c = e % acc.cols;
        const int a = load_element(acc, r, c), b = load_element(src, r, c);
        const int sum = a + b; // wraps; saturate where the signs say it overflowed
        const bool overflow = (a >= 0) == (b >= 0) && (sum >= 0) != (a >= 0);
        pixels[row_word(acc, r) + c] = uint(overflow ? (a >= 0 ? INT_MAX : INT_MIN) : sum);
    }
}

// out = table[0][in + 128] (i8) or table[0][in] (u8): one output word per thread.
void lut(uint tid, Tensor dst, Tensor src, Tensor table) {
    const uint words = pixel_width(dst), offset = src.dtype == DTYPE_I8 ? 128u : 0u;
    for (uint i = tid; i < dst.rows * words; i += THREADS) {
        const uint r = i / words, px = i % words, index = row_word(dst, r) + px;
        uint word = pixels[index];
        for (uint j = 0u; j < 4u; ++j)
            if (4u * px + j < dst.cols)
                word = insert_element(
                    word, dst.dtype, j,
                    load_element(table, 0u, uint(load_element(src, r, 4u * px + j) + int(offset))));
        pixels[index] = word;
    }
}

// One row per thread: the sum of squares in 64 bits, its square root, then every output word.
void rmsnorm(uint tid, Tensor dst, Tensor src, Tensor gain, uint shift) {
    const int limit = int(RMSNORM_LIMIT);
    for (uint r = tid; r < src.rows; r += THREADS) {
        uint hi = 0u, lo = 0u;
        for (uint c = 0u; c < src.cols; ++c) {
            const uint x = uint(abs(clamp(load_element(src, r, c), -limit, limit)));
            uint shi, slo, carry;
            umulExtended(x, x, shi, slo);
            lo = uaddCarry(lo, slo, carry);
            hi += shi + carry;
        }
        const uint root = max(isqrt64(hi, lo), 1u);
        const uint words = pixel_width(dst);
        for (uint px = 0u; px < words; ++px) {
            const uint index = row_word(dst, r) + px;
            uint word = pixels[index];
            for (uint j = 0u; j < 4u; ++j) {
                const uint c = 4u * px + j;
                if (c < dst.cols) {
                    const int x = clamp(load_element(src, r, c), -limit, limit);
                    word = insert_element(word, DTYPE_I8, j,
                                          rmsnorm_value(x, load_element(gain, 0u, c), shift, root));
                }
            }
            pixels[index] = word;
        }
    }
}

// check_where: the first row of `where` that fails, or NONE. Every thread returns the same.
uint first_bad_where(uint tid, Tensor where, uint slots, uint positions, bool ordered) {
    for (uint r = tid; r < where.rows; r += THREADS)
        if (!where_row_ok(where, push.width, r, slots, positions, ordered)) atomicMin(s_first_b, r);
    barrier();
    return s_first_b;
}

// cache[p][b * C + j] = rows[r][j]: one word of rows per thread; the rows' (slot, position) pairs
// are distinct and each block starts on a pixel, so no two threads write one word.
uint kvstore(uint tid, Tensor cache, Tensor src, Tensor where) {
    const uint block = src.cols;
    if (first_bad_where(tid, where, cache.cols / block, cache.rows, true) != NONE)
        return FAULT_TOKEN_RANGE;
    const uint words = pixel_width(src);
    for (uint i = tid; i < src.rows * words; i += THREADS) {
        const uint r = i / words, px = i % words;
        const uint b = uint(load_element(where, r, 0u)), p = uint(load_element(where, r, 1u));
        pixels[row_word(cache, p) + b * block * dtype_size(cache.dtype) / 4u + px] =
            pixels[row_word(src, r) + px];
    }
    return FAULT_NONE;
}

// One output word per thread (attend_word in pxvm_transformer.glsl).
uint attend(uint tid, Tensor dst, Tensor q, Tensor cache, Tensor where, uint ext0, uint ext1) {
    if (first_bad_where(tid, where, cache.cols / (2u * q.cols), cache.rows, false) != NONE)
        return FAULT_TOKEN_RANGE;
    const uint words = pixel_width(dst), heads = channel(ext0, 1u), shift = channel(ext0, 2u);
    for (uint i = tid; i < dst.rows * words; i += THREADS) {
        const uint r = i / words, px = i % words, index = row_word(dst, r) + px;
        const uint b = uint(load_element(where, r, 0u)), p = uint(load_element(where, r, 1u));
        pixels[index] =
            attend_word(q, cache, push.width, r, b, p, px, heads, ext1, shift, pixels[index]);
    }
    return FAULT_NONE;
}

// Executes the decoded instruction on every thread; returns its dynamic fault (TOKEN_RANGE), the
// same value in every thread.
uint execute(uint tid) {
    const uint ins = s_ins[0];
    const Tensor t0 = s_operands[0], t1 = s_operands[1], t2 = s_operands[2];
    switch (channel(ins, 0u)) {
    case OP_DOT_RGB:
        dot_rgb(tid, channel(ins, 1u), channel(ins, 2u), channel(ins, 3u));
        break;
    case OP_DOT:
        dot_tensors(tid, t0, t1, t2);
        break;
    case OP_MATMUL:
        matmul(tid, t0, t1, t2);
        break;
    case OP_ADD_BIAS:
        add_bias(tid, t0, t1);
        break;
    case OP_REQUANT:
        requant(tid, t0, t1, s_ins[1], s_ins[2]);
        break;
    case OP_RELU:
        relu(tid, t0, t1);
        break;
    case OP_ARGMAX:
        argmax(tid, t0, t1);
        break;
    case OP_GATHER_MEAN:
        return gather_mean(tid, t0, t1, t2);
    case OP_EMBED:
        return embed(tid, t0, t1, t2);
    case OP_ADD:
        add(tid, t0, t1);
        break;
    case OP_LUT:
        lut(tid, t0, t1, t2);
        break;
    case OP_RMSNORM:
        rmsnorm(tid, t0, t1, t2, channel(s_ins[1], 0u));
        break;
    case OP_KVSTORE:
        return kvstore(tid, t0, t1, t2);
    case OP_ATTEND:
        return attend(tid, t0, t1, t2, s_operands[3], s_ins[1], s_ins[2]);
    default: // TENSOR: declarations only change the table
        break;
    }
    return FAULT_NONE;
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    for (uint id = tid; id < MAX_TENSORS; id += THREADS)
        table_dtype[id] = 0u;
    if (tid == 0u) {
        s_pc = 0u;
        s_executed = 0u;
        s_fault_code = FAULT_NONE;
        s_fault_pc = 0u;
        s_incomplete = 0u;
    }
    sync_all();

    // Check, then execute: thread 0 decides, everyone reads the decision after a barrier, and
    // thread 0 changes the shared state again only after the next barrier.
    for (;;) {
        if (tid == 0u) {
            s_state = STATE_RUN;
            const uint fault = decode_and_check();
            if (fault != FAULT_NONE) {
                s_state = STATE_FAULTED;
                s_fault_code = fault;
                s_fault_pc = s_pc;
            }
        }
        sync_all();
        if (s_state != STATE_RUN) break;
        const uint fault = execute(tid);
        // An instruction whose loops lavapipe cut short stops the run at its pc, not counted.
        if (loop_budget_exhausted(push.height)) atomicOr(s_incomplete, 1u);
        sync_all();
        if (s_incomplete != 0u) break;
        if (fault != FAULT_NONE) {
            if (tid == 0u) {
                s_state = STATE_FAULTED;
                s_fault_code = fault;
                s_fault_pc = s_pc;
            }
            break;
        }
        if (tid == 0u) {
            s_pc += instruction_length(channel(s_ins[0], 0u));
            s_executed += 1u;
        }
    }
    if (loop_budget_exhausted(push.height)) atomicOr(s_incomplete, 1u); // the decode loop's
    sync_all();

    if (tid == 0u) {
        if (s_incomplete != 0u) { // the image is unreliable: the host must not use it
            status.fault_code = STATUS_INCOMPLETE;
            status.fault_pc = s_pc;
            status.executed = s_executed;
            status.halted = 0u;
            return;
        }
        status.fault_code = s_fault_code;
        status.fault_pc = s_fault_pc;
        status.executed = s_executed;
        status.halted = s_state == STATE_HALTED ? 1u : 0u;
        if (s_fault_code != FAULT_NONE) {
            const uint pc = s_fault_pc;
            pixels[push.width - 1u] =
                s_fault_code | (pc & 255u) << 8 | (pc >> 8) << 16 | FAULT_PIXEL_ALPHA << 24;
        }
    }
}
