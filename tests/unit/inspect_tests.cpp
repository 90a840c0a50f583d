// Tests of pxrun's inspection in the library (pxvm/inspect.hpp), in process: --stop-at's HALT and
// its restoring, --trace's step images, --save-reference's image and difference picture, the exit
// statuses and how several combine, and when a cartridge's self-test runs.
#include "program_builder.hpp"
#include "temp_dir.hpp"

#include "pxvm/inspect.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/report.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using px::ExitStatus;
using px::Image;
using px::Pixel;

using pxtest::TempDir;

// The pc of the `n`th step (0-based) of the program's plan.
std::uint32_t step_pc(const Image& program, std::size_t n) {
    const px::Plan plan = px::plan_program(program);
    REQUIRE(n < plan.steps.size());
    return plan.steps[n].instruction.pc;
}

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace

TEST_CASE("stop_at puts a HALT at an instruction's pc and restore puts the instruction back",
          "[inspect][stop]") {
    const Image program = pxtest::tiny_network().image;
    const px::Plan whole = px::plan_program(program);
    const std::uint32_t pc = step_pc(program, 10); // the matmul: 8 TENSORs, gather_mean, requant
    REQUIRE(whole.steps[10].instruction.opcode == px::OP_MATMUL);

    Image executed = program;
    const auto stop = px::stop_at(executed, pc, "tiny.pxi");
    REQUIRE(stop);
    CHECK(stop->pc == pc);
    CHECK(stop->instruction == program.pixel(pc, 0));
    CHECK(executed.pixel(pc, 0) == Pixel{px::OP_HALT, 0, 0, 0});

    Image result = executed;
    const px::RunOutcome outcome = px::run_reference(result);
    CHECK(outcome.halted);
    CHECK(outcome.executed == 10);
    CHECK(stop->stopped_here(outcome, px::plan_program(executed)));
    px::restore(stop.value(), result);
    CHECK(result.pixel(pc, 0) == program.pixel(pc, 0));
    // Nothing after the stop ran: the logits (tensor 6 at (4, 6)) are as the program had them.
    CHECK(result.pixel(4, 6) == program.pixel(4, 6));

    // No stop restores nothing.
    Image untouched = executed;
    px::restore(std::nullopt, untouched);
    CHECK(untouched == executed);
}

TEST_CASE("stop_at leaves a fault pixel where the HALT was, and a stop at the program's own HALT "
          "is no stop",
          "[inspect][stop]") {
    const Image program = pxtest::tiny_network().image;
    const px::Plan whole = px::plan_program(program);
    const std::uint32_t pc = step_pc(program, 10);
    Image executed = program;
    const auto stop = px::stop_at(executed, pc, "tiny.pxi");
    REQUIRE(stop);
    Image faulted = executed;
    faulted.set_pixel(pc, 0, Pixel{9, 9, 9, 255});
    stop->restore(faulted);
    CHECK(faulted.pixel(pc, 0) == Pixel{9, 9, 9, 255});

    // The program's HALT is no step, so it cannot be stopped at; a stop at the last step that
    // runs is, and the run then reports having stopped there.
    const std::uint32_t halt_pc = whole.steps.back().instruction.pc + 1;
    Image again = program;
    CHECK_FALSE(px::stop_at(again, halt_pc, "tiny.pxi"));

    const px::StopAt at_halt{halt_pc, Pixel{px::OP_HALT, 0, 0, 0}};
    Image result = program;
    const px::RunOutcome outcome = px::run_reference(result);
    CHECK_FALSE(at_halt.stopped_here(outcome, whole));
}

