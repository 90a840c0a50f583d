// Cartridge files: PNG with an iTXt manifest through libspng (which checks chunk CRCs and the
// zlib Adler-32), the manifest's JSON through nlohmann-json (with the depth limit of
// parse_untrusted_json), SHA-256 through nettle.
#include "pxvm/cartridge.hpp"

#include "pxvm/protocol.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/version.hpp"
#include "untrusted_json.hpp"

#include <nettle/sha2.h>
#include <nlohmann/json.hpp>
#include <spng.h>

#include <algorithm>
#include <bitset>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_set>

namespace px {
namespace {

using nlohmann::json;

// The manifest is text a person may read: a few MB at most even for a large vocabulary.
constexpr std::size_t MAX_MANIFEST_BYTES = 16u << 20;
// What libspng may hold of the chunks other than the pixels, decompressed text included: twice the
// manifest, because it inflates text into a buffer it doubles. Past it, it stops inflating.
constexpr std::size_t MAX_CHUNK_CACHE_BYTES = 2 * MAX_MANIFEST_BYTES + (1u << 20);
// The reference's operations in one run of a cartridge's program (one token of every window): a
// second or so on a desktop CPU. The shipped cartridge needs about 10^6.
constexpr std::uint64_t MAX_CARTRIDGE_STEP_WORK = 10'000'000'000;
constexpr std::size_t MAX_FILE_BYTES = std::size_t(2) << 30;

struct SpngFree {
    void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
};
using SpngContext = std::unique_ptr<spng_ctx, SpngFree>;

Error spng_error(const std::string& name, const char* what, int code) {
    return Error{ErrorCode::invalid_input, name + ": " + what + ": " + spng_strerror(code)};
}

std::string hex(std::span<const std::uint8_t> bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::uint8_t b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

// Byte length of the UTF-8 character starting with `lead`, 0 if it cannot start one.
std::size_t utf8_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead >> 5) == 0x6) return 2;
    if ((lead >> 4) == 0xE) return 3;
    if ((lead >> 3) == 0x1E) return 4;
    return 0;
}

std::string printable(std::string_view c) {
    if (c == "\n") return "'\\n' (newline)";
    if (c == "\t") return "'\\t' (tab)";
    if (c.size() == 1 && (unsigned char)c[0] < 0x20)
        return "byte " + std::to_string(int((unsigned char)c[0]));
    return "'" + excerpt(c) + "'";
}

// A region's pixel rectangle in 64 bits: a manifest's numbers are untrusted and may be near 2^32.
struct Rectangle {
    std::uint64_t x0, y0, x1, y1; // [x0, x1) x [y0, y1)
};

Rectangle rectangle_of(const Tensor& t) {
    const std::uint64_t width = (std::uint64_t(dtype_size(t.dtype)) * t.cols + 3) / 4;
    return {t.x, t.y, t.x + width, std::uint64_t(t.y) + t.rows};
}

// The regions' count, names, tensor ids and rectangles, which cost only their number to check:
// before anything costs the pixels times the regions.
Result<void> check_regions(const std::vector<CartridgeRegion>& regions) {
    const auto bad = [](const std::string& why) { return Error{ErrorCode::invalid_input, why}; };
    std::unordered_set<std::string_view> names;
    std::vector<const CartridgeRegion*> by_id(MAX_TENSORS);
    for (const CartridgeRegion& r : regions) {
        if (!names.insert(r.name).second)
            return bad("two regions are called '" + excerpt(r.name) + "'");
        if (const CartridgeRegion* other = by_id[r.id])
            return bad("regions '" + excerpt(other->name) + "' and '" + excerpt(r.name) +
                       "' are both tensor " + std::to_string(r.id));
        by_id[r.id] = &r;
    }
    for (std::size_t i = 0; i < regions.size(); ++i)
        for (std::size_t k = i + 1; k < regions.size(); ++k) {
            const Rectangle a = rectangle_of(regions[i].tensor);
            const Rectangle b = rectangle_of(regions[k].tensor);
            if (a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1)
                return bad("regions '" + excerpt(regions[i].name) + "' and '" +
                           excerpt(regions[k].name) + "' overlap");
        }
    return {};
}

