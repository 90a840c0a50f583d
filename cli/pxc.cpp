// pxc: the pixel program compiler front end. `asm` assembles .pxs text into a .pxi image, `disasm`
// prints an image as .pxs text, `render` draws a zoomed-in picture. The work is in pxvm_compiler.
#include "pxvm/assembler.hpp"
#include "pxvm/disassembler.hpp"
#include "pxvm/image.hpp"

#include "cli_support.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <span>
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
    return 0;
}

int disassemble_command(const std::string& input, const std::string& out) {
    auto image = px::load_png(input);
    if (!image) return fail(image.error().message);
    const std::string text = px::disassemble(*image, input);
    if (out.empty()) {
        std::cout << text;
        std::cout.flush();
        return std::cout ? 0 : fail("cannot write to standard output");
    }
    if (auto written = px::write_file_atomic(out, std::string_view(text)); !written)
        return fail(written.error().message);
    return 0;
}

int render_command(const std::string& input, const std::string& out, std::uint32_t scale,
                   bool values) {
    auto image = px::load_png(input);
    if (!image) return fail(image.error().message);
    px::RenderOptions options;
    options.scale = scale;
    options.values = values;
    auto picture = px::render_picture(*image, options);
    if (!picture) return fail(input + ": " + picture.error().message);
    if (auto saved = px::save_png(*picture, out); !saved) return fail(saved.error().message);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pxc: assemble, disassemble and draw pixel programs (docs/ASSEMBLY.md).\n"
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
                         "needs --scale 24 or more");

    pxcli::add_version(app, "pxc");
    PXCLI_PARSE(app, argc, argv);

    if (asm_cmd->parsed()) return assemble_command(asm_source, asm_out);
    if (dis_cmd->parsed()) return disassemble_command(dis_input, dis_out);
    if (render_cmd->parsed()) return render_command(render_input, render_out, scale, values);
    return 1;
}
