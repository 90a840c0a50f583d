// Reads a SPIR-V module's capabilities, workgroup size, descriptors and push-constant block
// straight from its words, in one pass over the instructions.
#include "pxvm/spirv_module.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace px {

namespace {

// The opcodes and enumerants this reader needs (SPIR-V specification, section 3).
constexpr std::uint32_t MAGIC = 0x07230203;
constexpr std::uint32_t OP_NAME = 5, OP_ENTRY_POINT = 15, OP_EXECUTION_MODE = 16,
                        OP_CAPABILITY = 17, OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22,
                        OP_TYPE_VECTOR = 23, OP_TYPE_MATRIX = 24, OP_TYPE_IMAGE = 25,
                        OP_TYPE_SAMPLER = 26, OP_TYPE_SAMPLED_IMAGE = 27, OP_TYPE_ARRAY = 28,
                        OP_TYPE_RUNTIME_ARRAY = 29, OP_TYPE_STRUCT = 30, OP_TYPE_POINTER = 32,
                        OP_CONSTANT = 43, OP_CONSTANT_COMPOSITE = 44, OP_SPEC_CONSTANT = 50,
                        OP_SPEC_CONSTANT_COMPOSITE = 51, OP_VARIABLE = 59, OP_DECORATE = 71,
                        OP_MEMBER_DECORATE = 72, OP_EXECUTION_MODE_ID = 331;
constexpr std::uint32_t GL_COMPUTE = 5, MODE_LOCAL_SIZE = 17, MODE_LOCAL_SIZE_ID = 38,
                        STORAGE_UNIFORM_CONSTANT = 0, STORAGE_UNIFORM = 2,
                        STORAGE_PUSH_CONSTANT = 9, STORAGE_STORAGE_BUFFER = 12,
                        DECORATION_BUFFER_BLOCK = 3, DECORATION_ARRAY_STRIDE = 6,
                        DECORATION_BUILT_IN = 11, DECORATION_BINDING = 33,
                        DECORATION_DESCRIPTOR_SET = 34, DECORATION_OFFSET = 35,
                        BUILT_IN_WORKGROUP_SIZE = 25;

// Types nest no deeper than this in a module the reader sizes; a deeper chain is taken as a cycle,
// which a damaged module can declare.
constexpr int MAX_TYPE_DEPTH = 64;

class Reader {
public:
    Result<SpirvModule> read(std::span<const std::uint32_t> words) {
        if (words.size() < 5 || words[0] != MAGIC)
            return Error{ErrorCode::invalid_input,
                         "not a SPIR-V module (missing magic number 0x07230203)"};
        for (std::size_t at = 5; at < words.size();) {
            const std::uint32_t count = words[at] >> 16;
            if (count == 0 || at + count > words.size())
                return Error{ErrorCode::invalid_input,
                             "SPIR-V module is truncated at word " + std::to_string(at)};
            visit(words[at] & 0xFFFFu, words.subspan(at + 1, count - 1));
            at += count;
        }
        for (const auto& [id, variable] : variables_)
            resource(id, variable.first, variable.second);
        std::sort(m_.bindings.begin(), m_.bindings.end(),
                  [](const SpirvBinding& a, const SpirvBinding& b) {
                      return std::pair(a.set, a.binding) < std::pair(b.set, b.binding);
                  });
        local_size();
        return std::move(m_);
    }

private:
    struct Decorations {
        std::optional<std::uint32_t> set, binding, builtin, array_stride;
        bool buffer_block = false;
    };
    struct Type {
        std::uint32_t opcode;
        std::vector<std::uint32_t> operands; // after the result id
    };
    struct Constant {
        std::uint32_t value; // the default value of a specialization constant
        bool specializable;
    };

