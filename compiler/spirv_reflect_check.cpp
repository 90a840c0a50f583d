// pxvm_spirv_check: the build-time reflection check of every kernel's SPIR-V (run by
// cmake/PxvmShaders.cmake after spirv-val). The descriptor bindings, the push-constant block and
// the workgroup size must match what the host binds, taken from kernels/pxvm_layout.h; any
// mismatch fails the build.
//   pxvm_spirv_check --kernel <name> <file.spv>        one kernel against its table entry
//   pxvm_spirv_check --families <name>=<file.spv>...   all built variants of a family agree
// Modules are read with pxVM's SPIR-V reader (pxvm/spirv_module.hpp, the runtime's too) and
// reflected with SPIRV-Cross, which must agree, so the reader is tested on every kernel. Debian
// 12's SPIRV-Cross (2021) cannot parse modules with cooperative matrices: those are checked on
// what pxVM's reader sees.
#include "pxvm/spirv_module.hpp"
#include "pxvm_instructions.h"
#include "pxvm_layout.h"

#include <spirv_cross.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

// ---- Expectations ---------------------------------------------------------------------------

struct Named {
    std::uint32_t value;
    std::string_view source; // where the value comes from, for messages
};

// What the host binds for every variant of a kernel family: storage buffers in set 0 and the
// push-constant block (0 bytes: none).
struct FamilyInterface {
    std::string_view family;
    std::vector<Named> storage_buffers;
    Named push_constant_size;
};

// A kernel (the stem of kernels/<kernel>.comp) and its workgroup size. Without one, the size is
// set by specialization constants when the pipeline is created: the module must declare it so.
struct KernelEntry {
    std::string_view kernel;
    std::string_view family;
    std::optional<std::array<Named, 3>> local_size;
};

const std::vector<FamilyInterface> families = {
    {"interpreter",
     {{px::BINDING_IMAGE, "BINDING_IMAGE"}, {px::BINDING_STATUS, "BINDING_STATUS"}},
     {sizeof(px::InterpreterPush), "sizeof(px::InterpreterPush)"}},
    // The scheduled kernels (runtime/src/vulkan/scheduler.cpp): image out, status, image in.
    {"kernels",
     {{px::BINDING_IMAGE, "BINDING_IMAGE"},
      {px::BINDING_STATUS, "BINDING_STATUS"},
      {px::BINDING_IMAGE_IN, "BINDING_IMAGE_IN"}},
     {sizeof(px::KernelPush), "sizeof(px::KernelPush)"}},
    // The output packer a recording appends (runtime/src/vulkan/device.cpp): image in, outputs.
    {"outputs",
     {{px::BINDING_IMAGE_IN, "BINDING_IMAGE_IN"}, {px::BINDING_OUTPUTS, "BINDING_OUTPUTS"}},
     {sizeof(px::PackPush), "sizeof(px::PackPush)"}},
    // The input unpacker: the input buffer into the image.
    {"inputs",
     {{px::BINDING_IMAGE, "BINDING_IMAGE"}, {px::BINDING_INPUTS, "BINDING_INPUTS"}},
     {sizeof(px::PackPush), "sizeof(px::PackPush)"}},
};

// The workgroup sizes of the scheduled kernels: KERNEL_LOCAL_SIZE, or one invocation.
constexpr std::array<Named, 3> kernel_local_size = {
    {{px::KERNEL_LOCAL_SIZE, "KERNEL_LOCAL_SIZE"}, {1, "1"}, {1, "1"}}};
constexpr std::array<Named, 3> single_invocation = {{{1, "1"}, {1, "1"}, {1, "1"}}};

// Variants of one algorithm share a family (e.g. matmul_portable and matmul_coopmat_nv in a
// "matmul" family); a kernel file without an entry here fails the build.
const std::vector<KernelEntry> kernels = {
    {"interpreter", "interpreter",
     std::array<Named, 3>{
         {{px::INTERPRETER_LOCAL_SIZE, "INTERPRETER_LOCAL_SIZE"}, {1, "1"}, {1, "1"}}}},
    {"dot_rgb", "kernels", kernel_local_size},
    {"dot_portable", "kernels", kernel_local_size},
    {"dot_intdot", "kernels", kernel_local_size},
    {"dot_store", "kernels", single_invocation},
    {"matmul_portable", "kernels", kernel_local_size},
    {"matmul_intdot", "kernels", kernel_local_size},
    {"matmul_coopmat_nv_s8", "kernels", kernel_local_size},
    {"matmul_coopmat_nv_u8", "kernels", kernel_local_size},
    {"coopmat_peak_nv", "kernels", kernel_local_size},
    {"copy_peak", "kernels", kernel_local_size},
    {"add_bias", "kernels", kernel_local_size},
    {"requant", "kernels", kernel_local_size},
    {"relu", "kernels", kernel_local_size},
    {"argmax", "kernels", kernel_local_size},
    {"gather_check", "kernels", kernel_local_size},
    {"gather_mean", "kernels", kernel_local_size},
    {"embed_check", "kernels", kernel_local_size},
    {"embed", "kernels", kernel_local_size},
    {"rmsnorm", "kernels", kernel_local_size},
    {"where_check", "kernels", kernel_local_size},
    {"kvstore", "kernels", kernel_local_size},
    {"attend", "kernels", kernel_local_size},
    {"pack_outputs", "outputs", kernel_local_size},
    {"unpack_inputs", "inputs", kernel_local_size},
    {"finish", "kernels", single_invocation},
};

