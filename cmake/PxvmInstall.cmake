# cmake --install: the libraries (namespaced pxvm:: targets, a CMake package config and a
# pkg-config file), their public headers (with the GLSL/C++ layout headers they include) and the
# tools. An outside project does find_package(pxvm) and links pxvm::pxvm (and pxvm::compiler for
# the assembler and the cartridge packer); tests/install/ is such a project, built by a test.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(pxvm_core PROPERTIES EXPORT_NAME core)
set_target_properties(pxvm_compiler PROPERTIES EXPORT_NAME compiler)
set_target_properties(pxvm_spirv PROPERTIES EXPORT_NAME spirv)
set_target_properties(pxvm_kernels PROPERTIES EXPORT_NAME kernels)
set_target_properties(pxvm_warnings PROPERTIES EXPORT_NAME warnings)
install(TARGETS pxvm pxvm_core pxvm_compiler pxvm_spirv pxvm_kernels pxvm_warnings EXPORT pxvmTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS pxrun pxc pxinfo pxconform pxbench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY runtime/include/ compiler/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES kernels/pxvm_const.h kernels/pxvm_layout.h kernels/pxvm_protocol.h kernels/pxvm_instructions.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT pxvmTargets NAMESPACE pxvm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pxvm)

set(config_dir ${PROJECT_BINARY_DIR}/generated/cmake)
file(WRITE ${config_dir}/pxvmConfig.cmake [[
# pxVM's package: pxvm::core (image, protocol, decoder, reference, verification, cartridges; no
# Vulkan), pxvm::pxvm (the Vulkan runtime on the core), pxvm::compiler (assembler, packer).
include(CMakeFindDependencyMacro)
find_dependency(Vulkan)
find_dependency(nlohmann_json) # header-only and private; the export still names it
find_dependency(Threads)
find_dependency(ZLIB)
find_dependency(PkgConfig)
pkg_check_modules(SPNG REQUIRED IMPORTED_TARGET spng)
pkg_check_modules(NETTLE REQUIRED IMPORTED_TARGET nettle)
include(${CMAKE_CURRENT_LIST_DIR}/pxvmTargets.cmake)
]])
write_basic_package_version_file(${config_dir}/pxvmConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${config_dir}/pxvmConfig.cmake ${config_dir}/pxvmConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pxvm)

# pkg-config: static libraries, so their dependencies are public.
file(WRITE ${config_dir}/pxvm.pc.in [[
prefix=@CMAKE_INSTALL_PREFIX@
libdir=${prefix}/@CMAKE_INSTALL_LIBDIR@
includedir=${prefix}/@CMAKE_INSTALL_INCLUDEDIR@

Name: pxvm
Description: pxVM: a Vulkan compute runtime and reference interpreter for pixel programs
Version: @PROJECT_VERSION@
Requires: vulkan spng nettle zlib
Cflags: -I${includedir}
Libs: -L${libdir} -lpxvm_compiler -lpxvm -lpxvm_core -lpxvm_kernels -lpxvm_spirv -pthread
]])
install(CODE "
  set(CMAKE_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  configure_file(\"${config_dir}/pxvm.pc.in\" \"${config_dir}/pxvm.pc\" @ONLY)
  file(INSTALL \"${config_dir}/pxvm.pc\"
       DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\")
")
