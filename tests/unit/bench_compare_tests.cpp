// `pxbench compare`'s library (benchmarks/compare.hpp, svg_chart.hpp): the Mann-Whitney U test
// on known values, the table and the SVG on synthetic and on the committed H200 files, and errors.
#include <catch2/catch.hpp>

#include "command_runner.hpp"
#include "compare.hpp"
#include "svg_chart.hpp"
#include "temp_dir.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
using namespace px::bench;

namespace {

const std::string committed_pxbench =
    PXVM_SOURCE_DIR "/benchmarks/results/2026-12-01-h200-pxbench.json";
const std::string committed_peer = PXVM_SOURCE_DIR "/benchmarks/results/2026-12-01-h200-peer.json";

using pxtest::TempDir;

/// `count` samples base * (1 + step * i).
std::vector<double> series(double base, int count, double step = 0.01) {
    std::vector<double> samples;
    for (int i = 0; i < count; ++i)
        samples.push_back(base * (1 + step * i));
    return samples;
}

std::string samples_json(const std::vector<double>& samples) {
    std::ostringstream out;
    out.precision(17);
    out << "[";
    for (std::size_t i = 0; i < samples.size(); ++i)
        out << (i ? ", " : "") << samples[i];
    return out.str() + "]";
}

/// A schema 2 result; the median is left out so that the reader computes it.
std::string result_json(const std::string& device, const std::string& workload,
                        const std::string& path, const std::string& variant, double ops,
                        double bytes, const std::vector<double>& samples,
                        const std::string& error = "") {
    std::ostringstream out;
    out << R"({"device": ")" << device << R"(", "workload": ")" << workload << R"(", "path": ")"
        << path << R"(", "variant": ")" << variant << R"(", "ops": )" << ops << R"(, "bytes": )"
        << bytes << R"(, "gpu_ms": {"samples": )" << samples_json(samples) << R"(}, "error": ")"
        << error << R"("})";
    return out.str();
}

std::string file_json(const std::string& tool, const std::vector<std::string>& results) {
    std::string out =
        R"({"schema": 2, "tool": ")" + tool +
        R"json(", "pxvm": "0.1.0 (git test)", "date": "2026-12-02", "host": "testhost",
  "devices": [{"index": 0, "name": "Test GPU"}], "results": [)json";
    for (std::size_t i = 0; i < results.size(); ++i)
        out += (i ? ",\n" : "\n") + results[i];
    return out + "]}\n";
}

const std::string gpu = "[0] Test GPU";
const std::string odd_name = R"(odd <name> & \"quotes\")"; // JSON text of: odd <name> & "quotes"

/// pxbench: run 1 of the synthetic comparison.
std::string synthetic_pxbench() {
    return file_json(
        "pxbench",
        {result_json(gpu, "matmul i8 64x64x64", "kernels", "portable", 524288, 0, series(2.0, 10)),
         result_json(gpu, "matmul i8 64x64x64", "kernels", "int-dot", 524288, 0, series(1.0, 10)),
         // failed results are skipped even when faster
         result_json(gpu, "matmul i8 64x64x64", "kernels", "broken", 524288, 0, series(0.1, 10),
                     "MISMATCH"),
         result_json(gpu, "relu i8 1 MiB in + out", "kernels", "portable", 1048576, 2097152,
                     series(1.0, 10)),
         result_json(gpu, "copy 1 MiB", "kernels", "portable", 0, 2097152,
                     {1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.4}),
         result_json(gpu, "few samples", "kernels", "portable", 0, 1000, series(1.0, 3)),
         result_json(gpu, "only in pxbench", "kernels", "portable", 0, 1000, series(1.0, 10)),
         result_json(gpu, "100 dot_rgb of 8 pixels", "kernels", "portable", 1600, 0,
                     series(1.0, 10)),
         result_json(gpu, odd_name, "kernels", "portable", 0, 1000, series(1.0, 10))});
}

