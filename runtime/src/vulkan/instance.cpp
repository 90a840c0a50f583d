// The Vulkan instance: environment overrides, the validation layer and its messenger, device
// enumeration in the stable order, and device selection.
#include "runtime_state.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace px::vk {

namespace {

constexpr const char* VALIDATION_LAYER = "VK_LAYER_KHRONOS_validation";
constexpr std::size_t MAX_KEPT_MESSAGES = 64;

VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                VkDebugUtilsMessageTypeFlagsEXT,
                                                const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                void* user) {
    auto* log = static_cast<detail::MessageLog*>(user);
    const bool error = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    std::string text = error ? "error: " : "warning: ";
    if (data->pMessageIdName) text += std::string(data->pMessageIdName) + ": ";
    text += data->pMessage ? data->pMessage : "";

    std::lock_guard lock(log->mutex);
    (error ? log->messages.errors : log->messages.warnings)++;
    if (log->messages.texts.size() < MAX_KEPT_MESSAGES) log->messages.texts.push_back(text);
    if (log->print) std::fprintf(stderr, "pxvm: validation %s\n", text.c_str());
    return VK_FALSE;
}

VkDebugUtilsMessengerCreateInfoEXT messenger_info(detail::MessageLog* log) {
    auto info = make_struct<VkDebugUtilsMessengerCreateInfoEXT>(
        VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT);
    info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    info.pfnUserCallback = on_debug_message;
    info.pUserData = log;
    return info;
}

std::vector<std::string> instance_extensions(const char* layer) {
    std::uint32_t count = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &count, nullptr) != VK_SUCCESS) return {};
    std::vector<VkExtensionProperties> props(count);
    if (vkEnumerateInstanceExtensionProperties(layer, &count, props.data()) < VK_SUCCESS) return {};
    props.resize(count);
    std::vector<std::string> names;
    for (const auto& p : props)
        names.emplace_back(p.extensionName);
    return names;
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

bool layer_installed(const char* name) {
    std::uint32_t count = 0;
    if (vkEnumerateInstanceLayerProperties(&count, nullptr) != VK_SUCCESS) return false;
    std::vector<VkLayerProperties> layers(count);
    if (vkEnumerateInstanceLayerProperties(&count, layers.data()) < VK_SUCCESS) return false;
    layers.resize(count);
    return std::any_of(layers.begin(), layers.end(), [&](const VkLayerProperties& l) {
        return std::strcmp(l.layerName, name) == 0;
    });
}

/// PXVM_INJECT_FAULT: "allocation", "timeout" or "device-lost", optionally ":N" (N >= 1).
Result<FaultInjection> parse_injection(std::string_view text) {
    using Kind = FaultInjection::Kind;
    FaultInjection inject;
    const std::string_view name = text.substr(0, text.find(':'));
    if (name == "allocation")
        inject.kind = Kind::allocation;
    else if (name == "timeout")
        inject.kind = Kind::timeout;
    else if (name == "device-lost")
        inject.kind = Kind::device_lost;
    const auto bad = [&] {
        return Error{
            ErrorCode::invalid_input,
            "PXVM_INJECT_FAULT='" + std::string(text) +
                "' is not 'allocation', 'timeout' or 'device-lost', optionally followed by "
                "':N' (the Nth allocation or submit, N >= 1)"};
    };
    if (inject.kind == Kind::none) return bad();
    if (name.size() < text.size()) {
        const std::string_view n = text.substr(name.size() + 1);
        auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), inject.nth);
        if (ec != std::errc() || ptr != n.data() + n.size() || inject.nth == 0) return bad();
    }
    return inject;
}

