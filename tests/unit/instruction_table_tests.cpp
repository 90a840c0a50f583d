// The instruction completeness test: walks the instruction table (kernels/pxvm_instructions.h)
// and requires, for every instruction, what docs/INSTRUCTIONS.md's checklist lists: it runs on the
// reference from generated programs (the differential generator reaches it), the scheduler lowers
// it, it round-trips through the disassembler and the assembler, a conformance case runs it, and
// PROTOCOL.md, ASSEMBLY.md and KERNELS.md name it. A new row that skips a step fails here.
#include "program_generator.hpp"

#include "pxvm/assembler.hpp"
#include "pxvm/conformance.hpp"
#include "pxvm/disassembler.hpp"
#include "pxvm/program.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/vulkan/scheduler.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace {

const std::string source_dir = PXVM_SOURCE_DIR;

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Per opcode: the generated programs (of the differential tests' generator) that execute it.
std::map<std::uint32_t, std::vector<px::Image>> generated_instances() {
    std::map<std::uint32_t, std::vector<px::Image>> instances;
    for (std::uint64_t seed = 0; seed < 600; ++seed) {
        pxtest::GeneratedProgram program = pxtest::generate_program(seed);
        const px::Plan plan = px::plan_program(program.image);
        px::Image ran = program.image;
        const px::RunOutcome outcome = px::run_reference(ran);
        for (std::uint32_t i = 0; i < outcome.executed; ++i) {
            auto& list = instances[plan.steps[i].instruction.opcode];
            if (list.size() < 3) list.push_back(program.image);
        }
        if (outcome.halted) {
            auto& list = instances[px::OP_HALT];
            if (list.size() < 3) list.push_back(program.image);
        }
    }
    return instances;
}

px::vk::DeviceInfo portable_device() {
    px::vk::DeviceInfo info;
    info.name = "Fake GPU";
    info.type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    info.limits.max_compute_shared_memory_size = 32 << 10;
    return info;
}

} // namespace

TEST_CASE("instruction table: every instruction is complete", "[instructions]") {
    const auto instances = generated_instances();
    const std::string protocol = read_text(source_dir + "/docs/PROTOCOL.md");
    const std::string assembly = read_text(source_dir + "/docs/ASSEMBLY.md");
    const std::string kernels = read_text(source_dir + "/docs/KERNELS.md");
    REQUIRE(!protocol.empty());

    // Opcodes every conformance case runs on the reference.
    std::set<std::uint32_t> conformance;
    auto suite = px::conformance::load_suite(source_dir + "/tests/conformance");
    REQUIRE(suite);
    for (const auto& c : suite->cases) {
        auto image = px::conformance::load_program(c);
        if (!image) continue;
        const px::Plan plan = px::plan_program(*image);
        px::Image ran = *image;
        const px::RunOutcome outcome = px::run_reference(ran);
        for (std::uint32_t i = 0; i < outcome.executed; ++i)
            conformance.insert(plan.steps[i].instruction.opcode);
        if (outcome.halted) conformance.insert(px::OP_HALT);
    }

    for (const px::InstructionInfo& info : px::instruction_table()) {
        const std::string name(info.name);
        INFO("instruction " << name << " (opcode " << info.opcode << ")");
        // The table is consistent with itself.
        CHECK(px::opcode_from_name(name) == info.opcode);
        CHECK(px::instruction_length(info.opcode) == info.length);
        // Operands 0-2 are named by the used channels G, B, A; a fourth by an extension pixel.
        CHECK(std::min(info.arity, 3u) <= info.used_args);
        CHECK((info.arity < 4 || info.length >= 2));
        for (std::uint32_t i = 0; i < 4; ++i)
            CHECK(info.roles[i].empty() == (i >= info.arity));

        // The documents name it.
        CHECK(protocol.find("`" + name + "`") != std::string::npos);
        CHECK(assembly.find("`" + name) != std::string::npos);
        if (info.opcode != px::OP_HALT && info.opcode != px::OP_TENSOR)
            CHECK(kernels.find("`" + name + "`") != std::string::npos);

        // A conformance case runs it.
        CHECK(conformance.count(info.opcode) == 1);

        // The differential generator reaches it.
        const auto found = instances.find(info.opcode);
        REQUIRE(found != instances.end());
        for (const px::Image& image : found->second) {
            // Disassembly and assembly give the identical image back.
            const std::string text = px::disassemble(image);
            auto again = px::assemble(text, "roundtrip.pxs");
            REQUIRE(again);
            CHECK(again->image == image);
            CHECK(text.find(name) != std::string::npos);

            // The scheduler lowers it: a step for its pc, with a kernel unless it only declares.
            const px::Plan plan = px::plan_program(image);
            auto schedule = px::vk::schedule_program(plan, image.width(), image.height(),
                                                     portable_device(), {});
            REQUIRE(schedule);
            if (info.opcode == px::OP_HALT || info.opcode == px::OP_TENSOR) continue;
            bool lowered = false;
            for (const auto& step : schedule->steps)
                lowered = lowered || (step.opcode == info.opcode && !step.kernel.empty());
            CHECK(lowered);
        }
    }
}
