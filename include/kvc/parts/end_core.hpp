// End of the format core: its internal macros end here (the field tables
// KVC_*_FIELDS stay, they are public).
#undef KVC_REQUIRE_STREAM
#undef KVC_CONSTANT_EVALUATED
#undef KVC_DECLARE_MEMBER
#undef KVC_SAME_MEMBER
#endif  // KVC_KVC_HPP_CORE
