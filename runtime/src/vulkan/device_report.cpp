// pxinfo's device report, as text and as JSON with the same content.
#include "pxvm/vulkan/device_report.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <sstream>

namespace px::vk {

namespace {

constexpr const char* ORDER =
    "device type (discrete GPU, integrated GPU, virtual GPU, CPU, other), then name, then PCI "
    "address, then device UUID";

std::string hex(std::uint32_t v, int digits = 4) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%0*x", digits, v);
    return text;
}

std::vector<std::string> words(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

const char* yes(bool b) {
    return b ? "yes" : "no";
}

/// "128 MiB", or "4.00 GiB (4294967295 bytes)" when the unit does not divide the size.
std::string bytes_text(std::uint64_t bytes) {
    std::string text = format_bytes(bytes);
    if (text.find('.') != std::string::npos) text += " (" + std::to_string(bytes) + " bytes)";
    return text;
}

std::string vendor_text(const DeviceInfo& d) {
    std::string text = hex(d.vendor_id);
    if (!vendor_name(d.vendor_id).empty())
        text += " (" + std::string(vendor_name(d.vendor_id)) + ")";
    return text;
}

std::string shape_text(const CooperativeMatrixShape& s) {
    std::string text = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
                       "  " + s.a_type + " x " + s.b_type + " + " + s.c_type + " -> " +
                       s.result_type + "  (" + s.scope;
    if (s.saturating_accumulation) text += ", saturating";
    return text + ")";
}

nlohmann::json shapes_json(const std::vector<CooperativeMatrixShape>& shapes) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : shapes)
        out.push_back({{"m", s.m},
                       {"n", s.n},
                       {"k", s.k},
                       {"a", s.a_type},
                       {"b", s.b_type},
                       {"c", s.c_type},
                       {"result", s.result_type},
                       {"scope", s.scope},
                       {"saturating_accumulation", s.saturating_accumulation}});
    return out;
}

std::string work_group_text(const std::array<std::uint32_t, 3>& v) {
    return std::to_string(v[0]) + " x " + std::to_string(v[1]) + " x " + std::to_string(v[2]);
}