json region_to_json(const CartridgeRegion& r) {
    json j = {{"name", r.name},        {"role", r.role},
              {"tensor", r.id},        {"dtype", std::string(dtype_name(r.tensor.dtype))},
              {"x", r.tensor.x},       {"y", r.tensor.y},
              {"rows", r.tensor.rows}, {"cols", r.tensor.cols}};
    if (r.scale != 0) {
        j["scale"] = r.scale;
        j["zero_point"] = r.zero_point;
    }
    return j;
}

// Checks the regions against the program row: each is a tensor the row declares, once, with the
// same rectangle and dtype; the program runs to its end without a static fault.
Result<void> check_program(const Image& image, const CartridgeManifest& m,
                           const std::string& name) {
    const Plan plan = plan_program(image);
    if (plan.fault)
        return Error{ErrorCode::invalid_input,
                     name + ": the program row has a static fault: " + describe(plan.fault, image)};
    ReferenceLimits step_limit;
    step_limit.max_work = MAX_CARTRIDGE_STEP_WORK;
    step_limit.limit_name = "a cartridge's limit for one step";
    if (auto fits = check_work(plan, reference_work(plan), step_limit); !fits)
        return Error{ErrorCode::invalid_input,
                     name + ": one step of generation: " + fits.error().message};
    std::map<std::uint32_t, std::vector<Tensor>> declared;
    for (const Step& s : plan.steps)
        if (s.instruction.opcode == OP_TENSOR)
            declared[s.instruction.args[0]].push_back(s.instruction.declared());
    for (const CartridgeRegion& r : m.regions) {
        const auto it = declared.find(r.id);
        if (it == declared.end())
            return Error{ErrorCode::invalid_input, name + ": manifest region '" + excerpt(r.name) +
                                                       "' is tensor " + std::to_string(r.id) +
                                                       ", which the program row never declares"};
        for (const Tensor& t : it->second)
            if (!(t == r.tensor))
                return Error{ErrorCode::invalid_input,
                             name + ": manifest region '" + excerpt(r.name) + "' (" +
                                 std::string(dtype_name(r.tensor.dtype)) + " " +
                                 std::to_string(r.tensor.rows) + "x" +
                                 std::to_string(r.tensor.cols) + " at (" +
                                 std::to_string(r.tensor.x) + ", " + std::to_string(r.tensor.y) +
                                 ")) disagrees with tensor " + std::to_string(r.id) +
                                 " of the program row (" + std::string(dtype_name(t.dtype)) + " " +
                                 std::to_string(t.rows) + "x" + std::to_string(t.cols) + " at (" +
                                 std::to_string(t.x) + ", " + std::to_string(t.y) + "))"};
    }
    return {};
}

} // namespace

bool CartridgeRegion::written_at_run_time() const {
    return role == "input" || role == "output" || role == "activation";
}

const CartridgeRegion* CartridgeManifest::region(std::string_view wanted) const {
    for (const CartridgeRegion& r : regions)
        if (r.name == wanted) return &r;
    return nullptr;
}

std::string cartridge_pixels_sha256(const Image& image, const CartridgeManifest& manifest) {
    std::vector<Rectangle> skipped;
    for (const CartridgeRegion& r : manifest.regions)
        if (r.written_at_run_time()) skipped.push_back(rectangle_of(r.tensor));
    sha256_ctx ctx;
    sha256_init(&ctx);
    const std::uint64_t w = image.width();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps; // [begin, end) left out of a row
    for (std::uint32_t y = 0; y < image.height(); ++y) {
        // The row's pixels between the regions that cross it, hashed in one call per run: the
        // cost is the pixels plus the regions per row, not their product.
        gaps.clear();
        if (y == 0) gaps.emplace_back(w - 1, w); // the fault pixel
        for (const Rectangle& r : skipped)
            if (y >= r.y0 && y < r.y1 && r.x0 < w) gaps.emplace_back(r.x0, std::min(r.x1, w));
        std::sort(gaps.begin(), gaps.end());
        std::uint64_t x = 0;
        for (std::size_t g = 0; g <= gaps.size(); ++g) {
            const std::uint64_t end = g < gaps.size() ? gaps[g].first : w;
            if (end > x)
                sha256_update(&ctx, std::size_t(end - x) * 4,
                              image.data() + (std::size_t(y) * w + x) * 4);
            if (g < gaps.size()) x = std::max(x, gaps[g].second);
        }
    }
    std::uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    return hex(digest);
}

