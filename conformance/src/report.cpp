// Reports of a conformance run: the terminal summary with its final "N passed, N failed,
// N skipped" line, the agreement matrix, JUnit XML, JSON, and the bundle a vendor submits.
#include "pxvm/conformance.hpp"
#include "pxvm/version.hpp"
#include "pxvm/xml.hpp"
#include "suite_internal.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <sstream>

namespace px::conformance {
namespace {

namespace fs = std::filesystem;

std::string now_utc() {
    const std::time_t t = std::time(nullptr);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return text;
}

/// results[case][executor], or nullptr.
std::vector<std::vector<const CaseResult*>> by_case(const Suite& suite, const SuiteRun& run) {
    std::vector<std::vector<const CaseResult*>> table(
        suite.cases.size(), std::vector<const CaseResult*>(run.executors.size(), nullptr));
    for (const CaseResult& r : run.results)
        table[r.case_index][r.executor_index] = &r;
    return table;
}

} // namespace

std::string version_text() {
    return std::string(PXVM_VERSION) + " (git " + PXVM_GIT_DESCRIBE + ")";
}

std::string agreement_text(const Suite& suite, const SuiteRun& run) {
    const auto table = by_case(suite, run);
    const std::size_t n = run.executors.size();
    std::ostringstream out;
    out << "agreement matrix: cases with identical pixels and status / cases both ran\n";
    for (std::size_t i = 0; i < n; ++i)
        out << "  [" << char('A' + i % 26) << "] " << run.executors[i].name << "\n";
    out << "      ";
    for (std::size_t j = 0; j < n; ++j)
        out << "  " << char('A' + j % 26) << "      ";
    out << "\n";
    // Groups of executors that agree on every case both ran (and ran at least one in common).
    std::vector<int> group(n, -1);
    int groups = 0;
    for (std::size_t i = 0; i < n; ++i) {
        out << "  [" << char('A' + i % 26) << "] ";
        for (std::size_t j = 0; j < n; ++j) {
            std::size_t both = 0, same = 0;
            for (const auto& row : table)
                if (row[i] && row[j] && row[i]->result_hash && row[j]->result_hash) {
                    ++both;
                    same += *row[i]->result_hash == *row[j]->result_hash;
                }
            char cell[16];
            std::snprintf(cell, sizeof cell, "%4zu/%-4zu", same, both);
            out << cell;
            if (j < i && group[i] < 0 && both > 0 && same == both && group[j] >= 0)
                group[i] = group[j];
        }
        if (group[i] < 0) group[i] = groups++;
        out << "\n";
    }
    for (int g = 0; g < groups; ++g) {
        std::string members;
        for (std::size_t i = 0; i < n; ++i)
            if (group[i] == g) members += (members.empty() ? "" : ", ") + run.executors[i].name;
        out << (groups == 1 ? "  every executor agrees on every case: " : "  agree: ") << members
            << "\n";
    }
    if (groups > 1) // where they part: the first case on which groups differ
        for (std::size_t ci = 0; ci < table.size(); ++ci) {
            std::map<std::uint64_t, std::string> seen;
            for (std::size_t i = 0; i < n; ++i)
                if (table[ci][i] && table[ci][i]->result_hash)
                    seen[*table[ci][i]->result_hash] +=
                        (seen[*table[ci][i]->result_hash].empty() ? "" : ", ") +
                        run.executors[i].name;
            if (seen.size() > 1) {
                out << "  they part first at case " << suite.cases[ci].name << ":";
                for (const auto& [hash, names] : seen)
                    out << " {" << names << "}";
                out << "\n";
                break;
            }
        }
    return out.str();
}

std::string summary_text(const Suite& suite, const SuiteRun& run) {
    std::ostringstream out;
    for (const CaseResult& r : run.results) {
        if (r.outcome != Outcome::fail && !r.stale_expectation) continue;
        out << (r.stale_expectation ? "STALE " : "FAIL ") << suite.cases[r.case_index].name
            << " on " << run.executors[r.executor_index].name << ": " << r.detail << "\n";
        if (!r.artifacts.empty()) out << "  actual.png and diff.png in " << r.artifacts << "\n";
    }
    if (!run.validation.empty()) out << "FAIL validation layer: " << run.validation << "\n";
    if (run.executors.size() > 1) out << agreement_text(suite, run);
    if (run.expected_failures)
        out << run.expected_failures
            << " expected failures (negative cases and known failures), not counted below\n";
    out << run.passed << " passed, " << run.failed + (run.validation.empty() ? 0 : 1) << " failed, "
        << run.skipped << " skipped\n";
    return out.str();
}

std::string junit_xml(const Suite& suite, const SuiteRun& run) {
    const auto table = by_case(suite, run);
    std::ostringstream out;
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"pxconform\" tests=\""
        << run.results.size() << "\" failures=\"" << run.failed << "\" skipped=\"" << run.skipped
        << "\">\n";
    for (std::size_t ei = 0; ei < run.executors.size(); ++ei) {
        std::size_t failures = 0, skipped = 0, tests = 0;
        for (const auto& row : table)
            if (row[ei]) {
                ++tests;
                failures += row[ei]->outcome == Outcome::fail;
                skipped += row[ei]->outcome == Outcome::skipped;
            }
        out << "  <testsuite name=\"" << px::xml_escape(run.executors[ei].name) << "\" tests=\""
            << tests << "\" failures=\"" << failures << "\" skipped=\"" << skipped << "\">\n";
        for (std::size_t ci = 0; ci < table.size(); ++ci) {
            const CaseResult* r = table[ci][ei];
            if (!r) continue;
            out << "    <testcase classname=\"" << px::xml_escape(run.executors[ei].name)
                << "\" name=\"" << px::xml_escape(suite.cases[ci].name) << "\" time=\""
                << r->ms / 1000 << "\"";
            if (r->outcome == Outcome::fail)
                out << ">\n      <failure message=\"" << px::xml_escape(r->detail)
                    << "\"/>\n    </testcase>\n";
            else if (r->outcome == Outcome::skipped)
                out << ">\n      <skipped message=\"" << px::xml_escape(r->detail)
                    << "\"/>\n    </testcase>\n";
            else if (!r->detail.empty())
                out << ">\n      <system-out>" << px::xml_escape(r->detail)
                    << "</system-out>\n    </testcase>\n";
            else
                out << "/>\n";
        }
        out << "  </testsuite>\n";
    }
    out << "</testsuites>\n";
    return out.str();
}

std::string json_report(const Suite& suite, const SuiteRun& run) {
    nlohmann::json executors = nlohmann::json::array();
    for (const Executor& e : run.executors)
        executors.push_back({{"name", e.name},
                             {"device", e.device},
                             {"device_index", e.device_index ? nlohmann::json(*e.device_index)
                                                             : nlohmann::json(nullptr)},
                             {"path", e.path},
                             {"variant", e.variant}});
    nlohmann::json devices = nlohmann::json::array();
    for (const DeviceFingerprint& d : run.devices)
        devices.push_back({{"index", d.index},
                           {"name", d.name},
                           {"vendor_id", d.vendor_id},
                           {"device_id", d.device_id},
                           {"driver", d.driver},
                           {"driver_name", d.driver_name},
                           {"driver_info", d.driver_info},
                           {"api", d.api},
                           {"pipeline_cache_uuid", d.pipeline_cache_uuid}});
    nlohmann::json results = nlohmann::json::array();
    for (const CaseResult& r : run.results)
        results.push_back({{"case", suite.cases[r.case_index].name},
                           {"executor", run.executors[r.executor_index].name},
                           {"outcome", to_string(r.outcome)},
                           {"detail", r.detail},
                           {"stale_expectation", r.stale_expectation},
                           {"result_hash", r.result_hash ? hex64(*r.result_hash) : ""},
                           {"artifacts", r.artifacts},
                           {"ms", r.ms}});
    nlohmann::json cases = nlohmann::json::array();
    for (const Case& c : suite.cases)
        cases.push_back({{"name", c.name}, {"covers", c.covers}, {"negative", c.expect_mismatch}});
    const nlohmann::json doc = {
        {"schema", 1},
        {"tool", "pxconform"},
        {"pxvm", version_text()},
        {"git", PXVM_GIT_DESCRIBE},
        {"git_dirty", PXVM_GIT_DIRTY},
        {"date", now_utc()},
        {"suite", {{"root", suite.root}, {"hash", "xxh3-64:" + suite.hash}, {"cases", cases}}},
        {"devices", devices},
        {"executors", executors},
        {"results", results},
        {"validation", run.validation},
        {"summary",
         {{"passed", run.passed},
          {"failed", run.failed},
          {"skipped", run.skipped},
          {"expected_failures", run.expected_failures}}},
        {"agreement", agreement_text(suite, run)}};
    return doc.dump(2) + "\n";
}

Result<void> write_bundle(const Suite& suite, const SuiteRun& run, const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        return Error{ErrorCode::invalid_input,
                     dir + ": cannot create the bundle directory: " + ec.message()};
    const auto write = [&](const std::string& name, const std::string& text) {
        return write_file_atomic((fs::path(dir) / name).string(), std::string_view(text));
    };
    if (auto r = write("pxconform.json", json_report(suite, run)); !r) return r;
    if (auto r = write("pxconform.junit.xml", junit_xml(suite, run)); !r) return r;
    nlohmann::json fingerprint = nlohmann::json::parse(json_report(suite, run));
    const nlohmann::json short_form = {{"pxvm", fingerprint["pxvm"]},
                                       {"git", fingerprint["git"]},
                                       {"git_dirty", fingerprint["git_dirty"]},
                                       {"suite_hash", fingerprint["suite"]["hash"]},
                                       {"devices", fingerprint["devices"]}};
    if (auto r = write("fingerprint.json", short_form.dump(2) + "\n"); !r) return r;
    if (auto r = write("summary.txt", summary_text(suite, run)); !r) return r;
    return {};
}

} // namespace px::conformance
