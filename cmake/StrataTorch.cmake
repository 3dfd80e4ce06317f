# LibTorch from the pinned `torch` wheel, located through torch.utils.cmake_prefix_path.
#
# CUDA: the PyPI wheel is CUDA-enabled. When a CUDA toolkit is found as well (and STRATA_CUDA
# is not OFF) we use TorchConfig.cmake as is, link torch_cuda and define STRATA_HAVE_CUDA=1.
# Otherwise we import only the CPU libraries (torch_cpu, c10), so that a machine without a CUDA
# toolkit still builds; CUDA code paths are then compiled out.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
if(NOT STRATA_TORCH_PREFIX)
  execute_process(
    COMMAND ${Python3_EXECUTABLE} -W ignore -c
      "import torch, torch.utils; print(torch.utils.cmake_prefix_path); print(torch.__version__); print(torch.version.cuda or '')"
    OUTPUT_VARIABLE _torch_out ERROR_VARIABLE _torch_err RESULT_VARIABLE _torch_rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _torch_rc EQUAL 0)
    message(FATAL_ERROR "strata needs the `torch` Python wheel for LibTorch (run scripts/setup.sh). "
                        "`import torch` failed with:\n${_torch_err}")
  endif()
  string(REPLACE "\n" ";" _torch_lines "${_torch_out}")
  list(GET _torch_lines 0 _prefix)
  list(GET _torch_lines 1 _version)
  list(LENGTH _torch_lines _n)
  set(_cuda "")
  if(_n GREATER 2)
    list(GET _torch_lines 2 _cuda)
  endif()
  set(STRATA_TORCH_PREFIX "${_prefix}" CACHE PATH "torch.utils.cmake_prefix_path")
  set(STRATA_TORCH_VERSION "${_version}" CACHE STRING "torch version")
  set(STRATA_TORCH_CUDA "${_cuda}" CACHE STRING "CUDA version LibTorch was built with (empty: CPU)")
endif()
message(STATUS "strata: LibTorch ${STRATA_TORCH_VERSION} at ${STRATA_TORCH_PREFIX} (CUDA: '${STRATA_TORCH_CUDA}')")

set(STRATA_HAVE_CUDA OFF)
if(NOT STRATA_CUDA STREQUAL "OFF" AND STRATA_TORCH_CUDA)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(STRATA_HAVE_CUDA ON)
  elseif(STRATA_CUDA STREQUAL "ON")
    message(FATAL_ERROR "STRATA_CUDA=ON but no CUDA toolkit was found")
  endif()
elseif(STRATA_CUDA STREQUAL "ON")
  message(FATAL_ERROR "STRATA_CUDA=ON but LibTorch ${STRATA_TORCH_VERSION} is CPU-only")
endif()

get_filename_component(_torch_root "${STRATA_TORCH_PREFIX}/../.." ABSOLUTE)
add_library(strata_torch INTERFACE)

# The wheel's include/ also carries its own copies of protobuf and fmt headers, older or newer
# than Debian's libraries that strata links. A shim folder that points at the system copies comes
# first on the include path, so <google/protobuf/...> and <fmt/...> always match the libraries.
set(_shim "${CMAKE_BINARY_DIR}/include_shim")
file(MAKE_DIRECTORY "${_shim}")
foreach(_dir google fmt)
  find_path(_sys_${_dir} NAMES ${_dir} PATHS /usr/include NO_DEFAULT_PATH)
  if(_sys_${_dir} AND NOT EXISTS "${_shim}/${_dir}")
    file(CREATE_LINK "${_sys_${_dir}}/${_dir}" "${_shim}/${_dir}" SYMBOLIC)
  endif()
endforeach()
target_include_directories(strata_torch SYSTEM BEFORE INTERFACE "${_shim}")
if(STRATA_HAVE_CUDA)
  list(APPEND CMAKE_PREFIX_PATH "${STRATA_TORCH_PREFIX}")
  find_package(Torch REQUIRED)
  target_link_libraries(strata_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(strata_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  target_compile_definitions(strata_torch INTERFACE STRATA_HAVE_CUDA=1)
else()
  find_library(STRATA_TORCH_CPU_LIB torch_cpu PATHS "${_torch_root}/lib" NO_DEFAULT_PATH REQUIRED)
  find_library(STRATA_C10_LIB c10 PATHS "${_torch_root}/lib" NO_DEFAULT_PATH REQUIRED)
  target_include_directories(strata_torch SYSTEM INTERFACE
    "${_torch_root}/include" "${_torch_root}/include/torch/csrc/api/include")
  # --no-as-needed keeps torch_cpu's operator registrations even where no symbol is used directly.
  target_link_libraries(strata_torch INTERFACE
    -Wl,--no-as-needed ${STRATA_TORCH_CPU_LIB} ${STRATA_C10_LIB} -Wl,--as-needed Threads::Threads)
  target_link_options(strata_torch INTERFACE "-Wl,-rpath,${_torch_root}/lib")
  target_compile_definitions(strata_torch INTERFACE STRATA_HAVE_CUDA=0)
endif()
