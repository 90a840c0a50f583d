// A tiny window-MLP model with random weights, as safetensors bytes and packed as cartridges, for
// the cartridge tests on the CPU and on devices.
#pragma once

#include "pxvm/pack.hpp"
#include "pxvm/safetensors.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace pxtest::cartridge {

// A safetensors file as bytes: F32 tensors in the order given, metadata strings.
inline std::vector<std::uint8_t>
safetensors_bytes(const std::vector<std::pair<std::string, px::FloatTensor>>& tensors,
                  const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header;
    header["__metadata__"] = metadata;
    std::uint64_t at = 0;
    for (const auto& [name, t] : tensors) {
        header[name] = {
            {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {at, at + 4 * t.values.size()}}};
        at += 4 * t.values.size();
    }
    std::string text = header.dump();
    while (text.size() % 8)
        text += ' ';
    std::string out;
    for (int i = 0; i < 8; ++i)
        out += char(std::uint8_t(std::uint64_t(text.size()) >> (8 * i)));
    out += text;
    for (const auto& [name, t] : tensors)
        out.append(reinterpret_cast<const char*>(t.values.data()), 4 * t.values.size());
    return std::vector<std::uint8_t>(out.begin(), out.end());
}

inline px::FloatTensor random_tensor(std::mt19937& rng, std::vector<std::uint64_t> shape,
                                     float spread) {
    px::FloatTensor t;
    t.shape = shape;
    std::size_t n = 1;
    for (auto d : shape)
        n *= std::size_t(d);
    std::normal_distribution<float> d(0, spread);
    for (std::size_t i = 0; i < n; ++i)
        t.values.push_back(d(rng));
    return t;
}

inline const std::vector<std::string> vocab = {"",  "\n", " ", ",", ".", "a",
                                               "b", "c",  "d", "e", "é"};

// A small random window MLP: context 4, embedding 5, hidden layers 12 and 9.
inline std::vector<std::uint8_t> tiny_model(std::uint32_t seed = 1) {
    std::mt19937 rng(seed);
    const std::uint64_t v = vocab.size();
    return safetensors_bytes({{"embed.weight", random_tensor(rng, {v, 5}, 1.0f)},
                              {"fc1.weight", random_tensor(rng, {12, 20}, 0.3f)},
                              {"fc1.bias", random_tensor(rng, {12}, 0.1f)},
                              {"fc2.weight", random_tensor(rng, {9, 12}, 0.3f)},
                              {"fc2.bias", random_tensor(rng, {9}, 0.1f)},
                              {"out.weight", random_tensor(rng, {v, 9}, 0.5f)},
                              {"out.bias", random_tensor(rng, {v}, 0.1f)}},
                             {{"format", "pxvm-window-mlp"},
                              {"context", "4"},
                              {"vocab", nlohmann::json(vocab).dump()},
                              {"trained_on", "nothing: random weights for a test"}});
}

inline const std::string calibration = "a bad cab, a dead bed. abc de\nedcba, ébé ace babe cede. ";

inline px::PackedCartridge pack_tiny(std::uint32_t batch = 1) {
    auto weights = px::parse_safetensors(tiny_model(), "tiny.safetensors");
    REQUIRE(weights.ok());
    px::PackOptions options;
    options.batch = batch;
    options.name = "tiny";
    options.licence = "CC0-1.0";
    options.self_test_prompt = "a bad";
    options.self_test_tokens = 12;
    auto packed = px::pack_cartridge(*weights, calibration, options);
    if (!packed) FAIL(packed.error().message);
    return std::move(*packed);
}

/// A packed cartridge through its PNG bytes and back, checked as any file is.
inline px::Cartridge reload(const px::PackedCartridge& p) {
    auto bytes = px::encode_cartridge(p.image, p.manifest);
    REQUIRE(bytes.ok());
    auto c = px::decode_cartridge(*bytes, "tiny.pxa");
    if (!c) FAIL(c.error().message);
    return std::move(*c);
}

} // namespace pxtest::cartridge
