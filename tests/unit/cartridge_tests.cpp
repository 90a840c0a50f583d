// Cartridges: the safetensors reader, pxc pack's quantisation and layout, the manifest and its
// checks (format version, checksum, regions against the program row), tokenizing, generation on
// the reference, and every bad input the cartridge issue lists, through the library and the tools.
#include "cartridge_support.hpp"
#include "command_runner.hpp"
#include "pxvm/program_writer.hpp"

#include "pxvm/cartridge.hpp"
#include "pxvm/evaluate.hpp"
#include "pxvm/pack.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/safetensors.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

namespace {

using pxtest::CommandRunner;
using pxtest::tool_path;
using namespace pxtest::cartridge;

// The manifest JSON of a packed cartridge, changed by `edit`, re-encoded and decoded.
px::Result<px::Cartridge> with_manifest(const px::PackedCartridge& p,
                                        const std::function<void(nlohmann::json&)>& edit,
                                        bool keep_checksum = true) {
    nlohmann::json j = nlohmann::json::parse(px::manifest_to_json(p.manifest));
    edit(j);
    auto m = px::manifest_from_json(j.dump(), "edited");
    if (!m) return m.error();
    if (!keep_checksum) m->pixels_sha256 = px::cartridge_pixels_sha256(p.image, *m);
    auto bytes = px::encode_cartridge(p.image, *m);
    REQUIRE(bytes.ok());
    return px::decode_cartridge(*bytes, "edited.pxa");
}

// The packed cartridge's manifest text with a "model" member of raw JSON `model` added.
std::string manifest_with_model(const px::PackedCartridge& p, const std::string& model) {
    std::string text = px::manifest_to_json(p.manifest);
    const auto end = text.rfind('}');
    REQUIRE(end != std::string::npos);
    return text.substr(0, end) + ", \"model\": " + model + "}";
}

// `depth` nested arrays.
std::string nested_arrays(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

} // namespace

TEST_CASE("safetensors: a valid file reads back value for value", "[cartridge][safetensors]") {
    const auto bytes = tiny_model();
    auto st = px::parse_safetensors(bytes, "tiny.safetensors");
    REQUIRE(st.ok());
    REQUIRE(st->tensors.size() == 7);
    CHECK(st->tensors.at("fc1.weight").shape == std::vector<std::uint64_t>{12, 20});
    CHECK(st->metadata.at("context") == "4");
    std::mt19937 rng(1);
    const auto first = random_tensor(rng, {vocab.size(), 5}, 1.0f);
    CHECK(st->tensors.at("embed.weight").values == first.values);
}

TEST_CASE("safetensors: malformed files are refused with the reason", "[cartridge][safetensors]") {
    const auto good = tiny_model();
    auto refused = [](std::vector<std::uint8_t> bytes, const std::string& words) {
        auto st = px::parse_safetensors(bytes, "bad.safetensors");
        REQUIRE_FALSE(st.ok());
        INFO(st.error().message);
        CHECK(st.error().message.find("bad.safetensors") != std::string::npos);
        CHECK(st.error().message.find(words) != std::string::npos);
    };
    refused({1, 2, 3}, "shorter than");
    auto huge = good;
    huge[5] = 0x10; // a header length of 2^44 bytes
    refused(huge, "at most 100 MB");
    auto past_end = good;
    past_end[0] = 0xFF, past_end[1] = 0xFF, past_end[2] = 0x0F; // ~1 MB header in a small file
    refused(past_end, "header of");
    refused(std::vector<std::uint8_t>(good.begin(), good.end() - 4), "outside");
    auto extra = good;
    extra.insert(extra.end(), {0, 0, 0, 0});
    refused(extra, "bytes after the last tensor");
    auto not_json = good;
    not_json[8] = '[';
    refused(not_json, "not a JSON object");
    std::mt19937 rng(2);
    px::FloatTensor a = random_tensor(rng, {2, 2}, 1);
    auto half = safetensors_bytes({{"a", a}}, {});
    const std::string text(half.begin() + 8, half.end() - 16);
    std::string f16 = text;
    f16.replace(f16.find("F32"), 3, "F16");
    std::vector<std::uint8_t> f16_bytes(half.begin(), half.begin() + 8);
    f16_bytes.insert(f16_bytes.end(), f16.begin(), f16.end());
    f16_bytes.insert(f16_bytes.end(), half.end() - 16, half.end());
    refused(f16_bytes, "is F16");
    std::string wrong = text;
    wrong.replace(wrong.find("[2,2]"), 5, "[2,3]");
    std::vector<std::uint8_t> wrong_bytes(half.begin(), half.begin() + 8);
    wrong_bytes.insert(wrong_bytes.end(), wrong.begin(), wrong.end());
    wrong_bytes.insert(wrong_bytes.end(), half.end() - 16, half.end());
    refused(wrong_bytes, "16 bytes for 6 F32 values");
}

TEST_CASE("safetensors: a header nested 10^5 levels deep is refused, long names cut",
          "[cartridge][safetensors]") {
    const auto with_header = [](const std::string& header) {
        std::string file;
        for (int i = 0; i < 8; ++i)
            file += char(std::uint8_t(std::uint64_t(header.size()) >> (8 * i)));
        file += header;
        return std::vector<std::uint8_t>(file.begin(), file.end());
    };
    auto deep = px::parse_safetensors(with_header(R"({"a": )" + nested_arrays(100000) + "}"), "d");
    REQUIRE_FALSE(deep.ok());
    CHECK_THAT(deep.error().message, Catch::Contains("nested deeper than 64 levels"));
    const std::string long_key(1 << 20, 'x');
    auto long_name = px::parse_safetensors(with_header(R"({")" + long_key + R"(": 1})"), "b");
    REQUIRE_FALSE(long_name.ok());
    CHECK_THAT(long_name.error().message, Catch::Contains("tensor 'xxxxxxxx"));
    CHECK(long_name.error().message.size() < 200);
}

TEST_CASE("pack: the quantised cartridge tracks its float twin", "[cartridge][pack]") {
    const px::PackedCartridge p = pack_tiny();
    const px::Cartridge c = reload(p);
    CHECK(c.manifest.batch == 1);
    CHECK(c.manifest.context == 4);
    CHECK(c.manifest.vocab == vocab);
    CHECK(c.manifest.self_test_tokens == 12);
    // The program row declares exactly the manifest's regions and runs to HALT.
    const px::Plan plan = px::plan_program(c.image);
    CHECK_FALSE(plan.fault);
    CHECK(plan.halted);
    // Over windows of the calibration text the integer logits follow the float ones.
    auto weights = px::parse_safetensors(tiny_model(), "tiny.safetensors");
    REQUIRE(weights.ok());
    auto scored = px::evaluate(c, calibration, 0, &*weights);
    REQUIRE(scored.ok());
    INFO("agree on " << scored->agree << " of " << scored->cartridge.windows);
    CHECK(double(scored->agree) >= 0.8 * double(scored->cartridge.windows));
    CHECK(std::fabs(scored->cartridge.cross_entropy - scored->float_model->cross_entropy) < 0.2);
}

TEST_CASE("pack: batch rows compute the same windows as batch 1", "[cartridge][pack]") {
    const px::Cartridge one = reload(pack_tiny(1));
    const px::Cartridge four = reload(pack_tiny(4));
    CHECK(four.manifest.batch == 4);
    auto prompt = [&](const std::string& text) { return *px::tokenize(one.manifest, text); };
    const std::vector<std::vector<std::uint32_t>> prompts = {prompt("a bad"), prompt("cab"),
                                                             prompt("é"), prompt("dead bed. ")};
    px::GenerateOptions g;
    g.tokens = 9;
    px::Image batch_image = four.image;
    auto batched = px::generate(batch_image, four.manifest, prompts, g, px::reference_step());
    REQUIRE(batched.ok());
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        px::Image image = one.image;
        auto alone = px::generate(image, one.manifest, {prompts[i]}, g, px::reference_step());
        REQUIRE(alone.ok());
        CHECK(alone->front() == (*batched)[i]);
    }
    px::Image image = one.image;
    auto too_many = px::generate(image, one.manifest, prompts, g, px::reference_step());
    REQUIRE_FALSE(too_many.ok());
    CHECK(too_many.error().message.find("more than the 1 windows") != std::string::npos);
}

