// Reading a conformance suite: discovering cases (NAME.pxi or NAME.pxs with NAME.golden.png),
// their NAME.json, the suite's expectations.json and its hash; loading programs; writing goldens
// from the reference interpreter.
#include "pxvm/assembler.hpp"
#include "pxvm/conformance.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "suite_internal.hpp"
#include "untrusted_json.hpp"

#include <nlohmann/json.hpp>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

namespace px::conformance {
namespace {

namespace fs = std::filesystem;

Result<std::string> read_text(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) return Error{ErrorCode::invalid_input, path.string() + ": cannot be read"};
    return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// Whether `path` exists. What the file system cannot tell (a symlink loop, a path too long) is an
// error naming the path, never an exception.
Result<bool> path_exists(const fs::path& path) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (status.type() == fs::file_type::none)
        return Error{ErrorCode::invalid_input, path.string() + ": cannot be read: " + ec.message()};
    return fs::exists(status);
}

std::optional<std::uint32_t> fault_from_name(const std::string& name) {
    for (std::uint32_t code = 1; code < FAULT_COUNT; ++code)
        if (fault_name(code) == name) return code;
    return std::nullopt;
}

Result<void> read_case_json(Case& c, const fs::path& path) {
    auto text = read_text(path);
    if (!text) return text.error();
    const std::string where = path.string() + ": ";
    auto parsed = parse_untrusted_json(*text);
    if (!parsed)
        return Error{ErrorCode::invalid_input,
                     where + "is not a JSON object: " + parsed.error().message};
    const nlohmann::json& j = *parsed;
    if (!j.is_object()) return Error{ErrorCode::invalid_input, where + "is not a JSON object"};
    for (const auto& [key, value] : j.items()) {
        if (key == "covers" && value.is_string()) {
            c.covers = value.get<std::string>();
        } else if (key == "expect" && value.is_string()) {
            const std::string expect = value.get<std::string>();
            if (expect != "pass" && expect != "mismatch")
                return Error{ErrorCode::invalid_input, where + "\"expect\" is '" + excerpt(expect) +
                                                           "'; it is 'pass' or 'mismatch'"};
            c.expect_mismatch = expect == "mismatch";
        } else if (key == "fault" && value.is_string()) {
            const auto code = fault_from_name(value.get<std::string>());
            if (!code)
                return Error{ErrorCode::invalid_input,
                             where + "\"fault\" '" + excerpt(value.get<std::string>()) +
                                 "' is not a fault name of docs/PROTOCOL.md (BAD_OPCODE ... "
                                 "TOKEN_RANGE)"};
            c.fault = code;
        } else if (key == "needs" && value.is_array()) {
            for (const auto& need : value) {
                if (!need.is_string() || !known_need(need.get<std::string>()))
                    return Error{ErrorCode::invalid_input,
                                 where + "\"needs\" holds " + json_excerpt(need) +
                                     "; known needs: " + known_needs_text()};
                c.needs.push_back(need.get<std::string>());
            }
        } else {
            return Error{ErrorCode::invalid_input,
                         where + "unknown or mistyped member \"" + excerpt(key) +
                             "\" (members: covers, expect, fault, needs)"};
        }
    }
    return {};
}

std::optional<std::uint32_t> number(const nlohmann::json& j) {
    if (j.is_number_unsigned()) return j.get<std::uint32_t>();
    if (j.is_string()) { // "0x10de"
        try {
            return std::uint32_t(std::stoul(j.get<std::string>(), nullptr, 0));
        } catch (...) {
            return std::nullopt;
        }
    }
    return std::nullopt;
}

Result<std::vector<KnownFailure>> read_expectations(const fs::path& path,
                                                    const std::set<std::string>& cases) {
    std::vector<KnownFailure> known;
    auto text = read_text(path);
    if (!text) return text.error();
    const std::string where = path.string() + ": ";
    auto parsed = parse_untrusted_json(*text);
    if (!parsed)
        return Error{ErrorCode::invalid_input,
                     where + "is not a JSON object: " + parsed.error().message};
    const nlohmann::json& j = *parsed;
    if (!j.is_object() || !j.contains("known_failures") || !j["known_failures"].is_array())
        return Error{ErrorCode::invalid_input,
                     where + "needs an object with a \"known_failures\" array"};
    for (const auto& e : j["known_failures"]) {
        KnownFailure k;
        const auto vendor = e.is_object() && e.contains("vendor_id")
                                ? number(e["vendor_id"])
                                : std::optional<std::uint32_t>();
        if (!vendor || !e.contains("case") || !e["case"].is_string() || !e.contains("reason") ||
            !e["reason"].is_string())
            return Error{
                ErrorCode::invalid_input,
                where + "every known failure needs vendor_id, case and reason: " + json_excerpt(e)};
        k.vendor_id = *vendor;
        if (e.contains("device_id")) k.device_id = number(e["device_id"]);
        for (const char* key : {"driver", "path", "variant"})
            if (e.contains(key) && !e[key].is_string())
                return Error{ErrorCode::invalid_input,
                             where + "a known failure's \"" + key + "\" is not a string"};
        k.driver_prefix = e.value("driver", "");
        k.case_name = e["case"].get<std::string>();
        k.path = e.value("path", "");
        k.variant = e.value("variant", "");
        k.reason = e["reason"].get<std::string>();
        if (!cases.count(k.case_name))
            return Error{ErrorCode::invalid_input, where + "known failure of case '" +
                                                       excerpt(k.case_name) +
                                                       "', which the suite does not have"};
        known.push_back(std::move(k));
    }
    return known;
}

} // namespace

