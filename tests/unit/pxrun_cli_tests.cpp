// pxrun on the reference interpreter (--device cpu): what it prints, its exit codes, and that an
// existing --out file survives every failure.
#include "command_runner.hpp"
#include "program_builder.hpp"

#include "pxvm/image.hpp"
#include "pxvm/protocol.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>

namespace fs = std::filesystem;
using pxtest::read_text;
using pxtest::write_text;

namespace {

pxtest::CommandRunner pxrun() {
    return pxtest::CommandRunner(pxtest::tool_path("pxrun"), "pxrun_test");
}

const std::string dot_test = PXVM_SOURCE_DIR "/assets/dot_test.pxi";

} // namespace

TEST_CASE("pxrun --device cpu prints the seed's result and writes the image", "[cli][pxrun]") {
    const auto runner = pxrun();
    REQUIRE(runner.tool_exists());
    const fs::path out = runner.dir() / "result.pxi";
    const auto result = runner.run("--device cpu " + dot_test + " --out " + out.string());
    CHECK(result.exit_code == 0);
    CHECK_THAT(result.out, Catch::Contains("pixel (0, 3) = 300 (R=44 G=1)"));
    CHECK_THAT(result.out, Catch::Contains("halted after 1 instruction"));
    auto written = px::load_png(out.string());
    REQUIRE(written.ok());
    CHECK(written->pixel(0, 3) == px::Pixel{44, 1, 0, 0});
    CHECK(runner.run("--help").exit_code == 0);
}

TEST_CASE("pxrun exits 2 on a program fault and still writes the faulted image", "[cli][pxrun]") {
    const auto runner = pxrun();
    REQUIRE(runner.tool_exists());
    px::Image program(8, 4);
    program.set_pixel(0, 0, {px::OP_DOT_RGB, 1, 2, 9}); // row 9 of a 4-row image
    const fs::path in = runner.dir() / "fault.pxi", out = runner.dir() / "fault.out.pxi";
    REQUIRE(px::save_png(program, in.string()).ok());
    const auto result = runner.run("--device cpu " + in.string() + " -o " + out.string());
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.out, Catch::Contains("fault OUT_OF_BOUNDS (6) at pc 0 (dot_rgb)"));
    auto written = px::load_png(out.string());
    REQUIRE(written.ok());
    CHECK(written->pixel(7, 0) == px::Pixel{px::FAULT_OUT_OF_BOUNDS, 0, 0, 255});
}

TEST_CASE("pxrun refuses bad input with exit 1 and leaves an existing --out file alone",
          "[cli][pxrun]") {
    const auto runner = pxrun();
    REQUIRE(runner.tool_exists());
    const fs::path out = runner.dir() / "keep.pxi";
    write_text(out, "precious");
    for (const std::string bad : {PXVM_SOURCE_DIR "/tests/malformed/rgb8.png",
                                  PXVM_SOURCE_DIR "/tests/malformed/truncated_data.png",
                                  PXVM_SOURCE_DIR "/tests/malformed/does_not_exist.png"}) {
        INFO(bad);
        const auto result = runner.run("--device cpu " + bad + " --out " + out.string());
        CHECK(result.exit_code == 1);
        CHECK_THAT(result.err, Catch::Contains(bad));
        CHECK(read_text(out) == "precious");
    }
    CHECK(runner.run("").exit_code != 0);          // no program
    CHECK(runner.run("--bogus x").exit_code != 0); // unknown flag
    // An output path that cannot be written: the run is reported, the exit is 1.
    const auto unwritable = runner.run("--device cpu " + dot_test + " --out " +
                                       runner.dir().string() + "/no/such/dir/x");
    CHECK(unwritable.exit_code == 1);
    CHECK_THAT(unwritable.err, Catch::Contains("cannot write"));
    // A kernel variant means nothing to the reference or the interpreter.
    for (const char* where : {"--device cpu", "--path interpreter"}) {
        const auto variant = runner.run(std::string(where) + " --variant portable " + dot_test);
        CHECK(variant.exit_code == 1);
        CHECK_THAT(variant.err, Catch::Contains("does not apply to " + std::string(where)));
    }
    CHECK(runner.run("--path sideways " + dot_test).exit_code == 1);
    // Misuse exits 1 as --help says, not with CLI11's own codes.
    CHECK(runner.run("").exit_code == 1);
    CHECK(runner.run("--bogus x " + dot_test).exit_code == 1);
    CHECK(runner.run("--timeout-ms -5 " + dot_test).exit_code == 1);
}

