# expect: panic 5
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    li x5, 0xffc
    sb x6, 0(x5)
    EXPECT_PANIC_TAIL
TEST_END
