// Tests of the instruction decoder and static checker (runtime/src/program.cpp) and the protocol
// tables: instruction lengths, reserved channels, TRUNCATED at the end of row 0, plan_program's
// steps / halted / fault, tensor geometry and element loads and stores.
#include "program_builder.hpp"

#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using px::Image;
using px::Pixel;
using pxtest::ProgramWriter;

constexpr std::uint32_t U8 = px::DTYPE_U8, I8 = px::DTYPE_I8, U16 = px::DTYPE_U16,
                        I32 = px::DTYPE_I32;

struct OpInfo {
    std::uint32_t opcode;
    const char* name;
    std::uint32_t length;
    std::uint32_t used_args; // argument channels the instruction uses (the rest are reserved)
};

// docs/PROTOCOL.md section 4, written out independently of runtime/src/protocol.cpp.
const std::vector<OpInfo> ops = {
    {0, "halt", 1, 3},    {1, "dot_rgb", 1, 3},      {84, "tensor", 3, 2},  {68, "dot", 1, 3},
    {77, "matmul", 1, 3}, {66, "add_bias", 1, 2},    {81, "requant", 3, 2}, {82, "relu", 1, 2},
    {65, "argmax", 1, 2}, {71, "gather_mean", 1, 3},
};

px::Decoded decode_at(const Image& image, std::uint32_t pc) {
    return px::decode_instruction(image, pc);
}

} // namespace

TEST_CASE("protocol tables match the specification", "[decoder][protocol]") {
    for (const OpInfo& op : ops) {
        INFO(op.name);
        REQUIRE(px::opcode_name(op.opcode) == op.name);
        REQUIRE(px::opcode_from_name(op.name) == op.opcode);
        REQUIRE(px::instruction_length(op.opcode) == op.length);
    }
    REQUIRE(px::opcode_name(2).empty());
    REQUIRE(px::instruction_length(2) == 0);
    REQUIRE_FALSE(px::opcode_from_name("nop"));
    REQUIRE(px::OP_MATMUL == 'M');
    REQUIRE(px::OP_TENSOR == 'T');

    const std::vector<
        std::tuple<std::uint32_t, const char*, std::uint32_t, std::int64_t, std::int64_t>>
        dtypes = {{1, "u8", 1, 0, 255},
                  {2, "i8", 1, -128, 127},
                  {3, "u16", 2, 0, 65535},
                  {4, "i32", 4, INT32_MIN, INT32_MAX}};
    for (const auto& [code, name, size, lo, hi] : dtypes) {
        REQUIRE(px::dtype_name(code) == name);
        REQUIRE(px::dtype_from_name(name) == code);
        REQUIRE(px::dtype_size(code) == size);
        REQUIRE(px::dtype_min(code) == lo);
        REQUIRE(px::dtype_max(code) == hi);
    }
    REQUIRE(px::dtype_size(0) == 0);
    REQUIRE(px::dtype_size(5) == 0);
    REQUIRE(px::dtype_name(5).empty());

    const std::vector<const char*> faults = {"NONE",          "BAD_OPCODE",  "TRUNCATED",
                                             "BAD_OPERAND",   "BAD_DTYPE",   "UNDEFINED_TENSOR",
                                             "OUT_OF_BOUNDS", "PROGRAM_ROW", "SHAPE_MISMATCH",
                                             "OVERLAP",       "TOKEN_RANGE"};
    for (std::uint32_t code = 0; code < faults.size(); ++code)
        REQUIRE(px::fault_name(code) == faults[code]);
    REQUIRE(px::fault_name(11) == "UNKNOWN");
}

