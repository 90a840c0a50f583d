// A private temporary directory for a test, removed by the destructor (CTest may run cases in
// parallel, so each gets its own name).
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>

namespace pxtest {

class TempDir {
public:
    explicit TempDir(const std::string& name)
        : dir_(std::filesystem::temp_directory_path() /
               ("pxvm_" + name + "_" + std::to_string(std::random_device{}()))) {
        std::filesystem::create_directories(dir_);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    /// The path of `name` inside the directory.
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    /// Writes `text` to `name` inside the directory; returns its path.
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(dir_ / name, std::ios::binary) << text;
        return path(name);
    }

private:
    std::filesystem::path dir_;
};

} // namespace pxtest