/// peer: run 2.
std::string synthetic_peer() {
    return file_json("peer",
                     {result_json(gpu, "matmul i8 64x64x64", "peer", "torch._int_mm", 524288, 0,
                                  series(0.5, 10)),
                      result_json(gpu, "relu i8 1 MiB in + out", "peer", "torch.clamp_min", 1048576,
                                  2097152, series(2.0, 10)),
                      result_json(gpu, "copy 1 MiB", "peer", "Tensor.copy_", 0, 2097152,
                                  {1.1, 1.3, 1.5, 1.7, 1.9, 2.1, 2.3, 2.5}),
                      result_json(gpu, "few samples", "peer", "x", 0, 1000, series(0.5, 3)),
                      result_json(gpu, "only in peer", "peer", "x", 0, 1000, series(1.0, 10)),
                      result_json(gpu, odd_name, "peer", "x", 0, 1000, series(1.0, 10))});
}

/// The table line of a workload ("| name |...").
std::string line_of(const std::string& table, const std::string& workload) {
    std::istringstream lines(table);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("| " + workload + " ", 0) == 0) return line;
    return "";
}

/// The cells of a table line.
std::vector<std::string> cells(const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    std::string cell;
    std::getline(in, cell, '|'); // before the first |
    while (std::getline(in, cell, '|')) {
        const auto first = cell.find_first_not_of(' '), last = cell.find_last_not_of(' ');
        out.push_back(first == std::string::npos ? "" : cell.substr(first, last - first + 1));
    }
    if (!out.empty() && out.back().empty()) out.pop_back();
    return out;
}

/// Empty when `svg` is one well-formed element tree rooted at <svg> with only the five XML
/// entities, else what is wrong.
std::string xml_problem(const std::string& svg) {
    if (svg.rfind("<svg", 0) != 0) return "does not start with <svg";
    std::vector<std::string> open;
    std::size_t i = 0;
    bool closed_root = false;
    while ((i = svg.find('<', i)) != std::string::npos) {
        if (closed_root) return "content after </svg>";
        const std::size_t end = svg.find('>', i);
        if (end == std::string::npos) return "unterminated tag";
        const std::string tag = svg.substr(i + 1, end - i - 1);
        if (tag.empty()) return "empty tag";
        if (tag[0] == '/') {
            const std::string name = tag.substr(1);
            if (open.empty() || open.back() != name) return "unbalanced </" + name + ">";
            open.pop_back();
            closed_root = open.empty();
        } else if (tag.back() != '/') {
            open.push_back(tag.substr(0, tag.find_first_of(" \n/")));
        }
        i = end + 1;
    }
    if (!open.empty()) return "<" + open.back() + "> not closed";
    for (std::size_t a = svg.find('&'); a != std::string::npos; a = svg.find('&', a + 1)) {
        bool entity = false;
        for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
            entity = entity || svg.compare(a, std::strlen(e), e) == 0;
        if (!entity) return "a bare & at " + std::to_string(a);
    }
    return "";
}

} // namespace