TEST_CASE("decode_instruction: opcode, arguments, length and extension pixels", "[decoder]") {
    for (const OpInfo& op : ops) {
        INFO(op.name);
        Image image(8, 2);
        // Arguments the opcode uses get values; reserved ones stay 0.
        const std::uint8_t args[3] = {11, 22, 33};
        Pixel p{std::uint8_t(op.opcode), 0, 0, 0};
        if (op.used_args > 0) p.g = args[0];
        if (op.used_args > 1) p.b = args[1];
        if (op.used_args > 2) p.a = args[2];
        image.set_pixel(2, 0, p);
        image.set_pixel(3, 0, Pixel{1, 2, 3, 4});
        image.set_pixel(4, 0, Pixel{5, 6, 0, 0});
        const px::Decoded d = decode_at(image, 2);
        REQUIRE_FALSE(d.fault);
        REQUIRE(d.instruction.pc == 2);
        REQUIRE(d.instruction.opcode == op.opcode);
        REQUIRE(d.instruction.length == op.length);
        REQUIRE(d.instruction.args == std::array<std::uint8_t, 3>{p.g, p.b, p.a});
        if (op.length == 3) {
            REQUIRE(d.instruction.extension[0] == Pixel{1, 2, 3, 4});
            REQUIRE(d.instruction.extension[1] == Pixel{5, 6, 0, 0});
        }
    }
}

TEST_CASE("decode_instruction: reserved channels", "[decoder]") {
    for (const OpInfo& op : ops) {
        INFO(op.name);
        for (std::uint32_t channel = op.used_args; channel < 3; ++channel) {
            for (std::uint8_t value : {1, 128, 255}) {
                Image image(4, 2);
                Pixel p{std::uint8_t(op.opcode), 1, 1, 0};
                (channel == 1 ? p.b : p.a) = value;
                image.set_pixel(0, 0, p);
                const px::Decoded d = decode_at(image, 0);
                REQUIRE(d.fault.code == px::FAULT_BAD_OPERAND);
                REQUIRE(d.fault.pc == 0);
                REQUIRE(d.fault.reason.find("reserved") != std::string::npos);
            }
        }
    }
    SECTION("halt ignores its arguments") {
        Image image(1, 1);
        image.set_pixel(0, 0, Pixel{0, 255, 255, 255});
        REQUIRE_FALSE(decode_at(image, 0).fault);
    }
    SECTION("requant: channels B and A of the second extension pixel") {
        for (const Pixel second : {Pixel{0, 0, 1, 0}, Pixel{0, 0, 0, 1}, Pixel{62, 255, 9, 9}}) {
            Image image(3, 2);
            image.set_pixel(0, 0, Pixel{px::OP_REQUANT, 1, 2, 0});
            image.set_pixel(2, 0, second);
            REQUIRE(decode_at(image, 0).fault.code == px::FAULT_BAD_OPERAND);
        }
        Image image(3, 2);
        image.set_pixel(0, 0, Pixel{px::OP_REQUANT, 1, 2, 0});
        image.set_pixel(2, 0, Pixel{255, 255, 0, 0}); // a shift > 62 is not a decoding fault
        REQUIRE_FALSE(decode_at(image, 0).fault);
    }
    SECTION("tensor: every extension channel is used") {
        Image image(3, 2);
        image.set_pixel(0, 0, Pixel{px::OP_TENSOR, 1, 9, 0});
        image.set_pixel(1, 0, Pixel{255, 255, 255, 255});
        image.set_pixel(2, 0, Pixel{255, 255, 255, 255});
        REQUIRE_FALSE(decode_at(image, 0).fault);
    }
}

TEST_CASE("decode_instruction: TRUNCATED at the end of row 0", "[decoder]") {
    for (std::uint32_t opcode : {px::OP_TENSOR, px::OP_REQUANT}) {
        for (std::uint32_t width = 1; width <= 6; ++width) {
            Image image(width, 1);
            for (std::uint32_t pc = 0; pc < width; ++pc) {
                image.set_pixel(pc, 0, Pixel{std::uint8_t(opcode), 0, 1, 0});
                const px::Decoded d = decode_at(image, pc);
                INFO("opcode " << opcode << " width " << width << " pc " << pc);
                if (pc + 3 <= width) {
                    REQUIRE_FALSE(d.fault);
                } else {
                    REQUIRE(d.fault.code == px::FAULT_TRUNCATED);
                    REQUIRE(d.fault.pc == pc);
                }
            }
        }
    }
    SECTION("TRUNCATED comes before reserved channels, BAD_OPCODE before both") {
        Image image(2, 1);
        image.set_pixel(0, 0, Pixel{px::OP_TENSOR, 1, 1, 7});
        REQUIRE(decode_at(image, 0).fault.code == px::FAULT_TRUNCATED);
        image.set_pixel(1, 0, Pixel{3, 0, 0, 0});
        REQUIRE(decode_at(image, 1).fault.code == px::FAULT_BAD_OPCODE);
    }
    SECTION("one-pixel instructions fit in the last pixel") {
        Image image(2, 1);
        image.set_pixel(1, 0, Pixel{px::OP_RELU, 1, 2, 0});
        REQUIRE_FALSE(decode_at(image, 1).fault);
    }
}

