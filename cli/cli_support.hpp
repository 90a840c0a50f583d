// What every pxVM command line shares: --version, and misuse (an unknown flag, a missing or bad
// argument) exiting with status 1 as the tools' help says, not with CLI11's own codes.
#pragma once

#include "pxvm/image.hpp"
#include "pxvm/version.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

namespace pxcli {

/// Adds --version, printing "<tool> 0.1.0 (git 4a33d2c)".
inline void add_version(CLI::App& app, const std::string& tool) {
    app.set_version_flag("--version",
                         tool + " " + PXVM_VERSION + " (git " + PXVM_GIT_DESCRIBE + ")");
}

/// A number from `min` to `max`. CLI::Range lets NaN through (it compares false with both ends);
/// this refuses it, and infinities outside the range.
inline CLI::Validator number_in_range(double min, double max) {
    const std::string range = CLI::detail::to_string(min) + " to " + CLI::detail::to_string(max);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            double value = 0;
            if (!CLI::detail::lexical_cast(text, value) || !(value >= min && value <= max))
                return "Value " + text + " is not a number from " + range;
            return {};
        },
        "NUMBER in " + range);
}

/// Whether writing `output` (the value of `flag`) would replace `input`: the same file, however
/// named (px::same_file). If so, says so on standard error; the caller exits 1.
inline bool overwrites_input(const std::string& tool, const std::string& flag,
                             const std::string& output, const std::string& input) {
    if (output.empty() || input.empty() || !px::same_file(output, input)) return false;
    std::cerr << tool << ": " << flag << " " << output << " is the input " << input
              << ": an input is never overwritten; write the output elsewhere\n";
    return true;
}

} // namespace pxcli

/// Parses the command line; on --help or --version prints and returns 0 from main, on misuse
/// prints the error and returns 1.
#define PXCLI_PARSE(app, argc, argv)                                                               \
    do {                                                                                           \
        try {                                                                                      \
            (app).parse((argc), (argv));                                                           \
        } catch (const CLI::ParseError& e) {                                                       \
            return (app).exit(e) == 0 ? 0 : 1;                                                     \
        }                                                                                          \
    } while (false)
