// Parsing untrusted JSON with a depth limit, and excerpts of untrusted text for messages.
#include "untrusted_json.hpp"

#include <cstdio>

namespace px {

Result<nlohmann::json> parse_untrusted_json(std::string_view text) {
    using nlohmann::json;
    // The parser calls back at every value; a container that would open below the limit is
    // dropped unparsed (keeping nothing of it), and the whole text is refused below.
    bool too_deep = false;
    const json::parser_callback_t limit_depth = [&](int depth, json::parse_event_t event, json&) {
        if ((event == json::parse_event_t::object_start ||
             event == json::parse_event_t::array_start) &&
            std::size_t(depth) >= MAX_JSON_DEPTH) {
            too_deep = true;
            return false;
        }
        return true;
    };
    try {
        json value = json::parse(text, limit_depth);
        if (too_deep)
            return Error{"nested deeper than " + std::to_string(MAX_JSON_DEPTH) +
                             " levels of arrays and objects",
                         ErrorCode::invalid_input};
        return value;
    } catch (const json::exception& e) {
        // "[json.exception.parse_error.101] parse error at line 1, column 2: ...": the id is for
        // programmers; what follows may quote the text ("last read: '...'"), so it is cut.
        std::string what = e.what();
        if (const auto end = what.find("] ");
            what.starts_with("[json.exception") && end != std::string::npos)
            what = what.substr(end + 2);
        return Error{excerpt(what, 160), ErrorCode::invalid_input};
    } catch (const std::bad_alloc&) {
        return Error{"out of memory while parsing JSON", ErrorCode::out_of_memory};
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