TEST_CASE("Instruction field decoding", "[decoder]") {
    px::Instruction t;
    t.args = {7, I32, 0};
    t.extension = {Pixel{0x34, 0x12, 0x02, 0x01}, Pixel{0xFF, 0xFF, 0x01, 0x80}};
    REQUIRE(t.declared() == px::Tensor{0x1234, 0x0102, 0xFFFF, 0x8001, I32});

    px::Instruction q;
    q.extension = {Pixel{0x78, 0x56, 0x34, 0x12}, Pixel{62, 0x80, 0, 0}};
    REQUIRE(q.multiplier() == 0x12345678);
    REQUIRE(q.shift() == 62);
    REQUIRE(q.zero_point() == -128);
    q.extension = {Pixel{0x00, 0x00, 0x00, 0x80}, Pixel{0, 0x7F, 0, 0}};
    REQUIRE(q.multiplier() == INT32_MIN);
    REQUIRE(q.zero_point() == 127);
    q.extension = {Pixel{0xFE, 0xFF, 0xFF, 0xFF}, Pixel{0, 0xFF, 0, 0}};
    REQUIRE(q.multiplier() == -2);
    REQUIRE(q.zero_point() == -1);
}

TEST_CASE("Tensor geometry", "[decoder]") {
    SECTION("pixel width rounds bytes up to whole pixels") {
        REQUIRE(px::Tensor{0, 1, 1, 1, U8}.pixel_width() == 1);
        REQUIRE(px::Tensor{0, 1, 1, 4, U8}.pixel_width() == 1);
        REQUIRE(px::Tensor{0, 1, 1, 5, I8}.pixel_width() == 2);
        REQUIRE(px::Tensor{0, 1, 1, 3, U16}.pixel_width() == 2);
        REQUIRE(px::Tensor{0, 1, 1, 3, I32}.pixel_width() == 3);
        REQUIRE(px::Tensor{0, 1, 1, 65535, I32}.pixel_width() == 65535);
        REQUIRE(px::Tensor{0, 1, 1, 65535, U8}.pixel_width() == 16384);
    }
    SECTION("overlap is by pixel rectangle") {
        const px::Tensor a{2, 2, 2, 5, U8}; // pixels x 2-3, rows 2-3
        REQUIRE(a.overlaps(a));
        REQUIRE(a.overlaps(px::Tensor{3, 3, 1, 1, I32}));
        REQUIRE(a.overlaps(px::Tensor{0, 1, 2, 9, U8}));        // x 0-2, rows 1-2
        REQUIRE_FALSE(a.overlaps(px::Tensor{4, 2, 2, 1, I32})); // right neighbour
        REQUIRE_FALSE(a.overlaps(px::Tensor{0, 2, 2, 8, U8}));  // left neighbour, x 0-1
        REQUIRE_FALSE(a.overlaps(px::Tensor{2, 4, 1, 8, U8}));  // below
        REQUIRE_FALSE(a.overlaps(px::Tensor{2, 1, 1, 8, U8}));  // above
        REQUIRE(px::Tensor{0, 1, 1, 1, U8}.overlaps(px::Tensor{0, 1, 1, 1, I32}));
    }
    SECTION("same region means same origin, shape and dtype") {
        const px::Tensor a{2, 2, 2, 5, U8};
        REQUIRE(a.same_region(px::Tensor{2, 2, 2, 5, U8}));
        REQUIRE_FALSE(a.same_region(px::Tensor{2, 2, 2, 5, I8}));
        REQUIRE_FALSE(a.same_region(px::Tensor{2, 2, 2, 6, U8}));
        REQUIRE_FALSE(a.same_region(px::Tensor{2, 2, 1, 5, U8}));
    }
    SECTION("byte offsets follow section 3") {
        const std::uint32_t w = 10;
        REQUIRE(px::Tensor{3, 2, 2, 9, U8}.byte_offset(w, 1, 5) == 4 * (3 * w + 3) + 5);
        REQUIRE(px::Tensor{3, 2, 2, 9, U16}.byte_offset(w, 0, 3) == 4 * (2 * w + 3) + 6);
        REQUIRE(px::Tensor{3, 2, 2, 9, I32}.byte_offset(w, 1, 2) == 4 * (3 * w + 5));
    }
}