    void visit(std::uint32_t op, std::span<const std::uint32_t> a) {
        switch (op) {
        case OP_CAPABILITY:
            if (!a.empty()) m_.capabilities.push_back(a[0]);
            break;
        case OP_NAME:
            if (!a.empty()) names_[a[0]] = string_at(a.subspan(1));
            break;
        case OP_ENTRY_POINT:
            if (a.size() >= 2 && a[0] == GL_COMPUTE && m_.compute_entry_points++ == 0)
                entry_point_ = a[1];
            break;
        case OP_EXECUTION_MODE:
        case OP_EXECUTION_MODE_ID:
            if (a.size() >= 5 && a[0] == entry_point_ &&
                (a[1] == MODE_LOCAL_SIZE || a[1] == MODE_LOCAL_SIZE_ID))
                local_size_mode_ = {a[1], a[2], a[3], a[4]};
            break;
        case OP_DECORATE:
            if (a.size() >= 2) decorate(decorations_[a[0]], a[1], a.size() >= 3 ? a[2] : 0);
            break;
        case OP_MEMBER_DECORATE:
            if (a.size() >= 4 && a[2] == DECORATION_OFFSET) offsets_[{a[0], a[1]}] = a[3];
            break;
        case OP_TYPE_INT:
        case OP_TYPE_FLOAT:
        case OP_TYPE_VECTOR:
        case OP_TYPE_MATRIX:
        case OP_TYPE_IMAGE:
        case OP_TYPE_SAMPLER:
        case OP_TYPE_SAMPLED_IMAGE:
        case OP_TYPE_ARRAY:
        case OP_TYPE_RUNTIME_ARRAY:
        case OP_TYPE_STRUCT:
        case OP_TYPE_POINTER:
            if (!a.empty()) types_[a[0]] = {op, {a.begin() + 1, a.end()}};
            break;
        case OP_CONSTANT:
        case OP_SPEC_CONSTANT:
            if (a.size() >= 3) constants_[a[1]] = {a[2], op == OP_SPEC_CONSTANT};
            break;
        case OP_CONSTANT_COMPOSITE:
        case OP_SPEC_CONSTANT_COMPOSITE:
            if (a.size() >= 2) composites_[a[1]] = {a.begin() + 2, a.end()};
            break;
        case OP_VARIABLE:
            if (a.size() >= 3) variables_[a[1]] = {a[0], a[2]};
            break;
        default:
            break;
        }
    }

    static void decorate(Decorations& d, std::uint32_t decoration, std::uint32_t value) {
        switch (decoration) {
        case DECORATION_DESCRIPTOR_SET:
            d.set = value;
            break;
        case DECORATION_BINDING:
            d.binding = value;
            break;
        case DECORATION_BUILT_IN:
            d.builtin = value;
            break;
        case DECORATION_ARRAY_STRIDE:
            d.array_stride = value;
            break;
        case DECORATION_BUFFER_BLOCK:
            d.buffer_block = true;
            break;
        default:
            break;
        }
    }

    static std::string string_at(std::span<const std::uint32_t> words) {
        std::string s;
        for (std::uint32_t word : words)
            for (int b = 0; b < 4; ++b) {
                const char c = char((word >> (8 * b)) & 0xFF);
                if (c == 0) return s;
                s += c;
            }
        return s;
    }

    const Type* type(std::uint32_t id) const {
        const auto it = types_.find(id);
        return it == types_.end() ? nullptr : &it->second;
    }

    // The variable's descriptor or push-constant block, from its storage class and type.
    void resource(std::uint32_t id, std::uint32_t pointer_type, std::uint32_t storage) {
        const Type* pointer = type(pointer_type);
        if (!pointer || pointer->opcode != OP_TYPE_POINTER || pointer->operands.size() < 2) {
            m_.problems.push_back("variable " + std::to_string(id) + " has no pointer type");
            return;
        }
        std::uint32_t pointee = pointer->operands[1];
        if (storage == STORAGE_PUSH_CONSTANT) {
            m_.push_constant_size = size_of(pointee, 0);
            return;
        }
        if (storage != STORAGE_STORAGE_BUFFER && storage != STORAGE_UNIFORM &&
            storage != STORAGE_UNIFORM_CONSTANT)
            return;
        SpirvBinding b;
        for (int depth = 0; type(pointee) && (type(pointee)->opcode == OP_TYPE_ARRAY ||
                                              type(pointee)->opcode == OP_TYPE_RUNTIME_ARRAY);
             ++depth) {
            if (depth == MAX_TYPE_DEPTH || type(pointee)->operands.empty()) {
                m_.problems.push_back("cannot find the element type of array " +
                                      std::to_string(pointee));
                return;
            }
            b.arrayed = true;
            pointee = type(pointee)->operands[0];
        }
        const std::uint32_t op = type(pointee) ? type(pointee)->opcode : 0;
        b.kind = storage == STORAGE_STORAGE_BUFFER ||
                         (storage == STORAGE_UNIFORM && decorations_[pointee].buffer_block)
                     ? DescriptorKind::storage_buffer
                 : storage == STORAGE_UNIFORM  ? DescriptorKind::uniform_buffer
                 : op == OP_TYPE_IMAGE         ? DescriptorKind::image
                 : op == OP_TYPE_SAMPLER       ? DescriptorKind::sampler
                 : op == OP_TYPE_SAMPLED_IMAGE ? DescriptorKind::sampled_image
                                               : DescriptorKind::other;
        const Decorations& d = decorations_[id];
        b.set = d.set.value_or(0);
        b.binding = d.binding.value_or(0);
        const auto name = names_.find(id);
        if (name != names_.end()) b.name = name->second;
        m_.bindings.push_back(std::move(b));
    }

