// End of everything past the format core: its internal macros end here.
#undef KVC_POSIX
#undef KVC_MSVC
#undef KVC_ARCH_X86_64
#undef KVC_ARCH_ARM64
#undef KVC_CRC32C_X86
#undef KVC_CRC32C_ARM64
#undef KVC_CRC32C_TARGET_CRC
#undef KVC_CRC32C_TARGET_STREAMS
#undef KVC_CRC32C_TARGET_AVX512
#undef KVC_CRC32C_HW_U64
#undef KVC_CRC32C_HW_U32
#undef KVC_CRC32C_HW_U16
#undef KVC_CRC32C_HW_U8
#undef KVC_SHA1_TARGET
#undef KVC_HAVE_COPY_FILE_RANGE
#endif  // KVC_KVC_HPP_FULL