TEST_CASE("load_element and store_element: little-endian, sign-extended", "[decoder]") {
    Image image(4, 3);
    const px::Tensor u8{0, 1, 1, 4, U8}, i8{1, 1, 1, 4, I8}, u16{2, 1, 1, 2, U16},
        i32{0, 2, 1, 3, I32};
    image.set_pixel(0, 1, Pixel{0, 1, 128, 255});
    image.set_pixel(1, 1, Pixel{0, 1, 128, 255});
    image.set_pixel(2, 1, Pixel{0x34, 0x12, 0xFF, 0xFF});
    image.set_pixel(0, 2, Pixel{0x78, 0x56, 0x34, 0x12});
    image.set_pixel(1, 2, Pixel{0x00, 0x00, 0x00, 0x80});
    image.set_pixel(2, 2, Pixel{0xFF, 0xFF, 0xFF, 0xFF});
    REQUIRE(px::load_element(image, u8, 0, 2) == 128);
    REQUIRE(px::load_element(image, u8, 0, 3) == 255);
    REQUIRE(px::load_element(image, i8, 0, 1) == 1);
    REQUIRE(px::load_element(image, i8, 0, 2) == -128);
    REQUIRE(px::load_element(image, i8, 0, 3) == -1);
    REQUIRE(px::load_element(image, u16, 0, 0) == 0x1234);
    REQUIRE(px::load_element(image, u16, 0, 1) == 65535);
    REQUIRE(px::load_element(image, i32, 0, 0) == 0x12345678);
    REQUIRE(px::load_element(image, i32, 0, 1) == INT32_MIN);
    REQUIRE(px::load_element(image, i32, 0, 2) == -1);

    px::store_element(image, i8, 0, 0, -2);
    REQUIRE(image.pixel(1, 1) == Pixel{0xFE, 1, 128, 255});
    px::store_element(image, u16, 0, 1, 0xABCD);
    REQUIRE(image.pixel(2, 1) == Pixel{0x34, 0x12, 0xCD, 0xAB});
    px::store_element(image, i32, 0, 2, -2);
    REQUIRE(image.pixel(2, 2) == Pixel{0xFE, 0xFF, 0xFF, 0xFF});
    px::store_element(image, i32, 0, 0, std::int64_t(INT32_MAX) + 1); // wraps
    REQUIRE(px::load_element(image, i32, 0, 0) == INT32_MIN);
}