/// Applies PXVM_VALIDATE, PXVM_TIMEOUT_MS and PXVM_INJECT_FAULT.
Result<RuntimeOptions> apply_environment(RuntimeOptions options) {
    if (const char* f = std::getenv("PXVM_INJECT_FAULT");
        f && *f && options.inject.kind == FaultInjection::Kind::none) {
        auto inject = parse_injection(f);
        if (!inject) return inject.error();
        options.inject = *inject;
    }
    if (const char* v = std::getenv("PXVM_VALIDATE"); v && *v && std::strcmp(v, "0") != 0) {
        options.validate = true;
        if (std::strcmp(v, "gpu") == 0) options.gpu_assisted_validation = true;
    }
    if (options.gpu_assisted_validation) options.validate = true;
    const char* t = std::getenv("PXVM_TIMEOUT_MS");
    if (!options.timeout && t && *t) { // a caller's (or a flag's) value beats the environment
        std::uint64_t ms = 0;
        const char* end = t + std::strlen(t);
        auto [ptr, ec] = std::from_chars(t, end, ms);
        if (ec != std::errc() || ptr != end || ms == 0 || ms > std::uint64_t(MAX_TIMEOUT.count()))
            return Error{ErrorCode::invalid_input,
                         "PXVM_TIMEOUT_MS='" + std::string(t) +
                             "' is not a whole number of milliseconds from 1 to 86400000 (24 h)"};
        options.timeout = std::chrono::milliseconds(ms);
    }
    if (!options.timeout) options.timeout = DEFAULT_TIMEOUT;
    if (options.timeout->count() <= 0 || *options.timeout > MAX_TIMEOUT)
        return Error{ErrorCode::invalid_input, "the run timeout must be from 1 ms to 24 h (it is " +
                                                   std::to_string(options.timeout->count()) +
                                                   " ms)"};
    return options;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string device_list(const std::vector<DeviceInfo>& devices) {
    std::string out =
        std::to_string(devices.size()) + (devices.size() == 1 ? " device:" : " devices:");
    for (const DeviceInfo& d : devices) {
        out += " [" + std::to_string(d.index) + "] " + d.name + " (" +
               std::string(device_type_name(d.type)) + (d.usable() ? "" : ", unusable") + ")";
        if (d.index + 1 < devices.size()) out += ",";
    }
    return out;
}

} // namespace

std::string_view to_string(UploadMode mode) {
    switch (mode) {
    case UploadMode::staging:
        return "staging";
    case UploadMode::direct:
        return "direct";
    default:
        return "automatic";
    }
}

DeviceSelector DeviceSelector::parse(std::string_view text) {
    if (text.empty() || lower(text) == "auto") return preferred();
    if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::uint32_t index = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
        if (ec == std::errc() && ptr == text.data() + text.size()) return by_index(index);
        return by_index(~0u); // too large: an index that cannot exist
    }
    return by_name(std::string(text));
}

std::string to_string(const DeviceSelector& selector) {
    switch (selector.kind) {
    case DeviceSelector::Kind::index:
        return "device " + std::to_string(selector.index);
    case DeviceSelector::Kind::name:
        return "device named like '" + selector.name + "'";
    default:
        return "the preferred device";
    }
}

Runtime::Runtime(std::unique_ptr<detail::RuntimeState> state) : state_(std::move(state)) {}
Runtime::Runtime(Runtime&&) noexcept = default;
Runtime& Runtime::operator=(Runtime&& other) noexcept {
    if (this != &other) {
        Runtime dying(std::move(*this));
        state_ = std::move(other.state_);
    }
    return *this;
}
Runtime::~Runtime() {
    if (state_ && state_->open_devices.load() != 0) {
        // Destroying the instance under a live device is undefined behaviour in Vulkan; this is
        // a programming error in the caller, so stop here with the reason.
        std::fprintf(stderr,
                     "pxvm: internal error: px::vk::Runtime destroyed while %d Device(s) it opened "
                     "are alive; destroy devices first\n",
                     state_->open_devices.load());
        std::abort();
    }
}