std::string manifest_to_json(const CartridgeManifest& m) {
    json regions = json::array();
    for (const CartridgeRegion& r : m.regions)
        regions.push_back(region_to_json(r));
    json j = {
        {"format", "pxvm-cartridge"},
        {"format_version", m.format_version},
        {"protocol_version", m.protocol_version},
        {"min_pxvm_version", m.min_pxvm_version},
        {"name", m.name},
        {"licence", m.licence},
        {"description", m.description},
        {"architecture", m.architecture},
        {"context", m.context},
        {"batch", m.batch},
        {"tokenizer", {{"type", "characters"}, {"pad_id", m.pad_id}, {"vocab", m.vocab}}},
        {"regions", regions},
        {"checksum",
         {{"algorithm", "sha256"},
          {"covers", "the RGBA bytes, row by row, of every pixel outside the input, output and "
                     "activation regions and the fault pixel (W-1, 0)"},
          {"value", m.pixels_sha256}}},
        {"self_test",
         {{"prompt", m.self_test_prompt},
          {"tokens", m.self_test_tokens},
          {"expect", m.self_test_expect}}},
    };
    if (!m.extra_json.empty()) j["model"] = json::parse(m.extra_json);
    return j.dump(1);
}

Result<CartridgeManifest> manifest_from_json(std::string_view text, const std::string& name) {
    auto bad = [&](const std::string& why) {
        return Error{ErrorCode::invalid_input, name + ": manifest: " + why};
    };
    auto parsed = parse_untrusted_json(text);
    if (!parsed) return bad("not a JSON object: " + parsed.error().message);
    const json& j = *parsed;
    if (!j.is_object()) return bad("not a JSON object");
    CartridgeManifest m;
    // Numbers are read only when they are integers in range: converting 2e76 to an unsigned
    // would be undefined behaviour (found by fuzz_manifest).
    struct BadNumber {
        std::string field;
    };
    const auto u32 = [](const json& v, const char* field) -> std::uint32_t {
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() > 0xFFFFFFFFu) throw BadNumber{field};
        return std::uint32_t(v.get<std::uint64_t>());
    };
    const auto i32 = [](const json& v, const char* field) -> std::int32_t {
        if (!v.is_number_integer()) throw BadNumber{field};
        const std::int64_t x = v.is_number_unsigned() && v.get<std::uint64_t>() > 0x7FFFFFFFu
                                   ? std::int64_t(0x80000000u)
                                   : v.get<std::int64_t>();
        if (x < -0x7FFFFFFF - 1 || x > 0x7FFFFFFF) throw BadNumber{field};
        return std::int32_t(x);
    };
    try {
        if (j.value("format", std::string()) != "pxvm-cartridge")
            return bad("\"format\" is not \"pxvm-cartridge\"");
        m.format_version = u32(j.at("format_version"), "format_version");
        m.min_pxvm_version = j.value("min_pxvm_version", std::string());
        if (m.format_version > CARTRIDGE_FORMAT_VERSION || m.format_version == 0)
            return bad("cartridge format version " + std::to_string(m.format_version) +
                       " is newer than this pxVM (" PXVM_VERSION ") reads (version " +
                       std::to_string(CARTRIDGE_FORMAT_VERSION) + "); it needs pxVM " +
                       (m.min_pxvm_version.empty() ? "a newer pxVM" : excerpt(m.min_pxvm_version)) +
                       " or later");
        m.protocol_version = u32(j.at("protocol_version"), "protocol_version");
        if (m.protocol_version != PROTOCOL_VERSION)
            return bad("pixel protocol version " + std::to_string(m.protocol_version) +
                       " is not the one this pxVM runs (" + std::to_string(PROTOCOL_VERSION) + ")");
        m.name = j.value("name", std::string());
        m.licence = j.value("licence", std::string());
        m.description = j.value("description", std::string());
        m.architecture = j.at("architecture").get<std::string>();
        m.context = u32(j.at("context"), "context");
        m.batch = u32(j.at("batch"), "batch");
        const json& tok = j.at("tokenizer");
        if (tok.value("type", std::string()) != "characters")
            return bad("tokenizer type must be \"characters\"");
        m.vocab = tok.at("vocab").get<std::vector<std::string>>();
        m.pad_id = u32(tok.at("pad_id"), "pad_id");
        const json& regions = j.at("regions");
        if (regions.is_array() && regions.size() > MAX_TENSORS)
            return bad(std::to_string(regions.size()) + " regions; a cartridge has at most " +
                       std::to_string(MAX_TENSORS) + " (one per tensor id)");
        for (const json& r : regions) {
            CartridgeRegion region;
            region.name = r.at("name").get<std::string>();
            region.role = r.at("role").get<std::string>();
            region.id = u32(r.at("tensor"), "tensor");
            region.tensor.dtype = dtype_from_name(r.at("dtype").get<std::string>()).value_or(0);
            region.tensor.x = u32(r.at("x"), "x");
            region.tensor.y = u32(r.at("y"), "y");
            region.tensor.rows = u32(r.at("rows"), "rows");
            region.tensor.cols = u32(r.at("cols"), "cols");
            region.scale = r.value("scale", 0.0);
            region.zero_point =
                r.contains("zero_point") ? i32(r.at("zero_point"), "zero_point") : 0;
            if (region.tensor.dtype == 0)
                return bad("region '" + excerpt(region.name) + "' has an unknown dtype");
            if (region.id >= MAX_TENSORS)
                return bad("region '" + excerpt(region.name) + "' names tensor " +
                           std::to_string(region.id) + " (ids are 0-255)");
            static const std::vector<std::string> roles = {"input", "output", "activation",
                                                           "weight", "bias"};
            if (std::find(roles.begin(), roles.end(), region.role) == roles.end())
                return bad("region '" + excerpt(region.name) + "' has an unknown role '" +
                           excerpt(region.role) + "'");
            m.regions.push_back(std::move(region));
        }
        const json& sum = j.at("checksum");
        if (sum.value("algorithm", std::string()) != "sha256")
            return bad("checksum algorithm must be sha256");
        m.pixels_sha256 = sum.at("value").get<std::string>();
        if (j.contains("self_test")) {
            const json& st = j.at("self_test");
            m.self_test_prompt = st.at("prompt").get<std::string>();
            m.self_test_tokens = u32(st.at("tokens"), "tokens");
            m.self_test_expect = st.at("expect").get<std::string>();
        }
        if (j.contains("model")) m.extra_json = j.at("model").dump();
    } catch (const json::exception& e) {
        return bad("missing or wrong field: " + excerpt(e.what(), 160));
    } catch (const BadNumber& e) {
        return bad("\"" + e.field + "\" must be a whole number in range");
    }
    // A plain `pxrun model.pxa` runs the self-test: its length is bounded, and never 0 steps.
    if (!m.self_test_prompt.empty() &&
        (m.self_test_tokens == 0 || m.self_test_tokens > MAX_SELF_TEST_TOKENS))
        return bad("self_test.tokens is " + std::to_string(m.self_test_tokens) +
                   "; a self-test generates 1 to " + std::to_string(MAX_SELF_TEST_TOKENS) +
                   " tokens");
    if (m.architecture != "window-mlp" && m.architecture != "transformer")
        return bad("architecture '" + excerpt(m.architecture) +
                   "' is not one this pxVM runs (window-mlp, transformer)");
    if (m.vocab.empty() || m.vocab.size() > 65536)
        return bad("the vocabulary must have 1 to 65536 entries");
    if (m.pad_id >= m.vocab.size()) return bad("pad_id is not a token id of the vocabulary");
    std::unordered_set<std::string_view> seen; // linear: 65536 entries are checked at every load
    for (std::size_t i = 0; i < m.vocab.size(); ++i) {
        const std::string& v = m.vocab[i];
        if (i != m.pad_id && (v.empty() || utf8_length((unsigned char)v[0]) != v.size()))
            return bad("vocabulary entry " + std::to_string(i) + " is not one UTF-8 character");
        if (!seen.insert(v).second)
            return bad("vocabulary entry " + printable(v) + " appears twice");
    }
    if (auto ok = check_regions(m.regions); !ok) return bad(ok.error().message);
    if (m.context == 0 || m.batch == 0) return bad("context and batch must be at least 1");
    const CartridgeRegion* tokens = m.region("tokens");
    const CartridgeRegion* next = m.region("next");
    if (!tokens || tokens->role != "input") return bad("no input region 'tokens'");
    if (!next || next->role != "output") return bad("no output region 'next'");
    if (m.architecture == "transformer") {
        if (tokens->tensor.rows != m.batch || tokens->tensor.cols != 3 ||
            tokens->tensor.dtype != DTYPE_I32)
            return bad("region 'tokens' of a transformer is not i32 batch x 3 (token, slot, "
                       "position)");
        if (m.context > MAX_ATTEND_POSITIONS)
            return bad("a transformer's context is at most " +
                       std::to_string(MAX_ATTEND_POSITIONS) + " positions");
    } else if (tokens->tensor.rows != m.batch || tokens->tensor.cols != m.context) {
        return bad("region 'tokens' is not batch x context");
    }
    if (next->tensor.rows != m.batch || next->tensor.cols != 1)
        return bad("region 'next' is not batch x 1");
    if (dtype_max(tokens->tensor.dtype) < std::int64_t(m.vocab.size()) - 1)
        return bad("region 'tokens' (" + std::string(dtype_name(tokens->tensor.dtype)) +
                   ") cannot hold every token id of the vocabulary");
    if (const CartridgeRegion* logits = m.region("logits");
        logits && (logits->tensor.rows != m.batch || logits->tensor.cols != m.vocab.size() ||
                   logits->tensor.dtype != DTYPE_I32))
        return bad("region 'logits' is not an i32 batch x vocabulary tensor");
    return m;
}

