// XML text escaping for the reports pxVM writes (JUnit, SVG charts).
#pragma once

#include <string>
#include <string_view>

namespace px {

/// `text` with & < > " ' as entities and control characters other than tab and newline as
/// spaces (XML 1.0 allows none of them), so it fits element text and attribute values.
inline std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char ch : text) {
        switch (ch) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        default:
            out += (static_cast<unsigned char>(ch) < 0x20 && ch != '\n' && ch != '\t') ? ' ' : ch;
        }
    }
    return out;
}

} // namespace px