TEST_CASE("mann_whitney_p matches hand-computed and scipy reference values", "[bench]") {
    // Fully separated, 5 per side: U = 0, mean 12.5, variance 25 * 11 / 12, z = 12 / 4.787
    // = 2.507 with the continuity correction, p = 0.01219 (scipy.stats.mannwhitneyu(...,
    // method="asymptotic")): above 0.01, so 5 against 5 can never be "faster".
    CHECK(mann_whitney_p({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}) ==
          Approx(0.012185780355344818).epsilon(1e-9));
    // 6 per side: z = 17.5 / sqrt(39) = 2.802, p = 0.005075.
    CHECK(mann_whitney_p({1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}) ==
          Approx(0.005074868097940257).epsilon(1e-9));
    // 10 per side (pxbench --preset full): z = 49.5 / sqrt(175), p = 1.827e-4.
    std::vector<double> low, high;
    for (int i = 1; i <= 10; ++i) {
        low.push_back(i);
        high.push_back(i + 10);
    }
    CHECK(mann_whitney_p(low, high) == Approx(1.826717911095504e-4).epsilon(1e-9));
    CHECK(mann_whitney_p(high, low) == Approx(1.826717911095504e-4).epsilon(1e-9));
    // scipy's documentation example: males vs females, U = 17, asymptotic p = 0.11134688653314041.
    const MannWhitney docs = mann_whitney({19, 22, 16, 29, 24}, {20, 11, 17, 12});
    CHECK(docs.u == 17);
    CHECK(docs.z > 0);
    CHECK(docs.p == Approx(0.11134688653314041).epsilon(1e-9));
    // Ties: sorted 1 | 2 2 | 3 x5 | 4 x3 | 5 5 | 6 have ranks 1, 2.5, 6, 10, 12.5, 14; a's rank sum
    // 1 + 2 * 2.5 + 3 * 6 + 10 = 34, U = 34 - 28 = 6, mean 24.5; tie term 6 + 120 + 24 + 6 = 156,
    // variance 49 / 12 * (15 - 156 / 182) = 57.75, z = 18 / 7.599 = 2.369, p = 0.01785.
    const MannWhitney ties = mann_whitney({1, 2, 2, 3, 3, 3, 4}, {3, 3, 4, 4, 5, 5, 6});
    CHECK(ties.u == 6);
    CHECK(ties.p == Approx(0.017854292789382976).epsilon(1e-9));
    // Interleaved: p = 0.6889; identical or all-equal samples: 1; an empty side: 1.
    CHECK(mann_whitney_p({1, 3, 5, 7, 9, 11}, {2, 4, 6, 8, 10, 12}) ==
          Approx(0.6889205558044607).epsilon(1e-9));
    CHECK(mann_whitney_p(series(1.0, 10), series(1.0, 10)) == 1.0);
    CHECK(mann_whitney_p({2, 2, 2, 2, 2}, {2, 2, 2, 2, 2, 2}) == 1.0);
    CHECK(mann_whitney_p({}, {1, 2, 3}) == 1.0);
}

TEST_CASE("judge: faster, slower, no clear difference and too few samples", "[bench]") {
    Best slow{"a", 2.0, series(2.0, 10), 0, 0}, fast{"b", 1.0, series(1.0, 10), 0, 0};
    const Judgement faster = judge(slow, fast);
    CHECK(faster.verdict == Verdict::faster);
    CHECK(faster.ratio == Approx(2.0));
    CHECK(faster.p < 0.01);
    CHECK(judge(fast, slow).verdict == Verdict::slower);
    CHECK(judge(fast, fast).verdict == Verdict::no_clear_difference);
    Best few{"c", 1.0, series(1.0, 4), 0, 0};
    CHECK(judge(slow, few).verdict == Verdict::too_few_samples);
    CHECK(judge(few, slow).verdict == Verdict::too_few_samples);
    // alpha decides: 6 against 6 fully separated gives p = 0.005.
    Best six_slow{"d", 2, series(2.0, 6), 0, 0}, six_fast{"e", 1, series(1.0, 6), 0, 0};
    CHECK(judge(six_slow, six_fast).verdict == Verdict::faster);
    CHECK(judge(six_slow, six_fast, CompareOptions{0.001}).verdict == Verdict::no_clear_difference);
}

