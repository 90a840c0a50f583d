// The random program generator used by the differential tests reaches every opcode and every
// fault code, so a differential run over its corpus covers the whole protocol.
#include "program_generator.hpp"

#include "pxvm/program.hpp"
#include "pxvm/reference_interpreter.hpp"

#include <catch2/catch.hpp>

#include <map>

TEST_CASE("generated programs cover every opcode and every fault code", "[generator]") {
    std::map<std::uint32_t, int> faults, opcodes;
    int clean = 0;
    for (std::uint64_t seed = 0; seed < 400; ++seed) {
        pxtest::GeneratedProgram program = pxtest::generate_program(seed);
        const px::Plan plan = px::plan_program(program.image);
        const px::RunOutcome outcome = px::run_reference(program.image);
        for (std::uint32_t i = 0; i < outcome.executed; ++i)
            ++opcodes[plan.steps[i].instruction.opcode];
        if (outcome.fault)
            ++faults[outcome.fault.code];
        else
            ++clean;
    }
    for (std::uint32_t code = 1; code < px::FAULT_COUNT; ++code) {
        INFO("fault " << px::fault_name(code));
        CHECK(faults[code] > 0);
    }
    for (const px::InstructionInfo& info : px::instruction_table()) {
        if (info.opcode == px::OP_HALT) continue; // a halt ends a run: never counted as executed
        INFO("opcode " << info.name);
        CHECK(opcodes[info.opcode] >= 20);
    }
    CHECK(clean >= 200);
}

TEST_CASE("program generation is deterministic for a seed", "[generator]") {
    CHECK(pxtest::generate_program(42).image == pxtest::generate_program(42).image);
    CHECK(pxtest::generate_program(42).image != pxtest::generate_program(43).image);
}
