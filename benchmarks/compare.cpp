// Reads pxbench and peer JSON files (schema 2, and both schema 1 shapes) and compares their runs
// with a two-sided Mann-Whitney U test per workload: the implementation of benchmarks/compare.hpp.
#include "compare.hpp"
#include "untrusted_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace px::bench {
namespace {

using nlohmann::json;

/// A malformed member, thrown inside this file only and returned as an Error.
struct Malformed {
    std::string what;
};

const json* member(const json& object, const char* key) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
}

std::string text_of(const json& object, const char* key, const std::string& where,
                    const std::string& fallback = "") {
    const json* value = member(object, key);
    if (!value) return fallback;
    if (!value->is_string()) throw Malformed{where + key + " is not a string"};
    return value->get<std::string>();
}

double number_of(const json& object, const char* key, const std::string& where,
                 double fallback = 0) {
    const json* value = member(object, key);
    if (!value) return fallback;
    if (!value->is_number()) throw Malformed{where + key + " is not a number"};
    return value->get<double>();
}

double median_of(std::vector<double> samples) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    const std::size_t half = samples.size() / 2;
    return samples.size() % 2 ? samples[half] : (samples[half - 1] + samples[half]) / 2;
}

/// "[0] NVIDIA H200" from a schema 2 "devices" entry.
std::string device_label(const json& device, const std::string& where) {
    if (!device.is_object()) throw Malformed{where + " is not an object"};
    const std::string name = text_of(device, "name", where + ".", "unknown device");
    const json* index = member(device, "index");
    if (!index) return name;
    if (!index->is_number_integer()) throw Malformed{where + ".index is not an integer"};
    return "[" + std::to_string(index->get<long long>()) + "] " + name;
}

/// The device of results that name none: the only entry of "devices" (schema 2), else the
/// top-level "device", a name (peer schema 1) or an object with a name (pxbench schema 1).
std::string default_device(const json& doc) {
    if (const json* devices = member(doc, "devices")) {
        if (!devices->is_array()) throw Malformed{"devices is not an array"};
        for (std::size_t i = 0; i < devices->size(); ++i)
            device_label((*devices)[i], "devices[" + std::to_string(i) + "]"); // checks each
        if (devices->size() == 1) return device_label((*devices)[0], "devices[0]");
    }
    if (const json* device = member(doc, "device")) {
        if (device->is_string()) return device->get<std::string>();
        if (device->is_object()) return text_of(*device, "name", "device.", "unknown device");
        throw Malformed{"device is neither a name nor an object"};
    }
    return "unknown device";
}

/// The GPU time of a result: "gpu_ms" (schema 2), "instruction_gpu_ms" (pxbench schema 1) or
/// "ms" (peer schema 1), each {median, samples, ...}. No member: no samples.
void read_timing(const json& result, const std::string& where, BenchResult& out) {
    for (const char* key : {"gpu_ms", "instruction_gpu_ms", "ms"}) {
        const json* timing = member(result, key);
        if (!timing) continue;
        const std::string at = where + key;
        if (!timing->is_object()) throw Malformed{at + " is not an object"};
        if (const json* samples = member(*timing, "samples")) {
            if (!samples->is_array()) throw Malformed{at + ".samples is not an array"};
            for (std::size_t i = 0; i < samples->size(); ++i) {
                const json& sample = (*samples)[i];
                if (!sample.is_number())
                    throw Malformed{at + ".samples[" + std::to_string(i) + "] is not a number"};
                out.samples_ms.push_back(sample.get<double>());
            }
        }
        out.median_ms = number_of(*timing, "median", at + ".", median_of(out.samples_ms));
        return;
    }
}

