// pxvm_spirv_check: the build-time reflection check of every kernel's SPIR-V (run by
// cmake/PxvmShaders.cmake after spirv-val). The descriptor bindings, the push-constant block and
// the workgroup size must match what the host binds, taken from kernels/pxvm_layout.h; any
// mismatch fails the build.
//   pxvm_spirv_check --kernel <name> <file.spv>        one kernel against its table entry
//   pxvm_spirv_check --families <name>=<file.spv>...   all built variants of a family agree
// Modules are reflected with SPIRV-Cross. Debian 12's SPIRV-Cross (2021) cannot parse modules with
// cooperative matrices: those are read by a small interface reader here instead, and every
// module SPIRV-Cross does read is read by both, which must agree, so the reader is tested too.
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
};

// Variants of one algorithm share a family (e.g. matmul_portable and matmul_coopmat_nv in a
// "matmul" family); a kernel file without an entry here fails the build.
const std::vector<KernelEntry> kernels = {
    {"interpreter", "interpreter",
     std::array<Named, 3>{
         {{px::INTERPRETER_LOCAL_SIZE, "INTERPRETER_LOCAL_SIZE"}, {1, "1"}, {1, "1"}}}},
};

// ---- What a module declares -----------------------------------------------------------------

struct Binding {
    std::uint32_t set = 0, binding = 0;
    std::string kind; // "storage buffer", "uniform buffer", "storage image", ...
    std::string name;
    bool operator==(const Binding& o) const {
        return set == o.set && binding == o.binding && kind == o.kind;
    }
};

struct Interface {
    std::vector<Binding> bindings; // sorted by set, binding
    std::uint32_t push_constant_size = 0;
    std::array<std::uint32_t, 3> local_size{}; // default values when specializable
    bool local_size_specializable = false;
    std::vector<std::string> problems; // what the reader could not make sense of
};

std::string text(const Binding& b) {
    std::string s =
        "set " + std::to_string(b.set) + " binding " + std::to_string(b.binding) + " (" + b.kind;
    if (!b.name.empty()) s += " " + b.name;
    return s + ")";
}

std::string text(const std::array<std::uint32_t, 3>& size) {
    return std::to_string(size[0]) + " x " + std::to_string(size[1]) + " x " +
           std::to_string(size[2]);
}

void sort_bindings(Interface& in) {
    std::sort(in.bindings.begin(), in.bindings.end(), [](const Binding& a, const Binding& b) {
        return std::pair(a.set, a.binding) < std::pair(b.set, b.binding);
    });
}

// ---- The interface reader: decorations, variables and types, straight from the words -----------

class SpirvReader {
public:
    explicit SpirvReader(const std::vector<std::uint32_t>& words) : words_(words) {}

    Interface read() {
        Interface in;
        for (std::size_t i = 5; i < words_.size();) {
            const std::uint32_t count = words_[i] >> 16, op = words_[i] & 0xFFFF;
            if (count == 0 || i + count > words_.size()) {
                in.problems.push_back("malformed instruction at word " + std::to_string(i));
                return in;
            }
            visit(op, std::vector<std::uint32_t>(words_.begin() + std::ptrdiff_t(i) + 1,
                                                 words_.begin() + std::ptrdiff_t(i + count)));
            i += count;
        }
        for (const auto& [id, v] : variables_)
            resource(in, id, v.first, v.second);
        sort_bindings(in);
        local_size(in);
        return in;
    }

private:
    struct Decorations {
        std::optional<std::uint32_t> set, binding, builtin, array_stride;
        bool block = false, buffer_block = false;
    };