// One device as JSON.
nlohmann::json device_json(const DeviceInfo& d) {
    using nlohmann::json;
    const DeviceFeatures& f = d.features;
    const DeviceLimits& l = d.limits;
    json j;
    j["index"] = d.index;
    j["name"] = d.name;
    j["type"] = device_type_name(d.type);
    j["vendor_id"] = hex(d.vendor_id);
    j["vendor"] = vendor_name(d.vendor_id);
    j["device_id"] = hex(d.device_id);
    j["api_version"] = format_api_version(d.api_version);
    j["driver"] = {{"name", d.driver_name},
                   {"info", d.driver_info},
                   {"id", int(d.driver_id)},
                   {"version", format_driver_version(d)},
                   {"version_raw", d.driver_version}};
    j["device_uuid"] = format_uuid(d.device_uuid);
    j["pipeline_cache_uuid"] = format_uuid(d.pipeline_cache_uuid);
    j["pci_address"] = d.pci ? json(format_pci(*d.pci)) : json(nullptr);
    j["usable"] = d.usable();
    j["unsupported_reason"] = d.unsupported_reason;

    json families = json::array();
    for (const QueueFamily& q : d.queue_families)
        families.push_back({{"index", q.index},
                            {"flags", words(queue_flag_names(q.flags))},
                            {"count", q.count},
                            {"timestamp_valid_bits", q.timestamp_valid_bits}});
    j["queue_families"] = families;
    j["compute_queue_family"] =
        d.compute_queue_family ? json(*d.compute_queue_family) : json(nullptr);

    json heaps = json::array();
    for (std::size_t i = 0; i < d.memory_heaps.size(); ++i)
        heaps.push_back({{"index", i},
                         {"size", d.memory_heaps[i].size},
                         {"flags", words(memory_heap_names(d.memory_heaps[i].flags))}});
    j["memory_heaps"] = heaps;
    json types = json::array();
    for (std::size_t i = 0; i < d.memory_types.size(); ++i)
        types.push_back({{"index", i},
                         {"heap", d.memory_types[i].heap},
                         {"flags", words(memory_property_names(d.memory_types[i].flags))}});
    j["memory_types"] = types;

    const IntegerDotProduct& dot = f.integer_dot_product;
    const Subgroups& sg = f.subgroups;
    j["features"] = {
        {"storage_buffer_8bit_access", f.storage_buffer_8bit},
        {"uniform_and_storage_buffer_8bit_access", f.uniform_and_storage_buffer_8bit},
        {"storage_buffer_16bit_access", f.storage_buffer_16bit},
        {"shader_int8", f.shader_int8},
        {"shader_int16", f.shader_int16},
        {"shader_int64", f.shader_int64},
        {"shader_float16", f.shader_float16},
        {"shader_float64", f.shader_float64},
        {"shader_buffer_int64_atomics", f.shader_buffer_int64_atomics},
        {"vulkan_memory_model", f.vulkan_memory_model},
        {"pipeline_creation_feedback", f.pipeline_creation_feedback},
        {"integer_dot_product",
         {{"supported", dot.supported},
          {"packed_4x8_unsigned_accelerated", dot.packed_4x8_unsigned_accelerated},
          {"packed_4x8_signed_accelerated", dot.packed_4x8_signed_accelerated},
          {"packed_4x8_mixed_accelerated", dot.packed_4x8_mixed_accelerated},
          {"vector_8bit_unsigned_accelerated", dot.vector_8bit_unsigned_accelerated},
          {"vector_8bit_signed_accelerated", dot.vector_8bit_signed_accelerated},
          {"accumulating_saturating_packed_4x8_unsigned_accelerated",
           dot.accumulating_saturating_packed_4x8_unsigned_accelerated},
          {"accumulating_saturating_packed_4x8_signed_accelerated",
           dot.accumulating_saturating_packed_4x8_signed_accelerated}}},
        {"subgroups",
         {{"size", sg.size},
          {"compute", (sg.stages & VK_SHADER_STAGE_COMPUTE_BIT) != 0},
          {"operations", words(subgroup_operation_names(sg.operations))},
          {"size_control", sg.size_control},
          {"compute_full_subgroups", sg.compute_full_subgroups},
          {"min_size", sg.min_size},
          {"max_size", sg.max_size},
          {"compute_required_size", sg.compute_required_size}}},
        {"cooperative_matrix_nv",
         {{"supported", f.cooperative_matrix_nv},
          {"shapes", shapes_json(f.cooperative_matrix_nv_shapes)}}},
        {"cooperative_matrix_khr",
         {{"supported", f.cooperative_matrix_khr},
          {"shapes", shapes_json(f.cooperative_matrix_khr_shapes)}}},
    };
    j["limits"] = {
        {"max_storage_buffer_range", l.max_storage_buffer_range},
        {"max_memory_allocation_size", l.max_memory_allocation_size},
        {"max_buffer_size", l.max_buffer_size ? json(*l.max_buffer_size) : json(nullptr)},
        {"max_compute_shared_memory_size", l.max_compute_shared_memory_size},
        {"max_compute_work_group_size", l.max_compute_work_group_size},
        {"max_compute_work_group_invocations", l.max_compute_work_group_invocations},
        {"max_compute_work_group_count", l.max_compute_work_group_count},
        {"max_push_constants_size", l.max_push_constants_size},
        {"min_storage_buffer_offset_alignment", l.min_storage_buffer_offset_alignment},
        {"non_coherent_atom_size", l.non_coherent_atom_size},
        {"timestamp_period_ns", l.timestamp_period_ns},
        {"timestamp_compute_and_graphics", l.timestamp_compute_and_graphics},
        {"compute_queue_timestamp_valid_bits", d.timestamp_valid_bits()},
    };
    const ExecutionPaths paths = execution_paths(d);
    nlohmann::json variants = nlohmann::json::array();
    for (const ExecutionPaths::Variant& v : paths.kernel_variants)
        variants.push_back({{"name", v.name}, {"available", v.available}, {"reason", v.reason}});
    nlohmann::json instructions = nlohmann::json::object();
    for (const auto& [op, variant] : paths.instruction_variants)
        instructions[op] = variant;
    j["execution_paths"] = {{"interpreter", paths.interpreter},
                            {"interpreter_note", paths.interpreter_note},
                            {"kernel_variants", variants},
                            {"instruction_variants", instructions}};
    return j;
}

} // namespace