TEST_CASE("compare_files on two synthetic schema 2 files", "[bench]") {
    const TempDir dir("bench_table");
    const std::string a = dir.write("a.json", synthetic_pxbench());
    const std::string b = dir.write("b.json", synthetic_peer());
    const auto table = compare_files({a, b});
    REQUIRE(table.ok());
    INFO(*table);
    CHECK_THAT(*table, Catch::Contains("run 1: a.json: [0] Test GPU (pxbench, pxVM 0.1.0 (git "
                                       "test), testhost, 2026-12-02)"));
    CHECK_THAT(*table, Catch::Contains("run 2: b.json: [0] Test GPU (peer"));
    CHECK_THAT(*table, Catch::Contains("| workload "));
    CHECK_THAT(*table, Catch::Contains("| run 2 vs run 1 "));

    const auto matmul = cells(line_of(*table, "matmul i8 64x64x64"));
    REQUIRE(matmul.size() == 4);
    CHECK_THAT(matmul[1], Catch::StartsWith("1.045 ms, 0.000502 TOPS (kernels int-dot)"));
    CHECK_THAT(matmul[2], Catch::Contains("(peer torch._int_mm)"));
    CHECK_THAT(matmul[3], Catch::StartsWith("faster, 2x (p = "));

    const auto relu = cells(line_of(*table, "relu i8 1 MiB in + out"));
    REQUIRE(relu.size() == 4);
    CHECK_THAT(relu[1], Catch::Contains("2.0 GB/s")); // 2097152 B / 1.045 ms
    CHECK_THAT(relu[3], Catch::StartsWith("slower, 0.5x (p = "));

    const auto copy = cells(line_of(*table, "copy 1 MiB"));
    REQUIRE(copy.size() == 4);
    CHECK_THAT(copy[3], Catch::StartsWith("no clear difference, "));
    CHECK_THAT(copy[3], Catch::Contains("(p = "));

    const auto few = cells(line_of(*table, "few samples"));
    REQUIRE(few.size() == 4);
    CHECK_THAT(few[3], Catch::StartsWith("no clear difference (too few samples), 2x"));

    const auto only_a = cells(line_of(*table, "only in pxbench"));
    REQUIRE(only_a.size() == 4);
    CHECK(only_a[2] == "-");
    CHECK(only_a[3] == "-");
    const auto only_b = cells(line_of(*table, "only in peer"));
    REQUIRE(only_b.size() == 4);
    CHECK(only_b[1] == "-");
    CHECK(only_b[3] == "-");

    CHECK_THAT(*table, Catch::Contains("two-sided Mann-Whitney U"));
    CHECK_THAT(*table, Catch::Contains("p < 0.01"));
    CHECK_THAT(*table, Catch::Contains("fewer than 5 samples"));
}

TEST_CASE("compare: a file with two devices gives two runs", "[bench]") {
    const TempDir dir("bench_devices");
    const std::string two = dir.write(
        "two.json",
        R"({"schema": 2, "tool": "pxbench", "devices": [{"index": 0, "name": "GPU A"},
            {"index": 1, "name": "GPU B"}], "results": [)" +
            result_json("[0] GPU A", "w", "kernels", "portable", 0, 1e6, series(1.0, 10)) + "," +
            result_json("[1] GPU B", "w", "kernels", "portable", 0, 1e6, series(3.0, 10)) + "]}");
    const std::string one = dir.write(
        "one.json",
        file_json("pxbench", {result_json(gpu, "w", "kernels", "", 0, 1e6, series(2.0, 10))}));
    const auto c = load_comparison({one, two});
    REQUIRE(c.ok());
    REQUIRE(c->runs.size() == 3);
    CHECK(c->runs[1].name == "two.json: [0] GPU A");
    CHECK(c->runs[2].name == "two.json: [1] GPU B");
    const auto table = compare_files({one, two});
    REQUIRE(table.ok());
    const auto row = cells(line_of(*table, "w"));
    REQUIRE(row.size() == 6);
    CHECK_THAT(row[4], Catch::StartsWith("faster"));
    CHECK_THAT(row[5], Catch::StartsWith("slower"));
}