TEST_CASE("pxrun and pxc refuse an output that is the input, however it is named", "[cli][pxrun]") {
    const auto runner = pxrun();
    REQUIRE(runner.tool_exists());
    const fs::path in = runner.dir() / "in.pxi";
    fs::copy_file(dot_test, in);
    const std::string original = read_text(in);
    fs::create_hard_link(in, runner.dir() / "hard.pxi");
    fs::create_symlink("in.pxi", runner.dir() / "soft.pxi");
    const std::string dir = runner.dir().string();
    for (const std::string& output :
         {in.string(), dir + "/./in.pxi", dir + "/hard.pxi", dir + "/soft.pxi"}) {
        for (const char* flag : {"--out", "-o", "--save-reference"}) {
            INFO(flag << " " << output);
            const auto result =
                runner.run("--device cpu " + in.string() + " " + flag + " " + output);
            CHECK(result.exit_code == 1);
            CHECK_THAT(result.err, Catch::Contains(output + " is the input " + in.string()));
            CHECK(read_text(in) == original);
        }
    }
    // The picture of the differences beside --save-reference FILE is FILE.diff.png.
    const fs::path diff = runner.dir() / "ref.diff.png";
    fs::copy_file(dot_test, diff);
    const auto beside =
        runner.run("--device cpu " + diff.string() + " --save-reference " + dir + "/ref");
    CHECK(beside.exit_code == 1);
    CHECK(read_text(diff) == original);
    // Another file is written as before.
    CHECK(runner.run("--device cpu " + in.string() + " --out " + dir + "/out.pxi").exit_code == 0);

    // pxc: asm, disasm, render and pack.
    const pxtest::CommandRunner pxc(pxtest::tool_path("pxc"), "pxc_same_file");
    REQUIRE(pxc.tool_exists());
    const fs::path source = pxc.dir() / "prog.pxs";
    write_text(source, ".image 16 16\nhalt\n");
    for (const std::string& command :
         {"asm " + source.string() + " -o " + source.string(),
          "disasm " + in.string() + " -o " + dir + "/hard.pxi",
          "render " + in.string() + " -o " + dir + "/soft.pxi",
          "pack " + in.string() + " --calibration " + source.string() + " -o " + in.string()}) {
        INFO(command);
        const auto result = pxc.run(command);
        CHECK(result.exit_code == 1);
        CHECK_THAT(result.err, Catch::Contains(" is the input "));
    }
    CHECK(read_text(source) == ".image 16 16\nhalt\n");
    CHECK(read_text(in) == original);
}

TEST_CASE("every tool has --version, and --device CPU is the reference", "[cli][pxrun]") {
    for (const char* tool : {"pxrun", "pxc", "pxinfo", "pxconform", "pxbench"}) {
        const pxtest::CommandRunner runner(pxtest::tool_path(tool), "version_test");
        INFO(tool);
        REQUIRE(runner.tool_exists());
        const auto version = runner.run("--version");
        CHECK(version.exit_code == 0);
        CHECK_THAT(version.out, Catch::StartsWith(std::string(tool) + " 0."));
        CHECK_THAT(version.out, Catch::Contains("(git "));
    }
    const auto upper = pxrun().run("--device CPU " + dot_test);
    CHECK(upper.exit_code == 0);
    CHECK_THAT(upper.out, Catch::Contains("cpu (reference interpreter)"));
}

TEST_CASE("pxrun --timeout-ms takes 1 ms to 24 h", "[cli][pxrun]") {
    for (const char* bad : {"0", "-5", "86400001", "soon"}) {
        INFO(bad);
        const auto r =
            pxrun().run(std::string("--device cpu --timeout-ms ") + bad + " " + dot_test);
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.err, Catch::Contains("--timeout-ms"));
    }
    CHECK(pxrun().run("--device cpu --timeout-ms 86400000 " + dot_test).exit_code == 0);
}