    void visit(std::uint32_t op, const std::vector<std::uint32_t>& a) {
        switch (op) {
        case spv::OpName:
            if (!a.empty()) names_[a[0]] = string_at(a, 1);
            break;
        case spv::OpEntryPoint:
            if (a.size() >= 2 && a[0] == spv::ExecutionModelGLCompute)
                entry_points_.push_back(a[1]);
            break;
        case spv::OpExecutionMode:
        case spv::OpExecutionModeId:
            if (a.size() >= 5 &&
                (a[1] == spv::ExecutionModeLocalSize || a[1] == spv::ExecutionModeLocalSizeId))
                local_size_mode_ = {a[1], a[2], a[3], a[4]};
            break;
        case spv::OpDecorate:
            if (a.size() >= 2) decorate(decorations_[a[0]], a[1], a.size() >= 3 ? a[2] : 0);
            break;
        case spv::OpMemberDecorate:
            if (a.size() >= 4 && a[2] == spv::DecorationOffset) offsets_[{a[0], a[1]}] = a[3];
            break;
        case spv::OpTypeInt:
        case spv::OpTypeFloat:
        case spv::OpTypeVector:
        case spv::OpTypeMatrix:
        case spv::OpTypeImage:
        case spv::OpTypeSampler:
        case spv::OpTypeSampledImage:
        case spv::OpTypeArray:
        case spv::OpTypeRuntimeArray:
        case spv::OpTypeStruct:
        case spv::OpTypePointer:
            if (!a.empty()) types_[a[0]] = {op, std::vector<std::uint32_t>(a.begin() + 1, a.end())};
            break;
        case spv::OpConstant:
        case spv::OpSpecConstant:
            if (a.size() >= 3) constants_[a[1]] = {a[2], op == spv::OpSpecConstant};
            break;
        case spv::OpConstantComposite:
        case spv::OpSpecConstantComposite:
            if (a.size() >= 2)
                composites_[a[1]] = std::vector<std::uint32_t>(a.begin() + 2, a.end());
            break;
        case spv::OpVariable:
            if (a.size() >= 3) variables_[a[1]] = {a[0], a[2]};
            break;
        default:
            break;
        }
    }

    static void decorate(Decorations& d, std::uint32_t decoration, std::uint32_t value) {
        switch (decoration) {
        case spv::DecorationDescriptorSet:
            d.set = value;
            break;
        case spv::DecorationBinding:
            d.binding = value;
            break;
        case spv::DecorationBuiltIn:
            d.builtin = value;
            break;
        case spv::DecorationArrayStride:
            d.array_stride = value;
            break;
        case spv::DecorationBlock:
            d.block = true;
            break;
        case spv::DecorationBufferBlock:
            d.buffer_block = true;
            break;
        default:
            break;
        }
    }

    std::string string_at(const std::vector<std::uint32_t>& a, std::size_t first) const {
        std::string s;
        for (std::size_t i = first; i < a.size(); ++i)
            for (int b = 0; b < 4; ++b) {
                const char c = char((a[i] >> (8 * b)) & 0xFF);
                if (c == 0) return s;
                s += c;
            }
        return s;
    }

    std::string name(std::uint32_t id) const {
        const auto it = names_.find(id);
        return it == names_.end() ? std::string() : it->second;
    }

    // The variable's descriptor or push-constant block, from its storage class and type.
    void resource(Interface& in, std::uint32_t id, std::uint32_t pointer_type,
                  std::uint32_t storage) {
        const auto pointer = types_.find(pointer_type);
        if (pointer == types_.end() || pointer->second.first != spv::OpTypePointer ||
            pointer->second.second.size() < 2) {
            in.problems.push_back("variable " + std::to_string(id) + " has no pointer type");
            return;
        }
        std::uint32_t type = pointer->second.second[1];
        if (storage == spv::StorageClassPushConstant) {
            in.push_constant_size = size_of(type, in);
            return;
        }
        if (storage != spv::StorageClassStorageBuffer && storage != spv::StorageClassUniform &&
            storage != spv::StorageClassUniformConstant)
            return;
        bool arrayed = false;
        while (types_.count(type) && (types_[type].first == spv::OpTypeArray ||
                                      types_[type].first == spv::OpTypeRuntimeArray)) {
            arrayed = true;
            type = types_[type].second.at(0);
        }
        const Decorations& td = decorations_[type];
        std::string kind;
        if (storage == spv::StorageClassStorageBuffer ||
            (storage == spv::StorageClassUniform && td.buffer_block))
            kind = "storage buffer";
        else if (storage == spv::StorageClassUniform)
            kind = "uniform buffer";
        else {
            const std::uint32_t op = types_.count(type) ? types_[type].first : 0;
            kind = op == spv::OpTypeImage          ? "image"
                   : op == spv::OpTypeSampler      ? "sampler"
                   : op == spv::OpTypeSampledImage ? "sampled image"
                                                   : "opaque resource";
        }
        if (arrayed) kind = "array of " + kind;
        const Decorations& vd = decorations_[id];
        in.bindings.push_back({vd.set.value_or(0), vd.binding.value_or(0), kind, name(id)});
    }

