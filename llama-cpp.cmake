# Read by llama.cpp's CMake right after its project() (CMAKE_PROJECT_llama.cpp_INCLUDE; the Makefile and the
# Dockerfile pass it), so that the build holds only what llama_cpp (the Python package) loads: libllama and ggml.
# LLAVA_BUILD=OFF (on the command line) drops the multimodal library.

# llama.cpp's common library (and its HTTP client): llama-cpp-python forces it on, the Python package never loads it.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "" FORCE)

# No AMX kernels: on Sapphire Rapids and later (AMX_INT8) llama.cpp repacks the weights for AMX and its first
# llama_decode crashes in ggml_backend_amx_mul_mat (ggml-org/llama.cpp#20824, still open; SmolLM2's Q4_1 and Q8_0
# both, every time). A native build (GGML_NATIVE, the default) turns AMX on by -march=native; an explicit -mno-amx-*
# wins over -march in GCC and Clang, and the AVX-512 / AVX2 kernels run instead.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i.86)$" AND CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    add_compile_options(-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
endif()
