// The conformance runner on the reference executor (no GPU needed): which files make a case,
// NAME.json and expectations.json and their errors, goldens written only on request, negative
// cases, failures with their first differing pixel and their images, stale expectations.
#include "command_runner.hpp"
#include "program_builder.hpp"

#include "pxvm/conformance.hpp"
#include "pxvm/reference_interpreter.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace px::conformance;
using pxtest::ProgramWriter;

namespace {

/// A fresh suite directory for one test.
fs::path suite_dir(const std::string& name) {
    const fs::path dir =
        fs::temp_directory_path() / ("pxvm-conformance-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

/// A tiny i8 matmul program as a .pxi.
px::Image matmul_program() {
    ProgramWriter b(16, 6);
    b.tensor(1, px::DTYPE_I8, 0, 1, 2, 3)
        .tensor(2, px::DTYPE_I8, 1, 1, 2, 3)
        .tensor(3, px::DTYPE_I32, 0, 3, 2, 2)
        .matmul(3, 1, 2)
        .halt();
    b.fill(1, {1, -2, 3, 4, 5, -6}).fill(2, {7, 8, 9, -1, 0, 1});
    return b.image;
}

/// The reference executor alone.
RunOptions on_cpu(std::string artifacts = "") {
    RunOptions options;
    options.device = "cpu";
    options.artifacts = std::move(artifacts);
    return options;
}

px::Image reference_result(px::Image image) {
    px::run_reference(image);
    return image;
}

const std::string dot_test = ".image 16 16\ndot_rgb 1, 2, 3\nhalt\n.red 0 1  1 2 3 4\n"
                             ".red 0 2  10 20 30 40\n";

} // namespace

TEST_CASE("conformance: a program with a golden beside it is a case", "[conformance]") {
    const fs::path dir = suite_dir("discover");
    write(dir / "a/dot.pxs", dot_test);
    fs::create_directories(dir / "b/deep");
    REQUIRE(px::save_png(matmul_program(), (dir / "b/deep/mm.pxi").string()));
    write(dir / "lonely.pxs", dot_test); // no golden, no json: not a case
    auto none = load_suite(dir.string());
    REQUIRE_FALSE(none);
    CHECK_THAT(none.error().message, Catch::Contains("no cases"));

    // Goldens are written only on request, from the reference.
    auto all = load_suite(dir.string(), true);
    REQUIRE(all);
    CHECK(all->cases.size() == 3);
    auto written = update_goldens(*all);
    REQUIRE(written);
    CHECK(written->size() == 3);
    fs::remove(dir / "lonely.golden.png");

    auto suite = load_suite(dir.string());
    REQUIRE(suite);
    REQUIRE(suite->cases.size() == 2);
    CHECK(suite->cases[0].name == "a/dot");
    CHECK(suite->cases[1].name == "b/deep/mm");
    auto golden = px::load_png((dir / "b/deep/mm.golden.png").string());
    REQUIRE(golden);
    CHECK(*golden == reference_result(matmul_program()));

    auto run = run_suite(*suite, on_cpu());
    REQUIRE(run);
    REQUIRE(run->executors.size() == 1);
    CHECK(run->executors[0].name == "reference");
    CHECK(run->passed == 2);
    CHECK(run->failed == 0);
    CHECK_THAT(summary_text(*suite, *run), Catch::EndsWith("2 passed, 0 failed, 0 skipped\n"));

    // The suite's hash changes with any file.
    const std::string hash = suite->hash;
    write(dir / "README.md", "notes");
    auto again = load_suite(dir.string());
    REQUIRE(again);
    CHECK(again->hash != hash);
}

TEST_CASE("conformance: a wrong pixel fails with the pixel, the count and the images",
          "[conformance]") {
    const fs::path dir = suite_dir("mismatch");
    const fs::path artifacts = dir.string() + "-artifacts";
    fs::remove_all(artifacts);
    REQUIRE(px::save_png(matmul_program(), (dir / "mm.pxi").string()));
    px::Image wrong = reference_result(matmul_program());
    px::Pixel p = wrong.pixel(1, 4);
    p.g ^= 0x40;
    wrong.set_pixel(1, 4, p);
    REQUIRE(px::save_png(wrong, (dir / "mm.golden.png").string()));

    auto suite = load_suite(dir.string());
    REQUIRE(suite);
    auto run = run_suite(*suite, on_cpu(artifacts.string()));
    REQUIRE(run);
    REQUIRE(run->results.size() == 1);
    const CaseResult& r = run->results[0];
    CHECK(r.outcome == Outcome::fail);
    CHECK_THAT(r.detail, Catch::Contains("(1, 4)"));
    CHECK_THAT(r.detail, Catch::Contains("1 pixel differs"));
    REQUIRE_FALSE(r.artifacts.empty());
    auto actual = px::load_png(r.artifacts + "/actual.png");
    REQUIRE(actual);
    CHECK(*actual == reference_result(matmul_program()));
    auto diff = px::load_png(r.artifacts + "/diff.png");
    REQUIRE(diff);
    CHECK(diff->pixel(1, 4) == px::Pixel{255, 0, 255, 255}); // the differing pixel stands out
    CHECK(diff->pixel(0, 4).a == 255);
    CHECK(diff->pixel(0, 4) != px::Pixel{255, 0, 255, 255});
    CHECK_THAT(summary_text(*suite, *run), Catch::Contains("FAIL mm on reference"));
    CHECK_THAT(summary_text(*suite, *run), Catch::EndsWith("0 passed, 1 failed, 0 skipped\n"));
    CHECK_THAT(junit_xml(*suite, *run), Catch::Contains("<failure message=\"first difference"));

    // Marked as a negative case, the same golden is an expected failure; the right golden is
    // then a failure of the checker.
    write(dir / "mm.json", R"({"covers": "a wrong matmul element", "expect": "mismatch"})");
    suite = load_suite(dir.string());
    REQUIRE(suite);
    run = run_suite(*suite, on_cpu());
    REQUIRE(run);
    CHECK(run->results[0].outcome == Outcome::expected_failure);
    CHECK(run->failed == 0);
    REQUIRE(px::save_png(reference_result(matmul_program()), (dir / "mm.golden.png").string()));
    run = run_suite(*suite, on_cpu());
    REQUIRE(run);
    CHECK(run->results[0].outcome == Outcome::fail);
    CHECK_THAT(run->results[0].detail, Catch::Contains("checker missed"));
    fs::remove_all(artifacts);
}

TEST_CASE("conformance: NAME.json states the fault a case must end with", "[conformance]") {
    const fs::path dir = suite_dir("fault");
    write(dir / "bad.pxs", ".image 8 4\nrelu t1, t2\nhalt\n"); // UNDEFINED_TENSOR at pc 0
    write(dir / "bad.json", R"({"covers": "an undeclared tensor", "fault": "UNDEFINED_TENSOR"})");
    auto suite = load_suite(dir.string(), true);
    REQUIRE(suite);
    REQUIRE(update_goldens(*suite));
    suite = load_suite(dir.string());
    REQUIRE(suite);
    REQUIRE(suite->cases[0].fault == px::FAULT_UNDEFINED_TENSOR);
    auto run = run_suite(*suite, on_cpu());
    REQUIRE(run);
    CHECK(run->results[0].outcome == Outcome::pass);

    // The golden is right but the expected fault is not: a failure (and update refuses).
    write(dir / "bad.json", R"({"fault": "OVERLAP"})");
    suite = load_suite(dir.string());
    REQUIRE(suite);
    run = run_suite(*suite, on_cpu());
    REQUIRE(run);
    CHECK(run->results[0].outcome == Outcome::fail);
    CHECK_THAT(run->results[0].detail, Catch::Contains("expected OVERLAP"));
    auto refused = update_goldens(*suite);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message, Catch::Contains("OVERLAP"));
}

TEST_CASE("conformance: malformed suite files are errors naming the file", "[conformance]") {
    const fs::path dir = suite_dir("malformed");
    write(dir / "a.pxs", dot_test);
    const auto error_for = [&](const std::string& json) {
        write(dir / "a.json", json);
        auto suite = load_suite(dir.string(), true);
        REQUIRE_FALSE(suite);
        CHECK_THAT(suite.error().message, Catch::Contains("a.json"));
        return suite.error().message;
    };
    CHECK_THAT(error_for("{"), Catch::Contains("not a JSON object"));
    CHECK_THAT(error_for(R"({"expect": "maybe"})"), Catch::Contains("'pass' or 'mismatch'"));
    CHECK_THAT(error_for(R"({"fault": "OOPS"})"), Catch::Contains("not a fault name"));
    CHECK_THAT(error_for(R"({"needs": ["warp_drive"]})"), Catch::Contains("known needs"));
    CHECK_THAT(error_for(R"({"colour": 1})"), Catch::Contains("unknown or mistyped member"));
    fs::remove(dir / "a.json");

    write(dir / "a.golden.png", "");
    write(dir / "expectations.json", R"({"known_failures": [{"case": "a"}]})");
    auto bad = load_suite(dir.string());
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message, Catch::Contains("vendor_id, case and reason"));
    write(dir / "expectations.json",
          R"({"known_failures": [{"vendor_id": 4318, "case": "nope", "reason": "x"}]})");
    bad = load_suite(dir.string());
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message, Catch::Contains("does not have"));
    fs::remove(dir / "expectations.json");

    // An unreadable golden is a failed case, not a crash.
    auto suite = load_suite(dir.string());
    REQUIRE(suite);
    auto run = run_suite(*suite, on_cpu());
    REQUIRE(run);
    CHECK(run->results[0].outcome == Outcome::fail);
    CHECK_FALSE(load_suite((dir / "missing").string()));
}