BenchFile read_document(const json& doc, const std::string& name) {
    if (!doc.is_object())
        throw Malformed{"not a pxbench or peer JSON file (the top level is not an object)"};
    BenchFile file;
    file.path = name;
    const json* tool = member(doc, "tool");
    if (!tool || !tool->is_string())
        throw Malformed{"not a pxbench or peer JSON file (no \"tool\" member)"};
    file.tool = tool->get<std::string>();
    const bool peer = file.tool.rfind("peer", 0) == 0; // "peer", "peer_torch.py"
    if (file.tool != "pxbench" && !peer)
        throw Malformed{"not a pxbench or peer JSON file (tool is \"" + excerpt(file.tool) + "\")"};
    if (const json* schema = member(doc, "schema")) {
        if (!schema->is_number_integer() || schema->get<long long>() < 1)
            throw Malformed{"schema is not a positive integer"};
        if (schema->get<long long>() > 2)
            throw Malformed{"schema " + std::to_string(schema->get<long long>()) +
                            " is newer than this compare reads (1 and 2)"};
        file.schema = int(schema->get<long long>());
    }
    // Descriptions only: one of another type is left out rather than refused.
    const auto about = [&](const char* key) {
        const json* value = member(doc, key);
        return value && value->is_string() ? value->get<std::string>() : std::string();
    };
    file.pxvm = about("pxvm");
    file.date = about("date");
    file.host = about("host");
    const std::string device = default_device(doc);
    const json* results = member(doc, "results");
    if (!results || !results->is_array())
        throw Malformed{"not a pxbench or peer JSON file (no \"results\" array)"};
    for (std::size_t i = 0; i < results->size(); ++i) {
        const json& r = (*results)[i];
        const std::string where = "results[" + std::to_string(i) + "]";
        if (!r.is_object()) throw Malformed{where + " is not an object"};
        const std::string at = where + ".";
        BenchResult result;
        result.workload = text_of(r, "workload", at);
        if (result.workload.empty()) throw Malformed{where + " has no workload"};
        result.device = text_of(r, "device", at, device);
        result.path = text_of(r, "path", at, peer ? "peer" : "");
        result.variant = text_of(r, "variant", at, text_of(r, "peer", at)); // peer schema 1
        result.error = text_of(r, "error", at);
        result.ops = number_of(r, "ops", at);
        result.bytes = number_of(r, "bytes", at);
        read_timing(r, at, result);
        // Peer schema 1 gives the throughput instead: tops = ops / ms / 1e9, gbps = bytes / ms /
        // 1e6.
        if (result.ops <= 0) result.ops = number_of(r, "tops", at) * result.median_ms * 1e9;
        if (result.bytes <= 0) result.bytes = number_of(r, "gbps", at) * result.median_ms * 1e6;
        if (std::find(file.devices.begin(), file.devices.end(), result.device) ==
            file.devices.end())
            file.devices.push_back(result.device);
        file.results.push_back(std::move(result));
    }
    return file;
}

Error file_error(const std::string& name, const std::string& what) {
    return Error{ErrorCode::invalid_input, name + ": " + what};
}

std::string printf_text(const char* format, double value) {
    char text[64];
    std::snprintf(text, sizeof text, format, value);
    return text;
}

std::string format_ratio(double ratio) {
    return printf_text(ratio >= 100 ? "%.0fx" : ratio >= 10 ? "%.1fx" : "%.3gx", ratio);
}

std::string pad(const std::string& text, std::size_t width) {
    return text + std::string(width > text.size() ? width - text.size() : 0, ' ');
}

} // namespace

Result<BenchFile> parse_bench_file(const std::string& json_text, const std::string& name) {
    auto doc = parse_untrusted_json(json_text);
    if (!doc) return file_error(name, "not valid JSON: " + doc.error().message);
    try {
        return read_document(*doc, name);
    } catch (const Malformed& m) {
        return file_error(name, m.what);
    }
}

Result<BenchFile> load_bench_file(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return file_error(path, std::filesystem::exists(path, ec) ? "not a regular file"
                                                                  : "no such file");
    std::ifstream in(path, std::ios::binary);
    if (!in) return file_error(path, "cannot be opened");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return file_error(path, "cannot be read");
    return parse_bench_file(text.str(), path);
}

Comparison build_comparison(const std::vector<BenchFile>& files) {
    Comparison c;
    // Runs are named by the file's name, or by its path as given where two names are the same.
    std::map<std::string, int> name_count;
    for (const BenchFile& f : files)
        ++name_count[std::filesystem::path(f.path).filename().string()];
    std::set<std::string> seen;
    for (const BenchFile& f : files) {
        const std::string base = std::filesystem::path(f.path).filename().string();
        const std::string file_name = name_count[base] > 1 ? f.path : base;
        std::string about = f.tool;
        if (!f.pxvm.empty()) about += ", pxVM " + f.pxvm;
        if (!f.host.empty()) about += ", " + f.host;
        if (!f.date.empty()) about += ", " + f.date;
        for (const std::string& device : f.devices) {
            Run run;
            run.name = file_name + ": " + device;
            run.file = f.path;
            run.device = device;
            run.about = about;
            for (const BenchResult& r : f.results) {
                if (r.device != device) continue;
                if (seen.insert(r.workload).second) c.workloads.push_back(r.workload);
                if (!r.error.empty() || r.samples_ms.empty()) {
                    if (!run.best.count(r.workload) && !run.failed.count(r.workload))
                        run.failed[r.workload] = r.error.empty() ? "no samples" : "error";
                    continue;
                }
                const auto it = run.best.find(r.workload);
                if (it != run.best.end() && it->second.median_ms <= r.median_ms) continue;
                Best best;
                best.how = r.path.empty()      ? r.variant
                           : r.variant.empty() ? r.path
                                               : r.path + " " + r.variant;
                best.median_ms = r.median_ms;
                best.samples_ms = r.samples_ms;
                best.ops = r.ops;
                best.bytes = r.bytes;
                run.best[r.workload] = std::move(best);
                run.failed.erase(r.workload);
            }
            c.runs.push_back(std::move(run));
        }
    }
    return c;
}