TEST_CASE("pxrun --max-work and --timeout-ms bound the reference interpreter", "[cli][pxrun]") {
    const auto runner = pxrun();
    REQUIRE(runner.tool_exists());
    const std::string demo = PXVM_SOURCE_DIR "/assets/tensor_demo.pxi";
    const fs::path out = runner.dir() / "keep.pxi";
    write_text(out, "precious");
    // Past --max-work: refused before it runs (--trace's and --save-reference's own runs of the
    // reference are limited too: tests/gpu/differential_tests.cpp, after an unverified device run).
    {
        const auto refused =
            runner.run("--device cpu --max-work 10 " + demo + " -o " + out.string());
        CHECK(refused.exit_code == 1);
        CHECK_THAT(refused.err, Catch::Contains(demo + ": "));
        CHECK_THAT(refused.err, Catch::Contains("operations on the reference interpreter"));
        CHECK_THAT(refused.err, Catch::Contains("more than its limit of 10 (--max-work)"));
        CHECK(read_text(out) == "precious");
    }
    CHECK(runner.run("--device cpu --max-work 1000 " + demo).exit_code == 0);
    CHECK(runner.run("--device cpu --max-work 0 " + demo).exit_code == 1);

    // --timeout-ms on --device cpu: a 10^9 multiply-add matmul stops at 1 ms, output untouched.
    pxtest::ProgramWriter b(1032, 1 + 3 * 512);
    b.tensor(1, px::DTYPE_I32, 0, 1, 512, 512)
        .tensor(2, px::DTYPE_I8, 0, 513, 512, 4096)
        .tensor(3, px::DTYPE_I8, 0, 1025, 512, 4096)
        .matmul(1, 2, 3)
        .halt();
    const fs::path big = runner.dir() / "big_matmul.pxi";
    REQUIRE(px::save_png(b.image, big.string()).ok());
    const auto late =
        runner.run("--device cpu --timeout-ms 1 " + big.string() + " -o " + out.string());
    CHECK(late.exit_code == 1);
    CHECK_THAT(late.err, Catch::Contains(big.string() + ": the reference interpreter ran past its "
                                                        "1 ms limit (--timeout-ms)"));
    CHECK(read_text(out) == "precious");
}

TEST_CASE("pxrun assembles a .pxs source and runs it, and pxc render --values picks its scale",
          "[cli][pxrun]") {
    const std::string source = std::string(PXVM_SOURCE_DIR) + "/assets/tensor_demo.pxs";
    const auto from_source = pxrun().run("--device cpu " + source);
    const auto from_image =
        pxrun().run("--device cpu " + std::string(PXVM_SOURCE_DIR) + "/assets/tensor_demo.pxi");
    CHECK(from_source.exit_code == 0);
    // The same run; only the first line names the file.
    CHECK(from_source.out.substr(from_source.out.find('\n')) ==
          from_image.out.substr(from_image.out.find('\n')));
    const pxtest::CommandRunner runner = pxrun();
    pxtest::write_text(runner.dir() / "bad.pxs", ".image 4 4\nfrobnicate t1\n");
    const auto bad = runner.run("--device cpu " + (runner.dir() / "bad.pxs").string());
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.err, Catch::Contains("bad.pxs:2"));
    // README: pxc render prog.pxi -o picture.png --values, as written
    const pxtest::CommandRunner pxc(pxtest::tool_path("pxc"), "render_values");
    const auto drawn =
        pxc.run("render " + dot_test + " -o " + (pxc.dir() / "p.png").string() + " --values");
    CHECK(drawn.exit_code == 0);
}