    // Byte size of a type in a push-constant block (offset + size of the furthest member).
    std::uint32_t size_of(std::uint32_t id, int depth) {
        // Each type once: structs that repeat a struct type would otherwise be walked an
        // exponential number of times (found by fuzz_spirv).
        if (const auto known = sizes_.find(id); known != sizes_.end()) return known->second;
        const std::uint32_t size = compute_size(id, depth);
        sizes_[id] = size;
        return size;
    }

    std::uint32_t compute_size(std::uint32_t id, int depth) {
        const Type* t = type(id);
        if (!t || depth == MAX_TYPE_DEPTH) {
            m_.problems.push_back(t ? "type " + std::to_string(id) + " nests too deeply"
                                    : "unknown type " + std::to_string(id));
            return 0;
        }
        const std::vector<std::uint32_t>& a = t->operands;
        switch (t->opcode) {
        case OP_TYPE_INT:
        case OP_TYPE_FLOAT:
            if (a.empty()) break;
            return a[0] / 8;
        case OP_TYPE_VECTOR:
            if (a.size() < 2) break;
            return a[1] * size_of(a[0], depth + 1);
        case OP_TYPE_ARRAY: {
            if (a.size() < 2) break;
            const auto length = constants_.find(a[1]);
            const auto stride = decorations_[id].array_stride;
            if (length == constants_.end() || !stride) break;
            return length->second.value * *stride;
        }
        case OP_TYPE_STRUCT: {
            std::uint32_t end = 0;
            for (std::uint32_t m = 0; m < a.size(); ++m) {
                const auto offset = offsets_.find({id, m});
                if (offset == offsets_.end()) {
                    m_.problems.push_back("member " + std::to_string(m) + " of struct " +
                                          std::to_string(id) + " has no offset");
                    continue;
                }
                end = std::max(end, offset->second + size_of(a[m], depth + 1));
            }
            return end;
        }
        default:
            break;
        }
        m_.problems.push_back("cannot size type " + std::to_string(id) + " (opcode " +
                              std::to_string(t->opcode) + ") in the push-constant block");
        return 0;
    }

    // Sets the local size from three constant ids; false when one is not a constant.
    bool resolve(std::span<const std::uint32_t> ids) {
        std::array<std::uint32_t, 3> size{};
        bool specializable = false;
        for (int i = 0; i < 3; ++i) {
            const auto c = constants_.find(ids[i]);
            if (c == constants_.end()) {
                m_.problems.push_back("workgroup size component " + std::to_string(ids[i]) +
                                      " is not a constant");
                return false;
            }
            size[i] = c->second.value;
            specializable |= c->second.specializable;
        }
        m_.local_size = size;
        m_.local_size_specializable = specializable;
        return true;
    }

    // A WorkgroupSize built-in overrides the execution mode (SPIR-V 2.2 "WorkgroupSize").
    void local_size() {
        for (const auto& [id, d] : decorations_) {
            const auto composite = composites_.find(id);
            if (d.builtin == BUILT_IN_WORKGROUP_SIZE && composite != composites_.end() &&
                composite->second.size() == 3) {
                if (resolve(composite->second)) return;
                break;
            }
        }
        if (!local_size_mode_) {
            if (entry_point_)
                m_.problems.push_back("the entry point has no LocalSize or LocalSizeId");
            return;
        }
        const auto& [mode, x, y, z] = *local_size_mode_;
        if (mode == MODE_LOCAL_SIZE_ID)
            resolve(std::array{x, y, z});
        else
            m_.local_size = std::array{x, y, z};
    }

    SpirvModule m_;
    std::optional<std::uint32_t> entry_point_;                    // the first GLCompute one
    std::optional<std::array<std::uint32_t, 4>> local_size_mode_; // mode, then x, y, z
    std::map<std::uint32_t, std::string> names_;
    std::map<std::uint32_t, Decorations> decorations_;
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint32_t> offsets_; // struct, member
    std::map<std::uint32_t, Type> types_;
    std::map<std::uint32_t, std::uint32_t> sizes_; // size_of, once per type
    std::map<std::uint32_t, Constant> constants_;
    std::map<std::uint32_t, std::vector<std::uint32_t>> composites_;
    std::map<std::uint32_t, std::pair<std::uint32_t, std::uint32_t>> variables_; // type, storage
};

} // namespace

std::string_view kind_name(DescriptorKind kind) {
    // In the order of DescriptorKind.
    constexpr std::string_view names[] = {"storage buffer", "uniform buffer", "image",
                                          "sampler",        "sampled image",  "opaque resource"};
    return names[std::size_t(kind)];
}

Result<SpirvModule> read_spirv_module(std::span<const std::uint32_t> words) {
    return Reader().read(words);
}

} // namespace px