Result<Comparison> load_comparison(const std::vector<std::string>& paths) {
    if (paths.size() < 2)
        return Error{ErrorCode::invalid_input,
                     "compare needs at least two files (got " + std::to_string(paths.size()) + ")"};
    std::vector<BenchFile> files;
    for (const std::string& path : paths) {
        auto file = load_bench_file(path);
        if (!file) return file.error();
        if (file->results.empty()) return file_error(path, "has no results");
        files.push_back(std::move(*file));
    }
    return build_comparison(files);
}

const char* unit_name(Unit unit) {
    switch (unit) {
    case Unit::tops:
        return "TOPS";
    case Unit::gbps:
        return "GB/s";
    case Unit::none:
        break;
    }
    return "";
}

Unit unit_of(const std::string& workload, const Best& best) {
    if (workload.rfind("matmul", 0) == 0) return best.ops > 0 ? Unit::tops : Unit::none;
    return best.bytes > 0 ? Unit::gbps : Unit::none;
}

std::optional<double> throughput(const Best& best, Unit unit) {
    if (best.median_ms <= 0) return std::nullopt;
    if (unit == Unit::tops && best.ops > 0) return best.ops / best.median_ms / 1e9;
    if (unit == Unit::gbps && best.bytes > 0) return best.bytes / best.median_ms / 1e6;
    return std::nullopt;
}

MannWhitney mann_whitney(const std::vector<double>& a, const std::vector<double>& b) {
    MannWhitney result;
    const double n1 = double(a.size()), n2 = double(b.size()), n = n1 + n2;
    if (a.empty() || b.empty()) return result;
    std::vector<std::pair<double, bool>> all; // value, from a
    for (double v : a)
        all.emplace_back(v, true);
    for (double v : b)
        all.emplace_back(v, false);
    std::sort(all.begin(), all.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    double rank_sum_a = 0, tie_term = 0; // tie_term: sum of t^3 - t over groups of t equal values
    for (std::size_t i = 0; i < all.size();) {
        std::size_t j = i;
        while (j + 1 < all.size() && all[j + 1].first == all[i].first)
            ++j;
        const double rank = (double(i) + double(j)) / 2 + 1; // the tie group's average rank
        for (std::size_t k = i; k <= j; ++k)
            if (all[k].second) rank_sum_a += rank;
        const double t = double(j - i + 1);
        tie_term += t * t * t - t;
        i = j + 1;
    }
    result.u = rank_sum_a - n1 * (n1 + 1) / 2;
    const double mean = n1 * n2 / 2;
    const double variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)));
    if (!(variance > 0)) return result; // every sample equal
    const double sigma = std::sqrt(variance);
    result.z = (result.u - mean) / sigma;
    const double corrected = std::max(0.0, std::abs(result.u - mean) - 0.5);
    result.p = std::min(1.0, std::erfc(corrected / sigma / std::sqrt(2.0)));
    return result;
}

double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b) {
    return mann_whitney(a, b).p;
}

const char* verdict_name(Verdict verdict) {
    switch (verdict) {
    case Verdict::faster:
        return "faster";
    case Verdict::slower:
        return "slower";
    case Verdict::no_clear_difference:
        return "no clear difference";
    case Verdict::too_few_samples:
        return "no clear difference (too few samples)";
    }
    return "";
}