TEST_CASE("pxrun --json prints the run as one object", "[cli][pxrun]") {
    const auto runner = pxrun();
    const auto ok = runner.run("--device cpu --json " + dot_test);
    CHECK(ok.exit_code == 0);
    const auto j = nlohmann::json::parse(ok.out);
    CHECK(j["path"] == "reference");
    CHECK(j["executed"] == 1);
    CHECK(j["halted"] == true);
    CHECK(j["fault"].is_null());
    CHECK(j["exit_status"] == 0);
    px::Image program(8, 4);
    program.set_pixel(0, 0, {px::OP_DOT_RGB, 1, 2, 9});
    const fs::path in = runner.dir() / "fault.pxi";
    REQUIRE(px::save_png(program, in.string()).ok());
    const auto faulted = runner.run("--device cpu --json " + in.string());
    CHECK(faulted.exit_code == 2);
    const auto f = nlohmann::json::parse(faulted.out);
    CHECK(f["fault"]["name"] == "OUT_OF_BOUNDS");
    CHECK(f["fault"]["pc"] == 0);
    CHECK(f["exit_status"] == 2);
}

TEST_CASE("pxrun --print, --stop-at, --trace and --save-reference look inside a run",
          "[cli][pxrun]") {
    const auto runner = pxrun();
    REQUIRE(runner.tool_exists());
    const std::string demo = PXVM_SOURCE_DIR "/assets/tensor_demo.pxi";
    // --print: the whole tensor, its shape and every row (t3 is the matmul's and add_bias's out).
    const auto printed = runner.run("--device cpu " + demo + " --print 3 --print 9");
    CHECK(printed.exit_code == 0);
    CHECK_THAT(printed.out, Catch::Contains("t3 i32 2x2 at (0, 3)\n    row 0: 118 -98\n"
                                            "    row 1: 114 -110"));
    CHECK_THAT(printed.out, Catch::Contains("t9 i32 1x4 at (4, 6)\n    row 0: 5 -4 13 -9"));
    const auto undeclared = runner.run("--device cpu " + demo + " --print 77");
    CHECK(undeclared.exit_code == 1);
    CHECK_THAT(undeclared.err, Catch::Contains("tensor 77 is not declared"));
    CHECK(runner.run("--device cpu " + demo + " --print 256").exit_code == 1);
    // By name, in a .pxs source with named tensors.
    const fs::path named = runner.dir() / "named.pxs";
    write_text(named, ".image 8 4\n.tensor a i8 1 3\n.tensor b i8 1 3\nrelu b, a\nhalt\n"
                      ".data a 5 -6 7\n");
    const auto by_name = runner.run("--device cpu " + named.string() + " --print b");
    CHECK(by_name.exit_code == 0);
    CHECK_THAT(by_name.out, Catch::Contains("t254 i8 1x3 at (1, 1)\n    row 0: 5 0 7"));
    const auto no_name = runner.run("--device cpu " + named.string() + " --print c");
    CHECK(no_name.exit_code == 1);
    CHECK_THAT(no_name.err, Catch::Contains("--print c: no tensor of that name"));

    // --stop-at: the instructions from that pc on do not run (t3 is the matmul's, before the
    // add_bias at pc 19); only an instruction's pc is accepted.
    const fs::path stopped = runner.dir() / "stopped.pxi";
    const auto stop =
        runner.run("--device cpu " + demo + " --stop-at 19 --print 3 -o " + stopped.string());
    CHECK(stop.exit_code == 0);
    CHECK_THAT(stop.out, Catch::Contains("row 0: 18 2"));
    CHECK_THAT(stop.out, Catch::Contains("stopped at pc 19 (--stop-at) after 7 instructions"));
    auto original = px::load_png(demo), stopped_image = px::load_png(stopped.string());
    REQUIRE(original.ok());
    REQUIRE(stopped_image.ok());
    CHECK(stopped_image->pixel(19, 0) == original->pixel(19, 0)); // row 0 as it was
    const auto inside = runner.run("--device cpu " + demo + " --stop-at 7");
    CHECK(inside.exit_code == 1);
    CHECK_THAT(inside.err, Catch::Contains("not the pc of an instruction that runs"));
    CHECK(runner.run("--device cpu " + demo + " --stop-at 40").exit_code == 1);

    // --trace: one image after each instruction that changes pixels, then the final one, which
    // is the run's result; --save-reference writes the reference's image.
    const fs::path trace = runner.dir() / "trace", reference = runner.dir() / "reference.pxi",
                   result = runner.dir() / "result.pxi";
    fs::remove_all(trace);
    const auto traced =
        runner.run("--device cpu " + demo + " --trace " + trace.string() + " --save-reference " +
                   reference.string() + " -o " + result.string());
    CHECK(traced.exit_code == 0);
    CHECK_THAT(traced.err, Catch::Contains("trace: 6 step images and final.pxi"));
    CHECK(fs::exists(trace / "step-0007-pc-18-matmul.pxi"));
    CHECK(fs::exists(trace / "step-0015-pc-34-gather_mean.pxi"));
    auto after_matmul = px::load_png((trace / "step-0007-pc-18-matmul.pxi").string());
    REQUIRE(after_matmul.ok());
    CHECK(*after_matmul == *stopped_image); // the image after pc 18 is the run stopped at pc 19
    auto final_image = px::load_png((trace / "final.pxi").string()),
         ran = px::load_png(result.string()), saved = px::load_png(reference.string());
    REQUIRE(final_image.ok());
    REQUIRE(ran.ok());
    REQUIRE(saved.ok());
    CHECK(*final_image == *ran);
    CHECK(*saved == *ran);
    CHECK_FALSE(fs::exists(reference.string() + ".diff.png")); // the same: no difference picture
    const auto cartridge = runner.run(PXVM_SOURCE_DIR "/assets/kjv.pxa --print 3");
    CHECK(cartridge.exit_code == 1);
}