// ---- What a module declares: px::SpirvModule, from pxVM's reader or from SPIRV-Cross ------

using px::DescriptorKind;
using px::SpirvBinding;
using Interface = px::SpirvModule;
using Size = std::optional<std::array<std::uint32_t, 3>>;

std::string text(const SpirvBinding& b) {
    std::string s = "set " + std::to_string(b.set) + " binding " + std::to_string(b.binding) +
                    " (" + (b.arrayed ? "array of " : "") + std::string(px::kind_name(b.kind));
    if (!b.name.empty()) s += " " + b.name;
    return s + ")";
}

std::string text(const Size& size) {
    const auto s = size.value_or(std::array<std::uint32_t, 3>{});
    return std::to_string(s[0]) + " x " + std::to_string(s[1]) + " x " + std::to_string(s[2]);
}

// ---- SPIRV-Cross ----------------------------------------------------------------------------

Interface reflect_with_spirv_cross(const std::vector<std::uint32_t>& words) {
    const spirv_cross::Compiler compiler(words);
    const spirv_cross::ShaderResources res = compiler.get_shader_resources();
    Interface in;
    auto add = [&](const auto& resources, DescriptorKind kind) {
        for (const spirv_cross::Resource& r : resources)
            in.bindings.push_back({compiler.get_decoration(r.id, spv::DecorationDescriptorSet),
                                   compiler.get_decoration(r.id, spv::DecorationBinding), kind,
                                   !compiler.get_type(r.type_id).array.empty(),
                                   compiler.get_name(r.id)});
    };
    add(res.storage_buffers, DescriptorKind::storage_buffer);
    add(res.uniform_buffers, DescriptorKind::uniform_buffer);
    add(res.storage_images, DescriptorKind::image);
    add(res.separate_images, DescriptorKind::image);
    add(res.separate_samplers, DescriptorKind::sampler);
    add(res.sampled_images, DescriptorKind::sampled_image);
    add(res.acceleration_structures, DescriptorKind::other);
    std::sort(in.bindings.begin(), in.bindings.end(), [](const auto& a, const auto& b) {
        return std::pair(a.set, a.binding) < std::pair(b.set, b.binding);
    });
    for (const spirv_cross::Resource& r : res.push_constant_buffers)
        in.push_constant_size =
            std::uint32_t(compiler.get_declared_struct_size(compiler.get_type(r.base_type_id)));

    auto& size = in.local_size.emplace();
    for (std::uint32_t i = 0; i < 3; ++i)
        size[i] = compiler.get_execution_mode_argument(spv::ExecutionModeLocalSize, i);
    // Components set by specialization constants report their default values.
    std::array<spirv_cross::SpecializationConstant, 3> spec;
    if (compiler.get_work_group_size_specialization_constants(spec[0], spec[1], spec[2]) != 0)
        for (std::uint32_t i = 0; i < 3; ++i)
            if (spec[i].id != 0) {
                size[i] = compiler.get_constant(spec[i].id).scalar();
                in.local_size_specializable = true;
            }
    return in;
}

// ---- Checks ---------------------------------------------------------------------------------

struct Module {
    std::string kernel, path;
    Interface interface;
    bool by_spirv_cross = false;
    std::string spirv_cross_error; // why SPIRV-Cross could not read it
    std::vector<std::string> errors;
};

void fail(Module& m, const std::string& what) {
    m.errors.push_back(what);
}

