# STRATA_FUZZ: libFuzzer targets (tests/fuzz) with AddressSanitizer and UndefinedBehaviorSanitizer.
# Every target of the build is instrumented for coverage and the sanitizers
# (-fsanitize=fuzzer-no-link,address,undefined, -O1 -g); the fuzzers add libFuzzer's main
# (-fsanitize=fuzzer). libFuzzer ships with clang (Debian: clang, libclang-rt-14-dev), so this
# build needs clang; configure it in its own folder (scripts/fuzz.sh does):
#   cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
#         -DSTRATA_WITH_TORCH=OFF -DSTRATA_BUILD_TESTS=OFF -DSTRATA_FUZZ=ON
if(NOT STRATA_FUZZ)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "STRATA_FUZZ needs clang (libFuzzer); this is ${CMAKE_CXX_COMPILER_ID}. "
                      "Configure with -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++")
endif()
if(STRATA_WITH_TORCH)
  message(FATAL_ERROR "STRATA_FUZZ builds the LibTorch-free modules only: add -DSTRATA_WITH_TORCH=OFF")
endif()
# -fno-sanitize-recover: a UBSan report stops the input (libFuzzer keeps it as a crash) instead of
# printing and going on. _GLIBCXX_ASSERTIONS: libstdc++'s bounds checks (vector::operator[] & co.).
add_compile_options(
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  -O1 -g -D_GLIBCXX_ASSERTIONS)
add_link_options(-fsanitize=address,undefined)
