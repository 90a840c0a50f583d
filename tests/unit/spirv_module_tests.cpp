// The SPIR-V reader (pxvm/spirv_module.hpp) on the embedded interpreter kernel, on a LocalSizeId
// module compiled at build time (tests/unit/kernels/local_size_id.comp), on small hand-written
// modules and on damaged ones.
#include "pxvm/embedded_kernels.hpp"
#include "pxvm/spirv_module.hpp"
#include "pxvm_layout.h"

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "local_size_id.spv.h"

namespace {

using Words = std::vector<std::uint32_t>;
using Size = std::array<std::uint32_t, 3>;

Words interpreter() {
    const px::EmbeddedKernel* kernel = px::find_kernel("interpreter");
    REQUIRE(kernel);
    return {kernel->spirv.begin(), kernel->spirv.end()};
}

// A module of the given instructions, each written {opcode, operands...}.
Words module(std::initializer_list<Words> instructions) {
    Words words = {0x07230203, 0x00010000, 0, 100, 0};
    for (const Words& in : instructions) {
        words.push_back(std::uint32_t(in.size()) << 16 | in[0]);
        words.insert(words.end(), in.begin() + 1, in.end());
    }
    return words;
}

// OpEntryPoint GLCompute %1 "main", and the 32-bit unsigned integer type %20.
const Words entry_point = {15, 5, 1, 0x6e69616d, 0};
const Words uint_type = {21, 20, 32, 0};

} // namespace

TEST_CASE("the SPIR-V reader reads the interpreter kernel's interface", "[spirv]") {
    auto m = px::read_spirv_module(interpreter());
    REQUIRE(m);
    CHECK(m->problems.empty());
    CHECK(m->compute_entry_points == 1);
    CHECK(m->capabilities.front() == 1); // Shader
    REQUIRE(m->bindings.size() == 2);
    for (const px::SpirvBinding& b : m->bindings) {
        CHECK(b.set == 0);
        CHECK(b.kind == px::DescriptorKind::storage_buffer);
        CHECK_FALSE(b.arrayed);
    }
    CHECK(m->bindings[0].binding == px::BINDING_IMAGE);
    CHECK(m->bindings[1].binding == px::BINDING_STATUS);
    CHECK(m->bindings[1].name == "status");
    CHECK(m->push_constant_size == sizeof(px::InterpreterPush));
    CHECK(m->push_constant_size == 8);
    CHECK(m->local_size == Size{px::INTERPRETER_LOCAL_SIZE, 1, 1});
    CHECK(px::INTERPRETER_LOCAL_SIZE == 256);
    CHECK_FALSE(m->local_size_specializable);
}

TEST_CASE("LocalSizeId is resolved through specialization constants' default values", "[spirv]") {
    auto m = px::read_spirv_module(local_size_id_spv);
    REQUIRE(m);
    CHECK(m->problems.empty());
    CHECK(m->local_size == Size{16, 4, 1});
    CHECK(m->local_size_specializable);
    REQUIRE(m->bindings.size() == 1);
    CHECK(m->bindings[0] == px::SpirvBinding{1, 3, px::DescriptorKind::storage_buffer, false, ""});
    CHECK(m->push_constant_size == 0);
}

TEST_CASE("the WorkgroupSize built-in wins over the execution mode when it resolves", "[spirv]") {
    const Words local_size_id = {331, 1, 38, 10, 11, 12}; // OpExecutionModeId %1 LocalSizeId
    const Words x = {43, 20, 10, 8}, y = {50, 20, 11, 2}, z = {43, 20, 12, 1}; // y: specializable
    const Words workgroup_size = {71, 30, 11, 25};    // OpDecorate %30 BuiltIn WorkgroupSize
    const Words composite = {44, 21, 30, 12, 12, 10}; // %30 = (%12, %12, %10)

    auto by_mode = px::read_spirv_module(module({entry_point, local_size_id, uint_type, x, y, z}));
    REQUIRE(by_mode);
    CHECK(by_mode->local_size == Size{8, 2, 1});
    CHECK(by_mode->local_size_specializable);

    auto by_builtin = px::read_spirv_module(
        module({entry_point, local_size_id, workgroup_size, uint_type, x, y, z, composite}));
    REQUIRE(by_builtin);
    CHECK(by_builtin->local_size == Size{1, 1, 8});
    CHECK_FALSE(by_builtin->local_size_specializable);

    auto unresolved =
        px::read_spirv_module(module({entry_point, {331, 1, 38, 10, 11, 13}, uint_type, x, y}));
    REQUIRE(unresolved);
    CHECK_FALSE(unresolved->local_size);
    CHECK(unresolved->problems ==
          std::vector<std::string>{"workgroup size component 13 is not a constant"});

    auto none = px::read_spirv_module(module({entry_point}));
    REQUIRE(none);
    CHECK_FALSE(none->local_size);
    CHECK(none->problems ==
          std::vector<std::string>{"the entry point has no LocalSize or LocalSizeId"});
}

TEST_CASE("words that are not a whole SPIR-V module are refused", "[spirv]") {
    const Words words = interpreter();
    CHECK_FALSE(px::read_spirv_module({}));
    CHECK_FALSE(px::read_spirv_module(std::span(words).first(4)));

    Words wrong_magic = words;
    wrong_magic[0] = 0x03022307; // big-endian
    auto not_spirv = px::read_spirv_module(wrong_magic);
    REQUIRE_FALSE(not_spirv);
    CHECK(not_spirv.error().message == "not a SPIR-V module (missing magic number 0x07230203)");

    // The first instruction (OpCapability Shader) is two words long.
    auto cut = px::read_spirv_module(std::span(words).first(6));
    REQUIRE_FALSE(cut);
    CHECK(cut.error().message == "SPIR-V module is truncated at word 5");

    Words zero_count = words;
    zero_count[5] = 0;
    auto zero = px::read_spirv_module(zero_count);
    REQUIRE_FALSE(zero);
    CHECK(zero.error().message == "SPIR-V module is truncated at word 5");
}

TEST_CASE("types that contain themselves are problems, not a hang", "[spirv]") {
    auto m = px::read_spirv_module(module({
        {30, 1, 1},        // OpTypeStruct %1 {%1}
        {72, 1, 0, 35, 0}, // OpMemberDecorate %1 0 Offset 0
        {32, 2, 9, 1},     // OpTypePointer %2 PushConstant %1
        {59, 2, 3, 9},     // OpVariable %2 %3 PushConstant
        {28, 4, 4, 5},     // OpTypeArray %4 of %4
        {32, 6, 12, 4},    // OpTypePointer %6 StorageBuffer %4
        {59, 6, 7, 12},    // OpVariable %6 %7 StorageBuffer
    }));
    REQUIRE(m);
    CHECK(m->bindings.empty());
    CHECK(m->problems.size() == 2);
    CHECK(m->compute_entry_points == 0);
    CHECK_FALSE(m->local_size);
}