std::optional<std::vector<std::uint32_t>> load(const std::string& path, std::string& error) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        error = "cannot open " + path;
        return std::nullopt;
    }
    std::stringstream buffer;
    buffer << file.rdbuf();
    const std::string bytes = buffer.str();
    if (bytes.size() < 20 || bytes.size() % 4 != 0) {
        error = path + " is not a SPIR-V module (" + std::to_string(bytes.size()) + " bytes)";
        return std::nullopt;
    }
    std::vector<std::uint32_t> words(bytes.size() / 4);
    for (std::size_t i = 0; i < words.size(); ++i)
        for (int b = 0; b < 4; ++b)
            words[i] |= std::uint32_t(std::uint8_t(bytes[4 * i + b])) << (8 * b);
    if (words[0] != spv::MagicNumber) {
        error = path + " does not start with the SPIR-V magic number";
        return std::nullopt;
    }
    return words;
}

// Reads a module's interface with both readers. SPIRV-Cross failing is not an error: the module
// is then checked on what pxVM's reader sees.
Module read_module(const std::string& kernel, const std::string& path) {
    Module m{kernel, path, {}, false, {}, {}};
    std::string error;
    const auto words = load(path, error);
    if (!words) {
        fail(m, error);
        return m;
    }
    auto module = px::read_spirv_module(*words);
    if (!module) {
        fail(m, module.error().message);
        return m;
    }
    m.interface = std::move(*module);
    for (const std::string& p : m.interface.problems)
        fail(m, p);
    if (m.interface.compute_entry_points != 1)
        fail(m, "the module has " + std::to_string(m.interface.compute_entry_points) +
                    " GLCompute entry points, not 1");
    try {
        Interface cross = reflect_with_spirv_cross(*words);
        m.by_spirv_cross = true;
        if (cross.local_size == std::array<std::uint32_t, 3>{}) { // LocalSizeId: not reported
            cross.local_size = m.interface.local_size;
            cross.local_size_specializable = m.interface.local_size_specializable;
        }
        const Interface& own = m.interface;
        if (cross.bindings != own.bindings || cross.push_constant_size != own.push_constant_size ||
            cross.local_size != own.local_size)
            fail(m, "SPIRV-Cross and pxVM's SPIR-V reader disagree (" +
                        std::to_string(cross.bindings.size()) + " vs " +
                        std::to_string(own.bindings.size()) + " bindings, push constants " +
                        std::to_string(cross.push_constant_size) + " vs " +
                        std::to_string(own.push_constant_size) + " bytes, local size " +
                        text(cross.local_size) + " vs " + text(own.local_size) +
                        "): fix the reader in runtime/src/spirv_module.cpp");
        m.interface.bindings = cross.bindings; // SPIRV-Cross names are the friendlier ones
    } catch (const std::exception& e) {
        // Expected for modules using SPIR-V that this SPIRV-Cross predates (cooperative
        // matrices); the family check then ties the module to variants SPIRV-Cross can read.
        m.by_spirv_cross = false;
        m.spirv_cross_error = e.what();
    }
    return m;
}