TEST_CASE("compare: the committed H200 schema 1 files (pxbench and peer)", "[bench]") {
    const auto pxbench = load_bench_file(committed_pxbench);
    REQUIRE(pxbench.ok());
    CHECK(pxbench->schema == 1);
    CHECK(pxbench->devices == std::vector<std::string>{"NVIDIA H200"});
    const auto peer = load_bench_file(committed_peer);
    REQUIRE(peer.ok());
    CHECK(peer->tool == "peer_torch.py");

    const auto c = load_comparison({committed_pxbench, committed_peer});
    REQUIRE(c.ok());
    REQUIRE(c->runs.size() == 2);
    const std::string w = "matmul i8 4096x4096x4096";
    const Best& pxvm = c->runs[0].best.at(w);
    const Best& torch = c->runs[1].best.at(w);
    CHECK(pxvm.how == "kernels int-dot");
    CHECK(pxvm.median_ms == Approx(1.609216));
    CHECK(torch.how == "peer torch._int_mm (cuBLASLt, B col-major)");
    CHECK(*throughput(torch, Unit::tops) == Approx(800.4).epsilon(1e-3)); // from "tops"
    const Judgement j = judge(pxvm, torch);
    CHECK(j.verdict == Verdict::faster); // the peer (run 2) is faster: pxVM is slower
    CHECK(j.ratio == Approx(1.609216 / 0.1717120036482811));
    CHECK(j.p < 1e-5);

    const auto table = compare_files({committed_pxbench, committed_peer});
    REQUIRE(table.ok());
    INFO(*table);
    const auto row = cells(line_of(*table, w));
    REQUIRE(row.size() == 4);
    CHECK_THAT(row[1], Catch::StartsWith("1.609 ms, 85.4 TOPS (kernels int-dot)"));
    CHECK_THAT(row[2], Catch::StartsWith("0.1717 ms, 800.4 TOPS"));
    CHECK_THAT(row[3], Catch::StartsWith("faster, 9.37x"));
    const auto relu = cells(line_of(*table, "relu i8 128 MiB in + out"));
    REQUIRE(relu.size() == 4);
    CHECK_THAT(relu[1], Catch::Contains("1669 GB/s"));
    CHECK_THAT(relu[2], Catch::Contains("2879 GB/s"));
    CHECK(cells(line_of(*table, "launch + sync"))[1] == "-");
    CHECK(cells(line_of(*table, "matmul u8 4096x4096x4096"))[2] == "-");

    // The other way round, pxVM is run 2 and slower.
    const auto reversed = compare_files({committed_peer, committed_pxbench});
    REQUIRE(reversed.ok());
    const auto back = cells(line_of(*reversed, w));
    REQUIRE(back.size() == 4);
    CHECK_THAT(back[3], Catch::StartsWith("slower, 0.107x"));
}

