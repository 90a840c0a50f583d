// Parsing untrusted JSON with a depth limit, and excerpts of untrusted text for messages.
#include "untrusted_json.hpp"

#include <algorithm>
#include <cstdio>
#include <new>

namespace px {

namespace {

// The deepest nesting of arrays and objects in `text`, counted up to `limit + 1`. Exact for valid
// JSON (brackets inside strings are skipped), which is all the parser accepts after it. A scan
// rather than the parser's callback: nlohmann's callback parser searches the enclosing container
// for discarded values at the end of every object, which is quadratic in a long array.
std::size_t nesting_depth(std::string_view text, std::size_t limit) {
    std::size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i; // the escaped character cannot end the string
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit) return deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

} // namespace

Result<nlohmann::json> parse_untrusted_json(std::string_view text) {
    using nlohmann::json;
    if (nesting_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
        return Error{ErrorCode::invalid_input, "nested deeper than " +
                                                   std::to_string(MAX_JSON_DEPTH) +
                                                   " levels of arrays and objects"};
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        // "[json.exception.parse_error.101] parse error at line 1, column 2: ...": the id is for
        // programmers; what follows may quote the text ("last read: '...'"), so it is cut.
        std::string what = e.what();
        if (const auto end = what.find("] ");
            what.starts_with("[json.exception") && end != std::string::npos)
            what = what.substr(end + 2);
        return Error{ErrorCode::invalid_input, excerpt(what, 160)};
    } catch (const std::bad_alloc&) {
        return Error{ErrorCode::out_of_memory, "out of memory while parsing JSON"};
    }
}

std::string excerpt(std::string_view text, std::size_t limit) {
    std::size_t end = text.size();
    if (end > limit) {
        end = limit;
        while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
            --end; // not inside a UTF-8 character
    }
    std::string out;
    for (const char c : text.substr(0, end)) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (byte < 0x20 || byte == 0x7F) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
            out += escaped;
        } else {
            out += c;
        }
    }
    if (end < text.size()) out += "...";
    return out;
}

std::string json_excerpt(const nlohmann::json& value, std::size_t limit) {
    return excerpt(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), limit);
}

} // namespace px
