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