Result<Cartridge> decode_cartridge(std::span<const std::uint8_t> file, const std::string& name) {
    SpngContext ctx(spng_ctx_new(0));
    if (!ctx) return Error{ErrorCode::out_of_memory, name + ": out of memory"};
    spng_set_image_limits(ctx.get(), MAX_WIDTH, MAX_HEIGHT);
    spng_set_chunk_limits(ctx.get(), 0x7FFFFFFF, MAX_CHUNK_CACHE_BYTES);
    const Error too_large{ErrorCode::invalid_input,
                          name + ": the manifest is larger than 16 MiB (" +
                              std::to_string(MAX_MANIFEST_BYTES) + " bytes of iTXt text)"};
    if (int e = spng_set_png_buffer(ctx.get(), file.data(), file.size()))
        return spng_error(name, "not a PNG", e);
    spng_ihdr ihdr{};
    if (int e = spng_get_ihdr(ctx.get(), &ihdr)) return spng_error(name, "not a PNG", e);
    if (ihdr.color_type != SPNG_COLOR_TYPE_TRUECOLOR_ALPHA || ihdr.bit_depth != 8)
        return Error{ErrorCode::invalid_input, name + ": PNG is not 8-bit RGBA (colour type " +
                                                   std::to_string(ihdr.color_type) +
                                                   ", bit depth " + std::to_string(ihdr.bit_depth) +
                                                   "); a cartridge is 8-bit RGBA"};
    if (std::uint64_t(ihdr.width) * ihdr.height > MAX_PIXELS)
        return Error{ErrorCode::invalid_input, name + ": " + std::to_string(ihdr.width) + "x" +
                                                   std::to_string(ihdr.height) +
                                                   " is more than the protocol's 2^28 pixels"};
    Image image(ihdr.width, ihdr.height);
    // The text chunks before the pixels are read here, the ones after them by spng_get_text: a
    // chunk limit reached in either is a manifest too large (the documented limit is below it).
    if (int e = spng_decode_image(ctx.get(), image.data(), image.size_bytes(), SPNG_FMT_RGBA8, 0))
        return e == SPNG_ECHUNK_LIMITS ? too_large : spng_error(name, "corrupt PNG", e);
    std::uint32_t n_text = 0;
    std::optional<std::string> manifest_text;
    const int listed = spng_get_text(ctx.get(), nullptr, &n_text);
    if (listed == SPNG_ECHUNK_LIMITS) return too_large;
    if (listed == 0 && n_text > 0) {
        std::vector<spng_text> texts(n_text);
        if (int e = spng_get_text(ctx.get(), texts.data(), &n_text))
            return spng_error(name, "unreadable text chunk", e);
        for (const spng_text& t : texts)
            if (t.type == SPNG_ITXT && CARTRIDGE_KEYWORD == t.keyword) {
                if (t.length > MAX_MANIFEST_BYTES) return too_large;
                if (manifest_text)
                    return Error{ErrorCode::invalid_input, name + ": two manifests (iTXt '" +
                                                               std::string(CARTRIDGE_KEYWORD) +
                                                               "')"};
                manifest_text = std::string(t.text, t.length);
            }
    }
    if (!manifest_text)
        return Error{ErrorCode::invalid_input, name + ": no cartridge manifest (an iTXt chunk '" +
                                                   std::string(CARTRIDGE_KEYWORD) +
                                                   "'); a .pxi program runs without --prompt"};
    auto manifest = manifest_from_json(*manifest_text, name);
    if (!manifest) return manifest.error();
    // Every region must be a tensor the program declares, so it lies inside the image.
    if (auto ok = check_program(image, *manifest, name); !ok) return ok.error();
    const std::string sum = cartridge_pixels_sha256(image, *manifest);
    if (sum != manifest->pixels_sha256)
        return Error{ErrorCode::invalid_input,
                     name +
                         ": checksum mismatch: the weights or the program changed (SHA-256 of "
                         "the constant pixels is " +
                         sum + ", the manifest says " + excerpt(manifest->pixels_sha256, 64) + ")"};
    return Cartridge{std::move(image), std::move(*manifest), std::move(*manifest_text)};
}

