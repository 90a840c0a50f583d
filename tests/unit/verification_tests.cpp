// verify_against_reference, the check behind pxrun's default verification: it must notice a
// single wrong byte and a wrong status, and report the first differing pixel and the count.
#include "pxvm/image.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/run_program.hpp"

#include <catch2/catch.hpp>

namespace {

px::Image seed_program() {
    auto image = px::load_png(PXVM_SOURCE_DIR "/assets/dot_test.pxi");
    REQUIRE(image.ok());
    return *image;
}

} // namespace

TEST_CASE("a device result equal to the reference verifies", "[verification]") {
    const px::Image program = seed_program();
    px::Image result = program;
    const px::RunOutcome outcome = px::run_reference(result);
    const px::RunStatus status{outcome.fault.code, outcome.fault.pc, outcome.executed, 1};
    const px::Verification v = px::verify_against_reference(program, result, status);
    CHECK(v.matches());
    CHECK(v.reference.halted);
}

TEST_CASE("one wrong byte and a wrong status are both reported", "[verification]") {
    const px::Image program = seed_program();
    px::Image result = program;
    (void)px::run_reference(result);
    result.set_pixel(0, 3, {45, 1, 0, 0}); // 301 instead of 300
    result.set_pixel(5, 9, {0, 0, 0, 1});
    const px::Verification v =
        px::verify_against_reference(program, result, px::RunStatus{0, 0, 1, 1});
    CHECK_FALSE(v.matches());
    CHECK(v.difference.count == 2);
    CHECK(px::describe(v.difference) ==
          "first difference at pixel (0, 3): expected (44,1,0,0), actual (45,1,0,0); 2 pixels "
          "differ");
    CHECK(v.status_mismatch.empty());

    px::Image correct = program;
    (void)px::run_reference(correct);
    const px::Verification wrong_status = px::verify_against_reference(
        program, correct, px::RunStatus{px::FAULT_BAD_OPCODE, 1, 1, 0});
    CHECK(wrong_status.difference.count == 0);
    CHECK_THAT(wrong_status.status_mismatch,
               Catch::Contains("the reference ended with fault NONE, 1 instructions executed, "
                               "halted; the device with fault BAD_OPCODE at pc 1"));
}

TEST_CASE("a result of the wrong size never verifies", "[verification]") {
    const px::Image program = seed_program();
    const px::Verification v =
        px::verify_against_reference(program, px::Image(16, 15), px::RunStatus{0, 0, 1, 1});
    CHECK_FALSE(v.matches());
    CHECK_THAT(v.status_mismatch, Catch::Contains("16x15 image for a 16x16 program"));
}
