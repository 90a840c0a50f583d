// Private to pxVM's libraries: the one way to parse JSON from a file pxVM does not trust
// (cartridge manifests, safetensors headers, conformance case files, pxbench compare inputs), and
// excerpts that keep untrusted text out of messages at any length. nlohmann-json parses without
// recursion, but dumping, copying or comparing a value recurses once per level, so a value nested
// 10^5 levels deep overflows the stack later: the depth is refused first, by a linear scan.
#pragma once

#include "pxvm/result.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace px {

/// The deepest nesting of arrays and objects an untrusted JSON text may have (pxVM's own files
/// need at most 4).
inline constexpr std::size_t MAX_JSON_DEPTH = 64;

/// Parses `text`. Refuses invalid JSON, nesting deeper than MAX_JSON_DEPTH and numbers outside
/// the range of a double (1e999). The error says why, without the file's name ("parse error at
/// line 1, column 3: ...", "nested deeper than 64 levels of arrays and objects", "number
/// overflow parsing '1e999'"), and quotes at most a few dozen characters of the text.
Result<nlohmann::json> parse_untrusted_json(std::string_view text);

/// Untrusted text for a message: at most `limit` bytes (cut at a UTF-8 character boundary, then
/// "..."), control characters escaped ("\n", "\x1b").
std::string excerpt(std::string_view text, std::size_t limit = 40);
/// A parsed JSON value for a message: its compact text, cut as excerpt() cuts.
std::string json_excerpt(const nlohmann::json& value, std::size_t limit = 40);

} // namespace px