// Instructions the scheduler lowers by the table (LOWER_WORDS) use a kernel named after them, with
// the scheduled kernels' interface: their entries come from the instruction table.
const std::vector<KernelEntry>& table_kernels() {
    static const std::vector<KernelEntry> entries = [] {
        std::vector<KernelEntry> list;
#define PX_WORDS_KERNEL(name, op, value, length, used, arity, r0, r1, r2, r3, writes, reads, dt0,  \
                        dt1, dt2, dt3, same, in_place, data, shape, lowering, work)                \
    if (lowering == px::LOWER_WORDS) list.push_back({#name, "kernels", kernel_local_size});
        using namespace px; // the table's constants
        PX_INSTRUCTIONS(PX_WORDS_KERNEL)
#undef PX_WORDS_KERNEL
        return list;
    }();
    return entries;
}

const KernelEntry* find_entry(std::string_view kernel) {
    for (const KernelEntry& k : kernels)
        if (k.kernel == kernel) return &k;
    for (const KernelEntry& k : table_kernels())
        if (k.kernel == kernel) return &k;
    return nullptr;
}

const FamilyInterface* find_family(std::string_view family) {
    for (const FamilyInterface& f : families)
        if (f.family == family) return &f;
    return nullptr;
}

void check_against_table(Module& m) {
    const KernelEntry* entry = find_entry(m.kernel);
    if (!entry) {
        fail(m, "no expectations for this kernel: add it to the kernel table in "
                "compiler/spirv_reflect_check.cpp (interface constants in kernels/pxvm_layout.h)");
        return;
    }
    const FamilyInterface* family = find_family(entry->family);
    if (!family) {
        fail(m, "its family " + std::string(entry->family) + " has no interface in the table");
        return;
    }
    const Interface& in = m.interface;
    std::set<std::uint32_t> seen;
    for (const SpirvBinding& b : in.bindings) {
        if (b.set != 0) fail(m, text(b) + " is not in descriptor set 0, the only set pxVM binds");
        if (b.kind != DescriptorKind::storage_buffer || b.arrayed)
            fail(m, text(b) + " is not a storage buffer; pxVM binds only storage buffers");
        if (b.set != 0) continue;
        if (!seen.insert(b.binding).second)
            fail(m, "binding " + std::to_string(b.binding) + " is declared twice");
        const bool expected =
            std::any_of(family->storage_buffers.begin(), family->storage_buffers.end(),
                        [&](const Named& n) { return n.value == b.binding; });
        if (!expected)
            fail(m,
                 text(b) + " is not a binding of the " + std::string(entry->family) + " interface");
    }
    for (const Named& n : family->storage_buffers)
        if (!seen.count(n.value))
            fail(m, "it declares no storage buffer at binding " + std::to_string(n.value) + " (" +
                        std::string(n.source) + ")");
    if (in.push_constant_size != family->push_constant_size.value)
        fail(m, "its push-constant block is " + std::to_string(in.push_constant_size) +
                    " bytes, expected " + std::to_string(family->push_constant_size.value) + " (" +
                    std::string(family->push_constant_size.source) + ")");
    if (entry->local_size) {
        const auto& expected = *entry->local_size;
        const std::array<std::uint32_t, 3> values = {expected[0].value, expected[1].value,
                                                     expected[2].value};
        if (in.local_size != values)
            fail(m, "its local size is " + text(in.local_size) + ", expected " + text(values) +
                        " (" + std::string(expected[0].source) + ")");
    } else if (!in.local_size_specializable) {
        fail(m, "its local size " + text(in.local_size) +
                    " is fixed, but the table says specialization constants set it");
    }
}

int report(const std::vector<Module>& modules) {
    int errors = 0;
    for (const Module& m : modules)
        for (const std::string& e : m.errors) {
            std::fprintf(stderr, "pxvm_spirv_check: kernel %s (%s): %s\n", m.kernel.c_str(),
                         m.path.c_str(), e.c_str());
            ++errors;
        }
    return errors ? 1 : 0;
}

// Variants of one family must present the host one interface, whichever reader read them; a
// variant SPIRV-Cross cannot parse is only trusted together with one it can.
int check_families(const std::vector<std::pair<std::string, std::string>>& args) {
    std::map<std::string, std::vector<Module>> by_family;
    std::vector<Module> modules;
    for (const auto& [kernel, path] : args) {
        Module m = read_module(kernel, path);
        const KernelEntry* entry = find_entry(kernel);
        if (!entry) {
            fail(m, "no expectations for this kernel in compiler/spirv_reflect_check.cpp");
            modules.push_back(m);
            continue;
        }
        by_family[std::string(entry->family)].push_back(m);
    }
    for (auto& [family, variants] : by_family) {
        const Module& first = variants.front();
        bool any_cross = false;
        for (Module& v : variants) {
            any_cross |= v.by_spirv_cross;
            if (v.interface.bindings != first.interface.bindings ||
                v.interface.push_constant_size != first.interface.push_constant_size)
                fail(v, "its interface differs from " + first.kernel + ", another variant of " +
                            "the " + family + " family");
        }
        if (!any_cross)
            std::fprintf(stderr,
                         "pxvm_spirv_check: note: SPIRV-Cross cannot read any variant of the %s "
                         "family (%s: %s); its interface was checked by pxVM's own SPIR-V reader "
                         "only\n",
                         family.c_str(), first.kernel.c_str(), first.spirv_cross_error.c_str());
        modules.insert(modules.end(), variants.begin(), variants.end());
    }
    return report(modules);
}

int usage() {
    std::fprintf(stderr, "usage: pxvm_spirv_check --kernel <name> <file.spv>\n"
                         "       pxvm_spirv_check --families <name>=<file.spv>...\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 3 && args[0] == "--kernel") {
        Module m = read_module(args[1], args[2]);
        if (m.errors.empty()) check_against_table(m);
        return report({m});
    }
    if (!args.empty() && args[0] == "--families") {
        std::vector<std::pair<std::string, std::string>> kernel_paths;
        for (std::size_t i = 1; i < args.size(); ++i) {
            const auto eq = args[i].find('=');
            if (eq == std::string::npos) return usage();
            kernel_paths.emplace_back(args[i].substr(0, eq), args[i].substr(eq + 1));
        }
        return check_families(kernel_paths);
    }
    return usage();
}