Result<Cartridge> load_cartridge(const std::string& path) {
    auto bytes = read_file(path, MAX_FILE_BYTES);
    if (!bytes) return bytes.error();
    return decode_cartridge(*bytes, path);
}

Result<std::vector<std::uint8_t>> encode_cartridge(const Image& image,
                                                   const CartridgeManifest& manifest) {
    return encode_png_with_itxt(image, CARTRIDGE_KEYWORD, manifest_to_json(manifest));
}

Result<void> save_cartridge(const std::string& path, Image image, CartridgeManifest manifest) {
    manifest.pixels_sha256 = cartridge_pixels_sha256(image, manifest);
    auto bytes = encode_cartridge(image, manifest);
    if (!bytes) return Error{bytes.error().code, path + ": " + bytes.error().message};
    return write_file_atomic(path, std::span<const std::uint8_t>(*bytes));
}

namespace {

// One id per UTF-8 character; `what` names the text in messages, at most `limit` characters.
Result<std::vector<std::uint32_t>> tokenize_chars(const CartridgeManifest& m, std::string_view text,
                                                  const char* what, std::size_t limit) {
    std::map<std::string, std::uint32_t, std::less<>> ids;
    for (std::uint32_t i = 0; i < m.vocab.size(); ++i)
        if (i != m.pad_id) ids.emplace(m.vocab[i], i);
    std::vector<std::uint32_t> out;
    std::size_t chars = 0;
    for (std::size_t at = 0; at < text.size(); ++chars) {
        const std::size_t n = utf8_length((unsigned char)text[at]);
        if (n == 0 || at + n > text.size())
            return Error{ErrorCode::invalid_input, std::string("the ") + what +
                                                       " is not UTF-8 text (byte " +
                                                       std::to_string(at) + ")"};
        if (chars >= limit)
            return Error{ErrorCode::invalid_input,
                         std::string("the ") + what + " is longer than " + std::to_string(limit) +
                             " characters (the model sees only the last " +
                             std::to_string(m.context) + ")"};
        const std::string_view c = text.substr(at, n);
        const auto it = ids.find(c);
        if (it == ids.end())
            return Error{ErrorCode::invalid_input,
                         "character " + printable(c) + " at position " + std::to_string(chars) +
                             " of the " + what + " is not in the model's vocabulary of " +
                             std::to_string(m.vocab.size() - 1) + " characters"};
        out.push_back(it->second);
        at += n;
    }
    return out;
}

} // namespace

