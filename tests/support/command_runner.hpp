// Runs one of the project's command-line tools from a test and captures its exit code, standard
// output and standard error, in a private temporary directory that the tests can also use.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace pxtest {

/// What a command printed and how it exited (-1 when it did not exit normally).
struct CommandResult {
    int exit_code = -1;
    std::string out, err;
};

inline std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

/// Where the command-line tools are: $PXVM_TOOL_DIR when set (runs of copied binaries on another
/// machine), else the build tree's cli/ directory (benchmarks/ for pxbench).
inline std::filesystem::path tool_path(const std::string& tool) {
    if (const char* dir = std::getenv("PXVM_TOOL_DIR"); dir && *dir)
        return std::filesystem::path(dir) / tool;
    return std::filesystem::path(PXVM_BINARY_DIR) / (tool == "pxbench" ? "benchmarks" : "cli") /
           tool;
}

/// Runs PXVM_BINARY_DIR/cli/<tool> with shell-quoted-free arguments inside a fresh temp
/// directory `dir()`, removed again by the destructor.
class CommandRunner {
public:
    CommandRunner(std::filesystem::path tool, const std::string& name)
        : tool_(std::move(tool)),
          dir_(std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
        std::filesystem::create_directories(dir_);
    }
    ~CommandRunner() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    CommandRunner(const CommandRunner&) = delete;
    CommandRunner& operator=(const CommandRunner&) = delete;

    bool tool_exists() const { return std::filesystem::exists(tool_); }
    const std::filesystem::path& dir() const { return dir_; }

    CommandResult run(const std::string& arguments, const std::string& environment = "") const {
        const std::string command = environment + " " + tool_.string() + " " + arguments + " >" +
                                    (dir_ / "stdout").string() + " 2>" +
                                    (dir_ / "stderr").string() + " </dev/null";
        const int status = std::system(command.c_str());
        return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(dir_ / "stdout"),
                read_text(dir_ / "stderr")};
    }

private:
    std::filesystem::path tool_;
    std::filesystem::path dir_;
};

} // namespace pxtest