TEST_CASE("stop_at refuses a pc past row 0 or one where no instruction runs", "[inspect][stop]") {
    const Image program = pxtest::tiny_network().image;
    Image executed = program;
    const auto past = px::stop_at(executed, 64, "tiny.pxi");
    REQUIRE_FALSE(past);
    CHECK(past.error().code == px::ErrorCode::invalid_input);
    CHECK(past.error().message == "tiny.pxi: --stop-at 64 is past row 0, which ends at x = 63");

    const px::Plan whole = px::plan_program(program);
    const std::uint32_t inside = whole.steps[0].instruction.pc + 1; // within a TENSOR declaration
    REQUIRE(whole.steps[1].instruction.pc != inside);
    const auto not_step = px::stop_at(executed, inside, "tiny.pxi");
    REQUIRE_FALSE(not_step);
    CHECK_THAT(not_step.error().message,
               Catch::StartsWith("tiny.pxi: --stop-at " + std::to_string(inside) +
                                 " is not the pc of an instruction that runs (they are at 0, "));
    CHECK(executed == program); // a refused stop changes nothing

    Image empty(4, 2); // HALT at pc 0: no instruction runs
    const auto none = px::stop_at(empty, 1, "empty.pxi");
    REQUIRE_FALSE(none);
    CHECK_THAT(none.error().message, Catch::EndsWith("(they are at none)"));
}

TEST_CASE("write_trace writes an image after each instruction but TENSOR, and the final image",
          "[inspect][trace]") {
    const Image program = pxtest::tiny_network().image;
    TempDir dir("inspect_trace");
    const std::string trace = dir.path("steps/nested");
    const auto written = px::write_trace(program, trace, {}, std::nullopt, "tiny.pxi");
    REQUIRE(written);
    CHECK(*written == 6);
    const std::vector<std::string> expected = {
        "final.pxi",
        "step-0009-pc-" + std::to_string(step_pc(program, 8)) + "-gather_mean.pxi",
        "step-0010-pc-" + std::to_string(step_pc(program, 9)) + "-requant.pxi",
        "step-0011-pc-" + std::to_string(step_pc(program, 10)) + "-matmul.pxi",
        "step-0012-pc-" + std::to_string(step_pc(program, 11)) + "-add_bias.pxi",
        "step-0013-pc-" + std::to_string(step_pc(program, 12)) + "-relu.pxi",
        "step-0014-pc-" + std::to_string(step_pc(program, 13)) + "-argmax.pxi",
    };
    CHECK(files_in(trace) == expected);
    Image reference = program;
    (void)px::run_reference(reference);
    const auto final_image = px::load_png(trace + "/final.pxi");
    REQUIRE(final_image);
    CHECK(*final_image == reference);
}

TEST_CASE("write_trace puts a stop's instruction back and names the directory it cannot create",
          "[inspect][trace]") {
    const Image program = pxtest::tiny_network().image;
    const std::uint32_t pc = step_pc(program, 10);
    Image executed = program;
    const auto stop = px::stop_at(executed, pc, "tiny.pxi");
    REQUIRE(stop);
    TempDir dir("inspect_trace_stop");
    const auto written = px::write_trace(executed, dir.path("t"), {}, stop.value(), "tiny.pxi");
    REQUIRE(written);
    CHECK(*written == 2); // gather_mean and requant
    const auto final_image = px::load_png(dir.path("t/final.pxi"));
    REQUIRE(final_image);
    CHECK(final_image->pixel(pc, 0) == program.pixel(pc, 0));

    std::ofstream(dir.path("file")) << "not a directory";
    const auto refused = px::write_trace(program, dir.path("file/t"), {}, std::nullopt, "tiny.pxi");
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message,
               Catch::StartsWith("--trace: cannot create " + dir.path("file/t") + ": "));

    px::ReferenceLimits tight;
    tight.max_work = 1;
    const auto limited = px::write_trace(program, dir.path("u"), tight, std::nullopt, "tiny.pxi");
    REQUIRE_FALSE(limited);
    CHECK_THAT(limited.error().message, Catch::StartsWith("tiny.pxi: --trace: "));
}