std::string hex64(std::uint64_t value) {
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
    return text;
}

std::uint64_t hash_bytes(const void* data, std::size_t size, std::uint64_t seed) {
    return XXH3_64bits_withSeed(data, size, seed);
}

Result<Suite> load_suite(const std::string& root, bool programs_without_goldens) {
    std::error_code ec;
    if (!fs::is_directory(root, ec))
        return Error{ErrorCode::invalid_input,
                     root + ": no such suite directory (a suite is a directory of NAME.pxi or "
                            "NAME.pxs files with NAME.golden.png beside them)"};
    Suite suite;
    suite.root = root;
    std::vector<fs::path> files;
    // Links to folders are not followed (a link to a folder above would loop); a link to a file is
    // read through, and one that cannot be (a loop) is an error. A dangling link is no file.
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
        std::error_code status_ec;
        const fs::file_status status = it->status(status_ec);
        if (status.type() == fs::file_type::none)
            return Error{ErrorCode::invalid_input,
                         it->path().string() + ": cannot be read: " + status_ec.message()};
        if (fs::is_regular_file(status)) files.push_back(it->path());
    }
    if (ec) return Error{ErrorCode::invalid_input, root + ": cannot be listed: " + ec.message()};
    std::sort(files.begin(), files.end());

    // The suite's hash covers every file, path and bytes, so two runs name the same suite.
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    for (const fs::path& file : files) {
        const std::string relative = file.lexically_relative(root).generic_string();
        auto bytes = read_text(file);
        if (!bytes) {
            XXH3_freeState(state);
            return bytes.error();
        }
        XXH3_64bits_update(state, relative.data(), relative.size() + 1);
        XXH3_64bits_update(state, bytes->data(), bytes->size());
    }
    suite.hash = hex64(XXH3_64bits_digest(state));
    XXH3_freeState(state);

    std::map<std::string, Case> cases;
    for (const fs::path& file : files) {
        const std::string ext = file.extension().string();
        if (ext != ".pxi" && ext != ".pxs") continue;
        const fs::path stem = file.parent_path() / file.stem();
        const fs::path golden = stem.string() + ".golden.png";
        auto has_golden = path_exists(golden);
        if (!has_golden) return has_golden.error();
        if (!*has_golden && !programs_without_goldens) continue; // not a case
        const std::string name = stem.lexically_relative(root).generic_string();
        if (cases.count(name))
            return Error{ErrorCode::invalid_input,
                         file.string() + ": case " + name +
                             " has both a .pxi and a .pxs program; keep one"};
        Case c;
        c.name = name;
        c.program = file.string();
        c.golden = golden.string();
        const fs::path json = stem.string() + ".json";
        auto has_json = path_exists(json);
        if (!has_json) return has_json.error();
        if (*has_json)
            if (auto read = read_case_json(c, json); !read) return read.error();
        cases.emplace(name, std::move(c));
    }
    // A program with a .json but no golden is a case whose golden is missing: say so.
    for (const fs::path& file : files) {
        if (file.extension() != ".json" || file.filename() == "expectations.json") continue;
        const fs::path stem = file.parent_path() / file.stem();
        const std::string name = stem.lexically_relative(root).generic_string();
        if (cases.count(name)) continue;
        for (const char* ext : {".pxs", ".pxi"}) {
            auto has_program = path_exists(stem.string() + ext);
            if (!has_program) return has_program.error();
            if (*has_program) {
                Case c;
                c.name = name;
                c.program = stem.string() + ext;
                c.golden = stem.string() + ".golden.png";
                if (auto read = read_case_json(c, file); !read) return read.error();
                cases.emplace(name, std::move(c));
                break;
            }
        }
    }
    if (cases.empty())
        return Error{ErrorCode::invalid_input,
                     root + ": no cases (NAME.pxi or NAME.pxs with NAME.golden.png beside it)"};
    std::set<std::string> names;
    for (auto& [name, c] : cases) {
        names.insert(name);
        suite.cases.push_back(std::move(c));
    }
    const fs::path expectations = fs::path(root) / "expectations.json";
    auto has_expectations = path_exists(expectations);
    if (!has_expectations) return has_expectations.error();
    if (*has_expectations) {
        auto known = read_expectations(expectations, names);
        if (!known) return known.error();
        suite.known = std::move(known.value());
    }
    return suite;
}