TEST_CASE("cartridge: tokenizing refuses empty, over-long and foreign text", "[cartridge]") {
    const px::Cartridge c = reload(pack_tiny());
    auto ids = px::tokenize(c.manifest, "a é\n");
    REQUIRE(ids.ok());
    CHECK(*ids == std::vector<std::uint32_t>{5, 2, 10, 1});
    CHECK(px::detokenize(c.manifest, *ids) == "a é\n");
    auto message = [&](const std::string& text) {
        auto r = px::tokenize(c.manifest, text);
        REQUIRE_FALSE(r.ok());
        return r.error().message;
    };
    CHECK(message("").find("empty") != std::string::npos);
    CHECK(message("abz").find("character 'z' at position 2") != std::string::npos);
    CHECK(message("a\tb").find("'\\t' (tab)") != std::string::npos);
    CHECK(message("a\xff").find("not UTF-8") != std::string::npos);
    CHECK(message(std::string(px::MAX_PROMPT_CHARS + 1, 'a')).find("longer than 65536") !=
          std::string::npos);
}

TEST_CASE("cartridge: bad files and manifests are refused with the reason", "[cartridge]") {
    const px::PackedCartridge p = pack_tiny();
    auto refused = [](const px::Result<px::Cartridge>& r, const std::string& words) {
        REQUIRE_FALSE(r.ok());
        INFO(r.error().message);
        CHECK(r.error().message.find(words) != std::string::npos);
    };
    SECTION("one changed weight pixel is a checksum mismatch") {
        px::PackedCartridge changed = p;
        const px::Tensor& w = changed.manifest.region("fc1.weight")->tensor;
        px::Pixel px = changed.image.pixel(w.x + 1, w.y + 2);
        px.g ^= 1;
        changed.image.set_pixel(w.x + 1, w.y + 2, px);
        auto bytes = px::encode_cartridge(changed.image, changed.manifest);
        REQUIRE(bytes.ok());
        refused(px::decode_cartridge(*bytes, "x.pxa"), "checksum mismatch");
    }
    SECTION("the input and output slots are outside the checksum") {
        px::PackedCartridge changed = p;
        px::write_window(changed.image, changed.manifest, 0, std::vector<std::uint32_t>{1, 2, 3});
        auto bytes = px::encode_cartridge(changed.image, changed.manifest);
        REQUIRE(px::decode_cartridge(*bytes, "x.pxa").ok());
    }
    SECTION("a newer format version names the pxVM it needs") {
        refused(with_manifest(p,
                              [](nlohmann::json& j) {
                                  j["format_version"] = 2;
                                  j["min_pxvm_version"] = "9.0.0";
                              }),
                "needs pxVM 9.0.0");
    }
    SECTION("regions that disagree with the program row") {
        refused(with_manifest(
                    p, [](nlohmann::json& j) { j["regions"][3]["rows"] = 11; }, false),
                "disagrees with tensor 4 of the program row");
        refused(with_manifest(
                    p, [](nlohmann::json& j) { j["regions"][0]["tensor"] = 200; }, false),
                "never declares");
    }
    SECTION("a program row whose one run needs more than 10^10 reference operations") {
        // The tiny cartridge's program, then a 2048 x 2048 x 4096 matmul (1.7e10 multiply-adds)
        // over new pixels beside and below it, checksummed anew.
        const std::uint32_t w0 = p.image.width(), h0 = p.image.height();
        px::ProgramWriter big(std::max(w0, 2048u), h0 + 4096);
        for (std::uint32_t y = 0; y < h0; ++y)
            for (std::uint32_t x = 0; x < w0; ++x)
                big.image.set_pixel(x, y, p.image.pixel(x, y));
        const px::Plan plan = px::plan_program(p.image);
        REQUIRE(plan.halted);
        big.pc = plan.steps.back().instruction.pc + plan.steps.back().instruction.length;
        big.tensor(250, px::DTYPE_I8, 0, h0, 2048, 4096)
            .tensor(251, px::DTYPE_I8, 1024, h0, 2048, 4096)
            .tensor(252, px::DTYPE_I32, 0, h0 + 2048, 2048, 2048)
            .matmul(252, 250, 251)
            .halt();
        px::CartridgeManifest m = p.manifest;
        m.pixels_sha256 = px::cartridge_pixels_sha256(big.image, m);
        auto bytes = px::encode_cartridge(big.image, m);
        REQUIRE(bytes.ok());
        refused(px::decode_cartridge(*bytes, "big.pxa"),
                "big.pxa: one step of generation: the program needs 1.7·10^10 operations");
    }
    SECTION("missing or malformed manifest fields") {
        refused(with_manifest(p, [](nlohmann::json& j) { j.erase("tokenizer"); }),
                "missing or wrong field");
        refused(with_manifest(p, [](nlohmann::json& j) { j["architecture"] = "rnn"; }),
                "architecture 'rnn'");
        // A window MLP's input slot (batch x context) is not a transformer's (batch x 3).
        refused(with_manifest(p, [](nlohmann::json& j) { j["architecture"] = "transformer"; }),
                "region 'tokens' of a transformer is not i32 batch x 3");
        refused(with_manifest(p, [](nlohmann::json& j) { j["tokenizer"]["vocab"][3] = "ab"; }),
                "not one UTF-8 character");
        refused(with_manifest(p, [](nlohmann::json& j) { j["batch"] = 2; }),
                "'tokens' is not batch x context");
    }
    SECTION("a PNG without a manifest, and corrupt bytes") {
        auto plain = px::decode_cartridge(px::encode_png(p.image), "plain.png");
        refused(plain, "no cartridge manifest");
        auto bytes = *px::encode_cartridge(p.image, p.manifest);
        bytes[bytes.size() / 2] ^= 0x40;
        refused(px::decode_cartridge(bytes, "flipped.pxa"), "flipped.pxa");
        auto not_json = px::manifest_from_json("{not json", "m");
        REQUIRE_FALSE(not_json.ok());
        CHECK(not_json.error().message.find("not a JSON object") != std::string::npos);
    }
}

