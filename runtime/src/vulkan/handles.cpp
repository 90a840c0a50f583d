// VkResult names, Vulkan errors as px::Error, and the cannot-happen abort.
#include "pxvm/vulkan/handles.hpp"

#include <cstdio>
#include <cstdlib>

namespace px::vk {

std::string_view result_name(VkResult result) {
    switch (result) {
#define PX_RESULT(name)                                                                            \
    case name:                                                                                     \
        return #name;
        PX_RESULT(VK_SUCCESS)
        PX_RESULT(VK_NOT_READY)
        PX_RESULT(VK_TIMEOUT)
        PX_RESULT(VK_EVENT_SET)
        PX_RESULT(VK_EVENT_RESET)
        PX_RESULT(VK_INCOMPLETE)
        PX_RESULT(VK_ERROR_OUT_OF_HOST_MEMORY)
        PX_RESULT(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        PX_RESULT(VK_ERROR_INITIALIZATION_FAILED)
        PX_RESULT(VK_ERROR_DEVICE_LOST)
        PX_RESULT(VK_ERROR_MEMORY_MAP_FAILED)
        PX_RESULT(VK_ERROR_LAYER_NOT_PRESENT)
        PX_RESULT(VK_ERROR_EXTENSION_NOT_PRESENT)
        PX_RESULT(VK_ERROR_FEATURE_NOT_PRESENT)
        PX_RESULT(VK_ERROR_INCOMPATIBLE_DRIVER)
        PX_RESULT(VK_ERROR_TOO_MANY_OBJECTS)
        PX_RESULT(VK_ERROR_FORMAT_NOT_SUPPORTED)
        PX_RESULT(VK_ERROR_FRAGMENTED_POOL)
        PX_RESULT(VK_ERROR_UNKNOWN)
        PX_RESULT(VK_ERROR_OUT_OF_POOL_MEMORY)
        PX_RESULT(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        PX_RESULT(VK_ERROR_FRAGMENTATION)
        PX_RESULT(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        PX_RESULT(VK_PIPELINE_COMPILE_REQUIRED)
        PX_RESULT(VK_ERROR_INVALID_SHADER_NV)
#undef PX_RESULT
    default:
        return "VK_RESULT_UNKNOWN";
    }
}

ErrorCode error_code(VkResult result) {
    switch (result) {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_OUT_OF_POOL_MEMORY:
    case VK_ERROR_FRAGMENTED_POOL:
    case VK_ERROR_FRAGMENTATION:
    case VK_ERROR_TOO_MANY_OBJECTS:
        return ErrorCode::out_of_memory;
    case VK_ERROR_DEVICE_LOST:
        return ErrorCode::device_lost;
    case VK_TIMEOUT:
        return ErrorCode::timeout;
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_FORMAT_NOT_SUPPORTED:
    case VK_ERROR_LAYER_NOT_PRESENT:
        return ErrorCode::unsupported;
    default:
        return ErrorCode::device_error;
    }
}

Error vulkan_error(std::string_view what, VkResult result) {
    std::string message = std::string(what) + ": " + std::string(result_name(result));
    if (result_name(result) == "VK_RESULT_UNKNOWN") message += " (" + std::to_string(result) + ")";
    switch (result) {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        message += " (the GPU is out of memory: free GPU memory, use a smaller image or another "
                   "device)";
        break;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        message += " (the host is out of memory)";
        break;
    case VK_ERROR_DEVICE_LOST:
        message += " (the driver lost the device, e.g. after a GPU fault or reset; results were "
                   "discarded, and the device must be opened again)";
        break;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
        message += " (no usable Vulkan driver: install one, e.g. mesa-vulkan-drivers for "
                   "lavapipe, or point VK_DRIVER_FILES at an ICD json file)";
        break;
    case VK_ERROR_LAYER_NOT_PRESENT:
        message += " (a requested layer is not installed)";
        break;
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_FEATURE_NOT_PRESENT:
        message += " (the driver refused an extension or feature it advertised)";
        break;
    default:
        break;
    }
    return Error{error_code(result), std::move(message), int(result)};
}

void fail_check(const char* call, VkResult result, const char* file, int line) {
    std::fprintf(stderr, "pxvm: internal error: %s returned %s at %s:%d\n", call,
                 std::string(result_name(result)).c_str(), file, line);
    std::abort();
}

} // namespace px::vk