Result<CaseProgram> load_case_program(const Case& c) {
    if (c.program.ends_with(".pxs")) {
        auto assembled = assemble_file(c.program);
        if (!assembled) return assembled.error();
        return CaseProgram{std::move(assembled->image), std::move(assembled->expectations)};
    }
    auto image = load_png(c.program);
    if (!image) return image.error();
    return CaseProgram{std::move(image.value()), {}};
}

Result<Image> load_program(const Case& c) {
    auto program = load_case_program(c);
    if (!program) return program.error();
    return std::move(program->image);
}

Result<std::vector<std::string>> update_goldens(const Suite& suite) {
    std::vector<std::string> lines;
    for (const Case& c : suite.cases) {
        if (c.expect_mismatch) {
            auto has_golden = path_exists(c.golden);
            if (!has_golden) return has_golden.error();
            if (!*has_golden)
                return Error{ErrorCode::invalid_input,
                             c.name + ": a negative case needs a deliberately wrong golden, " +
                                 c.golden + ", made by hand"};
            lines.push_back(c.name + ": kept (a negative case: its golden is wrong on purpose)");
            continue;
        }
        auto program = load_case_program(c);
        if (!program) return program.error();
        Image golden = std::move(program->image);
        const RunOutcome outcome = run_reference(golden);
        if (c.fault && outcome.fault.code != *c.fault)
            return Error{ErrorCode::invalid_input, c.name + ": the reference ends with fault " +
                                                       std::string(fault_name(outcome.fault.code)) +
                                                       ", but its .json expects " +
                                                       std::string(fault_name(*c.fault))};
        // A golden never records a result the case's hand-written expectations refuse.
        if (const std::string wrong =
                check_expectations(program->expectations, c.program, golden, outcome.fault.code,
                                   outcome.fault ? outcome.fault.pc : 0);
            !wrong.empty())
            return Error{ErrorCode::invalid_input,
                         c.name + ": the reference interpreter disagrees with the case: " + wrong};
        if (auto saved = save_png(golden, c.golden); !saved) return saved.error();
        lines.push_back(c.golden + ": written from the reference interpreter");
    }
    return lines;
}

} // namespace px::conformance
