// The cartridge packer. Quantisation (docs/CARTRIDGE.md, "Quantisation"):
//   embeddings   e = s_e * q_e,            q_e in [-127, 127], s_e = max|E| / 127
//   weights      w = s_w * q_w,            one scale per tensor, the same way
//   activations  a = s_a * (q_a + 128),    q_a in [-128, 127]: relu outputs use all 256 levels
//   biases       the integer accumulator's scale, with the activations' zero point folded in:
//                b_q = round(b / (s_in s_w)) + 128 * sum_k q_w[n][k]   (for 8-bit activations)
//   requant      acc * (s_in s_w / s_a), as multiplier * 2^-shift, zero point -128
// s_a is calibrated: the 99.99th percentile of the float model's relu outputs over real windows.
#include "pxvm/pack.hpp"

#include "pxvm/program_writer.hpp"
#include "pxvm/protocol.hpp"
#include "pxvm/version.hpp"
#include "untrusted_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace px {
namespace {

// The model read from the safetensors file.
struct FloatLayer {
    const FloatTensor* weight = nullptr; // out x in
    const FloatTensor* bias = nullptr;   // out
    std::uint32_t in = 0, out = 0;
};

struct FloatModel {
    std::uint32_t context = 0, vocab = 0, embed = 0;
    const FloatTensor* table = nullptr; // vocab x embed
    std::vector<FloatLayer> hidden;
    FloatLayer output;
    std::vector<std::string> vocabulary;
};

Result<FloatLayer> layer(const Safetensors& st, const std::string& prefix) {
    const auto w = st.tensors.find(prefix + ".weight"), b = st.tensors.find(prefix + ".bias");
    if (w == st.tensors.end() || b == st.tensors.end())
        return Error{ErrorCode::invalid_input,
                     "no tensors " + prefix + ".weight and " + prefix + ".bias"};
    if (w->second.shape.size() != 2 || b->second.shape.size() != 1 ||
        b->second.shape[0] != w->second.shape[0])
        return Error{ErrorCode::invalid_input,
                     prefix + ".weight must be out x in and " + prefix + ".bias out"};
    if (w->second.shape[0] > 32767 || w->second.shape[1] > 65535)
        return Error{ErrorCode::invalid_input,
                     prefix + ".weight is larger than a tensor of one image"};
    return FloatLayer{&w->second, &b->second, std::uint32_t(w->second.shape[1]),
                      std::uint32_t(w->second.shape[0])};
}

Result<FloatModel> read_model(const Safetensors& st) {
    FloatModel m;
    for (const auto& [name, t] : st.tensors)
        if (t.dtype != "F32")
            return Error{ErrorCode::invalid_input,
                         "tensor " + name + " is " + t.dtype + "; a window MLP's weights are F32"};
    auto meta = [&](const std::string& key) -> Result<std::string> {
        const auto it = st.metadata.find(key);
        if (it == st.metadata.end())
            return Error{ErrorCode::invalid_input, "__metadata__ has no '" + key + "'"};
        return it->second;
    };
    auto format = meta("format");
    if (!format) return format.error();
    if (*format != "pxvm-window-mlp")
        return Error{ErrorCode::invalid_input,
                     "__metadata__ format is '" + *format + "', not pxvm-window-mlp"};
    auto context = meta("context");
    auto vocab = meta("vocab");
    if (!context) return context.error();
    if (!vocab) return vocab.error();
    auto vocabulary = parse_untrusted_json(*vocab);
    if (!vocabulary)
        return Error{ErrorCode::invalid_input,
                     "__metadata__ vocab is not JSON: " + vocabulary.error().message};
    try {
        m.context = std::uint32_t(std::stoul(*context));
        m.vocabulary = vocabulary->get<std::vector<std::string>>();
    } catch (const std::exception&) {
        return Error{ErrorCode::invalid_input, "__metadata__ context or vocab is malformed"};
    }
    const auto table = st.tensors.find("embed.weight");
    if (table == st.tensors.end() || table->second.shape.size() != 2)
        return Error{ErrorCode::invalid_input, "no 2-D tensor embed.weight"};
    m.table = &table->second;
    m.vocab = std::uint32_t(table->second.shape[0]);
    m.embed = std::uint32_t(table->second.shape[1]);
    if (m.vocab != m.vocabulary.size() || m.vocab < 2 || m.vocab > 32767)
        return Error{ErrorCode::invalid_input, "embed.weight has " + std::to_string(m.vocab) +
                                                   " rows for a vocabulary of " +
                                                   std::to_string(m.vocabulary.size())};
    if (m.context == 0 || std::uint64_t(m.context) * m.embed > 65535)
        return Error{ErrorCode::invalid_input, "context x embedding width must be 1 to 65535"};
    std::uint32_t in = m.context * m.embed;
    for (int i = 1;; ++i) {
        const std::string prefix = "fc" + std::to_string(i);
        if (!st.tensors.count(prefix + ".weight")) break;
        auto l = layer(st, prefix);
        if (!l) return l.error();
        if (l->in != in)
            return Error{ErrorCode::invalid_input, prefix + ".weight takes " +
                                                       std::to_string(l->in) + " inputs, not " +
                                                       std::to_string(in)};
        in = l->out;
        m.hidden.push_back(*l);
    }
    auto out = layer(st, "out");
    if (!out) return out.error();
    if (out->in != in || out->out != m.vocab)
        return Error{ErrorCode::invalid_input,
                     "out.weight must be vocabulary x " + std::to_string(in)};
    m.output = *out;
    return m;
}

// y = relu?(W x + b) for one window.
std::vector<float> dense(const FloatLayer& l, const std::vector<float>& x, bool relu) {
    std::vector<float> y(l.out);
    for (std::uint32_t n = 0; n < l.out; ++n) {
        const float* w = l.weight->values.data() + std::size_t(n) * l.in;
        double acc = l.bias->values[n];
        for (std::uint32_t k = 0; k < l.in; ++k)
            acc += double(w[k]) * x[k];
        y[n] = relu ? std::max(float(acc), 0.0f) : float(acc);
    }
    return y;
}

std::vector<float> embed_window(const FloatModel& m, const std::vector<std::uint32_t>& window) {
    std::vector<float> x;
    for (std::uint32_t id : window)
        x.insert(x.end(), m.table->values.begin() + std::size_t(id) * m.embed,
                 m.table->values.begin() + std::size_t(id + 1) * m.embed);
    return x;
}

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float f : v)
        m = std::max(m, double(std::fabs(f)));
    return m > 0 ? m : 1;
}