TEST_CASE("svg_chart is a well-formed SVG with every workload", "[bench]") {
    const TempDir dir("bench_svg");
    const std::string a = dir.write("a.json", synthetic_pxbench());
    const std::string b = dir.write("b.json", synthetic_peer());
    const auto svg = svg_chart({a, b});
    REQUIRE(svg.ok());
    INFO(*svg);
    CHECK(xml_problem(*svg).empty());
    CHECK_THAT(*svg, Catch::Contains(R"(xmlns="http://www.w3.org/2000/svg")"));
    CHECK_THAT(*svg, Catch::Contains(R"(version="1.1")"));
    CHECK_THAT(*svg, Catch::Contains("Throughput in TOPS"));
    CHECK_THAT(*svg, Catch::Contains("Throughput in GB/s"));
    CHECK_THAT(*svg, Catch::Contains("a.json: [0] Test GPU vs b.json: [0] Test GPU"));
    for (const char* w :
         {"matmul i8 64x64x64", "relu i8 1 MiB in + out", "copy 1 MiB", "few samples",
          "only in pxbench", "only in peer", "100 dot_rgb of 8 pixels"})
        CHECK_THAT(*svg, Catch::Contains(w));
    CHECK_THAT(*svg, Catch::Contains("odd &lt;name&gt; &amp; &quot;quotes&quot;"));
    CHECK_THAT(*svg, !Catch::Contains("<name>"));

    // Only GB/s rows: no TOPS panel.
    const std::string c = dir.write(
        "c.json", file_json("pxbench", {result_json(gpu, "copy", "k", "", 0, 1e6, series(1, 5))}));
    const std::string d = dir.write(
        "d.json", file_json("peer", {result_json(gpu, "copy", "p", "", 0, 1e6, series(2, 5))}));
    const auto gbps_only = svg_chart({c, d});
    REQUIRE(gbps_only.ok());
    CHECK(xml_problem(*gbps_only).empty());
    CHECK_THAT(*gbps_only, !Catch::Contains("TOPS"));

    const auto committed = svg_chart({committed_pxbench, committed_peer});
    REQUIRE(committed.ok());
    CHECK(xml_problem(*committed).empty());
    const auto comparison = load_comparison({committed_pxbench, committed_peer});
    REQUIRE(comparison.ok());
    for (const std::string& w : comparison->workloads)
        CHECK_THAT(*committed, Catch::Contains(w));
}

TEST_CASE("compare and svg_chart report bad files by name", "[bench]") {
    const TempDir dir("bench_errors");
    const std::string good = dir.write("good.json", synthetic_pxbench());
    const auto message = [](const auto& result) {
        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == px::ErrorCode::invalid_input);
        return result.error().message;
    };
    const std::string missing = (fs::path(good).parent_path() / "missing.json").string();
    CHECK(message(load_bench_file(missing)) == missing + ": no such file");
    CHECK(message(compare_files({good, missing})) == missing + ": no such file");

    const std::string truncated = dir.write("truncated.json", R"({"schema": 2, "tool": )");
    CHECK_THAT(message(compare_files({good, truncated})),
               Catch::StartsWith(truncated + ": not valid JSON: parse error at line 1"));
    CHECK_THAT(message(svg_chart({truncated, good})), Catch::StartsWith(truncated + ": "));

    const std::string other = dir.write("other.json", R"({"name": "something else"})");
    CHECK(message(compare_files({good, other})) ==
          other + R"(: not a pxbench or peer JSON file (no "tool" member))");
    const std::string tool = dir.write("tool.json", R"({"tool": "pxconform", "results": []})");
    CHECK(message(load_bench_file(tool)) ==
          tool + R"(: not a pxbench or peer JSON file (tool is "pxconform"))");
    const std::string array = dir.write("array.json", "[1, 2]");
    CHECK_THAT(message(load_bench_file(array)), Catch::Contains("the top level is not an object"));
    const std::string no_results = dir.write("no_results.json", R"({"tool": "pxbench"})");
    CHECK_THAT(message(load_bench_file(no_results)), Catch::Contains(R"(no "results" array)"));
    const std::string empty = dir.write("empty.json", R"({"tool": "pxbench", "results": []})");
    CHECK(load_bench_file(empty).ok());
    CHECK(message(compare_files({good, empty})) == empty + ": has no results");
    const std::string future =
        dir.write("future.json", R"({"schema": 3, "tool": "pxbench", "results": []})");
    CHECK_THAT(message(load_bench_file(future)), Catch::Contains("schema 3 is newer"));
    const std::string sample = dir.write(
        "sample.json",
        R"({"tool": "pxbench", "results": [{"workload": "w", "gpu_ms": {"samples": [1, "x"]}}]})");
    CHECK(message(load_bench_file(sample)) ==
          sample + ": results[0].gpu_ms.samples[1] is not a number");
    const std::string nameless =
        dir.write("nameless.json", R"({"tool": "peer", "results": [{"ms": {}}]})");
    CHECK(message(load_bench_file(nameless)) == nameless + ": results[0] has no workload");
    const std::string ops = dir.write(
        "ops.json", R"({"tool": "pxbench", "results": [{"workload": "w", "ops": "many"}]})");
    CHECK(message(load_bench_file(ops)) == ops + ": results[0].ops is not a number");

    CHECK_THAT(message(compare_files({good})), Catch::Contains("at least two files"));
    CHECK_THAT(message(svg_chart({})), Catch::Contains("at least two files"));
}

TEST_CASE("compare: files nested 10^5 levels deep are refused, long values cut", "[bench]") {
    const TempDir dir("bench_deep");
    const auto message = [](const auto& result) {
        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == px::ErrorCode::invalid_input);
        INFO(result.error().message.substr(0, 300));
        CHECK(result.error().message.size() < 300);
        return result.error().message;
    };
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const std::string nested =
        dir.write("nested.json", R"({"tool": "pxbench", "results": [], "extra": )" + deep + "}");
    CHECK(message(load_bench_file(nested)) ==
          nested + ": not valid JSON: nested deeper than 64 levels of arrays and objects");
    const std::string huge(1 << 20, 'x');
    const std::string tool =
        dir.write("tool.json", R"({"tool": ")" + huge + R"(", "results": []})");
    CHECK_THAT(message(load_bench_file(tool)),
               Catch::StartsWith(tool + R"(: not a pxbench or peer JSON file (tool is "xxxx)"));
    const std::string unterminated = dir.write("unterminated.json", R"({"tool": ")" + huge);
    CHECK_THAT(message(load_bench_file(unterminated)),
               Catch::StartsWith(unterminated + ": not valid JSON: parse error at line 1"));
}

TEST_CASE("compare: a number out of a double's range (1e999) is a clear error", "[bench][cli]") {
    const TempDir dir("bench_overflow");
    const std::string good = dir.write("good.json", synthetic_pxbench());
    for (const std::string& number :
         std::vector<std::string>{"1e999", "-1e999", "1" + std::string(400, '0') + ".5"}) {
        INFO(number);
        const std::string path =
            dir.write("overflow.json", R"({"tool": "pxbench", "results": [{"workload": "w",
                                          "gpu_ms": {"samples": [1, )" +
                                           number + "]}}]}");
        const auto file = load_bench_file(path);
        REQUIRE_FALSE(file.ok());
        // The parser's message, cut after 160 characters.
        const std::string what = "number overflow parsing '" + number + "'";
        CHECK(file.error().message == path + ": not valid JSON: " +
                                          (what.size() > 160 ? what.substr(0, 160) + "..." : what));
    }
    // pxbench compare says so and exits 1.
    const pxtest::CommandRunner pxbench(pxtest::tool_path("pxbench"), "pxbench_compare_overflow");
    REQUIRE(pxbench.tool_exists());
    const std::string path = dir.write(
        "overflow.json", R"({"tool": "pxbench", "results": [{"workload": "w", "ops": 1e999}]})");
    const auto run = pxbench.run("compare " + good + " " + path);
    CHECK(run.exit_code == 1);
    CHECK(run.err ==
          "pxbench compare: " + path + ": not valid JSON: number overflow parsing '1e999'\n");
}

TEST_CASE("load_bench_file tolerates missing optional members", "[bench]") {
    const TempDir dir("bench_optional");
    const std::string minimal = dir.write(
        "minimal.json",
        R"({"tool": "pxbench", "results": [{"workload": "w", "gpu_ms": {"samples": [3, 1, 2, 4]}},
           {"workload": "v", "error": "failed", "gpu_ms": {"median": 1, "samples": [1]}},
           {"workload": "u", "gpu_ms": {"median": 1}}]})");
    const auto file = load_bench_file(minimal);
    REQUIRE(file.ok());
    CHECK(file->schema == 0);
    CHECK(file->devices == std::vector<std::string>{"unknown device"});
    REQUIRE(file->results.size() == 3);
    CHECK(file->results[0].median_ms == 2.5); // computed from the samples
    CHECK(file->results[0].path.empty());
    const Comparison c = build_comparison({*file, *file});
    REQUIRE(c.runs.size() == 2);
    CHECK(c.runs[0].best.count("w") == 1);
    CHECK(c.runs[0].failed.at("v") == "error");
    CHECK(c.runs[0].failed.at("u") == "no samples");
    CHECK(c.runs[0].name == minimal + ": unknown device"); // the same name twice: the path
    const std::string table = format_table(c);
    CHECK_THAT(line_of(table, "v"), Catch::Contains("failed (error)"));
    CHECK_THAT(line_of(table, "w"), Catch::Contains("too few samples"));
}

TEST_CASE("pxbench compare on the committed H200 run, as docs/BENCHMARKS.md shows",
          "[bench][cli]") {
    const pxtest::CommandRunner pxbench(pxtest::tool_path("pxbench"), "pxbench_compare_cli");
    REQUIRE(pxbench.tool_exists());
    const std::string results = PXVM_SOURCE_DIR "/benchmarks/results/";
    const std::string svg = (pxbench.dir() / "chart.svg").string();
    const auto run = pxbench.run("compare " + results + "2026-12-01-h200-pxbench-full.json " +
                                 results + "2026-12-01-h200-peer-full.json --svg " + svg);
    INFO(run.out << run.err);
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.out, Catch::Contains("matmul i8 8192x8192x8192"));
    CHECK_THAT(run.out, Catch::Contains("Mann-Whitney"));
    CHECK(std::filesystem::exists(svg));
    const auto one = pxbench.run("compare " + results + "2026-12-01-h200-peer-full.json");
    CHECK(one.exit_code != 0); // two files at least
}