TEST_CASE("reference_image and save_difference: the reference's result and where another differs",
          "[inspect][reference]") {
    const Image program = pxtest::tiny_network().image;
    const std::uint32_t pc = step_pc(program, 10);
    Image executed = program;
    const auto stop = px::stop_at(executed, pc, "tiny.pxi");
    REQUIRE(stop);
    const auto reference = px::reference_image(executed, {}, stop.value(), "tiny.pxi");
    REQUIRE(reference);
    CHECK(reference->pixel(pc, 0) == program.pixel(pc, 0));
    Image expected = executed;
    (void)px::run_reference(expected);
    stop->restore(expected);
    CHECK(*reference == expected);

    TempDir dir("inspect_reference");
    const std::string path = dir.path("ref.png");
    CHECK(px::difference_path(path) == path + ".diff.png");
    const auto same = px::save_difference(*reference, expected, path);
    REQUIRE(same);
    CHECK_FALSE(same->has_value());
    CHECK_FALSE(fs::exists(path + ".diff.png"));

    Image other = expected;
    other.set_pixel(1, 3, Pixel{1, 2, 3, 4});
    const auto differs = px::save_difference(*reference, other, path);
    REQUIRE(differs);
    REQUIRE(differs->has_value());
    CHECK(**differs == path + ".diff.png");
    const auto diff = px::load_png(**differs);
    REQUIRE(diff);
    CHECK(*diff == px::difference_image(*reference, other));

    px::ReferenceLimits tight;
    tight.max_work = 1;
    const auto limited = px::reference_image(program, tight, std::nullopt, "tiny.pxi");
    REQUIRE_FALSE(limited);
    CHECK_THAT(limited.error().message, Catch::StartsWith("tiny.pxi: --save-reference: "));
}

TEST_CASE("exit statuses: 0 ran, 1 bad input, 2 faulted, 3 mismatch, and several give the worst",
          "[inspect][exit]") {
    CHECK(int(ExitStatus::ran) == 0);
    CHECK(int(ExitStatus::bad_input) == 1);
    CHECK(int(ExitStatus::faulted) == 2);
    CHECK(int(ExitStatus::mismatch) == 3);

    CHECK(px::exit_status(px::Error{px::ErrorCode::mismatch, "x"}) == ExitStatus::mismatch);
    for (const px::ErrorCode code :
         {px::ErrorCode::invalid_input, px::ErrorCode::unsupported, px::ErrorCode::incomplete,
          px::ErrorCode::timeout, px::ErrorCode::device_error})
        CHECK(px::exit_status(px::Error{code, "x"}) == ExitStatus::bad_input);

    px::RunOutcome ran;
    ran.halted = true;
    px::RunOutcome faulted;
    faulted.fault.code = px::FAULT_BAD_OPCODE;
    CHECK(px::exit_status(ran, false, 0) == ExitStatus::ran);
    CHECK(px::exit_status(faulted, false, 0) == ExitStatus::faulted);
    CHECK(px::exit_status(faulted, true, 0) == ExitStatus::mismatch);
    CHECK(px::exit_status(ran, false, 1) == ExitStatus::mismatch);

    CHECK(px::worst(ExitStatus::ran, ExitStatus::faulted) == ExitStatus::faulted);
    CHECK(px::worst(ExitStatus::mismatch, ExitStatus::bad_input) == ExitStatus::mismatch);
    CHECK(px::worst(ExitStatus::bad_input, ExitStatus::ran) == ExitStatus::bad_input);
}

TEST_CASE("a cartridge's self-test runs when asked or when nothing else is, and alone",
          "[inspect][cartridge]") {
    using Flags = px::GenerationFlags;
    CHECK(px::runs_self_test(Flags{}).value());
    CHECK(px::runs_self_test(Flags{.self_test = true}).value());
    CHECK_FALSE(px::runs_self_test(Flags{.prompt_given = true}).value());
    CHECK_FALSE(px::runs_self_test(Flags{.batch_given = true}).value());
    CHECK_FALSE(px::runs_self_test(Flags{.tokens_given = true}).value());
    CHECK_FALSE(px::runs_self_test(Flags{.temperature = 0.5}).value());
    for (const Flags other : {Flags{.self_test = true, .prompt_given = true},
                              Flags{.self_test = true, .batch_given = true},
                              Flags{.self_test = true, .tokens_given = true},
                              Flags{.self_test = true, .temperature = 1.0}}) {
        const auto refused = px::runs_self_test(other);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == px::ErrorCode::invalid_input);
        CHECK(refused.error().message ==
              "--self-test runs the manifest's prompt, greedily, for its own token count: drop "
              "--prompt, --batch, --temperature and --tokens");
    }
}