TEST_CASE("conformance: case files nested 10^5 levels deep are refused, not a stack overflow",
          "[conformance]") {
    const fs::path dir = suite_dir("deep");
    write(dir / "a.pxs", dot_test);
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const auto error_for = [&](const fs::path& file, const std::string& json) {
        write(file, json);
        auto suite = load_suite(dir.string(), true);
        fs::remove(file);
        REQUIRE_FALSE(suite);
        INFO(suite.error().message.substr(0, 300));
        CHECK_THAT(suite.error().message, Catch::StartsWith(file.string() + ": "));
        CHECK(suite.error().message.size() < 300);
        return suite.error().message;
    };
    // A case file and the expectations: the values the messages quote are the deep ones.
    CHECK_THAT(error_for(dir / "a.json", R"({"needs": [)" + deep + "]}"),
               Catch::Contains("nested deeper than 64 levels"));
    write(dir / "a.golden.png", "");
    CHECK_THAT(error_for(dir / "expectations.json", R"({"known_failures": [)" + deep + "]}"),
               Catch::Contains("nested deeper than 64 levels"));
    // Long values are quoted cut to a few dozen characters.
    const std::string huge(1 << 20, 'x');
    CHECK_THAT(error_for(dir / "a.json", R"({"expect": ")" + huge + R"("})"),
               Catch::Contains("\"expect\" is 'xxxx"));
    CHECK_THAT(error_for(dir / "a.json", R"({"fault": ")" + huge + R"("})"),
               Catch::Contains("is not a fault name"));
    CHECK_THAT(error_for(dir / "a.json", R"({"needs": [")" + huge + R"("]})"),
               Catch::Contains("known needs"));
    CHECK_THAT(error_for(dir / "a.json", R"({")" + huge + R"(": 1})"),
               Catch::Contains("unknown or mistyped member"));
    CHECK_THAT(error_for(dir / "expectations.json",
                         R"({"known_failures": [{"case": ")" + huge + R"("}]})"),
               Catch::Contains("vendor_id, case and reason"));
    CHECK_THAT(error_for(dir / "expectations.json",
                         R"({"known_failures": [{"vendor_id": 1, "reason": "r", "case": ")" + huge +
                             R"("}]})"),
               Catch::Contains("does not have"));
    // A member of another type is an error, not an uncaught exception.
    CHECK_THAT(error_for(dir / "expectations.json",
                         R"({"known_failures": [{"vendor_id": 1, "reason": "r", "case": "a",
                             "driver": 5}]})"),
               Catch::Contains(R"("driver" is not a string)"));
}