TEST_CASE("the shipped cartridge: the documented commands, its figures, and its rebuild",
          "[cartridge][cli][docs]") {
    const std::string root = PXVM_SOURCE_DIR;
    CommandRunner pxc(tool_path("pxc"), "pxc_shipped");
    REQUIRE(pxc.tool_exists());
    // docs/CARTRIDGE.md and README.md: pxc inspect assets/kjv.pxa
    auto inspected = pxc.run("inspect " + root + "/assets/kjv.pxa");
    INFO(inspected.err);
    REQUIRE(inspected.exit_code == 0);
    CHECK(inspected.out.find("kjv-char-window (window-mlp, cartridge format 1") !=
          std::string::npos);
    CHECK(inspected.out.find("(verified)") != std::string::npos);
    // docs/CARTRIDGE.md: the map of the regions (docs/kjv_cartridge.png is this picture)
    const std::string map = (pxc.dir() / "map.png").string();
    auto drawn = pxc.run("render " + root + "/assets/kjv.pxa -o " + map + " --scale 1 --regions");
    CHECK(drawn.exit_code == 0);
    CHECK(drawn.out.find("4  fc1.weight (weight, i8 512x384)") != std::string::npos);
    auto picture = px::load_png(map);
    auto committed = px::load_png(root + "/docs/kjv_cartridge.png");
    REQUIRE(picture.ok());
    REQUIRE(committed.ok());
    CHECK(*picture == *committed);
    // docs/CARTRIDGE.md: pxc pack with the documented flags rebuilds assets/kjv.pxa exactly from
    // the committed weights (model/rebuild.sh runs the same command).
    const std::string rebuilt = (pxc.dir() / "kjv.pxa").string();
    auto packed = pxc.run(
        "pack " + root + "/assets/kjv-window.safetensors --calibration " + root +
        "/assets/kjv/calibration.txt -o " + rebuilt +
        " --name kjv-char-window --licence 'CC0-1.0 (weights); text: public domain' --description "
        "'character model of the King James Bible: the last 16 characters, embeddings of 24, one "
        "hidden layer of 512' --self-test-prompt 'And God said' --self-test-tokens 80");
    INFO(packed.err);
    REQUIRE(packed.exit_code == 0);
    auto shipped = px::load_cartridge(root + "/assets/kjv.pxa");
    auto again = px::load_cartridge(rebuilt);
    REQUIRE(shipped.ok());
    REQUIRE(again.ok());
    CHECK(again->image == shipped->image);
    CHECK(again->manifest_json == shipped->manifest_json);
    // benchmarks/RESULTS.md: the cartridge's held-out figures, on the whole held-out text.
    auto scored =
        pxc.run("eval " + root + "/assets/kjv.pxa " + root + "/assets/kjv/heldout.txt --float " +
                root + "/assets/kjv-window.safetensors");
    INFO(scored.err);
    REQUIRE(scored.exit_code == 0);
    CHECK(scored.out.find("429824 windows") != std::string::npos);
    CHECK(scored.out.find("cartridge (pxVM reference, integer)        60.25%      1.384 nats") !=
          std::string::npos);
    CHECK(scored.out.find("float twin (--float)                       60.30%      1.384 nats") !=
          std::string::npos);
    // docs/CARTRIDGE.md: the reference alone continues the prompt as the self-test says.
    CommandRunner pxrun(tool_path("pxrun"), "pxrun_shipped");
    auto ran = pxrun.run("--device cpu " + root +
                         "/assets/kjv.pxa --prompt \"And God said\" --tokens 200");
    CHECK(ran.exit_code == 0);
    CHECK(ran.out.rfind("And God said" + shipped->manifest.self_test_expect, 0) == 0);
    CHECK(ran.out.size() == std::string("And God said").size() + 200 + 1);
    // docs/CARTRIDGE.md: a batch-64 cartridge of the same weights; each prompt of a batch run
    // continues as it does alone in the batch-1 cartridge.
    const std::string b64 = (pxc.dir() / "kjv-b64.pxa").string();
    auto batch_packed = pxc.run("pack " + root + "/assets/kjv-window.safetensors --calibration " +
                                root + "/assets/kjv/calibration.txt -o " + b64 + " --batch 64");
    REQUIRE(batch_packed.exit_code == 0);
    pxtest::write_text(pxrun.dir() / "prompts.txt", "In the beginning\nAnd it came to pass\n"
                                                    "The LORD is my shepherd\n");
    auto batch = pxrun.run("--device cpu " + b64 + " --batch " +
                           (pxrun.dir() / "prompts.txt").string() + " --tokens 30");
    INFO(batch.err);
    REQUIRE(batch.exit_code == 0);
    std::string alone;
    for (const char* p : {"In the beginning", "And it came to pass", "The LORD is my shepherd"})
        alone += pxrun
                     .run("--device cpu " + root + "/assets/kjv.pxa --tokens 30 --prompt '" +
                          std::string(p) + "'")
                     .out;
    CHECK(batch.out == alone);
}