Result<std::vector<std::uint32_t>> tokenize(const CartridgeManifest& m, std::string_view text) {
    if (text.empty()) return Error{ErrorCode::invalid_input, "the prompt is empty"};
    return tokenize_chars(m, text, "prompt", MAX_PROMPT_CHARS);
}

Result<std::vector<std::uint32_t>> tokenize_text(const CartridgeManifest& m,
                                                 std::string_view text) {
    return tokenize_chars(m, text, "text", std::size_t(-1));
}

std::string detokenize(const CartridgeManifest& m, std::span<const std::uint32_t> ids) {
    std::string out;
    for (std::uint32_t id : ids)
        if (id < m.vocab.size()) out += m.vocab[id];
    return out;
}

std::vector<std::uint32_t> window_of(const CartridgeManifest& m,
                                     std::span<const std::uint32_t> history) {
    // Position j of the window holds the token context - j places before the next one.
    std::vector<std::uint32_t> window(m.context, m.pad_id);
    const std::size_t known = std::min<std::size_t>(m.context, history.size());
    std::copy(history.end() - std::ptrdiff_t(known), history.end(),
              window.end() - std::ptrdiff_t(known));
    return window;
}

void write_window(Image& image, const CartridgeManifest& m, std::uint32_t row,
                  std::span<const std::uint32_t> history) {
    const Tensor& t = m.region("tokens")->tensor;
    const std::vector<std::uint32_t> window = window_of(m, history);
    for (std::uint32_t j = 0; j < m.context; ++j)
        store_element(image, t, row, j, window[j]);
}