TEST_CASE("conformance: a symlink loop or a golden that links to itself is an error naming it",
          "[conformance]") {
    const fs::path dir = suite_dir("symlinks");
    write(dir / "a.pxs", dot_test);
    REQUIRE(update_goldens(*load_suite(dir.string(), true)));
    // A link to a folder above is not followed: the suite loads, once.
    fs::create_directory_symlink("..", dir / "up");
    auto suite = load_suite(dir.string());
    REQUIRE(suite);
    CHECK(suite->cases.size() == 1);
    const auto refused = [&](const fs::path& named) {
        auto loaded = load_suite(dir.string());
        REQUIRE_FALSE(loaded);
        INFO(loaded.error().message);
        CHECK_THAT(loaded.error().message,
                   Catch::StartsWith(named.string() + ": ") &&
                       Catch::Contains("Too many levels of symbolic links"));
        // pxconform says the same, and exits 1.
        const pxtest::CommandRunner pxconform(pxtest::tool_path("pxconform"), "pxconform_symlinks");
        const auto run = pxconform.run("--device cpu --quiet --suite " + dir.string());
        CHECK(run.exit_code == 1);
        CHECK_THAT(run.err, Catch::Contains(named.string() + ": "));
    };
    // Two links to each other.
    fs::create_symlink("loop2", dir / "loop1");
    fs::create_symlink("loop1", dir / "loop2");
    refused(dir / "loop1");
    fs::remove(dir / "loop1");
    fs::remove(dir / "loop2");
    // A golden that links to itself.
    write(dir / "b.pxs", dot_test);
    fs::create_symlink("b.golden.png", dir / "b.golden.png");
    refused(dir / "b.golden.png");
}