std::vector<std::int64_t> quantize(const std::vector<float>& v, double scale) {
    std::vector<std::int64_t> q(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
        q[i] = std::clamp<std::int64_t>(std::llround(v[i] / scale), -127, 127);
    return q;
}

// multiplier * 2^-shift = real, multiplier in [2^30, 2^31).
std::pair<std::int32_t, std::uint32_t> fixed_point(double real) {
    int exponent = 0;
    const double mantissa = std::frexp(real, &exponent); // real = mantissa * 2^exponent, [0.5, 1)
    std::int64_t multiplier = std::llround(mantissa * double(1ll << 31));
    int shift = 31 - exponent;
    if (multiplier == (1ll << 31)) multiplier /= 2, --shift;
    while (shift > 62)
        multiplier >>= 1, --shift;
    return {std::int32_t(multiplier), std::uint32_t(std::max(shift, 0))};
}

// Windows of the calibration text (ids), spread evenly over it; a character outside the
// vocabulary is an error, as in every other text pxVM reads.
Result<std::vector<std::vector<std::uint32_t>>>
calibration_windows(const FloatModel& m, std::string_view text, std::uint32_t count) {
    CartridgeManifest vocabulary;
    vocabulary.vocab = m.vocabulary;
    vocabulary.context = m.context;
    auto ids = tokenize_text(vocabulary, text);
    if (!ids) return Error{ErrorCode::invalid_input, "calibration text: " + ids.error().message};
    const std::vector<std::uint32_t>& tokens = *ids;
    std::vector<std::vector<std::uint32_t>> windows;
    if (tokens.size() <= m.context) return windows;
    const std::size_t step = std::max<std::size_t>(1, (tokens.size() - m.context) / count);
    for (std::size_t end = m.context; end < tokens.size() && windows.size() < count; end += step)
        windows.emplace_back(tokens.begin() + std::ptrdiff_t(end - m.context),
                             tokens.begin() + std::ptrdiff_t(end));
    return windows;
}

// Places tensors in shelves (rows of equal height) left to right below row 0: deterministic,
// no overlaps, and the image stays near a rectangle of the tensors' own area.
struct Placement {
    std::uint32_t width = 0, height = 0;
    std::vector<Tensor> tensors;
};

Result<Placement> place(std::vector<Tensor> tensors, std::uint32_t min_width) {
    Placement p;
    std::uint64_t area = 0;
    std::uint32_t widest = min_width;
    for (const Tensor& t : tensors) {
        area += std::uint64_t(t.pixel_width()) * t.rows;
        widest = std::max(widest, t.pixel_width());
    }
    p.width = std::max<std::uint32_t>(
        widest, std::uint32_t(std::min<double>(MAX_WIDTH, std::ceil(std::sqrt(double(area))))));
    std::vector<std::size_t> order(tensors.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return tensors[a].rows > tensors[b].rows;
    });
    std::uint64_t shelf_y = 1, shelf_h = 0, x = 0;
    for (std::size_t i : order) {
        Tensor& t = tensors[i];
        if (x + t.pixel_width() > p.width) {
            shelf_y += shelf_h;
            shelf_h = 0;
            x = 0;
        }
        t.x = std::uint32_t(x);
        t.y = std::uint32_t(shelf_y);
        x += t.pixel_width();
        shelf_h = std::max<std::uint64_t>(shelf_h, t.rows);
    }
    const std::uint64_t height = shelf_y + shelf_h;
    if (height > MAX_HEIGHT || height * p.width > MAX_PIXELS)
        return Error{ErrorCode::invalid_input,
                     "the cartridge would be " + std::to_string(p.width) + "x" +
                         std::to_string(height) +
                         " pixels, more than one image holds (32768 rows, 2^28 pixels): use a "
                         "smaller --batch"};
    p.height = std::uint32_t(height);
    p.tensors = std::move(tensors);
    return p;
}