TEST_CASE("pxc pack, inspect and eval, and pxrun runs the cartridge on the reference",
          "[cartridge][cli]") {
    CommandRunner pxc(tool_path("pxc"), "pxc_cartridge");
    REQUIRE(pxc.tool_exists());
    const auto model = pxc.dir() / "tiny.safetensors";
    const auto bytes = tiny_model();
    pxtest::write_text(model, std::string(bytes.begin(), bytes.end()));
    pxtest::write_text(pxc.dir() / "calib.txt", calibration);
    const auto cart = (pxc.dir() / "tiny.pxa").string();
    auto packed =
        pxc.run("pack " + model.string() + " --calibration " + (pxc.dir() / "calib.txt").string() +
                " -o " + cart + " --name tiny --self-test-prompt 'a bad' --self-test-tokens 12");
    INFO(packed.out << packed.err);
    REQUIRE(packed.exit_code == 0);
    CHECK(packed.out.find("fc2.out  i8, calibrated scale") != std::string::npos);

    auto inspected = pxc.run("inspect " + cart);
    CHECK(inspected.exit_code == 0);
    CHECK(inspected.out.find("checksum sha256") != std::string::npos);
    CHECK(inspected.out.find("fc1.weight") != std::string::npos);
    auto as_json = pxc.run("inspect --json " + cart);
    CHECK(nlohmann::json::parse(as_json.out)["name"] == "tiny");

    auto scored = pxc.run("eval " + cart + " " + (pxc.dir() / "calib.txt").string() + " --float " +
                          model.string() + " --json " + (pxc.dir() / "eval.json").string());
    CHECK(scored.exit_code == 0);
    const auto eval = nlohmann::json::parse(pxtest::read_text(pxc.dir() / "eval.json"));
    CHECK(eval["windows"] == calibration.size() - 2); // "é" is one token of two bytes

    CommandRunner pxrun(tool_path("pxrun"), "pxrun_cartridge");
    auto self_test = pxrun.run("--device cpu " + cart);
    INFO(self_test.err);
    CHECK(self_test.exit_code == 0);
    CHECK(self_test.err.find("self-test passed") != std::string::npos);
    auto sampled = [&](int seed) {
        auto r = pxrun.run("--device cpu " + cart +
                           " --prompt 'a b' --tokens 40 --temperature 1.5 "
                           "--seed " +
                           std::to_string(seed));
        CHECK(r.exit_code == 0);
        return r.out;
    };
    CHECK(sampled(7) == sampled(7)); // a seed gives one text
    CHECK(sampled(7) != sampled(8));
    auto mixed = pxrun.run("--device cpu " + cart + " --self-test --tokens 3");
    CHECK(mixed.exit_code == 1);
    auto foreign = pxrun.run("--device cpu " + cart + " --prompt 'abz'");
    CHECK(foreign.exit_code == 1);
    CHECK(foreign.err.find("character 'z' at position 2") != std::string::npos);
    auto empty = pxrun.run("--device cpu " + cart + " --prompt ''");
    CHECK(empty.exit_code == 1);
    pxtest::write_text(pxrun.dir() / "two.txt", "a\nb\n");
    auto batch = pxrun.run("--device cpu " + cart + " --batch " +
                           (pxrun.dir() / "two.txt").string() + " --tokens 3");
    CHECK(batch.exit_code == 1);
    CHECK(batch.err.find("2 prompts are more than the 1 windows") != std::string::npos);
    auto plain = pxrun.run("--device cpu " + std::string(PXVM_SOURCE_DIR) +
                           "/assets/dot_test.pxi --prompt abc");
    CHECK(plain.exit_code == 1);
    CHECK(plain.err.find("no cartridge manifest") != std::string::npos);
}

