// Lets one header declare 32-bit unsigned constants for both C++ (in namespace px) and GLSL:
//     PX_NAMESPACE_BEGIN  PX_CONST(NAME, 1u);  PX_NAMESPACE_END
#ifndef PXVM_CONST_H
#define PXVM_CONST_H

#ifdef __cplusplus
#include <cstdint>
#define PX_CONST(name, value) inline constexpr std::uint32_t name = value
#define PX_NAMESPACE_BEGIN namespace px {
#define PX_NAMESPACE_END }
#else
#define PX_CONST(name, value) const uint name = value
#define PX_NAMESPACE_BEGIN
#define PX_NAMESPACE_END
#endif

#endif
