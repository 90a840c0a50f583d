#include "pxvm/evaluate.hpp"

#include "pxvm/pack.hpp"

#include <algorithm>
#include <cmath>

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
    if (!logits) return Error{"the cartridge has no 'logits' region", ErrorCode::invalid_input};
    // Long texts: tokenize in pieces (tokenize refuses more than MAX_PROMPT_CHARS at once).
    std::vector<std::uint32_t> tokens;
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = std::min(text.size(), at + MAX_PROMPT_CHARS);
        while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
            --end; // never split a UTF-8 character
        auto piece = tokenize(m, text.substr(at, end - at));
        if (!piece) return Error{"text: " + piece.error().message, ErrorCode::invalid_input};
        tokens.insert(tokens.end(), piece->begin(), piece->end());
        at = end;
    }
    if (tokens.empty()) return Error{"the text is empty", ErrorCode::invalid_input};
    const std::uint64_t total =
        limit ? std::min<std::uint64_t>(limit, tokens.size()) : tokens.size();
    EvalResult result;
    EvalScore& q = result.cartridge;
    EvalScore f;
    const CartridgeStep step = reference_step();
    Image image = cartridge.image;
    for (std::uint64_t first = 0; first < total; first += m.batch) {
        const std::uint32_t rows = std::uint32_t(std::min<std::uint64_t>(m.batch, total - first));
        std::vector<std::vector<std::uint32_t>> windows;
        for (std::uint32_t r = 0; r < m.batch; ++r) {
            const std::uint64_t pos = first + std::min(r, rows - 1);
            const std::span<const std::uint32_t> history(tokens.data(), std::size_t(pos));
            write_window(image, m, r, history);
            std::vector<std::uint32_t> w(m.context, m.pad_id);
            for (std::uint32_t j = 0; j < m.context; ++j)
                if (pos + j >= m.context) w[j] = tokens[std::size_t(pos + j - m.context)];
            windows.push_back(std::move(w));
        }
        if (auto ran = step(image); !ran) return ran.error();
        const std::vector<std::uint32_t> next = read_next(image, m);
        std::vector<std::vector<float>> fl;
        if (float_weights) {
            windows.resize(rows);
            auto out = float_logits(*float_weights, windows);
            if (!out) return out.error();
            fl = std::move(*out);
        }
        for (std::uint32_t r = 0; r < rows; ++r) {
            const std::uint32_t target = tokens[std::size_t(first + r)];
            const std::vector<std::int64_t> z = read_logits(image, m, r);
            q.accuracy += next[r] == target;
            q.cross_entropy += cross_entropy(z, logits->scale, target);
            if (float_weights) {
                const auto& zf = fl[r];
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
    if (float_weights) {
        f.windows = total;
        f.accuracy /= double(total);
        f.cross_entropy /= double(total);
        result.float_model = f;
    }
    return result;
}

} // namespace px