TEST_CASE("cartridge: a manifest nested 10^5 levels deep is refused, not a stack overflow",
          "[cartridge][cli]") {
    const px::PackedCartridge p = pack_tiny();
    // 64 levels of arrays and objects (the manifest's object and 63 arrays) are read...
    auto deepest = px::manifest_from_json(manifest_with_model(p, nested_arrays(63)), "m.pxa");
    REQUIRE(deepest.ok());
    CHECK(deepest->extra_json == nested_arrays(63));
    // ... one more is refused, and so are 10^5 (a 200 KB manifest), which crashed the reader.
    for (std::size_t depth : {64, 100000}) {
        INFO(depth);
        auto refused =
            px::manifest_from_json(manifest_with_model(p, nested_arrays(depth)), "m.pxa");
        REQUIRE_FALSE(refused.ok());
        CHECK_THAT(refused.error().message,
                   Catch::StartsWith("m.pxa: manifest: ") &&
                       Catch::Contains("nested deeper than 64 levels of arrays and objects"));
    }
    // The tools that read the cartridge say the same, with exit status 1.
    CommandRunner pxc(tool_path("pxc"), "pxc_deep_manifest");
    REQUIRE(pxc.tool_exists());
    const auto file = pxc.dir() / "deep.pxa";
    auto png = px::encode_png_with_itxt(p.image, px::CARTRIDGE_KEYWORD,
                                        manifest_with_model(p, nested_arrays(100000)));
    REQUIRE(png.ok());
    REQUIRE(px::write_file_atomic(file.string(), std::span<const std::uint8_t>(*png)).ok());
    CommandRunner pxrun(tool_path("pxrun"), "pxrun_deep_manifest");
    for (const auto& [runner, arguments] :
         {std::pair{&pxc, "inspect " + file.string()},
          std::pair{&pxc, "render --regions " + file.string() + " -o " +
                              (pxc.dir() / "map.png").string()},
          std::pair{&pxrun, "--device cpu " + file.string()}}) {
        INFO(arguments);
        const auto result = runner->run(arguments);
        CHECK(result.exit_code == 1);
        CHECK_THAT(result.err, Catch::Contains("nested deeper than 64 levels"));
        CHECK(result.err.size() < 400);
    }
}

