// pxc: the pixel program compiler front end. `asm` assembles .pxs text into a .pxi image, `disasm`
// prints an image as .pxs text, `render` draws a zoomed-in picture; `pack` builds a model
// cartridge from safetensors weights, `inspect` shows one, `eval` scores one on a text. The work
// is in pxvm_compiler.
#include "pxvm/assembler.hpp"
#include "pxvm/cartridge.hpp"
#include "pxvm/disassembler.hpp"
#include "pxvm/evaluate.hpp"
#include "pxvm/image.hpp"
#include "pxvm/pack.hpp"

#include "cli_support.hpp"

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <map>
#include <span>
#include <sstream>
#include <string>

namespace {

int fail(const std::string& message) {
    std::cerr << "pxc: " << message << "\n";
    return 1;
}

int assemble_command(const std::string& source, const std::string& out) {
    auto program = px::assemble_file(source);
    if (!program) return fail(program.error().message);
    for (const std::string& warning : program->warnings)
        std::cerr << warning << "\n";
    if (auto saved = px::save_png(program->image, out); !saved) return fail(saved.error().message);
    // The listing of the named tensors: where each was placed, and its id.
    for (const px::NamedTensor& n : program->named)
        std::cout << n.name << ": t" << int(n.id) << " " << px::dtype_name(n.tensor.dtype) << " "
                  << n.tensor.rows << "x" << n.tensor.cols << " at (" << n.tensor.x << ", "
                  << n.tensor.y << "), " << n.tensor.pixel_width() << "x" << n.tensor.rows
                  << " pixels (line " << n.line << ")\n";
    return 0;
}

int disassemble_command(const std::string& input, const std::string& out) {
    auto image = px::load_png(input);
    if (!image) return fail(image.error().message);
    // Streamed: the text of a large image is many times its size and never all in memory.
    if (out.empty()) {
        px::disassemble(*image, input, std::cout);
        std::cout.flush();
        return std::cout ? 0 : fail("cannot write to standard output");
    }
    auto file = px::AtomicFile::create(out);
    if (!file) return fail(file.error().message);
    px::disassemble(*image, input, file->stream());
    if (auto written = file->commit(); !written) return fail(written.error().message);
    return 0;
}

int render_command(const std::string& input, const std::string& out, std::uint32_t scale,
                   bool values, bool regions) {
    auto image = px::load_png(input);
    if (!image) return fail(image.error().message);
    px::RenderOptions options;
    options.scale = scale;
    options.values = values;
    if (regions) {
        auto cart = px::load_cartridge(input);
        if (!cart) return fail(cart.error().message);
        // Colours by role, so the map reads at a glance; the legend names each number.
        const std::map<std::string, px::Pixel> colours = {{"input", {0, 255, 255, 255}},
                                                          {"output", {255, 64, 255, 255}},
                                                          {"activation", {255, 255, 0, 255}},
                                                          {"weight", {64, 255, 64, 255}},
                                                          {"bias", {255, 140, 0, 255}}};
        for (const px::CartridgeRegion& r : cart->manifest.regions) {
            options.regions.push_back({r.tensor.x, r.tensor.y, r.tensor.pixel_width(),
                                       r.tensor.rows, r.id, colours.at(r.role)});
            std::cout << r.id << "  " << r.name << " (" << r.role << ", "
                      << px::dtype_name(r.tensor.dtype) << " " << r.tensor.rows << "x"
                      << r.tensor.cols << ")\n";
        }
        std::cout << "outlines: input cyan, output magenta, activation yellow, weight green, "
                     "bias orange\n";
    }
    auto picture = px::render_picture(*image, options);
    if (!picture) return fail(input + ": " + picture.error().message);
    if (auto saved = px::save_png(*picture, out); !saved) return fail(saved.error().message);
    return 0;
}

px::Result<std::string> read_text(const std::string& path) {
    auto bytes = px::read_file(path, std::uint64_t(1) << 30);
    if (!bytes) return bytes.error();
    return std::string(bytes->begin(), bytes->end());
}

struct PackArgs {
    std::string weights, calibration, out;
    px::PackOptions options;
};

int pack_command(const PackArgs& a) {
    auto weights = px::load_safetensors(a.weights);
    if (!weights) return fail(weights.error().message);
    auto text = read_text(a.calibration);
    if (!text) return fail(text.error().message);
    auto packed = px::pack_cartridge(*weights, *text, a.options);
    if (!packed) return fail(a.weights + ": " + packed.error().message);
    if (auto saved = px::save_cartridge(a.out, packed->image, packed->manifest); !saved)
        return fail(saved.error().message);
    std::cout << packed->report;
    if (!packed->manifest.self_test_prompt.empty())
        std::cout << "self-test: \"" << packed->manifest.self_test_prompt << "\" -> \""
                  << packed->manifest.self_test_expect << "\"\n";
    std::cout << "wrote " << a.out << "\n";
    return 0;
}

int inspect_command(const std::string& path, bool as_json) {
    auto cart = px::load_cartridge(path);
    if (!cart) return fail(cart.error().message);
    const px::CartridgeManifest& m = cart->manifest;
    if (as_json) {
        std::cout << cart->manifest_json << "\n";
        return 0;
    }
    std::cout << path << ": " << m.name << " (" << m.architecture << ", cartridge format "
              << m.format_version << ", pixel protocol " << m.protocol_version
              << ", pxVM >= " << m.min_pxvm_version << ")\n"
              << "  " << m.description << "\n"
              << "  licence: " << m.licence << "\n"
              << "  image " << cart->image.width() << "x" << cart->image.height() << ", context "
              << m.context << " tokens, batch " << m.batch << ", vocabulary " << m.vocab.size()
              << " (pad id " << m.pad_id << ")\n"
              << "  checksum sha256 " << m.pixels_sha256 << " (verified)\n";
    if (!m.self_test_prompt.empty())
        std::cout << "  self-test: \"" << m.self_test_prompt << "\" + " << m.self_test_tokens
                  << " tokens -> \"" << m.self_test_expect << "\"\n";
    std::cout << "  regions (x, y, pixel width x rows):\n";
    for (const px::CartridgeRegion& r : m.regions) {
        std::ostringstream where;
        where << "(" << r.tensor.x << ", " << r.tensor.y << ") " << r.tensor.pixel_width() << "x"
              << r.tensor.rows;
        std::cout << "    t" << std::left << std::setw(4) << r.id << std::setw(14) << r.name
                  << std::setw(11) << r.role << std::setw(4)
                  << std::string(px::dtype_name(r.tensor.dtype)) << std::right << std::setw(6)
                  << r.tensor.rows << " x " << std::left << std::setw(6) << r.tensor.cols
                  << std::setw(24) << where.str();
        if (r.scale != 0) std::cout << " scale " << r.scale << " zero point " << r.zero_point;
        std::cout << std::right << "\n";
    }
    return 0;
}

int eval_command(const std::string& path, const std::string& text_path, std::uint64_t limit,
                 const std::string& float_path, const std::string& json_path) {
    auto cart = px::load_cartridge(path);
    if (!cart) return fail(cart.error().message);
    auto text = read_text(text_path);
    if (!text) return fail(text.error().message);
    std::optional<px::Safetensors> weights;
    if (!float_path.empty()) {
        auto w = px::load_safetensors(float_path);
        if (!w) return fail(w.error().message);
        weights = std::move(*w);
    }
    auto result = px::evaluate(*cart, *text, limit, weights ? &*weights : nullptr);
    if (!result) return fail(text_path + ": " + result.error().message);
    auto line = [](const std::string& what, const px::EvalScore& s) {
        std::cout << std::left << std::setw(40) << what << std::right << std::fixed
                  << std::setprecision(2) << std::setw(8) << 100 * s.accuracy << "%"
                  << std::setprecision(3) << std::setw(11) << s.cross_entropy << " nats\n";
    };
    std::cout << result->cartridge.windows << " windows of " << text_path << "\n";
    std::cout << std::left << std::setw(40) << "model" << std::right << std::setw(9) << "accuracy"
              << std::setw(16) << "cross-entropy"
              << "\n";
    line("cartridge (pxVM reference, integer)", result->cartridge);
    if (result->float_model) {
        line("float twin (--float)", *result->float_model);
        std::cout << "same prediction on " << std::setprecision(2)
                  << 100.0 * double(result->agree) / double(result->cartridge.windows)
                  << "% of windows\n";
    }
    if (!json_path.empty()) {
        nlohmann::json j = {{"cartridge", path},
                            {"text", text_path},
                            {"windows", result->cartridge.windows},
                            {"accuracy", result->cartridge.accuracy},
                            {"cross_entropy", result->cartridge.cross_entropy}};
        if (result->float_model)
            j["float"] = {{"weights", float_path},
                          {"accuracy", result->float_model->accuracy},
                          {"cross_entropy", result->float_model->cross_entropy},
                          {"agree", result->agree}};
        if (auto w = px::write_file_atomic(json_path, std::string_view(j.dump(2) + "\n")); !w)
            return fail(w.error().message);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pxc: assemble, disassemble and draw pixel programs (docs/ASSEMBLY.md); pack, "
                 "inspect and score model cartridges (docs/CARTRIDGE.md).\n"
                 "Exit status: 0 success; 1 bad input (the message names the file and line)."};
    app.require_subcommand(1);

    std::string asm_source, asm_out;
    CLI::App* asm_cmd = app.add_subcommand(
        "asm", "Assemble .pxs text into a .pxi program image (8-bit RGBA PNG). Errors name the "
               "file and line; the output is written atomically and only when assembly succeeds. "
               "A fault the static checker predicts is printed as a warning.");
    asm_cmd->add_option("source", asm_source, "the .pxs assembly file")->required();
    asm_cmd->add_option("-o,--out", asm_out, "the .pxi image to write")->required();

    std::string dis_input, dis_out;
    CLI::App* dis_cmd = app.add_subcommand(
        "disasm", "Print a .pxi program image as .pxs text; assembling the text gives the "
                  "identical image, byte for byte, for any RGBA image.");
    dis_cmd->add_option("program", dis_input, "the .pxi program image (8-bit RGBA PNG)")
        ->required();
    dis_cmd->add_option("-o,--out", dis_out,
                        "write the text to this file (atomically) instead of standard output");

    std::string render_input, render_out;
    std::uint32_t scale = 16;
    bool values = false;
    CLI::App* render_cmd = app.add_subcommand(
        "render", "Draw a zoomed-in picture of a program image: each pixel becomes a SCALE x "
                  "SCALE block of its R, G, B with alpha forced to 255 (so data pixels whose "
                  "alpha is 0 stay visible), separated by 1-pixel dark grey grid lines.");
    render_cmd->add_option("program", render_input, "the .pxi program image (8-bit RGBA PNG)")
        ->required();
    render_cmd->add_option("-o,--out", render_out, "the picture to write (an opaque RGBA PNG)")
        ->required();
    render_cmd
        ->add_option("--scale,-s", scale, "side of each pixel's block in picture pixels (1-256)")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    render_cmd->add_flag("--values", values,
                         "also print each non-zero pixel's R, G, B, A values (top to bottom) in "
                         "small digits inside its block, for pixels too dark to read by colour; "
                         "needs --scale 24 or more (the default scale with --values)");
    bool render_regions = false;
    render_cmd->add_flag("--regions", render_regions,
                         "for a cartridge (.pxa): outline each manifest region in the colour of "
                         "its role and number it with its tensor id; the legend goes to standard "
                         "output");

    PackArgs pack;
    CLI::App* pack_cmd = app.add_subcommand(
        "pack", "Build a model cartridge (.pxa, docs/CARTRIDGE.md) from the float weights of a "
                "window MLP in safetensors: i8 weights, 8-bit activations with scales calibrated "
                "on the text given, the program row, the manifest and its checksum.");
    pack_cmd->add_option("weights", pack.weights, "the .safetensors file (model/train.py)")
        ->required();
    pack_cmd
        ->add_option("--calibration", pack.calibration,
                     "text whose windows calibrate the "
                     "activation scales")
        ->required();
    pack_cmd->add_option("-o,--out", pack.out, "the .pxa cartridge to write")->required();
    pack_cmd->add_option("--batch", pack.options.batch, "windows one run computes (1-32767)")
        ->capture_default_str()
        ->check(CLI::Range(1, 32767));
    pack_cmd
        ->add_option("--calibration-windows", pack.options.calibration_windows,
                     "windows of the calibration text to use")
        ->capture_default_str()
        ->check(CLI::Range(16, 1 << 20));
    pack_cmd->add_option("--name", pack.options.name, "the model's name");
    pack_cmd->add_option("--licence", pack.options.licence, "the weights' licence");
    pack_cmd->add_option("--description", pack.options.description, "one line about the model");
    pack_cmd->add_option("--self-test-prompt", pack.options.self_test_prompt,
                         "a prompt whose greedy continuation the manifest records");
    pack_cmd
        ->add_option("--self-test-tokens", pack.options.self_test_tokens,
                     "how many tokens of it (1 to 4096; needed with --self-test-prompt)")
        ->check(CLI::Range(1u, px::MAX_SELF_TEST_TOKENS));

    std::string inspect_input;
    bool inspect_json = false;
    CLI::App* inspect_cmd = app.add_subcommand(
        "inspect", "Check a cartridge (manifest, format version, checksum, regions against the "
                   "program row) and print its manifest and a map of its regions.");
    inspect_cmd->add_option("cartridge", inspect_input, "the .pxa cartridge")->required();
    inspect_cmd->add_flag("--json", inspect_json, "print the manifest JSON as stored");

    std::string eval_input, eval_text, eval_float, eval_json;
    std::uint64_t eval_limit = 0;
    CLI::App* eval_cmd = app.add_subcommand(
        "eval", "Next-token accuracy and cross-entropy of a cartridge on a text (every position, "
                "its window the characters before it), run by the reference interpreter; with "
                "--float, also of the float weights on the same windows.");
    eval_cmd->add_option("cartridge", eval_input, "the .pxa cartridge")->required();
    eval_cmd->add_option("text", eval_text, "the text to score (UTF-8)")->required();
    eval_cmd->add_option("--limit", eval_limit, "score only the first N positions (0: all)")
        ->capture_default_str();
    eval_cmd->add_option("--float", eval_float, "the float weights (.safetensors) to compare");
    eval_cmd->add_option("--json", eval_json, "also write the scores as JSON here");

    pxcli::add_version(app, "pxc");
    PXCLI_PARSE(app, argc, argv);

    // An input is never modified: no output may be one of the inputs, under any name.
    using pxcli::overwrites_input;
    if ((asm_cmd->parsed() && overwrites_input("pxc asm", "--out", asm_out, asm_source)) ||
        (dis_cmd->parsed() && overwrites_input("pxc disasm", "--out", dis_out, dis_input)) ||
        (render_cmd->parsed() &&
         overwrites_input("pxc render", "--out", render_out, render_input)) ||
        (pack_cmd->parsed() &&
         (overwrites_input("pxc pack", "--out", pack.out, pack.weights) ||
          overwrites_input("pxc pack", "--out", pack.out, pack.calibration))) ||
        (eval_cmd->parsed() && (overwrites_input("pxc eval", "--json", eval_json, eval_input) ||
                                overwrites_input("pxc eval", "--json", eval_json, eval_text) ||
                                overwrites_input("pxc eval", "--json", eval_json, eval_float))))
        return 1;
    if (asm_cmd->parsed()) return assemble_command(asm_source, asm_out);
    if (dis_cmd->parsed()) return disassemble_command(dis_input, dis_out);
    // --values needs blocks of 24 pixels: without --scale it picks that size.
    if (render_cmd->parsed() && values && render_cmd->count("--scale") == 0) scale = 24;
    if (render_cmd->parsed())
        return render_command(render_input, render_out, scale, values, render_regions);
    if (pack_cmd->parsed()) return pack_command(pack);
    if (inspect_cmd->parsed()) return inspect_command(inspect_input, inspect_json);
    if (eval_cmd->parsed())
        return eval_command(eval_input, eval_text, eval_limit, eval_float, eval_json);
    return 1;
}
