// pxinfo: lists every Vulkan device pxVM sees, in its stable order, with driver, memory, features
// (cooperative-matrix shapes included), limits and the execution paths pxVM would use on it.
#include "pxvm/vulkan/device_report.hpp"
#include "pxvm/vulkan/runtime.hpp"

#include "cli_support.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"pxinfo: list the Vulkan devices pxVM can run on, in the order --device N uses.\n"
                 "Exit status: 0 devices listed; 1 no Vulkan driver or device (or a validation "
                 "error with --validate)."};
    bool json = false, validate = false;
    app.add_flag("--json", json, "print the report as JSON");
    app.add_flag("--validate", validate,
                 "enable the Khronos validation layer (PXVM_VALIDATE=1 does too) and report its "
                 "messages on stderr");
    pxcli::add_version(app, "pxinfo");
    PXCLI_PARSE(app, argc, argv);

    px::vk::RuntimeOptions options;
    options.validate = validate;
    auto runtime = px::vk::Runtime::create(options);
    if (!runtime) {
        std::cerr << "pxinfo: " << runtime.error().message << "\n";
        return 1;
    }
    std::optional<std::uint32_t> preferred;
    if (auto index = runtime->select(px::vk::DeviceSelector::preferred())) preferred = *index;

    if (json)
        std::cout << px::vk::device_report_json(runtime->devices(), preferred) << "\n";
    else
        std::cout << px::vk::device_report_text(runtime->devices(), preferred);

    if (runtime->validation_enabled()) {
        const px::vk::ValidationMessages messages = runtime->validation_messages();
        std::cerr << "pxinfo: validation layer: " << messages.errors << " errors, "
                  << messages.warnings << " warnings\n";
        if (messages.errors) return 1;
    }
    return 0;
}
