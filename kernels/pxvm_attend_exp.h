// The exponential table of `attend` (docs/PROTOCOL.md section 5), part of the protocol:
// ATTEND_EXP[i] = round(2^14 · exp(−i/16)) for i = 0 … 255, a step of 1/16 nat. The values are the
// specification; the formula is how they were made (tests/unit/protocol_tests.cpp recomputes them).
// C++ and GLSL declare their arrays from PX_ATTEND_EXP_VALUES.
#ifndef PXVM_ATTEND_EXP_H
#define PXVM_ATTEND_EXP_H

// clang-format off
#define PX_ATTEND_EXP_VALUES \
    16384u, 15391u, 14459u, 13583u, 12760u, 11987u, 11261u, 10578u, 9937u, 9335u, 8770u, 8238u, 7739u, 7270u, 6830u, 6416u, \
    6027u, 5662u, 5319u, 4997u, 4694u, 4410u, 4143u, 3892u, 3656u, 3434u, 3226u, 3031u, 2847u, 2675u, 2513u, 2360u, \
    2217u, 2083u, 1957u, 1838u, 1727u, 1622u, 1524u, 1432u, 1345u, 1263u, 1187u, 1115u, 1047u, 984u, 924u, 868u, \
    816u, 766u, 720u, 676u, 635u, 597u, 561u, 527u, 495u, 465u, 437u, 410u, 385u, 362u, 340u, 319u, \
    300u, 282u, 265u, 249u, 234u, 220u, 206u, 194u, 182u, 171u, 161u, 151u, 142u, 133u, 125u, 118u, \
    110u, 104u, 97u, 92u, 86u, 81u, 76u, 71u, 67u, 63u, 59u, 56u, 52u, 49u, 46u, 43u, \
    41u, 38u, 36u, 34u, 32u, 30u, 28u, 26u, 25u, 23u, 22u, 20u, 19u, 18u, 17u, 16u, \
    15u, 14u, 13u, 12u, 12u, 11u, 10u, 10u, 9u, 9u, 8u, 8u, 7u, 7u, 6u, 6u, \
    5u, 5u, 5u, 5u, 4u, 4u, 4u, 4u, 3u, 3u, 3u, 3u, 3u, 2u, 2u, 2u, \
    2u, 2u, 2u, 2u, 2u, 1u, 1u, 1u, 1u, 1u, 1u, 1u, 1u, 1u, 1u, 1u, \
    1u, 1u, 1u, 1u, 1u, 1u, 1u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, \
    0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, \
    0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, \
    0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, \
    0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, \
    0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u
// clang-format on

#ifdef __cplusplus
#include <array>
#include <cstdint>
namespace px {
inline constexpr std::array<std::uint32_t, 256> ATTEND_EXP = {PX_ATTEND_EXP_VALUES};
}
#else
const uint ATTEND_EXP[256] = uint[256](PX_ATTEND_EXP_VALUES);
#endif

#endif