// The cartridge's regions in program order: ids 1, 2, ... as they are added.
struct Regions {
    std::vector<CartridgeRegion> list;

    std::uint8_t add(std::string name, std::string role, std::uint32_t dtype, std::uint32_t rows,
                     std::uint32_t cols, double scale = 0, std::int32_t zero_point = 0) {
        CartridgeRegion r;
        r.name = std::move(name);
        r.role = std::move(role);
        r.id = std::uint32_t(list.size() + 1);
        r.tensor = Tensor{0, 0, rows, cols, dtype};
        r.scale = scale;
        r.zero_point = zero_point;
        list.push_back(r);
        return std::uint8_t(r.id);
    }

    // Places every region below row 0 (at least `program_pixels` + 1 wide) and returns a writer
    // whose program row starts with their declarations.
    Result<ProgramWriter> declare(std::uint32_t program_pixels) {
        std::vector<Tensor> shapes;
        for (const CartridgeRegion& r : list)
            shapes.push_back(r.tensor);
        auto placed = place(shapes, program_pixels + 1);
        if (!placed) return placed.error();
        for (std::size_t i = 0; i < list.size(); ++i)
            list[i].tensor = placed->tensors[i];
        ProgramWriter w(placed->width, placed->height);
        for (const CartridgeRegion& r : list)
            w.tensor(std::uint8_t(r.id), r.tensor.dtype, r.tensor.x, r.tensor.y, r.tensor.rows,
                     r.tensor.cols);
        return w;
    }
};

std::string fmt_scale(double v) {
    std::ostringstream s;
    s.precision(6);
    s << v;
    return s.str();
}

// The self-test's expected text from the reference, then the checksum and the report's last line.
Result<void> finish_cartridge(PackedCartridge& packed, const PackOptions& options) {
    CartridgeManifest& mf = packed.manifest;
    if (!options.self_test_prompt.empty()) {
        if (options.self_test_tokens == 0 || options.self_test_tokens > MAX_SELF_TEST_TOKENS)
            return Error{ErrorCode::invalid_input,
                         "the self-test generates " + std::to_string(options.self_test_tokens) +
                             " tokens; it generates 1 to " + std::to_string(MAX_SELF_TEST_TOKENS) +
                             " tokens"};
        auto ids = tokenize(mf, options.self_test_prompt);
        if (!ids)
            return Error{ErrorCode::invalid_input, "self-test prompt: " + ids.error().message};
        Image image = packed.image;
        GenerateOptions g;
        g.tokens = options.self_test_tokens;
        auto got = generate(image, mf, {*ids}, g, reference_step());
        if (!got) return got.error();
        mf.self_test_prompt = options.self_test_prompt;
        mf.self_test_tokens = options.self_test_tokens;
        mf.self_test_expect = detokenize(mf, got->front());
    }
    mf.pixels_sha256 = cartridge_pixels_sha256(packed.image, mf);
    return {};
}

// ---- The transformer (docs/CARTRIDGE.md, "The transformer") -----------------------------------

// The integer model model/quantize_transformer.py writes: tensors in their integer dtypes and every
// requant, norm and attention parameter in the "params" metadata.
struct IntModel {
    std::uint32_t context = 0, dim = 0, layers = 0, heads = 0, hidden = 0, vocab = 0;
    double s_x = 0, logits_scale = 0;
    nlohmann::json params;
    std::vector<std::string> vocabulary;
};