    // Byte size of a type in a push-constant block (offset + size of the furthest member).
    std::uint32_t size_of(std::uint32_t type, Interface& in) {
        const auto it = types_.find(type);
        if (it == types_.end()) {
            in.problems.push_back("unknown type " + std::to_string(type));
            return 0;
        }
        const auto& [op, a] = it->second;
        switch (op) {
        case spv::OpTypeInt:
        case spv::OpTypeFloat:
            return a.at(0) / 8;
        case spv::OpTypeVector:
            return a.at(1) * size_of(a.at(0), in);
        case spv::OpTypeArray: {
            const auto length = constants_.find(a.at(1));
            const auto stride = decorations_[type].array_stride;
            if (length == constants_.end() || !stride) break;
            return length->second.first * *stride;
        }
        case spv::OpTypeStruct: {
            std::uint32_t end = 0;
            for (std::uint32_t m = 0; m < a.size(); ++m) {
                const auto offset = offsets_.find({type, m});
                if (offset == offsets_.end()) {
                    in.problems.push_back("member " + std::to_string(m) + " of struct " +
                                          std::to_string(type) + " has no offset");
                    continue;
                }
                end = std::max(end, offset->second + size_of(a[m], in));
            }
            return end;
        }
        default:
            break;
        }
        in.problems.push_back("cannot size type " + std::to_string(type) + " (opcode " +
                              std::to_string(op) + ") in the push-constant block");
        return 0;
    }

    // The WorkgroupSize built-in wins over the LocalSize/LocalSizeId execution mode.
    void local_size(Interface& in) {
        if (entry_points_.size() != 1) {
            in.problems.push_back("the module has " + std::to_string(entry_points_.size()) +
                                  " GLCompute entry points, not 1");
            return;
        }
        auto value = [&](std::uint32_t id) -> std::uint32_t {
            const auto c = constants_.find(id);
            if (c == constants_.end()) {
                in.problems.push_back("workgroup size component " + std::to_string(id) +
                                      " is not a constant");
                return 0;
            }
            in.local_size_specializable |= c->second.second;
            return c->second.first;
        };
        for (const auto& [id, d] : decorations_)
            if (d.builtin == spv::BuiltInWorkgroupSize && composites_.count(id) &&
                composites_[id].size() == 3) {
                for (int i = 0; i < 3; ++i)
                    in.local_size[i] = value(composites_[id][i]);
                return;
            }
        if (!local_size_mode_) {
            in.problems.push_back("the entry point has no LocalSize or LocalSizeId");
            return;
        }
        const auto& mode = *local_size_mode_;
        for (int i = 0; i < 3; ++i)
            in.local_size[i] =
                mode[0] == spv::ExecutionModeLocalSizeId ? value(mode[1 + i]) : mode[1 + i];
    }

    const std::vector<std::uint32_t>& words_;
    std::map<std::uint32_t, std::string> names_;
    std::vector<std::uint32_t> entry_points_;
    std::optional<std::array<std::uint32_t, 4>> local_size_mode_;
    std::map<std::uint32_t, Decorations> decorations_;
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint32_t> offsets_;
    std::map<std::uint32_t, std::pair<std::uint32_t, std::vector<std::uint32_t>>> types_;
    std::map<std::uint32_t, std::pair<std::uint32_t, bool>> constants_; // value, specializable
    std::map<std::uint32_t, std::vector<std::uint32_t>> composites_;
    std::map<std::uint32_t, std::pair<std::uint32_t, std::uint32_t>> variables_; // type, storage
};