TEST_CASE("cartridge: manifest errors quote untrusted text cut to a few dozen characters",
          "[cartridge]") {
    const px::PackedCartridge p = pack_tiny();
    const std::string huge(1 << 20, 'x');
    auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& words) {
        auto r = with_manifest(p, edit);
        REQUIRE_FALSE(r.ok());
        INFO(r.error().message.substr(0, 300));
        CHECK_THAT(r.error().message, Catch::Contains(words));
        CHECK(r.error().message.size() < 200);
    };
    refused([&](nlohmann::json& j) { j["architecture"] = huge; }, "architecture 'xxxxxxxx");
    refused(
        [&](nlohmann::json& j) {
            j["regions"][0]["dtype"] = "nope";
            j["regions"][0]["name"] = huge;
        },
        "has an unknown dtype");
    refused([&](nlohmann::json& j) { j["regions"][0]["role"] = huge; }, "has an unknown role");
    refused(
        [&](nlohmann::json& j) {
            j["format_version"] = 7;
            j["min_pxvm_version"] = huge;
        },
        "needs pxVM xxxx");
    // A parse error quotes the text it stopped at, cut too.
    auto not_json = px::manifest_from_json("{\"a\": \"" + huge, "m.pxa");
    REQUIRE_FALSE(not_json.ok());
    CHECK_THAT(not_json.error().message, Catch::Contains("not a JSON object"));
    CHECK(not_json.error().message.size() < 300);
}

TEST_CASE("cartridge: a self-test generates 1 to 4096 tokens, the file chooses no more work",
          "[cartridge][cli]") {
    const px::PackedCartridge p = pack_tiny();
    const auto self_test = [&](std::uint64_t tokens) {
        return with_manifest(p, [&](nlohmann::json& j) { j["self_test"]["tokens"] = tokens; });
    };
    CHECK(px::MAX_SELF_TEST_TOKENS == 4096);
    CHECK(self_test(4096).ok());
    for (std::uint64_t tokens : {std::uint64_t(4097), std::uint64_t(4294967295u)}) {
        auto refused = self_test(tokens);
        REQUIRE_FALSE(refused.ok());
        CHECK_THAT(refused.error().message,
                   Catch::Contains("self_test.tokens is " + std::to_string(tokens) +
                                   "; a self-test generates 1 to 4096 tokens"));
    }
    // 0 tokens is no self-test (it printed "-nan us" per step on a device).
    auto none = self_test(0);
    REQUIRE_FALSE(none.ok());
    CHECK_THAT(none.error().message, Catch::Contains("self_test.tokens is 0"));
    // Without a prompt there is no self-test, and 0 tokens is how the manifest says so.
    CHECK(with_manifest(p, [](nlohmann::json& j) {
              j["self_test"] = {{"prompt", ""}, {"tokens", 0}, {"expect", ""}};
          }).ok());

    // pxrun refuses the file at once; pxc pack refuses to write one.
    CommandRunner pxrun(tool_path("pxrun"), "pxrun_self_test_tokens");
    REQUIRE(pxrun.tool_exists());
    nlohmann::json j = nlohmann::json::parse(px::manifest_to_json(p.manifest));
    j["self_test"]["tokens"] = 4294967295u;
    auto png = px::encode_png_with_itxt(p.image, px::CARTRIDGE_KEYWORD, j.dump());
    REQUIRE(png.ok());
    const auto file = pxrun.dir() / "endless.pxa";
    REQUIRE(px::write_file_atomic(file.string(), std::span<const std::uint8_t>(*png)).ok());
    const auto ran = pxrun.run("--device cpu " + file.string());
    CHECK(ran.exit_code == 1);
    CHECK_THAT(ran.err, Catch::Contains("a self-test generates 1 to 4096 tokens"));
    auto weights = px::parse_safetensors(tiny_model(), "tiny.safetensors");
    REQUIRE(weights.ok());
    for (std::uint32_t tokens : {0u, 4097u}) {
        px::PackOptions options;
        options.self_test_prompt = "a bad";
        options.self_test_tokens = tokens;
        auto packed = px::pack_cartridge(*weights, calibration, options);
        REQUIRE_FALSE(packed.ok());
        CHECK_THAT(packed.error().message, Catch::Contains("1 to 4096 tokens"));
    }
}