Judgement judge(const Best& first, const Best& other, const CompareOptions& options) {
    Judgement j;
    if (other.median_ms > 0) j.ratio = first.median_ms / other.median_ms;
    if (first.samples_ms.size() < min_samples || other.samples_ms.size() < min_samples) {
        j.verdict = Verdict::too_few_samples;
        return j;
    }
    const MannWhitney test = mann_whitney(first.samples_ms, other.samples_ms);
    j.p = test.p;
    if (test.p >= options.alpha)
        j.verdict = Verdict::no_clear_difference;
    else // run 1's times tend to be larger: run k is faster
        j.verdict = test.z > 0 ? Verdict::faster : Verdict::slower;
    return j;
}

std::string format_ms(double ms) {
    if (ms >= 1000) return printf_text("%.0f", ms);
    if (ms >= 100) return printf_text("%.1f", ms);
    return printf_text("%.4g", ms);
}

std::string format_throughput(double value) {
    if (value >= 1000) return printf_text("%.0f", value);
    if (value >= 1) return printf_text("%.1f", value);
    return printf_text("%.3g", value);
}

std::string format_table(const Comparison& c, const CompareOptions& options) {
    std::ostringstream out;
    const std::size_t runs = c.runs.size();
    out << "pxbench compare: " << runs << " runs, " << c.workloads.size() << " workloads\n";
    for (std::size_t k = 0; k < runs; ++k)
        out << "run " << k + 1 << ": " << c.runs[k].name << " (" << c.runs[k].about << ")\n";
    out << "\n";

    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> header{"workload"};
    for (std::size_t k = 0; k < runs; ++k)
        header.push_back("run " + std::to_string(k + 1));
    for (std::size_t k = 1; k < runs; ++k)
        header.push_back("run " + std::to_string(k + 1) + " vs run 1");
    rows.push_back(header);
    for (const std::string& w : c.workloads) {
        std::vector<std::string> row{w};
        std::vector<const Best*> best(runs, nullptr);
        for (std::size_t k = 0; k < runs; ++k) {
            const Run& run = c.runs[k];
            if (const auto it = run.best.find(w); it != run.best.end()) {
                best[k] = &it->second;
                const Best& b = it->second;
                std::string cell = format_ms(b.median_ms) + " ms";
                const Unit unit = unit_of(w, b);
                if (const auto value = throughput(b, unit))
                    cell += ", " + format_throughput(*value) + " " + unit_name(unit);
                if (!b.how.empty()) cell += " (" + b.how + ")";
                row.push_back(cell);
            } else if (const auto failed = run.failed.find(w); failed != run.failed.end()) {
                row.push_back("failed (" + failed->second + ")");
            } else {
                row.push_back("-");
            }
        }
        for (std::size_t k = 1; k < runs; ++k) {
            if (!best[0] || !best[k]) {
                row.push_back("-");
                continue;
            }
            const Judgement j = judge(*best[0], *best[k], options);
            std::string cell = verdict_name(j.verdict);
            if (j.ratio > 0) cell += ", " + format_ratio(j.ratio);
            if (j.verdict != Verdict::too_few_samples)
                cell += " (p = " + printf_text("%.2g", j.p) + ")";
            row.push_back(cell);
        }
        rows.push_back(row);
    }
    std::vector<std::size_t> width(header.size(), 3);
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i)
            width[i] = std::max(width[i], row[i].size());
    for (std::size_t r = 0; r < rows.size(); ++r) {
        out << "|";
        for (std::size_t i = 0; i < rows[r].size(); ++i)
            out << " " << pad(rows[r][i], width[i]) << " |";
        out << "\n";
        if (r == 0) {
            out << "|";
            for (std::size_t i = 0; i < header.size(); ++i)
                out << std::string(width[i] + 2, '-') << "|";
            out << "\n";
        }
    }
    out << "\nEach cell: the run's lowest median GPU time among its paths and variants (failed "
           "results and results without samples skipped), TOPS = ops / ms / 1e9 for matmul, else "
           "GB/s = bytes / ms / 1e6; -: not in that run.\n";
    out << "Test: two-sided Mann-Whitney U on the two runs' samples (normal approximation, "
           "tie-corrected, continuity-corrected); faster or slower when p < "
        << printf_text("%g", options.alpha) << ", else no clear difference; fewer than "
        << min_samples << " samples on a side: no clear difference (too few samples). Ratio: "
        << "run 1 median / run k median (> 1: run k is faster).\n";
    return out.str();
}

Result<std::string> compare_files(const std::vector<std::string>& paths,
                                  const CompareOptions& options) {
    auto comparison = load_comparison(paths);
    if (!comparison) return comparison.error();
    return format_table(*comparison, options);
}

} // namespace px::bench
