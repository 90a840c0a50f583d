#include "pxvm/evaluate.hpp"

#include "pxvm/pack.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

namespace px {
namespace {

// -ln softmax(z)[target] for real-valued logits.
template <class T> double cross_entropy(const std::vector<T>& z, double scale, std::size_t target) {
    double top = -INFINITY;
    for (T v : z)
        top = std::max(top, double(v) * scale);
    double sum = 0;
    for (T v : z)
        sum += std::exp(double(v) * scale - top);
    return std::log(sum) + top - double(z[target]) * scale;
}

// A transformer over the text in chunks of `context` targets, one chunk per row at a time, each
// fed from position 0 (the first input the pad, then the character before the chunk), as
// model/train_transformer.py scores chunked windows.
Result<EvalResult> evaluate_transformer(const Cartridge& cartridge,
                                        const std::vector<std::uint32_t>& tokens,
                                        std::uint64_t total) {
    const CartridgeManifest& m = cartridge.manifest;
    const double scale = m.region("logits")->scale;
    const std::uint64_t T = m.context, chunks = (total + T - 1) / T;
    struct Row {
        std::uint64_t chunk = 0, t = 0;
        bool busy = false;
    };
    std::vector<Row> rows(m.batch);
    std::uint64_t next_chunk = 0;
    const auto take = [&](Row& r) {
        r.busy = next_chunk < chunks;
        r.chunk = next_chunk++;
        r.t = 0;
    };
    for (Row& r : rows)
        take(r);
    EvalResult result;
    EvalScore& q = result.cartridge;
    const CartridgeStep step = reference_step();
    Image image = cartridge.image;
    while (std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.busy; })) {
        for (std::uint32_t r = 0; r < m.batch; ++r) {
            const Row& row = rows[r];
            const std::uint64_t at = row.chunk * T + row.t; // the target's index
            write_step(image, m, r, row.busy && at > 0 ? tokens[at - 1] : m.pad_id,
                       std::uint32_t(row.busy ? row.t : 0));
        }
        if (auto ran = step(image); !ran) return ran.error();
        const std::vector<std::uint32_t> next = read_next(image, m);
        for (std::uint32_t r = 0; r < m.batch; ++r) {
            Row& row = rows[r];
            if (!row.busy) continue;
            const std::uint64_t at = row.chunk * T + row.t;
            const std::uint32_t target = tokens[at];
            q.accuracy += next[r] == target;
            q.cross_entropy += cross_entropy(read_logits(image, m, r), scale, target);
            if (++row.t == T || at + 1 == total) take(row);
        }
    }
    q.windows = total;
    q.accuracy /= double(total);
    q.cross_entropy /= double(total);
    return result;
}

} // namespace

Result<EvalResult> evaluate(const Cartridge& cartridge, std::string_view text, std::uint64_t limit,
                            const Safetensors* float_weights) {
    const CartridgeManifest& m = cartridge.manifest;
    const CartridgeRegion* logits = m.region("logits");
    if (!logits) return Error{ErrorCode::invalid_input, "the cartridge has no 'logits' region"};
    auto ids = tokenize_text(m, text);
    if (!ids) return ids.error();
    const std::vector<std::uint32_t>& tokens = *ids;
    if (tokens.empty()) return Error{ErrorCode::invalid_input, "the text is empty"};
    std::optional<FloatForward> float_forward;
    if (float_weights) {
        auto forward = float_model(*float_weights);
        if (!forward) return forward.error();
        float_forward = std::move(*forward);
    }
    const std::uint64_t total =
        limit ? std::min<std::uint64_t>(limit, tokens.size()) : tokens.size();
    if (m.architecture == "transformer") {
        if (float_weights)
            return Error{ErrorCode::invalid_input,
                         "--float scores a window MLP's float twin; a transformer's is scored by "
                         "model/quantize_transformer.py"};
        return evaluate_transformer(cartridge, tokens, total);
    }
    EvalResult result;
    EvalScore& q = result.cartridge;
    EvalScore f;
    const CartridgeStep step = reference_step();
    Image image = cartridge.image;
    for (std::uint64_t first = 0; first < total; first += m.batch) {
        const std::uint32_t rows = std::uint32_t(std::min<std::uint64_t>(m.batch, total - first));
        for (std::uint32_t r = 0; r < m.batch; ++r) // rows past the text repeat its last window
            write_window(image, m, r,
                         std::span(tokens.data(), std::size_t(first + std::min(r, rows - 1))));
        if (auto ran = step(image); !ran) return ran.error();
        const std::vector<std::uint32_t> next = read_next(image, m);
        for (std::uint32_t r = 0; r < rows; ++r) {
            const std::uint32_t target = tokens[std::size_t(first + r)];
            const std::vector<std::int64_t> z = read_logits(image, m, r);
            q.accuracy += next[r] == target;
            q.cross_entropy += cross_entropy(z, logits->scale, target);
            if (float_forward) {
                const std::vector<float> zf = (*float_forward)(
                    window_of(m, std::span(tokens.data(), std::size_t(first + r))));
                const auto best =
                    std::uint32_t(std::max_element(zf.begin(), zf.end()) - zf.begin());
                f.accuracy += best == target;
                f.cross_entropy += cross_entropy(zf, 1.0, target);
                result.agree += best == next[r];
            }
        }
    }
    q.windows = total;
    q.accuracy /= double(total);
    q.cross_entropy /= double(total);
    if (float_forward) {
        f.windows = total;
        f.accuracy /= double(total);
        f.cross_entropy /= double(total);
        result.float_model = f;
    }
    return result;
}

} // namespace px
