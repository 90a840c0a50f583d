// Uses the installed library the way docs show: assemble a program, run it on the reference,
// read a cartridge and tokenize a prompt, and open the Vulkan runtime.
//   consumer SOURCE_DIR
#include "pxvm/assembler.hpp"
#include "pxvm/cartridge.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/vulkan/runtime.hpp"

#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) return 1;
    const std::string root = argv[1];
    auto program = px::assemble_file(root + "/assets/dot_test.pxs");
    if (!program) {
        std::cerr << program.error().message << "\n";
        return 1;
    }
    px::Image image = program->image;
    const px::RunOutcome outcome = px::run_reference(image);
    const px::Pixel p = image.pixel(0, 3);
    std::cout << "dot_rgb: " << int(p.r) << " " << int(p.g) << " halted " << outcome.halted << "\n";
    auto cart = px::load_cartridge(root + "/assets/kjv.pxa");
    if (!cart) {
        std::cerr << cart.error().message << "\n";
        return 1;
    }
    auto ids = px::tokenize(cart->manifest, "And God said");
    std::cout << "cartridge: " << cart->manifest.name << ", " << ids->size() << " tokens\n";
    auto runtime = px::vk::Runtime::create();
    std::cout << "vulkan: "
              << (runtime ? std::to_string(runtime->devices().size()) + " devices"
                          : runtime.error().message)
              << "\n";
    return p.r == 44 && p.g == 1 && outcome.halted ? 0 : 1;
}