Result<IntModel> read_int_model(const Safetensors& st) {
    IntModel m;
    const auto meta = [&](const std::string& key) -> Result<nlohmann::json> {
        const auto it = st.metadata.find(key);
        if (it == st.metadata.end())
            return Error{ErrorCode::invalid_input, "__metadata__ has no '" + key + "'"};
        auto j = parse_untrusted_json(it->second);
        if (!j) return Error{ErrorCode::invalid_input, "__metadata__ " + key + " is not JSON"};
        return *j;
    };
    auto params = meta("params");
    if (!params) return params.error();
    auto vocab = meta("vocab");
    if (!vocab) return vocab.error();
    try {
        m.params = std::move(*params);
        m.vocabulary = vocab->get<std::vector<std::string>>();
        const nlohmann::json& c = m.params.at("config");
        m.context = c.at("context").get<std::uint32_t>();
        m.dim = c.at("dim").get<std::uint32_t>();
        m.layers = c.at("layers").get<std::uint32_t>();
        m.heads = c.at("heads").get<std::uint32_t>();
        m.hidden = c.at("hidden").get<std::uint32_t>();
        m.s_x = m.params.at("s_x").get<double>();
        m.logits_scale = m.params.at("logits_scale").get<double>();
        if (m.params.at("layers").size() != m.layers)
            return Error{ErrorCode::invalid_input, "params has the wrong number of layers"};
    } catch (const std::exception&) {
        return Error{ErrorCode::invalid_input, "__metadata__ params or vocab is malformed"};
    }
    m.vocab = std::uint32_t(m.vocabulary.size());
    if (m.vocab < 2 || m.vocab > 32767 || m.dim == 0 || m.dim % 4 != 0 || m.dim > 8192 ||
        m.heads == 0 || m.heads > 255 || m.dim % m.heads != 0 || m.hidden == 0 ||
        m.hidden > 32767 || m.hidden % 4 != 0 || m.context == 0 ||
        m.context > MAX_ATTEND_POSITIONS || m.layers == 0 || m.layers > 24)
        return Error{ErrorCode::invalid_input,
                     "the model's shape (dim a multiple of 4 up to 8192, heads dividing it, "
                     "context up to 1024, up to 24 layers) is not one pxVM packs"};
    return m;
}

// Tensor `name` of dtype `dtype` ("I8", "I32") and shape rows x cols (cols only for 1-D).
Result<const FloatTensor*> int_tensor(const Safetensors& st, const std::string& name,
                                      const std::string& dtype, std::uint64_t rows,
                                      std::uint64_t cols) {
    const auto it = st.tensors.find(name);
    if (it == st.tensors.end())
        return Error{ErrorCode::invalid_input, "the integer model has no tensor " + name};
    const FloatTensor& t = it->second;
    const bool shape = rows == 0 ? t.shape == std::vector<std::uint64_t>{cols}
                                 : t.shape == std::vector<std::uint64_t>{rows, cols};
    if (t.dtype != dtype || !shape)
        return Error{ErrorCode::invalid_input,
                     "tensor " + name + " must be " + dtype + " " +
                         (rows ? std::to_string(rows) + "x" : std::string()) +
                         std::to_string(cols)};
    return &t;
}

// (multiplier, shift) of a params entry, checked against the instruction's ranges.
Result<std::pair<std::int64_t, std::uint32_t>> fixed(const nlohmann::json& j, std::int64_t max) {
    try {
        const auto multiplier = j.at(0).get<std::int64_t>();
        const auto shift = j.at(1).get<std::uint32_t>();
        if (multiplier < 0 || multiplier > max || shift > MAX_REQUANT_SHIFT)
            return Error{ErrorCode::invalid_input, "a multiplier or shift is out of range"};
        return std::pair{multiplier, shift};
    } catch (const std::exception&) {
        return Error{ErrorCode::invalid_input, "a multiplier and shift pair is malformed"};
    }
}

} // namespace

