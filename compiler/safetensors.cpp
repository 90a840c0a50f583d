// safetensors: header length, JSON header, data; offsets relative to the data, tensors packed
// without gaps or overlaps (checked here, as the format requires).
#include "pxvm/safetensors.hpp"

#include "pxvm/image.hpp"
#include "untrusted_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace px {

Result<Safetensors> parse_safetensors(std::span<const std::uint8_t> bytes,
                                      const std::string& name) {
    auto bad = [&](const std::string& why) {
        return Error{ErrorCode::invalid_input, name + ": not a valid safetensors file: " + why};
    };
    if (bytes.size() < 8) return bad("shorter than its 8-byte header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
        n = n << 8 | bytes[std::size_t(i)];
    if (n > MAX_SAFETENSORS_HEADER)
        return bad("header of " + std::to_string(n) + " bytes (at most 100 MB)");
    if (n > bytes.size() - 8)
        return bad("header of " + std::to_string(n) + " bytes in a " +
                   std::to_string(bytes.size()) + "-byte file");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), std::size_t(n));
    auto parsed = parse_untrusted_json(text);
    if (!parsed) return bad("the header is not a JSON object: " + parsed.error().message);
    const nlohmann::json& header = *parsed;
    if (!header.is_object()) return bad("the header is not a JSON object");
    const std::uint64_t data_size = bytes.size() - 8 - n;
    const std::uint8_t* data = bytes.data() + 8 + n;

    Safetensors out;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") {
            if (!value.is_object()) return bad("__metadata__ is not an object");
            for (const auto& [k, v] : value.items()) {
                if (!v.is_string())
                    return bad("__metadata__ value '" + excerpt(k) + "' is not a string");
                out.metadata[k] = v.get<std::string>();
            }
            continue;
        }
        if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
            !value.contains("data_offsets"))
            return bad("tensor '" + excerpt(key) + "' lacks dtype, shape or data_offsets");
        const auto& dtype = value["dtype"];
        if (!dtype.is_string())
            return bad("tensor '" + excerpt(key) + "' has a dtype that is not a string");
        const std::string type = dtype.get<std::string>();
        if (type != "F32" && type != "I8" && type != "I32")
            return Error{ErrorCode::invalid_input,
                         name + ": tensor '" + excerpt(key) + "' is " + excerpt(type) +
                             "; pxc pack reads F32 weights (export with .float()), or the I8 and "
                             "I32 tensors of an integer model"};
        const std::uint64_t size = type == "I8" ? 1 : 4;
        FloatTensor t;
        t.dtype = type;
        std::uint64_t count = 1;
        if (!value["shape"].is_array())
            return bad("tensor '" + excerpt(key) + "' shape is not a list");
        for (const auto& d : value["shape"]) {
            if (!d.is_number_unsigned())
                return bad("tensor '" + excerpt(key) + "' has a bad dimension");
            const std::uint64_t v = d.get<std::uint64_t>();
            if (v != 0 && count > (std::uint64_t(1) << 40) / v)
                return bad("tensor '" + excerpt(key) + "' is too large");
            count *= v;
            t.shape.push_back(v);
        }
        const auto& offsets = value["data_offsets"];
        if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
            !offsets[1].is_number_unsigned())
            return bad("tensor '" + excerpt(key) + "' data_offsets is not two offsets");
        const std::uint64_t begin = offsets[0].get<std::uint64_t>(),
                            end = offsets[1].get<std::uint64_t>();
        if (begin > end || end > data_size)
            return bad("tensor '" + excerpt(key) + "' bytes " + std::to_string(begin) + "-" +
                       std::to_string(end) + " lie outside the " + std::to_string(data_size) +
                       "-byte data");
        if (end - begin != count * size)
            return bad("tensor '" + excerpt(key) + "' has " + std::to_string(end - begin) +
                       " bytes for " + std::to_string(count) + " " + type + " values");
        if (type == "F32") {
            t.values.resize(std::size_t(count));
            std::memcpy(t.values.data(), data + begin, std::size_t(end - begin)); // little-endian
        } else {
            t.integers.resize(std::size_t(count));
            for (std::size_t i = 0; i < count; ++i) {
                const std::uint8_t* p = data + begin + i * size;
                t.integers[i] =
                    size == 1 ? std::int8_t(p[0])
                              : std::int32_t(std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 |
                                             std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24);
            }
        }
        ranges.emplace_back(begin, end);
        out.tensors.emplace(key, std::move(t));
    }
    std::sort(ranges.begin(), ranges.end());
    std::uint64_t at = 0;
    for (const auto& [begin, end] : ranges) {
        if (begin != at) return bad("the tensors' bytes overlap or leave a gap");
        at = end;
    }
    if (at != data_size) return bad("bytes after the last tensor");
    return out;
}

Result<Safetensors> load_safetensors(const std::string& path) {
    auto bytes = read_file(path, std::uint64_t(4) << 30);
    if (!bytes) return bytes.error();
    return parse_safetensors(*bytes, path);
}

} // namespace px