TEST_CASE("pxrun runs several programs, or a directory of them, one after another",
          "[cli][pxrun]") {
    const auto runner = pxrun();
    REQUIRE(runner.tool_exists());
    const std::string demo = PXVM_SOURCE_DIR "/assets/tensor_demo.pxi";
    const auto both = runner.run("--device cpu " + dot_test + " " + demo);
    CHECK(both.exit_code == 0);
    CHECK_THAT(both.out, Catch::Contains("dot_test.pxi: 16x16"));
    CHECK_THAT(both.out, Catch::Contains("tensor_demo.pxi: 40x12"));

    // A directory: its .pxi and .pxs programs in name order; --json gives an array.
    const fs::path dir = runner.dir() / "programs";
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy_file(demo, dir / "b.pxi");
    fs::copy_file(dot_test, dir / "a.pxi");
    write_text(dir / "notes.txt", "not a program");
    const auto listed = runner.run("--device cpu --json " + dir.string());
    CHECK(listed.exit_code == 0);
    const auto runs = nlohmann::json::parse(listed.out);
    REQUIRE(runs.is_array());
    REQUIRE(runs.size() == 2);
    CHECK(runs[0]["program"].get<std::string>().ends_with("a.pxi"));
    CHECK(runs[1]["executed"] == 15);

    // The worst exit status wins: a faulting program makes it 2; a bad file 1.
    px::Image fault(8, 4);
    fault.set_pixel(0, 0, {px::OP_DOT_RGB, 1, 2, 9});
    REQUIRE(px::save_png(fault, (dir / "c.pxi").string()).ok());
    CHECK(runner.run("--device cpu " + dir.string()).exit_code == 2);
    write_text(dir / "d.pxi", "not a png");
    const auto bad = runner.run("--device cpu " + dir.string());
    CHECK(bad.exit_code == 2); // still every program ran; the bad one said why
    CHECK_THAT(bad.err, Catch::Contains("d.pxi"));
    CHECK_THAT(bad.out, Catch::Contains("b.pxi: 40x12"));

    // What takes one program refuses several; an empty directory is an error.
    CHECK(runner.run("--device cpu " + dot_test + " " + demo + " -o x.pxi").exit_code == 1);
    CHECK(runner.run("--device cpu " + dot_test + " " + demo + " --stop-at 0").exit_code == 1);
    const fs::path empty = runner.dir() / "empty";
    fs::create_directories(empty);
    const auto none = runner.run("--device cpu " + empty.string());
    CHECK(none.exit_code == 1);
    CHECK_THAT(none.err, Catch::Contains("no .pxi or .pxs program"));
}