void write_step(Image& image, const CartridgeManifest& m, std::uint32_t row, std::uint32_t token,
                std::uint32_t position) {
    const Tensor& t = m.region("tokens")->tensor;
    store_element(image, t, row, 0, token);
    store_element(image, t, row, 1, row); // row r is slot r
    store_element(image, t, row, 2, position);
}

std::vector<std::uint32_t> read_next(const Image& image, const CartridgeManifest& m) {
    const Tensor& t = m.region("next")->tensor;
    std::vector<std::uint32_t> out(t.rows);
    for (std::uint32_t r = 0; r < t.rows; ++r)
        out[r] = std::uint32_t(load_element(image, t, r, 0));
    return out;
}

std::vector<std::int64_t> read_logits(const Image& image, const CartridgeManifest& m,
                                      std::uint32_t row) {
    std::vector<std::int64_t> out;
    if (const CartridgeRegion* r = m.region("logits"))
        for (std::uint32_t c = 0; c < r->tensor.cols; ++c)
            out.push_back(load_element(image, r->tensor, row, c));
    return out;
}

SlotRect input_rect(const CartridgeManifest& m) {
    const Tensor& t = m.region("tokens")->tensor;
    return {t.x, t.y, t.pixel_width(), t.rows};
}

std::vector<SlotRect> output_rects(const CartridgeManifest& m) {
    std::vector<SlotRect> out;
    for (const CartridgeRegion& r : m.regions)
        if (r.role == "output")
            out.push_back({r.tensor.x, r.tensor.y, r.tensor.pixel_width(), r.tensor.rows});
    return out;
}

std::uint32_t sample_logits(std::span<const std::int64_t> logits, double scale, double temperature,
                            std::uint64_t& state) {
    // splitmix64: a specified stream, the same on every platform and standard library.
    state += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = double(z >> 11) * 0x1.0p-53;
    const std::int64_t top = *std::max_element(logits.begin(), logits.end());
    std::vector<double> weights(logits.size());
    double total = 0;
    for (std::size_t i = 0; i < logits.size(); ++i)
        total += weights[i] = std::exp(double(logits[i] - top) * scale / temperature);
    double acc = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        acc += weights[i];
        if (u * total < acc) return std::uint32_t(i);
    }
    return std::uint32_t(logits.size() - 1);
}

CartridgeStep reference_step() {
    return [](Image& image) -> Result<void> {
        // describe() reads the faulting opcode from row 0, which a run changes only in the fault
        // pixel: keep that one pixel, not a copy of the image, each step.
        const Pixel last = image.pixel(image.width() - 1, 0);
        const RunOutcome outcome = run_reference(image);
        if (outcome.fault) {
            Image before = image;
            before.set_pixel(image.width() - 1, 0, last);
            return Error{ErrorCode::invalid_input,
                         "the cartridge's program faulted: " + describe(outcome.fault, before)};
        }
        return {};
    };
}

Result<void> check_generation(const CartridgeManifest& m, std::size_t prompts,
                              const GenerateOptions& options) {
    if (prompts > m.batch)
        return Error{ErrorCode::invalid_input, std::to_string(prompts) +
                                                   " prompts are more than the " +
                                                   std::to_string(m.batch) +
                                                   " windows this cartridge computes at once "
                                                   "(pxc pack --batch N makes a larger one)"};
    if (options.temperature > 0 && !m.region("logits"))
        return Error{ErrorCode::invalid_input,
                     "sampling needs a 'logits' output region; this cartridge has none"};
    return {};
}

