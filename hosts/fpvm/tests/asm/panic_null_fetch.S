# expect: panic 5
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    li x5, 0x100
    jr x5
    EXPECT_PANIC_TAIL
TEST_END