TEST_CASE("plan_program: steps, halted and fault", "[decoder][plan]") {
    SECTION("halt after steps") {
        ProgramWriter b(16, 4);
        b.tensor(1, I32, 0, 1, 1, 2).relu(1, 1).dot_rgb(1, 2, 3).halt().op(200);
        const px::Plan plan = px::plan_program(b.image);
        REQUIRE(plan.halted);
        REQUIRE_FALSE(plan.fault);
        REQUIRE(plan.steps.size() == 3);
        REQUIRE(plan.steps[0].instruction.pc == 0);
        REQUIRE(plan.steps[0].instruction.opcode == px::OP_TENSOR);
        REQUIRE(plan.steps[1].instruction.pc == 3);
        REQUIRE(plan.steps[1].operands[0] == b.t(1));
        REQUIRE(plan.steps[1].operands[1] == b.t(1));
        REQUIRE(plan.steps[2].instruction.pc == 4);
        REQUIRE(plan.steps[2].instruction.args == std::array<std::uint8_t, 3>{1, 2, 3});
    }
    SECTION("halt at pc 0: no steps") {
        Image image(5, 1);
        image.set_pixel(1, 0, Pixel{99, 0, 0, 0});
        const px::Plan plan = px::plan_program(image);
        REQUIRE(plan.halted);
        REQUIRE(plan.steps.empty());
        REQUIRE_FALSE(plan.fault);
    }
    SECTION("the end of row 0 without halt") {
        ProgramWriter b(5, 2);
        b.dot_rgb(1, 1, 1).dot_rgb(1, 1, 1).tensor(0, U8, 0, 1, 1, 1);
        const px::Plan plan = px::plan_program(b.image);
        REQUIRE_FALSE(plan.halted);
        REQUIRE_FALSE(plan.fault);
        REQUIRE(plan.steps.size() == 3);
    }
    SECTION("a static fault ends the plan after the steps before it") {
        ProgramWriter b(16, 4);
        b.tensor(1, I32, 0, 1, 1, 2).relu(1, 1).relu(1, 2).halt();
        const px::Plan plan = px::plan_program(b.image);
        REQUIRE_FALSE(plan.halted);
        REQUIRE(plan.steps.size() == 2);
        REQUIRE(plan.fault.code == px::FAULT_UNDEFINED_TENSOR);
        REQUIRE(plan.fault.pc == 4);
        const std::string text = px::describe(plan.fault, b.image);
        REQUIRE(text.find("UNDEFINED_TENSOR (5) at pc 4 (relu)") != std::string::npos);
        REQUIRE(text.find("tensor 2") != std::string::npos);
    }
    SECTION("a truncated instruction at the end of row 0") {
        ProgramWriter b(5, 2);
        b.dot_rgb(1, 1, 1).dot_rgb(1, 1, 1).dot_rgb(1, 1, 1).op(px::OP_TENSOR, 1, U8);
        const px::Plan plan = px::plan_program(b.image);
        REQUIRE(plan.steps.size() == 3);
        REQUIRE(plan.fault.code == px::FAULT_TRUNCATED);
        REQUIRE(plan.fault.pc == 3);
    }
    SECTION("steps resolve each operand to the declaration in force at that point") {
        ProgramWriter b(32, 4);
        b.tensor(1, I32, 0, 1, 1, 1).relu(1, 1);
        const px::Tensor first = b.t(1);
        b.tensor(1, I8, 4, 2, 2, 7).relu(1, 1).halt();
        const px::Plan plan = px::plan_program(b.image);
        REQUIRE(plan.steps.size() == 4);
        REQUIRE(plan.steps[1].operands[0] == first);
        REQUIRE(plan.steps[3].operands[0] == px::Tensor{4, 2, 2, 7, I8});
    }
    SECTION("gather_mean's token ids are not a static check") {
        ProgramWriter b(16, 8);
        b.tensor(1, U8, 0, 1, 2, 1).tensor(2, U8, 0, 3, 1, 4).tensor(3, I32, 0, 4, 1, 1);
        b.gather_mean(3, 1, 2).halt();
        b.fill(2, {1, 1, 2, 0});
        const px::Plan plan = px::plan_program(b.image);
        REQUIRE_FALSE(plan.fault);
        REQUIRE(plan.steps.size() == 4);
        const px::TokenCount tokens = px::check_tokens(b.image, plan.steps[3]);
        REQUIRE(tokens.fault.code == px::FAULT_TOKEN_RANGE);
        REQUIRE(tokens.fault.pc == 9);
        REQUIRE(tokens.fault.reason.find("id 2") != std::string::npos);
        b.fill(2, {1, 1, 0, 9});
        const px::TokenCount ok = px::check_tokens(b.image, plan.steps[3]);
        REQUIRE_FALSE(ok.fault);
        REQUIRE(ok.count == 2);
    }
}

TEST_CASE("write_fault_pixel", "[decoder]") {
    Image image(3, 2);
    px::write_fault_pixel(image, px::Fault{px::FAULT_OVERLAP, 0x1234, "x"});
    REQUIRE(image.pixel(2, 0) == Pixel{9, 0x34, 0x12, 255});
    REQUIRE(image.pixel(1, 0) == Pixel{});
}