namespace {

// The token a row's step produced: the program's argmax, or sampled from its logits.
Result<std::uint32_t> answer(const Image& image, const CartridgeManifest& m, std::uint32_t row,
                             std::uint32_t next, const GenerateOptions& options,
                             std::uint64_t& state) {
    std::uint32_t id = next;
    if (options.temperature > 0)
        id = sample_logits(read_logits(image, m, row), m.region("logits")->scale,
                           options.temperature, state);
    if (id >= m.vocab.size())
        return Error{ErrorCode::invalid_input, "the program answered token id " +
                                                   std::to_string(id) + ", outside the vocabulary"};
    return id;
}

// A transformer: row r is slot r, and each step feeds every row one token at its position (its
// keys and values stay in the cache). A row feeds its prompt a token a step, then its answers;
// when its positions are used up, it feeds its last context / 2 tokens again from position 0.
// A row without a prompt, or done, repeats a step that changes nothing it reads.
Result<std::vector<std::vector<std::uint32_t>>>
generate_transformer(Image& image, const CartridgeManifest& m,
                     const std::vector<std::vector<std::uint32_t>>& prompts,
                     const GenerateOptions& options, const CartridgeStep& step) {
    struct Sequence {
        std::vector<std::uint32_t> history;
        std::size_t base = 0, fed = 0; // history[base] is at position 0; fed tokens since
        std::uint32_t made = 0, last_token = 0, last_position = 0;
    };
    const std::size_t T = m.context, keep = std::max<std::size_t>(1, T / 2);
    std::vector<Sequence> rows(prompts.size());
    for (std::size_t r = 0; r < prompts.size(); ++r) {
        rows[r].history = prompts[r];
        rows[r].base = prompts[r].size() - std::min(prompts[r].size(), T);
        if (prompts[r].empty())
            return Error{ErrorCode::invalid_input, "a transformer needs a prompt of at least one "
                                                   "token in every row"};
    }
    std::vector<std::vector<std::uint32_t>> generated(prompts.size());
    std::uint64_t state = options.seed;
    for (std::uint32_t s = 0;; ++s) {
        bool busy = false;
        for (std::uint32_t r = 0; r < m.batch; ++r) {
            if (r >= rows.size()) {
                write_step(image, m, r, m.pad_id, 0);
                continue;
            }
            Sequence& q = rows[r];
            if (q.made < options.tokens) {
                busy = true;
                q.last_token = q.history[q.base + q.fed];
                q.last_position = std::uint32_t(q.fed);
            }
            write_step(image, m, r, q.last_token, q.last_position);
        }
        if (!busy) break;
        if (auto ran = step(image); !ran) return ran.error();
        const std::vector<std::uint32_t> next = read_next(image, m);
        for (std::uint32_t r = 0; r < rows.size(); ++r) {
            Sequence& q = rows[r];
            if (q.made == options.tokens) continue;
            ++q.fed;
            if (q.base + q.fed == q.history.size()) { // the row's last token: its answer is new
                auto id = answer(image, m, r, next[r], options, state);
                if (!id) return id.error();
                q.history.push_back(*id);
                generated[r].push_back(*id);
                ++q.made;
            }
            if (q.fed == T) { // positions used up: the last context / 2 tokens again
                q.base = q.history.size() - keep;
                q.fed = 0;
            }
        }
        if (options.after_step) options.after_step(s);
    }
    return generated;
}

} // namespace

Result<std::vector<std::vector<std::uint32_t>>>
generate(Image& image, const CartridgeManifest& m,
         const std::vector<std::vector<std::uint32_t>>& prompts, const GenerateOptions& options,
         const CartridgeStep& step) {
    if (auto ok = check_generation(m, prompts.size(), options); !ok) return ok.error();
    if (m.architecture == "transformer")
        return generate_transformer(image, m, prompts, options, step);
    const CartridgeRegion* logits = m.region("logits");
    std::vector<std::vector<std::uint32_t>> history = prompts, generated(prompts.size());
    std::uint64_t state = options.seed;
    for (std::uint32_t s = 0; s < options.tokens; ++s) {
        for (std::uint32_t row = 0; row < m.batch; ++row)
            write_window(image, m, row,
                         row < history.size() ? std::span<const std::uint32_t>(history[row])
                                              : std::span<const std::uint32_t>());
        if (auto ran = step(image); !ran) return ran.error();
        const std::vector<std::uint32_t> next = read_next(image, m);
        for (std::size_t row = 0; row < prompts.size(); ++row) {
            std::uint32_t id = next[row];
            if (options.temperature > 0)
                id = sample_logits(read_logits(image, m, std::uint32_t(row)), logits->scale,
                                   options.temperature, state);
            if (id >= m.vocab.size())
                return Error{ErrorCode::invalid_input, "the program answered token id " +
                                                           std::to_string(id) +
                                                           ", outside the vocabulary"};
            history[row].push_back(id);
            generated[row].push_back(id);
        }
        if (options.after_step) options.after_step(s);
    }
    return generated;
}

} // namespace px