// ---- SPIRV-Cross ----------------------------------------------------------------------------

Interface reflect_with_spirv_cross(const std::vector<std::uint32_t>& words) {
    const spirv_cross::Compiler compiler(words);
    const spirv_cross::ShaderResources res = compiler.get_shader_resources();
    Interface in;
    auto add = [&](const auto& resources, const std::string& kind) {
        for (const spirv_cross::Resource& r : resources) {
            const auto& type = compiler.get_type(r.type_id);
            in.bindings.push_back({compiler.get_decoration(r.id, spv::DecorationDescriptorSet),
                                   compiler.get_decoration(r.id, spv::DecorationBinding),
                                   (type.array.empty() ? "" : "array of ") + kind,
                                   compiler.get_name(r.id)});
        }
    };
    add(res.storage_buffers, "storage buffer");
    add(res.uniform_buffers, "uniform buffer");
    add(res.storage_images, "image");
    add(res.separate_images, "image");
    add(res.separate_samplers, "sampler");
    add(res.sampled_images, "sampled image");
    add(res.acceleration_structures, "opaque resource");
    sort_bindings(in);
    for (const spirv_cross::Resource& r : res.push_constant_buffers)
        in.push_constant_size =
            std::uint32_t(compiler.get_declared_struct_size(compiler.get_type(r.base_type_id)));

    for (std::uint32_t i = 0; i < 3; ++i)
        in.local_size[i] = compiler.get_execution_mode_argument(spv::ExecutionModeLocalSize, i);
    // Components set by specialization constants report their default values.
    std::array<spirv_cross::SpecializationConstant, 3> spec;
    if (compiler.get_work_group_size_specialization_constants(spec[0], spec[1], spec[2]) != 0)
        for (std::uint32_t i = 0; i < 3; ++i)
            if (spec[i].id != 0) {
                in.local_size[i] = compiler.get_constant(spec[i].id).scalar();
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
// is then checked on what the interface reader sees.
Module read_module(const std::string& kernel, const std::string& path) {
    Module m{kernel, path, {}, false, {}, {}};
    std::string error;
    const auto words = load(path, error);
    if (!words) {
        fail(m, error);
        return m;
    }
    m.interface = SpirvReader(*words).read();
    for (const std::string& p : m.interface.problems)
        fail(m, p);
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
            fail(m, "SPIRV-Cross and the interface reader of pxvm_spirv_check disagree (" +
                        std::to_string(cross.bindings.size()) + " vs " +
                        std::to_string(own.bindings.size()) + " bindings, push constants " +
                        std::to_string(cross.push_constant_size) + " vs " +
                        std::to_string(own.push_constant_size) + " bytes, local size " +
                        text(cross.local_size) + " vs " + text(own.local_size) +
                        "): fix the reader in compiler/spirv_reflect_check.cpp");
        m.interface.bindings = cross.bindings; // SPIRV-Cross names are the friendlier ones
    } catch (const std::exception& e) {
        // Expected for modules using SPIR-V that this SPIRV-Cross predates (cooperative
        // matrices); the family check then ties the module to variants SPIRV-Cross can read.
        m.by_spirv_cross = false;
        m.spirv_cross_error = e.what();
    }
    return m;
}

const KernelEntry* find_entry(std::string_view kernel) {
    for (const KernelEntry& k : kernels)
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
    for (const Binding& b : in.bindings) {
        if (b.set != 0) fail(m, text(b) + " is not in descriptor set 0, the only set pxVM binds");
        if (b.kind != "storage buffer")
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
                         "family (%s: %s); its interface was checked by pxvm_spirv_check's own "
                         "reader only\n",
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