TEST_CASE("cartridge: regions are checked for count, duplicates and overlap before the checksum",
          "[cartridge]") {
    const px::PackedCartridge p = pack_tiny();
    auto refused = [](const px::Result<px::Cartridge>& r, const std::string& words) {
        REQUIRE_FALSE(r.ok());
        INFO(r.error().message);
        CHECK(r.error().message.find(words) != std::string::npos);
    };
    // 10^5 copies of one region: refused by their count, as soon as they are parsed (each copy
    // used to cost a pass of the checksum over every pixel).
    nlohmann::json copies = nlohmann::json::parse(px::manifest_to_json(p.manifest));
    for (int i = 0; i < 100000; ++i)
        copies["regions"].push_back(copies["regions"][0]);
    const std::string text = copies.dump();
    const auto start = std::chrono::steady_clock::now();
    auto many = px::manifest_from_json(text, "many.pxa");
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    REQUIRE_FALSE(many.ok());
    CHECK(many.error().message ==
          "many.pxa: manifest: " + std::to_string(p.manifest.regions.size() + 100000) +
              " regions; a cartridge has at most 256 (one per tensor id)");
    // Two regions of one name or of one tensor, and regions that share pixels.
    refused(with_manifest(p,
                          [](nlohmann::json& j) {
                              j["regions"].push_back(j["regions"][3]);
                              j["regions"].back()["name"] = "again";
                          }),
            "regions '" + p.manifest.regions[3].name + "' and 'again' are both tensor");
    refused(with_manifest(p,
                          [](nlohmann::json& j) {
                              j["regions"].push_back(j["regions"][3]);
                              j["regions"].back()["tensor"] = 250;
                          }),
            "two regions are called '" + p.manifest.regions[3].name + "'");
    refused(with_manifest(p,
                          [](nlohmann::json& j) {
                              nlohmann::json extra = j["regions"][3];
                              extra["name"] = "extra";
                              extra["tensor"] = 250;
                              extra["x"] = extra["x"].get<std::uint32_t>() + 1;
                              j["regions"].push_back(extra);
                          }),
            "and 'extra' overlap");
    // Regions near the 32-bit limits do not wrap around into an overlap, or out of one.
    refused(with_manifest(p,
                          [](nlohmann::json& j) {
                              nlohmann::json far = j["regions"][3];
                              far["name"] = "far";
                              far["tensor"] = 251;
                              far["x"] = 4294967295u;
                              far["cols"] = 4294967295u;
                              far["dtype"] = "i32";
                              j["regions"].push_back(far);
                          }),
            "region 'far' is tensor 251, which the program row never declares");
}

TEST_CASE("cartridge: the checksum costs the pixels, not pixels x regions", "[cartridge]") {
    // 256 run-time regions of one pixel over a 4096 x 2048 image.
    px::Image image(4096, 2048);
    px::CartridgeManifest m;
    for (std::uint32_t i = 0; i < 256; ++i) {
        px::CartridgeRegion r;
        r.name = "a" + std::to_string(i);
        r.role = "activation";
        r.id = i;
        r.tensor = {i * 13 % 4096, i * 7 % 2048, 1, 4, px::DTYPE_I8};
        m.regions.push_back(r);
    }
    const auto start = std::chrono::steady_clock::now();
    const std::string sum = px::cartridge_pixels_sha256(image, m);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(seconds < 1.0);
    // Pixels inside the regions (and the fault pixel) are left out, every other one counts.
    for (const px::CartridgeRegion& r : m.regions)
        image.set_pixel(r.tensor.x, r.tensor.y, {1, 2, 3, 4});
    image.set_pixel(4095, 0, {5, 6, 7, 8});
    CHECK(px::cartridge_pixels_sha256(image, m) == sum);
    image.set_pixel(4094, 0, {5, 6, 7, 8});
    CHECK(px::cartridge_pixels_sha256(image, m) != sum);
}

TEST_CASE("cartridge: the duplicate-vocabulary check is linear at 65536 entries", "[cartridge]") {
    const px::PackedCartridge p = pack_tiny();
    // The pad entry, then 65535 characters from U+0100 on (no surrogates), the last one a second
    // copy of the one before it: the old check counted each entry over all of them first.
    std::vector<std::string> big_vocab = {""};
    for (std::uint32_t cp = 0x100; big_vocab.size() < 65535; ++cp) {
        if (cp >= 0xD800 && cp < 0xE000) continue;
        std::string c;
        if (cp < 0x800) {
            c = {char(0xC0 | cp >> 6), char(0x80 | (cp & 0x3F))};
        } else if (cp < 0x10000) {
            c = {char(0xE0 | cp >> 12), char(0x80 | (cp >> 6 & 0x3F)), char(0x80 | (cp & 0x3F))};
        } else {
            c = {char(0xF0 | cp >> 18), char(0x80 | (cp >> 12 & 0x3F)),
                 char(0x80 | (cp >> 6 & 0x3F)), char(0x80 | (cp & 0x3F))};
        }
        big_vocab.push_back(c);
    }
    big_vocab.push_back(big_vocab.back());
    nlohmann::json j = nlohmann::json::parse(px::manifest_to_json(p.manifest));
    j["tokenizer"]["vocab"] = big_vocab;
    const std::string text = j.dump();
    const auto start = std::chrono::steady_clock::now();
    auto twice = px::manifest_from_json(text, "big.pxa");
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    REQUIRE_FALSE(twice.ok());
    CHECK(twice.error().message ==
          "big.pxa: manifest: vocabulary entry '" + big_vocab.back() + "' appears twice");
}