std::string device_report_json(const std::vector<DeviceInfo>& devices,
                               std::optional<std::uint32_t> preferred) {
    nlohmann::json list = nlohmann::json::array();
    for (const DeviceInfo& d : devices)
        list.push_back(device_json(d));
    const nlohmann::json report = {
        {"devices", list},
        {"preferred_device", preferred ? nlohmann::json(*preferred) : nlohmann::json(nullptr)},
        {"order", ORDER}};
    return report.dump(2);
}

std::string device_report_text(const std::vector<DeviceInfo>& devices,
                               std::optional<std::uint32_t> preferred) {
    std::ostringstream out;
    out << devices.size() << (devices.size() == 1 ? " Vulkan device" : " Vulkan devices")
        << ", ordered by " << ORDER << ".\n";
    const auto row = [&](const char* label, const std::string& value) {
        char padded[40];
        std::snprintf(padded, sizeof padded, "    %-30s ", label);
        out << padded << value << "\n";
    };
    for (const DeviceInfo& d : devices) {
        const DeviceFeatures& f = d.features;
        const DeviceLimits& l = d.limits;
        out << "\n[" << d.index << "] " << d.name
            << (preferred && *preferred == d.index ? "   (default)" : "") << "\n";
        row("type", std::string(device_type_name(d.type)));
        row("vendor / device id", vendor_text(d) + " / " + hex(d.device_id));
        row("driver", d.driver_name + (d.driver_info.empty() ? "" : " (" + d.driver_info + ")") +
                          ", version " + format_driver_version(d));
        row("Vulkan API", format_api_version(d.api_version));
        row("device UUID", format_uuid(d.device_uuid));
        row("pipeline cache UUID", format_uuid(d.pipeline_cache_uuid));
        if (d.pci) row("PCI address", format_pci(*d.pci));
        if (!d.usable()) row("usable by pxVM", "no: " + d.unsupported_reason);

        out << "  queues\n";
        for (const QueueFamily& q : d.queue_families) {
            std::string text =
                queue_flag_names(q.flags) + ", " + std::to_string(q.count) +
                (q.count == 1 ? " queue" : " queues") + ", timestamps " +
                (q.timestamp_valid_bits ? std::to_string(q.timestamp_valid_bits) + " bits"
                                        : std::string("none"));
            if (d.compute_queue_family == q.index)
                text += (q.flags & VK_QUEUE_GRAPHICS_BIT)
                            ? "   <- used (no dedicated compute family)"
                            : "   <- used (dedicated compute)";
            row(("family " + std::to_string(q.index)).c_str(), text);
        }
        out << "  memory\n";
        for (std::size_t i = 0; i < d.memory_heaps.size(); ++i) {
            const std::string flags = memory_heap_names(d.memory_heaps[i].flags);
            row(("heap " + std::to_string(i)).c_str(),
                bytes_text(d.memory_heaps[i].size) + (flags.empty() ? "" : ", " + flags));
        }
        for (std::size_t i = 0; i < d.memory_types.size(); ++i) {
            const std::string flags = memory_property_names(d.memory_types[i].flags);
            row(("type " + std::to_string(i)).c_str(),
                "heap " + std::to_string(d.memory_types[i].heap) + ", " +
                    (flags.empty() ? std::string("(no flags)") : flags));
        }

        out << "  features\n";
        row("8-bit storage buffers", yes(f.storage_buffer_8bit));
        row("shaderInt8 / Int16 / Int64", std::string(yes(f.shader_int8)) + " / " +
                                              yes(f.shader_int16) + " / " + yes(f.shader_int64));
        row("16-bit storage buffers", yes(f.storage_buffer_16bit));
        const IntegerDotProduct& dot = f.integer_dot_product;
        row("integer dot product", !dot.supported
                                       ? "no"
                                       : std::string("yes; 4x8-bit packed accelerated: unsigned ") +
                                             yes(dot.packed_4x8_unsigned_accelerated) +
                                             ", signed " + yes(dot.packed_4x8_signed_accelerated) +
                                             ", mixed " + yes(dot.packed_4x8_mixed_accelerated));
        const Subgroups& sg = f.subgroups;
        std::string subgroups = std::to_string(sg.size);
        if (sg.size_control)
            subgroups += " (size control " + std::to_string(sg.min_size) + ".." +
                         std::to_string(sg.max_size) +
                         (sg.compute_required_size ? ", compute can require a size" : "") + ")";
        else
            subgroups += " (no size control)";
        row("subgroup size", subgroups);
        row("subgroup operations", (sg.stages & VK_SHADER_STAGE_COMPUTE_BIT)
                                       ? subgroup_operation_names(sg.operations)
                                       : std::string("none in compute"));
        row("cooperative matrix NV",
            f.cooperative_matrix_nv
                ? std::to_string(f.cooperative_matrix_nv_shapes.size()) + " shapes"
                : std::string("no"));
        for (const auto& s : f.cooperative_matrix_nv_shapes)
            row("", shape_text(s));
        row("cooperative matrix KHR",
            f.cooperative_matrix_khr
                ? std::to_string(f.cooperative_matrix_khr_shapes.size()) + " shapes"
                : std::string("no"));
        for (const auto& s : f.cooperative_matrix_khr_shapes)
            row("", shape_text(s));
        row("pipeline creation feedback", yes(f.pipeline_creation_feedback));

        out << "  limits\n";
        row("maxStorageBufferRange", bytes_text(l.max_storage_buffer_range));
        row("maxMemoryAllocationSize", bytes_text(l.max_memory_allocation_size));
        if (l.max_buffer_size) row("maxBufferSize", bytes_text(*l.max_buffer_size));
        row("maxComputeSharedMemorySize", bytes_text(l.max_compute_shared_memory_size));
        row("maxComputeWorkGroupSize", work_group_text(l.max_compute_work_group_size));
        row("maxComputeWorkGroupInvocations", std::to_string(l.max_compute_work_group_invocations));
        row("maxComputeWorkGroupCount", work_group_text(l.max_compute_work_group_count));
        row("maxPushConstantsSize", format_bytes(l.max_push_constants_size));
        char period[64];
        std::snprintf(period, sizeof period, "%g ns per tick", double(l.timestamp_period_ns));
        row("timestampPeriod", period);
        row("timestampComputeAndGraphics", yes(l.timestamp_compute_and_graphics));
        row("compute queue timestamps",
            d.timestamp_valid_bits() ? std::to_string(d.timestamp_valid_bits()) + " valid bits"
                                     : std::string("none (GPU stage times unavailable)"));

        const ExecutionPaths paths = execution_paths(d);
        out << "  pxVM execution paths\n";
        row("interpreter",
            paths.interpreter ? std::string("yes") : "no (" + paths.interpreter_note + ")");
        for (const ExecutionPaths::Variant& v : paths.kernel_variants)
            row(("kernels " + v.name).c_str(),
                v.available ? std::string("yes") : "no (" + v.reason + ")");
        std::string uses;
        for (const auto& [op, variant] : paths.instruction_variants)
            uses += (uses.empty() ? "" : ", ") + op + " " + variant;
        row("kernels by instruction", uses);
    }
    return out.str();
}

} // namespace px::vk