Result<PackedCartridge> pack_transformer(const Safetensors& weights, const PackOptions& options) {
    auto read = read_int_model(weights);
    if (!read) return read.error();
    const IntModel& m = *read;
    const std::uint32_t B = options.batch, T = m.context, d = m.dim, V = m.vocab, F = m.hidden;
    // A cache row holds every slot's keys and values: 2d columns a slot, at most 65535 columns.
    if (B == 0 || std::uint64_t(B) * 2 * d > 65535)
        return Error{ErrorCode::invalid_input,
                     "--batch must be 1 to " + std::to_string(65535 / (2 * d)) +
                         " for this model (a cache row holds 2 x " + std::to_string(d) +
                         " columns per sequence, and a tensor at most 65535)"};

    Regions regions;
    const auto add = [&](auto&&... args) { return regions.add(args...); };
    struct Layer {
        std::uint8_t attn_gain, wqkv, wo, mlp_gain, up, gelu, down, cache;
        const FloatTensor *attn_gain_t, *wqkv_t, *wo_t, *mlp_gain_t, *up_t, *gelu_t, *down_t;
    };
    const auto get = [&](const std::string& name, const std::string& dtype, std::uint64_t rows,
                         std::uint64_t cols) {
        return int_tensor(weights, name, dtype, rows, cols);
    };
    auto tok_t = get("tok_embed", "I32", V, d);
    auto pos_t = get("pos_embed", "I32", T, d);
    auto norm_t = get("norm.gain", "I32", 0, d);
    auto head_t = get("head", "I8", V, d);
    for (const auto* r : {&tok_t, &pos_t, &norm_t, &head_t})
        if (!*r) return r->error();

    const auto tokens = add("tokens", "input", DTYPE_I32, B, 3); // token, slot, position
    const auto tok = add("tok_embed", "weight", DTYPE_I32, V, d, m.s_x);
    const auto pos_table = add("pos_embed", "weight", DTYPE_I32, T, d, m.s_x);
    const auto x = add("x", "activation", DTYPE_I32, B, d, m.s_x);
    const auto pos = add("pos", "activation", DTYPE_I32, B, d, m.s_x);
    const auto h = add("h", "activation", DTYPE_I8, B, d);
    const auto qkv = add("qkv", "activation", DTYPE_I32, B, 3 * d);
    const auto qkv8 = add("qkv8", "activation", DTYPE_I8, B, 3 * d);
    const auto attn = add("attn", "activation", DTYPE_I8, B, d);
    const auto o = add("o", "activation", DTYPE_I32, B, d, m.s_x);
    const auto u = add("u", "activation", DTYPE_I32, B, F);
    const auto u8 = add("u8", "activation", DTYPE_I8, B, F);
    const auto dn = add("dn", "activation", DTYPE_I32, B, d, m.s_x);
    const auto logits = add("logits", "output", DTYPE_I32, B, V, m.logits_scale);
    const auto next = add("next", "output", DTYPE_I32, B, 1);
    std::vector<Layer> layers;
    for (std::uint32_t i = 0; i < m.layers; ++i) {
        const std::string p = "layers." + std::to_string(i) + ".";
        Layer l{};
        auto a = get(p + "attn_norm.gain", "I32", 0, d);
        auto q = get(p + "wqkv", "I8", 3 * d, d);
        auto w = get(p + "wo", "I8", d, d);
        auto g = get(p + "mlp_norm.gain", "I32", 0, d);
        auto up = get(p + "up", "I8", F, d);
        auto ge = get(p + "gelu", "I8", 0, 256);
        auto dw = get(p + "down", "I8", d, F);
        for (const auto* r : {&a, &q, &w, &g, &up, &ge, &dw})
            if (!*r) return r->error();
        l.attn_gain_t = *a, l.wqkv_t = *q, l.wo_t = *w, l.mlp_gain_t = *g, l.up_t = *up;
        l.gelu_t = *ge, l.down_t = *dw;
        l.attn_gain = add(p + "attn_norm.gain", "weight", DTYPE_I32, 1, d);
        l.wqkv = add(p + "wqkv", "weight", DTYPE_I8, 3 * d, d);
        l.wo = add(p + "wo", "weight", DTYPE_I8, d, d);
        l.mlp_gain = add(p + "mlp_norm.gain", "weight", DTYPE_I32, 1, d);
        l.up = add(p + "up", "weight", DTYPE_I8, F, d);
        l.gelu = add(p + "gelu", "weight", DTYPE_I8, 1, 256);
        l.down = add(p + "down", "weight", DTYPE_I8, d, F);
        l.cache = add(p + "cache", "activation", DTYPE_I8, T, B * 2 * d);
        layers.push_back(l);
    }
    const auto norm = add("norm.gain", "weight", DTYPE_I32, 1, d);
    const auto head = add("head", "weight", DTYPE_I8, V, d);

    // Views (tensors of the program inside the regions above, not regions themselves).
    const auto view_id = [&](std::uint32_t k) { return std::uint8_t(regions.list.size() + 1 + k); };
    const std::uint8_t tok_ids = view_id(0), where = view_id(1), positions = view_id(2),
                       q32 = view_id(3), k32 = view_id(4), v32 = view_id(5), q8 = view_id(6),
                       k8 = view_id(7), v8 = view_id(8), kv8 = view_id(9);
    const std::uint32_t views = 10;
    const std::uint32_t per_layer = 2 + 1 + 9 + 1 + 3 + 1 + 3 + 1 + 2 + 1 + 3 + 1 + 1 + 3 + 1;
    const std::uint32_t program_pixels =
        3 * (std::uint32_t(regions.list.size()) + views) + 3 + m.layers * per_layer + 2 + 1 + 1 + 1;
    auto declared = regions.declare(program_pixels);
    if (!declared) return declared.error();
    ProgramWriter& w = *declared;
    const Tensor &in = w.t(tokens), &acc = w.t(qkv), &act = w.t(qkv8);
    w.tensor(tok_ids, DTYPE_I32, in.x, in.y, B, 1)
        .tensor(where, DTYPE_I32, in.x + 1, in.y, B, 2)
        .tensor(positions, DTYPE_I32, in.x + 2, in.y, B, 1)
        .tensor(q32, DTYPE_I32, acc.x, acc.y, B, d)
        .tensor(k32, DTYPE_I32, acc.x + d, acc.y, B, d)
        .tensor(v32, DTYPE_I32, acc.x + 2 * d, acc.y, B, d)
        .tensor(q8, DTYPE_I8, act.x, act.y, B, d)
        .tensor(k8, DTYPE_I8, act.x + d / 4, act.y, B, d)
        .tensor(v8, DTYPE_I8, act.x + d / 2, act.y, B, d)
        .tensor(kv8, DTYPE_I8, act.x + d / 4, act.y, B, 2 * d);
    w.embed(x, tok, tok_ids).embed(pos, pos_table, positions).add(x, pos);
    std::ostringstream report;
    for (std::uint32_t i = 0; i < m.layers; ++i) {
        const Layer& l = layers[i];
        const nlohmann::json& lp = m.params.at("layers").at(i);
        std::array<std::pair<std::int64_t, std::uint32_t>, 7> f{};
        const char* names[] = {"q_requant",  "k_requant",    "v_requant", "o_requant",
                               "up_requant", "down_requant", "attend"};
        for (std::size_t k = 0; k < f.size(); ++k) {
            auto v =
                fixed(lp.value(names[k], nlohmann::json()), k == 6 ? 0xFFFFFFFFll : 0x7FFFFFFFll);
            if (!v)
                return Error{ErrorCode::invalid_input, "layer " + std::to_string(i) + " " +
                                                           names[k] + ": " + v.error().message};
            f[k] = *v;
        }
        std::uint32_t attn_shift = 0, mlp_shift = 0;
        try {
            attn_shift = lp.at("attn_norm_shift").get<std::uint32_t>();
            mlp_shift = lp.at("mlp_norm_shift").get<std::uint32_t>();
        } catch (const std::exception&) {
            return Error{ErrorCode::invalid_input,
                         "layer " + std::to_string(i) + ": no norm shifts"};
        }
        if (attn_shift > MAX_REQUANT_SHIFT || mlp_shift > MAX_REQUANT_SHIFT)
            return Error{ErrorCode::invalid_input, "a norm shift is larger than 62"};
        const auto rq = [&](std::uint8_t out, std::uint8_t from, std::size_t k) {
            w.requant(out, from, std::int32_t(f[k].first), std::uint8_t(f[k].second), 0);
        };
        w.rmsnorm(h, x, l.attn_gain, std::uint8_t(attn_shift)).matmul(qkv, h, l.wqkv);
        rq(q8, q32, 0);
        rq(k8, k32, 1);
        rq(v8, v32, 2);
        w.kvstore(l.cache, kv8, where)
            .attend(attn, q8, l.cache, where, std::uint8_t(m.heads), std::uint32_t(f[6].first),
                    std::uint8_t(f[6].second))
            .matmul(o, attn, l.wo);
        rq(o, o, 3);
        w.add(x, o).rmsnorm(h, x, l.mlp_gain, std::uint8_t(mlp_shift)).matmul(u, h, l.up);
        rq(u8, u, 4);
        w.lut(u8, u8, l.gelu).matmul(dn, u8, l.down);
        rq(dn, dn, 5);
        w.add(x, dn);
        report << "layer " << i << ": attend " << f[6].first << " >> " << f[6].second
               << ", norm shifts " << attn_shift << " and " << mlp_shift << "\n";
    }
    std::uint32_t norm_shift = 0;
    try {
        norm_shift = m.params.at("norm_shift").get<std::uint32_t>();
    } catch (const std::exception&) {
        return Error{ErrorCode::invalid_input, "params has no norm_shift"};
    }
    if (norm_shift > MAX_REQUANT_SHIFT)
        return Error{ErrorCode::invalid_input, "the final norm shift is larger than 62"};
    w.rmsnorm(h, x, norm, std::uint8_t(norm_shift)).matmul(logits, h, head).argmax(next, logits);
    w.halt();

    w.fill(tok, (*tok_t)->integers).fill(pos_table, (*pos_t)->integers);
    w.fill(norm, (*norm_t)->integers).fill(head, (*head_t)->integers);
    for (const Layer& l : layers) {
        w.fill(l.attn_gain, l.attn_gain_t->integers).fill(l.wqkv, l.wqkv_t->integers);
        w.fill(l.wo, l.wo_t->integers).fill(l.mlp_gain, l.mlp_gain_t->integers);
        w.fill(l.up, l.up_t->integers).fill(l.gelu, l.gelu_t->integers);
        w.fill(l.down, l.down_t->integers);
    }
    for (std::uint32_t r = 0; r < B; ++r) // an empty step: pad at position 0 of each row's slot
        for (std::uint32_t c = 0; c < 3; ++c)
            store_element(w.image, w.t(tokens), r, c, c == 1 ? r : 0);

    PackedCartridge packed;
    CartridgeManifest& mf = packed.manifest;
    mf.min_pxvm_version = PXVM_VERSION;
    mf.name = options.name;
    mf.licence = options.licence;
    mf.description = options.description;
    mf.architecture = "transformer";
    mf.context = T;
    mf.batch = B;
    mf.vocab = m.vocabulary;
    mf.pad_id = 0;
    mf.regions = regions.list;
    nlohmann::json model = {{"config", m.params.at("config")},
                            {"vocab", V},
                            {"quantisation",
                             "i8 weights (one scale per tensor) and activations, an i32 residual "
                             "stream; activation scales calibrated on the calibration text "
                             "(model/quantize_transformer.py)"}};
    if (m.params.contains("evaluation")) model["evaluation"] = m.params["evaluation"];
    for (const auto& [k, v] : weights.metadata)
        if (k != "vocab" && k != "format" && k != "params") model["training"][k] = v;
    mf.extra_json = model.dump();
    packed.image = std::move(w.image);
    if (auto done = finish_cartridge(packed, options); !done) return done.error();
    report << "image " << packed.image.width() << "x" << packed.image.height() << ", "
           << regions.list.size() << " regions, batch " << B << ", context " << T << "\n";
    packed.report = report.str();
    return packed;
}