TEST_CASE("cartridge: the manifest (the iTXt text) is at most 16 MiB", "[cartridge]") {
    const px::PackedCartridge p = pack_tiny();
    // A long description, compressed to a few KB in the file.
    const auto with_description = [&](std::size_t bytes) {
        px::CartridgeManifest m = p.manifest;
        m.description = std::string(bytes, 'x');
        auto png =
            px::encode_png_with_itxt(p.image, px::CARTRIDGE_KEYWORD, px::manifest_to_json(m));
        REQUIRE(png.ok());
        CHECK(png->size() < (std::size_t(1) << 20));
        return px::decode_cartridge(*png, "long.pxa");
    };
    CHECK(with_description((15u << 20) + 1000).ok());
    for (std::size_t bytes : {std::size_t(16u << 20), std::size_t(100u << 20)}) {
        INFO(bytes);
        auto refused = with_description(bytes);
        REQUIRE_FALSE(refused.ok());
        CHECK_THAT(refused.error().message,
                   Catch::StartsWith("long.pxa: ") &&
                       Catch::Contains("the manifest is larger than 16 MiB"));
    }
}

TEST_CASE("pxrun refuses --temperature nan, inf or outside 0 to 100 as a bad argument",
          "[cartridge][cli]") {
    CommandRunner pxrun(tool_path("pxrun"), "pxrun_temperature");
    REQUIRE(pxrun.tool_exists());
    const px::PackedCartridge p = pack_tiny();
    auto png = px::encode_cartridge(p.image, p.manifest);
    REQUIRE(png.ok());
    const std::string cart = (pxrun.dir() / "tiny.pxa").string();
    REQUIRE(px::write_file_atomic(cart, std::span<const std::uint8_t>(*png)).ok());
    // NaN compares false with both ends of a range, so it passed the check and ran greedily.
    for (const char* bad : {"nan", "NaN", "-nan", "inf", "-inf", "-1", "100.5", "warm"}) {
        INFO(bad);
        auto refused = pxrun.run("--device cpu " + cart + " --prompt 'a b' --temperature " + bad);
        CHECK(refused.exit_code == 1);
        CHECK_THAT(refused.err, Catch::Contains("--temperature"));
        CHECK(refused.out.empty());
    }
    for (const char* good : {"0", "0.5", "100"}) {
        INFO(good);
        CHECK(pxrun.run("--device cpu " + cart + " --prompt 'a b' --tokens 3 --temperature " + good)
                  .exit_code == 0);
    }
}

TEST_CASE("the transformer cartridge: the documented commands and its figures",
          "[cartridge][cli][docs]") {
    const std::string root = PXVM_SOURCE_DIR;
    const std::string cartridge = root + "/assets/kjv-transformer.pxa";
    CommandRunner pxc(tool_path("pxc"), "pxc_transformer");
    REQUIRE(pxc.tool_exists());
    // docs/CARTRIDGE.md: pxc inspect assets/kjv-transformer.pxa
    auto inspected = pxc.run("inspect " + cartridge);
    INFO(inspected.err);
    REQUIRE(inspected.exit_code == 0);
    CHECK(inspected.out.find("kjv-char-transformer (transformer, cartridge format 1") !=
          std::string::npos);
    CHECK(inspected.out.find("(verified)") != std::string::npos);
    // docs/CARTRIDGE.md: the first 2560 held-out characters on the reference; the same figures
    // model/quantize_transformer.py --eval-chars 2560 gives for its integer model.
    auto scored =
        pxc.run("eval " + cartridge + " " + root + "/assets/kjv/heldout.txt --limit 2560");
    INFO(scored.err);
    REQUIRE(scored.exit_code == 0);
    CHECK(scored.out.find("cartridge (pxVM reference, integer)        71.33%      0.947 nats") !=
          std::string::npos);
    auto twin = pxc.run("eval " + cartridge + " " + root +
                        "/assets/kjv/heldout.txt --limit 10 "
                        "--float " +
                        root + "/model/transformer/model.safetensors");
    CHECK(twin.exit_code == 1); // its float twin is F16, scored by model/quantize_transformer.py
    CHECK(twin.err.find("is F16") != std::string::npos);
    // docs/CARTRIDGE.md: the reference alone continues the prompt as the self-test says.
    auto shipped = px::load_cartridge(cartridge);
    REQUIRE(shipped.ok());
    CommandRunner pxrun(tool_path("pxrun"), "pxrun_transformer");
    auto ran = pxrun.run("--device cpu " + cartridge + " --prompt \"And God said\" --tokens 200");
    CHECK(ran.exit_code == 0);
    CHECK(ran.out.rfind("And God said" + shipped->manifest.self_test_expect, 0) == 0);
    // A batch: each prompt continues as it does alone (row r is slot r, its cache its own).
    pxtest::write_text(pxrun.dir() / "prompts.txt", "In the beginning\nAnd it came to pass\n");
    auto batch = pxrun.run("--device cpu " + cartridge + " --batch " +
                           (pxrun.dir() / "prompts.txt").string() + " --tokens 30");
    CHECK(batch.exit_code == 1); // the shipped cartridge computes one sequence a step
    CHECK(batch.err.find("pxc pack --batch N") != std::string::npos);
}
