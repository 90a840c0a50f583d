// Malformed inputs: every file listed in tests/malformed/EXPECTED.txt must make px::load_png fail
// with a message that names the file and contains the listed substring; every file in that
// directory (but the generator and the manifest) must be listed.
#include "pxvm/image.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path malformed_dir = fs::path(PXVM_SOURCE_DIR) / "tests" / "malformed";

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string::npos) return "";
    const auto last = s.find_last_not_of(" \t\r");
    return s.substr(first, last - first + 1);
}

// The manifest's (file, substring) pairs; '#' starts a comment line.
std::vector<std::pair<std::string, std::string>> manifest() {
    std::ifstream in(malformed_dir / "EXPECTED.txt");
    REQUIRE(in);
    std::vector<std::pair<std::string, std::string>> entries;
    std::string line;
    while (std::getline(in, line)) {
        if (trim(line).empty() || trim(line)[0] == '#') continue;
        const auto bar = line.find('|');
        REQUIRE(bar != std::string::npos);
        entries.emplace_back(trim(line.substr(0, bar)), trim(line.substr(bar + 1)));
        REQUIRE_FALSE(entries.back().first.empty());
        REQUIRE_FALSE(entries.back().second.empty());
    }
    return entries;
}

} // namespace

TEST_CASE("malformed inputs give a clear error naming the file", "[malformed]") {
    const auto entries = manifest();
    REQUIRE(entries.size() >= 14);
    for (const auto& [name, expected] : entries) {
        const std::string path = (malformed_dir / name).string();
        const px::Result<px::Image> result = px::load_png(path);
        INFO(name);
        REQUIRE_FALSE(result.ok());
        INFO("message: " << result.error().message);
        REQUIRE_THAT(result.error().message, Catch::StartsWith(path + ": "));
        REQUIRE_THAT(result.error().message, Catch::Contains(expected));
    }
}

TEST_CASE("every file in tests/malformed is listed in the manifest", "[malformed]") {
    std::set<std::string> listed;
    for (const auto& entry : manifest())
        listed.insert(entry.first);
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(malformed_dir)) {
        const std::string name = entry.path().filename().string();
        if (name == "EXPECTED.txt" || name == "make_malformed.py") continue;
        INFO(name);
        REQUIRE(listed.count(name) == 1);
        ++files;
    }
    REQUIRE(files + 1 == listed.size()); // does_not_exist.png is listed but absent
    REQUIRE_FALSE(fs::exists(malformed_dir / "does_not_exist.png"));
}

TEST_CASE("a directory is not a PNG", "[malformed]") {
    const px::Result<px::Image> result = px::load_png(malformed_dir.string());
    REQUIRE_FALSE(result.ok());
    REQUIRE_THAT(result.error().message, Catch::StartsWith(malformed_dir.string() + ": "));
    REQUIRE_THAT(result.error().message, Catch::Contains("Is a directory"));
}