Result<FloatForward> float_model(const Safetensors& weights) {
    auto model = read_model(weights); // checked and parsed once; the tensors stay in `weights`
    if (!model) return model.error();
    return FloatForward([m = std::move(*model)](const std::vector<std::uint32_t>& window) {
        std::vector<float> x = embed_window(m, window);
        for (const FloatLayer& l : m.hidden)
            x = dense(l, x, true);
        return dense(m.output, x, false);
    });
}

Result<PackedCartridge> pack_cartridge(const Safetensors& weights, std::string_view calibration,
                                       const PackOptions& options) {
    if (const auto f = weights.metadata.find("format");
        f != weights.metadata.end() && f->second == "pxvm-transformer-int")
        return pack_transformer(weights, options);
    auto read = read_model(weights);
    if (!read) return read.error();
    const FloatModel& m = *read;
    const std::uint32_t B = options.batch, K = m.context, V = m.vocab;
    if (B == 0 || B > 32767) return Error{ErrorCode::invalid_input, "--batch must be 1 to 32767"};
    auto calibrated = calibration_windows(m, calibration, options.calibration_windows);
    if (!calibrated) return calibrated.error();
    const auto& windows = *calibrated;
    if (windows.size() < 16)
        return Error{ErrorCode::invalid_input, "the calibration text gives " +
                                                   std::to_string(windows.size()) +
                                                   " windows; at least 16 are needed"};

    // Calibration: each hidden layer's relu outputs over the windows.
    std::vector<std::vector<float>> seen(m.hidden.size());
    for (const auto& w : windows) {
        std::vector<float> x = embed_window(m, w);
        for (std::size_t i = 0; i < m.hidden.size(); ++i) {
            x = dense(m.hidden[i], x, true);
            seen[i].insert(seen[i].end(), x.begin(), x.end());
        }
    }

    // Regions: ids 1.. in this order; activations and slots have B rows.
    const std::uint32_t token_dtype = V <= 256 ? DTYPE_U8 : DTYPE_U16;
    Regions regions;
    const auto add = [&](auto&&... args) { return regions.add(args...); };
    std::ostringstream report;
    const double s_e = max_abs(m.table->values) / 127;
    const auto tokens = add("tokens", "input", token_dtype, B, K);
    const auto table = add("embed.weight", "weight", DTYPE_I8, V, m.embed, s_e);
    const auto x0 = add("x", "activation", DTYPE_I8, B, K * m.embed, s_e);
    report << "embed.weight  i8 " << V << "x" << m.embed << "  scale " << fmt_scale(s_e) << "\n";

    struct QuantLayer {
        std::uint8_t w = 0, b = 0, acc = 0, act = 0;
        std::vector<std::int64_t> wq, bq;
        std::int32_t multiplier = 0;
        std::uint32_t shift = 0;
    };
    std::vector<QuantLayer> layers;
    double s_in = s_e;
    std::int32_t zp_in = 0;
    auto quantize_layer = [&](const FloatLayer& l, const std::string& name) {
        QuantLayer q;
        const double s_w = max_abs(l.weight->values) / 127, s_acc = s_in * s_w;
        q.wq = quantize(l.weight->values, s_w);
        q.bq.resize(l.out);
        for (std::uint32_t n = 0; n < l.out; ++n) {
            std::int64_t row_sum = 0;
            for (std::uint32_t k = 0; k < l.in; ++k)
                row_sum += q.wq[std::size_t(n) * l.in + k];
            q.bq[n] = std::llround(l.bias->values[n] / s_acc) - std::int64_t(zp_in) * row_sum;
        }
        q.w = add(name + ".weight", "weight", DTYPE_I8, l.out, l.in, s_w);
        q.b = add(name + ".bias", "bias", DTYPE_I32, 1, l.out, s_acc);
        report << name << ".weight  i8 " << l.out << "x" << l.in << "  scale " << fmt_scale(s_w)
               << "\n";
        return std::pair{q, s_acc};
    };
    for (std::size_t i = 0; i < m.hidden.size(); ++i) {
        const std::string name = "fc" + std::to_string(i + 1);
        auto [q, s_acc] = quantize_layer(m.hidden[i], name);
        std::vector<float>& v = seen[i];
        const std::size_t at = std::min(v.size() - 1, std::size_t(double(v.size()) * 0.9999));
        std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(at), v.end());
        const double s_a = std::max(double(v[at]), 1e-6) / 255;
        std::tie(q.multiplier, q.shift) = fixed_point(s_acc / s_a);
        q.acc = add(name + ".acc", "activation", DTYPE_I32, B, m.hidden[i].out, s_acc);
        q.act = add(name + ".out", "activation", DTYPE_I8, B, m.hidden[i].out, s_a, -128);
        report << name << ".out  i8, calibrated scale " << fmt_scale(s_a) << " (99.99th percentile "
               << fmt_scale(v[at]) << " over " << windows.size() << " windows), requant "
               << q.multiplier << " >> " << q.shift << "\n";
        layers.push_back(std::move(q));
        s_in = s_a;
        zp_in = -128;
    }
    auto [out, s_logits] = quantize_layer(m.output, "out");
    out.acc = add("logits", "output", DTYPE_I32, B, V, s_logits);
    const auto next = add("next", "output", DTYPE_I32, B, 1);

    // Program: declarations, then embed, the hidden layers, the logits and their argmax.
    const std::uint32_t program_pixels =
        3 * std::uint32_t(regions.list.size()) + 1 + 6 * std::uint32_t(layers.size()) + 3 + 1 + 1;
    auto declared = regions.declare(program_pixels);
    if (!declared) return declared.error();
    ProgramWriter& w = *declared;
    w.embed(x0, table, tokens);
    std::uint8_t in = x0;
    for (const QuantLayer& q : layers) {
        w.matmul(q.acc, in, q.w).add_bias(q.acc, q.b).relu(q.acc, q.acc);
        w.requant(q.act, q.acc, q.multiplier, q.shift, -128);
        in = q.act;
    }
    w.matmul(out.acc, in, out.w).add_bias(out.acc, out.b).argmax(next, out.acc).halt();
    w.fill(table, quantize(m.table->values, s_e));
    for (const QuantLayer& q : layers)
        w.fill(q.w, q.wq).fill(q.b, q.bq);
    w.fill(out.w, out.wq).fill(out.b, out.bq);
    for (std::uint32_t r = 0; r < B; ++r) // empty windows: padding
        for (std::uint32_t c = 0; c < K; ++c)
            store_element(w.image, w.t(tokens), r, c, 0);

    PackedCartridge packed;
    CartridgeManifest& mf = packed.manifest;
    mf.min_pxvm_version = PXVM_VERSION;
    mf.name = options.name;
    mf.licence = options.licence;
    mf.description = options.description;
    mf.architecture = "window-mlp";
    mf.context = K;
    mf.batch = B;
    mf.vocab = m.vocabulary;
    mf.pad_id = 0;
    mf.regions = regions.list;
    nlohmann::json model = {{"embed", m.embed}, {"vocab", V}};
    model["hidden"] = nlohmann::json::array();
    for (const FloatLayer& l : m.hidden)
        model["hidden"].push_back(l.out);
    model["quantisation"] = "i8 weights and activations, one scale per tensor; activation scales "
                            "from the 99.99th percentile over " +
                            std::to_string(windows.size()) + " calibration windows";
    for (const auto& [k, v] : weights.metadata)
        if (k != "vocab" && k != "format") model["training"][k] = v;
    mf.extra_json = model.dump();
    packed.image = std::move(w.image);
    if (auto done = finish_cartridge(packed, options); !done) return done.error();
    report << "image " << packed.image.width() << "x" << packed.image.height() << ", "
           << regions.list.size() << " regions, batch " << B << ", context " << K << "\n";
    packed.report = report.str();
    return packed;
}

} // namespace px
