// pxrun: runs a pixel program on the CPU reference interpreter or a Vulkan device, checks the
// device's image against the reference, prints what the program wrote, optionally saves the image.
#include "pxvm/image.hpp"
#include "pxvm/program.hpp"
#include "pxvm/reference_interpreter.hpp"
#include "pxvm/report.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"pxrun: run a pixel program (.pxi) and print what it wrote.\n"
                 "Exit status: 0 ran to HALT or the end of row 0; 1 bad input or device error; "
                 "2 the program faulted (the fault pixel is written); 3 the device's image "
                 "differs from the reference."};
    std::string program, device = "cpu", out;
    app.add_option("program", program, "the .pxi program image (8-bit RGBA PNG)")->required();
    app.add_option("--device,-d", device, "where to run: 'cpu' (the reference interpreter)")
        ->capture_default_str();
    app.add_option("--out,-o", out, "write the executed image here (atomically)");
    CLI11_PARSE(app, argc, argv);

    auto image = px::load_png(program);
    if (!image) {
        std::cerr << "pxrun: " << image.error().message << "\n";
        return 1;
    }
    if (device != "cpu") {
        std::cerr << "pxrun: unknown device '" << device << "'\n";
        return 1;
    }
    const px::Plan plan = px::plan_program(*image);
    const px::Image before = *image;
    const px::RunOutcome outcome = px::run_reference(*image);

    std::cout << program << ": " << image->width() << "x" << image->height()
              << ", device cpu (reference interpreter)\n";
    for (const std::string& line : px::describe_outputs(plan, outcome.executed, *image))
        std::cout << "  " << line << "\n";
    if (outcome.fault)
        std::cout << "stopped: " << px::describe(outcome.fault, before) << "\n";
    else
        std::cout << (outcome.halted ? "halted" : "ran to the end of row 0") << " after "
                  << outcome.executed << " instruction" << (outcome.executed == 1 ? "" : "s")
                  << "\n";
    if (!out.empty()) {
        if (auto saved = px::save_png(*image, out); !saved) {
            std::cerr << "pxrun: " << saved.error().message << "\n";
            return 1;
        }
        std::cout << "wrote " << out << "\n";
    }
    return outcome.fault ? 2 : 0;
}
