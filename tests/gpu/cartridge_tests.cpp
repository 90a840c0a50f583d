// Cartridges on a device (lavapipe in CI): the resident image and recorded program of
// px::vk::CartridgeSession give the reference's tokens for a batch of prompts, with every
// kernel variant, every step verified, and the validation layer silent.
#include "gpu_support.hpp"

#include "cartridge_support.hpp"
#include "command_runner.hpp"

#include "pxvm/vulkan/cartridge_session.hpp"

using namespace pxtest::cartridge;

TEST_CASE("a cartridge session generates the reference's tokens", "[gpu][cartridge]") {
    pxtest::gpu::require_validation_layer();
    const px::Cartridge cart = reload(pack_tiny(4));
    std::vector<std::vector<std::uint32_t>> prompts;
    for (const char* text : {"a bad", "cab", "é", "dead bed. "})
        prompts.push_back(*px::tokenize(cart.manifest, text));
    prompts.pop_back(); // three prompts in four rows: the last row holds padding windows
    px::GenerateOptions g;
    g.tokens = 10;
    px::Image reference_image = cart.image;
    auto expected = px::generate(reference_image, cart.manifest, prompts, g, px::reference_step());
    REQUIRE(expected.ok());
    for (const char* variant : {"portable", "int-dot", "coopmat-nv"}) {
        INFO(variant);
        px::vk::CartridgeSessionOptions options;
        options.validate = true;
        options.variant = px::vk::variant_from_name(variant);
        options.cache_dir = pxtest::gpu::temp_dir("cartridge");
        auto session = px::vk::CartridgeSession::open(cart, options);
        if (!session && session.error().code == px::ErrorCode::unsupported) continue;
        if (!session) FAIL(session.error().message);
        px::Image image = cart.image;
        auto got = px::generate(image, cart.manifest, prompts, g, session->as_step());
        if (!got) FAIL(got.error().message);
        CHECK(*got == *expected);
        CHECK(session->stats().steps == 10);
        CHECK(session->device_name().find(variant) != std::string::npos);
        CHECK(session->validation_messages().total() == 0);
        // Without verification, generate() writes the windows into the input buffer and reads
        // the tokens from the output buffer directly: the same tokens, greedy and sampled.
        options.verify = false;
        auto fast = px::vk::CartridgeSession::open(cart, options);
        if (!fast) FAIL(fast.error().message);
        auto greedy = fast->generate(prompts, g);
        if (!greedy) FAIL(greedy.error().message);
        CHECK(*greedy == *expected);
        px::GenerateOptions sampled = g;
        sampled.temperature = 1.3;
        sampled.seed = 11;
        px::Image sample_image = cart.image;
        auto sampled_reference =
            px::generate(sample_image, cart.manifest, prompts, sampled, px::reference_step());
        auto sampled_device = fast->generate(prompts, sampled);
        REQUIRE(sampled_reference.ok());
        if (!sampled_device) FAIL(sampled_device.error().message);
        CHECK(*sampled_device == *sampled_reference);
        CHECK(fast->validation_messages().total() == 0);
    }
}

TEST_CASE("pxrun runs the shipped cartridge's self-test on the default device",
          "[gpu][cartridge][cli]") {
    pxtest::gpu::require_validation_layer();
    const pxtest::CommandRunner pxrun(pxtest::tool_path("pxrun"), "pxrun_cartridge_gpu");
    REQUIRE(pxrun.tool_exists());
    const std::string env = "PXVM_CACHE_DIR=" + pxrun.dir().string();
    const auto result = pxrun.run("--validate " PXVM_SOURCE_DIR "/assets/kjv.pxa", env);
    INFO(result.out << result.err);
    CHECK(result.exit_code == 0);
    CHECK_THAT(result.err, Catch::Contains("self-test passed"));
    CHECK_THAT(result.err, Catch::Contains("every step matched the reference interpreter"));
    // Sampling is on the host from the logits: the device gives the reference's text.
    const std::string sample =
        " --prompt 'In the beginning' --tokens 60 --temperature 0.7 --seed 5";
    const auto gpu = pxrun.run("--validate " PXVM_SOURCE_DIR "/assets/kjv.pxa" + sample, env);
    const auto cpu = pxrun.run("--device cpu " PXVM_SOURCE_DIR "/assets/kjv.pxa" + sample, env);
    CHECK(gpu.exit_code == 0);
    CHECK(cpu.exit_code == 0);
    CHECK(gpu.out == cpu.out);
    CHECK_THAT(gpu.out, Catch::StartsWith("In the beginning"));
    // The README's main job (./build.sh demo): the device gives the reference's text.
    const std::string demo =
        PXVM_SOURCE_DIR "/assets/kjv.pxa --prompt \"And God said\" --tokens 200";
    const auto main_job = pxrun.run(demo, env);
    const auto reference = pxrun.run("--device cpu " + demo, env);
    CHECK(main_job.exit_code == 0);
    CHECK(main_job.out == reference.out);
    CHECK_THAT(main_job.err, Catch::Contains("every step matched the reference interpreter"));
}

TEST_CASE("pxrun runs the transformer cartridge on the default device, every step checked",
          "[gpu][cartridge][cli]") {
    pxtest::gpu::require_validation_layer();
    const pxtest::CommandRunner pxrun(pxtest::tool_path("pxrun"), "pxrun_transformer_gpu");
    REQUIRE(pxrun.tool_exists());
    const std::string env = "PXVM_CACHE_DIR=" + pxrun.dir().string();
    const std::string cartridge = PXVM_SOURCE_DIR "/assets/kjv-transformer.pxa";
    // Its self-test: 12 prompt tokens and 80 generated, past no context boundary.
    const auto self_test = pxrun.run("--validate " + cartridge, env);
    INFO(self_test.out << self_test.err);
    CHECK(self_test.exit_code == 0);
    CHECK_THAT(self_test.err, Catch::Contains("self-test passed"));
    CHECK_THAT(self_test.err, Catch::Contains("every step matched the reference interpreter"));
    // The README's main job (./build.sh demo): 200 tokens after a 12-token prompt, so the run
    // passes no boundary; and a sampled run that passes the 256-position context (its last 128
    // tokens fed again from position 0): the device gives the reference's text.
    const std::string demo = cartridge + " --prompt \"And God said\" --tokens 200";
    const auto main_job = pxrun.run(demo, env);
    const auto reference = pxrun.run("--device cpu " + demo, env);
    CHECK(main_job.exit_code == 0);
    CHECK(main_job.out == reference.out);
    CHECK_THAT(main_job.err, Catch::Contains("every step matched the reference interpreter"));
    const std::string sample =
        cartridge + " --prompt 'In the beginning' --tokens 260 --temperature 0.7 --seed 5";
    const auto gpu = pxrun.run(sample, env);
    const auto cpu = pxrun.run("--device cpu " + sample, env);
    CHECK(gpu.exit_code == 0);
    CHECK(cpu.exit_code == 0);
    CHECK(gpu.out == cpu.out);
    CHECK_THAT(gpu.out, Catch::StartsWith("In the beginning"));
}