TEST_CASE("conformance: failure images stay inside the artifacts folder, whatever the case name",
          "[conformance]") {
    // Cases named "..", "." and ".hidden" (from the files ...pxi, ..pxi and .hidden.pxi), each
    // with a wrong golden, so that each writes its failure images.
    const fs::path base = suite_dir("dot-names");
    const fs::path dir = base / "suite", artifacts = base / "artifacts";
    fs::create_directories(dir);
    px::Image wrong = reference_result(matmul_program());
    wrong.set_pixel(1, 4, {9, 9, 9, 9});
    for (const std::string stem : {"..", ".", ".hidden"}) {
        REQUIRE(px::save_png(matmul_program(), (dir / (stem + ".pxi")).string()));
        REQUIRE(px::save_png(wrong, (dir / (stem + ".golden.png")).string()));
    }
    auto suite = load_suite(dir.string());
    REQUIRE(suite);
    REQUIRE(suite->cases.size() == 3);
    auto run = run_suite(*suite, on_cpu(artifacts.string()));
    REQUIRE(run);
    CHECK(run->failed == 3);
    std::set<std::string> folders;
    for (const CaseResult& r : run->results) {
        INFO(r.artifacts);
        REQUIRE_FALSE(r.artifacts.empty());
        const fs::path relative = fs::path(r.artifacts).lexically_relative(artifacts);
        CHECK(*relative.begin() != "..");
        CHECK(*relative.begin() != ".");
        CHECK(fs::exists(fs::path(r.artifacts) / "actual.png"));
        folders.insert(r.artifacts);
    }
    CHECK(folders.size() == 3); // one folder each
    // Nothing beside the suite and the artifacts folder.
    std::set<std::string> written;
    for (const auto& entry : fs::directory_iterator(base))
        written.insert(entry.path().filename().string());
    CHECK(written == std::set<std::string>{"artifacts", "suite"});
    fs::remove_all(base);
}

TEST_CASE("pxconform: --update-golden, then a run on the reference, as the docs show",
          "[conformance][cli]") {
    const pxtest::CommandRunner pxconform(pxtest::tool_path("pxconform"), "pxconform_cli_test");
    REQUIRE(pxconform.tool_exists());
    const fs::path suite = pxconform.dir() / "suite";
    write(suite / "seed/dot.pxs", dot_test);
    const std::string at = "--suite " + suite.string();

    const auto missing = pxconform.run(at + " --device cpu");
    CHECK(missing.exit_code == 1); // no golden yet: no case, and never a golden made silently
    CHECK_FALSE(fs::exists(suite / "seed/dot.golden.png"));

    const auto update = pxconform.run(at + " --update-golden");
    INFO(update.out << update.err);
    CHECK(update.exit_code == 0);
    CHECK_THAT(update.out, Catch::Contains("written from the reference interpreter"));
    const auto run =
        pxconform.run(at + " --device cpu --quiet --junit " + (pxconform.dir() / "j.xml").string() +
                      " --bundle " + (pxconform.dir() / "bundle").string());
    INFO(run.out << run.err);
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.out, Catch::EndsWith("1 passed, 0 failed, 0 skipped\nbundle written to " +
                                        (pxconform.dir() / "bundle").string() + "\n"));
    for (const char* file : {"pxconform.json", "pxconform.junit.xml", "fingerprint.json"})
        CHECK(fs::exists(pxconform.dir() / "bundle" / file));
    CHECK(fs::exists(pxconform.dir() / "j.xml"));

    write(suite / "seed/dot.pxs", ".image 16 16\ndot_rgb 1, 2, 3\nhalt\n.red 0 1  1 2 3 5\n"
                                  ".red 0 2  10 20 30 40\n");
    const auto changed = pxconform.run(at + " --device cpu --quiet --artifacts " +
                                       (pxconform.dir() / "failures").string());
    CHECK(changed.exit_code == 1);
    // The changed input pixel (3, 1) differs first, then the result (0, 3).
    CHECK_THAT(changed.out, Catch::Contains("FAIL seed/dot on reference: first difference at "
                                            "pixel (3, 1)"));
    CHECK_THAT(changed.out, Catch::Contains("2 pixels differ"));
    CHECK_THAT(changed.out, Catch::EndsWith("0 passed, 1 failed, 0 skipped\n"));
    const auto bad = pxconform.run(at + " --path sideways");
    CHECK(bad.exit_code != 0);
}
