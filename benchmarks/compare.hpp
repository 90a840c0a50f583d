// `pxbench compare`'s logic: reads pxbench and peer JSON files (schemas 1 and 2) and prints their
// runs side by side, each run k >= 2 judged against run 1 by a two-sided Mann-Whitney U test on
// the GPU time samples (normal approximation, tie-corrected, continuity-corrected): "faster" or
// "slower" when p < 0.01 (CompareOptions::alpha), else "no clear difference"; with fewer than 5
// samples on a side always "no clear difference (too few samples)".
#pragma once

#include "pxvm/result.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace px::bench {

struct CompareOptions {
    double alpha = 0.01; ///< "faster"/"slower" when the test's p-value is below this
};

/// Fewer samples than this on either side: always "no clear difference (too few samples)".
constexpr std::size_t min_samples = 5;

/// One result of a file: one workload on one device by one path and variant.
struct BenchResult {
    std::string device;   ///< "[0] NVIDIA H200" (schema 1: the file's device name)
    std::string workload; ///< "matmul i8 4096x4096x4096"
    std::string path;     ///< "kernels", "interpreter", "peer"
    std::string variant;  ///< "int-dot", "portable", "", "torch._int_mm"
    double ops = 0;       ///< operations of one run; 0 when unknown
    double bytes = 0;     ///< bytes one run reads and writes; 0 when unknown
    double median_ms = 0; ///< median GPU time
    std::vector<double> samples_ms;
    std::string error; ///< non-empty: the result failed
};

/// A pxbench or peer JSON file, read.
struct BenchFile {
    std::string path;                 ///< as given
    int schema = 0;                   ///< 0 when the file does not say
    std::string tool;                 ///< "pxbench", "peer" ("peer_torch.py" in schema 1)
    std::string pxvm;                 ///< "0.1.0 (git abc)", empty when absent
    std::string date;                 ///< empty when absent
    std::string host;                 ///< empty when absent
    std::vector<std::string> devices; ///< the results' devices, in order of first appearance
    std::vector<BenchResult> results;
};

/// Reads a file's JSON text; `name` is the file's name for messages.
Result<BenchFile> parse_bench_file(const std::string& json_text, const std::string& name);
/// Reads a file, or an error naming it (missing, not JSON, not a pxbench or peer file).
Result<BenchFile> load_bench_file(const std::string& path);

/// The best result of one run for one workload: the lowest median among its paths and variants.
struct Best {
    std::string how; ///< "kernels int-dot", "peer torch._int_mm"
    double median_ms = 0;
    std::vector<double> samples_ms;
    double ops = 0, bytes = 0;
};

/// One (file, device) pair.
struct Run {
    std::string name;                 ///< "2026-12-01-h200-pxbench.json: NVIDIA H200"
    std::string file;                 ///< the path as given
    std::string device;               ///< "[0] NVIDIA H200"
    std::string about;                ///< "pxbench, pxVM 0.1.0 (git abc), 2026-12-01T10:07:50Z"
    std::map<std::string, Best> best; ///< by workload
    std::map<std::string, std::string> failed; ///< workloads without a usable result: why
};

/// The runs of the files and the workloads (rows) in order of first appearance.
struct Comparison {
    std::vector<Run> runs;
    std::vector<std::string> workloads;
};

/// The runs of already loaded files (a file with several devices gives several runs).
Comparison build_comparison(const std::vector<BenchFile>& files);
/// Loads the files (at least two) and builds their comparison.
Result<Comparison> load_comparison(const std::vector<std::string>& paths);

enum class Unit { none, tops, gbps };
const char* unit_name(Unit unit); ///< "TOPS", "GB/s", ""
/// TOPS when the workload name starts with "matmul" (and ops are known), else GB/s when bytes > 0.
Unit unit_of(const std::string& workload, const Best& best);
/// TOPS = ops / ms / 1e9 or GB/s = bytes / ms / 1e6; nullopt when `unit` cannot be computed.
std::optional<double> throughput(const Best& best, Unit unit);

/// The Mann-Whitney U test of samples a against samples b.
struct MannWhitney {
    double u = 0; ///< U of a: pairs (a_i, b_j) with a_i > b_j, ties counted 1/2
    double z = 0; ///< signed, without continuity correction: > 0 when a tends to be larger
    double p = 1; ///< two-sided, normal approximation, tie- and continuity-corrected
};
MannWhitney mann_whitney(const std::vector<double>& a, const std::vector<double>& b);
/// Two-sided Mann-Whitney U p-value (normal approximation, tie-corrected, continuity-corrected
/// like scipy.stats.mannwhitneyu(method="asymptotic")); 1 when a side is empty or all are equal.
double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b);

enum class Verdict { faster, slower, no_clear_difference, too_few_samples };
/// "faster", "slower", "no clear difference", "no clear difference (too few samples)".
const char* verdict_name(Verdict verdict);

/// Run k's best result judged against run 1's.
struct Judgement {
    Verdict verdict = Verdict::no_clear_difference;
    double p = 1;     ///< 1 when too few samples
    double ratio = 0; ///< run 1 median / run k median (> 1: run k is faster); 0 when undefined
};
Judgement judge(const Best& first, const Best& other, const CompareOptions& options = {});

/// "1.609", "0.1002", "140.7", "15600": milliseconds with about 4 significant digits.
std::string format_ms(double ms);
/// "85.4", "2879", "0.0153": a throughput figure.
std::string format_throughput(double value);

/// The side-by-side table (Markdown) of a comparison, with its legend and footer.
std::string format_table(const Comparison& comparison, const CompareOptions& options = {});
/// The side-by-side table text, or an error naming the file.
Result<std::string> compare_files(const std::vector<std::string>& paths,
                                  const CompareOptions& options = {});

} // namespace px::bench
