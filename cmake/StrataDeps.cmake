# Third-party packages, all from Debian 12 (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Boost 1.74 REQUIRED)           # Asio and Beast are header-only
find_package(CURL REQUIRED)
find_package(ZLIB REQUIRED)                # CRC-32 of index files (zlib's is table-free and fast)
find_package(Protobuf REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc i18n)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)

# Snowball's libstemmer ships no CMake or pkg-config file.
find_path(STEMMER_INCLUDE_DIR libstemmer.h REQUIRED)
find_library(STEMMER_LIBRARY NAMES stemmer REQUIRED)
add_library(strata_stemmer INTERFACE)
target_include_directories(strata_stemmer INTERFACE ${STEMMER_INCLUDE_DIR})
target_link_libraries(strata_stemmer INTERFACE ${STEMMER_LIBRARY})

# Dense retrieval (retrieval/dense): Debian's faiss 1.7.3, whose CMake file links OpenMP's target.
# The fuzz build (clang, only the fuzzers) has no use for it.
if(NOT STRATA_FUZZ)
  find_package(OpenMP REQUIRED)
  find_package(faiss CONFIG REQUIRED)
endif()

if(STRATA_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