Result<Runtime> Runtime::create(const RuntimeOptions& requested) {
    auto options = apply_environment(requested);
    if (!options) return options.error();
    auto state = std::make_unique<detail::RuntimeState>();
    state->options = *options;
    state->log.print = options->print_validation_messages;

    auto enumerate_version = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
        vkGetInstanceProcAddr(nullptr, "vkEnumerateInstanceVersion"));
    std::uint32_t loader_version = VK_API_VERSION_1_0;
    if (enumerate_version) enumerate_version(&loader_version);
    if (loader_version < VK_API_VERSION_1_1)
        return Error{ErrorCode::unsupported,
                     "the Vulkan loader supports only Vulkan " +
                         format_api_version(loader_version) +
                         "; pxVM needs a Vulkan 1.1 or newer loader (libvulkan1)"};
    state->api_version = VK_API_VERSION_1_3;

    std::vector<const char*> extensions, layers;
    const std::vector<std::string> available = instance_extensions(nullptr);
    VkInstanceCreateFlags flags = 0;
    if (contains(available, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        extensions.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }

    VkDebugUtilsMessengerCreateInfoEXT messenger = messenger_info(&state->log);
    auto validation_features =
        make_struct<VkValidationFeaturesEXT>(VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT);
    // GPU-assisted validation instruments every shader to check its buffer accesses; it takes
    // the place of synchronization validation.
    const VkValidationFeatureEnableEXT enables[] = {
        options->gpu_assisted_validation
            ? VK_VALIDATION_FEATURE_ENABLE_GPU_ASSISTED_EXT
            : VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    const void* next = nullptr;
    if (options->validate) {
        if (!layer_installed(VALIDATION_LAYER))
            return Error{ErrorCode::unsupported,
                         "validation was asked for (the validate option or PXVM_VALIDATE=1) but " +
                             std::string(VALIDATION_LAYER) +
                             " is not installed; install it (Debian: apt install "
                             "vulkan-validationlayers) or run without validation"};
        layers.push_back(VALIDATION_LAYER);
        const std::vector<std::string> layer_extensions = instance_extensions(VALIDATION_LAYER);
        if (!contains(available, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) &&
            !contains(layer_extensions, VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
            return Error{ErrorCode::unsupported,
                         "validation needs VK_EXT_debug_utils, which neither the Vulkan loader "
                         "nor the validation layer provides"};
        extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        next = &messenger;
        // Synchronization validation checks the barriers between dispatches, uploads and
        // readbacks, which are exactly the mistakes a compute runtime can make silently.
        if (contains(layer_extensions, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
            extensions.push_back(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
            validation_features.enabledValidationFeatureCount = 1;
            validation_features.pEnabledValidationFeatures = enables;
            messenger.pNext = &validation_features;
        }
        state->validation = true;
    }

    auto app = make_struct<VkApplicationInfo>(VK_STRUCTURE_TYPE_APPLICATION_INFO);
    app.pApplicationName = "pxVM";
    app.applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0);
    app.pEngineName = "pxVM";
    app.apiVersion = state->api_version;
    auto info = make_struct<VkInstanceCreateInfo>(VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO);
    info.pNext = next;
    info.flags = flags;
    info.pApplicationInfo = &app;
    info.enabledLayerCount = std::uint32_t(layers.size());
    info.ppEnabledLayerNames = layers.data();
    info.enabledExtensionCount = std::uint32_t(extensions.size());
    info.ppEnabledExtensionNames = extensions.data();
    VkInstance instance = VK_NULL_HANDLE;
    if (VkResult r = vkCreateInstance(&info, nullptr, &instance); r != VK_SUCCESS) {
        if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
            return Error{ErrorCode::device_error,
                         "no Vulkan driver found (vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER): "
                         "install one, e.g. mesa-vulkan-drivers for lavapipe (the CPU device), or "
                         "point VK_DRIVER_FILES at the driver's ICD json file"};
        return vulkan_error("cannot create a Vulkan instance (vkCreateInstance)", r);
    }
    state->instance = Instance(instance);

    if (state->validation) {
        auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT"));
        auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT"));
        if (!create || !destroy)
            return Error{ErrorCode::device_error,
                         "the debug-utils functions are missing although VK_EXT_debug_utils "
                         "was enabled"};
        VkDebugUtilsMessengerCreateInfoEXT standalone = messenger_info(&state->log);
        VkDebugUtilsMessengerEXT handle = VK_NULL_HANDLE;
        if (VkResult r = create(instance, &standalone, nullptr, &handle); r != VK_SUCCESS)
            return vulkan_error("cannot create the validation message callback", r);
        state->messenger = DebugMessenger(instance, handle, destroy);
    }

    std::uint32_t count = 0;
    if (VkResult r = vkEnumeratePhysicalDevices(instance, &count, nullptr); r != VK_SUCCESS)
        return vulkan_error("cannot list Vulkan devices (vkEnumeratePhysicalDevices)", r);
    std::vector<VkPhysicalDevice> handles(count);
    if (VkResult r = vkEnumeratePhysicalDevices(instance, &count, handles.data()); r < VK_SUCCESS)
        return vulkan_error("cannot list Vulkan devices (vkEnumeratePhysicalDevices)", r);
    handles.resize(count);
    if (handles.empty())
        return Error{ErrorCode::device_error,
                     "no Vulkan device found: the Vulkan loader found no driver with a device; "
                     "install one (e.g. mesa-vulkan-drivers for lavapipe, the CPU device) or check "
                     "VK_DRIVER_FILES / VK_ICD_FILENAMES"};

    std::vector<std::pair<DeviceInfo, VkPhysicalDevice>> found;
    for (VkPhysicalDevice handle : handles)
        found.emplace_back(query_device_info(instance, handle), handle);
    std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
        return device_order_less(a.first, b.first);
    });
    for (std::uint32_t i = 0; i < found.size(); ++i) {
        found[i].first.index = i;
        state->devices.push_back(std::move(found[i].first));
        state->physical_devices.push_back(found[i].second);
    }
    return Runtime(std::move(state));
}

const std::vector<DeviceInfo>& Runtime::devices() const {
    return state_->devices;
}
const RuntimeOptions& Runtime::options() const {
    return state_->options;
}
bool Runtime::validation_enabled() const {
    return state_->validation;
}
std::uint32_t Runtime::instance_api_version() const {
    return state_->api_version;
}

ValidationMessages Runtime::validation_messages() const {
    std::lock_guard lock(state_->log.mutex);
    return state_->log.messages;
}

Result<std::uint32_t> Runtime::select(const DeviceSelector& selector) const {
    const std::vector<DeviceInfo>& devices = state_->devices;
    switch (selector.kind) {
    case DeviceSelector::Kind::index: {
        if (selector.index >= devices.size())
            return Error{ErrorCode::invalid_input,
                         "there is no device " +
                             (selector.index == ~0u ? std::string("with that index")
                                                    : std::to_string(selector.index)) +
                             "; " + device_list(devices)};
        const DeviceInfo& d = devices[selector.index];
        if (!d.usable())
            return Error{ErrorCode::unsupported, "device " + std::to_string(d.index) + " (" +
                                                     d.name +
                                                     ") cannot run pxVM: " + d.unsupported_reason};
        return d.index;
    }
    case DeviceSelector::Kind::name: {
        const std::string wanted = lower(selector.name);
        const DeviceInfo* unusable = nullptr;
        for (const DeviceInfo& d : devices) {
            if (lower(d.name).find(wanted) == std::string::npos) continue;
            if (d.usable()) return d.index;
            if (!unusable) unusable = &d;
        }
        if (unusable)
            return Error{ErrorCode::unsupported,
                         "device " + std::to_string(unusable->index) + " (" + unusable->name +
                             ") matches '" + selector.name +
                             "' but cannot run pxVM: " + unusable->unsupported_reason};
        return Error{ErrorCode::invalid_input,
                     "no device name contains '" + selector.name + "'; " + device_list(devices)};
    }
    default:
        for (const DeviceInfo& d : devices)
            if (d.usable()) return d.index;
        return Error{ErrorCode::unsupported, "no device can run pxVM; " + device_list(devices) +
                                                 " (" + devices.front().name + ": " +
                                                 devices.front().unsupported_reason + ")"};
    }
}

} // namespace px::vk
